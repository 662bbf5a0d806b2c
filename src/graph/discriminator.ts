/**
 * The feature blocks of a stylegan2-ada-pytorch discriminator (`b{R}` .. `b8`, no epilogue) as ONNX
 * ops, with a tape of intermediates, and their hand-written adjoint. Per block:
 *
 *   x     = fromrgb(img)                                  (first block only; 1x1, lrelu, clamp)
 *   skip  = Conv1x1(FIR↓2(x)) · sqrt(0.5)                 ('resnet' only; no bias, linear)
 *   y     = conv1(conv0(x))                                (conv0: 3x3; conv1: FIR, 3x3 stride 2)
 *   out   = skip + y
 *
 * Every conv layer is `clamp(lrelu(conv(x, W·wg) + b)·sqrt(2)·g, clamp·g)`, with the weight gain
 * `wg = 1/sqrt(C_in·k²)` and `g = sqrt(0.5)` on conv1 of 'resnet' blocks (1 otherwise). FIR is the
 * [1, 3, 3, 1] filter normalised to sum 1. The down-sampling conv pads the FIR by 2 and then runs
 * the 3x3 conv with stride 2; the skip filters with stride 2 and padding 1 before its 1x1 conv.
 *
 * Adjoints: Conv ↔ ConvTranspose with the same weights, strides and pads; LeakyRelu·gain and Clip
 * multiply by their masks (as in gradient-backward.ts).
 */

import { discriminatorBlockResolutions, type DiscriminatorWeights, type Tensor } from '../checkpoint/types.js';
import { scaled, upsampleFilter2d, upsampleGain } from './fir.js';
import { leakyReluGain, leakyReluSlope } from './mapping.js';
import { float, type GraphBuilder } from './onnx-builder.js';

/** Gain of the conv1 and skip branches of a 'resnet' block. */
const resnetBranchGain = Math.sqrt(0.5);

/** A depthwise FIR initializer and its channel count (the Conv group). */
interface Fir {
  filter: string;
  channels: number;
}

/** Initializers of one conv layer of D. */
interface ConvInit {
  layer: string;
  weight: string; // [C_out, C_in, k, k], weight gain folded in
  bias: string; // [1, C_out, 1, 1]
  kernelSize: number;
  /** Activation gain sqrt(2)·g and clamp bound clamp·g (null: no clamp). */
  gain: number;
  clamp: number | null;
}

interface BlockInit {
  resolution: number;
  fromrgb: ConvInit | null;
  conv0: ConvInit;
  conv1: ConvInit;
  /** Depthwise FIR `[C_tmp, 1, 4, 4]` shared by conv1 and skip. */
  fir: Fir;
  /** Skip 1x1 kernel `[C_out, C_tmp, 1, 1]` with weight gain and sqrt(0.5) folded in, or null ('orig'). */
  skip: string | null;
}

/** The discriminator's initializers; one set serves the image and the target forwards. */
export interface DiscriminatorGraph {
  blocks: BlockInit[];
}

interface ConvTape {
  init: ConvInit;
  /** conv + bias, fed to the activation. */
  biased: string;
  /** Activation output before the clamp. */
  activated: string;
}

export interface BlockTape {
  init: BlockInit;
  fromrgb: ConvTape | null;
  conv0: ConvTape;
  conv1: ConvTape;
  /** Block output `[N, C_out, R/2, R/2]`, the feature map of the loss. */
  output: string;
}

function tensor(d: DiscriminatorWeights, name: string): Tensor {
  const value = d.tensors.get(name);
  if (value === undefined) throw new Error(`discriminator tensor ${name} is missing; re-read the checkpoint`);
  return value;
}

/** Down-sampling FIR `[1, 3, 3, 1]ᵀ[1, 3, 3, 1] / 64`, repeated per channel: `[channels, 1, 4, 4]`. */
export function downsampleFir(channels: number): Float32Array {
  const filter = upsampleFilter2d();
  const out = new Float32Array(channels * 16);
  for (let c = 0; c < channels; c++) for (let i = 0; i < 16; i++) out[c * 16 + i] = filter[i] / upsampleGain;
  return out;
}

function convInit(g: GraphBuilder, d: DiscriminatorWeights, layer: string, kernelSize: number, branchGain: number): ConvInit {
  const weight = tensor(d, `${layer}.weight`);
  const [outChannels, inChannels] = weight.shape;
  const clamp = d.arch.convClamp === null ? null : d.arch.convClamp * branchGain;
  return {
    layer,
    weight: g.initializer(`disc.${layer}.weight`, scaled(weight.data, 1 / Math.sqrt(inChannels * kernelSize * kernelSize)), weight.shape),
    bias: g.initializer(`disc.${layer}.bias`, tensor(d, `${layer}.bias`).data, [1, outChannels, 1, 1]),
    kernelSize,
    gain: leakyReluGain * branchGain,
    clamp,
  };
}

/** Adds D's weights as initializers. */
export function discriminatorInitializers(g: GraphBuilder, d: DiscriminatorWeights): DiscriminatorGraph {
  const resnet = d.arch.architecture === 'resnet';
  const blocks = discriminatorBlockResolutions(d.arch.resolution).map((res, i): BlockInit => {
    const tmp = d.arch.tmpChannels[res];
    let skip: string | null = null;
    if (resnet) {
      const weight = tensor(d, `b${res}.skip.weight`);
      skip = g.initializer(`disc.b${res}.skip.weight`, scaled(weight.data, resnetBranchGain / Math.sqrt(tmp)), weight.shape);
    }
    return {
      resolution: res,
      fromrgb: i === 0 ? convInit(g, d, `b${res}.fromrgb`, 1, 1) : null,
      conv0: convInit(g, d, `b${res}.conv0`, 3, 1),
      conv1: convInit(g, d, `b${res}.conv1`, 3, resnet ? resnetBranchGain : 1),
      fir: { filter: g.initializer(`disc.b${res}.fir`, downsampleFir(tmp), [tmp, 1, 4, 4]), channels: tmp },
      skip,
    };
  });
  return { blocks };
}

function convForward(g: GraphBuilder, init: ConvInit, x: string, prefix: string, fir: Fir | null): { tape: ConvTape; output: string } {
  const name = `${prefix}.${init.layer}`;
  let convolved: string;
  if (fir !== null) {
    const filtered = g.node('Conv', [x, fir.filter], { pads: [2, 2, 2, 2], group: fir.channels }, { name: `${name}.fir` }); // [N, C_in, R + 1, R + 1]
    convolved = g.node('Conv', [filtered, init.weight], { strides: [2, 2] }, { name: `${name}.conv` }); // [N, C_out, R/2, R/2]
  } else {
    const pad = (init.kernelSize - 1) / 2;
    convolved = g.node('Conv', [x, init.weight], { pads: [pad, pad, pad, pad] }, { name: `${name}.conv` }); // [N, C_out, R, R]
  }
  const biased = g.node('Add', [convolved, init.bias], {}, { name: `${name}.biased` });
  const lrelu = g.node('LeakyRelu', [biased], { alpha: float(leakyReluSlope) }, { name: `${name}.lrelu` });
  const activated = g.node('Mul', [lrelu, g.scalar(`${name}.act_gain`, init.gain)], {}, { name: `${name}.activated` });
  const output = init.clamp === null ? activated : g.node('Clip', [activated, g.scalar(`${name}.clamp_min`, -init.clamp), g.scalar(`${name}.clamp_max`, init.clamp)], {}, { name: `${name}.clamped` });
  return { tape: { init, biased, activated }, output };
}

/** Runs the feature blocks on `img [N, C_img, R, R]`; `prefix` keeps the image and target value names apart. */
export function discriminatorForward(g: GraphBuilder, graph: DiscriminatorGraph, img: string, prefix: string): BlockTape[] {
  const tapes: BlockTape[] = [];
  let x = img;
  for (const block of graph.blocks) {
    let fromrgb: ConvTape | null = null;
    if (block.fromrgb !== null) {
      const layer = convForward(g, block.fromrgb, x, prefix, null);
      fromrgb = layer.tape;
      x = layer.output; // [N, C_tmp, R, R]
    }
    const conv0 = convForward(g, block.conv0, x, prefix, null); // [N, C_tmp, R, R]
    const conv1 = convForward(g, block.conv1, conv0.output, prefix, block.fir); // [N, C_out, R/2, R/2]
    let output = conv1.output;
    if (block.skip !== null) {
      const name = `${prefix}.b${block.resolution}.skip`;
      const filtered = g.node('Conv', [x, block.fir.filter], { strides: [2, 2], pads: [1, 1, 1, 1], group: block.fir.channels }, { name: `${name}.fir` }); // [N, C_tmp, R/2, R/2]
      const skip = g.node('Conv', [filtered, block.skip], {}, { name: `${name}.conv` }); // [N, C_out, R/2, R/2]
      output = g.node('Add', [skip, conv1.output], {}, { name: `${prefix}.b${block.resolution}.out` });
    }
    tapes.push({ init: block, fromrgb, conv0: conv0.tape, conv1: conv1.tape, output });
    x = output;
  }
  return tapes;
}

function convBackward(g: GraphBuilder, tape: ConvTape, gOut: string, fir: Fir | null): string {
  const { init } = tape;
  const name = `grad.disc.${init.layer}`;
  let grad = gOut;
  if (init.clamp !== null) {
    const low = g.node('GreaterOrEqual', [tape.activated, g.scalar(`${name}.clamp_min`, -init.clamp)], {}, { name: `${name}.above_min` });
    const high = g.node('LessOrEqual', [tape.activated, g.scalar(`${name}.clamp_max`, init.clamp)], {}, { name: `${name}.below_max` });
    const inside = g.node('Cast', [g.node('And', [low, high], {}, { name: `${name}.inside` })], { to: 1 }, { name: `${name}.clip_mask` });
    grad = g.node('Mul', [grad, inside], {}, { name: `${name}.unclipped` });
  }
  const positive = g.node('Greater', [tape.biased, g.scalar(`${name}.zero`, 0)], {}, { name: `${name}.positive` });
  const slope = g.node('Where', [positive, g.scalar(`${name}.slope_pos`, init.gain), g.scalar(`${name}.slope_neg`, init.gain * leakyReluSlope)], {}, { name: `${name}.act_slope` });
  const gBiased = g.node('Mul', [grad, slope], {}, { name: `${name}.pre_act` }); // [N, C_out, H, H]
  if (fir !== null) {
    const gFiltered = g.node('ConvTranspose', [gBiased, init.weight], { strides: [2, 2] }, { name: `${name}.conv` }); // [N, C_in, R + 1, R + 1]
    return g.node('ConvTranspose', [gFiltered, fir.filter], { pads: [2, 2, 2, 2], group: fir.channels }, { name: `${name}.fir` }); // [N, C_in, R, R]
  }
  const pad = (init.kernelSize - 1) / 2;
  return g.node('ConvTranspose', [gBiased, init.weight], { pads: [pad, pad, pad, pad] }, { name: `${name}.conv` }); // [N, C_in, R, R]
}

/**
 * Back-propagates the loss gradients of the block outputs (`gFeatures[b]`, same order as `tapes`)
 * to the image and returns dL/dimg `[N, C_img, R, R]`.
 */
export function discriminatorBackward(g: GraphBuilder, tapes: BlockTape[], gFeatures: string[]): string {
  let gOut: string | null = null; // gradient of the current block's output
  for (let b = tapes.length - 1; b >= 0; b--) {
    const tape = tapes[b];
    const res = tape.init.resolution;
    gOut = gOut === null ? gFeatures[b] : g.node('Add', [gOut, gFeatures[b]], {}, { name: `grad.disc.b${res}.out` }); // [N, C_out, R/2, R/2]
    const gConv0 = convBackward(g, tape.conv1, gOut, tape.init.fir); // [N, C_tmp, R, R]
    let gX = convBackward(g, tape.conv0, gConv0, null); // [N, C_tmp, R, R]
    if (tape.init.skip !== null) {
      const gFiltered = g.node('ConvTranspose', [gOut, tape.init.skip], {}, { name: `grad.disc.b${res}.skip.conv` }); // [N, C_tmp, R/2, R/2]
      const gSkip = g.node('ConvTranspose', [gFiltered, tape.init.fir.filter], { strides: [2, 2], pads: [1, 1, 1, 1], group: tape.init.fir.channels }, { name: `grad.disc.b${res}.skip.fir` }); // [N, C_tmp, R, R]
      gX = g.node('Add', [gX, gSkip], {}, { name: `grad.disc.b${res}.x` });
    }
    if (tape.fromrgb !== null) gX = convBackward(g, tape.fromrgb, gX, null); // [N, C_img, R, R]
    gOut = gX;
  }
  if (gOut === null) throw new Error('the discriminator has no feature blocks');
  return gOut;
}
