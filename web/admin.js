// The admin console's entry point (web/admin.html): sign-in with an admin's token, the dev sign-in or an API key,
// then one tab per view (admin-views.js, admin-charts.js), of which only the open one polls or streams.
import * as data from './admin-data.js';
import { Sampler, chartsView } from './admin-charts.js';
import { clusterView, connectionsView, field, h, resourcesView, tailView, typesView, webhooksView } from './admin-views.js';

const main = document.getElementById('main');
const who = document.getElementById('who');

/** The tabs, in order; `make(ctx)` builds a view the first time its tab opens. */
const VIEWS = [
  { id: 'connections', label: 'Connections', make: connectionsView },
  { id: 'types', label: 'Types', make: typesView },
  { id: 'resources', label: 'Resources', make: resourcesView },
  { id: 'tail', label: 'Live tail', make: tailView },
  { id: 'cluster', label: 'Cluster', make: clusterView },
  { id: 'webhooks', label: 'Webhooks', make: webhooksView },
  { id: 'charts', label: 'Charts', make: (ctx) => chartsView(ctx.sampler) },
];

/** The signed-in console: its session, sampler, views built so far and the open one; undefined while signed out. */
let current;

// --- Signing in ---------------------------------------------------------------------------------------------------

/** The sign-in card: the dev sign-in when the server offers it, a pasted token, or an API key. */
function showSignIn(devOffered, message = '') {
  const error = h('p', { id: 'sign-in-error', className: 'error', role: 'alert' }, message);
  const user = h('input', { id: 'dev-user', name: 'user', value: 'admin', required: true, autocomplete: 'username', maxLength: 256 });
  const roles = h('input', { id: 'dev-roles', name: 'roles', value: 'tidings-admin, admin', autocomplete: 'off' });
  const token = h('textarea', { id: 'token', name: 'token', rows: 3, required: true, spellcheck: false, autocomplete: 'off' });
  const key = h('input', { id: 'api-key', name: 'key', type: 'password', required: true, autocomplete: 'off' });
  const attempt = (make) => (event) => {
    event.preventDefault();
    error.textContent = '';
    let credential;
    try {
      credential = make();
    } catch (problem) {
      error.textContent = problem.message;
      return;
    }
    void signIn(credential, error);
  };
  const dev = h('form', { id: 'dev-form', hidden: !devOffered, onsubmit: attempt(() => {
    const name = user.value.trim();
    if (name === '') throw new Error('Enter a user name.');
    return data.devCredential(name, roles.value.split(',').map((r) => r.trim()).filter(Boolean));
  }) },
  h('p', { className: 'hint' }, 'This server has no key configured and listens on loopback, so it signs anyone in.'),
  field('User', user),
  field('Roles', roles, 'Separated by commas. The console needs the server\'s admin role (setting admin_role, "tidings-admin" unless changed); the resource browser and the live tail read as this user, by its app roles (admin sees every order).'),
  h('button', { type: 'submit' }, 'Sign in'));
  const pasted = h('form', { id: 'token-form', onsubmit: attempt(() => data.tokenCredential(token.value.trim())) },
    field('Token', token, 'A JWT of a user with the admin role, such as `tidings token --user root --role tidings-admin` prints.'),
    h('button', { type: 'submit' }, 'Sign in with token'));
  const keyed = h('form', { id: 'key-form', onsubmit: attempt(() => data.keyCredential(key.value.trim())) },
    field('API key', key, 'One of the server\'s api_keys. It names no user, so the resource browser and the live tail need a token instead.'),
    h('button', { type: 'submit' }, 'Sign in with API key'));
  main.replaceChildren(h('section', { id: 'sign-in', className: 'card sign-in', 'aria-labelledby': 'sign-in-title' },
    h('h2', { id: 'sign-in-title' }, 'Sign in to the admin console'),
    h('p', { className: 'hint' }, 'The console shows and steers the whole server: it asks for a user with the admin role, or an API key.'),
    dev, pasted, keyed, error));
  who.hidden = true;
  (devOffered ? user : token).focus();
}

/**
 * Checks the credential with a first admin request, so that a user without the admin role hears it here, in the
 * server's words, rather than from every view; then opens the console.
 */
async function signIn(credential, error, { focus = true } = {}) {
  const session = new data.Session(credential);
  try {
    await session.request('GET', '/api/v1/admin/connections');
  } catch (problem) {
    // A refused credential is forgotten; one that met a server down or restarting is kept for the next reload.
    if (problem.status === 401 || problem.status === 403) data.forget();
    const hint = problem.status === 403
      ? 'This user lacks the admin role: sign in as an admin, or with an API key.'
      : problem.status === 401 ? 'Sign in with another token or key.' : '';
    error.textContent = [problem.describe ? problem.describe() : problem.message, hint].filter(Boolean).join('\n');
    return false;
  }
  data.remember(credential);
  openConsole(session, focus);
  return true;
}

function signOut() {
  if (!current) return;
  current.views.get(current.open)?.stop();
  current.sampler.stop();
  current = undefined;
  data.forget();
  void data.devSignInOffered().then((offered) => showSignIn(offered));
}

// --- The console --------------------------------------------------------------------------------------------------

function openConsole(session, focus) {
  const sampler = new Sampler(() => data.metricsText());
  let types;
  const ctx = {
    session,
    sampler,
    /** The resource types, read once and shared by the views that need them; `again` reads them anew. */
    types(again = false) {
      if (again || types === undefined) {
        types = session.request('GET', '/api/v1/admin/types').then((answer) => answer.types);
        types.catch(() => (types = undefined));
      }
      return types;
    },
  };
  const banner = h('p', { id: 'refused', className: 'banner', role: 'alert', hidden: true });
  session.onRefused = (error) => {
    banner.hidden = false;
    banner.textContent = `The server no longer takes this credential (${error.code}: ${error.message}). Sign out and sign in again.`;
  };
  const tabs = h('div', { className: 'tabs', role: 'tablist', 'aria-label': 'Console views', onkeydown: moveAlongTabs },
    VIEWS.map((view) => h('button', {
      type: 'button',
      role: 'tab',
      id: `tab-${view.id}`,
      'aria-controls': 'panel',
      'aria-selected': 'false',
      tabIndex: -1,
      'data-view': view.id,
      onclick: () => select(view.id),
    }, view.label)));
  const panel = h('section', { id: 'panel', className: 'card panel', role: 'tabpanel', tabIndex: 0 });
  main.replaceChildren(h('div', { className: 'console' }, banner, tabs, panel));
  current = { session, sampler, ctx, tabs, panel, views: new Map(), open: undefined };
  showWho(session);
  sampler.start();
  const asked = location.hash.slice(1);
  select(VIEWS.some((v) => v.id === asked) ? asked : VIEWS[0].id);
  if (focus) tabs.querySelector('[aria-selected="true"]').focus();
}

function showWho(session) {
  const { name, how } = session.describe();
  const signOutButton = h('button', { type: 'button', className: 'quiet', onclick: signOut }, 'Sign out');
  who.replaceChildren(h('span', {}, 'Signed in as ', h('strong', { id: 'who-name' }, name), h('span', { className: 'role' }, how)), signOutButton);
  who.hidden = false;
}

/** Opens a view: the old one stops (its polling, its feed), the new one starts; the address keeps the choice. */
function select(id) {
  const { views, panel, tabs, ctx } = current;
  if (current.open === id) return;
  views.get(current.open)?.stop();
  if (!views.has(id)) views.set(id, VIEWS.find((v) => v.id === id).make(ctx));
  current.open = id;
  for (const tab of tabs.children) {
    const selected = tab.dataset.view === id;
    tab.setAttribute('aria-selected', String(selected));
    tab.tabIndex = selected ? 0 : -1;
  }
  panel.setAttribute('aria-labelledby', `tab-${id}`);
  panel.dataset.view = id;
  panel.replaceChildren(views.get(id).element);
  history.replaceState(null, '', `#${id}`);
  views.get(id).start();
}

/** The tablist's keys (WAI-ARIA tabs): arrows move to the next or previous tab and open it, Home and End to the ends. */
function moveAlongTabs(event) {
  const tabs = [...current.tabs.children];
  const at = tabs.indexOf(document.activeElement);
  if (at === -1) return;
  const to = { ArrowRight: at + 1, ArrowLeft: at - 1, Home: 0, End: tabs.length - 1 }[event.key];
  if (to === undefined) return;
  event.preventDefault();
  const tab = tabs[(to + tabs.length) % tabs.length];
  tab.focus();
  select(tab.dataset.view);
}

// --- Start ----------------------------------------------------------------------------------------------------------

async function start() {
  const devOffered = await data.devSignInOffered();
  const saved = data.remembered();
  if (saved) {
    // A reload keeps the tab's sign-in; if the server no longer takes it, the sign-in form says why.
    const error = h('p');
    if (!(await signIn(saved, error, { focus: false }))) showSignIn(devOffered, error.textContent);
  } else {
    showSignIn(devOffered);
  }
  document.body.dataset.ready = 'true';
}

start();
