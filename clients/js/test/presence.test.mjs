// Presence and ephemeral broadcast (protocol 1.2) against a real `tidings serve`: client.presence follows who comes,
// changes and goes, grouped by user; after a reconnect it follows again (no `since`) and joins again with its last
// state; a second handle of a topic starts from the members the first holds; the topic's read rule applies; and
// client.broadcast reaches the subscribers of an ephemeral type without seq, through a reconnect, and is not queued.
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import WebSocket from 'ws';
import { TidingsError } from '../dist/index.js';
import { client, gate, startServer, tempDir, token, until, withTimeout } from './helpers.mjs';

/** The design notes' order, and `cursor`, an ephemeral type anyone signed in may send and receive. */
const CONFIG = `
[[resource_types]]
name = "order"
id_prefix = "ORD"
field_roles = { status = ["admin"] }
schema = { type = "object", required = ["productId", "quantity", "totalAmount", "status"], properties = { productId = { type = "string", minLength = 1 }, quantity = { type = "integer", minimum = 1 }, totalAmount = { type = "number", minimum = 0 }, status = { type = "string", enum = ["pending", "paid", "shipped", "cancelled"], default = "pending" } } }

[[resource_types]]
name = "cursor"
id_prefix = "CUR"
ephemeral = true
schema = { type = "object", required = ["x", "y"], properties = { x = { type = "integer" }, y = { type = "integer" } } }

[resource_types.permissions]
create = ["authenticated"]
read = ["authenticated"]
`;

let server;
let data;

before(async () => {
  data = tempDir();
  const config = join(data.dir, 'tidings.toml');
  writeFileSync(config, CONFIG);
  server = await startServer(data.dir, 0, 20000, {}, ['--config', config]);
});

after(async () => {
  await server?.kill('SIGTERM');
  data?.cleanup();
});

/** A connected client of `user`, whose sent messages are kept in `sent`, closed when the test `t` ends. */
async function connected(t, user, roles = [], extra = {}) {
  const sent = [];
  class Recording extends WebSocket {
    send(text) {
      sent.push(JSON.parse(text));
      super.send(text);
    }
  }
  const c = client(server.url, token(data.dir, user, roles), { WebSocket: Recording, ...extra });
  c.sent = sent;
  t.after(() => c.close());
  await c.connect();
  return c;
}

/** Resolves once check() holds, checked again at each change of the presence handle. */
function settled(presence, check, what) {
  return withTimeout(
    new Promise((resolve) => {
      if (check()) return resolve();
      const off = presence.on('change', () => {
        if (check()) (off(), resolve());
      });
    }),
    10000,
    what,
  );
}

/**
 * Resolves once check() holds, checked again at each event of the subscription handle (after the listeners added
 * before this one: a client's own on('event') hears an event before the handles do).
 */
function hears(handle, check, what) {
  return withTimeout(
    new Promise((resolve) => {
      if (check()) return resolve();
      const off = handle.on('event', () => check() && (off(), resolve()));
    }),
    5000,
    what,
  );
}

/** A handle's members as [userId, state] pairs, in order. */
const shown = (presence) => presence.members.map((m) => [m.userId, m.state]);

/** The TidingsError a promise rejects with. */
async function failure(promise) {
  try {
    await promise;
  } catch (error) {
    assert.ok(error instanceof TidingsError, `not a TidingsError: ${error}`);
    return error;
  }
  assert.fail('it succeeded');
}

test('members join, change their state and leave, grouped by user, as another user sees them', async (t) => {
  const alice = await connected(t, 'alice');
  const bob = await connected(t, 'bob');
  const tab = await connected(t, 'bob');
  const watching = alice.presence('order');
  await settled(watching, () => watching.status === 'live', 'alice follows');
  assert.deepEqual(watching.members, []);
  const heard = [];
  watching.on('join', (m) => heard.push(['join', m.userId, m.state]));
  watching.on('update', (m, previous) => heard.push(['update', m.userId, m.state, previous.state]));
  watching.on('leave', (m) => heard.push(['leave', m.userId]));

  const here = bob.presence('order');
  const member = await here.join({ name: 'Bob' });
  assert.equal(member.userId, 'bob');
  assert.equal(member.self, true);
  assert.deepEqual(member.state, { name: 'Bob' });
  assert.match(member.id, /^PRS-/);
  assert.equal(here.joined, true);
  await settled(watching, () => watching.members.length === 1, 'alice sees bob');
  assert.deepEqual(shown(watching), [['bob', { name: 'Bob' }]]);
  assert.equal(watching.members[0].self, false, 'not alice’s own');
  assert.equal(watching.members, watching.members, 'the same array until something changes');

  // A second tab of bob's is a second member of the same user.
  const second = tab.presence('order');
  await second.join({ name: 'Bob', tab: 2 });
  await settled(watching, () => watching.users.get('bob')?.length === 2, 'two members of bob');
  assert.deepEqual([...watching.users.keys()], ['bob']);

  // update() is a merge patch of the state: a field set to null goes.
  assert.deepEqual((await here.update({ status: 'editing' })).state, { name: 'Bob', status: 'editing' });
  await settled(watching, () => watching.members.some((m) => m.state.status === 'editing'), 'bob is editing');
  assert.deepEqual((await here.update({ status: null })).state, { name: 'Bob' });
  assert.deepEqual(here.state, { name: 'Bob' });

  await here.leave();
  assert.equal(here.joined, false);
  assert.equal(here.self, undefined);
  await settled(watching, () => watching.members.length === 1, 'bob’s first member left');
  // The second tab's connection ends: its member leaves with it.
  tab.close();
  await settled(watching, () => watching.members.length === 0, 'bob’s second tab left by closing');
  assert.deepEqual(watching.users, new Map());
  assert.deepEqual(heard, [
    ['join', 'bob', { name: 'Bob' }],
    ['join', 'bob', { name: 'Bob', tab: 2 }],
    ['update', 'bob', { name: 'Bob', status: 'editing' }, { name: 'Bob' }],
    ['update', 'bob', { name: 'Bob' }, { name: 'Bob', status: 'editing' }],
    ['leave', 'bob'],
    ['leave', 'bob'],
  ]);
  await Promise.all([watching.close(), here.close(), second.close()]);
  assert.equal(watching.status, 'closed');
});

test('after a reconnect the handle follows again without since and joins again with its last state, before connected', async (t) => {
  const carol = await connected(t, 'carol');
  const dave = await connected(t, 'dave');
  const mine = carol.presence('order');
  await mine.join({ name: 'Carol' });
  await mine.update({ status: 'editing' });
  const first = mine.self.id;
  const theirs = dave.presence('order');
  await theirs.join({ name: 'Dave' });
  await settled(mine, () => mine.members.length === 2, 'carol sees dave');
  const gaps = [];
  carol.on('gap', (gap) => gaps.push(gap));
  let atConnected;
  carol.on('state', (state) => {
    if (state === 'connected') atConnected = mine.self;
  });

  carol.reconnect();
  await until(carol, ['state'], () => carol.state === 'connected', 10000, 'carol reconnected');
  // Joined again before the client said connected, with the state it had, as a new member.
  assert.ok(atConnected !== undefined, 'the member was made again before connected');
  assert.notEqual(atConnected.id, first);
  assert.deepEqual(atConnected.state, { name: 'Carol', status: 'editing' });
  assert.equal(mine.joined, true);
  const subscribes = carol.sent.filter((m) => m.type === 'subscribe' && m.payload.topic === 'presence:order');
  assert.equal(subscribes.length, 2);
  assert.deepEqual(subscribes[1].payload, { topic: 'presence:order' }, 'no since: presence keeps no history');
  const gap = gaps.find((g) => g.topic === 'presence:order');
  assert.ok(Array.isArray(gap?.items), 'the resume is a gap carrying the members');
  assert.ok(gap.items.some((m) => m.ownerId === 'dave'));

  // Both see carol once, as her new member, and dave.
  const carolIds = (presence) => presence.members.filter((m) => m.userId === 'carol').map((m) => m.id);
  await settled(theirs, () => carolIds(theirs).join() === atConnected.id, 'dave sees carol’s new member only');
  await settled(mine, () => carolIds(mine).join() === atConnected.id && mine.members.length === 2, 'carol sees herself once');
  assert.equal(mine.members.find((m) => m.userId === 'carol').self, true);
  assert.equal(mine.status, 'live');
  await Promise.all([mine.close(), theirs.close()]);
});

test('a second handle of a topic shares the subscription and starts from the members the client holds', async (t) => {
  const erin = await connected(t, 'erin');
  const frank = await connected(t, 'frank');
  const present = frank.presence('order');
  await present.join({ name: 'Frank' });
  const a = erin.presence('order');
  // Members of other tests' users may come and go on this topic meanwhile: only frank's are looked at.
  const franks = (presence) => shown(presence).filter(([user]) => user === 'frank');
  await settled(a, () => franks(a).length === 1, 'the first handle has frank');
  const b = erin.presence('order');
  await settled(b, () => b.status === 'live', 'the second handle follows');
  assert.deepEqual(franks(b), [['frank', { name: 'Frank' }]]);
  assert.equal(erin.sent.filter((m) => m.type === 'subscribe').length, 1, 'one subscribe for both');
  await b.close();
  await present.update({ mood: 'busy' });
  await settled(a, () => franks(a)[0]?.[1].mood === 'busy', 'the first handle still hears changes');
  await Promise.all([a.close(), present.close()]);
});

test('presence follows the topic’s read rule: another user’s order has none for a user who may not read it', async (t) => {
  const gina = await connected(t, 'gina');
  const hank = await connected(t, 'hank');
  const order = await gina.create('order', { productId: 'P-presence', quantity: 1, totalAmount: 1 });
  const theirs = hank.presence(`order:${order.id}`);
  await settled(theirs, () => theirs.status === 'closed', 'hank may not follow it');
  assert.equal(theirs.error?.code, 'NOT_FOUND');
  assert.equal((await failure(theirs.join({}))).code, 'NOT_FOUND', 'the failure that closed the handle');
  const ginas = gina.presence(`order:${order.id}`);
  assert.equal((await ginas.join({ status: 'editing' })).userId, 'gina');
  await settled(ginas, () => ginas.members.length === 1, 'gina sees herself');
  await ginas.close();
});

test('broadcast reaches the subscribers of an ephemeral type without seq, through a reconnect, and is neither stored nor queued', async (t) => {
  const door = gate();
  const ivy = await connected(t, 'ivy', [], { retryWait: door.retryWait });
  const jack = await connected(t, 'jack');
  const sub = await jack.subscribe('cursor');
  const events = [];
  sub.on('event', (event) => events.push(event));
  const gaps = [];
  jack.on('gap', (gap) => gaps.push(gap));

  const sent = await ivy.broadcast('cursor', { x: 1, y: 2 });
  assert.equal(sent.resourceType, 'cursor');
  await hears(sub, () => events.length === 1, 'jack hears the cursor');
  assert.equal(events[0].eventType, 'cursor_created');
  assert.equal(events[0].seq, undefined);
  assert.deepEqual(events[0].data, { x: 1, y: 2 });
  assert.equal((await failure(ivy.read('cursor', sent.id))).code, 'NOT_FOUND', 'nothing stored');

  // Resumed without since, with no gap; what follows is not taken for a repeat.
  jack.reconnect();
  await until(jack, ['state'], () => jack.state === 'connected', 10000, 'jack reconnected');
  const resumed = jack.sent.filter((m) => m.type === 'subscribe' && m.payload.topic === 'cursor');
  assert.deepEqual(resumed.map((m) => m.payload), [{ topic: 'cursor' }, { topic: 'cursor' }]);
  await ivy.broadcast('cursor', { x: 3, y: 4 });
  await hears(sub, () => events.length === 2, 'jack hears the second cursor');
  assert.deepEqual(events[1].data, { x: 3, y: 4 });
  assert.deepEqual(gaps, []);

  // Not queued: while ivy is away, broadcast fails at once and nothing waits to go out.
  door.shut();
  ivy.reconnect();
  assert.equal((await failure(ivy.broadcast('cursor', { x: 5, y: 6 }))).code, 'DISCONNECTED');
  door.open();
  await until(ivy, ['state'], () => ivy.state === 'connected', 10000, 'ivy reconnected');
  assert.equal(ivy.sent.filter((m) => m.type === 'create').length, 2, 'the refused broadcast was never sent');
  await ivy.broadcast('cursor', { x: 7, y: 8 });
  await hears(sub, () => events.length === 3, 'jack hears the third cursor');
  assert.deepEqual(events.map((e) => e.data.x), [1, 3, 7]);
});
