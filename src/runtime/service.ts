/**
 * The inference service: the one object the HTTP layer uses. `start()` loads and validates the
 * models, starts the worker threads (which open the ONNX Runtime sessions) and warms up every batch
 * size. `generate()` queues images with the scheduler and returns their results as they finish.
 */

import type { Registry } from 'prom-client';

import { childLogger, type Logger } from '../log.js';
import type { RuntimeConfig } from './config.js';
import type { ImageResult, ImageSpec, JobOptions, ModelInfo } from './contract.js';
import { setEncodeHistogram } from './encode.js';
import { UnavailableError } from './errors.js';
import { createMetrics, type RuntimeMetrics } from './metrics.js';
import { ModelRegistry } from './model-registry.js';
import { Scheduler, type SchedulerStats } from './scheduler.js';
import { WorkerPool, type ProviderInfo } from './worker-pool.js';
import type { Job } from './job.js';
import type { WorkerTask, WorkerTaskOutput } from './worker-protocol.js';

export { CancelledError, DeadlineExceededError, InferenceError, InvalidInputError, ModelNotFoundError, QueueFullError, UnavailableError } from './errors.js';
export type { Job } from './job.js';
export type { SchedulerStats } from './scheduler.js';

export interface ServiceStats extends SchedulerStats {
  workerRestarts: number;
}

export interface InferenceService {
  /** Loads the models, starts the workers and warms up; rejects if any model fails to load. */
  start(): Promise<void>;
  /** True after `start()` finished, until `drain()` or `close()`. */
  readonly ready: boolean;
  isReady(): boolean;
  isDraining(): boolean;
  models(): ModelInfo[];
  getModel(name: string): ModelInfo | undefined;
  /** Queues the images and returns the job; throws the scheduler's errors synchronously (see `Scheduler.submit`). */
  generate(model: string, images: ImageSpec[], opts: JobOptions): AsyncIterable<ImageResult> & Job;
  /** Runs a non-image task (projection gradient step, mapping-only batch) at bulk priority (see `Scheduler.submitTask`). */
  runTask(model: string, task: WorkerTask, opts: JobOptions): Promise<WorkerTaskOutput>;
  /** Execution provider in use and why it was chosen. */
  provider(): ProviderInfo;
  stats(): ServiceStats;
  readonly metricsRegistry: Registry;
  readonly metrics: RuntimeMetrics;
  /** Stops taking work and resolves once every accepted job has ended. */
  drain(): Promise<void>;
  /** Fails unfinished jobs with UnavailableError and stops the workers. */
  close(): Promise<void>;
}

export interface ServiceOptions {
  /** Registry for the runtime metrics; a new one when absent. */
  registry?: Registry;
}

export function createInferenceService(config: RuntimeConfig, logger: Logger, options: ServiceOptions = {}): InferenceService {
  const log = childLogger(logger, 'runtime');
  const metrics = createMetrics(options.registry);
  let registry: ModelRegistry | undefined;
  let pool: WorkerPool | undefined;
  let scheduler: Scheduler | undefined;
  let ready = false;
  let closed = false;

  function requireScheduler(opts: JobOptions): Scheduler {
    if (closed) throw new UnavailableError('the inference service is shut down; send the request to another instance');
    if (scheduler?.isDraining) {
      if (scheduler.admits(opts)) return scheduler;
      throw new UnavailableError('the server is shutting down and takes no new work; retry on another instance');
    }
    if (!scheduler || !ready) throw new UnavailableError('the inference service is still starting; retry in a few seconds');
    return scheduler;
  }

  return {
    async start() {
      if (registry) throw new Error('start() was already called');
      const started = performance.now();
      registry = await ModelRegistry.load(config.modelsDir, config.models);
      log.info({ models: registry.list().map((m) => m.name), modelsDir: config.modelsDir }, 'models validated');
      pool = await WorkerPool.start(registry.list(), config.session, childLogger(logger, 'worker-pool'));
      scheduler = new Scheduler(pool, registry, config.scheduler, metrics, childLogger(logger, 'scheduler'));
      setEncodeHistogram(metrics.encodeSeconds);
      if (config.warmUp) await scheduler.warmUp();
      if (closed) return;
      ready = true;
      log.info({ provider: pool.provider, workers: config.session.workers, intraOpNumThreads: config.session.intraOpNumThreads, ms: Math.round(performance.now() - started) }, 'inference service ready');
    },
    get ready() {
      return ready;
    },
    isReady: () => ready,
    isDraining: () => scheduler?.isDraining ?? false,
    models: () => registry?.list().map((m) => ({ name: m.name, manifest: m.manifest })) ?? [],
    getModel(name) {
      const model = registry?.get(name);
      return model ? { name: model.name, manifest: model.manifest } : undefined;
    },
    generate: (model, images, opts) => requireScheduler(opts).submit(model, images, opts),
    runTask: (model, task, opts) => {
      try {
        return requireScheduler(opts).submitTask(model, task, opts);
      } catch (err) {
        return Promise.reject(err);
      }
    },
    provider: () => pool?.provider ?? { name: 'cpu', reason: 'not started' },
    stats: () => {
      const base: SchedulerStats = scheduler?.stats() ?? { imagesComputed: 0, paddingImages: 0, batchesRun: 0, failedBatches: 0, cancellations: 0, expirations: 0, queuedImages: 0, inFlightImages: 0, activeJobs: 0 };
      return { ...base, workerRestarts: pool?.restarts ?? 0 };
    },
    metricsRegistry: metrics.registry,
    metrics,
    async drain() {
      ready = false;
      if (scheduler) await scheduler.drain();
    },
    async close() {
      closed = true;
      ready = false;
      scheduler?.close();
      await pool?.close();
      log.info('inference service closed');
    },
  };
}
