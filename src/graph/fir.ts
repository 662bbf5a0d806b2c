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

/**
 * Splits a stride-2 transposed 3x3 convolution (unflipped weight `[O, I, 3, 3]`, output 2H + 1)
 * into its four output phases, as one 2x2 convolution over the input with pads 1 (output H + 1).
 *
 * Even output rows `2m` read `x[m]·w[0] + x[m−1]·w[2]`, odd rows `2m + 1` read `x[m]·w[1]`; the
 * window of a 2x2 conv at output m covers inputs (m − 1, m). Columns follow the same rule.
 * Returns `[4·O, I, 2, 2]` with channel `(2·a + b)·O + o` for row phase a and column phase b, the
 * order `DepthToSpace` mode DCR expects. The phase (1, 1) row and column at index H are zero
 * (they read padding only), so the interleaved map is the transposed conv output plus one zero
 * row and column at the end.
 */
export function subpixelUpsampleConvKernel(weight: Float32Array, outChannels: number, inChannels: number): Float32Array {
  // Weight tap used by window tap t (0: input m − 1, 1: input m) for phase 0 and phase 1; -1 = none.
  const phaseTaps = [
    [2, 0],
    [-1, 1],
  ];
  return phaseKernel(weight, outChannels, inChannels, 3, 2, (phase, tap) => phaseTaps[phase][tap]);
}

/**
 * Splits the folded up-sampling kernel (`foldUpsampleConvKernel`, a 6x6 transposed conv with
 * stride 2 and pads 2) into its four output phases, as one 3x3 convolution over the input with
 * pads 1 (output H, then `DepthToSpace` gives 2H). Output `2m + a` reads inputs m − 1, m, m + 1
 * through folded taps 4 + a, 2 + a and a.
 * Returns `[4·O, I, 3, 3]` with channel `(2·a + b)·O + o`.
 */
export function subpixelFoldedKernel(weight: Float32Array, outChannels: number, inChannels: number): Float32Array {
  const folded = foldUpsampleConvKernel(weight, outChannels, inChannels, 3); // [I, O, 6, 6]
  const phases = 4;
  const out = new Float32Array(phases * outChannels * inChannels * 9);
  for (let a = 0; a < 2; a++) {
    for (let b = 0; b < 2; b++) {
      for (let o = 0; o < outChannels; o++) {
        for (let i = 0; i < inChannels; i++) {
          const source = (i * outChannels + o) * 36;
          const target = (((2 * a + b) * outChannels + o) * inChannels + i) * 9;
          for (let ty = 0; ty < 3; ty++) {
            for (let tx = 0; tx < 3; tx++) out[target + ty * 3 + tx] = folded[source + (4 - 2 * ty + a) * 6 + (4 - 2 * tx + b)];
          }
        }
      }
    }
  }
  return out;
}

/** Builds a `[4·O, I, size, size]` phase kernel from `[O, I, k, k]` through `weightTap(phase, tap)` (-1 = zero). */
function phaseKernel(
  weight: Float32Array,
  outChannels: number,
  inChannels: number,
  kernelSize: number,
  size: number,
  weightTap: (phase: number, tap: number) => number,
): Float32Array {
  const out = new Float32Array(4 * outChannels * inChannels * size * size);
  for (let a = 0; a < 2; a++) {
    for (let b = 0; b < 2; b++) {
      for (let o = 0; o < outChannels; o++) {
        for (let i = 0; i < inChannels; i++) {
          const source = (o * inChannels + i) * kernelSize * kernelSize;
          const target = (((2 * a + b) * outChannels + o) * inChannels + i) * size * size;
          for (let ty = 0; ty < size; ty++) {
            const ky = weightTap(a, ty);
            if (ky < 0) continue;
            for (let tx = 0; tx < size; tx++) {
              const kx = weightTap(b, tx);
              if (kx >= 0) out[target + ty * size + tx] = weight[source + ky * kernelSize + kx];
            }
          }
        }
      }
    }
  }
  return out;
}
