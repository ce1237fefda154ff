// A resume from before the oldest event the server keeps is reported as a gap, so the caller re-reads.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { client, startServer, tempDir, token, withTimeout } from './helpers.mjs';

test('a subscription resumed beyond the retained log reports a gap', async () => {
  const { dir, cleanup } = tempDir();
  // The server keeps two events per type and prunes every 20 ms.
  const server = await startServer(dir, 0, 20000, { TIDINGS_EVENTS__RETAIN_COUNT: '2', TIDINGS_EVENTS__PRUNE_INTERVAL_MS: '20' });
  const alice = client(server.url, token(dir, 'alice'));
  const watcher = client(server.url, token(dir, 'root', ['admin']));
  try {
    await alice.connect();
    for (let n = 0; n < 5; n += 1) await alice.create('order', { productId: `P${n}`, quantity: 1, totalAmount: 1 });
    await watcher.connect();
    const gaps = [];
    watcher.on('gap', (gap) => gaps.push(gap));
    // The pruner runs on its own: resubscribe until the log has dropped what `since` needs.
    let subscription;
    for (let attempt = 0; attempt < 200; attempt += 1) {
      subscription = await watcher.subscribe('order', { since: 1 });
      if (subscription.recovered === false) break;
      await watcher.unsubscribe('order');
    }
    assert.equal(subscription.recovered, false, 'the old events were pruned');
    await withTimeout(new Promise((r) => { const wait = () => (gaps.length ? r() : setImmediate(wait)); wait(); }), 5000, 'the gap callback');
    assert.deepEqual(gaps[0], { topic: 'order', subscriptionId: 'order', since: 1, seq: 5 });
  } finally {
    alice.close();
    watcher.close();
    await server.kill();
    cleanup();
  }
});
