// Query builders: the JSON queries of protocol 1.1 (docs/protocol.md, 7.7) for `list` and `subscribe`, and their
// canonical form, which names a query subscription on the client.
import type { And, ElementValue, Not, OrderedValue, Or, Query, ScalarValue, Term, ValueList } from './common.js';

/**
 * A field a query term may name: one of the resource's own fields, or `data.` and a path into its data (1 to 8
 * field names joined by `.`, such as `data.customer.city`). The server checks a data path against the type's schema.
 */
export type QueryField = 'id' | 'ownerId' | 'version' | 'createdAt' | 'updatedAt' | `data.${string}`;

/**
 * Builders of queries, each returning the protocol's JSON, so that a query is written without string escaping and
 * checked by the compiler:
 *
 * ```ts
 * q.and(q.eq('data.status', 'pending'), q.or(q.gte('data.totalAmount', 100), q.in('data.customer.city', ['Oslo', 'Bergen'])))
 * // { and: [ { field: 'data.status', eq: 'pending' }, { or: [ { field: 'data.totalAmount', gte: 100 },
 * //          { field: 'data.customer.city', in: ['Oslo', 'Bergen'] } ] } ] }
 * ```
 *
 * What each operator means is in docs/protocol.md, 7.7: a value of another JSON type than the operand matches no
 * comparison, strings compare by code point, and the server answers INVALID_PARAMS, at the term's pointer, for a
 * field the type does not declare or an operand of another type than the field's.
 */
export const q = {
  /** The field equals the value; `null`: the field is absent or null. */
  eq: (field: QueryField, value: ScalarValue): Term => ({ field, eq: value }),
  /** The field does not equal the value; `null`: the field is present and not null. */
  ne: (field: QueryField, value: ScalarValue): Term => ({ field, ne: value }),
  /** The field is less than the value (a string or a number). */
  lt: (field: QueryField, value: OrderedValue): Term => ({ field, lt: value }),
  /** The field is less than or equal to the value. */
  lte: (field: QueryField, value: OrderedValue): Term => ({ field, lte: value }),
  /** The field is greater than the value. */
  gt: (field: QueryField, value: OrderedValue): Term => ({ field, gt: value }),
  /** The field is greater than or equal to the value. */
  gte: (field: QueryField, value: OrderedValue): Term => ({ field, gte: value }),
  /** The field equals one of the values: 1 to 100 strings, numbers or booleans, all of one type. */
  in: (field: QueryField, values: readonly ElementValue[]): Term => ({ field, in: [...values] as ValueList }),
  /** The field equals none of the values: 1 to 100, as for `in`. */
  nin: (field: QueryField, values: readonly ElementValue[]): Term => ({ field, nin: [...values] as ValueList }),
  /** `true`: the field is present and not null; `false`: it is absent or null. */
  exists: (field: QueryField, present = true): Term => ({ field, exists: present }),
  /** The field is a string that starts with the text (case-sensitive, at most 1024 characters). */
  prefix: (field: QueryField, text: string): Term => ({ field, prefix: text }),
  /** The field is a string that contains the value, or an array with an element equal to it. */
  contains: (field: QueryField, value: ElementValue): Term => ({ field, contains: value }),
  /** Every query holds (1 to 32). */
  and: (...queries: [Query, ...Query[]]): And => ({ and: queries }),
  /** At least one query holds (1 to 32). */
  or: (...queries: [Query, ...Query[]]): Or => ({ or: queries }),
  /** The query does not hold. */
  not: (query: Query): Not => ({ not: query }),
} as const;

/**
 * A query as one string that does not depend on the order of its keys or of the terms of an `and` or `or`, as the
 * server's subscription id does not: the same query written two ways is one subscription to the client as well.
 */
export function canonicalQuery(query: Query): string {
  return canonical(query, false);
}

function canonical(value: unknown, commutative: boolean): string {
  if (Array.isArray(value)) {
    const items = value.map((item) => canonical(item, false));
    if (commutative) items.sort();
    return `[${items.join(',')}]`;
  }
  if (typeof value === 'object' && value !== null) {
    const entries = Object.entries(value as Record<string, unknown>)
      .filter(([, v]) => v !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonical(v, k === 'and' || k === 'or')}`).join(',')}}`;
  }
  return JSON.stringify(value) ?? 'null';
}
