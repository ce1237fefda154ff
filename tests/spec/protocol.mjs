// What both spec tests agree on: where the artifacts are, and the message types of protocol v1.
import { readdirSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));

export const ROOT = resolve(here, '..', '..');
export const ASYNCAPI_FILE = join(ROOT, 'docs', 'asyncapi.yaml');
export const SCHEMA_DIR = join(ROOT, 'schema');
export const VECTOR_DIR = join(ROOT, 'protocol', 'vectors');

/** The types each side may send (docs/protocol.md): 11 from clients and 15 from the server in 1.0, and
 * `batch` both ways since 1.2. */
export const TYPES = {
  client: [
    'connect', 'disconnect', 'ping', 'pong', 'auth',
    'create', 'read', 'update', 'delete', 'subscribe', 'unsubscribe', 'batch',
  ],
  server: [
    'connect', 'disconnect', 'ping', 'pong', 'auth_success', 'auth_failed',
    'create', 'read', 'update', 'delete', 'subscribe', 'unsubscribe',
    'notification', 'event', 'error', 'batch',
  ],
};

/** The 17 distinct envelope types of protocol v1.2. */
export const ALL_TYPES = [...new Set([...TYPES.client, ...TYPES.server])];

/** `client` + `auth_success` -> `clientAuthSuccess`: the message names docs/asyncapi.yaml uses. */
export function messageName(side, type) {
  return side + type.split('_').map((w) => w[0].toUpperCase() + w.slice(1)).join('');
}

/** The schema files on disk, as `side/type` keys (e.g. `server/auth_success`), sorted. */
export function schemaFilesOnDisk() {
  return ['client', 'server']
    .flatMap((side) => readdirSync(join(SCHEMA_DIR, side))
      .filter((f) => f.endsWith('.json'))
      .map((f) => `${side}/${f.slice(0, -'.json'.length)}`))
    .sort();
}

/** The same keys, from TYPES. */
export function expectedSchemaKeys() {
  return Object.entries(TYPES).flatMap(([side, types]) => types.map((t) => `${side}/${t}`)).sort();
}
