/**
 * The mapping network z (+ label c) -> ws as an ONNX graph, following the stylegan2-ada-pytorch
 * `MappingNetwork`: normalize z, embed and normalize c, a stack of equalized-learning-rate fully
 * connected layers, broadcast to numWs rows, then truncation toward w_avg.
 *
 * Graph I/O (see model-manifest.ts): inputs `z [N, zDim]`, `c [N, cDim]` (cDim > 0 only),
 * `psi [N]`, `truncation_cutoff [N]` int64; output `ws [N, numWs, wDim]`.
 */

import type { GeneratorWeights } from '../checkpoint/types.js';
import { scaled, transposeScaled } from './fir.js';
import { checkArchitecture, tensorOf } from './layers.js';
import { float, GraphBuilder } from './onnx-builder.js';

/** Epsilon of normalize_2nd_moment. */
export const normalizeEpsilon = 1e-8;
/** Negative slope of the leaky ReLU. */
export const leakyReluSlope = 0.2;
/** Gain applied after leaky ReLU so that activations keep unit second moment. */
export const leakyReluGain = Math.SQRT2;

/** Graph input and output names of the mapping graph. */
export const mappingIo = { z: 'z', c: 'c', psi: 'psi', truncationCutoff: 'truncation_cutoff', ws: 'ws' } as const;

/** Builds the mapping graph and returns the encoded ONNX model. */
export function buildMappingGraph(weights: GeneratorWeights): Uint8Array {
  const { arch } = weights;
  checkArchitecture(arch);
  if (weights.wAvg.length !== arch.wDim) throw new Error(`wAvg has ${weights.wAvg.length} values, expected wDim ${arch.wDim}`);
  const g = new GraphBuilder('mapping');

  const z = g.input(mappingIo.z, 'float', ['N', arch.zDim]); // [N, zDim]
  const c = arch.cDim > 0 ? g.input(mappingIo.c, 'float', ['N', arch.cDim]) : null; // [N, cDim]
  const psi = g.input(mappingIo.psi, 'float', ['N']); // [N]
  const cutoff = g.input(mappingIo.truncationCutoff, 'int64', ['N']); // [N]

  let x = normalize2ndMoment(g, z, 'z_normalized'); // [N, zDim]
  let features = arch.zDim;
  if (c !== null) {
    const y = fullyConnected(g, weights, c, 'mapping.embed', arch.cDim, arch.embedFeatures, 1, 'linear'); // [N, embedFeatures]
    const yNormalized = normalize2ndMoment(g, y, 'c_normalized'); // [N, embedFeatures]
    x = g.node('Concat', [x, yNormalized], { axis: 1 }, { name: 'zc' }); // [N, zDim + embedFeatures]
    features += arch.embedFeatures;
  }

  for (let i = 0; i < arch.mappingLayers; i++) {
    const outFeatures = i === arch.mappingLayers - 1 ? arch.wDim : arch.mappingFeatures;
    x = fullyConnected(g, weights, x, `mapping.fc${i}`, features, outFeatures, arch.mappingLrMultiplier, 'lrelu'); // [N, out]
    features = outFeatures;
  }

  const ws = broadcastWs(g, x, arch.numWs); // [N, numWs, wDim]
  const center = truncationCenter(g, weights, c); // [wDim] or [N, 1, wDim]
  truncate(g, ws, psi, cutoff, center, arch.numWs, mappingIo.ws); // [N, numWs, wDim]
  g.output(mappingIo.ws, 'float', ['N', arch.numWs, arch.wDim]);
  return g.toBytes({ docString: 'StyleGAN2 mapping network z -> ws (stylegan-serve)' });
}

/** x · rsqrt(mean(x², axis 1) + 1e-8). */
function normalize2ndMoment(g: GraphBuilder, x: string, name: string): string {
  const squared = g.node('Mul', [x, x], {}, { name: `${name}.squared` }); // [N, F]
  const meanSquare = g.node('ReduceMean', [squared], { axes: [1], keepdims: 1 }, { name: `${name}.mean_square` }); // [N, 1]
  const shifted = g.node('Add', [meanSquare, g.scalar(`${name}.epsilon`, normalizeEpsilon)], {}, { name: `${name}.shifted` }); // [N, 1]
  const root = g.node('Sqrt', [shifted], {}, { name: `${name}.root` }); // [N, 1]
  const inverse = g.node('Reciprocal', [root], {}, { name: `${name}.rsqrt` }); // [N, 1]
  return g.node('Mul', [x, inverse], {}, { name }); // [N, F]
}

/**
 * Equalized-learning-rate fully connected layer `act(x · (W·g_w)ᵀ + b·g_b)` with
 * `g_w = lrMultiplier / sqrt(in)` and `g_b = lrMultiplier`, both folded into the initializers.
 */
function fullyConnected(
  g: GraphBuilder,
  weights: GeneratorWeights,
  x: string,
  prefix: string,
  inFeatures: number,
  outFeatures: number,
  lrMultiplier: number,
  activation: 'lrelu' | 'linear',
): string {
  const weight = tensorOf(weights, `${prefix}.weight`, [outFeatures, inFeatures]); // [out, in]
  const bias = tensorOf(weights, `${prefix}.bias`, [outFeatures]); // [out]
  const weightGain = lrMultiplier / Math.sqrt(inFeatures);
  const matrix = g.initializer(`${prefix}.weight_t`, transposeScaled(weight.data, outFeatures, inFeatures, weightGain), [inFeatures, outFeatures]); // [in, out]
  const biasScaled = g.initializer(`${prefix}.bias_scaled`, scaled(bias.data, lrMultiplier), [outFeatures]); // [out]
  const product = g.node('MatMul', [x, matrix], {}, { name: `${prefix}.matmul` }); // [N, out]
  const biased = g.node('Add', [product, biasScaled], {}, { name: `${prefix}.biased` }); // [N, out]
  if (activation === 'linear') return biased;
  const activated = g.node('LeakyRelu', [biased], { alpha: float(leakyReluSlope) }, { name: `${prefix}.lrelu` }); // [N, out]
  return g.node('Mul', [activated, g.scalar(`${prefix}.gain`, leakyReluGain)], {}, { name: prefix }); // [N, out]
}

/** Repeats w once per synthesis layer: `[N, wDim] -> [N, numWs, wDim]`. */
function broadcastWs(g: GraphBuilder, w: string, numWs: number): string {
  const unsqueezed = g.node('Unsqueeze', [w, g.int64s('ws.axes', [1])], {}, { name: 'w_unsqueezed' }); // [N, 1, wDim]
  return g.node('Expand', [unsqueezed, g.int64s('ws.repeat_shape', [1, numWs, 1])], {}, { name: 'ws_broadcast' }); // [N, numWs, wDim]
}

/**
 * The truncation centre: the global w_avg `[wDim]`, or, for conditional models that store one
 * average per class, the label-weighted mix `c · wAvgPerClass` `[N, 1, wDim]` (the class's own
 * centre for a one-hot label).
 */
function truncationCenter(g: GraphBuilder, weights: GeneratorWeights, c: string | null): string {
  const { cDim, wDim } = weights.arch;
  if (c === null || !weights.wAvgPerClass) return g.initializer('mapping.w_avg', weights.wAvg, [wDim]); // [wDim]
  if (weights.wAvgPerClass.length !== cDim * wDim) {
    throw new Error(`wAvgPerClass has ${weights.wAvgPerClass.length} values, expected cDim·wDim = ${cDim * wDim}`);
  }
  const perClass = g.initializer('mapping.w_avg_per_class', weights.wAvgPerClass, [cDim, wDim]); // [cDim, wDim]
  const mixed = g.node('MatMul', [c, perClass], {}, { name: 'truncation.class_center' }); // [N, wDim]
  return g.node('Unsqueeze', [mixed, g.int64s('truncation.center_axes', [1])], {}, { name: 'truncation.center' }); // [N, 1, wDim]
}

/**
 * Truncation `w_avg + psi · (ws − w_avg)` on the rows `l < truncation_cutoff`. Rows whose psi is
 * exactly 1 keep the mapping output unchanged, as the reference skips truncation for psi = 1.
 */
function truncate(g: GraphBuilder, ws: string, psi: string, cutoff: string, center: string, numWs: number, output: string): string {
  const offset = g.node('Sub', [ws, center], {}, { name: 'truncation.offset' }); // [N, numWs, wDim]
  const psiColumn = g.node('Unsqueeze', [psi, g.int64s('truncation.psi_axes', [1, 2])], {}, { name: 'truncation.psi' }); // [N, 1, 1]
  const scaledOffset = g.node('Mul', [psiColumn, offset], {}, { name: 'truncation.scaled_offset' }); // [N, numWs, wDim]
  const truncated = g.node('Add', [center, scaledOffset], {}, { name: 'truncation.truncated' }); // [N, numWs, wDim]

  const layerIndices = g.initializerInt64('truncation.layer_index', Array.from({ length: numWs }, (_, l) => l), [1, numWs]); // [1, numWs]
  const cutoffColumn = g.node('Unsqueeze', [cutoff, g.int64s('truncation.cutoff_axes', [1])], {}, { name: 'truncation.cutoff' }); // [N, 1]
  const belowCutoff = g.node('Less', [layerIndices, cutoffColumn], {}, { name: 'truncation.below_cutoff' }); // [N, numWs]
  const psiIsOne = g.node('Equal', [psi, g.scalar('truncation.one', 1)], {}, { name: 'truncation.psi_is_one' }); // [N]
  const psiNotOne = g.node('Not', [psiIsOne], {}, { name: 'truncation.psi_not_one' }); // [N]
  const psiNotOneColumn = g.node('Unsqueeze', [psiNotOne, g.int64s('truncation.row_axes', [1])], {}, { name: 'truncation.apply_row' }); // [N, 1]
  const applies = g.node('And', [belowCutoff, psiNotOneColumn], {}, { name: 'truncation.applies' }); // [N, numWs]
  const appliesPerRow = g.node('Unsqueeze', [applies, g.int64s('truncation.mask_axes', [2])], {}, { name: 'truncation.mask' }); // [N, numWs, 1]
  return g.node('Where', [appliesPerRow, truncated, ws], {}, { output }); // [N, numWs, wDim]
}
