// The README's five-minute quickstart, run as a reader would run it: its shell steps (a token from `tidings token`,
// the server in development mode), then its main.jsx bundled with esbuild as Vite would serve it (the `VITE_`
// variables in import.meta.env), opened in Debian's chromium, its button clicked, and the page's text compared with
// what the README says it reads.
import assert from 'node:assert/strict';
import { mkdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { dirname, join, resolve } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';
import { chromium } from 'playwright-core';
import { tempDir } from '../../../tests/support/process.mjs';
import { assertPrinted, quickstartBlocks, runSetup, shownLines } from '../../../tests/support/quickstart.mjs';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');

test('the README\'s quickstart page shows the order it adds and its event', async (t) => {
  const blocks = quickstartBlocks(join(root, 'README.md'));
  assert.deepEqual(Object.keys(blocks).sort(), ['jsx', 'sh', 'text']);
  const folder = tempDir();
  t.after(() => folder.cleanup());
  // `npm install tidings tidings-react`, in an app that has React: the bindings (built by npm test), the SDK and React.
  const modules = join(folder.dir, 'node_modules');
  mkdirSync(modules);
  symlinkSync(root, join(modules, 'tidings-react'), 'dir');
  for (const name of ['tidings', 'react', 'react-dom']) symlinkSync(join(root, 'node_modules', name), join(modules, name), 'dir');
  const { server, env } = await runSetup(blocks.sh, folder.dir);
  t.after(() => server.kill('SIGTERM'));
  assert.deepEqual(Object.keys(env).sort(), ['VITE_TIDINGS_TOKEN', 'VITE_TIDINGS_URL']);

  writeFileSync(join(folder.dir, 'main.jsx'), blocks.jsx);
  const define = { 'process.env.NODE_ENV': '"development"' };
  for (const [name, value] of Object.entries(env)) define[`import.meta.env.${name}`] = JSON.stringify(value);
  const bundled = await build({ entryPoints: [join(folder.dir, 'main.jsx')], bundle: true, format: 'esm', jsx: 'automatic', define, write: false });
  const script = bundled.outputFiles[0].text;
  const html = '<!doctype html><meta charset="utf-8"><title>quickstart</title><div id="root"></div><script type="module" src="/main.js"></script>';
  const site = createServer((request, response) => {
    const [type, body] = request.url === '/main.js' ? ['text/javascript', script] : ['text/html', html];
    response.writeHead(200, { 'content-type': `${type}; charset=utf-8` }).end(body);
  });
  await new Promise((done) => site.listen(0, '127.0.0.1', done));
  t.after(() => site.close());
  const browser = await chromium.launch({
    executablePath: process.env.TIDINGS_TEST_CHROMIUM ?? '/usr/bin/chromium',
    args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--no-first-run'],
  });
  t.after(() => browser.close());
  const page = await browser.newPage();
  const errors = [];
  page.on('pageerror', (error) => errors.push(error.message));
  await page.goto(`http://127.0.0.1:${site.address().port}/`);

  // As the README says: once the page says it is live and subscribed, click the button.
  await page.getByText('Orders live: 0').waitFor({ timeout: 15000 });
  await page.getByText('Events active: none yet').waitFor({ timeout: 15000 });
  await page.getByRole('button').click();
  // The page's text as lines, without the blank ones that its paragraphs' margins make.
  const patterns = shownLines(blocks.text).map((pattern) => pattern.source);
  const reads = (sources) => {
    const lines = document.querySelector('#root').innerText.split('\n').filter((line) => line.trim() !== '');
    return lines.length === sources.length && sources.every((source, n) => new RegExp(source).test(lines[n]));
  };
  // Waits until the page reads as the README says; when it never does, the assertion below shows how it differs.
  await page.waitForFunction(reads, patterns, { timeout: 15000 }).catch(() => undefined);
  const text = await page.locator('#root').innerText();
  assertPrinted(text.split('\n').filter((line) => line.trim() !== '').join('\n'), blocks.text);
  assert.deepEqual(errors, []);
});
