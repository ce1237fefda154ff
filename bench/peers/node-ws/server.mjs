// The Node.js peer of the Tidings benchmark: the protocol subset of bench/peers/PROTOCOL.md on ws, jsonwebtoken and better-sqlite3.
//
// It is what a Node team would build instead of Tidings for the same job, written and tuned the way the
// documentation of each package advises, in one process. Environment: PORT, TIDINGS_AUTH__SECRET (the HS256
// secret) and DATA_DIR (where peer.db lives).

import { createSecretKey, randomUUID } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { createServer } from 'node:http';
import { join } from 'node:path';

import Database from 'better-sqlite3';
import jwt from 'jsonwebtoken';
import WebSocket, { WebSocketServer } from 'ws';

const port = Number(process.env.PORT ?? 8080);
const dataDir = process.env.DATA_DIR ?? '.';
if (!process.env.TIDINGS_AUTH__SECRET) {
  console.error('TIDINGS_AUTH__SECRET must hold the HS256 secret that tokens are signed with');
  process.exit(2);
}
// A key object made once, because jsonwebtoken would otherwise turn the string into a key on every verify.
const secret = createSecretKey(Buffer.from(process.env.TIDINGS_AUTH__SECRET, 'utf8'));

const PING_INTERVAL_MS = 25_000;
const IDLE_TIMEOUT_MS = 60_000;
// The protocol's hard bound on a client message; ws closes with 1009 above it (its own default is 100 MiB).
const MAX_PAYLOAD_BYTES = 1024 * 1024;
const STATUSES = new Set(['pending', 'paid', 'shipped', 'cancelled']);

// Storage. better-sqlite3 is synchronous by design: each statement runs to completion on the main thread, which
// its documentation argues is faster than an asynchronous driver for SQLite. WAL is the journal its documentation
// recommends for performance; synchronous=FULL makes every commit wait for the disk, as Tidings does, so that a
// create is acknowledged only once it would survive a crash.
mkdirSync(dataDir, { recursive: true });
const db = new Database(join(dataDir, 'peer.db'));
db.pragma('journal_mode = WAL');
db.pragma('synchronous = FULL');
db.exec(`
  CREATE TABLE IF NOT EXISTS orders (
    id TEXT PRIMARY KEY,
    owner_id TEXT NOT NULL,
    version INTEGER NOT NULL,
    data TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
  );
  CREATE TABLE IF NOT EXISTS events (
    seq INTEGER PRIMARY KEY,
    topic TEXT NOT NULL,
    resource_id TEXT NOT NULL,
    payload TEXT NOT NULL,
    occurred_at INTEGER NOT NULL
  );
`);

const insertOrder = db.prepare(
  'INSERT INTO orders (id, owner_id, version, data, created_at, updated_at) VALUES (?, ?, 1, ?, ?, ?)',
);
const insertEvent = db.prepare(
  'INSERT INTO events (seq, topic, resource_id, payload, occurred_at) VALUES (?, ?, ?, ?, ?)',
);
const selectOrder = db.prepare(
  'SELECT id, owner_id, version, data, created_at, updated_at FROM orders WHERE id = ?',
);

// The order and its event go into one transaction, so that neither exists without the other.
const storeCreate = db.transaction((id, ownerId, dataJson, now, seq, eventJson) => {
  insertOrder.run(id, ownerId, dataJson, now, now);
  insertEvent.run(seq, 'order', id, eventJson, now);
});

// The topic's last event number. The process is the only writer, and every transaction runs to completion before
// the next message is handled, so a counter in memory stays equal to MAX(seq) in the table.
let lastSeq = db.prepare('SELECT COALESCE(MAX(seq), 0) AS seq FROM events').get().seq;

// The connections subscribed to `order`. A Set keeps the fan-out a plain loop, and lets a closed connection be
// removed while the loop runs.
const subscribers = new Set();

// The protocol's heartbeat is one message, the same for every connection, so it is serialized once per tick.
const pingText = () => JSON.stringify({ type: 'ping', timestamp: Date.now(), payload: {} });

function send(ws, type, requestId, payload) {
  // JSON.stringify leaves out a requestId that is undefined, which is what a request without one must get back.
  ws.send(JSON.stringify({ type, timestamp: Date.now(), requestId, payload }));
}

function sendError(ws, requestId, code, message, details) {
  send(ws, 'error', requestId, details === undefined ? { code, message } : { code, message, details });
}

// Before every close the server starts, the protocol has it send `disconnect` with the same code and reason.
function disconnect(ws, code, reason, reconnect) {
  send(ws, 'disconnect', undefined, { code, reason, reconnect });
  ws.close(code, reason);
}

function isObject(value) {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function toResource(id, ownerId, version, data, createdAt, updatedAt) {
  return { resourceType: 'order', id, version, ownerId, data, createdAt, updatedAt };
}

// Checks an order's data as far as the benchmark needs. Returns every bad field at once, with pointers from the
// message root, the way protocol v1 reports INVALID_PARAMS.
function orderErrors(data) {
  if (!isObject(data)) {
    return [{ pointer: '/payload/data', reason: data === undefined ? 'is required' : 'must be an object' }];
  }
  const errors = [];
  if (typeof data.productId !== 'string') {
    errors.push({ pointer: '/payload/data/productId', reason: data.productId === undefined ? 'is required' : 'must be a string' });
  }
  if (!Number.isInteger(data.quantity)) {
    errors.push({ pointer: '/payload/data/quantity', reason: data.quantity === undefined ? 'is required' : 'must be an integer' });
  } else if (data.quantity < 1) {
    errors.push({ pointer: '/payload/data/quantity', reason: 'must be at least 1' });
  }
  if (typeof data.totalAmount !== 'number') {
    errors.push({ pointer: '/payload/data/totalAmount', reason: data.totalAmount === undefined ? 'is required' : 'must be a number' });
  } else if (data.totalAmount < 0) {
    errors.push({ pointer: '/payload/data/totalAmount', reason: 'must be at least 0' });
  }
  // A missing status takes the schema's default, as in Tidings' order type.
  if (data.status !== undefined && !STATUSES.has(data.status)) {
    errors.push({ pointer: '/payload/data/status', reason: 'must be one of pending, paid, shipped, cancelled' });
  }
  return errors;
}

function invalidParams(ws, requestId, type, errors) {
  const more = errors.length > 1 ? ` (and ${errors.length - 1} more)` : '';
  const message = `invalid ${type} payload: ${errors[0].pointer} ${errors[0].reason}${more}`;
  sendError(ws, requestId, 'INVALID_PARAMS', message, { errors });
}

// Tells why jsonwebtoken refused a token, in the words of protocol v1's auth_failed reasons.
function refusal(err) {
  if (err.name === 'TokenExpiredError') return 'expired';
  if (err.name === 'NotBeforeError') return 'not_yet_valid';
  if (err.message === 'invalid signature') return 'bad_signature';
  if (err.message === 'invalid algorithm') return 'algorithm_not_allowed';
  return 'malformed';
}

function authFailed(ws, requestId, reason, message) {
  send(ws, 'auth_failed', requestId, { code: 'UNAUTHORIZED', message, details: { reason } });
}

function onAuth(ws, session, requestId, payload) {
  if (typeof payload.token !== 'string' || payload.token.length === 0) {
    invalidParams(ws, requestId, 'auth', [{ pointer: '/payload/token', reason: payload.token === undefined ? 'is required' : 'must be a non-empty string' }]);
    return;
  }
  let claims;
  try {
    // Only HS256 is accepted, so that a token cannot choose a weaker algorithm (or none) for itself.
    claims = jwt.verify(payload.token, secret, { algorithms: ['HS256'] });
  } catch (err) {
    authFailed(ws, requestId, refusal(err), `the token was rejected: ${err.message}`);
    return;
  }
  if (typeof claims.sub !== 'string' || claims.sub.length === 0 || typeof claims.exp !== 'number') {
    authFailed(ws, requestId, 'missing_claim', 'the token must carry sub and exp');
    return;
  }
  if (payload.userId != null && payload.userId !== claims.sub) {
    authFailed(ws, requestId, 'user_mismatch', 'userId differs from the token\'s subject');
    return;
  }
  // A connection belongs to one user for its whole life; a re-authentication may only extend it.
  if (session.userId !== null && session.userId !== claims.sub) {
    authFailed(ws, requestId, 'user_change', 'a connection cannot change its user');
    return;
  }
  const roles = Array.isArray(claims.roles) ? claims.roles.filter((role) => typeof role === 'string') : [];
  session.userId = claims.sub;
  send(ws, 'auth_success', requestId, { userId: claims.sub, roles, expiresAt: claims.exp * 1000 });
}

function onCreate(ws, session, requestId, payload) {
  if (payload.resourceType !== 'order') {
    if (typeof payload.resourceType !== 'string') {
      invalidParams(ws, requestId, 'create', [{ pointer: '/payload/resourceType', reason: payload.resourceType === undefined ? 'is required' : 'must be a string' }]);
    } else {
      sendError(ws, requestId, 'NOT_FOUND', `there is no resource type ${payload.resourceType}`, { resourceType: payload.resourceType });
    }
    return;
  }
  const errors = orderErrors(payload.data);
  if (errors.length > 0) {
    invalidParams(ws, requestId, 'create', errors);
    return;
  }
  const data = payload.data.status === undefined ? { ...payload.data, status: 'pending' } : payload.data;
  const id = `ORD-${randomUUID()}`;
  const now = Date.now();
  const seq = lastSeq + 1;
  const event = {
    eventType: 'order_created',
    topic: 'order',
    subscriptionId: 'order',
    seq,
    resourceType: 'order',
    id,
    version: 1,
    ownerId: session.userId,
    actor: { kind: 'user', id: session.userId },
    occurredAt: now,
    data,
  };
  // The event is serialized once: the same text is stored with the order and framed for every subscriber.
  const eventJson = JSON.stringify(event);
  try {
    storeCreate(id, session.userId, JSON.stringify(data), now, seq, eventJson);
  } catch (err) {
    console.error('create failed:', err.message);
    sendError(ws, requestId, 'UNAVAILABLE', 'the order could not be stored');
    return;
  }
  lastSeq = seq;
  // The commit is on disk at this point, so the create may be acknowledged.
  send(ws, 'create', requestId, toResource(id, session.userId, 1, data, now, now));
  broadcast(`{"type":"event","timestamp":${Date.now()},"payload":${eventJson}}`);
}

// The broadcast pattern of ws's documentation: one text, sent as it is to every subscriber whose socket is open.
// A subscriber whose socket is no longer open is dropped from the set instead.
function broadcast(text) {
  for (const client of subscribers) {
    if (client.readyState === WebSocket.OPEN) {
      client.send(text);
    } else {
      subscribers.delete(client);
    }
  }
}

function onRead(ws, requestId, payload) {
  if (payload.resourceType !== 'order') {
    if (typeof payload.resourceType !== 'string') {
      invalidParams(ws, requestId, 'read', [{ pointer: '/payload/resourceType', reason: payload.resourceType === undefined ? 'is required' : 'must be a string' }]);
    } else {
      sendError(ws, requestId, 'NOT_FOUND', `there is no resource type ${payload.resourceType}`, { resourceType: payload.resourceType });
    }
    return;
  }
  // The subset reads one order by id; lists are not part of it.
  if (typeof payload.id !== 'string') {
    invalidParams(ws, requestId, 'read', [{ pointer: '/payload/id', reason: payload.id === undefined ? 'is required' : 'must be a string' }]);
    return;
  }
  const row = selectOrder.get(payload.id);
  if (row === undefined) {
    sendError(ws, requestId, 'NOT_FOUND', `there is no order ${payload.id}`, { resourceType: 'order', id: payload.id });
    return;
  }
  send(ws, 'read', requestId, toResource(row.id, row.owner_id, row.version, JSON.parse(row.data), row.created_at, row.updated_at));
}

function onSubscribe(ws, requestId, payload) {
  if (typeof payload.topic !== 'string') {
    invalidParams(ws, requestId, 'subscribe', [{ pointer: '/payload/topic', reason: payload.topic === undefined ? 'is required' : 'must be a string' }]);
    return;
  }
  if (payload.topic !== 'order') {
    sendError(ws, requestId, 'NOT_FOUND', `there is no topic ${payload.topic}`);
    return;
  }
  if (subscribers.has(ws)) {
    sendError(ws, requestId, 'CONFLICT', 'this connection already subscribes to order', { subscriptionId: 'order' });
    return;
  }
  subscribers.add(ws);
  const reply = { subscriptionId: 'order', topic: 'order', seq: lastSeq };
  // Events are not kept for replay here, so a resume with `since` is told that it could not recover, which
  // protocol v1 allows: the client then reads the state again and continues with live events.
  if (payload.since != null) reply.recovered = false;
  send(ws, 'subscribe', requestId, reply);
}

function onMessage(ws, session, message, isBinary) {
  session.lastSeen = Date.now();
  if (isBinary) {
    sendError(ws, undefined, 'INVALID_MESSAGE', 'messages are JSON text frames');
    return;
  }
  let request;
  try {
    request = JSON.parse(message.toString());
  } catch (err) {
    sendError(ws, undefined, 'INVALID_MESSAGE', `not JSON: ${err.message}`);
    return;
  }
  if (!isObject(request)) {
    sendError(ws, undefined, 'INVALID_MESSAGE', 'a message is a JSON object');
    return;
  }
  const { type, requestId, payload } = request;
  if (requestId !== undefined && typeof requestId !== 'string') {
    sendError(ws, undefined, 'INVALID_MESSAGE', 'requestId must be a string');
    return;
  }
  if (typeof type !== 'string' || !isObject(payload)) {
    sendError(ws, requestId, 'INVALID_MESSAGE', 'a message needs a string type and an object payload');
    return;
  }
  switch (type) {
    case 'connect':
      if (typeof payload.protocolVersion !== 'string' || !/^1(\.[0-9]{1,4})?$/.test(payload.protocolVersion)) {
        sendError(ws, requestId, 'UNSUPPORTED_VERSION', 'this server speaks protocol 1.0', { requested: payload.protocolVersion, supported: ['1.0'] });
        return;
      }
      send(ws, 'connect', requestId, {
        protocolVersion: '1.0',
        sessionId: session.id,
        heartbeat: { pingIntervalMs: PING_INTERVAL_MS, idleTimeoutMs: IDLE_TIMEOUT_MS },
      });
      return;
    case 'ping':
      send(ws, 'pong', requestId, {});
      return;
    case 'pong':
      // The answer to the server's heartbeat: it only counts as traffic, which lastSeen has recorded.
      return;
    case 'disconnect':
      ws.close(1000);
      return;
    case 'auth':
      onAuth(ws, session, requestId, payload);
      return;
    case 'create':
    case 'read':
    case 'subscribe':
      if (session.userId === null) {
        sendError(ws, requestId, 'UNAUTHORIZED', 'sign in with auth first');
        return;
      }
      if (type === 'create') onCreate(ws, session, requestId, payload);
      else if (type === 'read') onRead(ws, requestId, payload);
      else onSubscribe(ws, requestId, payload);
      return;
    default:
      sendError(ws, requestId, 'UNSUPPORTED_TYPE', `this server does not handle ${type}`, { type });
  }
}

// ws on an http server of its own, so that anything but an upgrade at /ws gets a plain HTTP answer.
const server = createServer((req, res) => {
  res.writeHead(404, { 'content-type': 'text/plain' });
  res.end('WebSocket endpoint: /ws\n');
});

const wss = new WebSocketServer({
  server,
  path: '/ws',
  // Off by default on a ws server already; said here because ws's documentation names compression as a
  // significant cost in CPU and memory, and the protocol's small JSON messages gain little from it.
  perMessageDeflate: false,
  maxPayload: MAX_PAYLOAD_BYTES,
});

wss.on('connection', (ws) => {
  const session = { id: randomUUID(), userId: null, lastSeen: Date.now() };
  ws.session = session;
  // An 'error' without a listener would throw and end the process; ws closes the socket itself after one.
  ws.on('error', (err) => console.error('websocket error:', err.message));
  ws.on('message', (message, isBinary) => onMessage(ws, session, message, isBinary));
  ws.on('close', () => subscribers.delete(ws));
});

// The heartbeat that the connect reply advertises: a protocol ping to every connection each interval, and a
// close with 4000 for a connection that has sent nothing for the idle timeout. One timer serves all connections.
const heartbeat = setInterval(() => {
  const now = Date.now();
  const text = pingText();
  for (const client of wss.clients) {
    if (client.readyState !== WebSocket.OPEN) continue;
    if (now - client.session.lastSeen > IDLE_TIMEOUT_MS) {
      disconnect(client, 4000, 'heartbeat timeout', true);
    } else {
      client.send(text);
    }
  }
}, PING_INTERVAL_MS);

// On SIGINT or SIGTERM the server tells every client it is going away (as far as the sockets take the frames
// before the process ends), then closes the database, which checkpoints the WAL into peer.db. Every create that
// was acknowledged is already on disk, so nothing depends on this running.
function shutdown() {
  clearInterval(heartbeat);
  for (const client of wss.clients) {
    if (client.readyState === WebSocket.OPEN) disconnect(client, 1001, 'server shutting down', true);
  }
  wss.close();
  server.close();
  db.close();
  process.exit(0);
}
process.on('SIGINT', shutdown);
process.on('SIGTERM', shutdown);

server.listen(port, '127.0.0.1', () => {
  console.log(`listening on ws://127.0.0.1:${port}/ws`);
});
