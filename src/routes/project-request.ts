/**
 * Request handling for POST /project: the option fields (query or multipart form), the target
 * upload (decoded and pre-processed by `decodeUpload`) and the JSON result of a projection.
 */

import { z } from '@hono/zod-openapi';
import type { Context } from 'hono';
import type { ModelManifest } from '../graph/model-manifest.js';
import { decodeUpload, encodeImage, toUint8Hwc, uploadBackground, UploadError, type DecodedUpload } from '../runtime/encode.js';
import { availableLosses, projectionLosses, type ProjectionLoss, type ProjectionMode, type ProjectionResult } from '../runtime/projector.js';
import { psnr } from '../runtime/projector-math.js';
import type { AppEnv, ProjectionSettings } from './env.js';
import { resolveLabel } from './latents.js';
import { HttpProblem, invalidField } from './problem.js';
import { maxLatentMagnitude, ModelNameSchema, maxSeed } from './schemas.js';

/** Projection settings used when the server passes none (the src/config.ts defaults). */
export const defaultProjectionSettings: ProjectionSettings = {
  maxProjectSteps: 1000,
  maxUploadBytes: 10 << 20,
  maxUploadPixels: 40_000_000,
  maxProjectJobs: 4,
  projectJobTtlMs: 3_600_000,
};

export const defaultProjectSteps = 200;
export const defaultProjectSeed = 303;
export const defaultLoss: ProjectionLoss = 'pixel_ssim';

export function projectionSettings(c: Context<AppEnv>): ProjectionSettings {
  return c.get('settings').projection ?? defaultProjectionSettings;
}

/**
 * A query or form integer written in plain decimal digits. Anything else (empty, hex, exponent,
 * sign, spaces) stays a string, so it fails the number check with a 422 naming the field.
 */
const decimalInteger = (schema: z.ZodNumber) =>
  z.preprocess((value) => (typeof value === 'string' && /^\d{1,16}$/.test(value) ? Number(value) : value), schema);

const booleanString = z
  .enum(['true', 'false', '1', '0'])
  .transform((value) => value === 'true' || value === '1')
  .openapi({ type: 'string', enum: ['true', 'false', '1', '0'] });

/** Option fields, shared by the query string and the multipart form (form fields win). */
export const projectOptionFields = {
  model: ModelNameSchema.optional(),
  steps: decimalInteger(z.number().int().min(1)).optional().openapi({ type: 'integer', description: `Optimisation steps; default ${defaultProjectSteps}, at most the server's max-project-steps.` }),
  mode: z.enum(['w', 'w_plus']).optional().openapi({ description: '`w` (default): one latent for all layers; `w_plus`: one latent per layer.' }),
  loss: z.enum(['pixel_ssim', 'mse', 'discriminator']).optional().openapi({
    description:
      '`pixel_ssim` (default): MSE at full, 2x and 4x box-downsampled resolution plus 1 − SSIM (11-tap Gaussian, σ 1.5), all weighted 1. ' +
      '`mse`: full-resolution pixel MSE only. ' +
      "`discriminator`: distance of the channel-normalised feature maps of the model's discriminator blocks plus 0.1 × pixel MSE; " +
      'only for models converted from a network pickle that carries the discriminator (422 otherwise).',
  }),
  seed: decimalInteger(z.number().int().min(0).max(maxSeed)).optional().openapi({ type: 'integer', description: `Seed of the latent noise and initial noise maps; default ${defaultProjectSeed}.` }),
  class: decimalInteger(z.number().int().min(0)).optional().openapi({ type: 'integer', description: 'Class index; conditional models need `class` or `label`.' }),
  label: z
    .string()
    .regex(/^\s*-?[\d.eE+-]+(\s*,\s*-?[\d.eE+-]+)*\s*$/, 'expected comma-separated numbers, e.g. 0,1,0')
    .max(100_000)
    .optional()
    .openapi({ description: 'Label vector of length cDim as comma-separated numbers (one-hot or soft), instead of `class`.' }),
  optimize_noise: booleanString.optional().openapi({ description: 'Also optimise the per-layer noise maps (default false).' }),
  preview_every: decimalInteger(z.number().int().min(0)).optional().openapi({ type: 'integer', description: 'Include the current image (PNG, base64) in every k-th progress event; 0 (default) never.' }),
  async: booleanString.optional().openapi({ description: 'Run as a background job: 202 with a job id instead of an SSE stream.' }),
};

export const ProjectQuerySchema = z.object(projectOptionFields).strict();
export const ProjectFormSchema = z
  .object({
    image: z.file().openapi({ type: 'string', format: 'binary', description: 'The target image: PNG, JPEG or WebP.' }),
    ...projectOptionFields,
  })
  .strict()
  .openapi('ProjectForm');

type OptionInput = z.output<typeof ProjectQuerySchema>;

export interface ResolvedProjectOptions {
  manifest: ModelManifest;
  steps: number;
  mode: ProjectionMode;
  loss: ProjectionLoss;
  seed: number;
  label?: Float32Array;
  classIndex?: number;
  optimizeNoise: boolean;
  previewEvery: number;
  async: boolean;
}

/** Applies defaults and the model-dependent checks (step limit, class on conditional models). */
export function resolveProjectOptions(c: Context<AppEnv>, manifest: ModelManifest, options: OptionInput): ResolvedProjectOptions {
  const steps = options.steps ?? defaultProjectSteps;
  const { maxProjectSteps } = projectionSettings(c);
  if (steps > maxProjectSteps) throw invalidField('/steps', `at most ${maxProjectSteps} (the server's max-project-steps), got ${steps}`);
  if (manifest.files.synthesisGrad === undefined) {
    throw new HttpProblem(422, 'validation', `model "${manifest.name}" has no gradient graph (synthesis_grad.onnx); re-convert it with this version to enable projection`);
  }
  const loss = options.loss ?? defaultLoss;
  const losses = availableLosses(manifest);
  if (!losses.includes(loss)) {
    const reason = loss === 'discriminator' ? 'has no discriminator graph (synthesis_grad_d.onnx; its checkpoint carried no supported discriminator)' : 'cannot compute it';
    throw new HttpProblem(422, 'validation', `loss "${loss}" is not available: model "${manifest.name}" ${reason}. Available losses: ${losses.join(', ')}`);
  }
  const labelValues = options.label?.split(',').map((value) => Number(value.trim()));
  if (labelValues?.some((value) => !Number.isFinite(value) || Math.abs(value) > maxLatentMagnitude)) {
    throw invalidField('/label', `expected comma-separated numbers in [-${maxLatentMagnitude}, ${maxLatentMagnitude}], got "${options.label}"`);
  }
  const label = resolveLabel(manifest, { psi: 1, noise_mode: 'const', class: options.class, label: labelValues });
  return {
    manifest,
    steps,
    mode: options.mode ?? 'w',
    loss,
    seed: options.seed ?? defaultProjectSeed,
    label,
    classIndex: options.class,
    optimizeNoise: options.optimize_noise ?? false,
    previewEvery: options.preview_every ?? 0,
    async: options.async ?? false,
  };
}

/** Decodes the upload to the model's resolution, mapping decoder failures to 413, 415 and 422 problems. */
export async function decodeTarget(c: Context<AppEnv>, bytes: Uint8Array, manifest: ModelManifest): Promise<{ decoded: DecodedUpload; target: Float32Array }> {
  if (bytes.byteLength === 0) throw new HttpProblem(422, 'validation', 'the target image is empty; send a PNG, JPEG or WebP file');
  let decoded: DecodedUpload;
  try {
    decoded = await decodeUpload(bytes, manifest.arch.resolution, projectionSettings(c).maxUploadPixels);
  } catch (err) {
    if (!(err instanceof UploadError)) throw err;
    if (err.reason === 'too-many-pixels') throw new HttpProblem(413, 'payload-too-large', err.message);
    if (err.reason === 'unsupported') throw new HttpProblem(415, 'unsupported-media-type', err.message);
    throw new HttpProblem(422, 'validation', err.message);
  }
  return { decoded, target: targetTensor(decoded.rgb, manifest) };
}

/** `[R, R, 3]` uint8 to `[C, R, R]` float in [-1, 1] (C = 1 takes the mean of R, G and B). */
function targetTensor(rgb: Uint8Array, manifest: ModelManifest): Float32Array {
  const { imgChannels, resolution } = manifest.arch;
  const plane = resolution * resolution;
  const target = new Float32Array(imgChannels * plane); // [C, R, R]
  for (let p = 0; p < plane; p++) {
    if (imgChannels === 1) {
      target[p] = (rgb[p * 3] + rgb[p * 3 + 1] + rgb[p * 3 + 2]) / 3 / 127.5 - 1;
      continue;
    }
    for (let ch = 0; ch < imgChannels; ch++) target[ch * plane + p] = rgb[p * 3 + ch] / 127.5 - 1;
  }
  return target;
}

async function pngBase64(c: Context<AppEnv>, image: Float32Array, manifest: ModelManifest): Promise<string> {
  const { resolution, imgChannels } = manifest.arch;
  const bytes = await encodeImage(image, { channels: imgChannels, height: resolution, width: resolution }, { format: 'png', pngCompressionLevel: c.get('settings').pngCompressionLevel });
  return Buffer.from(bytes).toString('base64');
}

/** PSNR in dB of a generated `[C, R, R]` image against the uint8 target, both as the uint8 pixels a PNG holds. */
function psnrAgainstTarget(image: Float32Array, target: Float32Array, manifest: ModelManifest): number {
  const { resolution, imgChannels } = manifest.arch;
  const shape = { channels: imgChannels, height: resolution, width: resolution };
  return psnr(toUint8Hwc(image, shape), toUint8Hwc(target, shape));
}

/** Encodes the preview image of a progress event. */
export function previewPng(c: Context<AppEnv>, image: Float32Array, manifest: ModelManifest): Promise<string> {
  return pngBase64(c, image, manifest);
}

function rows(values: Float32Array, width: number): number[][] {
  const out: number[][] = [];
  for (let offset = 0; offset < values.length; offset += width) out.push(Array.from(values.subarray(offset, offset + width)));
  return out;
}

function roundedPsnr(value: number): number | null {
  return Number.isFinite(value) ? Math.round(value * 1000) / 1000 : null;
}

/** Builds the JSON result of a finished projection. */
export async function projectionResultBody(c: Context<AppEnv>, options: ResolvedProjectOptions, decoded: DecodedUpload, target: Float32Array, result: ProjectionResult, elapsedMs: number) {
  const { manifest } = options;
  const weights = projectionLosses[options.loss];
  const constPng = await pngBase64(c, result.image, manifest);
  const constPsnr = psnrAgainstTarget(result.image, target, manifest);
  const optimized = result.optimizedNoise;
  const body: Record<string, unknown> = {
    model: manifest.name,
    mode: options.mode,
    steps: options.steps,
    seed: options.seed,
    ...(options.classIndex !== undefined ? { class: options.classIndex } : {}),
    loss_name: options.loss,
    loss_weights:
      options.loss === 'discriminator'
        ? { pixel: weights[0], pixel_2x: 0, pixel_4x: 0, ssim: 0, discriminator: 1 }
        : { pixel: weights[0], pixel_2x: weights[1], pixel_4x: weights[2], ssim: weights[3] },
    loss: result.loss,
    ws: rows(result.ws, manifest.arch.wDim),
    w: result.w === null ? null : Array.from(result.w),
    image_noise: optimized ? 'optimized' : 'const',
    image_png: optimized ? await pngBase64(c, optimized.image, manifest) : constPng,
    psnr: roundedPsnr(optimized ? psnrAgainstTarget(optimized.image, target, manifest) : constPsnr),
    target: {
      format: decoded.source.format,
      width: decoded.source.width,
      height: decoded.source.height,
      orientation: decoded.source.orientation,
      oriented_width: decoded.source.orientedWidth,
      oriented_height: decoded.source.orientedHeight,
      resolution: manifest.arch.resolution,
      background: uploadBackground,
    },
    target_png: await pngBase64(c, target, manifest),
    elapsed_ms: Math.round(elapsedMs),
  };
  if (optimized) {
    body.const_noise_image_png = constPng;
    body.const_noise_psnr = roundedPsnr(constPsnr);
    const all = new Float32Array(optimized.maps.reduce((sum, map) => sum + map.length, 0));
    let offset = 0;
    for (const map of optimized.maps) {
      all.set(map, offset);
      offset += map.length;
    }
    body.noise_f32_base64 = Buffer.from(all.buffer, all.byteOffset, all.byteLength).toString('base64');
  }
  return body;
}
