// The orders list and its views: each view a live collection of the SDK (client.live with the view's query), drawn
// as a keyed list; each row says who else is editing its order (the order's presence), and has a form to edit it.
// A row of a write the server has not confirmed yet is marked as not saved.
import { span } from './dom.js';
import { isPendingId, q } from './tidings.js';

const STATUSES = ['pending', 'paid', 'shipped', 'cancelled'];

/**
 * The most rows, from the top, whose presence the list follows to say who is editing them: each is a subscription
 * of its own, and a connection may hold 100 (limits.maxSubscriptions), the view's and the page's among them.
 */
const WATCHED_ROWS = 40;

/**
 * The views of the list, in the order they are offered. Each is a live collection of `order` with its query (none
 * for `all`, which only an admin is offered).
 */
export const VIEWS = {
  all: {
    label: 'All',
    title: 'All orders',
    empty: 'No orders yet. Create one, or open this page in a second window.',
    adminOnly: true,
    query: () => undefined,
  },
  mine: {
    label: 'Mine',
    title: 'My orders',
    empty: 'No orders yet. Create one, or open this page in a second window.',
    query: (user) => q.eq('ownerId', user),
  },
  pending: {
    label: 'Pending',
    title: 'Pending orders',
    empty: 'No pending orders.',
    query: () => q.eq('data.status', 'pending'),
  },
  shipped: {
    label: 'Shipped',
    title: 'Shipped orders',
    empty: 'No shipped orders.',
    query: () => q.eq('data.status', 'shipped'),
  },
};

/** The names of the views offered to a user (admin or not); the first is shown at sign-in. */
export function viewsFor(admin) {
  return Object.keys(VIEWS).filter((name) => admin || !VIEWS[name].adminOnly);
}

export class Board {
  /**
   * @param {{list: HTMLElement, empty: HTMLElement, count: HTMLElement, title: HTMLElement, views: HTMLElement}} view
   * @param {{client: object, user: string, admin: boolean, setStatus: (order: object, status: string) => void,
   *          remove: (order: object) => void, save: (order: object, patch: object) => Promise<void>,
   *          choose: (view: string) => void, failed: (error: Error) => void}} actions
   */
  constructor(view, actions) {
    this.view = view;
    this.actions = actions;
    /** The rows on screen by order id, each with the resource it was drawn from. */
    this.rows = new Map();
    /** The presence of the top rows' orders, by id: who is at each (client.presence), and the way to stop listening. */
    this.watched = new Map();
    /** The order whose edit form is open: its id, its form, and the presence handle that says this user edits it. */
    this.editing = undefined;
    /** The name of the view shown, its live collection, and the function that stops listening to it. */
    this.name = undefined;
    this.live = undefined;
    this.off = () => undefined;
    /** The array of the collection last drawn: the collection returns the same one until something changes. */
    this.drawn = undefined;
    this.drawViews();
    this.updateCount();
  }

  /** The view buttons: one per view offered; the one shown is pressed. */
  drawViews() {
    const buttons = viewsFor(this.actions.admin).map((name) => {
      const button = document.createElement('button');
      button.type = 'button';
      button.className = 'view quiet';
      button.dataset.view = name;
      button.textContent = VIEWS[name].label;
      button.setAttribute('aria-pressed', 'false');
      button.addEventListener('click', () => this.actions.choose(name));
      return button;
    });
    this.view.views.replaceChildren(...buttons);
  }

  /**
   * Switches to a view: its title and button at once, and its live collection in place of the previous view's
   * (closing that one ends its subscription). The list is empty until the collection's first contents are in;
   * `data-view` on the list then says which view's orders it holds.
   */
  show(name) {
    this.close();
    this.name = name;
    delete this.view.list.dataset.view;
    this.view.title.firstChild.textContent = `${VIEWS[name].title} `;
    this.view.empty.textContent = VIEWS[name].empty;
    for (const button of this.view.views.children) {
      button.setAttribute('aria-pressed', String(button.dataset.view === name));
    }
    const live = this.actions.client.live('order', VIEWS[name].query(this.actions.user), { compare: newestFirst });
    this.live = live;
    this.off = live.subscribe(() => this.draw(live));
    this.draw(live);
  }

  /**
   * Closes the view's collection and empties the list (switching views, signing out), with the edit form and the
   * rows' presence.
   */
  close() {
    this.off();
    this.off = () => undefined;
    void this.live?.close().catch(() => undefined);
    this.live = undefined;
    this.drawn = undefined;
    this.stopEditing();
    for (const row of this.rows.values()) row.node.remove();
    this.rows.clear();
    this.watch([]);
    this.updateCount();
  }

  /** Draws what the collection holds now, keyed by id: a row is drawn again only when its order changed. */
  draw(live) {
    if (live !== this.live) return;
    const { list } = this.view;
    list.dataset.status = live.status;
    // A collection that the server ended for good (USER_CHANGED, FORBIDDEN) says why, once.
    if (live.status === 'closed' && live.error !== undefined && this.reported !== live) {
      this.reported = live;
      this.actions.failed(live.error);
    }
    if (live.status !== 'loading') list.dataset.view = this.name;
    const orders = live.getSnapshot();
    if (orders === this.drawn) return;
    // Only changes that come while the view is live are marked: not its first contents, nor a reset after a gap.
    const mark = live.status === 'live' && this.drawn !== undefined;
    this.drawn = orders;
    const rows = new Map();
    for (const order of orders) {
      const shown = this.rows.get(order.id);
      const node = shown?.order === order ? shown.node : this.renderRow(order, shown?.node);
      if (mark && shown?.order !== order) flash(node);
      rows.set(order.id, { order, node });
    }
    for (const [id, row] of this.rows) if (!rows.has(id)) row.node.remove();
    // Only rows out of place move, so that a row keeps the keyboard focus it holds.
    let next = list.firstElementChild;
    for (const { node } of rows.values()) {
      if (node === next) next = next.nextElementSibling;
      else list.insertBefore(node, next);
    }
    this.rows = rows;
    // An order that left the view takes its edit form with it.
    if (this.editing !== undefined && !rows.has(this.editing.id)) this.stopEditing();
    this.watch([...rows.keys()].slice(0, WATCHED_ROWS));
    this.updateCount();
  }

  /**
   * Follows the presence of these orders, and of no other: who is at an order is a presence topic of its own
   * (`presence:order:ID`), which only those who may read the order may follow.
   */
  watch(ids) {
    const wanted = new Set(ids);
    for (const [id, watched] of this.watched) {
      if (wanted.has(id)) continue;
      watched.off();
      void watched.presence.close().catch(() => undefined);
      this.watched.delete(id);
    }
    for (const id of wanted) {
      // An order created offline has no presence until the server knows it, under its own id.
      if (this.watched.has(id) || isPendingId(id)) continue;
      const presence = this.actions.client.presence(`order:${id}`);
      this.watched.set(id, { presence, off: presence.subscribe(() => this.showEditors(id)) });
    }
  }

  /** The names of the other users whose edit form of this order is open. */
  editorsOf(id) {
    const names = new Map();
    for (const member of this.watched.get(id)?.presence.members ?? []) {
      if (member.userId === this.actions.user || member.state.status !== 'editing') continue;
      names.set(member.userId, String(member.state.name ?? member.userId));
    }
    return [...names.values()];
  }

  /** Says on an order's row who else is editing it, as its presence changes. */
  showEditors(id, node = this.rows.get(id)?.node.querySelector('.editors')) {
    if (node === undefined || node === null) return;
    const names = this.editorsOf(id);
    node.dataset.editors = names.join(',');
    node.hidden = names.length === 0;
    node.textContent = names.length === 0 ? '' : `${listed(names)} ${names.length === 1 ? 'is' : 'are'} editing`;
  }

  /** The order as the view holds it now. */
  order(id) {
    return this.live?.get(id);
  }

  /** Draws an order's row again from what the view holds, such as after a refused status change. */
  redraw(id) {
    const row = this.rows.get(id);
    if (row !== undefined) this.renderRow(row.order, row.node);
  }

  updateCount() {
    this.view.count.textContent = `(${this.rows.size})`;
    this.view.empty.hidden = this.rows.size > 0;
  }

  /** Draws one order into `node` (a new one when absent). Drawing in place keeps the keyboard focus where it was. */
  renderRow(order, node = document.createElement('li')) {
    const { data } = order;
    node.className = 'order';
    node.dataset.id = order.id;
    node.dataset.status = String(data.status ?? '');
    node.dataset.version = String(order.version);
    node.dataset.pending = String(order.pending === true);
    const created = isPendingId(order.id);
    const fields = [
      span('order-id', created ? 'new order' : order.id),
      span('product', `${data.productId ?? '?'} × ${data.quantity ?? '?'}`),
      span('total', typeof data.totalAmount === 'number' ? data.totalAmount.toFixed(2) : '?'),
      span('owner', order.ownerId),
      span('version', `v${order.version}`),
    ];
    const editors = span('editors', '');
    editors.setAttribute('role', 'status');
    this.showEditors(order.id, editors);
    const actions = span('actions', '');
    // Until the server has an order the page created, it has no id to edit or delete it by, nor a presence.
    if (!created) actions.append(this.editControl(order), this.deleteControl(order));
    const unsaved = span('unsaved', 'not saved yet');
    unsaved.title = 'This change waits for the server: it is sent when the page is back online.';
    unsaved.hidden = order.pending !== true;
    // An open edit form stays in place while the order changes under it, keeping what the user typed and the focus.
    const form = this.editing?.id === order.id ? this.editing.form : undefined;
    const focused = node.contains(document.activeElement) && !form?.contains(document.activeElement) ? document.activeElement.className : undefined;
    for (const child of [...node.children]) if (child !== form) child.remove();
    // A new order's status is the server's to set (its default), and is shown once the server has the order.
    const status = created ? span('status', '') : this.statusControl(order);
    node.prepend(...fields, status, actions, unsaved, editors);
    if (form !== undefined && form.parentNode !== node) node.append(form);
    if (focused) node.querySelector(`.${focused.split(' ')[0]}`)?.focus();
    return node;
  }

  statusControl(order) {
    const status = String(order.data.status ?? '');
    if (!this.actions.admin) return span(`status badge ${status}`, status);
    const select = document.createElement('select');
    select.className = 'status-select status';
    select.setAttribute('aria-label', `Status of ${order.id}`);
    for (const value of STATUSES) select.append(new Option(value, value, false, value === status));
    select.addEventListener('change', () => this.actions.setStatus(this.order(order.id) ?? order, select.value));
    return select;
  }

  /** The row's Edit button, for those who may change the order: its owner, and an admin. */
  editControl(order) {
    const button = document.createElement('button');
    button.type = 'button';
    button.className = 'edit quiet';
    button.textContent = 'Edit';
    button.setAttribute('aria-label', `Edit ${order.id}`);
    button.hidden = !this.actions.admin && order.ownerId !== this.actions.user;
    button.addEventListener('click', () => this.startEditing(this.order(order.id) ?? order));
    return button;
  }

  /**
   * Opens an order's edit form in its row (closing any other), and makes this user present at the order as
   * editing, which the others' rows show, until the form closes.
   */
  startEditing(order) {
    if (this.editing?.id === order.id) return void this.editing.form.querySelector('input')?.focus();
    this.stopEditing();
    const presence = this.actions.client.presence(`order:${order.id}`);
    presence.join({ name: this.actions.user, status: 'editing' }).catch((error) => {
      // Refused (an older server, the order gone): the form still works; only the others are not told.
      if (this.editing?.presence === presence) this.actions.failed(error);
    });
    this.editing = { id: order.id, presence, form: this.editForm(order) };
    this.redraw(order.id);
    this.editing.form.querySelector('input')?.focus();
  }

  /** Closes the edit form, if one is open, and leaves the order's presence. */
  stopEditing() {
    const editing = this.editing;
    if (editing === undefined) return;
    this.editing = undefined;
    editing.form.remove();
    void editing.presence.close().catch(() => undefined);
    const row = this.rows.get(editing.id);
    if (row !== undefined) row.node.querySelector('.edit')?.focus();
  }

  /** The edit form of an order: its quantity and total, saved with the version it was opened at. */
  editForm(order) {
    const form = document.createElement('form');
    form.className = 'edit-form';
    form.noValidate = true;
    form.setAttribute('aria-label', `Edit ${order.id}`);
    const field = (name, label, value, step) => {
      const input = document.createElement('input');
      input.type = 'number';
      input.name = name;
      input.step = step;
      input.value = String(value ?? '');
      input.setAttribute('aria-label', `${label} of ${order.id}`);
      const wrap = document.createElement('label');
      wrap.append(span('label', label), input);
      return wrap;
    };
    const save = document.createElement('button');
    save.type = 'submit';
    save.textContent = 'Save';
    const cancel = document.createElement('button');
    cancel.type = 'button';
    cancel.className = 'quiet';
    cancel.textContent = 'Cancel';
    cancel.addEventListener('click', () => this.stopEditing());
    const error = document.createElement('p');
    error.className = 'error';
    error.setAttribute('role', 'alert');
    form.append(field('quantity', 'Quantity', order.data.quantity, '1'), field('totalAmount', 'Total', order.data.totalAmount, '0.01'), save, cancel, error);
    form.addEventListener('keydown', (event) => event.key === 'Escape' && this.stopEditing());
    form.addEventListener('submit', async (event) => {
      event.preventDefault();
      error.textContent = '';
      const number = (name) => {
        const text = form.elements[name].value.trim();
        return text === '' || !Number.isFinite(Number(text)) ? text : Number(text);
      };
      try {
        await this.actions.save(order, { quantity: number('quantity'), totalAmount: number('totalAmount') });
        if (this.editing?.form === form) this.stopEditing();
      } catch (failure) {
        // The server's reasons, by field: `/payload/patch/quantity: must be at least 1`.
        const reasons = (failure.details?.errors ?? []).map(({ pointer, reason }) => `${pointer.split('/').pop()}: ${reason}`);
        error.textContent = [`${failure.code ?? 'Error'}: ${failure.message}`, ...reasons].join('\n');
      }
    });
    return form;
  }

  deleteControl(order) {
    const button = document.createElement('button');
    button.type = 'button';
    button.className = 'delete quiet';
    button.textContent = 'Delete';
    button.setAttribute('aria-label', `Delete ${order.id}`);
    button.hidden = !this.actions.admin && order.ownerId !== this.actions.user;
    button.addEventListener('click', () => this.actions.remove(this.order(order.id) ?? order));
    return button;
  }
}

/**
 * Newest first: by creation time, then by id. (An order that entered the view sorts by when it entered, until the
 * view reads it from the server: the event does not say when it was created.)
 */
function newestFirst(a, b) {
  return b.createdAt - a.createdAt || (a.id < b.id ? 1 : a.id > b.id ? -1 : 0);
}

/** Names as a sentence's list: `bob`, `bob and carol`, `bob, carol and dan`. */
function listed(names) {
  return names.length < 2 ? names.join('') : `${names.slice(0, -1).join(', ')} and ${names[names.length - 1]}`;
}

/** Marks a row that just changed; CSS fades the mark out (or not at all with reduced motion). */
function flash(node) {
  node.classList.remove('changed');
  void node.offsetWidth;
  node.classList.add('changed');
}
