// Optimistic and offline writes: with an outbox, every create, update and delete is kept there first, shown in live
// collections at once, and sent in order, one at a time, with its own requestId on every try, until the server
// applies it (confirmed) or refuses it (rolled back).
import {
  ClientErrorCode,
  ServerErrorCode,
  TidingsError,
  type FieldError,
  type RequestPayload,
} from './common.js';
import type { Settings } from './defaults.js';
import type { ClientEvents } from './options.js';
import {
  isPendingId,
  pendingId,
  type Outbox,
  type PendingWrite,
  type PendingWrites,
  type WriteChange,
  type WriteKind,
  type WriteResult,
} from './outbox.js';
import { retryAfter, type Requests } from './requests.js';
import { copy } from './state-patch.js';
import { serverSpeaks, type ClientState } from './state.js';

/** The outbox's engine, as the client and its live collections use it. */
export interface Writes extends PendingWrites {
  /**
   * Adds a write to the outbox and sends it when it can. Resolves with the server's result; rejects with the
   * server's error once the write is rolled back. `id` is ignored for a create, which gets a temporary one.
   */
  write(
    kind: WriteKind,
    resourceType: string,
    id: string | undefined,
    data: Record<string, unknown> | undefined,
    expectedVersion: number | undefined,
    requestId: string | undefined,
  ): Promise<WriteResult>;
  /** A connection is ready: sends what waits. */
  resume(): void;
}

/** What the engine needs of the client around it. */
export interface WritesContext {
  outbox: Outbox;
  state: ClientState;
  settings: Settings;
  request: Requests['request'];
  emit<K extends keyof ClientEvents>(name: K, ...args: Parameters<ClientEvents[K]>): void;
}

/**
 * Failures after which a write is sent again, as it is, on a later try: the connection went or did not answer,
 * and the write may or may not have been applied, which its requestId makes safe to find out by sending it again.
 * UNAVAILABLE says nothing was changed, or that no one knows (`outcome: "unknown"`), and is tried again after its
 * retryAfterMs. Any other error is the server's final word: the write is rolled back.
 */
const AGAIN = new Set<string>([
  ClientErrorCode.CONNECTION_LOST,
  ClientErrorCode.CLOSED,
  ClientErrorCode.TIMEOUT,
  ClientErrorCode.DISCONNECTED,
  ServerErrorCode.RATE_LIMITED,
  ServerErrorCode.UNAVAILABLE,
]);

/** The longest wait before a write that failed on a live connection is tried again, in ms. */
const MAX_RETRY_MS = 30000;

/** A write with what the engine knows of it beyond the store: when the store holds its last state. */
interface Entry {
  write: PendingWrite;
  stored: Promise<void>;
}

/** Those waiting for a write's outcome in this process: the callers of create, update and delete. */
interface Waiter {
  resolve(result: WriteResult): void;
  reject(error: TidingsError): void;
}

/** A PendingWrite before it is frozen. */
type Draft = { -readonly [K in keyof PendingWrite]: PendingWrite[K] };

/** The engine of the client with this context. It starts reading the outbox back at once. */
export function createWrites({ outbox, state, settings, request, emit }: WritesContext): Writes {
  const log = settings.logger;
  let entries: Entry[] = [];
  const waiters = new Map<string, Waiter[]>();
  const watchers = new Set<(change: WriteChange) => void>();
  /** The server's id of each create confirmed in this process, by its temporary id. */
  const confirmedIds = new Map<string, string>();
  let nextPosition = 1;
  let draining = false;
  let wanted = false;
  let retryTimer: ReturnType<typeof setTimeout> | undefined;
  let retryMs = 1000;

  /** The writes the store held, first in line; those written meanwhile follow them. */
  const loaded = outbox.load().then(
    (held) => {
      const restored = held.filter(isWrite).sort((a, b) => a.position - b.position);
      nextPosition = (restored[restored.length - 1]?.position ?? 0) + 1;
      // A write made meanwhile with the requestId of one read back is that write: its caller waits for that one.
      const known = new Set(restored.map((write) => write.requestId));
      const early = entries.filter((entry) => !known.has(entry.write.requestId));
      entries = restored.map((write) => ({ write: Object.freeze(write), stored: Promise.resolve() }));
      for (const entry of early) {
        entry.write = Object.freeze({ ...entry.write, position: nextPosition++ });
        entries.push(entry);
      }
      if (restored.length > 0) log.info(`the outbox holds ${restored.length} writes from before`);
      changed({ kind: 'loaded' });
    },
    (error: unknown) => {
      // Without its store the outbox still works for this process: the writes go out from memory.
      log.error(`the outbox could not be read: ${String(error)}`, error);
      emit('error', new TidingsError(ClientErrorCode.OUTBOX_FAILED, `the outbox could not be read: ${String(error)}`));
    },
  );

  /** The store's changes, one at a time and in order, after the load: a put always lands before its delete. */
  let chain: Promise<void> = loaded;
  function store(change: () => Promise<void>): Promise<void> {
    const next = chain.then(change).catch((error: unknown) => {
      log.error(`the outbox could not keep a change: ${String(error)}`, error);
      emit('error', new TidingsError(ClientErrorCode.OUTBOX_FAILED, `the outbox could not keep a change: ${String(error)}`));
    });
    chain = next;
    return next;
  }

  /** Keeps the entry's write as it is then; not once it has left the outbox, whose delete follows anyway. */
  function keep(entry: Entry): void {
    entry.stored = store(() => (entries.includes(entry) ? outbox.put(entry.write) : Promise.resolve()));
  }

  function changed(change: WriteChange): void {
    for (const watcher of [...watchers]) watcher(change);
    emit('outbox', pending());
  }

  function pending(resourceType?: string): readonly PendingWrite[] {
    const writes = entries.map((entry) => entry.write);
    return resourceType === undefined ? writes : writes.filter((write) => write.resourceType === resourceType);
  }

  function write(
    kind: WriteKind,
    resourceType: string,
    id: string | undefined,
    data: Record<string, unknown> | undefined,
    expectedVersion: number | undefined,
    requestId = settings.generateId(),
  ): Promise<WriteResult> {
    const promise = new Promise<WriteResult>((resolve, reject) => {
      const list = waiters.get(requestId) ?? [];
      list.push({ resolve, reject });
      waiters.set(requestId, list);
    });
    // A write whose requestId is in the outbox already is that write: the caller waits for it.
    if (entries.some((entry) => entry.write.requestId === requestId)) return promise;
    // An id of a create confirmed already is the server's now.
    const target = kind === 'create' ? pendingId(requestId) : (confirmedIds.get(id as string) ?? (id as string));
    const draft: Draft = { requestId, kind, resourceType, id: target, position: nextPosition++, writtenAt: Date.now() };
    if (data !== undefined) draft.data = copy(data);
    // A pending create's version is not known when the write is made; it goes after the create, at any version.
    if (expectedVersion !== undefined && !isPendingId(target)) draft.expectedVersion = expectedVersion;
    if (state.userId !== undefined) draft.userId = state.userId;
    const entry: Entry = { write: Object.freeze(draft), stored: Promise.resolve() };
    entries.push(entry);
    keep(entry);
    changed({ kind: 'queued', write: entry.write });
    kick();
    return promise;
  }

  function watch(listener: (change: WriteChange) => void): () => void {
    watchers.add(listener);
    return () => {
      watchers.delete(listener);
    };
  }

  /** Starts sending, or asks the sending under way to look again once it has done. */
  function kick(): void {
    wanted = true;
    if (draining) return;
    draining = true;
    void (async () => {
      try {
        while (wanted) {
          wanted = false;
          await drain();
        }
      } finally {
        draining = false;
      }
    })();
  }

  /** Sends the writes in order, one at a time, while the client is authenticated. */
  async function drain(): Promise<void> {
    await loaded;
    for (;;) {
      const entry = entries[0];
      if (entry === undefined || !state.authenticated) return;
      // Sent only once the store holds it: a reload after this point sends it again rather than losing it.
      await entry.stored;
      if (entries[0] !== entry || !state.authenticated) continue;
      if (!(await send(entry))) return;
    }
  }

  /** Sends one write; false when it must wait for a later try. */
  async function send(entry: Entry): Promise<boolean> {
    const userId = state.userId;
    if (entry.write.userId !== undefined && userId !== undefined && entry.write.userId !== userId) {
      const message = `this write was made as ${entry.write.userId}; the client is signed in as ${userId}, and does not make it as them`;
      const details = { previousUserId: entry.write.userId, userId };
      reject(entry, new TidingsError(ClientErrorCode.USER_CHANGED, message, details, entry.write.requestId));
      return true;
    }
    if (entry.write.userId === undefined && userId !== undefined) {
      // A write made before the client knew its user is the first user's, from now on and after a reload.
      entry.write = Object.freeze({ ...entry.write, userId });
      keep(entry);
      await entry.stored;
    }
    if (entry.write.kind !== 'create' && isPendingId(entry.write.id)) {
      // Its create is answered before it goes, so the server's id is known unless that create was refused.
      const real = confirmedIds.get(entry.write.id);
      if (real === undefined) {
        reject(entry, dependentError(entry.write, 'its create was refused'));
        return true;
      }
      entry.write = Object.freeze({ ...entry.write, id: real });
      keep(entry);
    }
    try {
      // Confirmed the moment the reply arrives, before the events that came in the same burst are handled: a live
      // collection then holds the new resource under the server's id before its `_created` event, never twice.
      await transmit(entry.write, (result) => {
        retryMs = 1000;
        confirm(entry, result);
      });
      return true;
    } catch (error) {
      const failure = error instanceof TidingsError ? error : new TidingsError(ServerErrorCode.INTERNAL, String(error));
      if (!AGAIN.has(failure.code)) {
        reject(entry, failure);
        return true;
      }
      log.warn(`a write of the outbox waits for another try: ${failure.message}`, failure);
      // On a connection that stays up, later; else the next connection resumes the sending.
      if (state.authenticated) later(failure.code === ServerErrorCode.UNAVAILABLE ? retryAfter(failure.details) : retryMs);
      return false;
    }
  }

  function later(ms: number): void {
    clearTimeout(retryTimer);
    retryTimer = setTimeout(kick, ms);
    retryMs = Math.min(retryMs * 2, MAX_RETRY_MS);
  }

  /**
   * Sends a write with its requestId. A create is remembered by the server under it (docs/protocol.md, 7.6). An
   * update or a delete is not, so it goes as a batch of one operation, which is (7.8): sent again after a lost
   * reply, it is answered with the first reply and applied once. A server below 1.2 has no batch; there they go as
   * they are, and only an expectedVersion keeps a repeat from applying twice.
   */
  async function transmit(write: PendingWrite, applied: (result: WriteResult) => void): Promise<void> {
    const options = { requestId: write.requestId, internal: true };
    const onReply = (reply: { payload: WriteResult }) => applied(reply.payload);
    const { resourceType, id } = write;
    const expected = write.expectedVersion === undefined ? {} : { expectedVersion: write.expectedVersion };
    if (write.kind === 'create') {
      await request('create', { resourceType, data: write.data ?? {} }, { ...options, onReply });
      return;
    }
    if (!serverSpeaks(state, 2)) {
      if (write.kind === 'update') await request('update', { resourceType, id, patch: write.data ?? {}, ...expected }, { ...options, onReply });
      else await request('delete', { resourceType, id, ...expected }, { ...options, onReply });
      return;
    }
    const operation =
      write.kind === 'update' ? { op: 'update', resourceType, id, patch: write.data ?? {}, ...expected } : { op: 'delete', resourceType, id, ...expected };
    const operations = [operation] as unknown as RequestPayload<'batch'>['operations'];
    let answered = false;
    const onBatch = (reply: { payload: { results: { op: string }[] } }) => {
      const [first] = reply.payload.results;
      if (first === undefined) return;
      answered = true;
      const { op: _op, ...result } = first;
      applied(result as WriteResult);
    };
    try {
      await request('batch', { operations }, { ...options, onReply: onBatch });
    } catch (error) {
      throw asSingle(error);
    }
    if (!answered) throw new TidingsError(ClientErrorCode.INVALID_REPLY, 'the batch of one write was answered with no result');
  }

  function remove(entry: Entry): void {
    entries = entries.filter((other) => other !== entry);
    void store(() => outbox.delete(entry.write.requestId));
  }

  function settle(requestId: string, outcome: (waiter: Waiter) => void): void {
    const list = waiters.get(requestId) ?? [];
    waiters.delete(requestId);
    for (const waiter of list) outcome(waiter);
  }

  function confirm(entry: Entry, result: WriteResult): void {
    const write = entry.write;
    if (write.kind === 'create') {
      confirmedIds.set(write.id, result.id);
      // The writes of the new resource made before the reply name it by the server's id from now on; the store
      // holds them so before it lets go of the create, so a reload in between sends the create again, not them.
      for (const other of entries) {
        if (other === entry || other.write.id !== write.id) continue;
        other.write = Object.freeze({ ...other.write, id: result.id });
        keep(other);
      }
    }
    remove(entry);
    changed({ kind: 'confirmed', write, result });
    emit('confirmed', write, result);
    settle(write.requestId, (waiter) => waiter.resolve(result));
  }

  function reject(entry: Entry, error: TidingsError): void {
    const write = entry.write;
    remove(entry);
    log.warn(`the server refused a ${write.kind} of ${write.resourceType} ${write.id}; it is rolled back: ${error.message}`, error);
    changed({ kind: 'rejected', write });
    emit('rejected', error, write);
    settle(write.requestId, (waiter) => waiter.reject(error));
    if (write.kind !== 'create') return;
    // What was written to the resource that will not be goes with it.
    for (const other of entries.filter((e) => e.write.id === write.id)) {
      reject(other, dependentError(other.write, `its create was refused (${error.code})`));
    }
  }

  return { pending, watch, write, resume: kick };
}

/** The error of a write to a pending create that the server refused: the resource does not exist. */
function dependentError(write: PendingWrite, why: string): TidingsError {
  const message = `the ${write.kind} of ${write.resourceType} ${write.id} was not sent: ${why}`;
  return new TidingsError(ServerErrorCode.NOT_FOUND, message, { resourceType: write.resourceType, id: write.id }, write.requestId);
}

/**
 * The error of a batch of one write as the write's own request would have had it: pointers under
 * `/payload/operations/0` point under `/payload`, and `details.index` goes.
 */
function asSingle(error: unknown): unknown {
  if (!(error instanceof TidingsError) || error.details['index'] === undefined) return error;
  const { index: _index, ...details } = error.details;
  const errors = error.errors.map((e: FieldError) => ({ ...e, pointer: e.pointer.replace(/^\/payload\/operations\/0(?=\/|$)/, '/payload') }));
  if (errors.length > 0) details['errors'] = errors;
  return new TidingsError(error.code, error.message, details, error.requestId);
}

/** Whether a value read back from a store is a write this version can send. */
function isWrite(value: unknown): value is PendingWrite {
  const write = value as Partial<PendingWrite> | null;
  return (
    typeof write === 'object' &&
    write !== null &&
    typeof write.requestId === 'string' &&
    (write.kind === 'create' || write.kind === 'update' || write.kind === 'delete') &&
    typeof write.resourceType === 'string' &&
    typeof write.id === 'string' &&
    typeof write.position === 'number'
  );
}
