// matches(query, resource), by which pending writes are placed in live collections, against the rules of
// docs/protocol.md, 7.7, and against a real `tidings serve` deciding the same queries over the same orders.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { matches, q } from '../dist/index.js';
import { client, startServer, tempDir, token } from './helpers.mjs';

const resource = (data, own = {}) => ({
  resourceType: 'order', id: 'ORD-1', version: 2, ownerId: 'alice', createdAt: 1000, updatedAt: 2000, data, ...own,
});

test('the operators, the types and null as docs/protocol.md, 7.7 has them', () => {
  const r = resource({ productId: 'P-10', quantity: 3, tags: ['a', 'b'], nested: { city: 'Oslo' }, none: null });
  const yes = [
    q.eq('data.quantity', 3), q.eq('data.quantity', 3.0), q.eq('data.missing', null), q.eq('data.none', null),
    q.ne('data.quantity', 4), q.ne('data.quantity', '3'), q.ne('data.productId', null),
    q.lt('data.quantity', 4), q.lte('data.quantity', 3), q.gt('data.productId', 'P-1'), q.gte('version', 2),
    q.in('data.productId', ['P-9', 'P-10']), q.nin('data.quantity', [1, 2]), q.nin('data.missing', [1]),
    q.exists('data.productId'), q.exists('data.none', false), q.exists('data.missing', false),
    q.prefix('data.productId', 'P-'), q.contains('data.productId', '-1'), q.contains('data.tags', 'b'),
    q.eq('data.nested.city', 'Oslo'), q.eq('ownerId', 'alice'), q.eq('id', 'ORD-1'), q.lt('createdAt', 1001),
    q.and(q.eq('data.quantity', 3), q.not(q.eq('data.productId', 'x'))), q.or(q.eq('data.quantity', 9), q.exists('data.tags')),
    q.not(q.lt('data.productId', 5)),
  ];
  const no = [
    q.eq('data.quantity', '3'), q.eq('data.quantity', null), q.ne('data.missing', null), q.lt('data.productId', 5),
    q.gt('data.missing', 0), q.in('data.quantity', ['3']), q.exists('data.none'), q.prefix('data.quantity', '3'),
    q.contains('data.tags', 'c'), q.contains('data.quantity', 3), q.eq('data.nested.city.name', 'Oslo'),
    q.and(q.eq('data.quantity', 3), q.eq('data.productId', 'x')), q.or(q.eq('data.quantity', 9), q.exists('data.none')),
  ];
  for (const query of yes) assert.equal(matches(query, r), true, JSON.stringify(query));
  for (const query of no) assert.equal(matches(query, r), false, JSON.stringify(query));
  // Strings by code point: U+1F600 is above U+FFFD, though its first UTF-16 unit is below.
  assert.equal(matches(q.gt('data.productId', '\uFFFD'), resource({ productId: '\u{1F600}' })), true);
  assert.equal(matches(q.lt('data.productId', '\uFFFD'), resource({ productId: '\u{1F600}' })), false);
});

let server;
let data;
let alice;

before(async () => {
  data = tempDir();
  server = await startServer(data.dir);
  alice = client(server.url, token(data.dir, 'alice'));
  await alice.connect();
});

after(async () => {
  alice?.close();
  await server?.kill('SIGTERM');
  data?.cleanup();
});

test('the server and matches() agree on which orders each query holds', async () => {
  const products = ['A', 'AB', 'B', 'b', 'Z-1', 'é', '\uFFFD', '\u{1F600}', 'A\u{1F600}'];
  const made = [];
  for (const [i, productId] of products.entries()) {
    made.push(await alice.create('order', { productId, quantity: i + 1, totalAmount: i * 2.5 }));
  }
  const ids = new Set(made.map((r) => r.id));
  const queries = [
    q.gt('data.productId', 'B'), q.lt('data.productId', '\uFFFD'), q.gte('data.productId', '\uFFFD'), q.prefix('data.productId', 'A'),
    q.contains('data.productId', '\u{1F600}'), q.in('data.quantity', [1, 3, 5]), q.nin('data.productId', ['A', 'b']),
    q.lte('data.totalAmount', 7.5), q.ne('data.quantity', 2), q.eq('data.status', 'pending'), q.exists('data.status', false),
    q.or(q.lt('data.quantity', 2), q.gt('data.quantity', 8)), q.not(q.and(q.gte('data.quantity', 3), q.lte('data.quantity', 6))),
    q.gt('version', 1), q.eq('ownerId', 'alice'), q.gte('id', made[4].id), q.lt('createdAt', made[3].createdAt + 1),
  ];
  for (const query of queries) {
    const page = await alice.list('order', { query, limit: 100 });
    const server = page.items.filter((r) => ids.has(r.id)).map((r) => r.id).sort();
    const local = made.filter((r) => matches(query, r)).map((r) => r.id).sort();
    assert.deepEqual(local, server, JSON.stringify(query));
  }
});
