/**
 * The gradient graph synthesis_grad.onnx against central finite differences of its own loss, on
 * random directions, for ws and for noise inputs, and its forward image against synthesis.onnx.
 * The models: ada-tiny-32 (no clamp) and ada-clamp-32 (clamp 0.5, so the Clip masks are exercised).
 */

import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';

import * as ort from 'onnxruntime-node';

import { readCheckpoint } from '../../src/checkpoint/index.js';
import type { GeneratorWeights } from '../../src/checkpoint/types.js';
import { noiseConstBytes } from '../../src/graph/convert.js';
import { buildSynthesisGradientGraph, gradientIo, noiseGradientName } from '../../src/graph/gradient.js';
import { noiseLayers } from '../../src/graph/layers.js';
import { SeededRandom } from '../../src/graph/prng.js';
import { buildSynthesisGraph } from '../../src/graph/synthesis.js';
import { createSession, maxAbsDiff, runSynthesis } from '../graph/graph-session.js';

const fixturesDir = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'fixtures');
/** Allowed relative error between the analytic and the finite-difference directional derivative. */
const relativeTolerance = 1e-2;

function loadWeights(fixture: string): GeneratorWeights {
  return readCheckpoint(readFileSync(path.join(fixturesDir, fixture, `${fixture}.pkl`)));
}

function constNoise(weights: GeneratorWeights): Float32Array[] {
  const bytes = noiseConstBytes(weights);
  const all = new Float32Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength));
  return noiseLayers(weights.arch).map((layer) => all.slice(layer.offset, layer.offset + layer.resolution * layer.resolution));
}

interface Point {
  ws: Float32Array; // [1, numWs, wDim]
  noise: Float32Array[]; // each [1, 1, R, R]
}

async function evaluate(session: ort.InferenceSession, weights: GeneratorWeights, point: Point, target: Float32Array, lossWeights: number[]) {
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

function dot(a: Float32Array, b: Float32Array): number {
  let sum = 0;
  for (let i = 0; i < a.length; i++) sum += a[i] * b[i];
  return sum;
}

function norm(a: Float32Array): number {
  return Math.sqrt(dot(a, a));
}

/** Central difference of the loss along `direction` (unit length) with step `h`, in float64 around the float32 losses. */
async function directionalDifference(
  session: ort.InferenceSession,
  weights: GeneratorWeights,
  point: Point,
  target: Float32Array,
  lossWeights: number[],
  move: (p: Point, scale: number) => Point,
  h: number,
): Promise<number> {
  const plus = (await evaluate(session, weights, move(point, h), target, lossWeights))[gradientIo.loss].data as Float32Array;
  const minus = (await evaluate(session, weights, move(point, -h), target, lossWeights))[gradientIo.loss].data as Float32Array;
  return (plus[0] - minus[0]) / (2 * h);
}

async function checkModel(fixture: string, lossWeights: number[]) {
  const weights = loadWeights(fixture);
  const { arch } = weights;
  const session = await createSession(buildSynthesisGradientGraph(weights));
  const random = new SeededRandom(7);
  const wsSize = arch.numWs * arch.wDim;
  const start: Point = {
    ws: Float32Array.from(random.gaussians(wsSize), (v) => v * 0.5),
    noise: constNoise(weights),
  };
  const target = Float32Array.from(random.gaussians(arch.imgChannels * arch.resolution ** 2), (v) => Math.tanh(v));
  const out = await evaluate(session, weights, start, target, lossWeights);
  const gradWs = out[gradientIo.gradWs].data as Float32Array;
  const results: { what: string; analytic: number; numeric: number; relative: number }[] = [];

  for (let trial = 0; trial < 3; trial++) {
    const direction = random.gaussians(wsSize);
    const length = norm(direction);
    for (let i = 0; i < wsSize; i++) direction[i] /= length;
    const h = 1e-2 * norm(start.ws) / Math.sqrt(arch.numWs);
    const move = (p: Point, scale: number): Point => ({ ...p, ws: Float32Array.from(p.ws, (v, i) => v + scale * direction[i]) });
    const numeric = await directionalDifference(session, weights, start, target, lossWeights, move, h);
    const analytic = dot(gradWs, direction);
    results.push({ what: `ws direction ${trial}`, analytic, numeric, relative: Math.abs(analytic - numeric) / Math.max(Math.abs(numeric), 1e-12) });
  }

  const layers = noiseLayers(arch);
  for (const layerIndex of [layers.length - 1, Math.floor(layers.length / 2)]) {
    const layer = layers[layerIndex];
    const gradNoise = out[noiseGradientName(layer.name)].data as Float32Array;
    const direction = random.gaussians(layer.resolution ** 2);
    const length = norm(direction);
    for (let i = 0; i < direction.length; i++) direction[i] /= length;
    const h = 1e-2 * norm(start.noise[layerIndex]);
    const move = (p: Point, scale: number): Point => ({
      ...p,
      noise: p.noise.map((map, i) => (i === layerIndex ? Float32Array.from(map, (v, j) => v + scale * direction[j]) : map)),
    });
    const numeric = await directionalDifference(session, weights, start, target, lossWeights, move, h);
    const analytic = dot(gradNoise, direction);
    results.push({ what: `${layer.name} (${layer.layer})`, analytic, numeric, relative: Math.abs(analytic - numeric) / Math.max(Math.abs(numeric), 1e-12) });
  }
  await session.release();
  return results;
}

describe('synthesis gradient graph', () => {
  for (const [fixture, lossWeights] of [
    ['ada-tiny-32', [1, 1, 1, 1]],
    ['ada-tiny-32', [0, 0, 0, 1]],
    ['ada-clamp-32', [1, 1, 1, 1]],
  ] as const) {
    it(`matches finite differences on ${fixture}, loss weights ${lossWeights.join(',')}`, async () => {
      const results = await checkModel(fixture, [...lossWeights]);
      for (const result of results) {
        assert.ok(Math.abs(result.numeric) > 1e-6, `${result.what}: the finite difference ${result.numeric} is too small to compare`);
        assert.ok(
          result.relative < relativeTolerance,
          `${result.what}: analytic ${result.analytic.toExponential(4)} vs finite difference ${result.numeric.toExponential(4)}, relative error ${result.relative.toExponential(2)}`,
        );
      }
    });
  }

  it('forward image equals synthesis.onnx', async () => {
    const weights = loadWeights('ada-tiny-32');
    const { arch } = weights;
    const gradientSession = await createSession(buildSynthesisGradientGraph(weights));
    const synthesisSession = await createSession(buildSynthesisGraph(weights));
    const random = new SeededRandom(11);
    const point: Point = { ws: random.gaussians(arch.numWs * arch.wDim), noise: constNoise(weights) };
    const target = new Float32Array(arch.imgChannels * arch.resolution ** 2);
    const out = await evaluate(gradientSession, weights, point, target, [1, 1, 1, 1]);
    const [expected] = await runSynthesis(synthesisSession, arch, [point.ws], point.noise);
    assert.ok(maxAbsDiff(out[gradientIo.img].data as Float32Array, expected) < 1e-5);
    await gradientSession.release();
    await synthesisSession.release();
  });
});
