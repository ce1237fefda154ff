// Query builders: the JSON queries of protocol 1.1 (docs/protocol.md, 7.7) for `list` and `subscribe`, their
// canonical form, which names a query subscription on the client, and their meaning, decided on the client.
import type { And, ElementValue, Not, OrderedValue, Or, Query, Resource, ScalarValue, Term, ValueList } from './common.js';

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

/**
 * Whether a resource matches a query, by the rules of docs/protocol.md, 7.7, as the server decides it: for what the
 * client must place itself, such as a write the server has not confirmed, in a view of that query.
 */
export function matches(query: Query, resource: Resource): boolean {
  if ('and' in query) return query.and.every((part) => matches(part, resource));
  if ('or' in query) return query.or.some((part) => matches(part, resource));
  if ('not' in query) return !matches(query.not, resource);
  return holds(query, valueAt(resource, query.field));
}

/** The value a field path names in a resource: one of its own fields, or a path into its data; undefined if absent. */
function valueAt(resource: Resource, field: string): unknown {
  if (!field.startsWith('data.')) return (resource as unknown as Record<string, unknown>)[field];
  let value: unknown = resource.data;
  for (const name of field.slice('data.'.length).split('.')) {
    if (typeof value !== 'object' || value === null || Array.isArray(value)) return undefined;
    value = (value as Record<string, unknown>)[name];
  }
  return value;
}

/** Whether a term's one operator holds for the value. */
function holds(term: Term, value: unknown): boolean {
  const present = value !== undefined && value !== null;
  if ('eq' in term) return term.eq === null || term.eq === undefined ? !present : same(value, term.eq);
  if ('ne' in term) return term.ne === null || term.ne === undefined ? present : !same(value, term.ne);
  if (typeof term.lt === 'string' || typeof term.lt === 'number') return ordered(value, term.lt, (c) => c < 0);
  if (typeof term.lte === 'string' || typeof term.lte === 'number') return ordered(value, term.lte, (c) => c <= 0);
  if (typeof term.gt === 'string' || typeof term.gt === 'number') return ordered(value, term.gt, (c) => c > 0);
  if (typeof term.gte === 'string' || typeof term.gte === 'number') return ordered(value, term.gte, (c) => c >= 0);
  if (Array.isArray(term.in)) return term.in.some((operand) => same(value, operand));
  if (Array.isArray(term.nin)) return !term.nin.some((operand) => same(value, operand));
  if (typeof term.exists === 'boolean') return present === term.exists;
  if (typeof term.prefix === 'string') return typeof value === 'string' && value.startsWith(term.prefix);
  if (term.contains !== undefined && term.contains !== null) {
    const operand = term.contains;
    if (typeof value === 'string') return typeof operand === 'string' && value.includes(operand);
    return Array.isArray(value) && value.some((element) => same(element, operand));
  }
  return false;
}

/** Equality of JSON scalars: a value of another type than the operand is never equal (7.7, Types). */
function same(value: unknown, operand: unknown): boolean {
  return typeof value === typeof operand && value === operand;
}

/** An ordering comparison: true when the value and the operand are of one type and `test` holds of their order. */
function ordered(value: unknown, operand: string | number, test: (order: number) => boolean): boolean {
  if (typeof value === 'number' && typeof operand === 'number') return test(value - operand);
  if (typeof value === 'string' && typeof operand === 'string') return test(byCodePoint(value, operand));
  return false;
}

/**
 * Strings by Unicode code point, as the server orders them: JavaScript's own comparison goes by UTF-16 unit, which
 * puts a character beyond U+FFFF before U+E000 to U+FFFF.
 */
function byCodePoint(a: string, b: string): number {
  const left = a[Symbol.iterator]();
  const right = b[Symbol.iterator]();
  for (;;) {
    const x = left.next();
    const y = right.next();
    if (x.done || y.done) return x.done && y.done ? 0 : x.done ? -1 : 1;
    const difference = (x.value.codePointAt(0) as number) - (y.value.codePointAt(0) as number);
    if (difference !== 0) return difference;
  }
}
