/**
 * The typed Hono environment of every route: the services and settings that `src/app.ts` puts on
 * the context, and the request id and logger of the current request.
 */

import type { Logger } from 'pino';
import type { Registry } from 'prom-client';
import type { ImageResult, ImageSpec, JobOptions, ModelInfo } from '../runtime/contract.js';
import type { LoadedDirectionSet } from '../runtime/directions.js';
import type { ImageCache } from '../runtime/image-cache.js';
import type { WorkerTask, WorkerTaskOutput } from '../runtime/worker-protocol.js';

/** The runtime operations the routes use; `src/app.ts` passes the real inference service. */
export interface ImageService {
  /** True once every model is loaded and warmed, false again while draining. */
  isReady(): boolean;
  isDraining(): boolean;
  models(): ModelInfo[];
  getModel(name: string): ModelInfo | undefined;
  /** Queues the images; throws the runtime's queue-full or unavailable errors synchronously. */
  generate(model: string, images: ImageSpec[], options: JobOptions): AsyncIterable<ImageResult>;
  /** Runs a projection gradient step or a mapping-only batch at bulk priority in the same scheduler. */
  runTask(model: string, task: WorkerTask, options: JobOptions): Promise<WorkerTaskOutput>;
  /** Execution provider actually in use (`cpu` or `cuda`) and why. */
  provider(): { name: string; reason: string };
  /** The model's closed-form direction sets, or undefined when its folder has none. */
  directions(model: ModelInfo): Promise<LoadedDirectionSet[] | undefined>;
  /** prom-client registry holding the runtime metrics; the HTTP layer adds its request metrics to it. */
  readonly metricsRegistry: Registry;
}

/** Settings the routes read (a subset of the server configuration). */
export interface RouteSettings {
  defaultModel: string;
  maxImagesPerRequest: number;
  /** Most row×column images one /mix request may ask for. */
  maxGridCells: number;
  /** Most frames one /interpolate request may ask for. */
  maxFrames: number;
  /** Most output pixels (frames × R × R, or grid width × height) one request may produce. */
  maxOutputPixels: number;
  defaultTimeoutMs: number;
  maxTimeoutMs: number;
  pngCompressionLevel: number;
  webpEffort: number;
  /** Projection limits (src/routes/project.ts); defaults from src/config.ts apply when absent. */
  projection?: ProjectionSettings;
}

export interface ProjectionSettings {
  maxProjectSteps: number;
  maxUploadBytes: number;
  maxUploadPixels: number;
  maxProjectJobs: number;
  projectJobTtlMs: number;
}

export interface AppEnv {
  Variables: {
    service: ImageService;
    settings: RouteSettings;
    requestId: string;
    /** Encoded single-image responses, keyed by everything that determines the bytes. */
    imageCache: ImageCache;
    /** When the request arrived (ms since the epoch); see `JobOptions.admittedAtMs`. */
    admittedAtMs: number;
    log: Logger;
  };
}
