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
  if (timeoutMs === undefined && header !== undefined && header.trim() !== '') {
    const parsed = /^\d{1,10}$/.test(header.trim()) ? Number(header.trim()) : NaN;
    if (!Number.isSafeInteger(parsed) || parsed < 1) {
      throw new HttpProblem(422, 'validation', `header Request-Timeout-Ms: expected a positive integer of milliseconds in decimal digits, got "${header}"`);
    }
    timeoutMs = parsed;
  }
  return Math.min(timeoutMs ?? settings.defaultTimeoutMs, settings.maxTimeoutMs);
}

export type OutputFormat = 'png' | 'webp' | 'raw';

const mediaTypeFormats: Record<string, OutputFormat> = {
  'image/png': 'png',
  'image/webp': 'webp',
  'application/octet-stream': 'raw',
};

/** Parses an Accept header into media ranges with their q-values, highest q first (stable). */
function acceptRanges(accept: string): { type: string; q: number }[] {
  return accept
    .split(',')
    .map((part, order) => {
      const [type, ...params] = part.trim().toLowerCase().split(';');
      const qParam = params.map((p) => p.trim()).find((p) => p.startsWith('q='));
      const q = qParam ? Number(qParam.slice(2)) : 1;
      return { type: type.trim(), q: Number.isFinite(q) ? q : 0, order };
    })
    .filter((range) => range.type.length > 0 && range.q > 0)
    .sort((a, b) => b.q - a.q || a.order - b.order);
}

/**
 * Picks the output format: the body field, else the most preferred supported type in Accept
 * (the `image/*` and any-type wildcards mean PNG), else PNG. A route that cannot return `raw` passes
 * `allowRaw = false`: then an explicit `raw` is a 422 and Accept never selects it. An Accept header
 * that allows none of the route's types is a 406.
 */
export function resolveFormat(c: Context<AppEnv>, format: OutputFormat | undefined, allowRaw = true): OutputFormat {
  if (format === 'raw' && !allowRaw) {
    throw invalidField('/format', `raw output is not available for ${c.req.path}; use png or webp`);
  }
  if (format) return format;
  const accept = c.req.header('accept');
  if (!accept) return 'png';
  for (const { type } of acceptRanges(accept)) {
    if (type === '*/*' || type === 'image/*') return 'png';
    const chosen = mediaTypeFormats[type];
    if (chosen && (chosen !== 'raw' || allowRaw)) return chosen;
  }
  const offered = Object.entries(mediaTypeFormats)
    .filter(([, f]) => f !== 'raw' || allowRaw)
    .map(([type]) => type);
  throw new HttpProblem(406, 'not-acceptable', `Accept "${accept}" allows none of the types ${c.req.path} returns: ${offered.join(', ')}`);
}

/** Builds the runtime job options: request id, priority, deadline and the client-disconnect signal. */
export function jobOptions(c: Context<AppEnv>, timeoutMs: number, priority: Priority, controller: AbortController): JobOptions {
  const clientSignal = c.req.raw.signal;
  if (clientSignal.aborted) controller.abort();
  else clientSignal.addEventListener('abort', () => controller.abort(), { once: true });
  return {
    requestId: c.get('requestId'),
    priority,
    deadlineMs: Date.now() + timeoutMs,
    signal: controller.signal,
    admittedAtMs: c.get('admittedAtMs'),
  };
}

/** Throws a 422 naming the field when `value` exceeds `limit`. */
export function checkLimit(pointer: string, value: number, limit: number, settingName: string): void {
  if (value > limit) throw invalidField(pointer, `at most ${limit} (the server's ${settingName}), got ${value}`);
}

/** Throws a 422 when a response would hold more than the server's maxOutputPixels. */
export function checkOutputPixels(c: Context<AppEnv>, pointer: string, pixels: number, what: string): void {
  const max = c.get('settings').maxOutputPixels;
  if (pixels > max) throw invalidField(pointer, `${what} is ${pixels} pixels, over the server's maxOutputPixels ${max}`);
}
