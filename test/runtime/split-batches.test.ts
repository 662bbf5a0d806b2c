/**
 * Batch splitting: running a synthesis batch as single-image runs gives the same bytes as one
 * batched run, for shared and per-row noise alike.
 */

import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';

import { createLogger } from '../../src/log.js';
import { resolveRuntimeConfig } from '../../src/runtime/config.js';
import type { ImageSpec } from '../../src/runtime/contract.js';
import { createInferenceService, type InferenceService } from '../../src/runtime/service.js';
import { bytesOf, collect, jobOptions, makeModelsDir, removeDir, seedSpec, tinyArch } from './helpers.js';

let modelsDir: string;
const services: Record<'on' | 'off', InferenceService | undefined> = { on: undefined, off: undefined };

before(async () => {
  modelsDir = await makeModelsDir({ tiny: tinyArch });
  for (const mode of ['on', 'off'] as const) {
    const config = resolveRuntimeConfig({ modelsDir, session: { intraOpNumThreads: 2, splitBatches: mode }, scheduler: { maxBatch: 8 } });
    services[mode] = createInferenceService(config, createLogger({ level: 'silent' }));
    await services[mode]!.start();
  }
});

after(async () => {
  for (const service of Object.values(services)) await service?.close();
  await removeDir(modelsDir);
});

test('split batches give the same bytes as whole batches', async () => {
  const specs: ImageSpec[] = [
    seedSpec(1, tinyArch.zDim!),
    seedSpec(2, tinyArch.zDim!, { noiseMode: 'random', noiseSeed: 7 }),
    seedSpec(3, tinyArch.zDim!, { noiseMode: 'none' }),
    seedSpec(4, tinyArch.zDim!, {}, 0.5),
    seedSpec(5, tinyArch.zDim!, { noiseMode: 'random', noiseSeed: 9 }),
  ];
  const whole = await collect(services.off!.generate('tiny', specs, jobOptions()));
  const split = await collect(services.on!.generate('tiny', specs, jobOptions()));
  assert.equal(split.length, specs.length);
  for (let i = 0; i < specs.length; i++) {
    assert.deepEqual(bytesOf(split[i].image), bytesOf(whole[i].image), `image ${i}`);
    assert.deepEqual(bytesOf(split[i].ws), bytesOf(whole[i].ws), `ws ${i}`);
  }
  const uniform = [1, 2, 3].map((seed) => seedSpec(seed, tinyArch.zDim!));
  const wholeUniform = await collect(services.off!.generate('tiny', uniform, jobOptions()));
  const splitUniform = await collect(services.on!.generate('tiny', uniform, jobOptions()));
  for (let i = 0; i < uniform.length; i++) assert.deepEqual(bytesOf(splitUniform[i].image), bytesOf(wholeUniform[i].image));
});
