// Presence on the orders board, with two users in two browser contexts: each sees who else is on the page, as they
// come and go (signing out, and closing the page abruptly), and sees "… is editing" on an order while the other has
// its edit form open.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { base, launch, openPage, row, saved, screenshot, signIn, startServer, tempDir } from './helpers.mjs';

let browser;
before(async () => {
  browser = await launch();
});
after(() => browser?.close());

/**
 * A server on a fresh data dir for one test; `stop` kills it and removes the dir. It pings every second and drops a
 * connection silent for three, so that a page closed without a word is gone within seconds whatever chromium does
 * with its socket.
 */
async function serve() {
  const { dir, cleanup } = tempDir();
  const settings = { TIDINGS_HEARTBEAT__PING_INTERVAL_MS: '1000', TIDINGS_HEARTBEAT__IDLE_TIMEOUT_MS: '3000' };
  const server = await startServer(dir, 0, 20000, settings);
  return { ...server, base: base(server), stop: async () => (await server.kill(), cleanup()) };
}

/** The avatar of `user` in the page's list of who else is here. */
const present = (page, user) => page.locator(`#present li.person[data-user="${user}"]`);

/** The note on an order's row that says who else edits it. */
const editors = (page, id) => page.locator(`#orders li.order[data-id="${id}"] .editors`);

test('two users see each other arrive and leave, by signing out and by closing the page', async () => {
  const server = await serve();
  try {
    const alice = await openPage(browser, server.base);
    await signIn(alice, 'alice');
    const bob = await openPage(browser, server.base);
    await signIn(bob, 'bob');
    await present(alice, 'bob').waitFor();
    await present(bob, 'alice').waitFor();
    // Only the others are listed, each with a name and an avatar of initials.
    assert.deepEqual(await alice.locator('#present li.person').evaluateAll((items) => items.map((i) => i.dataset.user)), ['bob']);
    assert.equal(await present(alice, 'bob').innerText(), 'BO\nbob');
    await screenshot(alice, 'presence-two-users');

    // Signing out leaves the board's presence.
    await bob.getByRole('button', { name: 'Sign out' }).click();
    await present(alice, 'bob').waitFor({ state: 'detached' });
    assert.equal(await alice.locator('#present').isHidden(), true, 'nobody else is here');

    // Back, then gone without a word: the server ends the member with its connection.
    await signIn(bob, 'bob');
    await present(alice, 'bob').waitFor();
    assert.deepEqual(bob.errors, []);
    await bob.context().close();
    await present(alice, 'bob').waitFor({ state: 'detached' });
    assert.deepEqual(alice.errors, []);
  } finally {
    await server.stop();
  }
});

test('one user sees "… is editing" on an order while the other has its edit form open', async () => {
  const server = await serve();
  try {
    const olga = await openPage(browser, server.base);
    await signIn(olga, 'olga', { admin: true });
    const bob = await openPage(browser, server.base);
    await signIn(bob, 'bob');
    await bob.getByLabel('Product').fill('P-EDIT');
    await bob.getByRole('button', { name: 'Create order' }).click();
    await saved(bob, 'P-EDIT').waitFor();
    const id = await row(bob, 'P-EDIT').getAttribute('data-id');
    await row(olga, 'P-EDIT').waitFor();
    assert.equal(await editors(olga, id).isHidden(), true, 'nobody edits it yet');

    // Bob opens the order's edit form: olga's row says so, and bob's own row says nothing of himself.
    await bob.getByRole('button', { name: `Edit ${id}` }).click();
    await editors(olga, id).and(olga.locator('[data-editors="bob"]')).waitFor();
    assert.equal(await editors(olga, id).innerText(), 'bob is editing');
    assert.equal(await editors(bob, id).isHidden(), true);
    await screenshot(olga, 'presence-bob-is-editing');
    await screenshot(bob, 'presence-edit-form');

    // Bob saves: the change shows on olga's row, and he is no longer editing.
    await bob.getByLabel(`Quantity of ${id}`).fill('3');
    await bob.getByRole('button', { name: 'Save' }).click();
    await row(olga, 'P-EDIT').and(olga.locator('[data-version="2"]')).waitFor();
    assert.match(await row(olga, 'P-EDIT').locator('.product').innerText(), /× 3$/);
    await editors(olga, id).and(olga.locator('[data-editors=""]')).waitFor({ state: 'attached' });
    assert.equal(await editors(olga, id).isHidden(), true);
    assert.equal(await bob.locator('form.edit-form').count(), 0, 'bob’s form closed');

    // Olga opens it in turn, and closes her page with the form open: bob sees her edit, then go.
    await olga.getByRole('button', { name: `Edit ${id}` }).click();
    await editors(bob, id).and(bob.locator('[data-editors="olga"]')).waitFor();
    assert.equal(await editors(bob, id).innerText(), 'olga is editing');
    assert.deepEqual(olga.errors, []);
    await olga.context().close();
    await editors(bob, id).and(bob.locator('[data-editors=""]')).waitFor({ state: 'attached' });
    assert.deepEqual(bob.errors, []);
  } finally {
    await server.stop();
  }
});
