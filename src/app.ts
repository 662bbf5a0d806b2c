/**
 * Assembles the Hono app: middleware (request id, logging, metrics, auth, body limit), the routes,
 * the OpenAPI document and the error handlers. It contains no route logic itself.
 */

import { randomUUID } from 'node:crypto';
import type { ServerResponse } from 'node:http';
import { OpenAPIHono } from '@hono/zod-openapi';
import type { Context, MiddlewareHandler } from 'hono';
import { bodyLimit } from 'hono/body-limit';
import { cors } from 'hono/cors';
import { HTTPException } from 'hono/http-exception';
import type { Logger } from 'pino';
import { Counter, Histogram } from 'prom-client';
import { ImageCache } from './runtime/image-cache.js';
import type { AppEnv, ImageService, RouteSettings } from './routes/env.js';
import { registerEdit } from './routes/edit.js';
import { registerGenerate } from './routes/generate.js';
import { healthPaths, registerHealth, registerMetrics } from './routes/health.js';
import { registerInterpolate } from './routes/interpolate.js';
import { registerMix } from './routes/mix.js';
import { registerModels } from './routes/models.js';
import { registerProject } from './routes/project.js';
import { docsPath, registerDocs } from './routes/docs.js';
import { playgroundPaths, registerPlayground } from './routes/playground.js';
import { HttpProblem, maxListedErrors, problemResponse, type ProblemKind } from './routes/problem.js';
import { toHttpProblem } from './routes/runtime-errors.js';

/**
 * Counts HTTP requests whose responses have not finished (streams included), so a draining server
 * can wait for them. Health probes and metrics are not counted.
 */
export class InFlightRequests {
  private active = 0;
  private idleWaiters: (() => void)[] = [];

  get count(): number {
    return this.active;
  }

  /** Counts the request until its Node response closes; needs the @hono/node-server bindings. */
  track(c: Context<AppEnv>): void {
    const outgoing = (c.env as { outgoing?: ServerResponse } | undefined)?.outgoing;
    if (!outgoing || healthPaths.includes(c.req.path) || c.req.path === '/metrics') return;
    this.active++;
    outgoing.once('close', () => {
      this.active--;
      if (this.active === 0) for (const resolve of this.idleWaiters.splice(0)) resolve();
    });
  }

  /** Resolves true once no request is in flight, or false after `timeoutMs`. */
  idle(timeoutMs: number): Promise<boolean> {
    if (this.active === 0) return Promise.resolve(true);
    return new Promise((resolve) => {
      const timer = setTimeout(() => resolve(false), Math.max(0, timeoutMs));
      timer.unref();
      this.idleWaiters.push(() => {
        clearTimeout(timer);
        resolve(true);
      });
    });
  }
}

export interface AppOptions {
  service: ImageService;
  settings: RouteSettings;
  logger: Logger;
  /** Bearer tokens accepted on every route except health and metrics; empty disables auth. */
  apiKeys?: string[];
  /** Maximum request body size in bytes. */
  maxBodyBytes?: number;
  /** Tracks requests in flight for draining; optional for in-process uses such as tests. */
  inFlight?: InFlightRequests;
  /** Cache of single-image responses; none when absent. */
  imageCache?: ImageCache;
  /** Origins allowed to call the API from a browser (`*` for any); empty sends no CORS headers. */
  corsOrigins?: string[];
}

export const openApiInfo: Parameters<OpenAPIHono['getOpenAPI31Document']>[0] = {
  openapi: '3.1.0',
  info: {
    title: 'stylegan-serve',
    version: '0.1.0',
    description: 'HTTP inference service for StyleGAN2 generators converted to ONNX.',
    license: { name: 'MIT', url: 'https://opensource.org/license/mit' },
  },
  servers: [{ url: '/', description: 'The server that serves this document' }],
  // The empty requirement makes the key optional: it is needed only when the server runs with --api-keys.
  security: [{ bearerAuth: [] }, {}],
};

const defaultMaxBodyBytes = 16 * 1024 * 1024;

/** Accepts a client `X-Request-Id` of sane shape, otherwise assigns a UUID. */
function requestId(): MiddlewareHandler<AppEnv> {
  return async function requestId(c, next) {
    const given = c.req.header('x-request-id');
    const id = given && /^[\w.:-]{1,128}$/.test(given) ? given : randomUUID();
    c.set('requestId', id);
    c.header('X-Request-Id', id);
    await next();
  };
}

function requestLog(logger: Logger, service: ImageService): MiddlewareHandler<AppEnv> {
  const requests = new Counter({
    name: 'http_requests_total',
    help: 'HTTP requests by route and status',
    labelNames: ['method', 'route', 'status'],
    registers: [service.metricsRegistry],
  });
  const durations = new Histogram({
    name: 'http_request_duration_seconds',
    help: 'Time to response headers, by route',
    labelNames: ['method', 'route'],
    buckets: [0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
    registers: [service.metricsRegistry],
  });
  return async function requestLog(c, next) {
    const started = performance.now();
    const log = logger.child({ requestId: c.get('requestId') });
    c.set('log', log);
    await next();
    const route = c.req.routePath || 'unmatched';
    const ms = performance.now() - started;
    requests.inc({ method: c.req.method, route, status: String(c.res.status) });
    durations.observe({ method: c.req.method, route }, ms / 1000);
    if (!healthPaths.includes(c.req.path) && c.req.path !== '/metrics') {
      const model = c.res.headers.get('X-Model') ?? undefined;
      log.info({ method: c.req.method, path: c.req.path, status: c.res.status, model, durationMs: Math.round(ms) }, 'request handled');
    }
  };
}

function bearerAuth(apiKeys: string[]): MiddlewareHandler<AppEnv> {
  const open = new Set([...healthPaths, '/metrics', '/openapi.json', docsPath, ...playgroundPaths]);
  return async function bearerAuth(c, next) {
    if (apiKeys.length === 0 || open.has(c.req.path)) return next();
    const header = c.req.header('authorization') ?? '';
    const match = /^Bearer\s+(.+)$/i.exec(header);
    if (!match || !apiKeys.includes(match[1].trim())) {
      throw new HttpProblem(401, 'unauthorized', 'missing or invalid API key: send "Authorization: Bearer <key>"', {
        headers: { 'WWW-Authenticate': 'Bearer' },
      });
    }
    return next();
  };
}

/** Registers every documented route; shared by the app and by the OpenAPI document builder. */
export function registerRoutes(app: OpenAPIHono<AppEnv>): void {
  app.openAPIRegistry.registerComponent('securitySchemes', 'bearerAuth', {
    type: 'http',
    scheme: 'bearer',
    description: 'One of the server\'s --api-keys. Not needed when the server runs without keys, nor on health routes and /metrics.',
  });
  registerHealth(app);
  registerMetrics(app);
  registerModels(app);
  registerGenerate(app);
  registerMix(app);
  registerInterpolate(app);
  registerEdit(app);
  registerProject(app);
}

/** Builds the OpenAPI 3.1 document of every route without starting anything. */
export function openApiDocument() {
  const app = new OpenAPIHono<AppEnv>();
  registerRoutes(app);
  return app.getOpenAPI31Document(openApiInfo);
}

/** Methods registered for `path` (for 405 responses), ignoring middleware entries. */
function allowedMethods(app: OpenAPIHono<AppEnv>, path: string): string[] {
  const methods = new Set<string>();
  for (const route of app.routes) {
    if (route.method === 'ALL' || route.path.includes('*')) continue;
    const pattern = new RegExp('^' + route.path.replace(/[.+?^${}()|[\]\\]/g, '\\$&').replace(/:[^/]+/g, '[^/]+') + '$');
    if (pattern.test(path)) methods.add(route.method);
  }
  return [...methods].sort();
}

/** Returns the value at `path` inside a parsed JSON body, or undefined. */
function valueAt(input: unknown, path: PropertyKey[]): unknown {
  let value = input;
  for (const key of path) {
    if (value === null || typeof value !== 'object') return undefined;
    value = (value as Record<PropertyKey, unknown>)[key];
  }
  return value;
}

/** Appends `, got <value>` to a validation message when the value is short enough to show. */
function withReceivedValue(message: string, value: unknown, code: string): string {
  if (value === undefined || code === 'unrecognized_keys') return message;
  const shown = JSON.stringify(value);
  if (shown === undefined || shown.length > 60) return message;
  return `${message}, got ${shown}`;
}

export function createApp(options: AppOptions): OpenAPIHono<AppEnv> {
  const { service, settings, logger } = options;
  const imageCache = options.imageCache ?? new ImageCache(0);
  const app = new OpenAPIHono<AppEnv>({
    defaultHook: async (result, c) => {
      if (result.success) return;
      // The validator has parsed the body already; read it back to name the values received.
      const input: unknown = result.target === 'json' ? await c.req.json().catch(() => undefined) : undefined;
      const issues = result.error.issues;
      const errors = issues.slice(0, maxListedErrors).map((issue) => ({
        pointer: '/' + issue.path.map(String).join('/'),
        message: withReceivedValue(issue.message, valueAt(input, issue.path), issue.code),
        code: issue.code,
      }));
      const whole = result.target === 'json' ? 'body' : result.target;
      let detail = errors.map((e) => `${e.pointer.slice(1).replaceAll('/', '.') || whole}: ${e.message}`).join('; ');
      if (issues.length > errors.length) detail += `; and ${issues.length - errors.length} more problems`;
      return problemResponse(c, new HttpProblem(422, 'validation', detail, { errors }));
    },
  });

  app.use('*', requestId());
  app.use('*', requestLog(logger, service));
  app.use('*', async (c, next) => {
    c.set('service', service);
    c.set('settings', settings);
    c.set('admittedAtMs', Date.now());
    c.set('imageCache', imageCache);
    options.inFlight?.track(c);
    await next();
  });
  const corsOrigins = options.corsOrigins ?? [];
  if (corsOrigins.length > 0) {
    // Before auth, because preflight requests carry no Authorization header.
    app.use(
      '*',
      cors({
        origin: corsOrigins.includes('*') ? '*' : corsOrigins,
        allowHeaders: ['Authorization', 'Content-Type', 'Accept', 'X-Request-Id', 'Request-Timeout-Ms'],
        exposeHeaders: ['X-Request-Id', 'X-Model', 'X-Seed', 'X-Index', 'X-Grid', 'Server-Timing', 'Retry-After'],
        maxAge: 600,
      }),
    );
  }
  app.use('*', bearerAuth(options.apiKeys ?? []));
  app.use(
    '*',
    bodyLimit({
      maxSize: options.maxBodyBytes ?? defaultMaxBodyBytes,
      onError: () => {
        throw new HttpProblem(413, 'payload-too-large', `request body exceeds ${options.maxBodyBytes ?? defaultMaxBodyBytes} bytes`);
      },
    }),
  );

  registerRoutes(app);

  app.doc31('/openapi.json', openApiInfo);
  registerDocs(app);
  registerPlayground(app);

  app.notFound((c) => {
    const allowed = allowedMethods(app, c.req.path);
    if (allowed.length > 0) {
      const detail = `${c.req.method} is not allowed on ${c.req.path}; use ${allowed.join(' or ')}`;
      return problemResponse(c, new HttpProblem(405, 'method-not-allowed', detail, { headers: { Allow: allowed.join(', ') } }));
    }
    return problemResponse(c, new HttpProblem(404, 'not-found', `no route for ${c.req.method} ${c.req.path}`));
  });
  app.onError((err, c) => {
    if (err instanceof HTTPException) {
      let kind: ProblemKind = 'bad-request';
      let detail = err.message || 'malformed request';
      if (err.status === 415) {
        kind = 'unsupported-media-type';
        detail = 'expected Content-Type: application/json';
      } else if (err.status === 413) {
        kind = 'payload-too-large';
      }
      return problemResponse(c, new HttpProblem(err.status, kind, detail));
    }
    const problem = toHttpProblem(err);
    const log = c.get('log') ?? logger.child({ requestId: c.get('requestId') });
    if (problem.status === 500) {
      log.error({ err }, 'request failed');
    } else if (problem.status >= 500) {
      // Deadlines, full queues and draining are expected under load: no stack trace.
      log.info({ status: problem.status, detail: problem.message }, 'request rejected');
    }
    return problemResponse(c, problem);
  });
  return app;
}
