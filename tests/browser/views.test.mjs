// The board's views in a real browser: each a query subscription with a snapshot, orders leaving and entering a
// view live as others change them, and the views a user is offered.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { api, base, devToken, launch, messages, openPage, openView, row, screenshot, signIn, startServer, tempDir } from './helpers.mjs';

let browser;
before(async () => {
  browser = await launch();
});
after(() => browser?.close());

/** A server on a fresh data dir for one test; `stop` kills it and removes the dir. */
async function serve() {
  const { dir, cleanup } = tempDir();
  const server = await startServer(dir);
  return { ...server, base: base(server), stop: async () => (await server.kill(), cleanup()) };
}

/** The product ids of the orders listed, top to bottom. */
function products(page) {
  return page.locator('#orders li.order .product').evaluateAll((nodes) => nodes.map((n) => n.textContent.split(' ×')[0]));
}

/** The newest message of a type the page sent or received about the orders (not presence), as its JSON envelope. */
async function newest(page, direction, type) {
  return (await messages(page, direction, type))[0];
}

test('an order an admin ships leaves the pending view, and orders that become pending enter it', async () => {
  const server = await serve();
  try {
    const aliceToken = await devToken(server.base, 'alice');
    const order = (productId) => ({ productId, quantity: 1, totalAmount: 10 });
    const ships = await api(server.base, aliceToken, 'POST', '/resources/order', order('P-SHIPS'));
    await api(server.base, aliceToken, 'POST', '/resources/order', order('P-STAYS'));

    const alice = await openPage(browser, server.base);
    await signIn(alice, 'alice');
    const mine = await newest(alice, 'received', 'subscribe');
    await openView(alice, 'Pending');
    assert.equal(await alice.locator('#orders-title').innerText(), 'Pending orders (2)');
    await row(alice, 'P-SHIPS').waitFor();
    await row(alice, 'P-STAYS').waitFor();
    // The switch ended the previous view's subscription and asked for the new one's query with a snapshot.
    assert.equal((await newest(alice, 'sent', 'unsubscribe')).payload.subscriptionId, mine.payload.subscriptionId);
    const asked = (await newest(alice, 'sent', 'subscribe')).payload;
    assert.deepEqual(asked, { topic: 'order', query: { field: 'data.status', eq: 'pending' }, snapshot: true });
    const pending = (await newest(alice, 'received', 'subscribe')).payload;
    assert.deepEqual(pending.items.map((r) => r.data.productId), ['P-SHIPS', 'P-STAYS']);
    assert.equal(await alice.locator('#inspector-list li.sent[data-type="read"]').count(), 0, 'the snapshot, not a list');

    // An admin, on a page of their own, ships one: it leaves alice's pending view, saying why.
    const admin = await openPage(browser, server.base);
    await signIn(admin, 'olga', { admin: true });
    await admin.getByLabel(`Status of ${ships.id}`).selectOption('shipped');
    await row(alice, 'P-SHIPS').waitFor({ state: 'detached' });
    assert.equal(await alice.locator('#orders-title').innerText(), 'Pending orders (1)');
    const left = (await newest(alice, 'received', 'event')).payload;
    assert.deepEqual([left.eventType, left.reason, left.id, left.subscriptionId], ['order_left', 'unmatched', ships.id, pending.subscriptionId]);

    // An order created pending (by alice elsewhere) enters, and so does the shipped one when it is pending again.
    await api(server.base, aliceToken, 'POST', '/resources/order', order('P-NEW'));
    await row(alice, 'P-NEW').waitFor();
    await admin.getByLabel(`Status of ${ships.id}`).selectOption('pending');
    await row(alice, 'P-SHIPS').waitFor();
    const entered = (await newest(alice, 'received', 'event')).payload;
    assert.deepEqual([entered.eventType, entered.id, entered.version], ['order_entered', ships.id, 3]);
    assert.equal(await alice.locator('#orders-title').innerText(), 'Pending orders (3)');
    assert.equal(await row(alice, 'P-SHIPS').getAttribute('data-version'), '3');
    // Newest first; an order that entered sorts by when it entered.
    assert.deepEqual(await products(alice), ['P-SHIPS', 'P-NEW', 'P-STAYS']);
    await screenshot(alice, 'views-pending');

    // The shipped view holds none of them now; back in the pending view, all three are there again.
    await openView(alice, 'Shipped');
    assert.equal(await alice.locator('#orders-title').innerText(), 'Shipped orders (0)');
    assert.equal(await alice.locator('#orders-empty').innerText(), 'No shipped orders.');
    await openView(alice, 'Pending');
    assert.deepEqual(await products(alice), ['P-NEW', 'P-STAYS', 'P-SHIPS'], 'a snapshot, newest created first');
    assert.deepEqual([...alice.errors, ...admin.errors], []);
  } finally {
    await server.stop();
  }
});

test('the all view is offered to an admin only; a user starts with their own orders', async () => {
  const server = await serve();
  try {
    const views = (page) => page.getByRole('group', { name: 'View' }).getByRole('button');
    const bob = await openPage(browser, server.base);
    await signIn(bob, 'bob');
    assert.deepEqual(await views(bob).allInnerTexts(), ['Mine', 'Pending', 'Shipped']);
    assert.equal(await views(bob).filter({ hasText: 'Mine' }).getAttribute('aria-pressed'), 'true');
    assert.equal(await bob.locator('#orders-title').innerText(), 'My orders (0)');
    const asked = (await newest(bob, 'sent', 'subscribe')).payload;
    assert.deepEqual(asked, { topic: 'order', query: { field: 'ownerId', eq: 'bob' }, snapshot: true });
    assert.equal(await bob.locator('#orders[data-view="mine"]').count(), 1);

    const admin = await openPage(browser, server.base);
    await signIn(admin, 'olga', { admin: true });
    assert.deepEqual(await views(admin).allInnerTexts(), ['All', 'Mine', 'Pending', 'Shipped']);
    assert.equal(await views(admin).filter({ hasText: 'All' }).getAttribute('aria-pressed'), 'true');
    assert.deepEqual((await newest(admin, 'sent', 'subscribe')).payload, { topic: 'order', snapshot: true });
    await screenshot(bob, 'views-user');
    assert.deepEqual([...bob.errors, ...admin.errors], []);
  } finally {
    await server.stop();
  }
});
