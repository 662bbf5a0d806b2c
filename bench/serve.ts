/**
 * Scheduler benchmark. It starts the real server (src/cli.ts serve) on 127.0.0.1 with the sample
 * model and measures POST /generate images/s and latency percentiles at concurrency 1, 4, 16 and
 * 64 (one seed per request), plus a mixed-size run of 1, 2, 4 or 8 seeds per request. It compares
 * them with the raw batched throughput of the same model's sessions in this process, measures
 * GET /health latency under concurrency 64 and the server's RSS before and after 2,000 mixed-size
 * requests, and writes its tables into BENCHMARKS.md.
 *
 *   npm run bench:serve -- [--quick] [--no-write]
 */

import { existsSync } from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';

import { Tensor } from 'onnxruntime-node';

import { sampleModelName, writeSampleModel } from '../src/graph/sample-model.js';
import type { ModelManifest } from '../src/graph/model-manifest.js';
import { openSession } from '../src/runtime/sessions.js';
import { benchZ } from './lib/model-sessions.js';
import { closeAgent, generateLoad, pollLatencies, type LoadResult } from './lib/http-load.js';
import { machineLine } from './lib/machine.js';
import { writeSection, table } from './lib/report.js';
import { benchModelsDir } from './lib/service-model.js';
import { startServerProcess } from './lib/server-process.js';
import { fixed, median, percentile } from './lib/stats.js';
import { readFileSync } from 'node:fs';

const { values } = parseArgs({ options: { quick: { type: 'boolean', default: false }, 'no-write': { type: 'boolean', default: false } } });
const quick = values.quick;
/** Time limit of one load level, in seconds. */
const levelSeconds = quick ? 8 : 20;
const mixedSizes = [1, 2, 4, 8];
const rssRequests = quick ? 500 : 2000;
/** Bound on the RSS run, in seconds. */
const rssSeconds = 600;
/** The server's default maxBatch. */
const maxBatch = 8;

if (!existsSync(path.join(benchModelsDir, sampleModelName, 'model.json'))) await writeSampleModel(benchModelsDir, { overwrite: true });
const manifest = JSON.parse(readFileSync(path.join(benchModelsDir, sampleModelName, 'model.json'), 'utf8')) as ModelManifest;

/** Raw images/s of mapping + synthesis at batch `maxBatch`, in this process, same session options. */
async function rawThroughput(): Promise<number> {
  const folder = path.join(benchModelsDir, sampleModelName);
  const config = { executionProvider: 'cpu' as const, deviceId: 0, intraOpNumThreads: 2, workers: 1 };
  const mapping = (await openSession(path.join(folder, 'mapping.onnx'), config)).session;
  const synthesis = (await openSession(path.join(folder, 'synthesis.onnx'), config)).session;
  const { zDim, numWs } = manifest.arch;
  const noiseAll = readFileSync(path.join(folder, 'noise_const.f32.bin'));
  const noise: Record<string, Tensor> = {};
  for (const layer of manifest.noiseLayers) {
    const bytes = noiseAll.subarray(layer.offset * 4, (layer.offset + layer.resolution ** 2) * 4);
    noise[layer.name] = new Tensor('float32', new Float32Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength)), [1, 1, layer.resolution, layer.resolution]);
  }
  const runOnce = async (seed: number) => {
    const { ws } = await mapping.run({
      z: new Tensor('float32', benchZ(maxBatch, zDim, seed), [maxBatch, zDim]),
      psi: new Tensor('float32', new Float32Array(maxBatch).fill(1), [maxBatch]),
      truncation_cutoff: new Tensor('int64', new BigInt64Array(maxBatch).fill(BigInt(numWs)), [maxBatch]),
    });
    await synthesis.run({ ws, ...noise });
  };
  for (let i = 0; i < 3; i++) await runOnce(i);
  const rates: number[] = [];
  for (let round = 0; round < 5; round++) {
    const started = performance.now();
    let batches = 0;
    while (performance.now() - started < 1000) await runOnce(batches++);
    rates.push((batches * maxBatch) / ((performance.now() - started) / 1000));
  }
  await mapping.release();
  await synthesis.release();
  return median(rates);
}

const raw = await rawThroughput();
console.log(`raw batched throughput (batch ${maxBatch}): ${fixed(raw, 1)} images/s`);

// Every request uses new seeds, so the response cache would only fill up: leave it off to measure the
// scheduler path and keep the RSS comparison about leaks.
const server = await startServerProcess(benchModelsDir, sampleModelName, ['--image-cache-bytes', '0']);
const rows: (string | number)[][] = [];
const report = (label: string, concurrency: number, result: LoadResult) => {
  const statusText = Object.entries(result.statuses).map(([status, count]) => `${status}×${count}`).join(' ');
  rows.push([label, concurrency, result.requests, fixed(result.imagesPerSecond, 1), `${fixed((100 * result.imagesPerSecond) / raw)}%`, fixed(result.p50, 1), fixed(result.p95, 1), fixed(result.p99, 1), statusText]);
  console.log(`${label} c=${concurrency}: ${fixed(result.imagesPerSecond, 1)} images/s, p50 ${fixed(result.p50, 1)} p95 ${fixed(result.p95, 1)} p99 ${fixed(result.p99, 1)} ms, ${statusText}`);
};

let healthP99 = Number.NaN;
let healthCount = 0;
let rssLine = '';
try {
  // Warm-up: a short mixed run so every batch size and the HTTP path have run once.
  await generateLoad(server.port, { concurrency: 8, maxRequests: 200, maxSeconds: 30, seedsFor: (i) => mixedSizes[i % 4] });
  const rssAfterWarmUp = server.rssMiB();

  for (const concurrency of [1, 4, 16, 64]) {
    const maxRequests = quick ? 300 : 2000;
    if (concurrency === 64) {
      let done = false;
      const health = pollLatencies(server.port, '/health', () => done, 10_000);
      const result = await generateLoad(server.port, { concurrency, maxRequests, maxSeconds: levelSeconds, seedsFor: () => 1 });
      done = true;
      const latencies = await health;
      healthP99 = percentile(latencies, 99);
      healthCount = latencies.length;
      report('1 seed', concurrency, result);
    } else {
      report('1 seed', concurrency, await generateLoad(server.port, { concurrency, maxRequests, maxSeconds: levelSeconds, seedsFor: () => 1 }));
    }
  }
  report('mixed 1/2/4/8 seeds', 16, await generateLoad(server.port, { concurrency: 16, maxRequests: quick ? 200 : 1000, maxSeconds: levelSeconds, seedsFor: (i) => mixedSizes[i % 4] }));

  const rssBefore = server.rssMiB();
  const rssRun = await generateLoad(server.port, { concurrency: 16, maxRequests: rssRequests, maxSeconds: rssSeconds, seedsFor: (i) => mixedSizes[(i * 7) % 4] });
  const rssAfter = server.rssMiB();
  rssLine =
    `RSS of the server: ${fixed(rssAfterWarmUp)} MiB after warm-up, ${fixed(rssBefore)} MiB after the load levels, ` +
    `${fixed(rssAfter)} MiB after ${rssRun.requests} more mixed-size requests (${rssRun.images} images): ` +
    `${fixed(rssAfter / rssAfterWarmUp, 2)}x the post-warm-up RSS (target ≤ 1.3x).`;
  console.log(rssLine);
} finally {
  await server.stop();
  closeAgent();
}

const command = `npm run bench:serve${process.argv.length > 2 ? ` -- ${process.argv.slice(2).join(' ')}` : ''}`;
const http16 = rows.find((row) => row[0] === '1 seed' && row[1] === 16);
const markdown = [
  '## Serving: POST /generate through the real server, sample model',
  '',
  `Machine: ${machineLine()}. Command: \`${command}\`, run on ${new Date().toISOString().slice(0, 10)}.`,
  `Server: \`src/cli.ts serve\` under tsx on 127.0.0.1 with default settings (max batch ${maxBatch}, PNG level 1, 1 worker) and the response cache off, ` +
    `model \`sample\` (${manifest.arch.resolution}², untrained). Load: closed-loop keep-alive clients in the benchmark process, ` +
    `each level bounded to ${levelSeconds} s.`,
  `Raw batched throughput of the same graphs in-process (batch ${maxBatch}, no HTTP, no encoding): **${fixed(raw, 1)} images/s**.`,
  '',
  table(['requests', 'concurrency', 'count', 'images/s', 'vs raw', 'p50 ms', 'p95 ms', 'p99 ms', 'statuses'], rows),
  '',
  `GET /health under concurrency 64: p99 ${fixed(healthP99, 1)} ms over ${healthCount} requests (target < 50 ms).`,
  `HTTP throughput at concurrency 16: ${http16 ? http16[4] : '—'} of raw batched (target ≥ 85%).`,
  rssLine,
].join('\n');
if (!values['no-write']) writeSection('serve', markdown);
console.log(markdown);
