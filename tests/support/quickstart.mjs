// The quickstarts of the SDKs' READMEs as tests: the fenced blocks marked `quickstart` (```sh quickstart, ```js
// quickstart, ```text quickstart, ...), the shell block's steps run against a server the test starts, and what the
// code printed compared with what the README says it prints.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { binary, startServer } from './process.mjs';

/** The README's blocks marked `quickstart`, by language: {sh: '...', js: '...', text: '...'}; each language once. */
export function quickstartBlocks(readme) {
  const blocks = {};
  for (const [, language, body] of readFileSync(readme, 'utf8').matchAll(/^```(\w+) quickstart\n([\s\S]*?)^```$/gm)) {
    assert.equal(blocks[language], undefined, `${readme} has two ${language} quickstart blocks`);
    blocks[language] = body;
  }
  return blocks;
}

/** The words of a shell command, split on spaces, with a `tidings` at its start. */
function words(command) {
  const parts = command.trim().split(/\s+/);
  assert.equal(parts[0], 'tidings', `a quickstart step the test runs is a tidings command: ${command}`);
  return parts.slice(1);
}

/**
 * Runs the shell block's steps in the folder `cwd`, as a reader would in theirs, and returns {server, env}: the
 * server, and the environment its exports give the code. Each line is one of:
 * - `tidings serve ... &`: the server starts with the line's options, in `cwd`, but on a port of its own (port 0);
 * - `export NAME=$(tidings ...)`: the command runs in `cwd`, and NAME is what it printed;
 * - `export NAME=ws://...`: NAME is the address of the server the test started;
 * - an `npm install` or `pip install` line: what the test's own setup has done (the packages are linked in).
 * Any other line fails the test, so that the README cannot gain a step that nothing runs. Kill the server when done.
 */
export async function runSetup(sh, cwd) {
  const env = {};
  let server;
  for (const line of sh.split('\n').map((l) => l.trim()).filter((l) => l !== '' && !l.startsWith('#'))) {
    const serve = /^(tidings serve .*?)\s*&$/.exec(line);
    const command = /^export (\w+)=\$\((tidings [^)]*)\)$/.exec(line);
    const address = /^export (\w+)=ws:\/\/\S+$/.exec(line);
    if (serve) {
      const options = words(serve[1]).slice(1);
      const dataDir = options[options.indexOf('--data-dir') + 1];
      assert.ok(options.includes('--data-dir') && dataDir !== undefined, `the server's data dir is named: ${line}`);
      // startServer names --listen and --data-dir itself; the line's other options follow.
      const rest = options.filter((_, n) => !['--listen', '--data-dir'].includes(options[n]) && !['--listen', '--data-dir'].includes(options[n - 1]));
      server = await startServer(join(cwd, dataDir), 0, 20000, {}, rest);
    } else if (command) {
      env[command[1]] = execFileSync(binary(), words(command[2]), { cwd, encoding: 'utf8' }).trim();
    } else if (address) {
      assert.ok(server !== undefined, `the server starts before its address is exported: ${line}`);
      env[address[1]] = server.url;
    } else {
      assert.match(line, /^(npm|pip) install /, `a quickstart step the test does not know how to run: ${line}`);
    }
  }
  assert.ok(server !== undefined, 'the quickstart starts a server');
  return { server, env };
}

/**
 * The lines a README shows as printed, as patterns: any resource id in place of the README's (`ORD-01JF...`), and any
 * number in place of a `seq`.
 */
export function shownLines(expected) {
  return expected
    .trimEnd()
    .split('\n')
    .map((text) => {
      const pattern = text
        .split(/([A-Z]{3}-[0-9A-Z]{26}|seq \d+)/)
        .map((part, i) => (i % 2 === 0 ? part.replace(/[.*+?^${}()|[\]\\]/g, '\\$&') : part.startsWith('seq') ? 'seq \\d+' : '[A-Z]{3}-[0-9A-Z]+'))
        .join('');
      return new RegExp(`^${pattern}$`);
    });
}

/** Asserts that the lines printed are the README's, line for line (see shownLines). */
export function assertPrinted(printed, expected) {
  const lines = printed.trimEnd().split('\n');
  const shown = shownLines(expected);
  assert.equal(lines.length, shown.length, `printed:\n${printed}\nthe README shows:\n${expected}`);
  shown.forEach((pattern, n) => assert.match(lines[n], pattern, `line ${n + 1} of what the quickstart printed`));
}
