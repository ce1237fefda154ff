// Live collections against a scripted server, for the races a real server makes only by chance: a list page that
// arrives after events newer than its items (versions and tombstones decide), a gap without a snapshot, and the server
// ending the subscription.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createClient } from '../dist/index.js';
import { fakeServer } from './fake.mjs';
import { withTimeout } from './helpers.mjs';

const ID = 'order?0123456789abcdef';
const query = { field: 'data.status', eq: 'pending' };
const order = (id, version) => ({ resourceType: 'order', id, version, ownerId: 'u', createdAt: Number(id.slice(2)), updatedAt: 1, data: { v: version } });
const event = (eventType, id, version, seq, extra = {}) => [
  'event',
  { eventType, topic: 'order', subscriptionId: ID, seq, resourceType: 'order', id, version, ownerId: 'u', occurredAt: 100 + seq, data: { v: version }, ...extra },
];

/** A fake server whose subscribe and read requests the test answers itself, in the order it chooses. */
function scripted() {
  const asked = [];
  let heard = () => undefined;
  const hold = (socket, message) => {
    asked.push({ socket, message });
    heard();
  };
  const server = fakeServer({ answers: { subscribe: hold, read: hold } });
  /** The next request of this type the client sent, once it has. */
  const next = (type) =>
    withTimeout(
      new Promise((resolve) => {
        const take = () => {
          const at = asked.findIndex((a) => a.message.type === type);
          if (at < 0) return false;
          resolve(asked.splice(at, 1)[0]);
          return true;
        };
        if (!take()) heard = () => take() && (heard = () => undefined);
      }),
      5000,
      `a ${type} request`,
    );
  /** Answers a request, with pushes before the reply, all in one burst as one TCP read would bring them. */
  const answer = ({ socket, message }, payload, before = []) => socket.burst([...before, [message.type, payload, message.requestId]]);
  return { server, next, answer };
}

/** Resolves once check() holds, re-checked at every change the store reports. */
const whenStore = (store, check, what) =>
  withTimeout(new Promise((resolve) => (check() ? resolve() : store.subscribe(() => check() && resolve()))), 5000, what);

const held = (store) => store.getSnapshot().map((r) => `${r.id}@${r.version}`);

test('a page read after newer events does not bring back older versions, nor what left or was deleted', async (t) => {
  const { server, next, answer } = scripted();
  const client = createClient({ url: 'ws://fake/ws', token: 't', WebSocket: server.FakeSocket });
  t.after(() => client.close());
  await client.connect();
  const live = client.live('order', query);
  const subscribe = await next('subscribe');
  assert.deepEqual(subscribe.message.payload, { topic: 'order', query, snapshot: true });
  answer(subscribe, { subscriptionId: ID, topic: 'order', seq: 10, items: [order('O-1', 1), order('O-2', 1)], nextCursor: 'page-2' });

  const read = await next('read');
  assert.deepEqual(read.message.payload, { resourceType: 'order', limit: 100, query, cursor: 'page-2' });
  assert.equal(live.status, 'loading', 'loading until every page is in');
  assert.deepEqual(held(live), ['O-1@1', 'O-2@1']);
  // Before the page's reply: O-2 changes to v3, O-1 leaves at v2, O-3 (on the page) is deleted at v2, and O-9, never
  // held, is hidden from the user.
  const events = [
    event('order_updated', 'O-2', 3, 11),
    event('order_left', 'O-1', 2, 12, { reason: 'unmatched' }),
    event('order_left', 'O-3', 2, 13, { reason: 'deleted' }),
    event('order_left', 'O-9', 4, 14, { reason: 'hidden', data: {} }),
  ];
  const heard = [];
  client.on('event', (e) => heard.push(e));
  server.sockets[0].burst(events);
  await withTimeout(new Promise((r) => client.on('event', () => heard.length === events.length && r())), 5000, 'the events');
  await whenStore(live, () => live.get('O-2')?.version === 3, 'the update to apply');
  // The page was read before those changes: it holds O-2 at v2 and O-3 at v1, and O-4, which did not change.
  answer(read, { resourceType: 'order', items: [order('O-2', 2), order('O-3', 1), order('O-4', 1)], nextCursor: null });
  await whenStore(live, () => live.status === 'live', 'the collection to be live');
  assert.deepEqual(held(live), ['O-2@3', 'O-4@1'], 'the newest version of each, nothing that left or went');
  assert.deepEqual(live.get('O-2').data, { v: 3 });

  // Later: O-1 enters again at v3, an update of O-4 repeats a version it has (ignored), and O-5 is created.
  const socket = server.sockets[0];
  socket.burst([event('order_entered', 'O-1', 3, 15), event('order_updated', 'O-4', 1, 16), event('order_created', 'O-5', 1, 17)]);
  await whenStore(live, () => live.get('O-5') !== undefined, 'the create');
  assert.deepEqual(held(live), ['O-2@3', 'O-4@1', 'O-1@3', 'O-5@1'], 'an entered one sorts by when it entered');
  assert.equal(live.get('O-5').createdAt, 117, 'a created resource takes the time of its event');
  // The fake never answers the unsubscribe; the client's close at the end fails it.
  live.close().catch(() => undefined);
  assert.equal(live.status, 'closed');
  assert.equal(server.sentOf('unsubscribe').length, 1);
});

test('a gap without a snapshot reads the collection anew, keeping the old contents on screen until it is in', async (t) => {
  const { server, next, answer } = scripted();
  const client = createClient({ url: 'ws://fake/ws', token: 't', WebSocket: server.FakeSocket, retryWait: () => Promise.resolve() });
  t.after(() => client.close());
  await client.connect();
  const live = client.live('order', query);
  answer(await next('subscribe'), { subscriptionId: ID, topic: 'order', seq: 10, items: [order('O-1', 1), order('O-2', 1)], nextCursor: null });
  await whenStore(live, () => live.status === 'live', 'the collection to be live');

  server.sockets[0].drop(4000, 'going away', true);
  await whenStore(live, () => live.status === 'resyncing', 'the collection to say it may be behind');
  const resume = await next('subscribe');
  assert.deepEqual(resume.message.payload, { topic: 'order', since: 10, query, snapshot: true });
  // The server cannot replay, and sends no snapshot: the collection lists from the first page.
  answer(resume, { subscriptionId: ID, topic: 'order', seq: 30, recovered: false });
  const read = await next('read');
  assert.deepEqual(read.message.payload, { resourceType: 'order', limit: 100, query });
  assert.equal(live.status, 'resyncing');
  assert.deepEqual(held(live), ['O-1@1', 'O-2@1'], 'the old contents stay until the new ones are in');
  // An event after the gap, before the page: it counts, and the page's older copy of O-2 does not undo it.
  answer(read, { resourceType: 'order', items: [order('O-2', 4), order('O-3', 1)], nextCursor: null }, [
    event('order_updated', 'O-2', 5, 31),
    event('order_created', 'O-6', 1, 32),
  ]);
  await whenStore(live, () => live.status === 'live', 'the collection to be live again');
  assert.deepEqual(held(live), ['O-2@5', 'O-3@1', 'O-6@1'], 'O-1 went while the client was away');
});

test('a subscription the server ended having lost events is opened again from the last seq; any other end closes', async (t) => {
  const { server, next, answer } = scripted();
  const client = createClient({ url: 'ws://fake/ws', token: 't', WebSocket: server.FakeSocket });
  t.after(() => client.close());
  await client.connect();
  const live = client.live('order', query);
  answer(await next('subscribe'), { subscriptionId: ID, topic: 'order', seq: 10, items: [order('O-1', 1)], nextCursor: null });
  await whenStore(live, () => live.status === 'live', 'the collection to be live');
  const socket = server.sockets[0];
  socket.burst([event('order_created', 'O-2', 1, 12)]);
  await whenStore(live, () => live.get('O-2') !== undefined, 'the create');

  socket.push('unsubscribe', { subscriptionId: ID, topic: 'order', reason: { code: 'UNAVAILABLE', message: 'events were lost' } });
  const again = await next('subscribe');
  assert.deepEqual(again.message.payload, { topic: 'order', since: 12, query, snapshot: true });
  assert.equal(live.status, 'resyncing');
  answer(again, { subscriptionId: ID, topic: 'order', seq: 14, recovered: true }, []);
  await whenStore(live, () => live.status === 'live', 'the collection to be live again');
  socket.burst([event('order_updated', 'O-1', 2, 13)]);
  await whenStore(live, () => live.get('O-1')?.version === 2, 'the replayed change');
  assert.deepEqual(held(live), ['O-1@2', 'O-2@1']);

  socket.push('unsubscribe', { subscriptionId: ID, topic: 'order', reason: { code: 'FORBIDDEN', message: 'no longer allowed' } });
  await whenStore(live, () => live.status === 'closed', 'the collection to close');
  assert.equal(live.error.code, 'FORBIDDEN');
  assert.deepEqual(held(live), ['O-1@2', 'O-2@1'], 'a closed collection keeps what it held');
  assert.equal(server.sentOf('subscribe').length, 2, 'not opened again');
});
