/**
 * Request fields shared by the image routes (`/generate`, `/mix`, `/interpolate`): model, latents,
 * truncation, labels, noise and output format. Model-dependent checks (latent lengths, labels on
 * conditional models) happen in `latents.ts` once the model is known.
 */

import { z } from '@hono/zod-openapi';

export const maxSeed = 4294967295; // 2^32 - 1, numpy RandomState's seed range

/**
 * Schema-level bounds, far above any server setting, so that validation itself stays cheap: an
 * array longer than its bound fails with one error before its elements are checked. The server
 * settings (maxImagesPerRequest and the like) then apply the real limits.
 */
export const maxListItems = 10_000;
/** Longest latent vector accepted (zDim and wDim are 512 in every public model). */
export const maxVectorLength = 16_384;
/** Largest magnitude of psi and of latent values; beyond it float32 arithmetic overflows to NaN. */
export const maxLatentMagnitude = 1e6;

const latentValue = z.number().finite().min(-maxLatentMagnitude).max(maxLatentMagnitude);
const vector = z.array(latentValue).max(maxVectorLength);

export const SeedSchema = z
  .number()
  .int()
  .min(0)
  .max(maxSeed)
  .openapi({ description: 'numpy RandomState seed; z = RandomState(seed).randn(zDim) cast to float32.', example: 42 });

export const ModelNameSchema = z
  .string()
  .regex(/^[a-z0-9][a-z0-9._-]{0,63}$/, 'expected a model name of lowercase letters, digits, ".", "_" or "-"')
  .openapi({ description: 'Model folder name; defaults to the server default model.', example: 'sample' });

export const NoiseModeSchema = z.enum(['const', 'random', 'none']).openapi({
  description:
    'Per-pixel noise: `const` uses the noise stored in the checkpoint (the reference default), ' +
    '`random` draws noise from `noise_seed` (our own generator, not torch-compatible), `none` adds no noise.',
});

export const ImageFormatSchema = z.enum(['png', 'webp', 'raw']).openapi({
  description:
    'Output format. `raw` is the generator output before uint8 conversion: little-endian float32 in ' +
    '[channels, R, R] order (application/octet-stream, shape in X-Tensor-Shape). When omitted, the ' +
    'Accept header decides (image/webp, image/png or application/octet-stream); PNG by default.',
});

/** Fields that control mapping, noise and encoding, shared by the image routes. */
export const renderFields = {
  model: ModelNameSchema.optional(),
  psi: z
    .number()
    .finite()
    .min(-maxLatentMagnitude)
    .max(maxLatentMagnitude)
    .default(1)
    .openapi({ description: 'Truncation psi: w = w_avg + psi·(w − w_avg), in [-1e6, 1e6]; 1 disables truncation.' }),
  truncation_cutoff: z
    .number()
    .int()
    .min(0)
    .optional()
    .openapi({ description: 'Truncate only ws layers l < cutoff (all layers when omitted).' }),
  class: z
    .number()
    .int()
    .min(0)
    .optional()
    .openapi({ description: 'Class index for conditional models (one-hot label). Not allowed with `label`.' }),
  label: z
    .array(z.number().finite().min(-maxLatentMagnitude).max(maxLatentMagnitude))
    .max(maxVectorLength)
    .optional()
    .openapi({ description: 'Label vector of length cDim for conditional models (one-hot or soft).' }),
  noise_mode: NoiseModeSchema.default('const'),
  noise_seed: z.number().int().min(0).max(maxSeed).optional().openapi({
    description:
      'Seed of the noise maps for noise_mode `random`; image i of a request uses (noise_seed + i) mod 2^32. Default: the image seed, else 0.',
  }),
  format: ImageFormatSchema.optional(),
  quality: z.number().int().min(1).max(100).optional().openapi({ description: 'WebP quality (lossy). Omit for lossless WebP.' }),
  timeout_ms: z.number().int().min(1).optional().openapi({
    description: 'Request deadline in milliseconds, capped by the server maximum. Same as the `Request-Timeout-Ms` header.',
  }),
};

/** Latent inputs: exactly one of these per request. */
export const latentFields = {
  seeds: z.array(SeedSchema).min(1).max(maxListItems).optional().openapi({ description: 'One image per seed.', example: [0, 1, 42] }),
  z: z
    .array(vector)
    .min(1)
    .max(maxListItems)
    .optional()
    .openapi({ description: 'One z vector of length zDim per image.' }),
  w: z
    .array(vector)
    .min(1)
    .max(maxListItems)
    .optional()
    .openapi({ description: 'One w vector of length wDim per image, broadcast to every ws layer.' }),
  ws: z
    .array(z.array(vector).max(256))
    .min(1)
    .max(maxListItems)
    .optional()
    .openapi({ description: 'One [numWs][wDim] array per image, fed to synthesis as is (after truncation when psi != 1).' }),
};
