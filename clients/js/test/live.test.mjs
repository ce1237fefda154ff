// Live collections (client.live) against a real `tidings serve`: orders entering and leaving a query as an admin
// changes them, a reconnect in the middle, a collection larger than one snapshot page, a gap, and the sharing of one
// server subscription by the stores and handles of one query.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import WebSocket from 'ws';
import { q } from '../dist/index.js';
import { client, eventually, gate, startServer, tempDir, token, withTimeout } from './helpers.mjs';

let server;
let data;
let alice;
let admin;

// Creates come by the hundred here: the rate limit is raised so that they are not paced to 50 a second.
const fast = { TIDINGS_LIMITS__RATE_PER_SECOND: '5000', TIDINGS_LIMITS__RATE_BURST: '5000' };

before(async () => {
  data = tempDir();
  server = await startServer(data.dir, 0, 20000, fast);
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

/** Creates an order of alice's with this product id; returns it. */
const create = (productId, extra = {}) => alice.create('order', { productId, quantity: 1, totalAmount: 10, ...extra });

/** A client of `user` (an admin unless told) that records the messages it sends. */
async function recorder(user, extra = {}, roles = ['admin']) {
  const sent = [];
  class Recording extends WebSocket {
    send(text) {
      sent.push(JSON.parse(text));
      super.send(text);
    }
  }
  const c = client(server.url, token(data.dir, user, roles), { WebSocket: Recording, ...extra });
  await c.connect();
  return { c, sentOf: (type) => sent.filter((m) => m.type === type) };
}

/** Resolves once check() holds, re-checked at every change the store reports (no polling). */
function whenStore(store, check, what, timeoutMs = 15000) {
  return withTimeout(
    new Promise((resolve) => {
      if (check()) return resolve();
      const off = store.subscribe(() => check() && (off(), resolve()));
    }),
    timeoutMs,
    what,
  );
}

/** What the server holds for this query, every page: id → version. */
async function truth(c, query) {
  const held = new Map();
  let cursor;
  do {
    const page = await c.list('order', { query, limit: 100, ...(cursor ? { cursor } : {}) });
    for (const item of page.items) held.set(item.id, item.version);
    cursor = page.nextCursor;
  } while (cursor);
  return held;
}

/** The store's contents as id → version; fails when an id is held twice. */
function contents(store) {
  const items = store.getSnapshot();
  const held = new Map(items.map((r) => [r.id, r.version]));
  assert.equal(held.size, items.length, 'no resource twice');
  return held;
}

/** Waits until the store is live and equal to what the server holds for its query, then asserts it once more. */
async function equalsServer(store, c, what) {
  let expected = await truth(c, store.query);
  const same = () => store.status === 'live' && JSON.stringify([...contents(store)].sort()) === JSON.stringify([...expected].sort());
  await whenStore(store, same, what).catch(async (error) => {
    // The server's answer may have been read before the last change reached the store: read it once more.
    expected = await truth(c, store.query);
    if (!same()) throw error;
  });
  assert.deepEqual(new Map([...contents(store)].sort()), new Map([...expected].sort()), what);
}

test('an order enters and leaves a live pending collection as an admin changes its status', async (t) => {
  const ships = await create('E-SHIPS');
  const stays = await create('E-STAYS');
  const paid = await create('E-PAID');
  await admin.update('order', paid.id, { status: 'paid' });
  const live = alice.live('order', pending);
  t.after(() => live.close());
  assert.equal(live.status, 'loading');
  await whenStore(live, () => live.status === 'live', 'the collection to be live');
  const ids = () => live.getSnapshot().map((r) => r.id);
  assert.ok(ids().includes(ships.id) && ids().includes(stays.id) && !ids().includes(paid.id), 'the pending orders');

  // The same array until something changes, as useSyncExternalStore needs.
  const before = live.getSnapshot();
  assert.equal(live.getSnapshot(), before);
  assert.ok(Object.isFrozen(before));

  await admin.update('order', ships.id, { status: 'shipped' });
  await whenStore(live, () => !ids().includes(ships.id), 'the shipped order to leave');
  assert.notEqual(live.getSnapshot(), before, 'a change makes a new array');
  assert.ok(ids().includes(stays.id));

  await admin.update('order', paid.id, { status: 'pending' });
  await whenStore(live, () => ids().includes(paid.id), 'the order made pending to enter');
  assert.equal(live.get(paid.id).version, 3);
  assert.equal(live.get(paid.id).data.status, 'pending');
  await admin.update('order', ships.id, { status: 'pending' });
  await whenStore(live, () => live.get(ships.id)?.version === 3, 'the shipped order to enter again');

  const fresh = await create('E-NEW');
  await whenStore(live, () => ids().includes(fresh.id), 'a created order');
  assert.equal(live.get(fresh.id).createdAt, fresh.createdAt);
  await alice.update('order', stays.id, { quantity: 4 });
  await whenStore(live, () => live.get(stays.id)?.data.quantity === 4, 'an update');
  await alice.delete('order', fresh.id);
  await whenStore(live, () => !ids().includes(fresh.id), 'a deleted order to go');
  await equalsServer(live, alice, 'the collection is what the server holds');
  // In the order of the server's snapshot, oldest first.
  const created = live.getSnapshot().map((r) => r.createdAt);
  assert.deepEqual(created, [...created].sort((a, b) => a - b));
});

test('stores and handles of one query share one server subscription, which ends with the last of them', async (t) => {
  const { c, sentOf } = await recorder('sam');
  t.after(() => c.close());
  const one = c.live('order', pending);
  const two = c.live('order', pending);
  await whenStore(one, () => one.status === 'live', 'the first store');
  await whenStore(two, () => two.status === 'live', 'the second store');
  assert.equal(sentOf('subscribe').length, 1, 'one subscribe on the server');
  assert.deepEqual(contents(one), contents(two));

  await one.close();
  assert.equal(one.status, 'closed');
  assert.equal(sentOf('unsubscribe').length, 0, 'the second store still holds the subscription');
  const later = await create('S-LATER');
  await whenStore(two, () => two.get(later.id) !== undefined, 'the second store to hear of a create');
  assert.equal(one.get(later.id), undefined, 'a closed store changes no more');

  await two.close();
  assert.equal(sentOf('unsubscribe').length, 1, 'the last store unsubscribes');
  assert.deepEqual(c.subscriptions(), []);
  await two.close();
});

test('a reconnect in the middle of changes loses nothing and duplicates nothing', async (t) => {
  const door = gate();
  const { c, sentOf } = await recorder('rae', { retryWait: door.retryWait });
  t.after(() => c.close());
  const early = [];
  for (let n = 0; n < 6; n += 1) early.push(await create(`R-${n}`));
  const live = c.live('order', pending);
  t.after(() => live.close());
  await whenStore(live, () => live.status === 'live', 'the collection to be live');
  const reads = sentOf('read').length;
  const statuses = [live.status];
  live.subscribe(() => statuses.at(-1) !== live.status && statuses.push(live.status));

  // Changes go on before, during and after the drop: enters, leaves, updates, deletes and creates.
  let stop = false;
  const changes = (async () => {
    for (let n = 0; !stop; n += 1) {
      const order = await create(`R-more-${n}`);
      if (n % 3 === 0) await admin.update('order', order.id, { status: 'shipped' });
      if (n % 4 === 1) await alice.delete('order', order.id);
      if (n % 5 === 2) await admin.update('order', early[n % early.length].id, { status: n % 2 === 0 ? 'paid' : 'pending' });
    }
  })();
  await eventually(async () => (await truth(admin, pending)).size > 10, 10000, 'some changes before the drop');
  door.shut();
  c.reconnect();
  await whenStore(live, () => live.status === 'resyncing', 'the collection to say it may be behind');
  await eventually(async () => (await truth(admin, pending)).size > 20, 10000, 'changes while away');
  door.open();
  await whenStore(live, () => live.status === 'live', 'the collection to be live again');
  stop = true;
  await changes;
  await equalsServer(live, admin, 'the collection is what the server holds, each order once');
  assert.deepEqual(statuses.slice(0, 3), ['live', 'resyncing', 'live']);
  // It caught up by the replay of the resumed subscription, not by reading the list again.
  assert.equal(typeof sentOf('subscribe').at(-1).payload.since, 'number');
  assert.equal(sentOf('read').length, reads, 'no list read after the reconnect');
});

test('a collection larger than one snapshot page is complete, with changes going on while its pages are read', async (t) => {
  const batch = (from, count) => Promise.all(Array.from({ length: count }, (_, n) => create(`B-${from + n}`, { quantity: 7 })));
  const orders = [...(await batch(0, 120)), ...(await batch(120, 120))];
  const big = q.and(pending, q.eq('data.quantity', 7));
  const { c, sentOf } = await recorder('ben');
  t.after(() => c.close());
  const live = c.live('order', big);
  t.after(() => live.close());

  // While the pages beyond the snapshot are read: orders on later pages leave, change, go and come.
  let stop = false;
  const changes = (async () => {
    for (let n = 0; !stop && n < 60; n += 1) {
      const order = orders[orders.length - 1 - n * 2];
      if (n % 3 === 0) await admin.update('order', order.id, { status: 'shipped' });
      else if (n % 3 === 1) await alice.update('order', order.id, { totalAmount: 20 + n });
      else await alice.delete('order', order.id);
      await create(`B-new-${n}`, { quantity: 7 });
    }
  })();
  await whenStore(live, () => live.status === 'live', 'the collection to be live', 30000);
  stop = true;
  await changes;
  assert.ok(sentOf('read').length >= 2, 'the pages beyond the snapshot were read');
  assert.ok(live.getSnapshot().length > 200);
  await equalsServer(live, admin, 'every order of the query, each once, at its version');
});

test('a gap replaces the contents with the snapshot that comes with it, and reads the pages beyond', async () => {
  const { dir, cleanup } = tempDir();
  // The server keeps two events per type and prunes every 20 ms, so that a resume cannot be replayed.
  const small = await startServer(dir, 0, 20000, { ...fast, TIDINGS_EVENTS__RETAIN_COUNT: '2', TIDINGS_EVENTS__PRUNE_INTERVAL_MS: '20' });
  const door = gate();
  const owner = client(small.url, token(dir, 'alice'));
  const root = client(small.url, token(dir, 'root', ['admin']));
  const probe = client(small.url, token(dir, 'root', ['admin']));
  const watching = client(small.url, token(dir, 'olga', ['admin']), { retryWait: door.retryWait });
  try {
    await Promise.all([owner.connect(), root.connect(), probe.connect(), watching.connect()]);
    const make = (n) => owner.create('order', { productId: `G-${n}`, quantity: 1, totalAmount: 1 });
    const first = await Promise.all(Array.from({ length: 5 }, (_, n) => make(n)));
    const live = watching.live('order', pending);
    await whenStore(live, () => live.status === 'live', 'the collection to be live');
    const seq = watching.subscriptions()[0].lastSeq;

    door.shut();
    watching.reconnect();
    // More than a snapshot page, so that the pages beyond the gap's snapshot are read too.
    await Promise.all(Array.from({ length: 130 }, (_, n) => make(100 + n)));
    await root.update('order', first[0].id, { status: 'shipped' });
    await owner.delete('order', first[1].id);
    await eventually(async () => {
      const s = await probe.subscribe('order', { since: seq });
      await probe.unsubscribe('order');
      return s.recovered === false;
    }, 10000, 'the log to be pruned');
    door.open();
    await whenStore(live, () => live.status === 'live' && live.getSnapshot().length === 133, 'the collection after the gap');
    assert.equal(live.get(first[0].id), undefined, 'the shipped order left');
    assert.equal(live.get(first[1].id), undefined, 'the deleted order went');
    await equalsServer(live, root, 'the collection is what the server holds');
    await live.close();
  } finally {
    for (const c of [owner, root, probe, watching]) c.close();
    await small.kill();
    cleanup();
  }
});

test('a query the server refuses closes the collection with its error', async () => {
  const live = alice.live('order', q.eq('data.nosuchfield', 1));
  await whenStore(live, () => live.status === 'closed', 'the collection to close');
  assert.equal(live.error.code, 'INVALID_PARAMS');
  assert.deepEqual(live.getSnapshot(), []);
});
