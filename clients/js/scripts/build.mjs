// Builds dist/ from nothing: src/version.ts from package.json, the ES modules and their types (tsc), the CommonJS
// build with its types, and the browser bundle. npm run build and npm pack (prepack) run it.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { bundle } from './bundle.mjs';
import { buildCjs } from './cjs.mjs';
import { VERSION_FILE, versionSource } from './version.mjs';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const dist = resolve(root, 'dist');

writeFileSync(VERSION_FILE, versionSource());
// The build goes to a folder of its own first and its files are then moved into dist/ one by one, each move
// replacing the old file at once: the server compiles dist/tidings.js into its binary, and a cargo build that runs
// while the file is missing fails, so dist/tidings.js must never be absent, not even during a build.
const staging = mkdtempSync(join(root, '.dist-'));
try {
  execFileSync(resolve(root, 'node_modules', '.bin', 'tsc'), ['-p', 'tsconfig.json', '--outDir', staging], { cwd: root, stdio: 'inherit' });
  await buildCjs(staging);
  writeFileSync(join(staging, 'tidings.js'), await bundle());
  mkdirSync(dist, { recursive: true });
  const built = new Set(readdirSync(staging));
  for (const name of built) renameSync(join(staging, name), join(dist, name));
  // A file left from an earlier build of a module since removed would be packed too, so it goes.
  for (const name of readdirSync(dist)) if (!built.has(name)) rmSync(join(dist, name), { recursive: true, force: true });
} finally {
  if (existsSync(staging)) rmSync(staging, { recursive: true, force: true });
}
