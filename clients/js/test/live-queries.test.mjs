// Query subscriptions and queries through the SDK against a real `tidings serve`: enters and leaves, a plain topic
// beside queries of it, a resume that brings exactly what a query missed, snapshots, and lists by query.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import WebSocket from 'ws';
import { q } from '../dist/index.js';
import { client, eventually, gate, startServer, tempDir, token, until } from './helpers.mjs';

let server;
let data;
let alice;
let admin;

before(async () => {
  data = tempDir();
  server = await startServer(data.dir);
  alice = client(server.url, token(data.dir, 'alice'));
  admin = client(server.url, token(data.dir, 'root', ['admin']));
  await Promise.all([alice.connect(), admin.connect()]);
});

after(async () => {
  for (const c of [alice, admin]) c?.close();
  await server?.kill('SIGTERM');
  data?.cleanup();
});

const pending = q.eq('data.status', 'pending');

/** Creates an order of alice's with this product id; returns its id. */
async function create(productId, extra = {}) {
  return (await alice.create('order', { productId, quantity: 1, totalAmount: 10, ...extra })).id;
}

/** A client of the admin role that records its events, and the subscribe messages it sends. */
async function watcher(user, extra = {}) {
  const sent = [];
  class Recording extends WebSocket {
    send(text) {
      sent.push(JSON.parse(text));
      super.send(text);
    }
  }
  const c = client(server.url, token(data.dir, user, ['admin']), { WebSocket: Recording, ...extra });
  const events = [];
  c.on('event', (e) => events.push(e));
  await c.connect();
  return { c, events, sent };
}

/** An event as [eventType, id, reason], for comparing a run of them at once. */
const seen = (e) => [e.eventType, e.id, e.reason ?? null];

test('a query subscription hears of creates, leaves, enters, updates and deletions as the server sends them', async (t) => {
  const { c, events } = await watcher('olga');
  t.after(() => c.close());
  const sub = await c.subscribe('order', { query: pending });
  assert.match(sub.subscriptionId, /^order\?[0-9a-f]{16}$/);
  assert.equal(sub.topic, 'order');
  assert.deepEqual(sub.query, pending);
  assert.equal(sub.items, undefined, 'no snapshot was asked for');

  const id = await create('P-EVENTS');
  await admin.update('order', id, { status: 'shipped' });
  // Changes outside the query are not heard of.
  await admin.update('order', id, { quantity: 5 });
  await admin.update('order', id, { status: 'paid' });
  await admin.update('order', id, { status: 'pending' });
  await alice.update('order', id, { quantity: 6 });
  await alice.delete('order', id);
  await until(c, ['event'], () => events.length >= 5, 10000, 'five events');
  assert.deepEqual(events.map(seen), [
    ['order_created', id, null],
    ['order_left', id, 'unmatched'],
    ['order_entered', id, null],
    ['order_updated', id, null],
    ['order_left', id, 'deleted'],
  ]);
  assert.ok(events.every((e) => e.subscriptionId === sub.subscriptionId && e.topic === 'order'));
  // A leave says what made it leave; an enter carries the whole resource.
  assert.equal(events[1].data.status, 'shipped');
  assert.deepEqual([events[2].data.quantity, events[2].data.productId, events[2].version], [5, 'P-EVENTS', 5]);
  assert.deepEqual(c.subscriptions().map((s) => [s.subscriptionId, s.lastSeq]), [[sub.subscriptionId, events[4].seq]]);
});

test('the plain topic and queries of it coexist, each event goes to its own, and each ends alone', async (t) => {
  const { c, events } = await watcher('pat');
  t.after(() => c.close());
  const plain = await c.subscribe('order');
  const big = q.and(q.eq('data.status', 'pending'), q.gt('data.quantity', 1));
  const query = await c.subscribe('order', { query: big });
  const shipped = await c.subscribe('order', { query: q.eq('data.status', 'shipped') });
  assert.equal(plain.subscriptionId, 'order');
  assert.notEqual(query.subscriptionId, shipped.subscriptionId);
  assert.deepEqual(c.subscriptions().map((s) => s.subscriptionId).sort(), ['order', query.subscriptionId, shipped.subscriptionId].sort());
  // The same query again, its terms in another order, is the same subscription: the new handle shares it.
  const again = await c.subscribe('order', { query: q.and(q.gt('data.quantity', 1), q.eq('data.status', 'pending')) });
  assert.equal(again.subscriptionId, query.subscriptionId);
  assert.equal(c.subscriptions().length, 3, 'no fourth subscription');
  await again.unsubscribe();

  const id = await create('P-BOTH');
  await alice.update('order', id, { quantity: 3 });
  await admin.update('order', id, { status: 'shipped' });
  await until(c, ['event'], () => events.length >= 6, 10000, 'six events');
  const by = (s) => events.filter((e) => e.subscriptionId === s.subscriptionId).map((e) => e.eventType);
  assert.deepEqual(by(plain), ['order_created', 'order_updated', 'order_updated']);
  assert.deepEqual(by(query), ['order_entered', 'order_left']);
  assert.deepEqual(by(shipped), ['order_entered']);

  // Ending a query (by the Subscription, or by topic and query) leaves the plain topic and the other query.
  await c.unsubscribe(query);
  await c.unsubscribe('order', { query: q.eq('data.status', 'shipped') });
  assert.deepEqual(c.subscriptions().map((s) => s.subscriptionId), ['order']);
  const gone = await c.unsubscribe('order', { query: big }).catch((e) => e);
  assert.equal(gone.code, 'NOT_FOUND');
  const before = events.length;
  await alice.update('order', id, { quantity: 4 });
  await until(c, ['event'], () => events.length > before, 10000, 'the plain topic\'s event');
  assert.deepEqual(events.slice(before).map((e) => [e.subscriptionId, e.eventType]), [['order', 'order_updated']]);
  await c.unsubscribe('order');
  assert.deepEqual(c.subscriptions(), []);
});

test('a reconnect resumes a query subscription with its query and since, and brings exactly what it missed', async (t) => {
  const door = gate();
  const { c, events, sent } = await watcher('quinn', { retryWait: door.retryWait });
  t.after(() => c.close());
  const sub = await c.subscribe('order', { query: pending });
  const stays = await create('P-STAYS');
  const ships = await create('P-SHIPS');
  const paid = await create('P-PAID');
  await admin.update('order', paid, { status: 'paid' });
  await until(c, ['event'], () => events.length >= 4, 10000, 'the events before the drop');
  const since = c.subscriptions()[0].lastSeq;
  events.length = 0;

  // Away: the client cannot come back until the gate opens, so what happens now comes only by the replay.
  door.shut();
  c.reconnect();
  const born = await create('P-BORN');
  await admin.update('order', ships, { status: 'shipped' });
  await admin.update('order', paid, { quantity: 9 });
  await admin.update('order', paid, { status: 'pending' });
  await alice.update('order', stays, { quantity: 2 });
  await alice.delete('order', born);
  door.open();
  await until(c, ['event'], () => events.length >= 5, 10000, 'the replay');
  assert.deepEqual(events.map(seen), [
    ['order_created', born, null],
    ['order_left', ships, 'unmatched'],
    ['order_entered', paid, null],
    ['order_updated', stays, null],
    ['order_left', born, 'deleted'],
  ]);
  assert.ok(events.every((e, i) => e.seq > (i === 0 ? since : events[i - 1].seq)), 'in seq order, after since');
  const resumed = sent.filter((m) => m.type === 'subscribe').at(-1).payload;
  assert.deepEqual(resumed, { topic: 'order', since, query: pending }, 'no snapshot asked for on resume');
  assert.deepEqual(c.subscriptions().map((s) => [s.subscriptionId, s.recovered]), [[sub.subscriptionId, true]]);

  // Then live, with nothing in between.
  const live = await create('P-LIVE');
  await until(c, ['event'], () => events.length >= 6, 10000, 'a live event');
  assert.deepEqual(seen(events[5]), ['order_created', live, null]);
});

test('a snapshot comes in the Subscription, exact as of its seq, and every event of it comes after', async (t) => {
  const { c, events } = await watcher('rita');
  t.after(() => c.close());
  const mine = q.and(q.eq('data.status', 'pending'), q.prefix('data.productId', 'S-'));
  const matching = [];
  for (let n = 0; n < 4; n += 1) {
    const id = await create(`S-${n}`);
    if (n % 2 === 0) await admin.update('order', id, { status: 'shipped' });
    else matching.push(id);
  }
  // Creates keep coming while the subscribe is answered: no event may reach the app before the promise resolves,
  // none may be older than the snapshot, and none may be missing. (test/fake.test.mjs makes the reply and events
  // arrive in one burst, which a real server does only by chance.)
  let stop = false;
  const loop = (async () => {
    for (let n = 0; !stop; n += 1) matching.push(await create(`S-more-${n}`));
  })();
  let resolved = false;
  let early = 0;
  c.on('event', () => (early += resolved ? 0 : 1));
  const sub = await c.subscribe('order', { query: mine, snapshot: true });
  resolved = true;
  const ids = sub.items.map((r) => r.id);
  assert.deepEqual(ids.slice(0, 2), matching.slice(0, 2), 'what matched, by createdAt');
  assert.ok(sub.items.every((r) => r.data.status === 'pending' && r.data.productId.startsWith('S-')));
  assert.equal(sub.nextCursor, null);
  await until(c, ['event'], () => events.length >= 2, 10000, 'events after the snapshot');
  stop = true;
  await loop;
  assert.equal(early, 0, 'no event before subscribe() resolved');
  assert.ok(events.every((e) => e.seq > sub.lastSeq && e.subscriptionId === sub.subscriptionId));
  // Together, the snapshot and the events are every matching order, each once.
  await until(c, ['event'], () => new Set([...ids, ...events.map((e) => e.id)]).size === matching.length, 10000, 'every create');
  assert.deepEqual([...ids, ...events.map((e) => e.id)].sort(), [...matching].sort());
  assert.equal(c.subscriptions()[0].items, undefined, 'subscriptions() does not repeat the snapshot');
});

test('a resume the server cannot replay reports a gap that carries the snapshot', async () => {
  const { dir, cleanup } = tempDir();
  // The server keeps two events per type and prunes every 20 ms.
  const small = await startServer(dir, 0, 20000, { TIDINGS_EVENTS__RETAIN_COUNT: '2', TIDINGS_EVENTS__PRUNE_INTERVAL_MS: '20' });
  const door = gate();
  const owner = client(small.url, token(dir, 'alice'));
  const root = client(small.url, token(dir, 'root', ['admin']));
  const probe = client(small.url, token(dir, 'root', ['admin']));
  const watching = client(small.url, token(dir, 'olga', ['admin']), { retryWait: door.retryWait });
  try {
    await Promise.all([owner.connect(), root.connect(), probe.connect(), watching.connect()]);
    const gaps = [];
    watching.on('gap', (g) => gaps.push(g));
    const first = await owner.create('order', { productId: 'G-0', quantity: 1, totalAmount: 1 });
    const sub = await watching.subscribe('order', { query: pending, snapshot: true });
    assert.deepEqual(sub.items.map((r) => r.id), [first.id]);

    door.shut();
    watching.reconnect();
    const kept = [first.id];
    for (let n = 1; n < 6; n += 1) kept.push((await owner.create('order', { productId: `G-${n}`, quantity: 1, totalAmount: 1 })).id);
    await root.update('order', kept.shift(), { status: 'shipped' });
    // The pruner runs on its own: wait until a resume from the watcher's seq can no longer be replayed.
    await eventually(async () => {
      const s = await probe.subscribe('order', { since: sub.lastSeq });
      await probe.unsubscribe('order');
      return s.recovered === false;
    }, 10000, 'the log to be pruned');
    door.open();
    await until(watching, ['gap'], () => gaps.length > 0, 10000, 'the gap');
    const [gap] = gaps;
    assert.equal(gap.subscriptionId, sub.subscriptionId);
    assert.deepEqual(gap.query, pending);
    assert.equal(gap.since, sub.lastSeq);
    assert.deepEqual(gap.items.map((r) => r.id), kept, 'what matches now, as of the gap');
    assert.equal(gap.nextCursor, null);
  } finally {
    for (const c of [owner, root, probe, watching]) c.close();
    await small.kill();
    cleanup();
  }
});

test('list takes a query built with q', async () => {
  const a = await create('L-1', { quantity: 7 });
  await create('L-2', { quantity: 1 });
  const page = await alice.list('order', { query: q.and(q.prefix('data.productId', 'L-'), q.gte('data.quantity', 5)) });
  assert.deepEqual(page.items.map((r) => r.id), [a]);
  const wrong = await alice.list('order', { query: q.eq('data.quantity', 'many') }).catch((e) => e);
  assert.equal(wrong.code, 'INVALID_PARAMS');
  assert.deepEqual(wrong.errors.map((e) => e.pointer), ['/payload/query/eq']);
});

test('list orders by several keys, keeps only the fields asked for, and counts the whole list', async () => {
  const ids = [];
  for (const [product, quantity] of [['M-b', 1], ['M-a', 2], ['M-b', 3], ['M-a', 1]]) ids.push(await create(product, { quantity }));
  const query = q.prefix('data.productId', 'M-');
  const first = await alice.list('order', { query, orderBy: ['productId', '-quantity'], fields: ['quantity'], count: true, limit: 3 });
  assert.equal(first.total, 4);
  assert.deepEqual(first.items.map((r) => Object.keys(r.data)), [['quantity'], ['quantity'], ['quantity']]);
  const rest = await alice.list('order', { query, orderBy: ['productId', '-quantity'], cursor: first.nextCursor });
  // M-a by quantity descending (2, 1), then M-b (3, 1).
  assert.deepEqual([...first.items, ...rest.items].map((r) => r.id), [ids[1], ids[3], ids[2], ids[0]]);
  assert.equal(rest.total, undefined);
});
