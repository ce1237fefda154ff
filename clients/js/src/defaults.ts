// The defaults of the client's options in one place, and the settings a client runs with once they are applied.
import { randomId } from './ids.js';
import type { ClientOptions, Logger, WebSocketConstructor } from './options.js';
import { VERSION } from './version.js';

/** Where the client listens for `online`, `offline` and `visibilitychange`. */
type ProbeTarget = NonNullable<ClientOptions['eventTarget']>;

/**
 * The default of every option that has one; ClientOptions documents each with its `@default`. The WebSocket and
 * the event target are looked up on globalThis when a client is created, not when this module loads, so that a
 * WebSocket installed after the import is found.
 */
export const defaults = {
  requestTimeoutMs: 10000,
  connectTimeoutMs: 10000,
  failFast: false,
  retry: { baseMs: 500, maxMs: 30000, attempts: Infinity },
  retryWait: (_attempt: number, delayMs: number): Promise<void> => new Promise<void>((r) => setTimeout(r, delayMs)),
  queueWhileDisconnected: true,
  maxQueue: 100,
  heartbeatMarginMs: 10000,
  probeTimeoutMs: 5000,
  refreshBeforeExpiryMs: 60000,
  clientInfo: { name: 'tidings-js', version: VERSION },
  generateId: randomId,
  get WebSocket(): WebSocketConstructor | undefined {
    return (globalThis as { WebSocket?: WebSocketConstructor }).WebSocket;
  },
  /** A browser's globalThis; elsewhere none, since only a page goes online and changes visibility. */
  get eventTarget(): ProbeTarget | undefined {
    const global = globalThis as { window?: unknown; document?: unknown };
    return global.window !== undefined && global.document !== undefined ? (globalThis as unknown as ProbeTarget) : undefined;
  },
} as const;

/** The logger of a client given none: it drops every line. */
const silent: Logger = { debug() {}, info() {}, warn() {}, error() {} };

/**
 * The options that have a default, with the defaults applied. url, token, getToken and onStateChange have none;
 * the client reads them from the options each time it needs them.
 */
export interface Settings {
  WebSocket: WebSocketConstructor;
  requestTimeoutMs: number;
  connectTimeoutMs: number;
  failFast: boolean;
  logger: Logger;
  retry: { baseMs: number; maxMs: number; attempts: number };
  retryWait: (attempt: number, delayMs: number) => Promise<void>;
  queueWhileDisconnected: boolean;
  maxQueue: number;
  heartbeatMarginMs: number;
  probeTimeoutMs: number;
  refreshBeforeExpiryMs: number;
  clientInfo: { name?: string; version?: string };
  generateId: () => string;
  eventTarget: ProbeTarget | undefined;
}

/** Applies the defaults to the options; throws a TypeError when there is no token or no WebSocket. */
export function settingsOf(options: ClientOptions): Settings {
  if (options.token === undefined && options.getToken === undefined) throw new TypeError('createClient needs token or getToken');
  const WebSocket = options.WebSocket ?? defaults.WebSocket;
  if (WebSocket === undefined) throw new TypeError('no WebSocket here: pass one, such as the ws package, as options.WebSocket');
  return {
    WebSocket,
    requestTimeoutMs: options.requestTimeoutMs ?? defaults.requestTimeoutMs,
    connectTimeoutMs: options.connectTimeoutMs ?? defaults.connectTimeoutMs,
    failFast: options.failFast ?? defaults.failFast,
    logger: options.logger ?? silent,
    retry: {
      baseMs: options.retry?.baseMs ?? defaults.retry.baseMs,
      maxMs: options.retry?.maxMs ?? defaults.retry.maxMs,
      attempts: options.retry?.attempts ?? defaults.retry.attempts,
    },
    retryWait: options.retryWait ?? defaults.retryWait,
    queueWhileDisconnected: options.queueWhileDisconnected ?? defaults.queueWhileDisconnected,
    maxQueue: options.maxQueue ?? defaults.maxQueue,
    heartbeatMarginMs: options.heartbeatMarginMs ?? defaults.heartbeatMarginMs,
    probeTimeoutMs: options.probeTimeoutMs ?? defaults.probeTimeoutMs,
    refreshBeforeExpiryMs: options.refreshBeforeExpiryMs ?? defaults.refreshBeforeExpiryMs,
    // A field of clientInfo left out keeps the default's, as a spread does.
    clientInfo: { ...defaults.clientInfo, ...options.clientInfo },
    generateId: options.generateId ?? defaults.generateId,
    eventTarget: options.eventTarget ?? defaults.eventTarget,
  };
}
