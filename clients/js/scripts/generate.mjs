// Generates src/generated.ts: the message types and the server's payload schemas from the JSON Schemas in schema/,
// and the error and close codes from protocol/codes.json.
import { readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { compile } from 'json-schema-to-typescript';

const here = dirname(fileURLToPath(import.meta.url));
export const SCHEMA_DIR = resolve(here, '..', '..', '..', 'schema');
export const CODES = resolve(here, '..', '..', '..', 'protocol', 'codes.json');
export const OUTPUT = resolve(here, '..', 'src', 'generated.ts');

/** `server` + `auth_success` -> `ServerAuthSuccess`: the name of a message's type. */
export function messageName(side, type) {
  const pascal = (word) => word[0].toUpperCase() + word.slice(1);
  return pascal(side) + type.split('_').map(pascal).join('');
}

/** Reads schema/<side>/*.json, sorted by type, as [{side, type, name, schema}]. */
function readSchemas() {
  return ['client', 'server'].flatMap((side) =>
    readdirSync(join(SCHEMA_DIR, side))
      .filter((file) => file.endsWith('.json'))
      .sort()
      .map((file) => {
        const type = file.slice(0, -'.json'.length);
        const schema = JSON.parse(readFileSync(join(SCHEMA_DIR, side, file), 'utf8'));
        return { side, type, name: messageName(side, type), schema };
      }),
  );
}

/** A deep copy without the keys that only document (title, description), for the runtime validator. */
function stripDocs(value) {
  if (Array.isArray(value)) return value.map(stripDocs);
  if (value === null || typeof value !== 'object') return value;
  const out = {};
  for (const [key, inner] of Object.entries(value)) {
    // Under properties and definitions, keys are names, not keywords, so they are kept.
    const isNameMap = key === 'properties' || key === 'definitions' || key === 'patternProperties';
    if (!isNameMap && (key === 'title' || key === 'description' || key === '$schema')) continue;
    out[key] = isNameMap
      ? Object.fromEntries(Object.entries(inner).map(([name, sub]) => [name, stripDocs(sub)]))
      : stripDocs(inner);
  }
  return out;
}

/** Reads protocol/codes.json, which a test of tidings-protocol writes from its ErrorCode and CloseCode enums. */
function readCodes() {
  const { errorCodes, closeCodes } = JSON.parse(readFileSync(CODES, 'utf8'));
  // The names become keys of TypeScript objects, so a malformed file fails here rather than in the compiler.
  if (!Array.isArray(errorCodes) || !errorCodes.every((code) => /^[A-Z][A-Z_]*$/.test(code))) {
    throw new Error(`${CODES}: errorCodes must be a list of codes such as NOT_FOUND`);
  }
  for (const entry of closeCodes ?? []) {
    const { name, code, reason, reconnect } = entry ?? {};
    if (!/^[A-Z][A-Za-z]*$/.test(name) || !Number.isInteger(code) || typeof reason !== 'string' || typeof reconnect !== 'boolean') {
      throw new Error(`${CODES}: a close code needs name, code, reason and reconnect: ${JSON.stringify(entry)}`);
    }
  }
  return { errorCodes, closeCodes: closeCodes ?? [] };
}

/** The TypeScript of the error and close codes: const objects by name, with the union types of their values. */
function codesText({ errorCodes, closeCodes }) {
  const quote = (text) => `'${text.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`;
  return [
    '/** The error codes of protocol v1 (docs/protocol.md, section 10), from protocol/codes.json. */',
    `export const ERROR_CODES = ${JSON.stringify(errorCodes)} as const;`,
    '',
    '/** A code the server sends in `error` and `auth_failed`. */',
    'export type ServerErrorCode = (typeof ERROR_CODES)[number];',
    '',
    '/** Every error code of the server by name, such as `ServerErrorCode.NOT_FOUND`. */',
    'export const ServerErrorCode = {',
    ...errorCodes.map((code) => `  ${code}: ${quote(code)},`),
    '} as const;',
    '',
    '/** The close codes the server sends (docs/protocol.md, section 11) by name, from protocol/codes.json. */',
    'export const CloseCode = {',
    ...closeCodes.map(({ name, code }) => `  ${name}: ${code},`),
    '} as const;',
    '',
    '/** A close code the server sends. */',
    'export type CloseCode = (typeof CloseCode)[keyof typeof CloseCode];',
    '',
    '/** Each close code of the server: its name, the reason the server gives, and whether a client reconnects. */',
    'export const CLOSE_CODES: { readonly [C in CloseCode]: { name: keyof typeof CloseCode; reason: string; reconnect: boolean } } = {',
    ...closeCodes.map(
      ({ name, code, reason, reconnect }) => `  ${code}: { name: ${quote(name)}, reason: ${quote(reason)}, reconnect: ${reconnect} },`,
    ),
    '};',
    '',
  ];
}

/** The text of src/generated.ts. Deterministic, so that the staleness test can compare it with the file. */
export async function generate() {
  const messages = readSchemas();
  const definitions = {};
  for (const { side, type, schema } of messages) {
    for (const [name, definition] of Object.entries(schema.definitions ?? {})) {
      const seen = definitions[name];
      if (seen !== undefined && JSON.stringify(seen) !== JSON.stringify(definition)) {
        throw new Error(`definition ${name} differs in ${side}/${type}.json; the generator expects one meaning per name`);
      }
      definitions[name] = definition;
    }
  }
  // One schema holding every message and every shared definition, so that json-schema-to-typescript emits each
  // shared type once. Titles are dropped so that the types are named by their definition keys.
  const combined = { definitions: { ...definitions } };
  for (const { name, schema } of messages) {
    const { definitions: _unused, $schema: _schema, title: _title, ...rest } = schema;
    combined.definitions[name] = rest;
  }
  combined.anyOf = messages.map(({ name }) => ({ $ref: `#/definitions/${name}` }));
  const types = await compile(combined, 'AnyMessage', {
    bannerComment: '',
    additionalProperties: false,
    unreachableDefinitions: true,
    strictIndexSignatures: true,
    format: true,
    style: { singleQuote: true, printWidth: 120 },
  });

  const runtime = {
    definitions: stripDocs(definitions),
    server: Object.fromEntries(
      messages.filter((m) => m.side === 'server').map((m) => [m.type, stripDocs(m.schema.properties.payload)]),
    ),
  };
  const clientTypes = messages.filter((m) => m.side === 'client');
  const serverTypes = messages.filter((m) => m.side === 'server');
  return [
    '// Generated by scripts/generate.mjs from schema/ and protocol/codes.json: the message types, the server payload',
    '// schemas, and the error and close codes. Do not edit.',
    '/* eslint-disable */',
    '',
    types.trim(),
    '',
    '/** Every message a client sends. */',
    `export type ClientMessage = ${clientTypes.map((m) => m.name).join(' | ')};`,
    '',
    '/** Every message a server sends. */',
    `export type ServerMessage = ${serverTypes.map((m) => m.name).join(' | ')};`,
    '',
    '/** The types a client sends. */',
    `export const CLIENT_TYPES = ${JSON.stringify(clientTypes.map((m) => m.type))} as const;`,
    '',
    '/** The types a server sends. */',
    `export const SERVER_TYPES = ${JSON.stringify(serverTypes.map((m) => m.type))} as const;`,
    '',
    '/** The payload schema of every server message, without documentation, for decodeServer. */',
    `export const SERVER_PAYLOAD_SCHEMAS: { definitions: Record<string, unknown>; server: Record<string, unknown> } = ${JSON.stringify(runtime)};`,
    '',
    ...codesText(readCodes()),
  ].join('\n');
}

if (import.meta.url === pathToFileURL(process.argv[1]).href) {
  writeFileSync(OUTPUT, await generate());
  console.log(`wrote ${OUTPUT}`);
}
