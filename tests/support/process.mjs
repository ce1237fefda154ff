// The tidings binary as a process on 127.0.0.1 for tests written in JavaScript (the SDK's and the browser tests).
import { spawn, execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
export const ROOT = resolve(here, '..', '..');

/** The tidings binary, built once with cargo when it is missing (CARGO_TARGET_DIR is respected). */
export function binary() {
  const target = process.env.CARGO_TARGET_DIR ? resolve(ROOT, process.env.CARGO_TARGET_DIR) : join(ROOT, 'target');
  const path = join(target, 'debug', 'tidings');
  if (!existsSync(path)) execFileSync('cargo', ['build', '-p', 'tidings'], { cwd: ROOT, stdio: 'inherit' });
  return path;
}

/** A fresh data dir, removed by the returned cleanup. */
export function tempDir() {
  const dir = mkdtempSync(join(tmpdir(), 'tidings-test-'));
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

/**
 * Starts `tidings serve` on 127.0.0.1 (port 0 unless given) and resolves once its first stdout line names the
 * address. `args` go after the others (such as `['--config', file]`, for settings only a config file takes).
 * Returns {url, port, process, kill(signal)}; kill resolves when the process has exited.
 */
export function startServer(dataDir, port = 0, timeoutMs = 20000, settings = {}, args = []) {
  const child = spawn(binary(), ['serve', '--listen', `127.0.0.1:${port}`, '--data-dir', dataDir, ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, RUST_LOG: process.env.RUST_LOG ?? 'warn', ...settings },
  });
  const exited = new Promise((r) => child.once('exit', r));
  let stderr = '';
  child.stderr.on('data', (chunk) => {
    stderr = (stderr + chunk).slice(-4000);
  });
  return withTimeout(
    new Promise((resolvePromise, reject) => {
      const lines = createInterface({ input: child.stdout });
      lines.once('line', (line) => {
        const match = /(ws:\/\/\S+\/ws)/.exec(line);
        if (!match) return reject(new Error(`unexpected first line: ${line}`));
        const url = match[1];
        resolvePromise({
          url,
          port: Number(new URL(url).port),
          process: child,
          kill: (signal = 'SIGKILL') => {
            if (child.exitCode === null && child.signalCode === null) child.kill(signal);
            return exited;
          },
        });
      });
      child.once('exit', (code) => reject(new Error(`tidings serve exited with ${code}: ${stderr}`)));
    }),
    timeoutMs,
    'the server did not start',
  );
}

/** A token for a user, signed with the data dir's secret. */
export function token(dataDir, user, roles = []) {
  const args = ['token', '--data-dir', dataDir, '--user', user, ...roles.flatMap((r) => ['--role', r])];
  return execFileSync(binary(), args, { encoding: 'utf8' }).trim();
}

/** Rejects when the promise has not settled within timeoutMs. */
export function withTimeout(promise, timeoutMs, what = 'condition') {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${timeoutMs} ms waiting for ${what}`)), timeoutMs);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}
