/**
 * The inference worker thread: it owns the mapping and synthesis sessions of every loaded model and
 * runs one batch at a time (mapping of the z rows, noise maps, synthesis). It is the only place
 * where ONNX Runtime runs, because `run()` blocks its thread for the whole inference.
 *
 * Started by src/runtime/worker-pool.ts with a `WorkerInit` as `workerData`.
 */

import { readFileSync } from 'node:fs';
import { parentPort, workerData } from 'node:worker_threads';

import { Tensor, type InferenceSession } from 'onnxruntime-node';

import { noiseMapsFromSeed } from './seeds.js';
import { assertSessionIo, openSession, type ProviderName } from './sessions.js';
import {
  noiseModeCode,
  taskOutputBuffers,
  type BatchInput,
  type BatchOutput,
  type FromWorker,
  type GradientBatchInput,
  type GradientGraph,
  type GradientBatchOutput,
  type MappingBatchInput,
  type MappingBatchOutput,
  type ToWorker,
  type WorkerInit,
  type WorkerModelSpec,
  type WorkerTask,
  type WorkerTaskOutput,
} from './worker-protocol.js';

interface ModelSessions {
  spec: WorkerModelSpec;
  mapping: InferenceSession;
  synthesis: InferenceSession;
  /** Stored noise per layer, `[1, 1, R, R]` each. */
  noiseConst: Float32Array[];
  /** Zero noise per layer, `[1, 1, R, R]` each. */
  noiseZeros: Float32Array[];
  /** The projection gradient session, opened by the first gradient task. */
  gradient?: Promise<InferenceSession>;
  /** The discriminator-feature gradient session, opened by the first task that requests it. */
  gradientD?: Promise<InferenceSession>;
  /** Run synthesis batches as single-image runs (chosen at start, see `SessionConfig.splitBatches`). */
  splitBatches: boolean;
}

const port = parentPort;
if (!port) throw new Error('inference-worker.ts must run in a worker thread, started by worker-pool.ts');

const models = new Map<string, ModelSessions>();
let sessionProvider: ProviderName | undefined;
let workerInit: WorkerInit | undefined;

function send(message: FromWorker, transfer: ArrayBuffer[] = []): void {
  port!.postMessage(message, transfer);
}

function readNoiseConst(spec: WorkerModelSpec): Float32Array[] {
  const bytes = readFileSync(spec.noiseConstPath);
  const all = new Float32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 4);
  const layers: Float32Array[] = [];
  let offset = 0;
  for (const layer of spec.noiseLayers) {
    const size = layer.resolution * layer.resolution;
    layers.push(all.slice(offset, offset + size)); // [1, 1, R, R], an own buffer for the Tensor
    offset += size;
  }
  return layers;
}

async function openModel(spec: WorkerModelSpec, init: WorkerInit, provider?: ProviderName) {
  const mapping = await openSession(spec.mappingPath, init.session, provider);
  const synthesis = await openSession(spec.synthesisPath, init.session, mapping.provider);
  const mappingInputs = spec.cDim > 0 ? ['z', 'c', 'psi', 'truncation_cutoff'] : ['z', 'psi', 'truncation_cutoff'];
  assertSessionIo(mapping.session, spec.mappingPath, mappingInputs, 'ws');
  assertSessionIo(synthesis.session, spec.synthesisPath, ['ws', ...spec.noiseLayers.map((l) => l.name)], 'img');
  const noiseConst = readNoiseConst(spec);
  const noiseZeros = spec.noiseLayers.map((l) => new Float32Array(l.resolution * l.resolution));
  const sessions: ModelSessions = { spec, mapping: mapping.session, synthesis: synthesis.session, noiseConst, noiseZeros, splitBatches: false };
  if (init.session.splitBatches === 'on') sessions.splitBatches = true;
  else if (init.session.splitBatches !== 'off' && synthesis.provider === 'cpu') sessions.splitBatches = await singleRunsAreFaster(sessions);
  models.set(spec.name, sessions);
  return mapping;
}

/** Number of timed repeats per form when choosing between batched and single-image runs. */
const splitProbeRepeats = 2;

/**
 * Times synthesis of 2 rows as one batch and as 2 single-image runs (after one untimed warm-up
 * run of each), and returns true when the single runs took under 97% of the batched time.
 */
async function singleRunsAreFaster(m: ModelSessions): Promise<boolean> {
  const { numWs, wDim } = m.spec;
  const feeds = (rows: number) => {
    const noise: Record<string, Tensor> = {};
    m.spec.noiseLayers.forEach((layer, i) => (noise[layer.name] = new Tensor('float32', m.noiseConst[i], [1, 1, layer.resolution, layer.resolution])));
    return { ws: new Tensor('float32', new Float32Array(rows * numWs * wDim), [rows, numWs, wDim]), ...noise };
  };
  const time = async (rows: number, runs: number) => {
    await m.synthesis.run(feeds(rows));
    const started = performance.now();
    for (let repeat = 0; repeat < splitProbeRepeats; repeat++) for (let r = 0; r < runs; r++) await m.synthesis.run(feeds(rows));
    return performance.now() - started;
  };
  const batched = await time(2, 1);
  const single = await time(1, 2);
  return single < 0.97 * batched;
}

/** Smallest power of two >= n, at most `cap`. */
function mappingBucket(n: number, cap: number): number {
  let size = 1;
  while (size < n) size *= 2;
  return Math.min(size, cap);
}

/** Copies `rows` rows of `rowSize` floats and repeats row 0 up to `bucket` rows. */
function padRows(data: Float32Array, rows: number, rowSize: number, bucket: number): Float32Array {
  if (rows === bucket) return data;
  const padded = new Float32Array(bucket * rowSize);
  padded.set(data.subarray(0, rows * rowSize));
  for (let r = rows; r < bucket; r++) padded.copyWithin(r * rowSize, 0, rowSize);
  return padded;
}

/** Maps the z rows and writes their ws into `batch.ws`. Returns the time spent in ms. */
async function runMapping(m: ModelSessions, batch: BatchInput): Promise<number> {
  const nz = batch.zRows.length;
  if (nz === 0) return 0;
  const started = performance.now();
  const { zDim, cDim, numWs, wDim } = m.spec;
  const size = mappingBucket(nz, batch.bucket);
  const psi = padRows(batch.psi, nz, 1, size); // [size]
  const cutoff = new BigInt64Array(size); // [size]
  for (let i = 0; i < size; i++) cutoff[i] = BigInt(batch.cutoff[i < nz ? i : 0]);
  const feeds: Record<string, Tensor> = {
    z: new Tensor('float32', padRows(batch.z, nz, zDim, size), [size, zDim]),
    psi: new Tensor('float32', psi, [size]),
    truncation_cutoff: new Tensor('int64', cutoff, [size]),
  };
  if (cDim > 0) feeds.c = new Tensor('float32', padRows(batch.c, nz, cDim, size), [size, cDim]);
  const out = await m.mapping.run(feeds);
  const ws = out.ws.data as Float32Array; // [size, numWs, wDim]
  const rowSize = numWs * wDim;
  for (let i = 0; i < nz; i++) batch.ws.set(ws.subarray(i * rowSize, (i + 1) * rowSize), batch.zRows[i] * rowSize);
  return performance.now() - started;
}

/**
 * Noise inputs, one per layer. A batch whose rows all use `const` (or all `none`) feeds one
 * broadcast `[1, 1, R, R]` map; otherwise each row gets its own map in `[bucket, 1, R, R]`.
 */
function buildNoise(m: ModelSessions, batch: BatchInput): Record<string, Tensor> {
  const layers = m.spec.noiseLayers;
  const feeds: Record<string, Tensor> = {};
  const modes = batch.noiseModes.subarray(0, batch.rows);
  const uniform = modes.every((mode) => mode === modes[0]) && modes[0] !== noiseModeCode.random;
  if (uniform) {
    const source = modes[0] === noiseModeCode.const ? m.noiseConst : m.noiseZeros;
    layers.forEach((layer, i) => {
      feeds[layer.name] = new Tensor('float32', source[i], [1, 1, layer.resolution, layer.resolution]);
    });
    return feeds;
  }
  const sizes = layers.map((l) => l.resolution * l.resolution);
  const maps = sizes.map((size) => new Float32Array(batch.bucket * size)); // each [bucket, 1, R, R]
  for (let row = 0; row < batch.bucket; row++) {
    const source = row < batch.rows ? row : 0; // padding rows repeat row 0
    const mode = batch.noiseModes[source];
    let rowMaps: Float32Array[];
    if (mode === noiseModeCode.random) rowMaps = noiseMapsFromSeed(batch.noiseSeeds[source], sizes);
    else rowMaps = mode === noiseModeCode.const ? m.noiseConst : m.noiseZeros;
    sizes.forEach((size, i) => maps[i].set(rowMaps[i], row * size));
  }
  layers.forEach((layer, i) => {
    feeds[layer.name] = new Tensor('float32', maps[i], [batch.bucket, 1, layer.resolution, layer.resolution]);
  });
  return feeds;
}

/** Returns `data` when its `length` floats fill its whole buffer, else a copy of them (so it can be transferred). */
function ownBuffer(data: Float32Array, length: number): Float32Array {
  if (data.byteOffset === 0 && data.length === length && data.buffer.byteLength === length * 4) return data;
  return data.slice(0, length);
}

/** Runs synthesis once per real row (no padding rows), slicing per-row noise maps. */
async function synthesizeOneByOne(m: ModelSessions, batch: BatchInput, noise: Record<string, Tensor>): Promise<Float32Array> {
  const { numWs, wDim, resolution, imgChannels } = m.spec;
  const rowSize = numWs * wDim;
  const imageSize = imgChannels * resolution * resolution;
  const img = new Float32Array(batch.rows * imageSize); // [rows, C, R, R]
  for (let row = 0; row < batch.rows; row++) {
    const feeds: Record<string, Tensor> = { ws: new Tensor('float32', batch.ws.slice(row * rowSize, (row + 1) * rowSize), [1, numWs, wDim]) };
    for (const [name, tensor] of Object.entries(noise)) {
      if (tensor.dims[0] === 1) {
        feeds[name] = tensor; // one map broadcast over the batch
      } else {
        const mapSize = tensor.size / tensor.dims[0];
        const data = (tensor.data as Float32Array).slice(row * mapSize, (row + 1) * mapSize);
        feeds[name] = new Tensor('float32', data, [1, ...tensor.dims.slice(1)]);
      }
    }
    const out = await m.synthesis.run(feeds);
    img.set((out.img.data as Float32Array).subarray(0, imageSize), row * imageSize);
  }
  return img;
}

async function runBatch(batch: BatchInput): Promise<BatchOutput> {
  const started = performance.now();
  const m = models.get(batch.model);
  if (!m) throw new Error(`model ${batch.model} is not loaded in this worker`);
  const { numWs, wDim, resolution, imgChannels } = m.spec;
  if (batch.rows < 1 || batch.rows > batch.bucket) throw new Error(`batch of ${batch.rows} rows does not fit bucket ${batch.bucket}`);

  const mappingMs = await runMapping(m, batch);

  const noiseStarted = performance.now();
  const noise = buildNoise(m, batch);
  const noiseMs = performance.now() - noiseStarted;

  const synthesisStarted = performance.now();
  let img: Float32Array; // [rows, C, R, R]
  if (m.splitBatches && batch.rows > 1) {
    img = await synthesizeOneByOne(m, batch, noise);
  } else {
    const ws = padRows(batch.ws, batch.rows, numWs * wDim, batch.bucket); // [bucket, numWs, wDim]
    const out = await m.synthesis.run({ ws: new Tensor('float32', ws, [batch.bucket, numWs, wDim]), ...noise });
    img = ownBuffer(out.img.data as Float32Array, batch.rows * imgChannels * resolution * resolution);
  }
  const synthesisMs = performance.now() - synthesisStarted;

  return {
    img,
    ws: ownBuffer(batch.ws, batch.rows * numWs * wDim), // [rows, numWs, wDim]
    timings: { mappingMs, noiseMs, synthesisMs, totalMs: performance.now() - started },
  };
}

/** Opens the model's gradient session for `graph` on first use, with the provider the other sessions use. */
function gradientSession(m: ModelSessions, graph: GradientGraph): Promise<InferenceSession> {
  const key = graph === 'discriminator' ? 'gradientD' : 'gradient';
  const path = graph === 'discriminator' ? m.spec.synthesisGradDPath : m.spec.synthesisGradPath;
  if (path === undefined) {
    const file = graph === 'discriminator' ? 'synthesis_grad_d.onnx (its checkpoint has no discriminator)' : 'synthesis_grad.onnx; re-convert it with this version to enable projection';
    return Promise.reject(new Error(`model ${m.spec.name} has no ${file}`));
  }
  const session = (m[key] ??= openSession(path, workerInit!.session, sessionProvider).then(({ session }) => session));
  session.catch(() => {
    m[key] = undefined;
  });
  return session;
}

async function runGradient(batch: GradientBatchInput): Promise<GradientBatchOutput> {
  const started = performance.now();
  const m = models.get(batch.model);
  if (!m) throw new Error(`model ${batch.model} is not loaded in this worker`);
  const session = await gradientSession(m, batch.graph ?? 'pixel');
  const { numWs, wDim, resolution, imgChannels } = m.spec;
  const feeds: Record<string, Tensor> = {
    ws: new Tensor('float32', batch.ws, [batch.rows, numWs, wDim]),
    target: new Tensor('float32', batch.target, [batch.rows, imgChannels, resolution, resolution]),
    loss_weights: new Tensor('float32', batch.lossWeights, [batch.lossWeights.length]),
  };
  m.spec.noiseLayers.forEach((layer, i) => {
    const rows = batch.noise === null ? 1 : batch.noiseRows;
    const map = batch.noise === null ? m.noiseConst[i] : batch.noise[i];
    feeds[layer.name] = new Tensor('float32', map, [rows, 1, layer.resolution, layer.resolution]);
  });
  const out = await session.run(feeds);
  const copy = (name: string) => (out[name].data as Float32Array).slice();
  return {
    loss: copy('loss'),
    img: copy('img'),
    gradWs: copy('grad_ws'),
    gradNoise: m.spec.noiseLayers.map((layer) => copy(`grad_${layer.name}`)),
    timings: { totalMs: performance.now() - started },
  };
}

async function runMappingTask(batch: MappingBatchInput): Promise<MappingBatchOutput> {
  const started = performance.now();
  const m = models.get(batch.model);
  if (!m) throw new Error(`model ${batch.model} is not loaded in this worker`);
  const { zDim, cDim, numWs, wDim } = m.spec;
  const cutoff = new BigInt64Array(batch.rows).fill(BigInt(numWs)); // [rows]
  const feeds: Record<string, Tensor> = {
    z: new Tensor('float32', batch.z, [batch.rows, zDim]),
    psi: new Tensor('float32', new Float32Array(batch.rows).fill(1), [batch.rows]),
    truncation_cutoff: new Tensor('int64', cutoff, [batch.rows]),
  };
  if (cDim > 0) feeds.c = new Tensor('float32', batch.c, [batch.rows, cDim]);
  const ws = (await m.mapping.run(feeds)).ws.data as Float32Array; // [rows, numWs, wDim]
  const w = new Float32Array(batch.rows * wDim); // [rows, wDim]
  for (let i = 0; i < batch.rows; i++) w.set(ws.subarray(i * numWs * wDim, i * numWs * wDim + wDim), i * wDim);
  return { w, timings: { totalMs: performance.now() - started } };
}

async function runTask(task: WorkerTask): Promise<WorkerTaskOutput> {
  if (task.kind === 'gradient') return { kind: 'gradient', output: await runGradient(task.batch) };
  return { kind: 'mapping', output: await runMappingTask(task.batch) };
}

async function start(init: WorkerInit): Promise<void> {
  let provider: ProviderName | undefined;
  let reason = '';
  workerInit = init;
  try {
    for (const spec of init.models) {
      const opened = await openModel(spec, init, provider);
      if (!provider) reason = opened.reason;
      provider = opened.provider;
    }
  } catch (err) {
    send({ type: 'init-failed', message: (err as Error).message });
    return;
  }
  sessionProvider = provider;
  // Batches are run strictly one after another, in arrival order.
  let chain = Promise.resolve();
  port!.on('message', (message: ToWorker) => {
    if (message.type === 'exit') process.exit(message.code);
    if (message.type === 'task') {
      const { id, task } = message;
      chain = chain.then(async () => {
        try {
          const output = await runTask(task);
          send({ type: 'task-result', id, output }, taskOutputBuffers(output));
        } catch (err) {
          send({ type: 'error', id, message: (err as Error).message });
        }
      });
      return;
    }
    chain = chain.then(async () => {
      try {
        const output = await runBatch(message.batch);
        send({ type: 'result', id: message.id, output }, [output.img.buffer as ArrayBuffer, output.ws.buffer as ArrayBuffer]);
      } catch (err) {
        send({ type: 'error', id: message.id, message: (err as Error).message });
      }
    });
  });
  const splitBatchModels = [...models.values()].filter((m) => m.splitBatches).map((m) => m.spec.name);
  send({ type: 'ready', provider: provider ?? 'cpu', reason, splitBatchModels });
}

void start(workerData as WorkerInit);
