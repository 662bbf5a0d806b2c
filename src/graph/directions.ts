/**
 * Closed-form semantic directions ("SeFa", Shen & Zhou 2021): the eigenvectors of AᵀA, where A
 * stacks the style-affine weights `[C_in, wDim]` of the chosen synthesis layers row-wise. They are
 * the w directions that change those layers' styles the most, found without data or training.
 *
 * Sets: `all` uses every conv layer plus the 4×4 ToRGB (as rosinality's
 * closed_form_factorization.py does); `coarse`, `middle` and `fine` use the conv layers whose ws
 * index falls in that range (4²–8², 16²–32², 64² and up). Raw stored affine weights are used: every
 * affine shares the gain 1/sqrt(wDim), which does not change the directions.
 * Sign convention: each eigenvector's largest-magnitude component is positive.
 */

import type { GeneratorWeights } from '../checkpoint/types.js';
import { blockResolutions } from '../checkpoint/types.js';
import { symmetricEigen } from './symmetric-eigen.js';

export type DirectionSetName = 'all' | 'coarse' | 'middle' | 'fine';

export interface DirectionSet {
  name: DirectionSetName;
  /** ws indices the set's layers read; an edit with this set applies to these by default. */
  layers: number[];
  /** Synthesis layers whose affine weights were stacked, e.g. `b8.conv0`. */
  sources: string[];
  /** Eigenvalues of AᵀA, descending. */
  eigenvalues: Float64Array;
  /** Eigenvectors as rows, `[wDim, wDim]`, row k belongs to eigenvalue k. */
  vectors: Float32Array;
}

interface AffineLayer {
  name: string; // e.g. 'b8.conv0'
  wsIndex: number;
}

/** Conv layers (and the 4×4 ToRGB) with the ws index each reads. */
function affineLayers(weights: GeneratorWeights): { convs: AffineLayer[]; torgb4: AffineLayer } {
  const convs: AffineLayer[] = [{ name: 'b4.conv1', wsIndex: 0 }];
  for (const res of blockResolutions(weights.arch.resolution).slice(1)) {
    const k = Math.log2(res);
    convs.push({ name: `b${res}.conv0`, wsIndex: 2 * k - 5 }, { name: `b${res}.conv1`, wsIndex: 2 * k - 4 });
  }
  return { convs, torgb4: { name: 'b4.torgb', wsIndex: 1 } };
}

function rangeOf(wsIndex: number): 'coarse' | 'middle' | 'fine' {
  if (wsIndex <= 3) return 'coarse';
  if (wsIndex <= 7) return 'middle';
  return 'fine';
}

/** AᵀA `[wDim, wDim]` of the stacked affine weights of `layers`, in float64. */
function gramMatrix(weights: GeneratorWeights, layers: AffineLayer[]): Float64Array {
  const wDim = weights.arch.wDim;
  const gram = new Float64Array(wDim * wDim);
  for (const layer of layers) {
    const tensor = weights.tensors.get(`synthesis.${layer.name}.affine.weight`);
    if (!tensor) throw new Error(`missing tensor synthesis.${layer.name}.affine.weight`);
    const rows = tensor.shape[0]; // [C_in, wDim]
    for (let r = 0; r < rows; r++) {
      const row = tensor.data.subarray(r * wDim, (r + 1) * wDim);
      for (let i = 0; i < wDim; i++) {
        const ri = row[i];
        if (ri === 0) continue;
        const base = i * wDim;
        for (let j = i; j < wDim; j++) gram[base + j] += ri * row[j];
      }
    }
  }
  for (let i = 0; i < wDim; i++) for (let j = 0; j < i; j++) gram[i * wDim + j] = gram[j * wDim + i];
  return gram;
}

/** Computes the `all`, `coarse`, `middle` and `fine` direction sets (empty ranges are left out). */
export function computeDirections(weights: GeneratorWeights): DirectionSet[] {
  const { wDim, numWs } = weights.arch;
  const { convs, torgb4 } = affineLayers(weights);
  const groups: [DirectionSetName, AffineLayer[]][] = [
    ['all', [...convs, torgb4]],
    ['coarse', convs.filter((l) => rangeOf(l.wsIndex) === 'coarse')],
    ['middle', convs.filter((l) => rangeOf(l.wsIndex) === 'middle')],
    ['fine', convs.filter((l) => rangeOf(l.wsIndex) === 'fine')],
  ];
  const sets: DirectionSet[] = [];
  for (const [name, layers] of groups) {
    if (layers.length === 0) continue;
    const { values, vectors } = symmetricEigen(gramMatrix(weights, layers), wDim);
    // A named set edits every ws index of its range (the same indices /mix uses for the name).
    const allIndices = Array.from({ length: numWs }, (_, i) => i);
    const wsLayers = name === 'all' ? allIndices : allIndices.filter((i) => rangeOf(i) === name);
    sets.push({ name, layers: wsLayers, sources: layers.map((l) => l.name), eigenvalues: values, vectors: Float32Array.from(vectors) });
  }
  return sets;
}
