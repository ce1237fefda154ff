// Builds dist/ from src/: the ES module and its types (tsc), and the CommonJS module with its types (esbuild and
// .d.cts copies). npm run build and npm pack (prepack) run it. It needs the SDK built (clients/js, npm run build),
// whose types it compiles against.
import { build } from 'esbuild';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const dist = resolve(root, 'dist');

// Built into a folder of its own, then moved in: dist/ never holds half a build, and files of modules since
// removed go.
const staging = mkdtempSync(join(root, '.dist-'));
try {
  execFileSync(resolve(root, 'node_modules', '.bin', 'tsc'), ['-p', 'tsconfig.json', '--outDir', staging], { cwd: root, stdio: 'inherit' });
  await build({
    entryPoints: [resolve(root, 'src', 'index.ts')],
    outfile: join(staging, 'index.cjs'),
    bundle: true,
    // The app brings its own React and SDK: one React per page, and the client the app made.
    external: ['react', 'tidings'],
    format: 'cjs',
    platform: 'neutral',
    target: 'es2022',
    legalComments: 'none',
    banner: { js: '// Tidings React bindings as one CommonJS module, built by scripts/build.mjs from src/. Do not edit.' },
  });
  // TypeScript reads a .d.ts of this package as an ES module, which require() cannot load: each gets a CommonJS copy.
  for (const name of readdirSync(staging).filter((n) => n.endsWith('.d.ts'))) {
    const text = readFileSync(join(staging, name), 'utf8');
    writeFileSync(join(staging, name.replace(/\.d\.ts$/, '.d.cts')), text.replace(/(from\s+|import\()(['"])(\.{1,2}\/[^'"]+)\.js\2/g, '$1$2$3.cjs$2'));
  }
  mkdirSync(dist, { recursive: true });
  const built = new Set(readdirSync(staging));
  for (const name of built) renameSync(join(staging, name), join(dist, name));
  for (const name of readdirSync(dist)) if (!built.has(name)) rmSync(join(dist, name), { recursive: true, force: true });
} finally {
  if (existsSync(staging)) rmSync(staging, { recursive: true, force: true });
}
