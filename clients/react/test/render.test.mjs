// The React bindings rendered in Debian's chromium (Playwright) against a real `tidings serve`: two components share
// one topic and one unmounting does not silence the other, useLive follows a query as an admin changes orders, and
// usePresence shows two pages' users to each other, joined once under StrictMode, leaving and joining with the state.
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import { after, before, test } from 'node:test';
import { build } from 'esbuild';
import { chromium } from 'playwright-core';
import { startServer, tempDir, token, withTimeout } from '../../../tests/support/process.mjs';

let server;
let data;
let site;
let browser;

before(async () => {
  data = tempDir();
  // The page comes from a server of its own, as an app's would: the WebSocket's Origin must be allowed.
  server = await startServer(data.dir, 0, 20000, { TIDINGS_ALLOWED_ORIGINS: '["http://127.0.0.1:*"]' });
  const bundled = await build({
    entryPoints: [new URL('./page.jsx', import.meta.url).pathname],
    bundle: true,
    format: 'esm',
    jsx: 'automatic',
    define: { 'process.env.NODE_ENV': '"development"' },
    write: false,
  });
  const script = bundled.outputFiles[0].text;
  const html = '<!doctype html><meta charset="utf-8"><title>tidings-react</title><div id="root"></div><script type="module" src="/page.js"></script>';
  site = createServer((request, response) => {
    const [type, body] = request.url === '/page.js' ? ['text/javascript', script] : ['text/html', html];
    response.writeHead(200, { 'content-type': `${type}; charset=utf-8` }).end(body);
  });
  await new Promise((resolve) => site.listen(0, '127.0.0.1', resolve));
  browser = await chromium.launch({
    executablePath: process.env.TIDINGS_TEST_CHROMIUM ?? '/usr/bin/chromium',
    args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--no-first-run'],
  });
});

after(async () => {
  await browser?.close();
  site?.close();
  await server?.kill('SIGTERM');
  data?.cleanup();
});

/** Calls the server's HTTP API as the token's user; returns the parsed body. */
async function api(tokenOf, method, path, body) {
  const base = server.url.replace(/^ws/, 'http').replace(/\/ws$/, '');
  const response = await fetch(`${base}/api/v1${path}`, {
    method,
    headers: { authorization: `Bearer ${tokenOf}`, 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  const text = await response.text();
  if (!response.ok) throw new Error(`${method} ${path} answered ${response.status}: ${text}`);
  return JSON.parse(text);
}

test('two components share one topic, one unmounting does not silence the other, and useLive follows a query', async () => {
  const alice = token(data.dir, 'alice');
  const admin = token(data.dir, 'root', ['admin']);
  const page = await browser.newPage();
  const errors = [];
  page.on('pageerror', (error) => errors.push(error.message));
  const sent = [];
  let heard = () => undefined;
  page.on('websocket', (socket) =>
    socket.on('framesent', (frame) => {
      sent.push(JSON.parse(frame.payload));
      heard();
    }),
  );
  const sentOf = (type, check = () => true) => sent.filter((m) => m.type === type && check(m.payload));
  /** Resolves once the page has sent a message of this type, re-checked at every frame it sends. */
  const whenSent = (type, what) =>
    withTimeout(new Promise((resolve) => (sentOf(type).length > 0 ? resolve() : (heard = () => sentOf(type).length > 0 && resolve()))), 10000, what);
  const plain = (p) => p.topic === 'order' && p.query === undefined;
  const port = site.address().port;
  await page.goto(`http://127.0.0.1:${port}/?ws=${encodeURIComponent(server.url)}&token=${encodeURIComponent(alice)}`);

  const a = page.getByTestId('a');
  const b = page.getByTestId('b');
  const pending = page.getByTestId('pending');
  await page.locator('[data-testid="a"][data-status="active"]').waitFor();
  await page.locator('[data-testid="b"][data-status="active"]').waitFor();
  await page.locator('[data-testid="pending"][data-status="live"]').waitFor({ state: 'attached' });
  assert.equal(await page.locator('main').getAttribute('data-provided'), 'true');
  // StrictMode mounts every effect twice; still one server subscription of the topic, and none let go.
  assert.equal(sentOf('subscribe', plain).length, 1, 'one subscribe of the topic');
  assert.equal(sentOf('unsubscribe').length, 0);
  assert.equal(sentOf('subscribe', (p) => p.query !== undefined).length, 1, 'one subscribe of the query');

  const first = await api(alice, 'POST', '/resources/order', { productId: 'P-FIRST', quantity: 1, totalAmount: 1 });
  await page.locator(`[data-testid="a"][data-last="${first.id}"]`).waitFor();
  await page.locator(`[data-testid="b"][data-last="${first.id}"]`).waitFor();
  await pending.locator(`li[data-id="${first.id}"]`).waitFor();

  await page.getByRole('button', { name: 'Unmount A' }).click();
  await a.waitFor({ state: 'detached' });
  const second = await api(alice, 'POST', '/resources/order', { productId: 'P-SECOND', quantity: 1, totalAmount: 1 });
  await page.locator(`[data-testid="b"][data-last="${second.id}"]`).waitFor();
  assert.equal(await b.getAttribute('data-count'), '2', 'b heard both creates');
  assert.equal(sentOf('unsubscribe').length, 0, 'b still holds the subscription');

  // An admin ships the first order: it leaves the pending collection, and b hears of the change.
  await api(admin, 'PATCH', `/resources/order/${first.id}`, { status: 'shipped' });
  await pending.locator(`li[data-id="${first.id}"]`).waitFor({ state: 'detached' });
  await page.locator('[data-testid="b"][data-count="3"]').waitFor();
  assert.deepEqual(await pending.locator('li').allInnerTexts(), ['P-SECOND']);

  // The last component of the topic unmounts: its subscription ends on the server; the query's stays.
  await page.getByRole('button', { name: 'Unmount B' }).click();
  await b.waitFor({ state: 'detached' });
  await whenSent('unsubscribe', 'the unsubscribe of the topic');
  assert.deepEqual(sentOf('unsubscribe').map((m) => m.payload.subscriptionId), ['order']);
  assert.deepEqual(errors, []);
});

test('usePresence: two pages see each other, each joined once under StrictMode, and leave by state or by unmounting', async () => {
  const port = site.address().port;
  const open = async (user, name) => {
    const context = await browser.newContext();
    const page = await context.newPage();
    page.errors = [];
    page.on('pageerror', (error) => page.errors.push(error.message));
    page.sent = [];
    page.heard = () => undefined;
    page.on('websocket', (socket) =>
      socket.on('framesent', (frame) => {
        page.sent.push(JSON.parse(frame.payload));
        page.heard();
      }),
    );
    /** Resolves once the page has sent a message that passes check, re-checked at every frame it sends. */
    page.whenSent = (check, what) =>
      withTimeout(new Promise((resolve) => (page.sent.some(check) ? resolve() : (page.heard = () => page.sent.some(check) && resolve()))), 10000, what);
    const query = `ws=${encodeURIComponent(server.url)}&token=${encodeURIComponent(token(data.dir, user))}&presence=${name}`;
    await page.goto(`http://127.0.0.1:${port}/?${query}`);
    return page;
  };
  const ann = await open('ann', 'Ann');
  const ben = await open('ben', 'Ben');
  const users = (page, list) => page.locator(`[data-testid="presence"][data-users="${list}"]`).waitFor();
  await users(ann, 'ann,ben');
  await users(ben, 'ann,ben');
  await ben.locator('li[data-user="ann"]', { hasText: 'Ann' }).waitFor();
  await ann.locator('li[data-user="ann"][data-self="true"]').waitFor();
  // StrictMode opens and closes the first handle at once: each page joined once, and holds one member.
  const joins = (page) => page.sent.filter((m) => m.type === 'create' && m.payload.resourceType === 'presence');
  assert.equal(joins(ann).length, 1, 'ann joined once');
  assert.equal(await ben.locator('li[data-user="ann"]').count(), 1);

  // No state: the component leaves and still follows; a state again: it joins again.
  await ann.getByRole('button', { name: 'Leave' }).click();
  await users(ben, 'ben');
  await users(ann, 'ben');
  await ann.getByRole('button', { name: 'Join' }).click();
  await users(ben, 'ann,ben');

  // Unmounted: the member leaves and the presence subscription ends.
  await ann.getByRole('button', { name: 'Unmount presence' }).click();
  await users(ben, 'ben');
  await ann.whenSent((m) => m.type === 'unsubscribe' && m.payload.subscriptionId === 'presence:order', 'ann’s presence subscription ended');
  assert.equal(joins(ann).length, 2);
  assert.deepEqual([...ann.errors, ...ben.errors], []);
  await Promise.all([ann.context().close(), ben.context().close()]);
});
