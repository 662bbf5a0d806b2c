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
 * `exit` ends the worker at its next event-loop turn, never inside an ONNX Runtime call (terminating a
 * worker during `run()` aborts the whole process with onnxruntime-node 1.31.1).
 */
export type ToWorker = { type: 'run'; id: number; batch: BatchInput } | { type: 'exit'; code: number };

export type FromWorker =
  | { type: 'ready'; provider: 'cpu' | 'cuda'; reason: string }
  | { type: 'init-failed'; message: string }
  | { type: 'result'; id: number; output: BatchOutput }
  | { type: 'error'; id: number; message: string };
