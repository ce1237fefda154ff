// Copies the repository's license files into the package before npm packs it (prepack), since `files` cannot name
// files outside this directory.
import { copyFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
for (const name of ['LICENSE-MIT', 'LICENSE-APACHE']) {
  copyFileSync(resolve(here, '..', '..', '..', name), resolve(here, '..', name));
}
