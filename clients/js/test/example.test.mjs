// The README's short Node example runs against a real server and prints the event it received.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { test } from 'node:test';
import { promisify } from 'node:util';
import { startServer, tempDir, token } from './helpers.mjs';

test('examples/two-clients.mjs creates an order and the second client receives order_created', async () => {
  const { dir, cleanup } = tempDir();
  const server = await startServer(dir);
  try {
    const script = new URL('../examples/two-clients.mjs', import.meta.url).pathname;
    const { stdout } = await promisify(execFile)(process.execPath, [script, server.url, token(dir, 'alice'), token(dir, 'root', ['admin'])], { timeout: 20000 });
    const [, type, id, status, created] = /^(\S+) (\S+) (\S+) \(created (\S+)\)/.exec(stdout.trim()) ?? [];
    assert.equal(type, 'order_created', stdout);
    assert.equal(status, 'pending');
    assert.equal(id, created);
  } finally {
    await server.kill();
    cleanup();
  }
});
