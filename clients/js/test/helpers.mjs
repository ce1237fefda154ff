// Test helpers of the SDK: the server process (from tests/support), clients on the ws package, waiting on callbacks,
// and the server's HTTP API with an API key.
import WebSocket from 'ws';
import { createClient } from '../dist/index.js';
import { withTimeout } from '../../../tests/support/process.mjs';

export { ROOT, binary, tempDir, startServer, token, withTimeout } from '../../../tests/support/process.mjs';

/**
 * Resolves once check() is true, re-checked whenever one of the client's callbacks named in `on` fires
 * (no polling sleeps); rejects after timeoutMs.
 */
export function until(client, names, check, timeoutMs = 10000, what = 'a condition') {
  return withTimeout(
    new Promise((resolvePromise) => {
      if (check()) return resolvePromise();
      const offs = names.map((name) =>
        client.on(name, () => {
          if (check()) {
            offs.forEach((off) => off());
            resolvePromise();
          }
        }),
      );
    }),
    timeoutMs,
    what,
  );
}

/**
 * Resolves once the async check() is true, for facts that only the server knows and no callback reports; it asks
 * again as soon as the previous answer came, and rejects after timeoutMs.
 */
export async function eventually(check, timeoutMs = 10000, what = 'a condition') {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setImmediate(r));
  }
}

/** A client on the ws package, with test-friendly defaults. */
export function client(url, tokenOrGetter, extra = {}) {
  const auth = typeof tokenOrGetter === 'function' ? { getToken: tokenOrGetter } : { token: tokenOrGetter };
  return createClient({ url, WebSocket, ...auth, retryWait: () => Promise.resolve(), ...extra });
}

/** The API key of servers started with `apiSettings`; the server wants at least 16 characters. */
export const API_KEY = 'sdk-test-api-key-0123456789';

/** Server settings that switch the server and admin APIs on with API_KEY. */
export const apiSettings = { TIDINGS_API_KEYS: JSON.stringify([API_KEY]) };

/** The HTTP API of the server at this WebSocket URL, with API_KEY: notifications and the live connections. */
export function serverApi(wsUrl) {
  const base = wsUrl.replace(/^ws/, 'http').replace(/\/ws$/, '');
  async function call(method, path, body) {
    const response = await fetch(`${base}${path}`, {
      method,
      headers: { 'x-api-key': API_KEY, ...(body ? { 'content-type': 'application/json' } : {}) },
      body: body ? JSON.stringify(body) : undefined,
    });
    const text = await response.text();
    if (!response.ok) throw new Error(`${method} ${path}: ${response.status} ${text}`);
    return JSON.parse(text);
  }
  return {
    /** Sends a notification to these users, as `tidings notify` does. */
    notify: (to, title, extra = {}) => call('POST', '/api/v1/notifications', { to, title, ...extra }),
    /** How many live connections the server holds for this user. */
    connectionsOf: async (userId) => (await call('GET', '/api/v1/admin/connections')).connections.filter((c) => c.userId === userId).length,
  };
}

/**
 * A retryWait whose reconnections wait while the gate is shut: shut() keeps the client away (the server sees it
 * gone) until open().
 */
export function gate() {
  let opened = Promise.resolve();
  let open = () => undefined;
  return {
    retryWait: () => opened,
    shut() {
      opened = new Promise((r) => (open = r));
    },
    open: () => open(),
  };
}
