// Browser test helpers: Debian's chromium through playwright-core, signing in on the board, and screenshots.
import { mkdirSync, readFileSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';
import { chromium } from 'playwright-core';
import { ROOT } from '../support/process.mjs';

export { startServer, tempDir, withTimeout } from '../support/process.mjs';

/** Where screenshots go: target/browser-artifacts (CARGO_TARGET_DIR is respected). */
export const ARTIFACTS = join(
  process.env.CARGO_TARGET_DIR ? resolve(ROOT, process.env.CARGO_TARGET_DIR) : join(ROOT, 'target'),
  'browser-artifacts',
);

/**
 * Launches the system chromium headless. Playwright's own browser download cannot run here; the flags keep
 * chromium from reaching for the network at start.
 */
export function launch() {
  return chromium.launch({
    executablePath: process.env.TIDINGS_TEST_CHROMIUM ?? '/usr/bin/chromium',
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      '--no-first-run',
      '--disable-quic',
    ],
  });
}

/** The file in the working tree that the server serves at this path (it compiles them in), if any. */
function fileOf(pathname) {
  if (pathname === '/') return join(ROOT, 'web', 'index.html');
  if (pathname === '/admin') return join(ROOT, 'web', 'admin.html');
  const name = /^\/assets\/([\w.-]+)$/.exec(pathname)?.[1];
  if (name === undefined) return undefined;
  return name === 'tidings.js' ? join(ROOT, 'clients', 'js', 'dist', 'tidings.js') : join(ROOT, 'web', name);
}

/** The documents a page at this URL needs to be the server's own: the board's, and the admin console's at /admin. */
function documentsOf(url) {
  return new URL(url).pathname === '/admin' ? ['/', '/admin'] : ['/'];
}

/** The asset paths a document loads: those it names, and every module they import (`from './name.js'`), in turn. */
function assetsOf(html) {
  const names = new Set(['tidings.js', ...[...html.matchAll(/\/assets\/([\w.-]+)/g)].map((m) => m[1])]);
  for (const name of names) {
    if (!name.endsWith('.js') || name === 'tidings.js') continue;
    for (const m of readFileSync(fileOf(`/assets/${name}`), 'utf8').matchAll(/from '\.\/([\w.-]+)'/g)) names.add(m[1]);
  }
  return [...names].map((n) => `/assets/${n}`);
}

/** The servers and documents whose page files were found to be those of the working tree. */
const checked = new Set();

/**
 * Makes the context load the page as the working tree has it. The server compiles web/ and the SDK's bundle into
 * its binary, so a binary built before a change to them serves the old page. With TIDINGS_TEST_WEB_FROM_DISK=1 the
 * page's files come from the working tree instead (the server still answers, with its headers, such as the
 * Content-Security-Policy): for testing a change to the page without building the server again. Without it, a
 * server that serves other files than the working tree holds fails the test at once, saying so, instead of testing
 * an old page.
 */
async function currentPage(context, url) {
  const origin = new URL(url).origin;
  if (process.env.TIDINGS_TEST_WEB_FROM_DISK === '1') {
    // Only the assets: chromium's local network access checks would block the WebSocket of a page whose document
    // the test supplied, so index.html (and admin.html) must be the server's own.
    for (const path of documentsOf(url)) {
      const served = await (await fetch(`${origin}${path}`)).text();
      if (served !== readFileSync(fileOf(path), 'utf8')) {
        throw new Error(`${relative(ROOT, fileOf(path))} changed since the server was built: build it again (cargo build -p tidings)`);
      }
    }
    await context.route((u) => u.pathname.startsWith('/assets/') && fileOf(u.pathname) !== undefined, async (route) => {
      const response = await route.fetch();
      const file = fileOf(new URL(route.request().url()).pathname);
      if (!response.ok()) return route.fulfill({ response });
      return route.fulfill({ response, body: readFileSync(file, 'utf8') });
    });
    return;
  }
  for (const document of documentsOf(url)) {
    if (checked.has(`${origin}${document}`)) continue;
    const html = await (await fetch(`${origin}${document}`)).text();
    for (const path of [document, ...assetsOf(html)]) {
      const served = path === document ? html : await (await fetch(`${origin}${path}`)).text();
      if (served !== readFileSync(fileOf(path), 'utf8')) {
        throw new Error(
          `the server serves another ${path} than the working tree holds: its binary is older than the page. Build it ` +
            'again (cargo build -p tidings), or set TIDINGS_TEST_WEB_FROM_DISK=1 to load the page from the working tree',
        );
      }
    }
    checked.add(`${origin}${document}`);
  }
}

/** A page in a fresh context (its own sessionStorage), with page errors failing the test that reads them. */
export async function openPage(browser, url, viewport = { width: 1280, height: 860 }) {
  const context = await browser.newContext({ viewport });
  await currentPage(context, url);
  const page = await context.newPage();
  page.errors = [];
  page.on('pageerror', (error) => page.errors.push(error.message));
  await page.goto(url);
  await page.locator('body[data-ready="true"]').waitFor();
  return page;
}

/** Signs in through the dev sign-in form and waits until the board is connected and shows its first view. */
export async function signIn(page, user, { admin = false } = {}) {
  await page.getByLabel('User').fill(user);
  await page.getByLabel(/^Admin/).setChecked(admin);
  await page.getByRole('button', { name: 'Sign in', exact: true }).click();
  await connection(page, 'connected');
  // The list shows a view once its subscription's snapshot is in: the last step of signing in.
  await page.locator('#orders[data-view]').waitFor({ state: 'attached' });
}

/** Opens one of the list's views (`Pending`, ...) and waits until it shows that view's orders. */
export async function openView(page, label) {
  const button = page.getByRole('group', { name: 'View' }).getByRole('button', { name: label, exact: true });
  await button.click();
  const name = await button.getAttribute('data-view');
  await page.locator(`#orders[data-view="${name}"]`).waitFor({ state: 'attached' });
}

/** Waits until the connection indicator says `state`. */
export function connection(page, state, timeout = 15000) {
  return page.locator(`#connection[data-state="${state}"]`).waitFor({ timeout });
}

/** The row of the order whose product is `productId`. */
export function row(page, productId) {
  return page.locator('#orders li.order').filter({ hasText: `${productId} ×` });
}

/**
 * The row of an order the server has confirmed. An order the page creates shows at once, marked pending (under a
 * temporary id, without its edit controls), until the server's reply brings its id.
 */
export function saved(page, productId) {
  return row(page, productId).and(page.locator('[data-pending="false"]'));
}

/**
 * The messages of a type the page sent or received, newest first, as the inspector lists their JSON envelopes,
 * without those of presence (the page's `presence:` subscriptions, its joins and their events), which come and go
 * beside the orders' own.
 */
export async function messages(page, direction, type) {
  const texts = await page.locator(`#inspector-list li.${direction}[data-type="${type}"] pre`).allTextContents();
  return texts.map((text) => JSON.parse(text)).filter((message) => !aboutPresence(message));
}

/** Whether a message is about presence: its topic, subscription or resource type says so. */
function aboutPresence({ payload = {} }) {
  return [payload.topic, payload.subscriptionId, payload.resourceType].some((v) => typeof v === 'string' && v.startsWith('presence'));
}

/** Saves a screenshot as a test artifact and returns its path. */
export async function screenshot(page, name) {
  mkdirSync(ARTIFACTS, { recursive: true });
  const path = join(ARTIFACTS, `${name}.png`);
  await page.screenshot({ path, fullPage: true });
  return path;
}

/** A token from the server's dev sign-in, for driving it over HTTP beside the pages. */
export async function devToken(base, userId, roles = []) {
  const response = await fetch(`${base}/auth/dev-token`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ userId, roles }),
  });
  if (!response.ok) throw new Error(`dev sign-in answered ${response.status}`);
  return (await response.json()).token;
}

/** Calls the HTTP API (`/api/v1/...`) as the token's user; returns the parsed body, throwing on an error status. */
export async function api(base, token, method, path, body) {
  const response = await fetch(`${base}/api/v1${path}`, {
    method,
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await response.text();
  if (!response.ok) throw new Error(`${method} ${path} answered ${response.status}: ${text}`);
  return JSON.parse(text);
}

/** The http:// base URL of a server started by startServer. */
export function base(server) {
  return `http://127.0.0.1:${server.port}`;
}
