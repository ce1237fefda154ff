// The rate limit across a reconnect: the client paces what it sends within the limit the server advertises, and a
// RATE_LIMITED answer to a resumed subscription or a queued request is retried rather than final.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { client, gate, startServer, tempDir, token, until } from './helpers.mjs';

/** The server's bucket in this test: 5 messages at once, then 20 a second. */
const LIMITS = { TIDINGS_LIMITS__RATE_BURST: '5', TIDINGS_LIMITS__RATE_PER_SECOND: '20' };

/** Runs a request of the test's own set-up, waiting as the server says when it is RATE_LIMITED. */
async function patiently(call) {
  for (;;) {
    try {
      return await call();
    } catch (error) {
      if (error?.code !== 'RATE_LIMITED') throw error;
      await new Promise((r) => setTimeout(r, error.details.retryAfterMs));
    }
  }
}

test('after a reconnect every subscription is live again and queued requests succeed, under a small rate limit', async (t) => {
  const { dir, cleanup } = tempDir();
  const server = await startServer(dir, 0, 20000, LIMITS);
  const away = gate();
  const producer = client(server.url, token(dir, 'alice'));
  const watcher = client(server.url, token(dir, 'alice'), { retryWait: away.retryWait });
  t.after(async () => {
    producer.close();
    watcher.close();
    await server.kill();
    cleanup();
  });
  await Promise.all([producer.connect(), watcher.connect()]);

  // Thirty orders, each watched through a topic of its own: with the resumes, far more than the burst of 5.
  const ids = [];
  for (let n = 0; n < 30; n += 1) ids.push((await patiently(() => producer.create('order', { productId: `P${n}`, quantity: 1, totalAmount: 1 }))).id);
  for (const id of ids) await patiently(() => watcher.subscribe(`order:${id}`));
  const ended = [];
  watcher.on('unsubscribed', ({ topic, reason }) => ended.push(`${topic}: ${reason.code}`));
  const topics = new Set();
  watcher.on('event', (e) => topics.add(e.topic));

  // Requests made while the watcher is away wait in its queue, and go out behind the resumed subscriptions.
  away.shut();
  watcher.reconnect();
  const queued = ids.slice(0, 5).map((id) => watcher.read('order', id));
  away.open();
  await until(watcher, ['state'], () => watcher.state === 'connected', 15000, 'the reconnection');
  const results = await Promise.allSettled(queued);
  assert.deepEqual(results.map((r) => r.status === 'fulfilled' ? 'read' : r.reason.code), Array(5).fill('read'));
  assert.deepEqual(ended, [], 'no subscription ended');
  assert.equal(watcher.subscriptions().length, 30);

  // Every subscription is live on the server: a change of each order reaches the watcher.
  for (const id of ids) await patiently(() => producer.update('order', id, { quantity: 2 }));
  await until(watcher, ['event'], () => topics.size === ids.length, 15000, 'an event on every topic');
});
