// Subscription handles, what subscribe() resolves with: each with its own listeners and async iteration, many
// sharing one server subscription, which ends when the last handle is unsubscribed.
import type { Resource } from './common.js';
import type { Gap, HandleEvents, Logger, RequestOptions, Subscription, SubscriptionHandle, TidingsEvent, Unsubscribed } from './options.js';

/**
 * What a handle delivers, in order: held back while its subscribe() has not resolved yet. The end of the subscription
 * is one of them, so that a handle still holding hears the events the server sent before it ended, then `left`.
 */
type Delivery = ['event', TidingsEvent] | ['gap', Gap] | ['left', Unsubscribed];

/** What the handles of a client need of it. */
export interface HandleHost {
  logger: Logger;
  /**
   * Ends the server subscription under `key`, once its last handle is unsubscribed: resolves when the server has
   * confirmed it (at once when the client is not connected, since the server ended it with the connection).
   */
  unsubscribeLast(key: string, options: RequestOptions): Promise<void>;
}

/** The handles of one client, by the key of the subscription they share (subscriptionKey). */
export interface Handles {
  /**
   * A new handle on the subscription under `key`, as `shown` describes it; with `hold`, it keeps what it is given
   * until release() (so that its caller has it, with its items, before its first event).
   */
  attach(key: string, shown: Subscription, hold: boolean): Handle;
  /** Delivers an event or a gap of the subscription under `key` to each of its handles. */
  deliver(key: string, delivery: Delivery): void;
  /**
   * Ends every handle under `key` with a 'left' (the server or the client ended the subscription). A handle that
   * still holds hears it after what it holds, when it lets go.
   */
  leave(key: string, info: Unsubscribed): void;
  /** Whether this is a handle of this client, live or ended. */
  owns(value: unknown): value is Handle;
  /** How many live handles share the subscription under `key`. */
  count(key: string): number;
}

/** The handle of one subscriber: the Subscription it was given, its listeners, and the way to let go. */
export class Handle implements SubscriptionHandle {
  topic: string;
  subscriptionId: string;
  query?: Subscription['query'];
  lastSeq: number;
  recovered?: boolean;
  items?: Resource[];
  nextCursor?: string | null;
  readonly #release: (handle: Handle, options: RequestOptions) => Promise<void>;
  readonly #logger: Logger;
  readonly #listeners: { [K in keyof HandleEvents]: Set<HandleEvents[K]> } = { event: new Set(), gap: new Set(), left: new Set() };
  /** Called once when the handle ends, by its own unsubscribe or a 'left': each ends an async iteration. */
  readonly #enders = new Set<() => void>();
  #held: Delivery[] | undefined;
  #active = true;
  /** The seq of the last event this handle delivered; lastSeq stays as subscribe() resolved, as of its items. */
  #seen: number;

  constructor(shown: Subscription, hold: boolean, logger: Logger, release: (handle: Handle, options: RequestOptions) => Promise<void>) {
    this.topic = shown.topic;
    this.subscriptionId = shown.subscriptionId;
    if (shown.query !== undefined) this.query = shown.query;
    this.lastSeq = shown.lastSeq;
    this.#seen = shown.lastSeq;
    if (shown.recovered !== undefined) this.recovered = shown.recovered;
    if (shown.items !== undefined) {
      this.items = shown.items;
      this.nextCursor = shown.nextCursor ?? null;
    }
    this.#held = hold ? [] : undefined;
    this.#logger = logger;
    this.#release = release;
  }

  get active(): boolean {
    return this.#active;
  }

  unsubscribe(options: RequestOptions = {}): Promise<void> {
    if (!this.#active) return Promise.resolve();
    this.end();
    return this.#release(this, options);
  }

  on<K extends keyof HandleEvents>(name: K, listener: HandleEvents[K]): () => void {
    this.#listeners[name].add(listener);
    return () => {
      this.#listeners[name].delete(listener);
    };
  }

  [Symbol.asyncIterator](): AsyncIterator<TidingsEvent, undefined> {
    const queue: TidingsEvent[] = [];
    let finished = !this.#active;
    let wake: (() => void) | undefined;
    const off = this.on('event', (event) => {
      queue.push(event);
      wake?.();
    });
    const stop = () => {
      finished = true;
      off();
      this.#enders.delete(stop);
      wake?.();
    };
    if (!finished) this.#enders.add(stop);
    return {
      next: async () => {
        while (queue.length === 0 && !finished) await new Promise<void>((resolve) => (wake = resolve));
        wake = undefined;
        const event = queue.shift();
        if (event !== undefined) return { value: event, done: false };
        stop();
        return { value: undefined, done: true };
      },
      // Leaving a for-await loop early ends that iteration only: the handle stays subscribed until unsubscribe().
      return: async () => {
        queue.length = 0;
        stop();
        return { value: undefined, done: true };
      },
    };
  }

  /**
   * Delivers one event, gap or end: held back while the handle holds, and events it has seen (by seq) are dropped.
   * The end makes the handle inactive, then reports `left`.
   */
  deliver(delivery: Delivery): void {
    if (!this.#active) return;
    if (this.#held !== undefined) return void this.#held.push(delivery);
    const [name, payload] = delivery;
    if (name === 'left') {
      this.end();
      this.emit('left', payload);
    } else if (name === 'event') {
      // A handle that joined a shared subscription starts at its lastSeq: an older event reached it by the
      // subscription's hold, or it asked for a later `since`.
      if (typeof payload.seq === 'number' && payload.seq <= this.#seen) return;
      if (typeof payload.seq === 'number') this.#seen = payload.seq;
      this.emit('event', payload);
    } else {
      this.#seen = Math.max(this.#seen, payload.seq);
      this.emit('gap', payload);
    }
  }

  /** Delivers what the handle held back, in order, and stops holding. */
  releaseHeld(): void {
    const held = this.#held ?? [];
    this.#held = undefined;
    for (const delivery of held) this.deliver(delivery);
  }

  /**
   * The subscription ended without this handle's unsubscribe: the handle ends and reports `left`. While it holds, the
   * end waits behind what it holds: the server sent those events before it ended the subscription, and the caller
   * of subscribe() may not have the handle yet to listen for either.
   */
  leave(info: Unsubscribed): void {
    this.deliver(['left', info]);
  }

  /** Marks the handle ended: no more deliveries, and every async iteration finishes. */
  end(): void {
    this.#active = false;
    this.#held = undefined;
    for (const stop of [...this.#enders]) stop();
  }

  private emit<K extends keyof HandleEvents>(name: K, payload: Parameters<HandleEvents[K]>[0]): void {
    for (const listener of [...this.#listeners[name]]) {
      try {
        (listener as (p: typeof payload) => void)(payload);
      } catch (error) {
        // As with the client's own listeners: a listener's failure must not stop the others or the connection.
        this.#logger.error(`a subscription's on('${name}') listener threw: ${String(error)}`, error);
        queueMicrotask(() => {
          throw error;
        });
      }
    }
  }
}

// `using` and `await using` find these methods by the well-known symbols, which runtimes before them lack; there the
// handle has none, as no `using` could call them anyway, and unsubscribe() does the same. They are defined here, not
// in the class, because a class member keyed by a missing symbol would be keyed "undefined".
export interface Handle {
  [Symbol.dispose](): void;
  [Symbol.asyncDispose](): Promise<void>;
}
const symbols = Symbol as { dispose?: symbol; asyncDispose?: symbol };
if (symbols.dispose !== undefined) {
  Object.defineProperty(Handle.prototype, symbols.dispose, {
    value(this: Handle) {
      // Nothing can wait here, and the unsubscribe's failure (the connection went meanwhile) changes nothing.
      this.unsubscribe().catch(() => undefined);
    },
  });
}
if (symbols.asyncDispose !== undefined) {
  Object.defineProperty(Handle.prototype, symbols.asyncDispose, {
    value(this: Handle) {
      return this.unsubscribe();
    },
  });
}

/** The handles of a client with this host. */
export function createHandles(host: HandleHost): Handles {
  const byKey = new Map<string, Set<Handle>>();
  const keyOf = new WeakMap<Handle, string>();

  async function release(handle: Handle, options: RequestOptions): Promise<void> {
    const key = keyOf.get(handle) as string;
    const shared = byKey.get(key);
    if (shared === undefined || !shared.delete(handle)) return;
    if (shared.size > 0) return;
    byKey.delete(key);
    await host.unsubscribeLast(key, options);
  }

  return {
    attach(key, shown, hold) {
      const handle = new Handle(shown, hold, host.logger, release);
      keyOf.set(handle, key);
      const shared = byKey.get(key) ?? new Set();
      shared.add(handle);
      byKey.set(key, shared);
      return handle;
    },
    deliver(key, delivery) {
      for (const handle of [...(byKey.get(key) ?? [])]) handle.deliver(delivery);
    },
    leave(key, info) {
      const shared = byKey.get(key);
      byKey.delete(key);
      for (const handle of shared ?? []) handle.leave(info);
    },
    owns(value): value is Handle {
      return value instanceof Handle && keyOf.has(value);
    },
    count(key) {
      return byKey.get(key)?.size ?? 0;
    },
  };
}

