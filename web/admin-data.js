// The admin console's data: the tab's credential, requests to the admin and HTTP APIs, the event feed read as
// Server-Sent Events over fetch, the Prometheus text of /metrics, the resource browser's query language, and the
// words the views show for durations, settings and schema rules.

import { readClaims } from './signin.js';

const STORAGE_KEY = 'tidings.admin-credential';

/** A refusal or failure of a request, with the server's `code` and `message` (docs/http-api.md, "Errors"). */
export class ApiError extends Error {
  constructor(status, code, message, details) {
    super(message);
    this.status = status;
    this.code = code;
    this.details = details;
  }

  /** What a person reads: the code, the message, and each field error on a line of its own. */
  describe() {
    const lines = [`${this.code}: ${this.message}`];
    for (const { pointer, reason } of this.details?.errors ?? []) {
      // The message names the first fault already (`invalid request: /limit must be ...`): not twice.
      if (!this.message.includes(`${pointer} ${reason}`)) lines.push(`${pointer || '(request)'}: ${reason}`);
    }
    return lines.join('\n');
  }
}

/**
 * The error a response carries. The API answers `{code, message, details?}`; a wrapped `{error: {...}}` is read
 * too, so that the console still says what went wrong should an endpoint wrap it; the dev sign-in answers plain
 * text. Anything else is named by its status.
 */
async function errorOf(response) {
  const text = await response.text().catch(() => '');
  let body;
  try {
    body = JSON.parse(text);
  } catch {
    body = undefined;
  }
  const payload = body?.error && typeof body.error === 'object' ? body.error : body;
  if (payload && typeof payload.message === 'string') {
    return new ApiError(response.status, payload.code ?? `HTTP_${response.status}`, payload.message, payload.details);
  }
  const message = text.trim() || `the server answered ${response.status} ${response.statusText}`.trim();
  return new ApiError(response.status, `HTTP_${response.status}`, message);
}

/** A fetch that fails as an ApiError when the server cannot be reached, so that every view says it the same way. */
async function send(url, init) {
  try {
    return await fetch(url, init);
  } catch (error) {
    if (error.name === 'AbortError') throw error;
    throw new ApiError(0, 'NETWORK', `the server did not answer (${error.message})`);
  }
}

// --- Credentials --------------------------------------------------------------------------------------------------

/** Whether the server signs anyone in (`GET /auth/dev-token` answers 204 on an unconfigured loopback server). */
export async function devSignInOffered() {
  try {
    return (await fetch('/auth/dev-token')).status === 204;
  } catch {
    return false;
  }
}

/** A dev sign-in: each token comes fresh from `POST /auth/dev-token` with these roles. */
export function devCredential(user, roles) {
  return { kind: 'dev', user, roles };
}

/** A pasted token. Throws when it is not a JWT with a `sub`, or has expired: the server would refuse it anyway. */
export function tokenCredential(token) {
  const claims = readClaims(token);
  if (typeof claims.sub !== 'string' || claims.sub === '') throw new Error('the token has no `sub` (user id) claim');
  if (typeof claims.exp === 'number' && claims.exp * 1000 <= Date.now()) throw new Error('the token has expired');
  const roles = Array.isArray(claims.roles) ? claims.roles.filter((r) => typeof r === 'string') : [];
  return { kind: 'token', token, user: claims.sub, roles };
}

/** An API key: it names no user, so the views that read as a user (resources, the tail) cannot use it. */
export function keyCredential(key) {
  if (key === '') throw new Error('Enter an API key.');
  return { kind: 'key', key };
}

/** Keeps the credential for this tab only: a reload signs in again, and closing the tab forgets it. */
export function remember(credential) {
  sessionStorage.setItem(STORAGE_KEY, JSON.stringify(credential));
}

export function remembered() {
  try {
    const credential = JSON.parse(sessionStorage.getItem(STORAGE_KEY) ?? 'null');
    return ['dev', 'token', 'key'].includes(credential?.kind) ? credential : null;
  } catch {
    return null;
  }
}

export function forget() {
  sessionStorage.removeItem(STORAGE_KEY);
}

// --- Requests -----------------------------------------------------------------------------------------------------

/** A signed-in console: every request carries the credential, as the admin API asks on each one. */
export class Session {
  constructor(credential) {
    this.credential = credential;
    /** The dev sign-in's current token and when it expires (Unix ms). */
    this.minted = undefined;
    /** Called with the error of every 401: the credential no longer works (an expired token, a removed key). */
    this.onRefused = undefined;
  }

  /** Whether requests carry a user's token: the resource list and the event feed need one; an API key is no user. */
  get asUser() {
    return this.credential.kind !== 'key';
  }

  /** Who is signed in, for the header. */
  describe() {
    const { kind, user } = this.credential;
    if (kind === 'key') return { name: 'API key', how: '' };
    return { name: user, how: kind === 'dev' ? ' (dev sign-in)' : ' (token)' };
  }

  /** The credential's headers; a dev token is minted again a minute before it expires. */
  async headers() {
    const { kind } = this.credential;
    if (kind === 'key') return { 'x-api-key': this.credential.key };
    if (kind === 'token') return { authorization: `Bearer ${this.credential.token}` };
    if (this.minted === undefined || this.minted.expiresAt - Date.now() < 60_000) {
      const response = await send('/auth/dev-token', {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ userId: this.credential.user, roles: this.credential.roles }),
      });
      if (!response.ok) throw await errorOf(response);
      this.minted = await response.json();
    }
    return { authorization: `Bearer ${this.minted.token}` };
  }

  /** A JSON request to the server: resolves to the parsed body, or throws an ApiError with the server's message. */
  async request(method, path, { params, signal } = {}) {
    const search = params ? `?${new URLSearchParams(params)}` : '';
    const response = await send(`${path}${search}`, { method, headers: await this.headers(), signal });
    if (!response.ok) {
      const error = await errorOf(response);
      if (response.status === 401) this.onRefused?.(error);
      throw error;
    }
    return response.json();
  }
}

/** The Prometheus text of `/metrics`, which asks for no credential. */
export async function metricsText(signal) {
  const response = await send('/metrics', { signal });
  if (!response.ok) throw await errorOf(response);
  return response.text();
}

// --- The event feed -----------------------------------------------------------------------------------------------

/**
 * Splits a Server-Sent Events stream into its messages (the HTML standard's parsing, as EventSource does). Fed text
 * as it arrives, in pieces that may end anywhere; returns the messages each piece completes.
 */
export class SseParser {
  constructor() {
    this.buffer = '';
    this.reset();
  }

  reset() {
    this.event = '';
    this.data = [];
    this.id = undefined;
  }

  push(text) {
    this.buffer += text;
    const messages = [];
    // A line ends at CRLF, LF or CR; a CR at the very end may be the first half of a CRLF still to come.
    const pattern = /\r\n|\n|\r(?!$)/g;
    let start = 0;
    for (let match = pattern.exec(this.buffer); match !== null; match = pattern.exec(this.buffer)) {
      const message = this.line(this.buffer.slice(start, match.index));
      if (message) messages.push(message);
      start = match.index + match[0].length;
    }
    this.buffer = this.buffer.slice(start);
    return messages;
  }

  line(line) {
    if (line === '') {
      // A blank line ends a message; one without data is none (a keep-alive, or ids alone).
      const message = this.data.length > 0 ? { event: this.event || 'message', data: this.data.join('\n'), id: this.id } : undefined;
      this.reset();
      return message;
    }
    if (line.startsWith(':')) return undefined;
    const colon = line.indexOf(':');
    const field = colon === -1 ? line : line.slice(0, colon);
    let value = colon === -1 ? '' : line.slice(colon + 1);
    if (value.startsWith(' ')) value = value.slice(1);
    if (field === 'data') this.data.push(value);
    else if (field === 'event') this.event = value;
    else if (field === 'id' && !value.includes('\0')) this.id = value;
    return undefined;
  }
}

/**
 * Follows a topic through `GET /api/v1/events` until the stream ends or `signal` aborts. EventSource cannot send an
 * Authorization header, so the stream is read with fetch: each `message` goes to `onEvent(event, seq)` (the
 * WebSocket `event` message and its SSE id), each `reset` to `onReset({recovered, seq})`. `onOpen` is called once
 * the server has accepted the request. A refusal throws the server's error.
 */
export async function followFeed(session, { topic, since, query }, { onOpen, onEvent, onReset, signal }) {
  const params = { topic };
  if (since !== undefined) params.since = String(since);
  if (query !== undefined) params.query = JSON.stringify(query);
  const headers = { ...(await session.headers()), accept: 'text/event-stream' };
  const response = await send(`/api/v1/events?${new URLSearchParams(params)}`, { headers, signal });
  if (!response.ok) throw await errorOf(response);
  onOpen?.();
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  const parser = new SseParser();
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      for (const message of parser.push(value)) {
        let data;
        try {
          data = JSON.parse(message.data);
        } catch {
          continue;
        }
        if (message.event === 'reset') onReset?.(data);
        else onEvent(data, message.id === undefined ? undefined : Number(message.id));
      }
    }
  } finally {
    reader.cancel().catch(() => undefined);
  }
}

// --- Metrics ------------------------------------------------------------------------------------------------------

/**
 * The samples of a Prometheus text exposition: a map from each metric's name to its series, `{labels, value}`.
 * Comments and histogram buckets are kept like any series; the charts pick what they need.
 */
export function parseMetrics(text) {
  const metrics = new Map();
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) continue;
    const match = /^([A-Za-z_:][\w:]*)(\{(.*)\})?\s+(\S+)/.exec(line);
    if (!match) continue;
    const value = Number(match[4] === '+Inf' ? Infinity : match[4]);
    if (Number.isNaN(value)) continue;
    const labels = {};
    // Label values are quoted, with \\, \" and \n escaped.
    for (const label of (match[3] ?? '').matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)) {
      labels[label[1]] = label[2].replace(/\\(.)/g, (_, c) => (c === 'n' ? '\n' : c));
    }
    if (!metrics.has(match[1])) metrics.set(match[1], []);
    metrics.get(match[1]).push({ labels, value });
  }
  return metrics;
}

/** The sum of a metric's series (over every label), or of those `where` keeps; undefined when it has none yet. */
export function total(metrics, name, where = () => true) {
  const series = (metrics.get(name) ?? []).filter((s) => where(s.labels));
  return series.length === 0 ? undefined : series.reduce((sum, s) => sum + s.value, 0);
}

// --- The query language of the resource browser -------------------------------------------------------------------

/** The operators of a query term (docs/protocol.md, 7.7). */
export const OPERATORS = ['eq', 'ne', 'lt', 'lte', 'gt', 'gte', 'in', 'nin', 'exists', 'prefix', 'contains'];

const META_FIELDS = { id: 'string', ownerId: 'string', version: 'number', createdAt: 'number', updatedAt: 'number' };

/** The JSON type a field path has in a type's schema (`data.customer.city`), if it declares one single type. */
export function fieldType(schema, path) {
  if (path in META_FIELDS) return META_FIELDS[path];
  if (!path.startsWith('data.')) return undefined;
  let at = schema;
  for (const name of path.slice(5).split('.')) at = at?.properties?.[name];
  const type = at?.type;
  if (type === 'integer') return 'number';
  return typeof type === 'string' ? type : undefined;
}

/**
 * Reads the browser's query box into the JSON query of the HTTP API (`query=`). JSON is taken as it is; otherwise
 * terms `FIELD OP VALUE`, each optionally after `not`, joined by `and` and `or` (`and` binds closer), such as
 * `data.status eq pending and data.totalAmount gte 100`. A value in double quotes is a JSON string; a bare one is
 * read by the field's type in the schema (so `data.productId eq 007` stays a string), else as the HTTP filters read
 * values: `true`, `false`, `null`, a number, or the text. `in` and `nin` take `a,b,c` or a JSON array. Empty text
 * is no query. Throws an Error saying what is wrong and where.
 */
export function parseQuery(text, schema) {
  const source = text.trim();
  if (source === '') return undefined;
  if (source.startsWith('{')) {
    try {
      return JSON.parse(source);
    } catch (error) {
      throw new Error(`the query is not JSON: ${error.message}`);
    }
  }
  const tokens = tokenize(source);
  let at = 0;
  const next = () => tokens[at++];
  const term = () => {
    const first = next();
    if (first?.word === 'not') return { not: term() };
    if (first === undefined || first.quoted) throw new Error(`expected a field such as data.status at ${place(first, source)}`);
    const op = next();
    if (!op || !OPERATORS.includes(op.word)) {
      throw new Error(`expected an operator (${OPERATORS.join(', ')}) after ${first.word}, at ${place(op, source)}`);
    }
    const value = next();
    if (value === undefined) throw new Error(`expected a value after ${first.word} ${op.word}`);
    return { field: first.word, [op.word]: operand(op.word, value, fieldType(schema, first.word)) };
  };
  const all = () => {
    const terms = [term()];
    while (tokens[at]?.word === 'and') {
      at += 1;
      terms.push(term());
    }
    return terms.length === 1 ? terms[0] : { and: terms };
  };
  const alternatives = [all()];
  while (tokens[at]?.word === 'or') {
    at += 1;
    alternatives.push(all());
  }
  if (at < tokens.length) throw new Error(`expected and, or, or the end at ${place(tokens[at], source)}`);
  return alternatives.length === 1 ? alternatives[0] : { or: alternatives };
}

/** Words, JSON strings and JSON arrays, each with where it starts. */
function tokenize(source) {
  const tokens = [];
  const pattern = /\s*("(?:[^"\\]|\\.)*"|\[[^\]]*\]|[^\s"[]+)/gy;
  for (let match = pattern.exec(source); match !== null; match = pattern.exec(source)) {
    const raw = match[1];
    const start = match.index + match[0].length - raw.length;
    tokens.push({ word: raw, quoted: raw.startsWith('"') || raw.startsWith('['), start });
    if (pattern.lastIndex === source.length) break;
  }
  const end = tokens.length ? tokens.at(-1).start + tokens.at(-1).word.length : 0;
  if (source.slice(end).trim() !== '') throw new Error(`unreadable text at character ${end + 1}: ${source.slice(end).trim()}`);
  return tokens;
}

function place(token, source) {
  return token === undefined ? 'the end' : `character ${token.start + 1} (${source.slice(token.start, token.start + 20)})`;
}

/** A term's operand from its token: a list for `in`/`nin`, a boolean for `exists`, else one value. */
function operand(op, token, type) {
  if (op === 'in' || op === 'nin') {
    if (token.word.startsWith('[')) return json(token.word);
    return token.word.split(',').filter((v) => v !== '').map((v) => scalar({ word: v, quoted: false }, type));
  }
  if (op === 'exists') {
    if (token.word !== 'true' && token.word !== 'false') throw new Error('exists takes true or false');
    return token.word === 'true';
  }
  return scalar(token, type);
}

function scalar(token, type) {
  const { word } = token;
  if (word.startsWith('"') || word.startsWith('[')) return json(word);
  if (word === 'null') return null;
  if (type === 'string') return word;
  if (word === 'true' || word === 'false') return word === 'true';
  if (/^-?(0|[1-9]\d*)(\.\d+)?([eE][+-]?\d+)?$/.test(word)) return Number(word);
  return word;
}

function json(text) {
  try {
    return JSON.parse(text);
  } catch (error) {
    throw new Error(`${text} is not JSON: ${error.message}`);
  }
}

// --- In words -----------------------------------------------------------------------------------------------------

/** A duration in words: `4 s`, `12 min 3 s`, `3 h 5 min`. */
export function duration(ms) {
  const s = Math.max(0, Math.round(ms / 1000));
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min ${s % 60} s`;
  return `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min`;
}

/** A setting's value in words: lists joined, `none` for an empty one, objects as JSON. */
export function settingText(value) {
  if (Array.isArray(value)) return value.length === 0 ? 'none' : value.map((v) => (typeof v === 'string' ? v : JSON.stringify(v))).join(', ');
  if (typeof value === 'boolean') return value ? 'yes' : 'no';
  if (value === null || value === undefined) return 'none';
  if (typeof value === 'object') {
    const entries = Object.entries(value);
    return entries.length === 0 ? 'none' : entries.map(([k, v]) => `${k}: ${settingText(v)}`).join('; ');
  }
  return String(value);
}

/** A schema property's rules in words: `min 1`, `one of pending, paid`, `default pending`. */
export function rulesOf(property) {
  const rules = [];
  const words = { minLength: 'min length', maxLength: 'max length', minimum: 'min', maximum: 'max', pattern: 'pattern', format: 'format' };
  for (const [key, word] of Object.entries(words)) if (key in property) rules.push(`${word} ${property[key]}`);
  if (Array.isArray(property.enum)) rules.push(`one of ${property.enum.join(', ')}`);
  if ('default' in property) rules.push(`default ${JSON.stringify(property.default)}`);
  return rules.join('; ') || '—';
}
