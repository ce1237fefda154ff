// The client's public shapes: its options with their defaults, its events, and the Client interface.
/// <reference lib="esnext.disposable" preserve="true" />
// The directive above gives an app the types of Symbol.dispose, which SubscriptionHandle names, whatever its lib.
import {
  TidingsError,
  type FieldName,
  type OperationResult,
  type Order,
  type Query,
  type RequestPayload,
  type Resource,
  type ResourceList,
  type Scalar,
  type ServerDelete,
  type ServerEvent,
  type ServerNotification,
} from './common.js';

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
   * How long a probe `ping` (on the browser's `online` or `visibilitychange`) may wait for its `pong`, in ms.
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
   * Where to listen for `online` and `visibilitychange`, which make the client probe the link.
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
 * A gap: after a reconnect the server could not replay every event after `since` (`recovered: false`); re-read
 * what you show of that subscription. For a subscription made with `snapshot: true`, the re-read came with the
 * reply: `items` is what the subscription covers as of `seq` (replace the view with it), and the events that follow
 * the gap come after it.
 */
export interface Gap<R = Resource> {
  topic: string;
  /** The subscription that missed events: the topic, or a query's id such as `order?3ea3b651e737ab32`. */
  subscriptionId: string;
  /** The subscription's query, when it has one. */
  query?: Query;
  since: number;
  seq: number;
  /** With a snapshot: the first page (up to 100, by createdAt) of what the subscription covers as of `seq`. */
  items?: R[];
  /** With `items`: where the rest is (list with the same query and this cursor), or null when that was all. */
  nextCursor?: string | null;
}

/** A subscription as the client holds it; R is the type of its snapshot's items. */
export interface Subscription<R = Resource> {
  topic: string;
  /**
   * The id its events carry in `subscriptionId`: the topic itself, or for a query, the type and a digest of the
   * query (`order?3ea3b651e737ab32`), the same for the same query on every connection.
   */
  subscriptionId: string;
  /** The query it follows, when it has one. */
  query?: Query;
  /** The seq of the last event delivered, or the topic's seq when subscribed if none came since. */
  lastSeq: number;
  /** Present when subscribed with since: whether every event after since could be replayed. */
  recovered?: boolean;
  /**
   * Only on what subscribe() resolves with, when it asked for a snapshot and no replay followed: the first page
   * (up to 100, by createdAt) of what the subscription covers, exactly as of the reply's seq. Every event of the
   * subscription comes after it.
   */
  items?: R[];
  /**
   * With `items`: null when they are all that matched; else a cursor to `list` the rest with the same query. Those
   * pages are read later than the snapshot, so keep, for each id, the highest version seen (`_left` events count).
   */
  nextCursor?: string | null;
}

/** The callbacks of a subscription handle's `on`, by name; E is the type of its events, R of its items. */
export interface HandleEvents<E = TidingsEvent, R = Resource> {
  /**
   * An event of this subscription, once, in seq order, from the handle's `lastSeq` on. A handle of a subscription
   * with a query or a snapshot gets its first event only after its subscribe() has resolved.
   */
  event: (event: E) => void;
  /** Resuming the subscription after a reconnect could not replay every event: re-read, or use the gap's `items`. */
  gap: (gap: Gap<R>) => void;
  /**
   * The subscription ended without this handle's unsubscribe(): the server ended it, resuming it failed, another
   * user signed in (USER_CHANGED), or client.unsubscribe(topic) ended it for every handle. It comes after every
   * event the server sent before the end, also when the end comes before subscribe() has resolved. The handle is
   * then inactive and its async iterations finish.
   */
  left: (info: Unsubscribed) => void;
}

/**
 * What subscribe() resolves with: the Subscription, and the handle of one subscriber on it. Several subscribe()
 * calls with the same topic and query share one subscription on the server, each with its own handle; the server
 * subscription ends when the last handle is unsubscribed.
 */
export interface SubscriptionHandle<E = TidingsEvent, R = Resource> extends Subscription<R> {
  /** False once unsubscribe() was called, or the subscription ended (`left`). */
  readonly active: boolean;
  /**
   * Lets go of this handle: its listeners hear nothing more and its iterations finish. When it was the last handle
   * of its subscription, the client unsubscribes on the server, and this resolves once the server confirmed it.
   * Calling it again does nothing.
   */
  unsubscribe(options?: RequestOptions): Promise<void>;
  /** Adds a callback for this subscription only; returns a function that removes it. */
  on<K extends keyof HandleEvents>(name: K, listener: HandleEvents<E, R>[K]): () => void;
  /**
   * Iterates over the events of this subscription from now on, as `for await (const event of handle)`. It finishes
   * when the handle is unsubscribed or the subscription ends; leaving the loop early ends the iteration only, not
   * the subscription. Events wait in memory until the loop takes them. Gaps are not in it: listen with on('gap').
   */
  [Symbol.asyncIterator](): AsyncIterator<E, undefined>;
  /**
   * The same as unsubscribe(), without waiting, for `using handle = await client.subscribe(...)`: the handle is let go
   * at the end of the block. Present where the runtime defines Symbol.dispose (Node 20, current browsers).
   */
  [Symbol.dispose](): void;
  /** unsubscribe(), for `await using`. Present where the runtime defines Symbol.asyncDispose. */
  [Symbol.asyncDispose](): Promise<void>;
}

/** What `unsubscribed` reports: the subscription that ended, and why. */
export interface Unsubscribed {
  topic: string;
  subscriptionId: string;
  /** The subscription's query, when it had one. */
  query?: Query;
  reason: TidingsError;
}

/** The callbacks of `on`, by name; E is the type of the events, R of a gap's items. */
export interface ClientEvents<E = TidingsEvent, R = Resource> {
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
}

/** Options of one request. */
export interface RequestOptions {
  /**
   * This request's timeout in ms.
   * @default the client's requestTimeoutMs
   */
  timeoutMs?: number;
  /**
   * The requestId. For a create or a batch, reuse one to retry it safely across sessions: the server answers a
   * repeat with the first reply and applies nothing again.
   * @default generateId()
   */
  requestId?: string;
}

/** Options of `update` and `delete`. */
export interface WriteOptions extends RequestOptions {
  /**
   * Applies the write only if the resource is at this version (else CONFLICT); it also makes the write safe to
   * send again when the connection drops before the reply.
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
   * The order of the collection's snapshot array, as for Array.prototype.sort.
   * @default by createdAt, then by id, oldest first (the order of the server's snapshot)
   */
  compare?: (a: R, b: R) => number;
  /**
   * The timeout of each of its requests (the subscribe and the list pages), in ms.
   * @default the client's requestTimeoutMs
   */
  timeoutMs?: number;
}
