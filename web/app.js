// The orders board's entry point: sign-in, one SDK client, who else is on the page (the presence of `order`), and
// the wiring from the client's callbacks and the forms to the page; the list's views are live collections (board.js).
// Its writes go through an outbox in IndexedDB: they show at once, and wait there while the page is offline.
import { createClient, indexedDbOutbox } from './tidings.js';
import { Board, viewsFor } from './board.js';
import { span } from './dom.js';
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

/** The signed-in session: its client, board, sign-in and presence on the page; undefined while signed out. */
let current;

/**
 * The requestIds of the writes this page made and waits for itself, which say their own failures; a write it read
 * back from the outbox, made by the page before a reload, is said by a toast.
 */
const awaited = new Set();

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

// --- Who else is here ----------------------------------------------------------------------------------------

/** The other users on the page, in the header before the user's own name, each as an avatar of initials. */
const present = document.createElement('ul');
present.id = 'present';
present.className = 'present';
present.setAttribute('aria-label', 'Also here');
present.hidden = true;
$('who').before(present);

/**
 * Shows the users present at `order` other than this one: everyone on the board is present there, whatever their
 * view, since every signed-in user may follow the orders topic. A user with two tabs shows once.
 */
function showPresent(here, me) {
  const others = [...here.users].filter(([user]) => user !== me);
  present.hidden = others.length === 0;
  present.replaceChildren(
    ...others.map(([user, members]) => {
      const name = String(members[0].state.name ?? user);
      const item = document.createElement('li');
      item.className = 'person';
      item.dataset.user = user;
      item.title = `${name} is here`;
      const avatar = span('avatar', initials(name));
      avatar.setAttribute('aria-hidden', 'true');
      // The hue comes from the user id, so a user keeps one colour on every page.
      avatar.style.setProperty('--hue', String(hue(user)));
      item.append(avatar, span('name', name));
      return item;
    }),
  );
}

/** Two letters of a name: `bob` BO, `ann-marie` AM. */
function initials(name) {
  const parts = name.split(/[\s._-]+/).filter(Boolean);
  return (parts.length > 1 ? parts[0][0] + parts[1][0] : name.slice(0, 2)).toUpperCase();
}

/** A hue, 0 to 359, that a text always gets. */
function hue(text) {
  let sum = 0;
  for (const char of text) sum = (sum * 31 + char.codePointAt(0)) % 360;
  return sum;
}

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
    // One outbox per user: the writes a page leaves behind are sent by the next page of the same user only.
    outbox: indexedDbOutbox(`tidings-orders-board:${signIn.user}`),
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
    { client, user: signIn.user, admin, setStatus, remove, save, choose: (name) => board.show(name), failed: (error) => toast(failure(error)) },
  );
  // Present on the board while signed in; the SDK joins again after a reconnect, and the server ends the member
  // when the page goes, however it goes.
  const here = client.presence('order');
  const unwatch = here.subscribe(() => showPresent(here, signIn.user));
  here.join({ name: signIn.user }).catch((error) => toast(failure(error)));
  current = { client, board, signIn, here, unwatch };
  client.on('notification', (n) => toast({ level: n.level, title: n.title, body: n.body ?? '' }));
  client.on('error', (error) => toast(failure(error)));
  client.on('rejected', (error, write) => {
    if (!awaited.delete(write.requestId)) toast(failure(error));
  });
  client.on('confirmed', (write) => awaited.delete(write.requestId));
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
  current?.unwatch();
  void current?.here.close().catch(() => undefined);
  present.replaceChildren();
  present.hidden = true;
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
  // The view's live collection shows it at once, if its query keeps it, marked pending until the server has it.
  const created = write((requestId) => current.client.create('order', JSON.parse(JSON.stringify(data)), { requestId }));
  const clear = () => {
    $('order-productId').value = '';
    $('order-productId').focus();
  };
  if (created === undefined) return void clear();
  try {
    await created;
    clear();
  } catch (error) {
    showFieldErrors(error);
  }
}

/**
 * Makes a write with a requestId of its own (randomUUID exists only in secure contexts). Online, the caller waits
 * for the server's answer, and shows a refusal where it belongs (beside a field, in the edit form); returns that
 * promise. Offline the write waits in the outbox, maybe past a reload, so the page goes on at once (undefined) and a
 * refusal comes as a toast.
 */
function write(make) {
  const requestId = crypto.randomUUID?.() ?? `${Date.now().toString(36)}-${Math.random().toString(36).slice(2)}`;
  const online = current.client.state === 'connected';
  if (online) awaited.add(requestId);
  const made = make(requestId);
  if (online) return made;
  made.catch(() => undefined);
  return undefined;
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
    // The row changes at once, or leaves a view whose query no longer holds it; the server's answer confirms it.
    await write((requestId) => current.client.update('order', order.id, { status }, { expectedVersion: order.version, requestId }));
  } catch (error) {
    toast(failure(error));
    // Draw the order again so that the select shows the status the view holds.
    current.board.redraw(order.id);
  }
}

/** Saves an order's edit form: a merge patch at the version the form was opened at (CONFLICT if it changed since). */
async function save(order, patch) {
  await write((requestId) => current.client.update('order', order.id, patch, { expectedVersion: order.version, requestId }));
}

async function remove(order) {
  try {
    await write((requestId) => current.client.delete('order', order.id, { expectedVersion: order.version, requestId }));
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
