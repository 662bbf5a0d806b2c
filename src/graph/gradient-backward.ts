/**
 * Hand-written adjoints (vector-Jacobian products) of the synthesis forward in gradient-forward.ts.
 * ONNX Runtime for Node runs inference only, so the backward pass is built from plain ONNX ops:
 *
 * - Clip: the incoming gradient passes where `lo <= a <= hi` (the PyTorch clamp convention).
 * - LeakyRelu·gain: multiplied by `gain` where the input is > 0 and by `gain·0.2` elsewhere.
 * - Conv with pads p ↔ ConvTranspose with the same weight tensor and pads p, and the reverse, so
 *   every convolution's adjoint reuses its forward initializer.
 * - Demodulation `d = (s²·Qᵀ + eps)^(-1/2)`: `dL/de = -½·d³·dL/dd`, `dL/ds = 2·s·(dL/de · Q)`.
 * - Modulation `x·s`: `dL/ds = Σ_hw dL/d(x·s)·x`, `dL/dx = dL/d(x·s)·s`.
 * - Affine `s = w·Aᵀ + b`: `dL/dw = dL/ds · A` (A with its 1/sqrt(wDim) gain).
 * - Noise `+ noise·strength`: `dL/dnoise = strength · Σ_c dL/dy`, one map per batch row.
 */

import type { GeneratorArchitecture } from '../checkpoint/types.js';
import type { BlockTape, ConvLayerTape, ForwardTape, ToRgbTape } from './gradient-forward.js';
import { perChannel } from './gradient-forward.js';
import { leakyReluGain, leakyReluSlope } from './mapping.js';
import type { GraphBuilder } from './onnx-builder.js';

export interface BackwardResult {
  /** dL/dws per ws row: the contributions of every layer that reads the row. */
  wsGradients: Map<number, string[]>; // each [N, wDim]
  /** dL/dnoise per noise layer name (e.g. `b8.conv0`). */
  noiseGradients: Map<string, string>; // each [N, 1, R, R]
}

/** Appends the backward pass for the upstream gradient `gradImg [N, C_img, R, R]` and returns the latent and noise gradients. */
export function buildBackward(g: GraphBuilder, tape: ForwardTape, gradImg: string): BackwardResult {
  const result: BackwardResult = { wsGradients: new Map(), noiseGradients: new Map() };
  const addWsGradient = (index: number, gradient: string) => {
    const list = result.wsGradients.get(index) ?? [];
    list.push(gradient);
    result.wsGradients.set(index, list);
  };

  let gImg: string | null = gradImg; // [N, C_img, R, R] at the current block's resolution
  let gX: string | null = null; // gradient of the current block's output feature map
  for (let b = tape.blocks.length - 1; b >= 0; b--) {
    const block: BlockTape = tape.blocks[b];
    if (block.torgb !== null) {
      if (gImg === null) throw new Error(`block ${block.resolution} has a ToRGB layer but no image gradient reached it`);
      const rgb = toRgbBackward(g, tape.arch, block.torgb, gImg);
      addWsGradient(block.torgb.affine.wsIndex, rgb.gW);
      gX = gX === null ? rgb.gX : g.node('Add', [gX, rgb.gX], {}, { name: `grad.b${block.resolution}.x` }); // [N, C, R, R]
      gImg = block.skipFilter === null ? null : skipBackward(g, tape.arch, block, gImg);
    }
    for (let i = block.convs.length - 1; i >= 0; i--) {
      const conv = block.convs[i];
      if (gX === null) throw new Error(`no gradient reached layer ${conv.spec.layer}; the graph has no path from it to the image`);
      const layer = convLayerBackward(g, tape.arch, conv, gX);
      addWsGradient(conv.affine.wsIndex, layer.gW);
      result.noiseGradients.set(conv.spec.layer, layer.gNoise);
      gX = layer.gX;
    }
  }
  return result;
}

/** `ReduceSum(x, axes, keepdims)`; opset 13+ takes the axes as an input. */
export function reduceSum(g: GraphBuilder, x: string, axes: number[], keepdims: boolean, name: string): string {
  return g.node('ReduceSum', [x, g.int64s(`${name}.axes`, axes)], { keepdims: keepdims ? 1 : 0 }, { name });
}

/** Multiplies `grad` by the Clip mask `lo <= value <= hi`; unchanged when the model has no clamp. */
function clipBackward(g: GraphBuilder, grad: string, value: string, convClamp: number | null, prefix: string): string {
  if (convClamp === null) return grad;
  const low = g.node('GreaterOrEqual', [value, g.scalar(`${prefix}.clamp_min`, -convClamp)], {}, { name: `${prefix}.above_min` });
  const high = g.node('LessOrEqual', [value, g.scalar(`${prefix}.clamp_max`, convClamp)], {}, { name: `${prefix}.below_max` });
  const inside = g.node('Cast', [g.node('And', [low, high], {}, { name: `${prefix}.inside` })], { to: 1 }, { name: `${prefix}.clip_mask` }); // float 0/1
  return g.node('Mul', [grad, inside], {}, { name: `${prefix}.unclipped` });
}

/** Multiplies `grad` by the derivative of `activation(value)·gain`. */
function activationBackward(g: GraphBuilder, grad: string, value: string, arch: GeneratorArchitecture, prefix: string): string {
  if (arch.activation === 'linear') return grad;
  const negativeSlope = arch.activation === 'lrelu' ? leakyReluGain * leakyReluSlope : 0;
  const positive = g.node('Greater', [value, g.scalar(`${prefix}.zero`, 0)], {}, { name: `${prefix}.positive` });
  const slope = g.node('Where', [positive, g.scalar(`${prefix}.slope_pos`, leakyReluGain), g.scalar(`${prefix}.slope_neg`, negativeSlope)], {}, { name: `${prefix}.act_slope` });
  return g.node('Mul', [grad, slope], {}, { name: `${prefix}.pre_act` });
}

function convLayerBackward(g: GraphBuilder, arch: GeneratorArchitecture, tape: ConvLayerTape, gOut: string): { gX: string; gW: string; gNoise: string } {
  const prefix = `grad.${tape.spec.layer}`;
  const { outChannels } = tape.spec;

  const gActivated = clipBackward(g, gOut, tape.activated, arch.convClamp, prefix); // [N, C_out, R, R]
  const gY = activationBackward(g, gActivated, tape.biased, arch, prefix); // [N, C_out, R, R]

  const channelSum = reduceSum(g, gY, [1], true, `${prefix}.noise_sum`); // [N, 1, R, R]
  const gNoise =
    tape.noiseStrength === null
      ? g.node('Mul', [channelSum, g.scalar(`${prefix}.no_noise`, 0)], {}, { name: `${prefix}.noise` })
      : g.node('Mul', [channelSum, tape.noiseStrength], {}, { name: `${prefix}.noise` }); // [N, 1, R, R]

  // y = convolved · d
  const gConvolved = g.node('Mul', [gY, perChannel(g, tape.demod, `${prefix}.demod_4d`)], {}, { name: `${prefix}.convolved` }); // [N, C_out, R, R]
  const gDemod = reduceSum(g, g.node('Mul', [gY, tape.convolved], {}, { name: `${prefix}.demod_product` }), [2, 3], false, `${prefix}.demod`); // [N, C_out]

  // d = e^(-1/2): dd/de = -d³/2; e = s²·Qᵀ + eps
  const demodCubed = g.node('Mul', [g.node('Mul', [tape.demod, tape.demod], {}, { name: `${prefix}.demod_sq` }), tape.demod], {}, { name: `${prefix}.demod_cubed` }); // [N, C_out]
  const gEnergy = g.node('Mul', [gDemod, g.node('Mul', [demodCubed, g.scalar(`${prefix}.minus_half`, -0.5)], {}, { name: `${prefix}.demod_slope` })], {}, { name: `${prefix}.energy` }); // [N, C_out]
  const gStylesSquared = g.node('MatMul', [gEnergy, tape.q], {}, { name: `${prefix}.styles_squared` }); // [N, C_in]
  const gStylesDemod = g.node('Mul', [gStylesSquared, g.node('Mul', [tape.styles, g.scalar(`${prefix}.two`, 2)], {}, { name: `${prefix}.two_s` })], {}, { name: `${prefix}.styles_demod` }); // [N, C_in]

  // convolution adjoint
  let gModulated: string;
  if (tape.spec.up === 2) {
    if (tape.upFilter === null) throw new Error(`layer ${tape.spec.layer} up-samples but its tape has no FIR filter`);
    const gTransposed = g.node('ConvTranspose', [gConvolved, tape.upFilter], { pads: [1, 1, 1, 1], group: outChannels }, { name: `${prefix}.fir` }); // [N, C_out, 2H + 1, 2H + 1]
    gModulated = g.node('Conv', [gTransposed, tape.kernel], { strides: [2, 2] }, { name: `${prefix}.conv` }); // [N, C_in, H, H]
  } else {
    gModulated = g.node('ConvTranspose', [gConvolved, tape.kernel], { pads: [1, 1, 1, 1] }, { name: `${prefix}.conv` }); // [N, C_in, R, R]
  }

  // modulated = x · s
  const gStylesMod = reduceSum(g, g.node('Mul', [gModulated, tape.x], {}, { name: `${prefix}.mod_product` }), [2, 3], false, `${prefix}.styles_mod`); // [N, C_in]
  const gX = g.node('Mul', [gModulated, perChannel(g, tape.styles, `${prefix}.styles_4d`)], {}, { name: `${prefix}.x` }); // [N, C_in, H, H]
  const gStyles = g.node('Add', [gStylesMod, gStylesDemod], {}, { name: `${prefix}.styles` }); // [N, C_in]
  const gW = g.node('MatMul', [gStyles, tape.affine.matrix], {}, { name: `${prefix}.w` }); // [N, wDim]
  return { gX, gW, gNoise };
}

function toRgbBackward(g: GraphBuilder, arch: GeneratorArchitecture, tape: ToRgbTape, gOut: string): { gX: string; gW: string } {
  const prefix = `grad.${tape.spec.prefix.replace(/^synthesis\./, '')}`;
  const gBiased = clipBackward(g, gOut, tape.biased, arch.convClamp, prefix); // [N, C_img, R, R]
  const gModulated = g.node('ConvTranspose', [gBiased, tape.kernel], {}, { name: `${prefix}.conv` }); // [N, C_in, R, R]
  const gStyles = reduceSum(g, g.node('Mul', [gModulated, tape.x], {}, { name: `${prefix}.mod_product` }), [2, 3], false, `${prefix}.styles`); // [N, C_in]
  const gX = g.node('Mul', [gModulated, perChannel(g, tape.styles, `${prefix}.styles_4d`)], {}, { name: `${prefix}.x` }); // [N, C_in, R, R]
  const gW = g.node('MatMul', [gStyles, tape.affine.matrix], {}, { name: `${prefix}.w` }); // [N, wDim]
  return { gX, gW };
}

/** Adjoint of the skip up-sampling (ConvTranspose stride 2, pads 1): Conv with the same filter. */
function skipBackward(g: GraphBuilder, arch: GeneratorArchitecture, block: BlockTape, gImg: string): string {
  return g.node('Conv', [gImg, block.skipFilter!], { strides: [2, 2], pads: [1, 1, 1, 1], group: arch.imgChannels }, { name: `grad.b${block.resolution}.img_down` }); // [N, C_img, R/2, R/2]
}
