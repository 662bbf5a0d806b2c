/**
 * The projection loss and its gradient with respect to the generated image, as ONNX ops. Needs no
 * downloaded network. Per batch row:
 *
 *   loss = w0·MSE(img, target) + w1·MSE(box2(img), box2(target)) + w2·MSE(box4(img), box4(target))
 *        + w3·(1 − SSIM(img, target))
 *
 * MSE is the mean over channels and pixels of images in [-1, 1]. `boxK` is a K×K box average with
 * stride K. SSIM (Wang et al. 2004) maps the images to [0, 1] first (data range 1,
 * C1 = 0.01², C2 = 0.03²). It uses a Gaussian window of 11 taps with σ = 1.5 (fewer taps below
 * 16 px), valid filtering, per channel, and takes the mean of the SSIM map. The weights
 * w0..w3 are the `loss_weights [4]` graph input, so one graph serves every loss preset.
 */

import type { GraphBuilder } from './onnx-builder.js';
import { reduceSum } from './gradient-backward.js';

/** SSIM stabilisers for data range 1. */
export const ssimC1 = 0.01 ** 2;
export const ssimC2 = 0.03 ** 2;
/** SSIM Gaussian window: standard deviation in pixels, and the largest tap count. */
export const ssimSigma = 1.5;
export const ssimMaxWindow = 11;
/** Box down-sampling factors of the pixel terms, in `loss_weights` order. */
export const pixelScales = [1, 2, 4] as const;

export interface LossResult {
  loss: string; // [N]
  gradImg: string; // [N, C, R, R]
}

/** SSIM window side for resolution R: 11, or the largest odd size below R for small images. */
export function ssimWindowSize(resolution: number): number {
  return Math.min(ssimMaxWindow, resolution % 2 === 0 ? resolution - 1 : resolution);
}

/** Normalised 2-D Gaussian `[size, size]` (row-major) with standard deviation `ssimSigma`. */
export function gaussianWindow(size: number): Float32Array {
  const taps = Array.from({ length: size }, (_, i) => Math.exp(-((i - (size - 1) / 2) ** 2) / (2 * ssimSigma ** 2)));
  const total = taps.reduce((sum, tap) => sum + tap, 0);
  const window = new Float32Array(size * size);
  for (let y = 0; y < size; y++) for (let x = 0; x < size; x++) window[y * size + x] = (taps[y] * taps[x]) / total ** 2;
  return window;
}

function depthwise(kernel: Float32Array, channels: number): Float32Array {
  const out = new Float32Array(channels * kernel.length);
  for (let c = 0; c < channels; c++) out.set(kernel, c * kernel.length);
  return out;
}

/** Appends the loss of `img` against `target` (both `[N, C, R, R]`) and dLoss/dimg. */
export function buildLoss(g: GraphBuilder, img: string, target: string, lossWeights: string, channels: number, resolution: number): LossResult {
  const weight = (i: number) => g.node('Gather', [lossWeights, g.initializerInt64(`loss.weight_index_${i}`, [i], [])], { axis: 0 }, { name: `loss.weight_${i}` }); // []
  const lossTerms: string[] = [];
  const gradTerms: string[] = [];

  pixelScales.forEach((factor, i) => {
    const w = weight(i);
    const size = resolution / factor;
    const count = channels * size * size;
    let imgScaled = img;
    let targetScaled = target;
    let box: string | null = null;
    if (factor > 1) {
      box = g.initializer(`loss.box${factor}`, depthwise(new Float32Array(factor * factor).fill(1 / (factor * factor)), channels), [channels, 1, factor, factor]);
      imgScaled = g.node('Conv', [img, box], { strides: [factor, factor], group: channels }, { name: `loss.img_box${factor}` }); // [N, C, R/k, R/k]
      targetScaled = g.node('Conv', [target, box], { strides: [factor, factor], group: channels }, { name: `loss.target_box${factor}` });
    }
    const diff = g.node('Sub', [imgScaled, targetScaled], {}, { name: `loss.diff${factor}` }); // [N, C, R/k, R/k]
    const squared = reduceSum(g, g.node('Mul', [diff, diff], {}, { name: `loss.sq${factor}` }), [1, 2, 3], false, `loss.sse${factor}`); // [N]
    lossTerms.push(g.node('Mul', [squared, g.node('Mul', [w, g.scalar(`loss.inv_count${factor}`, 1 / count)], {}, { name: `loss.scale${factor}` })], {}, { name: `loss.mse${factor}` }));
    // d/dimg of w·Σdiff²/count = 2w/count · diff, pushed back through the box filter.
    let grad = g.node('Mul', [diff, g.node('Mul', [w, g.scalar(`loss.two_inv_count${factor}`, 2 / count)], {}, { name: `loss.grad_scale${factor}` })], {}, { name: `loss.grad_diff${factor}` });
    if (box !== null) grad = g.node('ConvTranspose', [grad, box], { strides: [factor, factor], group: channels }, { name: `loss.grad_unbox${factor}` }); // [N, C, R, R]
    gradTerms.push(grad);
  });

  const ssim = ssimTerm(g, img, target, weight(pixelScales.length), channels, resolution);
  lossTerms.push(ssim.loss);
  gradTerms.push(ssim.gradImg);

  const loss = lossTerms.reduce((sum, term, i) => g.node('Add', [sum, term], {}, { name: `loss.sum${i}` })); // [N]
  const gradImg = gradTerms.reduce((sum, term, i) => g.node('Add', [sum, term], {}, { name: `loss.grad_sum${i}` })); // [N, C, R, R]
  return { loss, gradImg };
}

/**
 * `w·(1 − mean SSIM)` and its gradient. With S = A1·A2/(B1·B2), where A1 = 2μxμy + C1,
 * A2 = 2σxy + C2, B1 = μx² + μy² + C1 and B2 = σx² + σy² + C2:
 * ∂S/∂μx = 2μy(A2 − A1)/(B1B2) + 2μx·S·(1/B2 − 1/B1), ∂S/∂E[x²] = −S/B2, ∂S/∂E[xy] = 2A1/(B1B2),
 * and each E[·] = G∗(·) goes back through the transposed Gaussian filter.
 */
function ssimTerm(g: GraphBuilder, img: string, target: string, weight: string, channels: number, resolution: number): LossResult {
  const size = ssimWindowSize(resolution);
  const outSize = resolution - size + 1;
  const count = channels * outSize * outSize;
  const window = g.initializer('loss.ssim_window', depthwise(gaussianWindow(size), channels), [channels, 1, size, size]);
  const filter = (x: string, name: string) => g.node('Conv', [x, window], { group: channels }, { name: `loss.ssim_${name}` }); // [N, C, R', R']
  const filterT = (x: string, name: string) => g.node('ConvTranspose', [x, window], { group: channels }, { name: `loss.ssim_grad_${name}` }); // [N, C, R, R]
  const mul = (a: string, b: string, name: string) => g.node('Mul', [a, b], {}, { name: `loss.ssim_${name}` });
  const add = (a: string, b: string, name: string) => g.node('Add', [a, b], {}, { name: `loss.ssim_${name}` });
  const sub = (a: string, b: string, name: string) => g.node('Sub', [a, b], {}, { name: `loss.ssim_${name}` });
  const div = (a: string, b: string, name: string) => g.node('Div', [a, b], {}, { name: `loss.ssim_${name}` });
  const half = g.scalar('loss.ssim_half', 0.5);
  const two = g.scalar('loss.ssim_two', 2);
  const c1 = g.scalar('loss.ssim_c1', ssimC1);
  const c2 = g.scalar('loss.ssim_c2', ssimC2);

  // [-1, 1] -> [0, 1]
  const x = mul(add(img, g.scalar('loss.ssim_one', 1), 'x_shift'), half, 'x'); // [N, C, R, R]
  const y = mul(add(target, g.scalar('loss.ssim_one_t', 1), 'y_shift'), half, 'y');
  const muX = filter(x, 'mu_x'); // [N, C, R', R']
  const muY = filter(y, 'mu_y');
  const eXX = filter(mul(x, x, 'xx'), 'e_xx');
  const eYY = filter(mul(y, y, 'yy'), 'e_yy');
  const eXY = filter(mul(x, y, 'xy'), 'e_xy');
  const muXmuY = mul(muX, muY, 'mu_xy');
  const muX2 = mul(muX, muX, 'mu_x2');
  const muY2 = mul(muY, muY, 'mu_y2');
  const sigmaXX = sub(eXX, muX2, 'sigma_xx');
  const sigmaYY = sub(eYY, muY2, 'sigma_yy');
  const sigmaXY = sub(eXY, muXmuY, 'sigma_xy');
  const a1 = add(mul(muXmuY, two, 'two_mu_xy'), c1, 'a1');
  const a2 = add(mul(sigmaXY, two, 'two_sigma_xy'), c2, 'a2');
  const b1 = add(add(muX2, muY2, 'mu_sq_sum'), c1, 'b1');
  const b2 = add(add(sigmaXX, sigmaYY, 'sigma_sum'), c2, 'b2');
  const denominator = mul(b1, b2, 'denominator');
  const map = div(mul(a1, a2, 'numerator'), denominator, 'map'); // [N, C, R', R']

  const mean = mul(reduceSum(g, map, [1, 2, 3], false, 'loss.ssim_sum'), g.scalar('loss.ssim_inv_count', 1 / count), 'mean'); // [N]
  const loss = mul(sub(g.scalar('loss.ssim_one_l', 1), mean, 'dissimilarity'), weight, 'loss'); // [N]

  // dLoss/dS = −w/count, the same for every map entry.
  const upstream = mul(weight, g.scalar('loss.ssim_minus_inv_count', -1 / count), 'upstream'); // []
  const dMu = add(
    div(mul(mul(muY, two, 'two_mu_y'), sub(a2, a1, 'a2_minus_a1'), 'mu_term1_num'), denominator, 'mu_term1'),
    mul(mul(mul(muX, two, 'two_mu_x'), map, 'two_mu_x_s'), sub(g.node('Reciprocal', [b2], {}, { name: 'loss.ssim_inv_b2' }), g.node('Reciprocal', [b1], {}, { name: 'loss.ssim_inv_b1' }), 'inv_b_diff'), 'mu_term2'),
    'd_mu',
  ); // [N, C, R', R']
  const dXX = g.node('Neg', [div(map, b2, 's_over_b2')], {}, { name: 'loss.ssim_d_xx' });
  const dXY = div(mul(a1, two, 'two_a1'), denominator, 'd_xy');
  const gMu = filterT(mul(dMu, upstream, 'g_mu'), 'mu'); // [N, C, R, R]
  const gXX = mul(mul(filterT(mul(dXX, upstream, 'g_xx'), 'xx'), x, 'g_xx_x'), two, 'g_xx_2x');
  const gXY = mul(filterT(mul(dXY, upstream, 'g_xy'), 'xy'), y, 'g_xy_y');
  const gradImg = mul(add(add(gMu, gXX, 'g_sum1'), gXY, 'g_sum2'), half, 'grad_img'); // [N, C, R, R], dx/dimg = 1/2
  return { loss, gradImg };
}
