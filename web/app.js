// The orders board's entry point: sign-in, one SDK client, the list's views as query subscriptions, and the wiring
// from the client's callbacks to the page.
import { createClient } from './tidings.js';
import { Board, VIEWS, viewsFor } from './board.js';
import { Inspector } from './inspector.js';
import * as signin from './signin.js';

const $ = (id) => document.getElementById(id);

const inspector = new Inspector({
  list: $('inspector-list'),
  type: $('inspector-type'),
  text: $('inspector-text'),
  clear: $('inspector-clear'),
  count: $('inspector-count'),
});

/**
 * The signed-in session: its client, board, the view shown (`view.subscription` once subscribed) and the view
 * switches in turn (`switching`); undefined while signed out.
 */
let current;

// --- The connection indicator -------------------------------------------------------------------------------

/** What the indicator says for an SDK state: connected, connecting, reconnecting or offline. */
function describe(state) {
  if (state === 'connected') return 'connected';
  if (state === 'connecting') return 'connecting';
  if (state === 'reconnecting') return navigator.onLine ? 'reconnecting' : 'offline';
  return 'offline';
}

function showState(state) {
  const shown = describe(state);
  $('connection').dataset.state = shown;
  $('connection-text').textContent = shown;
}
window.addEventListener('online', () => showState(current?.client.state ?? 'closed'));
window.addEventListener('offline', () => showState(current?.client.state ?? 'closed'));

// --- Toasts -----------------------------------------------------------------------------------------------------

/** Shows a notification; it goes after ten seconds or when dismissed. */
function toast({ level = 'info', title, body = '' }) {
  const node = document.createElement('div');
  node.className = `toast ${level}`;
  node.setAttribute('role', level === 'error' ? 'alert' : 'status');
  const heading = document.createElement('strong');
  heading.textContent = title;
  const text = document.createElement('p');
  text.textContent = body;
  const close = document.createElement('button');
  close.type = 'button';
  close.className = 'quiet';
  close.textContent = 'Dismiss';
  close.setAttribute('aria-label', `Dismiss: ${title}`);
  close.addEventListener('click', () => node.remove());
  node.append(heading, text, close);
  $('toasts').append(node);
  setTimeout(() => node.remove(), 10_000);
}

const failure = (error) => ({ level: 'error', title: error.code ?? 'Error', body: error.message ?? String(error) });

// --- Signing in and out -----------------------------------------------------------------------------------------

async function start(signIn) {
  $('sign-in-error').textContent = '';
  const admin = signIn.roles.includes('admin');
  const client = createClient({
    url: `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/ws`,
    getToken: signin.tokenSource(signIn),
    WebSocket: inspector.socketClass(),
    onStateChange: showState,
    // A page waits at most five seconds between attempts, so that a restarted server is seen back soon.
    retry: { maxMs: 5000 },
    clientInfo: { name: 'tidings-orders-board', version: '0.1.0' },
  });
  try {
    await client.connect();
  } catch (error) {
    client.close();
    showState('closed');
    signin.forget();
    $('sign-in-error').textContent = `${error.code ?? 'Error'}: ${error.message}`;
    return;
  }
  signin.remember(signIn);
  const parts = { list: $('orders'), empty: $('orders-empty'), count: $('orders-count'), title: $('orders-title') };
  const board = new Board(
    { ...parts, views: $('views') },
    { user: signIn.user, admin, setStatus, remove, choose: (name) => showView(session, name) },
  );
  const session = { client, board, signIn, view: undefined, wanted: undefined, switching: Promise.resolve() };
  current = session;
  /** Whether a push is about the subscription of the view shown. */
  const shown = (id) => id !== undefined && id === session.view?.subscription?.subscriptionId;
  client.on('event', (event) => {
    if (shown(event.subscriptionId)) board.apply(event);
  });
  client.on('notification', (n) => toast({ level: n.level, title: n.title, body: n.body ?? '' }));
  // A gap means some events could not be replayed after a reconnect: the view's snapshot came with it instead.
  client.on('gap', (gap) => {
    if (shown(gap.subscriptionId)) void fill(session, session.view.name, gap).catch((error) => toast(failure(error)));
  });
  // The server ended the view's subscription: when it lost events (UNAVAILABLE) the view is opened again.
  client.on('unsubscribed', ({ subscriptionId, reason }) => {
    if (!shown(subscriptionId)) return;
    session.view.subscription = undefined;
    if (reason.code === 'UNAVAILABLE') showView(session, session.view.name);
    else toast(failure(reason));
  });
  client.on('error', (error) => toast(failure(error)));
  client.on('state', (state, error) => {
    if (state === 'closed' && error !== undefined) toast(failure(error));
  });
  $('who-name').textContent = signIn.user;
  $('who-role').textContent = admin ? ' (admin)' : '';
  $('who').hidden = false;
  $('sign-in').hidden = true;
  $('board').hidden = false;
  $('order-productId').focus();
  await showView(session, viewsFor(admin)[0]);
}

// --- Views ----------------------------------------------------------------------------------------------------------

/** The most list pages read after a snapshot that says more match: 100 orders each. */
const MAX_PAGES = 10;

/**
 * Shows a view: its subscription replaces the previous view's. Switches run one at a time, and one that a later
 * choice overtook before it began is skipped.
 */
function showView(session, name) {
  session.wanted = name;
  session.board.show(name);
  session.switching = session.switching
    .then(() => switchView(session, name))
    .catch((error) => {
      if (session === current) toast(failure(error));
    });
  return session.switching;
}

async function switchView(session, name) {
  if (session !== current || session.wanted !== name) return;
  const { client } = session;
  const previous = session.view?.subscription;
  session.view = { name, subscription: undefined };
  // NOT_FOUND: the server ended it already.
  if (previous !== undefined) await client.unsubscribe(previous).catch(() => undefined);
  const query = VIEWS[name].query(session.signIn.user);
  // With a snapshot: the reply holds what the view covers as of its seq, and every event of it comes after.
  const subscription = await client.subscribe('order', { ...(query ? { query } : {}), snapshot: true });
  if (session !== current || session.wanted !== name) {
    await client.unsubscribe(subscription).catch(() => undefined);
    return;
  }
  session.view.subscription = subscription;
  await fill(session, name, subscription);
}

/**
 * Shows a view's snapshot (from its subscription or a gap), then reads the pages beyond it, when more match. Those
 * are read later than the snapshot, so the board keeps the newest version of each order.
 */
async function fill(session, name, snapshot) {
  const query = VIEWS[name].query(session.signIn.user);
  const filter = query ? { query } : {};
  // A subscription made with a snapshot always has one; without, the first page is read.
  const first = snapshot.items ? snapshot : await session.client.list('order', { ...filter, limit: 100 });
  session.board.loaded(name, first.items);
  let cursor = first.nextCursor;
  for (let page = 0; cursor && page < MAX_PAGES && session.view?.name === name; page += 1) {
    const list = await session.client.list('order', { ...filter, cursor, limit: 100 });
    if (session.view?.name === name) session.board.merge(list.items);
    cursor = list.nextCursor;
  }
}

function signOut() {
  current?.client.close();
  current?.board.reset([]);
  current = undefined;
  signin.forget();
  showState('closed');
  $('who').hidden = true;
  $('board').hidden = true;
  $('sign-in').hidden = false;
}

// --- Orders -------------------------------------------------------------------------------------------------------

/** A number input's value: a number when it reads as one, else the text, for the server to name what is wrong. */
function numberOrText(value) {
  const trimmed = value.trim();
  if (trimmed === '') return undefined;
  const number = Number(trimmed);
  return Number.isFinite(number) ? number : trimmed;
}

async function createOrder(event) {
  event.preventDefault();
  const form = $('order-form');
  for (const node of form.querySelectorAll('.field-error')) node.textContent = '';
  for (const input of form.querySelectorAll('input')) input.removeAttribute('aria-invalid');
  $('order-error').textContent = '';
  const data = {
    productId: $('order-productId').value.trim() || undefined,
    quantity: numberOrText($('order-quantity').value),
    totalAmount: numberOrText($('order-totalAmount').value),
  };
  try {
    const order = await current.client.create('order', JSON.parse(JSON.stringify(data)));
    // Shown at once if the view keeps it; its event brings it too.
    if (current.board.accepts(order)) current.board.upsert(order, true);
    $('order-productId').value = '';
    $('order-productId').focus();
  } catch (error) {
    showFieldErrors(error);
  }
}

/** Puts each INVALID_PARAMS reason beside its field (`/payload/data/quantity`); the rest goes under the form. */
function showFieldErrors(error) {
  const rest = [];
  for (const { pointer, reason } of error.details?.errors ?? []) {
    const field = /^\/payload\/data\/([^/]+)/.exec(pointer ?? '')?.[1];
    const slot = field && $(`error-${field}`);
    if (slot) {
      slot.textContent = slot.textContent ? `${slot.textContent}; ${reason}` : reason;
      $(`order-${field}`).setAttribute('aria-invalid', 'true');
    } else {
      rest.push(`${pointer}: ${reason}`);
    }
  }
  if (error.code !== 'INVALID_PARAMS' || rest.length > 0) {
    $('order-error').textContent = [`${error.code ?? 'Error'}: ${error.message}`, ...rest].join('\n');
  }
  $('order-form').querySelector('[aria-invalid="true"]')?.focus();
}

async function setStatus(order, status) {
  try {
    const updated = await current.client.update('order', order.id, { status }, { expectedVersion: order.version });
    // Shown at once as the view's subscription will have it: changed, or gone from the view.
    if (current.board.accepts(updated)) current.board.upsert(updated, true);
    else current.board.remove(updated.id, updated.version);
  } catch (error) {
    toast(failure(error));
    // Draw the order again so that the select shows the status the server holds.
    const shown = current.board.order(order.id);
    if (shown) current.board.renderRow(shown, current.board.rows.get(order.id).node);
  }
}

async function remove(order) {
  try {
    await current.client.delete('order', order.id, { expectedVersion: order.version });
    current.board.remove(order.id, order.version + 1);
  } catch (error) {
    toast(failure(error));
  }
}

// --- Start --------------------------------------------------------------------------------------------------------

async function main() {
  $('dev-form').addEventListener('submit', (event) => {
    event.preventDefault();
    const user = $('dev-user').value.trim();
    if (user === '') return void ($('sign-in-error').textContent = 'Enter a user name.');
    start(signin.devSignIn(user, $('dev-admin').checked));
  });
  $('token-form').addEventListener('submit', (event) => {
    event.preventDefault();
    try {
      start(signin.tokenSignIn($('token').value.trim()));
    } catch (error) {
      $('sign-in-error').textContent = error.message;
    }
  });
  $('order-form').addEventListener('submit', createOrder);
  $('sign-out').addEventListener('click', signOut);
  const devOffered = await signin.devSignInOffered();
  $('dev-form').hidden = !devOffered;
  $('token-form').hidden = false;
  const saved = signin.remembered();
  if (saved) await start(saved);
  else (devOffered ? $('dev-user') : $('token')).focus();
  document.body.dataset.ready = 'true';
}

main();
