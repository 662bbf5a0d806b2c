/**
 * Loads a model's closed-form directions (`directions.f32.bin`) once and keeps them in memory.
 */

import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { DirectionSetEntry, ModelManifest } from '../graph/model-manifest.js';

export interface LoadedDirectionSet extends DirectionSetEntry {
  /** Unit eigenvectors as rows, `[wDim, wDim]`. */
  vectors: Float32Array;
}

export class DirectionStore {
  private readonly cache = new Map<string, Promise<LoadedDirectionSet[] | undefined>>();

  constructor(private readonly modelsDir: string) {}

  /** Returns the model's direction sets, or undefined when its folder has none (convert it again). */
  get(manifest: ModelManifest): Promise<LoadedDirectionSet[] | undefined> {
    let loaded = this.cache.get(manifest.name);
    if (!loaded) {
      loaded = this.load(manifest);
      this.cache.set(manifest.name, loaded);
      loaded.catch(() => this.cache.delete(manifest.name));
    }
    return loaded;
  }

  private async load(manifest: ModelManifest): Promise<LoadedDirectionSet[] | undefined> {
    if (!manifest.directions) return undefined;
    const { wDim } = manifest.arch;
    const bytes = await readFile(join(this.modelsDir, manifest.name, manifest.directions.file));
    const floats = new Float32Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength));
    return manifest.directions.sets.map((set) => {
      const end = set.offset + wDim * wDim;
      if (end > floats.length) {
        throw new Error(`${manifest.name}/${manifest.directions!.file} is truncated: set "${set.name}" needs floats up to ${end}, file has ${floats.length}`);
      }
      return { ...set, vectors: floats.subarray(set.offset, end) };
    });
  }
}
