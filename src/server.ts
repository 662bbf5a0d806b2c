/**
 * Starts the HTTP server: loads and warms the models, listens, and drains on SIGTERM/SIGINT
 * (readiness turns 503, new work is refused, in-flight requests get `drainTimeoutMs` to finish,
 * then the process exits 0).
 */

import { stat } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import { serve, type ServerType } from '@hono/node-server';
import type { Logger } from 'pino';
import { createApp, InFlightRequests } from './app.js';
import type { ServerConfig } from './config.js';
import { resolveRuntimeConfig } from './runtime/config.js';
import { DirectionStore } from './runtime/directions.js';
import { ImageCache } from './runtime/image-cache.js';
import { createInferenceService, type InferenceService } from './runtime/service.js';

export interface RunningServer {
  port: number;
  service: InferenceService;
  /** Stops accepting work, waits for in-flight requests (up to drainTimeoutMs), then closes. */
  shutdown(reason: string): Promise<void>;
}

export async function startServer(config: ServerConfig, logger: Logger): Promise<RunningServer> {
  const folder = await stat(config.modelsDir).catch(() => undefined);
  if (!folder?.isDirectory()) {
    throw new Error(
      `models folder ${config.modelsDir} not found; create the sample model there with "node dist/cli.js sample-model --models-dir ${config.modelsDir}", ` +
        'convert a checkpoint into it, or pass --models-dir',
    );
  }
  const models = config.models.length > 0 ? [...new Set([config.defaultModel, ...config.models])] : [];
  const service = createInferenceService(
    resolveRuntimeConfig({
      modelsDir: config.modelsDir,
      models,
      session: {
        executionProvider: config.executionProvider,
        precision: config.precision,
        splitBatches: config.splitBatches,
        intraOpNumThreads: config.intraOpThreads,
        workers: config.workers,
      },
      scheduler: {
        maxBatch: config.maxBatch,
        maxQueueDelayMs: config.maxQueueDelayMs,
        maxQueuedImages: config.maxQueuedImages,
        defaultTimeoutMs: config.defaultTimeoutMs,
        maxTimeoutMs: config.maxTimeoutMs,
      },
    }),
    logger,
  );

  const directions = new DirectionStore(config.modelsDir);
  const inFlight = new InFlightRequests();
  const app = createApp({
    inFlight,
    imageCache: new ImageCache(config.imageCacheBytes),
    service: Object.assign(Object.create(service) as InferenceService, {
      directions: (model: { manifest: Parameters<DirectionStore['get']>[0] }) => directions.get(model.manifest),
    }),
    logger,
    apiKeys: config.apiKeys,
    corsOrigins: config.corsOrigins,
    maxBodyBytes: config.maxBodyBytes,
    settings: {
      defaultModel: config.defaultModel,
      maxImagesPerRequest: config.maxImagesPerRequest,
      maxGridCells: config.maxGridCells,
      maxFrames: config.maxFrames,
      maxOutputPixels: config.maxOutputPixels,
      defaultTimeoutMs: config.defaultTimeoutMs,
      maxTimeoutMs: config.maxTimeoutMs,
      pngCompressionLevel: config.pngCompressionLevel,
      webpEffort: config.webpEffort,
      projection: {
        maxProjectSteps: config.maxProjectSteps,
        maxUploadBytes: config.maxUploadBytes,
        maxUploadPixels: config.maxUploadPixels,
        maxProjectJobs: config.maxProjectJobs,
        projectJobTtlMs: config.projectJobTtlMs,
      },
    },
  });

  // Listen before the models are warm, so liveness responds and readiness reports "starting".
  const server: ServerType = await new Promise((resolvePromise, rejectPromise) => {
    const s = serve({ fetch: app.fetch, port: config.port, hostname: config.host }, () => resolvePromise(s));
    s.once('error', (err: NodeJS.ErrnoException) => {
      const hint = err.code === 'EADDRINUSE' ? 'the port is in use: stop the other process or pass --port' : 'check --host and --port';
      rejectPromise(new Error(`cannot listen on ${config.host}:${config.port}: ${err.code ?? err.message}; ${hint}`));
    });
  });
  const port = (server.address() as AddressInfo).port;
  logger.info({ port, host: config.host }, 'listening');

  const started = performance.now();
  await service.start();
  if (!service.getModel(config.defaultModel)) {
    const loaded = service.models().map((m) => m.name);
    await service.close();
    server.close();
    throw new Error(
      `default model "${config.defaultModel}" is not loaded (loaded: ${loaded.join(', ') || 'none'}); ` +
        `convert it into ${config.modelsDir}/${config.defaultModel} or pass --model <name>`,
    );
  }
  logger.info(
    { models: service.models().map((m) => m.name), provider: service.provider(), startMs: Math.round(performance.now() - started) },
    'ready',
  );

  let shuttingDown: Promise<void> | undefined;
  const shutdown = (reason: string) => {
    shuttingDown ??= (async () => {
      logger.info({ reason, drainTimeoutMs: config.drainTimeoutMs }, 'draining');
      // Wait for the scheduler's jobs and for every HTTP response still being written (streams, and
      // requests between two of their jobs), within one drain budget.
      const drainDeadline = Date.now() + config.drainTimeoutMs;
      const jobsDone = await Promise.race([
        service.drain().then(() => true),
        new Promise<false>((done) => setTimeout(() => done(false), config.drainTimeoutMs).unref()),
      ]);
      const responsesDone = jobsDone && (await inFlight.idle(drainDeadline - Date.now()));
      if (!responsesDone) {
        logger.warn({ drainTimeoutMs: config.drainTimeoutMs, inFlightRequests: inFlight.count }, 'drain timed out; failing the remaining requests');
      }
      await new Promise<void>((done) => {
        server.close(() => done());
        // Idle keep-alive sockets would hold close() open; in-flight work has finished by now.
        (server as unknown as { closeIdleConnections?: () => void }).closeIdleConnections?.();
        setTimeout(() => (server as unknown as { closeAllConnections?: () => void }).closeAllConnections?.(), 1000).unref();
      });
      await service.close();
      logger.info({ reason }, 'stopped');
    })();
    return shuttingDown;
  };
  return { port, service, shutdown };
}
