// Every operation and the main error codes of the SDK against a real `tidings serve`.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { TidingsError } from '../dist/index.js';
import { client, startServer, tempDir, token, until, withTimeout } from './helpers.mjs';

let server;
let data;
let alice;
let bob;
let admin;

before(async () => {
  data = tempDir();
  server = await startServer(data.dir);
  alice = client(server.url, token(data.dir, 'alice'));
  bob = client(server.url, token(data.dir, 'bob'));
  admin = client(server.url, token(data.dir, 'root', ['admin']));
  await Promise.all([alice.connect(), bob.connect(), admin.connect()]);
});

after(async () => {
  for (const c of [alice, bob, admin]) c?.close();
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

const order = { productId: 'P1', quantity: 2, totalAmount: 9.5 };

test('connect reports the state changes and a bad token is UNAUTHORIZED', async () => {
  const states = [];
  const c = client(server.url, 'not-a-jwt', { onStateChange: (s) => states.push(s) });
  const error = await failure(c.connect());
  assert.equal(error.code, 'UNAUTHORIZED');
  assert.equal(error.details.reason, 'malformed');
  assert.deepEqual(states, ['connecting', 'closed']);
  assert.equal(alice.state, 'connected');
});

test('getToken is asked for the token', async () => {
  let calls = 0;
  const c = client(server.url, async () => (calls++, token(data.dir, 'carol')));
  await c.connect();
  assert.equal(calls, 1);
  await c.ping();
  c.close();
  assert.equal(c.state, 'closed');
  assert.equal((await failure(c.ping())).code, 'CLOSED');
});

test('create, read, list, update, delete', async () => {
  const created = await alice.create('order', order);
  assert.equal(created.version, 1);
  assert.equal(created.ownerId, 'alice');
  assert.equal(created.data.status, 'pending');
  assert.deepEqual(await alice.read('order', created.id), created);

  const second = await alice.create('order', { ...order, productId: 'P2' });
  const page = await alice.list('order', { orderBy: 'createdAt', limit: 1 });
  assert.equal(page.items.length, 1);
  assert.equal(typeof page.nextCursor, 'string');
  const rest = await alice.list('order', { orderBy: 'createdAt', limit: 1, cursor: page.nextCursor });
  assert.notEqual(rest.items[0].id, page.items[0].id);
  const filtered = await alice.list('order', { filter: { productId: 'P2' } });
  assert.deepEqual(filtered.items.map((r) => r.id), [second.id]);

  const updated = await alice.update('order', created.id, { quantity: 3 }, { expectedVersion: 1 });
  assert.equal(updated.version, 2);
  assert.equal(updated.data.quantity, 3);
  const deleted = await alice.delete('order', created.id, { expectedVersion: 2 });
  assert.equal(deleted.version, 3);
  assert.equal(typeof deleted.deletedAt, 'number');
  assert.equal((await failure(alice.read('order', created.id))).code, 'NOT_FOUND');
});

test('INVALID_PARAMS names every bad field with a pointer', async () => {
  const error = await failure(alice.create('order', { productId: 'P1', quantity: 0, totalAmount: -1 }));
  assert.equal(error.code, 'INVALID_PARAMS');
  const pointers = error.errors.map((e) => e.pointer).sort();
  assert.deepEqual(pointers, ['/payload/data/quantity', '/payload/data/totalAmount']);
  const list = await failure(alice.list('order', { limit: 0 }));
  assert.equal(list.code, 'INVALID_PARAMS');
  assert.deepEqual(list.errors.map((e) => e.pointer), ['/payload/limit']);
});

test('NOT_FOUND for another user\'s order and an unknown type; FORBIDDEN for a field reserved to admins', async () => {
  const mine = await alice.create('order', order);
  const hidden = await failure(bob.read('order', mine.id));
  assert.equal(hidden.code, 'NOT_FOUND');
  assert.equal((await failure(alice.create('invoice', {}))).code, 'NOT_FOUND');
  const forbidden = await failure(alice.update('order', mine.id, { status: 'paid' }));
  assert.equal(forbidden.code, 'FORBIDDEN');
  assert.deepEqual(forbidden.errors.map((e) => e.pointer), ['/payload/patch/status']);
});

test('CONFLICT for a stale version and a reused requestId; a repeated create is deduplicated', async () => {
  const mine = await alice.create('order', order);
  await alice.update('order', mine.id, { quantity: 5 });
  const stale = await failure(alice.update('order', mine.id, { quantity: 6 }, { expectedVersion: 1 }));
  assert.equal(stale.code, 'CONFLICT');
  assert.equal(stale.details.currentVersion, 2);

  const requestId = `create-${Date.now()}`;
  const first = await alice.create('order', order, { requestId });
  const again = await alice.create('order', order, { requestId });
  assert.equal(again.id, first.id);
  const reused = await failure(alice.create('order', { ...order, quantity: 9 }, { requestId }));
  assert.equal(reused.code, 'CONFLICT');
  assert.equal(reused.details.reason, 'request_id_reused');

});

test('events reach on("event") in seq order, and unsubscribe stops them', async () => {
  const events = [];
  const off = alice.on('event', (e) => events.push(e));
  const sub = await alice.subscribe('order');
  assert.equal(sub.topic, 'order');
  const created = await alice.create('order', order);
  await alice.update('order', created.id, { quantity: 4 });
  await until(alice, ['event'], () => events.length >= 2, 5000, 'two events');
  assert.deepEqual(events.map((e) => e.eventType), ['order_created', 'order_updated']);
  assert.ok(events[0].seq < events[1].seq);
  assert.equal(events[0].id, created.id);
  assert.equal(alice.subscriptions()[0].lastSeq, events[1].seq);
  await alice.unsubscribe('order');
  off();
});

test('an admin marking alice\'s order paid notifies alice through on("notification")', async () => {
  const notifications = [];
  const off = alice.on('notification', (n) => notifications.push(n));
  const mine = await alice.create('order', order);
  const paid = await admin.update('order', mine.id, { status: 'paid' });
  assert.equal(paid.data.status, 'paid');
  await until(alice, ['notification'], () => notifications.some((n) => n.data?.id === mine.id), 5000, 'the notification');
  const note = notifications.find((n) => n.data?.id === mine.id);
  assert.equal(typeof note.title, 'string');
  assert.equal(typeof note.seq, 'number');
  off();
});
