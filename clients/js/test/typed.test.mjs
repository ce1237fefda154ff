// Typed resources, as an app sees them: `tidings types` writes the types of test/typed/tidings.toml, and strict
// TypeScript compiles test/typed/app.ts against them and the built package without a cast, and reports exactly the
// errors that test/typed/mistakes.ts marks, on the lines that make them.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { assertMarkedErrors, compile, typedProject } from '../../../tests/support/typescript.mjs';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const fixtures = join(root, 'test', 'typed');
const tsc = join(root, 'node_modules', '.bin', 'tsc');

/** The app's folder: the fixtures, this package installed (its dist/, which npm test built), and the written types. */
const project = () =>
  typedProject({
    files: [join(fixtures, 'app.ts'), join(fixtures, 'mistakes.ts')],
    links: { tidings: root },
    config: join(fixtures, 'tidings.toml'),
  });

test('the types that `tidings types` writes make a strict app compile without a cast', (t) => {
  const folder = project();
  t.after(() => folder.cleanup());
  const types = readFileSync(join(folder.dir, 'types.ts'), 'utf8');
  assert.match(types, /export interface Types \{\n {2}order: \{ data: Order; create: OrderCreate \};\n {2}support_ticket: \{ data: SupportTicket; create: SupportTicketCreate \};\n\}/);
  assert.deepEqual(compile(tsc, folder.dir, 'app.ts'), []);
  assert.doesNotMatch(readFileSync(join(fixtures, 'app.ts'), 'utf8'), /\bas (unknown|any)\b|@ts-|\bany\b/, 'the app uses no cast and silences nothing');
});

test('an app\'s mistakes on typed resources fail to compile, each with its error on its line', (t) => {
  const folder = project();
  t.after(() => folder.cleanup());
  assertMarkedErrors(join(fixtures, 'mistakes.ts'), 'mistakes.ts', compile(tsc, folder.dir, 'mistakes.ts'));
});
