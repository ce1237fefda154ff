// The client's mutable state in one object, so that a reader sees at once everything that changes while it runs.
import type { RequestType, ServerDisconnect, ServerMessage, TidingsError } from './common.js';
import type { ConnectionState, WebSocketLike } from './options.js';
import type { SubscriptionRecord } from './subscriptions.js';

type Timer = ReturnType<typeof setTimeout>;

/** A request waiting for its reply: in the queue until a connection is ready, then in flight. */
export interface PendingRequest {
  requestId: string;
  type: RequestType;
  payload: object;
  /** Settles the request with its reply; the caller's promise gets the reply typed by the request's type. */
  resolve: (message: ServerMessage) => void;
  reject: (error: TidingsError) => void;
  /** Fails the request with TIMEOUT; it runs from the call on, across the queue and reconnects. */
  timer: Timer | undefined;
  /** Safe to send again on a new connection: create (same requestId), read, guarded update/delete. */
  retry: boolean;
  /**
   * Part of connecting (connect, auth, a resubscription, a probe), or about what lives only as long as the socket (a
   * presence member), or not worth sending late (a broadcast): it belongs to its socket, and dies with it.
   */
  internal: boolean;
  /** Written to the socket; false while it waits for its turn within the rate limit, and after RATE_LIMITED. */
  sent: boolean;
}

/** Everything about a client that changes while it runs. */
export interface ClientState {
  /** The connection's state, as `client.state` and on('state') report it. */
  connection: ConnectionState;
  /** The current socket; none between connections. */
  socket: WebSocketLike | undefined;
  /** The user the last `auth_success` named; a reconnect that names another ends what belonged to this one. */
  userId: string | undefined;
  /** Whether the current socket has passed `connect` and `auth`: requests then go out at once instead of waiting. */
  authenticated: boolean;
  /** Set by close() and when the client gives up: nothing reconnects until connect() clears it. */
  closedByUser: boolean;
  /** Reconnection attempts in a row since the last successful connection. */
  attempt: number;
  /** Connection attempts in a row, connect()'s first included, since connect() or the last successful connection. */
  tries: number;
  /**
   * Set when an attempt of connect() failed with failFast: the close that follows ends the client with this error
   * instead of reconnecting.
   */
  abandon: TidingsError | undefined;
  /** Whether a reconnection loop runs, so that a close during one does not start a second. */
  reconnecting: boolean;
  /** Drops the link when the server has been silent for silenceLimitMs. */
  watchdog: Timer | undefined;
  /** The server's pingIntervalMs plus heartbeatMarginMs, known once the server answered `connect`. */
  silenceLimitMs: number | undefined;
  /** Authenticates again with a fresh token from getToken before the current one expires. */
  refreshTimer: Timer | undefined;
  /** The getToken call in flight, shared by every need for a token until it settles. */
  tokenInFlight: Promise<string | null> | undefined;
  /** The promise of connect() until its connection succeeds or the client closes. */
  firstConnect: { resolve: () => void; reject: (error: TidingsError) => void } | undefined;
  /** The server's `disconnect` before the current socket's close: its `reconnect` decides over the close code. */
  lastDisconnect: ServerDisconnect['payload'] | undefined;
  /** Whether the probe listeners are on the event target. */
  probing: boolean;
  /** The requests sent on the current socket, by requestId. */
  inFlight: Map<string, PendingRequest>;
  /** The requests waiting for a connection, in the order they will go out. */
  queue: PendingRequest[];
  /** The subscriptions to resume after a reconnect, by key: the topic, or the topic and a query (subscriptionKey). */
  subscriptions: Map<string, SubscriptionRecord>;
  /** The protocol version the server stated in its last `connect` reply; undefined before the first. */
  serverVersion: string | undefined;
}

/** Whether the server, as far as its last `connect` reply says, speaks protocol 1.`minor` or later (true before it said). */
export function serverSpeaks(state: ClientState, minor: number): boolean {
  if (state.serverVersion === undefined) return true;
  const [major, stated = '0'] = state.serverVersion.split('.');
  return Number(major) > 1 || (Number(major) === 1 && Number(stated) >= minor);
}

/** The state of a client that has not connected yet. */
export function initialState(): ClientState {
  return {
    connection: 'idle',
    socket: undefined,
    userId: undefined,
    authenticated: false,
    closedByUser: false,
    attempt: 0,
    tries: 0,
    abandon: undefined,
    reconnecting: false,
    watchdog: undefined,
    silenceLimitMs: undefined,
    refreshTimer: undefined,
    tokenInFlight: undefined,
    firstConnect: undefined,
    lastDisconnect: undefined,
    probing: false,
    inFlight: new Map(),
    queue: [],
    subscriptions: new Map(),
    serverVersion: undefined,
  };
}
