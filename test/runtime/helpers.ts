/** Shared set-up of the runtime tests: tiny random models in a temp folder and a started service. */

import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { writeModelFolder } from '../../src/graph/convert.js';
import { randomGeneratorWeights, type RandomArchitecture } from '../../src/graph/random-weights.js';
import { createLogger } from '../../src/log.js';
import { resolveRuntimeConfig, type SchedulerConfig } from '../../src/runtime/config.js';
import type { ImageResult, ImageSpec, JobOptions } from '../../src/runtime/contract.js';
import { createInferenceService, type InferenceService } from '../../src/runtime/service.js';
import { zFromSeed } from '../../src/runtime/seeds.js';

/** 32x32, z = w = 32: a batch of 8 takes a few ms. */
export const tinyArch: RandomArchitecture = { resolution: 32, zDim: 32, wDim: 32, mappingLayers: 2, channelBase: 256, channelMax: 32 };
/** 128x128 with 128 channels: a batch of 8 takes several hundred ms on 2 cores. */
export const slowArch: RandomArchitecture = { resolution: 128, zDim: 64, wDim: 64, mappingLayers: 2, channelBase: 16384, channelMax: 128 };

export async function makeModelsDir(models: Record<string, RandomArchitecture>): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'sgserve-runtime-'));
  let seed = 1;
  for (const [name, arch] of Object.entries(models)) {
    await writeModelFolder(randomGeneratorWeights(arch, seed++), { name, modelsDir: dir, source: { file: `random ${name}`, sha256: null, bytes: null } });
  }
  return dir;
}

export async function removeDir(dir: string): Promise<void> {
  await rm(dir, { recursive: true, force: true });
}

export async function startService(modelsDir: string, scheduler: Partial<SchedulerConfig> = {}, warmUp = true): Promise<InferenceService> {
  const config = resolveRuntimeConfig({ modelsDir, scheduler, warmUp, session: { intraOpNumThreads: 2 } });
  const service = createInferenceService(config, createLogger({ level: 'silent' }));
  await service.start();
  return service;
}

export function seedSpec(seed: number, zDim: number, extra: Partial<ImageSpec> = {}, psi = 1): ImageSpec {
  return { latent: { kind: 'z', z: zFromSeed(seed, zDim), psi }, noiseMode: 'const', ...extra };
}

let requestCounter = 0;
export function jobOptions(overrides: Partial<JobOptions> = {}): JobOptions {
  return { requestId: `test-${++requestCounter}`, priority: 'interactive', deadlineMs: Date.now() + 30_000, ...overrides };
}

/** Reads every result and returns them by index. */
export async function collect(results: AsyncIterable<ImageResult>): Promise<ImageResult[]> {
  const byIndex: ImageResult[] = [];
  for await (const result of results) byIndex[result.index] = result;
  return byIndex;
}

export function bytesOf(array: Float32Array): Buffer {
  return Buffer.from(array.buffer, array.byteOffset, array.byteLength);
}

/** Resolves with the error the iterator throws, or rejects if it finishes without one. */
export async function expectIteratorError(results: AsyncIterable<ImageResult>): Promise<{ error: Error; received: number }> {
  let received = 0;
  try {
    for await (const _ of results) received++;
  } catch (error) {
    return { error: error as Error, received };
  }
  throw new Error(`the job finished with ${received} images instead of failing`);
}
