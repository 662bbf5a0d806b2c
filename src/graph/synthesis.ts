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
 * output `img [N, imgChannels, R, R]`, all float32 at either precision.
 *
 * With `precision: 'fp16'` the feature maps, the convolution weights, noise addition, bias,
 * activation and clamp run in float16. The affine styles, the demodulation coefficients and the
 * ToRGB bias, clamp and skip-image sum stay float32, and Cast nodes sit at each boundary
 * (synthesis-fp16.ts). A feature clamp whose bound fp16 cannot represent exactly runs in float32.
 */

import type { GeneratorArchitecture, GeneratorWeights } from '../checkpoint/types.js';
import { scaled, squaredWeightSums, transposeScaled } from './fir.js';
import { float16Bits, float16Value } from './float16.js';
import { noiseLayers, scalarOf, synthesisBlocks, tensorOf, type SynthesisBlockSpec, type SynthesisLayerSpec, type ToRgbSpec } from './layers.js';
import { leakyReluGain, leakyReluSlope } from './mapping.js';
import { float, GraphBuilder } from './onnx-builder.js';
import { modulatedConvFloat16 } from './synthesis-fp16.js';
import {
  castTo,
  depthwiseFilter,
  float16Features,
  float32Features,
  perChannel,
  upsampleConv,
  type FeaturePrecision,
  type UpsampleConvForm,
} from './synthesis-ops.js';

export type { UpsampleConvForm } from './synthesis-ops.js';

/** Epsilon inside the demodulation square root. */
export const demodulationEpsilon = 1e-8;

/** Graph input and output names of the synthesis graph (noise inputs are named by `noiseLayers`). */
export const synthesisIo = { ws: 'ws', img: 'img' } as const;

/** Symbolic batch size of the noise inputs, separate from `N` because a batch of 1 broadcasts. */
const noiseBatchDim = 'noise_batch';

/** Element type of the feature maps and convolution weights; graph inputs and output stay float32. */
export type SynthesisPrecision = 'fp32' | 'fp16';

export interface SynthesisGraphOptions {
  /** Default 'two-step'. */
  upsampleConv?: UpsampleConvForm;
  /** Default 'fp32'. 'fp16' halves the file and is meant for GPUs: on the CPU EP it runs slower. */
  precision?: SynthesisPrecision;
}

/** Per-graph settings that every layer needs. */
interface LayerOptions {
  form: UpsampleConvForm;
  features: FeaturePrecision;
}

/** Builds the synthesis graph and returns the encoded ONNX model. */
export function buildSynthesisGraph(weights: GeneratorWeights, options: SynthesisGraphOptions = {}): Uint8Array {
  const precision = options.precision ?? 'fp32';
  if (precision !== 'fp32' && precision !== 'fp16') throw new Error(`synthesis precision ${JSON.stringify(precision)} is invalid; use 'fp32' or 'fp16'`);
  const layerOptions: LayerOptions = {
    form: options.upsampleConv ?? 'two-step',
    features: precision === 'fp16' ? float16Features : float32Features,
  };
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
    ({ x, img } = synthesisBlock(g, weights, block, ws, x, img, noiseInputs, layerOptions));
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
  options: LayerOptions,
): { x: string; img: string | null } {
  const { arch } = weights;
  if (x === null) {
    const constant = tensorOf(weights, `synthesis.b${block.resolution}.const`, [block.outChannels, 4, 4]);
    x = options.features.initializer(g, `synthesis.b${block.resolution}.const`, constant.data, [1, block.outChannels, 4, 4]); // [1, C, 4, 4]
  }
  for (const layer of block.convs) {
    x = synthesisLayer(g, weights, layer, ws, x, noiseInputs.get(layer.layer), options); // [N, C_out, R, R]
  }
  if (block.torgb === null) return { x, img };

  const rgb = toRgbLayer(g, weights, block.torgb, ws, x, options.features); // [N, imgChannels, R, R], float32
  if (img === null) return { x, img: rgb };
  const upsampled = upsampleImage(g, img, arch.imgChannels, `synthesis.b${block.resolution}.img_up`); // [N, imgChannels, R, R]
  return { x, img: g.node('Add', [upsampled, rgb], {}, { name: `synthesis.b${block.resolution}.img` }) }; // [N, imgChannels, R, R]
}

/** Styles `s = w · (A / sqrt(wDim))ᵀ + a_b` of one layer, from row `wsIndex` of ws. */
export function affineStyles(g: GraphBuilder, weights: GeneratorWeights, prefix: string, ws: string, wsIndex: number, inChannels: number): string {
  const { wDim } = weights.arch;
  const weight = tensorOf(weights, `${prefix}.affine.weight`, [inChannels, wDim]); // [C_in, wDim]
  const bias = tensorOf(weights, `${prefix}.affine.bias`, [inChannels]); // [C_in]
  const index = g.initializerInt64(`${prefix}.ws_index`, [wsIndex], []);
  const w = g.node('Gather', [ws, index], { axis: 1 }, { name: `${prefix}.w` }); // [N, wDim]
  const matrix = g.initializer(`${prefix}.affine.weight_t`, transposeScaled(weight.data, inChannels, wDim, 1 / Math.sqrt(wDim)), [wDim, inChannels]); // [wDim, C_in]
  const product = g.node('MatMul', [w, matrix], {}, { name: `${prefix}.affine.matmul` }); // [N, C_in]
  return g.node('Add', [product, g.initializer(`${prefix}.affine.bias`, bias.data, [inChannels])], {}, { name: `${prefix}.styles` }); // [N, C_in]
}

/** Modulated, demodulated 3x3 convolution with noise, bias, activation and clamp. */
function synthesisLayer(
  g: GraphBuilder,
  weights: GeneratorWeights,
  layer: SynthesisLayerSpec,
  ws: string,
  x: string,
  noise: string | undefined,
  options: LayerOptions,
): string {
  const { arch } = weights;
  const { prefix, inChannels, outChannels } = layer;
  const { features } = options;
  const kernelSize = 3;
  const weight = tensorOf(weights, `${prefix}.weight`, [outChannels, inChannels, kernelSize, kernelSize]); // [C_out, C_in, 3, 3]
  const bias = tensorOf(weights, `${prefix}.bias`, [outChannels]); // [C_out]

  const styles = affineStyles(g, weights, prefix, ws, layer.wsIndex, inChannels); // [N, C_in]
  let y =
    features.name === 'fp16'
      ? modulatedConvFloat16(g, weight.data, layer, styles, x, options.form, demodulationEpsilon)
      : modulatedConv(g, weight.data, layer, styles, x, options.form); // [N, C_out, R, R]

  if (arch.useNoise && noise !== undefined) {
    const strength = g.scalar(`${prefix}.noise_strength`, scalarOf(weights, `${prefix}.noise_strength`));
    let weightedNoise = g.node('Mul', [noise, strength], {}, { name: `${prefix}.noise` }); // [B, 1, R, R]
    if (features.name === 'fp16') weightedNoise = castTo(g, weightedNoise, 'float16', `${prefix}.noise_fp16`);
    y = g.node('Add', [y, weightedNoise], {}, { name: `${prefix}.noised` }); // [N, C_out, R, R]
  }
  const biased = g.node('Add', [y, features.initializer(g, `${prefix}.bias`, bias.data, [1, outChannels, 1, 1])], {}, { name: `${prefix}.biased` }); // [N, C_out, R, R]
  const activated = activate(g, biased, arch, prefix, features); // [N, C_out, R, R]
  return clamp(g, activated, arch.convClamp, prefix, features); // [N, C_out, R, R]
}

/** The float32 modulated, demodulated 3x3 convolution `conv(x·s, W)·d`. */
function modulatedConv(g: GraphBuilder, weight: Float32Array, layer: SynthesisLayerSpec, styles: string, x: string, form: UpsampleConvForm): string {
  const { prefix, inChannels, outChannels } = layer;
  const kernelSize = 3;
  const modulated = g.node('Mul', [x, perChannel(g, styles, `${prefix}.styles_4d`)], {}, { name: `${prefix}.modulated` }); // [N, C_in, H, H]

  let convolved: string;
  if (layer.up === 2) {
    convolved = upsampleConv(g, modulated, weight, layer, form, float32Features).output; // [N, C_out, R, R]
  } else {
    const kernel = g.initializer(`${prefix}.weight`, weight, [outChannels, inChannels, kernelSize, kernelSize]);
    convolved = g.node('Conv', [modulated, kernel], { pads: [1, 1, 1, 1] }, { name: `${prefix}.conv` }); // [N, C_out, R, R]
  }

  const q = g.initializer(`${prefix}.demod_q_t`, transposeScaled(squaredWeightSums(weight, outChannels, inChannels, kernelSize), outChannels, inChannels, 1), [inChannels, outChannels]); // [C_in, C_out]
  const stylesSquared = g.node('Mul', [styles, styles], {}, { name: `${prefix}.styles_squared` }); // [N, C_in]
  const energy = g.node('MatMul', [stylesSquared, q], {}, { name: `${prefix}.energy` }); // [N, C_out]
  const shifted = g.node('Add', [energy, g.scalar(`${prefix}.demod_epsilon`, demodulationEpsilon)], {}, { name: `${prefix}.energy_eps` }); // [N, C_out]
  const demod = g.node('Reciprocal', [g.node('Sqrt', [shifted], {}, { name: `${prefix}.norm` })], {}, { name: `${prefix}.demod` }); // [N, C_out]
  return g.node('Mul', [convolved, perChannel(g, demod, `${prefix}.demod_4d`)], {}, { name: `${prefix}.demodulated` }); // [N, C_out, R, R]
}

/** Activation times its default gain (lrelu and relu √2, linear 1). */
function activate(g: GraphBuilder, x: string, arch: GeneratorArchitecture, prefix: string, features: FeaturePrecision): string {
  if (arch.activation === 'linear') return x;
  const activated =
    arch.activation === 'lrelu'
      ? g.node('LeakyRelu', [x], { alpha: float(leakyReluSlope) }, { name: `${prefix}.lrelu` })
      : g.node('Relu', [x], {}, { name: `${prefix}.relu` });
  return g.node('Mul', [activated, features.scalar(g, `${prefix}.act_gain`, leakyReluGain)], {}, { name: `${prefix}.activated` });
}

/**
 * Clip to ±convClamp, or nothing when the model has no clamp. An fp16 feature map is clipped in
 * fp16 when fp16 represents the float32 bound exactly (256, 0.5), else cast to float32 and back around it.
 */
function clamp(g: GraphBuilder, x: string, convClamp: number | null, prefix: string, features: FeaturePrecision = float32Features): string {
  if (convClamp === null) return x;
  if (features.name === 'fp16' && float16Value(float16Bits(convClamp)) === Math.fround(convClamp)) {
    const low = features.scalar(g, `${prefix}.clamp_min`, -convClamp);
    const high = features.scalar(g, `${prefix}.clamp_max`, convClamp);
    return g.node('Clip', [x, low, high], {}, { name: `${prefix}.clamped` });
  }
  const input = features.name === 'fp16' ? castTo(g, x, 'float', `${prefix}.clamp_fp32`) : x;
  const low = g.scalar(`${prefix}.clamp_min`, -convClamp);
  const high = g.scalar(`${prefix}.clamp_max`, convClamp);
  const clipped = g.node('Clip', [input, low, high], {}, { name: `${prefix}.clamped` });
  return features.name === 'fp16' ? castTo(g, clipped, 'float16', `${prefix}.clamped_fp16`) : clipped;
}

/**
 * ToRGB: 1x1 modulated convolution without demodulation (weight gain 1/sqrt(C_in)), bias, clamp.
 * The convolution runs in the feature precision; its output, bias and clamp are float32.
 */
function toRgbLayer(g: GraphBuilder, weights: GeneratorWeights, torgb: ToRgbSpec, ws: string, x: string, features: FeaturePrecision): string {
  const { imgChannels, convClamp } = weights.arch;
  const { prefix, inChannels } = torgb;
  const weight = tensorOf(weights, `${prefix}.weight`, [imgChannels, inChannels, 1, 1]); // [C_img, C_in, 1, 1]
  const bias = tensorOf(weights, `${prefix}.bias`, [imgChannels]); // [C_img]

  const styles = affineStyles(g, weights, prefix, ws, torgb.wsIndex, inChannels); // [N, C_in]
  let styles4d = perChannel(g, styles, `${prefix}.styles_4d`); // [N, C_in, 1, 1]
  if (features.name === 'fp16') styles4d = castTo(g, styles4d, 'float16', `${prefix}.styles_fp16`);
  const modulated = g.node('Mul', [x, styles4d], {}, { name: `${prefix}.modulated` }); // [N, C_in, R, R]
  // The reference scales the styles by 1/sqrt(C_in); scaling the shared weight instead is the same product.
  const kernel = features.initializer(g, `${prefix}.weight`, scaled(weight.data, 1 / Math.sqrt(inChannels)), [imgChannels, inChannels, 1, 1]);
  let convolved = g.node('Conv', [modulated, kernel], {}, { name: `${prefix}.conv` }); // [N, C_img, R, R]
  if (features.name === 'fp16') convolved = castTo(g, convolved, 'float', `${prefix}.conv_fp32`);
  const biased = g.node('Add', [convolved, g.initializer(`${prefix}.bias`, bias.data, [1, imgChannels, 1, 1])], {}, { name: `${prefix}.biased` }); // [N, C_img, R, R]
  return clamp(g, biased, convClamp, prefix); // [N, C_img, R, R]
}

/** 2x up-sampling of the skip image: depthwise ConvTranspose with the FIR `f·4`, stride 2, pads 1. */
function upsampleImage(g: GraphBuilder, img: string, imgChannels: number, name: string): string {
  const kernelName = g.initializer(`${name}.filter`, depthwiseFilter(imgChannels), [imgChannels, 1, 4, 4]); // [C_img, 1, 4, 4]
  return g.node('ConvTranspose', [img, kernelName], { strides: [2, 2], pads: [1, 1, 1, 1], group: imgChannels }, { name }); // [N, C_img, 2H, 2H]
}
