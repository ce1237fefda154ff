// Optimistic and offline writes against a real `tidings serve`: a write shows at once in live collections, flagged
// pending, writes made offline wait in the outbox and go out in order, a write whose reply was lost is sent again with
// its requestId and applied once, and a refused write (CONFLICT, INVALID_PARAMS) is rolled back.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import WebSocket from 'ws';
import { memoryOutbox, q } from '../dist/index.js';
import { client, eventually, gate, startServer, tempDir, token, until, withTimeout } from './helpers.mjs';

let server;
let data;
/** Alice without an outbox: the server's word on what exists, beside the clients under test. */
let witness;

before(async () => {
  data = tempDir();
  server = await startServer(data.dir);
  witness = client(server.url, token(data.dir, 'alice'));
  await witness.connect();
});

after(async () => {
  witness?.close();
  await server?.kill('SIGTERM');
  data?.cleanup();
});

/** The orders the server holds whose product id is this one. */
const ordersOf = async (productId) => (await witness.list('order', { filter: { productId } })).items;

/** An order of alice's, made without the outbox. */
const order = (productId, extra = {}) => witness.create('order', { productId, quantity: 1, totalAmount: 10, ...extra });

/** The rejection of a promise that must fail. */
async function failure(promise) {
  try {
    await promise;
  } catch (error) {
    return error;
  }
  assert.fail('expected a rejection');
}

/** Resolves once check() holds, re-checked at every change the store reports. */
function whenStore(store, check, what, timeoutMs = 10000) {
  return withTimeout(
    new Promise((resolve) => {
      if (check()) return resolve();
      const off = store.subscribe(() => check() && (off(), resolve()));
    }),
    timeoutMs,
    what,
  );
}

/**
 * A WebSocket class that records what the client sends, and with `lose` (message types), loses the first reply of
 * one of those types, then drops the connection (of the client `c()` returns), as a link that fails after the
 * server answered: the server applied the write, and the client never heard of it on that connection.
 */
function lossy(lose = [], c = undefined) {
  const sent = [];
  let lost = false;
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
              if (!lost && lose.includes(message.type) && message.requestId !== undefined) {
                lost = true;
                return void queueMicrotask(() => c().reconnect());
              }
              handler(event);
            };
    }
  }
  return { Lossy, sent, sentOf: (type) => sent.filter((m) => m.type === type), lost: () => lost };
}

/** A client of alice's with a memory outbox (unless given another), connected, whose reconnections wait on a gate. */
async function writer(t, extra = {}) {
  const held = gate();
  const c = client(server.url, token(data.dir, 'alice'), { outbox: memoryOutbox(), retryWait: held.retryWait, ...extra });
  t.after(() => c.close());
  await c.connect();
  return { c, held };
}

/** Takes the client offline: its link drops, and it does not come back until held.open(). */
async function offline(c, held) {
  held.shut();
  c.reconnect();
  await until(c, ['state'], () => c.state === 'reconnecting', 5000, 'the client to be offline');
}

test('a create shows at once in a live collection, pending under its temporary id, until the reply replaces it', async (t) => {
  const { c } = await writer(t);
  const live = c.live('order', q.prefix('data.productId', 'A-'));
  t.after(() => live.close());
  await whenStore(live, () => live.status === 'live', 'the collection to be live');
  const events = [];
  c.on('confirmed', (write, result) => events.push([write.requestId, result.id]));
  // What a view would draw at each change the collection reports.
  const rendered = [];
  live.subscribe(() => rendered.push(live.getSnapshot().map((r) => `${r.id}${r.pending ? ' pending' : ''}`)));

  const created = c.create('order', { productId: 'A-1', quantity: 2, totalAmount: 20 }, { requestId: 'a-one' });
  // Shown before anything reached the server.
  const [shown] = live.getSnapshot();
  assert.equal(shown.id, 'pending:a-one');
  assert.equal(shown.pending, true);
  assert.equal(shown.version, 0);
  assert.equal(shown.ownerId, 'alice');
  assert.deepEqual(shown.data, { productId: 'A-1', quantity: 2, totalAmount: 20 });
  assert.deepEqual(live.get('pending:a-one'), shown);
  assert.deepEqual(c.pendingWrites().map((w) => [w.requestId, w.kind, w.id]), [['a-one', 'create', 'pending:a-one']]);

  const resource = await created;
  // The reply is applied at once: the same item under the server's id, no longer pending, and never twice; it is
  // never missing in between, whether or not the server's event came first.
  assert.deepEqual(live.getSnapshot(), [resource]);
  assert.deepEqual(rendered, [['pending:a-one pending'], [resource.id]]);
  assert.equal(live.get(resource.id).pending, undefined);
  assert.equal(live.get('pending:a-one'), undefined);
  assert.deepEqual(c.pendingWrites(), []);
  assert.deepEqual(events, [['a-one', resource.id]]);
  // The event that follows changes nothing.
  const other = await order('A-2');
  await whenStore(live, () => live.get(other.id) !== undefined, 'a later create');
  assert.deepEqual(live.getSnapshot().map((r) => r.id), [resource.id, other.id]);
});

test('writes made offline show at once, wait in the outbox, and go out in order with their requestIds', async (t) => {
  const kept = await order('B-KEPT');
  const gone = await order('B-GONE');
  const recorded = lossy();
  const { c, held } = await writer(t, { WebSocket: recorded.Lossy });
  const live = c.live('order', q.prefix('data.productId', 'B-'));
  t.after(() => live.close());
  await whenStore(live, () => live.status === 'live' && live.getSnapshot().length === 2, 'the collection to hold both');
  await offline(c, held);

  const results = Promise.all([
    c.create('order', { productId: 'B-NEW', quantity: 1, totalAmount: 5 }),
    c.update('order', kept.id, { quantity: 5 }, { expectedVersion: 1 }),
    c.delete('order', gone.id),
  ]);
  const [create] = c.pendingWrites();
  // An update of the pending create: it goes after the create, with the server's id.
  const follow = c.update('order', create.id, { quantity: 7 }, { expectedVersion: 0 });
  const shown = new Map(live.getSnapshot().map((r) => [r.id, r]));
  assert.deepEqual([...shown.keys()].sort(), [create.id, kept.id].sort(), 'the delete shows as the order gone');
  assert.equal(shown.get(kept.id).data.quantity, 5);
  assert.equal(shown.get(kept.id).version, 1, 'the version stays the server\'s');
  assert.equal(shown.get(kept.id).pending, true);
  assert.equal(shown.get(create.id).data.quantity, 7, 'the update of the pending create shows on it');
  const queued = c.pendingWrites();
  assert.deepEqual(queued.map((w) => w.kind), ['create', 'update', 'delete', 'update']);
  assert.equal(queued[3].expectedVersion, undefined, 'a write of a pending create goes at any version');
  // Nothing reached the server.
  assert.deepEqual(await ordersOf('B-NEW'), []);
  assert.equal((await witness.read('order', kept.id)).version, 1);

  held.open();
  const [made, changed, deleted] = await withTimeout(results, 10000, 'the writes to be applied');
  const after = await withTimeout(follow, 10000, 'the update of the created order');
  assert.equal(changed.version, 2);
  assert.equal(deleted.id, gone.id);
  assert.equal(after.id, made.id);
  assert.equal(after.data.quantity, 7);
  assert.deepEqual((await ordersOf('B-NEW')).map((r) => [r.id, r.version]), [[made.id, 2]]);
  assert.deepEqual(await ordersOf('B-GONE'), []);

  // In order, each with the requestId it was queued with; updates and deletes as batches of one, which the server
  // remembers by requestId as it remembers a create.
  const writes = recorded.sent.filter((m) => m.type === 'create' || m.type === 'batch');
  assert.deepEqual(writes.map((m) => m.requestId), queued.map((w) => w.requestId));
  assert.deepEqual(writes.map((m) => m.type), ['create', 'batch', 'batch', 'batch']);
  assert.deepEqual(writes[3].payload.operations, [{ op: 'update', resourceType: 'order', id: made.id, patch: { quantity: 7 } }]);
  await whenStore(live, () => live.getSnapshot().every((r) => !r.pending) && live.get(made.id)?.version === 2, 'the collection to settle');
  assert.deepEqual(live.getSnapshot().map((r) => [r.id, r.version]).sort(), [[kept.id, 2], [made.id, 2]].sort());
  assert.deepEqual(c.pendingWrites(), []);
});

test('a create whose reply is lost is sent again with its requestId after the reconnect, and makes one order', async (t) => {
  let c;
  const recorded = lossy(['create'], () => c);
  ({ c } = await writer(t, { WebSocket: recorded.Lossy }));
  const live = c.live('order', q.eq('data.productId', 'C-ONCE'));
  t.after(() => live.close());
  await whenStore(live, () => live.status === 'live', 'the collection to be live');

  const made = await withTimeout(c.create('order', { productId: 'C-ONCE', quantity: 1, totalAmount: 1 }), 10000, 'the create');
  assert.ok(recorded.lost(), 'the first reply was lost');
  const creates = recorded.sentOf('create');
  assert.equal(creates.length, 2, 'sent once per connection');
  assert.equal(creates[1].requestId, creates[0].requestId);
  assert.deepEqual(creates[1].payload, creates[0].payload);
  assert.deepEqual((await ordersOf('C-ONCE')).map((r) => r.id), [made.id], 'one order on the server');
  await whenStore(live, () => live.status === 'live', 'the collection to be live again');
  assert.deepEqual(live.getSnapshot().map((r) => r.id), [made.id], 'one order in the collection');
});

test('an update and a delete whose replies are lost are answered with the first reply, not applied twice', async (t) => {
  const target = await order('D-TARGET');
  const doomed = await order('D-DOOMED');
  let c;
  // Whatever an update goes out as, its reply is the one lost.
  const recorded = lossy(['batch', 'update', 'delete'], () => c);
  const { c: made, held } = await writer(t, { WebSocket: recorded.Lossy });
  c = made;
  const rejected = [];
  c.on('rejected', (error) => rejected.push(error.code));
  // The reply to the update is lost and the client stays away while an admin changes the order: applied again
  // on the next connection, the update would undo the admin's change.
  held.shut();
  const update = c.update('order', target.id, { quantity: 4 });
  await until(c, ['state'], () => c.state === 'reconnecting', 5000, 'the lost reply to drop the link');
  const admin = client(server.url, token(data.dir, 'root', ['admin']));
  t.after(() => admin.close());
  await admin.connect();
  assert.equal((await admin.read('order', target.id)).data.quantity, 4, 'the server applied the update');
  await admin.update('order', target.id, { quantity: 9 });
  held.open();
  const first = await withTimeout(update, 10000, 'the update');
  assert.equal(first.version, 2, 'the first reply');
  const now = await witness.read('order', target.id);
  assert.deepEqual([now.version, now.data.quantity], [3, 9], 'the admin\'s change stands');
  const batches = recorded.sentOf('batch');
  assert.equal(batches.length, 2, 'sent as a batch of one, once per connection');
  assert.equal(batches[1].requestId, batches[0].requestId);

  // A delete sent again as a plain delete would be NOT_FOUND; the batch's receipt answers with the first reply.
  const lostAgain = lossy(['batch', 'update', 'delete'], () => c);
  const d = client(server.url, token(data.dir, 'alice'), { outbox: memoryOutbox(), WebSocket: lostAgain.Lossy });
  c = d;
  t.after(() => d.close());
  d.on('rejected', (error) => rejected.push(error.code));
  await d.connect();
  const deleted = await withTimeout(d.delete('order', doomed.id, { expectedVersion: 1 }), 10000, 'the delete');
  assert.equal(deleted.version, 2);
  assert.equal(lostAgain.sentOf('batch').length, 2);
  assert.deepEqual(await ordersOf('D-DOOMED'), []);
  assert.deepEqual(rejected, []);
});

test('a CONFLICT rolls the pending update back: the collection shows the server\'s order, and the app hears why', async (t) => {
  const target = await order('E-CONFLICT');
  const { c, held } = await writer(t);
  const live = c.live('order', q.eq('data.productId', 'E-CONFLICT'));
  t.after(() => live.close());
  await whenStore(live, () => live.status === 'live' && live.get(target.id) !== undefined, 'the collection to hold the order');
  const rejected = [];
  c.on('rejected', (error, write) => rejected.push([error.code, write.kind, write.id]));
  // What a view would show: the order as the collection has it at each change it reports.
  const rendered = [];
  live.subscribe(() => rendered.push(live.get(target.id)));

  await offline(c, held);
  // Someone else changes the order while this client is away.
  await witness.update('order', target.id, { quantity: 3 });
  const update = c.update('order', target.id, { quantity: 9 }, { expectedVersion: 1 });
  assert.equal(rendered.at(-1).data.quantity, 9, 'shown at once');
  assert.equal(rendered.at(-1).pending, true);

  held.open();
  const error = await withTimeout(failure(update), 10000, 'the refusal');
  assert.equal(error.code, 'CONFLICT');
  assert.equal(error.details.currentVersion, 2);
  assert.equal(error.details.index, undefined, 'the error of the write itself, not of a batch');
  assert.deepEqual(rejected, [['CONFLICT', 'update', target.id]]);
  // The collection reports the rollback, and what it shows then is the server's order.
  const settled = () => rendered.at(-1)?.version === 2 && rendered.at(-1).pending === undefined;
  await whenStore(live, settled, 'the collection to report the server\'s order');
  assert.equal(rendered.at(-1).data.quantity, 3);
  assert.deepEqual(c.pendingWrites(), []);
});

test('a refused create is rolled back with the writes made to it; field errors point into the write', async (t) => {
  const target = await order('F-TARGET');
  const { c, held } = await writer(t);
  const live = c.live('order', q.prefix('data.productId', 'F-'));
  t.after(() => live.close());
  await whenStore(live, () => live.status === 'live' && live.getSnapshot().length === 1, 'the collection');
  await offline(c, held);
  const create = c.create('order', { productId: 'F-BAD', quantity: 0, totalAmount: 1 });
  const pendingId = c.pendingWrites()[0].id;
  const follow = c.update('order', pendingId, { quantity: 2 });
  const bad = c.update('order', target.id, { quantity: 0 });
  assert.equal(live.getSnapshot().length, 2);

  held.open();
  const refused = await withTimeout(failure(create), 10000, 'the create to be refused');
  assert.equal(refused.code, 'INVALID_PARAMS');
  assert.deepEqual(refused.errors.map((e) => e.pointer), ['/payload/data/quantity']);
  const dependent = await failure(follow);
  assert.equal(dependent.code, 'NOT_FOUND');
  assert.equal(dependent.details.id, pendingId);
  const invalid = await withTimeout(failure(bad), 10000, 'the update to be refused');
  assert.equal(invalid.code, 'INVALID_PARAMS');
  assert.deepEqual(invalid.errors.map((e) => e.pointer), ['/payload/patch/quantity'], 'as an update\'s own error would say');
  await whenStore(live, () => live.getSnapshot().length === 1 && !live.getSnapshot()[0].pending, 'the rollback');
  assert.deepEqual(live.getSnapshot(), [target]);
  assert.deepEqual(await ordersOf('F-BAD'), []);
});

test('writes made as one user are not sent as another: USER_CHANGED, and nothing is written', async (t) => {
  const outbox = memoryOutbox();
  const held = gate();
  const alice = client(server.url, token(data.dir, 'alice'), { outbox, retryWait: held.retryWait });
  t.after(() => alice.close());
  await alice.connect();
  await offline(alice, held);
  void alice.create('order', { productId: 'G-ALICE', quantity: 1, totalAmount: 1 }).catch(() => undefined);
  alice.close();
  await eventually(async () => (await outbox.load()).length === 1, 5000, 'the write to be in the outbox');

  const bob = client(server.url, token(data.dir, 'bob'), { outbox });
  t.after(() => bob.close());
  const rejected = new Promise((resolve) => bob.on('rejected', (error, write) => resolve([error.code, write.userId])));
  await bob.connect();
  assert.deepEqual(await withTimeout(rejected, 10000, 'the refusal'), ['USER_CHANGED', 'alice']);
  assert.deepEqual(await outbox.load(), []);
  assert.deepEqual(await ordersOf('G-ALICE'), []);
});
