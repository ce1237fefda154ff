// Runs the shared protocol vectors (protocol/vectors/*.json) through the SDK's decoder and client-message check.
import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { decodeServer, isClientMessage, knownErrorCode, shouldReconnect, backoffDelay } from '../dist/index.js';
import { ROOT } from './helpers.mjs';

const dir = join(ROOT, 'protocol', 'vectors');
const cases = readdirSync(dir)
  .filter((f) => f.endsWith('.json'))
  .flatMap((f) => JSON.parse(readFileSync(join(dir, f), 'utf8')).cases.map((c) => ({ ...c, file: f })));

const textOf = (c) => (c.text !== undefined ? c.text : JSON.stringify(c.message));

test('server vectors decode as the spec says', () => {
  const server = cases.filter((c) => c.side === 'server');
  assert.ok(server.length >= 70, `only ${server.length} server cases`);
  for (const c of server) {
    const decoded = decodeServer(textOf(c));
    if (c.expect.error === undefined) {
      assert.notEqual(decoded.kind, 'invalid', `${c.name}: ${JSON.stringify(decoded)}`);
      assert.equal(decoded.message.type, c.expect.type, c.name);
      if (c.expect.timestamp !== undefined) assert.equal(decoded.message.timestamp, c.expect.timestamp, c.name);
      // As in the Rust runner, an expectation without requestId does not check it.
      if (c.expect.requestId !== undefined) {
        assert.equal(decoded.kind, c.expect.requestId === null ? 'push' : 'reply', c.name);
        if (c.expect.requestId !== null) assert.equal(decoded.requestId, c.expect.requestId, c.name);
      }
      if (c.expect.payloadCode !== undefined) assert.equal(knownErrorCode(decoded.message.payload.code), c.expect.payloadCode, c.name);
    } else {
      assert.equal(decoded.kind, 'invalid', c.name);
      assert.equal(decoded.code, c.expect.error, c.name);
      // As in the Rust runner, an expectation without requestId does not check it.
      if (c.expect.requestId !== undefined) assert.equal(decoded.requestId ?? null, c.expect.requestId, c.name);
      if (c.expect.pointers !== undefined) {
        assert.deepEqual([...new Set(decoded.errors.map((e) => e.pointer))].sort(), [...c.expect.pointers].sort(), c.name);
      }
    }
  }
});

test('valid client vectors pass the structural ClientMessage check', () => {
  const valid = cases.filter((c) => c.side === 'client' && c.expect.error === undefined);
  assert.ok(valid.length >= 50, `only ${valid.length} valid client cases`);
  for (const c of valid) assert.ok(isClientMessage(JSON.parse(textOf(c))), c.name);
});

test('client vectors with a bad envelope or type fail the structural check', () => {
  const invalid = cases.filter(
    (c) => c.side === 'client' && ['INVALID_MESSAGE', 'UNSUPPORTED_TYPE'].includes(c.expect.error) && c.message !== undefined,
  );
  assert.ok(invalid.length > 10);
  for (const c of invalid) {
    // Duplicate keys and deep nesting survive JSON.parse unseen; those cases come as text.
    assert.equal(isClientMessage(c.message), false, c.name);
  }
});

test('close codes follow docs/protocol.md section 11', () => {
  for (const code of [1001, 1006, 1011, 4000, 4001, 4002, 4499, 1005, 3000]) assert.equal(shouldReconnect(code), true, String(code));
  for (const code of [1000, 1002, 1003, 1007, 1008, 1009, 1010, 4500, 4501, 4502, 4503, 4999]) {
    assert.equal(shouldReconnect(code), false, String(code));
  }
});

test('backoff grows exponentially with jitter and stays under the cap', () => {
  assert.equal(backoffDelay(1, 500, 30000, () => 0), 250);
  assert.equal(backoffDelay(1, 500, 30000, () => 1), 500);
  assert.equal(backoffDelay(4, 500, 30000, () => 1), 4000);
  assert.equal(backoffDelay(20, 500, 30000, () => 1), 30000);
  assert.equal(backoffDelay(20, 500, 30000, () => 0), 15000);
});
