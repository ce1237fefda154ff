// Bundles the SDK into one ESM file, dist/tidings.js, for a plain <script type="module"> tag.
import { build } from 'esbuild';
import { dirname, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
export const ENTRY = resolve(here, '..', 'src', 'index.ts');
export const BUNDLE = resolve(here, '..', 'dist', 'tidings.js');

/** The bundle's text; deterministic, so that a test can compare it with the committed file. */
export async function bundle() {
  const result = await build({
    entryPoints: [ENTRY],
    bundle: true,
    format: 'esm',
    platform: 'browser',
    target: 'es2022',
    minify: false,
    legalComments: 'none',
    banner: { js: '// Tidings SDK as one ES module for browsers, built by scripts/bundle.mjs from src/. Do not edit.' },
    write: false,
  });
  return result.outputFiles[0].text;
}

if (import.meta.url === pathToFileURL(process.argv[1]).href) {
  const { writeFileSync, mkdirSync } = await import('node:fs');
  mkdirSync(dirname(BUNDLE), { recursive: true });
  writeFileSync(BUNDLE, await bundle());
  console.log(`wrote ${BUNDLE}`);
}
