/**
 * Settings of the inference runtime, with their defaults. The HTTP layer maps CLI flags and
 * environment variables onto `RuntimeConfig` and calls `resolveRuntimeConfig` to fill the rest.
 */

import { availableParallelism } from 'node:os';

export type ExecutionProvider = 'cpu' | 'cuda' | 'auto';

/** Synthesis graph the workers open: `synthesis.onnx` (fp32) or `synthesis_fp16.onnx` (fp16). */
export type SynthesisPrecision = 'fp32' | 'fp16';

export interface SchedulerConfig {
  /** Largest synthesis batch, in images. Batches are padded up to a power of two (or to this). */
  maxBatch: number;
  /** How long an idle worker waits for a fuller batch after the oldest queued image arrived, in ms. */
  maxQueueDelayMs: number;
  /** Most images waiting in the queue over all models; `submit` beyond it throws QueueFullError. */
  maxQueuedImages: number;
  /** Deadline of a job that requests none, in ms after submission. */
  defaultTimeoutMs: number;
  /** Maximum deadline a job may request, in ms after submission. Longer ones are cut to this. */
  maxTimeoutMs: number;
}

export interface SessionConfig {
  /** `cuda` fails at start when CUDA cannot be loaded; `auto` tries CUDA, then falls back to CPU. */
  executionProvider: ExecutionProvider;
  /** CUDA device index. */
  deviceId: number;
  /**
   * `fp16` opens each model's synthesis_fp16.onnx and fails at start for a model without one.
   * Absent means fp32; `resolveRuntimeConfig` always sets it.
   */
  precision?: SynthesisPrecision;
  /**
   * `auto`: at start, time synthesis at batch 2 against two single-image runs, and run every batch
   * as single-image runs when those were faster per image (ONNX Runtime's CPU kernels often are:
   * its transposed convolutions cost more per image in a batch). `off`: always one run per batch.
   * Only the CPU provider is measured; CUDA always runs whole batches under `auto`. `on`: always
   * single-image runs.
   */
  splitBatches?: 'auto' | 'on' | 'off';
  /** ONNX Runtime intra-op threads per worker; 0 means the available cores divided by `workers`. */
  intraOpNumThreads: number;
  /** Inference worker threads. Each one loads every model and runs one batch at a time. */
  workers: number;
}

export interface RuntimeConfig {
  /** Folder holding one `<name>/model.json` folder per model. */
  modelsDir: string;
  /** Models to load; empty means every folder under `modelsDir` that contains a model.json. */
  models: string[];
  session: SessionConfig;
  scheduler: SchedulerConfig;
  /** Run every batch size once per model before reporting ready. */
  warmUp: boolean;
}

export const defaultSchedulerConfig: SchedulerConfig = {
  maxBatch: 8,
  maxQueueDelayMs: 5,
  maxQueuedImages: 256,
  defaultTimeoutMs: 60_000,
  maxTimeoutMs: 600_000,
};

export const defaultSessionConfig: SessionConfig = {
  executionProvider: 'cpu',
  deviceId: 0,
  precision: 'fp32',
  splitBatches: 'auto',
  intraOpNumThreads: 0,
  workers: 1,
};

/** Partial settings as a caller gives them; every missing field takes its default. */
export interface RuntimeConfigInput {
  modelsDir: string;
  models?: string[];
  session?: Partial<SessionConfig>;
  scheduler?: Partial<SchedulerConfig>;
  warmUp?: boolean;
}

function assertInteger(value: number, name: string, min: number): void {
  if (!Number.isInteger(value) || value < min) {
    throw new RangeError(`invalid ${name} ${value}: expected an integer >= ${min}`);
  }
}

/** Fills in defaults and checks every number; throws a RangeError naming the bad setting. */
export function resolveRuntimeConfig(input: RuntimeConfigInput): RuntimeConfig {
  const scheduler = { ...defaultSchedulerConfig, ...input.scheduler };
  const session = { ...defaultSessionConfig, ...input.session };

  assertInteger(scheduler.maxBatch, 'maxBatch', 1);
  assertInteger(scheduler.maxQueueDelayMs, 'maxQueueDelayMs', 0);
  assertInteger(scheduler.maxQueuedImages, 'maxQueuedImages', 1);
  assertInteger(scheduler.defaultTimeoutMs, 'defaultTimeoutMs', 1);
  assertInteger(scheduler.maxTimeoutMs, 'maxTimeoutMs', 1);
  if (scheduler.defaultTimeoutMs > scheduler.maxTimeoutMs) {
    throw new RangeError(
      `invalid defaultTimeoutMs ${scheduler.defaultTimeoutMs}: it must not exceed maxTimeoutMs ${scheduler.maxTimeoutMs}`,
    );
  }
  assertInteger(session.deviceId, 'deviceId', 0);
  assertInteger(session.intraOpNumThreads, 'intraOpNumThreads', 0);
  assertInteger(session.workers, 'workers', 1);
  if (!['cpu', 'cuda', 'auto'].includes(session.executionProvider)) {
    throw new RangeError(`invalid executionProvider ${session.executionProvider}: expected cpu, cuda or auto`);
  }
  if (!['fp32', 'fp16'].includes(session.precision ?? 'fp32')) {
    throw new RangeError(`invalid precision ${session.precision}: expected fp32 or fp16`);
  }
  if (session.intraOpNumThreads === 0) {
    session.intraOpNumThreads = Math.max(1, Math.floor(availableParallelism() / session.workers));
  }

  return {
    modelsDir: input.modelsDir,
    models: input.models ?? [],
    session,
    scheduler,
    warmUp: input.warmUp ?? true,
  };
}

/** Batch sizes ORT will see: powers of two below `maxBatch`, then `maxBatch` itself. */
export function batchBuckets(maxBatch: number): number[] {
  const buckets: number[] = [];
  for (let size = 1; size < maxBatch; size *= 2) buckets.push(size);
  buckets.push(maxBatch);
  return buckets;
}

/** Returns the smallest bucket that fits `count` images (`count` <= maxBatch). */
export function bucketFor(count: number, maxBatch: number): number {
  for (const size of batchBuckets(maxBatch)) if (size >= count) return size;
  throw new RangeError(`batch of ${count} images exceeds maxBatch ${maxBatch}`);
}
