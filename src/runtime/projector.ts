/**
 * Projection of a target image into a model's latent space, following the stylegan2-ada-pytorch
 * projector: start at the mean w of 10,000 mapped samples, optimise w (or one w per layer) with
 * Adam under a ramped learning rate, add decaying Gaussian noise to w early on, and optionally
 * optimise the noise maps with an autocorrelation regulariser and per-step renormalisation.
 *
 * The loop runs here on the main thread (Adam on a few thousand values is cheap). Every step submits
 * one gradient task (src/graph/gradient.ts) through the scheduler at bulk priority, so projection
 * shares the workers with image requests, which go first.
 */

import type { ModelManifest } from '../graph/model-manifest.js';
import type { ImageResult, ImageSpec, JobOptions } from './contract.js';
import { CancelledError, InvalidInputError } from './errors.js';
import { Adam, latentNoiseScaleAt, learningRateAt, noiseRegularizer, normalizeNoise, regularizeNoiseWeight } from './projector-math.js';
import { LegacyRandomState } from './seeds.js';
import type { GradientGraph, WorkerTask, WorkerTaskOutput } from './worker-protocol.js';

/** The inference-service operations the projector uses. */
export interface ProjectorService {
  runTask(model: string, task: WorkerTask, options: JobOptions): Promise<WorkerTaskOutput>;
  generate(model: string, images: ImageSpec[], options: JobOptions): AsyncIterable<ImageResult>;
}

/** Weight of the pixel MSE next to the discriminator-feature distance (which lies in [0, 4] per D block). */
export const discriminatorPixelWeight = 0.1;

/**
 * Loss presets: the `loss_weights` fed to the gradient graph. For synthesis_grad.onnx: pixel MSE at
 * 1x, 2x, 4x box down-sampling, then 1 − SSIM. For synthesis_grad_d.onnx: the weight of the pixel
 * MSE added to the discriminator-feature distance (the other entries are unused).
 */
export const projectionLosses = {
  /** Multi-scale pixel MSE plus 1 − SSIM, all weighted 1. */
  pixel_ssim: [1, 1, 1, 1],
  /** Pixel MSE only, at full resolution. */
  mse: [1, 0, 0, 0],
  /** Discriminator-feature distance plus 0.1 × pixel MSE; needs a model converted with its discriminator. */
  discriminator: [discriminatorPixelWeight, 0, 0, 0],
} as const satisfies Record<string, readonly number[]>;
export type ProjectionLoss = keyof typeof projectionLosses;

/** The gradient graph each loss runs on. */
export const projectionLossGraphs: Record<ProjectionLoss, GradientGraph> = { pixel_ssim: 'pixel', mse: 'pixel', discriminator: 'discriminator' };

/** Losses that `manifest`'s model folder can compute. */
export function availableLosses(manifest: ModelManifest): ProjectionLoss[] {
  const losses: ProjectionLoss[] = [];
  if (manifest.files.synthesisGrad !== undefined) losses.push('pixel_ssim', 'mse');
  if (manifest.files.synthesisGradD !== undefined) losses.push('discriminator');
  return losses;
}

export type ProjectionMode = 'w' | 'w_plus';

export interface ProjectionOptions {
  steps: number;
  mode: ProjectionMode;
  loss: ProjectionLoss;
  /** Seeds the latent noise and the initial noise maps (numpy RandomState). */
  seed: number;
  /** Label `[cDim]` for conditional models; also conditions the w statistics. */
  label?: Float32Array;
  optimizeNoise: boolean;
  /** Send the current image with every k-th progress event; 0 sends none. */
  previewEvery: number;
}

export interface ProjectionProgress {
  /** Steps finished, 1-based. */
  step: number;
  steps: number;
  /** Image loss of this step (without the noise regulariser). */
  loss: number;
  /** Image loss plus the weighted noise regulariser (equal to `loss` when noise is not optimised). */
  totalLoss: number;
  learningRate: number;
  /** This step's image `[C, R, R]` (with the latent noise of the step), on preview steps. */
  preview?: Float32Array;
}

export interface ProjectionResult {
  /** Projected latents `[numWs, wDim]`. */
  ws: Float32Array;
  /** The single w `[wDim]` in mode `w`; null in mode `w_plus`. */
  w: Float32Array | null;
  /** Image loss at the last step. */
  loss: number;
  /** `ws` rendered by the synthesis graph with the stored const noise, as /generate renders it. */
  image: Float32Array; // [C, R, R]
  /** With optimised noise: `ws` rendered with those noise maps, and the maps (noiseLayers order). */
  optimizedNoise?: { image: Float32Array; maps: Float32Array[] };
}

export interface ProjectionContext {
  requestId: string;
  signal: AbortSignal;
  /** Absolute deadline of the whole projection (ms since the epoch). */
  deadlineMs: number;
  /** When the request arrived; lets the projection finish while the server drains (see `JobOptions.admittedAtMs`). */
  admittedAtMs?: number;
  onProgress?: (progress: ProjectionProgress) => void | Promise<void>;
}

/** Mean and scalar standard deviation of w over the 10,000 mapped samples. */
export interface WStatistics {
  wAvg: Float32Array; // [wDim]
  wStd: number;
}

/** Number of z samples behind the w statistics, and their numpy RandomState seed. */
export const wStatsSamples = 10_000;
export const wStatsSeed = 123;
/** z rows per mapping task while computing the w statistics. */
const wStatsChunk = 1000;

/**
 * Caches the w statistics per model and label. The z are numpy `RandomState(123).randn(10000, zDim)`
 * mapped without truncation, as in the reference projector; conditional models map them with the
 * request's label.
 */
export class WStatisticsCache {
  private readonly entries = new Map<string, Promise<WStatistics>>();

  get(service: ProjectorService, manifest: ModelManifest, label: Float32Array | undefined, options: JobOptions): Promise<WStatistics> {
    const key = `${manifest.name}|${manifest.createdAt}|${label ? Array.from(label).join(',') : ''}`;
    let entry = this.entries.get(key);
    if (!entry) {
      entry = computeWStatistics(service, manifest, label, options);
      this.entries.set(key, entry);
      entry.catch(() => this.entries.delete(key));
    }
    return entry;
  }
}

async function computeWStatistics(service: ProjectorService, manifest: ModelManifest, label: Float32Array | undefined, options: JobOptions): Promise<WStatistics> {
  const { zDim, cDim, wDim } = manifest.arch;
  const random = new LegacyRandomState(wStatsSeed);
  const chunks: Promise<WorkerTaskOutput>[] = [];
  for (let start = 0; start < wStatsSamples; start += wStatsChunk) {
    const rows = Math.min(wStatsChunk, wStatsSamples - start);
    const z = random.randnFloat32(rows * zDim); // [rows, zDim]
    const c = new Float32Array(rows * cDim); // [rows, cDim]
    if (label) for (let i = 0; i < rows; i++) c.set(label, i * cDim);
    chunks.push(service.runTask(manifest.name, { kind: 'mapping', batch: { model: manifest.name, rows, z, c } }, options));
  }
  const ws: Float32Array[] = [];
  for (const chunk of await Promise.all(chunks)) {
    if (chunk.kind !== 'mapping') throw new Error(`mapping task returned a ${chunk.kind} result`);
    ws.push(chunk.output.w);
  }
  const sum = new Float64Array(wDim);
  for (const block of ws) for (let i = 0; i < block.length; i++) sum[i % wDim] += block[i];
  const wAvg = Float32Array.from(sum, (v) => v / wStatsSamples);
  let squares = 0;
  for (const block of ws) for (let i = 0; i < block.length; i++) squares += (block[i] - wAvg[i % wDim]) ** 2;
  return { wAvg, wStd: Math.sqrt(squares / wStatsSamples) };
}

/**
 * Projects `target [C, R, R]` (in [-1, 1]) and returns the latents and final images. Rejects with
 * CancelledError within one step after `context.signal` fires.
 */
export async function project(
  service: ProjectorService,
  stats: WStatisticsCache,
  manifest: ModelManifest,
  target: Float32Array,
  options: ProjectionOptions,
  context: ProjectionContext,
): Promise<ProjectionResult> {
  const { numWs, wDim, imgChannels, resolution } = manifest.arch;
  if (target.length !== imgChannels * resolution * resolution) {
    throw new InvalidInputError(`target has ${target.length} values, model ${manifest.name} expects ${imgChannels}x${resolution}x${resolution}`);
  }
  const jobOptions = (): JobOptions => ({
    requestId: context.requestId,
    priority: 'bulk',
    deadlineMs: context.deadlineMs,
    signal: context.signal,
    admittedAtMs: context.admittedAtMs,
  });
  const checkCancelled = () => {
    if (context.signal.aborted) throw new CancelledError(`projection ${context.requestId} was cancelled`);
  };

  const { wAvg, wStd } = await stats.get(service, manifest, options.label, jobOptions());
  checkCancelled();
  const latentRows = options.mode === 'w' ? 1 : numWs;
  const latent = new Float32Array(latentRows * wDim); // [1 or numWs, wDim]
  for (let l = 0; l < latentRows; l++) latent.set(wAvg, l * wDim);
  const latentAdam = new Adam(latent.length);

  const random = new LegacyRandomState(options.seed);
  const noiseSizes = manifest.noiseLayers.map((layer) => layer.resolution * layer.resolution);
  const noiseMaps = options.optimizeNoise ? noiseSizes.map((size) => random.randnFloat32(size)) : null; // each [R, R]
  const noiseAdams = noiseMaps?.map((map) => new Adam(map.length)) ?? [];
  const lossWeights = projectionLosses[options.loss];
  const graph = projectionLossGraphs[options.loss];
  if (!availableLosses(manifest).includes(options.loss)) {
    throw new InvalidInputError(`model ${manifest.name} cannot compute loss ${options.loss}; available: ${availableLosses(manifest).join(', ') || 'none'}`);
  }

  let lastLoss = Number.NaN;
  for (let step = 0; step < options.steps; step++) {
    checkCancelled();
    const t = step / options.steps;
    const learningRate = learningRateAt(t);
    const noiseScale = latentNoiseScaleAt(t, wStd);

    const ws = new Float32Array(numWs * wDim); // [numWs, wDim]
    const latentNoise = noiseScale > 0 ? random.randn(latent.length) : null;
    for (let l = 0; l < numWs; l++) {
      const row = options.mode === 'w' ? 0 : l;
      for (let j = 0; j < wDim; j++) ws[l * wDim + j] = latent[row * wDim + j] + (latentNoise ? latentNoise[row * wDim + j] * noiseScale : 0);
    }
    // NOTE: each projection sends batches of one row, so concurrent projections do not share a
    // gradient batch; they only interleave with each other and with image batches.
    const task: WorkerTask = {
      kind: 'gradient',
      batch: {
        model: manifest.name,
        rows: 1,
        ws,
        noise: noiseMaps ? noiseMaps.map((map) => map.slice()) : null,
        noiseRows: 1,
        target: target.slice(),
        lossWeights: Float32Array.from(lossWeights),
        graph,
      },
    };
    const result = await service.runTask(manifest.name, task, jobOptions());
    if (result.kind !== 'gradient') throw new Error(`gradient task returned a ${result.kind} result`);
    const { loss, img, gradWs, gradNoise } = result.output;
    lastLoss = loss[0];

    // dL/dw for mode w sums the rows, since w feeds every layer.
    const latentGrad = new Float64Array(latent.length);
    for (let l = 0; l < numWs; l++) {
      const row = options.mode === 'w' ? 0 : l;
      for (let j = 0; j < wDim; j++) latentGrad[row * wDim + j] += gradWs[l * wDim + j];
    }
    latentAdam.step(latent, latentGrad, learningRate);

    let regularizer = 0;
    if (noiseMaps) {
      noiseMaps.forEach((map, i) => {
        const grad = Float64Array.from(gradNoise[i]);
        const regGrad = new Float64Array(map.length);
        regularizer += noiseRegularizer(map, manifest.noiseLayers[i].resolution, regGrad);
        for (let k = 0; k < grad.length; k++) grad[k] += regularizeNoiseWeight * regGrad[k];
        noiseAdams[i].step(map, grad, learningRate);
        normalizeNoise(map);
      });
    }

    const previewDue = options.previewEvery > 0 && ((step + 1) % options.previewEvery === 0 || step + 1 === options.steps);
    await context.onProgress?.({
      step: step + 1,
      steps: options.steps,
      loss: lastLoss,
      totalLoss: lastLoss + regularizeNoiseWeight * regularizer,
      learningRate,
      ...(previewDue ? { preview: img } : {}),
    });
  }
  checkCancelled();

  const ws = new Float32Array(numWs * wDim); // [numWs, wDim]
  for (let l = 0; l < numWs; l++) ws.set(latent.subarray((options.mode === 'w' ? 0 : l) * wDim, ((options.mode === 'w' ? 0 : l) + 1) * wDim), l * wDim);
  const image = await renderConst(service, manifest, ws, jobOptions());
  const projection: ProjectionResult = { ws, w: options.mode === 'w' ? latent.slice() : null, loss: lastLoss, image };
  if (noiseMaps) {
    const final = await service.runTask(
      manifest.name,
      { kind: 'gradient', batch: { model: manifest.name, rows: 1, ws: ws.slice(), noise: noiseMaps.map((map) => map.slice()), noiseRows: 1, target: target.slice(), lossWeights: Float32Array.from(lossWeights), graph } },
      jobOptions(),
    );
    if (final.kind !== 'gradient') throw new Error(`gradient task returned a ${final.kind} result`);
    projection.optimizedNoise = { image: final.output.img, maps: noiseMaps };
  }
  return projection;
}

/** Renders ws through the normal image path (synthesis graph, const noise), the same path /generate takes. */
async function renderConst(service: ProjectorService, manifest: ModelManifest, ws: Float32Array, options: JobOptions): Promise<Float32Array> {
  for await (const result of service.generate(manifest.name, [{ latent: { kind: 'ws', ws: ws.slice() }, noiseMode: 'const' }], options)) return result.image;
  throw new Error(`rendering the projected latents of model ${manifest.name} returned no image`);
}
