// The README's five-minute quickstart, run as a reader would run it: its shell steps (a token from `tidings token`,
// the server), then its script as quickstart.mjs in a folder where `tidings` and `ws` are installed, and what the
// script prints compared with what the README says it prints.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { assertPrinted, quickstartBlocks, runSetup } from '../../../tests/support/quickstart.mjs';
import { tempDir } from './helpers.mjs';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');

test('the README\'s quickstart runs against a real server and prints what the README says', async (t) => {
  const blocks = quickstartBlocks(join(root, 'README.md'));
  assert.deepEqual(Object.keys(blocks).sort(), ['js', 'sh', 'text']);
  const folder = tempDir();
  t.after(() => folder.cleanup());
  // `npm install tidings ws`: this package (built by npm test) and the ws it tests with.
  mkdirSync(join(folder.dir, 'node_modules'));
  symlinkSync(root, join(folder.dir, 'node_modules', 'tidings'), 'dir');
  symlinkSync(join(root, 'node_modules', 'ws'), join(folder.dir, 'node_modules', 'ws'), 'dir');
  const { server, env } = await runSetup(blocks.sh, folder.dir);
  t.after(() => server.kill('SIGTERM'));
  assert.deepEqual(Object.keys(env).sort(), ['TIDINGS_TOKEN', 'TIDINGS_URL']);

  writeFileSync(join(folder.dir, 'quickstart.mjs'), blocks.js);
  const run = promisify(execFile);
  const { stdout } = await run(process.execPath, ['quickstart.mjs'], { cwd: folder.dir, env: { ...process.env, ...env }, timeout: 30000 });
  assertPrinted(stdout, blocks.text);
});
