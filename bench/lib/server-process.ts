/**
 * Starts the real server as a child process (`src/cli.ts serve` under tsx) on 127.0.0.1 with an
 * ephemeral port, waits for readiness, and reads its resident set size from /proc.
 */

import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';

import { request } from './http-load.js';

const repoRoot = fileURLToPath(new URL('../../', import.meta.url));
/** How long the server may take to start and warm up, in ms. */
const startTimeoutMs = 180_000;

export interface ServerProcess {
  port: number;
  child: ChildProcess;
  rssMiB(): number;
  stop(): Promise<void>;
}

/** Returns a port that was free a moment ago (the OS picks it; the server then binds it). */
function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = createServer();
    probe.once('error', reject);
    probe.listen(0, '127.0.0.1', () => {
      const { port } = probe.address() as AddressInfo;
      probe.close(() => resolve(port));
    });
  });
}

export async function startServerProcess(modelsDir: string, model: string, extraArgs: string[] = []): Promise<ServerProcess> {
  const port = await freePort();
  const args = ['--import', 'tsx', 'src/cli.ts', 'serve', '--host', '127.0.0.1', '--port', String(port), '--models-dir', modelsDir, '--model', model, '--log-level', 'warn', ...extraArgs];
  const child = spawn(process.execPath, args, { cwd: repoRoot, stdio: ['ignore', 'ignore', 'inherit'] });
  let exitCode: number | null = null;
  child.once('exit', (code) => (exitCode = code ?? -1));
  const deadline = Date.now() + startTimeoutMs;
  while ((await request(port, 'GET', '/health/ready').catch(() => ({ status: 0 }))).status !== 200) {
    if (exitCode !== null) throw new Error(`server exited with code ${exitCode} before it was ready`);
    if (Date.now() > deadline) throw new Error(`server on port ${port} was not ready within ${startTimeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
  return {
    port,
    child,
    rssMiB() {
      const status = readFileSync(`/proc/${child.pid}/status`, 'utf8');
      return Number(/^VmRSS:\s+(\d+) kB/m.exec(status)?.[1] ?? Number.NaN) / 1024;
    },
    stop() {
      return new Promise((resolve) => {
        if (child.exitCode !== null) return resolve();
        child.once('exit', () => resolve());
        child.kill('SIGTERM');
      });
    },
  };
}
