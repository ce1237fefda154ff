// The orders board in a real browser: live lists across users, notifications, field errors, the inspector,
// a phone-sized screen with the keyboard alone, and sign-in with a token on a configured server.
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import { after, before, test } from 'node:test';
import { base, connection, launch, messages, openPage, row, saved, screenshot, signIn, startServer, tempDir } from './helpers.mjs';

let browser;
before(async () => {
  browser = await launch();
});
after(() => browser?.close());

/** A server on a fresh data dir for one test; `stop` kills it and removes the dir. */
async function serve(settings = {}) {
  const { dir, cleanup } = tempDir();
  const server = await startServer(dir, 0, 20000, settings);
  return { ...server, base: base(server), stop: async () => (await server.kill(), cleanup()) };
}

test('alice creates an order, the admin sees it live and marks it paid, and alice gets the notification', async () => {
  const server = await serve();
  try {
    const admin = await openPage(browser, server.base);
    await signIn(admin, 'olga', { admin: true });
    const alice = await openPage(browser, server.base);
    await signIn(alice, 'alice');
    assert.equal(await admin.locator('#orders-title').innerText(), 'All orders (0)');
    assert.equal(await alice.locator('#orders-title').innerText(), 'My orders (0)');

    await alice.getByLabel('Product').fill('P-LIVE');
    await alice.getByLabel('Quantity').fill('2');
    await alice.getByLabel('Total').fill('19.50');
    await alice.getByRole('button', { name: 'Create order' }).click();

    // The admin's page shows it without a reload: it came as an `event`.
    const seen = row(admin, 'P-LIVE');
    await seen.waitFor();
    assert.match(await seen.innerText(), /alice/);
    assert.match(await seen.innerText(), /19\.50/);
    assert.equal((await messages(admin, 'received', 'event')).length, 1, 'one event of orders (presence has its own)');
    const id = await seen.getAttribute('data-id');

    await admin.getByLabel(`Status of ${id}`).selectOption('paid');
    const toast = alice.locator('.toast').filter({ hasText: `order ${id}: status is now paid` });
    await toast.waitFor();
    await row(alice, 'P-LIVE').locator('.status.paid').waitFor();
    assert.equal(await row(alice, 'P-LIVE').getAttribute('data-version'), '2');
    assert.equal(await alice.locator('#inspector-list li.received[data-type="notification"]').count(), 1);

    await screenshot(admin, 'live-admin');
    await screenshot(alice, 'live-alice-notified');
    assert.deepEqual([...admin.errors, ...alice.errors], []);
  } finally {
    await server.stop();
  }
});

/**
 * A before-commit hook for orders, as a team would write one: more than 10 of a product is refused, with the
 * reason beside the quantity. Resolves to {url, close}.
 */
function orderCheck() {
  const hook = createServer((request, response) => {
    let body = '';
    request.on('data', (chunk) => (body += chunk));
    request.on('end', () => {
      const change = JSON.parse(body);
      const tooMany = change.operation === 'create' && change.data.quantity > 10;
      const answer = tooMany
        ? { allow: false, code: 'INVALID_PARAMS', message: 'too many of one product',
            errors: [{ pointer: '/data/quantity', reason: 'at most 10 per order' }] }
        : {};
      response.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(answer));
    });
  });
  return new Promise((resolve) =>
    hook.listen(0, '127.0.0.1', () =>
      resolve({ url: `http://127.0.0.1:${hook.address().port}/check`, close: () => hook.close() })),
  );
}

/** The design notes' order type, in the TOML-like form of a `TIDINGS_*` variable, with a before-commit hook. */
function ordersCheckedAt(url) {
  const schema = '{type="object", required=["productId","quantity","totalAmount","status"], properties={' +
    'productId={type="string", minLength=1}, quantity={type="integer", minimum=1}, ' +
    'totalAmount={type="number", minimum=0}, ' +
    'status={type="string", enum=["pending","paid","shipped","cancelled"], default="pending"}}}';
  return `[{name="order", id_prefix="ORD", field_roles={status=["admin"]}, notify_owner_on=["status"], ` +
    `schema=${schema}, before={url="${url}", operations=["create"]}}]`;
}

test('a before-commit hook refuses an order, and the board shows its reason beside the field', async () => {
  const hook = await orderCheck();
  const server = await serve({ TIDINGS_RESOURCE_TYPES: ordersCheckedAt(hook.url) });
  try {
    const page = await openPage(browser, server.base);
    await signIn(page, 'alice');
    await page.getByLabel('Product').fill('P-BULK');
    await page.getByLabel('Quantity').fill('12');
    await page.getByLabel('Total').fill('120');
    await page.getByRole('button', { name: 'Create order' }).click();
    const error = page.locator('#error-quantity');
    await error.filter({ hasText: /\S/ }).waitFor();
    assert.equal(await error.innerText(), 'at most 10 per order');
    assert.equal(await page.getByLabel('Quantity').getAttribute('aria-invalid'), 'true');
    assert.equal(await page.locator('#orders li.order').count(), 0);
    await screenshot(page, 'before-hook-field-error');

    // Within the hook's rule, the same order goes through.
    await page.getByLabel('Quantity').fill('10');
    await page.getByRole('button', { name: 'Create order' }).click();
    await row(page, 'P-BULK').waitFor();
    assert.equal(await error.innerText(), '');
    assert.deepEqual(page.errors, []);
  } finally {
    await server.stop();
    hook.close();
  }
});

test('an order with quantity 0 shows the server error beside the quantity field and creates nothing', async () => {
  const server = await serve();
  try {
    const page = await openPage(browser, server.base);
    await signIn(page, 'alice');
    await page.getByLabel('Product').fill('P-ZERO');
    await page.getByLabel('Quantity').fill('0');
    await page.getByRole('button', { name: 'Create order' }).click();

    const error = page.locator('#error-quantity');
    await error.filter({ hasText: /\S/ }).waitFor();
    assert.equal(await error.innerText(), 'must be at least 1');
    assert.equal(await page.getByLabel('Quantity').getAttribute('aria-invalid'), 'true');
    assert.equal(await page.locator('#error-productId').innerText(), '');
    // The server answered with INVALID_PARAMS, and nothing was created.
    const answer = page.locator('#inspector-list li.received[data-type="error"] pre');
    assert.equal(JSON.parse(await answer.textContent()).payload.code, 'INVALID_PARAMS');
    assert.equal(await page.locator('#orders li.order').count(), 0);
    await screenshot(page, 'field-error');

    // Fixing the field creates the order and clears the error.
    await page.getByLabel('Quantity').fill('3');
    await page.getByRole('button', { name: 'Create order' }).click();
    await row(page, 'P-ZERO').waitFor();
    assert.equal(await error.innerText(), '');
    assert.deepEqual(page.errors, []);
  } finally {
    await server.stop();
  }
});

test('the inspector lists every message as protocol JSON and filters by type and text', async () => {
  const server = await serve();
  try {
    const page = await openPage(browser, server.base);
    await signIn(page, 'alice');
    await page.getByLabel('Product').fill('P-INSPECT');
    await page.getByRole('button', { name: 'Create order' }).click();
    // The row shows at once; the server's reply saves it, and the event of the order follows.
    await saved(page, 'P-INSPECT').waitFor();
    await page.locator('#inspector-list li.received[data-type="event"]').filter({ hasText: 'P-INSPECT' }).waitFor({ state: 'attached' });

    const all = page.locator('#inspector-list li.message');
    const types = await all.evaluateAll((items) => items.map((i) => `${i.dataset.direction} ${i.dataset.type}`));
    // Newest first; the session began with connect and auth, each answered.
    for (const expected of ['sent connect', 'received connect', 'sent auth', 'received auth_success',
      'sent subscribe', 'received subscribe', 'sent create', 'received create', 'received event']) {
      assert.ok(types.includes(expected), `the inspector lists "${expected}": ${types.join(', ')}`);
    }

    await page.getByLabel('Type').selectOption('create');
    const shown = page.locator('#inspector-list li.message:visible');
    // The order's create and the page's join of the board's presence, each sent and answered.
    assert.equal(await shown.count(), 4);
    // Of every message so far: the rows' presence subscriptions may still be adding some.
    assert.match(await page.locator('#inspector-count').innerText(), /^\(4 of \d+\)$/);
    const sent = shown.filter({ hasText: '↑ sent' }).filter({ hasText: 'P-INSPECT' });
    await sent.locator('summary').click();
    const message = JSON.parse(await sent.locator('pre').innerText());
    assert.equal(message.type, 'create');
    assert.equal(typeof message.timestamp, 'number');
    assert.equal(message.payload.resourceType, 'order');
    assert.equal(message.payload.data.productId, 'P-INSPECT');
    assert.equal(await sent.locator('.request-id').innerText(), message.requestId);

    // The text filter finds both sides of a request by its requestId.
    await page.getByLabel('Type').selectOption('');
    await page.getByLabel('Filter').fill(message.requestId);
    assert.deepEqual(
      await shown.evaluateAll((items) => items.map((i) => `${i.dataset.direction} ${i.dataset.type}`)),
      ['received create', 'sent create'],
    );

    // A token is shown without its signature.
    await page.getByLabel('Filter').fill('');
    await page.getByLabel('Type').selectOption('auth');
    const auth = page.locator('#inspector-list li.message:visible');
    await auth.locator('summary').click();
    assert.match(JSON.parse(await auth.locator('pre').innerText()).payload.token, /^[\w-]+\.[\w-]+\.…$/);
    await screenshot(page, 'inspector');
    assert.deepEqual(page.errors, []);
  } finally {
    await server.stop();
  }
});

test('on a phone-sized screen an admin signs in, creates and changes an order with the keyboard alone', async () => {
  const server = await serve();
  try {
    const page = await openPage(browser, server.base, { width: 390, height: 844 });
    // The page puts the focus in the user field.
    assert.equal(await page.evaluate(() => document.activeElement.id), 'dev-user');
    await page.keyboard.press('ControlOrMeta+A');
    await page.keyboard.type('kim');
    await page.keyboard.press('Tab');
    await page.keyboard.press('Space');
    await page.keyboard.press('Tab');
    await page.keyboard.press('Enter');
    await connection(page, 'connected');
    assert.equal(await page.locator('#who').innerText(), 'Signed in as kim (admin)\nSign out');

    // After sign-in the focus is in the order form.
    assert.equal(await page.evaluate(() => document.activeElement.id), 'order-productId');
    await page.keyboard.type('P-KEYS');
    await page.keyboard.press('Tab');
    await page.keyboard.press('ControlOrMeta+A');
    await page.keyboard.type('4');
    await page.keyboard.press('Enter');
    await saved(page, 'P-KEYS').waitFor();

    // Tab to the order's status and change it with the arrow keys.
    for (let presses = 0; presses < 40; presses += 1) {
      if (await page.evaluate(() => document.activeElement.classList.contains('status-select'))) break;
      await page.keyboard.press('Tab');
    }
    assert.equal(await page.evaluate(() => document.activeElement.value), 'pending');
    await page.keyboard.press('ArrowDown');
    await row(page, 'P-KEYS').and(page.locator('[data-version="2"]')).waitFor();
    assert.equal(await row(page, 'P-KEYS').getAttribute('data-status'), 'paid');

    // Nothing is wider than the screen.
    const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    assert.ok(overflow <= 0, `the page is ${overflow}px wider than a 390px screen`);
    await screenshot(page, 'phone-keyboard');
    assert.deepEqual(page.errors, []);
  } finally {
    await server.stop();
  }
});

test('a server with a configured key offers no dev sign-in; a pasted token signs in, a bad one is explained', async () => {
  const secret = 'a-configured-secret-of-at-least-32-bytes';
  const server = await serve({ TIDINGS_AUTH__SECRET: secret });
  try {
    const page = await openPage(browser, server.base);
    assert.equal(await page.locator('#dev-form').isHidden(), true);
    assert.equal(await page.evaluate(() => document.activeElement.id), 'token');

    await page.getByLabel('Token').fill('not a token');
    await page.getByRole('button', { name: 'Sign in with token' }).click();
    assert.match(await page.locator('#sign-in-error').innerText(), /not a JWT/);

    const token = await hs256({ sub: 'alice', exp: Math.floor(Date.now() / 1000) + 600 }, 'some-other-secret-of-at-least-32-bytes');
    await page.getByLabel('Token').fill(token);
    await page.getByRole('button', { name: 'Sign in with token' }).click();
    await page.locator('#sign-in-error').filter({ hasText: /UNAUTHORIZED|TOKEN_INVALID/ }).waitFor();
    assert.equal(await page.locator('#board').isHidden(), true);

    await page.getByLabel('Token').fill(await hs256({ sub: 'alice', exp: Math.floor(Date.now() / 1000) + 600 }, secret));
    await page.getByRole('button', { name: 'Sign in with token' }).click();
    await connection(page, 'connected');
    assert.equal(await page.locator('#who-name').innerText(), 'alice');
    await screenshot(page, 'token-sign-in');
    assert.deepEqual(page.errors, []);
  } finally {
    await server.stop();
  }
});

/** An HS256 JWT, signed here with Node's crypto. */
async function hs256(claims, secret) {
  const { createHmac } = await import('node:crypto');
  const part = (value) => Buffer.from(JSON.stringify(value)).toString('base64url');
  const body = `${part({ alg: 'HS256', typ: 'JWT' })}.${part(claims)}`;
  return `${body}.${createHmac('sha256', secret).update(body).digest('base64url')}`;
}
