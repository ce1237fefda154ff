// Writes src/version.ts from package.json, so that the version the client reports in `connect` is the package's.
import { readFileSync, writeFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
export const VERSION_FILE = resolve(here, '..', 'src', 'version.ts');

/** The text of src/version.ts for the version in package.json. */
export function versionSource() {
  const { version } = JSON.parse(readFileSync(resolve(here, '..', 'package.json'), 'utf8'));
  return [
    '// The package version, written from package.json by scripts/version.mjs at every build. Do not edit.',
    '',
    "/** This package's version, as its package.json states it; the client sends it in `connect` (clientInfo.version). */",
    `export const VERSION = ${JSON.stringify(version).replaceAll('"', "'")};`,
    '',
  ].join('\n');
}

if (import.meta.url === pathToFileURL(process.argv[1]).href) {
  writeFileSync(VERSION_FILE, versionSource());
}
