// The client against a scripted fake WebSocket: queueing, the heartbeat watchdog and the answer to the server's ping.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createClient, TidingsError } from '../dist/index.js';
import { fakeServer } from './fake.mjs';
import { withTimeout } from './helpers.mjs';

test('with queueWhileDisconnected false, a request while reconnecting fails at once with DISCONNECTED', async () => {
  const server = fakeServer();
  let release;
  const client = createClient({
    url: 'ws://fake/ws', token: 't', WebSocket: server.FakeSocket, queueWhileDisconnected: false,
    retryWait: () => new Promise((r) => (release = r)),
  });
  await client.connect();
  client.reconnect();
  assert.equal(client.state, 'reconnecting');
  await assert.rejects(client.read('order', 'X'), (e) => e instanceof TidingsError && e.code === 'DISCONNECTED');
  release();
  client.close();
});

test('auth goes out right behind connect, before connect is answered; a refused connect is the reported failure', async () => {
  // This server answers connect only once auth has arrived: a client that waited for connect's reply would hang.
  let held;
  const answerConnect = (socket, message) => {
    held = () => socket.onmessage?.({ data: JSON.stringify({
      type: 'connect', timestamp: Date.now(), requestId: message.requestId,
      payload: { protocolVersion: '1.1', sessionId: 's', authTimeoutMs: 10000, heartbeat: { pingIntervalMs: 25000, idleTimeoutMs: 60000 },
        limits: { maxMessageBytes: 65536, maxSubscriptions: 100, rateLimit: { messagesPerSecond: 50, burst: 100 } } },
    }) });
  };
  const server = fakeServer({
    answers: {
      connect: answerConnect,
      auth: (socket, message) => {
        assert.ok(held, 'connect was sent first');
        held();
        socket.onmessage?.({ data: JSON.stringify({ type: 'auth_success', timestamp: Date.now(), requestId: message.requestId,
          payload: { userId: 'u', roles: [], expiresAt: Date.now() + 3600000 } }) });
      },
    },
  });
  const client = createClient({ url: 'ws://fake/ws', token: 't', WebSocket: server.FakeSocket });
  await withTimeout(client.connect(), 5000, 'connected');
  assert.deepEqual(server.sockets[0].sent.map((m) => m.type).slice(0, 2), ['connect', 'auth']);
  assert.equal(client.state, 'connected');
  client.close();

  // A connect that is refused fails the attempt with its own error, even though the auth behind it succeeds (a
  // 1.1 server takes auth without a connect).
  const refusing = fakeServer({
    answers: {
      connect: (socket, message) => socket.onmessage?.({ data: JSON.stringify({ type: 'error', timestamp: Date.now(),
        requestId: message.requestId, payload: { code: 'UNSUPPORTED_VERSION', message: 'no such version' } }) }),
    },
  });
  const failing = createClient({ url: 'ws://fake/ws', token: 't', WebSocket: refusing.FakeSocket, failFast: true });
  await assert.rejects(withTimeout(failing.connect(), 5000, 'the refusal'), (e) => e.code === 'UNSUPPORTED_VERSION');
  failing.close();
});

test('a queued request waits for the connection, and a full queue fails with QUEUE_FULL', async () => {
  const server = fakeServer();
  let release;
  const client = createClient({
    url: 'ws://fake/ws', token: 't', WebSocket: server.FakeSocket, maxQueue: 1,
    retryWait: () => new Promise((r) => (release = r)),
  });
  await client.connect();
  client.reconnect();
  const waiting = client.ping();
  await assert.rejects(client.ping(), (e) => e.code === 'QUEUE_FULL');
  release();
  await withTimeout(waiting, 5000, 'the queued ping');
  client.close();
});

test('a silent server is detected by the watchdog, the client reconnects; server pings get a pong', async () => {
  const server = fakeServer({ pingIntervalMs: 20 });
  const client = createClient({
    url: 'ws://fake/ws', token: 't', WebSocket: server.FakeSocket, heartbeatMarginMs: 20, retryWait: () => Promise.resolve(),
  });
  await client.connect();
  server.sockets[0].push('ping', {});
  assert.equal(server.sentOf('pong').length, 1);
  await server.until(() => server.sockets.length >= 2 && server.sentOf('auth').length >= 2, 'a second connection');
  client.close();
});

test('a request times out when no reply comes within its timeout, and the connection stays usable', async () => {
  // The fake server answers connect, auth and ping, and never a read: the timer must decide.
  const server = fakeServer();
  const client = createClient({ url: 'ws://fake/ws', token: 't', WebSocket: server.FakeSocket });
  await withTimeout(client.connect(), 5000, 'connect');
  const error = await client.list('order', {}, { timeoutMs: 50 }).then(
    () => assert.fail('the request succeeded'),
    (e) => e,
  );
  assert.ok(error instanceof TidingsError);
  assert.equal(error.code, 'TIMEOUT');
  await withTimeout(client.ping(), 5000, 'the connection to stay usable');
  client.close();
});

test('getToken is called once for concurrent needs, and again before the token expires', async () => {
  // Tokens that expire 1.5 s after auth, refreshed 1 s ahead: the client must re-authenticate within a second.
  const server = fakeServer({ expiresInMs: 1500 });
  let calls = 0;
  let release;
  const getToken = () => {
    calls += 1;
    if (calls === 2) return new Promise((r) => (release = () => r(`t${calls}`)));
    return `t${calls}`;
  };
  const client = createClient({ url: 'ws://fake/ws', getToken, WebSocket: server.FakeSocket, refreshBeforeExpiryMs: 1000 });
  await withTimeout(client.connect(), 5000, 'connect');
  assert.equal(calls, 1);

  // Two TOKEN_EXPIRED pushes while the second token is still being fetched: one getToken call serves both.
  const socket = server.sockets[0];
  socket.push('error', { code: 'TOKEN_EXPIRED', message: 'expired', details: { graceMs: 30000, expiredAt: Date.now() } });
  socket.push('error', { code: 'TOKEN_EXPIRED', message: 'expired', details: { graceMs: 30000, expiredAt: Date.now() } });
  await withTimeout(new Promise((r) => { const wait = () => (release ? r() : setImmediate(wait)); wait(); }), 5000, 'the second getToken call');
  assert.equal(calls, 2, 'one call in flight at a time');
  release();
  await server.until(() => server.sentOf('auth').some((m) => m.payload.token === 't2'), 'auth with the fresh token');
  assert.equal(server.sentOf('auth').filter((m) => m.payload.token === 't2').length, 2, 'both needs sent the same token');

  // The refresh before expiry asks for a new token by itself.
  await server.until(() => server.sentOf('auth').some((m) => m.payload.token === 't3'), 'a refresh before expiry');
  client.close();
});

test('after a 4501 close the client reconnects with a fresh token from getToken', async () => {
  const server = fakeServer();
  let calls = 0;
  const client = createClient({
    url: 'ws://fake/ws', getToken: () => `t${(calls += 1)}`, WebSocket: server.FakeSocket, retryWait: () => Promise.resolve(),
  });
  await withTimeout(client.connect(), 5000, 'connect');
  server.sockets[0].drop(4501, 'token expired', false);
  await server.until(() => server.sentOf('auth').some((m) => m.payload.token === 't2'), 'a new connection with a fresh token');
  assert.equal(server.sockets.length, 2);
  client.close();
});

test('events that come with the subscribe reply count toward the subscription: a resume does not repeat them', async (t) => {
  // The topic `order` is at seq 10 when subscribed, and two events follow at once: the fake sends them with the
  // reply in one burst. A subscribe with since gets the reply and the replay of what follows since, also in one
  // burst, as the server does. A subscribe to `secret` is refused.
  const log = [11, 12];
  const event = (seq) => ['event', { eventType: 'order_created', topic: 'order', subscriptionId: 'order', seq, data: { n: seq } }];
  const subscribe = (socket, { requestId, payload: { topic, since } }) => {
    if (topic !== 'order') return socket.burst([['error', { code: 'FORBIDDEN', message: 'no' }, requestId]]);
    const reply = { subscriptionId: 'order', topic, seq: since === undefined ? 10 : 12 };
    if (since !== undefined) reply.recovered = true;
    socket.burst([['subscribe', reply, requestId], ...log.filter((seq) => seq > (since ?? 10)).map(event)]);
  };
  const server = fakeServer({ answers: { subscribe } });
  const client = createClient({ url: 'ws://fake/ws', token: 't', WebSocket: server.FakeSocket, retryWait: () => Promise.resolve() });
  t.after(() => client.close());
  const seqs = [];
  client.on('event', (e) => seqs.push(e.seq));
  await withTimeout(client.connect(), 5000, 'connect');
  await client.subscribe('order');
  await assert.rejects(client.subscribe('secret'), (e) => e instanceof TidingsError && e.code === 'FORBIDDEN');

  const connected = new Promise((r) => client.on('state', (s) => s === 'connected' && r()));
  client.reconnect();
  await withTimeout(connected, 5000, 'the reconnection');
  assert.deepEqual(seqs, [11, 12], 'each event once');
  // The refused topic is not resumed, and the resume starts after the events already delivered.
  assert.deepEqual(server.sockets[1].sent.filter((m) => m.type === 'subscribe').map((m) => m.payload), [{ topic: 'order', since: 12 }]);
  assert.deepEqual(client.subscriptions().map((s) => [s.topic, s.lastSeq]), [['order', 12]]);
});

test('a query subscription\'s reply and events in one burst: the events come after subscribe() resolved, by its id', async (t) => {
  // The fake answers a subscribe with a query and a snapshot, and sends two events right behind the reply: one of
  // the query's and one of the plain topic's, which the client also holds.
  const query = { field: 'data.status', eq: 'pending' };
  const event = (subscriptionId, seq) => ['event', { eventType: 'order_entered', topic: 'order', subscriptionId, seq, id: `O-${seq}`, data: {} }];
  const subscribe = (socket, { requestId, payload }) => {
    if (payload.query === undefined) return socket.burst([['subscribe', { subscriptionId: 'order', topic: 'order', seq: 10 }, requestId]]);
    const item = { resourceType: 'order', id: 'O-1', version: 1, ownerId: 'u', createdAt: 1, updatedAt: 1, data: {} };
    const reply = { subscriptionId: 'order?0123456789abcdef', topic: 'order', seq: 10, items: [item], nextCursor: null };
    socket.burst([['subscribe', reply, requestId], event('order?0123456789abcdef', 11), event('order', 12)]);
  };
  const server = fakeServer({ answers: { subscribe } });
  const client = createClient({ url: 'ws://fake/ws', token: 't', WebSocket: server.FakeSocket });
  t.after(() => client.close());
  await withTimeout(client.connect(), 5000, 'connect');
  await client.subscribe('order');
  const seen = [];
  client.on('event', (e) => seen.push([e.subscriptionId, e.seq]));
  const sub = await client.subscribe('order', { query, snapshot: true });
  // The plain topic's event is not held; the query's waits until the caller has the Subscription.
  assert.deepEqual(seen, [['order', 12]]);
  assert.deepEqual([sub.subscriptionId, sub.lastSeq, sub.items.map((r) => r.id), sub.nextCursor], ['order?0123456789abcdef', 10, ['O-1'], null]);
  await withTimeout(new Promise((r) => client.on('event', r)), 5000, 'the held event');
  assert.deepEqual(seen, [['order', 12], ['order?0123456789abcdef', 11]]);
  assert.deepEqual(client.subscriptions().map((s) => [s.subscriptionId, s.lastSeq]), [['order', 12], ['order?0123456789abcdef', 11]]);
});

test('a resubscription and a queued request answered RATE_LIMITED go out again after retryAfterMs', async (t) => {
  // On the second socket the fake refuses the first subscribe and the first read, as a server whose bucket is empty.
  const refused = new Set();
  const refuseOnce = (socket, message, answer) => {
    if (socket === server.sockets[1] && !refused.has(message.type)) {
      refused.add(message.type);
      const error = { code: 'RATE_LIMITED', message: 'too many messages; retry in 40 ms', details: { retryAfterMs: 40 } };
      return socket.burst([['error', error, message.requestId]]);
    }
    socket.burst([[message.type, answer, message.requestId]]);
  };
  const server = fakeServer({
    answers: {
      subscribe: (socket, m) => refuseOnce(socket, m, { subscriptionId: 'order', topic: 'order', seq: 0, recovered: m.payload.since === undefined ? null : true }),
      read: (socket, m) => refuseOnce(socket, m, { resourceType: 'order', id: 'X', version: 1, ownerId: 'u', createdAt: 1, updatedAt: 1, data: {} }),
    },
  });
  let release;
  const client = createClient({
    url: 'ws://fake/ws', token: 't', WebSocket: server.FakeSocket, retryWait: () => new Promise((r) => (release = r)),
  });
  t.after(() => client.close());
  const ended = [];
  client.on('unsubscribed', (u) => ended.push(u.reason.code));
  await withTimeout(client.connect(), 5000, 'connect');
  await client.subscribe('order');
  client.reconnect();
  const queued = client.read('order', 'X');
  release();
  const resource = await withTimeout(queued, 5000, 'the queued read');
  assert.equal(resource.id, 'X');
  assert.deepEqual(ended, []);
  assert.deepEqual(client.subscriptions().map((s) => s.topic), ['order']);
  // Each went out twice on the second socket, the second time after the wait the server asked for.
  const second = server.sockets[1].sent.filter((m) => m.type === 'subscribe' || m.type === 'read');
  assert.deepEqual(second.map((m) => m.type).sort(), ['read', 'read', 'subscribe', 'subscribe']);
  const subscribes = second.filter((m) => m.type === 'subscribe');
  assert.ok(subscribes[1].timestamp - subscribes[0].timestamp >= 40, 'the resubscription waited retryAfterMs');
});

test('with a server that states protocol 1.0, a query or a snapshot fails at once and nothing is sent', async (t) => {
  const server = fakeServer({ protocolVersion: '1.0' });
  const client = createClient({ url: 'ws://fake/ws', token: 't', WebSocket: server.FakeSocket });
  t.after(() => client.close());
  await withTimeout(client.connect(), 5000, 'connect');
  const query = { field: 'data.status', eq: 'pending' };
  for (const attempt of [
    () => client.subscribe('order', { query }),
    () => client.subscribe('order', { snapshot: true }),
    () => client.list('order', { query }),
    () => client.list('order', { orderBy: ['status', '-totalAmount'] }),
  ]) {
    const error = await attempt().catch((e) => e);
    assert.equal(error.code, 'UNSUPPORTED_VERSION', String(error));
    assert.equal(error.details.serverVersion, '1.0');
  }
  assert.deepEqual(server.sentOf('subscribe'), []);
  assert.deepEqual(server.sentOf('read'), []);
});

test('events in one burst with a plain subscribe reply reach the listeners of its handle, added once it resolved', async (t) => {
  const event = (seq) => ['event', { eventType: 'order_created', topic: 'order', subscriptionId: 'order', seq, data: {} }];
  const subscribe = (socket, { requestId }) => socket.burst([['subscribe', { subscriptionId: 'order', topic: 'order', seq: 10 }, requestId], event(11), event(12)]);
  const server = fakeServer({ answers: { subscribe } });
  const client = createClient({ url: 'ws://fake/ws', token: 't', WebSocket: server.FakeSocket });
  t.after(() => client.close());
  const global = [];
  client.on('event', (e) => global.push(e.seq));
  await withTimeout(client.connect(), 5000, 'connect');
  const handle = await client.subscribe('order');
  // The client's own callback heard them with the reply; the handle held them for its caller.
  assert.deepEqual(global, [11, 12]);
  const seqs = [];
  handle.on('event', (e) => seqs.push(e.seq));
  await withTimeout(new Promise((r) => handle.on('event', (e) => e.seq === 12 && r())), 5000, 'the held events');
  assert.deepEqual(seqs, [11, 12]);
  assert.equal(handle.lastSeq, 10, 'lastSeq stays as of the reply');
});

test('a subscription that the server ends in one burst with its reply and an event: each handle hears the event, then left', async (t) => {
  // The resource is deleted right as it is subscribed to: the reply, its `_deleted` event and the server's
  // `unsubscribe` come in one read, before the handles let go of what they hold for their callers.
  const topic = 'order:O-1';
  const deleted = { eventType: 'order_deleted', topic, subscriptionId: topic, seq: 2, resourceType: 'order', id: 'O-1', version: 2, data: {} };
  const end = { subscriptionId: topic, topic, reason: { code: 'NOT_FOUND', message: 'the order was deleted' } };
  let ending;
  const subscribe = (socket, { requestId }) => {
    socket.burst([['subscribe', { subscriptionId: topic, topic, seq: 1 }, requestId]]);
    ending = () => socket.burst([['event', deleted], ['unsubscribe', end]]);
  };
  const server = fakeServer({ answers: { subscribe } });
  const client = createClient({ url: 'ws://fake/ws', token: 't', WebSocket: server.FakeSocket });
  t.after(() => client.close());
  const heard = [];
  client.on('event', (e) => heard.push(['client', e.eventType]));
  client.on('unsubscribed', (u) => heard.push(['client', u.reason.code]));
  await withTimeout(client.connect(), 5000, 'connect');
  const handles = [await client.subscribe(topic), await client.subscribe(topic)];
  // Both handles still hold (they let go in a later task) when the event and the end arrive.
  ending();
  const lefts = handles.map((handle, n) => {
    handle.on('event', (e) => heard.push([n, e.eventType]));
    return new Promise((r) => handle.on('left', (u) => (heard.push([n, u.reason.code]), r())));
  });
  const types = [];
  const loop = (async () => {
    for await (const event of handles[0]) types.push(event.eventType);
  })();
  await withTimeout(Promise.all([...lefts, loop]), 5000, 'every handle to hear left');
  assert.deepEqual(types, ['order_deleted']);
  assert.deepEqual(heard.filter(([who]) => who === 0), [[0, 'order_deleted'], [0, 'NOT_FOUND']]);
  assert.deepEqual(heard.filter(([who]) => who === 1), [[1, 'order_deleted'], [1, 'NOT_FOUND']]);
  assert.deepEqual(heard.filter(([who]) => who === 'client'), [['client', 'order_deleted'], ['client', 'NOT_FOUND']]);
  assert.deepEqual(handles.map((h) => h.active), [false, false]);
  assert.deepEqual(client.subscriptions(), []);
});

test('a query subscription that the server ends right behind its reply and an event: its events, then its end, in order', async (t) => {
  // The client holds a query subscription's events from its own listeners until subscribe() resolved; an end that
  // the server pushed meanwhile waits behind them, for the client's listeners and for the handle.
  const query = { field: 'data.status', eq: 'pending' };
  const id = 'order?0123456789abcdef';
  const entered = { eventType: 'order_entered', topic: 'order', subscriptionId: id, seq: 11, resourceType: 'order', id: 'O-1', version: 2, data: {} };
  const end = { subscriptionId: id, topic: 'order', reason: { code: 'FORBIDDEN', message: 'no longer allowed' } };
  const subscribe = (socket, { requestId }) =>
    socket.burst([['subscribe', { subscriptionId: id, topic: 'order', seq: 10, items: [], nextCursor: null }, requestId], ['event', entered], ['unsubscribe', end]]);
  const server = fakeServer({ answers: { subscribe } });
  const client = createClient({ url: 'ws://fake/ws', token: 't', WebSocket: server.FakeSocket });
  t.after(() => client.close());
  const heard = [];
  client.on('event', (e) => heard.push(['client', e.eventType]));
  await withTimeout(client.connect(), 5000, 'connect');
  const clientEnd = new Promise((r) => client.on('unsubscribed', (u) => (heard.push(['client', u.reason.code]), r())));
  const handle = await client.subscribe('order', { query, snapshot: true });
  assert.deepEqual(heard, [], 'nothing is told before subscribe() resolved');
  handle.on('event', (e) => heard.push(['handle', e.eventType]));
  const left = new Promise((r) => handle.on('left', (u) => (heard.push(['handle', u.reason.code]), r())));
  await withTimeout(Promise.all([left, clientEnd]), 5000, 'the end, for the client and for the handle');
  assert.deepEqual(heard.filter(([who]) => who === 'client'), [['client', 'order_entered'], ['client', 'FORBIDDEN']]);
  assert.deepEqual(heard.filter(([who]) => who === 'handle'), [['handle', 'order_entered'], ['handle', 'FORBIDDEN']]);
  assert.equal(handle.active, false);
  assert.deepEqual(client.subscriptions(), []);
});
