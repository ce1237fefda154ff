// Typed resources: the types that createClient<Types>() gives its client, computed from the map of resource types
// that `tidings types` writes; without that map every one of them is the untyped shape the client always had.
import type { Actor, Query, Resource, ResourceList, Scalar } from './common.js';
import type { BatchOperation, BatchResults, DeleteResult, TidingsEvent } from './options.js';
import type { PendingWrite } from './outbox.js';

/** What `tidings types` writes for each resource type: its data as the server delivers it, and as a create takes it. */
export interface TypeSpec {
  /** The data as the server sends it (`Order`): a field with a schema default is always there. */
  data: object;
  /** The data a create takes (`OrderCreate`): a field with a default may be left out. */
  create: object;
  /**
   * True for a type the server declares ephemeral (protocol 1.2, 8.8): its events carry no `seq`. `tidings types`
   * writes it for such a type.
   * @default undefined (a stored type: its events carry `seq`)
   */
  ephemeral?: boolean;
}

/**
 * A map of resource types by name, each a TypeSpec: the `Types` that `tidings types` writes, and the type argument
 * of createClient. Written as a mapped type of its own argument, so that an interface satisfies it.
 */
export type TypeMap<T> = { [K in keyof T]: TypeSpec };

/**
 * The type map of a client made without one, createClient(options): any type name, data of any shape, and every
 * method, event and handle typed as before typed resources came.
 */
export interface Untyped {
  [resourceType: string]: { data: Record<string, unknown>; create: Record<string, unknown>; untyped: true };
}

/** The names of the resource types of a map. */
export type TypeName<T> = keyof T & string;

/** The data of type K as the server delivers it. */
export type DataOf<T, K extends TypeName<T>> = T[K] extends { data: infer D } ? D : never;

/** The data a create of type K takes. */
export type CreateOf<T, K extends TypeName<T>> = T[K] extends { create: infer C } ? C : never;

/**
 * A JSON merge patch of data D (RFC 7396, what `update` sends): any of its fields, nested objects in part, and
 * `null` for a field that may be absent, which removes it.
 */
export type MergePatch<D> = { [F in keyof D]?: PatchValue<D[F]> | (undefined extends D[F] ? null : never) };
type PatchValue<V> = V extends readonly unknown[] ? V : V extends object ? MergePatch<V> : V;

/** The patch an update of type K takes. */
export type PatchOf<T, K extends TypeName<T>> = T extends Untyped ? Record<string, unknown> : MergePatch<DataOf<T, K>>;

/** A resource of type K with data D, as every reply holds it (docs/protocol.md, 7.1). */
export interface TypedResource<K extends string, D> {
  resourceType: K;
  id: string;
  version: number;
  ownerId: string;
  createdAt: number;
  updatedAt: number;
  data: D;
}

/** A resource of one of the types K (all by default): a union that `resourceType` tells apart. */
export type ResourceOf<T, K extends TypeName<T> = TypeName<T>> = T extends Untyped
  ? Resource
  : { [N in K]: TypedResource<N, DataOf<T, N>> }[K];

/** What `delete` of type K resolves with. */
export type DeleteResultOf<T, K extends TypeName<T>> = T extends Untyped ? DeleteResult : DeleteResult & { resourceType: K };

/** The fields of an event of type K that a Tidings server sends on every event (docs/protocol.md, 6.11). */
export interface TypedEventBase<K extends string, D> {
  topic: string;
  subscriptionId: string;
  resourceType: K;
  id: string;
  version: number;
  ownerId: string;
  actor: Actor;
  occurredAt: number;
  /** On an event of an update: the top-level data fields it changed, by name (absent for updates logged before 1.1). */
  changed?: Array<keyof D & string> | null;
  /** On `_updated` events of a type that keeps it (`previous_data`, protocol 1.2): the data before the change. */
  previousData?: D | null;
}

/**
 * An event of type K with data D, as a subscription delivers it: `_created`, `_updated`, `_deleted` and a query's
 * `_entered` carry the whole data; a `_left` carries its `reason`, and no data at all when the resource was hidden
 * from the subscriber (`reason: 'hidden'`), hence its data in part. `seq` is there unless the type is ephemeral.
 */
export type TypedEvent<K extends string, D, Ephemeral extends boolean = false> = TypedEventBase<K, D> &
  (Ephemeral extends true ? { seq?: undefined } : { seq: number }) &
  (
    | { eventType: `${K}_created` | `${K}_updated` | `${K}_deleted` | `${K}_entered`; data: D; reason?: undefined }
    | { eventType: `${K}_left`; data: Partial<D>; reason: string }
  );

/** What a presence member's data holds (docs/protocol.md, 8.7): the topic it is present at, and its state. */
export interface PresenceData {
  topic: string;
  state: Record<string, unknown>;
}

/** An event of a presence topic (protocol 1.2): a member joined, changed its state or left. It has no `seq`. */
export type PresenceEvent = TypedEventBase<'presence', PresenceData> & {
  eventType: 'presence_created' | 'presence_updated' | 'presence_deleted';
  data: PresenceData;
  seq?: undefined;
  reason?: undefined;
};

/** Whether the TypeSpec of type K says it is ephemeral. */
type EphemeralOf<T, K extends TypeName<T>> = T[K] extends { ephemeral: true } ? true : false;

/** An event of one of the types K (all by default): a union that `resourceType` tells apart, then `eventType`. */
export type EventOf<T, K extends TypeName<T> = TypeName<T>> = T extends Untyped
  ? TidingsEvent
  : { [N in K]: TypedEvent<N, DataOf<T, N>, EphemeralOf<T, N>> }[K];

/** What the client's on('event') hears: an event of any of the types, or of presence (client.presence follows it). */
export type ClientEventOf<T> = T extends Untyped ? TidingsEvent : EventOf<T> | PresenceEvent;

/** The topics of a map's types: a type, one resource of it, the user's notifications, or the presence of either. */
export type TopicOf<T> = T extends Untyped
  ? string
  : TypeName<T> | `${TypeName<T>}:${string}` | 'notifications' | `presence:${TypeName<T>}` | `presence:${TypeName<T>}:${string}`;

/** The type name a topic is about: `order` for `order` and `order:ORD-1`. */
type TopicType<P extends string> = P extends `${infer K}:${string}` ? K : P;

/** The events a subscription to topic P delivers. */
export type EventOfTopic<T, P extends string> = T extends Untyped
  ? TidingsEvent
  : P extends `presence:${string}`
    ? PresenceEvent
    : TopicType<P> extends TypeName<T>
      ? EventOf<T, TopicType<P>>
      : EventOf<T>;

/** The resources a subscription to topic P holds in its snapshot (`items`): a presence topic's are its members. */
export type ResourceOfTopic<T, P extends string> = T extends Untyped
  ? Resource
  : P extends `presence:${string}`
    ? TypedResource<'presence', PresenceData>
    : TopicType<P> extends TypeName<T>
      ? ResourceOf<T, TopicType<P>>
      : ResourceOf<T>;

/** The list query of `list` for a type whose data is D: ListQuery, with the type's data fields named. */
export interface TypedListQuery<D> {
  /**
   * Lists only the resources whose top-level data fields equal these values.
   * @default undefined (no filter)
   */
  filter?: { [F in keyof D & string]?: Scalar };
  /**
   * Lists only the resources that match this query (build it with `q`). Needs a server of protocol 1.1 or later.
   * @default undefined (no query)
   */
  query?: Query;
  /**
   * The order: `createdAt`, `updatedAt`, `id` or a top-level data field, `-` before it for descending; or, with a
   * server of protocol 1.1 or later, up to four such keys.
   * @default undefined (the server orders by createdAt)
   */
  orderBy?: OrderKey<D> | [OrderKey<D>] | [OrderKey<D>, OrderKey<D>] | [OrderKey<D>, OrderKey<D>, OrderKey<D>] | [OrderKey<D>, OrderKey<D>, OrderKey<D>, OrderKey<D>];
  /**
   * The page size, 1 to 100.
   * @default undefined (the server sends 20)
   */
  limit?: number;
  /**
   * The `nextCursor` of the previous page.
   * @default undefined (the first page)
   */
  cursor?: string;
  /**
   * Only these top-level data fields in each item (protocol 1.1): the items' data is typed with them only.
   * @default undefined (every field)
   */
  fields?: readonly [keyof D & string, ...Array<keyof D & string>];
  /**
   * With `true`, the page's `total` counts every resource of the list, all pages (protocol 1.1).
   * @default undefined (no total)
   */
  count?: boolean;
}

/** An order key of data D. */
type OrderKey<D> = `${'' | '-'}${'createdAt' | 'updatedAt' | 'id' | (keyof D & string)}`;

/** The list query `list` of type K takes. */
export type ListQueryOf<T, K extends TypeName<T>> = TypedListQuery<DataOf<T, K>>;

/** A page of a list of type K read with query Q: with `fields`, each item's data holds those fields only. */
export type ListOf<T, K extends TypeName<T>, Q> = T extends Untyped
  ? ResourceList
  : {
      resourceType: K;
      items: Array<TypedResource<K, Q extends { fields: readonly (infer F)[] } ? Pick<DataOf<T, K>, F & keyof DataOf<T, K>> : DataOf<T, K>>>;
      nextCursor?: string | null;
      total?: number | null;
    };

/** One operation of `batch` on a map's types: a create, an update or a delete of one of them, with `op` naming which. */
export type BatchOperationOf<T> = T extends Untyped
  ? BatchOperation
  : {
      [K in TypeName<T>]:
        | { op: 'create'; resourceType: K; data: CreateOf<T, K> }
        | { op: 'update'; resourceType: K; id: string; patch: MergePatch<DataOf<T, K>>; expectedVersion?: number }
        | { op: 'delete'; resourceType: K; id: string; expectedVersion?: number };
    }[TypeName<T>];

/** The results of `batch(operations)`, one per operation and in order, each typed by its operation's kind and type. */
export type BatchResultsOf<T, O extends readonly unknown[]> = T extends Untyped
  ? BatchResults<O>
  : { -readonly [I in keyof O]: BatchResultOf<T, O[I]> };

/** The result of one batch operation O. */
type BatchResultOf<T, O> = O extends { op: 'delete'; resourceType: infer K extends TypeName<T> }
  ? DeleteResultOf<T, K> & { op: 'delete' }
  : O extends { op: infer Op extends 'create' | 'update'; resourceType: infer K extends TypeName<T> }
    ? ResourceOf<T, K> & { op: Op }
    : never;

/**
 * A write of the outbox on a map's types: a PendingWrite whose `resourceType` is one of them, and whose `data` is
 * that type's create input for a create, and a merge patch of its data for an update (a delete has none).
 */
export type PendingWriteOf<T> = T extends Untyped
  ? PendingWrite
  : {
      [K in TypeName<T>]: Omit<PendingWrite, 'kind' | 'resourceType' | 'data'> & { readonly resourceType: K } & (
          | { readonly kind: 'create'; readonly data: CreateOf<T, K> }
          | { readonly kind: 'update'; readonly data: MergePatch<DataOf<T, K>> }
          | { readonly kind: 'delete'; readonly data?: undefined }
        );
    }[TypeName<T>];
