// The orders list and its views: each view a query subscription's orders (a snapshot, then its events), drawn as a
// keyed list.
import { span } from './dom.js';
import { q } from './tidings.js';

const STATUSES = ['pending', 'paid', 'shipped', 'cancelled'];

/**
 * The views of the list, in the order they are offered. Each is a subscription to `order` with its query (none for
 * `all`, which only an admin is offered) and a snapshot; `matches` says the same of an order the page itself just
 * created or changed, so that it is shown at once only where the subscription will keep it.
 */
export const VIEWS = {
  all: {
    label: 'All',
    title: 'All orders',
    empty: 'No orders yet. Create one, or open this page in a second window.',
    adminOnly: true,
    query: () => undefined,
    matches: () => true,
  },
  mine: {
    label: 'Mine',
    title: 'My orders',
    empty: 'No orders yet. Create one, or open this page in a second window.',
    query: (user) => q.eq('ownerId', user),
    matches: (order, user) => order.ownerId === user,
  },
  pending: {
    label: 'Pending',
    title: 'Pending orders',
    empty: 'No pending orders.',
    query: () => q.eq('data.status', 'pending'),
    matches: (order) => order.data.status === 'pending',
  },
  shipped: {
    label: 'Shipped',
    title: 'Shipped orders',
    empty: 'No shipped orders.',
    query: () => q.eq('data.status', 'shipped'),
    matches: (order) => order.data.status === 'shipped',
  },
};

/** The names of the views offered to a user (admin or not); the first is shown at sign-in. */
export function viewsFor(admin) {
  return Object.keys(VIEWS).filter((name) => admin || !VIEWS[name].adminOnly);
}

export class Board {
  /**
   * @param {{list: HTMLElement, empty: HTMLElement, count: HTMLElement, title: HTMLElement, views: HTMLElement}} view
   * @param {{user: string, admin: boolean, setStatus: (order: object, status: string) => void,
   *          remove: (order: object) => void, choose: (view: string) => void}} actions
   */
  constructor(view, actions) {
    this.view = view;
    this.actions = actions;
    /** @type {Map<string, {order: object, node: HTMLElement}>} */
    this.rows = new Map();
    // The version at which each order was deleted or left the view: a list page that raced it must not bring it
    // back (a later enter has a higher version).
    this.deleted = new Map();
    /** The name of the view shown. */
    this.name = undefined;
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

  /** Switches to a view: its title and button at once, an empty list until its snapshot is in (loaded). */
  show(name) {
    this.name = name;
    delete this.view.list.dataset.view;
    this.view.title.firstChild.textContent = `${VIEWS[name].title} `;
    this.view.empty.textContent = VIEWS[name].empty;
    for (const button of this.view.views.children) {
      button.setAttribute('aria-pressed', String(button.dataset.view === name));
    }
    this.reset([]);
  }

  /** Shows the snapshot of the view `name` (`data-view` on the list says which view's orders it holds). */
  loaded(name, orders) {
    if (name !== this.name) return;
    this.reset(orders);
    this.view.list.dataset.view = name;
  }

  /** Whether the view shown keeps this order: an order the page just created or changed is shown at once if so. */
  accepts(order) {
    return this.name !== undefined && VIEWS[this.name].matches(order, this.actions.user);
  }

  /** Replaces what is shown with a snapshot or a list answer (a view's start, and after a gap). */
  reset(orders) {
    for (const row of this.rows.values()) row.node.remove();
    this.rows.clear();
    this.deleted.clear();
    for (const order of orders) this.upsert(order, false);
    this.updateCount();
  }

  /** Merges resources from a list answer into what events already delivered. */
  merge(orders) {
    for (const order of orders) this.upsert(order, false);
  }

  /**
   * Applies an event of the view's subscription: `_created`, `_updated` and `_entered` show the order (an enter
   * carries all of it), `_left` (whatever its reason) and `_deleted` take it away.
   */
  apply(event) {
    const order = {
      id: event.id,
      version: event.version,
      ownerId: event.ownerId,
      data: event.data,
      createdAt: this.rows.get(event.id)?.order.createdAt ?? event.occurredAt,
      updatedAt: event.occurredAt,
    };
    // `order_left` is `<type>_<kind>`; an event of a kind this page does not know is ignored, as the spec asks.
    const kind = event.eventType.slice(event.eventType.lastIndexOf('_') + 1);
    if (kind === 'deleted' || kind === 'left') this.remove(order.id, order.version);
    else if (kind === 'created' || kind === 'updated' || kind === 'entered') this.upsert(order, true);
  }

  /** Shows an order, unless what is shown is as new or newer. */
  upsert(order, highlight) {
    const shown = this.rows.get(order.id);
    if (shown !== undefined && shown.order.version >= order.version) return;
    if ((this.deleted.get(order.id) ?? 0) >= order.version) return;
    const node = this.renderRow(order, shown?.node);
    this.rows.set(order.id, { order, node });
    if (shown === undefined) this.insertSorted(order, node);
    if (highlight) flash(node);
    this.updateCount();
  }

  remove(id, version) {
    this.deleted.set(id, Math.max(version, this.deleted.get(id) ?? 0));
    const shown = this.rows.get(id);
    if (shown === undefined || shown.order.version > version) return;
    shown.node.remove();
    this.rows.delete(id);
    this.updateCount();
  }

  order(id) {
    return this.rows.get(id)?.order;
  }

  /**
   * Newest first: by creation time, then by id; the node goes before the first row on screen that it is newer than.
   * (An order that entered the view sorts by when it entered: the event does not say when it was created.)
   */
  insertSorted(order, node) {
    const older = [...this.view.list.children].find((child) => {
      const row = this.rows.get(child.dataset.id);
      return child !== node && row !== undefined && before(order, row.order);
    });
    this.view.list.insertBefore(node, older ?? null);
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

function before(a, b) {
  return a.createdAt > b.createdAt || (a.createdAt === b.createdAt && a.id > b.id);
}

/** Marks a row that just changed; CSS fades the mark out (or not at all with reduced motion). */
function flash(node) {
  node.classList.remove('changed');
  void node.offsetWidth;
  node.classList.add('changed');
}
