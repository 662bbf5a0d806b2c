/**
 * `stylegan-serve convert`: reads a checkpoint from a file or an http(s) URL, checks its optional
 * sha256, reads it with the safe checkpoint readers and writes `<models-dir>/<name>/`.
 * Progress goes to stderr; the summary goes to stdout.
 */

import { createHash } from 'node:crypto';
import { readFile, stat } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { basename, join } from 'node:path';
import { parseArgs } from 'node:util';
import { readCheckpoint } from './checkpoint/index.js';
import { ConfigError } from './config.js';
import { modelNamePattern, writeModelFolder } from './graph/convert.js';

/**
 * Largest checkpoint we download or read, in bytes: Node reads at most 2 GiB into one buffer
 * (a 1024² config-f network pickle with G, D and G_ema is about 350 MB).
 */
const maxCheckpointBytes = 2 * 1024 ** 3 - 1;

function progress(message: string): void {
  process.stderr.write(message + '\n');
}

/** Downloads `url` into memory with a progress line every 10 %, refusing bodies over the limit. */
async function download(url: string): Promise<Uint8Array> {
  const response = await fetch(url, { redirect: 'follow' }).catch((err: Error & { cause?: { code?: string; message?: string } }) => {
    const cause = err.cause?.code ?? err.cause?.message ?? err.message;
    throw new Error(`download failed: cannot reach ${url} (${cause}); check the URL and the network`);
  });
  if (!response.ok || !response.body) {
    throw new Error(`download failed: ${url} returned HTTP ${response.status} ${response.statusText}`);
  }
  const total = Number(response.headers.get('content-length') ?? 0);
  if (total > maxCheckpointBytes) throw new Error(`download rejected: ${url} is ${total} bytes, over the ${maxCheckpointBytes}-byte limit`);
  const chunks: Uint8Array[] = [];
  let received = 0;
  let nextReport = 0.1;
  for await (const chunk of response.body as unknown as AsyncIterable<Uint8Array>) {
    received += chunk.byteLength;
    if (received > maxCheckpointBytes) throw new Error(`download aborted: ${url} sent more than ${maxCheckpointBytes} bytes`);
    chunks.push(chunk);
    if (total > 0 && received / total >= nextReport) {
      progress(`downloading ${basename(new URL(url).pathname)}: ${Math.floor((100 * received) / total)}% of ${formatBytes(total)}`);
      nextReport += 0.1;
    }
  }
  if (total > 0 && received !== total) throw new Error(`download incomplete: got ${received} of ${total} bytes from ${url}`);
  progress(`downloaded ${formatBytes(received)}`);
  return Buffer.concat(chunks);
}

function formatBytes(bytes: number): string {
  return bytes >= 1 << 20 ? `${(bytes / (1 << 20)).toFixed(1)} MiB` : `${(bytes / 1024).toFixed(1)} KiB`;
}

export async function convertCheckpoint(args: string[]): Promise<void> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: {
      name: { type: 'string' },
      'models-dir': { type: 'string', default: 'models' },
      sha256: { type: 'string' },
      force: { type: 'boolean', default: false },
      fp16: { type: 'boolean', default: false },
    },
  });
  if (positionals.length !== 1) throw new ConfigError('convert: expected exactly one checkpoint file or URL');
  if (!values.name) throw new ConfigError('convert: missing --name <model name>');
  if (!modelNamePattern.test(values.name)) {
    throw new ConfigError(`convert: invalid model name ${JSON.stringify(values.name)}: use 1-64 characters of a-z, 0-9, '.', '_' or '-', starting with a letter or digit`);
  }
  if (values.sha256 !== undefined && !/^[0-9a-f]{64}$/i.test(values.sha256)) {
    throw new ConfigError(`convert: invalid --sha256 ${JSON.stringify(values.sha256)}: expected 64 hexadecimal digits`);
  }
  const target = join(values['models-dir']!, values.name);
  if (!values.force && existsSync(target)) {
    throw new ConfigError(`convert: ${target} already exists; choose another --name, or pass --force to replace it`);
  }
  const input = positionals[0];
  const isUrl = /^https?:\/\//i.test(input);

  const started = performance.now();
  let bytes: Uint8Array;
  if (isUrl) {
    bytes = await download(input);
  } else {
    const info = await stat(input).catch((err: NodeJS.ErrnoException) => {
      if (err.code === 'ENOENT') throw new Error(`checkpoint file not found: ${input}`);
      throw err;
    });
    if (!info.isFile()) throw new Error(`${input} is not a file; pass the path of a .pkl or .pt checkpoint`);
    if (info.size > maxCheckpointBytes) throw new Error(`${input} is ${info.size} bytes, over the ${maxCheckpointBytes}-byte limit`);
    bytes = await readFile(input);
  }
  const sha256 = createHash('sha256').update(bytes).digest('hex');
  if (values.sha256 && values.sha256.toLowerCase() !== sha256) {
    throw new Error(`sha256 mismatch for ${input}: expected ${values.sha256.toLowerCase()}, got ${sha256}`);
  }
  const file = isUrl ? basename(new URL(input).pathname) || 'checkpoint' : basename(input);
  progress(`reading ${file} (${formatBytes(bytes.byteLength)}, sha256 ${sha256.slice(0, 12)}…)`);

  const weights = readCheckpoint(bytes, { fileName: file });
  for (const warning of weights.warnings) progress(`warning: ${warning}`);
  const { arch } = weights;
  progress(`detected ${weights.source.format}: ${arch.resolution}x${arch.resolution}, z ${arch.zDim}, w ${arch.wDim}, c ${arch.cDim}`);

  const manifest = await writeModelFolder(weights, {
    name: values.name,
    modelsDir: values['models-dir']!,
    overwrite: values.force,
    fp16: values.fp16,
    source: { file, sha256, bytes: bytes.byteLength },
    onProgress: (event) => progress(event.message),
  });
  const seconds = ((performance.now() - started) / 1000).toFixed(1);
  process.stdout.write(
    [
      `converted ${file} -> ${values['models-dir']}/${manifest.name} in ${seconds} s`,
      `  format      ${manifest.source.format}`,
      `  resolution  ${arch.resolution}x${arch.resolution}, ${arch.imgChannels} channels`,
      `  latents     z ${arch.zDim}, w ${arch.wDim}, num_ws ${arch.numWs}, c ${arch.cDim}`,
      `  mapping     ${arch.mappingLayers} layers; w_avg ${manifest.wAvgSource}`,
      `  synthesis   ${arch.architecture}, conv_clamp ${arch.convClamp ?? 'none'}${manifest.files.synthesisFp16 ? `, plus ${manifest.files.synthesisFp16}` : ''}`,
      `  sha256      ${sha256}`,
      '',
    ].join('\n'),
  );
}
