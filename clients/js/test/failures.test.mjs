// Loud failures: each failed connection attempt is reported with its number, close code and reason; failFast makes
// connect() reject against a server it cannot reach; the logger hears of it; getToken can sign out; and requestIds
// are made without crypto.randomUUID.
import assert from 'node:assert/strict';
import { createServer } from 'node:net';
import { test } from 'node:test';
import { webcrypto } from 'node:crypto';
import WebSocket from 'ws';
import { TidingsError } from '../dist/index.js';
import { fakeServer } from './fake.mjs';
import { client, startServer, tempDir, token, until, withTimeout } from './helpers.mjs';

/** A loopback port that nothing listens on: one the system gave out, then closed again. */
async function closedPort() {
  const server = createServer();
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address();
  await new Promise((r) => server.close(r));
  return port;
}

/** A logger that keeps every line as [level, message]. */
function recorder() {
  const lines = [];
  const at = (level) => (message) => lines.push([level, message]);
  return { lines, logger: { debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error') } };
}

/** Settles to the rejection of the promise; fails the test when it resolves. */
const rejection = (promise, what) => withTimeout(promise.then(() => assert.fail(`${what} resolved`), (e) => e), 10000, what);

test('against a server it cannot reach, connect() with failFast rejects with the first failure, and the logger says so', async () => {
  const { lines, logger } = recorder();
  const c = client(`ws://127.0.0.1:${await closedPort()}/ws`, 't', { failFast: true, logger });
  const failures = [];
  c.on('attemptFailed', (f) => failures.push(f));
  const error = await rejection(c.connect(), 'connect()');
  assert.ok(error instanceof TidingsError);
  assert.equal(error.code, 'CONNECTION_LOST');
  assert.equal(error.details.code, 1006);
  assert.deepEqual(failures.map((f) => [f.attempt, f.code]), [[1, 1006]]);
  assert.equal(failures[0].error, error);
  assert.equal(c.state, 'closed');
  await assert.rejects(c.read('order', 'X'), (e) => e.code === 'CLOSED');
  assert.ok(lines.some(([level, m]) => level === 'warn' && m.startsWith('connection attempt 1 failed')), JSON.stringify(lines));
  assert.ok(lines.some(([level, m]) => level === 'info' && m.startsWith('closed')), JSON.stringify(lines));
});

test('without failFast, every failed attempt is reported in turn until retry.attempts are spent', async () => {
  const { lines, logger } = recorder();
  const c = client(`ws://127.0.0.1:${await closedPort()}/ws`, 't', { retry: { attempts: 2 }, logger });
  const failures = [];
  c.on('attemptFailed', (f) => failures.push(f));
  const error = await rejection(c.connect(), 'connect()');
  assert.equal(error.code, 'CLOSED');
  assert.deepEqual(failures.map((f) => [f.attempt, f.code, f.error.code]), [[1, 1006, 'CONNECTION_LOST'], [2, 1006, 'CONNECTION_LOST'], [3, 1006, 'CONNECTION_LOST']]);
  assert.equal(lines.filter(([level, m]) => level === 'info' && m.startsWith('reconnecting in')).length, 2);
});

/** A fake server that closes with 4002 (server busy) the sockets whose number `refused` names, when they send connect. */
function busyServer(refused) {
  const connectReply = {
    protocolVersion: '1.1', sessionId: 's', authTimeoutMs: 10000, heartbeat: { pingIntervalMs: 25000, idleTimeoutMs: 60000 },
    limits: { maxMessageBytes: 65536, maxSubscriptions: 100, rateLimit: { messagesPerSecond: 50, burst: 100 } },
  };
  const connect = (socket, message) => {
    if (refused.includes(server.sockets.indexOf(socket))) return socket.drop(4002, 'server busy', true);
    socket.burst([['connect', connectReply, message.requestId]]);
  };
  const server = fakeServer({ answers: { connect } });
  return server;
}

test('a close during the handshake is reported with the server\'s code and reason, and the next attempt connects', async (t) => {
  const server = busyServer([0, 1]);
  const c = client('ws://fake/ws', 't', { WebSocket: server.FakeSocket });
  t.after(() => c.close());
  const failures = [];
  c.on('attemptFailed', (f) => failures.push([f.attempt, f.code, f.reason]));
  await withTimeout(c.connect(), 5000, 'connect() after two failed attempts');
  assert.deepEqual(failures, [[1, 4002, 'server busy'], [2, 4002, 'server busy']]);
  assert.equal(server.sockets.length, 3);
});

test('failFast spares a lost connection: it is retried, and the count of attempts starts again', async (t) => {
  const server = busyServer([1]);
  const c = client('ws://fake/ws', 't', { WebSocket: server.FakeSocket, failFast: true });
  t.after(() => c.close());
  const failures = [];
  c.on('attemptFailed', (f) => failures.push([f.attempt, f.code, f.reason]));
  await withTimeout(c.connect(), 5000, 'connect()');
  server.sockets[0].drop(1001, 'going away', true);
  await until(c, ['state'], () => c.state === 'connected' && server.sockets.length === 3, 5000, 'the reconnection');
  // The lost connection is no failed attempt; the refused reconnection is the first of its run.
  assert.deepEqual(failures, [[1, 4002, 'server busy']]);
});

test('a refused token fails connect() with UNAUTHORIZED, reported without a close code', async (t) => {
  const { dir, cleanup } = tempDir();
  const server = await startServer(dir);
  t.after(async () => {
    await server.kill();
    cleanup();
  });
  const c = client(server.url, 'not-a-token');
  const failures = [];
  c.on('attemptFailed', (f) => failures.push([f.attempt, f.code, f.error.code]));
  const error = await rejection(c.connect(), 'connect()');
  assert.equal(error.code, 'UNAUTHORIZED');
  assert.deepEqual(failures, [[1, undefined, 'UNAUTHORIZED']]);
});

test('getToken returning null signs out: connect() rejects, and a connected client closes instead of reconnecting', async (t) => {
  const { dir, cleanup } = tempDir();
  const server = await startServer(dir);
  t.after(async () => {
    await server.kill();
    cleanup();
  });
  const never = client(server.url, () => null);
  const error = await rejection(never.connect(), 'connect() of a signed-out user');
  assert.equal(error.code, 'SIGNED_OUT');
  assert.equal(never.state, 'closed');

  let signedIn = true;
  const c = client(server.url, async () => (signedIn ? token(dir, 'alice') : null));
  const failures = [];
  c.on('attemptFailed', (f) => failures.push(f.error.code));
  let closedWith;
  c.on('state', (state, e) => {
    if (state === 'closed') closedWith = e;
  });
  await c.connect();
  await c.subscribe('order');
  signedIn = false;
  c.reconnect();
  const queued = c.read('order', 'X');
  await until(c, ['state'], () => c.state === 'closed', 10000, 'the client to close');
  assert.equal(closedWith?.code, 'SIGNED_OUT');
  assert.deepEqual(failures, ['SIGNED_OUT']);
  await assert.rejects(queued, (e) => e.code === 'CLOSED');
});

test('getToken returning null at a refresh before expiry closes the client with SIGNED_OUT', async (t) => {
  const server = fakeServer({ expiresInMs: 1500 });
  let calls = 0;
  const c = client('ws://fake/ws', () => ((calls += 1) === 1 ? 't1' : null), { WebSocket: server.FakeSocket, refreshBeforeExpiryMs: 1000 });
  t.after(() => c.close());
  let closedWith;
  c.on('state', (state, e) => {
    if (state === 'closed') closedWith = e;
  });
  await withTimeout(c.connect(), 5000, 'connect');
  await until(c, ['state'], () => c.state === 'closed', 5000, 'the refresh to sign out');
  assert.equal(closedWith?.code, 'SIGNED_OUT');
  assert.equal(calls, 2);
});

const UUID4 = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

for (const [what, crypto] of [
  ['crypto.getRandomValues only (a page on plain HTTP)', { getRandomValues: (array) => webcrypto.getRandomValues(array) }],
  ['no crypto at all (React Native)', undefined],
]) {
  test(`with ${what}, requests go out with distinct version 4 UUIDs as requestIds`, async (t) => {
    const { dir, cleanup } = tempDir();
    const server = await startServer(dir);
    const saved = Object.getOwnPropertyDescriptor(globalThis, 'crypto');
    Object.defineProperty(globalThis, 'crypto', { value: crypto, configurable: true, writable: true });
    const sent = [];
    class Spy extends WebSocket {
      send(text) {
        sent.push(JSON.parse(text));
        super.send(text);
      }
    }
    const c = client(server.url, token(dir, 'alice'), { WebSocket: Spy });
    t.after(async () => {
      Object.defineProperty(globalThis, 'crypto', saved);
      c.close();
      await server.kill();
      cleanup();
    });
    await c.connect();
    const order = await c.create('order', { productId: 'P1', quantity: 1, totalAmount: 1 });
    await c.read('order', order.id);
    await c.create('order', { productId: 'P2', quantity: 1, totalAmount: 1 });
    const ids = sent.filter((m) => m.requestId !== undefined).map((m) => m.requestId);
    assert.equal(ids.length, 5, JSON.stringify(sent.map((m) => m.type)));
    for (const id of ids) assert.match(id, UUID4);
    assert.equal(new Set(ids).size, ids.length);
  });
}
