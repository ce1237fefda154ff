// Atomic batches (protocol 1.2) through client.batch: against a real `tidings serve`, a batch that applies with its
// events, one that fails at its third operation and applies nothing, one whose reply is lost to a reconnect and is
// applied once, and one repeated with its requestId; with the fake server, the refusal of a server that states 1.1.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import WebSocket from 'ws';
import { createClient, TidingsError } from '../dist/index.js';
import { fakeServer } from './fake.mjs';
import { client, startServer, tempDir, token, withTimeout } from './helpers.mjs';

let server;
let data;
let alice;

before(async () => {
  data = tempDir();
  server = await startServer(data.dir);
  alice = client(server.url, token(data.dir, 'alice'));
  await alice.connect();
});

after(async () => {
  alice?.close();
  await server?.kill('SIGTERM');
  data?.cleanup();
});

/** The TidingsError a promise rejects with. */
async function failure(promise) {
  try {
    await promise;
  } catch (error) {
    assert.ok(error instanceof TidingsError, `not a TidingsError: ${error}`);
    return error;
  }
  assert.fail('the request succeeded');
}

/** An order of alice's with this product id. */
const order = (productId, quantity = 1) => alice.create('order', { productId, quantity, totalAmount: 10 });

/** Resolves with the first `count` events a handle hears from now on. */
function nextEvents(handle, count, what) {
  const heard = [];
  return withTimeout(
    new Promise((resolve) => {
      const off = handle.on('event', (e) => {
        heard.push(e);
        if (heard.length === count) (off(), resolve(heard));
      });
    }),
    5000,
    what,
  );
}

test('a batch applies every operation: results in order, read back, and events at consecutive seqs', async () => {
  const kept = await order('B-kept');
  const doomed = await order('B-doomed');
  const sub = await alice.subscribe('order');
  const events = nextEvents(sub, 3, 'the three events of the batch');
  const results = await alice.batch([
    { op: 'create', resourceType: 'order', data: { productId: 'B-new', quantity: 2, totalAmount: 20 } },
    { op: 'update', resourceType: 'order', id: kept.id, patch: { quantity: 3 }, expectedVersion: 1 },
    { op: 'delete', resourceType: 'order', id: doomed.id },
  ]);
  assert.deepEqual(results.map((r) => r.op), ['create', 'update', 'delete']);
  const [created, updated, deleted] = results;
  assert.equal(created.ownerId, 'alice');
  assert.deepEqual(created.data, { productId: 'B-new', quantity: 2, totalAmount: 20, status: 'pending' });
  assert.equal(updated.id, kept.id);
  assert.equal(updated.version, 2);
  assert.equal(updated.data.quantity, 3);
  assert.equal(deleted.id, doomed.id);
  assert.equal(deleted.version, 2);
  assert.equal(typeof deleted.deletedAt, 'number');

  // What the server holds now is what the results say.
  const { op: _op, ...resource } = created;
  assert.deepEqual(await alice.read('order', created.id), resource);
  assert.equal((await alice.read('order', kept.id)).version, 2);
  assert.equal((await failure(alice.read('order', doomed.id))).code, 'NOT_FOUND');

  // One event per operation, in their order, and nothing of another change between them (7.8).
  const heard = await events;
  assert.deepEqual(heard.map((e) => [e.eventType, e.id]), [
    ['order_created', created.id],
    ['order_updated', kept.id],
    ['order_deleted', doomed.id],
  ]);
  assert.deepEqual(heard.map((e) => e.seq - heard[0].seq), [0, 1, 2]);
  await sub.unsubscribe();
});

test('a batch whose third operation fails rejects with details.index 2 and applies nothing', async () => {
  const first = await order('F-first');
  const second = await order('F-second');
  const sub = await alice.subscribe('order');
  const heard = [];
  sub.on('event', (e) => heard.push(e));
  const error = await failure(
    alice.batch([
      { op: 'create', resourceType: 'order', data: { productId: 'F-never', quantity: 1, totalAmount: 1 } },
      { op: 'update', resourceType: 'order', id: first.id, patch: { quantity: 7 } },
      { op: 'update', resourceType: 'order', id: second.id, patch: { quantity: 9 }, expectedVersion: 5 },
    ]),
  );
  assert.equal(error.code, 'CONFLICT');
  assert.equal(error.details.index, 2);
  assert.equal(error.details.currentVersion, 1);
  assert.equal(typeof error.requestId, 'string');

  // Read back: neither the create nor the update before the failing operation was applied.
  assert.deepEqual((await alice.list('order', { filter: { productId: 'F-never' } })).items, []);
  assert.deepEqual(await alice.read('order', first.id), first);
  assert.deepEqual(await alice.read('order', second.id), second);
  // And no event came of it: events of a topic arrive in order, so one from the batch would come before this one's.
  const markerHeard = new Promise((r) => sub.on('event', (e) => e.data.productId === 'F-marker' && r()));
  const marker = await order('F-marker');
  await withTimeout(markerHeard, 5000, 'the marker event');
  assert.deepEqual(heard.map((e) => [e.eventType, e.id]), [['order_created', marker.id]]);
  await sub.unsubscribe();

  // A field error points into its operation.
  const invalid = await failure(
    alice.batch([
      { op: 'update', resourceType: 'order', id: first.id, patch: { quantity: 2 } },
      { op: 'create', resourceType: 'order', data: { productId: 'F-bad', quantity: 0, totalAmount: 1 } },
    ]),
  );
  assert.equal(invalid.code, 'INVALID_PARAMS');
  assert.equal(invalid.details.index, 1);
  assert.deepEqual(invalid.errors.map((e) => e.pointer), ['/payload/operations/1/data/quantity']);
  assert.equal((await alice.read('order', first.id)).version, 1);
});

test('a batch whose reply is lost to a reconnect goes out again with its requestId and is applied once', async (t) => {
  const sent = [];
  let c;
  let lost = false;
  // A socket that loses the first batch reply, as a link that fails after the server answered: the server has
  // applied the batch, and the client never hears of it on that connection.
  class Lossy extends WebSocket {
    send(text) {
      sent.push(JSON.parse(text));
      super.send(text);
    }
    get onmessage() {
      return super.onmessage;
    }
    set onmessage(handler) {
      super.onmessage =
        handler === null
          ? null
          : (event) => {
              const message = JSON.parse(String(event.data));
              if (!lost && message.type === 'batch') {
                lost = true;
                return void queueMicrotask(() => c.reconnect());
              }
              handler(event);
            };
    }
  }
  c = client(server.url, token(data.dir, 'alice'), { WebSocket: Lossy });
  t.after(() => c.close());
  const states = [];
  c.on('state', (s) => states.push(s));
  await c.connect();
  const target = await order('R-target');
  // The update has no expectedVersion: applied twice, it would leave the order at version 3.
  const results = await withTimeout(
    c.batch([
      { op: 'create', resourceType: 'order', data: { productId: 'R-once', quantity: 1, totalAmount: 1 } },
      { op: 'update', resourceType: 'order', id: target.id, patch: { quantity: 4 } },
    ]),
    10000,
    'the batch after the reconnect',
  );
  assert.ok(lost, 'the first reply was lost');
  assert.ok(states.includes('reconnecting'), `the client reconnected: ${states}`);
  const batches = sent.filter((m) => m.type === 'batch');
  assert.equal(batches.length, 2, 'sent once per connection');
  assert.equal(typeof batches[0].requestId, 'string');
  assert.equal(batches[1].requestId, batches[0].requestId);
  assert.deepEqual(batches[1].payload, batches[0].payload);

  // The second answer is the first batch's results, and the server holds what one batch made.
  assert.equal(results[1].version, 2);
  const once = await alice.list('order', { filter: { productId: 'R-once' } });
  assert.deepEqual(once.items.map((r) => r.id), [results[0].id]);
  const now = await alice.read('order', target.id);
  assert.equal(now.version, 2);
  assert.equal(now.data.quantity, 4);
});

test('a batch repeated with its requestId applies nothing again; other operations under it are CONFLICT', async () => {
  const target = await order('Q-target');
  const requestId = `batch-${Date.now()}`;
  const operations = [
    { op: 'create', resourceType: 'order', data: { productId: 'Q-once', quantity: 1, totalAmount: 1 } },
    { op: 'update', resourceType: 'order', id: target.id, patch: { quantity: 6 } },
  ];
  const first = await alice.batch(operations, { requestId });
  // From another connection of the same user, as a retry after a restart of the app would be.
  const again = client(server.url, token(data.dir, 'alice'));
  try {
    await again.connect();
    assert.deepEqual(await again.batch(operations, { requestId }), first);
    const reused = await failure(again.batch([operations[0]], { requestId }));
    assert.equal(reused.code, 'CONFLICT');
    assert.equal(reused.details.reason, 'request_id_reused');
  } finally {
    again.close();
  }
  assert.equal((await alice.list('order', { filter: { productId: 'Q-once' } })).items.length, 1);
  assert.equal((await alice.read('order', target.id)).version, 2);
});

test('with a server that states 1.1, batch fails at once with UNSUPPORTED_VERSION and nothing is sent', async (t) => {
  const old = fakeServer({ protocolVersion: '1.1' });
  const c = createClient({ url: 'ws://fake/ws', token: 't', WebSocket: old.FakeSocket });
  t.after(() => c.close());
  await withTimeout(c.connect(), 5000, 'connect');
  const error = await failure(c.batch([{ op: 'delete', resourceType: 'order', id: 'ORD-1' }]));
  assert.equal(error.code, 'UNSUPPORTED_VERSION');
  assert.equal(error.details.serverVersion, '1.1');
  assert.match(error.message, /batch needs 1\.2 or later/);
  await c.ping();
  assert.deepEqual(old.sentOf('batch'), []);

  // The same call to a server that states 1.2 goes out, with a requestId, and resolves with its results.
  const deleted = { op: 'delete', resourceType: 'order', id: 'ORD-1', version: 2, deletedAt: 1764000000000 };
  const answers = { batch: (socket, { requestId }) => socket.burst([['batch', { results: [deleted] }, requestId]]) };
  const current = fakeServer({ protocolVersion: '1.2', answers });
  const d = createClient({ url: 'ws://fake/ws', token: 't', WebSocket: current.FakeSocket });
  t.after(() => d.close());
  await withTimeout(d.connect(), 5000, 'connect');
  assert.deepEqual(await d.batch([{ op: 'delete', resourceType: 'order', id: 'ORD-1' }]), [deleted]);
  const [message] = current.sentOf('batch');
  assert.equal(typeof message.requestId, 'string');
  assert.deepEqual(message.payload, { operations: [{ op: 'delete', resourceType: 'order', id: 'ORD-1' }] });
});
