// The package's entry point: the client, the protocol module and the query builders.
export * from './common.js';
export * from './options.js';
export * from './api.js';
export * from './client.js';
export * from './typed.js';
export * from './query.js';
export type { LiveCollection, LiveStatus } from './live.js';
export type { Presence, PresenceEvents, PresenceMember, PresenceState, PresenceStatus } from './presence.js';
export { VERSION } from './version.js';
