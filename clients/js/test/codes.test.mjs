// The generated error and close codes against protocol/codes.json, and the client's close-code rule against them.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { ABNORMAL_CLOSURE, CLOSE_CODES, CloseCode, ERROR_CODES, ServerErrorCode, shouldReconnect } from '../dist/index.js';
import { ROOT } from './helpers.mjs';

const codes = JSON.parse(readFileSync(join(ROOT, 'protocol', 'codes.json'), 'utf8'));

test('every error code of the server is in ERROR_CODES and ServerErrorCode', () => {
  assert.deepEqual([...ERROR_CODES], codes.errorCodes);
  assert.deepEqual(Object.keys(ServerErrorCode), codes.errorCodes);
  for (const code of codes.errorCodes) assert.equal(ServerErrorCode[code], code);
});

test('every close code of the server is in CloseCode and CLOSE_CODES, and shouldReconnect agrees with it', () => {
  assert.deepEqual(Object.keys(CloseCode), codes.closeCodes.map((c) => c.name));
  for (const { name, code, reason, reconnect } of codes.closeCodes) {
    assert.equal(CloseCode[name], code, name);
    assert.deepEqual(CLOSE_CODES[code], { name, reason, reconnect }, name);
    assert.equal(shouldReconnect(code), reconnect, `${name} (${code})`);
  }
});

test('the close code the client reports for a dropped link is not one the server sends, and reconnects', () => {
  assert.equal(ABNORMAL_CLOSURE, 1006);
  assert.ok(!codes.closeCodes.some((c) => c.code === ABNORMAL_CLOSURE));
  assert.equal(shouldReconnect(ABNORMAL_CLOSURE), true);
});
