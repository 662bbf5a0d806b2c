/**
 * Finds and validates model folders (`<modelsDir>/<name>/model.json` plus the files it names, see
 * src/graph/model-manifest.ts). Loading checks the converter version, every file's sha256 and the
 * shapes the runtime relies on, so a damaged or outdated folder fails at start-up, not mid-request.
 */

import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { readFile, readdir, stat } from 'node:fs/promises';
import { join, resolve } from 'node:path';

import {
  converterVersion,
  modelManifestFile,
  type ModelManifest,
} from '../graph/model-manifest.js';
import type { ModelInfo } from './contract.js';
import { ModelNotFoundError } from './errors.js';

/** Model names are folder names; the pattern keeps them free of path separators and dot-dot. */
export const modelNamePattern = /^[a-z0-9][a-z0-9._-]{0,63}$/;

/** A validated model folder. */
export interface LoadedModel extends ModelInfo {
  /** Absolute folder path. */
  dir: string;
  /** Absolute paths of the graphs and the stored noise; `synthesisFp16` only when model.json lists it. */
  paths: { mapping: string; synthesis: string; noiseConst: string; synthesisFp16?: string };
}

/** Throws ModelNotFoundError unless `name` matches `modelNamePattern`; checked before any file access. */
export function assertModelName(name: string): void {
  if (!modelNamePattern.test(name)) {
    throw new ModelNotFoundError(
      `invalid model name ${JSON.stringify(name)}: expected 1-64 characters of a-z, 0-9, '.', '_' or '-', starting with a letter or digit`,
      name,
    );
  }
}

async function sha256OfFile(path: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

function fail(name: string, problem: string): never {
  throw new Error(`model ${name}: ${problem}; re-run the converter for this model`);
}

/** Checks the fields the runtime uses; throws an Error naming the first bad one. */
export function validateManifest(name: string, manifest: ModelManifest): void {
  if (manifest.converterVersion !== converterVersion) {
    fail(name, `converterVersion is ${manifest.converterVersion}, this build reads version ${converterVersion}`);
  }
  const arch = manifest.arch;
  if (!arch || typeof arch !== 'object') fail(name, 'model.json has no arch');
  for (const key of ['zDim', 'wDim', 'resolution', 'imgChannels', 'numWs'] as const) {
    if (!Number.isInteger(arch[key]) || arch[key] < 1) fail(name, `arch.${key} is ${arch[key]}, expected a positive integer`);
  }
  if (!Number.isInteger(arch.cDim) || arch.cDim < 0) fail(name, `arch.cDim is ${arch.cDim}, expected an integer >= 0`);
  if (!Array.isArray(manifest.wAvg) || manifest.wAvg.length !== arch.wDim) {
    fail(name, `wAvg has ${manifest.wAvg?.length} values, expected wDim = ${arch.wDim}`);
  }
  if (!Array.isArray(manifest.noiseLayers)) fail(name, 'noiseLayers is missing');
  let offset = 0;
  for (const [i, layer] of manifest.noiseLayers.entries()) {
    if (layer.name !== `noise_${i}`) fail(name, `noiseLayers[${i}].name is ${layer.name}, expected noise_${i}`);
    if (layer.offset !== offset) fail(name, `noiseLayers[${i}].offset is ${layer.offset}, expected ${offset}`);
    if (!Number.isInteger(layer.resolution) || layer.resolution < 1) {
      fail(name, `noiseLayers[${i}].resolution is ${layer.resolution}`);
    }
    offset += layer.resolution * layer.resolution;
  }
  for (const key of ['mapping', 'synthesis', 'noiseConst'] as const) {
    const file = manifest.files?.[key];
    if (typeof file !== 'string' || !modelNamePattern.test(file)) fail(name, `files.${key} is ${JSON.stringify(file)}`);
    if (typeof manifest.fileSha256?.[file] !== 'string') fail(name, `fileSha256 has no entry for ${file}`);
  }
  for (const key of ['synthesisFp16', 'synthesisGradD'] as const) {
    const file = manifest.files?.[key];
    if (file === undefined) continue;
    if (typeof file !== 'string' || !modelNamePattern.test(file)) fail(name, `files.${key} is ${JSON.stringify(file)}`);
    if (typeof manifest.fileSha256?.[file] !== 'string') fail(name, `fileSha256 has no entry for ${file}`);
  }
}

/** Floats in the noise_const file, the sum of R·R over the noise layers. */
export function noiseConstLength(manifest: ModelManifest): number {
  return manifest.noiseLayers.reduce((sum, layer) => sum + layer.resolution * layer.resolution, 0);
}

/** Reads and validates one model folder. */
export async function loadModel(modelsDir: string, name: string): Promise<LoadedModel> {
  assertModelName(name);
  const dir = resolve(modelsDir, name);
  let text: string;
  try {
    text = await readFile(join(dir, modelManifestFile), 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') {
      throw new ModelNotFoundError(`model ${name} not found: ${join(dir, modelManifestFile)} does not exist`, name);
    }
    throw err;
  }
  let manifest: ModelManifest;
  try {
    manifest = JSON.parse(text) as ModelManifest;
  } catch (err) {
    fail(name, `model.json is not valid JSON (${(err as Error).message})`);
  }
  validateManifest(name, manifest);
  if (manifest.name !== name) fail(name, `model.json names the model ${JSON.stringify(manifest.name)}, expected the folder name`);

  const paths: LoadedModel['paths'] = {
    mapping: join(dir, manifest.files.mapping),
    synthesis: join(dir, manifest.files.synthesis),
    noiseConst: join(dir, manifest.files.noiseConst),
    ...(manifest.files.synthesisFp16 ? { synthesisFp16: join(dir, manifest.files.synthesisFp16) } : {}),
  };
  for (const [key, path] of Object.entries(paths)) {
    const file = manifest.files[key as keyof typeof paths] as string;
    const actual = await sha256OfFile(path).catch((err: NodeJS.ErrnoException) => fail(name, `cannot read ${path} (${err.code ?? err.message})`));
    if (actual !== manifest.fileSha256[file]) {
      fail(name, `sha256 of ${file} is ${actual}, model.json expects ${manifest.fileSha256[file]}`);
    }
  }
  const noiseBytes = (await stat(paths.noiseConst)).size;
  if (noiseBytes !== noiseConstLength(manifest) * 4) {
    fail(name, `${manifest.files.noiseConst} has ${noiseBytes} bytes, expected ${noiseConstLength(manifest) * 4} for the noise layers`);
  }
  return { name, manifest, dir, paths };
}

/** Names of the folders under `modelsDir` that contain a model.json and a valid name, sorted. */
export async function listModelFolders(modelsDir: string): Promise<string[]> {
  const entries = await readdir(modelsDir, { withFileTypes: true });
  const names: string[] = [];
  for (const entry of entries) {
    if (!entry.isDirectory() || !modelNamePattern.test(entry.name)) continue;
    const found = await stat(join(modelsDir, entry.name, modelManifestFile)).then(() => true, () => false);
    if (found) names.push(entry.name);
  }
  return names.sort();
}

/** The loaded models, by name. */
export class ModelRegistry {
  private readonly models = new Map<string, LoadedModel>();

  /** Loads `names` (every model folder when empty); throws on the first invalid one. */
  static async load(modelsDir: string, names: readonly string[]): Promise<ModelRegistry> {
    const registry = new ModelRegistry();
    const requested = names.length > 0 ? names : await listModelFolders(modelsDir);
    if (requested.length === 0) throw new Error(`no models found in ${resolve(modelsDir)}: convert one or run the sample-model command`);
    for (const name of requested) registry.models.set(name, await loadModel(modelsDir, name));
    return registry;
  }

  list(): LoadedModel[] {
    return [...this.models.values()];
  }

  /** Looks up `name`; returns undefined for unknown names and for names that fail `modelNamePattern`. */
  get(name: string): LoadedModel | undefined {
    return modelNamePattern.test(name) ? this.models.get(name) : undefined;
  }

  /** Returns the model called `name`, or throws ModelNotFoundError naming the loaded models. */
  require(name: string): LoadedModel {
    assertModelName(name);
    const model = this.models.get(name);
    if (!model) {
      const loaded = [...this.models.keys()].join(', ');
      throw new ModelNotFoundError(`model ${name} not found: loaded models are ${loaded}`, name);
    }
    return model;
  }
}
