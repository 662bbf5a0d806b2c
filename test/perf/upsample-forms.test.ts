/**
 * The sub-pixel forms of the up-sampling convolution (one convolution over the input per output
 * phase, then DepthToSpace) against the TypeScript reference forward, through ONNX Runtime, at
 * batch 1 and 3, with a clamped conditional model and an orig model without noise.
 */

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import type { GeneratorWeights } from '../../src/checkpoint/types.js';
import { noiseLayers } from '../../src/graph/layers.js';
import { SeededRandom } from '../../src/graph/prng.js';
import { randomGeneratorWeights, type RandomArchitecture } from '../../src/graph/random-weights.js';
import { referenceSynthesis } from '../../src/graph/reference.js';
import { buildSynthesisGraph } from '../../src/graph/synthesis.js';
import { createSession, maxAbsDiff, runSynthesis } from '../graph/graph-session.js';

const imgTolerance = 1e-4;

const clamped: RandomArchitecture = {
  resolution: 32,
  zDim: 16,
  wDim: 24,
  mappingLayers: 2,
  channels: { 4: 16, 8: 16, 16: 12, 32: 8 },
  convClamp: 0.5,
};

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

function randomWsRows(weights: GeneratorWeights, count: number, seed: number): Float32Array[] {
  const random = new SeededRandom(seed);
  return Array.from({ length: count }, () => random.gaussians(weights.arch.numWs * weights.arch.wDim, 0.8));
}

describe('sub-pixel up-sampling forms vs reference', () => {
  for (const upsampleConv of ['subpixel', 'subpixel-folded'] as const) {
    for (const [label, arch] of [
      ['clamped skip model', clamped],
      ['orig model without noise', origWithoutNoise],
    ] as const) {
      it(`${upsampleConv}, ${label}`, async () => {
        const weights = randomGeneratorWeights(arch, 31);
        const session = await createSession(buildSynthesisGraph(weights, { upsampleConv }));
        const wsRows = randomWsRows(weights, 3, 7);
        // The graph has noise inputs even without noise; a model without noise ignores them.
        const noise = noiseLayers(weights.arch).map(
          (layer) => weights.tensors.get(`synthesis.${layer.layer}.noise_const`)?.data ?? new Float32Array(layer.resolution ** 2),
        );
        const expected = wsRows.map((ws) => referenceSynthesis(weights, ws, weights.arch.useNoise ? noise : null));

        const [single] = await runSynthesis(session, weights.arch, [wsRows[0]], noise);
        assert.ok(maxAbsDiff(single, expected[0]) < imgTolerance, `batch 1: ${maxAbsDiff(single, expected[0])}`);
        const batch = await runSynthesis(session, weights.arch, wsRows, noise);
        for (let i = 0; i < wsRows.length; i++) {
          assert.ok(maxAbsDiff(batch[i], expected[i]) < imgTolerance, `row ${i} at batch 3: ${maxAbsDiff(batch[i], expected[i])}`);
        }
      });
    }
  }
});
