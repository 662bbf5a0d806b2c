/**
 * The small numeric parts of projection that run on the main thread: the learning-rate and latent
 * noise schedules, Adam, the noise regulariser with its gradient, noise renormalisation and PSNR.
 * Constants follow the NVlabs stylegan2-ada-pytorch `projector.py` defaults.
 */

/** Peak Adam learning rate. */
export const initialLearningRate = 0.1;
/** Fraction of the steps over which the learning rate ramps up from 0. */
export const lrRampupLength = 0.05;
/** Fraction of the steps over which the learning rate ramps down to 0 (cosine). */
export const lrRampdownLength = 0.25;
/** Latent noise at step 0, as a multiple of w_std. */
export const initialNoiseFactor = 0.05;
/** Fraction of the steps after which the latent noise is 0. */
export const noiseRampLength = 0.75;
/** Weight of the noise regulariser in the total loss. */
export const regularizeNoiseWeight = 1e5;
export const adamBeta1 = 0.9;
export const adamBeta2 = 0.999;
export const adamEpsilon = 1e-8;
/** The noise regulariser stops down-sampling once a map is this size or smaller. */
const regularizerMinSize = 8;

/** Learning rate at progress `t = step / steps`: `0.1 · (½ − ½·cos(π·min(1, (1−t)/0.25))) · min(1, t/0.05)`. */
export function learningRateAt(t: number): number {
  const rampdown = 0.5 - 0.5 * Math.cos(Math.PI * Math.min(1, (1 - t) / lrRampdownLength));
  const rampup = Math.min(1, t / lrRampupLength);
  return initialLearningRate * rampdown * rampup;
}

/** Standard deviation of the Gaussian noise added to w at progress t: `w_std · 0.05 · max(0, 1 − t/0.75)²`. */
export function latentNoiseScaleAt(t: number, wStd: number): number {
  return wStd * initialNoiseFactor * Math.max(0, 1 - t / noiseRampLength) ** 2;
}

/** Adam (bias-corrected, as torch.optim.Adam) over one flat parameter vector. */
export class Adam {
  private readonly m: Float64Array;
  private readonly v: Float64Array;
  private t = 0;

  constructor(readonly size: number) {
    this.m = new Float64Array(size);
    this.v = new Float64Array(size);
  }

  /** Updates `params` in place with `grad` at learning rate `lr`; moments update even when lr is 0. */
  step(params: Float32Array | Float64Array, grad: ArrayLike<number>, lr: number): void {
    if (params.length !== this.size || grad.length !== this.size) {
      throw new RangeError(`Adam over ${this.size} values got ${params.length} parameters and ${grad.length} gradients`);
    }
    this.t++;
    const correction1 = 1 - adamBeta1 ** this.t;
    const correction2 = 1 - adamBeta2 ** this.t;
    for (let i = 0; i < this.size; i++) {
      const g = grad[i];
      this.m[i] = adamBeta1 * this.m[i] + (1 - adamBeta1) * g;
      this.v[i] = adamBeta2 * this.v[i] + (1 - adamBeta2) * g * g;
      const mHat = this.m[i] / correction1;
      const vHat = this.v[i] / correction2;
      params[i] -= (lr * mHat) / (Math.sqrt(vHat) + adamEpsilon);
    }
  }
}

/**
 * Noise regulariser of one `[size, size]` map and its gradient, added into `grad`:
 * Σ over scales of `mean(v·roll(v, 1, x))² + mean(v·roll(v, 1, y))²`, halving v by 2×2 average
 * pooling after each scale until it is 8×8 or smaller (the 8×8 level included).
 */
export function noiseRegularizer(map: Float32Array, size: number, grad: Float64Array): number {
  let value = 0;
  // Forward pyramid; the backward pass walks it in reverse.
  const levels: { data: Float64Array; size: number }[] = [{ data: Float64Array.from(map), size }];
  while (levels[levels.length - 1].size > regularizerMinSize) {
    const { data, size: s } = levels[levels.length - 1];
    const half = s / 2;
    const pooled = new Float64Array(half * half);
    for (let y = 0; y < half; y++) {
      for (let x = 0; x < half; x++) {
        pooled[y * half + x] = (data[2 * y * s + 2 * x] + data[2 * y * s + 2 * x + 1] + data[(2 * y + 1) * s + 2 * x] + data[(2 * y + 1) * s + 2 * x + 1]) / 4;
      }
    }
    levels.push({ data: pooled, size: half });
  }

  let upstream: Float64Array | null = null;
  for (let level = levels.length - 1; level >= 0; level--) {
    const { data, size: s } = levels[level];
    const n = s * s;
    let corrX = 0;
    let corrY = 0;
    for (let y = 0; y < s; y++) {
      for (let x = 0; x < s; x++) {
        const v = data[y * s + x];
        corrX += v * data[y * s + ((x + s - 1) % s)];
        corrY += v * data[((y + s - 1) % s) * s + x];
      }
    }
    corrX /= n;
    corrY /= n;
    value += corrX * corrX + corrY * corrY;
    // d(mean(v·roll(v))²)/dv_j = 2·mean · (v_{j−1} + v_{j+1}) / n, along each axis.
    const levelGrad = new Float64Array(n);
    for (let y = 0; y < s; y++) {
      for (let x = 0; x < s; x++) {
        const neighboursX = data[y * s + ((x + s - 1) % s)] + data[y * s + ((x + 1) % s)];
        const neighboursY = data[((y + s - 1) % s) * s + x] + data[((y + 1) % s) * s + x];
        levelGrad[y * s + x] = (2 * corrX * neighboursX + 2 * corrY * neighboursY) / n;
      }
    }
    if (upstream !== null) {
      // The coarser level was the 2×2 average of this one: each pixel gets a quarter of its parent's gradient.
      const half = s / 2;
      for (let y = 0; y < s; y++) {
        for (let x = 0; x < s; x++) levelGrad[y * s + x] += upstream[(y >> 1) * half + (x >> 1)] / 4;
      }
    }
    upstream = levelGrad;
  }
  for (let i = 0; i < grad.length; i++) grad[i] += upstream![i];
  return value;
}

/** Renormalises a noise map in place to zero mean and unit (biased) standard deviation. */
export function normalizeNoise(map: Float32Array): void {
  let mean = 0;
  for (const v of map) mean += v;
  mean /= map.length;
  let variance = 0;
  for (const v of map) variance += (v - mean) ** 2;
  const scale = 1 / Math.sqrt(variance / map.length);
  for (let i = 0; i < map.length; i++) map[i] = (map[i] - mean) * scale;
}

/** PSNR in dB of two uint8 images of equal size (peak 255); Infinity when they are equal. */
export function psnr(a: Uint8Array, b: Uint8Array): number {
  if (a.length !== b.length) throw new RangeError(`PSNR of images with ${a.length} and ${b.length} values`);
  let sum = 0;
  for (let i = 0; i < a.length; i++) sum += (a[i] - b[i]) ** 2;
  const mse = sum / a.length;
  return mse === 0 ? Infinity : 10 * Math.log10((255 * 255) / mse);
}
