/**
 * Test helpers: convert fixture checkpoints with the real CLI, start the real server on 127.0.0.1
 * with an ephemeral port, decode images and parse multipart responses.
 */

import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import sharp from 'sharp';
import { loadServerConfig, type ServerConfig } from '../../src/config.js';
import { silentLogger } from '../../src/log.js';
import { startServer, type RunningServer } from '../../src/server.js';

const run = promisify(execFile);

export const repoRoot = fileURLToPath(new URL('../../', import.meta.url));
export const fixturesDir = join(repoRoot, 'test', 'fixtures');
const cliPath = join(repoRoot, 'src', 'cli.ts');

/** Runs the CLI under tsx; resolves with stdout/stderr, rejects with the exit code on failure. */
export async function runCli(args: string[], options: { timeoutMs?: number; env?: NodeJS.ProcessEnv } = {}) {
  return run(process.execPath, ['--import', 'tsx', cliPath, ...args], {
    cwd: repoRoot,
    timeout: options.timeoutMs ?? 120_000,
    env: { ...process.env, ...options.env },
    maxBuffer: 16 << 20,
  });
}

export async function makeTempDir(prefix: string): Promise<string> {
  return mkdtemp(join(tmpdir(), `sgserve-${prefix}-`));
}

export async function removeDir(dir: string): Promise<void> {
  await rm(dir, { recursive: true, force: true });
}

/** Converts `test/fixtures/<fixture>/<file>` into `<modelsDir>/<name>` with the CLI. */
export async function convertFixture(modelsDir: string, fixture: string, file: string, name = fixture): Promise<void> {
  await runCli(['convert', join(fixturesDir, fixture, file), '--name', name, '--models-dir', modelsDir]);
}

export interface TestServer {
  url: string;
  server: RunningServer;
  close(): Promise<void>;
}

/** Starts the real server in this process on an ephemeral port with a silent logger. */
export async function startTestServer(flags: Record<string, string>): Promise<TestServer> {
  const config: ServerConfig = loadServerConfig({ port: '0', host: '127.0.0.1', ...flags }, {});
  const server = await startServer(config, silentLogger());
  return {
    url: `http://127.0.0.1:${server.port}`,
    server,
    close: () => server.shutdown('test finished'),
  };
}

export async function postJson(url: string, body: unknown, headers: Record<string, string> = {}): Promise<Response> {
  return fetch(url, { method: 'POST', headers: { 'Content-Type': 'application/json', ...headers }, body: JSON.stringify(body) });
}

/** Decodes an encoded image to raw RGB bytes `[H, W, 3]`. */
export async function decodeRgb(bytes: Uint8Array): Promise<{ data: Uint8Array; width: number; height: number }> {
  const { data, info } = await sharp(bytes).removeAlpha().raw().toBuffer({ resolveWithObject: true });
  return { data: new Uint8Array(data), width: info.width, height: info.height };
}

export async function readF32(path: string): Promise<Float32Array> {
  const bytes = await readFile(path);
  return new Float32Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength));
}

export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) throw new Error(`length mismatch: ${a.length} vs ${b.length}`);
  let max = 0;
  for (let i = 0; i < a.length; i++) max = Math.max(max, Math.abs(a[i] - b[i]));
  return max;
}

export interface MultipartPart {
  headers: Record<string, string>;
  body: Uint8Array;
}

/** Parses a multipart/mixed body whose parts carry Content-Length (as ours do). */
export function parseMultipart(body: Uint8Array, contentType: string): MultipartPart[] {
  const boundary = /boundary=([^;]+)/.exec(contentType)?.[1];
  if (!boundary) throw new Error(`no boundary in ${contentType}`);
  const text = Buffer.from(body);
  const parts: MultipartPart[] = [];
  let offset = 0;
  const delimiter = `--${boundary}`;
  for (;;) {
    const start = text.indexOf(delimiter, offset, 'latin1');
    if (start < 0) throw new Error('missing closing boundary');
    const after = start + delimiter.length;
    if (text.subarray(after, after + 2).toString('latin1') === '--') break;
    const headerEnd = text.indexOf('\r\n\r\n', after, 'latin1');
    const headers: Record<string, string> = {};
    for (const line of text.subarray(after + 2, headerEnd).toString('latin1').split('\r\n')) {
      const colon = line.indexOf(':');
      headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
    }
    const length = Number(headers['content-length']);
    const bodyStart = headerEnd + 4;
    parts.push({ headers, body: new Uint8Array(text.subarray(bodyStart, bodyStart + length)) });
    offset = bodyStart + length + 2;
  }
  return parts;
}

/** Parses a JSON response body; `any` keeps assertions on nested fields short. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export async function readJson(response: Response): Promise<any> {
  return JSON.parse(await response.text());
}
