/**
 * The gradient graph synthesis_grad.onnx against central finite differences on random directions,
 * for ws and for noise inputs, and its forward image against synthesis.onnx. Models: ada-tiny-32
 * (no clamp) and ada-clamp-32 (clamp 0.5, so the Clip masks are exercised).
 *
 * The finite differences use a float64 TypeScript implementation of the documented loss, applied
 * to the graph's `img` output. The graph's own float32 loss sums thousands of terms, and its
 * round-off (about 1e-6) would swamp a difference quotient. The float64 loss is also an
 * independent check of the graph's loss value. LeakyRelu and Clip make the loss piecewise smooth,
 * so the steps are small (see below).
 */

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import * as ort from 'onnxruntime-node';

import type { GeneratorWeights } from '../../src/checkpoint/types.js';
import { buildSynthesisGradientGraph, gradientIo, noiseGradientName } from '../../src/graph/gradient.js';
import { noiseLayers } from '../../src/graph/layers.js';
import { SeededRandom } from '../../src/graph/prng.js';
import { buildSynthesisGraph } from '../../src/graph/synthesis.js';
import { constNoise, dot, evaluate, loadWeights, norm, type Point } from './gradient-helpers.js';
import { createSession, maxAbsDiff, runSynthesis } from '../graph/graph-session.js';

/** Allowed relative error between the analytic and the finite-difference directional derivative. */
const relativeTolerance = 1e-2;
/**
 * Finite-difference steps relative to the norm of the perturbed input: small enough that few units
 * cross a LeakyRelu or Clip kink, large enough that the quotient stays above the float32
 * round-off of the image (both checked by scanning steps from 3 down to 1e-3 on these models).
 */
const wsRelativeStep = 1e-4;
const noiseRelativeStep = 3e-4;

/** K×K box average with stride K of `[3, size, size]`. */
function boxDown(x: ArrayLike<number>, size: number, k: number): Float64Array {
  const s = size / k;
  const out = new Float64Array(3 * s * s);
  for (let c = 0; c < 3; c++) {
    for (let y = 0; y < s; y++) {
      for (let x0 = 0; x0 < s; x0++) {
        let total = 0;
        for (let a = 0; a < k; a++) for (let b = 0; b < k; b++) total += x[(c * size + y * k + a) * size + x0 * k + b];
        out[(c * s + y) * s + x0] = total / (k * k);
      }
    }
  }
  return out;
}

function meanSquaredError(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let total = 0;
  for (let i = 0; i < a.length; i++) total += (a[i] - b[i]) ** 2;
  return total / a.length;
}

/** Mean SSIM of `[3, R, R]` images in [-1, 1]: 11-tap Gaussian (σ 1.5), valid window, data range 1 after mapping to [0, 1]. */
function meanSsim(a: ArrayLike<number>, b: ArrayLike<number>, size: number): number {
  const taps = Math.min(11, size - 1);
  const weights1d = Array.from({ length: taps }, (_, i) => Math.exp(-((i - (taps - 1) / 2) ** 2) / (2 * 1.5 ** 2)));
  const total = weights1d.reduce((sum, w) => sum + w, 0);
  const outSize = size - taps + 1;
  let sum = 0;
  for (let c = 0; c < 3; c++) {
    for (let y = 0; y < outSize; y++) {
      for (let x = 0; x < outSize; x++) {
        let mx = 0, my = 0, exx = 0, eyy = 0, exy = 0;
        for (let i = 0; i < taps; i++) {
          for (let j = 0; j < taps; j++) {
            const w = (weights1d[i] * weights1d[j]) / total ** 2;
            const p = (a[(c * size + y + i) * size + x + j] + 1) / 2;
            const q = (b[(c * size + y + i) * size + x + j] + 1) / 2;
            mx += w * p;
            my += w * q;
            exx += w * p * p;
            eyy += w * q * q;
            exy += w * p * q;
          }
        }
        const c1 = 1e-4;
        const c2 = 9e-4;
        sum += ((2 * mx * my + c1) * (2 * (exy - mx * my) + c2)) / ((mx * mx + my * my + c1) * (exx - mx * mx + eyy - my * my + c2));
      }
    }
  }
  return sum / (3 * outSize * outSize);
}

/** The documented projection loss in float64. */
function referenceLoss(img: ArrayLike<number>, target: ArrayLike<number>, size: number, lossWeights: number[]): number {
  return (
    lossWeights[0] * meanSquaredError(img, target) +
    lossWeights[1] * meanSquaredError(boxDown(img, size, 2), boxDown(target, size, 2)) +
    lossWeights[2] * meanSquaredError(boxDown(img, size, 4), boxDown(target, size, 4)) +
    lossWeights[3] * (1 - meanSsim(img, target, size))
  );
}

/** Central difference of the float64 reference loss of the graph's image, moving the input by ±h along a unit direction. */
async function directionalDifference(
  session: ort.InferenceSession,
  weights: GeneratorWeights,
  point: Point,
  target: Float32Array,
  lossWeights: number[],
  move: (p: Point, scale: number) => Point,
  h: number,
): Promise<number> {
  const size = weights.arch.resolution;
  const plus = (await evaluate(session, weights, move(point, h), target, lossWeights))[gradientIo.img].data as Float32Array;
  const minus = (await evaluate(session, weights, move(point, -h), target, lossWeights))[gradientIo.img].data as Float32Array;
  return (referenceLoss(plus, target, size, lossWeights) - referenceLoss(minus, target, size, lossWeights)) / (2 * h);
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
  // The target is the image of a nearby latent, as in a projection that is under way.
  const targetPoint: Point = { ...start, ws: Float32Array.from(start.ws, (v) => v + 0.3 * random.gaussians(1)[0]) };
  const target = ((await evaluate(session, weights, targetPoint, new Float32Array(arch.imgChannels * arch.resolution ** 2), lossWeights))[gradientIo.img].data as Float32Array).slice();
  const out = await evaluate(session, weights, start, target, lossWeights);
  const graphLoss = (out[gradientIo.loss].data as Float32Array)[0];
  const expectedLoss = referenceLoss(out[gradientIo.img].data as Float32Array, target, arch.resolution, lossWeights);
  const gradWs = out[gradientIo.gradWs].data as Float32Array;
  const groups: DirectionGroup[] = [];

  const wsGroup: DirectionGroup = { what: 'ws', analytic: [], numeric: [] };
  for (let trial = 0; trial < directionsPerInput; trial++) {
    const direction = unitVector(random.gaussians(wsSize));
    const move = (p: Point, scale: number): Point => ({ ...p, ws: Float32Array.from(p.ws, (v, i) => v + scale * direction[i]) });
    wsGroup.numeric.push(await directionalDifference(session, weights, start, target, lossWeights, move, wsRelativeStep * norm(start.ws)));
    wsGroup.analytic.push(dot(gradWs, direction));
  }
  groups.push(wsGroup);

  const layers = noiseLayers(arch);
  for (const layerIndex of [layers.length - 1, Math.floor(layers.length / 2)]) {
    const layer = layers[layerIndex];
    const gradNoise = out[noiseGradientName(layer.name)].data as Float32Array;
    const group: DirectionGroup = { what: `${layer.name} (${layer.layer})`, analytic: [], numeric: [] };
    for (let trial = 0; trial < directionsPerInput; trial++) {
      const direction = unitVector(random.gaussians(layer.resolution ** 2));
      const move = (p: Point, scale: number): Point => ({
        ...p,
        noise: p.noise.map((map, i) => (i === layerIndex ? Float32Array.from(map, (v, j) => v + scale * direction[j]) : map)),
      });
      group.numeric.push(await directionalDifference(session, weights, start, target, lossWeights, move, noiseRelativeStep * norm(start.noise[layerIndex])));
      group.analytic.push(dot(gradNoise, direction));
    }
    groups.push(group);
  }
  await session.release();
  return { groups, graphLoss, expectedLoss };
}

/** Analytic and finite-difference directional derivatives of one input along several random directions. */
interface DirectionGroup {
  what: string;
  analytic: number[];
  numeric: number[];
}

/** Random directions per checked input. */
const directionsPerInput = 4;

function unitVector(values: Float32Array): Float32Array {
  const length = norm(values);
  return values.map((v) => v / length);
}

/** `‖analytic − numeric‖ / ‖numeric‖` over the directions of a group. */
function groupRelativeError(group: DirectionGroup): number {
  let error = 0;
  let scale = 0;
  group.numeric.forEach((numeric, i) => {
    error += (group.analytic[i] - numeric) ** 2;
    scale += numeric ** 2;
  });
  return Math.sqrt(error / scale);
}

describe('synthesis gradient graph', () => {
  for (const [fixture, lossWeights] of [
    ['ada-tiny-32', [1, 1, 1, 1]],
    ['ada-tiny-32', [0, 0, 0, 1]],
    ['ada-clamp-32', [1, 1, 1, 1]],
  ] as const) {
    it(`matches finite differences on ${fixture}, loss weights ${lossWeights.join(',')}`, async () => {
      const { groups, graphLoss, expectedLoss } = await checkModel(fixture, [...lossWeights]);
      assert.ok(Math.abs(graphLoss - expectedLoss) <= 1e-5 * Math.max(1, expectedLoss), `graph loss ${graphLoss} vs float64 reference ${expectedLoss}`);
      for (const group of groups) {
        const relative = groupRelativeError(group);
        const shown = group.numeric.map((numeric, i) => `${group.analytic[i].toExponential(4)}/${numeric.toExponential(4)}`).join(', ');
        assert.ok(group.numeric.some((numeric) => Math.abs(numeric) > 1e-6), `${group.what}: every finite difference is below 1e-6, too small to compare (${shown})`);
        assert.ok(relative < relativeTolerance, `${group.what}: relative error ${relative.toExponential(2)}; analytic/finite difference per direction: ${shown}`);
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
