/**
 * The synthesis network ws -> img as an ONNX graph, in the non-fused modulated-convolution form
 * (ONNX `Conv` has a static `group`, so the per-sample fused form would fix the batch size):
 *
 *   x·s  ->  Conv / ConvTranspose with the shared weight  ->  ·d  ->  +noise·strength  ->  +bias
 *        ->  LeakyRelu(0.2)·√2  ->  Clip(±convClamp)
 *
 * with styles `s = affine(w)` and demodulation `d[n, o] = 1 / sqrt(Σ_i s[n, i]² · Q[o, i] + 1e-8)`.
 *
 * Graph I/O (see model-manifest.ts): inputs `ws [N, numWs, wDim]` and `noise_<i> [N or 1, 1, R, R]`,
 * output `img [N, imgChannels, R, R]`.
 */

import type { GeneratorArchitecture, GeneratorWeights } from '../checkpoint/types.js';
import {
  foldUpsampleConvKernel,
  scaled,
  squaredWeightSums,
  subpixelFoldedKernel,
  subpixelUpsampleConvKernel,
  swapOuterAxes,
  transposeScaled,
  upsampleFilter2d,
} from './fir.js';
import { noiseLayers, scalarOf, synthesisBlocks, tensorOf, type SynthesisBlockSpec, type SynthesisLayerSpec, type ToRgbSpec } from './layers.js';
import { leakyReluGain, leakyReluSlope } from './mapping.js';
import { float, GraphBuilder } from './onnx-builder.js';

/** Epsilon inside the demodulation square root. */
export const demodulationEpsilon = 1e-8;

/** Graph input and output names of the synthesis graph (noise inputs are named by `noiseLayers`). */
export const synthesisIo = { ws: 'ws', img: 'img' } as const;

/** Symbolic batch size of the noise inputs, separate from `N` because a batch of 1 broadcasts. */
const noiseBatchDim = 'noise_batch';

/** Form of the up-sampling conv0 layers in the graph (see `upsampleConv`). */
export type UpsampleConvForm = 'two-step' | 'folded' | 'subpixel' | 'subpixel-folded';

export interface SynthesisGraphOptions {
  /** Default 'two-step'. */
  upsampleConv?: UpsampleConvForm;
}

/** Builds the synthesis graph and returns the encoded ONNX model. */
export function buildSynthesisGraph(weights: GeneratorWeights, options: SynthesisGraphOptions = {}): Uint8Array {
  const form = options.upsampleConv ?? 'two-step';
  const { arch } = weights;
  if (arch.architecture === 'resnet') {
    throw new Error("synthesis architecture 'resnet' is not supported yet; only 'skip' and 'orig' generators can be converted");
  }
  const blocks = synthesisBlocks(arch);
  const g = new GraphBuilder('synthesis');

  const ws = g.input(synthesisIo.ws, 'float', ['N', arch.numWs, arch.wDim]); // [N, numWs, wDim]
  const noiseInputs = new Map<string, string>();
  for (const noise of noiseLayers(arch)) {
    noiseInputs.set(noise.layer, g.input(noise.name, 'float', [noiseBatchDim, 1, noise.resolution, noise.resolution])); // [B, 1, R, R]
  }

  let x: string | null = null;
  let img: string | null = null;
  for (const block of blocks) {
    ({ x, img } = synthesisBlock(g, weights, block, ws, x, img, noiseInputs, form));
  }
  if (img === null) throw new Error('synthesis graph produced no image: the last block has no ToRGB layer');
  g.node('Identity', [img], {}, { output: synthesisIo.img }); // [N, imgChannels, R, R]
  g.output(synthesisIo.img, 'float', ['N', arch.imgChannels, arch.resolution, arch.resolution]);
  return g.toBytes({ docString: 'StyleGAN2 synthesis network ws -> img (stylegan-serve)' });
}

/** Builds one resolution block: (conv0,) conv1, and ToRGB added onto the up-sampled image (skip). */
function synthesisBlock(
  g: GraphBuilder,
  weights: GeneratorWeights,
  block: SynthesisBlockSpec,
  ws: string,
  x: string | null,
  img: string | null,
  noiseInputs: Map<string, string>,
  form: UpsampleConvForm,
): { x: string; img: string | null } {
  const { arch } = weights;
  if (x === null) {
    const constant = tensorOf(weights, `synthesis.b${block.resolution}.const`, [block.outChannels, 4, 4]);
    x = g.initializer(`synthesis.b${block.resolution}.const`, constant.data, [1, block.outChannels, 4, 4]); // [1, C, 4, 4]
  }
  for (const layer of block.convs) {
    x = synthesisLayer(g, weights, layer, ws, x, noiseInputs.get(layer.layer), form); // [N, C_out, R, R]
  }
  if (block.torgb === null) return { x, img };

  const rgb = toRgbLayer(g, weights, block.torgb, ws, x); // [N, imgChannels, R, R]
  if (img === null) return { x, img: rgb };
  const upsampled = upsampleImage(g, img, arch.imgChannels, `synthesis.b${block.resolution}.img_up`); // [N, imgChannels, R, R]
  return { x, img: g.node('Add', [upsampled, rgb], {}, { name: `synthesis.b${block.resolution}.img` }) }; // [N, imgChannels, R, R]
}

/** Styles `s = w · (A / sqrt(wDim))ᵀ + a_b` of one layer, from row `wsIndex` of ws. */
function affineStyles(g: GraphBuilder, weights: GeneratorWeights, prefix: string, ws: string, wsIndex: number, inChannels: number): string {
  const { wDim } = weights.arch;
  const weight = tensorOf(weights, `${prefix}.affine.weight`, [inChannels, wDim]); // [C_in, wDim]
  const bias = tensorOf(weights, `${prefix}.affine.bias`, [inChannels]); // [C_in]
  const index = g.initializerInt64(`${prefix}.ws_index`, [wsIndex], []);
  const w = g.node('Gather', [ws, index], { axis: 1 }, { name: `${prefix}.w` }); // [N, wDim]
  const matrix = g.initializer(`${prefix}.affine.weight_t`, transposeScaled(weight.data, inChannels, wDim, 1 / Math.sqrt(wDim)), [wDim, inChannels]); // [wDim, C_in]
  const product = g.node('MatMul', [w, matrix], {}, { name: `${prefix}.affine.matmul` }); // [N, C_in]
  return g.node('Add', [product, g.initializer(`${prefix}.affine.bias`, bias.data, [inChannels])], {}, { name: `${prefix}.styles` }); // [N, C_in]
}

/** `[N, C] -> [N, C, 1, 1]`, for per-channel scaling of feature maps. */
function perChannel(g: GraphBuilder, values: string, name: string): string {
  return g.node('Unsqueeze', [values, g.int64s(`${name}.axes`, [2, 3])], {}, { name }); // [N, C, 1, 1]
}

/** Modulated, demodulated 3x3 convolution with noise, bias, activation and clamp. */
function synthesisLayer(
  g: GraphBuilder,
  weights: GeneratorWeights,
  layer: SynthesisLayerSpec,
  ws: string,
  x: string,
  noise: string | undefined,
  form: UpsampleConvForm,
): string {
  const { arch } = weights;
  const { prefix, inChannels, outChannels } = layer;
  const kernelSize = 3;
  const weight = tensorOf(weights, `${prefix}.weight`, [outChannels, inChannels, kernelSize, kernelSize]); // [C_out, C_in, 3, 3]
  const bias = tensorOf(weights, `${prefix}.bias`, [outChannels]); // [C_out]

  const styles = affineStyles(g, weights, prefix, ws, layer.wsIndex, inChannels); // [N, C_in]
  const modulated = g.node('Mul', [x, perChannel(g, styles, `${prefix}.styles_4d`)], {}, { name: `${prefix}.modulated` }); // [N, C_in, H, H]

  let convolved: string;
  if (layer.up === 2) {
    convolved = upsampleConv(g, modulated, weight.data, layer, form); // [N, C_out, R, R]
  } else {
    const kernel = g.initializer(`${prefix}.weight`, weight.data, [outChannels, inChannels, kernelSize, kernelSize]);
    convolved = g.node('Conv', [modulated, kernel], { pads: [1, 1, 1, 1] }, { name: `${prefix}.conv` }); // [N, C_out, R, R]
  }

  const q = g.initializer(`${prefix}.demod_q_t`, transposeScaled(squaredWeightSums(weight.data, outChannels, inChannels, kernelSize), outChannels, inChannels, 1), [inChannels, outChannels]); // [C_in, C_out]
  const stylesSquared = g.node('Mul', [styles, styles], {}, { name: `${prefix}.styles_squared` }); // [N, C_in]
  const energy = g.node('MatMul', [stylesSquared, q], {}, { name: `${prefix}.energy` }); // [N, C_out]
  const shifted = g.node('Add', [energy, g.scalar(`${prefix}.demod_epsilon`, demodulationEpsilon)], {}, { name: `${prefix}.energy_eps` }); // [N, C_out]
  const demod = g.node('Reciprocal', [g.node('Sqrt', [shifted], {}, { name: `${prefix}.norm` })], {}, { name: `${prefix}.demod` }); // [N, C_out]
  let y = g.node('Mul', [convolved, perChannel(g, demod, `${prefix}.demod_4d`)], {}, { name: `${prefix}.demodulated` }); // [N, C_out, R, R]

  if (arch.useNoise && noise !== undefined) {
    const strength = g.scalar(`${prefix}.noise_strength`, scalarOf(weights, `${prefix}.noise_strength`));
    const weightedNoise = g.node('Mul', [noise, strength], {}, { name: `${prefix}.noise` }); // [B, 1, R, R]
    y = g.node('Add', [y, weightedNoise], {}, { name: `${prefix}.noised` }); // [N, C_out, R, R]
  }
  const biased = g.node('Add', [y, g.initializer(`${prefix}.bias`, bias.data, [1, outChannels, 1, 1])], {}, { name: `${prefix}.biased` }); // [N, C_out, R, R]
  const activated = activate(g, biased, arch, prefix); // [N, C_out, R, R]
  return clamp(g, activated, arch.convClamp, prefix); // [N, C_out, R, R]
}

/**
 * 3x3 convolution with 2x up-sampling: a stride-2 transposed convolution with the unflipped weight
 * (size 2H + 1), then the FIR `f·4` with padding 1 (size 2H).
 * - 'two-step': ConvTranspose 3x3 followed by a depthwise 4x4 Conv.
 * - 'folded': one ConvTranspose with the 6x6 kernel `W * (f·4)`, stride 2, pads 2 (fir.ts).
 * Both match the reference; 'two-step' needs about 4x fewer multiply-adds and half the file size,
 * and ran 1.8x faster for paper256 at batch 1 on a 2-core CPU (ONNX Runtime 1.31, 430 vs 770 ms).
 */
function upsampleConv(g: GraphBuilder, modulated: string, weight: Float32Array, layer: SynthesisLayerSpec, form: UpsampleConvForm): string {
  const { prefix, inChannels, outChannels } = layer;
  if (form === 'folded') {
    const folded = foldUpsampleConvKernel(weight, outChannels, inChannels, 3); // [C_in, C_out, 6, 6]
    const kernel = g.initializer(`${prefix}.weight_up`, folded, [inChannels, outChannels, 6, 6]);
    return g.node('ConvTranspose', [modulated, kernel], { strides: [2, 2], pads: [2, 2, 2, 2] }, { name: `${prefix}.conv` }); // [N, C_out, 2H, 2H]
  }
  if (form === 'subpixel-folded') {
    const kernel = g.initializer(`${prefix}.weight_phases`, subpixelFoldedKernel(weight, outChannels, inChannels), [4 * outChannels, inChannels, 3, 3]);
    const phases = g.node('Conv', [modulated, kernel], { pads: [1, 1, 1, 1] }, { name: `${prefix}.conv_phases` }); // [N, 4·C_out, H, H]
    return g.node('DepthToSpace', [phases], { blocksize: 2, mode: 'DCR' }, { name: `${prefix}.conv` }); // [N, C_out, 2H, 2H]
  }
  if (form === 'subpixel') {
    const kernel = g.initializer(`${prefix}.weight_phases`, subpixelUpsampleConvKernel(weight, outChannels, inChannels), [4 * outChannels, inChannels, 2, 2]);
    const phases = g.node('Conv', [modulated, kernel], { pads: [1, 1, 1, 1] }, { name: `${prefix}.conv_phases` }); // [N, 4·C_out, H + 1, H + 1]
    const interleaved = g.node('DepthToSpace', [phases], { blocksize: 2, mode: 'DCR' }, { name: `${prefix}.conv_transpose` }); // [N, C_out, 2H + 2, 2H + 2]
    const filter = g.initializer(`${prefix}.filter`, depthwiseFilter(outChannels), [outChannels, 1, 4, 4]); // [C_out, 1, 4, 4]
    // The last row and column of `interleaved` are zero, so they stand in for the end padding.
    return g.node('Conv', [interleaved, filter], { pads: [1, 1, 0, 0], group: outChannels }, { name: `${prefix}.conv` }); // [N, C_out, 2H, 2H]
  }
  const kernel = g.initializer(`${prefix}.weight_t`, swapOuterAxes(weight, outChannels, inChannels, 9), [inChannels, outChannels, 3, 3]);
  const transposed = g.node('ConvTranspose', [modulated, kernel], { strides: [2, 2] }, { name: `${prefix}.conv_transpose` }); // [N, C_out, 2H + 1, 2H + 1]
  const filter = g.initializer(`${prefix}.filter`, depthwiseFilter(outChannels), [outChannels, 1, 4, 4]); // [C_out, 1, 4, 4]
  return g.node('Conv', [transposed, filter], { pads: [1, 1, 1, 1], group: outChannels }, { name: `${prefix}.conv` }); // [N, C_out, 2H, 2H]
}

/** Returns the up-sampling FIR `f·4` repeated per channel, `[channels, 1, 4, 4]`. */
function depthwiseFilter(channels: number): Float32Array {
  const filter = upsampleFilter2d();
  const kernel = new Float32Array(channels * 16);
  for (let c = 0; c < channels; c++) kernel.set(filter, c * 16);
  return kernel;
}

/** Activation times its default gain (lrelu and relu √2, linear 1). */
function activate(g: GraphBuilder, x: string, arch: GeneratorArchitecture, prefix: string): string {
  if (arch.activation === 'linear') return x;
  const activated =
    arch.activation === 'lrelu'
      ? g.node('LeakyRelu', [x], { alpha: float(leakyReluSlope) }, { name: `${prefix}.lrelu` })
      : g.node('Relu', [x], {}, { name: `${prefix}.relu` });
  return g.node('Mul', [activated, g.scalar(`${prefix}.act_gain`, leakyReluGain)], {}, { name: `${prefix}.activated` });
}

/** Clip to ±convClamp, or nothing when the model has no clamp. */
function clamp(g: GraphBuilder, x: string, convClamp: number | null, prefix: string): string {
  if (convClamp === null) return x;
  const low = g.scalar(`${prefix}.clamp_min`, -convClamp);
  const high = g.scalar(`${prefix}.clamp_max`, convClamp);
  return g.node('Clip', [x, low, high], {}, { name: `${prefix}.clamped` });
}

/** ToRGB: 1x1 modulated convolution without demodulation (weight gain 1/sqrt(C_in)), bias, clamp. */
function toRgbLayer(g: GraphBuilder, weights: GeneratorWeights, torgb: ToRgbSpec, ws: string, x: string): string {
  const { imgChannels, convClamp } = weights.arch;
  const { prefix, inChannels } = torgb;
  const weight = tensorOf(weights, `${prefix}.weight`, [imgChannels, inChannels, 1, 1]); // [C_img, C_in, 1, 1]
  const bias = tensorOf(weights, `${prefix}.bias`, [imgChannels]); // [C_img]

  const styles = affineStyles(g, weights, prefix, ws, torgb.wsIndex, inChannels); // [N, C_in]
  const modulated = g.node('Mul', [x, perChannel(g, styles, `${prefix}.styles_4d`)], {}, { name: `${prefix}.modulated` }); // [N, C_in, R, R]
  // The reference scales the styles by 1/sqrt(C_in); scaling the shared weight instead is the same product.
  const kernel = g.initializer(`${prefix}.weight`, scaled(weight.data, 1 / Math.sqrt(inChannels)), [imgChannels, inChannels, 1, 1]);
  const convolved = g.node('Conv', [modulated, kernel], {}, { name: `${prefix}.conv` }); // [N, C_img, R, R]
  const biased = g.node('Add', [convolved, g.initializer(`${prefix}.bias`, bias.data, [1, imgChannels, 1, 1])], {}, { name: `${prefix}.biased` }); // [N, C_img, R, R]
  return clamp(g, biased, convClamp, prefix); // [N, C_img, R, R]
}

/** 2x up-sampling of the skip image: depthwise ConvTranspose with the FIR `f·4`, stride 2, pads 1. */
function upsampleImage(g: GraphBuilder, img: string, imgChannels: number, name: string): string {
  const kernelName = g.initializer(`${name}.filter`, depthwiseFilter(imgChannels), [imgChannels, 1, 4, 4]); // [C_img, 1, 4, 4]
  return g.node('ConvTranspose', [img, kernelName], { strides: [2, 2], pads: [1, 1, 1, 1], group: imgChannels }, { name }); // [N, C_img, 2H, 2H]
}
