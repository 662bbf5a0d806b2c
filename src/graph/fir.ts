/**
 * Weight preprocessing for the ONNX synthesis graph: the StyleGAN2 up-sampling FIR filter, the
 * folding of "transposed 3x3 conv, then FIR" into one transposed convolution, and the squared
 * weight sums that demodulation needs. Sums run in float64 and are rounded to float32 once.
 */

/** The separable 1-D taps [1, 3, 3, 1] normalised to sum 1. */
export const upsampleTaps1d = [1 / 8, 3 / 8, 3 / 8, 1 / 8];

/** Gain of 2-D up-sampling by 2: the filter is scaled by up² = 4 so that the mean is kept. */
export const upsampleGain = 4;

/** Returns the 2-D up-sampling filter `outer(taps, taps) · 4` as `[4, 4]` (row-major). */
export function upsampleFilter2d(): Float64Array {
  const filter = new Float64Array(16);
  for (let y = 0; y < 4; y++) {
    for (let x = 0; x < 4; x++) filter[y * 4 + x] = upsampleTaps1d[y] * upsampleTaps1d[x] * upsampleGain;
  }
  return filter;
}

/**
 * Folds an up-sampling 3x3 convolution into one kernel for ONNX `ConvTranspose` (stride 2, pads 2).
 *
 * The reference computes a stride-2 transposed convolution with the unflipped weight `[O, I, k, k]`
 * followed by the FIR `f·4` with padding 1. Both are linear and shift-invariant per output phase,
 * so their composition is one transposed convolution whose kernel is the full 2-D convolution
 * `W[o, i] * (f·4)`, of size k + 3 (6 for k = 3).
 * Returns the kernel in ConvTranspose layout `[I, O, k + 3, k + 3]`.
 */
export function foldUpsampleConvKernel(weight: Float32Array, outChannels: number, inChannels: number, kernelSize: number): Float32Array {
  const foldedSize = kernelSize + 3;
  const filter = upsampleFilter2d();
  const folded = new Float32Array(inChannels * outChannels * foldedSize * foldedSize);
  const accumulator = new Float64Array(foldedSize * foldedSize);
  for (let o = 0; o < outChannels; o++) {
    for (let i = 0; i < inChannels; i++) {
      accumulator.fill(0);
      const weightBase = (o * inChannels + i) * kernelSize * kernelSize;
      for (let ky = 0; ky < kernelSize; ky++) {
        for (let kx = 0; kx < kernelSize; kx++) {
          const value = weight[weightBase + ky * kernelSize + kx];
          for (let fy = 0; fy < 4; fy++) {
            const row = (ky + fy) * foldedSize + kx;
            for (let fx = 0; fx < 4; fx++) accumulator[row + fx] += value * filter[fy * 4 + fx];
          }
        }
      }
      folded.set(accumulator, (i * outChannels + o) * foldedSize * foldedSize);
    }
  }
  return folded;
}

/** Swaps the two leading axes: `[A, B, inner] -> [B, A, inner]` (conv `[O, I, k, k]` to ConvTranspose `[I, O, k, k]`). */
export function swapOuterAxes(values: Float32Array, a: number, b: number, inner: number): Float32Array {
  const out = new Float32Array(values.length);
  for (let i = 0; i < a; i++) {
    for (let j = 0; j < b; j++) out.set(values.subarray((i * b + j) * inner, (i * b + j + 1) * inner), (j * a + i) * inner);
  }
  return out;
}

/** Demodulation matrix `Q[o, i] = Σ_{kh,kw} W[o, i, kh, kw]²`, `[O, I]`. */
export function squaredWeightSums(weight: Float32Array, outChannels: number, inChannels: number, kernelSize: number): Float32Array {
  const taps = kernelSize * kernelSize;
  const sums = new Float32Array(outChannels * inChannels);
  for (let oi = 0; oi < outChannels * inChannels; oi++) {
    let sum = 0;
    for (let t = 0; t < taps; t++) sum += weight[oi * taps + t] ** 2;
    sums[oi] = sum;
  }
  return sums;
}

/**
 * Transposes a row-major `[rows, cols]` matrix to `[cols, rows]` and multiplies it by `scale`.
 * Like PyTorch's float32 `tensor * python_float`, the scale is rounded to float32 first and each
 * product is rounded to float32.
 */
export function transposeScaled(matrix: Float32Array, rows: number, cols: number, scale: number): Float32Array {
  const scale32 = Math.fround(scale);
  const out = new Float32Array(rows * cols);
  for (let r = 0; r < rows; r++) {
    for (let c = 0; c < cols; c++) out[c * rows + r] = matrix[r * cols + c] * scale32;
  }
  return out;
}

/** Multiplies every value by `scale` in float32 (scale rounded first, as in `transposeScaled`). */
export function scaled(values: Float32Array, scale: number): Float32Array {
  const scale32 = Math.fround(scale);
  const out = new Float32Array(values.length);
  for (let i = 0; i < values.length; i++) out[i] = values[i] * scale32;
  return out;
}
