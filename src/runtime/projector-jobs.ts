/**
 * Bookkeeping for projections: a bound on how many run at once (streamed and async together), and
 * the async jobs with their progress, cancellation and results. Finished jobs are dropped
 * `ttlMs` after they end.
 */

import { randomUUID } from 'node:crypto';

import { QueueFullError } from './errors.js';

export type ProjectionJobStatus = 'running' | 'succeeded' | 'failed' | 'cancelled';

export interface ProjectionJob<R> {
  id: string;
  model: string;
  status: ProjectionJobStatus;
  /** ISO 8601 times. */
  createdAt: string;
  finishedAt?: string;
  step: number;
  steps: number;
  /** Image loss of the latest step. */
  loss?: number;
  result?: R;
  /** HTTP status and message of a failure. */
  error?: { status: number; detail: string };
  readonly controller: AbortController;
  /** Settles when the job has ended. */
  done: Promise<void>;
}

export interface ProjectionLimits {
  /** Most projections running at once. */
  maxJobs: number;
  /** How long a finished job is kept, in ms. */
  ttlMs: number;
}

/**
 * Maximum number of finished jobs kept for GET. Beyond it the oldest finished job is dropped early,
 * so a stream of short jobs cannot keep unbounded results in memory for a whole TTL.
 */
export const maxFinishedJobs = 64;

export class ProjectionJobStore<R> {
  private readonly jobs = new Map<string, ProjectionJob<R>>();
  private running = 0;

  constructor(private readonly limits: () => ProjectionLimits) {}

  /** Reserves a projection slot; throws QueueFullError when maxJobs are running. Call the returned function once when done. */
  acquire(): () => void {
    const { maxJobs } = this.limits();
    if (this.running >= maxJobs) {
      throw new QueueFullError(`${this.running} projections are running, the server's maximum (max-project-jobs ${maxJobs}); retry when one has finished`, 5);
    }
    this.running++;
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.running--;
    };
  }

  /**
   * Starts an async job: `run` receives the job (for progress) and its abort signal. `describeError`
   * turns a failure into an HTTP status and message. Throws QueueFullError when no slot is free.
   */
  start(model: string, steps: number, run: (job: ProjectionJob<R>) => Promise<R>, describeError: (err: unknown) => { status: number; detail: string }): ProjectionJob<R> {
    const release = this.acquire();
    const job: ProjectionJob<R> = {
      id: randomUUID(),
      model,
      status: 'running',
      createdAt: new Date().toISOString(),
      step: 0,
      steps,
      controller: new AbortController(),
      done: Promise.resolve(),
    };
    this.jobs.set(job.id, job);
    job.done = (async () => {
      try {
        job.result = await run(job);
        job.status = 'succeeded';
      } catch (err) {
        job.status = job.controller.signal.aborted ? 'cancelled' : 'failed';
        if (job.status === 'failed') job.error = describeError(err);
      } finally {
        job.finishedAt = new Date().toISOString();
        release();
        setTimeout(() => this.jobs.delete(job.id), this.limits().ttlMs).unref();
        this.dropOldestFinished();
      }
    })();
    return job;
  }

  get(id: string): ProjectionJob<R> | undefined {
    return this.jobs.get(id.toLowerCase());
  }

  /** Drops the oldest finished jobs while more than `maxFinishedJobs` are kept (Map order is insertion order). */
  private dropOldestFinished(): void {
    let finished = 0;
    for (const job of this.jobs.values()) if (job.status !== 'running') finished++;
    for (const [id, job] of this.jobs) {
      if (finished <= maxFinishedJobs) break;
      if (job.status === 'running') continue;
      this.jobs.delete(id);
      finished--;
    }
  }

  /** Cancels a running job and waits until it has stopped, or removes a finished one. Returns undefined for an unknown id. */
  async cancel(id: string): Promise<ProjectionJob<R> | undefined> {
    const job = this.jobs.get(id.toLowerCase());
    if (!job) return undefined;
    if (job.status === 'running') {
      job.controller.abort();
      await job.done;
    } else {
      this.jobs.delete(job.id);
    }
    return job;
  }

  /** Aborts every running job (server shutdown). */
  abortAll(): void {
    for (const job of this.jobs.values()) job.controller.abort();
  }
}
