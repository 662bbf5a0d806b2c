/**
 * The layer layout of a StyleGAN2 generator, derived from its architecture numbers: which blocks
 * exist, which latent (ws row) feeds each layer, which layers take noise, and typed access to the
 * canonical tensors. Shared by the ONNX graphs, the reference forward and the random weights.
 */

import { blockResolutions, type GeneratorArchitecture, type GeneratorWeights, type Tensor } from '../checkpoint/types.js';
import type { NoiseLayer } from './model-manifest.js';

/** One modulated 3x3 convolution (`conv0` upsamples by 2, `conv1` keeps the resolution). */
export interface SynthesisLayerSpec {
  /** Tensor name prefix, e.g. `synthesis.b8.conv0`. */
  prefix: string;
  /** Short layer name as used in noise layer lists, e.g. `b8.conv0`. */
  layer: string;
  wsIndex: number;
  inChannels: number;
  outChannels: number;
  up: 1 | 2;
  /** Output side length. */
  resolution: number;
}

/** One ToRGB layer (1x1 modulated convolution without demodulation). */
export interface ToRgbSpec {
  prefix: string;
  wsIndex: number;
  inChannels: number;
}

export interface SynthesisBlockSpec {
  resolution: number;
  /** Channels coming in from the previous block; 0 for the 4x4 block, which starts from `const`. */
  inChannels: number;
  outChannels: number;
  convs: SynthesisLayerSpec[];
  /** Present in every block for the skip architecture and only in the last block for orig. */
  torgb: ToRgbSpec | null;
}

/** Number of per-layer latents for the skip and orig architectures: 2·log2(R) − 2. */
export function expectedNumWs(resolution: number): number {
  return 2 * Math.log2(resolution) - 2;
}

/** Lists the synthesis blocks with their layers, channels and ws indices. */
export function synthesisBlocks(arch: GeneratorArchitecture): SynthesisBlockSpec[] {
  checkArchitecture(arch);
  const blocks: SynthesisBlockSpec[] = [];
  let wsIndex = 0;
  let previousChannels = 0;
  for (const resolution of blockResolutions(arch.resolution)) {
    const outChannels = channelsAt(arch, resolution);
    const convs: SynthesisLayerSpec[] = [];
    if (previousChannels !== 0) {
      convs.push(layerSpec(resolution, 'conv0', wsIndex + convs.length, previousChannels, outChannels, 2));
    }
    convs.push(layerSpec(resolution, 'conv1', wsIndex + convs.length, outChannels, outChannels, 1));
    const isLast = resolution === arch.resolution;
    const torgb: ToRgbSpec | null =
      arch.architecture === 'skip' || isLast
        ? { prefix: `synthesis.b${resolution}.torgb`, wsIndex: wsIndex + convs.length, inChannels: outChannels }
        : null;
    blocks.push({ resolution, inChannels: previousChannels, outChannels, convs, torgb });
    wsIndex += convs.length;
    previousChannels = outChannels;
  }
  return blocks;
}

function layerSpec(
  resolution: number,
  name: 'conv0' | 'conv1',
  wsIndex: number,
  inChannels: number,
  outChannels: number,
  up: 1 | 2,
): SynthesisLayerSpec {
  return { prefix: `synthesis.b${resolution}.${name}`, layer: `b${resolution}.${name}`, wsIndex, inChannels, outChannels, up, resolution };
}

/** Lists the noise inputs of the synthesis graph in layer order (`noise_0` is `b4.conv1`). */
export function noiseLayers(arch: GeneratorArchitecture): NoiseLayer[] {
  const layers: NoiseLayer[] = [];
  let offset = 0;
  for (const block of synthesisBlocks(arch)) {
    for (const conv of block.convs) {
      layers.push({ name: `noise_${layers.length}`, layer: conv.layer, resolution: conv.resolution, offset });
      offset += conv.resolution * conv.resolution;
    }
  }
  return layers;
}

/** Feature channels of the block at `resolution`. */
export function channelsAt(arch: GeneratorArchitecture, resolution: number): number {
  const channels = arch.channels[resolution];
  if (!Number.isInteger(channels) || channels <= 0) {
    throw new Error(`architecture has no channel count for resolution ${resolution}; channels must list every block 4..${arch.resolution}`);
  }
  return channels;
}

/** Channels per block resolution as the NVlabs configs compute them: min(channelBase / res, channelMax). */
export function stylegan2Channels(resolution: number, channelBase: number, channelMax: number): Record<number, number> {
  const channels: Record<number, number> = {};
  for (const res of blockResolutions(resolution)) channels[res] = Math.min(Math.floor(channelBase / res), channelMax);
  return channels;
}

/** Rejects architectures the graph builders cannot represent, naming the bad value. */
export function checkArchitecture(arch: GeneratorArchitecture): void {
  const { resolution } = arch;
  if (!Number.isInteger(resolution) || resolution < 4 || (resolution & (resolution - 1)) !== 0) {
    throw new Error(`resolution ${resolution} is not a power of two >= 4`);
  }
  if (arch.numWs !== expectedNumWs(resolution)) {
    throw new Error(`numWs ${arch.numWs} does not match resolution ${resolution}; expected 2·log2(R) − 2 = ${expectedNumWs(resolution)}`);
  }
  for (const [field, value] of [
    ['zDim', arch.zDim],
    ['wDim', arch.wDim],
    ['mappingLayers', arch.mappingLayers],
    ['mappingFeatures', arch.mappingFeatures],
    ['imgChannels', arch.imgChannels],
  ] as const) {
    if (!Number.isInteger(value) || value <= 0) throw new Error(`architecture ${field} ${value} is not a positive integer`);
  }
  if (!Number.isInteger(arch.cDim) || arch.cDim < 0) throw new Error(`architecture cDim ${arch.cDim} is not a non-negative integer`);
  if (arch.cDim > 0 && !(arch.embedFeatures > 0)) {
    throw new Error(`conditional model (cDim ${arch.cDim}) needs embedFeatures > 0, got ${arch.embedFeatures}`);
  }
  if (arch.convClamp !== null && !(arch.convClamp > 0)) throw new Error(`convClamp ${arch.convClamp} must be positive or null`);
}

/** Returns the canonical tensor `name`, checking that it exists and has `shape`. */
export function tensorOf(weights: GeneratorWeights, name: string, shape: number[]): Tensor {
  const tensor = weights.tensors.get(name);
  if (tensor === undefined) throw new Error(`weight tensor '${name}' is missing from the checkpoint weights`);
  const matches = tensor.shape.length === shape.length && tensor.shape.every((dim, i) => dim === shape[i]);
  if (!matches) {
    throw new Error(`weight tensor '${name}' has shape [${tensor.shape.join(', ')}], expected [${shape.join(', ')}]`);
  }
  const expectedLength = shape.reduce((product, dim) => product * dim, 1);
  if (tensor.data.length !== expectedLength) {
    throw new Error(`weight tensor '${name}' holds ${tensor.data.length} values, expected ${expectedLength} for its shape`);
  }
  return tensor;
}

/** Returns the scalar tensor `name` (shape `[]`) as a number. */
export function scalarOf(weights: GeneratorWeights, name: string): number {
  return tensorOf(weights, name, []).data[0];
}
