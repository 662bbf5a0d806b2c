/**
 * POST /project: finds latents that reproduce an uploaded image (see src/runtime/projector.ts),
 * streaming progress as server-sent events, or as an async job polled with GET /project/jobs/{id}
 * and cancelled with DELETE /project/jobs/{id}.
 */

import { createRoute, z, type OpenAPIHono } from '@hono/zod-openapi';
import type { Context, MiddlewareHandler } from 'hono';
import { bodyLimit } from 'hono/body-limit';
import { streamSSE } from 'hono/streaming';
import { project, WStatisticsCache, type ProjectionContext, type ProjectionProgress } from '../runtime/projector.js';
import { ProjectionJobStore, type ProjectionJob } from '../runtime/projector-jobs.js';
import type { AppEnv, ImageService } from './env.js';
import { HttpProblem, problemResponses, problemBody } from './problem.js';
import { previewPng, ProjectFormSchema, projectionResultBody, projectionSettings, ProjectQuerySchema, decodeTarget, resolveProjectOptions, type ResolvedProjectOptions } from './project-request.js';
import { requireModel } from './request-context.js';
import { toHttpProblem } from './runtime-errors.js';

type ResultBody = Awaited<ReturnType<typeof projectionResultBody>>;

/** Job store and w statistics per service instance (one per app). */
const states = new WeakMap<ImageService, { jobs: ProjectionJobStore<ResultBody>; stats: WStatisticsCache }>();

function stateOf(c: Context<AppEnv>) {
  const service = c.get('service');
  let state = states.get(service);
  if (!state) {
    state = {
      jobs: new ProjectionJobStore<ResultBody>(() => {
        const settings = projectionSettings(c);
        return { maxJobs: settings.maxProjectJobs, ttlMs: settings.projectJobTtlMs };
      }),
      stats: new WStatisticsCache(),
    };
    states.set(service, state);
  }
  return state;
}

/** Content types of the target upload. */
const imageMediaTypes = ['image/png', 'image/jpeg', 'image/webp'];

/** Rejects a missing or unsupported Content-Type with 415 before the body is read. */
const requireUploadType: MiddlewareHandler<AppEnv> = async (c, next) => {
  const type = (c.req.header('content-type') ?? '').split(';')[0].trim().toLowerCase();
  if (type !== 'multipart/form-data' && !imageMediaTypes.includes(type)) {
    throw new HttpProblem(415, 'unsupported-media-type', `Content-Type ${type || '(none)'} is not accepted; send multipart/form-data with an "image" field, or a raw ${imageMediaTypes.join(', ')} body`);
  }
  await next();
};

/** Upload size limit: 413 from Content-Length before reading, or as soon as a streamed body passes it. */
const limitUpload: MiddlewareHandler<AppEnv> = async (c, next) => {
  const maxSize = projectionSettings(c).maxUploadBytes;
  const limit = bodyLimit({
    maxSize,
    onError: () => {
      throw new HttpProblem(413, 'payload-too-large', `the upload exceeds ${maxSize} bytes (the server's max-upload-bytes); send a smaller image`);
    },
  });
  return limit(c, next);
};

const binary = z.string().openapi({ type: 'string', format: 'binary' });

const JobSchema = z
  .object({
    id: z.string(),
    model: z.string(),
    status: z.enum(['running', 'succeeded', 'failed', 'cancelled']),
    created_at: z.string(),
    finished_at: z.string().optional(),
    step: z.number().int(),
    steps: z.number().int(),
    loss: z.number().optional(),
    preview_png: z.string().optional(),
    result: z.record(z.string(), z.unknown()).optional().openapi({ description: 'The result, as in the SSE `result` event, once status is succeeded.' }),
    error: z.object({ status: z.number().int(), detail: z.string() }).optional(),
  })
  .openapi('ProjectionJob');

export const projectRoute = createRoute({
  method: 'post',
  path: '/project',
  operationId: 'projectImage',
  summary: 'Project an image into the latent space',
  description:
    'Optimises w (or one w per layer) so that the generator reproduces the target: Adam with the stylegan2-ada-pytorch ' +
    'projector schedule, starting from the mean of 10,000 mapped latents. The target is the `image` field of a ' +
    'multipart form, or the raw body with Content-Type image/png, image/jpeg or image/webp and the options in the query. ' +
    'Pre-processing: EXIF orientation applied, centre crop to a square, Lanczos resize to the model resolution, alpha ' +
    'flattened onto white, greyscale converted to RGB. Response: a `text/event-stream` of `progress` events ' +
    '(`{step, steps, loss, total_loss, learning_rate, preview_png?}`) ending with one `result` event (ws, w, final ' +
    'image as base64 PNG, loss name, PSNR in dB) or an `error` event (problem details). With `async=true`: 202 and a job.',
  middleware: [requireUploadType, limitUpload] as const,
  request: {
    query: ProjectQuerySchema,
    // Not `required`: @hono/zod-openapi would then run the form validator on raw image bodies too.
    // requireUploadType and decodeTarget reject a missing or empty body instead.
    body: {
      content: {
        'multipart/form-data': { schema: ProjectFormSchema },
        'image/png': { schema: binary },
        'image/jpeg': { schema: binary },
        'image/webp': { schema: binary },
      },
    },
  },
  responses: {
    200: { description: 'Server-sent events: progress, then result (or error)', content: { 'text/event-stream': { schema: z.string() } } },
    202: { description: 'Async job accepted; poll the Location', content: { 'application/json': { schema: JobSchema } } },
    ...problemResponses(400, 401, 404, 413, 415, 422, 429, 500, 503),
  },
});

const jobParams = z.object({ id: z.string().uuid().openapi({ param: { name: 'id', in: 'path' }, example: '2f6f1f7e-2b1a-4c8e-9f3e-0d6f3b8f2a11' }) });

const getJobRoute = createRoute({
  method: 'get',
  path: '/project/jobs/{id}',
  operationId: 'getProjectionJob',
  summary: 'Status, progress and result of an async projection',
  request: { params: jobParams },
  responses: { 200: { description: 'The job', content: { 'application/json': { schema: JobSchema } } }, ...problemResponses(401, 404, 422) },
});

const deleteJobRoute = createRoute({
  method: 'delete',
  path: '/project/jobs/{id}',
  operationId: 'cancelProjectionJob',
  summary: 'Cancel a running projection (it stops within one step) or delete a finished one',
  request: { params: jobParams },
  responses: { 200: { description: 'The job after cancellation', content: { 'application/json': { schema: JobSchema } } }, ...problemResponses(401, 404, 422) },
});

interface JobExtras {
  preview?: string;
}

function jobBody(job: ProjectionJob<ResultBody> & JobExtras): z.infer<typeof JobSchema> {
  return {
    id: job.id,
    model: job.model,
    status: job.status,
    created_at: job.createdAt,
    ...(job.finishedAt ? { finished_at: job.finishedAt } : {}),
    step: job.step,
    steps: job.steps,
    ...(job.loss !== undefined ? { loss: job.loss } : {}),
    ...(job.preview ? { preview_png: job.preview } : {}),
    ...(job.result ? { result: job.result } : {}),
    ...(job.error ? { error: job.error } : {}),
  };
}

function progressBody(progress: ProjectionProgress, preview: string | undefined) {
  return {
    step: progress.step,
    steps: progress.steps,
    loss: progress.loss,
    total_loss: progress.totalLoss,
    learning_rate: progress.learningRate,
    ...(preview ? { preview_png: preview } : {}),
  };
}

/** Reads the options (query, then form fields) and the upload bytes. */
async function readRequest(c: Context<AppEnv>, query: z.output<typeof ProjectQuerySchema>): Promise<{ options: ResolvedProjectOptions; bytes: Uint8Array }> {
  const isForm = (c.req.header('content-type') ?? '').toLowerCase().startsWith('multipart/form-data');
  let fields = query;
  let bytes: Uint8Array;
  if (isForm) {
    const form = (c.req.valid as (target: 'form') => z.output<typeof ProjectFormSchema>)('form');
    const { image, ...formFields } = form;
    fields = { ...query, ...Object.fromEntries(Object.entries(formFields).filter(([, value]) => value !== undefined)) };
    bytes = new Uint8Array(await image.arrayBuffer());
  } else {
    bytes = new Uint8Array(await c.req.arrayBuffer());
  }
  const model = requireModel(c, fields.model);
  return { options: resolveProjectOptions(c, model.manifest, fields), bytes };
}

export function registerProject(app: OpenAPIHono<AppEnv>): void {
  app.openapi(projectRoute, async (c) => {
    const { options, bytes } = await readRequest(c, c.req.valid('query'));
    const { manifest } = options;
    const { decoded, target } = await decodeTarget(c, bytes, manifest);
    const state = stateOf(c);
    const service = c.get('service');
    const started = performance.now();
    const log = c.get('log');
    const projectionOptions = { steps: options.steps, mode: options.mode, loss: options.loss, seed: options.seed, label: options.label, optimizeNoise: options.optimizeNoise, previewEvery: options.previewEvery };

    if (options.async) {
      let job: ProjectionJob<ResultBody> & JobExtras;
      try {
        job = state.jobs.start(
          manifest.name,
          options.steps,
          async (running) => {
            const context: ProjectionContext = {
              requestId: `${c.get('requestId')}/${running.id}`,
              admittedAtMs: c.get('admittedAtMs'),
              signal: running.controller.signal,
              deadlineMs: Number.POSITIVE_INFINITY,
              onProgress: async (progress) => {
                running.step = progress.step;
                running.loss = progress.loss;
                if (progress.preview) (running as JobExtras).preview = await previewPng(c, progress.preview, manifest);
              },
            };
            const result = await project(service, state.stats, manifest, target, projectionOptions, context);
            return projectionResultBody(c, options, decoded, target, result, performance.now() - started);
          },
          (err) => {
            const problem = toHttpProblem(err);
            if (problem.status >= 500) log.error({ err }, 'projection job failed');
            return { status: problem.status, detail: problem.message };
          },
        );
      } catch (err) {
        throw toHttpProblem(err);
      }
      return c.json(jobBody(job), 202, { Location: `/project/jobs/${job.id}` });
    }

    let release: () => void;
    try {
      release = state.jobs.acquire();
    } catch (err) {
      throw toHttpProblem(err);
    }
    const controller = new AbortController();
    const clientSignal = c.req.raw.signal;
    clientSignal.addEventListener('abort', () => controller.abort(), { once: true });
    c.header('X-Model', manifest.name);
    return streamSSE(c, async (out) => {
      out.onAbort(() => controller.abort());
      try {
        const context: ProjectionContext = {
          requestId: c.get('requestId'),
          admittedAtMs: c.get('admittedAtMs'),
          signal: controller.signal,
          deadlineMs: Number.POSITIVE_INFINITY,
          onProgress: async (progress) => {
            if (out.aborted) return;
            const preview = progress.preview ? await previewPng(c, progress.preview, manifest) : undefined;
            await out.writeSSE({ event: 'progress', id: String(progress.step), data: JSON.stringify(progressBody(progress, preview)) });
          },
        };
        const result = await project(service, state.stats, manifest, target, projectionOptions, context);
        const body = await projectionResultBody(c, options, decoded, target, result, performance.now() - started);
        if (!out.aborted) await out.writeSSE({ event: 'result', data: JSON.stringify(body) });
      } catch (err) {
        const problem = toHttpProblem(err);
        if (problem.status === 500) log.error({ err }, 'projection failed');
        else log.info({ status: problem.status, detail: problem.message }, 'projection ended early');
        if (!out.aborted) await out.writeSSE({ event: 'error', data: JSON.stringify(problemBody(c, problem)) });
      } finally {
        controller.abort();
        release();
      }
    });
  });

  app.openapi(getJobRoute, (c) => {
    const { id } = c.req.valid('param');
    const job = stateOf(c).jobs.get(id);
    if (!job) throw new HttpProblem(404, 'not-found', `projection job ${id} not found; it never existed or expired`);
    return c.json(jobBody(job), 200);
  });

  app.openapi(deleteJobRoute, async (c) => {
    const { id } = c.req.valid('param');
    const job = await stateOf(c).jobs.cancel(id);
    if (!job) throw new HttpProblem(404, 'not-found', `projection job ${id} not found; it never existed or expired`);
    return c.json(jobBody(job), 200);
  });
}
