// The orders board's entry point: sign-in, one SDK client, and the wiring from the client's callbacks and the forms
// to the page; the list's views are live collections (board.js).
import { createClient } from './tidings.js';
import { Board, viewsFor } from './board.js';
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

/** The signed-in session: its client, board and sign-in; undefined while signed out. */
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
    { client, user: signIn.user, admin, setStatus, remove, choose: (name) => board.show(name), failed: (error) => toast(failure(error)) },
  );
  current = { client, board, signIn };
  client.on('notification', (n) => toast({ level: n.level, title: n.title, body: n.body ?? '' }));
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
  board.show(viewsFor(admin)[0]);
}

function signOut() {
  current?.board.close();
  current?.client.close();
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
    // The view's live collection shows it, if its query keeps it, when its event comes.
    await current.client.create('order', JSON.parse(JSON.stringify(data)));
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
    // The change comes back as the view's event: the row changes, or leaves a view whose query no longer holds it.
    await current.client.update('order', order.id, { status }, { expectedVersion: order.version });
  } catch (error) {
    toast(failure(error));
    // Draw the order again so that the select shows the status the view holds.
    current.board.redraw(order.id);
  }
}

async function remove(order) {
  try {
    await current.client.delete('order', order.id, { expectedVersion: order.version });
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
