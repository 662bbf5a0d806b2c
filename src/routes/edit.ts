/**
 * POST /edit: semantic editing with closed-form directions. Takes one latent, adds
 * `strength · direction` to the chosen ws layers for each strength, and returns one image per
 * strength (multipart) or a strip. GET /models/{name}/directions lists the direction sets.
 */

import { createRoute, z, type OpenAPIHono } from '@hono/zod-openapi';
import type { ImageResult, ImageSpec } from '../runtime/contract.js';
import type { AppEnv } from './env.js';
import { composeStrip } from './grid.js';
import { encodeFloatImage, sendImages } from './image-response.js';
import { resolveImages } from './latents.js';
import { submitImages } from './jobs.js';
import { HttpProblem, invalidField, problemResponses } from './problem.js';
import { checkOutputPixels, requireModel, resolveFormat, resolveTimeoutMs } from './request-context.js';
import { toHttpProblem } from './runtime-errors.js';
import { latentFields, maxLatentMagnitude, maxListItems, maxVectorLength, ModelNameSchema, renderFields } from './schemas.js';

const setNames = ['all', 'coarse', 'middle', 'fine'] as const;

export const EditRequestSchema = z
  .object({
    ...latentFields,
    ...renderFields,
    direction: z.number().int().min(0).optional().openapi({ description: 'Index of the direction in `direction_set`, 0 = largest eigenvalue.' }),
    direction_set: z.enum(setNames).default('all').openapi({ description: 'Which closed-form direction set to take the direction from.' }),
    vector: z.array(z.number().finite().min(-maxLatentMagnitude).max(maxLatentMagnitude)).max(maxVectorLength).optional().openapi({ description: 'A direction of length wDim of your own, instead of `direction`.' }),
    strengths: z
      .union([
        z.array(z.number().finite().min(-maxLatentMagnitude).max(maxLatentMagnitude)).min(1).max(maxListItems),
        z.object({ from: z.number().finite(), to: z.number().finite(), count: z.number().int().min(1).max(10_000) }).strict(),
      ])
      .default({ from: -5, to: 5, count: 5 })
      .openapi({ description: 'Strengths as a list, or an evenly spaced range (count values from `from` to `to`).' }),
    layers: z.array(z.number().int()).max(1024).optional().openapi({
      description: 'ws indices the edit applies to; default: the direction set\'s layers (all layers for `all` and for `vector`).',
    }),
    output: z.enum(['strip', 'multipart']).default('multipart').openapi({ description: '`multipart`: one part per strength. `strip`: one image, strengths left to right.' }),
  })
  .strict()
  .openapi('EditRequest', { example: { seeds: [42], direction: 0, strengths: { from: -3, to: 3, count: 5 } } });

const DirectionSetSchema = z
  .object({
    name: z.enum(setNames),
    layers: z.array(z.number().int()),
    sources: z.array(z.string()),
    eigenvalues: z.array(z.number()),
  })
  .openapi('DirectionSet');

const binary = z.string().openapi({ type: 'string', format: 'binary' });

export const editRoute = createRoute({
  method: 'post',
  path: '/edit',
  operationId: 'editLatent',
  summary: 'Apply a closed-form semantic direction at several strengths',
  description: 'Multipart parts carry `X-Strength` and `X-Index`. Strength 0 reproduces the /generate image exactly.',
  request: { body: { required: true, content: { 'application/json': { schema: EditRequestSchema } } } },
  responses: {
    200: {
      description: 'The edited images, or a strip',
      content: { 'image/png': { schema: binary }, 'image/webp': { schema: binary }, 'multipart/mixed': { schema: binary } },
    },
    ...problemResponses(400, 401, 404, 406, 413, 415, 422, 429, 500, 503, 504),
  },
});

export const directionsRoute = createRoute({
  method: 'get',
  path: '/models/{name}/directions',
  operationId: 'listDirections',
  summary: "List a model's closed-form direction sets with their eigenvalues",
  request: { params: z.object({ name: ModelNameSchema.openapi({ param: { name: 'name', in: 'path' } }) }) },
  responses: {
    200: { description: 'Direction sets', content: { 'application/json': { schema: z.object({ model: z.string(), w_dim: z.number().int(), sets: z.array(DirectionSetSchema) }) } } },
    ...problemResponses(401, 404, 422),
  },
});

function strengthList(strengths: z.infer<typeof EditRequestSchema>['strengths']): number[] {
  if (Array.isArray(strengths)) return strengths;
  const { from, to, count } = strengths;
  return count === 1 ? [from] : Array.from({ length: count }, (_, i) => from + ((to - from) * i) / (count - 1));
}

export function registerEdit(app: OpenAPIHono<AppEnv>): void {
  app.openapi(directionsRoute, async (c) => {
    const model = requireModel(c, c.req.valid('param').name);
    const sets = await c.get('service').directions(model);
    if (!sets) throw new HttpProblem(404, 'not-found', `model "${model.name}" has no directions; convert it again with this version`);
    const body = sets.map((s) => ({ name: s.name as (typeof setNames)[number], layers: s.layers, sources: s.sources, eigenvalues: s.eigenvalues }));
    return c.json({ model: model.name, w_dim: model.manifest.arch.wDim, sets: body }, 200);
  });

  app.openapi(editRoute, async (c) => {
    const body = c.req.valid('json');
    const model = requireModel(c, body.model);
    const { wDim, numWs, resolution, imgChannels } = model.manifest.arch;
    const settings = c.get('settings');
    // Count first, so a huge range is rejected before anything is allocated.
    const strengthCount = Array.isArray(body.strengths) ? body.strengths.length : body.strengths.count;
    if (strengthCount > settings.maxImagesPerRequest) {
      const pointer = Array.isArray(body.strengths) ? '/strengths' : '/strengths/count';
      throw invalidField(pointer, `at most ${settings.maxImagesPerRequest} strengths (the server's maxImagesPerRequest), got ${strengthCount}`);
    }
    const strengths = strengthList(body.strengths);
    const latentCount = [body.seeds, body.z, body.w, body.ws].reduce((n, list) => n + (list?.length ?? 0), 0);
    if (latentCount !== 1) throw invalidField('', `/edit takes exactly one latent (one seed, z, w or ws), got ${latentCount}`);
    const format = resolveFormat(c, body.format, false) as 'png' | 'webp';
    checkOutputPixels(c, '/strengths', strengths.length * resolution * resolution, `${strengths.length} images of ${resolution}x${resolution}`);

    // The direction: a stored eigenvector or the caller's own vector.
    let direction: Float32Array;
    let defaultLayers: number[];
    if ((body.direction === undefined) === (body.vector === undefined)) {
      throw invalidField('/direction', 'give exactly one of `direction` (an index) or `vector`');
    }
    if (body.vector) {
      if (body.vector.length !== wDim) throw invalidField('/vector', `expected ${wDim} values (the model's wDim), got ${body.vector.length}`);
      direction = Float32Array.from(body.vector);
      defaultLayers = Array.from({ length: numWs }, (_, i) => i);
    } else {
      const sets = await c.get('service').directions(model);
      if (!sets) throw new HttpProblem(404, 'not-found', `model "${model.name}" has no directions; convert it again with this version`);
      const set = sets.find((s) => s.name === body.direction_set);
      if (!set) {
        throw invalidField('/direction_set', `model "${model.name}" has no "${body.direction_set}" set; available: ${sets.map((s) => s.name).join(', ')}`);
      }
      if (body.direction! >= wDim) throw invalidField('/direction', `expected a direction index in [0, ${wDim - 1}], got ${body.direction}`);
      direction = set.vectors.subarray(body.direction! * wDim, (body.direction! + 1) * wDim);
      defaultLayers = set.layers;
    }
    body.layers?.forEach((l, i) => {
      if (l < 0 || l >= numWs) throw invalidField(`/layers/${i}`, `expected a ws index in [0, ${numWs - 1}] (the model has numWs ${numWs}), got ${l}`);
    });
    const layers = body.layers ? [...new Set(body.layers)] : defaultLayers;

    const images = resolveImages(model.manifest, body, body, { max: 1, setting: 'limit of one latent per /edit request' });
    const timeoutMs = resolveTimeoutMs(c, body.timeout_ms);
    const controller = new AbortController();
    const submit = (specs: ImageSpec[]) => submitImages(c, model.name, specs, 'interactive', timeoutMs, controller);

    // Phase 1: the base latent's ws (the route needs it to add the direction).
    let base: ImageResult | undefined;
    try {
      for await (const result of submit([images[0].spec])) base = result;
    } catch (err) {
      throw toHttpProblem(err);
    }
    const edits: ImageSpec[] = strengths.map((strength) => {
      const ws = base!.ws.slice(); // [numWs, wDim]
      for (const l of layers) for (let j = 0; j < wDim; j++) ws[l * wDim + j] += strength * direction[j];
      return { latent: { kind: 'ws', ws }, noiseMode: images[0].spec.noiseMode, noiseSeed: images[0].spec.noiseSeed };
    });
    const results = submit(edits);

    if (body.output === 'multipart') {
      const label = (index: number): Record<string, string> => ({ 'X-Index': String(index), 'X-Strength': String(strengths[index]) });
      return sendImages(c, model.manifest, results, true, { format, quality: body.quality }, label, controller);
    }
    const all = new Array<ImageResult>(edits.length);
    try {
      for await (const result of results) all[result.index] = result;
    } catch (err) {
      throw toHttpProblem(err);
    }
    const strip = composeStrip(imgChannels, resolution, all.map((r) => r.image));
    const bytes = await encodeFloatImage(c, strip.image, strip.height, strip.width, imgChannels, { format, quality: body.quality });
    return c.body(new Uint8Array(bytes), 200, { 'Content-Type': format === 'webp' ? 'image/webp' : 'image/png', 'X-Model': model.name });
  });
}
