/**
 * Seeded random StyleGAN2 weights, shaped like a freshly initialised stylegan2-ada-pytorch
 * generator, for the shipped sample model, tests and benchmarks. The images are untrained noise
 * patterns; only shapes, cost and value ranges are realistic.
 */

import type { GeneratorArchitecture, GeneratorWeights, Tensor } from '../checkpoint/types.js';
import { checkArchitecture, expectedNumWs, noiseLayers, stylegan2Channels, synthesisBlocks } from './layers.js';
import { SeededRandom } from './prng.js';

/** Architecture overrides plus the NVlabs channel formula inputs (used when `channels` is absent). */
export type RandomArchitecture = Partial<GeneratorArchitecture> & { channelBase?: number; channelMax?: number };

/** stylegan2-ada-pytorch `paper256`: channel_base 16384, channel_max 512, mapping 8, z = w = 512. */
export const paper256Arch: RandomArchitecture = { resolution: 256, channelBase: 16384, channelMax: 512, mappingLayers: 8, zDim: 512, wDim: 512 };

/** Original StyleGAN2 config-f at 1024² (channel_base 32768), about 30M parameters. */
export const configF1024Arch: RandomArchitecture = { resolution: 1024, channelBase: 32768, channelMax: 512, mappingLayers: 8, zDim: 512, wDim: 512 };

/** Std of the random perturbation added to biases and other constant-initialised tensors. */
const constantPerturbation = 0.1;
/** Target standard deviation of the output image. */
const targetImageStd = 0.5;

/** Fills in every architecture field: the given ones, else stylegan2-ada-pytorch defaults. */
export function completeArchitecture(options: RandomArchitecture): GeneratorArchitecture {
  const resolution = options.resolution ?? 256;
  const wDim = options.wDim ?? 512;
  const cDim = options.cDim ?? 0;
  const arch: GeneratorArchitecture = {
    zDim: options.zDim ?? 512,
    wDim,
    cDim,
    resolution,
    imgChannels: options.imgChannels ?? 3,
    numWs: options.numWs ?? expectedNumWs(resolution),
    mappingLayers: options.mappingLayers ?? 8,
    mappingFeatures: options.mappingFeatures ?? wDim,
    embedFeatures: options.embedFeatures ?? (cDim > 0 ? wDim : 0),
    mappingLrMultiplier: options.mappingLrMultiplier ?? 0.01,
    channels: options.channels ?? stylegan2Channels(resolution, options.channelBase ?? 32768, options.channelMax ?? 512),
    convClamp: options.convClamp === undefined ? 256 : options.convClamp,
    architecture: options.architecture ?? 'skip',
    activation: options.activation ?? 'lrelu',
    useNoise: options.useNoise ?? true,
    fp16Resolutions: options.fp16Resolutions ?? [],
  };
  checkArchitecture(arch);
  return arch;
}

/**
 * Draws random weights for `options` (missing fields take stylegan2-ada-pytorch defaults),
 * deterministically from `seed`.
 *
 * Initialisation follows a fresh ADA generator (weights N(0, 1), FC weights N(0, 1/lr²), affine
 * biases 1) plus a small perturbation of every constant-initialised tensor, so that biases and
 * noise strengths are not all 0 or 1. ToRGB weights are scaled so that the image std is about 0.5.
 * `wAvg` is a random placeholder marked `estimated`; `writeModelFolder` replaces it with the mean
 * mapping output.
 */
export function randomGeneratorWeights(options: RandomArchitecture, seed: number): GeneratorWeights {
  const arch = completeArchitecture(options);
  const random = new SeededRandom(seed);
  const tensors = new Map<string, Tensor>();
  const put = (name: string, shape: number[], data: Float32Array): void => {
    tensors.set(name, { shape, data });
  };
  const gaussian = (shape: number[], scale = 1, offset = 0): Float32Array => {
    const data = random.gaussians(shape.reduce((product, dim) => product * dim, 1), scale);
    if (offset !== 0) for (let i = 0; i < data.length; i++) data[i] += offset;
    return data;
  };

  drawMapping(arch, put, gaussian);

  const blocks = synthesisBlocks(arch);
  const torgbCount = blocks.filter((block) => block.torgb !== null).length;
  // The image is the skip sum of torgbCount ToRGB outputs. Scaling each by 1/sqrt(torgbCount)
  // gave an image std of 0.3-0.5 on the sample model (measured with ONNX Runtime, a few z).
  const torgbScale = targetImageStd / Math.sqrt(torgbCount);
  const noiseResolution = new Map(noiseLayers(arch).map((noise) => [noise.layer, noise.resolution]));
  for (const block of blocks) {
    if (block.inChannels === 0) put(`synthesis.b${block.resolution}.const`, [block.outChannels, 4, 4], gaussian([block.outChannels, 4, 4]));
    for (const conv of block.convs) {
      const { prefix, inChannels, outChannels } = conv;
      put(`${prefix}.affine.weight`, [inChannels, arch.wDim], gaussian([inChannels, arch.wDim]));
      put(`${prefix}.affine.bias`, [inChannels], gaussian([inChannels], constantPerturbation, 1));
      put(`${prefix}.weight`, [outChannels, inChannels, 3, 3], gaussian([outChannels, inChannels, 3, 3]));
      put(`${prefix}.bias`, [outChannels], gaussian([outChannels], constantPerturbation));
      if (arch.useNoise) {
        const resolution = noiseResolution.get(conv.layer) ?? conv.resolution;
        put(`${prefix}.noise_strength`, [], gaussian([], constantPerturbation));
        put(`${prefix}.noise_const`, [resolution, resolution], gaussian([resolution, resolution]));
      }
    }
    if (block.torgb !== null) {
      const { prefix, inChannels } = block.torgb;
      put(`${prefix}.affine.weight`, [inChannels, arch.wDim], gaussian([inChannels, arch.wDim]));
      put(`${prefix}.affine.bias`, [inChannels], gaussian([inChannels], constantPerturbation, 1));
      put(`${prefix}.weight`, [arch.imgChannels, inChannels, 1, 1], gaussian([arch.imgChannels, inChannels, 1, 1], torgbScale));
      put(`${prefix}.bias`, [arch.imgChannels], gaussian([arch.imgChannels], constantPerturbation * torgbScale));
    }
  }

  return {
    arch,
    tensors,
    wAvg: gaussian([arch.wDim], 0.3),
    wAvgSource: 'estimated',
    source: { format: 'random', details: { seed, generator: 'stylegan-serve randomGeneratorWeights' } },
    warnings: [],
  };
}

function drawMapping(
  arch: GeneratorArchitecture,
  put: (name: string, shape: number[], data: Float32Array) => void,
  gaussian: (shape: number[], scale?: number, offset?: number) => Float32Array,
): void {
  const lr = arch.mappingLrMultiplier;
  let features = arch.zDim;
  if (arch.cDim > 0) {
    put('mapping.embed.weight', [arch.embedFeatures, arch.cDim], gaussian([arch.embedFeatures, arch.cDim]));
    put('mapping.embed.bias', [arch.embedFeatures], gaussian([arch.embedFeatures], constantPerturbation));
    features += arch.embedFeatures;
  }
  for (let i = 0; i < arch.mappingLayers; i++) {
    const outFeatures = i === arch.mappingLayers - 1 ? arch.wDim : arch.mappingFeatures;
    // Stored FC parameters are divided by the lr multiplier, which the forward pass multiplies back.
    put(`mapping.fc${i}.weight`, [outFeatures, features], gaussian([outFeatures, features], 1 / lr));
    put(`mapping.fc${i}.bias`, [outFeatures], gaussian([outFeatures], constantPerturbation / lr));
    features = outFeatures;
  }
}
