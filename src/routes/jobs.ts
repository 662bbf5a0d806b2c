/**
 * Submitting runtime jobs from a route and collecting their results, with runtime errors turned
 * into HTTP problems. Shared by the routes that run several jobs per request.
 */

import type { Context } from 'hono';
import type { ImageResult, ImageSpec, Priority } from '../runtime/contract.js';
import type { AppEnv } from './env.js';
import { jobOptions } from './request-context.js';
import { toHttpProblem } from './runtime-errors.js';

/** Queues `specs` for `model`; a full queue, draining server or bad input throws its HTTP problem. */
export function submitImages(
  c: Context<AppEnv>,
  model: string,
  specs: ImageSpec[],
  priority: Priority,
  timeoutMs: number,
  controller: AbortController,
): AsyncIterable<ImageResult> {
  try {
    return c.get('service').generate(model, specs, jobOptions(c, timeoutMs, priority, controller));
  } catch (err) {
    throw toHttpProblem(err);
  }
}

/** Reads every result of a job into an array by index; a failed job throws its HTTP problem. */
export async function collectResults(results: AsyncIterable<ImageResult>, count: number): Promise<ImageResult[]> {
  const out = new Array<ImageResult>(count);
  try {
    for await (const result of results) out[result.index] = result;
  } catch (err) {
    throw toHttpProblem(err);
  }
  return out;
}
