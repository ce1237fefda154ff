// The orders board across a server restart and a network change: it shows reconnecting, recovers, and shows
// what happened while it was away.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import {
  api, base, connection, devToken, launch, openPage, row, screenshot, signIn, startServer, tempDir,
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
    await row(page, 'P-BEFORE').waitFor();
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
    const resumed = await page.locator('#inspector-list li.sent[data-type="subscribe"] pre').first().textContent();
    assert.equal(typeof JSON.parse(resumed).payload.since, 'number');
    const answer = await page.locator('#inspector-list li.received[data-type="subscribe"] pre').first().textContent();
    assert.equal(JSON.parse(answer).payload.recovered, true);
    assert.equal(JSON.parse(answer).payload.items, undefined, 'no snapshot when the replay follows');
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
