// The Tidings protocol v1 for clients: the envelope, message types, requests and their replies, errors, close codes
// and their rules, and the server decoder.
import {
  CLIENT_TYPES,
  CloseCode,
  ERROR_CODES,
  SERVER_PAYLOAD_SCHEMAS,
  SERVER_TYPES,
  ServerErrorCode,
  type ClientMessage,
  type Resource,
  type ResourceList,
  type ServerAuthSuccess,
  type ServerMessage,
  type ServerRead,
} from './generated.js';

export * from './generated.js';

/** The protocol version this client speaks, sent in `connect`: 1.1, which added queries (docs/protocol.md, 15). */
export const PROTOCOL_VERSION = '1.1';

/** The largest integer on the wire, 2^53-1. */
export const MAX_SAFE = 9007199254740991;

/**
 * Codes the SDK itself uses when no server reply settles a request: TIMEOUT (no reply within the request's
 * timeout), DISCONNECTED (issued while disconnected with queueing off), QUEUE_FULL (the queue of requests waiting
 * for a connection is full), CONNECTION_LOST (the connection closed before the reply, and the request is not safe
 * to retry), CLOSED (the client was closed, or gave up reconnecting), INVALID_REPLY (the server's reply did not
 * decode), USER_CHANGED (a reconnect signed in another user than the session's: the previous user's queued requests
 * and subscriptions are not carried over), SIGNED_OUT (getToken returned null: the user signed out, and the client
 * closed), OUTBOX_FAILED (the outbox's store could not be read or written; its writes still go out from memory, on
 * on('error')). The server's codes are ServerErrorCode, generated from protocol/codes.json.
 */
export const ClientErrorCode = {
  TIMEOUT: 'TIMEOUT',
  DISCONNECTED: 'DISCONNECTED',
  QUEUE_FULL: 'QUEUE_FULL',
  CONNECTION_LOST: 'CONNECTION_LOST',
  CLOSED: 'CLOSED',
  INVALID_REPLY: 'INVALID_REPLY',
  USER_CHANGED: 'USER_CHANGED',
  SIGNED_OUT: 'SIGNED_OUT',
  OUTBOX_FAILED: 'OUTBOX_FAILED',
} as const;

/** A code of the SDK's own, as ClientErrorCode lists them. */
export type ClientErrorCode = (typeof ClientErrorCode)[keyof typeof ClientErrorCode];

/** The server's code for a code this version does not know, which clients treat like INTERNAL. */
export function knownErrorCode(code: string): ServerErrorCode | 'UNKNOWN' {
  return (ERROR_CODES as readonly string[]).includes(code) ? (code as ServerErrorCode) : 'UNKNOWN';
}

/** One bad field: a JSON Pointer into the whole message and a short reason. */
export interface FieldError {
  pointer: string;
  reason: string;
}

/** The error a request is rejected with: a server `error` or `auth_failed`, or one of the SDK's own codes. */
export class TidingsError extends Error {
  override readonly name = 'TidingsError';
  /** The server's code (see docs/protocol.md, section 10), an unknown future code as sent, or a ClientErrorCode. */
  readonly code: ServerErrorCode | ClientErrorCode | (string & {});
  /** Facts by code, such as `errors` (field pointers) for INVALID_PARAMS or `currentVersion` for CONFLICT. */
  readonly details: Record<string, unknown>;
  /** The requestId of the request that failed, when there was one. */
  readonly requestId: string | undefined;

  constructor(code: string, message: string, details?: Record<string, unknown> | null, requestId?: string) {
    super(message);
    this.code = code;
    this.details = details ?? {};
    this.requestId = requestId;
  }

  /** The bad fields of INVALID_PARAMS, INVALID_MESSAGE and FORBIDDEN, or an empty list. */
  get errors(): FieldError[] {
    const errors = this.details['errors'];
    return Array.isArray(errors) ? (errors as FieldError[]) : [];
  }
}

/**
 * The close code a WebSocket reports when the connection ended without a close frame (RFC 6455, 7.1.5), as after
 * a network failure. The server never sends it; the client reports it too when it drops a link it found dead.
 */
export const ABNORMAL_CLOSURE = 1006;

// Standard WebSocket codes (RFC 6455, 7.4.1) that the server does not send but a WebSocket library or a proxy may
// close with; docs/protocol.md, section 11 says not to reconnect after them.
const PROTOCOL_ERROR = 1002;
const UNSUPPORTED_DATA = 1003;
const MANDATORY_EXTENSION = 1010;

/** Close codes below 4000 after which a client does not reconnect (docs/protocol.md, section 11). */
const FINAL_STANDARD_CODES = new Set<number>([
  CloseCode.Normal,
  PROTOCOL_ERROR,
  UNSUPPORTED_DATA,
  CloseCode.InvalidPayload,
  CloseCode.PolicyViolation,
  CloseCode.MessageTooBig,
  MANDATORY_EXTENSION,
]);

/**
 * Whether a client should reconnect after a close with this code. 4000-4499: yes; 4500-4999: no; below 4000: no
 * for 1000, 1002, 1003, 1007, 1008, 1009 and 1010, yes for any other (1001, 1006, 1011 included). A code in
 * 1000-3999 not named above counts as reconnect, and so does 5000 and above. `disconnect.reconnect`, when the
 * server sent one, overrides this rule; the client does that.
 */
export function shouldReconnect(code: number): boolean {
  // Tidings' own codes fall in two ranges, so that a client knows what to do with a code it has never seen.
  if (code >= 4000 && code <= 4499) return true;
  if (code >= 4500 && code <= 4999) return false;
  return !FINAL_STANDARD_CODES.has(code);
}

/**
 * The delay before reconnection attempt `attempt` (1, 2, ...), with the backoff and jitter section 11 asks for:
 * "equal jitter", half the capped exponential delay plus a random part of the other half, so that clients cut
 * off together do not come back together.
 */
export function backoffDelay(attempt: number, baseMs: number, maxMs: number, random: () => number = Math.random): number {
  const cap = Math.min(maxMs, baseMs * 2 ** Math.max(0, attempt - 1));
  return cap / 2 + random() * (cap / 2);
}

/** The client messages that are requests: each is answered by a reply with its requestId (`pong` and `disconnect` are not). */
export type RequestType = Exclude<ClientMessage['type'], 'pong' | 'disconnect'>;

/** The payload of a request of type T. */
export type RequestPayload<T extends RequestType> = { [M in ClientMessage as M['type']]: M['payload'] }[T];

/**
 * The server message that answers a request of type T with payload P when it succeeds (a failure is an `error`
 * or `auth_failed`): `auth_success` for `auth`, and the message of the same type for the others. A `read` is
 * answered with a Resource when its payload names an `id`, and with a page of a list otherwise.
 */
export type Reply<T extends RequestType, P = RequestPayload<T>> = T extends 'auth'
  ? ServerAuthSuccess
  : T extends 'read'
    ? Omit<ServerRead, 'payload'> & { payload: P extends { id: string } ? Resource : ResourceList }
    : Extract<ServerMessage, { type: T }>;

/** A timestamp as the protocol reads it: below 10^11 it is seconds, else milliseconds; rounded to a millisecond. */
export function normalizeTimestamp(timestamp: number): number {
  return Math.round(timestamp < 1e11 ? timestamp * 1000 : timestamp);
}

/** The result of decodeServer: a reply (it has a requestId), a push (it has none), or an unreadable message. */
export type Decoded =
  | { kind: 'reply'; requestId: string; message: ServerMessage }
  | { kind: 'push'; message: ServerMessage }
  | {
      kind: 'invalid';
      code: 'INVALID_MESSAGE' | 'UNSUPPORTED_TYPE' | 'INVALID_PARAMS';
      errors: FieldError[];
      requestId: string | undefined;
      type?: string;
    };

const REQUEST_ID = /^[ -~]{1,128}$/;

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/**
 * Decodes a message from the server as docs/protocol.md, section 5 says: JSON, object, envelope, type, then the
 * payload against its schema (generated from schema/server/). The timestamp comes out in milliseconds. A valid
 * message with a requestId is a reply; one without is a push. Two checks of the spec are not made, since
 * JSON.parse cannot see them: a key repeated at the top level, and nesting deeper than 128 levels.
 */
export function decodeServer(text: string): Decoded {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return { kind: 'invalid', code: ServerErrorCode.INVALID_MESSAGE, errors: [{ pointer: '', reason: 'is not JSON' }], requestId: undefined };
  }
  if (!isObject(value)) {
    return { kind: 'invalid', code: ServerErrorCode.INVALID_MESSAGE, errors: [{ pointer: '', reason: 'must be an object' }], requestId: undefined };
  }
  const errors: FieldError[] = [];
  const { type, timestamp, requestId, payload } = value;
  if (typeof type !== 'string') errors.push({ pointer: '/type', reason: 'must be a string' });
  if (typeof timestamp !== 'number' || !Number.isFinite(timestamp)) {
    errors.push({ pointer: '/timestamp', reason: 'must be a number' });
  } else if (timestamp < 0 || timestamp > MAX_SAFE) {
    errors.push({ pointer: '/timestamp', reason: 'must be from 0 to 2^53-1' });
  }
  const validId = typeof requestId === 'string' && REQUEST_ID.test(requestId);
  if (requestId !== undefined && !validId) {
    errors.push({ pointer: '/requestId', reason: 'must be 1 to 128 printable ASCII characters' });
  }
  if (!isObject(payload)) errors.push({ pointer: '/payload', reason: 'must be an object' });
  const echoed = validId ? (requestId as string) : undefined;
  if (errors.length > 0) return { kind: 'invalid', code: ServerErrorCode.INVALID_MESSAGE, errors, requestId: echoed };
  if (!(SERVER_TYPES as readonly string[]).includes(type as string)) {
    return { kind: 'invalid', code: ServerErrorCode.UNSUPPORTED_TYPE, errors: [], requestId: echoed, type: type as string };
  }
  const schema = SERVER_PAYLOAD_SCHEMAS.server[type as string];
  validate(schema, payload, '/payload', errors);
  if (errors.length > 0) return { kind: 'invalid', code: ServerErrorCode.INVALID_PARAMS, errors, requestId: echoed };
  const message = { ...value, timestamp: normalizeTimestamp(timestamp as number) } as unknown as ServerMessage;
  return echoed === undefined ? { kind: 'push', message } : { kind: 'reply', requestId: echoed, message };
}

/** The JSON type names of a value, as JSON Schema counts them. */
function jsonTypes(value: unknown): string[] {
  if (value === null) return ['null'];
  if (Array.isArray(value)) return ['array'];
  if (typeof value === 'number') return Number.isInteger(value) ? ['number', 'integer'] : ['number'];
  return [typeof value];
}

function escapePointer(key: string): string {
  return key.replace(/~/g, '~0').replace(/\//g, '~1');
}

/**
 * A small JSON Schema (draft-07) validator for the keywords the generated server schemas use: type, const,
 * required, properties, items, minimum, maximum, minLength, maxLength, pattern, anyOf, allOf, oneOf and local
 * $ref. It appends one error per bad field and does not descend into a value of the wrong type.
 */
function validate(schemaValue: unknown, value: unknown, pointer: string, errors: FieldError[]): void {
  if (!isObject(schemaValue)) return;
  const schema = schemaValue;
  const fail = (reason: string) => errors.push({ pointer, reason });
  if (typeof schema['$ref'] === 'string') {
    const name = schema['$ref'].replace('#/definitions/', '');
    validate(SERVER_PAYLOAD_SCHEMAS.definitions[name], value, pointer, errors);
    return;
  }
  for (const key of ['anyOf', 'oneOf'] as const) {
    const options = schema[key];
    if (Array.isArray(options)) {
      const trials = options.map((option) => {
        const trial: FieldError[] = [];
        validate(option, value, pointer, trial);
        return trial;
      });
      const passing = trials.filter((trial) => trial.length === 0).length;
      if (key === 'anyOf' ? passing === 0 : passing !== 1) {
        // When the value has the type of exactly one option, that option's errors name the bad fields best.
        const sameType = trials.filter(
          (trial) => trial.length > 0 && !trial.some((e) => e.pointer === pointer && e.reason.startsWith('must be of type')),
        );
        const only = sameType.length === 1 ? sameType[0] : undefined;
        if (passing === 0 && only !== undefined) errors.push(...only);
        else fail('has an invalid value');
        return;
      }
    }
  }
  if (Array.isArray(schema['allOf'])) {
    for (const part of schema['allOf']) validate(part, value, pointer, errors);
  }
  if ('const' in schema && schema['const'] !== value) return void fail(`must be ${JSON.stringify(schema['const'])}`);
  const allowed = schema['type'];
  if (allowed !== undefined) {
    const list = Array.isArray(allowed) ? (allowed as string[]) : [allowed as string];
    if (!jsonTypes(value).some((t) => list.includes(t))) return void fail(`must be of type ${list.join(' or ')}`);
  }
  if (typeof value === 'number') {
    if (typeof schema['minimum'] === 'number' && value < schema['minimum']) fail(`must be at least ${schema['minimum']}`);
    if (typeof schema['maximum'] === 'number' && value > schema['maximum']) fail(`must be at most ${schema['maximum']}`);
  }
  if (typeof value === 'string') {
    const length = [...value].length;
    if (typeof schema['minLength'] === 'number' && length < schema['minLength']) fail('is too short');
    if (typeof schema['maxLength'] === 'number' && length > schema['maxLength']) fail('is too long');
    if (typeof schema['pattern'] === 'string' && !new RegExp(schema['pattern'], 'u').test(value)) {
      fail('does not match the pattern');
    }
  }
  if (Array.isArray(value) && schema['items'] !== undefined) {
    value.forEach((item, index) => validate(schema['items'], item, `${pointer}/${index}`, errors));
  }
  if (isObject(value)) {
    const required = Array.isArray(schema['required']) ? (schema['required'] as string[]) : [];
    for (const name of required) {
      if (value[name] === undefined) errors.push({ pointer: `${pointer}/${escapePointer(name)}`, reason: 'is required' });
    }
    const properties = isObject(schema['properties']) ? schema['properties'] : {};
    for (const [name, sub] of Object.entries(properties)) {
      if (value[name] !== undefined) validate(sub, value[name], `${pointer}/${escapePointer(name)}`, errors);
    }
  }
}

/**
 * A light structural check that a value is a client message: a known client type, a valid envelope and an object
 * payload. It does not validate the payload's fields; the server does, and answers INVALID_PARAMS.
 */
export function isClientMessage(value: unknown): value is ClientMessage {
  if (!isObject(value)) return false;
  const { type, timestamp, requestId, payload } = value;
  return (
    typeof type === 'string' &&
    (CLIENT_TYPES as readonly string[]).includes(type) &&
    typeof timestamp === 'number' &&
    timestamp >= 0 &&
    timestamp <= MAX_SAFE &&
    (requestId === undefined || (typeof requestId === 'string' && REQUEST_ID.test(requestId))) &&
    isObject(payload)
  );
}
