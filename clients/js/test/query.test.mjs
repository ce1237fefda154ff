// The query builders make the JSON of docs/protocol.md, 7.7, and one query written two ways has one canonical form.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { canonicalQuery, q } from '../dist/index.js';

test('the builders make the protocol example of 7.7', () => {
  const query = q.and(q.eq('data.status', 'pending'), q.or(q.gte('data.totalAmount', 100), q.in('data.customer.city', ['Oslo', 'Bergen'])));
  assert.deepEqual(query, {
    and: [
      { field: 'data.status', eq: 'pending' },
      { or: [{ field: 'data.totalAmount', gte: 100 }, { field: 'data.customer.city', in: ['Oslo', 'Bergen'] }] },
    ],
  });
});

test('every operator is a term with the field and that one operator', () => {
  const cases = [
    [q.eq('ownerId', 'alice'), { field: 'ownerId', eq: 'alice' }],
    [q.eq('data.note', null), { field: 'data.note', eq: null }],
    [q.ne('data.status', 'shipped'), { field: 'data.status', ne: 'shipped' }],
    [q.lt('version', 3), { field: 'version', lt: 3 }],
    [q.lte('createdAt', 1764000000000), { field: 'createdAt', lte: 1764000000000 }],
    [q.gt('updatedAt', 5), { field: 'updatedAt', gt: 5 }],
    [q.gte('data.quantity', 2), { field: 'data.quantity', gte: 2 }],
    [q.in('data.status', ['paid', 'shipped']), { field: 'data.status', in: ['paid', 'shipped'] }],
    [q.nin('id', ['ORD-1']), { field: 'id', nin: ['ORD-1'] }],
    [q.exists('data.note'), { field: 'data.note', exists: true }],
    [q.exists('data.note', false), { field: 'data.note', exists: false }],
    [q.prefix('data.productId', 'P-'), { field: 'data.productId', prefix: 'P-' }],
    [q.contains('data.tags', 'gift'), { field: 'data.tags', contains: 'gift' }],
    [q.not(q.eq('data.status', 'cancelled')), { not: { field: 'data.status', eq: 'cancelled' } }],
    [q.or(q.eq('id', 'A')), { or: [{ field: 'id', eq: 'A' }] }],
  ];
  for (const [built, wire] of cases) assert.deepEqual(built, wire);
  // The list given to `in` is copied, so changing it later does not change the query.
  const values = ['a'];
  const term = q.in('data.status', values);
  values.push('b');
  assert.deepEqual(term.in, ['a']);
});

test('the canonical form ignores the order of keys and of the terms of and/or, not of other lists', () => {
  const one = { and: [{ field: 'data.status', eq: 'pending' }, { field: 'data.quantity', gt: 1 }] };
  const other = { and: [{ gt: 1, field: 'data.quantity' }, { eq: 'pending', field: 'data.status' }] };
  assert.equal(canonicalQuery(one), canonicalQuery(other));
  assert.notEqual(canonicalQuery(q.or(q.eq('id', 'A'))), canonicalQuery(q.and(q.eq('id', 'A'))));
  assert.notEqual(canonicalQuery(q.eq('data.status', 'pending')), canonicalQuery(q.eq('data.status', 'paid')));
  // A nested and/or is canonical too; the values of `in` keep their order, which the server keeps as well.
  assert.equal(canonicalQuery(q.not(q.or(q.eq('id', 'A'), q.eq('id', 'B')))), canonicalQuery(q.not(q.or(q.eq('id', 'B'), q.eq('id', 'A')))));
  assert.notEqual(canonicalQuery(q.in('id', ['A', 'B'])), canonicalQuery(q.in('id', ['B', 'A'])));
});
