// Live collections: client.live(type, query) keeps the resources a query matches as the server holds them, for a view
// on screen or a store of React's useSyncExternalStore: a snapshot, the pages beyond it, then every change; with an
// outbox, the client's own pending writes on top.
import { ClientErrorCode, ServerErrorCode, TidingsError, type Query, type Resource } from './common.js';
import type { Client } from './api.js';
import type { ConnectionState, Gap, ListQuery, LiveOptions, SubscribeOptions, SubscriptionHandle, TidingsEvent, Unsubscribed } from './options.js';
import { matches } from './query.js';
import { mergePatch } from './state-patch.js';
import type { PendingWrites, WriteChange, WriteResult } from './outbox.js';

/**
 * Where a live collection stands: `loading` until the whole result is in the first time (the items grow page by
 * page meanwhile); `live` when it equals the query's result on the server and follows every change; `resyncing`
 * while it may be behind and catches up by itself (the connection is down and will resume, or a gap is being read
 * again; the items shown are the last known); `closed` once close() was called or the subscription ended for good
 * (`error` says why).
 */
export type LiveStatus = 'loading' | 'live' | 'resyncing' | 'closed';

/**
 * An item of a live collection: a resource R (a Resource, or a type's own with createClient<Types>()), and with an
 * outbox, `pending: true` on one that shows a write of this client the server has not confirmed yet: a create
 * (under its temporary id `pending:REQUESTID`, at version 0), or an update (its data patched, its version still the
 * server's). A pending delete shows as the item's absence.
 */
export type LiveItem<R = Resource> = R & { readonly pending?: true };

/**
 * What client.live() returns: the resources of one type that match a query, kept equal to the server's; R is their
 * type (typed per resource type by createClient<Types>()).
 */
export interface LiveCollection<R = Resource> {
  /** The type it holds. */
  readonly resourceType: string;
  /** The query it follows; undefined for every resource of the type the user may read. */
  readonly query: Query | undefined;
  /**
   * The resources, in the order of `compare`, as a frozen array. The same array is returned until the contents
   * change, as React's useSyncExternalStore needs; a change makes a new one. With an outbox, the client's pending
   * writes of the type are applied on top, in order, each item they touch flagged `pending` and kept only while it
   * matches the query (LiveItem); a write leaves when the server confirms it (its reply is applied at once) or
   * refuses it (the item is as the server has it again).
   */
  getSnapshot(): readonly LiveItem<R>[];
  /**
   * Calls the listener after every change of the items, the status or the error; returns a function that removes
   * it. A bound function: pass it as it is, as `useSyncExternalStore(live.subscribe, live.getSnapshot)`.
   */
  subscribe(listener: () => void): () => void;
  /** Where the collection stands (see LiveStatus). */
  readonly status: LiveStatus;
  /**
   * The last failure: the one that closed the collection, or one it recovers from by itself (a list page that timed
   * out is read again once the connection is back); cleared once it is live again.
   */
  readonly error: TidingsError | undefined;
  /** The resource with this id, if the collection holds it, as getSnapshot() shows it. */
  get(id: string): LiveItem<R> | undefined;
  /**
   * Stops following: the status becomes `closed` and its subscription handle is let go (the server subscription
   * ends when no other handle shares it). Resolves once that is done; calling it again does nothing.
   */
  close(): Promise<void>;
}

/** The page size of the reads after a snapshot: the most a read returns, and as many as a snapshot holds. */
const PAGE = 100;

/** The longest wait before a failed read is tried again while the connection stays up. */
const MAX_RETRY_MS = 30000;

/** Failures that pass: the store tries again (at once when the connection comes back) instead of closing. */
const PASSING = new Set<string>([
  ClientErrorCode.TIMEOUT,
  ClientErrorCode.CONNECTION_LOST,
  ClientErrorCode.DISCONNECTED,
  ClientErrorCode.QUEUE_FULL,
  ClientErrorCode.CLOSED,
  ServerErrorCode.RATE_LIMITED,
  ServerErrorCode.UNAVAILABLE,
]);

const EMPTY: readonly LiveItem[] = Object.freeze([]);

/** By createdAt, then id: the order of the server's snapshot. */
const byCreation = (a: Resource, b: Resource): number => a.createdAt - b.createdAt || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0);

/**
 * The resources held, and for each id the highest version seen, whether the resource is held or went (a `_left` or
 * `_deleted` leaves its version behind as a tombstone): data older than that, such as a list page read before a
 * change it reports after, is dropped (docs/protocol.md, 8.5).
 */
class Contents {
  readonly items = new Map<string, Resource>();
  readonly versions = new Map<string, number>();

  /**
   * Holds the resource unless a version as new or newer was seen; says whether it changed what is held. `exact`
   * says the resource comes from the server whole (a snapshot or a page): its createdAt then also corrects that of
   * a newer copy learned from an event, which can only guess it.
   */
  upsert(resource: Resource, exact: boolean): boolean {
    if ((this.versions.get(resource.id) ?? 0) >= resource.version) {
      const held = this.items.get(resource.id);
      if (!exact || held === undefined || held.createdAt === resource.createdAt) return false;
      this.items.set(resource.id, { ...held, createdAt: resource.createdAt });
      return true;
    }
    this.versions.set(resource.id, resource.version);
    this.items.set(resource.id, resource);
    return true;
  }

  /**
   * Drops the resource unless a newer version was seen: a `_left` for an id never held is kept as a tombstone only
   * (8.5 says a client ignores it). Says whether it changed what is held.
   */
  remove(id: string, version: number): boolean {
    if ((this.versions.get(id) ?? 0) > version) return false;
    this.versions.set(id, version);
    return this.items.delete(id);
  }
}

/** A failure as a TidingsError. */
function asError(error: unknown): TidingsError {
  return error instanceof TidingsError ? error : new TidingsError(ServerErrorCode.INTERNAL, String(error));
}

/** The live collection of `resourceType` that match `query` (all of them when undefined), on this client. */
export function createLive(
  client: Client,
  resourceType: string,
  query: Query | undefined,
  options: LiveOptions = {},
  writes?: PendingWrites,
): LiveCollection {
  return new Live(client, resourceType, query, options, writes);
}

class Live implements LiveCollection {
  readonly resourceType: string;
  readonly query: Query | undefined;
  readonly #client: Client;
  readonly #compare: (a: LiveItem, b: LiveItem) => number;
  readonly #timeout: { timeoutMs?: number };
  #contents = new Contents();
  /**
   * After a gap that came without a snapshot: the contents being read anew, until their first page is in. Events
   * go to both, so that the old contents stay on screen meanwhile and the new ones miss no change.
   */
  #next: Contents | undefined;
  #snapshot: readonly LiveItem[] = EMPTY;
  /** What the snapshot shows, by id: the contents with the pending writes on top. */
  #shown: ReadonlyMap<string, LiveItem> = new Map();
  #dirty = false;
  /** The client's outbox, when it has one, and the function that stops hearing of its changes. */
  readonly #writes: PendingWrites | undefined;
  readonly #writesOff: () => void;
  readonly #listeners = new Set<() => void>();
  #status: LiveStatus = 'loading';
  #error: TidingsError | undefined;
  #handle: SubscriptionHandle | undefined;
  #handleOffs: (() => void)[] = [];
  readonly #clientOff: () => void;
  /** Counts each (re)load; a page that an older one reads late is dropped. */
  #epoch = 0;
  /** Whether pages are still being read: the collection is not live before they are all in. */
  #reading = false;
  /** The seq of the last event applied, to resume from when the server ends the subscription having lost events. */
  #lastSeq: number | undefined;
  /** What to try again after a passing failure: at once when the connection comes back, else after #retryMs. */
  #retry: (() => void) | undefined;
  #retryTimer: ReturnType<typeof setTimeout> | undefined;
  #retryMs = 1000;
  #closed = false;

  constructor(client: Client, resourceType: string, query: Query | undefined, options: LiveOptions, writes: PendingWrites | undefined) {
    this.#client = client;
    this.#writes = writes;
    this.#writesOff = writes?.watch((change) => this.#onWrite(change)) ?? (() => undefined);
    this.resourceType = resourceType;
    this.query = query;
    this.#compare = options.compare ?? byCreation;
    this.#timeout = options.timeoutMs === undefined ? {} : { timeoutMs: options.timeoutMs };
    this.#clientOff = client.on('state', (state, error) => this.#onState(state, error));
    void this.#open(undefined);
  }

  get status(): LiveStatus {
    return this.#status;
  }

  get error(): TidingsError | undefined {
    return this.#error;
  }

  // Arrow functions, so that they can be passed around unbound, as useSyncExternalStore does.
  getSnapshot = (): readonly LiveItem[] => {
    this.#refresh();
    return this.#snapshot;
  };

  subscribe = (listener: () => void): (() => void) => {
    this.#listeners.add(listener);
    return () => {
      this.#listeners.delete(listener);
    };
  };

  get(id: string): LiveItem | undefined {
    this.#refresh();
    return this.#shown.get(id);
  }

  /** Makes what is shown anew after a change. */
  #refresh(): void {
    if (!this.#dirty) return;
    this.#dirty = false;
    this.#shown = this.#overlay();
    this.#snapshot = Object.freeze([...this.#shown.values()].sort(this.#compare));
  }

  /**
   * The contents with the client's pending writes of the type on top, in the order they go out. An item a write
   * touches is shown only while it matches the query, as the server would decide once the write is applied; an
   * update of an item the collection does not hold cannot be shown, since its other fields are not known.
   */
  #overlay(): ReadonlyMap<string, LiveItem> {
    const writes = this.#writes?.pending(this.resourceType) ?? [];
    if (writes.length === 0) return this.#contents.items;
    const items = new Map<string, LiveItem>(this.#contents.items);
    const touched = new Set<string>();
    for (const write of writes) {
      touched.add(write.id);
      const held = items.get(write.id);
      if (write.kind === 'delete') items.delete(write.id);
      else if (write.kind === 'update' && held !== undefined) {
        items.set(write.id, { ...held, data: mergePatch(held.data, write.data ?? {}), updatedAt: write.writtenAt, pending: true });
      } else if (write.kind === 'create') {
        const at = write.writtenAt;
        const data = write.data ?? {};
        const ownerId = write.userId ?? '';
        items.set(write.id, { resourceType: this.resourceType, id: write.id, version: 0, ownerId, createdAt: at, updatedAt: at, data, pending: true });
      }
    }
    const query = this.query;
    if (query !== undefined) {
      for (const id of touched) {
        const item = items.get(id);
        if (item !== undefined && !matches(query, item)) items.delete(id);
      }
    }
    return items;
  }

  /**
   * A pending write of the client changed. A confirmed one's reply is the server's word on the resource as of its
   * version, so it is applied at once, as an event would be: the item does not go back to what it was while the
   * event is on its way. The query decides whether it is held, as the server decides what the subscription sends.
   */
  #onWrite(change: WriteChange): void {
    if (change.kind !== 'loaded' && change.write.resourceType !== this.resourceType) return;
    if (change.kind === 'confirmed') this.#confirmed(change.result);
    this.#changed();
  }

  #confirmed(result: WriteResult): void {
    const resource = 'data' in result ? result : undefined;
    const held = resource !== undefined && (this.query === undefined || matches(this.query, resource));
    for (const contents of [this.#contents, this.#next]) {
      if (contents === undefined) continue;
      if (held) contents.upsert(resource, true);
      else contents.remove(result.id, result.version);
    }
  }

  close(): Promise<void> {
    if (this.#closed) return Promise.resolve();
    return this.#end(undefined);
  }

  /**
   * Subscribes with a snapshot (with `since`: resumes from there, after the server ended the subscription), then
   * fills the contents from what the handle brings. A handle of a subscription the client holds already shares it.
   */
  async #open(since: number | undefined): Promise<void> {
    const epoch = ++this.#epoch;
    const opts: SubscribeOptions = { snapshot: true, ...this.#timeout };
    if (this.query !== undefined) opts.query = this.query;
    if (since !== undefined) opts.since = since;
    let handle: SubscriptionHandle;
    try {
      handle = await this.#client.subscribe(this.resourceType, opts);
    } catch (error) {
      if (epoch === this.#epoch && !this.#closed) this.#failed(error, () => void this.#open(since));
      return;
    }
    if (this.#closed) {
      handle.unsubscribe().catch(() => undefined);
      return;
    }
    this.#handle = handle;
    this.#lastSeq = handle.lastSeq;
    // Added before the handle delivers anything: it holds its events until a later task.
    this.#handleOffs = [
      handle.on('event', (event) => this.#apply(event)),
      handle.on('gap', (gap) => this.#onGap(gap)),
      handle.on('left', (info) => this.#left(info)),
    ];
    if (handle.items !== undefined) this.#load(handle.items, handle.nextCursor ?? null);
    else if (since !== undefined) this.#done();
    else this.#reload();
  }

  /** Replaces the contents with a snapshot (the subscription's, or a gap's), then reads the pages beyond it. */
  #load(items: Resource[], cursor: string | null): void {
    const epoch = ++this.#epoch;
    this.#contents = new Contents();
    this.#next = undefined;
    for (const item of items) this.#contents.upsert(item, true);
    this.#changed();
    void this.#pages(epoch, cursor, false);
  }

  /** Reads the contents anew from the first page, keeping the old ones on screen until it is in. */
  #reload(): void {
    const epoch = ++this.#epoch;
    this.#next = new Contents();
    void this.#pages(epoch, null, true);
  }

  /**
   * Reads pages until nextCursor is null. The pages are read later than the snapshot or the gap, while events keep
   * coming, so they are merged by version. With `first`, the first page is read into #next, which then replaces
   * the contents.
   */
  async #pages(epoch: number, cursor: string | null, first: boolean): Promise<void> {
    // A read tried again after a failure may have been overtaken by a gap's reload meanwhile.
    if (epoch !== this.#epoch) return;
    this.#reading = true;
    if (this.#status !== 'loading') this.#setStatus('resyncing', this.#error);
    while (first || cursor !== null) {
      const list: ListQuery = { limit: PAGE };
      if (this.query !== undefined) list.query = this.query;
      if (cursor !== null) list.cursor = cursor;
      let page;
      try {
        page = await this.#client.list(this.resourceType, list, this.#timeout);
      } catch (error) {
        if (epoch === this.#epoch && !this.#closed) this.#failed(error, () => void this.#pages(epoch, cursor, first));
        return;
      }
      if (epoch !== this.#epoch || this.#closed) return;
      const into = first ? (this.#next ?? new Contents()) : this.#contents;
      for (const item of page.items) into.upsert(item, true);
      if (first) {
        this.#contents = into;
        this.#next = undefined;
        first = false;
      }
      this.#changed();
      cursor = page.nextCursor ?? null;
    }
    this.#done();
  }

  /** Every page is in: live, unless the connection went meanwhile. */
  #done(): void {
    this.#reading = false;
    this.#retryMs = 1000;
    if (this.#client.state === 'connected') this.#setStatus('live', undefined);
    else this.#setStatus(this.#status === 'loading' ? 'loading' : 'resyncing', this.#error);
  }

  /**
   * Applies an event: `_created`, `_updated` and `_entered` hold the resource at its version, `_left` (whatever its
   * reason, `hidden` with empty data included) and `_deleted` drop it; an event type it does not know is ignored.
   */
  #apply(event: TidingsEvent): void {
    if (typeof event.seq === 'number') this.#lastSeq = event.seq;
    const { id, version } = event;
    if (typeof id !== 'string' || typeof version !== 'number') return;
    const kind = event.eventType.slice(event.eventType.lastIndexOf('_') + 1);
    const gone = kind === 'left' || kind === 'deleted';
    if (!gone && kind !== 'created' && kind !== 'updated' && kind !== 'entered') return;
    let changed = false;
    for (const contents of [this.#contents, this.#next]) {
      if (contents === undefined) continue;
      const held = contents.items.get(id) ?? this.#contents.items.get(id);
      const applied = gone ? contents.remove(id, version) : contents.upsert(fromEvent(this.resourceType, event, id, version, held), false);
      if (contents === this.#contents) changed = applied;
    }
    if (changed) this.#changed();
  }

  /**
   * Resuming could not replay every event: the gap's snapshot (the subscription asked for one) replaces the
   * contents as of its seq, before the events after it; without one, the contents are read anew.
   */
  #onGap(gap: Gap): void {
    this.#lastSeq = gap.seq;
    if (gap.items !== undefined) this.#load(gap.items, gap.nextCursor ?? null);
    else this.#reload();
  }

  /** The subscription ended: the server lost events (UNAVAILABLE) and says to subscribe again; else it is over. */
  #left(info: Unsubscribed): void {
    this.#handle = undefined;
    for (const off of this.#handleOffs.splice(0)) off();
    if (info.reason.code !== ServerErrorCode.UNAVAILABLE) {
      void this.#end(info.reason);
      return;
    }
    this.#setStatus(this.#status === 'loading' ? 'loading' : 'resyncing', info.reason);
    void this.#open(this.#lastSeq);
  }

  #onState(state: ConnectionState, error: TidingsError | undefined): void {
    if (this.#closed) return;
    if (state === 'connected') {
      const retry = this.#retry;
      this.#retry = undefined;
      clearTimeout(this.#retryTimer);
      if (retry !== undefined) retry();
      else if (this.#status !== 'live' && this.#handle !== undefined && !this.#reading) this.#setStatus('live', undefined);
    } else if (this.#status === 'live') {
      // The items are the last known; the client resumes the subscription and the events it missed follow.
      this.#setStatus('resyncing', error ?? this.#error);
    }
  }

  /**
   * A subscribe or a read failed: a passing failure is tried again when the connection comes back (or after a
   * growing wait, if it is up); any other closes the collection with it.
   */
  #failed(error: unknown, retry: () => void): void {
    const failure = asError(error);
    if (!PASSING.has(failure.code)) {
      void this.#end(failure);
      return;
    }
    this.#retry = retry;
    this.#setStatus(this.#status, failure);
    if (this.#client.state !== 'connected') return;
    clearTimeout(this.#retryTimer);
    this.#retryTimer = setTimeout(() => {
      const again = this.#retry;
      this.#retry = undefined;
      again?.();
    }, this.#retryMs);
    this.#retryMs = Math.min(this.#retryMs * 2, MAX_RETRY_MS);
  }

  /** Ends the collection, with the error that ended it (none for close()), and lets go of its handle. */
  #end(error: TidingsError | undefined): Promise<void> {
    this.#closed = true;
    this.#epoch += 1;
    this.#retry = undefined;
    clearTimeout(this.#retryTimer);
    this.#clientOff();
    this.#writesOff();
    for (const off of this.#handleOffs.splice(0)) off();
    const handle = this.#handle;
    this.#handle = undefined;
    this.#setStatus('closed', error);
    return handle === undefined ? Promise.resolve() : handle.unsubscribe();
  }

  #changed(): void {
    this.#dirty = true;
    this.#notify();
  }

  #setStatus(status: LiveStatus, error: TidingsError | undefined): void {
    if (status === this.#status && error === this.#error) return;
    this.#status = status;
    this.#error = error;
    this.#notify();
  }

  #notify(): void {
    for (const listener of [...this.#listeners]) {
      try {
        listener();
      } catch (error) {
        // A listener's failure must not stop the others or the collection; it is reported asynchronously.
        queueMicrotask(() => {
          throw error;
        });
      }
    }
  }
}

/**
 * The resource an event describes. An event does not say when the resource was created: a resource already held
 * keeps its createdAt, and one learned from the event (created, or entering the query) takes the event's time.
 */
function fromEvent(resourceType: string, event: TidingsEvent, id: string, version: number, held: Resource | undefined): Resource {
  const at = event.occurredAt ?? Date.now();
  return {
    resourceType: event.resourceType ?? resourceType,
    id,
    version,
    ownerId: event.ownerId ?? held?.ownerId ?? '',
    createdAt: held?.createdAt ?? at,
    updatedAt: at,
    data: event.data,
  };
}
