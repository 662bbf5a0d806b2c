/**
 * Model folders for the benchmarks that run the real service: the paper256 random-weight model,
 * written once into a cache folder under the OS temp directory (writing it computes the closed-form
 * directions, which takes about a minute on 2 cores), and a pipelined image generator that keeps a
 * few jobs in flight and optionally encodes every image as the HTTP routes do.
 */

import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

import { writeModelFolder } from '../../src/graph/convert.js';
import { randomGeneratorWeights, type RandomArchitecture } from '../../src/graph/random-weights.js';
import { silentLogger } from '../../src/log.js';
import { resolveRuntimeConfig } from '../../src/runtime/config.js';
import { encodeImage, type EncodeOptions } from '../../src/runtime/encode.js';
import { createInferenceService, type InferenceService } from '../../src/runtime/service.js';
import { zFromSeed } from '../../src/runtime/seeds.js';

export const benchModelsDir = path.join(tmpdir(), 'stylegan-serve-bench', 'models');

/** Writes `benchModelsDir/<name>` from seeded random weights unless it already exists. */
export async function ensureRandomModel(name: string, arch: RandomArchitecture): Promise<string> {
  if (!existsSync(path.join(benchModelsDir, name, 'model.json'))) {
    // 'checkpoint' keeps the random w_avg and skips the 10,000-z estimate, which benchmarks do not need.
    const weights = { ...randomGeneratorWeights(arch, 1), wAvgSource: 'checkpoint' as const };
    await writeModelFolder(weights, { name, modelsDir: benchModelsDir, source: { file: 'random weights, seed 1 (benchmark)', sha256: null, bytes: null }, overwrite: true });
  }
  return benchModelsDir;
}

export async function startService(
  modelsDir: string,
  model: string,
  maxBatch: number,
  splitBatches: 'auto' | 'on' | 'off' = 'auto',
): Promise<InferenceService> {
  const config = resolveRuntimeConfig({ modelsDir, models: [model], scheduler: { maxBatch, maxQueuedImages: 4096 }, session: { splitBatches } });
  const service = createInferenceService(config, silentLogger());
  await service.start();
  return service;
}

export interface PipelineResult {
  images: number;
  seconds: number;
  imagesPerSecond: number;
}

/**
 * Generates `jobs` jobs of `imagesPerJob` seeds each, with `inFlight` jobs queued at a time; with
 * `encode`, every image is encoded as soon as it arrives, before the job reads its next image.
 */
export async function runPipeline(
  service: InferenceService,
  model: string,
  options: { jobs: number; imagesPerJob: number; inFlight: number; encode?: EncodeOptions },
): Promise<PipelineResult> {
  const manifest = service.getModel(model)!.manifest;
  const { zDim, resolution, imgChannels } = manifest.arch;
  const shape = { channels: imgChannels, height: resolution, width: resolution };
  let nextJob = 0;
  let seed = 1000;
  const runJob = async () => {
    const images = Array.from({ length: options.imagesPerJob }, () => ({
      latent: { kind: 'z' as const, z: zFromSeed(seed++, zDim), psi: 0.7 },
      noiseMode: 'const' as const,
    }));
    const job = service.generate(model, images, { requestId: `bench-${nextJob}`, priority: 'interactive', deadlineMs: Date.now() + 600_000 });
    for await (const result of job) {
      if (options.encode) await encodeImage(result.image, shape, options.encode);
    }
  };
  const started = performance.now();
  const lanes = Array.from({ length: options.inFlight }, async () => {
    while (nextJob < options.jobs) {
      nextJob++;
      await runJob();
    }
  });
  await Promise.all(lanes);
  const seconds = (performance.now() - started) / 1000;
  const images = options.jobs * options.imagesPerJob;
  return { images, seconds, imagesPerSecond: images / seconds };
}
