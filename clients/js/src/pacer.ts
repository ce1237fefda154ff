// The client's copy of the server's per-connection token bucket: what the client sends goes out within the rate
// limit the `connect` reply advertises, so that a reconnect's resubscriptions and queued requests are not refused.
import type { RateLimit } from './common.js';

/**
 * The share of the advertised rate the client uses. Messages sent at even intervals can reach the server closer
 * together than they left, and a bucket run empty refuses the one that comes early.
 */
const RATE_MARGIN = 0.9;

/** Writes one message; false when it has become pointless (its socket is gone, its request settled). */
export type Write = () => boolean;

/** The pacing of one client's messages, socket after socket. */
export interface Pacer {
  /** Writes at once when a token is free and nothing waits, else in turn as the bucket refills. */
  send(write: Write): void;
  /** Starts counting against the bucket the `connect` reply advertised, the messages already sent included. */
  limit(rateLimit: RateLimit): void;
  /** After RATE_LIMITED: the server's bucket is emptier than this copy thought, so nothing goes out for ms. */
  pause(ms: number): void;
  /** A new socket, or none: nothing waits any more, and no limit is known until the next `connect` reply. */
  reset(): void;
}

/** A pacer with no limit until limit() is called. */
export function createPacer(now: () => number = Date.now): Pacer {
  /** Tokens per ms; undefined until the server advertised its limit, and messages go out unpaced until then. */
  let perMs: number | undefined;
  let burst = Infinity;
  let tokens = 0;
  let refilledAt = 0;
  let sentUnpaced = 0;
  let holdUntil = 0;
  const waiting: Write[] = [];
  let timer: ReturnType<typeof setTimeout> | undefined;

  function refill(): void {
    const t = now();
    if (perMs !== undefined) tokens = Math.min(burst, tokens + (t - refilledAt) * perMs);
    refilledAt = t;
  }

  /** How long the next message must wait, in ms. */
  function delay(): number {
    const held = holdUntil - now();
    const empty = perMs === undefined || tokens >= 1 ? 0 : (1 - tokens) / perMs;
    return Math.max(held, empty);
  }

  function drain(): void {
    timer = undefined;
    refill();
    while (waiting.length > 0) {
      const wait = delay();
      if (wait > 0) {
        timer = setTimeout(drain, Math.ceil(wait));
        return;
      }
      const write = waiting.shift() as Write;
      if (write()) take();
    }
  }

  function take(): void {
    if (perMs === undefined) sentUnpaced += 1;
    else tokens -= 1;
  }

  return {
    send(write) {
      refill();
      if (waiting.length === 0 && delay() <= 0) {
        if (write()) take();
        return;
      }
      waiting.push(write);
      timer ??= setTimeout(drain, Math.ceil(delay()));
    },
    limit({ messagesPerSecond, burst: size }) {
      // A server that advertises no positive limit is not paced.
      if (!(messagesPerSecond > 0 && size > 0)) return;
      perMs = (messagesPerSecond * RATE_MARGIN) / 1000;
      burst = size;
      tokens = size - sentUnpaced;
      refilledAt = now();
      if (waiting.length > 0) {
        clearTimeout(timer);
        drain();
      }
    },
    pause(ms) {
      refill();
      tokens = Math.min(tokens, 0);
      holdUntil = Math.max(holdUntil, now() + ms);
      clearTimeout(timer);
      timer = waiting.length > 0 ? setTimeout(drain, Math.ceil(delay())) : undefined;
    },
    reset() {
      clearTimeout(timer);
      timer = undefined;
      waiting.length = 0;
      perMs = undefined;
      burst = Infinity;
      tokens = 0;
      sentUnpaced = 0;
      holdUntil = 0;
    },
  };
}
