// The public shapes of subscriptions: what subscribe() resolves with (the Subscription and its handle), a handle's
// events, gaps, and the end of a subscription.
/// <reference lib="esnext.disposable" preserve="true" />
// The directive above gives an app the types of Symbol.dispose, which SubscriptionHandle names, whatever its lib.
import type { Query, Resource, TidingsError } from './common.js';
import type { RequestOptions, TidingsEvent } from './options.js';

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
