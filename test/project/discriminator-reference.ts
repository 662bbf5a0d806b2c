/**
 * A slow float64 TypeScript reference of the discriminator-feature loss (src/graph/discriminator.ts
 * and gradient-discriminator.ts), written from the layer definitions with plain loops: padded
 * correlation, the [1, 3, 3, 1] FIR, lrelu·gain, clamp, and the 'resnet' skip branch. Tests use it
 * to check the graph's loss and, through central differences, its gradients.
 */

import type { DiscriminatorWeights } from '../../src/checkpoint/types.js';

/** A `[C, H, W]` float64 feature map. */
interface Map3 {
  c: number;
  size: number;
  data: Float64Array;
}

/** Correlation of `x` with `weight [O, C, k, k]·gain` (zero padding `pad`, stride), plus bias. */
function conv(x: Map3, weight: Float32Array, outChannels: number, k: number, gain: number, bias: Float32Array | null, pad: number, stride: number): Map3 {
  const outSize = Math.floor((x.size + 2 * pad - k) / stride) + 1;
  const out = new Float64Array(outChannels * outSize * outSize);
  for (let o = 0; o < outChannels; o++) {
    for (let y = 0; y < outSize; y++) {
      for (let xx = 0; xx < outSize; xx++) {
        let sum = 0;
        for (let c = 0; c < x.c; c++) {
          for (let i = 0; i < k; i++) {
            const sy = y * stride + i - pad;
            if (sy < 0 || sy >= x.size) continue;
            for (let j = 0; j < k; j++) {
              const sx = xx * stride + j - pad;
              if (sx < 0 || sx >= x.size) continue;
              sum += weight[((o * x.c + c) * k + i) * k + j] * x.data[(c * x.size + sy) * x.size + sx];
            }
          }
        }
        out[(o * outSize + y) * outSize + xx] = sum * gain + (bias ? bias[o] : 0);
      }
    }
  }
  return { c: outChannels, size: outSize, data: out };
}

/** Per-channel FIR `[1, 3, 3, 1]ᵀ[1, 3, 3, 1] / 64` with zero padding `pad` and the given stride. */
function fir(x: Map3, pad: number, stride: number): Map3 {
  const taps = [1, 3, 3, 1];
  const outSize = Math.floor((x.size + 2 * pad - 4) / stride) + 1;
  const out = new Float64Array(x.c * outSize * outSize);
  for (let c = 0; c < x.c; c++) {
    for (let y = 0; y < outSize; y++) {
      for (let xx = 0; xx < outSize; xx++) {
        let sum = 0;
        for (let i = 0; i < 4; i++) {
          const sy = y * stride + i - pad;
          if (sy < 0 || sy >= x.size) continue;
          for (let j = 0; j < 4; j++) {
            const sx = xx * stride + j - pad;
            if (sx >= 0 && sx < x.size) sum += ((taps[i] * taps[j]) / 64) * x.data[(c * x.size + sy) * x.size + sx];
          }
        }
        out[(c * outSize + y) * outSize + xx] = sum;
      }
    }
  }
  return { c: x.c, size: outSize, data: out };
}

/** `clamp(lrelu(x)·gain, ±clamp)` in place. */
function activate(x: Map3, gain: number, clamp: number | null): Map3 {
  for (let i = 0; i < x.data.length; i++) {
    let v = (x.data[i] > 0 ? x.data[i] : 0.2 * x.data[i]) * gain;
    if (clamp !== null) v = Math.min(clamp, Math.max(-clamp, v));
    x.data[i] = v;
  }
  return x;
}

/** One conv layer `name` of D: weight gain 1/sqrt(C·k²), bias, lrelu·sqrt(2)·branchGain, clamp·branchGain. */
function layer(d: DiscriminatorWeights, name: string, x: Map3, k: number, branchGain: number, pad: number, stride: number): Map3 {
  const weight = d.tensors.get(`${name}.weight`)!;
  const bias = d.tensors.get(`${name}.bias`)!;
  const y = conv(x, weight.data, weight.shape[0], k, 1 / Math.sqrt(x.c * k * k), bias.data, pad, stride);
  return activate(y, Math.SQRT2 * branchGain, d.arch.convClamp === null ? null : d.arch.convClamp * branchGain);
}

/** Outputs of the feature blocks b{R} .. b8 for one image `[C_img, R, R]`. */
export function discriminatorFeatures(d: DiscriminatorWeights, img: ArrayLike<number>): Map3[] {
  const { resolution, imgChannels, architecture } = d.arch;
  let x: Map3 = { c: imgChannels, size: resolution, data: Float64Array.from(img) };
  const outputs: Map3[] = [];
  for (let res = resolution; res >= 8; res /= 2) {
    if (res === resolution) x = layer(d, `b${res}.fromrgb`, x, 1, 1, 0, 1);
    const branchGain = architecture === 'resnet' ? Math.SQRT1_2 : 1;
    const y = layer(d, `b${res}.conv1`, fir(layer(d, `b${res}.conv0`, x, 3, 1, 1, 1), 2, 1), 3, branchGain, 0, 2);
    if (architecture === 'resnet') {
      const weight = d.tensors.get(`b${res}.skip.weight`)!;
      const skip = conv(fir(x, 1, 2), weight.data, weight.shape[0], 1, Math.SQRT1_2 / Math.sqrt(x.c), null, 0, 1);
      for (let i = 0; i < y.data.length; i++) y.data[i] += skip.data[i];
    }
    outputs.push(y);
    x = y;
  }
  return outputs;
}

/** Σ_b mean_hw Σ_c (unit(F_b(img)) − unit(F_b(target)))² + pixelWeight·MSE(img, target). */
export function discriminatorLoss(d: DiscriminatorWeights, img: ArrayLike<number>, target: ArrayLike<number>, pixelWeight: number, epsilon = 1e-8): number {
  const a = discriminatorFeatures(d, img);
  const b = discriminatorFeatures(d, target);
  let loss = 0;
  a.forEach((fa, k) => {
    const fb = b[k];
    const area = fa.size * fa.size;
    let sum = 0;
    for (let p = 0; p < area; p++) {
      let na = 0;
      let nb = 0;
      for (let c = 0; c < fa.c; c++) {
        na += fa.data[c * area + p] ** 2;
        nb += fb.data[c * area + p] ** 2;
      }
      const ra = 1 / Math.sqrt(na + epsilon);
      const rb = 1 / Math.sqrt(nb + epsilon);
      for (let c = 0; c < fa.c; c++) sum += (fa.data[c * area + p] * ra - fb.data[c * area + p] * rb) ** 2;
    }
    loss += sum / area;
  });
  let squares = 0;
  for (let i = 0; i < img.length; i++) squares += (img[i] - target[i]) ** 2;
  return loss + (pixelWeight * squares) / img.length;
}
