// The package version, written from package.json by scripts/version.mjs at every build. Do not edit.

/** This package's version, as its package.json states it; the client sends it in `connect` (clientInfo.version). */
export const VERSION = '0.1.0';
