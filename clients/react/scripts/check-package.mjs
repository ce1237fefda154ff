// Packs the package as npm publishes it (prepack builds it first) and checks the tarball with publint and
// @arethetypeswrong/cli; npm run check-package runs it, and so does scripts/test.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');

/** Runs `npm pack` into `destination` and returns the tarball's path and the files it holds. */
export function pack(destination) {
  const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';
  // prepack writes its build log to stdout before npm's JSON, so the JSON is the output's last bracketed block.
  const output = execFileSync(npm, ['pack', '--json', '--pack-destination', destination], { cwd: root, encoding: 'utf8' });
  const [info] = JSON.parse(output.slice(output.lastIndexOf('\n[') + 1));
  return { tarball: join(destination, info.filename), files: info.files.map((f) => f.path) };
}

if (import.meta.url === pathToFileURL(process.argv[1]).href) {
  const dir = mkdtempSync(join(tmpdir(), 'tidings-react-pack-'));
  try {
    const { tarball, files } = pack(dir);
    console.log(`packed ${tarball}: ${files.length} files`);
    const bin = (name) => join(root, 'node_modules', '.bin', name);
    execFileSync(bin('publint'), ['run', tarball, '--strict'], { stdio: 'inherit' });
    // Only the package's own types are checked: no @types package is looked up on the registry.
    execFileSync(bin('attw'), [tarball, '--no-definitely-typed'], { stdio: 'inherit' });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
