/**
 * The fp16 synthesis graph against the fp32 one on the CPU EP, run as is and with emulated fp16
 * rounding (fp16-emulation.ts): max abs and RMS image error, file size, float32 graph I/O and
 * float16 weight storage. Measured values go out as test diagnostics.
 */

import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';

import { fromBinary } from '@bufbuild/protobuf';
import { ModelProtoSchema, TensorProto_DataType } from 'onnx-buf';

import { Tensor } from 'onnxruntime-node';

import { readCheckpoint } from '../../src/checkpoint/index.js';
import type { GeneratorWeights } from '../../src/checkpoint/types.js';
import { roundToFloat16 } from '../../src/graph/float16.js';
import { noiseLayers } from '../../src/graph/layers.js';
import { GraphBuilder } from '../../src/graph/onnx-builder.js';
import { SeededRandom } from '../../src/graph/prng.js';
import { randomGeneratorWeights, type RandomArchitecture } from '../../src/graph/random-weights.js';
import { buildSynthesisGraph, type UpsampleConvForm } from '../../src/graph/synthesis.js';
import { createSession, maxAbs, maxAbsDiff, runSynthesis } from '../graph/graph-session.js';
import { emulateFloat16 } from './fp16-emulation.js';

/**
 * Bound on the max abs image error of fp16 against fp32 (images nominally in [-1, 1]). fp16 rounds
 * each value with a relative error up to 2^-11 ≈ 4.9e-4, and a few roundings per layer compound
 * over the layers. 1e-2 is 1.3 steps of an 8-bit image (one step is 2/255 ≈ 7.8e-3), so an error
 * under it changes a PNG pixel by at most 2 levels. The errors measured here are 0.2-2.2e-3 on the
 * CPU EP and 0.6-3.9e-3 with emulated fp16 rounding.
 */
const fp16ImageTolerance = 1e-2;
/**
 * Bound on the RMS image error. Rounding noise averages out over the pixels: a correct graph
 * measured 0.3-9.3e-4 here, while a wrong demodulation epsilon term gave 6e-3. So an RMS error
 * above 2e-3 means a systematic error rather than rounding.
 */
const fp16RmsTolerance = 2e-3;

const fixturesDir = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'fixtures');

/** paper256 scaled down: the same layout (skip, clamp 256, noise, 2 layers per block) at 64x64. */
const paper256Like: RandomArchitecture = { resolution: 64, zDim: 128, wDim: 128, mappingLayers: 2, channelBase: 4096, channelMax: 128 };
/** An orig model without noise whose clamp 0.3 fp16 cannot hold, so the clamp runs in float32. */
const origClamped: RandomArchitecture = {
  resolution: 16,
  zDim: 12,
  wDim: 12,
  mappingLayers: 2,
  channels: { 4: 12, 8: 10, 16: 6 },
  convClamp: 0.3,
  architecture: 'orig',
  useNoise: false,
};

function readF32(folder: string, file: string): Float32Array {
  const bytes = readFileSync(path.join(fixturesDir, folder, file));
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  return Float32Array.from({ length: bytes.byteLength / 4 }, (_, i) => view.getFloat32(i * 4, true));
}

function adaTiny(): GeneratorWeights {
  return readCheckpoint(readFileSync(path.join(fixturesDir, 'ada-tiny-32', 'ada-tiny-32.pkl')), { fileName: 'ada-tiny-32.pkl' });
}

function randomNoise(weights: GeneratorWeights, random: SeededRandom): Float32Array[] {
  return noiseLayers(weights.arch).map((layer) => random.gaussians(layer.resolution ** 2, 1));
}

interface ErrorStats {
  maxError: number;
  rmsError: number;
}

interface Comparison {
  /** The fp16 graph as the CPU EP runs it: fp16 weights, mostly float32 feature maps. */
  cpu: ErrorStats;
  /** The fp16 graph with every fp16 value rounded (fp16-emulation.ts), as a GPU runs it. */
  emulated: ErrorStats;
  maxImage: number;
  fp32Bytes: number;
  fp16Bytes: number;
}

function errorStats(expected: Float32Array[], actual: Float32Array[]): ErrorStats {
  let squaredSum = 0;
  let count = 0;
  expected.forEach((image, i) => {
    for (let j = 0; j < image.length; j++) squaredSum += (actual[i][j] - image[j]) ** 2;
    count += image.length;
  });
  return { maxError: Math.max(...expected.map((image, i) => maxAbsDiff(actual[i], image))), rmsError: Math.sqrt(squaredSum / count) };
}

/** Runs the fp32 graph, the fp16 graph and its emulation on the same rows and noise as one batch. */
async function compare(weights: GeneratorWeights, wsRows: Float32Array[], noise: Float32Array[], upsampleConv: UpsampleConvForm = 'two-step'): Promise<Comparison> {
  const fp32 = buildSynthesisGraph(weights, { upsampleConv });
  const fp16 = buildSynthesisGraph(weights, { upsampleConv, precision: 'fp16' });
  const expected = await runSynthesis(await createSession(fp32), weights.arch, wsRows, noise);
  const cpu = await runSynthesis(await createSession(fp16), weights.arch, wsRows, noise);
  const emulated = await runSynthesis(await createSession(emulateFloat16(fp16)), weights.arch, wsRows, noise);
  return {
    cpu: errorStats(expected, cpu),
    emulated: errorStats(expected, emulated),
    maxImage: Math.max(...expected.map(maxAbs)),
    fp32Bytes: fp32.byteLength,
    fp16Bytes: fp16.byteLength,
  };
}

function report(comparison: Comparison): string {
  const ratio = comparison.fp16Bytes / comparison.fp32Bytes;
  const stats = (label: string, { maxError, rmsError }: ErrorStats) => `${label} max abs error ${maxError.toExponential(2)}, RMS ${rmsError.toExponential(2)}`;
  return [
    stats('CPU EP', comparison.cpu),
    stats('emulated fp16', comparison.emulated),
    `image max |x| ${comparison.maxImage.toFixed(2)}`,
    `${comparison.fp16Bytes} vs ${comparison.fp32Bytes} bytes (${ratio.toFixed(3)})`,
  ].join('; ');
}

/** Asserts both error measures of both fp16 runs against the bounds. */
function assertWithinBounds(comparison: Comparison): void {
  for (const [label, stats] of [['CPU EP', comparison.cpu], ['emulated fp16', comparison.emulated]] as const) {
    assert.ok(stats.maxError > 0, `${label}: fp16 and fp32 images are identical, so the fp16 graph lost no precision at all`);
    assert.ok(stats.maxError < fp16ImageTolerance, `${label}: max abs error ${stats.maxError} >= ${fp16ImageTolerance}`);
    assert.ok(stats.rmsError < fp16RmsTolerance, `${label}: RMS error ${stats.rmsError} >= ${fp16RmsTolerance}`);
  }
}

describe('fp16 synthesis graph vs fp32', () => {
  it('ada-tiny-32 fixture, four ws from the fixtures', async (t) => {
    const weights = adaTiny();
    const wsRows = ['ws-seed0000-psi0.70.f32.bin', 'ws-seed0001-psi1.00.f32.bin', 'ws-seed0042-psi0.70.f32.bin', 'ws-seed0085-psi1.00.f32.bin'].map((file) => readF32('ada-tiny-32', file));
    const comparison = await compare(weights, wsRows, randomNoise(weights, new SeededRandom(3)));
    t.diagnostic(`ada-tiny-32: ${report(comparison)}`);

    assert.ok(comparison.maxImage > 0.5, `the fp32 image is nearly blank (max |x| ${comparison.maxImage}), so the error check would be vacuous`);
    assertWithinBounds(comparison);
    // The affine weights stay float32 and are large next to this tiny model's convolutions.
    assert.ok(comparison.fp16Bytes < 0.6 * comparison.fp32Bytes, report(comparison));
  });

  it('paper256-like 64x64 random model, batch 3', async (t) => {
    const weights = randomGeneratorWeights(paper256Like, 11);
    const random = new SeededRandom(4);
    const wsRows = Array.from({ length: 3 }, () => random.gaussians(weights.arch.numWs * weights.arch.wDim, 1));
    const comparison = await compare(weights, wsRows, randomNoise(weights, random));
    t.diagnostic(`paper256-like 64x64: ${report(comparison)}`);

    assert.ok(comparison.maxImage > 0.5, `the fp32 image is nearly blank (max |x| ${comparison.maxImage})`);
    assertWithinBounds(comparison);
    const ratio = comparison.fp16Bytes / comparison.fp32Bytes;
    assert.ok(ratio > 0.45, `fp16 file is ${ratio.toFixed(3)} of the fp32 file, expected about half`);
    assert.ok(ratio < 0.55, `fp16 file is ${ratio.toFixed(3)} of the fp32 file, expected about half`);
  });

  for (const upsampleConv of ['folded', 'subpixel', 'subpixel-folded'] as const) {
    it(`ada-clamp-32 fixture, ${upsampleConv} up-sampling`, async (t) => {
      const weights = readCheckpoint(readFileSync(path.join(fixturesDir, 'ada-clamp-32', 'ada-clamp-32.pkl')), { fileName: 'ada-clamp-32.pkl' });
      const wsRows = [readF32('ada-clamp-32', 'ws-seed0000-psi1.00.f32.bin'), readF32('ada-clamp-32', 'ws-seed0001-psi1.50.f32.bin')];
      const comparison = await compare(weights, wsRows, randomNoise(weights, new SeededRandom(5)), upsampleConv);
      t.diagnostic(`ada-clamp-32 ${upsampleConv}: ${report(comparison)}`);
      assertWithinBounds(comparison);
    });
  }

  it('large weights and styles stay finite', async (t) => {
    // Demodulation cancels any scale of a conv layer's weight or styles, so the fp32 image stays
    // the same, while an unnormalised fp16 convolution of these values would overflow 65504.
    const weights = adaTiny();
    const tensors = new Map(weights.tensors);
    for (const [name, tensor] of weights.tensors) {
      const scale = /\.conv[01]\.weight$/.test(name) ? 1e5 : /\.conv[01]\.affine\.(weight|bias)$/.test(name) ? 1e2 : 1;
      if (scale !== 1) tensors.set(name, { ...tensor, data: tensor.data.map((value) => value * scale) });
    }
    const scaled: GeneratorWeights = { ...weights, tensors };
    const wsRows = [readF32('ada-tiny-32', 'ws-seed0000-psi0.70.f32.bin'), readF32('ada-tiny-32', 'ws-seed0001-psi1.00.f32.bin')];
    const comparison = await compare(scaled, wsRows, randomNoise(weights, new SeededRandom(7)));
    t.diagnostic(`ada-tiny-32, conv weights x1e5, styles x100: ${report(comparison)}`);

    assertWithinBounds(comparison);
  });

  it('orig model with a float32 clamp', async (t) => {
    const weights = randomGeneratorWeights(origClamped, 31);
    const random = new SeededRandom(6);
    const wsRows = Array.from({ length: 2 }, () => random.gaussians(weights.arch.numWs * weights.arch.wDim, 1));
    const comparison = await compare(weights, wsRows, randomNoise(weights, random));
    t.diagnostic(`orig, clamp 0.3: ${report(comparison)}`);
    assertWithinBounds(comparison);

    const graph = fromBinary(ModelProtoSchema, buildSynthesisGraph(weights, { precision: 'fp16' })).graph!;
    const clips = graph.node.filter((node) => node.opType === 'Clip');
    const castsAroundClips = clips.filter((clip) => graph.node.some((node) => node.opType === 'Cast' && node.output[0] === clip.input[0]));
    assert.equal(clips.length, 6, 'one Clip per conv layer (5) and one for ToRGB');
    assert.equal(castsAroundClips.length, 5, 'every feature-map Clip gets a float32 input, because fp16 cannot hold 0.3');
  });

  it('emulation rounds like fp16', async () => {
    const g = new GraphBuilder('cast_pair');
    const x = g.input('x', 'float', [64]);
    const rounded = g.node('Cast', [g.node('Cast', [x], { to: TensorProto_DataType.FLOAT16 })], { to: TensorProto_DataType.FLOAT }, { output: 'y' });
    g.output(rounded, 'float', [64]);
    const values = new SeededRandom(8).gaussians(64, 100);
    const session = await createSession(emulateFloat16(g.toBytes()));
    const { y } = await session.run({ x: new Tensor('float32', values, [64]) });
    assert.deepEqual(Array.from(y.data as Float32Array), Array.from(roundToFloat16(values)));
  });

  it('graph keeps float32 I/O and stores float16 weights', () => {
    const weights = adaTiny();
    const graph = fromBinary(ModelProtoSchema, buildSynthesisGraph(weights, { precision: 'fp16' })).graph!;
    const elementType = (value: (typeof graph.input)[number]) => (value.type?.value.case === 'tensorType' ? value.type.value.value.elemType : undefined);
    for (const value of [...graph.input, ...graph.output]) assert.equal(elementType(value), TensorProto_DataType.FLOAT, `${value.name} is not float32`);

    const typeOf = new Map(graph.initializer.map((tensor) => [tensor.name, tensor.dataType]));
    const convWeights = [...typeOf.keys()].filter((name) => /\.(conv[01]|torgb)\.weight(_t)?$/.test(name));
    assert.ok(convWeights.length >= 10, `found only ${convWeights.length} convolution weights`);
    for (const name of convWeights) assert.equal(typeOf.get(name), TensorProto_DataType.FLOAT16, `${name} is not float16`);
    for (const name of [...typeOf.keys()].filter((name) => name.includes('.affine.'))) {
      assert.equal(typeOf.get(name), TensorProto_DataType.FLOAT, `${name} (style computation) is not float32`);
    }
  });
});
