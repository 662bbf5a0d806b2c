/**
 * Estimates the truncation centre w_avg for checkpoints that do not store one: the mean mapping
 * output over a fixed set of random z, computed with ONNX Runtime on the mapping graph.
 */

import * as ort from 'onnxruntime-node';

import type { GeneratorWeights } from '../checkpoint/types.js';
import { buildMappingGraph, mappingIo } from './mapping.js';
import { SeededRandom } from './prng.js';

/** Number of z samples averaged (the NVlabs projector uses 10,000 for its W statistics too). */
export const wAvgSampleCount = 10_000;
/** Seed of the z samples. */
export const wAvgSeed = 123;
/** Samples per ONNX Runtime call. */
const chunkSize = 1000;

/**
 * Returns the mean of the mapping output w over `wAvgSampleCount` z drawn from N(0, I).
 *
 * NOTE: the z come from our own seeded Gaussian (prng.ts), not numpy's RandomState, so the result
 * is deterministic for a given build of ONNX Runtime and CPU kernel set but is not bit-identical to
 * an estimate made with the reference tools. Conditional models average over labels that cycle
 * through the one-hot classes; a trained model's w_avg follows the training label distribution.
 */
export async function estimateWAvg(weights: GeneratorWeights, sampleCount = wAvgSampleCount): Promise<Float32Array> {
  const { arch } = weights;
  const session = await ort.InferenceSession.create(buildMappingGraph(weights), { intraOpNumThreads: 2 });
  try {
    const random = new SeededRandom(wAvgSeed);
    const sum = new Float64Array(arch.wDim);
    for (let start = 0; start < sampleCount; start += chunkSize) {
      const n = Math.min(chunkSize, sampleCount - start);
      const feeds: Record<string, ort.Tensor> = {
        [mappingIo.z]: new ort.Tensor('float32', random.gaussians(n * arch.zDim), [n, arch.zDim]),
        // psi 1 leaves every row untruncated, so the placeholder w_avg inside the graph is unused.
        [mappingIo.psi]: new ort.Tensor('float32', new Float32Array(n).fill(1), [n]),
        [mappingIo.truncationCutoff]: new ort.Tensor('int64', new BigInt64Array(n), [n]),
      };
      if (arch.cDim > 0) {
        const labels = new Float32Array(n * arch.cDim);
        for (let i = 0; i < n; i++) labels[i * arch.cDim + ((start + i) % arch.cDim)] = 1;
        feeds[mappingIo.c] = new ort.Tensor('float32', labels, [n, arch.cDim]);
      }
      const ws = (await session.run(feeds))[mappingIo.ws].data as Float32Array; // [n, numWs, wDim]
      const rowLength = arch.numWs * arch.wDim;
      for (let i = 0; i < n; i++) {
        for (let j = 0; j < arch.wDim; j++) sum[j] += ws[i * rowLength + j];
      }
    }
    return Float32Array.from(sum, (value) => value / sampleCount);
  } finally {
    await session.release();
  }
}
