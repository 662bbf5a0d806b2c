/**
 * Per-class truncation centres: a conditional model that stores one average latent per class
 * truncates toward the label-weighted mix of them, in the ONNX graph as in the reference.
 */

import assert from 'node:assert/strict';
import { test } from 'node:test';

import { buildMappingGraph } from '../../src/graph/mapping.js';
import { SeededRandom } from '../../src/graph/prng.js';
import { randomGeneratorWeights } from '../../src/graph/random-weights.js';
import { referenceMapping } from '../../src/graph/reference.js';
import { createSession, maxAbsDiff, runMapping } from './graph-session.js';

const arch = { resolution: 16, zDim: 8, wDim: 8, cDim: 3, embedFeatures: 8, mappingLayers: 2, channels: { 4: 8, 8: 8, 16: 8 } };

test('mapping truncates toward per-class centres', async () => {
  const weights = randomGeneratorWeights(arch, 11);
  const random = new SeededRandom(5);
  weights.wAvgPerClass = Float32Array.from({ length: arch.cDim * arch.wDim }, () => random.nextGaussian() * 3);
  const session = await createSession(buildMappingGraph(weights));
  const z = Float32Array.from({ length: arch.zDim }, () => random.nextGaussian());
  const labels = [Float32Array.of(0, 1, 0), Float32Array.of(0.2, 0.3, 0.5)];
  const rows = labels.map((c) => ({ z, c, psi: 0.5, cutoff: 6 }));
  const outputs = await runMapping(session, weights.arch, rows);
  labels.forEach((c, i) => {
    const expected = referenceMapping(weights, { z, c, psi: 0.5 });
    assert.ok(maxAbsDiff(outputs[i], expected) < 1e-4, `label ${i}`);
  });

  // psi 0 lands exactly on the class centre.
  const [atCenter] = await runMapping(session, weights.arch, [{ z, c: labels[0], psi: 0, cutoff: 6 }]);
  const classOne = weights.wAvgPerClass.subarray(arch.wDim, 2 * arch.wDim);
  assert.ok(maxAbsDiff(atCenter.subarray(0, arch.wDim), classOne) < 1e-6);
  const global = await createSession(buildMappingGraph({ ...weights, wAvgPerClass: undefined }));
  const [atGlobal] = await runMapping(global, weights.arch, [{ z, c: labels[0], psi: 0, cutoff: 6 }]);
  assert.ok(maxAbsDiff(atGlobal.subarray(0, arch.wDim), weights.wAvg) < 1e-6);
});
