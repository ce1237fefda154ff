// The Tidings client: createClient, requests as promises, pushes as callbacks; its connection's life, reconnection
// with resume included, is in connection.ts.
import {
  ClientErrorCode,
  ServerErrorCode,
  TidingsError,
  decodeServer,
  type RequestPayload,
  type Resource,
  type ServerMessage,
  type ServerSubscribe,
} from './common.js';
import { createConnection } from './connection.js';
import { settingsOf } from './defaults.js';
import { createHandles, type Handle } from './handles.js';
import { createLive } from './live.js';
import { createPresence, type PresenceHost } from './presence.js';
import type { Client } from './api.js';
import type {
  BatchResults,
  ClientEvents,
  ClientOptions,
  ConnectionState,
  DeleteResult,
  ListQuery,
  RequestOptions,
  SubscribeOptions,
  WriteOptions,
} from './options.js';
import { createRequests, retryAfter } from './requests.js';
import type { TypeMap, Untyped } from './typed.js';
import { initialState, serverSpeaks } from './state.js';
import {
  NOTIFICATIONS,
  applyReply,
  countEvent,
  countNotification,
  ended,
  isPresenceTopic,
  membersOf,
  pending,
  recordOf,
  subscriptionKey,
  view,
  type SubscriptionRecord,
} from './subscriptions.js';
import { createWrites, type Writes } from './writes.js';

/** The page a snapshot holds: the server sends up to 100 items with a subscribe, and a shared one lists as many. */
const SNAPSHOT_PAGE = 100;

/**
 * Creates a client. Nothing is sent before connect(). With a map of resource types (`createClient<Types>(...)`, the
 * `Types` that `tidings types` writes), its requests, events and handles are typed per resource type; the map is
 * types only, and changes nothing of what the client does.
 */
export function createClient<T extends TypeMap<T> = Untyped>(options: ClientOptions): Client<T> {
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
    confirmed: new Set(),
    rejected: new Set(),
    outbox: new Set(),
  };
  const log = settings.logger;
  const requests = createRequests(state, settings);
  const { request, send, routeReply } = requests;
  /** What each new connection restores after resubscribing: the presence handles' rejoins. */
  const restorers = new Set<() => Promise<void>>();
  const restore = async (): Promise<void> => {
    await Promise.all([...restorers].map((rejoin) => rejoin()));
  };
  const connection = createConnection({ options, settings, state, requests, emit, setState, onMessage, restore });
  const handles = createHandles({ logger: log, unsubscribeLast });
  /** The outbox's engine, when the app gave an outbox: writes are then optimistic and wait there while offline. */
  const writes: Writes | undefined =
    options.outbox === undefined ? undefined : createWrites({ outbox: options.outbox, state, settings, request, emit });
  /** The unsubscribes in flight by key: a new subscribe of the key waits for its own, or the server says CONFLICT. */
  const closing = new Map<string, Promise<void>>();
  /** The subscribes in flight by key: another subscribe of the key waits for it, then shares what it made. */
  const opening = new Map<string, Promise<void>>();

  function emit<K extends keyof ClientEvents>(name: K, ...args: Parameters<ClientEvents[K]>): void {
    tell(name, ...args);
    route(name, args[0]);
  }

  /** Calls the client's own listeners only. */
  function tell<K extends keyof ClientEvents>(name: K, ...args: Parameters<ClientEvents[K]>): void {
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

  /** Passes an event, a gap or the end of a subscription on to the handles of that subscription. */
  function route(name: keyof ClientEvents, payload: unknown): void {
    if (name === 'event') {
      const event = payload as Parameters<ClientEvents['event']>[0];
      const sub = recordOf(state.subscriptions, event.subscriptionId, event.topic);
      if (sub !== undefined) handles.deliver(sub.key, ['event', event]);
    } else if (name === 'gap') {
      const gap = payload as Parameters<ClientEvents['gap']>[0];
      handles.deliver(subscriptionKey(gap.topic, gap.query), ['gap', gap]);
    } else if (name === 'unsubscribed') {
      const info = payload as Parameters<ClientEvents['unsubscribed']>[0];
      const key = subscriptionKey(info.topic, info.query);
      // A push about a subscription the client no longer holds concerns no handle of a newer one under the key.
      if (!state.subscriptions.has(key)) handles.leave(key, info);
    }
  }

  function setState(next: ConnectionState, error?: TidingsError): void {
    if (state.connection === next) return;
    state.connection = next;
    if (next === 'connected' || next === 'closed') log.info(`${next}${error ? `: ${error.message}` : ''}`, error);
    else log.debug(next);
    options.onStateChange?.(next, error);
    emit('state', next, error);
    if (next === 'connected') writes?.resume();
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

  /**
   * Tells the client's listeners the events a subscription held back while its subscribe() resolved, then the end
   * the server pushed meanwhile, if it did. The client's own unsubscribe drops them instead (unsubscribeLast).
   */
  function release(sub: SubscriptionRecord): void {
    const held = sub.held ?? [];
    const end = sub.heldEnd;
    sub.held = undefined;
    delete sub.heldEnd;
    if (state.subscriptions.get(sub.key) !== sub && end === undefined) return;
    for (const event of held) tell('event', event);
    if (end !== undefined) tell('unsubscribed', end);
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
        if (sub?.held === undefined) return emit('event', event);
        // Its handles hold it until their caller has them; the client's listeners hear it on release.
        sub.held.push(event);
        handles.deliver(sub.key, ['event', event]);
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
        const info = sub === undefined ? unknown : ended(sub, reason);
        if (sub?.held === undefined) return emit('unsubscribed', info);
        // The server sent the held events before this end: the handles queue it behind them now, while the key is
        // theirs, and the client's listeners hear it after them on release.
        sub.heldEnd = info;
        handles.leave(sub.key, info);
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
   * Refuses, before anything is sent, what the server's stated version does not have. A server that stated 1.0 would
   * ignore a query and answer with the whole topic or list, which the app would take for the filtered one; one below
   * 1.2 answers a batch with UNSUPPORTED_TYPE, which would tell the app less than this.
   */
  const needs = (minor: number, what: string): void => {
    if (serverSpeaks(state, minor)) return;
    const message = `this server speaks protocol ${state.serverVersion ?? '?'}; ${what} needs 1.${minor} or later`;
    throw new TidingsError(ServerErrorCode.UNSUPPORTED_VERSION, message, { serverVersion: state.serverVersion });
  };

  /**
   * Subscribes on the server. The record goes in before the subscribe goes out, and the reply completes it and makes
   * the first handle the moment it arrives, so that events in one burst with the reply count toward it.
   */
  async function subscribeOnServer(topic: string, key: string, opts: SubscribeOptions): Promise<Handle> {
    const { since, query, snapshot = false, ...requestOptions } = opts;
    const payload: RequestPayload<'subscribe'> = { topic };
    if (since !== undefined) payload.since = since;
    if (query !== undefined) payload.query = query;
    if (snapshot) payload.snapshot = true;
    const mine = pending(topic, query, since, snapshot);
    state.subscriptions.set(key, mine);
    let handle: Handle | undefined;
    const onReply = (reply: ServerSubscribe['payload']) => {
      state.subscriptions.set(key, mine);
      // The caller learns a query's id and a snapshot's items from the promise: until then, its events wait.
      if (query !== undefined || snapshot) mine.held = [];
      const gap = applyReply(mine, reply, since);
      // As of the reply. The handle holds what it gets until its caller has it, to add listeners to.
      handle = handles.attach(key, view(mine, reply), true);
      if (gap !== undefined) emit('gap', gap);
    };
    try {
      await request('subscribe', payload, { ...requestOptions, onReply: (m) => onReply(m.payload) });
    } catch (error) {
      if (state.subscriptions.get(key) === mine) state.subscriptions.delete(key);
      throw error;
    }
    const made = handle as Handle;
    // Released from a later task, once the caller has resumed with what this resolves with.
    setTimeout(() => {
      if (mine.held !== undefined) release(mine);
      made.releaseHeld();
    }, 0);
    return made;
  }

  /**
   * A new handle on a subscription the client holds already. No replay can be asked for it alone, so a `since`
   * below the subscription's lastSeq is refused; a snapshot is read with `list`, later than the handle starts, so
   * the events that follow may repeat what the items show (keep the highest version of each id, as for any page).
   */
  async function share(sub: SubscriptionRecord, opts: SubscribeOptions): Promise<Handle> {
    const { since, snapshot = false, ...requestOptions } = opts;
    if (since !== undefined && since < sub.lastSeq) {
      const message = `this client subscribes to ${sub.subscriptionId} already, from seq ${sub.lastSeq}: no replay from ${since} can be asked for one more handle`;
      throw new TidingsError(ServerErrorCode.CONFLICT, message, { subscriptionId: sub.subscriptionId, lastSeq: sub.lastSeq });
    }
    const shown = view(sub);
    // A presence subscription's members are what it covers now; there is nothing to list for them.
    const members = membersOf(sub);
    if (members !== undefined) {
      shown.items = members;
      shown.nextCursor = null;
    }
    if (since !== undefined) {
      // Every event after since is still to come, as a replay would have brought it.
      shown.lastSeq = since;
      shown.recovered = true;
    }
    const handle = handles.attach(sub.key, shown, true);
    if (snapshot && since === undefined && members === undefined) {
      const payload: RequestPayload<'read'> = { resourceType: sub.topic, limit: SNAPSHOT_PAGE };
      if (sub.query !== undefined) payload.query = sub.query;
      try {
        const page = await request('read', payload, { ...requestOptions, retry: true });
        handle.items = page.payload.items;
        handle.nextCursor = page.payload.nextCursor ?? null;
      } catch (error) {
        handle.unsubscribe().catch(() => undefined);
        throw error;
      }
    }
    setTimeout(() => handle.releaseHeld(), 0);
    return handle;
  }

  /** Ends the server subscription under key, its last handle gone: drops the record, and unsubscribes if connected. */
  async function unsubscribeLast(key: string, requestOptions: RequestOptions): Promise<void> {
    const sub = state.subscriptions.get(key);
    if (sub === undefined || sub.pending) return;
    state.subscriptions.delete(key);
    sub.held = undefined;
    // Without a connection the server has no subscription left to end.
    if (!state.authenticated) return;
    const done = request('unsubscribe', { subscriptionId: sub.subscriptionId }, requestOptions).then(() => undefined);
    const settled = done.catch(() => undefined);
    closing.set(key, settled);
    void settled.then(() => closing.get(key) === settled && closing.delete(key));
    await done;
  }

  /** What presence handles need of this client; their members' requests belong to the connection they are sent on. */
  const presenceHost: PresenceHost = {
    get client() {
      return client;
    },
    async send(type, payload, opts) {
      if (!state.authenticated) throw new TidingsError(ClientErrorCode.DISCONNECTED, 'the client is not connected');
      // internal: sent at once, and failed with CONNECTION_LOST rather than sent again when the socket closes, since
      // a member made on the next connection would be a second one; the handle joins again there itself.
      const reply = await request(type, payload as RequestPayload<typeof type>, { ...opts, internal: true });
      return reply.payload as Awaited<ReturnType<PresenceHost['send']>>;
    },
    check: () => needs(2, 'presence'),
    onConnection(rejoin) {
      restorers.add(rejoin);
      return () => {
        restorers.delete(rejoin);
      };
    },
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
      if (writes !== undefined) return (await writes.write('create', resourceType, undefined, data, undefined, opts.requestId)) as Resource;
      // A create keeps its requestId across reconnects, so the server answers a retry with the first result.
      const reply = await request('create', { resourceType, data }, { ...opts, retry: true });
      return reply.payload;
    },
    async read(resourceType, id, opts = {}) {
      const reply = await request('read', { resourceType, id }, { ...opts, retry: true });
      return reply.payload;
    },
    async list(resourceType, given, opts = {}) {
      const query: ListQuery = given ?? {};
      const newer = query.query !== undefined || query.fields !== undefined || query.count !== undefined || Array.isArray(query.orderBy);
      if (newer) needs(1, 'a query, fields, count or several order keys');
      const reply = await request('read', { resourceType, ...query }, { ...opts, retry: true });
      return reply.payload;
    },
    async update(resourceType, id, patch, opts = {}) {
      if (writes !== undefined) return (await writes.write('update', resourceType, id, patch, opts.expectedVersion, opts.requestId)) as Resource;
      const payload: RequestPayload<'update'> = { resourceType, id, patch };
      if (opts.expectedVersion !== undefined) payload.expectedVersion = opts.expectedVersion;
      const reply = await request('update', payload, { ...opts, retry: retryableWrite(opts) });
      return reply.payload;
    },
    async delete(resourceType, id, opts = {}) {
      if (writes !== undefined) {
        return (await writes.write('delete', resourceType, id, undefined, opts.expectedVersion, opts.requestId)) as DeleteResult;
      }
      const payload: RequestPayload<'delete'> = { resourceType, id };
      if (opts.expectedVersion !== undefined) payload.expectedVersion = opts.expectedVersion;
      const reply = await request('delete', payload, { ...opts, retry: retryableWrite(opts) });
      return reply.payload;
    },
    async batch(operations, opts = {}) {
      needs(2, 'batch');
      // A batch always goes with a requestId, which the server remembers as a create's: like a create, it is sent
      // again with the same one after a reconnect, and a repeat gets the first reply without applying anything.
      // The generated type asks for a mutable list of at least one; an empty one goes as it is, and the server
      // answers INVALID_PARAMS, as it answers any other bad batch.
      const payload = { operations: operations as unknown as RequestPayload<'batch'>['operations'] };
      const reply = await request('batch', payload, { ...opts, retry: true });
      // The server answers with one result per operation, in order, each of its operation's kind (6.14).
      return reply.payload.results as unknown as BatchResults<typeof operations>;
    },
    async subscribe(topic, opts = {}) {
      if (opts.query !== undefined || opts.snapshot) needs(1, 'a query subscription or a snapshot');
      if (isPresenceTopic(topic)) needs(2, 'presence');
      const key = subscriptionKey(topic, opts.query);
      // One subscribe or unsubscribe of a key at a time: the server holds each key once per connection.
      for (let wait = closing.get(key) ?? opening.get(key); wait !== undefined; wait = closing.get(key) ?? opening.get(key)) await wait;
      const held = state.subscriptions.get(key);
      if (held !== undefined && !held.pending) return share(held, opts);
      const made = subscribeOnServer(topic, key, opts);
      const settled = made.then(
        () => undefined,
        () => undefined,
      );
      opening.set(key, settled);
      void settled.then(() => opening.get(key) === settled && opening.delete(key));
      return made;
    },
    async unsubscribe(target, opts = {}) {
      if (handles.owns(target)) return target.unsubscribe(opts);
      const { query, ...requestOptions } = opts;
      // A Subscription is found by its id; a topic, by its key with the query given.
      const found = typeof target === 'string' ? undefined : recordOf(state.subscriptions, target.subscriptionId, undefined);
      const topic = typeof target === 'string' ? target : target.topic;
      const sub = found ?? state.subscriptions.get(subscriptionKey(topic, typeof target === 'string' ? query : target.query));
      if (sub === undefined || sub.pending) {
        const what = query === undefined ? topic : `${topic} with this query`;
        throw new TidingsError(ServerErrorCode.NOT_FOUND, `no subscription to ${what}`, { topic });
      }
      const done = unsubscribeLast(sub.key, requestOptions);
      // Every handle of it hears why it ended; the record is gone already, so no newer subscription is concerned.
      const reason = new TidingsError(ClientErrorCode.CLOSED, `client.unsubscribe ended the subscription ${sub.subscriptionId}`);
      handles.leave(sub.key, ended(sub, reason));
      await done;
    },
    live(resourceType, query, opts = {}) {
      return createLive(client, resourceType, query, opts, writes);
    },
    presence(topic, opts = {}) {
      return createPresence(presenceHost, topic, opts);
    },
    async broadcast(resourceType, data, opts = {}) {
      needs(2, 'broadcast');
      // Not queued and not sent again: a message of an ephemeral type is worth something now or never, and the
      // server does not deduplicate it, so a resend could deliver it twice.
      if (!state.authenticated || state.connection !== 'connected') {
        throw new TidingsError(ClientErrorCode.DISCONNECTED, 'broadcast is sent only while connected; nothing was sent');
      }
      const reply = await request('create', { resourceType, data }, { ...opts, internal: true });
      return reply.payload;
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
    pendingWrites() {
      return writes?.pending() ?? [];
    },
  };
  return client as unknown as Client<T>;
}
