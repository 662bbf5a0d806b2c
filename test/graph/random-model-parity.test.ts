/**
 * ONNX graphs versus the plain-TypeScript reference forward on small random models, through real
 * ONNX Runtime sessions, at batch 1 and batch 3.
 */

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import type { GeneratorWeights } from '../../src/checkpoint/types.js';
import { noiseLayers } from '../../src/graph/layers.js';
import { buildMappingGraph } from '../../src/graph/mapping.js';
import { SeededRandom } from '../../src/graph/prng.js';
import { randomGeneratorWeights, type RandomArchitecture } from '../../src/graph/random-weights.js';
import { referenceMapping, referenceSynthesis } from '../../src/graph/reference.js';
import { buildSynthesisGraph } from '../../src/graph/synthesis.js';
import { createSession, maxAbs, maxAbsDiff, runMapping, runSynthesis, type MappingRow } from './graph-session.js';

const wsTolerance = 1e-4;
const imgTolerance = 1e-4;

/** Conditional, zDim ≠ wDim ≠ mapping width, active clamp (0.5), skip architecture with noise. */
const conditionalClamped: RandomArchitecture = {
  resolution: 32,
  zDim: 16,
  wDim: 24,
  cDim: 3,
  embedFeatures: 12,
  mappingLayers: 3,
  mappingFeatures: 20,
  channels: { 4: 16, 8: 16, 16: 12, 32: 8 },
  convClamp: 0.5,
};

/** Unconditional orig architecture without noise inputs or clamp. */
const origWithoutNoise: RandomArchitecture = {
  resolution: 16,
  zDim: 12,
  wDim: 12,
  mappingLayers: 2,
  channels: { 4: 12, 8: 10, 16: 6 },
  convClamp: null,
  architecture: 'orig',
  useNoise: false,
};

function oneHot(length: number, index: number): Float32Array {
  const c = new Float32Array(length);
  c[index] = 1;
  return c;
}

function mappingRows(weights: GeneratorWeights, random: SeededRandom): MappingRow[] {
  const { arch } = weights;
  const c = (index: number): Float32Array | undefined => (arch.cDim > 0 ? oneHot(arch.cDim, index % arch.cDim) : undefined);
  return [
    { z: random.gaussians(arch.zDim), c: c(0), psi: 0.7, cutoff: arch.numWs },
    { z: random.gaussians(arch.zDim), c: c(1), psi: 1.5, cutoff: 3 },
    { z: random.gaussians(arch.zDim), c: c(2), psi: -0.5, cutoff: 5 },
    { z: random.gaussians(arch.zDim), c: c(1), psi: 1, cutoff: arch.numWs },
  ];
}

function referenceWs(weights: GeneratorWeights, row: MappingRow): Float32Array {
  return referenceMapping(weights, { z: row.z, c: row.c, psi: row.psi, truncationCutoff: row.cutoff });
}

describe('mapping graph vs reference', () => {
  for (const [label, arch] of [
    ['conditional', conditionalClamped],
    ['unconditional', origWithoutNoise],
  ] as const) {
    it(`${label} model at batch 1 and 3`, async () => {
      const weights = randomGeneratorWeights(arch, 11);
      const session = await createSession(buildMappingGraph(weights));
      const rows = mappingRows(weights, new SeededRandom(5));

      for (const row of rows) {
        const [single] = await runMapping(session, weights.arch, [row]);
        assert.ok(maxAbsDiff(single, referenceWs(weights, row)) < wsTolerance, `psi ${row.psi} cutoff ${row.cutoff} at batch 1`);
      }

      const batch = await runMapping(session, weights.arch, rows.slice(0, 3));
      const reordered = await runMapping(session, weights.arch, [rows[2], rows[0], rows[1]]);
      for (let i = 0; i < 3; i++) {
        assert.ok(maxAbsDiff(batch[i], referenceWs(weights, rows[i])) < wsTolerance, `row ${i} at batch 3`);
      }
      assert.ok(maxAbsDiff(batch[0], reordered[1]) < 1e-6, 'row 0 moved to position 1');
      assert.ok(maxAbsDiff(batch[2], reordered[0]) < 1e-6, 'row 2 moved to position 0');
    });
  }

  it('leaves layers at and above the cutoff untruncated', async () => {
    const weights = randomGeneratorWeights(conditionalClamped, 12);
    const session = await createSession(buildMappingGraph(weights));
    const z = new SeededRandom(9).gaussians(weights.arch.zDim);
    const c = oneHot(3, 2);
    const [untruncated, truncated] = await runMapping(session, weights.arch, [
      { z, c, psi: 1, cutoff: 8 },
      { z, c, psi: 0.5, cutoff: 3 },
    ]);
    const { wDim, numWs } = weights.arch;
    assert.ok(maxAbsDiff(truncated.subarray(3 * wDim), untruncated.subarray(3 * wDim)) === 0, 'rows 3.. equal the untruncated ws');
    assert.ok(maxAbsDiff(truncated.subarray(0, 3 * wDim), untruncated.subarray(0, 3 * wDim)) > 1e-3, 'rows 0..2 moved toward w_avg');
    assert.equal(truncated.length, numWs * wDim);
  });
});

describe('synthesis graph vs reference', () => {
  for (const upsampleConv of ['two-step', 'folded'] as const) {
    it(`clamped model, ${upsampleConv} up-sampling`, async () => {
      const weights = randomGeneratorWeights(conditionalClamped, 21);
      const session = await createSession(buildSynthesisGraph(weights, { upsampleConv }));
      const mappingSession = await createSession(buildMappingGraph(weights));
      const rows = mappingRows(weights, new SeededRandom(6)).slice(0, 3);
      const wsRows = await runMapping(mappingSession, weights.arch, rows);
      const layers = noiseLayers(weights.arch);
      const constNoise = layers.map((layer) => weights.tensors.get(`synthesis.${layer.layer}.noise_const`)!.data);
      const zeroNoise = layers.map((layer) => new Float32Array(layer.resolution * layer.resolution));

      for (const [mode, noise, referenceNoise] of [
        ['const', constNoise, constNoise],
        ['none', zeroNoise, null],
      ] as const) {
        const expected = wsRows.map((ws) => referenceSynthesis(weights, ws, referenceNoise));
        const [single] = await runSynthesis(session, weights.arch, [wsRows[1]], noise);
        assert.ok(maxAbsDiff(single, expected[1]) < imgTolerance, `${mode} noise at batch 1: ${maxAbsDiff(single, expected[1])}`);
        const batch = await runSynthesis(session, weights.arch, wsRows, noise);
        for (let i = 0; i < 3; i++) {
          assert.ok(maxAbsDiff(batch[i], expected[i]) < imgTolerance, `${mode} noise, row ${i} at batch 3: ${maxAbsDiff(batch[i], expected[i])}`);
        }
        assert.ok(maxAbsDiff(batch[1], single) < 1e-6, `${mode} noise: row 1 equals its batch-1 result`);
      }
    });
  }

  it('per-row noise maps', async () => {
    const weights = randomGeneratorWeights(conditionalClamped, 22);
    const session = await createSession(buildSynthesisGraph(weights));
    const random = new SeededRandom(7);
    const wsRows = [0, 1].map(() => random.gaussians(weights.arch.numWs * weights.arch.wDim));
    const layers = noiseLayers(weights.arch);
    const perRow = [0, 1].map(() => layers.map((layer) => random.gaussians(layer.resolution * layer.resolution)));
    const batched = layers.map((layer, i) => {
      const area = layer.resolution * layer.resolution;
      const maps = new Float32Array(2 * area);
      maps.set(perRow[0][i]);
      maps.set(perRow[1][i], area);
      return maps;
    });
    const images = await runSynthesis(session, weights.arch, wsRows, batched);
    for (let n = 0; n < 2; n++) {
      assert.ok(maxAbsDiff(images[n], referenceSynthesis(weights, wsRows[n], perRow[n])) < imgTolerance, `row ${n}`);
    }
  });

  it('orig architecture without noise', async () => {
    const weights = randomGeneratorWeights(origWithoutNoise, 23);
    const session = await createSession(buildSynthesisGraph(weights));
    const random = new SeededRandom(8);
    const wsRows = [0, 1, 2].map(() => random.gaussians(weights.arch.numWs * weights.arch.wDim));
    const noise = noiseLayers(weights.arch).map((layer) => random.gaussians(layer.resolution * layer.resolution));
    const images = await runSynthesis(session, weights.arch, wsRows, noise);
    for (let n = 0; n < 3; n++) {
      const expected = referenceSynthesis(weights, wsRows[n], null);
      assert.ok(maxAbsDiff(images[n], expected) < imgTolerance, `row ${n}: ${maxAbsDiff(images[n], expected)}`);
    }
  });

  it('clamp at 0.5 changes the image', () => {
    const weights = randomGeneratorWeights(conditionalClamped, 21);
    const unclamped: GeneratorWeights = { ...weights, arch: { ...weights.arch, convClamp: null } };
    const ws = new SeededRandom(3).gaussians(weights.arch.numWs * weights.arch.wDim);
    const clampedImage = referenceSynthesis(weights, ws, null);
    assert.ok(maxAbsDiff(clampedImage, referenceSynthesis(unclamped, ws, null)) > 0.1, 'clamp is active');
    assert.ok(maxAbs(clampedImage) <= 0.5 * 4 + 1e-6, 'skip sum of four clamped ToRGB outputs stays within ±2');
  });
});
