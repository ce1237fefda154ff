// The protocol inspector: every message the page's WebSocket sends and receives, newest first, filterable.
import { span } from './dom.js';

/** The sixteen message types of protocol v1, for the type filter. */
const TYPES = [
  'connect', 'disconnect', 'ping', 'pong', 'auth', 'auth_success', 'auth_failed', 'create', 'read', 'update',
  'delete', 'subscribe', 'unsubscribe', 'notification', 'event', 'error',
];

/** The most messages kept; older ones are dropped so that a page left open does not grow without bound. */
const LIMIT = 500;

export class Inspector {
  /** @param {{list: HTMLElement, type: HTMLSelectElement, text: HTMLInputElement, clear: HTMLElement, count: HTMLElement}} view */
  constructor(view) {
    this.view = view;
    /** @type {{direction: 'sent' | 'received' | 'marker', type: string, text: string, node: HTMLElement}[]} */
    this.entries = [];
    for (const type of TYPES) view.type.append(new Option(type, type));
    view.type.addEventListener('change', () => this.refilter());
    view.text.addEventListener('input', () => this.refilter());
    view.clear.addEventListener('click', () => this.clear());
    this.updateCount();
  }

  /** A WebSocket class for the SDK's `WebSocket` option: the browser's, recording what passes through it. */
  socketClass() {
    const inspector = this;
    return class InspectedWebSocket extends WebSocket {
      constructor(url) {
        super(url);
        // Registered before the SDK sets onmessage, so a message is listed before the page reacts to it.
        this.addEventListener('message', (event) => inspector.record('received', event.data));
        this.addEventListener('open', () => inspector.mark('WebSocket open'));
        this.addEventListener('close', (event) => inspector.mark(`WebSocket closed: ${event.code} ${event.reason}`.trim()));
      }

      send(data) {
        inspector.record('sent', data);
        super.send(data);
      }
    };
  }

  /** Lists one message as it went over the wire. */
  record(direction, raw) {
    const text = typeof raw === 'string' ? raw : '(binary frame)';
    let message;
    try {
      message = JSON.parse(text);
    } catch {
      message = { type: '(not JSON)' };
    }
    const type = typeof message?.type === 'string' ? message.type : '(no type)';
    this.add({ direction, type, text: text.toLowerCase(), node: render(direction, type, message, text) });
  }

  /** Lists a line between messages, such as the socket opening or closing; shown only while no type is picked. */
  mark(text) {
    const node = document.createElement('li');
    node.className = 'marker';
    node.textContent = text;
    this.add({ direction: 'marker', type: '', text: text.toLowerCase(), node });
  }

  add(entry) {
    this.entries.push(entry);
    this.view.list.prepend(entry.node);
    entry.node.hidden = !this.matches(entry);
    if (this.entries.length > LIMIT) this.entries.shift()?.node.remove();
    this.updateCount();
  }

  clear() {
    for (const entry of this.entries) entry.node.remove();
    this.entries = [];
    this.updateCount();
  }

  matches(entry) {
    const type = this.view.type.value;
    const text = this.view.text.value.trim().toLowerCase();
    if (entry.direction === 'marker') return type === '' && text === '';
    return (type === '' || entry.type === type) && (text === '' || entry.text.includes(text));
  }

  refilter() {
    for (const entry of this.entries) entry.node.hidden = !this.matches(entry);
    this.updateCount();
  }

  updateCount() {
    const messages = this.entries.filter((e) => e.direction !== 'marker');
    const shown = messages.filter((e) => !e.node.hidden).length;
    this.view.count.textContent = shown === messages.length ? `(${shown})` : `(${shown} of ${messages.length})`;
  }
}

/** One message as a list item: a summary line (direction, type, requestId, time) that opens onto its JSON. */
function render(direction, type, message, text) {
  const item = document.createElement('li');
  item.className = `message ${direction}`;
  item.dataset.type = type;
  item.dataset.direction = direction;
  const details = document.createElement('details');
  const summary = document.createElement('summary');
  summary.append(
    span('direction', direction === 'sent' ? '↑ sent' : '↓ received'),
    span('type', type),
    span('request-id', typeof message?.requestId === 'string' ? message.requestId : ''),
    time(message?.timestamp),
  );
  const body = document.createElement('pre');
  body.textContent = pretty(message, text);
  details.append(summary, body);
  item.append(details);
  return item;
}

function time(timestamp) {
  const node = document.createElement('time');
  node.className = 'timestamp';
  if (Number.isFinite(timestamp)) {
    const date = new Date(timestamp);
    node.dateTime = date.toISOString();
    node.textContent = date.toTimeString().slice(0, 8) + '.' + String(date.getMilliseconds()).padStart(3, '0');
  }
  return node;
}

/** The message as indented JSON, with a token's signature cut, so that a screenshot does not hand out a session. */
function pretty(message, text) {
  if (message?.type === '(not JSON)') return text;
  const token = message?.payload?.token;
  if (typeof token !== 'string') return JSON.stringify(message, null, 2);
  const shown = token.split('.').slice(0, 2).join('.') + '.…';
  return JSON.stringify({ ...message, payload: { ...message.payload, token: shown } }, null, 2);
}
