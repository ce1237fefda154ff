// The connection's life: a socket opened with `connect` and `auth`, the heartbeat watchdog, the token refresh, the
// subscriptions resumed, the probes, and after a close either a reconnection with backoff or the end of the client.
import {
  ABNORMAL_CLOSURE,
  ClientErrorCode,
  CloseCode,
  PROTOCOL_VERSION,
  ServerErrorCode,
  TidingsError,
  backoffDelay,
  shouldReconnect,
  type RequestPayload,
  type ServerSubscribe,
} from './common.js';
import type { Settings } from './defaults.js';
import type { ClientEvents, ClientOptions, ConnectionState } from './options.js';
import { OPEN, type Requests } from './requests.js';
import type { ClientState, PendingRequest } from './state.js';
import { applyResume, ended, type SubscriptionRecord } from './subscriptions.js';

/** The longest delay setTimeout keeps, 2^31-1 ms; a longer one fires at once. */
const MAX_TIMER_MS = 2 ** 31 - 1;

/** The failures of a handshake that end the client: another attempt would fail the same way. */
const FATAL = [ServerErrorCode.UNAUTHORIZED, ServerErrorCode.UNSUPPORTED_VERSION, ClientErrorCode.SIGNED_OUT] as const;

/** The shortest wait before a token refresh, so that a token already near its expiry is not refreshed in a loop. */
const MIN_REFRESH_WAIT_MS = 1000;

/** What the connection's life needs of the client around it. */
export interface ClientContext {
  options: ClientOptions;
  settings: Settings;
  state: ClientState;
  requests: Requests;
  emit<K extends keyof ClientEvents>(name: K, ...args: Parameters<ClientEvents[K]>): void;
  setState(next: ConnectionState, error?: TidingsError): void;
  /** Handles a message from the server: a reply, a push, or an unreadable message. */
  onMessage(data: unknown): void;
  /**
   * Restores, once the subscriptions are resumed, what belonged to the previous connection and ended with it: the
   * presence members the app had joined. It rejects, failing the attempt, only when this connection is lost too.
   */
  restore(): Promise<void>;
}

/** What the client asks of its connection. */
export interface Connection {
  /** One connection attempt: open, connect, auth, resubscribe, then resend and flush; rejects when it fails. */
  open(): Promise<void>;
  /** Sends `auth` with a fresh token and schedules the next refresh before expiry; SIGNED_OUT when getToken gave none. */
  authenticate(): Promise<void>;
  /** Authenticates again on the live connection: a sign-out ends the client, another failure is logged. */
  refresh(): void;
  /** Restarts the heartbeat watchdog, as any message from the server does. */
  armWatchdog(): void;
  /** Drops the current socket at once, as if the network had failed, and reconnects. */
  drop(reason: string): void;
  /** Ends the client: fails everything that waits, and reports closed. */
  shutdown(error: TidingsError): void;
  /** Listens for `online`, `offline` and `visibilitychange` on the event target, to probe the link then. */
  addProbes(): void;
}

/** The connection of the client with this context. */
export function createConnection({ options, settings, state, requests, emit, setState, onMessage, restore }: ClientContext): Connection {
  const { request, transmit, pacer } = requests;
  const log = settings.logger;

  /** Asks for a token, with one getToken call in flight at a time; null when getToken says the user signed out. */
  function token(): Promise<string | null> {
    const getToken = options.getToken;
    if (getToken === undefined) return Promise.resolve(options.token as string);
    state.tokenInFlight ??= Promise.resolve()
      .then(() => getToken())
      .then((fresh) => fresh ?? null)
      .finally(() => {
        state.tokenInFlight = undefined;
      });
    return state.tokenInFlight;
  }

  function armWatchdog(): void {
    clearTimeout(state.watchdog);
    if (state.silenceLimitMs === undefined) return;
    state.watchdog = setTimeout(() => drop('no message from the server; the link is dead'), state.silenceLimitMs);
  }

  async function authenticate(): Promise<void> {
    const fresh = await token();
    if (fresh === null) throw new TidingsError(ClientErrorCode.SIGNED_OUT, 'getToken returned no token: the user signed out');
    const reply = await request('auth', { token: fresh }, { internal: true, timeoutMs: settings.connectTimeoutMs });
    // Reply types this as auth_success; the check stays for a server that answers auth with another type.
    if (reply.type !== 'auth_success') return;
    const previous = state.userId;
    state.userId = reply.payload.userId;
    // Only a new connection can change users: the server refuses another user's token on the same one.
    if (previous !== undefined && previous !== reply.payload.userId) userChanged(previous, reply.payload.userId);
    clearTimeout(state.refreshTimer);
    if (options.getToken !== undefined) {
      const waitMs = Math.max(MIN_REFRESH_WAIT_MS, reply.payload.expiresAt - Date.now() - settings.refreshBeforeExpiryMs);
      // A token valid beyond the longest timer is refreshed at the latest after that, about 24 days.
      state.refreshTimer = setTimeout(refresh, Math.min(waitMs, MAX_TIMER_MS));
    }
  }

  function refresh(): void {
    authenticate().catch((error: unknown) => {
      if (error instanceof TidingsError && error.code === ClientErrorCode.SIGNED_OUT) return shutdown(error);
      // The server closes the connection with TokenExpired (4501) once the token expires, and the client then
      // reconnects with a token from getToken; until then the failure is only worth a line in the log.
      log.warn(`authenticating again with a fresh token failed: ${String(error)}`, error);
    });
  }

  /**
   * Reports a connection attempt that failed, and with failFast, marks connect() as given up, so that the close that
   * follows ends the client instead of reconnecting.
   */
  function failed(attempt: number, error: TidingsError, code: number | undefined, closeReason: string): void {
    const reason = closeReason === '' ? error.message : closeReason;
    log.warn(`connection attempt ${attempt} failed: ${reason}`, { attempt, code, error });
    if (settings.failFast && state.firstConnect !== undefined) state.abandon = error;
    emit('attemptFailed', { attempt, code, reason, error });
  }

  /**
   * getToken signed another user in after a reconnect (or after close() and connect()). What waits in the queue and
   * the subscriptions were the previous user's: sending them now would act as the new user on the previous one's
   * behalf, so the requests fail, the subscriptions end, and the client goes on as the new user with none.
   */
  function userChanged(previous: string, current: string): void {
    const reason = (requestId?: string) =>
      new TidingsError(
        ClientErrorCode.USER_CHANGED,
        `the client is now signed in as ${current}, not ${previous}: what ${previous} asked for is not done as ${current}`,
        { previousUserId: previous, userId: current },
        requestId,
      );
    for (const req of state.queue.splice(0)) req.reject(reason(req.requestId));
    const gone = [...state.subscriptions.values()];
    state.subscriptions.clear();
    // A pending subscription's own subscribe was in the queue, and its caller has the error already.
    for (const sub of gone.filter((s) => !s.pending)) emit('unsubscribed', ended(sub, reason()));
  }

  function open(): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      state.lastDisconnect = undefined;
      state.tries += 1;
      const attempt = state.tries;
      const url = typeof options.url === 'function' ? options.url() : options.url;
      const ws = new settings.WebSocket(url);
      state.socket = ws;
      // The server's bucket is per connection: a new socket starts with a full one.
      pacer.reset();
      let done = false;
      /** Settles the attempt; a failure is reported with the socket's close code and reason when it closed. */
      const finish = (error?: TidingsError, code?: number, closeReason = '') => {
        if (done) return;
        done = true;
        clearTimeout(timer);
        if (error === undefined) return resolve();
        failed(attempt, error, code, closeReason);
        reject(error);
      };
      const timer = setTimeout(() => {
        finish(new TidingsError(ClientErrorCode.TIMEOUT, `not authenticated within ${settings.connectTimeoutMs} ms`));
        drop('connection attempt timed out');
      }, settings.connectTimeoutMs);
      ws.onmessage = (event) => onMessage(event.data);
      ws.onerror = () => undefined;
      ws.onclose = (event) => {
        if (state.socket !== ws) return;
        const last = state.lastDisconnect;
        const code = last?.code ?? event.code;
        const reason = last?.reason ?? event.reason;
        const again = last?.reconnect ?? shouldReconnect(code);
        const message = `the connection closed (${code}${reason ? ` ${reason}` : ''})`;
        const error = new TidingsError(ClientErrorCode.CONNECTION_LOST, message, { code, reconnect: again });
        finish(error, code, reason);
        // After TokenExpired the server says not to reconnect, but getToken can give the fresh token it needs.
        onClosed(again || (code === CloseCode.TokenExpired && options.getToken !== undefined), error);
      };
      ws.onopen = () => {
        void (async () => {
          const connecting = request(
            'connect',
            { protocolVersion: PROTOCOL_VERSION, client: settings.clientInfo },
            { internal: true, timeoutMs: settings.connectTimeoutMs },
          );
          // auth goes out right behind connect, without waiting for its reply: the server answers them in order, so
          // the connection is signed in one round trip sooner, and the server reads both in one read and answers
          // both in one write (a crowd reconnecting after a deploy costs it less). A failed connect is reported
          // first; auth's own failure, after it.
          const signingIn = authenticate();
          signingIn.catch(() => undefined);
          const connect = await connecting;
          state.serverVersion = connect.payload.protocolVersion;
          // What follows (the resubscriptions, the queue) is paced within the advertised rate limit.
          pacer.limit(connect.payload.limits.rateLimit);
          state.silenceLimitMs = connect.payload.heartbeat.pingIntervalMs + settings.heartbeatMarginMs;
          armWatchdog();
          await signingIn;
          state.authenticated = true;
          state.attempt = 0;
          state.tries = 0;
          await resubscribe();
          await restore();
          // Retried requests first, in their order, then what was queued while disconnected.
          for (const req of state.queue.splice(0)) transmit(req);
          setState('connected');
          finish();
        })().catch((error: unknown) => {
          const failure = error instanceof TidingsError ? error : new TidingsError(ServerErrorCode.INTERNAL, String(error));
          finish(failure);
          // A rejected token is final unless getToken may give a better one next time; so is a sign-out.
          const fatal = (FATAL as readonly string[]).includes(failure.code);
          if (state.socket === ws) {
            fatal ? shutdown(failure) : drop(`handshake failed: ${failure.message}`);
          }
        });
      };
    });
  }

  /**
   * Subscribes again to every subscription, each with its query, with since = the last seq seen, and reports the
   * gaps. One that asked for a snapshot asks again: the server sends it only when it cannot replay, and the gap
   * carries it. One whose events have no seq (presence, an ephemeral type) goes without since: there is nothing to
   * replay; a presence topic's reply brings its members, reported as a gap.
   */
  async function resubscribe(): Promise<void> {
    // A pending subscription's own subscribe is still to go out, from the queue.
    const resumed = [...state.subscriptions.values()].filter((sub) => !sub.pending);
    await Promise.all(resumed.map(resume));
  }

  async function resume(sub: SubscriptionRecord): Promise<void> {
    const since = sub.resumable ? sub.lastSeq : undefined;
    const payload: RequestPayload<'subscribe'> = { topic: sub.topic };
    if (since !== undefined) payload.since = since;
    if (sub.query !== undefined) payload.query = sub.query;
    if (sub.snapshot) payload.snapshot = true;
    // The reply is applied as it arrives, so that the gap comes before the events that follow it in one burst.
    const onReply = (reply: ServerSubscribe) => {
      const gap = applyResume(sub, reply.payload, since);
      if (gap !== undefined) emit('gap', gap);
    };
    try {
      await request('subscribe', payload, { internal: true, onReply });
    } catch (error) {
      // A lost connection or a timeout fails this attempt; any other failure ends only this subscription.
      if (!(error instanceof TidingsError) || error.code === ClientErrorCode.CONNECTION_LOST || error.code === ClientErrorCode.TIMEOUT) {
        throw error;
      }
      if (state.subscriptions.get(sub.key) === sub) state.subscriptions.delete(sub.key);
      log.warn(`resuming the subscription ${sub.subscriptionId} failed: ${error.message}`, error);
      emit('unsubscribed', ended(sub, error));
    }
  }

  /** After a close: fail or keep the requests in flight, then reconnect or shut down. */
  function onClosed(reconnect: boolean, error: TidingsError): void {
    clearTimeout(state.watchdog);
    clearTimeout(state.refreshTimer);
    state.authenticated = false;
    state.socket = undefined;
    pacer.reset();
    const retried: PendingRequest[] = [];
    for (const req of state.inFlight.values()) {
      // A request still waiting for its turn never reached the server, so it is safe to send on the next socket,
      // unless it was part of connecting this one.
      if (req.retry || (!req.sent && !req.internal)) retried.push(req);
      else {
        const message = `the connection closed before the reply to ${req.type}`;
        req.reject(new TidingsError(ClientErrorCode.CONNECTION_LOST, message, error.details, req.requestId));
      }
    }
    state.inFlight.clear();
    state.queue.unshift(...retried);
    if (state.closedByUser) return;
    const abandon = state.abandon;
    state.abandon = undefined;
    if (abandon !== undefined) return shutdown(abandon);
    if (!reconnect) return shutdown(error);
    void reconnectLoop();
  }

  async function reconnectLoop(): Promise<void> {
    if (state.reconnecting) return;
    state.reconnecting = true;
    try {
      while (!state.closedByUser) {
        state.attempt += 1;
        const { baseMs, maxMs, attempts } = settings.retry;
        if (state.attempt > attempts) {
          return shutdown(new TidingsError(ClientErrorCode.CLOSED, `gave up after ${attempts} reconnection attempts`));
        }
        setState('reconnecting');
        const delayMs = backoffDelay(state.attempt, baseMs, maxMs);
        log.info(`reconnecting in ${Math.round(delayMs)} ms (reconnection attempt ${state.attempt})`);
        await settings.retryWait(state.attempt, delayMs);
        if (state.closedByUser) return;
        try {
          await open();
          return;
        } catch {
          // open() failed; its socket's close, if any, does not start another loop while this one runs.
          if (state.connection === 'closed') return;
        }
      }
    } finally {
      state.reconnecting = false;
    }
  }

  function drop(reason: string): void {
    const ws = state.socket;
    if (ws === undefined) return;
    // The close is handled at once, with the code of a connection lost without a close frame: a dead link's own
    // close event may come late, or never.
    ws.onclose?.({ code: ABNORMAL_CLOSURE, reason });
    ws.onclose = null;
    ws.onmessage = null;
    try {
      // Every drop treats the link as dead, so the client closes with the code the server uses for one.
      ws.close(CloseCode.HeartbeatTimeout, reason.slice(0, 100));
    } catch {
      // The socket may not be open yet; closing it is then best effort.
    }
  }

  function shutdown(error: TidingsError): void {
    state.closedByUser = true;
    clearTimeout(state.watchdog);
    clearTimeout(state.refreshTimer);
    state.authenticated = false;
    const ws = state.socket;
    state.socket = undefined;
    pacer.reset();
    if (ws !== undefined) {
      ws.onclose = null;
      ws.onmessage = null;
      try {
        if (ws.readyState === OPEN) ws.send(JSON.stringify({ type: 'disconnect', timestamp: Date.now(), payload: { reason: 'client closed' } }));
        ws.close(CloseCode.Normal, 'client closed');
      } catch {
        // Closing is best effort.
      }
    }
    for (const req of [...state.inFlight.values(), ...state.queue]) {
      req.reject(new TidingsError(ClientErrorCode.CLOSED, error.message, error.details, req.requestId));
    }
    state.inFlight.clear();
    state.queue.length = 0;
    removeProbes();
    state.firstConnect?.reject(error);
    state.firstConnect = undefined;
    // close() is no failure, so its state change carries no error.
    const byCaller = error.code === ClientErrorCode.CLOSED && error.message === 'closed by the caller';
    setState('closed', byCaller ? undefined : error);
  }

  /** Probes the link with a ping; a missing pong drops it. */
  function probe(): void {
    if (!state.authenticated) return;
    request('ping', {}, { internal: true, timeoutMs: settings.probeTimeoutMs }).catch((error: unknown) => {
      if (error instanceof TidingsError && error.code === ClientErrorCode.TIMEOUT) drop('no pong to the probe');
    });
  }

  function onVisibility(): void {
    const doc = (globalThis as { document?: { visibilityState?: string } }).document;
    if (doc?.visibilityState === undefined || doc.visibilityState === 'visible') probe();
  }

  function addProbes(): void {
    const target = settings.eventTarget;
    if (state.probing || target === undefined) return;
    state.probing = true;
    // Going offline is probed as well as coming back: the browser may keep a dead socket open for minutes, and a
    // probe that gets no pong drops it, so that the client says it is reconnecting and writes wait for the network.
    target.addEventListener('online', probe);
    target.addEventListener('offline', probe);
    target.addEventListener('visibilitychange', onVisibility);
  }

  function removeProbes(): void {
    const target = settings.eventTarget;
    if (!state.probing || target === undefined) return;
    state.probing = false;
    target.removeEventListener('online', probe);
    target.removeEventListener('offline', probe);
    target.removeEventListener('visibilitychange', onVisibility);
  }

  return { open, authenticate, refresh, armWatchdog, drop, shutdown, addProbes };
}
