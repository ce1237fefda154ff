// Presence handles, what client.presence(topic) returns: who is at a topic now (docs/protocol.md, 8.7), kept from the
// members a subscribe to `presence:TOPIC` answers with and the events that follow, and this client's own member
// there, joined again on every new connection, since a member ends with the connection that joined it.
import { ClientErrorCode, ServerErrorCode, TidingsError, type Resource } from './common.js';
import type { Client } from './api.js';
import type { ConnectionState, Gap, PresenceOptions, RequestOptions, SubscriptionHandle, TidingsEvent, Unsubscribed } from './options.js';
import { PRESENCE_PREFIX } from './subscriptions.js';
import { copy, diff, isObject, mergePatch } from './state-patch.js';

/** What a member tells the others (`{name: 'Bob', status: 'editing'}`): a JSON object, at most `limits.presence.maxStateBytes` of it. */
export type PresenceState = Record<string, unknown>;

/** One connection present at the topic. A user with two tabs there is one user with two members. */
export interface PresenceMember {
  /** The member's id (`PRS-...`), drawn by the server when it joined. */
  readonly id: string;
  /** Its user: the member's ownerId. */
  readonly userId: string;
  /** What it tells the others. */
  readonly state: Readonly<PresenceState>;
  /** 1 when it joined, one more at each change of its state. */
  readonly version: number;
  /** When it joined, Unix ms (when this client first heard of it, for a member learned from an event). */
  readonly joinedAt: number;
  /** When its state last changed, Unix ms. */
  readonly updatedAt: number;
  /** Whether it is this handle's own member, the one join() made on the current connection. */
  readonly self: boolean;
}

/**
 * Where a presence handle stands: `loading` until the members first came; `live` while it follows every change;
 * `resyncing` while the connection is down (the members shown are the last known; the reconnect brings them anew);
 * `closed` once close() was called or following ended for good (`error` says why).
 */
export type PresenceStatus = 'loading' | 'live' | 'resyncing' | 'closed';

/** The callbacks of a presence handle's `on`, by name. */
export interface PresenceEvents {
  /** Anything changed: the members, the status, the error, or this handle's own member. */
  change: () => void;
  /** A member joined, or is new in the members a reconnect brought. */
  join: (member: PresenceMember) => void;
  /** A member's state changed; `previous` is the member before. */
  update: (member: PresenceMember, previous: PresenceMember) => void;
  /** A member left (on purpose, or its connection ended), or is missing from the members a reconnect brought. */
  leave: (member: PresenceMember) => void;
}

/** What client.presence(topic) returns: who is at the topic, and this client's own presence there. */
export interface Presence {
  /** The topic: a resource type (`order`) or one resource (`order:ORD-1`). */
  readonly topic: string;
  /**
   * The members present, by the time they joined (then by id), as a frozen array: the same array until they change,
   * as React's useSyncExternalStore needs.
   */
  readonly members: readonly PresenceMember[];
  /** The members grouped by user, in the order of each user's first member: the users present. The same map until the members change. */
  readonly users: ReadonlyMap<string, readonly PresenceMember[]>;
  /** Where it stands (see PresenceStatus). */
  readonly status: PresenceStatus;
  /**
   * The last failure: the one that closed it, a join or a change of state the server refused, or one it recovers
   * from by itself (a subscribe that timed out is sent again when the connection is back).
   */
  readonly error: TidingsError | undefined;
  /** Whether this handle is present (or about to be): join() was called, and neither leave() nor a refusal followed. */
  readonly joined: boolean;
  /** The state this handle is present with, as join() and update() made it; undefined when not joined. */
  readonly state: Readonly<PresenceState> | undefined;
  /** This handle's own member as the server holds it; undefined until the join is answered, and while disconnected. */
  readonly self: PresenceMember | undefined;
  /**
   * Joins the topic with this state, or, when joined, replaces the state. Resolves with the member once the server
   * holds it, on this connection or, if the connection is down, on the next; rejects when the server refuses
   * (NOT_FOUND or FORBIDDEN: the user may not read the topic; LIMIT_EXCEEDED; INVALID_PARAMS: the state is not an
   * object or too big), and the handle is then not joined. After every reconnect the client joins again with the
   * last state, before it reports `connected`.
   */
  join(state?: PresenceState, options?: RequestOptions): Promise<PresenceMember>;
  /**
   * Changes the state by a JSON merge patch (`{status: 'editing'}` keeps the other fields; a field set to null is
   * removed). Rejects with NOT_FOUND when the handle has not joined; a refused state leaves the one the server holds.
   */
  update(patch: PresenceState, options?: RequestOptions): Promise<PresenceMember>;
  /** Leaves the topic; resolves once the server confirmed (at once when not connected: the member ended with the connection). */
  leave(options?: RequestOptions): Promise<void>;
  /** Adds a callback; returns a function that removes it. */
  on<K extends keyof PresenceEvents>(name: K, listener: PresenceEvents[K]): () => void;
  /** The members; a bound function, for `useSyncExternalStore(presence.subscribe, presence.getSnapshot)`. */
  getSnapshot(): readonly PresenceMember[];
  /** Calls the listener after every change, as on('change'); a bound function. Returns a function that removes it. */
  subscribe(listener: () => void): () => void;
  /** Leaves (when joined) and stops following; the status becomes `closed`. Calling it again does nothing. */
  close(): Promise<void>;
}

/** What a presence handle needs of its client. */
export interface PresenceHost {
  client: Client;
  /**
   * Sends a request about this connection's own member. A member belongs to its connection, so the request does not
   * wait in the queue and is never sent on another connection: it fails with DISCONNECTED when the client is not
   * authenticated, and with CONNECTION_LOST when the socket closes before the reply.
   */
  send(type: 'create' | 'update' | 'delete', payload: object, options: RequestOptions): Promise<Resource | { id: string }>;
  /** Throws UNSUPPORTED_VERSION when the server stated a protocol version below 1.2. */
  check(): void;
  /**
   * Runs `restore` on every new connection, once its subscriptions are resumed and before it is reported
   * connected; a rejection fails that connection attempt. Returns the way to stop.
   */
  onConnection(restore: () => Promise<void>): () => void;
}

/** Failures after which following is tried again when the connection comes back, instead of closing. */
const PASSING = new Set<string>([
  ClientErrorCode.TIMEOUT,
  ClientErrorCode.CONNECTION_LOST,
  ClientErrorCode.DISCONNECTED,
  ClientErrorCode.QUEUE_FULL,
  ClientErrorCode.CLOSED,
  ServerErrorCode.RATE_LIMITED,
  ServerErrorCode.UNAVAILABLE,
]);

/** Failures of a member's request that mean the connection went, and the member with it. */
const GONE = new Set<string>([ClientErrorCode.CONNECTION_LOST, ClientErrorCode.DISCONNECTED, ClientErrorCode.CLOSED]);

const EMPTY: readonly PresenceMember[] = Object.freeze([]);

/** The presence handle of `topic` on the client of this host. */
export function createPresence(host: PresenceHost, topic: string, options: PresenceOptions = {}): Presence {
  return new PresenceHandle(host, topic, options);
}

/**
 * A join, change or leave waiting for the server: settled once the member is as the handle wants it. A join or a
 * change (`member`) wants a member at the end; one that a leave overtook is rejected.
 */
interface Waiter {
  member: boolean;
  resolve: (member: PresenceMember | undefined) => void;
  reject: (error: TidingsError) => void;
}

/** The longest wait before a failed subscribe is sent again while the connection stays up. */
const MAX_RETRY_MS = 30000;

class PresenceHandle implements Presence {
  readonly topic: string;
  readonly #host: PresenceHost;
  readonly #timeout: RequestOptions;
  /** The members by id, as the subscription has them. */
  #held = new Map<string, Resource>();
  #members: readonly PresenceMember[] = EMPTY;
  #users: ReadonlyMap<string, readonly PresenceMember[]> = new Map();
  #dirty = false;
  #status: PresenceStatus = 'loading';
  #error: TidingsError | undefined;
  readonly #listeners: { [K in keyof PresenceEvents]: Set<PresenceEvents[K]> } = {
    change: new Set(),
    join: new Set(),
    update: new Set(),
    leave: new Set(),
  };
  #handle: SubscriptionHandle | undefined;
  #handleOffs: (() => void)[] = [];
  /** Subscribes again once the connection is back (or after #retryMs, if it is up), after a passing failure. */
  #retry: (() => void) | undefined;
  #retryTimer: ReturnType<typeof setTimeout> | undefined;
  #retryMs = 1000;
  readonly #offs: (() => void)[] = [];
  #closed = false;
  /** The state the app wants to be present with; undefined: not present. */
  #wanted: PresenceState | undefined;
  /** This handle's member on the current connection, as the server answered; undefined when it has none. */
  #member: Resource | undefined;
  /** The syncs of the member with #wanted, one at a time, in order. */
  #chain: Promise<void> = Promise.resolve();
  #waiters: Waiter[] = [];

  constructor(host: PresenceHost, topic: string, options: PresenceOptions) {
    this.#host = host;
    this.topic = topic;
    this.#timeout = options.timeoutMs === undefined ? {} : { timeoutMs: options.timeoutMs };
    this.#offs.push(host.client.on('state', (state) => this.#onState(state)));
    this.#offs.push(host.onConnection(() => this.#rejoin()));
    void this.#follow();
  }

  get members(): readonly PresenceMember[] {
    this.#refresh();
    return this.#members;
  }

  get users(): ReadonlyMap<string, readonly PresenceMember[]> {
    this.#refresh();
    return this.#users;
  }

  get status(): PresenceStatus {
    return this.#status;
  }

  get error(): TidingsError | undefined {
    return this.#error;
  }

  get joined(): boolean {
    return this.#wanted !== undefined;
  }

  get state(): Readonly<PresenceState> | undefined {
    return this.#wanted;
  }

  get self(): PresenceMember | undefined {
    return this.#member === undefined ? undefined : this.#memberOf(this.#member);
  }

  getSnapshot = (): readonly PresenceMember[] => this.members;

  subscribe = (listener: () => void): (() => void) => this.on('change', listener);

  on<K extends keyof PresenceEvents>(name: K, listener: PresenceEvents[K]): () => void {
    this.#listeners[name].add(listener);
    return () => {
      this.#listeners[name].delete(listener);
    };
  }

  join(state: PresenceState = {}, options: RequestOptions = {}): Promise<PresenceMember> {
    const refused = this.#refusal();
    if (refused !== undefined) return Promise.reject(refused);
    this.#wanted = copy(state);
    return this.#settle(true, options) as Promise<PresenceMember>;
  }

  update(patch: PresenceState, options: RequestOptions = {}): Promise<PresenceMember> {
    const refused = this.#refusal();
    if (refused !== undefined) return Promise.reject(refused);
    if (this.#wanted === undefined) {
      return Promise.reject(new TidingsError(ServerErrorCode.NOT_FOUND, `not present at ${this.topic}: join() first`, { topic: this.topic }));
    }
    this.#wanted = mergePatch(this.#wanted, patch);
    return this.#settle(true, options) as Promise<PresenceMember>;
  }

  async leave(options: RequestOptions = {}): Promise<void> {
    this.#wanted = undefined;
    // Not connected, the handle has no member: the server ended it with the connection.
    if (this.#host.client.state !== 'connected') {
      this.#own(undefined);
      return this.#resolveWaiters();
    }
    await this.#settle(false, options);
  }

  close(): Promise<void> {
    return this.#shutdown(undefined);
  }

  /** Leaves (when joined), stops following, and reports `closed` with the error that ended it (none for close()). */
  async #shutdown(error: TidingsError | undefined): Promise<void> {
    if (this.#closed) return;
    const leaving = this.#wanted !== undefined || this.#member !== undefined ? this.leave(this.#timeout).catch(() => undefined) : undefined;
    this.#closed = true;
    for (const off of this.#offs.splice(0)) off();
    this.#retry = undefined;
    clearTimeout(this.#retryTimer);
    const handle = this.#handle;
    this.#letGo();
    this.#setStatus('closed', error);
    if (error !== undefined) this.#rejectWaiters(error);
    await Promise.all([leaving, handle?.unsubscribe(this.#timeout).catch(() => undefined)]);
  }

  /**
   * Why join and update are refused before anything is sent: a closed handle (with the failure that closed it, if
   * one did), or a server older than presence.
   */
  #refusal(): TidingsError | undefined {
    if (this.#closed) return this.#error ?? new TidingsError(ClientErrorCode.CLOSED, `the presence handle of ${this.topic} is closed`, { topic: this.topic });
    try {
      this.#host.check();
      return undefined;
    } catch (error) {
      return error as TidingsError;
    }
  }

  // --- Following ------------------------------------------------------------------------------------------------

  /** Subscribes to the topic's presence; the reply's items are the members now, and events follow. */
  async #follow(): Promise<void> {
    try {
      this.#host.check();
    } catch (error) {
      return void this.#shutdown(error as TidingsError);
    }
    let handle: SubscriptionHandle;
    try {
      handle = await this.#host.client.subscribe(`${PRESENCE_PREFIX}${this.topic}`, this.#timeout);
    } catch (error) {
      return this.#failed(error);
    }
    if (this.#closed) return void handle.unsubscribe().catch(() => undefined);
    this.#handle = handle;
    this.#retryMs = 1000;
    // Added before the handle delivers anything: it holds its events until a later task.
    this.#handleOffs = [
      handle.on('event', (event) => this.#apply(event)),
      handle.on('gap', (gap) => this.#reset(gap)),
      handle.on('left', (info) => this.#left(info)),
    ];
    this.#replace(handle.items ?? []);
    this.#setStatus(this.#host.client.state === 'connected' ? 'live' : 'resyncing', undefined);
  }

  /**
   * A subscribe failed: a passing failure is tried again when the connection comes back (or after a growing wait, if
   * it is up); any other closes the handle.
   */
  #failed(error: unknown): void {
    const failure = error instanceof TidingsError ? error : new TidingsError(ServerErrorCode.INTERNAL, String(error));
    if (this.#closed) return;
    if (!PASSING.has(failure.code)) return void this.#shutdown(failure);
    this.#retry = () => void this.#follow();
    this.#setStatus(this.#status, failure);
    if (this.#host.client.state !== 'connected') return;
    clearTimeout(this.#retryTimer);
    this.#retryTimer = setTimeout(() => {
      const again = this.#retry;
      this.#retry = undefined;
      again?.();
    }, this.#retryMs);
    this.#retryMs = Math.min(this.#retryMs * 2, MAX_RETRY_MS);
  }

  /** A presence event: a member joins, changes or leaves. Another event type is ignored. */
  #apply(event: TidingsEvent): void {
    const { id, version } = event;
    if (typeof id !== 'string' || typeof version !== 'number') return;
    const held = this.#held.get(id);
    const before = held === undefined ? undefined : this.#memberOf(held);
    if (event.eventType === 'presence_deleted') {
      if (!this.#held.delete(id)) return;
      this.#changed();
      if (before !== undefined) this.#emit('leave', before);
      return;
    }
    if (event.eventType !== 'presence_created' && event.eventType !== 'presence_updated') return;
    if (held !== undefined && held.version >= version) return;
    const at = event.occurredAt ?? Date.now();
    const resource: Resource = {
      resourceType: 'presence',
      id,
      version,
      ownerId: event.ownerId ?? held?.ownerId ?? '',
      createdAt: held?.createdAt ?? at,
      updatedAt: at,
      data: event.data,
    };
    this.#held.set(id, resource);
    this.#changed();
    const after = this.#memberOf(resource);
    if (before === undefined) this.#emit('join', after);
    else this.#emit('update', after, before);
  }

  /** A reconnect brought the members present now: they replace those held, with a join, an update or a leave for each difference. */
  #reset(gap: Gap): void {
    this.#replace(gap.items ?? []);
  }

  #replace(items: Resource[]): void {
    const before = this.#held;
    this.#held = new Map(items.map((item) => [item.id, item]));
    this.#changed();
    for (const [id, old] of before) if (!this.#held.has(id)) this.#emit('leave', this.#memberOf(old));
    for (const [id, now] of this.#held) {
      const old = before.get(id);
      if (old === undefined) this.#emit('join', this.#memberOf(now));
      else if (old.version !== now.version) this.#emit('update', this.#memberOf(now), this.#memberOf(old));
    }
  }

  /** The subscription ended without close(): a resume it could not survive (NOT_FOUND, FORBIDDEN, USER_CHANGED). */
  #left(info: Unsubscribed): void {
    this.#letGo();
    void this.#shutdown(info.reason);
  }

  #onState(state: ConnectionState): void {
    if (this.#closed) return;
    if (state === 'connected') {
      const retry = this.#retry;
      this.#retry = undefined;
      clearTimeout(this.#retryTimer);
      if (retry !== undefined) retry();
      else if (this.#handle !== undefined) this.#setStatus('live', undefined);
      // What was asked while the connection was down and is not done yet (the reconnect's rejoin does it first).
      if (this.#waiters.length > 0) this.#kick();
      return;
    }
    // Not connected: the member ended with the connection; the next connection joins again.
    if (this.#member !== undefined) {
      this.#member = undefined;
      this.#changed();
    }
    if (this.#status === 'live') this.#setStatus('resyncing', this.#error);
    if (state === 'closed') this.#rejectWaiters(new TidingsError(ClientErrorCode.CLOSED, 'the client closed before the member was as asked'));
  }

  /** Lets go of the subscription's handle and its listeners. */
  #letGo(): void {
    for (const off of this.#handleOffs.splice(0)) off();
    this.#handle = undefined;
  }

  // --- The own member -------------------------------------------------------------------------------------------

  /** Syncs the member with #wanted, after the syncs before; resolves once the member is as wanted. */
  #settle(member: boolean, options: RequestOptions): Promise<PresenceMember | undefined> {
    const settled = new Promise<PresenceMember | undefined>((resolve, reject) => this.#waiters.push({ member, resolve, reject }));
    this.#kick(false, options);
    return settled;
  }

  /** Queues a sync; `restoring`: the rejoin of a new connection, which may send before it is reported connected. */
  #kick(restoring = false, options: RequestOptions = this.#timeout): Promise<void> {
    const run = this.#chain.then(() => this.#sync(restoring, options));
    this.#chain = run.catch(() => undefined);
    return run;
  }

  /** A new connection: the member of the old one ended with it, so the handle joins again with the state it wants. */
  #rejoin(): Promise<void> {
    this.#member = undefined;
    if (this.#wanted === undefined) return Promise.resolve();
    return this.#kick(true);
  }

  /**
   * Sends what makes the member as wanted: a create (join), a merge patch of its state, or a delete (leave), one
   * request at a time, until it is as wanted or the app asked for nothing new meanwhile. Only when connected (or
   * restoring): otherwise the next connection's rejoin does it. Rethrows, when restoring, the loss of the connection.
   */
  async #sync(restoring: boolean, options: RequestOptions): Promise<void> {
    if (!restoring && this.#host.client.state !== 'connected') return;
    const opts = { ...this.#timeout, ...options };
    let step: 'join' | 'update' | 'leave' = 'join';
    try {
      for (;;) {
        const wanted = this.#wanted;
        const member = this.#member;
        if (wanted === undefined && member === undefined) break;
        if (member === undefined) {
          step = 'join';
          const made = await this.#host.send('create', { resourceType: 'presence', data: { topic: this.topic, state: wanted } }, opts);
          this.#own(made as Resource);
        } else if (wanted === undefined) {
          step = 'leave';
          await this.#host.send('delete', { resourceType: 'presence', id: member.id }, opts);
          this.#own(undefined);
        } else {
          const patch = diff(stateOf(member), wanted);
          if (patch === undefined) break;
          step = 'update';
          const changed = await this.#host.send('update', { resourceType: 'presence', id: member.id, patch: { state: patch } }, opts);
          this.#own(changed as Resource);
        }
        // Once per request: the loop goes on only when the app asked for something else meanwhile.
        if (this.#wanted === wanted) break;
      }
    } catch (error) {
      const failure = error instanceof TidingsError ? error : new TidingsError(ServerErrorCode.INTERNAL, String(error));
      if (GONE.has(failure.code)) {
        // The member ended with the connection; the next connection's rejoin makes it again, and what waits waits.
        this.#own(undefined);
        if (restoring) throw failure;
        return;
      }
      if (restoring && failure.code === ClientErrorCode.TIMEOUT) throw failure;
      // A TIMEOUT on a live connection is taken as a refusal: the server may have made the member all the same, and
      // it then ends with the connection.
      this.#refused(step, failure);
      return;
    }
    this.#resolveWaiters();
  }

  /** The server refused a join, a change or a leave: the handle holds what the server holds, and says why. */
  #refused(step: 'join' | 'update' | 'leave', error: TidingsError): void {
    if (step === 'join') this.#wanted = undefined;
    else if (step === 'update' && this.#member !== undefined) this.#wanted = copy(stateOf(this.#member));
    else if (step === 'leave' && error.code === ServerErrorCode.NOT_FOUND) {
      // Gone already: leaving is done.
      this.#own(undefined);
      return this.#resolveWaiters();
    }
    this.#error = error;
    this.#changed();
    this.#rejectWaiters(error);
  }

  /** Takes the server's answer as this handle's member. */
  #own(member: Resource | undefined): void {
    this.#member = member;
    this.#changed();
  }

  #resolveWaiters(): void {
    const self = this.self;
    for (const waiter of this.#waiters.splice(0)) {
      if (!waiter.member || self !== undefined) waiter.resolve(self);
      else waiter.reject(new TidingsError(ServerErrorCode.NOT_FOUND, `left ${this.topic} before the join was done`, { topic: this.topic }));
    }
  }

  #rejectWaiters(error: TidingsError): void {
    for (const waiter of this.#waiters.splice(0)) waiter.reject(error);
  }

  // --- Snapshots and listeners ----------------------------------------------------------------------------------

  #memberOf(resource: Resource): PresenceMember {
    return Object.freeze({
      id: resource.id,
      userId: resource.ownerId,
      state: stateOf(resource),
      version: resource.version,
      joinedAt: resource.createdAt,
      updatedAt: resource.updatedAt,
      self: resource.id === this.#member?.id,
    });
  }

  /** Builds the members and users again after a change, once, when they are next read. */
  #refresh(): void {
    if (!this.#dirty) return;
    this.#dirty = false;
    const members = [...this.#held.values()]
      .sort((a, b) => a.createdAt - b.createdAt || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0))
      .map((resource) => this.#memberOf(resource));
    this.#members = Object.freeze(members);
    const users = new Map<string, PresenceMember[]>();
    for (const member of members) users.set(member.userId, [...(users.get(member.userId) ?? []), member]);
    for (const list of users.values()) Object.freeze(list);
    this.#users = users;
  }

  #changed(): void {
    this.#dirty = true;
    this.#emit('change');
  }

  #setStatus(status: PresenceStatus, error: TidingsError | undefined): void {
    if (status === this.#status && error === this.#error) return;
    this.#status = status;
    this.#error = error;
    this.#emit('change');
  }

  #emit<K extends keyof PresenceEvents>(name: K, ...args: Parameters<PresenceEvents[K]>): void {
    for (const listener of [...this.#listeners[name]]) {
      try {
        (listener as (...a: Parameters<PresenceEvents[K]>) => void)(...args);
      } catch (error) {
        // A listener's failure must not stop the others or the handle; it is reported asynchronously.
        queueMicrotask(() => {
          throw error;
        });
      }
    }
  }
}

/** A member's state: its data's `state`, an object (an empty one when the server sent none). */
function stateOf(member: Resource): PresenceState {
  const state = member.data['state'];
  return isObject(state) ? state : {};
}
