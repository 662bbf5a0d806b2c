/**
 * POST /mix: style mixing like the reference `style_mixing.py`. Each row keeps its own ws except
 * the indices in `styles`, which come from the column. Output is one grid image (first row the
 * column images, first column the row images, black top-left cell) or a multipart stream of the
 * row×column images.
 */

import { createRoute, z, type OpenAPIHono } from '@hono/zod-openapi';
import type { ImageSpec } from '../runtime/contract.js';
import { mixStyles } from '../runtime/latent-math.js';
import type { AppEnv } from './env.js';
import { encodeFloatImage, sendImages } from './image-response.js';
import { resolveImages, type LatentRequest, type ResolvedImage } from './latents.js';
import { collectResults, submitImages } from './jobs.js';
import { HttpProblem, invalidField, problemResponses } from './problem.js';
import { checkOutputPixels, requireModel, resolveFormat, resolveTimeoutMs } from './request-context.js';
import { toHttpProblem } from './runtime-errors.js';
import { latentFields, renderFields } from './schemas.js';
import { composeGrid } from './grid.js';
import { resolveStyles } from './style-ranges.js';

const LatentGroupSchema = z.object(latentFields).strict().openapi('LatentGroup', {
  description: 'Exactly one of seeds, z, w or ws.',
  example: { seeds: [0, 1] },
});

export const MixRequestSchema = z
  .object({
    rows: LatentGroupSchema.openapi({ description: 'Row latents: they keep every ws layer not listed in `styles`.' }),
    cols: LatentGroupSchema.openapi({ description: 'Column latents: they donate the ws layers listed in `styles`.' }),
    styles: z
      .array(z.union([z.number().int(), z.enum(['coarse', 'middle', 'fine'])]))
      .min(1)
      .max(1024)
      .default(['coarse'])
      .openapi({
        description:
          'ws indices taken from the column, and/or named ranges: coarse (4²–8² layers), middle (16²–32²), fine (64² and up).',
        example: [0, 1, 2, 3],
      }),
    output: z
      .enum(['grid', 'multipart'])
      .default('grid')
      .openapi({ description: '`grid`: one image like the reference grid.png. `multipart`: one part per row×column image.' }),
    ...renderFields,
  })
  .strict()
  .openapi('MixRequest', { example: { rows: { seeds: [0, 1] }, cols: { seeds: [42, 85] }, styles: ['coarse'], psi: 0.7 } });

const binary = z.string().openapi({ type: 'string', format: 'binary' });

export const mixRoute = createRoute({
  method: 'post',
  path: '/mix',
  operationId: 'mixStyles',
  summary: 'Style mixing: rows × columns, columns donating the chosen ws layers',
  description:
    'Multipart parts carry `X-Row` and `X-Col` (indices) and, for seeds, `X-Row-Seed` and `X-Col-Seed`. ' +
    'Truncation applies to every row and column latent before mixing, as in the reference tool.',
  request: { body: { required: true, content: { 'application/json': { schema: MixRequestSchema } } } },
  responses: {
    200: {
      description: 'Grid image, or a multipart/mixed stream of the mixed images',
      content: { 'image/png': { schema: binary }, 'image/webp': { schema: binary }, 'multipart/mixed': { schema: binary } },
    },
    ...problemResponses(400, 401, 404, 406, 413, 415, 422, 429, 500, 503, 504),
  },
});

export function registerMix(app: OpenAPIHono<AppEnv>): void {
  app.openapi(mixRoute, async (c) => {
    const body = c.req.valid('json');
    const model = requireModel(c, body.model);
    const { manifest } = model;
    const { wDim, numWs, resolution } = manifest.arch;
    const styles = resolveStyles(body.styles, numWs);
    const maxCells = c.get('settings').maxGridCells;

    // Latent errors are reported inside rows or cols; label and cutoff errors stay top-level fields.
    const resolveGroup = (group: LatentRequest, pointer: string): ResolvedImage[] => {
      try {
        return resolveImages(manifest, group, body, { max: maxCells, setting: 'maxGridCells' });
      } catch (err) {
        const problem = toHttpProblem(err);
        const latentError = problem.errors?.length === 1 && /^\/(seeds|z|w|ws)(\/|$)|^$/.test(problem.errors[0].pointer);
        if (!latentError) throw problem;
        const inner = problem.errors![0];
        const field = (pointer + inner.pointer).slice(1).replaceAll('/', '.');
        throw new HttpProblem(problem.status, problem.kind, `${field}: ${inner.message}`, {
          errors: [{ ...inner, pointer: pointer + inner.pointer }],
        });
      }
    };
    const rows = resolveGroup(body.rows, '/rows');
    const cols = resolveGroup(body.cols, '/cols');
    const cells = rows.length * cols.length;
    if (cells > maxCells) {
      throw invalidField('/cols', `rows × cols is ${rows.length} × ${cols.length} = ${cells} images, over the server's maxGridCells ${maxCells}`);
    }
    const format = resolveFormat(c, body.format, false) as 'png' | 'webp';
    const outputCells = body.output === 'grid' ? (rows.length + 1) * (cols.length + 1) : cells;
    checkOutputPixels(c, '/cols', outputCells * resolution * resolution, `the ${body.output} output (${outputCells} images of ${resolution}x${resolution})`);
    const timeoutMs = resolveTimeoutMs(c, body.timeout_ms);
    const controller = new AbortController();

    // Phase 1: the rows' and columns' own images, which also give their truncated ws.
    const originals = [...rows, ...cols];
    const own = await collectResults(submitImages(c, model.name, originals.map((o) => o.spec), 'interactive', timeoutMs, controller), originals.length);

    // Phase 2: every row × column mix, noise as the row's.
    const mixes: ImageSpec[] = [];
    for (let r = 0; r < rows.length; r++) {
      for (let k = 0; k < cols.length; k++) {
        const ws = mixStyles(own[r].ws, own[rows.length + k].ws, styles, wDim); // [numWs, wDim]
        mixes.push({ latent: { kind: 'ws', ws }, noiseMode: rows[r].spec.noiseMode, noiseSeed: rows[r].spec.noiseSeed });
      }
    }
    const results = submitImages(c, model.name, mixes, 'interactive', timeoutMs, controller);

    if (body.output === 'multipart') {
      const label = (index: number): Record<string, string> => {
        const r = Math.floor(index / cols.length);
        const k = index % cols.length;
        const headers: Record<string, string> = { 'X-Row': String(r), 'X-Col': String(k) };
        if (rows[r].seed !== undefined) headers['X-Row-Seed'] = String(rows[r].seed);
        if (cols[k].seed !== undefined) headers['X-Col-Seed'] = String(cols[k].seed);
        return headers;
      };
      return sendImages(c, manifest, results, true, { format, quality: body.quality }, label, controller);
    }

    const mixed = await collectResults(results, mixes.length);
    const grid = composeGrid(
      manifest.arch.imgChannels,
      resolution,
      rows.length,
      cols.length,
      (r) => own[r].image,
      (k) => own[rows.length + k].image,
      (r, k) => mixed[r * cols.length + k].image,
    );
    const bytes = await encodeFloatImage(c, grid.image, grid.height, grid.width, manifest.arch.imgChannels, { format, quality: body.quality });
    return c.body(new Uint8Array(bytes), 200, {
      'Content-Type': format === 'webp' ? 'image/webp' : 'image/png',
      'X-Model': model.name,
      'X-Grid': `${rows.length + 1}x${cols.length + 1}`,
    });
  });
}
