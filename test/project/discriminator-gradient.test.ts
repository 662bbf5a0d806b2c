/**
 * The discriminator-feature gradient graph synthesis_grad_d.onnx on ada-tiny-32 (a 'resnet'
 * discriminator with conv_clamp 256): its loss against a float64 TypeScript reference of the D
 * feature path (discriminator-reference.ts), and its ws gradient against central finite
 * differences of that reference loss on the graph's image, as in gradient-graph.test.ts.
 *
 * NOTE: the noise gradients are not checked here. They leave the same dloss/dimg through the
 * synthesis backward that gradient-graph.test.ts checks, and their finite differences on this model
 * (derivatives near 1e-5) sit at about 1e-2 relative error from the float32 image round-off alone.
 */

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { gradientIo } from '../../src/graph/gradient.js';
import { buildDiscriminatorGradientGraph } from '../../src/graph/gradient-discriminator.js';
import { SeededRandom } from '../../src/graph/prng.js';
import { constNoise, dot, evaluate, loadWeights, norm, type Point } from './gradient-helpers.js';
import { createSession } from '../graph/graph-session.js';
import { discriminatorLoss } from './discriminator-reference.js';

const relativeTolerance = 1e-2;
/** Finite-difference step relative to the norm of ws (as in gradient-graph.test.ts). */
const wsRelativeStep = 1e-4;
const directionsPerInput = 4;

const unitVector = (values: Float32Array) => values.map((v) => v / norm(values));

/** `‖analytic − numeric‖ / ‖numeric‖` over the directions. */
function relativeError(analytic: number[], numeric: number[]): number {
  let error = 0;
  let scale = 0;
  numeric.forEach((value, i) => {
    error += (analytic[i] - value) ** 2;
    scale += value ** 2;
  });
  return Math.sqrt(error / scale);
}

describe('discriminator-feature gradient graph', () => {
  const weights = loadWeights('ada-tiny-32');
  const { arch } = weights;
  const d = weights.discriminator!;

  it('reads the discriminator blocks of ada-tiny-32', () => {
    assert.ok(d !== undefined, 'ada-tiny-32.pkl carries D, but no discriminator was read');
    assert.deepEqual(d.arch, { resolution: 32, imgChannels: 3, tmpChannels: { 32: 32, 16: 64, 8: 64 }, outChannels: { 32: 64, 16: 64, 8: 64 }, convClamp: 256, architecture: 'resnet' });
    assert.deepEqual(d.tensors.get('b32.fromrgb.weight')?.shape, [32, 3, 1, 1]);
    assert.deepEqual(d.tensors.get('b16.skip.weight')?.shape, [64, 64, 1, 1]);
    assert.equal([...d.tensors.keys()].some((name) => name.startsWith('b4.')), false, 'the epilogue is not read');
  });

  for (const lossWeights of [[0, 0, 0, 0], [0.1, 0, 0, 0]]) {
    it(`matches the float64 reference and finite differences, pixel weight ${lossWeights[0]}`, async (t) => {
      const session = await createSession(buildDiscriminatorGradientGraph(weights));
      const random = new SeededRandom(7);
      const wsSize = arch.numWs * arch.wDim;
      const start: Point = { ws: Float32Array.from(random.gaussians(wsSize), (v) => v * 0.5), noise: constNoise(weights) };
      const targetPoint: Point = { ...start, ws: Float32Array.from(start.ws, (v) => v + 0.3 * random.gaussians(1)[0]) };
      const blank = new Float32Array(arch.imgChannels * arch.resolution ** 2);
      const target = ((await evaluate(session, weights, targetPoint, blank, lossWeights))[gradientIo.img].data as Float32Array).slice();
      const out = await evaluate(session, weights, start, target, lossWeights);
      const graphLoss = (out[gradientIo.loss].data as Float32Array)[0];
      const expectedLoss = discriminatorLoss(d, out[gradientIo.img].data as Float32Array, target, lossWeights[0]);
      assert.ok(expectedLoss > 1e-3, `the reference loss ${expectedLoss} is too small for a meaningful check`);
      assert.ok(Math.abs(graphLoss - expectedLoss) <= 1e-4 * Math.max(1, expectedLoss), `graph loss ${graphLoss} vs float64 reference ${expectedLoss}`);

      const lossAt = async (point: Point) => discriminatorLoss(d, (await evaluate(session, weights, point, target, lossWeights))[gradientIo.img].data as Float32Array, target, lossWeights[0]);
      const check = async (what: string, gradient: Float32Array, size: number, h: number, move: (direction: Float32Array, scale: number) => Point) => {
        const analytic: number[] = [];
        const numeric: number[] = [];
        for (let trial = 0; trial < directionsPerInput; trial++) {
          const direction = unitVector(random.gaussians(size));
          numeric.push(((await lossAt(move(direction, h))) - (await lossAt(move(direction, -h)))) / (2 * h));
          analytic.push(dot(gradient, direction));
        }
        const relative = relativeError(analytic, numeric);
        const shown = numeric.map((value, i) => `${analytic[i].toExponential(4)}/${value.toExponential(4)}`).join(', ');
        assert.ok(numeric.some((value) => Math.abs(value) > 1e-6), `${what}: every finite difference is below 1e-6 (${shown})`);
        assert.ok(relative < relativeTolerance, `${what}: relative error ${relative.toExponential(2)}; analytic/finite difference: ${shown}`);
        t.diagnostic(`${what}: relative error ${relative.toExponential(2)}, loss ${graphLoss.toFixed(5)}`);
      };

      await check('ws', out[gradientIo.gradWs].data as Float32Array, wsSize, wsRelativeStep * norm(start.ws), (direction, scale) => ({
        ...start,
        ws: Float32Array.from(start.ws, (v, i) => v + scale * direction[i]),
      }));
      await session.release();
    });
  }
});
