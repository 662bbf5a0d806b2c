/**
 * Messages between the main thread (src/runtime/worker-pool.ts) and the inference worker
 * (src/runtime/inference-worker.ts). Only plain data and typed arrays cross; the arrays of a batch
 * are transferred, not copied.
 */

import type { SessionConfig } from './config.js';

/** Paths and shapes the worker needs to open one model's sessions. */
export interface WorkerModelSpec {
  name: string;
  mappingPath: string;
  synthesisPath: string;
  noiseConstPath: string;
  /** The projection gradient graph, opened on first use; absent for folders converted without it. */
  synthesisGradPath?: string;
  /** The discriminator-feature gradient graph, opened on first use; absent for models without a discriminator. */
  synthesisGradDPath?: string;
  zDim: number;
  cDim: number;
  wDim: number;
  numWs: number;
  resolution: number;
  imgChannels: number;
  /** Noise inputs in graph order: name and side length R. */
  noiseLayers: { name: string; resolution: number }[];
}

/** `workerData` of a new worker. */
export interface WorkerInit {
  models: WorkerModelSpec[];
  session: SessionConfig;
}

/** Noise mode codes in `BatchInput.noiseModes`. */
export const noiseModeCode = { const: 0, random: 1, none: 2 } as const;

/**
 * One batch of `rows` real images, run at batch size `bucket` (>= rows; the worker pads with copies
 * of row 0 and drops their outputs). Rows whose latent is z are listed in `zRows` and mapped first.
 */
export interface BatchInput {
  model: string;
  rows: number;
  bucket: number;
  /** Row index of each z latent, ascending. */
  zRows: Int32Array; // [nz]
  z: Float32Array; // [nz, zDim]
  c: Float32Array; // [nz, cDim]
  psi: Float32Array; // [nz]
  /** Truncated layers per z row (layers l < cutoff); numWs for all. */
  cutoff: Int32Array; // [nz]
  /** ws of every row; rows listed in zRows are overwritten by the mapping output. */
  ws: Float32Array; // [rows, numWs, wDim]
  noiseModes: Uint8Array; // [rows], see noiseModeCode
  noiseSeeds: Float64Array; // [rows], used by mode random
}

export interface BatchOutput {
  img: Float32Array; // [rows, imgChannels, R, R]
  ws: Float32Array; // [rows, numWs, wDim]
  /** Worker-side times in ms. */
  timings: { mappingMs: number; noiseMs: number; synthesisMs: number; totalMs: number };
}

/**
 * One projection step for `rows` latents: the loss of synthesis(ws, noise) against `target`, and its
 * gradients (src/graph/gradient.ts).
 */
export interface GradientBatchInput {
  model: string;
  rows: number;
  ws: Float32Array; // [rows, numWs, wDim]
  /** One map per noise layer, each `[noiseRows, 1, R, R]`; null feeds the stored const noise. */
  noise: Float32Array[] | null;
  /** 1 (one map shared by every row) or `rows`. */
  noiseRows: number;
  target: Float32Array; // [rows, imgChannels, R, R]
  lossWeights: Float32Array; // [4]
  /** Gradient graph to run: `pixel` (synthesis_grad.onnx, the default) or `discriminator` (synthesis_grad_d.onnx). */
  graph?: GradientGraph;
}

export type GradientGraph = 'pixel' | 'discriminator';

export interface GradientBatchOutput {
  loss: Float32Array; // [rows]
  img: Float32Array; // [rows, imgChannels, R, R]
  gradWs: Float32Array; // [rows, numWs, wDim]
  /** dloss/dnoise per noise layer, each `[rows, 1, R, R]`. */
  gradNoise: Float32Array[];
  timings: { totalMs: number };
}

/** Mapping without truncation (psi 1) for `rows` z; returns only w, the first ws row. */
export interface MappingBatchInput {
  model: string;
  rows: number;
  z: Float32Array; // [rows, zDim]
  c: Float32Array; // [rows, cDim]
}

export interface MappingBatchOutput {
  w: Float32Array; // [rows, wDim]
  timings: { totalMs: number };
}

/** Work other than image batches that runs in the same workers and scheduler. */
export type WorkerTask = { kind: 'gradient'; batch: GradientBatchInput } | { kind: 'mapping'; batch: MappingBatchInput };
export type WorkerTaskOutput = { kind: 'gradient'; output: GradientBatchOutput } | { kind: 'mapping'; output: MappingBatchOutput };

/**
 * What a task counts against the scheduler's image-queue bound: a gradient task counts its rows
 * (each costs about two syntheses), and a mapping-only task counts 1 whatever its rows (a thousand
 * mapping rows cost less than one synthesis on the fixture models).
 */
export function taskQueueCost(task: WorkerTask): number {
  return task.kind === 'gradient' ? task.batch.rows : 1;
}

/** Returns the typed-array buffers of a task, transferred to the worker. */
export function taskBuffers(task: WorkerTask): ArrayBuffer[] {
  const arrays =
    task.kind === 'gradient'
      ? [task.batch.ws, task.batch.target, task.batch.lossWeights, ...(task.batch.noise ?? [])]
      : [task.batch.z, task.batch.c];
  return [...new Set(arrays.map((array) => array.buffer as ArrayBuffer))];
}

/** Returns the typed-array buffers of a task output, transferred back. */
export function taskOutputBuffers(output: WorkerTaskOutput): ArrayBuffer[] {
  const arrays = output.kind === 'gradient' ? [output.output.loss, output.output.img, output.output.gradWs, ...output.output.gradNoise] : [output.output.w];
  return [...new Set(arrays.map((array) => array.buffer as ArrayBuffer))];
}

/**
 * `exit` ends the worker at its next event-loop turn, never inside an ONNX Runtime call (terminating a
 * worker during `run()` aborts the whole process with onnxruntime-node 1.31.1).
 */
export type ToWorker = { type: 'run'; id: number; batch: BatchInput } | { type: 'task'; id: number; task: WorkerTask } | { type: 'exit'; code: number };

export type FromWorker =
  | { type: 'ready'; provider: 'cpu' | 'cuda'; reason: string; splitBatchModels: string[] }
  | { type: 'init-failed'; message: string }
  | { type: 'result'; id: number; output: BatchOutput }
  | { type: 'task-result'; id: number; output: WorkerTaskOutput }
  | { type: 'error'; id: number; message: string };
