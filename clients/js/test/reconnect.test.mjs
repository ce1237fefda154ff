// Kills the server with SIGKILL while a subscriber is connected and creates keep coming, restarts it on the same
// data dir, and checks that the subscriber ends with every event exactly once, in order, and no create twice.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { client, startServer, tempDir, token, until, withTimeout } from './helpers.mjs';

test('SIGKILL and restart: every event exactly once, in order, and no create duplicated', async (t) => {
  const data = tempDir();
  let server = await startServer(data.dir);
  t.after(async () => {
    await server.kill();
    data.cleanup();
  });
  const url = () => server.url;
  let tokenCalls = 0;
  const getToken = async () => (tokenCalls++, token(data.dir, 'root', ['admin']));

  // The subscriber's first reconnection waits until the test opens the gate, so that events are created while it
  // is away; later attempts go at once.
  let openGate;
  const gate = new Promise((r) => (openGate = r));
  const subscriber = client(url, getToken, { retryWait: (attempt) => (attempt === 1 ? gate : Promise.resolve()) });
  const producer = client(url, token(data.dir, 'alice'), { requestTimeoutMs: 30000 });
  t.after(() => [subscriber, producer].forEach((c) => c.close()));
  const states = [];
  subscriber.on('state', (s) => states.push(s));
  const gaps = [];
  subscriber.on('gap', (g) => gaps.push(g));
  const events = [];
  subscriber.on('event', (e) => events.push(e));
  await Promise.all([subscriber.connect(), producer.connect()]);
  await subscriber.subscribe('order');

  // Creates run one after another until stopped; each keeps its requestId across reconnects.
  const created = [];
  let stop = false;
  const loop = (async () => {
    while (!stop) created.push(await producer.create('order', { productId: `P${created.length}`, quantity: 1, totalAmount: 1 }));
  })();
  await until(subscriber, ['event'], () => events.length >= 5, 10000, 'five events before the kill');

  await server.kill('SIGKILL');
  await until(subscriber, ['state'], () => subscriber.state === 'reconnecting', 10000, 'the subscriber to notice');
  const beforeRestart = created.length;
  let port = server.port;
  try {
    server = await startServer(data.dir, port);
  } catch {
    // The port was taken in between; the clients' url function follows the new one.
    server = await startServer(data.dir);
    port = server.port;
  }

  // While the subscriber is away: the producer reconnects and goes on, and a second client creates too.
  await until(producer, ['state'], () => producer.state === 'connected', 15000, 'the producer to reconnect');
  const second = client(url, token(data.dir, 'bob'));
  t.after(() => second.close());
  await second.connect();
  const bobs = [];
  for (let i = 0; i < 3; i++) bobs.push(await second.create('order', { productId: `B${i}`, quantity: 1, totalAmount: 2 }));
  assert.equal(subscriber.state, 'reconnecting');
  openGate();
  await until(subscriber, ['state'], () => subscriber.state === 'connected', 15000, 'the subscriber to reconnect');
  stop = true;
  await withTimeout(loop, 30000, 'the create loop to end');
  assert.ok(created.length > beforeRestart, 'creates went on after the restart');

  // Every order in storage, read by the admin, page by page.
  const stored = [];
  let cursor;
  do {
    const page = await subscriber.list('order', { limit: 100, ...(cursor ? { cursor } : {}) });
    stored.push(...page.items);
    cursor = page.nextCursor ?? undefined;
  } while (cursor);
  const ids = [...created, ...bobs].map((r) => r.id);
  assert.equal(new Set(ids).size, ids.length, 'each create made its own order');
  assert.equal(stored.length, ids.length, 'no create was applied twice');

  await until(subscriber, ['event'], () => events.length >= stored.length, 15000, 'every event at the subscriber');
  const seqs = events.map((e) => e.seq);
  assert.ok(seqs.every((s, i) => i === 0 || s > seqs[i - 1]), `events in order: ${seqs}`);
  assert.deepEqual(events.map((e) => e.id).sort(), stored.map((r) => r.id).sort(), 'every event exactly once');
  assert.deepEqual(gaps, []);
  assert.ok(states.includes('reconnecting'));
  assert.ok(tokenCalls >= 2, 'the subscriber asked getToken again to re-authenticate');
});
