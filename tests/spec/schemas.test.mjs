// The committed JSON Schemas (schema/), compiled by Ajv in strict mode, against the shared test
// vectors (protocol/vectors/*.json): what a vector says is a valid message must validate, what it
// says the server rejects as INVALID_MESSAGE or INVALID_PARAMS must not, and every schema must be
// exercised by at least one valid vector.
import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import Ajv from 'ajv'; // the default class is draft-07

import { SCHEMA_DIR, VECTOR_DIR, expectedSchemaKeys, schemaFilesOnDisk } from './protocol.mjs';

/** Errors a server reports for a message whose shape is wrong, which the schemas should catch. */
const SHAPE_ERRORS = new Set(['INVALID_MESSAGE', 'INVALID_PARAMS']);

const ajv = new Ajv({ strict: true, allErrors: true });

/** `side/type` -> the compiled validator, or the error Ajv gave compiling it. */
const compiled = new Map();
for (const key of schemaFilesOnDisk()) {
  try {
    const schema = JSON.parse(readFileSync(join(SCHEMA_DIR, `${key}.json`), 'utf8'));
    compiled.set(key, { validate: ajv.compile(schema) });
  } catch (error) {
    compiled.set(key, { error });
  }
}

/** Every vector case that has a "message", with the file it came from. */
const cases = readdirSync(VECTOR_DIR)
  .filter((f) => f.endsWith('.json'))
  .sort()
  .flatMap((file) => {
    const { cases: list } = JSON.parse(readFileSync(join(VECTOR_DIR, file), 'utf8'));
    return (list ?? [])
      .filter((c) => Object.hasOwn(c, 'message'))
      .map((c) => ({ ...c, label: `${file}: ${c.name} (${c.side})` }));
  });

const formatErrors = (errors) => (errors ?? [])
  .map((e) => `${e.instancePath || '/'} ${e.message}${e.params && Object.keys(e.params).length ? ` ${JSON.stringify(e.params)}` : ''}`)
  .join('; ');

test('schema/ holds one file per type and side', () => {
  assert.deepEqual(schemaFilesOnDisk(), expectedSchemaKeys());
});

test('every schema compiles with Ajv in strict mode', () => {
  const failures = [...compiled].filter(([, c]) => c.error).map(([key, c]) => `schema/${key}.json: ${c.error.message}`);
  assert.deepEqual(failures, [], `Ajv (strict) rejected:\n${failures.join('\n')}`);
});

test('vectors exist', () => {
  assert.ok(cases.length > 0, `no case with a "message" in ${VECTOR_DIR}`);
});

test('valid vectors validate against the schema of their side and type', (t) => {
  const failures = [];
  const valid = cases.filter((c) => c.expect && Object.hasOwn(c.expect, 'type'));
  t.diagnostic(`${valid.length} valid vector(s) checked`);
  for (const c of valid) {
    const key = `${c.side}/${c.expect.type}`;
    const entry = compiled.get(key);
    if (!entry) { failures.push(`${c.label}: no schema/${key}.json`); continue; }
    if (!entry.validate) continue; // reported by the compile test
    if (!entry.validate(c.message)) failures.push(`${c.label}: ${formatErrors(entry.validate.errors)}`);
  }
  assert.deepEqual(failures, [], `valid vectors that fail their schema:\n${failures.join('\n')}`);
});

test('INVALID_MESSAGE and INVALID_PARAMS vectors fail the schema their type names', (t) => {
  const failures = [];
  let checked = 0;
  for (const c of cases.filter((c) => SHAPE_ERRORS.has(c.expect?.error))) {
    const type = c.message?.type;
    if (typeof type !== 'string') continue;
    const entry = compiled.get(`${c.side}/${type}`);
    if (!entry?.validate) continue; // no schema for that side and type: nothing to check here
    checked += 1;
    if (entry.validate(c.message)) failures.push(`${c.label}: expected ${c.expect.error}, but schema/${c.side}/${type}.json accepts it`);
  }
  t.diagnostic(`${checked} invalid vector(s) checked`);
  assert.deepEqual(failures, [], `invalid vectors that their schema accepts:\n${failures.join('\n')}`);
});

test('every schema has a vector that validates against it', () => {
  const covered = new Set();
  for (const c of cases.filter((c) => c.expect && Object.hasOwn(c.expect, 'type'))) {
    const key = `${c.side}/${c.expect.type}`;
    if (compiled.get(key)?.validate?.(c.message)) covered.add(key);
  }
  const missing = expectedSchemaKeys().filter((k) => !covered.has(k));
  assert.deepEqual(missing, [], `schemas no valid vector exercises (${covered.size} of 28 covered):\n${missing.map((k) => `schema/${k}.json`).join('\n')}`);
});
