/**
 * The synthesis gradient graph `synthesis_grad.onnx`: forward synthesis, the projection loss
 * against a target image, and the explicit backward pass (gradient-backward.ts), all in one ONNX
 * graph that ONNX Runtime can run for inference.
 *
 * Inputs: `ws [N, numWs, wDim]`; `noise_<i> [N or 1, 1, R, R]` as in synthesis.onnx;
 * `target [N, C_img, R, R]` in [-1, 1]; `loss_weights [4]` (see gradient-loss.ts).
 * Outputs: `loss [N]`; `img [N, C_img, R, R]`; `grad_ws [N, numWs, wDim]` = dloss/dws;
 * `grad_noise_<i> [N, 1, R, R]` = dloss/dnoise_i per batch row. A noise map fed with batch 1 is
 * shared by all rows, so its gradient is the sum of the rows.
 */

import type { GeneratorArchitecture, GeneratorWeights } from '../checkpoint/types.js';
import { buildBackward } from './gradient-backward.js';
import { buildForwardWithTape, type ForwardTape } from './gradient-forward.js';
import { buildLoss } from './gradient-loss.js';
import { noiseLayers } from './layers.js';
import { GraphBuilder } from './onnx-builder.js';

export const gradientIo = {
  ws: 'ws',
  target: 'target',
  lossWeights: 'loss_weights',
  loss: 'loss',
  img: 'img',
  gradWs: 'grad_ws',
} as const;

/** Output name of dloss/d`noise_<i>`. */
export function noiseGradientName(noiseInput: string): string {
  return `grad_${noiseInput}`;
}

/** Number of entries of the `loss_weights` input. */
export const lossWeightCount = 4;

/** The graph inputs shared by every gradient graph. */
export interface GradientInputs {
  ws: string; // [N, numWs, wDim]
  noiseInputs: Map<string, string>; // layer name -> [B, 1, R, R]
  target: string; // [N, C, R, R]
  lossWeights: string; // [4]
}

/** Declares the inputs of a gradient graph (ws, noise maps, target, loss weights). */
export function gradientInputs(g: GraphBuilder, arch: GeneratorArchitecture): GradientInputs {
  const ws = g.input(gradientIo.ws, 'float', ['N', arch.numWs, arch.wDim]); // [N, numWs, wDim]
  const noiseInputs = new Map<string, string>();
  for (const noise of noiseLayers(arch)) {
    noiseInputs.set(noise.layer, g.input(noise.name, 'float', ['noise_batch', 1, noise.resolution, noise.resolution])); // [B, 1, R, R]
  }
  const target = g.input(gradientIo.target, 'float', ['N', arch.imgChannels, arch.resolution, arch.resolution]); // [N, C, R, R]
  const lossWeights = g.input(gradientIo.lossWeights, 'float', [lossWeightCount]); // [4]
  return { ws, noiseInputs, target, lossWeights };
}

/** Back-propagates `gradImg` through the synthesis tape and declares the outputs loss, img, grad_ws and grad_noise_<i>. */
export function gradientOutputs(g: GraphBuilder, tape: ForwardTape, loss: string, gradImg: string): void {
  const { arch } = tape;
  const backward = buildBackward(g, tape, gradImg);
  const rows: string[] = [];
  for (let l = 0; l < arch.numWs; l++) {
    const parts = backward.wsGradients.get(l);
    if (!parts || parts.length === 0) throw new Error(`ws row ${l} feeds no layer; numWs ${arch.numWs} does not match the synthesis layers`);
    const sum = parts.reduce((total, part) => g.node('Add', [total, part], {}, { name: `grad.ws${l}.sum` })); // [N, wDim]
    rows.push(g.node('Unsqueeze', [sum, g.int64s(`grad.ws${l}.axes`, [1])], {}, { name: `grad.ws${l}` })); // [N, 1, wDim]
  }
  g.node('Concat', rows, { axis: 1 }, { output: gradientIo.gradWs }); // [N, numWs, wDim]

  g.node('Identity', [loss], {}, { output: gradientIo.loss }); // [N]
  g.node('Identity', [tape.img], {}, { output: gradientIo.img }); // [N, C, R, R]
  g.output(gradientIo.loss, 'float', ['N']);
  g.output(gradientIo.img, 'float', ['N', arch.imgChannels, arch.resolution, arch.resolution]);
  g.output(gradientIo.gradWs, 'float', ['N', arch.numWs, arch.wDim]);
  for (const noise of noiseLayers(arch)) {
    const gradient = backward.noiseGradients.get(noise.layer);
    if (gradient === undefined) throw new Error(`no gradient was built for noise layer ${noise.layer}`);
    const name = noiseGradientName(noise.name);
    g.node('Identity', [gradient], {}, { output: name }); // [N, 1, R, R]
    g.output(name, 'float', ['N', 1, noise.resolution, noise.resolution]);
  }
}

/** Builds the gradient graph and returns the encoded ONNX model. */
export function buildSynthesisGradientGraph(weights: GeneratorWeights): Uint8Array {
  const { arch } = weights;
  const g = new GraphBuilder('synthesis_grad');
  const inputs = gradientInputs(g, arch);
  const tape = buildForwardWithTape(g, weights, inputs.ws, inputs.noiseInputs);
  const { loss, gradImg } = buildLoss(g, tape.img, inputs.target, inputs.lossWeights, arch.imgChannels, arch.resolution);
  gradientOutputs(g, tape, loss, gradImg);
  return g.toBytes({ docString: 'StyleGAN2 synthesis loss and its gradients w.r.t. ws and noise (stylegan-serve)' });
}
