// The admin console's views, one per tab: live connections, resource types, the resource browser, the live tail of
// a topic, the cluster, and the webhooks (the charts are in admin-charts.js). Each view is {element, start, stop}:
// started when its tab opens and stopped when it closes, so that nothing polls or streams for a view no one sees.
import { span } from './dom.js';
import { duration, followFeed, parseQuery, rulesOf, settingText } from './admin-data.js';

/** How often the polled views (connections, cluster, webhooks) read their endpoint again. */
export const POLL_MS = 2000;
/** How many events the live tail keeps on screen, and holds while paused. */
export const TAIL_LIMIT = 200;

/**
 * An element with properties, attributes (names with a dash, `for`, `role`), listeners (`on...`) and children.
 * Text goes in as text nodes, never as HTML: resources and events carry users' text.
 */
export function h(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (value === undefined || value === null) continue;
    if (key.startsWith('on')) node.addEventListener(key.slice(2), value);
    else if (key.includes('-') || key === 'for' || key === 'role') {
      if (value !== false) node.setAttribute(key, value === true ? '' : String(value));
    } else node[key] = value;
  }
  node.append(...children.flat().filter((c) => c !== undefined && c !== null && c !== false));
  return node;
}

/** A labelled field: the label names the control, and a hint, if any, describes it. */
export function field(label, control, hint) {
  const hintNode = hint ? h('p', { className: 'hint field-hint', id: `${control.id}-hint` }, hint) : undefined;
  if (hintNode) control.setAttribute('aria-describedby', hintNode.id);
  return h('div', { className: 'field' }, h('label', { for: control.id }, label), control, hintNode);
}

/**
 * A view's status: a quiet line of what it is doing (`Updated at ...` every poll, not read out each time), and a
 * live one for outcomes and errors, which screen readers speak. An error says "Error" in words, not only in red.
 */
function statusLine(id) {
  const outcome = h('span', { className: 'outcome', role: 'status' });
  const quiet = h('span', { className: 'quiet-status' });
  const set = (level, text) => Object.assign(outcome, { textContent: text }).setAttribute('data-level', level);
  return {
    node: h('p', { className: 'view-status', id }, outcome, quiet),
    /** What the view is doing; a success also clears an error that it ends. */
    ok(text, clear = true) {
      quiet.textContent = text;
      if (clear && outcome.dataset.level === 'error') set('', '');
    },
    said: (text) => set('ok', text),
    error: (e) => set('error', `Error: ${e.describe ? e.describe() : e.message}`),
  };
}

/** Calls `load` now and every POLL_MS after it ends, never two at once; `now()` loads at once. */
function poller(load, onError) {
  let timer;
  let running = false;
  let busy;
  const run = async () => {
    clearTimeout(timer);
    busy ??= Promise.resolve().then(load).catch(onError).finally(() => {
      busy = undefined;
      if (running) timer = setTimeout(run, POLL_MS);
    });
    return busy;
  };
  return { start: () => ((running = true), void run()), stop: () => ((running = false), clearTimeout(timer)), now: run };
}

/** A time of day, in the reader's own format. */
const clock = (ms) => new Date(ms).toLocaleTimeString();

/** A table with a caption (its accessible name) and column headers; returns it with its body. */
function table(id, caption, columns) {
  const body = h('tbody');
  const head = h('thead', {}, h('tr', {}, columns.map((c) => h('th', { scope: 'col' }, c))));
  return { node: h('table', { className: 'grid', id }, h('caption', { className: 'visually-hidden' }, caption), head, body), body };
}

/** What a view shows in place of its work when the credential is an API key: these need a user's token. */
const needsUser = (what) => h('p', { className: 'notice', role: 'note' }, `${what} reads as a user, with a user's token: an API ` +
  'key names no user, so it cannot. Sign out and sign in with an admin token (or the dev sign-in) to use it.');

// --- Connections ----------------------------------------------------------------------------------------------

/** Every live connection, kept up to date; each can be disconnected after a confirm step. */
export function connectionsView(ctx) {
  const status = statusLine('connections-status');
  const count = span('count', '');
  const heading = h('h2', { id: 'connections-title', tabIndex: -1 }, 'Live connections ', count);
  const refresh = h('button', { type: 'button', className: 'quiet', onclick: () => poll.now() }, 'Refresh');
  const { node, body } = table('connections', 'Live connections', ['Session', 'User', 'Node', 'Connected', 'Subscriptions', 'Queue', 'Action']);
  const empty = h('p', { className: 'hint', hidden: true }, 'No connections. Open the board (/) in another window to see one.');
  const wrapper = h('div', { className: 'scroll' }, node);
  const element = h('div', {}, h('div', { className: 'view-head' }, heading, refresh), status.node, wrapper, empty);
  /** The rows by session id, so a refresh updates them in place and keeps an open confirm step. */
  const rows = new Map();

  const poll = poller(async () => {
    const { total, connections } = await ctx.session.request('GET', '/api/v1/admin/connections');
    count.textContent = `(${total})`;
    const seen = new Set(connections.map((c) => c.sessionId));
    for (const [id, row] of rows) {
      if (seen.has(id)) continue;
      const hadFocus = row.tr.contains(document.activeElement);
      row.tr.remove();
      rows.delete(id);
      if (hadFocus) heading.focus();
    }
    connections.forEach((connection, index) => {
      let row = rows.get(connection.sessionId);
      if (!row) {
        row = newRow(connection);
        rows.set(connection.sessionId, row);
      }
      // Moved only when out of place: moving a row would take the focus from its confirm step.
      if (body.children[index] !== row.tr) body.insertBefore(row.tr, body.children[index] ?? null);
      fill(row, connection);
    });
    empty.hidden = connections.length > 0;
    wrapper.hidden = connections.length === 0;
    status.ok(`Updated at ${clock(Date.now())}; refreshed every ${POLL_MS / 1000} s.`);
  }, (error) => status.error(error));

  function newRow(connection) {
    const cells = Object.fromEntries(['session', 'user', 'node', 'since', 'subscriptions', 'queue', 'action'].map((k) => [k, h('td')]));
    cells.session.className = 'mono';
    const tr = h('tr', { 'data-session': connection.sessionId }, Object.values(cells));
    const row = { tr, cells, connection, confirming: false };
    showAction(row);
    return row;
  }

  function fill(row, c) {
    row.connection = c;
    const { cells } = row;
    row.tr.dataset.user = c.userId ?? '';
    cells.session.textContent = c.sessionId;
    cells.user.textContent = c.userId ?? 'not signed in yet';
    cells.user.classList.toggle('muted', c.userId === null);
    cells.node.textContent = c.node;
    cells.since.textContent = `${clock(c.connectedAt)} (${duration(Date.now() - c.connectedAt)})`;
    cells.subscriptions.textContent = c.subscriptions.length === 0 ? 'none' : `${c.subscriptions.length}: ${c.subscriptions.join(', ')}`;
    cells.queue.textContent = String(c.queueDepth);
    cells.queue.classList.add('number');
    if (!row.confirming) row.button.setAttribute('aria-label', `Disconnect ${who(c)}`);
  }

  const who = (c) => `${c.sessionId} (${c.userId ?? 'not signed in'})`;

  function showAction(row) {
    row.confirming = false;
    const button = h('button', {
      type: 'button',
      className: 'danger quiet',
      'aria-label': `Disconnect ${who(row.connection)}`,
      onclick: () => confirm(row),
    }, 'Disconnect');
    row.cells.action.replaceChildren(button);
    row.button = button;
    return button;
  }

  /** The confirm step: a reason, then Disconnect again; Cancel or Escape goes back. */
  function confirm(row) {
    row.confirming = true;
    const id = `reason-${row.connection.sessionId}`;
    const reason = h('input', { id, name: 'reason', maxLength: 123, placeholder: 'disconnected by an operator', autocomplete: 'off' });
    const cancel = () => showAction(row).focus();
    const form = h(
      'form',
      { className: 'confirm', onsubmit: (event) => (event.preventDefault(), disconnect(row, reason.value.trim())) },
      h('p', {}, `Disconnect ${who(row.connection)}? The client is told not to reconnect.`),
      h('label', { for: id }, 'Reason (optional)'),
      reason,
      h('div', { className: 'buttons' },
        h('button', { type: 'submit', className: 'danger' }, 'Confirm disconnect'),
        h('button', { type: 'button', className: 'quiet', onclick: cancel }, 'Cancel')),
    );
    form.addEventListener('keydown', (event) => {
      if (event.key === 'Escape') cancel();
    });
    row.cells.action.replaceChildren(form);
    reason.focus();
  }

  async function disconnect(row, reason) {
    const { sessionId } = row.connection;
    try {
      const params = reason ? { reason } : undefined;
      await ctx.session.request('DELETE', `/api/v1/admin/connections/${encodeURIComponent(sessionId)}`, { params });
      status.said(`Disconnected ${who(row.connection)}.`);
      row.tr.remove();
      rows.delete(sessionId);
      heading.focus();
      void poll.now();
    } catch (error) {
      status.error(error);
    }
  }

  return { element, start: () => poll.start(), stop: () => poll.stop() };
}

// --- Resource types -------------------------------------------------------------------------------------------

/** Every resource type: its settings and its schema, as a table of fields and as JSON. */
export function typesView(ctx) {
  const status = statusLine('types-status');
  const list = h('div', { className: 'types', id: 'types' });
  const refresh = h('button', { type: 'button', className: 'quiet', onclick: () => load(true) }, 'Refresh');
  const element = h('div', {}, h('div', { className: 'view-head' }, h('h2', {}, 'Resource types'), refresh), status.node, list);

  async function load(again = false) {
    try {
      const types = await ctx.types(again);
      list.replaceChildren(...types.map(typeCard));
      status.said(`${types.length} ${types.length === 1 ? 'type' : 'types'}, as the server's config sets them.`);
    } catch (error) {
      status.error(error);
    }
  }

  function typeCard(type) {
    const { name, schema, ...settings } = type;
    const properties = Object.entries(schema?.properties ?? {});
    const required = new Set(schema?.required ?? []);
    const fields = table(`schema-${name}`, `Fields of ${name}`, ['Field', 'Type', 'Required', 'Rules']);
    for (const [fieldName, property] of properties) {
      fields.body.append(h('tr', { 'data-field': fieldName },
        h('td', { className: 'mono' }, fieldName),
        h('td', {}, settingText(property.type ?? 'any')),
        h('td', {}, required.has(fieldName) ? 'required' : 'optional'),
        h('td', {}, rulesOf(property))));
    }
    const headingId = `type-${name}-title`;
    return h('section', { className: 'type-card', 'data-type': name, 'aria-labelledby': headingId },
      h('h3', { id: headingId }, name),
      h('dl', { className: 'settings' }, Object.entries(settings).flatMap(([key, value]) => [
        h('dt', { className: 'mono' }, key), h('dd', {}, settingText(value))])),
      h('h4', {}, 'Schema'),
      properties.length ? h('div', { className: 'scroll' }, fields.node) : h('p', { className: 'hint' }, 'The schema declares no fields.'),
      h('details', {}, h('summary', {}, `Schema of ${name} as JSON`), h('pre', { className: 'json' }, JSON.stringify(schema, null, 2))));
  }

  return { element, start: () => void load(), stop() {} };
}

// --- Resource browser -----------------------------------------------------------------------------------------

/** Lists a type's resources as the signed-in user, with a query, an order and cursor pages. */
export function resourcesView(ctx) {
  if (!ctx.session.asUser) {
    return { element: h('div', {}, h('h2', {}, 'Resource browser'), needsUser('The resource browser')), start() {}, stop() {} };
  }
  const type = h('select', { id: 'res-type', name: 'type', required: true });
  const query = h('input', { id: 'res-query', name: 'query', autocomplete: 'off', spellcheck: false, placeholder: 'data.status eq pending' });
  const order = h('input', { id: 'res-order', name: 'orderBy', autocomplete: 'off', placeholder: '-createdAt' });
  const limit = h('select', { id: 'res-limit', name: 'limit' }, [10, 20, 50, 100].map((n) => h('option', { value: String(n), selected: n === 20 }, String(n))));
  const status = statusLine('resources-status');
  const sent = h('p', { className: 'hint sent', id: 'resources-sent' });
  const results = h('div', { className: 'scroll' });
  const first = h('button', { type: 'button', className: 'quiet', disabled: true, onclick: () => list(null, 1) }, 'First page');
  const next = h('button', { type: 'button', disabled: true, onclick: () => list(cursor, page + 1) }, 'Next page');
  const form = h('form', { className: 'browser-form', onsubmit: (event) => (event.preventDefault(), list(undefined, 1)) },
    field('Type', type),
    field('Query', query, 'Terms FIELD OP VALUE joined by and / or, with not before a term: data.status eq pending and data.quantity gte 2. ' +
      'Fields: id, ownerId, version, createdAt, updatedAt, data.NAME. Operators: eq ne lt lte gt gte in nin exists prefix contains. ' +
      'Or paste the JSON form: {"field": "data.status", "eq": "pending"}.'),
    field('Order by', order, 'Fields separated by commas, - for descending: -createdAt, status,-totalAmount.'),
    field('Page size', limit),
    h('button', { type: 'submit' }, 'List'));
  const element = h('div', {}, h('h2', {}, 'Resource browser'), form, status.node, sent, results,
    h('div', { className: 'pager' }, first, next));
  let types = [];
  let listed;
  let cursor;
  let page = 1;

  /**
   * Lists a page: from the form (`at` undefined), or again for the query last listed (`at` null: its first page; a
   * cursor: the page after it). A cursor only fits the query it came with, so paging never re-reads the form.
   */
  async function list(at, number) {
    if (at === undefined) {
      const chosen = types.find((t) => t.name === type.value);
      let parsed;
      try {
        parsed = parseQuery(query.value, chosen?.schema);
        query.removeAttribute('aria-invalid');
      } catch (error) {
        query.setAttribute('aria-invalid', 'true');
        status.error(error);
        query.focus();
        return;
      }
      const params = { limit: limit.value, count: 'true' };
      if (parsed !== undefined) params.query = JSON.stringify(parsed);
      if (order.value.trim()) params.orderBy = order.value.trim();
      listed = { name: type.value, chosen, params };
    }
    const { name, chosen, params } = listed;
    sent.textContent = `GET /api/v1/resources/${name}${params.query === undefined ? '' : ` with query ${params.query}`}`;
    try {
      const answer = await ctx.session.request('GET', `/api/v1/resources/${encodeURIComponent(name)}`, { params: at ? { ...params, cursor: at } : params });
      cursor = answer.nextCursor ?? undefined;
      page = number;
      show(answer.items, chosen, name);
      const shown = answer.items.length;
      status.said(`Page ${page}: ${shown} ${shown === 1 ? 'resource' : 'resources'}${answer.total == null ? '' : ` of ${answer.total} matching`}` +
        `${cursor ? '; more on the next page' : ''}.`);
      first.disabled = page === 1;
      next.disabled = cursor === undefined;
    } catch (error) {
      status.error(error);
    }
  }

  function show(items, chosen, name) {
    // The columns: the resource's own fields, then the top-level fields the schema declares.
    const names = Object.keys(chosen?.schema?.properties ?? {});
    for (const item of items) for (const key of Object.keys(item.data ?? {})) if (!names.includes(key)) names.push(key);
    const { node, body } = table('resources', `${name} resources, page ${page}`, ['Id', 'Owner', 'Version', 'Updated', ...names]);
    for (const item of items) {
      body.append(h('tr', { 'data-id': item.id },
        h('td', { className: 'mono' }, item.id),
        h('td', {}, item.ownerId),
        h('td', { className: 'number' }, String(item.version)),
        h('td', {}, new Date(item.updatedAt).toLocaleString()),
        names.map((name) => h('td', { className: typeof item.data?.[name] === 'number' ? 'number' : '' },
          name in (item.data ?? {}) ? valueText(item.data[name]) : '—'))));
    }
    results.replaceChildren(items.length ? node : h('p', { className: 'hint' }, 'Nothing matches.'));
  }

  return {
    element,
    async start() {
      try {
        types = await ctx.types();
      } catch (error) {
        status.error(error);
        return;
      }
      const keep = type.value;
      type.replaceChildren(...types.map((t) => h('option', { value: t.name }, t.name)));
      if (keep) type.value = keep;
    },
    stop() {},
  };
}

const valueText = (value) => (typeof value === 'string' ? value : JSON.stringify(value));

// --- Live tail ------------------------------------------------------------------------------------------------

/**
 * Follows a topic through the event feed (SSE read with fetch), newest event first, the last TAIL_LIMIT kept. Pause
 * holds new events without drawing them (the feed goes on, so the server never ends it as too slow); Resume shows
 * them. An ended feed is followed again from its last seq; leaving the view stops it.
 */
export function tailView(ctx) {
  if (!ctx.session.asUser) {
    return { element: h('div', {}, h('h2', {}, 'Live tail'), needsUser('The live tail')), start() {}, stop() {} };
  }
  const topic = h('input', { id: 'tail-topic', name: 'topic', required: true, autocomplete: 'off', spellcheck: false, value: 'order' });
  const since = h('input', { id: 'tail-since', name: 'since', type: 'number', min: 0, inputMode: 'numeric' });
  const query = h('input', { id: 'tail-query', name: 'query', autocomplete: 'off', spellcheck: false, placeholder: 'data.status eq pending' });
  const startButton = h('button', { type: 'submit' }, 'Start');
  const pause = h('button', { type: 'button', className: 'quiet', disabled: true, 'aria-pressed': 'false', onclick: () => setPaused(!paused) }, 'Pause');
  const stopButton = h('button', { type: 'button', className: 'quiet', disabled: true, onclick: () => halt('Stopped.') }, 'Stop');
  const clear = h('button', { type: 'button', className: 'quiet', onclick: () => list.replaceChildren() }, 'Clear');
  const status = statusLine('tail-status');
  const list = h('ol', { className: 'events', id: 'tail-events', 'aria-label': 'Events, newest first' });
  const form = h('form', { className: 'tail-form', onsubmit: (event) => (event.preventDefault(), begin()) },
    field('Topic', topic, 'A resource type (order), or one resource (order:ORD-…).'),
    field('Since (seq, optional)', since, 'Replays the events after this seq first.'),
    field('Query (optional)', query, 'Only events of resources it matches, in the resource browser\'s form.'),
    h('div', { className: 'buttons' }, startButton, pause, stopButton, clear));
  const element = h('div', {}, h('h2', {}, 'Live tail'), form, status.node, list);
  let controller;
  let paused = false;
  let held = [];
  let count = 0;
  let last;
  let following = '';

  function setPaused(value) {
    paused = value;
    pause.textContent = paused ? 'Resume' : 'Pause';
    pause.setAttribute('aria-pressed', String(paused));
    if (!paused) {
      for (const item of held) draw(item);
      held = [];
    }
    announce();
    say();
  }

  /** The tail's state, read out as it changes; `say` keeps the count, quietly, as events come. */
  function announce() {
    if (controller) status.said(paused ? `Paused: new events of ${following} are held, not shown.` : `Following ${following}: live.`);
  }

  function say(extra = '', clear = true) {
    if (!controller) return;
    const kept = paused ? `; ${held.length} new ${held.length === 1 ? 'event' : 'events'} held while paused` : '';
    status.ok(`${count} ${count === 1 ? 'event' : 'events'} so far${kept}.${extra}`, clear);
  }

  async function begin() {
    halt();
    let condition;
    const typeName = topic.value.trim().split(':')[0];
    try {
      const types = await ctx.types().catch(() => []);
      condition = parseQuery(query.value, types.find((t) => t.name === typeName)?.schema);
    } catch (error) {
      status.error(error);
      query.focus();
      return;
    }
    const mine = new AbortController();
    controller = mine;
    following = topic.value.trim();
    // A new tail starts a new list: the old one's events may be of another topic, or come again from `since`.
    list.replaceChildren();
    count = 0;
    last = since.value === '' ? undefined : Number(since.value);
    setPaused(false);
    startButton.textContent = 'Restart';
    pause.disabled = false;
    stopButton.disabled = false;
    element.dataset.state = 'connecting';
    status.said(`Connecting to the feed of ${following}…`);
    let wait = 1000;
    while (controller === mine) {
      try {
        await followFeed(ctx.session, { topic: following, since: last, query: condition }, {
          signal: mine.signal,
          onOpen: () => {
            wait = 1000;
            element.dataset.state = 'live';
            announce();
            say();
          },
          onEvent: (message, seq) => {
            if (seq !== undefined && !Number.isNaN(seq)) last = seq;
            count += 1;
            receive({ message, seq });
          },
          onReset: ({ seq }) => {
            last = seq;
            receive({ reset: seq });
          },
        });
      } catch (error) {
        if (controller !== mine) return;
        // A refusal (a bad topic, a type this user may not read) will not change by trying again.
        if (error.status >= 400 && error.status < 500 && error.status !== 429) {
          halt();
          status.error(error);
          return;
        }
        status.error(error);
      }
      if (controller !== mine) return;
      element.dataset.state = 'reconnecting';
      say(` The feed ended; following again in ${wait / 1000} s.`, false);
      await new Promise((resolve) => setTimeout(resolve, wait));
      wait = Math.min(wait * 2, 10_000);
    }
  }

  function receive(item) {
    if (!paused) return draw(item);
    held.push(item);
    if (held.length > TAIL_LIMIT) held.shift();
    say();
  }

  function draw(item) {
    list.prepend(item.reset === undefined ? eventItem(item.message, item.seq) : h('li', { className: 'marker' },
      `The server no longer holds every event before seq ${item.reset}: some were missed. The tail goes on from there.`));
    while (list.children.length > TAIL_LIMIT) list.lastElementChild.remove();
    say();
  }

  function halt(text) {
    controller?.abort();
    controller = undefined;
    startButton.textContent = 'Start';
    pause.disabled = true;
    stopButton.disabled = true;
    element.dataset.state = 'stopped';
    if (text) status.said(text);
  }

  return { element, start() {}, stop: () => halt() };
}

/** One event of the tail: its seq, kind, resource and actor on a line, its data in a disclosure. */
function eventItem(message, seq) {
  const p = message.payload ?? {};
  const kind = String(p.eventType ?? message.type ?? 'event');
  const actor = p.actor ? `by ${p.actor.id}${p.actor.kind === 'system' ? ' (system)' : ''}` : '';
  const when = p.occurredAt ? clock(p.occurredAt) : '';
  return h('li', { className: 'event', 'data-seq': seq === undefined ? '' : String(seq), 'data-id': p.id ?? '', 'data-event-type': kind },
    h('details', {},
      h('summary', {},
        span('seq', seq === undefined ? '—' : `#${seq}`),
        span(`kind ${kind.split('_').at(-1)}`, kind),
        span('mono resource', `${p.id ?? ''}${p.version ? ` v${p.version}` : ''}`),
        span('actor', actor),
        span('timestamp', when)),
      h('pre', { className: 'json' }, JSON.stringify(p, null, 2))));
}

// --- Cluster --------------------------------------------------------------------------------------------------

/** This node, its broker, and every node heard lately, kept up to date. */
export function clusterView(ctx) {
  const status = statusLine('cluster-status');
  const summary = h('dl', { className: 'settings', id: 'cluster-summary' });
  const nodes = table('cluster-nodes', 'Nodes heard lately', ['Node', 'Role', 'Last heard']);
  const element = h('div', {}, h('h2', {}, 'Cluster'), status.node, summary, h('h3', {}, 'Nodes'), h('div', { className: 'scroll' }, nodes.node));
  const poll = poller(async () => {
    const cluster = await ctx.session.request('GET', '/api/v1/admin/cluster');
    const broker = cluster.broker ?? {};
    const entry = (term, value, id) => [h('dt', {}, term), h('dd', { id }, value)];
    summary.replaceChildren(
      ...entry('This node', cluster.node, 'cluster-node'),
      ...entry('Broker', h('span', { className: `state ${broker.connected ? 'good' : 'bad'}` },
        `${broker.kind}, ${broker.connected ? 'connected' : 'not connected'}`), 'cluster-broker'),
      ...entry('Connections', String(cluster.connections)),
      ...entry('Subscriptions', String(cluster.subscriptions)),
      ...entry('Presence members', String(cluster.presenceMembers)));
    nodes.body.replaceChildren(...(cluster.nodes ?? []).map((n) => h('tr', { 'data-node': n.node },
      h('td', { className: 'mono' }, n.node),
      h('td', {}, n.self ? 'this node' : 'peer'),
      h('td', {}, n.self ? 'now' : `${duration(n.heardMsAgo)} ago`))));
    status.ok(`Updated at ${clock(Date.now())}; refreshed every ${POLL_MS / 1000} s.`);
  }, (error) => status.error(error));
  return { element, start: () => poll.start(), stop: () => poll.stop() };
}

// --- Webhooks -------------------------------------------------------------------------------------------------

/** Every webhook with its cursor, lag and last error; each can be paused and resumed. */
export function webhooksView(ctx) {
  const status = statusLine('webhooks-status');
  const hooks = table('webhooks', 'Webhooks', ['Name', 'Type', 'URL', 'Cursor', 'Lag', 'State', 'Failures', 'Last error', 'Action']);
  const empty = h('p', { className: 'hint', hidden: true }, 'No webhooks are configured ([[webhooks]] in the config, docs/webhooks.md).');
  const element = h('div', {}, h('h2', {}, 'Webhooks'), status.node, h('div', { className: 'scroll' }, hooks.node), empty);

  async function control(hook, action) {
    try {
      await ctx.session.request('POST', `/api/v1/admin/webhooks/${encodeURIComponent(hook.name)}/${action}`);
      status.said(`${hook.name} ${action === 'pause' ? 'paused' : 'resumed'}.`);
      await poll.now();
      hooks.body.querySelector(`tr[data-hook="${CSS.escape(hook.name)}"] button`)?.focus();
    } catch (error) {
      status.error(error);
    }
  }

  const poll = poller(async () => {
    const { webhooks } = await ctx.session.request('GET', '/api/v1/admin/webhooks');
    // Redrawing would take the focus from a button the user is on: the rows are rebuilt and the focus put back.
    const focused = document.activeElement?.closest?.('#webhooks tr')?.dataset.hook;
    hooks.body.replaceChildren(...webhooks.map((hook) => h('tr', { 'data-hook': hook.name, 'data-paused': String(hook.paused) },
      h('td', { className: 'mono' }, hook.name),
      h('td', {}, hook.resourceType ?? ''),
      h('td', { className: 'mono url' }, hook.url ?? ''),
      h('td', { className: 'number' }, String(hook.cursor)),
      h('td', { className: 'number' }, String(hook.lag)),
      h('td', {}, h('span', { className: `state ${hook.paused ? 'bad' : 'good'}` }, hook.paused ? 'paused' : 'running')),
      h('td', { className: 'number' }, String(hook.failures ?? 0)),
      h('td', {}, hook.lastError ?? '—'),
      h('td', {}, h('button', {
        type: 'button',
        className: 'quiet',
        'aria-label': `${hook.paused ? 'Resume' : 'Pause'} ${hook.name}`,
        onclick: () => control(hook, hook.paused ? 'resume' : 'pause'),
      }, hook.paused ? 'Resume' : 'Pause')))));
    if (focused) hooks.body.querySelector(`tr[data-hook="${CSS.escape(focused)}"] button`)?.focus();
    empty.hidden = webhooks.length > 0;
    status.ok(`Updated at ${clock(Date.now())}; refreshed every ${POLL_MS / 1000} s.`);
  }, (error) => status.error(error));
  return { element, start: () => poll.start(), stop: () => poll.stop() };
}
