/**
 * The offline sample model `sample`: seeded random (untrained) weights in a small configuration
 * that runs fast on a 2-core CPU, so the service works without downloading any checkpoint.
 */

import type { ModelManifest } from './model-manifest.js';
import { writeModelFolder, type ConversionProgress } from './convert.js';
import { randomGeneratorWeights, type RandomArchitecture } from './random-weights.js';

export const sampleModelName = 'sample';
export const sampleModelSeed = 20240;

/** 64x64, channel_base 4096, channel_max 128 (4..32: 128 channels, 64: 64), z = w = 128, 4 mapping layers. */
export const sampleModelArch: RandomArchitecture = {
  resolution: 64,
  channelBase: 4096,
  channelMax: 128,
  zDim: 128,
  wDim: 128,
  mappingLayers: 4,
  convClamp: 256,
};

/** Writes `modelsDir/sample/` from the seeded random weights and returns its manifest. */
export async function writeSampleModel(
  modelsDir: string,
  options: { overwrite?: boolean; onProgress?: (event: ConversionProgress) => void } = {},
): Promise<ModelManifest> {
  const weights = randomGeneratorWeights(sampleModelArch, sampleModelSeed);
  return writeModelFolder(weights, {
    name: sampleModelName,
    modelsDir,
    source: { file: `random weights, seed ${sampleModelSeed} (untrained sample model)`, sha256: null, bytes: null },
    ...options,
  });
}
