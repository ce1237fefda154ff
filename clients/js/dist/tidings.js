// Tidings SDK as one ES module for browsers, built by scripts/bundle.mjs from src/. Do not edit.

// src/generated.ts
var CLIENT_TYPES = ["auth", "batch", "connect", "create", "delete", "disconnect", "ping", "pong", "read", "subscribe", "unsubscribe", "update"];
var SERVER_TYPES = ["auth_failed", "auth_success", "batch", "connect", "create", "delete", "disconnect", "error", "event", "notification", "ping", "pong", "read", "subscribe", "unsubscribe", "update"];
var SERVER_PAYLOAD_SCHEMAS = { "definitions": { "Operation": { "type": "object", "required": ["op"], "properties": { "op": { "enum": ["create", "update", "delete"] } }, "allOf": [{ "if": { "properties": { "op": { "const": "create" } }, "required": ["op"] }, "then": { "$ref": "#/definitions/Create" } }, { "if": { "properties": { "op": { "const": "update" } }, "required": ["op"] }, "then": { "$ref": "#/definitions/Update" } }, { "if": { "properties": { "op": { "const": "delete" } }, "required": ["op"] }, "then": { "$ref": "#/definitions/Delete" } }] }, "ResourceType": { "type": "string", "pattern": "^[a-z][a-z0-9_]{0,63}$" }, "Create": { "type": "object", "properties": { "resourceType": { "allOf": [{ "$ref": "#/definitions/ResourceType" }] }, "data": { "type": "object", "additionalProperties": true } }, "required": ["resourceType", "data"] }, "ResourceId": { "type": "string", "pattern": "^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$" }, "Version": { "type": "integer", "minimum": 1, "maximum": 9007199254740991 }, "Update": { "type": "object", "properties": { "resourceType": { "allOf": [{ "$ref": "#/definitions/ResourceType" }] }, "id": { "allOf": [{ "$ref": "#/definitions/ResourceId" }] }, "patch": { "type": "object", "additionalProperties": true }, "expectedVersion": { "anyOf": [{ "$ref": "#/definitions/Version" }, { "type": "null" }] } }, "required": ["resourceType", "id", "patch"] }, "Delete": { "type": "object", "properties": { "resourceType": { "allOf": [{ "$ref": "#/definitions/ResourceType" }] }, "id": { "allOf": [{ "$ref": "#/definitions/ResourceId" }] }, "expectedVersion": { "anyOf": [{ "$ref": "#/definitions/Version" }, { "type": "null" }] } }, "required": ["resourceType", "id"] }, "VersionOrMajor": { "anyOf": [{ "allOf": [{ "$ref": "#/definitions/ProtocolVersion" }] }, { "type": "integer", "minimum": 0, "maximum": 9999 }] }, "ProtocolVersion": { "type": "string", "pattern": "^[0-9]{1,4}(\\.[0-9]{1,4})?$" }, "ClientInfo": { "type": "object", "properties": { "name": { "type": ["string", "null"], "maxLength": 64, "minLength": 1 }, "version": { "type": ["string", "null"], "maxLength": 64, "minLength": 1 } } }, "Scalar": { "anyOf": [{ "type": "null" }, { "type": "boolean" }, { "type": "number" }, { "type": "string" }] }, "Query": { "anyOf": [{ "allOf": [{ "$ref": "#/definitions/And" }] }, { "allOf": [{ "$ref": "#/definitions/Or" }] }, { "allOf": [{ "$ref": "#/definitions/Not" }] }, { "allOf": [{ "$ref": "#/definitions/Term" }] }] }, "And": { "type": "object", "additionalProperties": false, "properties": { "and": { "type": "array", "items": { "$ref": "#/definitions/Query" }, "minItems": 1, "maxItems": 32 } }, "required": ["and"] }, "Or": { "type": "object", "additionalProperties": false, "properties": { "or": { "type": "array", "items": { "$ref": "#/definitions/Query" }, "minItems": 1, "maxItems": 32 } }, "required": ["or"] }, "Not": { "type": "object", "additionalProperties": false, "properties": { "not": { "allOf": [{ "$ref": "#/definitions/Query" }] } }, "required": ["not"] }, "Term": { "type": "object", "additionalProperties": false, "properties": { "field": { "allOf": [{ "$ref": "#/definitions/FieldPath" }] }, "eq": { "anyOf": [{ "$ref": "#/definitions/ScalarValue" }, { "type": "null" }] }, "ne": { "anyOf": [{ "$ref": "#/definitions/ScalarValue" }, { "type": "null" }] }, "lt": { "anyOf": [{ "$ref": "#/definitions/OrderedValue" }, { "type": "null" }] }, "lte": { "anyOf": [{ "$ref": "#/definitions/OrderedValue" }, { "type": "null" }] }, "gt": { "anyOf": [{ "$ref": "#/definitions/OrderedValue" }, { "type": "null" }] }, "gte": { "anyOf": [{ "$ref": "#/definitions/OrderedValue" }, { "type": "null" }] }, "in": { "anyOf": [{ "$ref": "#/definitions/ValueList" }, { "type": "null" }] }, "nin": { "anyOf": [{ "$ref": "#/definitions/ValueList" }, { "type": "null" }] }, "exists": { "type": ["boolean", "null"] }, "prefix": { "type": ["string", "null"], "maxLength": 1024 }, "contains": { "anyOf": [{ "$ref": "#/definitions/ElementValue" }, { "type": "null" }] } }, "required": ["field"], "minProperties": 2, "maxProperties": 2 }, "FieldPath": { "type": "string", "pattern": "^(id|ownerId|version|createdAt|updatedAt|data(\\.[A-Za-z_][A-Za-z0-9_]{0,63}){1,8})$" }, "ScalarValue": { "anyOf": [{ "type": "string", "maxLength": 1024 }, { "type": "number" }, { "type": "boolean" }, { "type": "null" }] }, "OrderedValue": { "anyOf": [{ "type": "string", "maxLength": 1024 }, { "type": "number" }] }, "ValueList": { "type": "array", "items": { "$ref": "#/definitions/ElementValue" }, "minItems": 1, "maxItems": 100 }, "ElementValue": { "anyOf": [{ "type": "string", "maxLength": 1024 }, { "type": "number" }, { "type": "boolean" }] }, "Order": { "anyOf": [{ "allOf": [{ "$ref": "#/definitions/OrderBy" }] }, { "type": "array", "items": { "$ref": "#/definitions/OrderBy" }, "minItems": 1, "maxItems": 4 }] }, "OrderBy": { "type": "string", "pattern": "^-?[A-Za-z_][A-Za-z0-9_]{0,63}$" }, "Limit": { "type": "integer", "minimum": 1, "maximum": 100 }, "FieldName": { "type": "string", "pattern": "^[A-Za-z_][A-Za-z0-9_]{0,63}$" }, "Topic": { "type": "string", "pattern": "^(notifications|(presence:)?[a-z][a-z0-9_]{0,63}(:[A-Za-z0-9][A-Za-z0-9._-]{0,127})?)$" }, "Seq": { "type": "integer", "minimum": 0, "maximum": 9007199254740991 }, "ErrorCode": { "type": "string", "pattern": "^[A-Z][A-Z_]{0,63}$" }, "OperationResult": { "oneOf": [{ "type": "object", "properties": { "op": { "type": "string", "const": "create" } }, "required": ["op"], "allOf": [{ "$ref": "#/definitions/Resource" }] }, { "type": "object", "properties": { "op": { "type": "string", "const": "update" } }, "required": ["op"], "allOf": [{ "$ref": "#/definitions/Resource" }] }, { "type": "object", "properties": { "op": { "type": "string", "const": "delete" } }, "required": ["op"], "allOf": [{ "$ref": "#/definitions/Deleted" }] }] }, "Resource": { "type": "object", "properties": { "resourceType": { "allOf": [{ "$ref": "#/definitions/ResourceType" }] }, "id": { "allOf": [{ "$ref": "#/definitions/ResourceId" }] }, "version": { "allOf": [{ "$ref": "#/definitions/Version" }] }, "ownerId": { "type": "string", "maxLength": 256, "minLength": 1 }, "createdAt": { "type": "integer", "minimum": 0, "maximum": 9007199254740991 }, "updatedAt": { "type": "integer", "minimum": 0, "maximum": 9007199254740991 }, "data": { "type": "object", "additionalProperties": true } }, "required": ["resourceType", "id", "version", "ownerId", "createdAt", "updatedAt", "data"] }, "Deleted": { "type": "object", "properties": { "resourceType": { "allOf": [{ "$ref": "#/definitions/ResourceType" }] }, "id": { "allOf": [{ "$ref": "#/definitions/ResourceId" }] }, "version": { "allOf": [{ "$ref": "#/definitions/Version" }] }, "deletedAt": { "type": "integer", "minimum": 0, "maximum": 9007199254740991 } }, "required": ["resourceType", "id", "version", "deletedAt"] }, "Heartbeat": { "type": "object", "properties": { "pingIntervalMs": { "type": "integer", "minimum": 0, "maximum": 9007199254740991 }, "idleTimeoutMs": { "type": "integer", "minimum": 0, "maximum": 9007199254740991 } }, "required": ["pingIntervalMs", "idleTimeoutMs"] }, "Limits": { "type": "object", "properties": { "maxMessageBytes": { "type": "integer", "minimum": 0, "maximum": 9007199254740991 }, "maxSubscriptions": { "type": "integer", "minimum": 0, "maximum": 4294967295 }, "rateLimit": { "allOf": [{ "$ref": "#/definitions/RateLimit" }] }, "query": { "anyOf": [{ "$ref": "#/definitions/QueryLimits" }, { "type": "null" }] }, "maxBatchOperations": { "type": ["integer", "null"], "minimum": 0, "maximum": 4294967295 }, "presence": { "anyOf": [{ "$ref": "#/definitions/PresenceLimits" }, { "type": "null" }] } }, "required": ["maxMessageBytes", "maxSubscriptions", "rateLimit"] }, "RateLimit": { "type": "object", "properties": { "messagesPerSecond": { "type": "integer", "minimum": 0, "maximum": 4294967295 }, "burst": { "type": "integer", "minimum": 0, "maximum": 4294967295 } }, "required": ["messagesPerSecond", "burst"] }, "QueryLimits": { "type": "object", "properties": { "maxDepth": { "type": "integer", "minimum": 0, "maximum": 4294967295 }, "maxTerms": { "type": "integer", "minimum": 0, "maximum": 4294967295 }, "maxValues": { "type": "integer", "minimum": 0, "maximum": 4294967295 }, "maxStringLength": { "type": "integer", "minimum": 0, "maximum": 4294967295 } }, "required": ["maxDepth", "maxTerms", "maxValues", "maxStringLength"] }, "PresenceLimits": { "type": "object", "properties": { "maxMembers": { "type": "integer", "minimum": 0, "maximum": 4294967295 }, "maxStateBytes": { "type": "integer", "minimum": 0, "maximum": 4294967295 }, "maxJoins": { "type": "integer", "minimum": 0, "maximum": 4294967295 } }, "required": ["maxMembers", "maxStateBytes", "maxJoins"] }, "Actor": { "type": "object", "properties": { "kind": { "allOf": [{ "$ref": "#/definitions/ActorKind" }] }, "id": { "type": "string", "maxLength": 256, "minLength": 1 } }, "required": ["kind", "id"] }, "ActorKind": { "oneOf": [{ "type": "string", "const": "user" }, { "type": "string", "const": "system" }] }, "LeaveReason": { "type": "string", "pattern": "^[a-z_]{1,32}$" }, "Level": { "oneOf": [{ "type": "string", "const": "info" }, { "type": "string", "const": "success" }, { "type": "string", "const": "warning" }, { "type": "string", "const": "error" }] }, "ResourceList": { "type": "object", "properties": { "resourceType": { "allOf": [{ "$ref": "#/definitions/ResourceType" }] }, "items": { "type": "array", "items": { "$ref": "#/definitions/Resource" } }, "nextCursor": { "type": ["string", "null"], "maxLength": 512, "minLength": 1 }, "total": { "type": ["integer", "null"], "minimum": 0, "maximum": 9007199254740991 } }, "required": ["resourceType", "items"] }, "ErrorPayload": { "type": "object", "properties": { "code": { "allOf": [{ "$ref": "#/definitions/ErrorCode" }] }, "message": { "type": "string" }, "details": { "type": ["object", "null"], "additionalProperties": true } }, "required": ["code", "message"] } }, "server": { "auth_failed": { "type": "object", "properties": { "code": { "allOf": [{ "$ref": "#/definitions/ErrorCode" }] }, "message": { "type": "string" }, "details": { "type": ["object", "null"], "additionalProperties": true } }, "required": ["code", "message"] }, "auth_success": { "type": "object", "properties": { "userId": { "type": "string", "maxLength": 256, "minLength": 1 }, "roles": { "type": "array", "items": { "type": "string" } }, "expiresAt": { "type": "integer", "minimum": 0, "maximum": 9007199254740991 } }, "required": ["userId", "roles", "expiresAt"] }, "batch": { "type": "object", "properties": { "results": { "type": "array", "items": { "$ref": "#/definitions/OperationResult" } } }, "required": ["results"] }, "connect": { "type": "object", "properties": { "protocolVersion": { "type": "string" }, "sessionId": { "type": "string" }, "heartbeat": { "allOf": [{ "$ref": "#/definitions/Heartbeat" }] }, "authTimeoutMs": { "type": "integer", "minimum": 0, "maximum": 9007199254740991 }, "limits": { "allOf": [{ "$ref": "#/definitions/Limits" }] } }, "required": ["protocolVersion", "sessionId", "heartbeat", "authTimeoutMs", "limits"] }, "create": { "type": "object", "properties": { "resourceType": { "allOf": [{ "$ref": "#/definitions/ResourceType" }] }, "id": { "allOf": [{ "$ref": "#/definitions/ResourceId" }] }, "version": { "allOf": [{ "$ref": "#/definitions/Version" }] }, "ownerId": { "type": "string", "maxLength": 256, "minLength": 1 }, "createdAt": { "type": "integer", "minimum": 0, "maximum": 9007199254740991 }, "updatedAt": { "type": "integer", "minimum": 0, "maximum": 9007199254740991 }, "data": { "type": "object", "additionalProperties": true } }, "required": ["resourceType", "id", "version", "ownerId", "createdAt", "updatedAt", "data"] }, "delete": { "type": "object", "properties": { "resourceType": { "allOf": [{ "$ref": "#/definitions/ResourceType" }] }, "id": { "allOf": [{ "$ref": "#/definitions/ResourceId" }] }, "version": { "allOf": [{ "$ref": "#/definitions/Version" }] }, "deletedAt": { "type": "integer", "minimum": 0, "maximum": 9007199254740991 } }, "required": ["resourceType", "id", "version", "deletedAt"] }, "disconnect": { "type": "object", "properties": { "code": { "type": "integer", "minimum": 0, "maximum": 65535 }, "reason": { "type": "string" }, "reconnect": { "type": "boolean" } }, "required": ["code", "reason", "reconnect"] }, "error": { "type": "object", "properties": { "code": { "allOf": [{ "$ref": "#/definitions/ErrorCode" }] }, "message": { "type": "string" }, "details": { "type": ["object", "null"], "additionalProperties": true } }, "required": ["code", "message"] }, "event": { "type": "object", "properties": { "eventType": { "type": "string", "maxLength": 128, "minLength": 1 }, "data": { "type": "object", "additionalProperties": true }, "topic": { "anyOf": [{ "$ref": "#/definitions/Topic" }, { "type": "null" }] }, "subscriptionId": { "type": ["string", "null"], "maxLength": 200, "minLength": 1 }, "seq": { "anyOf": [{ "$ref": "#/definitions/Seq" }, { "type": "null" }] }, "resourceType": { "anyOf": [{ "$ref": "#/definitions/ResourceType" }, { "type": "null" }] }, "id": { "anyOf": [{ "$ref": "#/definitions/ResourceId" }, { "type": "null" }] }, "version": { "anyOf": [{ "$ref": "#/definitions/Version" }, { "type": "null" }] }, "ownerId": { "type": ["string", "null"], "maxLength": 256, "minLength": 1 }, "actor": { "anyOf": [{ "$ref": "#/definitions/Actor" }, { "type": "null" }] }, "occurredAt": { "type": ["integer", "null"], "minimum": 0, "maximum": 9007199254740991 }, "changed": { "type": ["array", "null"], "items": { "type": "string" } }, "previousData": { "type": ["object", "null"], "additionalProperties": true }, "reason": { "anyOf": [{ "$ref": "#/definitions/LeaveReason" }, { "type": "null" }] } }, "required": ["eventType", "data"] }, "notification": { "type": "object", "properties": { "id": { "type": "string", "maxLength": 128, "minLength": 1 }, "seq": { "allOf": [{ "$ref": "#/definitions/Seq" }] }, "level": { "allOf": [{ "$ref": "#/definitions/Level" }] }, "title": { "type": "string", "maxLength": 200 }, "body": { "type": "string", "maxLength": 4e3 }, "data": { "type": "object", "additionalProperties": true, "default": {} }, "createdAt": { "type": "integer", "minimum": 0, "maximum": 9007199254740991 }, "subscriptionId": { "type": ["string", "null"], "maxLength": 200, "minLength": 1 } }, "required": ["id", "seq", "level", "title", "body", "createdAt"] }, "ping": { "type": "object" }, "pong": { "type": "object" }, "read": { "anyOf": [{ "allOf": [{ "$ref": "#/definitions/ResourceList" }] }, { "allOf": [{ "$ref": "#/definitions/Resource" }] }] }, "subscribe": { "type": "object", "properties": { "subscriptionId": { "type": "string", "maxLength": 200, "minLength": 1 }, "topic": { "allOf": [{ "$ref": "#/definitions/Topic" }] }, "seq": { "allOf": [{ "$ref": "#/definitions/Seq" }] }, "recovered": { "type": ["boolean", "null"] }, "items": { "type": ["array", "null"], "items": { "$ref": "#/definitions/Resource" } }, "nextCursor": { "type": ["string", "null"], "maxLength": 512, "minLength": 1 } }, "required": ["subscriptionId", "topic", "seq"] }, "unsubscribe": { "type": "object", "properties": { "subscriptionId": { "type": "string", "maxLength": 200, "minLength": 1 }, "topic": { "anyOf": [{ "$ref": "#/definitions/Topic" }, { "type": "null" }] }, "reason": { "anyOf": [{ "$ref": "#/definitions/ErrorPayload" }, { "type": "null" }] } }, "required": ["subscriptionId"] }, "update": { "type": "object", "properties": { "resourceType": { "allOf": [{ "$ref": "#/definitions/ResourceType" }] }, "id": { "allOf": [{ "$ref": "#/definitions/ResourceId" }] }, "version": { "allOf": [{ "$ref": "#/definitions/Version" }] }, "ownerId": { "type": "string", "maxLength": 256, "minLength": 1 }, "createdAt": { "type": "integer", "minimum": 0, "maximum": 9007199254740991 }, "updatedAt": { "type": "integer", "minimum": 0, "maximum": 9007199254740991 }, "data": { "type": "object", "additionalProperties": true } }, "required": ["resourceType", "id", "version", "ownerId", "createdAt", "updatedAt", "data"] } } };
var ERROR_CODES = ["INVALID_MESSAGE", "INVALID_PARAMS", "UNSUPPORTED_TYPE", "INVALID_STATE", "UNAUTHORIZED", "FORBIDDEN", "NOT_FOUND", "CONFLICT", "RATE_LIMITED", "PAYLOAD_TOO_LARGE", "LIMIT_EXCEEDED", "TOKEN_EXPIRED", "UNSUPPORTED_VERSION", "UNAVAILABLE", "INTERNAL"];
var ServerErrorCode = {
  INVALID_MESSAGE: "INVALID_MESSAGE",
  INVALID_PARAMS: "INVALID_PARAMS",
  UNSUPPORTED_TYPE: "UNSUPPORTED_TYPE",
  INVALID_STATE: "INVALID_STATE",
  UNAUTHORIZED: "UNAUTHORIZED",
  FORBIDDEN: "FORBIDDEN",
  NOT_FOUND: "NOT_FOUND",
  CONFLICT: "CONFLICT",
  RATE_LIMITED: "RATE_LIMITED",
  PAYLOAD_TOO_LARGE: "PAYLOAD_TOO_LARGE",
  LIMIT_EXCEEDED: "LIMIT_EXCEEDED",
  TOKEN_EXPIRED: "TOKEN_EXPIRED",
  UNSUPPORTED_VERSION: "UNSUPPORTED_VERSION",
  UNAVAILABLE: "UNAVAILABLE",
  INTERNAL: "INTERNAL"
};
var CloseCode = {
  Normal: 1e3,
  GoingAway: 1001,
  InvalidPayload: 1007,
  PolicyViolation: 1008,
  MessageTooBig: 1009,
  InternalError: 1011,
  HeartbeatTimeout: 4e3,
  SlowConsumer: 4001,
  ServerBusy: 4002,
  AuthTimeout: 4500,
  TokenExpired: 4501,
  Kicked: 4502,
  UserConnectionLimit: 4503
};
var CLOSE_CODES = {
  1e3: { name: "Normal", reason: "closed by the client", reconnect: false },
  1001: { name: "GoingAway", reason: "server shutting down", reconnect: true },
  1007: { name: "InvalidPayload", reason: "text frame is not valid UTF-8", reconnect: false },
  1008: { name: "PolicyViolation", reason: "policy violation", reconnect: false },
  1009: { name: "MessageTooBig", reason: "message too big", reconnect: false },
  1011: { name: "InternalError", reason: "internal error", reconnect: true },
  4e3: { name: "HeartbeatTimeout", reason: "heartbeat timeout", reconnect: true },
  4001: { name: "SlowConsumer", reason: "slow consumer", reconnect: true },
  4002: { name: "ServerBusy", reason: "server connection limit reached", reconnect: true },
  4500: { name: "AuthTimeout", reason: "authentication timeout", reconnect: false },
  4501: { name: "TokenExpired", reason: "token expired", reconnect: false },
  4502: { name: "Kicked", reason: "disconnected by an operator", reconnect: false },
  4503: { name: "UserConnectionLimit", reason: "too many connections for this user", reconnect: false }
};

// src/common.ts
var PROTOCOL_VERSION = "1.1";
var MAX_SAFE = 9007199254740991;
var ClientErrorCode = {
  TIMEOUT: "TIMEOUT",
  DISCONNECTED: "DISCONNECTED",
  QUEUE_FULL: "QUEUE_FULL",
  CONNECTION_LOST: "CONNECTION_LOST",
  CLOSED: "CLOSED",
  INVALID_REPLY: "INVALID_REPLY",
  USER_CHANGED: "USER_CHANGED",
  SIGNED_OUT: "SIGNED_OUT",
  OUTBOX_FAILED: "OUTBOX_FAILED"
};
function knownErrorCode(code) {
  return ERROR_CODES.includes(code) ? code : "UNKNOWN";
}
var TidingsError = class extends Error {
  name = "TidingsError";
  /** The server's code (see docs/protocol.md, section 10), an unknown future code as sent, or a ClientErrorCode. */
  code;
  /** Facts by code, such as `errors` (field pointers) for INVALID_PARAMS or `currentVersion` for CONFLICT. */
  details;
  /** The requestId of the request that failed, when there was one. */
  requestId;
  constructor(code, message, details, requestId) {
    super(message);
    this.code = code;
    this.details = details ?? {};
    this.requestId = requestId;
  }
  /** The bad fields of INVALID_PARAMS, INVALID_MESSAGE and FORBIDDEN, or an empty list. */
  get errors() {
    const errors = this.details["errors"];
    return Array.isArray(errors) ? errors : [];
  }
};
var ABNORMAL_CLOSURE = 1006;
var PROTOCOL_ERROR = 1002;
var UNSUPPORTED_DATA = 1003;
var MANDATORY_EXTENSION = 1010;
var FINAL_STANDARD_CODES = /* @__PURE__ */ new Set([
  CloseCode.Normal,
  PROTOCOL_ERROR,
  UNSUPPORTED_DATA,
  CloseCode.InvalidPayload,
  CloseCode.PolicyViolation,
  CloseCode.MessageTooBig,
  MANDATORY_EXTENSION
]);
function shouldReconnect(code) {
  if (code >= 4e3 && code <= 4499) return true;
  if (code >= 4500 && code <= 4999) return false;
  return !FINAL_STANDARD_CODES.has(code);
}
function backoffDelay(attempt, baseMs, maxMs, random = Math.random) {
  const cap = Math.min(maxMs, baseMs * 2 ** Math.max(0, attempt - 1));
  return cap / 2 + random() * (cap / 2);
}
function normalizeTimestamp(timestamp) {
  return Math.round(timestamp < 1e11 ? timestamp * 1e3 : timestamp);
}
var REQUEST_ID = /^[ -~]{1,128}$/;
function isObject(value) {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}
function decodeServer(text) {
  let value;
  try {
    value = JSON.parse(text);
  } catch {
    return { kind: "invalid", code: ServerErrorCode.INVALID_MESSAGE, errors: [{ pointer: "", reason: "is not JSON" }], requestId: void 0 };
  }
  if (!isObject(value)) {
    return { kind: "invalid", code: ServerErrorCode.INVALID_MESSAGE, errors: [{ pointer: "", reason: "must be an object" }], requestId: void 0 };
  }
  const errors = [];
  const { type, timestamp, requestId, payload } = value;
  if (typeof type !== "string") errors.push({ pointer: "/type", reason: "must be a string" });
  if (typeof timestamp !== "number" || !Number.isFinite(timestamp)) {
    errors.push({ pointer: "/timestamp", reason: "must be a number" });
  } else if (timestamp < 0 || timestamp > MAX_SAFE) {
    errors.push({ pointer: "/timestamp", reason: "must be from 0 to 2^53-1" });
  }
  const validId = typeof requestId === "string" && REQUEST_ID.test(requestId);
  if (requestId !== void 0 && !validId) {
    errors.push({ pointer: "/requestId", reason: "must be 1 to 128 printable ASCII characters" });
  }
  if (!isObject(payload)) errors.push({ pointer: "/payload", reason: "must be an object" });
  const echoed = validId ? requestId : void 0;
  if (errors.length > 0) return { kind: "invalid", code: ServerErrorCode.INVALID_MESSAGE, errors, requestId: echoed };
  if (!SERVER_TYPES.includes(type)) {
    return { kind: "invalid", code: ServerErrorCode.UNSUPPORTED_TYPE, errors: [], requestId: echoed, type };
  }
  const schema = SERVER_PAYLOAD_SCHEMAS.server[type];
  validate(schema, payload, "/payload", errors);
  if (errors.length > 0) return { kind: "invalid", code: ServerErrorCode.INVALID_PARAMS, errors, requestId: echoed };
  const message = { ...value, timestamp: normalizeTimestamp(timestamp) };
  return echoed === void 0 ? { kind: "push", message } : { kind: "reply", requestId: echoed, message };
}
function jsonTypes(value) {
  if (value === null) return ["null"];
  if (Array.isArray(value)) return ["array"];
  if (typeof value === "number") return Number.isInteger(value) ? ["number", "integer"] : ["number"];
  return [typeof value];
}
function escapePointer(key) {
  return key.replace(/~/g, "~0").replace(/\//g, "~1");
}
function validate(schemaValue, value, pointer, errors) {
  if (!isObject(schemaValue)) return;
  const schema = schemaValue;
  const fail = (reason) => errors.push({ pointer, reason });
  if (typeof schema["$ref"] === "string") {
    const name = schema["$ref"].replace("#/definitions/", "");
    validate(SERVER_PAYLOAD_SCHEMAS.definitions[name], value, pointer, errors);
    return;
  }
  for (const key of ["anyOf", "oneOf"]) {
    const options = schema[key];
    if (Array.isArray(options)) {
      const trials = options.map((option) => {
        const trial = [];
        validate(option, value, pointer, trial);
        return trial;
      });
      const passing = trials.filter((trial) => trial.length === 0).length;
      if (key === "anyOf" ? passing === 0 : passing !== 1) {
        const sameType = trials.filter(
          (trial) => trial.length > 0 && !trial.some((e) => e.pointer === pointer && e.reason.startsWith("must be of type"))
        );
        const only = sameType.length === 1 ? sameType[0] : void 0;
        if (passing === 0 && only !== void 0) errors.push(...only);
        else fail("has an invalid value");
        return;
      }
    }
  }
  if (Array.isArray(schema["allOf"])) {
    for (const part of schema["allOf"]) validate(part, value, pointer, errors);
  }
  if ("const" in schema && schema["const"] !== value) return void fail(`must be ${JSON.stringify(schema["const"])}`);
  const allowed = schema["type"];
  if (allowed !== void 0) {
    const list = Array.isArray(allowed) ? allowed : [allowed];
    if (!jsonTypes(value).some((t) => list.includes(t))) return void fail(`must be of type ${list.join(" or ")}`);
  }
  if (typeof value === "number") {
    if (typeof schema["minimum"] === "number" && value < schema["minimum"]) fail(`must be at least ${schema["minimum"]}`);
    if (typeof schema["maximum"] === "number" && value > schema["maximum"]) fail(`must be at most ${schema["maximum"]}`);
  }
  if (typeof value === "string") {
    const length = [...value].length;
    if (typeof schema["minLength"] === "number" && length < schema["minLength"]) fail("is too short");
    if (typeof schema["maxLength"] === "number" && length > schema["maxLength"]) fail("is too long");
    if (typeof schema["pattern"] === "string" && !new RegExp(schema["pattern"], "u").test(value)) {
      fail("does not match the pattern");
    }
  }
  if (Array.isArray(value) && schema["items"] !== void 0) {
    value.forEach((item, index) => validate(schema["items"], item, `${pointer}/${index}`, errors));
  }
  if (isObject(value)) {
    const required = Array.isArray(schema["required"]) ? schema["required"] : [];
    for (const name of required) {
      if (value[name] === void 0) errors.push({ pointer: `${pointer}/${escapePointer(name)}`, reason: "is required" });
    }
    const properties = isObject(schema["properties"]) ? schema["properties"] : {};
    for (const [name, sub] of Object.entries(properties)) {
      if (value[name] !== void 0) validate(sub, value[name], `${pointer}/${escapePointer(name)}`, errors);
    }
  }
}
function isClientMessage(value) {
  if (!isObject(value)) return false;
  const { type, timestamp, requestId, payload } = value;
  return typeof type === "string" && CLIENT_TYPES.includes(type) && typeof timestamp === "number" && timestamp >= 0 && timestamp <= MAX_SAFE && (requestId === void 0 || typeof requestId === "string" && REQUEST_ID.test(requestId)) && isObject(payload);
}

// src/pacer.ts
var RATE_MARGIN = 0.9;
function createPacer(now = Date.now) {
  let perMs;
  let burst = Infinity;
  let tokens = 0;
  let refilledAt = 0;
  let sentUnpaced = 0;
  let holdUntil = 0;
  const waiting = [];
  let timer;
  function refill() {
    const t = now();
    if (perMs !== void 0) tokens = Math.min(burst, tokens + (t - refilledAt) * perMs);
    refilledAt = t;
  }
  function delay() {
    const held = holdUntil - now();
    const empty = perMs === void 0 || tokens >= 1 ? 0 : (1 - tokens) / perMs;
    return Math.max(held, empty);
  }
  function drain() {
    timer = void 0;
    refill();
    while (waiting.length > 0) {
      const wait = delay();
      if (wait > 0) {
        timer = setTimeout(drain, Math.ceil(wait));
        return;
      }
      const write = waiting.shift();
      if (write()) take();
    }
  }
  function take() {
    if (perMs === void 0) sentUnpaced += 1;
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
      if (!(messagesPerSecond > 0 && size > 0)) return;
      perMs = messagesPerSecond * RATE_MARGIN / 1e3;
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
      timer = waiting.length > 0 ? setTimeout(drain, Math.ceil(delay())) : void 0;
    },
    reset() {
      clearTimeout(timer);
      timer = void 0;
      waiting.length = 0;
      perMs = void 0;
      burst = Infinity;
      tokens = 0;
      sentUnpaced = 0;
      holdUntil = 0;
    }
  };
}

// src/requests.ts
var OPEN = 1;
function retryAfter(details) {
  const ms = details?.["retryAfterMs"];
  return typeof ms === "number" && ms >= 0 ? ms : 1e3;
}
function createRequests(state, settings) {
  const pacer = createPacer();
  function write(socket, message) {
    socket.send(JSON.stringify({ ...message, timestamp: Date.now() }));
  }
  function send(message) {
    const socket = state.socket;
    if (socket === void 0 || socket.readyState !== OPEN) return false;
    pacer.send(() => {
      if (state.socket !== socket || socket.readyState !== OPEN) return false;
      write(socket, message);
      return true;
    });
    return true;
  }
  function transmit(request2) {
    state.inFlight.set(request2.requestId, request2);
    request2.sent = false;
    const socket = state.socket;
    if (socket === void 0 || socket.readyState !== OPEN) return;
    pacer.send(() => {
      if (state.inFlight.get(request2.requestId) !== request2 || state.socket !== socket || socket.readyState !== OPEN) return false;
      request2.sent = true;
      write(socket, { type: request2.type, requestId: request2.requestId, payload: request2.payload });
      return true;
    });
  }
  function settle(request2) {
    clearTimeout(request2.timer);
    state.inFlight.delete(request2.requestId);
    const index = state.queue.indexOf(request2);
    if (index >= 0) state.queue.splice(index, 1);
  }
  function request(type, payload, opts = {}) {
    return new Promise((resolve, reject) => {
      const req = {
        requestId: opts.requestId ?? settings.generateId(),
        type,
        payload,
        resolve: (message) => {
          settle(req);
          const reply = message;
          opts.onReply?.(reply);
          resolve(reply);
        },
        reject: (error) => {
          settle(req);
          reject(error);
        },
        timer: void 0,
        retry: opts.retry ?? false,
        internal: opts.internal ?? false,
        sent: false
      };
      if (opts.internal) {
        transmit(req);
      } else if (state.authenticated) {
        transmit(req);
      } else if (state.connection === "closed" || state.connection === "idle") {
        return reject(new TidingsError(ClientErrorCode.CLOSED, "the client is not connected; call connect()", null, req.requestId));
      } else if (!settings.queueWhileDisconnected) {
        return reject(new TidingsError(ClientErrorCode.DISCONNECTED, "the client is disconnected", null, req.requestId));
      } else if (state.queue.length >= settings.maxQueue) {
        const message = `${settings.maxQueue} requests already wait for the connection`;
        return reject(new TidingsError(ClientErrorCode.QUEUE_FULL, message, null, req.requestId));
      } else {
        state.queue.push(req);
      }
      const timeoutMs = opts.timeoutMs ?? settings.requestTimeoutMs;
      req.timer = setTimeout(
        () => req.reject(new TidingsError(ClientErrorCode.TIMEOUT, `no reply to ${type} within ${timeoutMs} ms`, null, req.requestId)),
        timeoutMs
      );
    });
  }
  function routeReply(req, message) {
    if (message.type === "error" && message.payload.code === ServerErrorCode.RATE_LIMITED) {
      pacer.pause(retryAfter(message.payload.details));
      return transmit(req);
    }
    if (message.type === "error" || message.type === "auth_failed") {
      const p = message.payload;
      req.reject(new TidingsError(p.code, p.message, p.details ?? null, req.requestId));
    } else {
      req.resolve(message);
    }
  }
  return { send, transmit, pacer, request, routeReply };
}

// src/query.ts
var q = {
  /** The field equals the value; `null`: the field is absent or null. */
  eq: (field, value) => ({ field, eq: value }),
  /** The field does not equal the value; `null`: the field is present and not null. */
  ne: (field, value) => ({ field, ne: value }),
  /** The field is less than the value (a string or a number). */
  lt: (field, value) => ({ field, lt: value }),
  /** The field is less than or equal to the value. */
  lte: (field, value) => ({ field, lte: value }),
  /** The field is greater than the value. */
  gt: (field, value) => ({ field, gt: value }),
  /** The field is greater than or equal to the value. */
  gte: (field, value) => ({ field, gte: value }),
  /** The field equals one of the values: 1 to 100 strings, numbers or booleans, all of one type. */
  in: (field, values) => ({ field, in: [...values] }),
  /** The field equals none of the values: 1 to 100, as for `in`. */
  nin: (field, values) => ({ field, nin: [...values] }),
  /** `true`: the field is present and not null; `false`: it is absent or null. */
  exists: (field, present = true) => ({ field, exists: present }),
  /** The field is a string that starts with the text (case-sensitive, at most 1024 characters). */
  prefix: (field, text) => ({ field, prefix: text }),
  /** The field is a string that contains the value, or an array with an element equal to it. */
  contains: (field, value) => ({ field, contains: value }),
  /** Every query holds (1 to 32). */
  and: (...queries) => ({ and: queries }),
  /** At least one query holds (1 to 32). */
  or: (...queries) => ({ or: queries }),
  /** The query does not hold. */
  not: (query) => ({ not: query })
};
function canonicalQuery(query) {
  return canonical(query, false);
}
function canonical(value, commutative) {
  if (Array.isArray(value)) {
    const items = value.map((item) => canonical(item, false));
    if (commutative) items.sort();
    return `[${items.join(",")}]`;
  }
  if (typeof value === "object" && value !== null) {
    const entries = Object.entries(value).filter(([, v]) => v !== void 0).sort(([a], [b]) => a < b ? -1 : a > b ? 1 : 0);
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonical(v, k === "and" || k === "or")}`).join(",")}}`;
  }
  return JSON.stringify(value) ?? "null";
}
function matches(query, resource) {
  if ("and" in query) return query.and.every((part) => matches(part, resource));
  if ("or" in query) return query.or.some((part) => matches(part, resource));
  if ("not" in query) return !matches(query.not, resource);
  return holds(query, valueAt(resource, query.field));
}
function valueAt(resource, field) {
  if (!field.startsWith("data.")) return resource[field];
  let value = resource.data;
  for (const name of field.slice("data.".length).split(".")) {
    if (typeof value !== "object" || value === null || Array.isArray(value)) return void 0;
    value = value[name];
  }
  return value;
}
function holds(term, value) {
  const present = value !== void 0 && value !== null;
  if ("eq" in term) return term.eq === null || term.eq === void 0 ? !present : same(value, term.eq);
  if ("ne" in term) return term.ne === null || term.ne === void 0 ? present : !same(value, term.ne);
  if (typeof term.lt === "string" || typeof term.lt === "number") return ordered(value, term.lt, (c) => c < 0);
  if (typeof term.lte === "string" || typeof term.lte === "number") return ordered(value, term.lte, (c) => c <= 0);
  if (typeof term.gt === "string" || typeof term.gt === "number") return ordered(value, term.gt, (c) => c > 0);
  if (typeof term.gte === "string" || typeof term.gte === "number") return ordered(value, term.gte, (c) => c >= 0);
  if (Array.isArray(term.in)) return term.in.some((operand) => same(value, operand));
  if (Array.isArray(term.nin)) return !term.nin.some((operand) => same(value, operand));
  if (typeof term.exists === "boolean") return present === term.exists;
  if (typeof term.prefix === "string") return typeof value === "string" && value.startsWith(term.prefix);
  if (term.contains !== void 0 && term.contains !== null) {
    const operand = term.contains;
    if (typeof value === "string") return typeof operand === "string" && value.includes(operand);
    return Array.isArray(value) && value.some((element) => same(element, operand));
  }
  return false;
}
function same(value, operand) {
  return typeof value === typeof operand && value === operand;
}
function ordered(value, operand, test) {
  if (typeof value === "number" && typeof operand === "number") return test(value - operand);
  if (typeof value === "string" && typeof operand === "string") return test(byCodePoint(value, operand));
  return false;
}
function byCodePoint(a, b) {
  const left = a[Symbol.iterator]();
  const right = b[Symbol.iterator]();
  for (; ; ) {
    const x = left.next();
    const y = right.next();
    if (x.done || y.done) return x.done && y.done ? 0 : x.done ? -1 : 1;
    const difference = x.value.codePointAt(0) - y.value.codePointAt(0);
    if (difference !== 0) return difference;
  }
}

// src/subscriptions.ts
var NOTIFICATIONS = "notifications";
var PRESENCE_PREFIX = "presence:";
function isPresenceTopic(topic) {
  return topic.startsWith(PRESENCE_PREFIX);
}
function subscriptionKey(topic, query) {
  return query === void 0 || query === null ? topic : `${topic}?${canonicalQuery(query)}`;
}
function pending(topic, query, since, snapshot) {
  const sub = {
    key: subscriptionKey(topic, query),
    topic,
    subscriptionId: "",
    lastSeq: since ?? 0,
    snapshot,
    pending: true,
    ahead: /* @__PURE__ */ new Set(),
    held: void 0,
    resumable: !isPresenceTopic(topic),
    members: isPresenceTopic(topic) ? /* @__PURE__ */ new Map() : void 0
  };
  if (query !== void 0) sub.query = query;
  return sub;
}
function recordOf(subscriptions, subscriptionId, topic) {
  if (subscriptionId) {
    for (const sub of subscriptions.values()) if (sub.subscriptionId === subscriptionId) return sub;
    return void 0;
  }
  return topic ? subscriptions.get(topic) : void 0;
}
function applyReply(sub, reply, since) {
  sub.pending = false;
  sub.subscriptionId = reply.subscriptionId;
  if (reply.recovered === void 0 || reply.recovered === null) delete sub.recovered;
  else sub.recovered = reply.recovered;
  const from = reply.recovered === false ? reply.seq : since ?? reply.seq;
  if (from > sub.lastSeq) advance(sub, from);
  if (sub.members !== void 0 && Array.isArray(reply.items)) sub.members = new Map(reply.items.map((m) => [m.id, m]));
  if (reply.recovered !== false) return void 0;
  const gap = { topic: sub.topic, subscriptionId: sub.subscriptionId, since: since ?? reply.seq, seq: reply.seq };
  if (sub.query !== void 0) gap.query = sub.query;
  return withSnapshot(gap, reply);
}
function applyResume(sub, reply, since) {
  const gap = applyReply(sub, reply, since);
  if (gap !== void 0 || sub.members === void 0) return gap;
  const reset = { topic: sub.topic, subscriptionId: sub.subscriptionId, since: sub.lastSeq, seq: reply.seq };
  return withSnapshot(reset, { ...reply, items: [...sub.members.values()] });
}
function view(sub, reply) {
  const out = { topic: sub.topic, subscriptionId: sub.subscriptionId, lastSeq: sub.lastSeq };
  if (sub.query !== void 0) out.query = sub.query;
  if (sub.recovered !== void 0) out.recovered = sub.recovered;
  return reply === void 0 ? out : withSnapshot(out, reply);
}
function membersOf(sub) {
  return sub.members === void 0 ? void 0 : [...sub.members.values()];
}
function withSnapshot(target, reply) {
  if (Array.isArray(reply.items)) {
    target.items = reply.items;
    target.nextCursor = reply.nextCursor ?? null;
  }
  return target;
}
function ended(sub, reason) {
  const info = { topic: sub.topic, subscriptionId: sub.subscriptionId, reason };
  if (sub.query !== void 0) info.query = sub.query;
  return info;
}
function advance(sub, seq) {
  sub.lastSeq = seq;
  for (const delivered of sub.ahead) if (delivered <= seq) sub.ahead.delete(delivered);
}
function countEvent(sub, event) {
  if (sub?.members !== void 0) keepMember(sub.members, event);
  if (sub !== void 0 && typeof event.seq !== "number") sub.resumable = false;
  if (sub === void 0 || typeof event.seq !== "number") return true;
  if (event.seq <= sub.lastSeq) return false;
  advance(sub, event.seq);
  return true;
}
function keepMember(members, event) {
  const { id, version } = event;
  if (typeof id !== "string" || typeof version !== "number") return;
  const held = members.get(id);
  if (event.eventType === "presence_deleted") return void members.delete(id);
  if (event.eventType !== "presence_created" && event.eventType !== "presence_updated") return;
  if (held !== void 0 && held.version >= version) return;
  const at = event.occurredAt ?? Date.now();
  const ownerId = event.ownerId ?? held?.ownerId ?? "";
  members.set(id, { resourceType: "presence", id, version, ownerId, createdAt: held?.createdAt ?? at, updatedAt: at, data: event.data });
}
function countNotification(sub, notification) {
  if (sub === void 0) return true;
  const { seq } = notification;
  if (seq <= sub.lastSeq) return false;
  const seen = sub.ahead.has(seq);
  if (notification.subscriptionId) advance(sub, seq);
  else sub.ahead.add(seq);
  return !seen;
}

// src/connection.ts
var MAX_TIMER_MS = 2 ** 31 - 1;
var FATAL = [ServerErrorCode.UNAUTHORIZED, ServerErrorCode.UNSUPPORTED_VERSION, ClientErrorCode.SIGNED_OUT];
var MIN_REFRESH_WAIT_MS = 1e3;
function createConnection({ options, settings, state, requests, emit, setState, onMessage, restore }) {
  const { request, transmit, pacer } = requests;
  const log = settings.logger;
  function token() {
    const getToken = options.getToken;
    if (getToken === void 0) return Promise.resolve(options.token);
    state.tokenInFlight ??= Promise.resolve().then(() => getToken()).then((fresh) => fresh ?? null).finally(() => {
      state.tokenInFlight = void 0;
    });
    return state.tokenInFlight;
  }
  function armWatchdog() {
    clearTimeout(state.watchdog);
    if (state.silenceLimitMs === void 0) return;
    state.watchdog = setTimeout(() => drop("no message from the server; the link is dead"), state.silenceLimitMs);
  }
  async function authenticate() {
    const fresh = await token();
    if (fresh === null) throw new TidingsError(ClientErrorCode.SIGNED_OUT, "getToken returned no token: the user signed out");
    const reply = await request("auth", { token: fresh }, { internal: true, timeoutMs: settings.connectTimeoutMs });
    if (reply.type !== "auth_success") return;
    const previous = state.userId;
    state.userId = reply.payload.userId;
    if (previous !== void 0 && previous !== reply.payload.userId) userChanged(previous, reply.payload.userId);
    clearTimeout(state.refreshTimer);
    if (options.getToken !== void 0) {
      const waitMs = Math.max(MIN_REFRESH_WAIT_MS, reply.payload.expiresAt - Date.now() - settings.refreshBeforeExpiryMs);
      state.refreshTimer = setTimeout(refresh, Math.min(waitMs, MAX_TIMER_MS));
    }
  }
  function refresh() {
    authenticate().catch((error) => {
      if (error instanceof TidingsError && error.code === ClientErrorCode.SIGNED_OUT) return shutdown(error);
      log.warn(`authenticating again with a fresh token failed: ${String(error)}`, error);
    });
  }
  function failed(attempt, error, code, closeReason) {
    const reason = closeReason === "" ? error.message : closeReason;
    log.warn(`connection attempt ${attempt} failed: ${reason}`, { attempt, code, error });
    if (settings.failFast && state.firstConnect !== void 0) state.abandon = error;
    emit("attemptFailed", { attempt, code, reason, error });
  }
  function userChanged(previous, current) {
    const reason = (requestId) => new TidingsError(
      ClientErrorCode.USER_CHANGED,
      `the client is now signed in as ${current}, not ${previous}: what ${previous} asked for is not done as ${current}`,
      { previousUserId: previous, userId: current },
      requestId
    );
    for (const req of state.queue.splice(0)) req.reject(reason(req.requestId));
    const gone = [...state.subscriptions.values()];
    state.subscriptions.clear();
    for (const sub of gone.filter((s) => !s.pending)) emit("unsubscribed", ended(sub, reason()));
  }
  function open() {
    return new Promise((resolve, reject) => {
      state.lastDisconnect = void 0;
      state.tries += 1;
      const attempt = state.tries;
      const url = typeof options.url === "function" ? options.url() : options.url;
      const ws = new settings.WebSocket(url);
      state.socket = ws;
      pacer.reset();
      let done2 = false;
      const finish = (error, code, closeReason = "") => {
        if (done2) return;
        done2 = true;
        clearTimeout(timer);
        if (error === void 0) return resolve();
        failed(attempt, error, code, closeReason);
        reject(error);
      };
      const timer = setTimeout(() => {
        finish(new TidingsError(ClientErrorCode.TIMEOUT, `not authenticated within ${settings.connectTimeoutMs} ms`));
        drop("connection attempt timed out");
      }, settings.connectTimeoutMs);
      ws.onmessage = (event) => onMessage(event.data);
      ws.onerror = () => void 0;
      ws.onclose = (event) => {
        if (state.socket !== ws) return;
        const last = state.lastDisconnect;
        const code = last?.code ?? event.code;
        const reason = last?.reason ?? event.reason;
        const again = last?.reconnect ?? shouldReconnect(code);
        const message = `the connection closed (${code}${reason ? ` ${reason}` : ""})`;
        const error = new TidingsError(ClientErrorCode.CONNECTION_LOST, message, { code, reconnect: again });
        finish(error, code, reason);
        onClosed(again || code === CloseCode.TokenExpired && options.getToken !== void 0, error);
      };
      ws.onopen = () => {
        void (async () => {
          const connecting = request(
            "connect",
            { protocolVersion: PROTOCOL_VERSION, client: settings.clientInfo },
            { internal: true, timeoutMs: settings.connectTimeoutMs }
          );
          const signingIn = authenticate();
          signingIn.catch(() => void 0);
          const connect = await connecting;
          state.serverVersion = connect.payload.protocolVersion;
          pacer.limit(connect.payload.limits.rateLimit);
          state.silenceLimitMs = connect.payload.heartbeat.pingIntervalMs + settings.heartbeatMarginMs;
          armWatchdog();
          await signingIn;
          state.authenticated = true;
          state.attempt = 0;
          state.tries = 0;
          await resubscribe();
          await restore();
          for (const req of state.queue.splice(0)) transmit(req);
          setState("connected");
          finish();
        })().catch((error) => {
          const failure = error instanceof TidingsError ? error : new TidingsError(ServerErrorCode.INTERNAL, String(error));
          finish(failure);
          const fatal = FATAL.includes(failure.code);
          if (state.socket === ws) {
            fatal ? shutdown(failure) : drop(`handshake failed: ${failure.message}`);
          }
        });
      };
    });
  }
  async function resubscribe() {
    const resumed = [...state.subscriptions.values()].filter((sub) => !sub.pending);
    await Promise.all(resumed.map(resume));
  }
  async function resume(sub) {
    const since = sub.resumable ? sub.lastSeq : void 0;
    const payload = { topic: sub.topic };
    if (since !== void 0) payload.since = since;
    if (sub.query !== void 0) payload.query = sub.query;
    if (sub.snapshot) payload.snapshot = true;
    const onReply = (reply) => {
      const gap = applyResume(sub, reply.payload, since);
      if (gap !== void 0) emit("gap", gap);
    };
    try {
      await request("subscribe", payload, { internal: true, onReply });
    } catch (error) {
      if (!(error instanceof TidingsError) || error.code === ClientErrorCode.CONNECTION_LOST || error.code === ClientErrorCode.TIMEOUT) {
        throw error;
      }
      if (state.subscriptions.get(sub.key) === sub) state.subscriptions.delete(sub.key);
      log.warn(`resuming the subscription ${sub.subscriptionId} failed: ${error.message}`, error);
      emit("unsubscribed", ended(sub, error));
    }
  }
  function onClosed(reconnect, error) {
    clearTimeout(state.watchdog);
    clearTimeout(state.refreshTimer);
    state.authenticated = false;
    state.socket = void 0;
    pacer.reset();
    const retried = [];
    for (const req of state.inFlight.values()) {
      if (req.retry || !req.sent && !req.internal) retried.push(req);
      else {
        const message = `the connection closed before the reply to ${req.type}`;
        req.reject(new TidingsError(ClientErrorCode.CONNECTION_LOST, message, error.details, req.requestId));
      }
    }
    state.inFlight.clear();
    state.queue.unshift(...retried);
    if (state.closedByUser) return;
    const abandon = state.abandon;
    state.abandon = void 0;
    if (abandon !== void 0) return shutdown(abandon);
    if (!reconnect) return shutdown(error);
    void reconnectLoop();
  }
  async function reconnectLoop() {
    if (state.reconnecting) return;
    state.reconnecting = true;
    try {
      while (!state.closedByUser) {
        state.attempt += 1;
        const { baseMs, maxMs, attempts } = settings.retry;
        if (state.attempt > attempts) {
          return shutdown(new TidingsError(ClientErrorCode.CLOSED, `gave up after ${attempts} reconnection attempts`));
        }
        setState("reconnecting");
        const delayMs = backoffDelay(state.attempt, baseMs, maxMs);
        log.info(`reconnecting in ${Math.round(delayMs)} ms (reconnection attempt ${state.attempt})`);
        await settings.retryWait(state.attempt, delayMs);
        if (state.closedByUser) return;
        try {
          await open();
          return;
        } catch {
          if (state.connection === "closed") return;
        }
      }
    } finally {
      state.reconnecting = false;
    }
  }
  function drop(reason) {
    const ws = state.socket;
    if (ws === void 0) return;
    ws.onclose?.({ code: ABNORMAL_CLOSURE, reason });
    ws.onclose = null;
    ws.onmessage = null;
    try {
      ws.close(CloseCode.HeartbeatTimeout, reason.slice(0, 100));
    } catch {
    }
  }
  function shutdown(error) {
    state.closedByUser = true;
    clearTimeout(state.watchdog);
    clearTimeout(state.refreshTimer);
    state.authenticated = false;
    const ws = state.socket;
    state.socket = void 0;
    pacer.reset();
    if (ws !== void 0) {
      ws.onclose = null;
      ws.onmessage = null;
      try {
        if (ws.readyState === OPEN) ws.send(JSON.stringify({ type: "disconnect", timestamp: Date.now(), payload: { reason: "client closed" } }));
        ws.close(CloseCode.Normal, "client closed");
      } catch {
      }
    }
    for (const req of [...state.inFlight.values(), ...state.queue]) {
      req.reject(new TidingsError(ClientErrorCode.CLOSED, error.message, error.details, req.requestId));
    }
    state.inFlight.clear();
    state.queue.length = 0;
    removeProbes();
    state.firstConnect?.reject(error);
    state.firstConnect = void 0;
    const byCaller = error.code === ClientErrorCode.CLOSED && error.message === "closed by the caller";
    setState("closed", byCaller ? void 0 : error);
  }
  function probe() {
    if (!state.authenticated) return;
    request("ping", {}, { internal: true, timeoutMs: settings.probeTimeoutMs }).catch((error) => {
      if (error instanceof TidingsError && error.code === ClientErrorCode.TIMEOUT) drop("no pong to the probe");
    });
  }
  function onVisibility() {
    const doc = globalThis.document;
    if (doc?.visibilityState === void 0 || doc.visibilityState === "visible") probe();
  }
  function addProbes() {
    const target = settings.eventTarget;
    if (state.probing || target === void 0) return;
    state.probing = true;
    target.addEventListener("online", probe);
    target.addEventListener("offline", probe);
    target.addEventListener("visibilitychange", onVisibility);
  }
  function removeProbes() {
    const target = settings.eventTarget;
    if (!state.probing || target === void 0) return;
    state.probing = false;
    target.removeEventListener("online", probe);
    target.removeEventListener("offline", probe);
    target.removeEventListener("visibilitychange", onVisibility);
  }
  return { open, authenticate, refresh, armWatchdog, drop, shutdown, addProbes };
}

// src/ids.ts
function randomId() {
  const crypto = globalThis.crypto;
  if (typeof crypto?.randomUUID === "function") return crypto.randomUUID();
  const bytes = new Uint8Array(16);
  if (typeof crypto?.getRandomValues === "function") crypto.getRandomValues(bytes);
  else for (let i = 0; i < bytes.length; i += 1) bytes[i] = Math.floor(Math.random() * 256);
  bytes[6] = bytes[6] & 15 | 64;
  bytes[8] = bytes[8] & 63 | 128;
  const hex = Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

// src/version.ts
var VERSION = "0.1.0";

// src/defaults.ts
var defaults = {
  requestTimeoutMs: 1e4,
  connectTimeoutMs: 1e4,
  failFast: false,
  retry: { baseMs: 500, maxMs: 3e4, attempts: Infinity },
  retryWait: (_attempt, delayMs) => new Promise((r) => setTimeout(r, delayMs)),
  queueWhileDisconnected: true,
  maxQueue: 100,
  heartbeatMarginMs: 1e4,
  probeTimeoutMs: 5e3,
  refreshBeforeExpiryMs: 6e4,
  clientInfo: { name: "tidings-js", version: VERSION },
  generateId: randomId,
  get WebSocket() {
    return globalThis.WebSocket;
  },
  /** A browser's globalThis; elsewhere none, since only a page goes online and changes visibility. */
  get eventTarget() {
    const global = globalThis;
    return global.window !== void 0 && global.document !== void 0 ? globalThis : void 0;
  }
};
var silent = { debug() {
}, info() {
}, warn() {
}, error() {
} };
function settingsOf(options) {
  if (options.token === void 0 && options.getToken === void 0) throw new TypeError("createClient needs token or getToken");
  const WebSocket = options.WebSocket ?? defaults.WebSocket;
  if (WebSocket === void 0) throw new TypeError("no WebSocket here: pass one, such as the ws package, as options.WebSocket");
  return {
    WebSocket,
    requestTimeoutMs: options.requestTimeoutMs ?? defaults.requestTimeoutMs,
    connectTimeoutMs: options.connectTimeoutMs ?? defaults.connectTimeoutMs,
    failFast: options.failFast ?? defaults.failFast,
    logger: options.logger ?? silent,
    retry: {
      baseMs: options.retry?.baseMs ?? defaults.retry.baseMs,
      maxMs: options.retry?.maxMs ?? defaults.retry.maxMs,
      attempts: options.retry?.attempts ?? defaults.retry.attempts
    },
    retryWait: options.retryWait ?? defaults.retryWait,
    queueWhileDisconnected: options.queueWhileDisconnected ?? defaults.queueWhileDisconnected,
    maxQueue: options.maxQueue ?? defaults.maxQueue,
    heartbeatMarginMs: options.heartbeatMarginMs ?? defaults.heartbeatMarginMs,
    probeTimeoutMs: options.probeTimeoutMs ?? defaults.probeTimeoutMs,
    refreshBeforeExpiryMs: options.refreshBeforeExpiryMs ?? defaults.refreshBeforeExpiryMs,
    // A field of clientInfo left out keeps the default's, as a spread does.
    clientInfo: { ...defaults.clientInfo, ...options.clientInfo },
    generateId: options.generateId ?? defaults.generateId,
    eventTarget: options.eventTarget ?? defaults.eventTarget
  };
}

// src/handles.ts
var Handle = class {
  topic;
  subscriptionId;
  query;
  lastSeq;
  recovered;
  items;
  nextCursor;
  #release;
  #logger;
  #listeners = { event: /* @__PURE__ */ new Set(), gap: /* @__PURE__ */ new Set(), left: /* @__PURE__ */ new Set() };
  /** Called once when the handle ends, by its own unsubscribe or a 'left': each ends an async iteration. */
  #enders = /* @__PURE__ */ new Set();
  #held;
  #active = true;
  /** The seq of the last event this handle delivered; lastSeq stays as subscribe() resolved, as of its items. */
  #seen;
  constructor(shown, hold, logger, release) {
    this.topic = shown.topic;
    this.subscriptionId = shown.subscriptionId;
    if (shown.query !== void 0) this.query = shown.query;
    this.lastSeq = shown.lastSeq;
    this.#seen = shown.lastSeq;
    if (shown.recovered !== void 0) this.recovered = shown.recovered;
    if (shown.items !== void 0) {
      this.items = shown.items;
      this.nextCursor = shown.nextCursor ?? null;
    }
    this.#held = hold ? [] : void 0;
    this.#logger = logger;
    this.#release = release;
  }
  get active() {
    return this.#active;
  }
  unsubscribe(options = {}) {
    if (!this.#active) return Promise.resolve();
    this.end();
    return this.#release(this, options);
  }
  on(name, listener) {
    this.#listeners[name].add(listener);
    return () => {
      this.#listeners[name].delete(listener);
    };
  }
  [Symbol.asyncIterator]() {
    const queue = [];
    let finished = !this.#active;
    let wake;
    const off = this.on("event", (event) => {
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
        while (queue.length === 0 && !finished) await new Promise((resolve) => wake = resolve);
        wake = void 0;
        const event = queue.shift();
        if (event !== void 0) return { value: event, done: false };
        stop();
        return { value: void 0, done: true };
      },
      // Leaving a for-await loop early ends that iteration only: the handle stays subscribed until unsubscribe().
      return: async () => {
        queue.length = 0;
        stop();
        return { value: void 0, done: true };
      }
    };
  }
  /**
   * Delivers one event, gap or end: held back while the handle holds, and events it has seen (by seq) are dropped.
   * The end makes the handle inactive, then reports `left`.
   */
  deliver(delivery) {
    if (!this.#active) return;
    if (this.#held !== void 0) return void this.#held.push(delivery);
    const [name, payload] = delivery;
    if (name === "left") {
      this.end();
      this.emit("left", payload);
    } else if (name === "event") {
      if (typeof payload.seq === "number" && payload.seq <= this.#seen) return;
      if (typeof payload.seq === "number") this.#seen = payload.seq;
      this.emit("event", payload);
    } else {
      this.#seen = Math.max(this.#seen, payload.seq);
      this.emit("gap", payload);
    }
  }
  /** Delivers what the handle held back, in order, and stops holding. */
  releaseHeld() {
    const held = this.#held ?? [];
    this.#held = void 0;
    for (const delivery of held) this.deliver(delivery);
  }
  /**
   * The subscription ended without this handle's unsubscribe: the handle ends and reports `left`. While it holds, the
   * end waits behind what it holds: the server sent those events before it ended the subscription, and the caller
   * of subscribe() may not have the handle yet to listen for either.
   */
  leave(info) {
    this.deliver(["left", info]);
  }
  /** Marks the handle ended: no more deliveries, and every async iteration finishes. */
  end() {
    this.#active = false;
    this.#held = void 0;
    for (const stop of [...this.#enders]) stop();
  }
  emit(name, payload) {
    for (const listener of [...this.#listeners[name]]) {
      try {
        listener(payload);
      } catch (error) {
        this.#logger.error(`a subscription's on('${name}') listener threw: ${String(error)}`, error);
        queueMicrotask(() => {
          throw error;
        });
      }
    }
  }
};
var symbols = Symbol;
if (symbols.dispose !== void 0) {
  Object.defineProperty(Handle.prototype, symbols.dispose, {
    value() {
      this.unsubscribe().catch(() => void 0);
    }
  });
}
if (symbols.asyncDispose !== void 0) {
  Object.defineProperty(Handle.prototype, symbols.asyncDispose, {
    value() {
      return this.unsubscribe();
    }
  });
}
function createHandles(host) {
  const byKey = /* @__PURE__ */ new Map();
  const keyOf = /* @__PURE__ */ new WeakMap();
  async function release(handle, options) {
    const key = keyOf.get(handle);
    const shared = byKey.get(key);
    if (shared === void 0 || !shared.delete(handle)) return;
    if (shared.size > 0) return;
    byKey.delete(key);
    await host.unsubscribeLast(key, options);
  }
  return {
    attach(key, shown, hold) {
      const handle = new Handle(shown, hold, host.logger, release);
      keyOf.set(handle, key);
      const shared = byKey.get(key) ?? /* @__PURE__ */ new Set();
      shared.add(handle);
      byKey.set(key, shared);
      return handle;
    },
    deliver(key, delivery) {
      for (const handle of [...byKey.get(key) ?? []]) handle.deliver(delivery);
    },
    leave(key, info) {
      const shared = byKey.get(key);
      byKey.delete(key);
      for (const handle of shared ?? []) handle.leave(info);
    },
    owns(value) {
      return value instanceof Handle && keyOf.has(value);
    },
    count(key) {
      return byKey.get(key)?.size ?? 0;
    }
  };
}

// src/state-patch.ts
function isObject2(value) {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}
function copy(value) {
  return JSON.parse(JSON.stringify(value));
}
function mergePatch(target, patch) {
  const out = { ...target };
  for (const [key, value] of Object.entries(patch)) {
    if (value === null) delete out[key];
    else if (isObject2(value)) out[key] = mergePatch(isObject2(out[key]) ? out[key] : {}, value);
    else out[key] = copy(value);
  }
  return out;
}
function diff(from, to) {
  const patch = {};
  for (const key of Object.keys(from)) if (!(key in to)) patch[key] = null;
  for (const [key, value] of Object.entries(to)) {
    const was = from[key];
    if (isObject2(was) && isObject2(value)) {
      const inner = diff(was, value);
      if (inner !== void 0) patch[key] = inner;
    } else if (!(key in from) || JSON.stringify(was) !== JSON.stringify(value)) {
      patch[key] = value;
    }
  }
  return Object.keys(patch).length === 0 ? void 0 : patch;
}

// src/live.ts
var PAGE = 100;
var MAX_RETRY_MS = 3e4;
var PASSING = /* @__PURE__ */ new Set([
  ClientErrorCode.TIMEOUT,
  ClientErrorCode.CONNECTION_LOST,
  ClientErrorCode.DISCONNECTED,
  ClientErrorCode.QUEUE_FULL,
  ClientErrorCode.CLOSED,
  ServerErrorCode.RATE_LIMITED,
  ServerErrorCode.UNAVAILABLE
]);
var EMPTY = Object.freeze([]);
var byCreation = (a, b) => a.createdAt - b.createdAt || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0);
var Contents = class {
  items = /* @__PURE__ */ new Map();
  versions = /* @__PURE__ */ new Map();
  /**
   * Holds the resource unless a version as new or newer was seen; says whether it changed what is held. `exact`
   * says the resource comes from the server whole (a snapshot or a page): its createdAt then also corrects that of
   * a newer copy learned from an event, which can only guess it.
   */
  upsert(resource, exact) {
    if ((this.versions.get(resource.id) ?? 0) >= resource.version) {
      const held = this.items.get(resource.id);
      if (!exact || held === void 0 || held.createdAt === resource.createdAt) return false;
      this.items.set(resource.id, { ...held, createdAt: resource.createdAt });
      return true;
    }
    this.versions.set(resource.id, resource.version);
    this.items.set(resource.id, resource);
    return true;
  }
  /**
   * Drops the resource unless a newer version was seen: a `_left` for an id never held is kept as a tombstone only
   * (8.5 says a client ignores it). Says whether it changed what is held.
   */
  remove(id, version) {
    if ((this.versions.get(id) ?? 0) > version) return false;
    this.versions.set(id, version);
    return this.items.delete(id);
  }
};
function asError(error) {
  return error instanceof TidingsError ? error : new TidingsError(ServerErrorCode.INTERNAL, String(error));
}
function createLive(client, resourceType, query, options = {}, writes) {
  return new Live(client, resourceType, query, options, writes);
}
var Live = class {
  resourceType;
  query;
  #client;
  #compare;
  #timeout;
  #contents = new Contents();
  /**
   * After a gap that came without a snapshot: the contents being read anew, until their first page is in. Events
   * go to both, so that the old contents stay on screen meanwhile and the new ones miss no change.
   */
  #next;
  #snapshot = EMPTY;
  /** What the snapshot shows, by id: the contents with the pending writes on top. */
  #shown = /* @__PURE__ */ new Map();
  #dirty = false;
  /** The client's outbox, when it has one, and the function that stops hearing of its changes. */
  #writes;
  #writesOff;
  #listeners = /* @__PURE__ */ new Set();
  #status = "loading";
  #error;
  #handle;
  #handleOffs = [];
  #clientOff;
  /** Counts each (re)load; a page that an older one reads late is dropped. */
  #epoch = 0;
  /** Whether pages are still being read: the collection is not live before they are all in. */
  #reading = false;
  /** The seq of the last event applied, to resume from when the server ends the subscription having lost events. */
  #lastSeq;
  /** What to try again after a passing failure: at once when the connection comes back, else after #retryMs. */
  #retry;
  #retryTimer;
  #retryMs = 1e3;
  #closed = false;
  constructor(client, resourceType, query, options, writes) {
    this.#client = client;
    this.#writes = writes;
    this.#writesOff = writes?.watch((change) => this.#onWrite(change)) ?? (() => void 0);
    this.resourceType = resourceType;
    this.query = query;
    this.#compare = options.compare ?? byCreation;
    this.#timeout = options.timeoutMs === void 0 ? {} : { timeoutMs: options.timeoutMs };
    this.#clientOff = client.on("state", (state, error) => this.#onState(state, error));
    void this.#open(void 0);
  }
  get status() {
    return this.#status;
  }
  get error() {
    return this.#error;
  }
  // Arrow functions, so that they can be passed around unbound, as useSyncExternalStore does.
  getSnapshot = () => {
    this.#refresh();
    return this.#snapshot;
  };
  subscribe = (listener) => {
    this.#listeners.add(listener);
    return () => {
      this.#listeners.delete(listener);
    };
  };
  get(id) {
    this.#refresh();
    return this.#shown.get(id);
  }
  /** Makes what is shown anew after a change. */
  #refresh() {
    if (!this.#dirty) return;
    this.#dirty = false;
    this.#shown = this.#overlay();
    this.#snapshot = Object.freeze([...this.#shown.values()].sort(this.#compare));
  }
  /**
   * The contents with the client's pending writes of the type on top, in the order they go out. An item a write
   * touches is shown only while it matches the query, as the server would decide once the write is applied; an
   * update of an item the collection does not hold cannot be shown, since its other fields are not known.
   */
  #overlay() {
    const writes = this.#writes?.pending(this.resourceType) ?? [];
    if (writes.length === 0) return this.#contents.items;
    const items = new Map(this.#contents.items);
    const touched = /* @__PURE__ */ new Set();
    for (const write of writes) {
      touched.add(write.id);
      const held = items.get(write.id);
      if (write.kind === "delete") items.delete(write.id);
      else if (write.kind === "update" && held !== void 0) {
        items.set(write.id, { ...held, data: mergePatch(held.data, write.data ?? {}), updatedAt: write.writtenAt, pending: true });
      } else if (write.kind === "create") {
        const at = write.writtenAt;
        const data = write.data ?? {};
        const ownerId = write.userId ?? "";
        items.set(write.id, { resourceType: this.resourceType, id: write.id, version: 0, ownerId, createdAt: at, updatedAt: at, data, pending: true });
      }
    }
    const query = this.query;
    if (query !== void 0) {
      for (const id of touched) {
        const item = items.get(id);
        if (item !== void 0 && !matches(query, item)) items.delete(id);
      }
    }
    return items;
  }
  /**
   * A pending write of the client changed. A confirmed one's reply is the server's word on the resource as of its
   * version, so it is applied at once, as an event would be: the item does not go back to what it was while the
   * event is on its way. The query decides whether it is held, as the server decides what the subscription sends.
   */
  #onWrite(change) {
    if (change.kind !== "loaded" && change.write.resourceType !== this.resourceType) return;
    if (change.kind === "confirmed") this.#confirmed(change.result);
    this.#changed();
  }
  #confirmed(result) {
    const resource = "data" in result ? result : void 0;
    const held = resource !== void 0 && (this.query === void 0 || matches(this.query, resource));
    for (const contents of [this.#contents, this.#next]) {
      if (contents === void 0) continue;
      if (held) contents.upsert(resource, true);
      else contents.remove(result.id, result.version);
    }
  }
  close() {
    if (this.#closed) return Promise.resolve();
    return this.#end(void 0);
  }
  /**
   * Subscribes with a snapshot (with `since`: resumes from there, after the server ended the subscription), then
   * fills the contents from what the handle brings. A handle of a subscription the client holds already shares it.
   */
  async #open(since) {
    const epoch = ++this.#epoch;
    const opts = { snapshot: true, ...this.#timeout };
    if (this.query !== void 0) opts.query = this.query;
    if (since !== void 0) opts.since = since;
    let handle;
    try {
      handle = await this.#client.subscribe(this.resourceType, opts);
    } catch (error) {
      if (epoch === this.#epoch && !this.#closed) this.#failed(error, () => void this.#open(since));
      return;
    }
    if (this.#closed) {
      handle.unsubscribe().catch(() => void 0);
      return;
    }
    this.#handle = handle;
    this.#lastSeq = handle.lastSeq;
    this.#handleOffs = [
      handle.on("event", (event) => this.#apply(event)),
      handle.on("gap", (gap) => this.#onGap(gap)),
      handle.on("left", (info) => this.#left(info))
    ];
    if (handle.items !== void 0) this.#load(handle.items, handle.nextCursor ?? null);
    else if (since !== void 0) this.#done();
    else this.#reload();
  }
  /** Replaces the contents with a snapshot (the subscription's, or a gap's), then reads the pages beyond it. */
  #load(items, cursor) {
    const epoch = ++this.#epoch;
    this.#contents = new Contents();
    this.#next = void 0;
    for (const item of items) this.#contents.upsert(item, true);
    this.#changed();
    void this.#pages(epoch, cursor, false);
  }
  /** Reads the contents anew from the first page, keeping the old ones on screen until it is in. */
  #reload() {
    const epoch = ++this.#epoch;
    this.#next = new Contents();
    void this.#pages(epoch, null, true);
  }
  /**
   * Reads pages until nextCursor is null. The pages are read later than the snapshot or the gap, while events keep
   * coming, so they are merged by version. With `first`, the first page is read into #next, which then replaces
   * the contents.
   */
  async #pages(epoch, cursor, first) {
    if (epoch !== this.#epoch) return;
    this.#reading = true;
    if (this.#status !== "loading") this.#setStatus("resyncing", this.#error);
    while (first || cursor !== null) {
      const list = { limit: PAGE };
      if (this.query !== void 0) list.query = this.query;
      if (cursor !== null) list.cursor = cursor;
      let page;
      try {
        page = await this.#client.list(this.resourceType, list, this.#timeout);
      } catch (error) {
        if (epoch === this.#epoch && !this.#closed) this.#failed(error, () => void this.#pages(epoch, cursor, first));
        return;
      }
      if (epoch !== this.#epoch || this.#closed) return;
      const into = first ? this.#next ?? new Contents() : this.#contents;
      for (const item of page.items) into.upsert(item, true);
      if (first) {
        this.#contents = into;
        this.#next = void 0;
        first = false;
      }
      this.#changed();
      cursor = page.nextCursor ?? null;
    }
    this.#done();
  }
  /** Every page is in: live, unless the connection went meanwhile. */
  #done() {
    this.#reading = false;
    this.#retryMs = 1e3;
    if (this.#client.state === "connected") this.#setStatus("live", void 0);
    else this.#setStatus(this.#status === "loading" ? "loading" : "resyncing", this.#error);
  }
  /**
   * Applies an event: `_created`, `_updated` and `_entered` hold the resource at its version, `_left` (whatever its
   * reason, `hidden` with empty data included) and `_deleted` drop it; an event type it does not know is ignored.
   */
  #apply(event) {
    if (typeof event.seq === "number") this.#lastSeq = event.seq;
    const { id, version } = event;
    if (typeof id !== "string" || typeof version !== "number") return;
    const kind = event.eventType.slice(event.eventType.lastIndexOf("_") + 1);
    const gone = kind === "left" || kind === "deleted";
    if (!gone && kind !== "created" && kind !== "updated" && kind !== "entered") return;
    let changed = false;
    for (const contents of [this.#contents, this.#next]) {
      if (contents === void 0) continue;
      const held = contents.items.get(id) ?? this.#contents.items.get(id);
      const applied = gone ? contents.remove(id, version) : contents.upsert(fromEvent(this.resourceType, event, id, version, held), false);
      if (contents === this.#contents) changed = applied;
    }
    if (changed) this.#changed();
  }
  /**
   * Resuming could not replay every event: the gap's snapshot (the subscription asked for one) replaces the
   * contents as of its seq, before the events after it; without one, the contents are read anew.
   */
  #onGap(gap) {
    this.#lastSeq = gap.seq;
    if (gap.items !== void 0) this.#load(gap.items, gap.nextCursor ?? null);
    else this.#reload();
  }
  /** The subscription ended: the server lost events (UNAVAILABLE) and says to subscribe again; else it is over. */
  #left(info) {
    this.#handle = void 0;
    for (const off of this.#handleOffs.splice(0)) off();
    if (info.reason.code !== ServerErrorCode.UNAVAILABLE) {
      void this.#end(info.reason);
      return;
    }
    this.#setStatus(this.#status === "loading" ? "loading" : "resyncing", info.reason);
    void this.#open(this.#lastSeq);
  }
  #onState(state, error) {
    if (this.#closed) return;
    if (state === "connected") {
      const retry = this.#retry;
      this.#retry = void 0;
      clearTimeout(this.#retryTimer);
      if (retry !== void 0) retry();
      else if (this.#status !== "live" && this.#handle !== void 0 && !this.#reading) this.#setStatus("live", void 0);
    } else if (this.#status === "live") {
      this.#setStatus("resyncing", error ?? this.#error);
    }
  }
  /**
   * A subscribe or a read failed: a passing failure is tried again when the connection comes back (or after a
   * growing wait, if it is up); any other closes the collection with it.
   */
  #failed(error, retry) {
    const failure = asError(error);
    if (!PASSING.has(failure.code)) {
      void this.#end(failure);
      return;
    }
    this.#retry = retry;
    this.#setStatus(this.#status, failure);
    if (this.#client.state !== "connected") return;
    clearTimeout(this.#retryTimer);
    this.#retryTimer = setTimeout(() => {
      const again = this.#retry;
      this.#retry = void 0;
      again?.();
    }, this.#retryMs);
    this.#retryMs = Math.min(this.#retryMs * 2, MAX_RETRY_MS);
  }
  /** Ends the collection, with the error that ended it (none for close()), and lets go of its handle. */
  #end(error) {
    this.#closed = true;
    this.#epoch += 1;
    this.#retry = void 0;
    clearTimeout(this.#retryTimer);
    this.#clientOff();
    this.#writesOff();
    for (const off of this.#handleOffs.splice(0)) off();
    const handle = this.#handle;
    this.#handle = void 0;
    this.#setStatus("closed", error);
    return handle === void 0 ? Promise.resolve() : handle.unsubscribe();
  }
  #changed() {
    this.#dirty = true;
    this.#notify();
  }
  #setStatus(status, error) {
    if (status === this.#status && error === this.#error) return;
    this.#status = status;
    this.#error = error;
    this.#notify();
  }
  #notify() {
    for (const listener of [...this.#listeners]) {
      try {
        listener();
      } catch (error) {
        queueMicrotask(() => {
          throw error;
        });
      }
    }
  }
};
function fromEvent(resourceType, event, id, version, held) {
  const at = event.occurredAt ?? Date.now();
  return {
    resourceType: event.resourceType ?? resourceType,
    id,
    version,
    ownerId: event.ownerId ?? held?.ownerId ?? "",
    createdAt: held?.createdAt ?? at,
    updatedAt: at,
    data: event.data
  };
}

// src/presence.ts
var PASSING2 = /* @__PURE__ */ new Set([
  ClientErrorCode.TIMEOUT,
  ClientErrorCode.CONNECTION_LOST,
  ClientErrorCode.DISCONNECTED,
  ClientErrorCode.QUEUE_FULL,
  ClientErrorCode.CLOSED,
  ServerErrorCode.RATE_LIMITED,
  ServerErrorCode.UNAVAILABLE
]);
var GONE = /* @__PURE__ */ new Set([ClientErrorCode.CONNECTION_LOST, ClientErrorCode.DISCONNECTED, ClientErrorCode.CLOSED]);
var EMPTY2 = Object.freeze([]);
function createPresence(host, topic, options = {}) {
  return new PresenceHandle(host, topic, options);
}
var MAX_RETRY_MS2 = 3e4;
var PresenceHandle = class {
  topic;
  #host;
  #timeout;
  /** The members by id, as the subscription has them. */
  #held = /* @__PURE__ */ new Map();
  #members = EMPTY2;
  #users = /* @__PURE__ */ new Map();
  #dirty = false;
  #status = "loading";
  #error;
  #listeners = {
    change: /* @__PURE__ */ new Set(),
    join: /* @__PURE__ */ new Set(),
    update: /* @__PURE__ */ new Set(),
    leave: /* @__PURE__ */ new Set()
  };
  #handle;
  #handleOffs = [];
  /** Subscribes again once the connection is back (or after #retryMs, if it is up), after a passing failure. */
  #retry;
  #retryTimer;
  #retryMs = 1e3;
  #offs = [];
  #closed = false;
  /** The state the app wants to be present with; undefined: not present. */
  #wanted;
  /** This handle's member on the current connection, as the server answered; undefined when it has none. */
  #member;
  /** The syncs of the member with #wanted, one at a time, in order. */
  #chain = Promise.resolve();
  #waiters = [];
  constructor(host, topic, options) {
    this.#host = host;
    this.topic = topic;
    this.#timeout = options.timeoutMs === void 0 ? {} : { timeoutMs: options.timeoutMs };
    this.#offs.push(host.client.on("state", (state) => this.#onState(state)));
    this.#offs.push(host.onConnection(() => this.#rejoin()));
    void this.#follow();
  }
  get members() {
    this.#refresh();
    return this.#members;
  }
  get users() {
    this.#refresh();
    return this.#users;
  }
  get status() {
    return this.#status;
  }
  get error() {
    return this.#error;
  }
  get joined() {
    return this.#wanted !== void 0;
  }
  get state() {
    return this.#wanted;
  }
  get self() {
    return this.#member === void 0 ? void 0 : this.#memberOf(this.#member);
  }
  getSnapshot = () => this.members;
  subscribe = (listener) => this.on("change", listener);
  on(name, listener) {
    this.#listeners[name].add(listener);
    return () => {
      this.#listeners[name].delete(listener);
    };
  }
  join(state = {}, options = {}) {
    const refused = this.#refusal();
    if (refused !== void 0) return Promise.reject(refused);
    this.#wanted = copy(state);
    return this.#settle(true, options);
  }
  update(patch, options = {}) {
    const refused = this.#refusal();
    if (refused !== void 0) return Promise.reject(refused);
    if (this.#wanted === void 0) {
      return Promise.reject(new TidingsError(ServerErrorCode.NOT_FOUND, `not present at ${this.topic}: join() first`, { topic: this.topic }));
    }
    this.#wanted = mergePatch(this.#wanted, patch);
    return this.#settle(true, options);
  }
  async leave(options = {}) {
    this.#wanted = void 0;
    if (this.#host.client.state !== "connected") {
      this.#own(void 0);
      return this.#resolveWaiters();
    }
    await this.#settle(false, options);
  }
  close() {
    return this.#shutdown(void 0);
  }
  /** Leaves (when joined), stops following, and reports `closed` with the error that ended it (none for close()). */
  async #shutdown(error) {
    if (this.#closed) return;
    const leaving = this.#wanted !== void 0 || this.#member !== void 0 ? this.leave(this.#timeout).catch(() => void 0) : void 0;
    this.#closed = true;
    for (const off of this.#offs.splice(0)) off();
    this.#retry = void 0;
    clearTimeout(this.#retryTimer);
    const handle = this.#handle;
    this.#letGo();
    this.#setStatus("closed", error);
    if (error !== void 0) this.#rejectWaiters(error);
    await Promise.all([leaving, handle?.unsubscribe(this.#timeout).catch(() => void 0)]);
  }
  /**
   * Why join and update are refused before anything is sent: a closed handle (with the failure that closed it, if
   * one did), or a server older than presence.
   */
  #refusal() {
    if (this.#closed) return this.#error ?? new TidingsError(ClientErrorCode.CLOSED, `the presence handle of ${this.topic} is closed`, { topic: this.topic });
    try {
      this.#host.check();
      return void 0;
    } catch (error) {
      return error;
    }
  }
  // --- Following ------------------------------------------------------------------------------------------------
  /** Subscribes to the topic's presence; the reply's items are the members now, and events follow. */
  async #follow() {
    try {
      this.#host.check();
    } catch (error) {
      return void this.#shutdown(error);
    }
    let handle;
    try {
      handle = await this.#host.client.subscribe(`${PRESENCE_PREFIX}${this.topic}`, this.#timeout);
    } catch (error) {
      return this.#failed(error);
    }
    if (this.#closed) return void handle.unsubscribe().catch(() => void 0);
    this.#handle = handle;
    this.#retryMs = 1e3;
    this.#handleOffs = [
      handle.on("event", (event) => this.#apply(event)),
      handle.on("gap", (gap) => this.#reset(gap)),
      handle.on("left", (info) => this.#left(info))
    ];
    this.#replace(handle.items ?? []);
    this.#setStatus(this.#host.client.state === "connected" ? "live" : "resyncing", void 0);
  }
  /**
   * A subscribe failed: a passing failure is tried again when the connection comes back (or after a growing wait, if
   * it is up); any other closes the handle.
   */
  #failed(error) {
    const failure = error instanceof TidingsError ? error : new TidingsError(ServerErrorCode.INTERNAL, String(error));
    if (this.#closed) return;
    if (!PASSING2.has(failure.code)) return void this.#shutdown(failure);
    this.#retry = () => void this.#follow();
    this.#setStatus(this.#status, failure);
    if (this.#host.client.state !== "connected") return;
    clearTimeout(this.#retryTimer);
    this.#retryTimer = setTimeout(() => {
      const again = this.#retry;
      this.#retry = void 0;
      again?.();
    }, this.#retryMs);
    this.#retryMs = Math.min(this.#retryMs * 2, MAX_RETRY_MS2);
  }
  /** A presence event: a member joins, changes or leaves. Another event type is ignored. */
  #apply(event) {
    const { id, version } = event;
    if (typeof id !== "string" || typeof version !== "number") return;
    const held = this.#held.get(id);
    const before = held === void 0 ? void 0 : this.#memberOf(held);
    if (event.eventType === "presence_deleted") {
      if (!this.#held.delete(id)) return;
      this.#changed();
      if (before !== void 0) this.#emit("leave", before);
      return;
    }
    if (event.eventType !== "presence_created" && event.eventType !== "presence_updated") return;
    if (held !== void 0 && held.version >= version) return;
    const at = event.occurredAt ?? Date.now();
    const resource = {
      resourceType: "presence",
      id,
      version,
      ownerId: event.ownerId ?? held?.ownerId ?? "",
      createdAt: held?.createdAt ?? at,
      updatedAt: at,
      data: event.data
    };
    this.#held.set(id, resource);
    this.#changed();
    const after = this.#memberOf(resource);
    if (before === void 0) this.#emit("join", after);
    else this.#emit("update", after, before);
  }
  /** A reconnect brought the members present now: they replace those held, with a join, an update or a leave for each difference. */
  #reset(gap) {
    this.#replace(gap.items ?? []);
  }
  #replace(items) {
    const before = this.#held;
    this.#held = new Map(items.map((item) => [item.id, item]));
    this.#changed();
    for (const [id, old] of before) if (!this.#held.has(id)) this.#emit("leave", this.#memberOf(old));
    for (const [id, now] of this.#held) {
      const old = before.get(id);
      if (old === void 0) this.#emit("join", this.#memberOf(now));
      else if (old.version !== now.version) this.#emit("update", this.#memberOf(now), this.#memberOf(old));
    }
  }
  /** The subscription ended without close(): a resume it could not survive (NOT_FOUND, FORBIDDEN, USER_CHANGED). */
  #left(info) {
    this.#letGo();
    void this.#shutdown(info.reason);
  }
  #onState(state) {
    if (this.#closed) return;
    if (state === "connected") {
      const retry = this.#retry;
      this.#retry = void 0;
      clearTimeout(this.#retryTimer);
      if (retry !== void 0) retry();
      else if (this.#handle !== void 0) this.#setStatus("live", void 0);
      if (this.#waiters.length > 0) this.#kick();
      return;
    }
    if (this.#member !== void 0) {
      this.#member = void 0;
      this.#changed();
    }
    if (this.#status === "live") this.#setStatus("resyncing", this.#error);
    if (state === "closed") this.#rejectWaiters(new TidingsError(ClientErrorCode.CLOSED, "the client closed before the member was as asked"));
  }
  /** Lets go of the subscription's handle and its listeners. */
  #letGo() {
    for (const off of this.#handleOffs.splice(0)) off();
    this.#handle = void 0;
  }
  // --- The own member -------------------------------------------------------------------------------------------
  /** Syncs the member with #wanted, after the syncs before; resolves once the member is as wanted. */
  #settle(member, options) {
    const settled = new Promise((resolve, reject) => this.#waiters.push({ member, resolve, reject }));
    this.#kick(false, options);
    return settled;
  }
  /** Queues a sync; `restoring`: the rejoin of a new connection, which may send before it is reported connected. */
  #kick(restoring = false, options = this.#timeout) {
    const run = this.#chain.then(() => this.#sync(restoring, options));
    this.#chain = run.catch(() => void 0);
    return run;
  }
  /** A new connection: the member of the old one ended with it, so the handle joins again with the state it wants. */
  #rejoin() {
    this.#member = void 0;
    if (this.#wanted === void 0) return Promise.resolve();
    return this.#kick(true);
  }
  /**
   * Sends what makes the member as wanted: a create (join), a merge patch of its state, or a delete (leave), one
   * request at a time, until it is as wanted or the app asked for nothing new meanwhile. Only when connected (or
   * restoring): otherwise the next connection's rejoin does it. Rethrows, when restoring, the loss of the connection.
   */
  async #sync(restoring, options) {
    if (!restoring && this.#host.client.state !== "connected") return;
    const opts = { ...this.#timeout, ...options };
    let step = "join";
    try {
      for (; ; ) {
        const wanted = this.#wanted;
        const member = this.#member;
        if (wanted === void 0 && member === void 0) break;
        if (member === void 0) {
          step = "join";
          const made = await this.#host.send("create", { resourceType: "presence", data: { topic: this.topic, state: wanted } }, opts);
          this.#own(made);
        } else if (wanted === void 0) {
          step = "leave";
          await this.#host.send("delete", { resourceType: "presence", id: member.id }, opts);
          this.#own(void 0);
        } else {
          const patch = diff(stateOf(member), wanted);
          if (patch === void 0) break;
          step = "update";
          const changed = await this.#host.send("update", { resourceType: "presence", id: member.id, patch: { state: patch } }, opts);
          this.#own(changed);
        }
        if (this.#wanted === wanted) break;
      }
    } catch (error) {
      const failure = error instanceof TidingsError ? error : new TidingsError(ServerErrorCode.INTERNAL, String(error));
      if (GONE.has(failure.code)) {
        this.#own(void 0);
        if (restoring) throw failure;
        return;
      }
      if (restoring && failure.code === ClientErrorCode.TIMEOUT) throw failure;
      this.#refused(step, failure);
      return;
    }
    this.#resolveWaiters();
  }
  /** The server refused a join, a change or a leave: the handle holds what the server holds, and says why. */
  #refused(step, error) {
    if (step === "join") this.#wanted = void 0;
    else if (step === "update" && this.#member !== void 0) this.#wanted = copy(stateOf(this.#member));
    else if (step === "leave" && error.code === ServerErrorCode.NOT_FOUND) {
      this.#own(void 0);
      return this.#resolveWaiters();
    }
    this.#error = error;
    this.#changed();
    this.#rejectWaiters(error);
  }
  /** Takes the server's answer as this handle's member. */
  #own(member) {
    this.#member = member;
    this.#changed();
  }
  #resolveWaiters() {
    const self = this.self;
    for (const waiter of this.#waiters.splice(0)) {
      if (!waiter.member || self !== void 0) waiter.resolve(self);
      else waiter.reject(new TidingsError(ServerErrorCode.NOT_FOUND, `left ${this.topic} before the join was done`, { topic: this.topic }));
    }
  }
  #rejectWaiters(error) {
    for (const waiter of this.#waiters.splice(0)) waiter.reject(error);
  }
  // --- Snapshots and listeners ----------------------------------------------------------------------------------
  #memberOf(resource) {
    return Object.freeze({
      id: resource.id,
      userId: resource.ownerId,
      state: stateOf(resource),
      version: resource.version,
      joinedAt: resource.createdAt,
      updatedAt: resource.updatedAt,
      self: resource.id === this.#member?.id
    });
  }
  /** Builds the members and users again after a change, once, when they are next read. */
  #refresh() {
    if (!this.#dirty) return;
    this.#dirty = false;
    const members = [...this.#held.values()].sort((a, b) => a.createdAt - b.createdAt || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0)).map((resource) => this.#memberOf(resource));
    this.#members = Object.freeze(members);
    const users = /* @__PURE__ */ new Map();
    for (const member of members) users.set(member.userId, [...users.get(member.userId) ?? [], member]);
    for (const list of users.values()) Object.freeze(list);
    this.#users = users;
  }
  #changed() {
    this.#dirty = true;
    this.#emit("change");
  }
  #setStatus(status, error) {
    if (status === this.#status && error === this.#error) return;
    this.#status = status;
    this.#error = error;
    this.#emit("change");
  }
  #emit(name, ...args) {
    for (const listener of [...this.#listeners[name]]) {
      try {
        listener(...args);
      } catch (error) {
        queueMicrotask(() => {
          throw error;
        });
      }
    }
  }
};
function stateOf(member) {
  const state = member.data["state"];
  return isObject2(state) ? state : {};
}

// src/state.ts
function serverSpeaks(state, minor) {
  if (state.serverVersion === void 0) return true;
  const [major, stated = "0"] = state.serverVersion.split(".");
  return Number(major) > 1 || Number(major) === 1 && Number(stated) >= minor;
}
function initialState() {
  return {
    connection: "idle",
    socket: void 0,
    userId: void 0,
    authenticated: false,
    closedByUser: false,
    attempt: 0,
    tries: 0,
    abandon: void 0,
    reconnecting: false,
    watchdog: void 0,
    silenceLimitMs: void 0,
    refreshTimer: void 0,
    tokenInFlight: void 0,
    firstConnect: void 0,
    lastDisconnect: void 0,
    probing: false,
    inFlight: /* @__PURE__ */ new Map(),
    queue: [],
    subscriptions: /* @__PURE__ */ new Map(),
    serverVersion: void 0
  };
}

// src/outbox.ts
var PENDING_ID_PREFIX = "pending:";
function pendingId(requestId) {
  return `${PENDING_ID_PREFIX}${requestId}`;
}
function isPendingId(id) {
  return id.startsWith(PENDING_ID_PREFIX);
}
function memoryOutbox() {
  const writes = /* @__PURE__ */ new Map();
  return {
    load: () => Promise.resolve([...writes.values()]),
    put(write) {
      writes.set(write.requestId, write);
      return Promise.resolve();
    },
    delete(requestId) {
      writes.delete(requestId);
      return Promise.resolve();
    }
  };
}
async function fileSystem() {
  const node = globalThis.process;
  const builtin = node?.getBuiltinModule?.("node:fs/promises");
  if (builtin !== void 0) return builtin;
  const name = "node:fs/promises";
  return await import(
    /* webpackIgnore: true */
    /* @vite-ignore */
    name
  );
}
function fileOutbox(path) {
  let writes;
  const read = async () => {
    if (writes !== void 0) return writes;
    const fs = await fileSystem();
    let text;
    try {
      text = await fs.readFile(path, "utf8");
    } catch (error) {
      if (error.code !== "ENOENT") throw error;
    }
    const held = text === void 0 ? [] : JSON.parse(text);
    writes = new Map(held.map((write) => [write.requestId, write]));
    return writes;
  };
  const save = async (held) => {
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
    }
  };
}
var STORE = "writes";
function done(request) {
  return new Promise((resolve, reject) => {
    request.onsuccess = () => resolve(request.result);
    request.onerror = () => reject(request.error);
  });
}
function indexedDbOutbox(name) {
  let opened;
  const database = () => {
    opened ??= new Promise((resolve, reject) => {
      const factory = globalThis.indexedDB;
      if (factory === void 0) return reject(new Error("there is no IndexedDB here: use memoryOutbox() or fileOutbox(path)"));
      const request = factory.open(name, 1);
      request.onupgradeneeded = () => request.result.createObjectStore(STORE, { keyPath: "requestId" });
      request.onsuccess = () => resolve(request.result);
      request.onerror = () => reject(request.error);
      request.onblocked = () => reject(new Error(`the IndexedDB database ${name} is held open at an older version`));
    });
    return opened;
  };
  const change = async (apply) => {
    const db = await database();
    const options = { durability: "strict" };
    const transaction = db.transaction(STORE, "readwrite", options);
    apply(transaction.objectStore(STORE));
    await new Promise((resolve, reject) => {
      transaction.oncomplete = () => resolve();
      transaction.onerror = () => reject(transaction.error);
      transaction.onabort = () => reject(transaction.error ?? new Error("the outbox transaction was aborted"));
    });
  };
  return {
    async load() {
      const db = await database();
      return await done(db.transaction(STORE, "readonly").objectStore(STORE).getAll());
    },
    put: (write) => change((store) => store.put(write)),
    delete: (requestId) => change((store) => store.delete(requestId))
  };
}

// src/writes.ts
var AGAIN = /* @__PURE__ */ new Set([
  ClientErrorCode.CONNECTION_LOST,
  ClientErrorCode.CLOSED,
  ClientErrorCode.TIMEOUT,
  ClientErrorCode.DISCONNECTED,
  ServerErrorCode.RATE_LIMITED,
  ServerErrorCode.UNAVAILABLE
]);
var MAX_RETRY_MS3 = 3e4;
function createWrites({ outbox, state, settings, request, emit }) {
  const log = settings.logger;
  let entries = [];
  const waiters = /* @__PURE__ */ new Map();
  const watchers = /* @__PURE__ */ new Set();
  const confirmedIds = /* @__PURE__ */ new Map();
  let nextPosition = 1;
  let draining = false;
  let wanted = false;
  let retryTimer;
  let retryMs = 1e3;
  const loaded = outbox.load().then(
    (held) => {
      const restored = held.filter(isWrite).sort((a, b) => a.position - b.position);
      nextPosition = (restored[restored.length - 1]?.position ?? 0) + 1;
      const known = new Set(restored.map((write2) => write2.requestId));
      const early = entries.filter((entry) => !known.has(entry.write.requestId));
      entries = restored.map((write2) => ({ write: Object.freeze(write2), stored: Promise.resolve() }));
      for (const entry of early) {
        entry.write = Object.freeze({ ...entry.write, position: nextPosition++ });
        entries.push(entry);
      }
      if (restored.length > 0) log.info(`the outbox holds ${restored.length} writes from before`);
      changed({ kind: "loaded" });
    },
    (error) => {
      log.error(`the outbox could not be read: ${String(error)}`, error);
      emit("error", new TidingsError(ClientErrorCode.OUTBOX_FAILED, `the outbox could not be read: ${String(error)}`));
    }
  );
  let chain = loaded;
  function store(change) {
    const next = chain.then(change).catch((error) => {
      log.error(`the outbox could not keep a change: ${String(error)}`, error);
      emit("error", new TidingsError(ClientErrorCode.OUTBOX_FAILED, `the outbox could not keep a change: ${String(error)}`));
    });
    chain = next;
    return next;
  }
  function keep(entry) {
    entry.stored = store(() => entries.includes(entry) ? outbox.put(entry.write) : Promise.resolve());
  }
  function changed(change) {
    for (const watcher of [...watchers]) watcher(change);
    emit("outbox", pending2());
  }
  function pending2(resourceType) {
    const writes = entries.map((entry) => entry.write);
    return resourceType === void 0 ? writes : writes.filter((write2) => write2.resourceType === resourceType);
  }
  function write(kind, resourceType, id, data, expectedVersion, requestId = settings.generateId()) {
    const promise = new Promise((resolve, reject2) => {
      const list = waiters.get(requestId) ?? [];
      list.push({ resolve, reject: reject2 });
      waiters.set(requestId, list);
    });
    if (entries.some((entry2) => entry2.write.requestId === requestId)) return promise;
    const target = kind === "create" ? pendingId(requestId) : confirmedIds.get(id) ?? id;
    const draft = { requestId, kind, resourceType, id: target, position: nextPosition++, writtenAt: Date.now() };
    if (data !== void 0) draft.data = copy(data);
    if (expectedVersion !== void 0 && !isPendingId(target)) draft.expectedVersion = expectedVersion;
    if (state.userId !== void 0) draft.userId = state.userId;
    const entry = { write: Object.freeze(draft), stored: Promise.resolve() };
    entries.push(entry);
    keep(entry);
    changed({ kind: "queued", write: entry.write });
    kick();
    return promise;
  }
  function watch(listener) {
    watchers.add(listener);
    return () => {
      watchers.delete(listener);
    };
  }
  function kick() {
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
  async function drain() {
    await loaded;
    for (; ; ) {
      const entry = entries[0];
      if (entry === void 0 || !state.authenticated) return;
      await entry.stored;
      if (entries[0] !== entry || !state.authenticated) continue;
      if (!await send(entry)) return;
    }
  }
  async function send(entry) {
    const userId = state.userId;
    if (entry.write.userId !== void 0 && userId !== void 0 && entry.write.userId !== userId) {
      const message = `this write was made as ${entry.write.userId}; the client is signed in as ${userId}, and does not make it as them`;
      const details = { previousUserId: entry.write.userId, userId };
      reject(entry, new TidingsError(ClientErrorCode.USER_CHANGED, message, details, entry.write.requestId));
      return true;
    }
    if (entry.write.userId === void 0 && userId !== void 0) {
      entry.write = Object.freeze({ ...entry.write, userId });
      keep(entry);
      await entry.stored;
    }
    if (entry.write.kind !== "create" && isPendingId(entry.write.id)) {
      const real = confirmedIds.get(entry.write.id);
      if (real === void 0) {
        reject(entry, dependentError(entry.write, "its create was refused"));
        return true;
      }
      entry.write = Object.freeze({ ...entry.write, id: real });
      keep(entry);
    }
    try {
      await transmit(entry.write, (result) => {
        retryMs = 1e3;
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
      if (state.authenticated) later(failure.code === ServerErrorCode.UNAVAILABLE ? retryAfter(failure.details) : retryMs);
      return false;
    }
  }
  function later(ms) {
    clearTimeout(retryTimer);
    retryTimer = setTimeout(kick, ms);
    retryMs = Math.min(retryMs * 2, MAX_RETRY_MS3);
  }
  async function transmit(write2, applied) {
    const options = { requestId: write2.requestId, internal: true };
    const onReply = (reply) => applied(reply.payload);
    const { resourceType, id } = write2;
    const expected = write2.expectedVersion === void 0 ? {} : { expectedVersion: write2.expectedVersion };
    if (write2.kind === "create") {
      await request("create", { resourceType, data: write2.data ?? {} }, { ...options, onReply });
      return;
    }
    if (!serverSpeaks(state, 2)) {
      if (write2.kind === "update") await request("update", { resourceType, id, patch: write2.data ?? {}, ...expected }, { ...options, onReply });
      else await request("delete", { resourceType, id, ...expected }, { ...options, onReply });
      return;
    }
    const operation = write2.kind === "update" ? { op: "update", resourceType, id, patch: write2.data ?? {}, ...expected } : { op: "delete", resourceType, id, ...expected };
    const operations = [operation];
    let answered = false;
    const onBatch = (reply) => {
      const [first] = reply.payload.results;
      if (first === void 0) return;
      answered = true;
      const { op: _op, ...result } = first;
      applied(result);
    };
    try {
      await request("batch", { operations }, { ...options, onReply: onBatch });
    } catch (error) {
      throw asSingle(error);
    }
    if (!answered) throw new TidingsError(ClientErrorCode.INVALID_REPLY, "the batch of one write was answered with no result");
  }
  function remove(entry) {
    entries = entries.filter((other) => other !== entry);
    void store(() => outbox.delete(entry.write.requestId));
  }
  function settle(requestId, outcome) {
    const list = waiters.get(requestId) ?? [];
    waiters.delete(requestId);
    for (const waiter of list) outcome(waiter);
  }
  function confirm(entry, result) {
    const write2 = entry.write;
    if (write2.kind === "create") {
      confirmedIds.set(write2.id, result.id);
      for (const other of entries) {
        if (other === entry || other.write.id !== write2.id) continue;
        other.write = Object.freeze({ ...other.write, id: result.id });
        keep(other);
      }
    }
    remove(entry);
    changed({ kind: "confirmed", write: write2, result });
    emit("confirmed", write2, result);
    settle(write2.requestId, (waiter) => waiter.resolve(result));
  }
  function reject(entry, error) {
    const write2 = entry.write;
    remove(entry);
    log.warn(`the server refused a ${write2.kind} of ${write2.resourceType} ${write2.id}; it is rolled back: ${error.message}`, error);
    changed({ kind: "rejected", write: write2 });
    emit("rejected", error, write2);
    settle(write2.requestId, (waiter) => waiter.reject(error));
    if (write2.kind !== "create") return;
    for (const other of entries.filter((e) => e.write.id === write2.id)) {
      reject(other, dependentError(other.write, `its create was refused (${error.code})`));
    }
  }
  return { pending: pending2, watch, write, resume: kick };
}
function dependentError(write, why) {
  const message = `the ${write.kind} of ${write.resourceType} ${write.id} was not sent: ${why}`;
  return new TidingsError(ServerErrorCode.NOT_FOUND, message, { resourceType: write.resourceType, id: write.id }, write.requestId);
}
function asSingle(error) {
  if (!(error instanceof TidingsError) || error.details["index"] === void 0) return error;
  const { index: _index, ...details } = error.details;
  const errors = error.errors.map((e) => ({ ...e, pointer: e.pointer.replace(/^\/payload\/operations\/0(?=\/|$)/, "/payload") }));
  if (errors.length > 0) details["errors"] = errors;
  return new TidingsError(error.code, error.message, details, error.requestId);
}
function isWrite(value) {
  const write = value;
  return typeof write === "object" && write !== null && typeof write.requestId === "string" && (write.kind === "create" || write.kind === "update" || write.kind === "delete") && typeof write.resourceType === "string" && typeof write.id === "string" && typeof write.position === "number";
}

// src/client.ts
var SNAPSHOT_PAGE = 100;
function createClient(options) {
  const settings = settingsOf(options);
  const state = initialState();
  const listeners = {
    event: /* @__PURE__ */ new Set(),
    notification: /* @__PURE__ */ new Set(),
    state: /* @__PURE__ */ new Set(),
    gap: /* @__PURE__ */ new Set(),
    unsubscribed: /* @__PURE__ */ new Set(),
    error: /* @__PURE__ */ new Set(),
    attemptFailed: /* @__PURE__ */ new Set(),
    confirmed: /* @__PURE__ */ new Set(),
    rejected: /* @__PURE__ */ new Set(),
    outbox: /* @__PURE__ */ new Set()
  };
  const log = settings.logger;
  const requests = createRequests(state, settings);
  const { request, send, routeReply } = requests;
  const restorers = /* @__PURE__ */ new Set();
  const restore = async () => {
    await Promise.all([...restorers].map((rejoin) => rejoin()));
  };
  const connection = createConnection({ options, settings, state, requests, emit, setState, onMessage, restore });
  const handles = createHandles({ logger: log, unsubscribeLast });
  const writes = options.outbox === void 0 ? void 0 : createWrites({ outbox: options.outbox, state, settings, request, emit });
  const closing = /* @__PURE__ */ new Map();
  const opening = /* @__PURE__ */ new Map();
  function emit(name, ...args) {
    tell(name, ...args);
    route(name, args[0]);
  }
  function tell(name, ...args) {
    for (const listener of [...listeners[name]]) {
      try {
        listener(...args);
      } catch (error) {
        log.error(`an on('${name}') listener threw: ${String(error)}`, error);
        queueMicrotask(() => {
          throw error;
        });
      }
    }
  }
  function route(name, payload) {
    if (name === "event") {
      const event = payload;
      const sub = recordOf(state.subscriptions, event.subscriptionId, event.topic);
      if (sub !== void 0) handles.deliver(sub.key, ["event", event]);
    } else if (name === "gap") {
      const gap = payload;
      handles.deliver(subscriptionKey(gap.topic, gap.query), ["gap", gap]);
    } else if (name === "unsubscribed") {
      const info = payload;
      const key = subscriptionKey(info.topic, info.query);
      if (!state.subscriptions.has(key)) handles.leave(key, info);
    }
  }
  function setState(next, error) {
    if (state.connection === next) return;
    state.connection = next;
    if (next === "connected" || next === "closed") log.info(`${next}${error ? `: ${error.message}` : ""}`, error);
    else log.debug(next);
    options.onStateChange?.(next, error);
    emit("state", next, error);
    if (next === "connected") writes?.resume();
  }
  function onMessage(data) {
    connection.armWatchdog();
    const decoded = decodeServer(typeof data === "string" ? data : String(data));
    if (decoded.kind === "invalid") {
      const message = `unreadable server message (${decoded.code})`;
      const error = new TidingsError(ClientErrorCode.INVALID_REPLY, message, { errors: decoded.errors }, decoded.requestId);
      log.warn(message, error);
      const req = decoded.requestId === void 0 ? void 0 : state.inFlight.get(decoded.requestId);
      if (req !== void 0) req.reject(error);
      else emit("error", error);
      return;
    }
    if (decoded.kind === "reply") {
      const req = state.inFlight.get(decoded.requestId);
      if (req !== void 0) return routeReply(req, decoded.message);
    }
    handlePush(decoded.message);
  }
  function release(sub) {
    const held = sub.held ?? [];
    const end = sub.heldEnd;
    sub.held = void 0;
    delete sub.heldEnd;
    if (state.subscriptions.get(sub.key) !== sub && end === void 0) return;
    for (const event of held) tell("event", event);
    if (end !== void 0) tell("unsubscribed", end);
  }
  function handlePush(message) {
    switch (message.type) {
      case "ping":
        send({ type: "pong", payload: {} });
        return;
      case "event": {
        const event = message.payload;
        const sub = recordOf(state.subscriptions, event.subscriptionId, event.topic);
        if (!countEvent(sub, event)) return;
        if (sub?.held === void 0) return emit("event", event);
        sub.held.push(event);
        handles.deliver(sub.key, ["event", event]);
        return;
      }
      case "notification": {
        const notification = message.payload;
        if (countNotification(state.subscriptions.get(NOTIFICATIONS), notification)) emit("notification", notification);
        return;
      }
      case "unsubscribe": {
        const p = message.payload;
        const sub = recordOf(state.subscriptions, p.subscriptionId, p.topic);
        if (sub !== void 0) state.subscriptions.delete(sub.key);
        const cause = p.reason ?? { code: ServerErrorCode.INTERNAL, message: "the server ended the subscription" };
        const reason = new TidingsError(cause.code, cause.message, cause.details ?? null);
        const unknown = { topic: p.topic ?? p.subscriptionId, subscriptionId: p.subscriptionId, reason };
        const info = sub === void 0 ? unknown : ended(sub, reason);
        if (sub?.held === void 0) return emit("unsubscribed", info);
        sub.heldEnd = info;
        handles.leave(sub.key, info);
        return;
      }
      case "error": {
        const p = message.payload;
        const error = new TidingsError(p.code, p.message, p.details ?? null);
        if (p.code === ServerErrorCode.RATE_LIMITED) requests.pacer.pause(retryAfter(p.details));
        if (p.code === ServerErrorCode.TOKEN_EXPIRED && options.getToken !== void 0) connection.refresh();
        emit("error", error);
        return;
      }
      case "disconnect":
        state.lastDisconnect = message.payload;
        return;
      default:
        return;
    }
  }
  const retryableWrite = (o) => o?.expectedVersion !== void 0;
  function whenConnected(resolve, reject, onConnected = () => void 0) {
    const off = client.on("state", (next, error) => {
      if (next === "connected") off(), onConnected(), resolve();
      if (next === "closed") off(), reject(error ?? new TidingsError(ClientErrorCode.CLOSED, "closed"));
    });
  }
  const needs = (minor, what) => {
    if (serverSpeaks(state, minor)) return;
    const message = `this server speaks protocol ${state.serverVersion ?? "?"}; ${what} needs 1.${minor} or later`;
    throw new TidingsError(ServerErrorCode.UNSUPPORTED_VERSION, message, { serverVersion: state.serverVersion });
  };
  async function subscribeOnServer(topic, key, opts) {
    const { since, query, snapshot = false, ...requestOptions } = opts;
    const payload = { topic };
    if (since !== void 0) payload.since = since;
    if (query !== void 0) payload.query = query;
    if (snapshot) payload.snapshot = true;
    const mine = pending(topic, query, since, snapshot);
    state.subscriptions.set(key, mine);
    let handle;
    const onReply = (reply) => {
      state.subscriptions.set(key, mine);
      if (query !== void 0 || snapshot) mine.held = [];
      const gap = applyReply(mine, reply, since);
      handle = handles.attach(key, view(mine, reply), true);
      if (gap !== void 0) emit("gap", gap);
    };
    try {
      await request("subscribe", payload, { ...requestOptions, onReply: (m) => onReply(m.payload) });
    } catch (error) {
      if (state.subscriptions.get(key) === mine) state.subscriptions.delete(key);
      throw error;
    }
    const made = handle;
    setTimeout(() => {
      if (mine.held !== void 0) release(mine);
      made.releaseHeld();
    }, 0);
    return made;
  }
  async function share(sub, opts) {
    const { since, snapshot = false, ...requestOptions } = opts;
    if (since !== void 0 && since < sub.lastSeq) {
      const message = `this client subscribes to ${sub.subscriptionId} already, from seq ${sub.lastSeq}: no replay from ${since} can be asked for one more handle`;
      throw new TidingsError(ServerErrorCode.CONFLICT, message, { subscriptionId: sub.subscriptionId, lastSeq: sub.lastSeq });
    }
    const shown = view(sub);
    const members = membersOf(sub);
    if (members !== void 0) {
      shown.items = members;
      shown.nextCursor = null;
    }
    if (since !== void 0) {
      shown.lastSeq = since;
      shown.recovered = true;
    }
    const handle = handles.attach(sub.key, shown, true);
    if (snapshot && since === void 0 && members === void 0) {
      const payload = { resourceType: sub.topic, limit: SNAPSHOT_PAGE };
      if (sub.query !== void 0) payload.query = sub.query;
      try {
        const page = await request("read", payload, { ...requestOptions, retry: true });
        handle.items = page.payload.items;
        handle.nextCursor = page.payload.nextCursor ?? null;
      } catch (error) {
        handle.unsubscribe().catch(() => void 0);
        throw error;
      }
    }
    setTimeout(() => handle.releaseHeld(), 0);
    return handle;
  }
  async function unsubscribeLast(key, requestOptions) {
    const sub = state.subscriptions.get(key);
    if (sub === void 0 || sub.pending) return;
    state.subscriptions.delete(key);
    sub.held = void 0;
    if (!state.authenticated) return;
    const done2 = request("unsubscribe", { subscriptionId: sub.subscriptionId }, requestOptions).then(() => void 0);
    const settled = done2.catch(() => void 0);
    closing.set(key, settled);
    void settled.then(() => closing.get(key) === settled && closing.delete(key));
    await done2;
  }
  const presenceHost = {
    get client() {
      return client;
    },
    async send(type, payload, opts) {
      if (!state.authenticated) throw new TidingsError(ClientErrorCode.DISCONNECTED, "the client is not connected");
      const reply = await request(type, payload, { ...opts, internal: true });
      return reply.payload;
    },
    check: () => needs(2, "presence"),
    onConnection(rejoin) {
      restorers.add(rejoin);
      return () => {
        restorers.delete(rejoin);
      };
    }
  };
  const client = {
    get state() {
      return state.connection;
    },
    connect() {
      if (state.connection === "connected") return Promise.resolve();
      if (state.firstConnect !== void 0 || state.connection === "connecting" || state.connection === "reconnecting") {
        return new Promise((resolve, reject) => whenConnected(resolve, reject));
      }
      state.closedByUser = false;
      state.attempt = 0;
      state.tries = 0;
      state.abandon = void 0;
      setState("connecting");
      connection.addProbes();
      return new Promise((resolve, reject) => {
        state.firstConnect = { resolve, reject };
        connection.open().then(
          () => {
            state.firstConnect = void 0;
            resolve();
          },
          () => {
            if (state.connection === "closed") return;
            whenConnected(resolve, reject, () => {
              state.firstConnect = void 0;
            });
          }
        );
      });
    },
    close() {
      if (state.connection === "closed" || state.connection === "idle") return;
      connection.shutdown(new TidingsError(ClientErrorCode.CLOSED, "closed by the caller"));
    },
    reconnect() {
      connection.drop("reconnect requested");
    },
    async create(resourceType, data, opts = {}) {
      if (writes !== void 0) return await writes.write("create", resourceType, void 0, data, void 0, opts.requestId);
      const reply = await request("create", { resourceType, data }, { ...opts, retry: true });
      return reply.payload;
    },
    async read(resourceType, id, opts = {}) {
      const reply = await request("read", { resourceType, id }, { ...opts, retry: true });
      return reply.payload;
    },
    async list(resourceType, given, opts = {}) {
      const query = given ?? {};
      const newer = query.query !== void 0 || query.fields !== void 0 || query.count !== void 0 || Array.isArray(query.orderBy);
      if (newer) needs(1, "a query, fields, count or several order keys");
      const reply = await request("read", { resourceType, ...query }, { ...opts, retry: true });
      return reply.payload;
    },
    async update(resourceType, id, patch, opts = {}) {
      if (writes !== void 0) return await writes.write("update", resourceType, id, patch, opts.expectedVersion, opts.requestId);
      const payload = { resourceType, id, patch };
      if (opts.expectedVersion !== void 0) payload.expectedVersion = opts.expectedVersion;
      const reply = await request("update", payload, { ...opts, retry: retryableWrite(opts) });
      return reply.payload;
    },
    async delete(resourceType, id, opts = {}) {
      if (writes !== void 0) {
        return await writes.write("delete", resourceType, id, void 0, opts.expectedVersion, opts.requestId);
      }
      const payload = { resourceType, id };
      if (opts.expectedVersion !== void 0) payload.expectedVersion = opts.expectedVersion;
      const reply = await request("delete", payload, { ...opts, retry: retryableWrite(opts) });
      return reply.payload;
    },
    async batch(operations, opts = {}) {
      needs(2, "batch");
      const payload = { operations };
      const reply = await request("batch", payload, { ...opts, retry: true });
      return reply.payload.results;
    },
    async subscribe(topic, opts = {}) {
      if (opts.query !== void 0 || opts.snapshot) needs(1, "a query subscription or a snapshot");
      if (isPresenceTopic(topic)) needs(2, "presence");
      const key = subscriptionKey(topic, opts.query);
      for (let wait = closing.get(key) ?? opening.get(key); wait !== void 0; wait = closing.get(key) ?? opening.get(key)) await wait;
      const held = state.subscriptions.get(key);
      if (held !== void 0 && !held.pending) return share(held, opts);
      const made = subscribeOnServer(topic, key, opts);
      const settled = made.then(
        () => void 0,
        () => void 0
      );
      opening.set(key, settled);
      void settled.then(() => opening.get(key) === settled && opening.delete(key));
      return made;
    },
    async unsubscribe(target, opts = {}) {
      if (handles.owns(target)) return target.unsubscribe(opts);
      const { query, ...requestOptions } = opts;
      const found = typeof target === "string" ? void 0 : recordOf(state.subscriptions, target.subscriptionId, void 0);
      const topic = typeof target === "string" ? target : target.topic;
      const sub = found ?? state.subscriptions.get(subscriptionKey(topic, typeof target === "string" ? query : target.query));
      if (sub === void 0 || sub.pending) {
        const what = query === void 0 ? topic : `${topic} with this query`;
        throw new TidingsError(ServerErrorCode.NOT_FOUND, `no subscription to ${what}`, { topic });
      }
      const done2 = unsubscribeLast(sub.key, requestOptions);
      const reason = new TidingsError(ClientErrorCode.CLOSED, `client.unsubscribe ended the subscription ${sub.subscriptionId}`);
      handles.leave(sub.key, ended(sub, reason));
      await done2;
    },
    live(resourceType, query, opts = {}) {
      return createLive(client, resourceType, query, opts, writes);
    },
    presence(topic, opts = {}) {
      return createPresence(presenceHost, topic, opts);
    },
    async broadcast(resourceType, data, opts = {}) {
      needs(2, "broadcast");
      if (!state.authenticated || state.connection !== "connected") {
        throw new TidingsError(ClientErrorCode.DISCONNECTED, "broadcast is sent only while connected; nothing was sent");
      }
      const reply = await request("create", { resourceType, data }, { ...opts, internal: true });
      return reply.payload;
    },
    async ping(opts = {}) {
      await request("ping", {}, opts);
    },
    on(name, listener) {
      listeners[name].add(listener);
      return () => {
        listeners[name].delete(listener);
      };
    },
    subscriptions() {
      return [...state.subscriptions.values()].filter((s) => !s.pending).map((s) => view(s));
    },
    pendingWrites() {
      return writes?.pending() ?? [];
    }
  };
  return client;
}
export {
  ABNORMAL_CLOSURE,
  CLIENT_TYPES,
  CLOSE_CODES,
  ClientErrorCode,
  CloseCode,
  ERROR_CODES,
  MAX_SAFE,
  PROTOCOL_VERSION,
  SERVER_PAYLOAD_SCHEMAS,
  SERVER_TYPES,
  ServerErrorCode,
  TidingsError,
  VERSION,
  backoffDelay,
  canonicalQuery,
  createClient,
  decodeServer,
  fileOutbox,
  indexedDbOutbox,
  isClientMessage,
  isPendingId,
  knownErrorCode,
  matches,
  memoryOutbox,
  normalizeTimestamp,
  pendingId,
  q,
  shouldReconnect
};
