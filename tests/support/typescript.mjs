// Compiling a TypeScript app against the SDK's packages in tests: a project folder as an app has it (its files, the
// packages linked into node_modules, the types `tidings types` writes), strict tsc on one of its files, and the check
// that tsc reports exactly the errors a fixture marks.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { copyFileSync, mkdirSync, readFileSync, symlinkSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { binary, tempDir } from './process.mjs';

/**
 * A project in a temporary folder: `files` copied in, each package of `links` ({name: folder}) linked into
 * node_modules, and types.ts as `tidings types` writes it (from `config`, a TOML file, or the server's defaults).
 * Returns {dir, cleanup}.
 */
export function typedProject({ files, links, config }) {
  const folder = tempDir();
  for (const [name, target] of Object.entries(links)) {
    const link = join(folder.dir, 'node_modules', name);
    mkdirSync(dirname(link), { recursive: true });
    symlinkSync(target, link, 'dir');
  }
  for (const file of files) copyFileSync(file, join(folder.dir, basename(file)));
  const args = ['types', '--out', join(folder.dir, 'types.ts'), ...(config === undefined ? [] : ['--config', config])];
  execFileSync(binary(), args);
  return folder;
}

/**
 * Runs tsc (the binary at `tsc`) with strict settings on one file of a folder; returns its diagnostics as
 * {file, line, code, message}, or [] when it compiled.
 */
export function compile(tsc, dir, file) {
  const flags = ['--ignoreConfig', '--noEmit', '--strict', '--target', 'ES2022', '--module', 'ES2022', '--moduleResolution', 'bundler', '--lib', 'ES2022,DOM,ESNext.Disposable', '--types', ''];
  try {
    execFileSync(tsc, [...flags, file], { cwd: dir, encoding: 'utf8' });
    return [];
  } catch (error) {
    const output = `${error.stdout ?? ''}${error.stderr ?? ''}`;
    const diagnostics = [...output.matchAll(/^(\S+)\((\d+),\d+\): error (TS\d+): (.*)$/gm)].map(([, path, line, code, message]) => ({
      file: path,
      line: Number(line),
      code,
      message,
    }));
    assert.ok(diagnostics.length > 0, `tsc failed without a diagnostic it could read:\n${output}`);
    return diagnostics;
  }
}

/**
 * Asserts that the diagnostics of the fixture at `fixture` (compiled as `file`) are exactly the errors it marks: each
 * line that ends with `// expect TS1234: the start of the message` has that error, and no other line has one.
 */
export function assertMarkedErrors(fixture, file, diagnostics) {
  const expected = readFileSync(fixture, 'utf8')
    .split('\n')
    .map((text, n) => ({ line: n + 1, mark: /\/\/ expect (TS\d+): (.*)$/.exec(text) }))
    .filter(({ mark }) => mark !== null)
    .map(({ line, mark }) => ({ line, code: mark[1], message: mark[2] }));
  assert.ok(expected.length > 0, `${fixture} marks no mistake`);
  const stray = diagnostics.filter((d) => d.file !== file || !expected.some((e) => e.line === d.line));
  assert.deepEqual(stray, [], 'no error outside the marked lines');
  const missed = expected.filter(({ line, code, message }) => !diagnostics.some((d) => d.line === line && d.code === code && d.message.startsWith(message)));
  const said = (line) => diagnostics.filter((d) => d.line === line).map((d) => `${d.code}: ${d.message}`);
  assert.deepEqual(
    missed.map(({ line, code, message }) => ({ line, expected: `${code}: ${message}`, tsc: said(line) })),
    [],
    'every marked line fails with its error',
  );
}
