// Builds dist/ from nothing: src/version.ts from package.json, the ES modules and their types (tsc), the CommonJS
// build with its types, and the browser bundle. npm run build and npm pack (prepack) run it.
import { execFileSync } from 'node:child_process';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { BUNDLE, bundle } from './bundle.mjs';
import { buildCjs } from './cjs.mjs';
import { VERSION_FILE, versionSource } from './version.mjs';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');

writeFileSync(VERSION_FILE, versionSource());
// A file left from an earlier build of a module since removed would be packed too, so dist/ starts empty.
rmSync(resolve(root, 'dist'), { recursive: true, force: true });
execFileSync(resolve(root, 'node_modules', '.bin', 'tsc'), ['-p', 'tsconfig.json'], { cwd: root, stdio: 'inherit' });
await buildCjs();
mkdirSync(dirname(BUNDLE), { recursive: true });
writeFileSync(BUNDLE, await bundle());
