// The Client interface, what createClient returns: its methods, typed per resource type when the client was made
// with a map of them (typed.ts), and as they always were without one.
import type { Query } from './common.js';
import type { LiveCollection } from './live.js';
import type {
  ClientEvents,
  ConnectionState,
  ListQuery,
  LiveOptions,
  PresenceOptions,
  RequestOptions,
  SubscribeOptions,
  Subscription,
  SubscriptionHandle,
  UnsubscribeOptions,
  WriteOptions,
} from './options.js';
import type { Presence } from './presence.js';
import type {
  BatchOperationOf,
  BatchResultsOf,
  CreateOf,
  DeleteResultOf,
  ClientEventOf,
  EventOfTopic,
  ListOf,
  ListQueryOf,
  PatchOf,
  PendingWriteOf,
  ResourceOf,
  ResourceOfTopic,
  TopicOf,
  TypeMap,
  TypeName,
  Untyped,
} from './typed.js';

/**
 * A Tidings client. With a map of resource types T (`Types`, which `tidings types` writes; createClient<Types>()),
 * its requests, events and handles are typed per resource type; without one, any type name and data are taken.
 */
export interface Client<T extends TypeMap<T> = Untyped> {
  /** The connection's state. */
  readonly state: ConnectionState;
  /**
   * Opens the connection and authenticates; resolves once authenticated. Rejects when the attempts fail for good (a
   * refused token, `retry.attempts` spent, getToken signed out), or, with `failFast`, when the first attempt fails.
   * Each failed attempt is reported to on('attemptFailed').
   */
  connect(): Promise<void>;
  /** Sends `disconnect`, closes the socket, fails what waits with CLOSED, and does not reconnect. */
  close(): void;
  /** Drops the socket as a network failure would, and reconnects: for tests and for a caller that knows better. */
  reconnect(): void;
  /**
   * Creates a resource; resolves with it as the server stored it. With an outbox, it shows at once in the live
   * collections whose query it matches, under the temporary id `pending:` and its requestId, at version 0 and
   * flagged `pending`, until the server's reply replaces it with the resource under the server's id.
   */
  create<K extends TypeName<T>>(resourceType: K, data: CreateOf<T, K>, options?: RequestOptions): Promise<ResourceOf<T, K>>;
  read<K extends TypeName<T>>(resourceType: K, id: string, options?: RequestOptions): Promise<ResourceOf<T, K>>;
  /** With typed resources, a query's `fields` types each item's data with those fields only. */
  list<K extends TypeName<T>, Q extends ListQueryFor<T, K> = ListQueryFor<T, K>>(resourceType: K, query?: Q, options?: RequestOptions): Promise<ListOf<T, K, Q>>;
  /**
   * Applies a merge patch to a resource's data (any of its fields; `null` removes one that may be absent); resolves
   * with the resource after it. With an outbox, the patched item shows at once, flagged `pending` (leaving a
   * collection whose query it no longer matches), and `id` may be a pending create's temporary id: the update goes
   * after the create, with the server's id.
   */
  update<K extends TypeName<T>>(resourceType: K, id: string, patch: PatchOf<T, K>, options?: WriteOptions): Promise<ResourceOf<T, K>>;
  /** Deletes a resource. With an outbox, it leaves the live collections at once, and comes back if refused. */
  delete<K extends TypeName<T>>(resourceType: K, id: string, options?: WriteOptions): Promise<DeleteResultOf<T, K>>;
  /**
   * Applies creates, updates and deletes of any types together in one transaction, or none of them (protocol 1.2;
   * docs/protocol.md, 6.14 and 7.8), and resolves with one result per operation, in order. It rejects with the
   * TidingsError of the first operation that failed, whose `details.index` is that operation's position from 0 and
   * whose `errors` point under `/payload/operations/{index}`; nothing of the batch was applied then. Its requestId
   * (generateId() unless given) makes it safe to send again, as a create: the client resends it after a reconnect,
   * and the server answers a repeat with the first reply. Against a server that stated a version below 1.2 it
   * rejects with UNSUPPORTED_VERSION, and nothing is sent.
   */
  batch<const O extends readonly BatchOperationOf<T>[]>(operations: O, options?: RequestOptions): Promise<BatchResultsOf<T, O>>;
  /**
   * Subscribes to a topic (`order`, `order:ORD-1`, `notifications`); with since, replays the events after it; with
   * a query, follows the resources of a type that match it; with snapshot, resolves with what it covers now. It
   * resolves with a handle of its own. A topic and query the client already subscribes to is not asked of the server
   * again: the new handle shares the subscription (its snapshot is then read with `list`, and a `since` below the
   * subscription's lastSeq is refused with CONFLICT, since no replay can be asked for one handle). A presence topic
   * (`presence:order:ORD-1`, protocol 1.2) resolves with the members present in `items`, and each resume after a
   * reconnect is a `gap` whose `items` are the members then (`client.presence` keeps them for you).
   */
  subscribe<P extends TopicOf<T>>(topic: P, options?: SubscribeOptions): Promise<SubscriptionHandle<EventOfTopic<T, P>, ResourceOfTopic<T, P>>>;
  /**
   * With a handle: the same as handle.unsubscribe(). With a topic (its query's, with `options.query`) or a
   * Subscription that is no handle: ends the subscription for every handle of it, which hear `left`. Rejects with
   * NOT_FOUND when the client holds no such subscription.
   */
  unsubscribe(subscription: string | Pick<Subscription, 'topic' | 'subscriptionId' | 'query'>, options?: UnsubscribeOptions): Promise<void>;
  /**
   * A live collection: the resources of a type that match the query (every one the user may read, without a
   * query), kept equal to the server's. It subscribes with a snapshot (sharing the subscription when the client
   * holds it already), reads the pages beyond it, then applies every change by version; it resumes after a
   * reconnect and reads anew after a gap. With an outbox, this client's pending writes of the type show on top,
   * flagged `pending` (LiveItem). Call its close() when done. Needs a server of protocol 1.1 or later.
   */
  live<K extends TypeName<T>>(resourceType: K, query?: Query, options?: LiveOptions<ResourceOf<T, K>>): LiveCollection<ResourceOf<T, K>>;
  /**
   * Who is at a topic (a type such as `order`, or a resource such as `order:ORD-1`), and this client's own presence
   * there (protocol 1.2; docs/protocol.md, 8.7): it follows `presence:` and the topic at once, and its `members`
   * (grouped by user in `users`) change as members join, change their state and leave; `join(state)`, `update(patch)`
   * and `leave()` make this client's own member. After a reconnect the members come anew from the server, and the
   * handle joins again with its last state (its member ended with the old connection). Call its close() when done.
   * Against a server that stated a version below 1.2 the handle closes at once with UNSUPPORTED_VERSION, and
   * nothing is sent.
   */
  presence(topic: PresenceTopicOf<T>, options?: PresenceOptions): Presence;
  /**
   * Sends a message of an ephemeral type (protocol 1.2; docs/protocol.md, 8.8): a `create` that the server checks
   * as any create, fans out at once to the type's subscribers as a `<type>_created` event without `seq`, and does
   * not store. Resolves with the message as a resource once the server handed it on. It is not stored (a subscriber
   * that is away misses it), not queued (it rejects with DISCONNECTED when the client is not connected), and not
   * sent again (CONNECTION_LOST when the connection drops before the reply; the server does not deduplicate it).
   * Against a server that stated a version below 1.2 it rejects with UNSUPPORTED_VERSION, and nothing is sent. On
   * a type that is not ephemeral it is a create that is not retried.
   */
  broadcast<K extends TypeName<T>>(resourceType: K, data: CreateOf<T, K>, options?: RequestOptions): Promise<ResourceOf<T, K>>;
  /** Sends `ping` and resolves on `pong`. */
  ping(options?: RequestOptions): Promise<void>;
  /** Adds a callback; returns a function that removes it. */
  on<K extends keyof ClientEvents>(name: K, listener: ClientEvents<ClientEventOf<T>, ResourceOf<T>, PendingWriteOf<T>>[K]): () => void;
  /** The subscriptions the client resumes after a reconnect. */
  subscriptions(): Subscription[];
  /**
   * The writes in the outbox, waiting or in flight, in the order they go out, those read back from it included (an
   * empty list until it is read, and without an outbox). on('outbox') hears each change.
   */
  pendingWrites(): readonly PendingWriteOf<T>[];
}

/** The list query `list` of type K takes: the plain ListQuery without typed resources. */
export type ListQueryFor<T, K extends TypeName<T>> = T extends Untyped ? ListQuery : ListQueryOf<T, K>;

/** The topics `presence` takes: a type or one resource of it. */
export type PresenceTopicOf<T> = T extends Untyped ? string : TypeName<T> | `${TypeName<T>}:${string}`;
