/**
 * Liveness and readiness: `/health` (summary), `/health/live`, `/health/ready`, and the same two
 * probes at the KServe v2 paths. Ready means every model is loaded and warmed and the server is not
 * draining. Health routes never need an API key.
 */

import { createRoute, z, type OpenAPIHono } from '@hono/zod-openapi';
import type { AppEnv } from './env.js';

const startedAt = Date.now();

export const HealthSchema = z
  .object({
    status: z.enum(['ok', 'starting', 'draining']),
    ready: z.boolean(),
    models: z.array(z.string()),
    provider: z.object({ name: z.string(), reason: z.string() }),
    uptime_s: z.number(),
  })
  .openapi('Health');

const ProbeSchema = z.object({ status: z.enum(['ok', 'unavailable']) }).openapi('Probe');

const healthRoute = createRoute({
  method: 'get',
  path: '/health',
  operationId: 'getHealth',
  summary: 'Service status: readiness, loaded models and execution provider',
  responses: {
    200: { description: 'Ready', content: { 'application/json': { schema: HealthSchema } } },
    503: { description: 'Starting or draining', content: { 'application/json': { schema: HealthSchema } } },
  },
});

function probeRoute(path: string, operationId: string, summary: string) {
  return createRoute({
    method: 'get',
    path,
    operationId,
    summary,
    responses: {
      200: { description: 'OK', content: { 'application/json': { schema: ProbeSchema } } },
      503: { description: 'Not ready', content: { 'application/json': { schema: ProbeSchema } } },
    },
  });
}

export const healthPaths = ['/health', '/health/live', '/health/ready', '/v2/health/live', '/v2/health/ready'];

export function registerHealth(app: OpenAPIHono<AppEnv>): void {
  app.openapi(healthRoute, (c) => {
    const service = c.get('service');
    const ready = service.isReady();
    const status = service.isDraining() ? 'draining' : ready ? 'ok' : 'starting';
    const body = {
      status,
      ready,
      models: service.models().map((m) => m.name),
      provider: service.provider(),
      uptime_s: Math.round((Date.now() - startedAt) / 1000),
    } as const;
    return ready ? c.json(body, 200) : c.json(body, 503);
  });

  const live = (c: Parameters<Parameters<typeof app.openapi>[1]>[0]) => c.json({ status: 'ok' as const }, 200);
  app.openapi(probeRoute('/health/live', 'getLiveness', 'Liveness probe: the process serves HTTP'), live);
  app.openapi(probeRoute('/v2/health/live', 'getLivenessV2', 'Liveness probe at the KServe v2 path'), live);

  for (const [path, operationId] of [
    ['/health/ready', 'getReadiness'],
    ['/v2/health/ready', 'getReadinessV2'],
  ] as const) {
    app.openapi(probeRoute(path, operationId, 'Readiness probe: models loaded and warmed, not draining'), (c) =>
      c.get('service').isReady() ? c.json({ status: 'ok' as const }, 200) : c.json({ status: 'unavailable' as const }, 503),
    );
  }
}

const metricsRoute = createRoute({
  method: 'get',
  path: '/metrics',
  operationId: 'getMetrics',
  summary: 'Prometheus metrics: queue, batches, inference and encode durations, requests by route and status',
  responses: {
    200: { description: 'Prometheus text exposition format', content: { 'text/plain': { schema: z.string() } } },
  },
});

/** Registers GET /metrics (open like the health routes, so scrapers need no API key). */
export function registerMetrics(app: OpenAPIHono<AppEnv>): void {
  app.openapi(metricsRoute, async (c) => {
    const registry = c.get('service').metricsRegistry;
    return c.text(await registry.metrics(), 200, { 'Content-Type': registry.contentType });
  });
}
