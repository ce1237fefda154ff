// The orders list: the orders the user may see, kept live from the `order` subscription, drawn as a keyed list.
import { span } from './dom.js';

const STATUSES = ['pending', 'paid', 'shipped', 'cancelled'];

export class Board {
  /**
   * @param {{list: HTMLElement, empty: HTMLElement, count: HTMLElement, title: HTMLElement}} view
   * @param {{user: string, admin: boolean, setStatus: (order: object, status: string) => void,
   *          remove: (order: object) => void}} actions
   */
  constructor(view, actions) {
    this.view = view;
    this.actions = actions;
    /** @type {Map<string, {order: object, node: HTMLElement}>} */
    this.rows = new Map();
    // The version at which each order was deleted: a list answer that raced the delete must not bring it back.
    this.deleted = new Map();
    view.title.firstChild.textContent = actions.admin ? 'All orders ' : 'My orders ';
    this.updateCount();
  }

  /** Replaces what is shown with a list answer (at sign-in, and after a gap). */
  reset(orders) {
    for (const row of this.rows.values()) row.node.remove();
    this.rows.clear();
    this.deleted.clear();
    for (const order of orders) this.upsert(order, false);
  }

  /** Merges resources from a list answer into what events already delivered. */
  merge(orders) {
    for (const order of orders) this.upsert(order, false);
  }

  /** Applies an event of the `order` subscription. */
  apply(event) {
    const order = {
      id: event.id,
      version: event.version,
      ownerId: event.ownerId,
      data: event.data,
      createdAt: this.rows.get(event.id)?.order.createdAt ?? event.occurredAt,
      updatedAt: event.occurredAt,
    };
    if (event.eventType.endsWith('_deleted')) this.remove(order.id, order.version);
    else this.upsert(order, true);
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

  /** Newest first: by creation time, then by id. */
  insertSorted(order, node) {
    const later = [...this.rows.values()].find(
      (row) => row.node !== node && row.node.isConnected && before(order, row.order),
    );
    this.view.list.insertBefore(node, later?.node ?? null);
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
