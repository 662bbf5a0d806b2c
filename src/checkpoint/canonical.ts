/**
 * Helpers shared by the readers for the canonical weight set of types.ts: the tensor names and
 * shapes an architecture implies, the standard FIR filter, and a final shape check, so every reader
 * hands the graph builder the same complete set.
 */

import { CheckpointError } from './errors.js';
import { blockResolutions, type GeneratorArchitecture, type Tensor } from './types.js';

/** outer([1,3,3,1], [1,3,3,1]) / 64, the `resample_filter` buffer of every StyleGAN2 layer. */
export function standardResampleFilter(): Tensor {
  const taps = [1, 3, 3, 1];
  const data = new Float32Array(16);
  for (let i = 0; i < 4; i++) for (let j = 0; j < 4; j++) data[i * 4 + j] = (taps[i] * taps[j]) / 64;
  return { shape: [4, 4], data }; // [4, 4]
}

/** Names of the layers in a block, in ws order: conv0 (not in b4), conv1, torgb (when present). */
export function blockLayers(arch: GeneratorArchitecture, resolution: number): { convs: string[]; torgb: boolean } {
  const convs = resolution === 4 ? ['conv1'] : ['conv0', 'conv1'];
  return { convs, torgb: arch.architecture === 'skip' || resolution === arch.resolution };
}

/** Lists every canonical tensor name with its shape, as in stylegan2-ada-pytorch's G_ema state dict. */
export function expectedTensorShapes(arch: GeneratorArchitecture): Map<string, number[]> {
  const shapes = new Map<string, number[]>();
  const { wDim, zDim, cDim, embedFeatures, mappingLayers, mappingFeatures, channels, imgChannels } = arch;

  if (cDim > 0) {
    shapes.set('mapping.embed.weight', [embedFeatures, cDim]);
    shapes.set('mapping.embed.bias', [embedFeatures]);
  }
  let features = zDim + (cDim > 0 ? embedFeatures : 0);
  for (let i = 0; i < mappingLayers; i++) {
    const out = i === mappingLayers - 1 ? wDim : mappingFeatures;
    shapes.set(`mapping.fc${i}.weight`, [out, features]);
    shapes.set(`mapping.fc${i}.bias`, [out]);
    features = out;
  }
  shapes.set('mapping.w_avg', [wDim]);

  for (const res of blockResolutions(arch.resolution)) {
    const block = `synthesis.b${res}`;
    const out = channels[res];
    const input = res === 4 ? out : channels[res / 2];
    shapes.set(`${block}.resample_filter`, [4, 4]);
    if (res === 4) shapes.set(`${block}.const`, [out, 4, 4]);
    const { convs, torgb } = blockLayers(arch, res);
    for (const conv of convs) {
      const cin = conv === 'conv0' ? input : out;
      const layer = `${block}.${conv}`;
      shapes.set(`${layer}.weight`, [out, cin, 3, 3]);
      shapes.set(`${layer}.bias`, [out]);
      shapes.set(`${layer}.affine.weight`, [cin, wDim]);
      shapes.set(`${layer}.affine.bias`, [cin]);
      shapes.set(`${layer}.resample_filter`, [4, 4]);
      if (arch.useNoise) {
        shapes.set(`${layer}.noise_const`, [res, res]);
        shapes.set(`${layer}.noise_strength`, []);
      }
    }
    if (torgb) {
      shapes.set(`${block}.torgb.weight`, [imgChannels, out, 1, 1]);
      shapes.set(`${block}.torgb.bias`, [imgChannels]);
      shapes.set(`${block}.torgb.affine.weight`, [out, wDim]);
      shapes.set(`${block}.torgb.affine.bias`, [out]);
    }
    if (arch.architecture === 'resnet' && res > 4) {
      shapes.set(`${block}.skip.weight`, [out, input, 1, 1]);
      shapes.set(`${block}.skip.resample_filter`, [4, 4]);
    }
  }
  return shapes;
}

/** Throws unless every tensor the architecture needs is present with its expected shape. */
export function checkCanonicalTensors(arch: GeneratorArchitecture, tensors: Map<string, Tensor>, format: string): void {
  const problems: string[] = [];
  for (const [name, shape] of expectedTensorShapes(arch)) {
    const tensor = tensors.get(name);
    if (tensor === undefined) {
      if (name !== 'mapping.w_avg') problems.push(`${name} is missing`); // optional: see missingWAvgWarning
    }
    else if (tensor.shape.length !== shape.length || tensor.shape.some((d, i) => d !== shape[i])) {
      problems.push(`${name} has shape [${tensor.shape.join(', ')}], expected [${shape.join(', ')}]`);
    } else if (tensor.data.length !== shape.reduce((a, b) => a * b, 1)) {
      problems.push(`${name} has ${tensor.data.length} values for shape [${shape.join(', ')}]`);
    }
  }
  if (problems.length > 0) {
    throw new CheckpointError(
      'invalid_structure',
      `Invalid ${format}: its weights do not match the architecture read from it (${problems.length} problems; ` +
        `first: ${problems.slice(0, 3).join('; ')})`,
    );
  }
}

/**
 * Warning for checkpoints without a stored average latent. The reader then returns zeros with
 * `wAvgSource: 'estimated'`, and the converter replaces them by running the mapping network.
 */
export const missingWAvgWarning =
  'The checkpoint stores no average latent (w_avg); wAvg is zeros here and must be estimated by running the mapping network on random z before truncation is used.';

/** num_ws of the skip/orig/resnet generators: two latents per block plus the final ToRGB. */
export function numWsFor(resolution: number): number {
  return 2 * Math.log2(resolution) - 2;
}

export function isPowerOfTwoResolution(value: unknown): value is number {
  return Number.isSafeInteger(value) && (value as number) >= 4 && Math.log2(value as number) % 1 === 0;
}
