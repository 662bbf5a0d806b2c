/**
 * Test helper: runs the real command line (`src/cli.ts serve`) in a child process, the way a
 * container runs it, and captures its JSON log lines so tests can check what it logged.
 */

import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { repoRoot } from '../helpers/server.js';

const cliPath = join(repoRoot, 'src', 'cli.ts');

/** One parsed pino line; `msg` is the message, everything else the logged fields. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type LogLine = Record<string, any> & { msg?: string };

export interface CliServer {
  child: ChildProcess;
  url: string;
  /** Every JSON line written to stdout so far, in order. */
  logs: LogLine[];
  /** Everything written to stdout so far, as text. */
  stdout(): string;
  /** Everything written to stderr so far. */
  stderr(): string;
  /** Resolves with the exit code (or the signal name) once the process has ended. */
  exited: Promise<number | string>;
  /** Resolves with the first log line whose `msg` is `msg` (and that passes `match`). */
  waitForLog(msg: string, match?: (line: LogLine) => boolean, timeoutMs?: number): Promise<LogLine>;
  /** Sends SIGTERM (if still running) and waits for the exit. */
  stop(): Promise<number | string>;
}

export interface CliRun {
  code: number | string;
  stdout: string;
  stderr: string;
}

/** Starts `cli.ts` with `args` and collects its output, without waiting for anything. */
export function spawnCli(args: string[], env: NodeJS.ProcessEnv = {}): CliServer {
  const child = spawn(process.execPath, ['--import', 'tsx', cliPath, ...args], {
    cwd: repoRoot,
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const logs: LogLine[] = [];
  const waiters: { msg: string; match: (line: LogLine) => boolean; resolve: (line: LogLine) => void }[] = [];
  let stdoutText = '';
  let stderrText = '';
  child.stderr!.setEncoding('utf8').on('data', (chunk: string) => (stderrText += chunk));
  createInterface({ input: child.stdout! }).on('line', (text) => {
    stdoutText += text + '\n';
    let line: LogLine;
    try {
      line = JSON.parse(text) as LogLine;
    } catch {
      line = { msg: '<not json>', text };
    }
    logs.push(line);
    for (const waiter of [...waiters]) {
      if (line.msg === waiter.msg && waiter.match(line)) {
        waiters.splice(waiters.indexOf(waiter), 1);
        waiter.resolve(line);
      }
    }
  });
  const exited = new Promise<number | string>((resolve) => {
    // 'close' comes after stdout and stderr have ended, so every line has been read by then.
    child.on('close', (code, signal) => resolve(code ?? signal ?? 'unknown'));
  });

  const server: CliServer = {
    child,
    url: '',
    logs,
    stdout: () => stdoutText,
    stderr: () => stderrText,
    exited,
    waitForLog(msg, match = () => true, timeoutMs = 60_000) {
      const found = logs.find((line) => line.msg === msg && match(line));
      if (found) return Promise.resolve(found);
      return new Promise<LogLine>((resolve, reject) => {
        const timer = setTimeout(
          () => reject(new Error(`no "${msg}" log line within ${timeoutMs} ms; stderr: ${stderrText.slice(-2000)}`)),
          timeoutMs,
        );
        waiters.push({ msg, match, resolve: (line) => (clearTimeout(timer), resolve(line)) });
        exited.then((code) => {
          clearTimeout(timer);
          reject(new Error(`server exited (${code}) before logging "${msg}"; stderr: ${stderrText.slice(-2000)}`));
        });
      });
    },
    async stop() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      return exited;
    },
  };
  return server;
}

/** Starts `serve` on 127.0.0.1 with an ephemeral port and waits until it logs "ready". */
export async function startCliServer(flags: string[], env: NodeJS.ProcessEnv = {}): Promise<CliServer> {
  const server = spawnCli(['serve', '--port', '0', '--host', '127.0.0.1', ...flags], env);
  try {
    const listening = await server.waitForLog('listening');
    server.url = `http://127.0.0.1:${listening.port}`;
    await server.waitForLog('ready');
  } catch (err) {
    await server.stop();
    throw err;
  }
  return server;
}

/** Runs the CLI to completion and returns its exit code and output. */
export async function runCliToExit(args: string[], env: NodeJS.ProcessEnv = {}, timeoutMs = 60_000): Promise<CliRun> {
  const server = spawnCli(args, env);
  const timer = setTimeout(() => server.child.kill('SIGKILL'), timeoutMs);
  const code = await server.exited;
  clearTimeout(timer);
  return { code, stdout: server.stdout(), stderr: server.stderr() };
}
