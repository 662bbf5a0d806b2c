/**
 * GPU benchmark: images/s of mapping + synthesis for the 1024 config-f generator (random weights)
 * on the CUDA execution provider at batch 1, 8 and 32, through the service's session options.
 * An fp16 synthesis graph is measured too when `--fp16-graph FILE` names one.
 *
 *   npx tsx bench/gpu.ts [--provider cuda|cpu] [--batches 1,8,32] [--runs N] [--fp16-graph FILE] [--json FILE]
 *
 * NOTE: written for a CUDA 12 + cuDNN 9 machine and not yet run on one (no GPU was available).
 */

import { readFileSync, writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';

import { configF1024Arch, randomGeneratorWeights } from '../src/graph/random-weights.js';
import { machineLine } from './lib/machine.js';
import { generateBatch, openBenchModel } from './lib/model-sessions.js';
import { fixed, median } from './lib/stats.js';

const { values } = parseArgs({
  options: {
    provider: { type: 'string', default: 'cuda' },
    batches: { type: 'string', default: '1,8,32' },
    runs: { type: 'string', default: '5' },
    'fp16-graph': { type: 'string' },
    json: { type: 'string' },
  },
});
const provider = values.provider as 'cuda' | 'cpu';
const batches = values.batches.split(',').map(Number);
const runs = Number(values.runs);

const weights = randomGeneratorWeights(configF1024Arch, 1);
const variants: [string, Uint8Array | undefined][] = [['fp32', undefined]];
if (values['fp16-graph']) variants.push(['fp16', readFileSync(values['fp16-graph'])]);

const results: { precision: string; batch: number; imagesPerSecond: number; msPerBatch: number }[] = [];
for (const [precision, synthesisBytes] of variants) {
  const model = await openBenchModel(weights, { session: { executionProvider: provider }, synthesisBytes });
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
    console.log(`${provider} ${precision} batch ${batch}: ${fixed((1000 * batch) / ms, 2)} images/s (${fixed(ms, 1)} ms per batch)`);
  }
  await model.close();
}
if (values.json) writeFileSync(values.json, JSON.stringify({ machine: machineLine(), provider, results }, null, 2));
