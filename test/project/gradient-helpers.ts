/** Shared set-up of the gradient-graph tests: fixture weights, stored noise, and one graph evaluation. */

import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import * as ort from 'onnxruntime-node';

import { readCheckpoint } from '../../src/checkpoint/index.js';
import type { GeneratorWeights } from '../../src/checkpoint/types.js';
import { noiseConstBytes } from '../../src/graph/convert.js';
import { gradientIo } from '../../src/graph/gradient.js';
import { noiseLayers } from '../../src/graph/layers.js';

const fixturesDir = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'fixtures');

/** A point in the gradient graph's input space. */
export interface Point {
  ws: Float32Array; // [1, numWs, wDim]
  noise: Float32Array[]; // each [1, 1, R, R]
}

/** Reads `test/fixtures/<fixture>/<fixture>.pkl`. */
export function loadWeights(fixture: string): GeneratorWeights {
  return readCheckpoint(readFileSync(path.join(fixturesDir, fixture, `${fixture}.pkl`)));
}

/** Returns the model's stored noise maps, one `[R·R]` array per noise layer. */
export function constNoise(weights: GeneratorWeights): Float32Array[] {
  const bytes = noiseConstBytes(weights);
  const all = new Float32Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength));
  return noiseLayers(weights.arch).map((layer) => all.slice(layer.offset, layer.offset + layer.resolution * layer.resolution));
}

/** Runs a gradient graph at `point` against `target` (batch 1). */
export async function evaluate(session: ort.InferenceSession, weights: GeneratorWeights, point: Point, target: Float32Array, lossWeights: number[]) {
  const { arch } = weights;
  const feeds: Record<string, ort.Tensor> = {
    [gradientIo.ws]: new ort.Tensor('float32', point.ws, [1, arch.numWs, arch.wDim]),
    [gradientIo.target]: new ort.Tensor('float32', target, [1, arch.imgChannels, arch.resolution, arch.resolution]),
    [gradientIo.lossWeights]: new ort.Tensor('float32', Float32Array.from(lossWeights), [4]),
  };
  noiseLayers(arch).forEach((layer, i) => {
    feeds[layer.name] = new ort.Tensor('float32', point.noise[i], [1, 1, layer.resolution, layer.resolution]);
  });
  return session.run(feeds);
}

export function dot(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let sum = 0;
  for (let i = 0; i < a.length; i++) sum += a[i] * b[i];
  return sum;
}

export function norm(a: ArrayLike<number>): number {
  return Math.sqrt(dot(a, a));
}
