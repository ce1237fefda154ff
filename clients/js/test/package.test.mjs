// The package as npm ships it: packed from this tree (prepack builds it), installed into a new project, then both
// imported and required there, as a user of ES modules and a user of CommonJS would.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { pack } from '../scripts/check-package.mjs';
import { tempDir } from './helpers.mjs';

const { version } = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8'));

/** What a consumer script prints of the module it loaded: enough to tell that each part of the API is there. */
const probe = `
  const out = {
    createClient: typeof tidings.createClient,
    version: tidings.VERSION,
    query: tidings.q.and(tidings.q.eq('data.status', 'pending'), tidings.q.gt('version', 1)),
    error: new tidings.TidingsError('TIMEOUT', 'late') instanceof Error,
    closeCode: tidings.CloseCode.TokenExpired,
    decoded: tidings.decodeServer('{"type":"pong","timestamp":1,"payload":{}}').kind,
  };
  console.log(JSON.stringify(out));
`;

/**
 * A TypeScript app that imports the package: options, callbacks, a handle with `using` and for await, a live collection,
 * a batch whose results are typed by their operations, a presence handle, a broadcast, and writes through an outbox.
 */
const TYPED_ESM = `
import { createClient, fileOutbox, indexedDbOutbox, isPendingId, memoryOutbox, q, type BatchOperation, type BatchResult, type FailedAttempt, type LiveCollection, type LiveItem, type LiveStatus, type Outbox, type PendingWrite, type Presence, type PresenceMember, type PresenceStatus, type SubscriptionHandle, type TidingsEvent } from 'tidings';
const seen: string[] = [];
const quiet = () => undefined;
const client = createClient({ url: 'ws://localhost/ws', getToken: () => null, failFast: true, logger: { debug: quiet, info: quiet, warn: quiet, error: quiet } });
client.on('attemptFailed', (failure: FailedAttempt) => seen.push(\`\${failure.attempt} \${failure.code ?? '-'} \${failure.error.code}\`));
export async function run(): Promise<string[]> {
  await client.connect();
  using handle = await client.subscribe('order', { query: q.eq('data.status', 'pending'), snapshot: true });
  const typed: SubscriptionHandle = handle;
  typed.on('left', (info) => seen.push(info.reason.code));
  for (const item of handle.items ?? []) seen.push(item.id);
  const live: LiveCollection = client.live('order', q.eq('data.status', 'pending'), { compare: (a, b) => b.version - a.version });
  const status: LiveStatus = live.status;
  live.subscribe(() => seen.push(\`\${status} \${live.getSnapshot().length} \${live.error?.code ?? ''}\`));
  await live.close();
  // Each result has the type of its operation's kind: a Resource for the create, a DeleteResult for the delete.
  const [made, gone] = await client.batch([
    { op: 'create', resourceType: 'order', data: { productId: 'P1', quantity: 1, totalAmount: 1 } },
    { op: 'delete', resourceType: 'order', id: 'ORD-1', expectedVersion: 2 },
  ]);
  const operations: BatchOperation[] = [{ op: 'update', resourceType: 'order', id: made.id, patch: { quantity: 2 } }];
  const results: BatchResult[] = await client.batch(operations);
  seen.push(\`\${made.op} \${made.version} \${gone.op} \${gone.deletedAt} \${results.length}\`);
  const presence: Presence = client.presence('order:ORD-1', { timeoutMs: 5000 });
  presence.on('update', (member: PresenceMember, previous: PresenceMember) => seen.push(\`\${member.userId} \${String(previous.state['status'])}\`));
  const me: PresenceMember = await presence.join({ name: 'Bob', status: 'editing' });
  const state: PresenceStatus = presence.status;
  seen.push(\`\${me.self} \${state} \${presence.users.get(me.userId)?.length ?? 0} \${presence.members.length}\`);
  await presence.update({ status: null });
  await presence.close();
  const cursor = await client.broadcast('cursor', { x: 1, y: 2 });
  seen.push(cursor.id);
  for await (const event of handle) {
    const e: TidingsEvent = event;
    seen.push(e.eventType);
  }
  return seen;
}
// Optimistic and offline writes: an outbox of any of the three kinds, a live collection's pending items, and the
// outbox's events.
const outbox: Outbox = 'indexedDB' in globalThis ? indexedDbOutbox('app') : fileOutbox('outbox.json');
const writer = createClient({ url: 'ws://localhost/ws', token: 't', outbox: memoryOutbox() });
writer.on('rejected', (error, write: PendingWrite) => seen.push(\`\${error.code} \${write.kind} \${write.requestId}\`));
writer.on('confirmed', (write, result) => seen.push(\`\${isPendingId(write.id)} \${result.id} \${result.version}\`));
writer.on('outbox', (writes) => seen.push(String(writes.length)));
export async function write(): Promise<Outbox> {
  const items: readonly LiveItem[] = writer.live('order').getSnapshot();
  seen.push(...items.filter((item) => item.pending === true).map((item) => item.id));
  const made = await writer.create('order', { productId: 'P1', quantity: 1, totalAmount: 1 });
  await writer.update('order', made.id, { quantity: 2 }, { expectedVersion: made.version });
  seen.push(...writer.pendingWrites().map((w) => w.id));
  return outbox;
}
`;

/** The same as CommonJS, with \`await using\`. */
const TYPED_CJS = `
import { createClient, VERSION } from 'tidings';
const client = createClient({ url: 'ws://localhost/ws', token: 't' });
export async function run(): Promise<string> {
  await using handle = await client.subscribe('order');
  handle.on('event', (e) => void e.seq);
  return VERSION;
}
`;

test('the packed tarball installs into a new project, and both import and require load it', { timeout: 120000 }, () => {
  const { dir, cleanup } = tempDir();
  try {
    const { tarball, files } = pack(dir);
    for (const file of ['package.json', 'README.md', 'CHANGELOG.md', 'LICENSE-MIT', 'LICENSE-APACHE', 'dist/index.js', 'dist/index.d.ts', 'dist/index.cjs', 'dist/index.d.cts', 'dist/tidings.js']) {
      assert.ok(files.includes(file), `the tarball holds ${file}: ${files.join(', ')}`);
    }
    const project = join(dir, 'app');
    mkdirSync(project);
    writeFileSync(join(project, 'package.json'), JSON.stringify({ name: 'app', version: '1.0.0', private: true }));
    // The package has no runtime dependency, so installing it needs no registry.
    execFileSync('npm', ['install', '--offline', '--no-audit', '--no-fund', '--loglevel=error', tarball], { cwd: project, stdio: 'pipe' });
    writeFileSync(join(project, 'esm.mjs'), `import * as tidings from 'tidings';\n${probe}`);
    writeFileSync(join(project, 'cjs.cjs'), `const tidings = require('tidings');\n${probe}`);
    const expected = {
      createClient: 'function',
      version,
      query: { and: [{ field: 'data.status', eq: 'pending' }, { field: 'version', gt: 1 }] },
      error: true,
      closeCode: 4501,
      decoded: 'push',
    };
    for (const script of ['esm.mjs', 'cjs.cjs']) {
      const output = execFileSync(process.execPath, [script], { cwd: project, encoding: 'utf8' });
      assert.deepEqual(JSON.parse(output), expected, script);
    }
    // A strict TypeScript app, as an ES module and as CommonJS, with the lib of ES2022 only and the package's types
    // checked too: every export it uses is typed, and `using` finds Symbol.dispose through the package's types.
    writeFileSync(join(project, 'app.mts'), TYPED_ESM);
    writeFileSync(join(project, 'app.cts'), TYPED_CJS);
    const tsc = new URL('../node_modules/.bin/tsc', import.meta.url).pathname;
    const flags = ['--noEmit', '--strict', '--module', 'nodenext', '--moduleResolution', 'nodenext', '--target', 'es2022', '--lib', 'es2022', '--types', '', '--skipLibCheck', 'false'];
    execFileSync(tsc, [...flags, 'app.mts', 'app.cts'], { cwd: project, encoding: 'utf8' });
    // require() must get the CommonJS build, not Node's require of the ES module, which Node 20 before 20.19 lacks.
    const resolved = execFileSync(process.execPath, ['-p', "require.resolve('tidings')"], { cwd: project, encoding: 'utf8' }).trim();
    assert.match(resolved, /dist[/\\]index\.cjs$/);
  } finally {
    cleanup();
  }
});
