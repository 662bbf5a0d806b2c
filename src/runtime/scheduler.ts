/**
 * The batched request scheduler. It counts images, not requests: the images of every job for one
 * model share batches, in round-robin order across jobs (interactive jobs first), so a long job
 * cannot starve a short one submitted after it. Each batch is padded to a bucket size (powers of two
 * up to maxBatch), so ONNX Runtime runs only a few input shapes.
 *
 * Deadlines and cancellation act on a timer and an abort listener, not between batches: queued
 * images leave the queue at once and results of images already in a batch are dropped. A running
 * batch cannot be stopped (the ONNX Runtime Node binding has no run termination).
 *
 * A worker takes the next batch the moment it reports the previous one: the scheduler forms and
 * posts it before delivering the finished results, so the worker idles for one message round trip.
 * Batches are not formed further ahead, because images locked into a waiting batch could no longer
 * be cancelled, expire, or give way to interactive work that arrives meanwhile.
 */

import type { Logger } from '../log.js';
import { batchBuckets, bucketFor, type SchedulerConfig } from './config.js';
import type { ImageResult, ImageSpec, JobOptions, Priority } from './contract.js';
import { packBatch, validateImageSpec } from './batch-input.js';
import { CancelledError, DeadlineExceededError, InvalidInputError, QueueFullError, UnavailableError } from './errors.js';
import { Job } from './job.js';
import type { RuntimeMetrics } from './metrics.js';
import type { LoadedModel, ModelRegistry } from './model-registry.js';
import type { WorkerPool } from './worker-pool.js';
import { taskQueueCost, type BatchOutput, type WorkerTask, type WorkerTaskOutput } from './worker-protocol.js';

const priorities: Priority[] = ['interactive', 'bulk'];

/** Weight of the newest batch in the throughput estimate behind `retryAfterSeconds`. */
const throughputSmoothing = 0.2;

/** Jobs of one model with queued images, round-robin per priority. */
interface ModelQueue {
  model: LoadedModel;
  rings: Record<Priority, Job[]>;
  cursors: Record<Priority, number>;
  queuedImages: number;
}

interface Row {
  job: Job;
  index: number;
  spec: ImageSpec;
}

/** A queued non-image task (a projection step, a mapping-only batch); always bulk priority. */
interface QueuedTask {
  task: WorkerTask;
  requestId: string;
  /** `performance.now()` at submission, in ms. */
  submittedAt: number;
  rows: number;
  resolve: (output: WorkerTaskOutput) => void;
  reject: (err: Error) => void;
  cleanup: () => void;
}

export interface SchedulerStats {
  /** Real images the workers computed (padding excluded). */
  imagesComputed: number;
  /** Padding rows computed to fill buckets. */
  paddingImages: number;
  batchesRun: number;
  failedBatches: number;
  cancellations: number;
  expirations: number;
  queuedImages: number;
  inFlightImages: number;
  activeJobs: number;
}

export class Scheduler {
  private readonly queues = new Map<string, ModelQueue>();
  private readonly activeJobs = new Set<Job>();
  /** Queued tasks in submission order; they run at bulk priority. */
  private readonly tasks: QueuedTask[] = [];
  /** Tasks queued or running, so that drain() waits for them too. */
  private activeTasks = 0;
  private nextJobId = 1;
  private queuedImages = 0;
  private inFlightImages = 0;
  private delayTimer: NodeJS.Timeout | undefined;
  private draining = false;
  private closed = false;
  /** When drain() was first called (ms since the epoch); Infinity until then. */
  private drainStartedAtMs = Number.POSITIVE_INFINITY;
  private drainWaiters: (() => void)[] = [];
  /** Estimated images per second over all workers; 0 until the first batch finishes. */
  private throughput = 0;
  private readonly counters = { imagesComputed: 0, paddingImages: 0, batchesRun: 0, failedBatches: 0, cancellations: 0, expirations: 0 };

  constructor(
    private readonly pool: WorkerPool,
    private readonly registry: ModelRegistry,
    private readonly config: SchedulerConfig,
    private readonly metrics: RuntimeMetrics,
    private readonly logger: Logger,
  ) {
    pool.onIdle(() => this.pump());
  }

  /**
   * Queues the images of one request and returns the job to read results from. Each result comes as
   * soon as its batch finishes and carries its index, because index order is not guaranteed.
   * Throws synchronously: UnavailableError while draining, ModelNotFoundError, InvalidInputError,
   * CancelledError for an aborted signal, DeadlineExceededError for a past deadline, QueueFullError.
   */
  submit(modelName: string, images: readonly ImageSpec[], opts: JobOptions): Job {
    if (!this.admits(opts)) throw new UnavailableError('the service is draining and accepts no new work; retry on another instance');
    const model = this.registry.require(modelName);
    if (images.length === 0) throw new InvalidInputError('the request has no images; send at least one');
    images.forEach((spec, i) => validateImageSpec(spec, i, model.manifest));
    if (opts.signal?.aborted) throw new CancelledError(`request ${opts.requestId} was cancelled before it was queued`);

    const now = Date.now();
    const deadlineMs = Number.isFinite(opts.deadlineMs) ? Math.min(opts.deadlineMs, now + this.config.maxTimeoutMs) : now + this.config.defaultTimeoutMs;
    if (deadlineMs <= now) throw new DeadlineExceededError(`request ${opts.requestId}: deadline passed before the images were queued`);

    const max = this.config.maxQueuedImages;
    if (images.length > max) {
      throw new InvalidInputError(`the request has ${images.length} images, more than maxQueuedImages (${max}) allows; split it into smaller requests`);
    }
    if (this.queuedImages + images.length > max) {
      const retryAfterSeconds = this.estimateRetryAfterSeconds(this.queuedImages + images.length - max);
      throw new QueueFullError(`the queue is full: it contains ${this.queuedImages} of at most ${max} images and cannot take ${images.length} more; retry in ${retryAfterSeconds} s`, retryAfterSeconds);
    }

    const job = new Job(this.nextJobId++, model, [...images], opts.requestId, opts.priority, deadlineMs, performance.now(), (j) =>
      this.endJob(j, new CancelledError(`request ${j.requestId}: the reader stopped before all images were delivered`), 'cancelled'),
    );
    this.activeJobs.add(job);
    this.enqueue(job);

    const timer = setTimeout(() => this.endJob(job, new DeadlineExceededError(`request ${job.requestId}: deadline exceeded after ${deadlineMs - now} ms with ${job.size - job.computed} of ${job.size} images unfinished`), 'expired'), deadlineMs - now);
    job.addCleanup(() => clearTimeout(timer));
    if (opts.signal) {
      const signal = opts.signal;
      const onAbort = () => this.endJob(job, new CancelledError(`request ${job.requestId} was cancelled`), 'cancelled');
      signal.addEventListener('abort', onAbort, { once: true });
      job.addCleanup(() => signal.removeEventListener('abort', onAbort));
    }
    job.addCleanup(() => this.jobEnded(job));

    this.pump();
    return job;
  }

  /**
   * Queues a non-image task (a projection gradient step or a mapping-only batch) at bulk priority.
   * Its rows count against maxQueuedImages. Rejects like `submit` throws, and with CancelledError or
   * DeadlineExceededError when the signal fires or the deadline passes while it is queued. A task
   * already running finishes, and its result is still delivered.
   */
  submitTask(modelName: string, task: WorkerTask, opts: JobOptions): Promise<WorkerTaskOutput> {
    if (!this.admits(opts)) return Promise.reject(new UnavailableError('the service is draining and accepts no new work; retry on another instance'));
    try {
      this.registry.require(modelName);
    } catch (err) {
      return Promise.reject(err);
    }
    if (opts.signal?.aborted) return Promise.reject(new CancelledError(`request ${opts.requestId} was cancelled before its task was queued`));
    const rows = taskQueueCost(task);
    const queuedTaskRows = this.tasks.reduce((sum, queued) => sum + queued.rows, 0);
    const max = this.config.maxQueuedImages;
    if (this.queuedImages + queuedTaskRows + rows > max) {
      const retryAfterSeconds = this.estimateRetryAfterSeconds(this.queuedImages + queuedTaskRows + rows - max);
      return Promise.reject(new QueueFullError(`the queue is full: it contains ${this.queuedImages + queuedTaskRows} of at most ${max} images and cannot take a ${rows}-row ${task.kind} task; retry in ${retryAfterSeconds} s`, retryAfterSeconds));
    }
    const now = Date.now();
    const deadlineMs = Number.isFinite(opts.deadlineMs) ? Math.min(opts.deadlineMs, now + this.config.maxTimeoutMs) : now + this.config.defaultTimeoutMs;
    if (deadlineMs <= now) return Promise.reject(new DeadlineExceededError(`request ${opts.requestId}: deadline passed before the ${task.kind} task was queued`));

    this.activeTasks++;
    return new Promise<WorkerTaskOutput>((resolve, reject) => {
      const remove = (error: Error) => {
        const at = this.tasks.indexOf(queued);
        if (at < 0) return;
        this.tasks.splice(at, 1);
        queued.cleanup();
        this.taskEnded();
        reject(error);
      };
      const timer = setTimeout(() => remove(new DeadlineExceededError(`request ${opts.requestId}: deadline exceeded while its ${task.kind} task was queued`)), deadlineMs - now);
      const onAbort = () => remove(new CancelledError(`request ${opts.requestId} was cancelled`));
      opts.signal?.addEventListener('abort', onAbort, { once: true });
      const queued: QueuedTask = {
        task,
        requestId: opts.requestId,
        submittedAt: performance.now(),
        rows,
        resolve,
        reject,
        cleanup: () => {
          clearTimeout(timer);
          opts.signal?.removeEventListener('abort', onAbort);
        },
      };
      this.tasks.push(queued);
      this.pump();
    });
  }

  private dispatchTask(queued: QueuedTask): void {
    queued.cleanup();
    const model = queued.task.batch.model;
    const startedAt = performance.now();
    this.pool.runTask(queued.task).then(
      (output) => {
        this.counters.batchesRun++;
        this.logger.debug({ model, kind: queued.task.kind, rows: queued.rows, requestId: queued.requestId, queueMs: Math.round(startedAt - queued.submittedAt), runMs: Math.round(performance.now() - startedAt) }, 'task finished');
        this.taskEnded();
        queued.resolve(output);
      },
      (err: Error) => {
        this.counters.failedBatches++;
        this.metrics.inferenceFailures.inc({ model });
        this.logger.error({ model, kind: queued.task.kind, requestId: queued.requestId, err }, 'task failed');
        this.taskEnded();
        queued.reject(err);
      },
    );
  }

  private taskEnded(): void {
    this.activeTasks--;
    this.resolveDrainWaiters();
  }

  private resolveDrainWaiters(): void {
    if (this.activeJobs.size > 0 || this.activeTasks > 0) return;
    const waiters = this.drainWaiters;
    this.drainWaiters = [];
    for (const resolve of waiters) resolve();
  }

  private queueOf(model: LoadedModel): ModelQueue {
    let queue = this.queues.get(model.name);
    if (!queue) {
      queue = { model, rings: { interactive: [], bulk: [] }, cursors: { interactive: 0, bulk: 0 }, queuedImages: 0 };
      this.queues.set(model.name, queue);
    }
    return queue;
  }

  private enqueue(job: Job): void {
    const queue = this.queueOf(job.model);
    queue.rings[job.priority].push(job);
    this.addQueued(queue, job.queuedCount);
  }

  private addQueued(queue: ModelQueue, delta: number): void {
    queue.queuedImages += delta;
    this.queuedImages += delta;
    this.metrics.queuedImages.set({ model: queue.model.name }, queue.queuedImages);
  }

  /** Removes a job's queued images from its ring (the job must not be taken from afterwards). */
  private dequeue(job: Job, queuedCount: number): void {
    const queue = this.queues.get(job.model.name);
    if (!queue) return;
    const ring = queue.rings[job.priority];
    const at = ring.indexOf(job);
    if (at < 0) return;
    ring.splice(at, 1);
    if (at < queue.cursors[job.priority]) queue.cursors[job.priority]--;
    this.addQueued(queue, -queuedCount);
  }

  /** Fails a job for cancellation or expiry; its queued images leave the queue now. */
  private endJob(job: Job, error: Error, reason: 'cancelled' | 'expired'): void {
    const queuedCount = job.queuedCount;
    if (!job.fail(error)) return;
    this.dequeue(job, queuedCount);
    const model = job.model.name;
    if (reason === 'cancelled') {
      this.counters.cancellations++;
      this.metrics.cancellations.inc({ model });
    } else {
      this.counters.expirations++;
      this.metrics.expirations.inc({ model });
    }
    this.logger.info({ requestId: job.requestId, model, reason, queuedDropped: queuedCount, inFlight: job.inFlight, computed: job.computed }, `job ${reason}`);
  }

  private jobEnded(job: Job): void {
    this.activeJobs.delete(job);
    this.resolveDrainWaiters();
  }

  /** The model to serve next: interactive work first, then the one whose oldest job waited longest. */
  private pickQueue(): { queue: ModelQueue; oldestAt: number; priority: Priority } | undefined {
    for (const priority of priorities) {
      let best: { queue: ModelQueue; oldestAt: number; priority: Priority } | undefined;
      for (const queue of this.queues.values()) {
        const ring = queue.rings[priority];
        if (ring.length === 0) continue;
        const oldestAt = Math.min(...ring.map((job) => job.submittedAt));
        if (!best || oldestAt < best.oldestAt) best = { queue, oldestAt, priority };
      }
      if (best) return best;
    }
    return undefined;
  }

  /** Takes up to maxBatch images: one per job per turn, interactive jobs before bulk ones. */
  private formBatch(queue: ModelQueue): Row[] {
    const rows: Row[] = [];
    for (const priority of priorities) {
      const ring = queue.rings[priority];
      while (rows.length < this.config.maxBatch && ring.length > 0) {
        if (queue.cursors[priority] >= ring.length) queue.cursors[priority] = 0;
        const job = ring[queue.cursors[priority]];
        const { index, spec } = job.take();
        rows.push({ job, index, spec });
        if (job.queuedCount === 0) ring.splice(queue.cursors[priority], 1);
        else queue.cursors[priority]++;
      }
    }
    this.addQueued(queue, -rows.length);
    return rows;
  }

  /** Starts batches while workers are idle; waits up to maxQueueDelayMs for a fuller batch. */
  private pump(): void {
    if (this.delayTimer) {
      clearTimeout(this.delayTimer);
      this.delayTimer = undefined;
    }
    while (this.pool.idleCount() > 0) {
      const pick = this.pickQueue();
      // Tasks are bulk work: they wait for interactive images and alternate with bulk images by age.
      const task = this.tasks[0];
      if (task !== undefined && (pick === undefined || (pick.priority === 'bulk' && task.submittedAt <= pick.oldestAt))) {
        this.tasks.shift();
        this.dispatchTask(task);
        continue;
      }
      if (!pick) return;
      const waitedMs = performance.now() - pick.oldestAt;
      if (pick.queue.queuedImages < this.config.maxBatch && waitedMs < this.config.maxQueueDelayMs) {
        this.delayTimer = setTimeout(() => this.pump(), this.config.maxQueueDelayMs - waitedMs);
        return;
      }
      this.dispatch(pick.queue.model, this.formBatch(pick.queue));
    }
  }

  private dispatch(model: LoadedModel, rows: Row[]): void {
    const bucket = bucketFor(rows.length, this.config.maxBatch);
    const batch = packBatch(model.manifest, rows.map((r) => r.spec), bucket);
    const startedAt = performance.now();
    for (const row of rows) {
      row.job.inFlight++;
      this.metrics.queueWaitSeconds.observe({ model: model.name, priority: row.job.priority }, (startedAt - row.job.submittedAt) / 1000);
    }
    this.inFlightImages += rows.length;
    this.pool.run(batch).then(
      (output) => this.deliver(model, rows, bucket, startedAt, output),
      (err: Error) => this.failBatch(model, rows, err),
    );
  }

  private release(rows: Row[]): void {
    for (const row of rows) row.job.inFlight--;
    this.inFlightImages -= rows.length;
  }

  private deliver(model: LoadedModel, rows: Row[], bucket: number, startedAt: number, output: BatchOutput): void {
    this.release(rows);
    const { numWs, wDim, imgChannels, resolution } = model.manifest.arch;
    const imageSize = imgChannels * resolution * resolution;
    const wsSize = numWs * wDim;
    const n = rows.length;
    const inferenceMs = output.timings.totalMs;

    this.counters.batchesRun++;
    this.counters.imagesComputed += n;
    this.counters.paddingImages += bucket - n;
    this.metrics.batchSize.observe({ model: model.name }, n);
    this.metrics.inferenceSeconds.observe({ model: model.name, batch_size: String(bucket) }, inferenceMs / 1000);
    this.metrics.imagesComputed.inc({ model: model.name }, n);
    const imagesPerSecond = (n / Math.max(inferenceMs, 1)) * 1000 * this.pool.size;
    this.throughput = this.throughput === 0 ? imagesPerSecond : (1 - throughputSmoothing) * this.throughput + throughputSmoothing * imagesPerSecond;

    rows.forEach((row, i) => {
      row.job.computed++;
      const result: ImageResult = {
        index: row.index,
        image: output.img.slice(i * imageSize, (i + 1) * imageSize), // [C, R, R]
        ws: output.ws.slice(i * wsSize, (i + 1) * wsSize), // [numWs, wDim]
        timings: { queueMs: startedAt - row.job.submittedAt, inferenceMs },
        batchSize: n,
      };
      row.job.push(result);
    });
    this.logger.debug(
      {
        model: model.name,
        batchSize: n,
        bucket,
        requestIds: [...new Set(rows.map((r) => r.job.requestId))],
        maxQueueMs: Math.round(Math.max(...rows.map((r) => startedAt - r.job.submittedAt))),
        runMs: Math.round(inferenceMs),
        mappingMs: Math.round(output.timings.mappingMs),
        synthesisMs: Math.round(output.timings.synthesisMs),
      },
      'batch finished',
    );
  }

  private failBatch(model: LoadedModel, rows: Row[], err: Error): void {
    this.release(rows);
    this.counters.failedBatches++;
    this.metrics.inferenceFailures.inc({ model: model.name });
    const requestIds = [...new Set(rows.map((r) => r.job.requestId))];
    this.logger.error({ model: model.name, batchSize: rows.length, requestIds, err }, 'batch failed');
    for (const job of new Set(rows.map((r) => r.job))) {
      const queuedCount = job.queuedCount;
      if (job.fail(err)) this.dequeue(job, queuedCount);
    }
  }

  private estimateRetryAfterSeconds(excessImages: number): number {
    if (this.throughput <= 0) return 1;
    return Math.max(1, Math.ceil(excessImages / this.throughput));
  }

  /** Runs every bucket size once per model on every worker, so no request pays for first-run setup. */
  async warmUp(): Promise<void> {
    for (const model of this.registry.list()) {
      const { zDim, cDim } = model.manifest.arch;
      const spec: ImageSpec = { latent: { kind: 'z', z: new Float32Array(zDim), c: cDim > 0 ? new Float32Array(cDim) : undefined, psi: 1 }, noiseMode: 'const' };
      for (const bucket of batchBuckets(this.config.maxBatch)) {
        const started = performance.now();
        await this.pool.runOnEach(() => packBatch(model.manifest, Array(bucket).fill(spec), bucket));
        this.logger.info({ model: model.name, bucket, ms: Math.round(performance.now() - started) }, 'warm-up batch finished');
      }
    }
  }

  stats(): SchedulerStats {
    return { ...this.counters, queuedImages: this.queuedImages, inFlightImages: this.inFlightImages, activeJobs: this.activeJobs.size };
  }

  get isDraining(): boolean {
    return this.draining;
  }

  /**
   * True unless the scheduler is closed, or draining and the job's request arrived after the drain
   * began (see `JobOptions.admittedAtMs`).
   */
  admits(opts: Pick<JobOptions, 'admittedAtMs'>): boolean {
    if (this.closed) return false;
    if (!this.draining) return true;
    return opts.admittedAtMs !== undefined && opts.admittedAtMs < this.drainStartedAtMs;
  }

  /** Rejects new work with UnavailableError and resolves once every accepted job has ended. */
  drain(): Promise<void> {
    this.draining = true;
    this.drainStartedAtMs = Math.min(this.drainStartedAtMs, Date.now());
    if (this.activeJobs.size === 0 && this.activeTasks === 0) return Promise.resolve();
    return new Promise((resolve) => this.drainWaiters.push(resolve));
  }

  /** Fails every active job with UnavailableError and takes no more work. */
  close(): void {
    this.draining = true;
    this.closed = true;
    if (this.delayTimer) clearTimeout(this.delayTimer);
    for (const job of [...this.activeJobs]) {
      const queuedCount = job.queuedCount;
      if (job.fail(new UnavailableError(`request ${job.requestId}: the service is shutting down`))) this.dequeue(job, queuedCount);
    }
    for (const queued of this.tasks.splice(0)) {
      queued.cleanup();
      this.taskEnded();
      queued.reject(new UnavailableError(`request ${queued.requestId}: the service is shutting down`));
    }
  }
}
