// Test helpers of the SDK: the server process (from tests/support), clients on the ws package, waiting on callbacks.
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

/** A client on the ws package, with test-friendly defaults. */
export function client(url, tokenOrGetter, extra = {}) {
  const auth = typeof tokenOrGetter === 'function' ? { getToken: tokenOrGetter } : { token: tokenOrGetter };
  return createClient({ url, WebSocket, ...auth, retryWait: () => Promise.resolve(), ...extra });
}
