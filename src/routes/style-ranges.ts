/**
 * Which ws indices a style-mixing column donates. Named ranges follow the StyleGAN paper's split by
 * resolution: coarse 4²–8², middle 16²–32², fine 64² and up. The ws index of each layer is
 * b4.conv1 = 0, b4.torgb = 1, and for a block of resolution 2^k (k ≥ 3) conv0 = 2k − 5,
 * conv1 = 2k − 4, torgb = 2k − 3 (the torgb latent is shared with the next block's conv0).
 */

import { invalidField } from './problem.js';

export type StyleRange = 'coarse' | 'middle' | 'fine';

/** ws indices used by layers of resolution `lowRes` to `highRes` (both inclusive, powers of two). */
function indicesForResolutions(lowRes: number, highRes: number, numWs: number): number[] {
  const out = new Set<number>();
  for (let res = lowRes; res <= highRes; res *= 2) {
    const k = Math.log2(res);
    const layers = res === 4 ? [0, 1] : [2 * k - 5, 2 * k - 4, 2 * k - 3];
    for (const index of layers) if (index < numWs) out.add(index);
  }
  return [...out].sort((a, b) => a - b);
}

/** ws indices of a named range for a model with `numWs` latents. */
export function styleRangeIndices(range: StyleRange, numWs: number): number[] {
  const maxRes = 2 ** ((numWs + 2) / 2);
  switch (range) {
    case 'coarse':
      return indicesForResolutions(4, Math.min(8, maxRes), numWs);
    case 'middle':
      return maxRes >= 16 ? indicesForResolutions(16, Math.min(32, maxRes), numWs).filter((i) => i > 3) : [];
    case 'fine':
      return maxRes >= 64 ? indicesForResolutions(64, maxRes, numWs).filter((i) => i > 7) : [];
  }
}

/**
 * Resolves `styles` (explicit indices and/or range names) to sorted unique ws indices, with a 422
 * naming numWs for indices out of range and for a range the model does not have.
 */
export function resolveStyles(styles: (number | StyleRange)[], numWs: number, pointer = '/styles'): number[] {
  const out = new Set<number>();
  styles.forEach((entry, i) => {
    if (typeof entry === 'number') {
      if (!Number.isInteger(entry) || entry < 0 || entry >= numWs) {
        throw invalidField(`${pointer}/${i}`, `expected a ws index in [0, ${numWs - 1}] (the model has numWs ${numWs}), got ${entry}`);
      }
      out.add(entry);
      return;
    }
    const indices = styleRangeIndices(entry, numWs);
    if (indices.length === 0) {
      throw invalidField(`${pointer}/${i}`, `range "${entry}" is empty for a model with numWs ${numWs}; give explicit ws indices`);
    }
    for (const index of indices) out.add(index);
  });
  if (out.size === 0) throw invalidField(pointer, 'expected at least one ws index or range name');
  return [...out].sort((a, b) => a - b);
}
