/**
 * The float16 modulated convolution of the fp16 synthesis graph (`precision: 'fp16'`).
 *
 * Feature maps and convolution weights are float16; styles and demodulation stay float32. Without
 * demodulation applied inside the weight, the convolution output before `·d` is about
 * sqrt(C_in·9)·|W|·|s·x| (68x for 512 channels with unit weights), which can overflow fp16 (max 65504).
 * So both factors are normalised first, and the demodulation undoes the normalisation exactly:
 *
 * - weights per output channel: `W'[o] = α_o·W[o]` with `α_o = 1 / (sqrt(C_in·k²) · max|W[o]|)`,
 * - styles per sample: `s' = s / β_n` with `β_n = max_i |s[n, i]|`.
 *
 * Then `conv(x·s, W)[n, o] = (β_n / α_o) · conv(x·s', W')[n, o]` and `Q = Q' / α_o²`, where Q'
 * contains the squared sums of W'. So the reference output `conv(x·s, W)·d` with
 * `d = 1 / sqrt(Σ_i s²·Q[o, i] + ε)` equals `conv(x·s', W')·d'` with
 * `d'[n, o] = 1 / sqrt(Σ_i s'²·Q'[o, i] + ε·α_o² / β_n²)`.
 */

import { squaredWeightSums, transposeScaled } from './fir.js';
import { roundToFloat16 } from './float16.js';
import type { SynthesisLayerSpec } from './layers.js';
import type { GraphBuilder } from './onnx-builder.js';
import { castTo, float16Features, perChannel, upsampleConv, type UpsampleConvForm } from './synthesis-ops.js';

/** Smallest style scale β; a sample whose styles are all zero gets s' = 0 instead of 0 / 0. */
const minStyleScale = 1e-10;

const kernelSize = 3;

export interface PrescaledWeight {
  /** `α_o·W[o]`, rounded to fp16 values, `[C_out, C_in, k, k]`. */
  weight: Float32Array;
  /** `ε·α_o²` per output channel, `[C_out]`; divided by β² in the graph. */
  epsilonScale: Float32Array;
}

/** Normalises each output channel of a conv weight `[C_out, C_in, k, k]` for fp16 (see the file comment). */
export function prescaleConvWeight(weight: Float32Array, outChannels: number, inChannels: number, epsilon: number): PrescaledWeight {
  const fanIn = inChannels * kernelSize * kernelSize;
  const scaled = new Float32Array(weight.length);
  const epsilonScale = new Float32Array(outChannels);
  for (let o = 0; o < outChannels; o++) {
    let maxAbs = 0;
    for (let j = o * fanIn; j < (o + 1) * fanIn; j++) maxAbs = Math.max(maxAbs, Math.abs(weight[j]));
    // An all-zero channel gives zero output whatever the scale; keep its scale at 1.
    const alpha = maxAbs > 0 ? 1 / (Math.sqrt(fanIn) * maxAbs) : 1;
    for (let j = o * fanIn; j < (o + 1) * fanIn; j++) scaled[j] = weight[j] * alpha;
    epsilonScale[o] = epsilon * alpha * alpha;
  }
  return { weight: roundToFloat16(scaled), epsilonScale };
}

/**
 * Modulated, demodulated 3x3 convolution on a float16 feature map `x` with float32 `styles`.
 * Returns the demodulated output, float16 `[N, C_out, R, R]`.
 */
export function modulatedConvFloat16(
  g: GraphBuilder,
  weight: Float32Array,
  layer: SynthesisLayerSpec,
  styles: string,
  x: string,
  form: UpsampleConvForm,
  epsilon: number,
): string {
  const { prefix, inChannels, outChannels } = layer;
  const prescaled = prescaleConvWeight(weight, outChannels, inChannels, epsilon);

  const stylesAbs = g.node('Abs', [styles], {}, { name: `${prefix}.styles_abs` }); // [N, C_in]
  const stylesMax = g.node('ReduceMax', [stylesAbs], { axes: [1], keepdims: 1 }, { name: `${prefix}.styles_max` }); // [N, 1]
  const styleScale = g.node('Max', [stylesMax, g.scalar(`${prefix}.styles_min_scale`, minStyleScale)], {}, { name: `${prefix}.style_scale` }); // [N, 1]
  const normalized = g.node('Div', [styles, styleScale], {}, { name: `${prefix}.styles_normalized` }); // [N, C_in]
  const styles16 = castTo(g, perChannel(g, normalized, `${prefix}.styles_4d`), 'float16', `${prefix}.styles_fp16`); // [N, C_in, 1, 1]
  const modulated = g.node('Mul', [x, styles16], {}, { name: `${prefix}.modulated` }); // [N, C_in, H, H]

  let convolved: string;
  let q: string; // [C_in, C_out] float32
  if (layer.up === 2) {
    const up = upsampleConv(g, modulated, prescaled.weight, layer, form, float16Features); // [N, C_out, R, R]
    convolved = up.output;
    q = form === 'two-step'
      ? squaredSumsOf(g, up.kernel, false, prefix) // the kernel is [C_in, C_out, 3, 3]
      : g.initializer(`${prefix}.demod_q_t`, transposeScaled(squaredWeightSums(prescaled.weight, outChannels, inChannels, kernelSize), outChannels, inChannels, 1), [inChannels, outChannels]);
  } else {
    const kernel = g.initializerFloat16(`${prefix}.weight`, prescaled.weight, [outChannels, inChannels, kernelSize, kernelSize]);
    convolved = g.node('Conv', [modulated, kernel], { pads: [1, 1, 1, 1] }, { name: `${prefix}.conv` }); // [N, C_out, R, R]
    q = squaredSumsOf(g, kernel, true, prefix);
  }

  const stylesSquared = g.node('Mul', [normalized, normalized], {}, { name: `${prefix}.styles_squared` }); // [N, C_in]
  const energy = g.node('MatMul', [stylesSquared, q], {}, { name: `${prefix}.energy` }); // [N, C_out]
  const epsilonScale = g.initializer(`${prefix}.demod_epsilon`, prescaled.epsilonScale, [1, outChannels]); // [1, C_out]
  const scaleSquared = g.node('Mul', [styleScale, styleScale], {}, { name: `${prefix}.style_scale_squared` }); // [N, 1]
  const epsilonTerm = g.node('Div', [epsilonScale, scaleSquared], {}, { name: `${prefix}.demod_epsilon_scaled` }); // [N, C_out]
  const shifted = g.node('Add', [energy, epsilonTerm], {}, { name: `${prefix}.energy_eps` }); // [N, C_out]
  const demod = g.node('Reciprocal', [g.node('Sqrt', [shifted], {}, { name: `${prefix}.norm` })], {}, { name: `${prefix}.demod` }); // [N, C_out]
  const demod16 = castTo(g, perChannel(g, demod, `${prefix}.demod_4d`), 'float16', `${prefix}.demod_fp16`); // [N, C_out, 1, 1]
  return g.node('Mul', [convolved, demod16], {}, { name: `${prefix}.demodulated` }); // [N, C_out, R, R]
}

/**
 * Demodulation matrix `Qᵀ [C_in, C_out]` in float32, computed in the graph from the stored fp16
 * kernel so that the file contains no second copy of the weights (ONNX Runtime folds it at load).
 * `outerAxesAreOutIn` tells whether the kernel is `[C_out, C_in, k, k]` (else `[C_in, C_out, k, k]`).
 */
function squaredSumsOf(g: GraphBuilder, kernel: string, outerAxesAreOutIn: boolean, prefix: string): string {
  const weight32 = castTo(g, kernel, 'float', `${prefix}.weight_fp32`); // [A, B, k, k]
  const squared = g.node('Mul', [weight32, weight32], {}, { name: `${prefix}.weight_squared` }); // [A, B, k, k]
  const sums = g.node('ReduceSum', [squared, g.int64s(`${prefix}.kernel_axes`, [2, 3])], { keepdims: 0 }, { name: `${prefix}.demod_q` }); // [A, B]
  if (!outerAxesAreOutIn) return sums; // [C_in, C_out]
  return g.node('Transpose', [sums], { perm: [1, 0] }, { name: `${prefix}.demod_q_t` }); // [C_in, C_out]
}
