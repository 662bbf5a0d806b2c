/**
 * GPU benchmark: images/s of mapping + synthesis for the 1024 config-f generator (or paper256;
 * random weights) at batch 1, 8 and 32, through the service's session options. `--precision fp16` times the fp16
 * synthesis graph (`buildSynthesisGraph(weights, { precision: 'fp16' })`) and also reports its
 * max abs image error against the fp32 graph on the same provider. On the CPU, where ONNX Runtime
 * keeps most fp16 feature maps in float32, it also reports the error with every fp16 value rounded
 * (test/perf/fp16-emulation.ts), an estimate of the error on a GPU.
 *
 *   npx tsx bench/gpu.ts [--provider cuda|cpu] [--precision fp32|fp16] [--config config-f|paper256]
 *     [--batches 1,8,32] [--runs N] [--json FILE]
 *
 * NOTE: written for a CUDA 12 + cuDNN 9 machine and not yet run on one (no GPU was available).
 */

import { writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';

import { configF1024Arch, paper256Arch, randomGeneratorWeights } from '../src/graph/random-weights.js';
import { buildSynthesisGraph, type SynthesisPrecision } from '../src/graph/synthesis.js';
import { emulateFloat16 } from '../test/perf/fp16-emulation.js';
import { machineLine } from './lib/machine.js';
import { generateBatch, openBenchModel } from './lib/model-sessions.js';
import { fixed, median } from './lib/stats.js';

const { values } = parseArgs({
  options: {
    provider: { type: 'string', default: 'cuda' },
    precision: { type: 'string', default: 'fp32' },
    config: { type: 'string', default: 'config-f' },
    batches: { type: 'string', default: '1,8,32' },
    runs: { type: 'string', default: '5' },
    json: { type: 'string' },
  },
});
const provider = values.provider as 'cuda' | 'cpu';
const precision = values.precision as SynthesisPrecision;
if (precision !== 'fp32' && precision !== 'fp16') throw new Error(`--precision ${values.precision} is invalid; use fp32 or fp16`);
const batches = values.batches.split(',').map(Number);
const runs = Number(values.runs);
/** Batch size of the fp16-against-fp32 error check. */
const errorCheckBatch = 4;

const architectures = { 'config-f': configF1024Arch, paper256: paper256Arch };
if (!(values.config in architectures)) throw new Error(`--config ${values.config} is invalid; use config-f or paper256`);
const weights = randomGeneratorWeights(architectures[values.config as keyof typeof architectures], 1);
const session = { executionProvider: provider };

/** Max abs difference of `synthesisBytes`' images from `expected` (same z rows, psi and stored noise). */
async function maxAbsError(expected: Float32Array, synthesisBytes: Uint8Array): Promise<number> {
  const candidate = await openBenchModel(weights, { session, synthesisBytes });
  const actual = await generateBatch(candidate, errorCheckBatch);
  await candidate.close();
  let max = 0;
  for (let i = 0; i < expected.length; i++) max = Math.max(max, Math.abs(actual[i] - expected[i]));
  return max;
}

let maxAbsErrorVsFp32: number | null = null;
let emulatedMaxAbsErrorVsFp32: number | null = null;
if (precision === 'fp16') {
  const reference = await openBenchModel(weights, { session });
  const expected = await generateBatch(reference, errorCheckBatch);
  await reference.close();
  const fp16Bytes = buildSynthesisGraph(weights, { precision: 'fp16' });
  maxAbsErrorVsFp32 = await maxAbsError(expected, fp16Bytes);
  console.log(`${values.config} ${provider} fp16 max abs image error vs fp32 at batch ${errorCheckBatch}: ${maxAbsErrorVsFp32.toExponential(2)}`);
  if (provider === 'cpu') {
    emulatedMaxAbsErrorVsFp32 = await maxAbsError(expected, emulateFloat16(fp16Bytes));
    console.log(`${values.config} emulated fp16 rounding: max abs image error vs fp32 at batch ${errorCheckBatch}: ${emulatedMaxAbsErrorVsFp32.toExponential(2)}`);
  }
}

const results: { precision: string; batch: number; imagesPerSecond: number; msPerBatch: number }[] = [];
const model = await openBenchModel(weights, { session, graph: { precision } });
for (const batch of batches) {
  await generateBatch(model, batch); // warm-up: kernel selection and allocation for this shape
  await generateBatch(model, batch);
  const times: number[] = [];
  for (let run = 0; run < runs; run++) {
    const started = performance.now();
    await generateBatch(model, batch, run + 2);
    times.push(performance.now() - started);
  }
  const ms = median(times);
  results.push({ precision, batch, imagesPerSecond: (1000 * batch) / ms, msPerBatch: ms });
  console.log(`${values.config} ${provider} ${precision} batch ${batch}: ${fixed((1000 * batch) / ms, 2)} images/s (${fixed(ms, 1)} ms per batch)`);
}
await model.close();
if (values.json) writeFileSync(values.json, JSON.stringify({ machine: machineLine(), config: values.config, provider, precision, maxAbsErrorVsFp32, emulatedMaxAbsErrorVsFp32, results }, null, 2));
