/** POST /generate: images from seeds, z, w or ws, like the reference `generate.py`. */

import { createRoute, z, type OpenAPIHono } from '@hono/zod-openapi';
import type { ModelManifest } from '../graph/model-manifest.js';
import type { AppEnv } from './env.js';
import { sendImages } from './image-response.js';
import { resolveImages, truncationCenter } from './latents.js';
import { problemResponses } from './problem.js';
import { checkOutputPixels, jobOptions, requireModel, resolveFormat, resolveTimeoutMs } from './request-context.js';
import { toHttpProblem } from './runtime-errors.js';
import { latentFields, renderFields } from './schemas.js';

export const GenerateRequestSchema = z
  .object({ ...latentFields, ...renderFields })
  .strict()
  .openapi('GenerateRequest', {
    example: { seeds: [0, 1, 42], psi: 0.7, noise_mode: 'const', format: 'png' },
  });

const binary = z.string().openapi({ type: 'string', format: 'binary' });

export const generateRoute = createRoute({
  method: 'post',
  path: '/generate',
  operationId: 'generateImages',
  summary: 'Generate images from seeds or latents',
  description:
    'One image: the image bytes, with `X-Seed` (when it came from a seed) and `X-Index` headers. ' +
    'Several images: a streamed `multipart/mixed` response, one part per image in completion order, ' +
    'each part with `Content-Type`, `Content-Length`, `X-Index` and `X-Seed` headers. ' +
    'A failure after the first part ends the stream with an `application/problem+json` part.',
  request: { body: { required: true, content: { 'application/json': { schema: GenerateRequestSchema } } } },
  responses: {
    200: {
      description: 'The image, or a multipart/mixed stream of images',
      headers: z.object({
        'x-model': z.string().openapi({ description: 'Model that produced the image' }),
        'x-seed': z.string().optional().openapi({ description: 'Seed of a single image from a seed' }),
        'x-truncation-center': z.enum(['none', 'global', 'class']).openapi({
          description: 'Truncation centre used: none (psi 1), global (w_avg) or class (per-class averages of a conditional model)',
        }),
        'server-timing': z.string().optional().openapi({ description: 'queue, inference and encode durations in ms' }),
      }),
      content: {
        'image/png': { schema: binary },
        'image/webp': { schema: binary },
        'application/octet-stream': { schema: binary },
        'multipart/mixed': { schema: binary },
      },
    },
    ...problemResponses(400, 401, 404, 406, 413, 415, 422, 429, 500, 503, 504),
  },
});

/**
 * Builds the cache key of a single-image request: the model (with the sha256 of its graphs, so a
 * re-converted model never serves stale bytes), every field that changes the image, and the format.
 */
function responseCacheKey(manifest: ModelManifest, body: z.infer<typeof GenerateRequestSchema>, format: string): string {
  const { timeout_ms: _timeout, format: _format, model: _model, ...fields } = body;
  return JSON.stringify([manifest.name, manifest.fileSha256, fields, format]);
}

export function registerGenerate(app: OpenAPIHono<AppEnv>): void {
  app.openapi(generateRoute, async (c) => {
    const body = c.req.valid('json');
    const model = requireModel(c, body.model);
    const images = resolveImages(model.manifest, body, body, { max: c.get('settings').maxImagesPerRequest, setting: 'maxImagesPerRequest' });
    const { resolution } = model.manifest.arch;
    checkOutputPixels(c, '/seeds', images.length * resolution * resolution, `${images.length} images of ${resolution}x${resolution}`);
    const format = resolveFormat(c, body.format);
    const timeoutMs = resolveTimeoutMs(c, body.timeout_ms);

    // Single images are deterministic, so the cache serves identical requests.
    const cache = c.get('imageCache');
    const cacheKey = cache.enabled && images.length === 1 && format !== 'raw' ? responseCacheKey(model.manifest, body, format) : undefined;
    const hit = cacheKey ? cache.get(cacheKey) : undefined;
    if (hit) return c.body(new Uint8Array(hit.bytes), 200, { ...hit.headers, 'X-Model': model.name, 'X-Request-Id': c.get('requestId'), 'X-Cache': 'hit' });
    if (cacheKey) c.header('X-Cache', 'miss');

    const controller = new AbortController();
    let results;
    try {
      results = c.get('service').generate(model.name, images.map((image) => image.spec), jobOptions(c, timeoutMs, 'interactive', controller));
    } catch (err) {
      throw toHttpProblem(err);
    }
    const label = (index: number): Record<string, string> => {
      const seed = images[index].seed;
      return seed === undefined ? { 'X-Index': String(index) } : { 'X-Index': String(index), 'X-Seed': String(seed) };
    };
    const headers = { 'X-Truncation-Center': truncationCenter(model.manifest, body, body.psi) };
    const onSingleImage = cacheKey ? (bytes: Uint8Array, imageHeaders: Record<string, string>) => cache.set(cacheKey, { bytes, headers: imageHeaders }) : undefined;
    return sendImages(c, model.manifest, results, images.length > 1, { format, quality: body.quality, onSingleImage }, label, controller, headers);
  });
}
