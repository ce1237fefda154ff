// The Tidings client: createClient, requests as promises, pushes as callbacks; its connection's life, reconnection
// with resume included, is in connection.ts.
import {
  ClientErrorCode,
  ServerErrorCode,
  TidingsError,
  decodeServer,
  type RequestPayload,
  type ServerMessage,
  type ServerSubscribe,
} from './common.js';
import { createConnection } from './connection.js';
import { settingsOf } from './defaults.js';
import type { ClientEvents, ClientOptions, Client, ConnectionState, Subscription, WriteOptions } from './options.js';
import { createRequests, retryAfter } from './requests.js';
import { initialState, serverSpeaks } from './state.js';
import {
  NOTIFICATIONS,
  applyReply,
  countEvent,
  countNotification,
  ended,
  pending,
  recordOf,
  subscriptionKey,
  view,
  type SubscriptionRecord,
} from './subscriptions.js';

/** Creates a client. Nothing is sent before connect(). */
export function createClient(options: ClientOptions): Client {
  const settings = settingsOf(options);
  const state = initialState();
  const listeners: { [K in keyof ClientEvents]: Set<ClientEvents[K]> } = {
    event: new Set(),
    notification: new Set(),
    state: new Set(),
    gap: new Set(),
    unsubscribed: new Set(),
    error: new Set(),
    attemptFailed: new Set(),
  };
  const log = settings.logger;
  const requests = createRequests(state, settings);
  const { request, send, routeReply } = requests;
  const connection = createConnection({ options, settings, state, requests, emit, setState, onMessage });

  function emit<K extends keyof ClientEvents>(name: K, ...args: Parameters<ClientEvents[K]>): void {
    for (const listener of [...listeners[name]]) {
      try {
        (listener as (...a: Parameters<ClientEvents[K]>) => void)(...args);
      } catch (error) {
        // A listener's failure must not break the connection; it is reported asynchronously.
        log.error(`an on('${name}') listener threw: ${String(error)}`, error);
        queueMicrotask(() => {
          throw error;
        });
      }
    }
  }

  function setState(next: ConnectionState, error?: TidingsError): void {
    if (state.connection === next) return;
    state.connection = next;
    if (next === 'connected' || next === 'closed') log.info(`${next}${error ? `: ${error.message}` : ''}`, error);
    else log.debug(next);
    options.onStateChange?.(next, error);
    emit('state', next, error);
  }

  function onMessage(data: unknown): void {
    connection.armWatchdog();
    const decoded = decodeServer(typeof data === 'string' ? data : String(data));
    if (decoded.kind === 'invalid') {
      const message = `unreadable server message (${decoded.code})`;
      const error = new TidingsError(ClientErrorCode.INVALID_REPLY, message, { errors: decoded.errors }, decoded.requestId);
      log.warn(message, error);
      const req = decoded.requestId === undefined ? undefined : state.inFlight.get(decoded.requestId);
      if (req !== undefined) req.reject(error);
      else emit('error', error);
      return;
    }
    if (decoded.kind === 'reply') {
      const req = state.inFlight.get(decoded.requestId);
      if (req !== undefined) return routeReply(req, decoded.message);
    }
    handlePush(decoded.message);
  }

  /** Delivers the events a subscription held back while its subscribe() resolved, if it is still held. */
  function release(sub: SubscriptionRecord): void {
    const held = sub.held ?? [];
    sub.held = undefined;
    if (state.subscriptions.get(sub.key) !== sub) return;
    for (const event of held) emit('event', event);
  }

  function handlePush(message: ServerMessage): void {
    switch (message.type) {
      case 'ping':
        send({ type: 'pong', payload: {} });
        return;
      case 'event': {
        // Routed by subscriptionId: a plain topic and queries of it are subscriptions of their own.
        const event = message.payload;
        const sub = recordOf(state.subscriptions, event.subscriptionId, event.topic);
        if (!countEvent(sub, event)) return;
        if (sub?.held !== undefined) sub.held.push(event);
        else emit('event', event);
        return;
      }
      case 'notification': {
        // Those pushed at sign-in count too, so that resuming the subscription does not deliver them again.
        const notification = message.payload;
        if (countNotification(state.subscriptions.get(NOTIFICATIONS), notification)) emit('notification', notification);
        return;
      }
      case 'unsubscribe': {
        const p = message.payload;
        const sub = recordOf(state.subscriptions, p.subscriptionId, p.topic);
        if (sub !== undefined) state.subscriptions.delete(sub.key);
        const cause = p.reason ?? { code: ServerErrorCode.INTERNAL, message: 'the server ended the subscription' };
        const reason = new TidingsError(cause.code, cause.message, cause.details ?? null);
        const unknown = { topic: p.topic ?? p.subscriptionId, subscriptionId: p.subscriptionId, reason };
        emit('unsubscribed', sub === undefined ? unknown : ended(sub, reason));
        return;
      }
      case 'error': {
        const p = message.payload;
        const error = new TidingsError(p.code, p.message, p.details ?? null);
        // A RATE_LIMITED without requestId is about a message whose requestId the server could not read.
        if (p.code === ServerErrorCode.RATE_LIMITED) requests.pacer.pause(retryAfter(p.details));
        if (p.code === ServerErrorCode.TOKEN_EXPIRED && options.getToken !== undefined) connection.refresh();
        emit('error', error);
        return;
      }
      case 'disconnect':
        // The close that follows carries the same code; `reconnect` is authoritative.
        state.lastDisconnect = message.payload;
        return;
      default:
        return;
    }
  }

  /** Whether a write may be sent again after a reconnect: only when its expectedVersion makes a repeat fail. */
  const retryableWrite = (o?: WriteOptions) => o?.expectedVersion !== undefined;

  /** Settles a connect() that joins one already under way, on the connection's outcome. */
  function whenConnected(resolve: () => void, reject: (error: TidingsError) => void, onConnected = () => undefined): void {
    const off = client.on('state', (next, error) => {
      if (next === 'connected') (off(), onConnected(), resolve());
      if (next === 'closed') (off(), reject(error ?? new TidingsError(ClientErrorCode.CLOSED, 'closed')));
    });
  }

  /**
   * Refuses, before anything is sent, what a server that stated protocol 1.0 would not understand: it would ignore a
   * query and answer with the whole topic or list, which the app would take for the filtered one.
   */
  const needs11 = (what: string): void => {
    if (serverSpeaks(state, 1)) return;
    const message = `this server speaks protocol ${state.serverVersion ?? '?'}; ${what} needs 1.1 or later`;
    throw new TidingsError(ServerErrorCode.UNSUPPORTED_VERSION, message, { serverVersion: state.serverVersion });
  };

  const client: Client = {
    get state() {
      return state.connection;
    },
    connect() {
      if (state.connection === 'connected') return Promise.resolve();
      if (state.firstConnect !== undefined || state.connection === 'connecting' || state.connection === 'reconnecting') {
        return new Promise<void>((resolve, reject) => whenConnected(resolve, reject));
      }
      state.closedByUser = false;
      state.attempt = 0;
      state.tries = 0;
      state.abandon = undefined;
      setState('connecting');
      connection.addProbes();
      return new Promise<void>((resolve, reject) => {
        state.firstConnect = { resolve, reject };
        connection.open().then(
          () => {
            state.firstConnect = undefined;
            resolve();
          },
          () => {
            // The close handler reconnects or shuts down; connect() settles on the outcome.
            if (state.connection === 'closed') return;
            whenConnected(resolve, reject, () => {
              state.firstConnect = undefined;
            });
          },
        );
      });
    },
    close() {
      if (state.connection === 'closed' || state.connection === 'idle') return;
      connection.shutdown(new TidingsError(ClientErrorCode.CLOSED, 'closed by the caller'));
    },
    reconnect() {
      connection.drop('reconnect requested');
    },
    async create(resourceType, data, opts = {}) {
      // A create keeps its requestId across reconnects, so the server answers a retry with the first result.
      const reply = await request('create', { resourceType, data }, { ...opts, retry: true });
      return reply.payload;
    },
    async read(resourceType, id, opts = {}) {
      const reply = await request('read', { resourceType, id }, { ...opts, retry: true });
      return reply.payload;
    },
    async list(resourceType, query = {}, opts = {}) {
      const newer = query.query !== undefined || query.fields !== undefined || query.count !== undefined || Array.isArray(query.orderBy);
      if (newer) needs11('a query, fields, count or several order keys');
      const reply = await request('read', { resourceType, ...query }, { ...opts, retry: true });
      return reply.payload;
    },
    async update(resourceType, id, patch, opts = {}) {
      const payload: RequestPayload<'update'> = { resourceType, id, patch };
      if (opts.expectedVersion !== undefined) payload.expectedVersion = opts.expectedVersion;
      const reply = await request('update', payload, { ...opts, retry: retryableWrite(opts) });
      return reply.payload;
    },
    async delete(resourceType, id, opts = {}) {
      const payload: RequestPayload<'delete'> = { resourceType, id };
      if (opts.expectedVersion !== undefined) payload.expectedVersion = opts.expectedVersion;
      const reply = await request('delete', payload, { ...opts, retry: retryableWrite(opts) });
      return reply.payload;
    },
    async subscribe(topic, opts = {}) {
      const { since, query, snapshot = false, ...requestOptions } = opts;
      if (query !== undefined || snapshot) needs11('a query subscription or a snapshot');
      const payload: RequestPayload<'subscribe'> = { topic };
      if (since !== undefined) payload.since = since;
      if (query !== undefined) payload.query = query;
      if (snapshot) payload.snapshot = true;
      const key = subscriptionKey(topic, query);
      // Recorded before the subscribe goes out, and completed by its reply the moment it arrives, so that events
      // emitted in one burst with the reply count toward it; a key already recorded is left alone, and the server
      // answers CONFLICT.
      const mine = state.subscriptions.has(key) ? undefined : pending(topic, query, since, snapshot);
      if (mine !== undefined) state.subscriptions.set(key, mine);
      let sub: SubscriptionRecord | undefined;
      let shown: Subscription | undefined;
      const onReply = (reply: ServerSubscribe['payload']) => {
        sub = mine ?? pending(topic, query, since, snapshot);
        state.subscriptions.set(key, sub);
        // The caller learns a query's id and a snapshot's items from the promise: until then, its events wait.
        if (query !== undefined || snapshot) sub.held = [];
        const gap = applyReply(sub, reply, since);
        // As of the reply: the events held back are not delivered yet.
        shown = view(sub, reply);
        if (gap !== undefined) emit('gap', gap);
      };
      try {
        await request('subscribe', payload, { ...requestOptions, onReply: (m) => onReply(m.payload) });
      } catch (error) {
        if (mine !== undefined && state.subscriptions.get(key) === mine) state.subscriptions.delete(key);
        throw error;
      }
      const done = sub as SubscriptionRecord;
      // Released from a later task, once the caller has resumed with what this resolves with.
      if (done.held !== undefined) setTimeout(() => release(done), 0);
      return shown as Subscription;
    },
    async unsubscribe(target, opts = {}) {
      const { query, ...requestOptions } = opts;
      // A Subscription is found by its id; a topic, by its key with the query given.
      const found = typeof target === 'string' ? undefined : recordOf(state.subscriptions, target.subscriptionId, undefined);
      const topic = typeof target === 'string' ? target : target.topic;
      const sub = found ?? state.subscriptions.get(subscriptionKey(topic, typeof target === 'string' ? query : target.query));
      if (sub === undefined || sub.pending) {
        const what = query === undefined ? topic : `${topic} with this query`;
        throw new TidingsError(ServerErrorCode.NOT_FOUND, `no subscription to ${what}`, { topic });
      }
      state.subscriptions.delete(sub.key);
      sub.held = undefined;
      if (!state.authenticated) return;
      await request('unsubscribe', { subscriptionId: sub.subscriptionId }, requestOptions);
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
      return [...state.subscriptions.values()].filter((s) => !s.pending).map((s) => view(s));
    },
  };
  return client;
}
