// The orders list and its views: each view a live collection of the SDK (client.live with the view's query), drawn
// as a keyed list.
import { span } from './dom.js';
import { q } from './tidings.js';

const STATUSES = ['pending', 'paid', 'shipped', 'cancelled'];

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
   *          remove: (order: object) => void, choose: (view: string) => void, failed: (error: Error) => void}} actions
   */
  constructor(view, actions) {
    this.view = view;
    this.actions = actions;
    /** The rows on screen by order id, each with the resource it was drawn from. */
    this.rows = new Map();
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

  /** Closes the view's collection and empties the list (switching views, signing out). */
  close() {
    this.off();
    this.off = () => undefined;
    void this.live?.close().catch(() => undefined);
    this.live = undefined;
    this.drawn = undefined;
    for (const row of this.rows.values()) row.node.remove();
    this.rows.clear();
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
    this.updateCount();
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
    const fields = [
      span('order-id', order.id),
      span('product', `${data.productId ?? '?'} × ${data.quantity ?? '?'}`),
      span('total', typeof data.totalAmount === 'number' ? data.totalAmount.toFixed(2) : '?'),
      span('owner', order.ownerId),
      span('version', `v${order.version}`),
    ];
    const focused = node.contains(document.activeElement) ? document.activeElement.className : undefined;
    node.replaceChildren(...fields, this.statusControl(order), this.deleteControl(order));
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

/** Marks a row that just changed; CSS fades the mark out (or not at all with reduced motion). */
function flash(node) {
  node.classList.remove('changed');
  void node.offsetWidth;
  node.classList.add('changed');
}
