// Subscription handles against a real `tidings serve`: handles of one topic or query share one server subscription
// by reference count, each with its own listeners and async iteration, and the server subscription ends with the
// last handle; the client's own callbacks keep hearing every event.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import WebSocket from 'ws';
import { q } from '../dist/index.js';
import { client, eventually, startServer, tempDir, token, withTimeout } from './helpers.mjs';

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

/** Creates an order of alice's with this product id; returns it. */
const create = (productId, extra = {}) => alice.create('order', { productId, quantity: 1, totalAmount: 10, ...extra });

/** An admin client that records the messages it sends and every event its on('event') hears. */
async function watcher(user) {
  const sent = [];
  class Recording extends WebSocket {
    send(text) {
      sent.push(JSON.parse(text));
      super.send(text);
    }
  }
  const c = client(server.url, token(data.dir, user, ['admin']), { WebSocket: Recording });
  const events = [];
  c.on('event', (e) => events.push(e));
  await c.connect();
  const sentOf = (type) => sent.filter((m) => m.type === type);
  return { c, events, sentOf };
}

/** Records what a handle's own listeners hear. */
function record(handle) {
  const heard = { event: [], gap: [], left: [] };
  for (const name of Object.keys(heard)) handle.on(name, (x) => heard[name].push(x));
  return heard;
}

/** Resolves once check() is true, re-checked whenever one of the handle's listeners named in `names` fires. */
function whenHandle(handle, names, check, what) {
  return withTimeout(
    new Promise((resolve) => {
      if (check()) return resolve();
      const offs = names.map((name) => handle.on(name, () => check() && (offs.forEach((off) => off()), resolve())));
    }),
    10000,
    what,
  );
}

test('two handles of one topic share one server subscription, and one unsubscribing does not silence the other', async (t) => {
  const { c, events, sentOf } = await watcher('ann');
  t.after(() => c.close());
  const [one, two] = [await c.subscribe('order'), await c.subscribe('order')];
  assert.equal(sentOf('subscribe').length, 1, 'one subscribe on the server');
  assert.equal(one.subscriptionId, two.subscriptionId);
  assert.deepEqual(c.subscriptions().map((s) => s.subscriptionId), ['order']);
  const [a, b] = [record(one), record(two)];

  const first = await create('H-1');
  await whenHandle(two, ['event'], () => b.event.length === 1, 'the second handle to hear the create');
  await whenHandle(one, ['event'], () => a.event.length === 1, 'the first handle to hear the create');
  assert.deepEqual([a.event[0].id, b.event[0].id], [first.id, first.id]);

  await one.unsubscribe();
  assert.equal(one.active, false);
  assert.equal(sentOf('unsubscribe').length, 0, 'the other handle still holds the subscription');
  await alice.update('order', first.id, { quantity: 2 });
  await whenHandle(two, ['event'], () => b.event.length === 2, 'the second handle to hear the update');
  assert.equal(a.event.length, 1, 'the first handle hears nothing once unsubscribed');
  // The client's own callback hears every event, once.
  assert.deepEqual(events.map((e) => e.eventType), ['order_created', 'order_updated']);

  await two.unsubscribe();
  assert.deepEqual(sentOf('unsubscribe').map((m) => m.payload), [{ subscriptionId: 'order' }]);
  assert.deepEqual(c.subscriptions(), []);
  await one.unsubscribe();
  assert.equal(sentOf('unsubscribe').length, 1, 'a second unsubscribe of a handle does nothing');
});

test('subscribes of one topic at once make one server subscription; a subscribe right after the last unsubscribe is no CONFLICT', async (t) => {
  const { c, sentOf } = await watcher('ben');
  t.after(() => c.close());
  const handles = await Promise.all([c.subscribe('order'), c.subscribe('order'), c.subscribe('order')]);
  assert.equal(sentOf('subscribe').length, 1);
  assert.equal(new Set(handles.map((h) => h.subscriptionId)).size, 1);
  // The unsubscribes are not awaited: the new subscribe must make a subscription of its own, not join the old one.
  const gone = Promise.all(handles.map((h) => h.unsubscribe()));
  const again = await c.subscribe('order');
  await gone;
  assert.equal(sentOf('subscribe').length, 2);
  assert.ok(again.active);
  const heard = record(again);
  const order = await create('H-AGAIN');
  await whenHandle(again, ['event'], () => heard.event.some((e) => e.id === order.id), 'the event on the new subscription');
});

test('a handle iterates over its events with for await, until it is unsubscribed or disposed', async (t) => {
  const { c, sentOf } = await watcher('cal');
  t.after(() => c.close());
  const handle = await c.subscribe('order');
  const other = await c.subscribe('order');
  const ids = [];
  const loop = (async () => {
    for await (const event of handle) ids.push(event.id);
    return 'finished';
  })();
  const made = [(await create('I-1')).id, (await create('I-2')).id];
  await eventually(async () => ids.length === 2, 10000, 'two events through the iteration');
  assert.deepEqual(ids, made);
  await handle.unsubscribe();
  assert.equal(await withTimeout(loop, 5000, 'the loop to finish'), 'finished');

  // Disposing the last handle unsubscribes on the server, as `using` does at the end of its block.
  assert.equal(typeof other[Symbol.dispose], 'function');
  other[Symbol.dispose]();
  assert.equal(other.active, false);
  await eventually(async () => sentOf('unsubscribe').length === 1, 10000, 'the unsubscribe of the disposed handle');
  assert.deepEqual(c.subscriptions(), []);
  const last = await c.subscribe('order');
  await last[Symbol.asyncDispose]();
  assert.equal(sentOf('unsubscribe').length, 2);
});

test('when the server ends a subscription, every handle hears left and its iteration finishes', async (t) => {
  const { c } = await watcher('dee');
  t.after(() => c.close());
  const order = await create('L-1');
  const one = await c.subscribe(`order:${order.id}`);
  const two = await c.subscribe(`order:${order.id}`);
  const [a, b] = [record(one), record(two)];
  const types = [];
  const loop = (async () => {
    for await (const event of one) types.push(event.eventType);
  })();
  const unsubscribed = [];
  c.on('unsubscribed', (u) => unsubscribed.push(u.reason.code));
  await alice.delete('order', order.id);
  await whenHandle(two, ['left'], () => b.left.length === 1, 'the second handle to hear left');
  await withTimeout(loop, 5000, 'the iteration to finish');
  assert.deepEqual(types, ['order_deleted']);
  assert.deepEqual([a.left[0].reason.code, b.left[0].reason.code], ['NOT_FOUND', 'NOT_FOUND']);
  assert.deepEqual(unsubscribed, ['NOT_FOUND'], 'the client\'s own callback hears it once');
  assert.deepEqual([one.active, two.active], [false, false]);
  // Unsubscribing a handle that left asks nothing of the server.
  await one.unsubscribe();
});

test('client.unsubscribe(topic) ends the subscription of every handle, each of which hears left', async (t) => {
  const { c, sentOf } = await watcher('eve');
  t.after(() => c.close());
  const [one, two] = [await c.subscribe('order'), await c.subscribe('order')];
  const [a, b] = [record(one), record(two)];
  await c.unsubscribe('order');
  assert.equal(sentOf('unsubscribe').length, 1);
  // A handle hears left after what it holds for its caller, which it lets go of in a later task.
  await whenHandle(one, ['left'], () => a.left.length === 1, 'the first handle to hear left');
  await whenHandle(two, ['left'], () => b.left.length === 1, 'the second handle to hear left');
  assert.equal(a.left[0].reason.code, 'CLOSED');
  assert.deepEqual(c.subscriptions(), []);
});

test('a second handle of a query with a snapshot gets its items from a list; a since below the subscription\'s is refused', async (t) => {
  const { c, sentOf } = await watcher('fay');
  t.after(() => c.close());
  const query = q.and(q.eq('data.status', 'pending'), q.prefix('data.productId', 'Q-'));
  const before = [(await create('Q-1')).id, (await create('Q-2')).id];
  const one = await c.subscribe('order', { query, snapshot: true });
  const later = (await create('Q-3')).id;
  const two = await c.subscribe('order', { query: q.and(q.prefix('data.productId', 'Q-'), q.eq('data.status', 'pending')), snapshot: true });
  assert.equal(sentOf('subscribe').length, 1);
  assert.equal(two.subscriptionId, one.subscriptionId);
  assert.deepEqual(one.items.map((r) => r.id), before);
  assert.deepEqual(two.items.map((r) => r.id), [...before, later], 'the list reads what matches now');
  assert.equal(two.nextCursor, null);
  assert.ok(sentOf('read').some((m) => m.payload.resourceType === 'order' && m.payload.query !== undefined));

  const heard = [record(one), record(two)];
  const next = (await create('Q-4')).id;
  await whenHandle(two, ['event'], () => heard[1].event.some((e) => e.id === next), 'the second handle to hear Q-4');
  await whenHandle(one, ['event'], () => heard[0].event.some((e) => e.id === next), 'the first handle to hear Q-4');

  const refused = await c.subscribe('order', { query, since: 0 }).catch((e) => e);
  assert.equal(refused.code, 'CONFLICT', String(refused));
  assert.equal(refused.details.subscriptionId, one.subscriptionId);
});
