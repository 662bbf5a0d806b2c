/**
 * POST /interpolate: latent walks through keyframes, as an animated WebP or GIF, or as a stream of
 * frames (multipart/mixed, NDJSON or SSE) whose first frame is sent before the last is computed.
 * Frame k is exactly the /generate image of the k-th interpolated latent.
 */

import { createRoute, z, type OpenAPIHono } from '@hono/zod-openapi';
import type { Context } from 'hono';
import type { ImageResult, ImageSpec } from '../runtime/contract.js';
import { encodeAnimation } from '../runtime/encode.js';
import { frameCount, framePositions, lerpFrame, PeriodicCubicSpline, slerpFrame } from '../runtime/interpolation.js';
import type { AppEnv } from './env.js';
import { streamFrames, type FrameOutput } from './frame-stream.js';
import { resolveImages, type ResolvedImage } from './latents.js';
import { collectResults, submitImages } from './jobs.js';
import { HttpProblem, invalidField, problemResponses } from './problem.js';
import { requireModel, resolveTimeoutMs } from './request-context.js';
import { latentFields, renderFields } from './schemas.js';

/** Frames computed at interactive priority before the rest of a walk drops to bulk priority. */
const interactiveFrames = 4;

const { format: _format, ...interpolateRenderFields } = renderFields;

export const InterpolateRequestSchema = z
  .object({
    ...latentFields,
    ...interpolateRenderFields,
    space: z.enum(['w', 'z', 'cubic']).default('w').openapi({
      description:
        '`w`: linear in W after truncation. `z`: spherical in Z, then mapped (seeds or z keyframes only). ' +
        '`cubic`: a looping cubic walk through the W keyframes, like the reference gen_video.py (always loops).',
    }),
    frames_per_segment: z.number().int().min(1).default(30).openapi({ description: 'Frames between two keyframes.' }),
    loop: z.boolean().default(false).openapi({ description: 'Return from the last keyframe to the first (always on for `cubic`).' }),
    output: z.enum(['webp', 'gif', 'multipart', 'ndjson', 'sse']).optional().openapi({
      description:
        'Animated `webp` or `gif`, or a frame stream: `multipart` (multipart/mixed), `ndjson` or `sse` (base64 frames). ' +
        'When omitted, the Accept header decides; animated WebP by default.',
    }),
    frame_format: z.enum(['png', 'webp']).default('png').openapi({ description: 'Encoding of each frame in a frame stream.' }),
    delay_ms: z.number().int().min(10).max(65_535).default(40).openapi({ description: 'Display time of each animation frame, in ms.' }),
    loop_count: z.number().int().min(0).max(65_535).default(0).openapi({ description: 'Animation loop count; 0 loops forever.' }),
    include_latents: z.boolean().default(false).openapi({ description: 'NDJSON/SSE only: add each frame\'s ws to its event.' }),
  })
  .strict()
  .openapi('InterpolateRequest', { example: { seeds: [0, 1, 2], space: 'w', frames_per_segment: 8, output: 'webp' } });

const binary = z.string().openapi({ type: 'string', format: 'binary' });

export const FrameEventSchema = z
  .object({
    frame: z.number().int(),
    frames: z.number().int(),
    content_type: z.string(),
    data: z.string().openapi({ description: 'Base64 of the encoded frame' }),
    ws: z.array(z.array(z.number())).optional(),
  })
  .openapi('FrameEvent');

export const interpolateRoute = createRoute({
  method: 'post',
  path: '/interpolate',
  operationId: 'interpolateLatents',
  summary: 'Latent walk through keyframes: animation or a stream of frames',
  description:
    'Streams: multipart parts carry `X-Frame`; NDJSON lines and SSE `frame` events are FrameEvent objects, in frame order. ' +
    'A failure mid-stream ends NDJSON/SSE with an `error` object or event holding a problem body.',
  request: { body: { required: true, content: { 'application/json': { schema: InterpolateRequestSchema } } } },
  responses: {
    200: {
      description: 'The animation or the frame stream',
      content: {
        'image/webp': { schema: binary },
        'image/gif': { schema: binary },
        'multipart/mixed': { schema: binary },
        'application/x-ndjson': { schema: FrameEventSchema },
        'text/event-stream': { schema: z.string() },
      },
    },
    ...problemResponses(400, 401, 404, 406, 413, 415, 422, 429, 500, 503, 504),
  },
});

type InterpolateRequest = z.infer<typeof InterpolateRequestSchema>;

function chooseOutput(c: Context<AppEnv>, output: InterpolateRequest['output']): FrameOutput | 'webp' | 'gif' {
  if (output) return output;
  const accept = (c.req.header('accept') ?? '').toLowerCase();
  if (accept.includes('text/event-stream')) return 'sse';
  if (accept.includes('application/x-ndjson')) return 'ndjson';
  if (accept.includes('multipart/mixed')) return 'multipart';
  if (accept.includes('image/gif') && !accept.includes('image/webp')) return 'gif';
  return 'webp';
}

/** Frames per bulk chunk; two chunks are queued at a time so the worker never idles. */
const bulkChunkFrames = 8;
/** Pause before resubmitting a chunk that found the queue full, in ms. */
const queueFullRetryMs = 50;

/**
 * Submits the frames in chunks (the first `interactiveFrames` at interactive priority, the rest in
 * bulk chunks of `bulkChunkFrames`) with at most two chunks queued, and yields every result with
 * its frame index. A long walk therefore never holds more than two chunks of the shared queue, and
 * a later chunk that finds the queue full waits and retries until the deadline.
 */
async function startChunkedFrames(
  c: Context<AppEnv>,
  model: string,
  frames: ImageSpec[],
  timeoutMs: number,
  controller: AbortController,
): Promise<AsyncGenerator<ImageResult>> {
  const deadline = Date.now() + timeoutMs;
  const starts = [0];
  for (let start = interactiveFrames; start < frames.length; start += bulkChunkFrames) starts.push(start);
  const queued: { offset: number; results: AsyncIterable<ImageResult> }[] = [];
  let next = 0;

  const submitNext = async () => {
    const offset = starts[next];
    const end = starts[next + 1] ?? frames.length;
    const priority = next === 0 ? 'interactive' : 'bulk';
    next++;
    for (;;) {
      try {
        const remaining = Math.max(1, deadline - Date.now());
        queued.push({ offset, results: submitImages(c, model, frames.slice(offset, end), priority, remaining, controller) });
        return;
      } catch (err) {
        // The first chunk fails fast (429 before any header is sent); later ones wait for room.
        const full = err instanceof HttpProblem && err.status === 429;
        if (!full || offset === 0 || controller.signal.aborted || Date.now() + queueFullRetryMs > deadline) throw err;
        await new Promise((resolve) => setTimeout(resolve, queueFullRetryMs));
      }
    }
  };

  // Submitted before returning, so a full queue or a draining server fails before any header is sent.
  await submitNext();
  if (next < starts.length) await submitNext();
  return (async function* drainChunks() {
    while (queued.length > 0) {
      const { offset, results } = queued.shift()!;
      for await (const result of results) yield { ...result, index: result.index + offset };
      if (next < starts.length) await submitNext();
    }
  })();
}

export function registerInterpolate(app: OpenAPIHono<AppEnv>): void {
  app.openapi(interpolateRoute, async (c) => {
    const body = c.req.valid('json');
    const model = requireModel(c, body.model);
    const { manifest } = model;
    const settings = c.get('settings');
    const { resolution } = manifest.arch;

    const keyframes: ResolvedImage[] = resolveImages(manifest, body, body, { max: settings.maxFrames, setting: 'maxFrames' });
    if (keyframes.length < 2) throw invalidField('/seeds', `an interpolation needs at least 2 keyframes, got ${keyframes.length}`);
    if (body.space === 'z' && keyframes.some((k) => k.spec.latent.kind !== 'z')) {
      throw invalidField('/space', 'space "z" interpolates z vectors: give seeds or z keyframes, or use space "w"');
    }
    const loop = body.space === 'cubic' ? true : body.loop;
    const total = frameCount(keyframes.length, body.frames_per_segment, loop);
    if (total > settings.maxFrames) {
      throw invalidField('/frames_per_segment', `${total} frames requested, over the server's maxFrames ${settings.maxFrames}`);
    }
    if (total * resolution * resolution > settings.maxOutputPixels) {
      throw invalidField(
        '/frames_per_segment',
        `${total} frames of ${resolution}x${resolution} exceed the server's maxOutputPixels ${settings.maxOutputPixels}`,
      );
    }
    const output = chooseOutput(c, body.output);
    if (body.include_latents && output !== 'ndjson' && output !== 'sse') {
      throw invalidField('/include_latents', 'include_latents needs output "ndjson" or "sse"');
    }
    const timeoutMs = resolveTimeoutMs(c, body.timeout_ms);
    const controller = new AbortController();
    const positions = framePositions(keyframes.length, body.frames_per_segment, loop);
    const noise = { noiseMode: body.noise_mode, noiseSeed: keyframes[0].spec.noiseSeed };

    // Frame latents: Z walks map every frame; W walks first map the keyframes once.
    let frames: ImageSpec[];
    if (body.space === 'z') {
      const zs = keyframes.map((k) => (k.spec.latent.kind === 'z' ? k.spec.latent.z : new Float32Array()));
      const base = keyframes[0].spec.latent;
      frames = positions.map((p) => ({ ...noise, latent: { ...base, z: slerpFrame(zs, p) } as ImageSpec['latent'] }));
    } else {
      const mapped = await collectResults(submitImages(c, model.name, keyframes.map((k) => k.spec), 'interactive', timeoutMs, controller), keyframes.length);
      const ws = mapped.map((r) => r.ws); // each [numWs, wDim]
      const spline = body.space === 'cubic' ? new PeriodicCubicSpline(ws) : undefined;
      frames = positions.map((p) => ({ ...noise, latent: { kind: 'ws', ws: spline ? spline.at(p.position) : lerpFrame(ws, p) } }));
    }

    const results = await startChunkedFrames(c, model.name, frames, timeoutMs, controller);

    if (output === 'webp' || output === 'gif') {
      const all = await collectResults(results, frames.length);
      const bytes = await encodeAnimation(
        all.map((r) => r.image),
        { channels: manifest.arch.imgChannels, height: resolution, width: resolution },
        {
          format: output,
          delayMs: body.delay_ms,
          loop: body.loop_count,
          quality: body.quality,
          lossless: body.quality === undefined,
          effort: output === 'webp' ? settings.webpEffort : undefined,
        },
      );
      return c.body(new Uint8Array(bytes), 200, {
        'Content-Type': output === 'webp' ? 'image/webp' : 'image/gif',
        'X-Model': model.name,
        'X-Frames': String(frames.length),
      });
    }
    return streamFrames(c, manifest, results, frames.length, {
      output,
      frameFormat: body.frame_format,
      quality: body.quality,
      includeLatents: body.include_latents,
      controller,
    });
  });
}
