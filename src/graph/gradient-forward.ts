/**
 * The synthesis forward pass of the gradient graph. It builds the same ops as synthesis.ts with the
 * same GraphBuilder: the non-fused modulated convolution, the 'two-step' up-sampling conv and the
 * FIR skip up-sampling. It also records every intermediate value that the adjoints in
 * gradient-backward.ts read: layer inputs, styles, convolution outputs, demodulation factors, and
 * the pre-activation values whose masks the LeakyRelu and Clip adjoints need.
 *
 * A test compares this graph's `img` with synthesis.onnx on the same inputs, so the two forwards
 * cannot drift apart unnoticed.
 */

import type { GeneratorArchitecture, GeneratorWeights } from '../checkpoint/types.js';
import { scaled, squaredWeightSums, swapOuterAxes, transposeScaled, upsampleFilter2d } from './fir.js';
import { scalarOf, synthesisBlocks, tensorOf, type SynthesisLayerSpec, type ToRgbSpec } from './layers.js';
import { leakyReluGain, leakyReluSlope } from './mapping.js';
import { float, type GraphBuilder } from './onnx-builder.js';
import { affineStyles, demodulationEpsilon } from './synthesis.js';

/** Initializer names of the style affine of one layer. */
export interface AffineTape {
  /** `A / sqrt(wDim)` as `[C_in, wDim]`, the matrix that maps dL/ds back to dL/dw. */
  matrix: string;
  wsIndex: number;
}

/** Intermediates and initializers that the adjoint of one modulated 3x3 convolution reads. */
export interface ConvLayerTape {
  spec: SynthesisLayerSpec;
  affine: AffineTape;
  /** Layer input `[N or 1, C_in, H, H]` (the 4x4 const has batch 1). */
  x: string;
  styles: string; // [N, C_in]
  /** Convolution output before demodulation. */
  convolved: string; // [N, C_out, R, R]
  demod: string; // [N, C_out]
  /** Value fed to the activation (after noise and bias). */
  biased: string; // [N, C_out, R, R]
  /** Activation output before the clamp; equals `biased` for linear activations. */
  activated: string; // [N, C_out, R, R]
  /** `[C_out, C_in, 3, 3]` for up = 1; the ConvTranspose kernel `[C_in, C_out, 3, 3]` for up = 2. */
  kernel: string;
  /** Depthwise FIR `[C_out, 1, 4, 4]` of the up-sampling conv, null for up = 1. */
  upFilter: string | null;
  /** Demodulation matrix `Q [C_out, C_in]`. */
  q: string;
  /** Noise strength, or null when the layer adds no noise. */
  noiseStrength: string | null;
}

/** Intermediates and initializers that the adjoint of one ToRGB layer reads. */
export interface ToRgbTape {
  spec: ToRgbSpec;
  affine: AffineTape;
  x: string; // [N, C_in, R, R]
  styles: string; // [N, C_in]
  /** Output before the clamp. */
  biased: string; // [N, C_img, R, R]
  kernel: string; // [C_img, C_in, 1, 1], weight gain folded in
}

export interface BlockTape {
  resolution: number;
  convs: ConvLayerTape[];
  torgb: ToRgbTape | null;
  /** Depthwise FIR `[C_img, 1, 4, 4]` that up-sampled the previous image, or null (first image). */
  skipFilter: string | null;
}

export interface ForwardTape {
  arch: GeneratorArchitecture;
  blocks: BlockTape[];
  img: string; // [N, C_img, R, R]
}

/**
 * Appends the synthesis forward to `g`, reading `ws` and the noise inputs (by layer name), and
 * returns the tape of intermediates.
 */
export function buildForwardWithTape(g: GraphBuilder, weights: GeneratorWeights, ws: string, noiseInputs: Map<string, string>): ForwardTape {
  const { arch } = weights;
  if (arch.architecture === 'resnet') {
    throw new Error("synthesis architecture 'resnet' has no gradient graph; only 'skip' and 'orig' generators can be projected");
  }
  const blocks: BlockTape[] = [];
  let x: string | null = null;
  let img: string | null = null;
  for (const block of synthesisBlocks(arch)) {
    if (x === null) {
      const constant = tensorOf(weights, `synthesis.b${block.resolution}.const`, [block.outChannels, 4, 4]);
      x = g.initializer(`synthesis.b${block.resolution}.const`, constant.data, [1, block.outChannels, 4, 4]); // [1, C, 4, 4]
    }
    const convs: ConvLayerTape[] = [];
    for (const layer of block.convs) {
      const tape = convLayerForward(g, weights, layer, ws, x, noiseInputs.get(layer.layer));
      convs.push(tape.tape);
      x = tape.output; // [N, C_out, R, R]
    }
    let torgb: ToRgbTape | null = null;
    let skipFilter: string | null = null;
    if (block.torgb !== null) {
      const rgb = toRgbForward(g, weights, block.torgb, ws, x);
      torgb = rgb.tape;
      if (img === null) {
        img = rgb.output;
      } else {
        skipFilter = g.initializer(`synthesis.b${block.resolution}.img_up.filter`, depthwiseFilter(arch.imgChannels), [arch.imgChannels, 1, 4, 4]);
        const upsampled = g.node('ConvTranspose', [img, skipFilter], { strides: [2, 2], pads: [1, 1, 1, 1], group: arch.imgChannels }, { name: `synthesis.b${block.resolution}.img_up` }); // [N, C_img, R, R]
        img = g.node('Add', [upsampled, rgb.output], {}, { name: `synthesis.b${block.resolution}.img` }); // [N, C_img, R, R]
      }
    }
    blocks.push({ resolution: block.resolution, convs, torgb, skipFilter });
  }
  if (img === null) throw new Error('gradient graph produced no image: the last block has no ToRGB layer');
  return { arch, blocks, img };
}

/** Returns the up-sampling FIR `f·4` repeated per channel, `[channels, 1, 4, 4]`. */
export function depthwiseFilter(channels: number): Float32Array {
  const filter = upsampleFilter2d();
  const kernel = new Float32Array(channels * 16);
  for (let c = 0; c < channels; c++) kernel.set(filter, c * 16);
  return kernel;
}

/** `[N, C] -> [N, C, 1, 1]`. */
export function perChannel(g: GraphBuilder, values: string, name: string): string {
  return g.node('Unsqueeze', [values, g.int64s(`${name}.axes`, [2, 3])], {}, { name }); // [N, C, 1, 1]
}

/** Styles of one layer (as the synthesis graph computes them) plus what the backward pass needs. */
function affineForward(g: GraphBuilder, weights: GeneratorWeights, prefix: string, ws: string, wsIndex: number, inChannels: number): { styles: string; affine: AffineTape } {
  const { wDim } = weights.arch;
  const styles = affineStyles(g, weights, prefix, ws, wsIndex, inChannels); // [N, C_in]
  const weight = tensorOf(weights, `${prefix}.affine.weight`, [inChannels, wDim]); // [C_in, wDim]
  const matrix = g.initializer(`${prefix}.affine.weight_scaled`, scaled(weight.data, 1 / Math.sqrt(wDim)), [inChannels, wDim]); // [C_in, wDim]
  return { styles, affine: { matrix, wsIndex } };
}

function convLayerForward(
  g: GraphBuilder,
  weights: GeneratorWeights,
  layer: SynthesisLayerSpec,
  ws: string,
  x: string,
  noise: string | undefined,
): { tape: ConvLayerTape; output: string } {
  const { arch } = weights;
  const { prefix, inChannels, outChannels } = layer;
  const weight = tensorOf(weights, `${prefix}.weight`, [outChannels, inChannels, 3, 3]); // [C_out, C_in, 3, 3]
  const bias = tensorOf(weights, `${prefix}.bias`, [outChannels]); // [C_out]

  const { styles, affine } = affineForward(g, weights, prefix, ws, layer.wsIndex, inChannels); // [N, C_in]
  const modulated = g.node('Mul', [x, perChannel(g, styles, `${prefix}.styles_4d`)], {}, { name: `${prefix}.modulated` }); // [N, C_in, H, H]

  let kernel: string;
  let upFilter: string | null = null;
  let convolved: string;
  if (layer.up === 2) {
    kernel = g.initializer(`${prefix}.weight_t`, swapOuterAxes(weight.data, outChannels, inChannels, 9), [inChannels, outChannels, 3, 3]);
    const transposed = g.node('ConvTranspose', [modulated, kernel], { strides: [2, 2] }, { name: `${prefix}.conv_transpose` }); // [N, C_out, 2H + 1, 2H + 1]
    upFilter = g.initializer(`${prefix}.filter`, depthwiseFilter(outChannels), [outChannels, 1, 4, 4]);
    convolved = g.node('Conv', [transposed, upFilter], { pads: [1, 1, 1, 1], group: outChannels }, { name: `${prefix}.conv` }); // [N, C_out, 2H, 2H]
  } else {
    kernel = g.initializer(`${prefix}.weight`, weight.data, [outChannels, inChannels, 3, 3]);
    convolved = g.node('Conv', [modulated, kernel], { pads: [1, 1, 1, 1] }, { name: `${prefix}.conv` }); // [N, C_out, R, R]
  }

  const squareSums = squaredWeightSums(weight.data, outChannels, inChannels, 3); // [C_out, C_in]
  const qTransposed = g.initializer(`${prefix}.demod_q_t`, transposeScaled(squareSums, outChannels, inChannels, 1), [inChannels, outChannels]); // [C_in, C_out]
  const q = g.initializer(`${prefix}.demod_q`, squareSums, [outChannels, inChannels]); // [C_out, C_in]
  const stylesSquared = g.node('Mul', [styles, styles], {}, { name: `${prefix}.styles_squared` }); // [N, C_in]
  const energy = g.node('MatMul', [stylesSquared, qTransposed], {}, { name: `${prefix}.energy` }); // [N, C_out]
  const shifted = g.node('Add', [energy, g.scalar(`${prefix}.demod_epsilon`, demodulationEpsilon)], {}, { name: `${prefix}.energy_eps` }); // [N, C_out]
  const demod = g.node('Reciprocal', [g.node('Sqrt', [shifted], {}, { name: `${prefix}.norm` })], {}, { name: `${prefix}.demod` }); // [N, C_out]
  let y = g.node('Mul', [convolved, perChannel(g, demod, `${prefix}.demod_4d`)], {}, { name: `${prefix}.demodulated` }); // [N, C_out, R, R]

  let noiseStrength: string | null = null;
  if (arch.useNoise && noise !== undefined) {
    noiseStrength = g.scalar(`${prefix}.noise_strength`, scalarOf(weights, `${prefix}.noise_strength`));
    const weightedNoise = g.node('Mul', [noise, noiseStrength], {}, { name: `${prefix}.noise` }); // [B, 1, R, R]
    y = g.node('Add', [y, weightedNoise], {}, { name: `${prefix}.noised` }); // [N, C_out, R, R]
  }
  const biased = g.node('Add', [y, g.initializer(`${prefix}.bias`, bias.data, [1, outChannels, 1, 1])], {}, { name: `${prefix}.biased` }); // [N, C_out, R, R]
  const activated = activate(g, biased, arch, prefix); // [N, C_out, R, R]
  const output = clamp(g, activated, arch.convClamp, prefix); // [N, C_out, R, R]
  return { tape: { spec: layer, affine, x, styles, convolved, demod, biased, activated, kernel, upFilter, q, noiseStrength }, output };
}

function toRgbForward(g: GraphBuilder, weights: GeneratorWeights, torgb: ToRgbSpec, ws: string, x: string): { tape: ToRgbTape; output: string } {
  const { imgChannels, convClamp } = weights.arch;
  const { prefix, inChannels } = torgb;
  const weight = tensorOf(weights, `${prefix}.weight`, [imgChannels, inChannels, 1, 1]); // [C_img, C_in, 1, 1]
  const bias = tensorOf(weights, `${prefix}.bias`, [imgChannels]); // [C_img]

  const { styles, affine } = affineForward(g, weights, prefix, ws, torgb.wsIndex, inChannels); // [N, C_in]
  const modulated = g.node('Mul', [x, perChannel(g, styles, `${prefix}.styles_4d`)], {}, { name: `${prefix}.modulated` }); // [N, C_in, R, R]
  // Weight gain 1/sqrt(C_in) on the kernel instead of the styles, as in synthesis.ts.
  const kernel = g.initializer(`${prefix}.weight`, scaled(weight.data, 1 / Math.sqrt(inChannels)), [imgChannels, inChannels, 1, 1]);
  const convolved = g.node('Conv', [modulated, kernel], {}, { name: `${prefix}.conv` }); // [N, C_img, R, R]
  const biased = g.node('Add', [convolved, g.initializer(`${prefix}.bias`, bias.data, [1, imgChannels, 1, 1])], {}, { name: `${prefix}.biased` }); // [N, C_img, R, R]
  const output = clamp(g, biased, convClamp, prefix); // [N, C_img, R, R]
  return { tape: { spec: torgb, affine, x, styles, biased, kernel }, output };
}

function activate(g: GraphBuilder, x: string, arch: GeneratorArchitecture, prefix: string): string {
  if (arch.activation === 'linear') return x;
  const activated =
    arch.activation === 'lrelu'
      ? g.node('LeakyRelu', [x], { alpha: float(leakyReluSlope) }, { name: `${prefix}.lrelu` })
      : g.node('Relu', [x], {}, { name: `${prefix}.relu` });
  return g.node('Mul', [activated, g.scalar(`${prefix}.act_gain`, leakyReluGain)], {}, { name: `${prefix}.activated` });
}

function clamp(g: GraphBuilder, x: string, convClamp: number | null, prefix: string): string {
  if (convClamp === null) return x;
  const low = g.scalar(`${prefix}.clamp_min`, -convClamp);
  const high = g.scalar(`${prefix}.clamp_max`, convClamp);
  return g.node('Clip', [x, low, high], {}, { name: `${prefix}.clamped` });
}
