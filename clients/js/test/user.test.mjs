// A reconnect as another user: when getToken returns another user's token, nothing the previous user asked for is
// done as the new one; the queued requests fail with USER_CHANGED and the subscriptions end.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { TidingsError } from '../dist/index.js';
import { client, gate, startServer, tempDir, token, until } from './helpers.mjs';

test('a reconnect as another user fails the queued requests and ends the subscriptions of the previous one', async (t) => {
  const { dir, cleanup } = tempDir();
  const server = await startServer(dir);
  let user = 'alice';
  const away = gate();
  const shared = client(server.url, () => token(dir, user), { retryWait: away.retryWait });
  const admin = client(server.url, token(dir, 'root', ['admin']));
  t.after(async () => {
    shared.close();
    admin.close();
    await server.kill();
    cleanup();
  });
  await Promise.all([shared.connect(), admin.connect()]);
  await shared.subscribe('order');
  await shared.subscribe('notifications');
  const ended = [];
  shared.on('unsubscribed', ({ topic, reason }) => ended.push([topic, reason.code]));

  // Alice's create waits in the queue while the client is away; when it comes back, getToken signs bob in.
  away.shut();
  shared.reconnect();
  const queued = shared.create('order', { productId: 'ALICE', quantity: 1, totalAmount: 1 });
  user = 'bob';
  away.open();
  const error = await queued.then(
    (created) => assert.fail(`alice's queued create was sent as ${created.ownerId}`),
    (e) => e,
  );
  assert.ok(error instanceof TidingsError);
  assert.equal(error.code, 'USER_CHANGED');
  await until(shared, ['state'], () => shared.state === 'connected', 10000, 'the reconnection');
  assert.deepEqual(ended.sort(), [['notifications', 'USER_CHANGED'], ['order', 'USER_CHANGED']]);
  assert.deepEqual(shared.subscriptions(), []);
  assert.deepEqual((await admin.list('order')).items, [], 'nothing was created');

  // The client goes on as bob, with no subscription on the server: subscribing to `order` again is no CONFLICT.
  const mine = await shared.create('order', { productId: 'BOB', quantity: 1, totalAmount: 1 });
  assert.equal(mine.ownerId, 'bob');
  await shared.subscribe('order');
});
