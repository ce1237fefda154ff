// Builds the CommonJS entry point, dist/index.cjs, and its types, dist/*.d.cts, for require('tidings').
import { build } from 'esbuild';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { ENTRY } from './bundle.mjs';

const here = dirname(fileURLToPath(import.meta.url));
const DIST = resolve(here, '..', 'dist');

/**
 * Writes index.cjs into `out` (dist/ unless given), one file bundled from src/ (the package has no runtime dependency
 * to leave out), and a .d.cts beside every .d.ts that tsc wrote there. TypeScript reads a .d.ts of this package as an ES module, which a
 * require() cannot load, so each declaration file is copied as CommonJS declarations with its relative imports
 * pointed at the .d.cts copies.
 */
export async function buildCjs(out = DIST) {
  await build({
    entryPoints: [ENTRY],
    outfile: join(out, 'index.cjs'),
    bundle: true,
    format: 'cjs',
    platform: 'neutral',
    target: 'es2022',
    legalComments: 'none',
    banner: { js: '// Tidings SDK as one CommonJS module, built by scripts/cjs.mjs from src/. Do not edit.' },
  });
  for (const name of readdirSync(out).filter((n) => n.endsWith('.d.ts'))) {
    const text = readFileSync(join(out, name), 'utf8');
    const cjs = text.replace(/(from\s+|import\()(['"])(\.{1,2}\/[^'"]+)\.js\2/g, '$1$2$3.cjs$2');
    writeFileSync(join(out, name.replace(/\.d\.ts$/, '.d.cts')), cjs);
  }
}

if (import.meta.url === pathToFileURL(process.argv[1]).href) {
  await buildCjs();
}
