// The client's public shapes: its options with their defaults, its events, and those of its requests; the Client
// interface is in api.ts, the shapes of subscriptions in subscription-types.ts, and those of the outbox in outbox.ts.
import {
  TidingsError,
  type FieldName,
  type OperationResult,
  type Order,
  type Query,
  type RequestPayload,
  type Resource,
  type Scalar,
  type ServerDelete,
  type ServerEvent,
  type ServerNotification,
} from './common.js';
import type { LiveItem } from './live.js';
import type { Outbox, PendingWrite } from './outbox.js';
import type { Gap, Unsubscribed } from './subscription-types.js';

export type { Gap, HandleEvents, Subscription, SubscriptionHandle, Unsubscribed } from './subscription-types.js';

/** The part of the WebSocket API the client uses: the browser's, or the `ws` package's in Node. */
export interface WebSocketLike {
  readonly readyState: number;
  onopen: ((event: unknown) => void) | null;
  onmessage: ((event: { data: unknown }) => void) | null;
  onclose: ((event: { code: number; reason: string }) => void) | null;
  onerror: ((event: unknown) => void) | null;
  send(data: string): void;
  close(code?: number, reason?: string): void;
}

/** A WebSocket constructor, such as `globalThis.WebSocket` or `ws`'s default export. */
export type WebSocketConstructor = new (url: string) => WebSocketLike;

/** The connection's state, as `on('state')` and `onStateChange` report it. */
export type ConnectionState = 'idle' | 'connecting' | 'connected' | 'reconnecting' | 'closed';

/**
 * Where the client writes what it does and what goes wrong: `console` fits, and so does any logger with these
 * methods. Each call gets a sentence and, when there is one, an object of facts (an error, a close code).
 */
export interface Logger {
  debug(message: string, details?: unknown): void;
  info(message: string, details?: unknown): void;
  warn(message: string, details?: unknown): void;
  error(message: string, details?: unknown): void;
}

/** A connection attempt that failed, as `on('attemptFailed')` reports it. */
export interface FailedAttempt {
  /**
   * Which attempt in a row failed: 1 for the first attempt of connect(), or for the first attempt to reconnect after
   * a connection was lost; a success starts the count again.
   */
  attempt: number;
  /**
   * The close code of the socket, when it closed: the server's (section 11 of docs/protocol.md), or 1006
   * (ABNORMAL_CLOSURE) when the server could not be reached or the link broke. Undefined when the client ended the
   * attempt itself: connectTimeoutMs passed, the server refused `connect` or `auth`, or getToken signed out.
   */
  code: number | undefined;
  /** Why it failed, in a sentence: the close reason, or the error's message. */
  reason: string;
  /** The failure, as a TidingsError: CONNECTION_LOST with `details.code`, TIMEOUT, UNAUTHORIZED, SIGNED_OUT, ... */
  error: TidingsError;
}

/** Settings of the reconnection backoff; `defaults.retry` holds their defaults. */
export interface RetryOptions {
  /**
   * The first delay's upper bound, in ms; each attempt in a row doubles it, up to maxMs.
   * @default 500
   */
  baseMs?: number;
  /**
   * The largest delay, in ms.
   * @default 30000
   */
  maxMs?: number;
  /**
   * How many reconnection attempts in a row before the client gives up and closes with CLOSED.
   * @default Infinity
   */
  attempts?: number;
}

/** The options of createClient. The defaults are in `defaults` (src/defaults.ts), which createClient reads. */
export interface ClientOptions {
  /**
   * The server's WebSocket URL, such as `ws://127.0.0.1:8080/ws`, or a function asked before each connection.
   * Required: it has no default.
   */
  url: string | (() => string);
  /**
   * A fixed token. Give this or getToken; createClient throws a TypeError when neither is given.
   * @default undefined
   */
  token?: string;
  /**
   * Returns a fresh token; asked before every authentication, with one call in flight at a time. When given, it
   * wins over token, the client authenticates again before the token expires, and a close with TokenExpired
   * (4501) reconnects. Returning null (or undefined) says the user signed out: the client then stops, closes with
   * SIGNED_OUT, and does not reconnect until connect() is called again.
   * @default undefined (the fixed token is used for every authentication)
   */
  getToken?: () => string | null | undefined | Promise<string | null | undefined>;
  /**
   * The WebSocket implementation; createClient throws a TypeError when there is none.
   * @default globalThis.WebSocket (browsers, Node 22 and later), looked up when the client is created
   */
  WebSocket?: WebSocketConstructor;
  /**
   * How long a request may wait for its reply, in ms, from the call on (time in the queue and across a reconnect
   * included); a request's own `timeoutMs` wins.
   * @default 10000
   */
  requestTimeoutMs?: number;
  /**
   * How long the socket open, `connect` and `auth` may take together, in ms, before the attempt fails.
   * @default 10000
   */
  connectTimeoutMs?: number;
  /**
   * With true, connect() rejects with the failure of its first attempt (the server cannot be reached, refuses the
   * token, or does not answer within connectTimeoutMs), and the client closes instead of retrying. It applies to
   * connect() only: once connected, a lost connection is retried as usual. Without it, connect() retries with the
   * backoff of `retry`, and stays pending until it succeeds or gives up.
   * @default false
   */
  failFast?: boolean;
  /**
   * Where the client logs its connection's life: each failed attempt and each reconnection (warn), connected and
   * closed (info), state changes (debug), and what it would otherwise drop silently, such as a failed token
   * refresh or an unreadable server message (warn, error). `console` works.
   * @default undefined (logs nothing)
   */
  logger?: Logger;
  /**
   * The backoff between reconnection attempts; each field has its own default.
   * @default { baseMs: 500, maxMs: 30000, attempts: Infinity }
   */
  retry?: RetryOptions;
  /**
   * Waits before reconnection attempt `attempt` (1, 2, ...); `delayMs` is the backoff with jitter the client
   * computed. Tests inject one that resolves at once.
   * @default waits delayMs with setTimeout
   */
  retryWait?: (attempt: number, delayMs: number) => Promise<void>;
  /**
   * Whether requests issued while disconnected wait for the connection (true) or fail at once with DISCONNECTED.
   * @default true
   */
  queueWhileDisconnected?: boolean;
  /**
   * The most requests that wait for a connection; one more fails with QUEUE_FULL.
   * @default 100
   */
  maxQueue?: number;
  /**
   * How long past the server's pingIntervalMs the client waits for any server traffic before it drops the link, in ms.
   * @default 10000
   */
  heartbeatMarginMs?: number;
  /**
   * How long a probe `ping` (on the browser's `online`, `offline` or `visibilitychange`) may wait for its `pong`, in ms.
   * @default 5000
   */
  probeTimeoutMs?: number;
  /**
   * How long before the token's expiry the client authenticates again with a fresh token from getToken, in ms.
   * @default 60000
   */
  refreshBeforeExpiryMs?: number;
  /**
   * The client's name and version, sent in `connect`; a field given here replaces that field of the default.
   * VERSION is this package's version, from its package.json.
   * @default { name: 'tidings-js', version: VERSION }
   */
  clientInfo?: { name?: string; version?: string };
  /**
   * Makes requestIds.
   * @default crypto.randomUUID() where it exists; else a version 4 UUID from crypto.getRandomValues, or from Math.random where there is no crypto (a page on plain HTTP, React Native)
   */
  generateId?: () => string;
  /**
   * Called on every state change, like on('state').
   * @default undefined (no callback; on('state') still reports every change)
   */
  onStateChange?: (state: ConnectionState, error?: TidingsError) => void;
  /**
   * Optimistic and offline writes. With an outbox, create, update and delete keep each write there first, show it
   * at once in this client's live collections (its items flagged `pending`), and send the writes in order, one at a
   * time, whenever the client is connected, each with the same requestId on every try: one the server already
   * applied is answered with its first reply and not applied again. A write the server refuses (CONFLICT,
   * INVALID_PARAMS, FORBIDDEN, NOT_FOUND, ...) is rolled back: it leaves the collections, its promise rejects, and
   * on('rejected') hears of it. The promises have no timeout: they settle when the server answers, however long
   * the client is offline. `memoryOutbox()` keeps the writes for this process; `fileOutbox(path)` (Node) and
   * `indexedDbOutbox(name)` (browsers) keep them across a restart or a reload, and a new client given the same
   * outbox sends them. The README's "Optimistic and offline writes" says more.
   * @default undefined (no outbox: a write is a request like any other, queued while disconnected or failed at once as queueWhileDisconnected says, and shown in live collections when its event comes)
   */
  outbox?: Outbox;
  /**
   * Where to listen for `online`, `offline` and `visibilitychange`, which make the client probe the link.
   * @default globalThis when it has a window and a document, else none (no probes)
   */
  eventTarget?: { addEventListener(type: string, listener: () => void): void; removeEventListener(type: string, listener: () => void): void };
}

/**
 * An event as a subscription delivers it. `eventType` is `<type>_created`, `_updated` or `_deleted`; through a
 * query subscription it is `_created`, `_updated`, `_entered` or `_left`, and a `_left` carries its `reason`
 * (`unmatched` or `deleted`; treat a reason you do not know alike). `subscriptionId` names the subscription that
 * delivered it, so that an app with several subscriptions of one type knows which view it changes. The events of a
 * presence topic (`presence_created`, `_updated`, `_deleted`) and of an ephemeral type have no `seq` (protocol
 * 1.2): they are in no log, and each is delivered as it comes.
 */
export type TidingsEvent = ServerEvent['payload'];
/** A notification. */
export type TidingsNotification = ServerNotification['payload'];
/** The reply to `delete`. */
export type DeleteResult = ServerDelete['payload'];

/**
 * One operation of `batch` (protocol 1.2): the payload of a `create`, `update` or `delete`, with `op` naming which,
 * written as a plain object, such as `{ op: 'update', resourceType: 'order', id, patch: { quantity: 3 },
 * expectedVersion: 2 }`. The generated `Operation` type names `op` only; this union checks the fields of each kind.
 */
export type BatchOperation =
  | ({ op: 'create' } & RequestPayload<'create'>)
  | ({ op: 'update' } & RequestPayload<'update'>)
  | ({ op: 'delete' } & RequestPayload<'delete'>);

/**
 * What one operation of a batch did, with its `op`: the Resource for a create or an update, the `DeleteResult` for a
 * delete, as the single request's reply would carry it.
 */
export type BatchResult = OperationResult;

/** The result of an operation of kind O['op']. */
export type BatchResultOf<O> = O extends { op: infer K } ? Extract<OperationResult, { op: K }> : never;

/**
 * The results of `batch(operations)`, one per operation and in the same order: for operations written in the call,
 * a tuple whose every element has the type its operation's kind gives it.
 */
export type BatchResults<O extends readonly unknown[]> = { -readonly [K in keyof O]: BatchResultOf<O[K]> };

/**
 * The callbacks of `on`, by name; E is the type of the events, R of the resources (a gap's items, a confirmed
 * write's result), W of the outbox's writes.
 */
export interface ClientEvents<E = TidingsEvent, R = Resource, W = PendingWrite> {
  /**
   * An event of a subscription, delivered once, in `seq` order per subscription. `client.live` keeps a view of a
   * query for you; to keep one by hand: start it from the `items` of the Subscription that subscribe() resolved
   * with (ask for `snapshot: true`), then, for the events whose `subscriptionId` is the subscription's, upsert the
   * resource on `_created`, `_updated` and `_entered` (an `_entered` carries the whole resource, as a create does),
   * and drop it on `_left` (whatever its `reason`) and on `_deleted`. Keep the highest `version` seen per id, so
   * that an older copy (a later list page) does not bring back what changed; a `_left` for an id you do not hold is
   * ignored. On `gap`, replace the view with the gap's `items` (or re-read it). The events of a subscription with a
   * query or a snapshot are delivered only after its subscribe() has resolved, so none comes before the view has
   * its id and items.
   */
  event: (event: E) => void;
  notification: (notification: TidingsNotification) => void;
  state: (state: ConnectionState, error?: TidingsError) => void;
  gap: (gap: Gap<R>) => void;
  /**
   * The server ended a subscription (unsubscribe push), resuming it failed, or a reconnect signed in another user
   * (USER_CHANGED); `reason` says why.
   */
  unsubscribed: (info: Unsubscribed) => void;
  /** An `error` push about the session (TOKEN_EXPIRED, RATE_LIMITED), or an unreadable server message. */
  error: (error: TidingsError) => void;
  /**
   * A connection attempt failed, with its number in a row, the close code and the reason; called for each attempt
   * of connect() and of a reconnection, before the client waits to try again (or closes).
   */
  attemptFailed: (failure: FailedAttempt) => void;
  /**
   * With an outbox: the server applied a write of it, with `result`, its reply (the Resource of a create or an
   * update, the DeleteResult of a delete). A create's `write.id` is its temporary id, and `result.id` the server's.
   * Heard for the writes read back from the outbox too, whose callers went with the page that made them.
   */
  confirmed: (write: W, result: R | DeleteResult) => void;
  /**
   * With an outbox: the server refused a write of it, which is rolled back, with the server's error (CONFLICT with
   * `details.currentVersion`, INVALID_PARAMS with the fields, ...), or USER_CHANGED for a write made as another user,
   * or NOT_FOUND for a write of a pending create that was refused.
   */
  rejected: (error: TidingsError, write: W) => void;
  /** With an outbox: it changed (a write was added, read back, confirmed or rejected); `writes` is what waits now. */
  outbox: (writes: readonly W[]) => void;
}

/** Options of one request. */
export interface RequestOptions {
  /**
   * This request's timeout in ms. A write made with an outbox has none: it waits as long as the client is offline.
   * @default the client's requestTimeoutMs
   */
  timeoutMs?: number;
  /**
   * The requestId. For a create or a batch, reuse one to retry it safely across sessions: the server answers a
   * repeat with the first reply and applies nothing again. With an outbox, a write whose requestId is in it already
   * is that write: the call waits for its outcome.
   * @default generateId()
   */
  requestId?: string;
}

/** Options of `update` and `delete`. */
export interface WriteOptions extends RequestOptions {
  /**
   * Applies the write only if the resource is at this version (else CONFLICT); it also makes the write safe to
   * send again when the connection drops before the reply. With an outbox, a write of a pending create goes
   * without it (the new resource's version is not known yet), and any write is safe to send again without it.
   * @default undefined (the write applies at any version, and fails with CONNECTION_LOST when the connection drops)
   */
  expectedVersion?: number;
}

/** Options of `subscribe`. */
export interface SubscribeOptions extends RequestOptions {
  /**
   * Replays every event of the topic with a greater seq before going live; the reply says whether all could be.
   * @default undefined (live events only)
   */
  since?: number;
  /**
   * On a type topic (`order`), follows only the resources that match this query (build it with `q`): their
   * changes as `_created` and `_updated`, and `_entered` and `_left` (with `reason`) when one starts or stops
   * matching. A connection may hold the plain topic and several queries of it at once; each is resumed with its
   * query after a reconnect. Needs a server of protocol 1.1 or later.
   * @default undefined (every event of the topic)
   */
  query?: Query;
  /**
   * On a type topic, asks for what the subscription covers now: the Subscription's `items` (and `nextCursor`),
   * exactly as of its seq, with every later change as an event; none when a replay after `since` follows instead.
   * A resume after a reconnect asks again, and the server sends it only when it cannot replay (then in the `gap`).
   * @default false
   */
  snapshot?: boolean;
}

/** Options of `unsubscribe`. */
export interface UnsubscribeOptions extends RequestOptions {
  /**
   * With a topic: ends the subscription to this query of it instead of the plain topic.
   * @default undefined (the plain topic)
   */
  query?: Query;
}

/** The list query of `list`; what it leaves out, the server decides (docs/protocol.md). */
export interface ListQuery {
  /**
   * Lists only the resources whose top-level `data` fields equal these values.
   * @default undefined (no filter)
   */
  filter?: Record<string, Scalar>;
  /**
   * Lists only the resources that match this query (build it with `q`); with `filter`, both must hold. Needs a
   * server of protocol 1.1 or later.
   * @default undefined (no query)
   */
  query?: Query;
  /**
   * The order: `createdAt`, `-createdAt`, `updatedAt`, `id`, or a top-level data field; or, with a server of
   * protocol 1.1 or later, up to four such keys, each deciding the ties of the one before
   * (`['status', '-totalAmount']`).
   * @default undefined (the server orders by createdAt)
   */
  orderBy?: Order;
  /**
   * The page size, 1 to 100.
   * @default undefined (the server sends 20)
   */
  limit?: number;
  /**
   * The `nextCursor` of the previous page.
   * @default undefined (the first page)
   */
  cursor?: string;
  /**
   * Only these top-level `data` fields in each item (protocol 1.1).
   * @default undefined (every field)
   */
  fields?: [FieldName, ...FieldName[]];
  /**
   * With `true`, the page's `total` counts every resource of the list, all pages (protocol 1.1). It costs the
   * server a pass over the list: ask for it when the number is shown, not on every page.
   * @default undefined (no total)
   */
  count?: boolean;
}

/** Options of `presence`. */
export interface PresenceOptions {
  /**
   * The timeout of each of its requests (the subscribe, and each join, change and leave), in ms.
   * @default the client's requestTimeoutMs
   */
  timeoutMs?: number;
}

/** Options of `live`; R is the type of its resources. */
export interface LiveOptions<R = Resource> {
  /**
   * The order of the collection's snapshot array, as for Array.prototype.sort; it sees the items as shown, pending
   * writes included (`pending: true`).
   * @default by createdAt, then by id, oldest first (the order of the server's snapshot)
   */
  compare?: (a: LiveItem<R>, b: LiveItem<R>) => number;
  /**
   * The timeout of each of its requests (the subscribe and the list pages), in ms.
   * @default the client's requestTimeoutMs
   */
  timeoutMs?: number;
}
