// The admin console (/admin) in a real browser against a real server: live connections and disconnecting one, the
// resource types, the resource browser with a query and cursor pages, the live tail of a topic (by keyboard alone),
// the cluster, the webhooks, the charts of /metrics, and who is refused.
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import { after, before, test } from 'node:test';
import { api, base, connection, devToken, launch, openPage, screenshot, signIn, startServer, tempDir } from './helpers.mjs';

const API_KEY = 'an-admin-console-test-key-0123456789';

let browser;
before(async () => {
  browser = await launch();
});
after(() => browser?.close());

/** A server with an API key on a fresh data dir for one test; `stop` kills it and removes the dir. */
async function serve(settings = {}) {
  const { dir, cleanup } = tempDir();
  const server = await startServer(dir, 0, 20000, { TIDINGS_API_KEYS: JSON.stringify([API_KEY]), ...settings });
  return { ...server, base: base(server), stop: async () => (await server.kill(), cleanup()) };
}

/** The console in a fresh context (its own sessionStorage). */
const openConsole = (server) => openPage(browser, `${server.base}/admin`);

/** Signs in on the console through the dev sign-in and waits for its views. */
async function consoleSignIn(page, user, roles = 'tidings-admin, admin') {
  await page.getByLabel('User').fill(user);
  await page.getByLabel('Roles').fill(roles);
  await page.getByRole('button', { name: 'Sign in', exact: true }).click();
  await page.getByRole('tablist', { name: 'Console views' }).waitFor();
}

/** Opens a view by its tab and waits until the panel shows it. */
async function openTab(page, name, id) {
  await page.getByRole('tab', { name, exact: true }).click();
  await page.locator(`#panel[data-view="${id}"]`).waitFor();
}

/** The admin API as a script would call it, with the key. */
async function adminApi(server, path) {
  const response = await fetch(`${server.base}/api/v1/admin${path}`, { headers: { 'x-api-key': API_KEY } });
  assert.equal(response.status, 200, `GET /api/v1/admin${path}`);
  return response.json();
}

const activeId = (page) => page.evaluate(() => document.activeElement?.id);

test('an admin sees a board connect, and disconnects it after a confirm step; the board is told why', async () => {
  const server = await serve();
  try {
    const admin = await openConsole(server);
    await consoleSignIn(admin, 'root');
    assert.equal(await admin.locator('#who').innerText(), 'Signed in as root (dev sign-in)\nSign out');

    const board = await openPage(browser, server.base);
    await signIn(board, 'alice');
    // Listed within a refresh, with its subscriptions (the board's view and its presence).
    const row = admin.locator('#connections tr[data-user="alice"]');
    await row.filter({ hasText: 'presence:order' }).waitFor();
    const session = await row.getAttribute('data-session');
    assert.match(session, /\S/);

    // Disconnect asks first; Cancel goes back to the button, with the focus on it.
    await row.getByRole('button', { name: `Disconnect ${session} (alice)` }).click();
    await admin.getByRole('button', { name: 'Cancel' }).click();
    assert.equal(await admin.evaluate(() => document.activeElement.getAttribute('aria-label')), `Disconnect ${session} (alice)`);
    await row.getByRole('button', { name: `Disconnect ${session} (alice)` }).click();
    assert.equal(await activeId(admin), `reason-${session}`, 'the confirm step puts the focus in its reason');
    await admin.getByLabel('Reason (optional)').fill('maintenance window');
    await screenshot(admin, 'admin-disconnect-confirm');
    await admin.getByRole('button', { name: 'Confirm disconnect' }).click();

    await row.waitFor({ state: 'detached' });
    await admin.locator('#connections-status').filter({ hasText: `Disconnected ${session} (alice).` }).waitFor();
    // The board was told, and does not reconnect: 4502 is an operator's decision.
    await connection(board, 'offline');
    await board.locator('.toast').filter({ hasText: 'maintenance window' }).waitFor();
    const { connections } = await adminApi(server, '/connections');
    assert.deepEqual(connections.filter((c) => c.sessionId === session), []);
    await screenshot(admin, 'admin-connections-after-disconnect');
    assert.deepEqual([...admin.errors, ...board.errors], []);
  } finally {
    await server.stop();
  }
});

test('the types view shows order and its schema; the browser lists orders by a query, a page at a time', async () => {
  const server = await serve();
  try {
    // Twelve orders with a quantity of 5 or more and three below, by two users, before the console opens.
    const alice = await devToken(server.base, 'alice');
    const bob = await devToken(server.base, 'bob');
    const order = (n) => ({ op: 'create', resourceType: 'order', data: { productId: `P-${String(n).padStart(2, '0')}`, quantity: n, totalAmount: n * 2 } });
    await api(server.base, alice, 'POST', '/batch', { operations: [1, 2, 3, 5, 6, 7, 8, 9, 10, 11, 12].map(order) });
    await api(server.base, bob, 'POST', '/batch', { operations: [13, 14, 15, 16].map(order) });

    const page = await openConsole(server);
    await consoleSignIn(page, 'root');
    await openTab(page, 'Types', 'types');
    const card = page.locator('.type-card[data-type="order"]');
    await card.waitFor();
    assert.match(await card.locator('.settings').innerText(), /id_prefix\s+ORD/);
    const fields = await card.locator('#schema-order tbody tr').evaluateAll((rows) => rows.map((r) => r.dataset.field));
    assert.deepEqual(fields.sort(), ['productId', 'quantity', 'status', 'totalAmount']);
    assert.equal(
      await card.locator('#schema-order tr[data-field="status"]').innerText(),
      'status\tstring\trequired\tone of pending, paid, shipped, cancelled; default "pending"',
    );
    await card.getByText('Schema of order as JSON').click();
    assert.equal(JSON.parse(await card.locator('pre.json').innerText()).properties.quantity.minimum, 1);
    await screenshot(page, 'admin-types');

    await openTab(page, 'Resources', 'resources');
    await page.getByLabel('Query').fill('data.quantity gte 5');
    await page.getByLabel('Order by').fill('productId');
    await page.getByLabel('Page size').selectOption('10');
    await page.getByRole('button', { name: 'List', exact: true }).click();
    const products = () => page.locator('#resources tbody tr').evaluateAll((rows) => rows.map((r) => r.cells[4].textContent));
    const status = page.locator('#resources-status');
    await status.filter({ hasText: 'Page 1: 10 resources of 12 matching; more on the next page.' }).waitFor();
    assert.deepEqual(await products(), ['P-05', 'P-06', 'P-07', 'P-08', 'P-09', 'P-10', 'P-11', 'P-12', 'P-13', 'P-14']);
    assert.match(await page.locator('#resources-sent').innerText(), /query \{"field":"data\.quantity","gte":5\}/);
    // The pages follow the query they began with, even once the box says something else.
    await page.getByLabel('Query').fill('data.quantity lt 3');
    await page.getByRole('button', { name: 'Next page' }).click();
    await status.filter({ hasText: 'Page 2: 2 resources of 12 matching.' }).waitFor();
    assert.deepEqual(await products(), ['P-15', 'P-16']);
    assert.equal(await page.getByRole('button', { name: 'Next page' }).isDisabled(), true);
    await page.getByRole('button', { name: 'First page' }).click();
    await status.filter({ hasText: 'Page 1: 10 resources of 12 matching' }).waitFor();
    await page.getByRole('button', { name: 'List', exact: true }).click();
    await status.filter({ hasText: 'Page 1: 2 resources of 2 matching.' }).waitFor();
    assert.deepEqual(await products(), ['P-01', 'P-02']);

    // The JSON form, and two terms with and.
    await page.getByLabel('Query').fill('{"and": [{"field": "ownerId", "eq": "bob"}, {"field": "data.quantity", "lt": 15}]}');
    await page.getByRole('button', { name: 'List', exact: true }).click();
    // The status reads as it did for the query before; the rows tell the new list (drawn all at once).
    await page.locator('#resources tbody tr').filter({ hasText: 'P-13' }).waitFor();
    assert.deepEqual(await products(), ['P-13', 'P-14']);
    assert.equal(await status.innerText(), 'Page 1: 2 resources of 2 matching.');
    await screenshot(page, 'admin-resources');

    // A query the server refuses says why, in its words.
    await page.getByLabel('Query').fill('data.colour eq red');
    await page.getByRole('button', { name: 'List', exact: true }).click();
    await status.filter({ hasText: /^Error: INVALID_PARAMS: .*\/query/ }).waitFor();
    assert.deepEqual(page.errors, []);
  } finally {
    await server.stop();
  }
});

test('by keyboard alone, an admin signs in, opens the live tail, and sees an order another client creates', async () => {
  const server = await serve();
  try {
    const page = await openConsole(server);
    // The focus starts in the user field of the dev sign-in; the roles field names the admin role already.
    assert.equal(await activeId(page), 'dev-user');
    await page.keyboard.press('ControlOrMeta+A');
    await page.keyboard.type('root');
    await page.keyboard.press('Enter');
    await page.getByRole('tablist', { name: 'Console views' }).waitFor();
    assert.equal(await activeId(page), 'tab-connections', 'after sign-in the focus is on the open tab');

    // Arrow keys move along the tabs and open each: Types, Resources, Live tail.
    for (let i = 0; i < 3; i += 1) await page.keyboard.press('ArrowRight');
    assert.equal(await activeId(page), 'tab-tail');
    assert.equal(await page.locator('#tab-tail').getAttribute('aria-selected'), 'true');
    await page.locator('#panel[data-view="tail"]').waitFor();
    for (let presses = 0; presses < 5 && (await activeId(page)) !== 'tail-topic'; presses += 1) await page.keyboard.press('Tab');
    assert.equal(await activeId(page), 'tail-topic');
    await page.keyboard.press('ControlOrMeta+A');
    await page.keyboard.type('order');
    await page.keyboard.press('Enter');
    await page.locator('#panel [data-state="live"]').waitFor();
    await page.locator('#tail-status').filter({ hasText: 'Following order: live.' }).waitFor();

    // Another client creates an order after the tail started: it shows, with who did it.
    const alice = await devToken(server.base, 'alice');
    const first = await api(server.base, alice, 'POST', '/resources/order', { productId: 'P-TAIL', quantity: 2, totalAmount: 5 });
    const shown = page.locator(`#tail-events li.event[data-id="${first.id}"]`);
    await shown.waitFor();
    assert.equal(await shown.getAttribute('data-event-type'), 'order_created');
    assert.match(await shown.innerText(), /by alice/);
    await screenshot(page, 'admin-live-tail');

    // Pause (Tab to it, Enter) holds what comes; Resume shows it, newest first.
    for (let presses = 0; presses < 6 && (await page.evaluate(() => document.activeElement.textContent)) !== 'Pause'; presses += 1) {
      await page.keyboard.press('Tab');
    }
    await page.keyboard.press('Enter');
    assert.equal(await page.getByRole('button', { name: 'Resume' }).getAttribute('aria-pressed'), 'true');
    const second = await api(server.base, alice, 'POST', '/resources/order', { productId: 'P-HELD', quantity: 1, totalAmount: 1 });
    await page.locator('#tail-status').filter({ hasText: '1 new event held while paused' }).waitFor();
    assert.equal(await page.locator('#tail-events li.event').count(), 1);
    await page.keyboard.press('Enter');
    await page.locator(`#tail-events li.event[data-id="${second.id}"]`).waitFor();
    assert.deepEqual(
      await page.locator('#tail-events li.event').evaluateAll((items) => items.map((i) => i.dataset.id)),
      [second.id, first.id],
    );

    // Leaving the view stops the feed (Shift+Tab back to the tabs, on to Cluster); coming back finds it stopped,
    // with what it had shown.
    for (let presses = 0; presses < 10 && (await activeId(page)) !== 'tab-tail'; presses += 1) await page.keyboard.press('Shift+Tab');
    await page.keyboard.press('ArrowRight');
    await page.locator('#panel[data-view="cluster"]').waitFor();
    await page.keyboard.press('ArrowLeft');
    await page.locator('#panel[data-view="tail"] [data-state="stopped"]').waitFor();
    const third = await api(server.base, alice, 'POST', '/resources/order', { productId: 'P-AWAY', quantity: 1, totalAmount: 1 });
    assert.equal(await page.locator('#tail-events li.event').count(), 2);

    // Started again from seq 0, the feed replays every event of the topic, then goes on live.
    for (let presses = 0; presses < 5 && (await activeId(page)) !== 'tail-since'; presses += 1) await page.keyboard.press('Tab');
    await page.keyboard.type('0');
    await page.keyboard.press('Enter');
    await page.locator(`#tail-events li.event[data-id="${third.id}"]`).waitFor();
    assert.deepEqual(
      await page.locator('#tail-events li.event').evaluateAll((items) => items.map((i) => [i.dataset.id, i.dataset.seq])),
      [[third.id, '3'], [second.id, '2'], [first.id, '1']],
    );
    await screenshot(page, 'admin-live-tail-replayed');
    assert.deepEqual(page.errors, []);
  } finally {
    await server.stop();
  }
});

/** A webhook receiver that answers 200 to everything. Resolves to {url, close}. */
function receiver() {
  const hook = createServer((request, response) => request.resume().on('end', () => response.writeHead(200).end()));
  return new Promise((resolve) =>
    hook.listen(0, '127.0.0.1', () => resolve({ url: `http://127.0.0.1:${hook.address().port}/hook`, close: () => hook.close() })),
  );
}

test('the cluster view shows the node and its memory broker; a webhook pauses and resumes; the charts draw', async () => {
  const hook = await receiver();
  const server = await serve({
    TIDINGS_WEBHOOKS: `[{name="audit", url="${hook.url}", resource_type="order", secret="an-audit-hook-secret-0123"}]`,
  });
  try {
    const page = await openConsole(server);
    await consoleSignIn(page, 'root');

    await openTab(page, 'Cluster', 'cluster');
    await page.locator('#cluster-node').filter({ hasText: `127.0.0.1:${server.port}` }).waitFor();
    assert.equal(await page.locator('#cluster-broker').innerText(), 'memory, connected');
    assert.deepEqual(
      await page.locator('#cluster-nodes tbody tr').evaluateAll((rows) => rows.map((r) => [r.cells[0].textContent, r.cells[1].textContent])),
      [[`127.0.0.1:${server.port}`, 'this node']],
    );
    await screenshot(page, 'admin-cluster');

    await openTab(page, 'Webhooks', 'webhooks');
    const audit = page.locator('#webhooks tr[data-hook="audit"]');
    await audit.filter({ hasText: 'running' }).waitFor();
    await audit.getByRole('button', { name: 'Pause audit' }).click();
    await page.locator('#webhooks tr[data-hook="audit"][data-paused="true"]').filter({ hasText: 'paused' }).waitFor();
    // While it is paused, an order waits for it: its lag says so.
    const alice = await devToken(server.base, 'alice');
    await api(server.base, alice, 'POST', '/resources/order', { productId: 'P-HOOK', quantity: 1, totalAmount: 1 });
    await page.locator('#webhooks tr[data-hook="audit"] td:nth-child(5)').filter({ hasText: /^1$/ }).waitFor();
    await screenshot(page, 'admin-webhooks-paused');
    await audit.getByRole('button', { name: 'Resume audit' }).click();
    await page.locator('#webhooks tr[data-hook="audit"][data-paused="false"] td:nth-child(5)').filter({ hasText: /^0$/ }).waitFor();

    // The charts: a board connects and sends messages; the connections chart reads 1, the others have lines.
    const board = await openPage(browser, server.base);
    await signIn(board, 'bob');
    await openTab(page, 'Charts', 'charts');
    await page.locator('figure[data-series="connections"] .chart-value').filter({ hasText: /^1$/ }).waitFor();
    await page.waitForFunction(() => Number(document.querySelector('figure[data-series="messages-in"]')?.dataset.points) >= 2);
    const line = await page.locator('figure[data-series="messages-in"] path.chart-line').getAttribute('d');
    assert.match(line, /^M[\d.]+,[\d.]+(L[\d.]+,[\d.]+)+/, 'a line of at least two points');
    assert.match(await page.locator('figure[data-series="messages-in"] svg').getAttribute('aria-label'), /^Messages in: [\d.]+\/s now/);
    await screenshot(page, 'admin-charts');
    assert.deepEqual([...page.errors, ...board.errors], []);
  } finally {
    await server.stop();
    hook.close();
  }
});

test('a user without the admin role is refused in the server\'s words; an API key signs in but reads as no user', async () => {
  const server = await serve();
  try {
    const page = await openConsole(server);
    const error = page.locator('#sign-in-error');
    await page.getByLabel('User').fill('mallory');
    await page.getByLabel('Roles').fill('');
    await page.getByRole('button', { name: 'Sign in', exact: true }).click();
    await error.filter({ hasText: /\S/ }).waitFor();
    assert.match(await error.innerText(), /^FORBIDDEN: .*admin.*\nThis user lacks the admin role/);
    assert.equal(await page.getByRole('tablist').count(), 0);

    // The same for a pasted token; and a key that is not the server's.
    await page.getByLabel('Token').fill(await devToken(server.base, 'mallory'));
    await page.getByRole('button', { name: 'Sign in with token' }).click();
    await error.filter({ hasText: /^FORBIDDEN/ }).waitFor();
    await page.getByLabel('API key').fill('not-the-servers-key-0123456789');
    await page.getByRole('button', { name: 'Sign in with API key' }).click();
    await error.filter({ hasText: /^UNAUTHORIZED: / }).waitFor();
    await screenshot(page, 'admin-refused');

    // The key signs in: the admin views work, and those that read as a user say that they cannot.
    await page.getByLabel('API key').fill(API_KEY);
    await page.getByRole('button', { name: 'Sign in with API key' }).click();
    await page.locator('#connections-status').filter({ hasText: 'Updated at' }).waitFor();
    assert.equal(await page.locator('#who').innerText(), 'Signed in as API key\nSign out');
    await openTab(page, 'Resources', 'resources');
    assert.match(await page.locator('#panel .notice').innerText(), /reads as a user.*an API key names no user/s);
    await openTab(page, 'Live tail', 'tail');
    assert.match(await page.locator('#panel .notice').innerText(), /reads as a user/);

    // The tab remembers the sign-in over a reload, and forgets it on sign-out.
    await page.reload();
    await page.locator('#panel[data-view="tail"]').waitFor();
    await page.getByRole('button', { name: 'Sign out' }).click();
    await page.getByRole('heading', { name: 'Sign in to the admin console' }).waitFor();
    await page.reload();
    await page.getByRole('heading', { name: 'Sign in to the admin console' }).waitFor();
    assert.deepEqual(page.errors, []);
  } finally {
    await server.stop();
  }
});

test('web_page = false turns the console off with the board', async () => {
  const server = await serve({ TIDINGS_WEB_PAGE: 'false' });
  try {
    assert.equal((await fetch(`${server.base}/admin`)).status, 404);
    assert.equal((await fetch(`${server.base}/assets/admin.js`)).status, 404);
    // The admin API itself stays, for scripts with the key.
    assert.equal((await adminApi(server, '/cluster')).broker.kind, 'memory');
  } finally {
    await server.stop();
  }
});
