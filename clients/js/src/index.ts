// The package's entry point: the client, the protocol module, the query builders and the outboxes.
export * from './common.js';
export * from './options.js';
export * from './api.js';
export * from './client.js';
export * from './typed.js';
export * from './query.js';
export type { LiveCollection, LiveItem, LiveStatus } from './live.js';
export { fileOutbox, indexedDbOutbox, isPendingId, memoryOutbox, pendingId } from './outbox.js';
export type { Outbox, PendingWrite, WriteKind } from './outbox.js';
export type { Presence, PresenceEvents, PresenceMember, PresenceState, PresenceStatus } from './presence.js';
export { VERSION } from './version.js';
