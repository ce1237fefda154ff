// The hooks on typed resources: `tidings types` writes the types of the server's default `order`, and strict
// TypeScript compiles test/typed/app.ts (createHooks<Types>(), a typed client in the provider) without a cast, and
// reports exactly the errors that test/typed/mistakes.ts marks.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { assertMarkedErrors, compile, typedProject } from '../../../tests/support/typescript.mjs';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const fixtures = join(root, 'test', 'typed');
const tsc = join(root, 'node_modules', '.bin', 'tsc');

/** The app's folder: the fixtures, the bindings (their dist/, which npm test built), the SDK and React's types. */
const project = () =>
  typedProject({
    files: [join(fixtures, 'app.ts'), join(fixtures, 'mistakes.ts')],
    links: {
      'tidings-react': root,
      tidings: join(root, 'node_modules', 'tidings'),
      '@types/react': join(root, 'node_modules', '@types', 'react'),
    },
  });

test('the typed hooks make a strict app compile without a cast', (t) => {
  const folder = project();
  t.after(() => folder.cleanup());
  assert.deepEqual(compile(tsc, folder.dir, 'app.ts'), []);
  assert.doesNotMatch(readFileSync(join(fixtures, 'app.ts'), 'utf8'), /\bas (unknown|any)\b|@ts-|\bany\b/, 'the app uses no cast and silences nothing');
});

test('mistakes in the typed hooks fail to compile, each with its error on its line', (t) => {
  const folder = project();
  t.after(() => folder.cleanup());
  assertMarkedErrors(join(fixtures, 'mistakes.ts'), 'mistakes.ts', compile(tsc, folder.dir, 'mistakes.ts'));
});
