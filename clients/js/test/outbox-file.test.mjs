// The file outbox across processes, against a real `tidings serve`: a process that wrote while offline, or whose
// create reached the server but not its reply, is killed; a new process with the same file sends what it left, and
// the server holds each order once.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { after, before, test } from 'node:test';
import { pathToFileURL } from 'node:url';
import { fileOutbox } from '../dist/index.js';
import { ROOT, client, eventually, startServer, tempDir, token, withTimeout } from './helpers.mjs';

let server;
let data;
let witness;

before(async () => {
  data = tempDir();
  server = await startServer(data.dir);
  witness = client(server.url, token(data.dir, 'alice'));
  await witness.connect();
});

after(async () => {
  witness?.close();
  await server?.kill('SIGTERM');
  data?.cleanup();
});

const ordersOf = async (productId) => (await witness.list('order', { filter: { productId } })).items;

/**
 * The writing process: a client of alice's with a file outbox that creates one order and says so on stdout. With
 * `offline`, its server cannot be reached, and it says `kept` once the file holds the write; with `sent`, it loses
 * every create reply, and says `sent` once the create went out. Then it waits to be killed.
 */
const WRITER = `
import WebSocket from 'ws';
import { readFileSync } from 'node:fs';
import { createClient, fileOutbox } from ${JSON.stringify(pathToFileURL(join(ROOT, 'clients/js/dist/index.js')).href)};
const [url, token, path, mode, productId] = process.argv.slice(1);
class Deaf extends WebSocket {
  send(text) {
    super.send(text);
    if (JSON.parse(text).type === 'create') console.log('sent');
  }
  get onmessage() { return super.onmessage; }
  set onmessage(handler) {
    super.onmessage = handler && ((event) => JSON.parse(String(event.data)).type !== 'create' && handler(event));
  }
}
const c = createClient({ url, token, WebSocket: Deaf, outbox: fileOutbox(path), retryWait: () => new Promise(() => {}) });
c.connect().catch(() => undefined);
if (mode === 'sent') await new Promise((resolve) => c.on('state', (s) => s === 'connected' && resolve()));
c.create('order', { productId, quantity: 1, totalAmount: 1 }).catch(() => undefined);
const held = () => { try { return JSON.parse(readFileSync(path, 'utf8')).length; } catch { return 0; } };
if (mode === 'offline') {
  while (held() === 0) await new Promise((resolve) => setImmediate(resolve));
  console.log('kept');
}
setInterval(() => undefined, 60000);
`;

/** Starts the writing process; resolves with it once it printed `line`. */
function writer(args, line) {
  const child = spawn(process.execPath, ['--input-type=module', '-e', WRITER, ...args], {
    cwd: join(ROOT, 'clients/js'),
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const exited = new Promise((resolve) => child.once('exit', resolve));
  const said = new Promise((resolve, reject) => {
    createInterface({ input: child.stdout }).on('line', (text) => text === line && resolve());
    child.once('exit', (code) => reject(new Error(`the writer exited with ${code} before saying ${line}`)));
  });
  return withTimeout(said, 10000, `the writer to say ${line}`).then(() => ({ kill: () => (child.kill('SIGKILL'), exited) }));
}

/** A client of alice's with the file outbox at `path`; resolves with it and the first write it confirms. */
async function drainer(t, path) {
  const c = client(server.url, token(data.dir, 'alice'), { outbox: fileOutbox(path) });
  t.after(() => c.close());
  const confirmed = new Promise((resolve) => c.on('confirmed', (write, result) => resolve({ write, result })));
  await c.connect();
  return { c, confirmed: withTimeout(confirmed, 10000, 'the write to be confirmed') };
}

test('a write made offline by a process that was killed is sent by the next one with the same file', async (t) => {
  const dir = tempDir();
  t.after(() => dir.cleanup());
  const path = join(dir.dir, 'outbox.json');
  // A port no server listens on: the one of a server that was started and stopped.
  const goneData = tempDir();
  t.after(() => goneData.cleanup());
  const gone = await startServer(goneData.dir);
  await gone.kill();
  const child = await writer([gone.url, token(data.dir, 'alice'), path, 'offline', 'H-OFFLINE'], 'kept');
  await child.kill();
  const [kept] = JSON.parse(readFileSync(path, 'utf8'));
  assert.equal(kept.kind, 'create');
  assert.deepEqual(await ordersOf('H-OFFLINE'), [], 'nothing reached the server');

  const { c, confirmed } = await drainer(t, path);
  const { write, result } = await confirmed;
  assert.equal(write.requestId, kept.requestId);
  assert.deepEqual((await ordersOf('H-OFFLINE')).map((r) => r.id), [result.id]);
  assert.deepEqual(c.pendingWrites(), []);
  await eventually(() => JSON.parse(readFileSync(path, 'utf8')).length === 0, 5000, 'the file to be emptied');
});

test('a create the server applied, whose process was killed before the reply, is answered again and made once', async (t) => {
  const dir = tempDir();
  t.after(() => dir.cleanup());
  const path = join(dir.dir, 'outbox.json');
  const child = await writer([server.url, token(data.dir, 'alice'), path, 'sent', 'H-SENT'], 'sent');
  // The server applies it; the reply goes to a process that does not listen, and that is then killed.
  await eventually(async () => (await ordersOf('H-SENT')).length === 1, 10000, 'the server to apply the create');
  await child.kill();
  const [kept] = JSON.parse(readFileSync(path, 'utf8'));
  const [stored] = await ordersOf('H-SENT');

  const { confirmed } = await drainer(t, path);
  const { write, result } = await confirmed;
  assert.equal(write.requestId, kept.requestId);
  assert.equal(result.id, stored.id, 'the first reply, naming the order made then');
  assert.deepEqual((await ordersOf('H-SENT')).map((r) => r.id), [stored.id], 'one order');
});
