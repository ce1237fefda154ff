// Checks that src/generated.ts and dist/tidings.js are what scripts/generate.mjs and scripts/bundle.mjs make now.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { generate, OUTPUT } from '../scripts/generate.mjs';
import { bundle, BUNDLE } from '../scripts/bundle.mjs';

test('src/generated.ts matches schema/ (run npm run generate when this fails)', async () => {
  const fresh = await generate();
  assert.ok(fresh === readFileSync(OUTPUT, 'utf8'), 'src/generated.ts is stale: run `npm run generate` in clients/js');
});

test('dist/tidings.js matches src/ (run npm run build when this fails)', async () => {
  const fresh = await bundle();
  assert.ok(fresh === readFileSync(BUNDLE, 'utf8'), 'dist/tidings.js is stale: run `npm run build` in clients/js');
});

test('the bundle has no imports, so a <script type="module"> tag can load it alone', () => {
  const text = readFileSync(BUNDLE, 'utf8');
  assert.doesNotMatch(text, /^\s*import\s/m);
  assert.doesNotMatch(text, /\brequire\(/);
  assert.match(text, /export\s*\{[^}]*createClient/);
});
