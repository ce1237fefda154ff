// Every option in src/options.ts (and the typed list query of src/typed.ts) states its default with @default, and the
// stated defaults are the client's own.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { defaults } from '../dist/defaults.js';
import { VERSION } from '../dist/index.js';

const source = ['options.ts', 'typed.ts'].map((file) => readFileSync(new URL(`../src/${file}`, import.meta.url), 'utf8')).join('\n');

/** The properties of an interface of src/options.ts or src/typed.ts, each with the TSDoc block right above it. */
function properties(name) {
  const start = source.search(new RegExp(`export interface ${name}[ <]`));
  assert.ok(start >= 0, `interface ${name} in src/options.ts or src/typed.ts`);
  const lines = source.slice(start, source.indexOf('\n}', start)).split('\n').slice(1);
  const found = [];
  let doc = '';
  for (const line of lines) {
    if (line.startsWith('  /**')) doc = '';
    if (line.startsWith('  /**') || line.startsWith('   *')) doc += `${line}\n`;
    const match = /^ {2}(\w+)(\??):/.exec(line);
    if (match) {
      found.push({ name: match[1], optional: match[2] === '?', doc });
      doc = '';
    }
  }
  return found;
}

/** The text after `@default` in a doc block. */
const stated = (doc) => /@default (.*)/.exec(doc)?.[1].trim();

test('every optional option states its default, and a required one says it is required', () => {
  for (const name of ['ClientOptions', 'RetryOptions', 'RequestOptions', 'WriteOptions', 'SubscribeOptions', 'UnsubscribeOptions', 'ListQuery', 'LiveOptions', 'PresenceOptions', 'TypedListQuery']) {
    const found = properties(name);
    assert.ok(found.length > 0, name);
    for (const option of found) {
      if (option.optional) assert.ok(stated(option.doc) !== undefined, `${name}.${option.name} has no @default`);
      else assert.match(option.doc, /Required/, `${name}.${option.name} is required and should say so`);
    }
  }
});

test('the @default of every option with a value default is the value in defaults', () => {
  const options = Object.fromEntries(properties('ClientOptions').map((o) => [o.name, o.doc]));
  const retry = Object.fromEntries(properties('RetryOptions').map((o) => [o.name, o.doc]));
  for (const [name, value] of Object.entries(defaults)) {
    assert.ok(name in options, `defaults.${name} is no option`);
    if (typeof value === 'number' || typeof value === 'boolean') assert.equal(stated(options[name]), String(value), name);
  }
  for (const [name, value] of Object.entries(defaults.retry)) assert.equal(stated(retry[name]), String(value), `retry.${name}`);
  const { baseMs, maxMs, attempts } = defaults.retry;
  assert.equal(stated(options.retry), `{ baseMs: ${baseMs}, maxMs: ${maxMs}, attempts: ${attempts} }`);
  assert.equal(stated(options.clientInfo), `{ name: '${defaults.clientInfo.name}', version: VERSION }`);
});

test('the version the client reports is the one in package.json', () => {
  const { version } = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8'));
  assert.equal(defaults.clientInfo.version, version);
  assert.equal(VERSION, version);
});
