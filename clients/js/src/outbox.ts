// The outbox's shapes and its stores: where writes wait until the server has them (memory, a file in Node, or
// IndexedDB in browsers), so that an app restarted or a page reloaded sends what it wrote while offline.
import type { Resource } from './common.js';
import type { DeleteResult } from './options.js';

/** What a write does: the request it goes out as. */
export type WriteKind = 'create' | 'update' | 'delete';

/**
 * A write in the outbox: everything needed to send it again, exactly as it first went out, from another process or
 * page. It is plain JSON, as a store keeps it.
 */
export interface PendingWrite {
  /** Its requestId, the same every time it is sent: the server answers a repeat with its first reply. */
  readonly requestId: string;
  readonly kind: WriteKind;
  readonly resourceType: string;
  /**
   * The resource it writes. For a create, a temporary id, `pending:` and the requestId, since the server chooses
   * ids (docs/protocol.md, 7.1): it names the new resource in live collections, and in updates and deletes of it
   * made before the server replied, until the reply brings the server's id.
   */
  readonly id: string;
  /** A create's data, or an update's merge patch; absent for a delete. */
  readonly data?: Record<string, unknown>;
  /** An update's or a delete's expectedVersion, if it was given. */
  readonly expectedVersion?: number;
  /** The user it was written as, once the client knew: it is never sent as another. */
  readonly userId?: string;
  /** Its place in the outbox: writes go out by increasing position. */
  readonly position: number;
  /** When it was written, Unix ms: a pending create's createdAt in live collections. */
  readonly writtenAt: number;
}

/**
 * Where writes wait: `memoryOutbox()`, `fileOutbox(path)` in Node, `indexedDbOutbox(name)` in browsers, or one of
 * the app's own (AsyncStorage, SQLite) with these three methods. The client calls them one at a time, in order,
 * and sends a write only once put() has resolved, so a store must resolve only once the write is kept.
 */
export interface Outbox {
  /** Every write it holds, in any order; the client sorts them by position. */
  load(): Promise<PendingWrite[]>;
  /** Keeps this write: a new one, or a new state of one it holds (by requestId). */
  put(write: PendingWrite): Promise<void>;
  /** Forgets the write with this requestId; nothing happens when it holds none. */
  delete(requestId: string): Promise<void>;
}

/** What the server answers a write with: the Resource after a create or an update, the DeleteResult of a delete. */
export type WriteResult = Resource | DeleteResult;

/** A change of the pending writes, as live collections hear of it. */
export type WriteChange =
  | { kind: 'queued' | 'rejected'; write: PendingWrite }
  | { kind: 'confirmed'; write: PendingWrite; result: WriteResult }
  | { kind: 'loaded' };

/** The pending writes of a client, as its live collections see them. */
export interface PendingWrites {
  /** The writes waiting or in flight, in the order they go out; only those of one type when it is given. */
  pending(resourceType?: string): readonly PendingWrite[];
  /** Hears every change of the pending writes; returns a function that stops it. */
  watch(listener: (change: WriteChange) => void): () => void;
}

/** The prefix of a pending create's temporary id; `:` never appears in a server's id (*ResourceId*, section 17). */
export const PENDING_ID_PREFIX = 'pending:';

/** The temporary id of the create with this requestId. */
export function pendingId(requestId: string): string {
  return `${PENDING_ID_PREFIX}${requestId}`;
}

/** Whether an id is a pending create's temporary id rather than the server's. */
export function isPendingId(id: string): boolean {
  return id.startsWith(PENDING_ID_PREFIX);
}

/**
 * An outbox in memory: writes survive a reconnect, and a new client given the same outbox, but not the process.
 * It is what optimistic writes need without persistence.
 */
export function memoryOutbox(): Outbox {
  const writes = new Map<string, PendingWrite>();
  return {
    load: () => Promise.resolve([...writes.values()]),
    put(write) {
      writes.set(write.requestId, write);
      return Promise.resolve();
    },
    delete(requestId) {
      writes.delete(requestId);
      return Promise.resolve();
    },
  };
}

/** The parts of node:fs/promises that the file outbox uses; the package declares no Node types. */
interface FileSystem {
  readFile(path: string, encoding: 'utf8'): Promise<string>;
  writeFile(path: string, text: string): Promise<void>;
  rename(from: string, to: string): Promise<void>;
}

/** node:fs/promises, found without an import that a browser bundler would try to resolve. */
async function fileSystem(): Promise<FileSystem> {
  const node = (globalThis as { process?: { getBuiltinModule?: (name: string) => unknown } }).process;
  const builtin = node?.getBuiltinModule?.('node:fs/promises');
  if (builtin !== undefined) return builtin as FileSystem;
  // Node before 20.16 has no getBuiltinModule. The name is a variable, so that bundlers leave the import alone.
  const name = 'node:fs/promises';
  return (await import(/* webpackIgnore: true */ /* @vite-ignore */ name)) as FileSystem;
}

/**
 * An outbox in a JSON file, for Node: the writes survive the process. Each change writes the whole file anew, to a
 * temporary file beside it that is then renamed over it, so a crash leaves the old contents or the new, never half
 * of them. One client at a time may use a file.
 */
export function fileOutbox(path: string): Outbox {
  let writes: Map<string, PendingWrite> | undefined;
  const read = async (): Promise<Map<string, PendingWrite>> => {
    if (writes !== undefined) return writes;
    const fs = await fileSystem();
    let text: string | undefined;
    try {
      text = await fs.readFile(path, 'utf8');
    } catch (error) {
      // No file yet is an empty outbox; any other failure is the app's to know.
      if ((error as { code?: string }).code !== 'ENOENT') throw error;
    }
    const held = text === undefined ? [] : (JSON.parse(text) as PendingWrite[]);
    writes = new Map(held.map((write) => [write.requestId, write]));
    return writes;
  };
  const save = async (held: Map<string, PendingWrite>): Promise<void> => {
    const fs = await fileSystem();
    const temporary = `${path}.${Date.now()}.tmp`;
    await fs.writeFile(temporary, JSON.stringify([...held.values()]));
    await fs.rename(temporary, path);
  };
  return {
    load: async () => [...(await read()).values()],
    async put(write) {
      const held = await read();
      held.set(write.requestId, write);
      await save(held);
    },
    async delete(requestId) {
      const held = await read();
      if (held.delete(requestId)) await save(held);
    },
  };
}

/** The object store of an IndexedDB outbox: one record per write, keyed by requestId. */
const STORE = 'writes';

/** A request of IndexedDB as a promise. */
function done<T>(request: IDBRequest<T>): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    request.onsuccess = () => resolve(request.result);
    request.onerror = () => reject(request.error);
  });
}

/**
 * An outbox in IndexedDB, for browsers: the writes survive a reload, and the browser's restart. The database
 * `name` holds one object store, `writes`, of PendingWrite records keyed by requestId. Name it after the user (a
 * page of another user must not send them; the client refuses to, USER_CHANGED) and after the app. Two tabs with
 * one outbox may both send a write; the server applies it once, since its requestId is the same.
 * @param name the database's name
 */
export function indexedDbOutbox(name: string): Outbox {
  let opened: Promise<IDBDatabase> | undefined;
  const database = (): Promise<IDBDatabase> => {
    opened ??= new Promise<IDBDatabase>((resolve, reject) => {
      const factory = (globalThis as { indexedDB?: IDBFactory }).indexedDB;
      if (factory === undefined) return reject(new Error('there is no IndexedDB here: use memoryOutbox() or fileOutbox(path)'));
      const request = factory.open(name, 1);
      request.onupgradeneeded = () => request.result.createObjectStore(STORE, { keyPath: 'requestId' });
      request.onsuccess = () => resolve(request.result);
      request.onerror = () => reject(request.error);
      request.onblocked = () => reject(new Error(`the IndexedDB database ${name} is held open at an older version`));
    });
    return opened;
  };
  /** Runs a change in a transaction that resolves once the change is committed, strictly where the browser can. */
  const change = async (apply: (store: IDBObjectStore) => void): Promise<void> => {
    const db = await database();
    const options = { durability: 'strict' } as IDBTransactionOptions;
    const transaction = db.transaction(STORE, 'readwrite', options);
    apply(transaction.objectStore(STORE));
    await new Promise<void>((resolve, reject) => {
      transaction.oncomplete = () => resolve();
      transaction.onerror = () => reject(transaction.error);
      transaction.onabort = () => reject(transaction.error ?? new Error('the outbox transaction was aborted'));
    });
  };
  return {
    async load() {
      const db = await database();
      return (await done(db.transaction(STORE, 'readonly').objectStore(STORE).getAll())) as PendingWrite[];
    },
    put: (write) => change((store) => store.put(write)),
    delete: (requestId) => change((store) => store.delete(requestId)),
  };
}
