// The `notifications` subscription across reconnects: the notifications the server pushes at sign-in count toward
// it, so that a later resume replays none of them again, and none is lost.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { apiSettings, client, eventually, gate, serverApi, startServer, tempDir, token, until } from './helpers.mjs';

let server;
let data;
let api;

before(async () => {
  data = tempDir();
  server = await startServer(data.dir, 0, 20000, apiSettings);
  api = serverApi(server.url);
});

after(async () => {
  await server?.kill('SIGTERM');
  data?.cleanup();
});

/** A client of `user` that records the titles of the notifications it delivers, and a gate on its reconnections. */
async function subscriber(user, t) {
  const away = gate();
  const c = client(server.url, token(data.dir, user), { retryWait: away.retryWait });
  t.after(() => c.close());
  const titles = [];
  c.on('notification', (n) => titles.push(n.title));
  await c.connect();
  await c.subscribe('notifications');
  return { client: c, titles, away };
}

/** How often each title was delivered. */
const counts = (titles) => Object.fromEntries([...new Set(titles)].map((t) => [t, titles.filter((x) => x === t).length]));

/** Takes the client away until `whileAway` has run with the server knowing it gone, then lets it reconnect. */
async function awayAndBack(s, user, whileAway = async () => undefined) {
  s.away.shut();
  s.client.reconnect();
  await eventually(async () => (await api.connectionsOf(user)) === 0, 10000, `the server to see ${user} gone`);
  await whileAway();
  s.away.open();
  await until(s.client, ['state'], () => s.client.state === 'connected', 10000, 'the reconnection');
}

test('a notification sent while the user was away reaches the app once, also after a second reconnect', async (t) => {
  const s = await subscriber('alice', t);
  await api.notify(['alice'], 'before');
  await until(s.client, ['notification'], () => s.titles.includes('before'), 5000, 'the live notification');

  // Pushed at sign-in, without subscriptionId, before the subscription is resumed.
  await awayAndBack(s, 'alice', () => api.notify(['alice'], 'while away'));
  await until(s.client, ['notification'], () => s.titles.includes('while away'), 5000, 'the notification pushed at sign-in');

  // The second resume must not replay it; a live notification after it shows that the replay is over.
  await awayAndBack(s, 'alice');
  await api.notify(['alice'], 'after');
  await until(s.client, ['notification'], () => s.titles.includes('after'), 5000, 'the live notification after');
  assert.deepEqual(counts(s.titles), { before: 1, 'while away': 1, after: 1 });
});

test('a notification another connection of the user got meanwhile is still replayed, once', async (t) => {
  const s = await subscriber('bob', t);
  await api.notify(['bob'], 'first');
  await until(s.client, ['notification'], () => s.titles.includes('first'), 5000, 'the live notification');

  await awayAndBack(s, 'bob', async () => {
    // Bob's other device takes this one (it is then delivered, and not pushed at sign-in again) and leaves.
    const other = client(server.url, token(data.dir, 'bob'));
    const seen = [];
    other.on('notification', (n) => seen.push(n.title));
    await other.connect();
    await api.notify(['bob'], 'on the other device');
    await until(other, ['notification'], () => seen.includes('on the other device'), 5000, 'the other device');
    other.close();
    await eventually(async () => (await api.connectionsOf('bob')) === 0, 10000, 'the other device gone');
    // This one waits for bob's next sign-in.
    await api.notify(['bob'], 'waiting');
  });
  await until(s.client, ['notification'], () => s.titles.includes('waiting') && s.titles.includes('on the other device'), 5000, 'both');

  await awayAndBack(s, 'bob');
  await api.notify(['bob'], 'last');
  await until(s.client, ['notification'], () => s.titles.includes('last'), 5000, 'the live notification after');
  assert.deepEqual(counts(s.titles), { first: 1, waiting: 1, 'on the other device': 1, last: 1 });
});
