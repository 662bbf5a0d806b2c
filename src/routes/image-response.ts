/**
 * Sends the images of one job: a single image as the response body, several as a streamed
 * `multipart/mixed` response with one part per image, written as soon as it is encoded.
 */

import { randomUUID } from 'node:crypto';
import type { Context } from 'hono';
import { stream } from 'hono/streaming';
import type { ModelManifest } from '../graph/model-manifest.js';
import type { ImageResult } from '../runtime/contract.js';
import { encodeImage } from '../runtime/encode.js';
import type { AppEnv } from './env.js';
import { HttpProblem, problemBody } from './problem.js';
import type { OutputFormat } from './request-context.js';
import { toHttpProblem } from './runtime-errors.js';

export interface EncodeSettings {
  format: OutputFormat;
  quality?: number;
  /** Receives the bytes and headers of a single-image response (for the response cache). */
  onSingleImage?: (bytes: Uint8Array, headers: Record<string, string>) => void;
}

/** Per-image headers: which seed (or index) an image is. */
export type ImageLabeler = (index: number) => Record<string, string>;

const mediaTypes = { png: 'image/png', webp: 'image/webp', raw: 'application/octet-stream' } as const;

/** Encodes a float `[channels, height, width]` image as PNG or WebP with the server's encoder settings. */
export async function encodeFloatImage(
  c: Context<AppEnv>,
  image: Float32Array,
  height: number,
  width: number,
  channels: number,
  settings: { format: 'png' | 'webp'; quality?: number },
): Promise<Uint8Array> {
  return encodeImage(image, { channels, height, width }, {
    format: settings.format,
    quality: settings.quality,
    lossless: settings.quality === undefined,
    pngCompressionLevel: c.get('settings').pngCompressionLevel,
    webpEffort: c.get('settings').webpEffort,
  });
}

async function encode(c: Context<AppEnv>, manifest: ModelManifest, result: ImageResult, settings: EncodeSettings) {
  const { resolution, imgChannels } = manifest.arch;
  const started = performance.now();
  if (settings.format === 'raw') {
    const raw = new Uint8Array(result.image.buffer, result.image.byteOffset, result.image.byteLength);
    return { bytes: raw, encodeMs: performance.now() - started };
  }
  const bytes = await encodeFloatImage(c, result.image, resolution, resolution, imgChannels, {
    format: settings.format,
    quality: settings.quality,
  });
  return { bytes, encodeMs: performance.now() - started };
}

function serverTiming(result: ImageResult, encodeMs: number): string {
  const f = (ms: number) => ms.toFixed(1);
  return `queue;dur=${f(result.timings.queueMs)}, inference;dur=${f(result.timings.inferenceMs)}, encode;dur=${f(encodeMs)}`;
}

/**
 * Sends the job's image as the response body, or with `multipart` every image as a part. Waits for
 * the first image before sending headers, so a job that fails early (deadline, cancellation, bad
 * input found by the worker) still gets a proper problem+json status.
 */
export async function sendImages(
  c: Context<AppEnv>,
  manifest: ModelManifest,
  results: AsyncIterable<ImageResult>,
  multipart: boolean,
  settings: EncodeSettings,
  label: ImageLabeler,
  controller: AbortController,
  headers: Record<string, string> = {},
): Promise<Response> {
  const iterator = results[Symbol.asyncIterator]();
  let first: IteratorResult<ImageResult>;
  try {
    first = await iterator.next();
  } catch (err) {
    throw toHttpProblem(err);
  }
  if (first.done) throw new HttpProblem(500, 'internal', 'the job ended without producing an image; this is a bug');
  const contentType = mediaTypes[settings.format];
  const { resolution, imgChannels } = manifest.arch;
  const common: Record<string, string> = { 'X-Model': manifest.name, 'X-Request-Id': c.get('requestId'), ...headers };
  if (settings.format === 'raw') {
    common['X-Tensor-Shape'] = `${imgChannels},${resolution},${resolution}`;
    common['X-Tensor-Dtype'] = 'float32';
  }

  if (!multipart) {
    const { bytes, encodeMs } = await encode(c, manifest, first.value, settings);
    const body = new Uint8Array(bytes);
    const imageHeaders = { 'Content-Type': contentType, ...headers, ...label(first.value.index) };
    settings.onSingleImage?.(body, imageHeaders);
    return c.body(body, 200, {
      'Server-Timing': serverTiming(first.value, encodeMs),
      ...common,
      ...imageHeaders,
    });
  }

  const boundary = `sgserve-${randomUUID()}`;
  c.header('Content-Type', `multipart/mixed; boundary=${boundary}`);
  for (const [key, value] of Object.entries(common)) c.header(key, value);
  return stream(
    c,
    async (out) => {
      out.onAbort(() => controller.abort());
      const writePart = async (headers: Record<string, string>, body: Uint8Array) => {
        const head = Object.entries(headers).map(([k, v]) => `${k}: ${v}\r\n`).join('');
        await out.write(`--${boundary}\r\n${head}Content-Length: ${body.byteLength}\r\n\r\n`);
        await out.write(body);
        await out.write('\r\n');
      };
      let next: IteratorResult<ImageResult> = first;
      try {
        while (!next.done && !out.aborted) {
          const { bytes, encodeMs } = await encode(c, manifest, next.value, settings);
          await writePart(
            { 'Content-Type': contentType, 'Server-Timing': serverTiming(next.value, encodeMs), ...label(next.value.index) },
            new Uint8Array(bytes),
          );
          next = await iterator.next();
        }
      } catch (err) {
        // Headers are gone, so a failure mid-stream becomes a final problem+json part.
        const problem = toHttpProblem(err);
        const body = JSON.stringify(problemBody(c, problem));
        if (!out.aborted) await writePart({ 'Content-Type': 'application/problem+json' }, new TextEncoder().encode(body));
        c.get('log').warn({ err }, 'image stream ended early');
      }
      if (!out.aborted) await out.write(`--${boundary}--\r\n`);
    },
    async (err) => {
      controller.abort();
      c.get('log').error({ err }, 'image stream failed');
    },
  );
}
