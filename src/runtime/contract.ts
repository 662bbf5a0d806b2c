/**
 * Types shared by the runtime and the HTTP routes. The routes turn a request into `ImageJob`s, the
 * scheduler batches their images with other requests' images, and the routes stream the results.
 * Only plain data crosses this boundary: no Hono, zod or ONNX Runtime types.
 */

import type { ModelManifest } from '../graph/model-manifest.js';

export type NoiseMode = 'const' | 'random' | 'none';

/** Scheduling class: interactive work is taken before bulk work (later frames, projection steps). */
export type Priority = 'interactive' | 'bulk';

/** Source of one image's latents: exactly one form per image. */
export type LatentSource =
  /** z `[zDim]`, mapped with psi and cutoff (and label `c [cDim]` for conditional models). */
  | { kind: 'z'; z: Float32Array; c?: Float32Array; psi: number; truncationCutoff?: number }
  /** ws `[numWs, wDim]`, fed to synthesis as is. */
  | { kind: 'ws'; ws: Float32Array };

/** One image to compute. */
export interface ImageSpec {
  latent: LatentSource;
  noiseMode: NoiseMode;
  /** Seed of the noise maps for noise mode `random`. */
  noiseSeed?: number;
}

/** Options shared by every image of one request. */
export interface JobOptions {
  /** Request id, logged with every batch the job's images ran in. */
  requestId: string;
  priority: Priority;
  /** Absolute deadline (ms since the epoch, `Date.now()` clock). */
  deadlineMs: number;
  /** Aborts the job: queued images are dropped and nothing further is delivered. */
  signal?: AbortSignal;
  /**
   * When the HTTP request arrived (ms since the epoch). While the service drains, jobs of requests
   * that arrived before the drain began are still accepted, so requests that submit several jobs in
   * turn (/mix, /edit, chunked /interpolate) can finish.
   */
  admittedAtMs?: number;
}

/**
 * One finished image, delivered as soon as its batch finishes: in index order with one worker, but
 * with several workers batches can finish out of order, so read `index`.
 */
export interface ImageResult {
  /** Index into the job's `ImageSpec` list. */
  index: number;
  /** `[imgChannels, R, R]` float32, nominally in [-1, 1]. */
  image: Float32Array;
  /** `[numWs, wDim]` the synthesis ran on (after mapping and truncation). */
  ws: Float32Array;
  timings: { queueMs: number; inferenceMs: number };
  /** Number of images in the batch that computed this one (padding excluded). */
  batchSize: number;
}

/** A loaded model as `/models` and `/health` report it. */
export interface ModelInfo {
  name: string;
  manifest: ModelManifest;
}
