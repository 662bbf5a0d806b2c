/**
 * Starts and supervises the inference worker threads. Each worker loads every model's sessions and
 * runs one batch at a time. The scheduler hands each batch to an idle worker. A worker that
 * exits unexpectedly fails its in-flight batch with an InferenceError and is replaced.
 */

import { join } from 'node:path';
import { Worker, type WorkerOptions } from 'node:worker_threads';

import type { Logger } from '../log.js';
import type { SessionConfig, SynthesisPrecision } from './config.js';
import { InferenceError } from './errors.js';
import type { LoadedModel } from './model-registry.js';
import { taskBuffers, type BatchInput, type BatchOutput, type FromWorker, type WorkerInit, type WorkerModelSpec, type WorkerTask, type WorkerTaskOutput } from './worker-protocol.js';

/** The worker's file: `.ts` under tsx (tests, dev), `.js` when compiled to dist/. */
const runningFromSource = import.meta.url.endsWith('.ts');
const workerUrl = new URL(`./inference-worker${runningFromSource ? '.ts' : '.js'}`, import.meta.url);

/**
 * Starts the worker script. Under tsx the `--import tsx` hooks of the main thread do not reach worker
 * threads (Node 20.20), so a small bootstrap registers tsx in the worker before importing the `.ts`.
 */
function startWorker(options: WorkerOptions): Worker {
  if (!runningFromSource) return new Worker(workerUrl, options);
  const tsxApi = import.meta.resolve('tsx/esm/api');
  const bootstrap = `import(${JSON.stringify(tsxApi)}).then(({ register }) => { register(); return import(${JSON.stringify(workerUrl.href)}); });`;
  return new Worker(bootstrap, { ...options, eval: true });
}

/** Wait before restarting a worker that failed to start again, in ms. */
const restartBackoffMs = 1_000;
/** How long `close()` waits for a worker to finish its running batch and exit, in ms. */
const closeTimeoutMs = 60_000;

export interface ProviderInfo {
  name: 'cpu' | 'cuda';
  reason: string;
}

interface PendingBatch {
  id: number;
  model: string;
  /** Receives a BatchOutput for `run` and a WorkerTaskOutput for `runTask`. */
  resolve: (output: never) => void;
  reject: (err: Error) => void;
}

/** The paths and shapes a worker needs for `model`; `precision` picks the synthesis graph. */
export function toWorkerModelSpec(model: LoadedModel, precision: SynthesisPrecision = 'fp32'): WorkerModelSpec {
  const { arch, noiseLayers } = model.manifest;
  const synthesisPath = precision === 'fp16' ? model.paths.synthesisFp16 : model.paths.synthesis;
  if (synthesisPath === undefined) {
    throw new Error(
      `model ${model.name} has no synthesis_fp16.onnx, which --precision fp16 needs; re-convert it with ` +
        '`stylegan-serve convert <checkpoint> --name ' + model.name + ' --fp16 --force`, or serve with --precision fp32',
    );
  }
  return {
    name: model.name,
    mappingPath: model.paths.mapping,
    synthesisPath,
    noiseConstPath: model.paths.noiseConst,
    // NOTE: the model registry verifies the sha256 of mapping, synthesis and noise files only, not of synthesis_grad.onnx.
    ...(model.manifest.files.synthesisGrad ? { synthesisGradPath: join(model.dir, model.manifest.files.synthesisGrad) } : {}),
    ...(model.manifest.files.synthesisGradD ? { synthesisGradDPath: join(model.dir, model.manifest.files.synthesisGradD) } : {}),
    zDim: arch.zDim,
    cDim: arch.cDim,
    wDim: arch.wDim,
    numWs: arch.numWs,
    resolution: arch.resolution,
    imgChannels: arch.imgChannels,
    noiseLayers: noiseLayers.map((l) => ({ name: l.name, resolution: l.resolution })),
  };
}

/** One worker thread and its in-flight batch (at most one). */
class WorkerSlot {
  worker: Worker | undefined;
  ready = false;
  pending: PendingBatch | undefined;
  provider: ProviderInfo | undefined;

  constructor(readonly index: number) {}

  get idle(): boolean {
    return this.ready && this.pending === undefined;
  }
}

export class WorkerPool {
  private readonly slots: WorkerSlot[];
  private nextBatchId = 1;
  private closed = false;
  private idleListener: () => void = () => {};
  /** Restarts after unexpected exits, for stats and tests. */
  restarts = 0;

  private constructor(
    private readonly init: WorkerInit,
    private readonly logger: Logger,
  ) {
    this.slots = Array.from({ length: init.session.workers }, (_, i) => new WorkerSlot(i));
  }

  /** Starts `session.workers` workers and waits until each has opened every model. */
  static async start(models: LoadedModel[], session: SessionConfig, logger: Logger): Promise<WorkerPool> {
    const pool = new WorkerPool({ models: models.map((model) => toWorkerModelSpec(model, session.precision)), session }, logger);
    try {
      await Promise.all(pool.slots.map((slot) => pool.spawn(slot)));
    } catch (err) {
      await pool.close();
      throw err;
    }
    return pool;
  }

  /** Provider of the first worker (all workers open the same providers). */
  get provider(): ProviderInfo {
    return this.slots[0].provider ?? { name: 'cpu', reason: 'no worker started' };
  }

  get size(): number {
    return this.slots.length;
  }

  idleCount(): number {
    return this.slots.filter((slot) => slot.idle).length;
  }

  /** Sets the callback run whenever a worker becomes idle (a batch finished or a worker restarted). */
  onIdle(listener: () => void): void {
    this.idleListener = listener;
  }

  private spawn(slot: WorkerSlot): Promise<void> {
    return new Promise((resolve, reject) => {
      const worker = startWorker({ workerData: this.init, name: `inference-${slot.index}` });
      slot.worker = worker;
      slot.ready = false;
      let started = false;

      worker.on('message', (message: FromWorker) => {
        switch (message.type) {
          case 'ready':
            started = true;
            slot.ready = true;
            slot.provider = { name: message.provider, reason: message.reason };
            this.logger.info(
              { worker: slot.index, provider: message.provider, reason: message.reason, splitBatchModels: message.splitBatchModels },
              'inference worker ready',
            );
            resolve();
            this.idleListener();
            break;
          case 'init-failed':
            reject(new Error(`inference worker ${slot.index} failed to open the models: ${message.message}`));
            void worker.terminate();
            break;
          case 'result':
          case 'task-result':
          case 'error':
            this.settle(slot, message);
            break;
        }
      });
      worker.on('error', (err) => {
        this.logger.error({ worker: slot.index, err }, 'inference worker threw an uncaught error');
        if (!started) reject(new Error(`inference worker ${slot.index} failed to start: ${err.message}`));
      });
      worker.on('exit', (code) => {
        if (slot.worker !== worker) return;
        slot.worker = undefined;
        slot.ready = false;
        const pending = slot.pending;
        slot.pending = undefined;
        if (pending) {
          pending.reject(new InferenceError(`inference worker ${slot.index} exited (code ${code}) while running a batch of model ${pending.model}; the worker is being restarted, retry the request`));
        }
        if (!started) {
          reject(new Error(`inference worker ${slot.index} exited with code ${code} before it was ready`));
          return;
        }
        if (!this.closed) this.restart(slot, code);
      });
    });
  }

  private restart(slot: WorkerSlot, code: number): void {
    this.restarts++;
    this.logger.error({ worker: slot.index, code, restarts: this.restarts }, 'inference worker exited unexpectedly; restarting it');
    this.spawn(slot).catch((err: Error) => {
      this.logger.error({ worker: slot.index, err }, `inference worker restart failed; retrying in ${restartBackoffMs} ms`);
      if (!this.closed) setTimeout(() => this.restart(slot, code), restartBackoffMs).unref();
    });
  }

  private settle(slot: WorkerSlot, message: Extract<FromWorker, { type: 'result' | 'task-result' | 'error' }>): void {
    const pending = slot.pending;
    if (!pending || pending.id !== message.id) {
      this.logger.error({ worker: slot.index, batch: message.id }, 'inference worker returned a result for a batch that is not in flight; ignoring it');
      return;
    }
    slot.pending = undefined;
    if (message.type !== 'error') (pending.resolve as (output: unknown) => void)(message.output);
    else pending.reject(new InferenceError(`inference failed for model ${pending.model}: ${message.message}`));
    this.idleListener();
  }

  /**
   * Runs `batch` on an idle worker; its typed arrays are transferred (unusable afterwards). Throws
   * when no worker is idle, so call it only after `idleCount()` > 0.
   */
  run(batch: BatchInput): Promise<BatchOutput> {
    const slot = this.slots.find((s) => s.idle);
    if (!slot || !slot.worker) throw new Error('no idle inference worker; check idleCount() before run()');
    const id = this.nextBatchId++;
    const done = new Promise<BatchOutput>((resolve, reject) => {
      slot.pending = { id, model: batch.model, resolve, reject };
    });
    const transfer = [batch.zRows, batch.z, batch.c, batch.psi, batch.cutoff, batch.ws, batch.noiseModes, batch.noiseSeeds].map((a) => a.buffer as ArrayBuffer);
    slot.worker.postMessage({ type: 'run', id, batch }, [...new Set(transfer)]);
    return done;
  }

  /**
   * Runs a non-image task (a projection gradient step, a mapping-only batch) on an idle worker; its
   * typed arrays are transferred. Throws when no worker is idle, like `run`.
   */
  runTask(task: WorkerTask): Promise<WorkerTaskOutput> {
    const slot = this.slots.find((s) => s.idle);
    if (!slot || !slot.worker) throw new Error('no idle inference worker; check idleCount() before runTask()');
    const id = this.nextBatchId++;
    const done = new Promise<WorkerTaskOutput>((resolve, reject) => {
      slot.pending = { id, model: task.batch.model, resolve, reject };
    });
    slot.worker.postMessage({ type: 'task', id, task }, taskBuffers(task));
    return done;
  }

  /** Runs `make()`'s batch once on every worker, one worker after another (warm-up). */
  async runOnEach(make: () => BatchInput): Promise<void> {
    for (const slot of this.slots) {
      if (!slot.worker || !slot.ready) throw new Error(`inference worker ${slot.index} is not ready`);
      const id = this.nextBatchId++;
      const batch = make();
      const done = new Promise<BatchOutput>((resolve, reject) => {
        slot.pending = { id, model: batch.model, resolve, reject };
      });
      slot.worker.postMessage({ type: 'run', id, batch });
      await done;
    }
  }

  /**
   * Asks worker `index` to exit with `code` at its next event-loop turn. A non-zero code is handled
   * like a crash: the in-flight batch fails and the worker is restarted (used by the tests).
   */
  stopWorker(index: number, code: number): void {
    this.slots[index].worker?.postMessage({ type: 'exit', code });
  }

  /**
   * Stops every worker; in-flight batches fail at once. Each worker exits after the ONNX Runtime call
   * it is in, because terminating it during the call would abort the process.
   */
  async close(): Promise<void> {
    this.closed = true;
    await Promise.all(
      this.slots.map(async (slot) => {
        const worker = slot.worker;
        slot.worker = undefined;
        slot.ready = false;
        slot.pending?.reject(new InferenceError('inference workers are shutting down'));
        slot.pending = undefined;
        if (!worker) return;
        const exited = new Promise<void>((resolve) => worker.once('exit', () => resolve()));
        worker.postMessage({ type: 'exit', code: 0 });
        let timer: NodeJS.Timeout | undefined;
        const timedOut = new Promise<boolean>((resolve) => {
          timer = setTimeout(() => resolve(true), closeTimeoutMs);
        });
        const late = await Promise.race([exited.then(() => false), timedOut]);
        clearTimeout(timer);
        if (late) {
          // NOTE: this aborts the process if the worker is still inside an ONNX Runtime call.
          this.logger.error({ worker: slot.index, closeTimeoutMs }, 'inference worker did not exit in time; terminating it');
          await worker.terminate();
        }
      }),
    );
  }
}
