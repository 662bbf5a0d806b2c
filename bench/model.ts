/**
 * Model benchmark. It times mapping + synthesis of the paper256 and 1024 config-f generators
 * (random weights) in ms per image at batch 1, 4 and 8, through the service's session options
 * (src/runtime/sessions.ts). Then it measures images/s of the real inference service (worker
 * thread and scheduler) with and without PNG/WebP encoding, and writes its tables into BENCHMARKS.md.
 *
 *   npm run bench:model -- [--quick] [--runs N] [--form two-step|folded|subpixel|subpixel-folded] [--no-write]
 */

import { parseArgs } from 'node:util';

import { configF1024Arch, paper256Arch, randomGeneratorWeights, type RandomArchitecture } from '../src/graph/random-weights.js';
import type { UpsampleConvForm } from '../src/graph/synthesis.js';
import { machineLine } from './lib/machine.js';
import { generateBatch, openBenchModel } from './lib/model-sessions.js';
import { writeSection, table } from './lib/report.js';
import { ensureRandomModel, runPipeline, startService } from './lib/service-model.js';
import { fixed, median } from './lib/stats.js';

const { values } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    runs: { type: 'string' },
    form: { type: 'string', default: 'two-step' },
    'no-write': { type: 'boolean', default: false },
    'skip-1024': { type: 'boolean', default: false },
    'skip-encode': { type: 'boolean', default: false },
  },
});
const quick = values.quick;
const form = values.form as UpsampleConvForm;

interface ConfigRun {
  name: string;
  arch: RandomArchitecture;
  batches: number[];
  /** Timed runs per batch size, after one warm-up run. */
  runs: number;
  /** Reference PyTorch ms/image at batch 1 and 4 (2-core x86-64, fp32, 2 threads). */
  reference: Record<number, number>;
}

const configs: ConfigRun[] = [
  { name: 'paper256', arch: paper256Arch, batches: [1, 4, 8], runs: Number(values.runs ?? (quick ? 3 : 7)), reference: { 1: 755, 4: 1138 } },
];
if (!values['skip-1024']) {
  configs.push({ name: 'config-f 1024', arch: configF1024Arch, batches: quick ? [1, 4] : [1, 4, 8], runs: quick ? 1 : 3, reference: { 1: 9288, 4: 6827 } });
}

const rows: (string | number)[][] = [];
for (const config of configs) {
  const weights = randomGeneratorWeights(config.arch, 1);
  const model = await openBenchModel(weights, { graph: { upsampleConv: form } });
  for (const batch of config.batches) {
    await generateBatch(model, batch); // warm-up: first run allocates and plans
    const perImage: number[] = [];
    for (let run = 0; run < config.runs; run++) {
      const started = performance.now();
      await generateBatch(model, batch, run + 2);
      perImage.push((performance.now() - started) / batch);
    }
    const ms = median(perImage);
    const reference = config.reference[batch];
    rows.push([config.name, batch, fixed(ms), fixed(Math.min(...perImage)), config.runs, reference ?? '—', reference ? `${fixed(reference / ms, 1)}x` : '—']);
    console.log(`${config.name} batch ${batch}: ${fixed(ms)} ms/image (median of ${config.runs}; runs ${perImage.map((v) => fixed(v)).join(' ')})`);
  }
  await model.close();
}

// ms/image at batch 1, 4 and 8 through the real service, with batch splitting off and on `auto`.
let serviceTable = '';
if (!values['skip-encode']) {
  const modelsDir = await ensureRandomModel('paper256', paper256Arch);
  const serviceRows: (string | number)[][] = [];
  for (const split of ['off', 'auto'] as const) {
    for (const batch of [1, 4, 8]) {
      const service = await startService(modelsDir, 'paper256', batch, split);
      await runPipeline(service, 'paper256', { jobs: 1, imagesPerJob: batch, inFlight: 1 }); // warm-up
      const jobs = Math.max(2, Math.round((quick ? 8 : 16) / batch));
      const perImage: number[] = [];
      for (let job = 0; job < jobs; job++) {
        const result = await runPipeline(service, 'paper256', { jobs: 1, imagesPerJob: batch, inFlight: 1 });
        perImage.push((1000 * result.seconds) / result.images);
      }
      await service.close();
      serviceRows.push(['paper256', split, batch, fixed(median(perImage)), jobs]);
      console.log(`paper256 service, split-batches ${split}, batch ${batch}: ${fixed(median(perImage))} ms/image`);
    }
  }
  serviceTable = table(['config', 'split-batches', 'batch', 'ms/image (median)', 'jobs'], serviceRows);
}

let encodeTable = '';
if (!values['skip-encode']) {
  const modelsDir = await ensureRandomModel('paper256', paper256Arch);
  const service = await startService(modelsDir, 'paper256', 8);
  // Modes alternate within each round, so a load change on the shared machine hits all of them.
  const rounds = quick ? 2 : 3;
  const jobs = quick ? 3 : 4;
  const modes = [
    ['inference only', undefined],
    ['PNG level 1', { format: 'png' as const, pngCompressionLevel: 1 }],
    ['PNG level 6', { format: 'png' as const, pngCompressionLevel: 6 }],
    ['WebP q90 effort 0', { format: 'webp' as const, webpEffort: 0 }],
  ] as const;
  const rates = new Map<string, number[]>(modes.map(([label]) => [label, []]));
  await runPipeline(service, 'paper256', { jobs: 1, imagesPerJob: 8, inFlight: 1 }); // warm-up
  for (let round = 0; round < rounds; round++) {
    for (const [label, encode] of modes) {
      const result = await runPipeline(service, 'paper256', { jobs, imagesPerJob: 8, inFlight: 2, encode });
      rates.get(label)!.push(result.imagesPerSecond);
      console.log(`paper256 service, batch 8, round ${round + 1}, ${label}: ${fixed(result.imagesPerSecond, 2)} images/s`);
    }
  }
  const baseline = median(rates.get('inference only')!);
  const pipelineRows = modes.map(([label]) => {
    const rate = median(rates.get(label)!);
    return [label, rounds * jobs * 8, fixed(rate, 2), `${fixed((100 * rate) / baseline)}%`];
  });
  await service.close();
  encodeTable = table(['encoding', 'images (all rounds)', 'images/s (median of rounds)', 'vs inference only'], pipelineRows);
}

const command = `npm run bench:model${process.argv.length > 2 ? ` -- ${process.argv.slice(2).join(' ')}` : ''}`;
const markdown = [
  '## Model: mapping + synthesis, ms per image',
  '',
  `Machine: ${machineLine()}. Command: \`${command}\`, run on ${new Date().toISOString().slice(0, 10)}.`,
  `Up-sampling form: \`${form}\`. Random weights (seed 1), psi 0.7, stored noise, session options of src/runtime/sessions.ts with 2 intra-op threads.`,
  '',
  table(['config', 'batch', 'ms/image (median)', 'ms/image (best)', 'runs', 'PyTorch reference ms/image', 'speed-up'], rows),
  ...(serviceTable
    ? [
        '',
        '### paper256 through the inference service (worker thread + scheduler), one job of `batch` images at a time',
        '',
        'With `--split-batches auto` (the default) the worker times batch 2 against two single-image runs at start and runs batches as single-image runs when those are faster.',
        '',
        serviceTable,
      ]
    : []),
  ...(encodeTable
    ? ['', '### paper256 through the inference service (worker thread + scheduler), batch 8, 2 jobs of 8 in flight', '', encodeTable]
    : []),
].join('\n');
if (!values['no-write']) writeSection(`model-${form}`, markdown);
console.log(markdown);
