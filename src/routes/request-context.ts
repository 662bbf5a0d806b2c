/**
 * Per-request plumbing shared by the image routes: picking the model, the deadline, the output
 * format and the abort signal that fires when the client goes away.
 */

import type { Context } from 'hono';
import type { JobOptions, ModelInfo, Priority } from '../runtime/contract.js';
import type { AppEnv } from './env.js';
import { HttpProblem, invalidField } from './problem.js';

/** Header that shortens the request deadline, in milliseconds. */
export const timeoutHeader = 'request-timeout-ms';

/** Returns the requested model, or throws 404 naming the models that exist. */
export function requireModel(c: Context<AppEnv>, name: string | undefined): ModelInfo {
  const service = c.get('service');
  const modelName = name ?? c.get('settings').defaultModel;
  const model = service.getModel(modelName);
  if (!model) {
    const known = service.models().map((m) => m.name);
    throw new HttpProblem(404, 'not-found', `model "${modelName}" not found; loaded models: ${known.join(', ') || 'none'}`);
  }
  return model;
}

/** Deadline from the body field or the `Request-Timeout-Ms` header, capped by the server maximum. */
export function resolveTimeoutMs(c: Context<AppEnv>, bodyTimeoutMs: number | undefined): number {
  const settings = c.get('settings');
  let timeoutMs = bodyTimeoutMs;
  const header = c.req.header(timeoutHeader);
  if (timeoutMs === undefined && header !== undefined) {
    const parsed = Number(header);
    if (!Number.isInteger(parsed) || parsed < 1) {
      throw new HttpProblem(422, 'validation', `header Request-Timeout-Ms: expected a positive integer of milliseconds, got "${header}"`);
    }
    timeoutMs = parsed;
  }
  return Math.min(timeoutMs ?? settings.defaultTimeoutMs, settings.maxTimeoutMs);
}

export type OutputFormat = 'png' | 'webp' | 'raw';

/** Picks the output format from the body field, else the first supported type in Accept, else PNG. */
export function resolveFormat(c: Context<AppEnv>, format: OutputFormat | undefined): OutputFormat {
  if (format) return format;
  const accept = (c.req.header('accept') ?? '').toLowerCase();
  const byType: [string, OutputFormat][] = [
    ['image/png', 'png'],
    ['image/webp', 'webp'],
    ['application/octet-stream', 'raw'],
  ];
  const positions = byType
    .map(([type, fmt]) => [accept.indexOf(type), fmt] as const)
    .filter(([position]) => position >= 0)
    .sort((a, b) => a[0] - b[0]);
  return positions[0]?.[1] ?? 'png';
}

/** Builds the runtime job options: request id, priority, deadline and the client-disconnect signal. */
export function jobOptions(c: Context<AppEnv>, timeoutMs: number, priority: Priority, controller: AbortController): JobOptions {
  const clientSignal = c.req.raw.signal;
  if (clientSignal.aborted) controller.abort();
  else clientSignal.addEventListener('abort', () => controller.abort(), { once: true });
  return { requestId: c.get('requestId'), priority, deadlineMs: Date.now() + timeoutMs, signal: controller.signal };
}

/** Throws a 422 naming the field when `value` exceeds `limit`. */
export function checkLimit(pointer: string, value: number, limit: number, settingName: string): void {
  if (value > limit) throw invalidField(pointer, `at most ${limit} (the server's ${settingName}), got ${value}`);
}
