// The orders board's outbox in chromium: an order created while the browser is offline shows at once as not saved,
// waits in IndexedDB across a reload of the page, and is created exactly once when the network returns; a create the
// server applied just before the page lost it is sent again after the reload and answered with its first reply.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { api, base, connection, devToken, launch, messages, openPage, row, saved, screenshot, signIn, startServer, tempDir } from './helpers.mjs';

let browser;
before(async () => {
  browser = await launch();
});
after(() => browser?.close());

/**
 * The writes the board's outbox holds in IndexedDB for `user`, as the page sees them. A database that does not exist
 * is not made by looking: its creation is aborted, so that the SDK still makes it with its object store.
 */
function stored(page, user) {
  return page.evaluate(
    (name) =>
      new Promise((resolve, reject) => {
        const open = indexedDB.open(name);
        let absent = false;
        open.onupgradeneeded = () => {
          absent = true;
          open.transaction.abort();
        };
        open.onerror = () => (absent ? resolve([]) : reject(open.error));
        open.onsuccess = () => {
          const db = open.result;
          if (!db.objectStoreNames.contains('writes')) return (db.close(), resolve([]));
          const all = db.transaction('writes').objectStore('writes').getAll();
          all.onsuccess = () => (db.close(), resolve(all.result));
          all.onerror = () => reject(all.error);
        };
      }),
    `tidings-orders-board:${user}`,
  );
}

/** Waits until the board's outbox in IndexedDB holds `count` writes, asking the page again as each answer comes. */
async function whenStored(page, user, count, timeoutMs = 10000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const writes = await stored(page, user);
    if (writes.length === count) return writes;
    if (Date.now() > deadline) {
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${count} writes in IndexedDB; it holds ${writes.length}`);
    }
  }
}

/** The orders of `productId` on the server, read over HTTP as their owner. */
async function ordersOf(url, token, productId) {
  return (await api(url, token, 'GET', `/resources/order?filter.productId=${encodeURIComponent(productId)}`)).items;
}

/** Reloads the page while the browser is offline: chromium cannot load it, and shows its error page instead. */
async function reloadOffline(page) {
  const failed = await page.reload().then(
    () => undefined,
    (error) => error,
  );
  assert.match(String(failed?.message), /ERR_INTERNET_DISCONNECTED/, 'the reload could not reach the server');
}

/** Reloads the page once the browser is online again: the board signs in from the tab's session and reconnects. */
async function reloadOnline(page) {
  await page.reload();
  await page.locator('body[data-ready="true"]').waitFor();
  await connection(page, 'connected');
}

test('an order created offline, with a reload in between, is created exactly once when the network returns', async () => {
  const { dir, cleanup } = tempDir();
  const server = await startServer(dir);
  const url = base(server);
  try {
    const page = await openPage(browser, url);
    await signIn(page, 'alice');
    const alice = await devToken(url, 'alice');

    await page.context().setOffline(true);
    // The SDK probes the link when the browser goes offline; without a pong it drops it and waits for the network.
    await connection(page, 'offline');
    await page.getByLabel('Product').fill('P-OFFLINE');
    await page.getByRole('button', { name: 'Create order' }).click();
    const shown = row(page, 'P-OFFLINE');
    await shown.and(page.locator('[data-pending="true"]')).waitFor();
    assert.equal(await shown.locator('.unsaved').innerText(), 'not saved yet');
    assert.equal(await page.getByLabel('Product').inputValue(), '', 'the form is ready for the next order');
    await screenshot(page, 'outbox-offline-pending');
    const [write] = await whenStored(page, 'alice', 1);
    assert.equal(write.kind, 'create');
    assert.equal(write.data.productId, 'P-OFFLINE');
    assert.equal(write.userId, 'alice');

    // The page goes while the write is only in IndexedDB: nothing reached the server.
    await reloadOffline(page);
    assert.deepEqual(await ordersOf(url, alice, 'P-OFFLINE'), []);

    await page.context().setOffline(false);
    await reloadOnline(page);
    // The page after the reload reads the write back from IndexedDB and sends it; the server's reply saves the row.
    await saved(page, 'P-OFFLINE').waitFor({ timeout: 15000 });
    const orders = await ordersOf(url, alice, 'P-OFFLINE');
    assert.equal(orders.length, 1, 'exactly one order');
    assert.equal(await row(page, 'P-OFFLINE').getAttribute('data-id'), orders[0].id);
    assert.equal(await row(page, 'P-OFFLINE').count(), 1);
    // The page after the reload sent the write read back from IndexedDB, with its requestId, once.
    const creates = await messages(page, 'sent', 'create');
    assert.deepEqual(creates.map((message) => message.requestId), [write.requestId]);
    assert.deepEqual(await stored(page, 'alice'), [], 'the outbox is empty');
    await screenshot(page, 'outbox-online-saved');
    assert.deepEqual(page.errors, []);
  } finally {
    await server.kill();
    cleanup();
  }
});

test('a create the server applied just before the page went is sent again after the reload, and makes one order', async () => {
  const { dir, cleanup } = tempDir();
  const server = await startServer(dir);
  const url = base(server);
  try {
    const page = await openPage(browser, url);
    // The page's WebSockets pass through the test, which loses the server's reply to an order's create while `deaf`
    // is set: the server applied it, and the page never hears so. (The page's presence is made by creates too.)
    let replied;
    const link = { deaf: true, creates: [], lost: [], replied: new Promise((resolve) => (replied = resolve)) };
    await page.routeWebSocket(/\/ws$/, (socket) => {
      const server = socket.connectToServer();
      socket.onMessage((message) => {
        const sent = JSON.parse(String(message));
        if (sent.type === 'create' && sent.payload.resourceType === 'order') link.creates.push(sent.requestId);
        server.send(message);
      });
      server.onMessage((message) => {
        const received = JSON.parse(String(message));
        if (link.deaf && received.type === 'create' && received.payload.resourceType === 'order') {
          link.lost.push(received);
          return void replied(received.payload);
        }
        socket.send(message);
      });
    });
    await page.reload();
    await page.locator('body[data-ready="true"]').waitFor();
    await signIn(page, 'alice');
    const alice = await devToken(url, 'alice');

    await page.getByLabel('Product').fill('P-LOST-REPLY');
    await page.getByRole('button', { name: 'Create order' }).click();
    await row(page, 'P-LOST-REPLY').and(page.locator('[data-pending="true"]')).waitFor();
    const [write] = await whenStored(page, 'alice', 1);
    // The server replied, so it holds the order: it replies to a create once the order is stored.
    const made = await link.replied;
    assert.deepEqual((await ordersOf(url, alice, 'P-LOST-REPLY')).map((r) => r.id), [made.id]);
    assert.equal(link.lost.length, 1, 'the reply was lost');

    // The network goes, and the page with it, before the page heard the reply.
    await page.context().setOffline(true);
    await reloadOffline(page);
    await page.context().setOffline(false);
    link.deaf = false;
    await reloadOnline(page);
    await saved(page, 'P-LOST-REPLY').waitFor();
    assert.deepEqual(link.creates, [write.requestId, write.requestId], 'sent again with its requestId');
    const orders = await ordersOf(url, alice, 'P-LOST-REPLY');
    assert.deepEqual(orders.map((r) => r.id), [made.id], 'one order, the first');
    assert.equal(await row(page, 'P-LOST-REPLY').getAttribute('data-id'), made.id);
    assert.deepEqual(await stored(page, 'alice'), []);
    assert.deepEqual(page.errors, []);
  } finally {
    await server.kill();
    cleanup();
  }
});
