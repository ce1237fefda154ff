// Presence with a scripted server, for what a real one cannot be made to do on cue: a join whose connection drops
// before the reply is made once, on the next connection, before it is reported connected; a reconnect's members
// replace those held, each difference heard once; and a server that states 1.1 gets neither presence nor broadcast.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createClient, TidingsError } from '../dist/index.js';
import { fakeServer } from './fake.mjs';
import { withTimeout } from './helpers.mjs';

/** A presence member as the server sends it. */
function member(id, ownerId, state, version = 1) {
  return { resourceType: 'presence', id, version, ownerId, createdAt: 1, updatedAt: 1, data: { topic: 'order', state } };
}

/** Answers a subscribe with these members, and a create with a member of that state, each on the socket it came on. */
function answering(members) {
  const reply = (socket, message, type, payload) => socket.burst([[type, payload, message.requestId]]);
  let made = 0;
  return {
    subscribe: (socket, message) => reply(socket, message, 'subscribe', { subscriptionId: message.payload.topic, topic: message.payload.topic, seq: 0, items: members() }),
    create: (socket, message) => {
      made += 1;
      reply(socket, message, 'create', member(`PRS-${made}`, 'u', message.payload.data.state));
    },
  };
}

/** Resolves once check() holds, checked again at each change of the presence handle. */
function settled(presence, check, what) {
  return withTimeout(
    new Promise((resolve) => {
      if (check()) return resolve();
      const off = presence.on('change', () => check() && (off(), resolve()));
    }),
    5000,
    what,
  );
}

test('a join whose connection drops before the reply is made once, on the next connection, before connected', async (t) => {
  let members = [];
  const answers = answering(() => members);
  const create = answers.create;
  let silent = true;
  let stateAtCreate;
  answers.create = (socket, message) => {
    stateAtCreate = c.state;
    // The first socket never answers the join: its connection drops with the join in flight.
    if (!silent) create(socket, message);
  };
  const fake = fakeServer({ protocolVersion: '1.2', answers });
  const c = createClient({ url: 'ws://fake/ws', token: 't', WebSocket: fake.FakeSocket, retryWait: () => Promise.resolve() });
  t.after(() => c.close());
  await c.connect();
  const here = c.presence('order');
  await settled(here, () => here.status === 'live', 'following');
  const joined = here.join({ name: 'A' });
  await fake.until(() => fake.sentOf('create').length === 1, 'the join went out');
  const states = [];
  c.on('state', (state) => states.push(state));
  silent = false;
  members = [member('PRS-old', 'v', { name: 'V' })];
  fake.sockets[0].drop(1011, 'server error', true);
  const made = await joined;
  assert.equal(made.id, 'PRS-1');
  assert.deepEqual(made.state, { name: 'A' });
  // Joined again as part of reconnecting: before the client reports connected.
  assert.equal(stateAtCreate, 'reconnecting');
  await settled(here, () => here.status === 'live', 'connected again');
  assert.deepEqual(states, ['reconnecting', 'connected']);
  // One create per connection: the one in flight was not sent again beside the rejoin.
  assert.deepEqual(fake.sockets.map((s) => s.sent.filter((m) => m.type === 'create').length), [1, 1]);
  const resubscribe = fake.sockets[1].sent.find((m) => m.type === 'subscribe');
  assert.deepEqual(resubscribe.payload, { topic: 'presence:order' });
  await settled(here, () => here.members.length === 1, 'the members the reconnect brought');
  assert.deepEqual(here.members.map((m) => m.id), ['PRS-old']);
  c.close();
});

test('the members a reconnect brings replace those held, with a join, update or leave for each difference', async (t) => {
  let members = [member('PRS-a', 'ann', { n: 1 }), member('PRS-b', 'ben', { n: 1 })];
  const fake = fakeServer({ protocolVersion: '1.2', answers: answering(() => members) });
  const c = createClient({ url: 'ws://fake/ws', token: 't', WebSocket: fake.FakeSocket, retryWait: () => Promise.resolve() });
  t.after(() => c.close());
  await c.connect();
  const here = c.presence('order');
  await settled(here, () => here.members.length === 2, 'the first members');
  const heard = [];
  here.on('join', (m) => heard.push(['join', m.id]));
  here.on('update', (m, previous) => heard.push(['update', m.id, previous.state.n, m.state.n]));
  here.on('leave', (m) => heard.push(['leave', m.id]));
  // Events without seq: none is taken for a repeat or a gap.
  const event = (eventType, m) => ({ eventType, topic: 'presence:order', subscriptionId: 'presence:order', resourceType: 'presence', id: m.id, version: m.version, ownerId: m.ownerId, occurredAt: 2, data: m.data });
  fake.sockets[0].push('event', event('presence_created', member('PRS-c', 'cat', { n: 1 })));
  fake.sockets[0].push('event', event('presence_updated', member('PRS-a', 'ann', { n: 2 }, 2)));
  fake.sockets[0].push('event', event('presence_updated', member('PRS-a', 'ann', { n: 2 }, 2)));
  await settled(here, () => here.members.length === 3, 'cat joined');
  assert.deepEqual(heard, [['join', 'PRS-c'], ['update', 'PRS-a', 1, 2]]);
  heard.length = 0;

  members = [member('PRS-a', 'ann', { n: 3 }, 3), member('PRS-d', 'dan', { n: 1 })];
  fake.sockets[0].drop(1011, 'server error', true);
  await settled(here, () => here.members.some((m) => m.id === 'PRS-d'), 'the reconnect’s members');
  assert.deepEqual(heard.sort(), [['join', 'PRS-d'], ['leave', 'PRS-b'], ['leave', 'PRS-c'], ['update', 'PRS-a', 2, 3]]);
  assert.deepEqual(here.members.map((m) => [m.userId, m.state.n]), [['ann', 3], ['dan', 1]]);
  assert.deepEqual([...here.users.keys()], ['ann', 'dan']);
  c.close();
});

test('with a server that states 1.1, presence and broadcast fail at once with UNSUPPORTED_VERSION and nothing is sent', async (t) => {
  const old = fakeServer({ protocolVersion: '1.1' });
  const c = createClient({ url: 'ws://fake/ws', token: 't', WebSocket: old.FakeSocket });
  t.after(() => c.close());
  await c.connect();
  const here = c.presence('order');
  assert.equal(here.status, 'closed');
  assert.equal(here.error?.code, 'UNSUPPORTED_VERSION');
  const refused = await here.join({ name: 'A' }).catch((error) => error);
  assert.ok(refused instanceof TidingsError);
  assert.equal(refused.code, 'UNSUPPORTED_VERSION', 'the failure that closed the handle');
  const broadcast = await c.broadcast('cursor', { x: 1 }).catch((error) => error);
  assert.equal(broadcast.code, 'UNSUPPORTED_VERSION');
  assert.match(broadcast.message, /1\.1.*needs 1\.2/);
  const subscribe = await c.subscribe('presence:order').catch((error) => error);
  assert.equal(subscribe.code, 'UNSUPPORTED_VERSION');
  assert.deepEqual(old.sentOf('subscribe'), []);
  assert.deepEqual(old.sentOf('create'), []);
  c.close();
});
