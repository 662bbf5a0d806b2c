/**
 * Prometheus metrics of the runtime (prom-client). The HTTP layer registers its request counters on
 * the same `registry` and serves it at /metrics.
 */

import { Counter, Gauge, Histogram, Registry } from 'prom-client';

export interface RuntimeMetrics {
  registry: Registry;
  queuedImages: Gauge<'model'>;
  queueWaitSeconds: Histogram<'model' | 'priority'>;
  batchSize: Histogram<'model'>;
  inferenceSeconds: Histogram<'model' | 'batch_size'>;
  encodeSeconds: Histogram<'format'>;
  imagesComputed: Counter<'model'>;
  cancellations: Counter<'model'>;
  expirations: Counter<'model'>;
  inferenceFailures: Counter<'model'>;
}

/** Latency buckets in seconds, from 1 ms to 2 min. */
const latencyBucketsSeconds = [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120];

/** Creates the runtime metrics on `registry` (a new one when none is given). */
export function createMetrics(registry: Registry = new Registry()): RuntimeMetrics {
  const registers = [registry];
  return {
    registry,
    queuedImages: new Gauge({
      name: 'stylegan_queued_images',
      help: 'Images waiting in the scheduler queue, not yet in a batch.',
      labelNames: ['model'],
      registers,
    }),
    queueWaitSeconds: new Histogram({
      name: 'stylegan_queue_wait_seconds',
      help: 'Time from submission until the image started running in a batch, in seconds.',
      labelNames: ['model', 'priority'],
      buckets: latencyBucketsSeconds,
      registers,
    }),
    batchSize: new Histogram({
      name: 'stylegan_batch_size_images',
      help: 'Real images per synthesis batch (padding excluded).',
      labelNames: ['model'],
      buckets: [1, 2, 4, 8, 16, 32, 64],
      registers,
    }),
    inferenceSeconds: new Histogram({
      name: 'stylegan_inference_seconds',
      help: 'Worker time of one batch (mapping, noise and synthesis), in seconds.',
      labelNames: ['model', 'batch_size'],
      buckets: latencyBucketsSeconds,
      registers,
    }),
    encodeSeconds: new Histogram({
      name: 'stylegan_encode_seconds',
      help: 'Time to convert and encode one image or animation, in seconds.',
      labelNames: ['format'],
      buckets: latencyBucketsSeconds,
      registers,
    }),
    imagesComputed: new Counter({
      name: 'stylegan_images_computed_total',
      help: 'Images computed by the workers (padding excluded), including ones whose job was gone.',
      labelNames: ['model'],
      registers,
    }),
    cancellations: new Counter({
      name: 'stylegan_job_cancellations_total',
      help: 'Jobs cancelled by their caller before they finished.',
      labelNames: ['model'],
      registers,
    }),
    expirations: new Counter({
      name: 'stylegan_job_expirations_total',
      help: 'Jobs whose deadline passed before they finished.',
      labelNames: ['model'],
      registers,
    }),
    inferenceFailures: new Counter({
      name: 'stylegan_batch_failures_total',
      help: 'Batches that failed in ONNX Runtime or lost their worker.',
      labelNames: ['model'],
      registers,
    }),
  };
}
