/**
 * Serving with `precision: 'fp16'`: model folders converted with the fp16 graph, the registry's
 * checks of it, the service running it, and the start-up error for a folder without it.
 */

import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';

import { ConfigError, loadServerConfig } from '../../src/config.js';
import { writeModelFolder } from '../../src/graph/convert.js';
import { synthesisFp16GraphFile } from '../../src/graph/model-manifest.js';
import { randomGeneratorWeights } from '../../src/graph/random-weights.js';
import { createLogger } from '../../src/log.js';
import { resolveRuntimeConfig } from '../../src/runtime/config.js';
import { ModelRegistry } from '../../src/runtime/model-registry.js';
import { createInferenceService } from '../../src/runtime/service.js';
import { collect, jobOptions, makeModelsDir, removeDir, seedSpec, tinyArch } from './helpers.js';

/** Same bound as test/perf/fp16.test.ts: 1.3 steps of an 8-bit image over [-1, 1]. */
const fp16ImageTolerance = 1e-2;

let modelsDir: string;

before(async () => {
  modelsDir = await makeModelsDir({ plain: tinyArch });
  const source = { file: 'random half', sha256: null, bytes: null };
  await writeModelFolder(randomGeneratorWeights(tinyArch, 7), { name: 'half', modelsDir, source, fp16: true });
});

after(async () => {
  await removeDir(modelsDir);
});

/** Generates seed 1 to 3 with stored noise on `model` at `precision`; returns the images. */
async function generate(model: string, precision: 'fp32' | 'fp16'): Promise<Float32Array[]> {
  const config = resolveRuntimeConfig({ modelsDir, models: [model], warmUp: false, session: { intraOpNumThreads: 1, precision } });
  const service = createInferenceService(config, createLogger({ level: 'silent' }));
  await service.start();
  try {
    const results = await collect(service.generate(model, [1, 2, 3].map((seed) => seedSpec(seed, tinyArch.zDim!)), jobOptions()));
    return results.map((result) => result.image);
  } finally {
    await service.close();
  }
}

describe('fp16 model folders', () => {
  it('list synthesis_fp16.onnx only when converted with fp16', async () => {
    const registry = await ModelRegistry.load(modelsDir, ['half', 'plain']);
    const half = registry.require('half');
    assert.equal(half.manifest.files.synthesisFp16, synthesisFp16GraphFile);
    assert.equal(typeof half.manifest.fileSha256[synthesisFp16GraphFile], 'string');
    assert.equal(half.paths.synthesisFp16, join(modelsDir, 'half', synthesisFp16GraphFile));

    const plain = registry.require('plain');
    assert.equal(plain.manifest.files.synthesisFp16, undefined);
    assert.equal(plain.paths.synthesisFp16, undefined);
    assert.equal(existsSync(join(modelsDir, 'plain', synthesisFp16GraphFile)), false);
  });

  it('a damaged fp16 graph fails the load', async () => {
    const damagedDir = await makeModelsDir({});
    try {
      const source = { file: 'random damaged', sha256: null, bytes: null };
      await writeModelFolder(randomGeneratorWeights(tinyArch, 8), { name: 'damaged', modelsDir: damagedDir, source, fp16: true });
      const file = join(damagedDir, 'damaged', synthesisFp16GraphFile);
      const bytes = await readFile(file);
      bytes[bytes.length - 1] ^= 0xff;
      await writeFile(file, bytes);
      await assert.rejects(ModelRegistry.load(damagedDir, ['damaged']), /model damaged: sha256 of synthesis_fp16\.onnx is [0-9a-f]+, model\.json expects/);
    } finally {
      await removeDir(damagedDir);
    }
  });
});

describe('serving at fp16 precision', () => {
  it('runs the fp16 graph close to fp32', async (t) => {
    const fp32 = await generate('half', 'fp32');
    const fp16 = await generate('half', 'fp16');
    let maxError = 0;
    fp32.forEach((image, i) => image.forEach((value, j) => (maxError = Math.max(maxError, Math.abs(value - fp16[i][j])))));
    t.diagnostic(`max abs image error of the fp16 service vs fp32: ${maxError.toExponential(2)}`);
    assert.ok(maxError > 0, 'fp16 images equal the fp32 ones, so the worker did not open synthesis_fp16.onnx');
    assert.ok(maxError < fp16ImageTolerance, `max abs error ${maxError} >= ${fp16ImageTolerance}`);
  });

  it('fails at start for a model without the fp16 graph', async () => {
    const config = resolveRuntimeConfig({ modelsDir, models: ['plain'], warmUp: false, session: { intraOpNumThreads: 1, precision: 'fp16' } });
    const service = createInferenceService(config, createLogger({ level: 'silent' }));
    try {
      await assert.rejects(service.start(), /model plain has no synthesis_fp16\.onnx, which --precision fp16 needs; re-convert it with .*--fp16/);
    } finally {
      await service.close();
    }
  });

  it('precision setting defaults to fp32 and rejects other values', () => {
    assert.equal(loadServerConfig({}, {}).precision, 'fp32');
    assert.equal(loadServerConfig({ precision: 'fp16' }, {}).precision, 'fp16');
    assert.equal(loadServerConfig({}, { PRECISION: 'fp16' }).precision, 'fp16');
    assert.throws(() => loadServerConfig({ precision: 'bf16' }, {}), ConfigError);
    assert.throws(() => resolveRuntimeConfig({ modelsDir, session: { precision: 'fp8' as 'fp16' } }), /invalid precision fp8/);
  });
});
