/**
 * A slow plain-TypeScript forward pass of the StyleGAN2 generator, for tests only: it checks the
 * ONNX graphs on small models. It is written in the other form than the graphs wherever there is
 * one, so a folding mistake cannot hide in both:
 * - fused modulation (per-sample modulated and demodulated weights) instead of x·s and ·d;
 * - up-sampling conv as a stride-2 transposed 3x3 conv followed by the padded FIR, not a folded 6x6;
 * - skip up-sampling by zero insertion, padding (2 before, 1 after) and FIR correlation.
 * Everything runs in float64 and one sample at a time.
 */

import type { GeneratorWeights } from '../checkpoint/types.js';
import { noiseLayers, scalarOf, synthesisBlocks, tensorOf } from './layers.js';

const lreluSlope = 0.2;
const lreluGain = Math.SQRT2;
const epsilon = 1e-8;
/** The up-sampling FIR `outer([1,3,3,1], [1,3,3,1]) / 64 · 4`, written out independently of fir.ts. */
const firTaps = [1, 3, 3, 1].map((tap) => tap / 8);
const firGain = 4;

export interface ReferenceMappingInput {
  /** `[zDim]` */
  z: Float32Array;
  /** `[cDim]`, required for conditional models. */
  c?: Float32Array;
  psi: number;
  /** Layers `l < truncationCutoff` are truncated; all layers when undefined. */
  truncationCutoff?: number;
}

/** Mapping network for one sample; returns ws `[numWs, wDim]`. */
export function referenceMapping(weights: GeneratorWeights, input: ReferenceMappingInput): Float32Array {
  const { arch } = weights;
  let x = normalize(Float64Array.from(input.z));
  if (arch.cDim > 0) {
    if (input.c === undefined || input.c.length !== arch.cDim) throw new Error(`reference mapping needs c of length ${arch.cDim}`);
    const embedded = dense(weights, 'mapping.embed', Float64Array.from(input.c), arch.embedFeatures, 1);
    x = concat(x, normalize(embedded));
  }
  for (let i = 0; i < arch.mappingLayers; i++) {
    const outFeatures = i === arch.mappingLayers - 1 ? arch.wDim : arch.mappingFeatures;
    x = dense(weights, `mapping.fc${i}`, x, outFeatures, arch.mappingLrMultiplier).map(lrelu);
  }
  const ws = new Float32Array(arch.numWs * arch.wDim);
  const cutoff = input.truncationCutoff ?? arch.numWs;
  const center = Float64Array.from(weights.wAvg);
  if (weights.wAvgPerClass && input.c) {
    // Per-class centres: the label-weighted mix of the class averages.
    center.fill(0);
    for (let k = 0; k < arch.cDim; k++) {
      for (let j = 0; j < arch.wDim; j++) center[j] += input.c[k] * weights.wAvgPerClass[k * arch.wDim + j];
    }
  }
  for (let l = 0; l < arch.numWs; l++) {
    for (let j = 0; j < arch.wDim; j++) {
      const avg = center[j];
      ws[l * arch.wDim + j] = input.psi !== 1 && l < cutoff ? avg + input.psi * (x[j] - avg) : x[j];
    }
  }
  return ws;
}

/** Noise for the reference synthesis: one `[R·R]` map per noise layer, or null for no noise. */
export type ReferenceNoise = Float32Array[] | null;

/** Synthesis network for one sample; returns img `[imgChannels, R, R]`. */
export function referenceSynthesis(weights: GeneratorWeights, ws: Float32Array, noise: ReferenceNoise): Float32Array {
  const { arch } = weights;
  if (arch.architecture === 'resnet') throw new Error('reference synthesis does not implement resnet');
  const noiseByLayer = new Map(noiseLayers(arch).map((layer, i) => [layer.layer, noise === null ? null : noise[i]]));
  const latent = (index: number): Float64Array => Float64Array.from(ws.subarray(index * arch.wDim, (index + 1) * arch.wDim));

  let x: FeatureMap | null = null;
  let img: FeatureMap | null = null;
  for (const block of synthesisBlocks(arch)) {
    if (x === null) {
      const constant = tensorOf(weights, `synthesis.b${block.resolution}.const`, [block.outChannels, 4, 4]);
      x = { channels: block.outChannels, size: 4, data: Float64Array.from(constant.data) };
    }
    for (const conv of block.convs) {
      const weight = tensorOf(weights, `${conv.prefix}.weight`, [conv.outChannels, conv.inChannels, 3, 3]).data;
      const styles = affine(weights, conv.prefix, latent(conv.wsIndex), conv.inChannels);
      const kernel = modulate(weight, styles, conv.outChannels, conv.inChannels, 9, true);
      x = conv.up === 2 ? firUpsample(transposedConv3x3Stride2(x, kernel, conv.outChannels), 1) : conv3x3(x, kernel, conv.outChannels);
      const noiseMap = noiseByLayer.get(conv.layer);
      const strength = arch.useNoise && noiseMap ? scalarOf(weights, `${conv.prefix}.noise_strength`) : 0;
      const bias = tensorOf(weights, `${conv.prefix}.bias`, [conv.outChannels]).data;
      const area = x.size * x.size;
      for (let o = 0; o < x.channels; o++) {
        for (let p = 0; p < area; p++) {
          let value = x.data[o * area + p] + (strength !== 0 && noiseMap ? noiseMap[p] * strength : 0) + bias[o];
          value = activation(value, arch.activation);
          x.data[o * area + p] = clampValue(value, arch.convClamp);
        }
      }
    }
    if (block.torgb !== null) {
      const { prefix, inChannels } = block.torgb;
      const weight = tensorOf(weights, `${prefix}.weight`, [arch.imgChannels, inChannels, 1, 1]).data;
      const styles = affine(weights, prefix, latent(block.torgb.wsIndex), inChannels).map((s) => s / Math.sqrt(inChannels));
      const bias = tensorOf(weights, `${prefix}.bias`, [arch.imgChannels]).data;
      const rgb = conv1x1(x, modulate(weight, styles, arch.imgChannels, inChannels, 1, false), arch.imgChannels);
      const area = rgb.size * rgb.size;
      for (let c = 0; c < rgb.channels; c++) {
        for (let p = 0; p < area; p++) rgb.data[c * area + p] = clampValue(rgb.data[c * area + p] + bias[c], arch.convClamp);
      }
      img = img === null ? rgb : add(zeroInsertUpsample(img), rgb);
    }
  }
  if (img === null) throw new Error('reference synthesis produced no image');
  return Float32Array.from(img.data);
}

interface FeatureMap {
  channels: number;
  size: number;
  /** `[channels, size, size]` */
  data: Float64Array;
}

function normalize(x: Float64Array): Float64Array {
  let meanSquare = 0;
  for (const value of x) meanSquare += value * value;
  meanSquare /= x.length;
  const scale = 1 / Math.sqrt(meanSquare + epsilon);
  return x.map((value) => value * scale);
}

function concat(a: Float64Array, b: Float64Array): Float64Array {
  const out = new Float64Array(a.length + b.length);
  out.set(a);
  out.set(b, a.length);
  return out;
}

/** Equalized-LR dense layer without activation: `x · (W·lr/sqrt(in))ᵀ + b·lr`. */
function dense(weights: GeneratorWeights, prefix: string, x: Float64Array, outFeatures: number, lr: number): Float64Array {
  const weight = tensorOf(weights, `${prefix}.weight`, [outFeatures, x.length]).data;
  const bias = tensorOf(weights, `${prefix}.bias`, [outFeatures]).data;
  const gain = lr / Math.sqrt(x.length);
  const out = new Float64Array(outFeatures);
  for (let o = 0; o < outFeatures; o++) {
    let sum = 0;
    for (let i = 0; i < x.length; i++) sum += weight[o * x.length + i] * gain * x[i];
    out[o] = sum + bias[o] * lr;
  }
  return out;
}

function lrelu(value: number): number {
  return (value < 0 ? value * lreluSlope : value) * lreluGain;
}

function activation(value: number, kind: 'lrelu' | 'linear' | 'relu'): number {
  if (kind === 'lrelu') return lrelu(value);
  if (kind === 'relu') return Math.max(value, 0) * Math.SQRT2;
  return value;
}

function clampValue(value: number, bound: number | null): number {
  return bound === null ? value : Math.min(Math.max(value, -bound), bound);
}

function affine(weights: GeneratorWeights, prefix: string, w: Float64Array, inChannels: number): Float64Array {
  const matrix = tensorOf(weights, `${prefix}.affine.weight`, [inChannels, w.length]).data;
  const bias = tensorOf(weights, `${prefix}.affine.bias`, [inChannels]).data;
  const styles = new Float64Array(inChannels);
  for (let i = 0; i < inChannels; i++) {
    let sum = 0;
    for (let j = 0; j < w.length; j++) sum += matrix[i * w.length + j] * w[j];
    styles[i] = sum / Math.sqrt(w.length) + bias[i];
  }
  return styles;
}

/** Per-sample weight `W[o, i] · s[i]`, demodulated per output channel when `demodulate`. */
function modulate(weight: Float32Array, styles: Float64Array, outChannels: number, inChannels: number, taps: number, demodulate: boolean): Float64Array {
  const out = new Float64Array(outChannels * inChannels * taps);
  for (let o = 0; o < outChannels; o++) {
    let energy = 0;
    for (let i = 0; i < inChannels; i++) {
      for (let t = 0; t < taps; t++) {
        const index = (o * inChannels + i) * taps + t;
        out[index] = weight[index] * styles[i];
        energy += out[index] * out[index];
      }
    }
    if (!demodulate) continue;
    const scale = 1 / Math.sqrt(energy + epsilon);
    for (let k = o * inChannels * taps; k < (o + 1) * inChannels * taps; k++) out[k] *= scale;
  }
  return out;
}

/** Correlation with a 3x3 kernel `[O, I, 3, 3]`, zero padding 1. */
function conv3x3(x: FeatureMap, kernel: Float64Array, outChannels: number): FeatureMap {
  const { size, channels } = x;
  const out = new Float64Array(outChannels * size * size);
  for (let o = 0; o < outChannels; o++) {
    for (let i = 0; i < channels; i++) {
      for (let ky = 0; ky < 3; ky++) {
        for (let kx = 0; kx < 3; kx++) {
          const k = kernel[((o * channels + i) * 3 + ky) * 3 + kx];
          for (let y = 0; y < size; y++) {
            const sy = y + ky - 1;
            if (sy < 0 || sy >= size) continue;
            for (let xx = 0; xx < size; xx++) {
              const sx = xx + kx - 1;
              if (sx < 0 || sx >= size) continue;
              out[(o * size + y) * size + xx] += k * x.data[(i * size + sy) * size + sx];
            }
          }
        }
      }
    }
  }
  return { channels: outChannels, size, data: out };
}

/** Transposed 3x3 convolution, stride 2, no padding, unflipped kernel `[O, I, 3, 3]`: size 2H + 1. */
function transposedConv3x3Stride2(x: FeatureMap, kernel: Float64Array, outChannels: number): FeatureMap {
  const { size, channels } = x;
  const outSize = 2 * size + 1;
  const out = new Float64Array(outChannels * outSize * outSize);
  for (let o = 0; o < outChannels; o++) {
    for (let i = 0; i < channels; i++) {
      for (let y = 0; y < size; y++) {
        for (let xx = 0; xx < size; xx++) {
          const value = x.data[(i * size + y) * size + xx];
          for (let ky = 0; ky < 3; ky++) {
            for (let kx = 0; kx < 3; kx++) {
              out[(o * outSize + 2 * y + ky) * outSize + 2 * xx + kx] += value * kernel[((o * channels + i) * 3 + ky) * 3 + kx];
            }
          }
        }
      }
    }
  }
  return { channels: outChannels, size: outSize, data: out };
}

/** Pads by `padBefore` and `padAfter` zeros, then correlates with the 4x4 FIR (valid): size + pads − 3. */
function firFilter(x: FeatureMap, padBefore: number, padAfter: number): FeatureMap {
  const outSize = x.size + padBefore + padAfter - 3;
  const out = new Float64Array(x.channels * outSize * outSize);
  for (let c = 0; c < x.channels; c++) {
    for (let y = 0; y < outSize; y++) {
      for (let xx = 0; xx < outSize; xx++) {
        let sum = 0;
        for (let a = 0; a < 4; a++) {
          const sy = y + a - padBefore;
          if (sy < 0 || sy >= x.size) continue;
          for (let b = 0; b < 4; b++) {
            const sx = xx + b - padBefore;
            if (sx < 0 || sx >= x.size) continue;
            sum += x.data[(c * x.size + sy) * x.size + sx] * firTaps[3 - a] * firTaps[3 - b] * firGain;
          }
        }
        out[(c * outSize + y) * outSize + xx] = sum;
      }
    }
  }
  return { channels: x.channels, size: outSize, data: out };
}

/** The FIR step after the transposed conv: pad `pad` on each side. */
function firUpsample(x: FeatureMap, pad: number): FeatureMap {
  return firFilter(x, pad, pad);
}

/** upfirdn2d up-sampling by 2: insert zeros, pad 2 before and 1 after, FIR. */
function zeroInsertUpsample(x: FeatureMap): FeatureMap {
  const upSize = x.size * 2;
  const up = new Float64Array(x.channels * upSize * upSize);
  for (let c = 0; c < x.channels; c++) {
    for (let y = 0; y < x.size; y++) {
      for (let xx = 0; xx < x.size; xx++) up[(c * upSize + 2 * y) * upSize + 2 * xx] = x.data[(c * x.size + y) * x.size + xx];
    }
  }
  return firFilter({ channels: x.channels, size: upSize, data: up }, 2, 1);
}

function conv1x1(x: FeatureMap, kernel: Float64Array, outChannels: number): FeatureMap {
  const area = x.size * x.size;
  const out = new Float64Array(outChannels * area);
  for (let o = 0; o < outChannels; o++) {
    for (let i = 0; i < x.channels; i++) {
      const k = kernel[o * x.channels + i];
      for (let p = 0; p < area; p++) out[o * area + p] += k * x.data[i * area + p];
    }
  }
  return { channels: outChannels, size: x.size, data: out };
}

function add(a: FeatureMap, b: FeatureMap): FeatureMap {
  return { channels: a.channels, size: a.size, data: a.data.map((value, i) => value + b.data[i]) };
}
