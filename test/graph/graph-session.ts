/** Test helpers: ONNX Runtime sessions on built graphs, batched runs and error measures. */

import * as ort from 'onnxruntime-node';

import type { GeneratorArchitecture } from '../../src/checkpoint/types.js';
import { noiseLayers } from '../../src/graph/layers.js';

export async function createSession(bytes: Uint8Array): Promise<ort.InferenceSession> {
  return ort.InferenceSession.create(bytes, { intraOpNumThreads: 2, graphOptimizationLevel: 'all' });
}

export interface MappingRow {
  z: Float32Array;
  c?: Float32Array;
  psi: number;
  cutoff: number;
}

/** Runs the mapping graph on `rows` as one batch; returns one `[numWs·wDim]` ws per row. */
export async function runMapping(session: ort.InferenceSession, arch: GeneratorArchitecture, rows: MappingRow[]): Promise<Float32Array[]> {
  const n = rows.length;
  const z = new Float32Array(n * arch.zDim);
  const c = new Float32Array(n * arch.cDim);
  const psi = new Float32Array(n);
  const cutoff = new BigInt64Array(n);
  rows.forEach((row, i) => {
    z.set(row.z, i * arch.zDim);
    if (arch.cDim > 0) c.set(row.c ?? new Float32Array(arch.cDim), i * arch.cDim);
    psi[i] = row.psi;
    cutoff[i] = BigInt(row.cutoff);
  });
  const feeds: Record<string, ort.Tensor> = {
    z: new ort.Tensor('float32', z, [n, arch.zDim]),
    psi: new ort.Tensor('float32', psi, [n]),
    truncation_cutoff: new ort.Tensor('int64', cutoff, [n]),
  };
  if (arch.cDim > 0) feeds.c = new ort.Tensor('float32', c, [n, arch.cDim]);
  const { ws } = await session.run(feeds);
  const data = ws.data as Float32Array;
  const rowLength = arch.numWs * arch.wDim;
  return rows.map((_, i) => data.slice(i * rowLength, (i + 1) * rowLength));
}

/**
 * Runs the synthesis graph on `wsRows` as one batch. `noise` holds one map per noise layer: either
 * `[R·R]` (fed as a batch of 1 that broadcasts) or `[N·R·R]` (one map per row).
 */
export async function runSynthesis(
  session: ort.InferenceSession,
  arch: GeneratorArchitecture,
  wsRows: Float32Array[],
  noise: Float32Array[],
): Promise<Float32Array[]> {
  const n = wsRows.length;
  const ws = new Float32Array(n * arch.numWs * arch.wDim);
  wsRows.forEach((row, i) => ws.set(row, i * arch.numWs * arch.wDim));
  const feeds: Record<string, ort.Tensor> = { ws: new ort.Tensor('float32', ws, [n, arch.numWs, arch.wDim]) };
  noiseLayers(arch).forEach((layer, i) => {
    const area = layer.resolution * layer.resolution;
    const batch = noise[i].length / area;
    feeds[layer.name] = new ort.Tensor('float32', noise[i], [batch, 1, layer.resolution, layer.resolution]);
  });
  const { img } = await session.run(feeds);
  const data = img.data as Float32Array;
  const imageLength = arch.imgChannels * arch.resolution * arch.resolution;
  return wsRows.map((_, i) => data.slice(i * imageLength, (i + 1) * imageLength));
}

export function maxAbsDiff(a: Float32Array, b: Float32Array): number {
  if (a.length !== b.length) throw new Error(`length mismatch: ${a.length} vs ${b.length}`);
  let max = 0;
  for (let i = 0; i < a.length; i++) {
    const diff = Math.abs(a[i] - b[i]);
    if (!(diff <= max)) max = Number.isNaN(diff) ? Infinity : diff;
  }
  return max;
}

export function maxAbs(a: Float32Array): number {
  let max = 0;
  for (const value of a) max = Math.max(max, Math.abs(value));
  return max;
}
