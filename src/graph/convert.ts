/**
 * Converts canonical generator weights into a model folder `models/<name>/` (see model-manifest.ts):
 * the ONNX graphs (mapping, synthesis, the projection gradient graphs and, on request, the float16
 * synthesis graph), the stored noise maps and model.json. The folder is assembled in a temporary
 * sibling directory and renamed into place, so readers never see a half-written model.
 */

import { createHash, randomBytes } from 'node:crypto';
import { mkdir, rename, rm, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';

import type { GeneratorWeights } from '../checkpoint/types.js';
import { noiseLayers, tensorOf } from './layers.js';
import { buildMappingGraph } from './mapping.js';
import {
  converterVersion,
  directionsFile,
  discriminatorGradientGraphFile,
  mappingGraphFile,
  modelManifestFile,
  noiseConstFile,
  synthesisFp16GraphFile,
  synthesisGradientGraphFile,
  synthesisGraphFile,
  type ModelManifest,
} from './model-manifest.js';
import { computeDirections } from './directions.js';
import { buildSynthesisGradientGraph } from './gradient.js';
import { buildDiscriminatorGradientGraph } from './gradient-discriminator.js';
import { buildSynthesisGraph } from './synthesis.js';
import { estimateWAvg } from './w-avg.js';

/** Allowed model names: lowercase letters, digits, '.', '_' and '-', starting with a letter or digit. */
export const modelNamePattern = /^[a-z0-9][a-z0-9._-]{0,63}$/;

export interface ConversionProgress {
  stage: 'w_avg' | 'mapping' | 'synthesis' | 'gradient' | 'noise' | 'directions' | 'write' | 'done';
  message: string;
}

export interface WriteModelOptions {
  name: string;
  /** Parent folder of all model folders. */
  modelsDir: string;
  /** The converted file: base name (or a description for generated weights), sha256 hex and size. */
  source: { file: string; sha256: string | null; bytes: number | null };
  /** Replace an existing folder of the same name; otherwise an existing folder is an error. */
  overwrite?: boolean;
  /** Also write the float16 synthesis graph `synthesis_fp16.onnx` (for GPUs). */
  fp16?: boolean;
  onProgress?: (event: ConversionProgress) => void;
}

/** Throws unless `name` matches `modelNamePattern`. */
export function validateModelName(name: string): void {
  if (!modelNamePattern.test(name)) {
    throw new Error(
      `invalid model name ${JSON.stringify(name)}: use 1-64 characters of a-z, 0-9, '.', '_' or '-', starting with a letter or digit`,
    );
  }
}

/** Resolves `modelsDir/name`, rejecting names that would leave modelsDir. */
export function modelFolderPath(modelsDir: string, name: string): string {
  validateModelName(name);
  const root = path.resolve(modelsDir);
  const folder = path.resolve(root, name);
  if (path.dirname(folder) !== root) throw new Error(`model name ${JSON.stringify(name)} resolves outside the models folder ${root}`);
  return folder;
}

/** Writes `modelsDir/<name>/` for `weights` and returns its manifest. */
export async function writeModelFolder(weights: GeneratorWeights, options: WriteModelOptions): Promise<ModelManifest> {
  const folder = modelFolderPath(options.modelsDir, options.name);
  const progress = options.onProgress ?? (() => {});
  if (!options.overwrite && (await exists(folder))) {
    throw new Error(`model folder ${folder} already exists; choose another name, or replace it (--force on the command line)`);
  }
  if (weights.arch.architecture === 'resnet') {
    throw new Error("synthesis architecture 'resnet' is not supported yet; only 'skip' and 'orig' generators can be converted");
  }

  let wAvg = weights.wAvg;
  if (weights.wAvgSource === 'estimated') {
    progress({ stage: 'w_avg', message: 'estimating w_avg as the mean mapping output over 10,000 random z' });
    wAvg = await estimateWAvg(weights);
  }
  const finalWeights: GeneratorWeights = { ...weights, wAvg };

  progress({ stage: 'mapping', message: 'building mapping.onnx' });
  const mappingBytes = buildMappingGraph(finalWeights);
  progress({ stage: 'synthesis', message: 'building synthesis.onnx' });
  const synthesisBytes = buildSynthesisGraph(finalWeights);
  let synthesisFp16Bytes: Uint8Array | undefined;
  if (options.fp16) {
    progress({ stage: 'synthesis', message: 'building synthesis_fp16.onnx' });
    synthesisFp16Bytes = buildSynthesisGraph(finalWeights, { precision: 'fp16' });
  }
  progress({ stage: 'gradient', message: 'building synthesis_grad.onnx (loss and gradients for projection)' });
  const gradientBytes = buildSynthesisGradientGraph(finalWeights);
  let discriminatorGradientBytes: Uint8Array | undefined;
  if (finalWeights.discriminator) {
    progress({ stage: 'gradient', message: 'building synthesis_grad_d.onnx (discriminator-feature loss for projection)' });
    discriminatorGradientBytes = buildDiscriminatorGradientGraph(finalWeights);
  }
  progress({ stage: 'noise', message: 'collecting the stored noise maps' });
  const noiseBytes = noiseConstBytes(finalWeights);

  progress({ stage: 'directions', message: 'computing closed-form directions (eigenvectors of the stacked style affines)' });
  const directionSets = computeDirections(finalWeights);
  const { wDim } = weights.arch;
  const directionValues = new Float32Array(directionSets.length * wDim * wDim);
  directionSets.forEach((set, i) => directionValues.set(set.vectors, i * wDim * wDim));

  const files: ModelManifest['files'] = { mapping: mappingGraphFile, synthesis: synthesisGraphFile, noiseConst: noiseConstFile, synthesisGrad: synthesisGradientGraphFile };
  const contents: Record<string, Uint8Array> = {
    [mappingGraphFile]: mappingBytes,
    [synthesisGraphFile]: synthesisBytes,
    [synthesisGradientGraphFile]: gradientBytes,
    [noiseConstFile]: noiseBytes,
    [directionsFile]: littleEndianFloats(directionValues),
  };
  if (discriminatorGradientBytes) {
    files.synthesisGradD = discriminatorGradientGraphFile;
    contents[discriminatorGradientGraphFile] = discriminatorGradientBytes;
  }
  if (synthesisFp16Bytes) {
    files.synthesisFp16 = synthesisFp16GraphFile;
    contents[synthesisFp16GraphFile] = synthesisFp16Bytes;
  }
  const fileSha256: Record<string, string> = {};
  for (const [file, bytes] of Object.entries(contents)) fileSha256[file] = createHash('sha256').update(bytes).digest('hex');

  const manifest: ModelManifest = {
    name: options.name,
    converterVersion,
    createdAt: new Date().toISOString(),
    source: {
      format: weights.source.format,
      file: options.source.file,
      sha256: options.source.sha256,
      bytes: options.source.bytes,
      details: weights.source.details,
    },
    arch: weights.arch,
    wAvg: Array.from(wAvg),
    wAvgSource: weights.wAvgSource,
    ...(weights.wAvgPerClass ? { wAvgPerClass: perClassRows(weights.wAvgPerClass, weights.arch.cDim, weights.arch.wDim) } : {}),
    noiseLayers: noiseLayers(weights.arch),
    directions: {
      file: directionsFile,
      sets: directionSets.map((set, i) => ({
        name: set.name,
        layers: set.layers,
        sources: set.sources,
        eigenvalues: Array.from(set.eigenvalues),
        offset: i * wDim * wDim,
      })),
    },
    files,
    fileSha256,
  };

  progress({ stage: 'write', message: `writing ${folder}` });
  await writeFolderAtomically(folder, { ...contents, [modelManifestFile]: new TextEncoder().encode(`${JSON.stringify(manifest, null, 2)}\n`) }, options.overwrite ?? false);
  progress({ stage: 'done', message: `model '${options.name}' written` });
  return manifest;
}

function littleEndianFloats(values: Float32Array): Uint8Array {
  const bytes = new Uint8Array(values.length * 4);
  const view = new DataView(bytes.buffer);
  for (let i = 0; i < values.length; i++) view.setFloat32(i * 4, values[i], true);
  return bytes;
}

/** Concatenates the `noise_const` maps in noise-layer order (all zeros when the model has no noise). */
export function noiseConstBytes(weights: GeneratorWeights): Uint8Array {
  const layers = noiseLayers(weights.arch);
  const total = layers.reduce((sum, layer) => sum + layer.resolution * layer.resolution, 0);
  const values = new Float32Array(total);
  if (weights.arch.useNoise) {
    for (const layer of layers) {
      const map = tensorOf(weights, `synthesis.${layer.layer}.noise_const`, [layer.resolution, layer.resolution]);
      values.set(map.data, layer.offset);
    }
  }
  const bytes = new Uint8Array(total * 4);
  const view = new DataView(bytes.buffer);
  for (let i = 0; i < total; i++) view.setFloat32(i * 4, values[i], true);
  return bytes;
}

function perClassRows(values: Float32Array, cDim: number, wDim: number): number[][] {
  if (values.length !== cDim * wDim) throw new Error(`wAvgPerClass has ${values.length} values, expected cDim·wDim = ${cDim * wDim}`);
  return Array.from({ length: cDim }, (_, c) => Array.from(values.subarray(c * wDim, (c + 1) * wDim)));
}

async function exists(target: string): Promise<boolean> {
  try {
    await stat(target);
    return true;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw error;
  }
}

/** Writes the files into a hidden temporary sibling folder, then renames it to `folder`. */
async function writeFolderAtomically(folder: string, contents: Record<string, Uint8Array>, overwrite: boolean): Promise<void> {
  const parent = path.dirname(folder);
  const suffix = `${process.pid}-${randomBytes(4).toString('hex')}`;
  const temporary = path.join(parent, `.tmp-${path.basename(folder)}-${suffix}`);
  await mkdir(temporary, { recursive: true });
  try {
    for (const [file, bytes] of Object.entries(contents)) await writeFile(path.join(temporary, file), bytes);
    if (overwrite && (await exists(folder))) {
      const previous = path.join(parent, `.old-${path.basename(folder)}-${suffix}`);
      await rename(folder, previous);
      await rename(temporary, folder);
      await rm(previous, { recursive: true, force: true });
    } else {
      await rename(temporary, folder);
    }
  } catch (error) {
    await rm(temporary, { recursive: true, force: true });
    throw error;
  }
}
