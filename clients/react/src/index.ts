// React bindings of the Tidings SDK: TidingsProvider and useClient, useLive (a live collection), useSubscription (a
// topic's events) and usePresence (who is at a topic, and being there while mounted), each hook on
// useSyncExternalStore; createHooks<Types>() gives them typed per resource type.
import { createContext, createElement, useContext, useEffect, useRef, useState, useSyncExternalStore, type ReactElement, type ReactNode } from 'react';
import {
  canonicalQuery,
  type Client,
  type EventOfTopic,
  type LiveCollection,
  type LiveItem,
  type LiveOptions,
  type LiveStatus,
  type Presence,
  type PresenceMember,
  type PresenceOptions,
  type PresenceState,
  type PresenceStatus,
  type Query,
  type Resource,
  type ResourceOf,
  type TidingsError,
  type TidingsEvent,
  type TopicOf,
  type TypeMap,
  type TypeName,
  type Untyped,
} from 'tidings';

/**
 * A client of any resource types, as the provider holds it: the hooks use only what every client has, and
 * createHooks<Types>() gives them back their types.
 */
export type AnyClient = Client<any>;

const ClientContext = createContext<AnyClient | undefined>(undefined);

/** The props of TidingsProvider. */
export interface TidingsProviderProps {
  /** The client the components below use: made once by the app with createClient (typed or not), and connected by it. */
  client: AnyClient;
  children?: ReactNode;
}

/**
 * Gives the components below it the client, for useClient, useLive and useSubscription. The app makes the client
 * (createClient), connects it and closes it: the provider neither opens nor closes it, so that a remount does not
 * drop the connection.
 */
export function TidingsProvider({ client, children }: TidingsProviderProps): ReactElement {
  return createElement(ClientContext.Provider, { value: client }, children);
}

/** The client of the nearest TidingsProvider; throws when there is none, which is a mistake in the app. */
export function useClient(): Client {
  const client = useContext(ClientContext);
  if (client === undefined) throw new Error('useClient: no TidingsProvider above this component gives a client');
  return client as Client;
}

/** What useLive returns: the collection's items, where it stands, and its last error; R is the items' type. */
export interface LiveState<R = Resource> {
  /**
   * The resources, as LiveCollection.getSnapshot() has them: the same array until they change. With the client's
   * outbox, its writes not confirmed yet are among them, flagged `pending: true` (LiveItem).
   */
  items: readonly LiveItem<R>[];
  /** `loading` until the first contents are in, then `live`, `resyncing` while it catches up, `closed` when it ended. */
  status: LiveStatus;
  /** The failure that closed it, or one it recovers from by itself; undefined when there is none. */
  error: TidingsError | undefined;
}

/** Options of useSubscription; E is the type of its events. */
export interface SubscriptionOptions<E = TidingsEvent> {
  /**
   * On a type topic, follows only the resources that match this query (build it with `q`).
   * @default undefined (every event of the topic)
   */
  query?: Query;
  /**
   * How many of the newest events `events` holds.
   * @default 20
   */
  keep?: number;
  /**
   * Called with each event of the subscription, once, in order; the newest function given is called, so an inline
   * one does not subscribe again.
   * @default undefined (none)
   */
  onEvent?: (event: E) => void;
}

/** What useSubscription returns; E is the type of its events. */
export interface SubscriptionState<E = TidingsEvent> {
  /** The newest events, oldest first, at most `keep` of them. */
  events: readonly E[];
  /** The newest event, if any came. */
  last: E | undefined;
  /** `subscribing` until the server answered, `active` while events come, `ended` when it failed or the server ended it. */
  status: 'subscribing' | 'active' | 'ended';
  /** Why it ended, when it did. */
  error: TidingsError | undefined;
}

/** What usePresence returns: who is at the topic, and this component's own member. */
export interface PresenceView {
  /** The members present, by the time they joined, its own among them (`self: true`): the same array until they change. */
  members: readonly PresenceMember[];
  /** The members grouped by user: the users present. */
  users: ReadonlyMap<string, readonly PresenceMember[]>;
  /** This component's own member, once the server holds it; undefined when it is not present (no state given) or until then. */
  self: PresenceMember | undefined;
  /** `loading` until the members first came, then `live`, `resyncing` while the connection is down, `closed` when it ended. */
  status: PresenceStatus;
  /** The failure that closed it, or a join or state the server refused; undefined when there is none. */
  error: TidingsError | undefined;
}

/** A store of useSyncExternalStore: a snapshot, the way to hear of changes, and the way to stop. */
interface Store<T> {
  subscribe(listener: () => void): () => void;
  getSnapshot(): T;
  close(): void;
}

const EMPTY: readonly Resource[] = Object.freeze([]);
const LOADING: LiveState = Object.freeze({ items: EMPTY, status: 'loading', error: undefined });
const SUBSCRIBING: SubscriptionState = Object.freeze({ events: Object.freeze([]), last: undefined, status: 'subscribing', error: undefined });
const ARRIVING: PresenceView = Object.freeze({ members: Object.freeze([]), users: new Map(), self: undefined, status: 'loading', error: undefined });
const noListener = () => () => undefined;

/**
 * Opens a store with `open` in an effect (so that a render never subscribes: React may render and throw the result
 * away) and closes it when the key changes or the component unmounts; undefined until the store of the current key
 * is open.
 */
function useOpened<S extends Store<unknown>>(key: string, open: () => S): S | undefined {
  const client = useClient();
  const [opened, setOpened] = useState<{ key: string; client: Client; store: S } | undefined>(undefined);
  const latest = useRef(open);
  latest.current = open;
  useEffect(() => {
    const store = latest.current();
    setOpened({ key, client, store });
    return () => store.close();
  }, [client, key]);
  return opened !== undefined && opened.key === key && opened.client === client ? opened.store : undefined;
}

/** The snapshot of the store `useOpened` opened, with `fallback` standing in until it is open. */
function useSnapshot<T>(store: Store<T> | undefined, fallback: T): T {
  const subscribe = store?.subscribe ?? noListener;
  return useSyncExternalStore(subscribe, store?.getSnapshot ?? (() => fallback), () => fallback);
}

/** The snapshot of a store opened with `open` while the component is mounted, under `key` (see useOpened). */
function useStore<T>(key: string, open: () => Store<T>, fallback: T): T {
  return useSnapshot(useOpened(key, open), fallback);
}

/**
 * The resources of a type that match the query (every one the user may read, without a query), kept equal to the
 * server's by a live collection (client.live): `{items, status, error}`, rendered again on every change. Components
 * using the same type and query share one server subscription. A query written anew at each render is the same
 * query if it says the same: the collection changes only when the type or the query's meaning does; `options` are
 * read when it opens.
 */
export function useLive(resourceType: string, query?: Query, options?: LiveOptions): LiveState {
  const client = useClient();
  const key = `${resourceType}?${query === undefined ? '' : canonicalQuery(query)}`;
  return useStore(key, () => liveStore(client.live(resourceType, query, options)), LOADING);
}

/** A live collection as a store of one LiveState, a new object only when the items, the status or the error change. */
function liveStore(live: LiveCollection): Store<LiveState> {
  let state: LiveState = { items: live.getSnapshot(), status: live.status, error: live.error };
  const getSnapshot = () => {
    const items = live.getSnapshot();
    if (items !== state.items || live.status !== state.status || live.error !== state.error) {
      state = { items, status: live.status, error: live.error };
    }
    return state;
  };
  return {
    subscribe: live.subscribe,
    getSnapshot,
    close: () => void live.close().catch(() => undefined),
  };
}

/**
 * Subscribes to a topic (`order`, `order:ORD-1`; the user's notifications come through the client's
 * on('notification') instead) while the component is mounted: `{events, last, status, error}`, rendered again on every event. Components that
 * subscribe to the same topic and query share one server subscription, each with a handle of its own: one unmounting
 * lets go of its handle only, and the others keep hearing every event.
 */
export function useSubscription(topic: string, options: SubscriptionOptions = {}): SubscriptionState {
  const client = useClient();
  const { query, keep = 20 } = options;
  const onEvent = useRef(options.onEvent);
  onEvent.current = options.onEvent;
  const key = `${topic}?${query === undefined ? '' : canonicalQuery(query)}#${keep}`;
  return useStore(key, () => subscriptionStore(client, topic, query, keep, (event) => onEvent.current?.(event)), SUBSCRIBING);
}

/** A subscription handle as a store of one SubscriptionState, a new object at each change. */
function subscriptionStore(client: Client, topic: string, query: Query | undefined, keep: number, onEvent: (event: TidingsEvent) => void): Store<SubscriptionState> {
  let state = SUBSCRIBING;
  let closed = false;
  let release: () => void = () => undefined;
  const listeners = new Set<() => void>();
  const set = (next: Partial<SubscriptionState>) => {
    state = { ...state, ...next };
    for (const listener of [...listeners]) listener();
  };
  client.subscribe(topic, query === undefined ? {} : { query }).then(
    (handle) => {
      // Unmounted before the server answered: the handle is let go at once.
      if (closed) return void handle.unsubscribe().catch(() => undefined);
      release = () => void handle.unsubscribe().catch(() => undefined);
      handle.on('event', (event) => {
        set({ events: [...state.events, event].slice(-keep), last: event });
        onEvent(event);
      });
      handle.on('left', (info) => set({ status: 'ended', error: info.reason }));
      set({ status: 'active' });
    },
    (error: TidingsError) => {
      if (!closed) set({ status: 'ended', error });
    },
  );
  return {
    subscribe(listener) {
      listeners.add(listener);
      return () => {
        listeners.delete(listener);
      };
    },
    getSnapshot: () => state,
    close() {
      closed = true;
      listeners.clear();
      release();
    },
  };
}

/**
 * Who is at a topic (a type such as `order`, or a resource such as `order:ORD-1`) while the component is mounted:
 * `{members, users, self, status, error}` of the SDK's presence handle (client.presence), rendered again on every
 * change. With a `state`, the component is present there with it: it joins when mounted, the server's member takes a
 * new state when `state` says something else (an object written anew at each render with the same content changes
 * nothing), it leaves when `state` becomes undefined, and when it unmounts. A refused join or state shows in `error`.
 * `options` are read when the handle opens, that is when the topic changes. Needs a server of protocol 1.2 or later.
 */
export function usePresence(topic: string, state?: PresenceState, options?: PresenceOptions): PresenceView {
  const client = useClient();
  const store = useOpened(topic, () => presenceStore(client.presence(topic, options)));
  const wanted = useRef(state);
  wanted.current = state;
  const said = state === undefined ? undefined : stable(state);
  useEffect(() => {
    if (store === undefined) return;
    const next = wanted.current;
    // A failure shows in the handle's error, which the view carries.
    if (next === undefined) void store.presence.leave().catch(() => undefined);
    else void store.presence.join(next).catch(() => undefined);
  }, [store, said]);
  return useSnapshot(store, ARRIVING);
}

/** A presence handle as a store of one PresenceView, a new object only when something of it changed. */
function presenceStore(presence: Presence): Store<PresenceView> & { presence: Presence } {
  let view: PresenceView = ARRIVING;
  const getSnapshot = () => {
    const { members, users, self, status, error } = presence;
    if (members !== view.members || users !== view.users || self?.id !== view.self?.id || self?.version !== view.self?.version || status !== view.status || error !== view.error) {
      view = { members, users, self, status, error };
    }
    return view;
  };
  return {
    presence,
    subscribe: presence.subscribe,
    getSnapshot,
    close: () => void presence.close().catch(() => undefined),
  };
}

/**
 * The hooks typed per resource type, for the map T that `tidings types` writes: `useLive('order')` holds `Order`
 * resources, `useSubscription('order:ORD-1')` hears order events, and `useClient()` is the typed client. They are
 * the hooks above, with their types: the provider's client must be one made with createClient<T>().
 */
export interface TypedHooks<T extends TypeMap<T>> {
  /** The provider's client, typed. */
  useClient(): Client<T>;
  /** useLive, whose items are resources of type K. */
  useLive<K extends TypeName<T>>(resourceType: K, query?: Query, options?: LiveOptions<ResourceOf<T, K>>): LiveState<ResourceOf<T, K>>;
  /** useSubscription, whose events are those of the topic's type. */
  useSubscription<P extends TopicOf<T>>(topic: P, options?: SubscriptionOptions<EventOfTopic<T, P>>): SubscriptionState<EventOfTopic<T, P>>;
  /** usePresence, on a topic of one of the types. */
  usePresence(topic: TypeName<T> | `${TypeName<T>}:${string}`, state?: PresenceState, options?: PresenceOptions): PresenceView;
}

/**
 * The hooks, typed for the map of resource types T: `export const { useLive, useSubscription, useClient } =
 * createHooks<Types>();` once in the app, then used as the untyped hooks are. Types only: it returns the same hooks.
 */
export function createHooks<T extends TypeMap<T> = Untyped>(): TypedHooks<T> {
  const hooks = { useClient, useLive, useSubscription, usePresence };
  return hooks as unknown as TypedHooks<T>;
}

/** A JSON value as text whose objects have their keys in order: the same state written two ways is one state. */
function stable(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(stable).join(',')}]`;
  if (typeof value === 'object' && value !== null) {
    const entries = Object.entries(value).filter(([, v]) => v !== undefined);
    entries.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${stable(v)}`).join(',')}}`;
  }
  return JSON.stringify(value) ?? 'null';
}
