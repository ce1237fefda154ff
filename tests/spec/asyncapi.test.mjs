// docs/asyncapi.yaml, parsed from its path by the official AsyncAPI parser, so that its relative
// $refs to schema/ resolve as any tool would resolve them.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { DiagnosticSeverity, Parser, fromFile } from '@asyncapi/parser';

import { ALL_TYPES, ASYNCAPI_FILE, SCHEMA_DIR, TYPES, messageName } from './protocol.mjs';

const SEVERITY = ['error', 'warning', 'information', 'hint'];
const describe = (d) => `  [${SEVERITY[d.severity] ?? d.severity}] ${d.code}: ${d.message} at ${d.path.join('/') || '(root)'}`;

const { document, diagnostics } = await fromFile(new Parser(), ASYNCAPI_FILE).parse();

/** Every expected message: its name in the document, side, type and committed schema. */
const EXPECTED = Object.entries(TYPES).flatMap(([side, types]) => types.map((type) => ({
  name: messageName(side, type),
  side,
  type,
  schema: JSON.parse(readFileSync(join(SCHEMA_DIR, side, `${type}.json`), 'utf8')),
})));

/** Server messages that are pushes only: they never carry a client's requestId. */
const PUSH_ONLY = new Set(['serverEvent', 'serverNotification', 'serverPing', 'serverDisconnect']);

function requireDocument() {
  assert.ok(document, `the parser returned no document:\n${diagnostics.map(describe).join('\n')}`);
  return document;
}

test('the parser reports no error', () => {
  const errors = diagnostics.filter((d) => d.severity === DiagnosticSeverity.Error);
  assert.deepEqual(errors.map(describe), [], `docs/asyncapi.yaml has ${errors.length} error(s):\n${errors.map(describe).join('\n')}`);
  const others = diagnostics.filter((d) => d.severity !== DiagnosticSeverity.Error);
  if (others.length) console.log(`other diagnostics (not failures):\n${others.map(describe).join('\n')}`);
  requireDocument();
});

test('info and the local server', () => {
  const doc = requireDocument();
  assert.equal(doc.version(), '3.0.0');
  assert.equal(doc.info().title(), 'Tidings');
  assert.equal(doc.info().version(), '1.2.0');
  const local = doc.servers().get('local');
  assert.ok(local, 'no server `local`');
  assert.equal(local.host(), '127.0.0.1:8080');
  assert.equal(local.protocol(), 'ws');
});

test('one channel, at /ws, with the 28 messages', () => {
  const doc = requireDocument();
  assert.deepEqual(doc.channels().all().map((c) => c.id()), ['tidings']);
  const channel = doc.channels().get('tidings');
  assert.equal(channel.address(), '/ws');
  const names = channel.messages().all().map((m) => m.id()).sort();
  assert.deepEqual(names, EXPECTED.map((e) => e.name).sort());
  assert.equal(names.length, 28);
  assert.equal(doc.components().messages().all().length, 28, 'components/messages should hold the 28 messages');
});

test('every message payload is its committed schema, resolved', () => {
  const channel = requireDocument().channels().get('tidings');
  const problems = [];
  for (const { name, side, type, schema } of EXPECTED) {
    const message = channel.messages().get(name);
    if (!message) { problems.push(`${name}: missing`); continue; }
    if (!message.name() || !message.title() || !message.summary()) problems.push(`${name}: needs name, title and summary`);
    const payload = message.payload();
    if (!payload) { problems.push(`${name}: no payload`); continue; }
    const typeConst = payload.properties()?.type?.const();
    if (typeConst !== type) problems.push(`${name}: payload properties.type.const is ${JSON.stringify(typeConst)}, want ${JSON.stringify(type)} (is the $ref to schema/${side}/${type}.json resolved?)`);
    if (payload.title() !== schema.title) problems.push(`${name}: payload title ${JSON.stringify(payload.title())} is not that of schema/${side}/${type}.json (${JSON.stringify(schema.title)})`);
    // The schemas' internal refs (#/definitions/...) must resolve inside each schema file too.
    // A recursive schema (a query's `and` holds queries) resolves into a cycle: each object is written once.
    const written = new WeakSet();
    const once = (_key, value) => {
      if (value === null || typeof value !== 'object') return value;
      if (written.has(value)) return undefined;
      written.add(value);
      return value;
    };
    const unresolved = JSON.stringify(payload.json(), once).match(/"\$ref":"[^"]*"/g);
    if (unresolved) problems.push(`${name}: unresolved ${unresolved.join(', ')}`);
  }
  assert.deepEqual(problems, []);
});

test('each of the 17 protocol types appears', () => {
  const channel = requireDocument().channels().get('tidings');
  const seen = new Set(channel.messages().all().map((m) => m.payload()?.properties()?.type?.const()));
  assert.deepEqual(ALL_TYPES.filter((t) => !seen.has(t)), []);
  assert.equal(ALL_TYPES.length, 17);
});

test('operations: the server receives client messages and sends server messages, as replies or pushes', () => {
  const doc = requireDocument();
  const problems = [];
  const received = new Map(); // client message -> operations
  const sent = new Map(); // server message -> operations (as a send operation, or as a reply)
  const note = (map, name, op) => map.set(name, [...(map.get(name) ?? []), op]);
  for (const op of doc.operations().all()) {
    const opId = op.id();
    if (op.channels().all().map((c) => c.id()).join() !== 'tidings') problems.push(`${opId}: not on channel tidings`);
    const messages = op.messages().all().map((m) => m.id());
    if (messages.length === 0) problems.push(`${opId}: no message`);
    const reply = op.reply();
    const replies = reply ? reply.messages().all().map((m) => m.id()) : [];
    if (op.action() === 'receive') {
      for (const m of messages) {
        if (!m.startsWith('client')) problems.push(`${opId}: receives ${m}, a server message`);
        note(received, m, opId);
      }
      for (const m of replies) {
        if (!m.startsWith('server')) problems.push(`${opId}: replies with ${m}, a client message`);
        note(sent, m, `${opId} (reply)`);
      }
    } else {
      for (const m of messages) {
        if (!m.startsWith('server')) problems.push(`${opId}: sends ${m}, a client message`);
        if (PUSH_ONLY.has(m) || m === 'serverUnsubscribe' || m === 'serverError') note(sent, m, opId);
        else problems.push(`${opId}: sends ${m} unasked, but it is only ever a reply`);
      }
      if (reply) problems.push(`${opId}: a push has no reply`);
    }
  }
  for (const { name, side } of EXPECTED) {
    const ops = (side === 'client' ? received : sent).get(name) ?? [];
    if (ops.length === 0) problems.push(`${name}: in no operation`);
    if (side === 'client' && ops.length > 1) problems.push(`${name}: received by ${ops.join(', ')}`);
  }
  assert.deepEqual(problems, []);
});

/** docs/protocol.md, "Requests and replies": what the server may answer to each request. */
const REPLIES = {
  clientConnect: ['serverConnect', 'serverError'],
  clientPing: ['serverPong', 'serverError'],
  clientAuth: ['serverAuthSuccess', 'serverAuthFailed', 'serverError'],
  ...Object.fromEntries(['create', 'read', 'update', 'delete', 'subscribe', 'unsubscribe', 'batch']
    .map((t) => [messageName('client', t), [messageName('server', t), 'serverError']])),
  clientPong: [],
  clientDisconnect: [],
};

test('each request has the replies of the spec, and the other client messages none', () => {
  const doc = requireDocument();
  const actual = {};
  for (const op of doc.operations().all().filter((o) => o.action() === 'receive')) {
    const replies = op.reply()?.messages().all().map((m) => m.id()) ?? [];
    for (const m of op.messages().all()) actual[m.id()] = [...replies].sort();
  }
  const expected = Object.fromEntries(Object.entries(REPLIES).map(([k, v]) => [k, [...v].sort()]));
  assert.deepEqual(actual, expected);
});

test('replies are correlated by the envelope requestId; pushes-only messages are not', () => {
  const doc = requireDocument();
  const ids = doc.components().correlationIds();
  assert.equal(ids.length, 1, 'one shared correlation id');
  assert.equal(ids.get('requestId')?.location(), '$message.payload#/requestId');
  const problems = [];
  const replyMessages = new Set(doc.operations().all().flatMap((op) => op.reply()?.messages().all().map((m) => m.id()) ?? []));
  const requestMessages = new Set(doc.operations().all().filter((op) => op.reply()).flatMap((op) => op.messages().all().map((m) => m.id())));
  for (const message of doc.channels().get('tidings').messages().all()) {
    const name = message.id();
    const location = message.correlationId()?.location();
    if ((replyMessages.has(name) || requestMessages.has(name)) && location !== '$message.payload#/requestId') {
      problems.push(`${name}: a request or reply without the requestId correlation id`);
    }
    if (PUSH_ONLY.has(name) && location !== undefined) problems.push(`${name}: a push with a correlation id`);
  }
  assert.deepEqual(problems, []);
});
