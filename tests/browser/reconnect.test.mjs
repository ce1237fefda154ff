// The orders board across a server restart and a network change: it shows reconnecting, recovers, and shows
// what happened while it was away, by a replay or, when the server cannot replay, by the snapshot of a gap.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import {
  api, base, connection, devToken, launch, messages, openPage, row, saved, screenshot, signIn, startServer, tempDir,
} from './helpers.mjs';

let browser;
before(async () => {
  browser = await launch();
});
after(() => browser?.close());

test('after a server restart the page shows reconnecting, recovers, and shows the changes made meanwhile', async () => {
  const { dir, cleanup } = tempDir();
  let server = await startServer(dir);
  const url = base(server);
  try {
    const page = await openPage(browser, url);
    // The page's WebSockets pass through a gate. While it is shut, the page cannot reach the restarted server,
    // so the changes below happen before it is back, whatever its backoff draws: it must replay them.
    const gate = { open: true };
    await page.routeWebSocket(/\/ws$/, (socket) => {
      if (gate.open) socket.connectToServer();
      else socket.close({ code: 1013, reason: 'the test holds the page offline' });
    });
    await page.reload();
    await page.locator('body[data-ready="true"]').waitFor();
    await signIn(page, 'alice');
    await page.getByLabel('Product').fill('P-BEFORE');
    await page.getByRole('button', { name: 'Create order' }).click();
    await saved(page, 'P-BEFORE').waitFor();
    const before = await row(page, 'P-BEFORE').getAttribute('data-id');

    gate.open = false;
    await server.kill('SIGKILL');
    await connection(page, 'reconnecting');
    await screenshot(page, 'restart-reconnecting');

    server = await startServer(dir, server.port);
    const alice = await devToken(url, 'alice');
    const admin = await devToken(url, 'olga', ['admin']);
    await api(url, alice, 'POST', '/resources/order', { productId: 'P-MEANWHILE', quantity: 5, totalAmount: 50 });
    await api(url, admin, 'PATCH', `/resources/order/${before}`, { status: 'shipped' });

    gate.open = true;
    await connection(page, 'connected', 20000);
    await row(page, 'P-MEANWHILE').waitFor();
    await row(page, 'P-BEFORE').locator('.status.shipped').waitFor();
    // They came as a replay of the subscription from where it left off, not from re-reading the list.
    const [resumed] = await messages(page, 'sent', 'subscribe');
    assert.equal(typeof resumed.payload.since, 'number');
    const [answer] = await messages(page, 'received', 'subscribe');
    assert.equal(answer.payload.recovered, true);
    assert.equal(answer.payload.items, undefined, 'no snapshot when the replay follows');
    assert.equal(await page.locator('#inspector-list li.sent[data-type="read"]').count(), 0);
    // The status change's notification, made while alice was away, is pushed at her next sign-in.
    await page.locator('.toast').filter({ hasText: 'status is now shipped' }).waitFor();
    assert.equal(await page.locator('#orders li.order').count(), 2);
    await screenshot(page, 'restart-recovered');
    assert.deepEqual(page.errors, []);
  } finally {
    await server.kill();
    cleanup();
  }
});

test('when the server cannot replay what the page missed, the list is replaced with what the server holds', async () => {
  const first = tempDir();
  const second = tempDir();
  let server = await startServer(first.dir);
  const url = base(server);
  try {
    const page = await openPage(browser, url);
    // The gate keeps the page away until the second server holds what the page must show.
    const gate = { open: true };
    await page.routeWebSocket(/\/ws$/, (socket) => {
      if (gate.open) socket.connectToServer();
      else socket.close({ code: 1013, reason: 'the test holds the page offline' });
    });
    await page.reload();
    await page.locator('body[data-ready="true"]').waitFor();
    await signIn(page, 'olga', { admin: true });
    const admin = await devToken(url, 'olga', ['admin']);
    for (const productId of ['P-OLD-1', 'P-OLD-2', 'P-OLD-3']) {
      await api(url, admin, 'POST', '/resources/order', { productId, quantity: 1, totalAmount: 1 });
      await row(page, productId).waitFor();
    }

    // Another server on the same port with another data dir: its log is shorter than the seq the page resumes
    // from, so it answers recovered: false, with the view's snapshot.
    gate.open = false;
    await server.kill('SIGKILL');
    await connection(page, 'reconnecting');
    server = await startServer(second.dir, server.port);
    const other = await devToken(url, 'olga', ['admin']);
    await api(url, other, 'POST', '/resources/order', { productId: 'P-NEW', quantity: 2, totalAmount: 2 });
    gate.open = true;
    await connection(page, 'connected', 20000);
    await row(page, 'P-NEW').waitFor();
    await row(page, 'P-OLD-1').waitFor({ state: 'detached' });
    assert.equal(await page.locator('#orders li.order').count(), 1);
    assert.equal(await page.locator('#orders-title').innerText(), 'All orders (1)');
    const [answer] = await messages(page, 'received', 'subscribe');
    assert.equal(answer.payload.recovered, false);
    assert.deepEqual(answer.payload.items.map((r) => r.data.productId), ['P-NEW'], 'the snapshot came with the gap');
    await page.locator('#orders[data-status="live"]').waitFor({ state: 'attached' });
    await screenshot(page, 'gap-replaced');
    assert.deepEqual(page.errors, []);
  } finally {
    await server.kill();
    first.cleanup();
    second.cleanup();
  }
});

test('coming back online probes the connection with a ping, from the page itself', async () => {
  const { dir, cleanup } = tempDir();
  const server = await startServer(dir);
  try {
    const page = await openPage(browser, base(server));
    await signIn(page, 'alice');
    const probes = page.locator('#inspector-list li.sent[data-type="ping"]');
    assert.equal(await probes.count(), 0);

    await page.context().setOffline(true);
    await page.context().setOffline(false);
    // The browser's `online` event makes the SDK send a ping; the pong shows the link is alive.
    await probes.first().waitFor({ state: 'attached' });
    await page.locator('#inspector-list li.received[data-type="pong"]').first().waitFor({ state: 'attached' });
    await connection(page, 'connected');
    await screenshot(page, 'online-probe');
    assert.deepEqual(page.errors, []);
  } finally {
    await server.kill();
    cleanup();
  }
});
