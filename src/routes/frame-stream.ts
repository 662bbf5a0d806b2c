/**
 * Streams interpolation frames in frame order as multipart/mixed parts, NDJSON lines or SSE events.
 * Results can finish out of order (two jobs, several batches), so early ones wait in a buffer until
 * every earlier frame has been sent. A client that goes away aborts the jobs at once.
 */

import { randomUUID } from 'node:crypto';
import type { Context } from 'hono';
import { stream, streamSSE } from 'hono/streaming';
import type { ModelManifest } from '../graph/model-manifest.js';
import type { ImageResult } from '../runtime/contract.js';
import type { AppEnv } from './env.js';
import { encodeFloatImage } from './image-response.js';
import { problemBody } from './problem.js';
import { toHttpProblem } from './runtime-errors.js';

export type FrameOutput = 'multipart' | 'ndjson' | 'sse';

export interface FrameStreamOptions {
  output: FrameOutput;
  frameFormat: 'png' | 'webp';
  quality?: number;
  includeLatents: boolean;
  controller: AbortController;
}

/** Yields results in index order 0, 1, 2, ... however they arrive. */
async function* inOrder(results: AsyncIterable<ImageResult>): AsyncGenerator<ImageResult> {
  const waiting = new Map<number, ImageResult>();
  let next = 0;
  for await (const result of results) {
    waiting.set(result.index, result);
    while (waiting.has(next)) {
      yield waiting.get(next)!;
      waiting.delete(next);
      next++;
    }
  }
}

function wsRows(ws: Float32Array, wDim: number): number[][] {
  const rows: number[][] = [];
  for (let offset = 0; offset < ws.length; offset += wDim) rows.push(Array.from(ws.subarray(offset, offset + wDim)));
  return rows;
}

export function streamFrames(
  c: Context<AppEnv>,
  manifest: ModelManifest,
  results: AsyncIterable<ImageResult>,
  total: number,
  options: FrameStreamOptions,
): Response {
  const { resolution, imgChannels, wDim } = manifest.arch;
  const contentType = options.frameFormat === 'webp' ? 'image/webp' : 'image/png';
  const log = c.get('log');
  const encodeFrame = (result: ImageResult) =>
    encodeFloatImage(c, result.image, resolution, resolution, imgChannels, { format: options.frameFormat, quality: options.quality });
  const event = async (result: ImageResult) => ({
    frame: result.index,
    frames: total,
    content_type: contentType,
    data: Buffer.from(await encodeFrame(result)).toString('base64'),
    ...(options.includeLatents ? { ws: wsRows(result.ws, wDim) } : {}),
  });
  const errorBody = (err: unknown) => problemBody(c, toHttpProblem(err));
  c.header('X-Model', manifest.name);
  c.header('X-Frames', String(total));

  if (options.output === 'sse') {
    return streamSSE(c, async (out) => {
      out.onAbort(() => options.controller.abort());
      try {
        for await (const result of inOrder(results)) {
          if (out.aborted) break;
          await out.writeSSE({ event: 'frame', id: String(result.index), data: JSON.stringify(await event(result)) });
        }
        if (!out.aborted) await out.writeSSE({ event: 'end', data: JSON.stringify({ frames: total }) });
      } catch (err) {
        log.warn({ err }, 'frame stream ended early');
        if (!out.aborted) await out.writeSSE({ event: 'error', data: JSON.stringify(errorBody(err)) });
      }
    });
  }

  if (options.output === 'ndjson') {
    c.header('Content-Type', 'application/x-ndjson');
    return stream(c, async (out) => {
      out.onAbort(() => options.controller.abort());
      try {
        for await (const result of inOrder(results)) {
          if (out.aborted) break;
          await out.write(JSON.stringify(await event(result)) + '\n');
        }
      } catch (err) {
        log.warn({ err }, 'frame stream ended early');
        if (!out.aborted) await out.write(JSON.stringify({ error: errorBody(err) }) + '\n');
      }
    });
  }

  const boundary = `sgserve-${randomUUID()}`;
  c.header('Content-Type', `multipart/mixed; boundary=${boundary}`);
  return stream(c, async (out) => {
    out.onAbort(() => options.controller.abort());
    const writePart = async (headers: Record<string, string>, body: Uint8Array) => {
      const head = Object.entries(headers).map(([k, v]) => `${k}: ${v}\r\n`).join('');
      await out.write(`--${boundary}\r\n${head}Content-Length: ${body.byteLength}\r\n\r\n`);
      await out.write(body);
      await out.write('\r\n');
    };
    try {
      for await (const result of inOrder(results)) {
        if (out.aborted) break;
        await writePart({ 'Content-Type': contentType, 'X-Frame': String(result.index) }, new Uint8Array(await encodeFrame(result)));
      }
    } catch (err) {
      log.warn({ err }, 'frame stream ended early');
      if (!out.aborted) await writePart({ 'Content-Type': 'application/problem+json' }, Buffer.from(JSON.stringify(errorBody(err))));
    }
    if (!out.aborted) await out.write(`--${boundary}--\r\n`);
  });
}
