// The package's entry point: the client and the protocol module.
export * from './common.js';
export * from './options.js';
export * from './client.js';
