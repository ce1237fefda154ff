// Requests as promises: each goes out with a requestId, waits in a queue while the connection is not ready, and is
// settled by the reply with its requestId or failed by its timeout.
import {
  ClientErrorCode,
  ServerErrorCode,
  TidingsError,
  type Reply,
  type RequestPayload,
  type RequestType,
  type ServerMessage,
} from './common.js';
import type { Settings } from './defaults.js';
import type { RequestOptions, WebSocketLike } from './options.js';
import { createPacer, type Pacer } from './pacer.js';
import type { ClientState, PendingRequest } from './state.js';

/** WebSocket.OPEN, the readyState in which a socket sends; the `ws` package has no global to read it from. */
export const OPEN = 1;

/** How the client sends its own requests, beyond what a caller may ask; R is the reply. */
export interface InternalRequestOptions<R = ServerMessage> extends RequestOptions {
  /**
   * Sent at once, before authentication: `connect`, `auth`, resubscriptions and probes are part of connecting. Such
   * a request belongs to its socket and is never sent on another, which is also what a presence member's requests
   * and a broadcast need.
   */
  internal?: boolean;
  /** Safe to send again on a new connection; see PendingRequest.retry. */
  retry?: boolean;
  /**
   * Called with the reply the moment it arrives, before the promise resolves: a subscription is completed by it
   * before the events that came in the same burst are handled.
   */
  onReply?: (reply: R) => void;
}

/** The requests of one client. */
export interface Requests {
  /**
   * Sends a message on the current socket, paced within its rate limit, with the timestamp of when it goes out;
   * false when no socket is open.
   */
  send(message: object): boolean;
  /** Sends a request on the current socket, paced like send, and holds it until its reply. */
  transmit(request: PendingRequest): void;
  /** The pacing of what the client sends, within the rate limit of the current socket. */
  pacer: Pacer;
  /**
   * Sends a request now (internal requests, or when authenticated), or queues it, or fails it. It resolves with
   * the reply that Reply names for its type and payload, and rejects with a TidingsError.
   */
  request<T extends RequestType, P extends RequestPayload<T>>(
    type: T,
    payload: P,
    options?: InternalRequestOptions<Reply<T, P>>,
  ): Promise<Reply<T, P>>;
  /** Resolves with the reply, or rejects with the TidingsError of an `error` or `auth_failed` reply. */
  routeReply(request: PendingRequest, message: ServerMessage): void;
}

/** The wait a RATE_LIMITED answer asks for, in ms: its details.retryAfterMs, else a second. */
export function retryAfter(details: Record<string, unknown> | null | undefined): number {
  const ms = details?.['retryAfterMs'];
  return typeof ms === 'number' && ms >= 0 ? ms : 1000;
}

/** The requests of the client with this state and these settings. */
export function createRequests(state: ClientState, settings: Settings): Requests {
  const pacer = createPacer();

  function write(socket: WebSocketLike, message: object): void {
    socket.send(JSON.stringify({ ...message, timestamp: Date.now() }));
  }

  function send(message: object): boolean {
    const socket = state.socket;
    if (socket === undefined || socket.readyState !== OPEN) return false;
    pacer.send(() => {
      if (state.socket !== socket || socket.readyState !== OPEN) return false;
      write(socket, message);
      return true;
    });
    return true;
  }

  function transmit(request: PendingRequest): void {
    state.inFlight.set(request.requestId, request);
    request.sent = false;
    const socket = state.socket;
    if (socket === undefined || socket.readyState !== OPEN) return;
    pacer.send(() => {
      // A request settled while it waited for its turn (by its timeout), or whose socket is gone, is not sent.
      if (state.inFlight.get(request.requestId) !== request || state.socket !== socket || socket.readyState !== OPEN) return false;
      request.sent = true;
      write(socket, { type: request.type, requestId: request.requestId, payload: request.payload });
      return true;
    });
  }

  function settle(request: PendingRequest): void {
    clearTimeout(request.timer);
    state.inFlight.delete(request.requestId);
    const index = state.queue.indexOf(request);
    if (index >= 0) state.queue.splice(index, 1);
  }

  function request<T extends RequestType, P extends RequestPayload<T>>(
    type: T,
    payload: P,
    opts: InternalRequestOptions<Reply<T, P>> = {},
  ): Promise<Reply<T, P>> {
    return new Promise<Reply<T, P>>((resolve, reject) => {
      const req: PendingRequest = {
        requestId: opts.requestId ?? settings.generateId(),
        type,
        payload,
        resolve: (message) => {
          settle(req);
          // The one cast of a reply. The server answers each request with the message Reply names for it; the
          // client does not check that, as decodeServer checks a message against the schema of its own type only.
          const reply = message as Reply<T, P>;
          opts.onReply?.(reply);
          resolve(reply);
        },
        reject: (error) => {
          settle(req);
          reject(error);
        },
        timer: undefined,
        retry: opts.retry ?? false,
        internal: opts.internal ?? false,
        sent: false,
      };
      if (opts.internal) {
        transmit(req);
      } else if (state.authenticated) {
        transmit(req);
      } else if (state.connection === 'closed' || state.connection === 'idle') {
        return reject(new TidingsError(ClientErrorCode.CLOSED, 'the client is not connected; call connect()', null, req.requestId));
      } else if (!settings.queueWhileDisconnected) {
        return reject(new TidingsError(ClientErrorCode.DISCONNECTED, 'the client is disconnected', null, req.requestId));
      } else if (state.queue.length >= settings.maxQueue) {
        const message = `${settings.maxQueue} requests already wait for the connection`;
        return reject(new TidingsError(ClientErrorCode.QUEUE_FULL, message, null, req.requestId));
      } else {
        state.queue.push(req);
      }
      const timeoutMs = opts.timeoutMs ?? settings.requestTimeoutMs;
      req.timer = setTimeout(
        () => req.reject(new TidingsError(ClientErrorCode.TIMEOUT, `no reply to ${type} within ${timeoutMs} ms`, null, req.requestId)),
        timeoutMs,
      );
    });
  }

  function routeReply(req: PendingRequest, message: ServerMessage): void {
    if (message.type === 'error' && message.payload.code === ServerErrorCode.RATE_LIMITED) {
      // The server did not process it (docs/protocol.md, section 10), so it goes out again once the server's bucket
      // has a token, and its timeout still bounds the wait.
      pacer.pause(retryAfter(message.payload.details));
      return transmit(req);
    }
    if (message.type === 'error' || message.type === 'auth_failed') {
      const p = message.payload;
      req.reject(new TidingsError(p.code, p.message, p.details ?? null, req.requestId));
    } else {
      req.resolve(message);
    }
  }

  return { send, transmit, pacer, request, routeReply };
}
