// The Tidings client: createClient, requests as promises, pushes as callbacks, reconnection with resume.
import {
  PROTOCOL_VERSION,
  TidingsError,
  decodeServer,
  shouldReconnect,
  type ClientMessage,
  type Resource,
  type ResourceList,
  type ServerConnect,
  type ServerMessage,
  type ServerSubscribe,
  type ServerUnsubscribe,
} from './common.js';
import type {
  ClientEvents,
  ClientOptions,
  Client,
  ConnectionState,
  DeleteResult,
  RequestOptions,
  Subscription,
  WebSocketConstructor,
  WebSocketLike,
} from './options.js';

interface Request {
  requestId: string;
  type: ClientMessage['type'];
  payload: Record<string, unknown>;
  resolve: (message: ServerMessage) => void;
  reject: (error: TidingsError) => void;
  timer: ReturnType<typeof setTimeout> | undefined;
  /** Safe to send again on a new connection: create (same requestId), read, guarded update/delete. */
  retry: boolean;
}

const OPEN = 1;

/** The backoff with "equal jitter": half the capped exponential delay, plus a random part of the other half. */
export function backoffDelay(attempt: number, baseMs: number, maxMs: number, random: () => number = Math.random): number {
  const cap = Math.min(maxMs, baseMs * 2 ** Math.max(0, attempt - 1));
  return cap / 2 + random() * (cap / 2);
}

/** Creates a client. Nothing is sent before connect(). */
export function createClient(options: ClientOptions): Client {
  if (options.token === undefined && options.getToken === undefined) throw new TypeError('createClient needs token or getToken');
  const FoundSocket = options.WebSocket ?? (globalThis as { WebSocket?: WebSocketConstructor }).WebSocket;
  if (FoundSocket === undefined) throw new TypeError('no WebSocket here: pass one, such as the ws package, as options.WebSocket');
  const Socket: WebSocketConstructor = FoundSocket;
  const requestTimeoutMs = options.requestTimeoutMs ?? 10000;
  const connectTimeoutMs = options.connectTimeoutMs ?? 10000;
  const baseMs = options.retry?.baseMs ?? 500;
  const maxMs = options.retry?.maxMs ?? 30000;
  const maxAttempts = options.retry?.attempts ?? Infinity;
  const retryWait = options.retryWait ?? ((_attempt: number, delayMs: number) => new Promise<void>((r) => setTimeout(r, delayMs)));
  const queueWhileDisconnected = options.queueWhileDisconnected ?? true;
  const maxQueue = options.maxQueue ?? 100;
  const heartbeatMarginMs = options.heartbeatMarginMs ?? 10000;
  const probeTimeoutMs = options.probeTimeoutMs ?? 5000;
  const refreshBeforeExpiryMs = options.refreshBeforeExpiryMs ?? 60000;
  const clientInfo = { name: 'tidings-js', version: '0.1.0', ...options.clientInfo };
  const generateId = options.generateId ?? (() => globalThis.crypto.randomUUID());

  let state: ConnectionState = 'idle';
  let socket: WebSocketLike | undefined;
  let authenticated = false;
  let closedByUser = false;
  let attempt = 0;
  let watchdog: ReturnType<typeof setTimeout> | undefined;
  let refreshTimer: ReturnType<typeof setTimeout> | undefined;
  let silenceLimitMs: number | undefined;
  let tokenInFlight: Promise<string> | undefined;
  let firstConnect: { resolve: () => void; reject: (e: TidingsError) => void } | undefined;
  const inFlight = new Map<string, Request>();
  const queue: Request[] = [];
  const subs = new Map<string, Subscription>();
  const listeners: { [K in keyof ClientEvents]: Set<ClientEvents[K]> } = {
    event: new Set(),
    notification: new Set(),
    state: new Set(),
    gap: new Set(),
    unsubscribed: new Set(),
    error: new Set(),
  };

  function emit<K extends keyof ClientEvents>(name: K, ...args: Parameters<ClientEvents[K]>): void {
    for (const listener of [...listeners[name]]) {
      try {
        (listener as (...a: Parameters<ClientEvents[K]>) => void)(...args);
      } catch (error) {
        // A listener's failure must not break the connection; it is reported asynchronously.
        queueMicrotask(() => {
          throw error;
        });
      }
    }
  }

  function setState(next: ConnectionState, error?: TidingsError): void {
    if (state === next) return;
    state = next;
    options.onStateChange?.(next, error);
    emit('state', next, error);
  }

  /** Asks for a token, with one getToken call in flight at a time. */
  function token(): Promise<string> {
    if (options.getToken === undefined) return Promise.resolve(options.token as string);
    tokenInFlight ??= Promise.resolve()
      .then(() => (options.getToken as () => string | Promise<string>)())
      .finally(() => {
        tokenInFlight = undefined;
      });
    return tokenInFlight;
  }

  function send(message: Record<string, unknown>): boolean {
    if (socket === undefined || socket.readyState !== OPEN) return false;
    socket.send(JSON.stringify({ ...message, timestamp: Date.now() }));
    return true;
  }

  function transmit(request: Request): void {
    inFlight.set(request.requestId, request);
    send({ type: request.type, requestId: request.requestId, payload: request.payload });
  }

  function settle(request: Request): void {
    clearTimeout(request.timer);
    inFlight.delete(request.requestId);
    const index = queue.indexOf(request);
    if (index >= 0) queue.splice(index, 1);
  }

  /** Sends a request now (internal requests, or when authenticated), or queues it, or fails it. */
  function request(
    type: ClientMessage['type'],
    payload: Record<string, unknown>,
    opts: RequestOptions & { internal?: boolean; retry?: boolean } = {},
  ): Promise<ServerMessage> {
    return new Promise<ServerMessage>((resolve, reject) => {
      const req: Request = {
        requestId: opts.requestId ?? generateId(),
        type,
        payload,
        resolve,
        reject,
        timer: undefined,
        retry: opts.retry ?? false,
      };
      const fail = (error: TidingsError) => {
        settle(req);
        reject(error);
      };
      req.reject = fail;
      req.resolve = (message) => {
        settle(req);
        resolve(message);
      };
      if (opts.internal) {
        transmit(req);
      } else if (authenticated) {
        transmit(req);
      } else if (state === 'closed' || state === 'idle') {
        return reject(new TidingsError('CLOSED', 'the client is not connected; call connect()', null, req.requestId));
      } else if (!queueWhileDisconnected) {
        return reject(new TidingsError('DISCONNECTED', 'the client is disconnected', null, req.requestId));
      } else if (queue.length >= maxQueue) {
        return reject(new TidingsError('QUEUE_FULL', `${maxQueue} requests already wait for the connection`, null, req.requestId));
      } else {
        queue.push(req);
      }
      const timeoutMs = opts.timeoutMs ?? requestTimeoutMs;
      req.timer = setTimeout(
        () => fail(new TidingsError('TIMEOUT', `no reply to ${type} within ${timeoutMs} ms`, null, req.requestId)),
        timeoutMs,
      );
    });
  }

  /** Resolves with the reply's payload, or rejects with the TidingsError of an `error` or `auth_failed` reply. */
  function routeReply(req: Request, message: ServerMessage): void {
    if (message.type === 'error' || message.type === 'auth_failed') {
      const p = message.payload;
      req.reject(new TidingsError(p.code, p.message, p.details ?? null, req.requestId));
    } else {
      req.resolve(message);
    }
  }

  function armWatchdog(): void {
    clearTimeout(watchdog);
    if (silenceLimitMs === undefined) return;
    watchdog = setTimeout(() => drop('no message from the server; the link is dead'), silenceLimitMs);
  }

  function onMessage(data: unknown): void {
    armWatchdog();
    const decoded = decodeServer(typeof data === 'string' ? data : String(data));
    if (decoded.kind === 'invalid') {
      const error = new TidingsError('INVALID_REPLY', `unreadable server message (${decoded.code})`, { errors: decoded.errors }, decoded.requestId);
      const req = decoded.requestId === undefined ? undefined : inFlight.get(decoded.requestId);
      if (req !== undefined) req.reject(error);
      else emit('error', error);
      return;
    }
    if (decoded.kind === 'reply') {
      const req = inFlight.get(decoded.requestId);
      if (req !== undefined) return routeReply(req, decoded.message);
    }
    handlePush(decoded.message);
  }

  function handlePush(message: ServerMessage): void {
    switch (message.type) {
      case 'ping':
        send({ type: 'pong', payload: {} });
        return;
      case 'event': {
        const event = message.payload;
        const topic = event.topic ?? [...subs.values()].find((s) => s.subscriptionId === event.subscriptionId)?.topic;
        const sub = topic === undefined || topic === null ? undefined : subs.get(topic);
        if (sub !== undefined && typeof event.seq === 'number') {
          // Events at or below the last seq seen were delivered before the reconnect: drop them.
          if (event.seq <= sub.lastSeq) return;
          sub.lastSeq = event.seq;
        }
        emit('event', event);
        return;
      }
      case 'notification': {
        const notification = message.payload;
        const sub = notification.subscriptionId ? subs.get('notifications') : undefined;
        if (sub !== undefined) {
          if (notification.seq <= sub.lastSeq) return;
          sub.lastSeq = notification.seq;
        }
        emit('notification', notification);
        return;
      }
      case 'unsubscribe': {
        const p = message.payload;
        const topic = p.topic ?? [...subs.values()].find((s) => s.subscriptionId === p.subscriptionId)?.topic;
        if (topic !== undefined && topic !== null) subs.delete(topic);
        const reason = p.reason ?? { code: 'INTERNAL', message: 'the server ended the subscription' };
        emit('unsubscribed', {
          topic: topic ?? p.subscriptionId,
          subscriptionId: p.subscriptionId,
          reason: new TidingsError(reason.code, reason.message, reason.details ?? null),
        });
        return;
      }
      case 'error': {
        const p = message.payload;
        const error = new TidingsError(p.code, p.message, p.details ?? null);
        if (p.code === 'TOKEN_EXPIRED' && options.getToken !== undefined) void authenticate().catch(() => undefined);
        emit('error', error);
        return;
      }
      case 'disconnect':
        // The close that follows carries the same code; `reconnect` is authoritative.
        lastDisconnect = message.payload;
        return;
      default:
        return;
    }
  }

  let lastDisconnect: { code: number; reason: string; reconnect: boolean } | undefined;

  /** Sends `auth` with a fresh token and schedules the next refresh before expiry. */
  async function authenticate(): Promise<void> {
    const fresh = await token();
    const reply = await request('auth', { token: fresh }, { internal: true, timeoutMs: connectTimeoutMs });
    if (reply.type !== 'auth_success') return;
    clearTimeout(refreshTimer);
    if (options.getToken !== undefined) {
      const waitMs = Math.max(1000, reply.payload.expiresAt - Date.now() - refreshBeforeExpiryMs);
      // Timers beyond 2^31-1 ms fire at once; such tokens are refreshed at the latest after ~24 days.
      refreshTimer = setTimeout(() => void authenticate().catch(() => undefined), Math.min(waitMs, 2 ** 31 - 1));
    }
  }

  /** One connection attempt: open, connect, auth, resubscribe, then resend and flush. */
  function open(): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      lastDisconnect = undefined;
      const url = typeof options.url === 'function' ? options.url() : options.url;
      const ws = new Socket(url);
      socket = ws;
      let done = false;
      const finish = (error?: TidingsError) => {
        if (done) return;
        done = true;
        clearTimeout(timer);
        if (error) reject(error);
        else resolve();
      };
      const timer = setTimeout(() => {
        finish(new TidingsError('TIMEOUT', `not authenticated within ${connectTimeoutMs} ms`));
        drop('connection attempt timed out');
      }, connectTimeoutMs);
      ws.onmessage = (event) => onMessage(event.data);
      ws.onerror = () => undefined;
      ws.onclose = (event) => {
        if (socket !== ws) return;
        const code = lastDisconnect?.code ?? event.code;
        const again = lastDisconnect?.reconnect ?? shouldReconnect(code);
        const error = new TidingsError('CONNECTION_LOST', `the connection closed (${code} ${lastDisconnect?.reason ?? event.reason})`, { code, reconnect: again });
        finish(error);
        onClosed(again || (code === 4501 && options.getToken !== undefined), error);
      };
      ws.onopen = () => {
        void (async () => {
          const connect = (await request('connect', { protocolVersion: PROTOCOL_VERSION, client: clientInfo }, { internal: true, timeoutMs: connectTimeoutMs })) as ServerConnect;
          silenceLimitMs = connect.payload.heartbeat.pingIntervalMs + heartbeatMarginMs;
          armWatchdog();
          await authenticate();
          authenticated = true;
          attempt = 0;
          await resubscribe();
          // Retried requests first, in their order, then what was queued while disconnected.
          for (const req of queue.splice(0)) transmit(req);
          setState('connected');
          finish();
        })().catch((error: unknown) => {
          const failure = error instanceof TidingsError ? error : new TidingsError('INTERNAL', String(error));
          finish(failure);
          // A rejected token is final unless getToken may give a better one next time.
          const fatal = failure.code === 'UNAUTHORIZED' || failure.code === 'UNSUPPORTED_VERSION';
          if (socket === ws) {
            fatal ? shutdown(failure) : drop(`handshake failed: ${failure.message}`);
          }
        });
      };
    });
  }

  /** Subscribes again to every topic with since = the last seq seen, and reports the gaps. */
  async function resubscribe(): Promise<void> {
    const pending = [...subs.values()].map(async (sub) => {
      try {
        const reply = (await request('subscribe', { topic: sub.topic, since: sub.lastSeq }, { internal: true })) as ServerSubscribe;
        sub.subscriptionId = reply.payload.subscriptionId;
        sub.recovered = reply.payload.recovered ?? undefined;
        if (reply.payload.recovered === false) {
          emit('gap', { topic: sub.topic, since: sub.lastSeq, seq: reply.payload.seq });
          sub.lastSeq = reply.payload.seq;
        }
      } catch (error) {
        if (!(error instanceof TidingsError) || error.code === 'CONNECTION_LOST' || error.code === 'TIMEOUT') throw error;
        subs.delete(sub.topic);
        emit('unsubscribed', { topic: sub.topic, subscriptionId: sub.subscriptionId, reason: error });
      }
    });
    await Promise.all(pending);
  }

  /** After a close: fail or keep the requests in flight, then reconnect or shut down. */
  function onClosed(reconnect: boolean, error: TidingsError): void {
    clearTimeout(watchdog);
    clearTimeout(refreshTimer);
    authenticated = false;
    socket = undefined;
    const retried: Request[] = [];
    for (const req of inFlight.values()) {
      if (req.retry) retried.push(req);
      else req.reject(new TidingsError('CONNECTION_LOST', `the connection closed before the reply to ${req.type}`, error.details, req.requestId));
    }
    inFlight.clear();
    queue.unshift(...retried);
    if (closedByUser) return;
    if (!reconnect) return shutdown(error);
    void reconnectLoop();
  }

  let looping = false;
  async function reconnectLoop(): Promise<void> {
    if (looping) return;
    looping = true;
    try {
      while (!closedByUser) {
        attempt += 1;
        if (attempt > maxAttempts) {
          return shutdown(new TidingsError('CLOSED', `gave up after ${maxAttempts} reconnection attempts`));
        }
        setState('reconnecting');
        await retryWait(attempt, backoffDelay(attempt, baseMs, maxMs));
        if (closedByUser) return;
        try {
          await open();
          return;
        } catch {
          // open() failed; its socket's close, if any, does not start another loop while this one runs.
          if (state === 'closed') return;
        }
      }
    } finally {
      looping = false;
    }
  }

  /** Drops the current socket at once, as if the network had failed, and reconnects. */
  function drop(reason: string): void {
    const ws = socket;
    if (ws === undefined) return;
    ws.onclose?.({ code: 1006, reason });
    ws.onclose = null;
    ws.onmessage = null;
    try {
      ws.close(4000, reason.slice(0, 100));
    } catch {
      // The socket may not be open yet; closing it is then best effort.
    }
  }

  /** Ends the client: fails everything that waits, and reports closed. */
  function shutdown(error: TidingsError): void {
    closedByUser = true;
    clearTimeout(watchdog);
    clearTimeout(refreshTimer);
    authenticated = false;
    const ws = socket;
    socket = undefined;
    if (ws !== undefined) {
      ws.onclose = null;
      ws.onmessage = null;
      try {
        if (ws.readyState === OPEN) ws.send(JSON.stringify({ type: 'disconnect', timestamp: Date.now(), payload: { reason: 'client closed' } }));
        ws.close(1000, 'client closed');
      } catch {
        // Closing is best effort.
      }
    }
    for (const req of [...inFlight.values(), ...queue]) req.reject(new TidingsError('CLOSED', error.message, error.details, req.requestId));
    inFlight.clear();
    queue.length = 0;
    removeProbes();
    firstConnect?.reject(error);
    firstConnect = undefined;
    setState('closed', error.code === 'CLOSED' && error.message === 'closed by the caller' ? undefined : error);
  }

  /** Probes the link with a ping; a missing pong drops it. */
  function probe(): void {
    if (!authenticated) return;
    request('ping', {}, { internal: true, timeoutMs: probeTimeoutMs }).catch((error: unknown) => {
      if (error instanceof TidingsError && error.code === 'TIMEOUT') drop('no pong to the probe');
    });
  }
  const onVisibility = () => {
    const doc = (globalThis as { document?: { visibilityState?: string } }).document;
    if (doc?.visibilityState === undefined || doc.visibilityState === 'visible') probe();
  };
  const probeTarget =
    options.eventTarget ??
    ((globalThis as { window?: unknown; document?: unknown }).window !== undefined &&
    (globalThis as { document?: unknown }).document !== undefined
      ? (globalThis as unknown as ClientOptions['eventTarget'])
      : undefined);
  let probing = false;
  function addProbes(): void {
    if (probing || probeTarget === undefined) return;
    probing = true;
    probeTarget.addEventListener('online', probe);
    probeTarget.addEventListener('visibilitychange', onVisibility);
  }
  function removeProbes(): void {
    if (!probing || probeTarget === undefined) return;
    probing = false;
    probeTarget.removeEventListener('online', probe);
    probeTarget.removeEventListener('visibilitychange', onVisibility);
  }

  const retryableWrite = (o?: { expectedVersion?: number }) => o?.expectedVersion !== undefined;

  const client: Client = {
    get state() {
      return state;
    },
    connect() {
      if (state === 'connected') return Promise.resolve();
      if (firstConnect !== undefined || state === 'connecting' || state === 'reconnecting') {
        return new Promise<void>((resolve, reject) => {
          const off = client.on('state', (next, error) => {
            if (next === 'connected') (off(), resolve());
            if (next === 'closed') (off(), reject(error ?? new TidingsError('CLOSED', 'closed')));
          });
        });
      }
      closedByUser = false;
      attempt = 0;
      setState('connecting');
      addProbes();
      return new Promise<void>((resolve, reject) => {
        firstConnect = { resolve, reject };
        open().then(
          () => {
            firstConnect = undefined;
            resolve();
          },
          () => {
            // The close handler reconnects or shuts down; connect() settles on the outcome.
            if (state === 'closed') return;
            const off = client.on('state', (next, error) => {
              if (next === 'connected') (off(), (firstConnect = undefined), resolve());
              if (next === 'closed') (off(), reject(error ?? new TidingsError('CLOSED', 'closed')));
            });
          },
        );
      });
    },
    close() {
      if (state === 'closed' || state === 'idle') return;
      shutdown(new TidingsError('CLOSED', 'closed by the caller'));
    },
    reconnect() {
      drop('reconnect requested');
    },
    async create(resourceType, data, opts = {}) {
      // A create keeps its requestId across reconnects, so the server answers a retry with the first result.
      const reply = await request('create', { resourceType, data }, { ...opts, retry: true });
      return reply.payload as Resource;
    },
    async read(resourceType, id, opts = {}) {
      const reply = await request('read', { resourceType, id }, { ...opts, retry: true });
      return reply.payload as Resource;
    },
    async list(resourceType, query = {}, opts = {}) {
      const reply = await request('read', { resourceType, ...query }, { ...opts, retry: true });
      return reply.payload as ResourceList;
    },
    async update(resourceType, id, patch, opts = {}) {
      const payload: Record<string, unknown> = { resourceType, id, patch };
      if (opts.expectedVersion !== undefined) payload['expectedVersion'] = opts.expectedVersion;
      const reply = await request('update', payload, { ...opts, retry: retryableWrite(opts) });
      return reply.payload as Resource;
    },
    async delete(resourceType, id, opts = {}) {
      const payload: Record<string, unknown> = { resourceType, id };
      if (opts.expectedVersion !== undefined) payload['expectedVersion'] = opts.expectedVersion;
      const reply = await request('delete', payload, { ...opts, retry: retryableWrite(opts) });
      return reply.payload as DeleteResult;
    },
    async subscribe(topic, opts = {}) {
      const payload: Record<string, unknown> = { topic };
      if (opts.since !== undefined) payload['since'] = opts.since;
      const reply = (await request('subscribe', payload, opts)) as ServerSubscribe;
      const p = reply.payload;
      const sub: Subscription = { topic: p.topic, subscriptionId: p.subscriptionId, lastSeq: opts.since ?? p.seq };
      if (p.recovered !== undefined && p.recovered !== null) sub.recovered = p.recovered;
      if (p.recovered === false) {
        emit('gap', { topic: p.topic, since: opts.since ?? p.seq, seq: p.seq });
        sub.lastSeq = p.seq;
      }
      subs.set(p.topic, sub);
      return { ...sub };
    },
    async unsubscribe(topic, opts = {}) {
      const sub = subs.get(topic);
      if (sub === undefined) throw new TidingsError('NOT_FOUND', `no subscription to ${topic}`, { topic });
      subs.delete(topic);
      if (!authenticated) return;
      (await request('unsubscribe', { subscriptionId: sub.subscriptionId }, opts)) as ServerUnsubscribe;
    },
    async ping(opts = {}) {
      await request('ping', {}, opts);
    },
    on(name, listener) {
      listeners[name].add(listener);
      return () => {
        listeners[name].delete(listener);
      };
    },
    subscriptions() {
      return [...subs.values()].map((s) => ({ ...s }));
    },
  };
  return client;
}
