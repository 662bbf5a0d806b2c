/**
 * The discriminator-feature gradient graph `synthesis_grad_d.onnx`, written when the checkpoint
 * carries a supported discriminator. Same inputs and outputs as `synthesis_grad.onnx`
 * (gradient.ts); only the loss differs. Per batch row:
 *
 *   loss = Σ_b mean_hw Σ_c (n_b(img) − n_b(target))² + w0·MSE(img, target)
 *
 * where `n_b(x)` is the output of D block b (b{R} .. b8, see discriminator.ts) divided by its
 * channel norm `sqrt(Σ_c F² + eps)` at each pixel, and w0 = `loss_weights[0]` (entries 1..3 are
 * unused). The gradient of the normalisation, with r = (Σ_c F² + eps)^(-1/2) and upstream g:
 * dL/dF = r·(g − n·Σ_c g·n).
 */

import type { DiscriminatorWeights, GeneratorWeights } from '../checkpoint/types.js';
import { discriminatorBackward, discriminatorForward, discriminatorInitializers } from './discriminator.js';
import { reduceSum } from './gradient-backward.js';
import { buildForwardWithTape } from './gradient-forward.js';
import { gradientInputs, gradientOutputs } from './gradient.js';
import { GraphBuilder } from './onnx-builder.js';

/** Stabiliser of the channel norm of a feature map. */
export const featureNormEpsilon = 1e-8;

/** Builds the discriminator-feature gradient graph and returns the encoded ONNX model. */
export function buildDiscriminatorGradientGraph(weights: GeneratorWeights): Uint8Array {
  const { arch } = weights;
  const d = weights.discriminator;
  if (d === undefined) throw new Error('the checkpoint has no discriminator; the discriminator-feature graph needs one (an NVlabs network pickle with D)');
  checkCompatible(weights, d);
  const g = new GraphBuilder('synthesis_grad_d');
  const inputs = gradientInputs(g, arch);
  const tape = buildForwardWithTape(g, weights, inputs.ws, inputs.noiseInputs);

  const graph = discriminatorInitializers(g, d);
  const imgBlocks = discriminatorForward(g, graph, tape.img, 'disc');
  // NOTE: the target's features are recomputed on every projection step, because the graph inputs are
  // those of synthesis_grad.onnx. Feeding them precomputed would save one D forward per step.
  const targetBlocks = discriminatorForward(g, graph, inputs.target, 'disc_target');
  const terms: string[] = [];
  const gFeatures: string[] = [];
  imgBlocks.forEach((block, b) => {
    const res = block.init.resolution;
    const term = featureDistance(g, block.output, targetBlocks[b].output, res / 2, `loss.disc.b${res}`);
    terms.push(term.loss);
    gFeatures.push(term.gradFeature);
  });
  const gImgFeatures = discriminatorBackward(g, imgBlocks, gFeatures); // [N, C_img, R, R]

  // w0·MSE(img, target) and its gradient 2·w0/count·(img − target).
  const count = arch.imgChannels * arch.resolution * arch.resolution;
  const w0 = g.node('Gather', [inputs.lossWeights, g.initializerInt64('loss.pixel_weight_index', [0], [])], { axis: 0 }, { name: 'loss.pixel_weight' }); // []
  const diff = g.node('Sub', [tape.img, inputs.target], {}, { name: 'loss.pixel_diff' }); // [N, C, R, R]
  const sse = reduceSum(g, g.node('Mul', [diff, diff], {}, { name: 'loss.pixel_sq' }), [1, 2, 3], false, 'loss.pixel_sse'); // [N]
  terms.push(g.node('Mul', [sse, g.node('Mul', [w0, g.scalar('loss.pixel_inv_count', 1 / count)], {}, { name: 'loss.pixel_scale' })], {}, { name: 'loss.pixel_mse' }));
  const gPixel = g.node('Mul', [diff, g.node('Mul', [w0, g.scalar('loss.pixel_two_inv_count', 2 / count)], {}, { name: 'loss.pixel_grad_scale' })], {}, { name: 'loss.pixel_grad' });

  const loss = terms.reduce((sum, term, i) => g.node('Add', [sum, term], {}, { name: `loss.sum${i}` })); // [N]
  const gradImg = g.node('Add', [gImgFeatures, gPixel], {}, { name: 'loss.grad_img' }); // [N, C, R, R]
  gradientOutputs(g, tape, loss, gradImg);
  return g.toBytes({ docString: 'StyleGAN2 synthesis, discriminator-feature loss and its gradients w.r.t. ws and noise (stylegan-serve)' });
}

function checkCompatible(weights: GeneratorWeights, d: DiscriminatorWeights): void {
  const { resolution, imgChannels } = weights.arch;
  if (d.arch.resolution !== resolution || d.arch.imgChannels !== imgChannels) {
    throw new Error(
      `the discriminator reads ${d.arch.imgChannels}x${d.arch.resolution}x${d.arch.resolution} images but the generator writes ` +
        `${imgChannels}x${resolution}x${resolution}; they are not from the same snapshot`,
    );
  }
}

/** `Σ_hw Σ_c (n(F) − n(T))² / (size²)` per row and its gradient w.r.t. F `[N, C, size, size]`. */
function featureDistance(g: GraphBuilder, feature: string, target: string, size: number, prefix: string): { loss: string; gradFeature: string } {
  const epsilon = g.scalar(`${prefix}.eps`, featureNormEpsilon);
  const inverseNorm = (x: string, name: string) => {
    const squares = reduceSum(g, g.node('Mul', [x, x], {}, { name: `${prefix}.${name}_sq` }), [1], true, `${prefix}.${name}_sq_sum`); // [N, 1, H, W]
    return g.node('Reciprocal', [g.node('Sqrt', [g.node('Add', [squares, epsilon], {}, { name: `${prefix}.${name}_sq_eps` })], {}, { name: `${prefix}.${name}_norm` })], {}, { name: `${prefix}.${name}_inv_norm` });
  };
  const rF = inverseNorm(feature, 'img'); // [N, 1, H, W]
  const rT = inverseNorm(target, 'target');
  const nF = g.node('Mul', [feature, rF], {}, { name: `${prefix}.img_unit` }); // [N, C, H, W]
  const nT = g.node('Mul', [target, rT], {}, { name: `${prefix}.target_unit` });
  const diff = g.node('Sub', [nF, nT], {}, { name: `${prefix}.diff` }); // [N, C, H, W]
  const sum = reduceSum(g, g.node('Mul', [diff, diff], {}, { name: `${prefix}.diff_sq` }), [1, 2, 3], false, `${prefix}.sse`); // [N]
  const loss = g.node('Mul', [sum, g.scalar(`${prefix}.inv_area`, 1 / (size * size))], {}, { name: `${prefix}.loss` }); // [N]

  const gUnit = g.node('Mul', [diff, g.scalar(`${prefix}.two_inv_area`, 2 / (size * size))], {}, { name: `${prefix}.grad_unit` }); // [N, C, H, W]
  const projection = reduceSum(g, g.node('Mul', [gUnit, nF], {}, { name: `${prefix}.grad_dot` }), [1], true, `${prefix}.grad_dot_sum`); // [N, 1, H, W]
  const radial = g.node('Mul', [nF, projection], {}, { name: `${prefix}.grad_radial` }); // [N, C, H, W]
  const gradFeature = g.node('Mul', [g.node('Sub', [gUnit, radial], {}, { name: `${prefix}.grad_tangent` }), rF], {}, { name: `${prefix}.grad_feature` });
  return { loss, gradFeature };
}
