/**
 * One submitted request inside the scheduler: its images, how many are queued, in flight, computed
 * and delivered, and the async iterator its caller reads results from. The scheduler drives state
 * changes; a Job never touches the queue itself.
 */

import type { ImageResult, ImageSpec, Priority } from './contract.js';
import type { LoadedModel } from './model-registry.js';

export type JobState = 'active' | 'finished' | 'failed';

interface Waiter {
  resolve: (result: IteratorResult<ImageResult>) => void;
  reject: (err: Error) => void;
}

export class Job implements AsyncIterable<ImageResult> {
  /** Index of the next image to hand to a batch; images before it left the queue. */
  private nextIndex = 0;
  private readonly buffer: ImageResult[] = [];
  private readonly waiters: Waiter[] = [];
  private delivered = 0;
  private cleanups: (() => void)[] = [];
  private iteratorClosed = false;

  state: JobState = 'active';
  error: Error | undefined;
  /** Images of this job in a running batch. */
  inFlight = 0;
  /** Images of this job the workers computed, including any computed after the job failed. */
  computed = 0;

  constructor(
    readonly id: number,
    readonly model: LoadedModel,
    readonly specs: readonly ImageSpec[],
    readonly requestId: string,
    readonly priority: Priority,
    readonly deadlineMs: number,
    /** `performance.now()` at submission, in ms. */
    readonly submittedAt: number,
    /** Called when the iterator is closed early (a `break` out of `for await`). */
    private readonly onIteratorClosed: (job: Job) => void,
  ) {}

  get size(): number {
    return this.specs.length;
  }

  /** Images still waiting in the queue. */
  get queuedCount(): number {
    return this.state === 'active' ? this.size - this.nextIndex : 0;
  }

  /** Takes the next queued image for a batch. */
  take(): { index: number; spec: ImageSpec } {
    if (this.queuedCount === 0) throw new Error(`job ${this.id} has no queued image left`);
    const index = this.nextIndex++;
    return { index, spec: this.specs[index] };
  }

  /** Registers a function that runs once when the job finishes or fails (timers, listeners). */
  addCleanup(cleanup: () => void): void {
    this.cleanups.push(cleanup);
  }

  private runCleanups(): void {
    const cleanups = this.cleanups;
    this.cleanups = [];
    for (const cleanup of cleanups) cleanup();
  }

  /** Delivers one result; finishes the job when it was the last one. */
  push(result: ImageResult): void {
    if (this.state !== 'active') return;
    const waiter = this.waiters.shift();
    if (waiter) {
      this.delivered++;
      waiter.resolve({ value: result, done: false });
    } else {
      this.buffer.push(result);
    }
    if (this.delivered + this.buffer.length === this.size) {
      this.state = 'finished';
      this.runCleanups();
      this.releaseWaiters();
    }
  }

  /** Fails the job: buffered results are dropped and every reader gets `error`. Returns false if it had already ended. */
  fail(error: Error): boolean {
    if (this.state !== 'active') return false;
    this.state = 'failed';
    this.error = error;
    this.buffer.length = 0;
    this.runCleanups();
    this.releaseWaiters();
    return true;
  }

  private releaseWaiters(): void {
    while (this.waiters.length > 0) {
      const waiter = this.waiters.shift()!;
      if (this.error) waiter.reject(this.error);
      else waiter.resolve({ value: undefined, done: true });
    }
  }

  private next(): Promise<IteratorResult<ImageResult>> {
    if (this.state === 'failed') {
      if (this.iteratorClosed) return Promise.resolve({ value: undefined, done: true });
      return Promise.reject(this.error);
    }
    const result = this.buffer.shift();
    if (result) {
      this.delivered++;
      return Promise.resolve({ value: result, done: false });
    }
    if (this.state === 'finished' || this.iteratorClosed) return Promise.resolve({ value: undefined, done: true });
    return new Promise((resolve, reject) => this.waiters.push({ resolve, reject }));
  }

  [Symbol.asyncIterator](): AsyncIterator<ImageResult> {
    return {
      next: () => this.next(),
      return: async () => {
        this.iteratorClosed = true;
        if (this.state === 'active') this.onIteratorClosed(this);
        return { value: undefined, done: true };
      },
    };
  }
}
