// The bindings' types as an app sees them: test/types-app.ts compiles with strict TypeScript against dist/, and each of
// its @ts-expect-error lines is an error (tsc fails on one that is not).
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { dirname, join, resolve } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');

test('a strict TypeScript app of the hooks compiles, and its mistakes do not', () => {
  const args = ['--ignoreConfig', '--noEmit', '--strict', '--target', 'ES2022', '--module', 'ES2022', '--moduleResolution', 'bundler', '--lib', 'ES2022,DOM,ESNext.Disposable', '--types', '', join('test', 'types-app.ts')];
  try {
    execFileSync(join(root, 'node_modules', '.bin', 'tsc'), args, { cwd: root, encoding: 'utf8' });
  } catch (error) {
    assert.fail(`tsc failed:\n${error.stdout}${error.stderr}`);
  }
});
