/** A small keep-alive HTTP load generator for 127.0.0.1, bounded in request count and time. */

import http from 'node:http';

import { percentile } from './stats.js';

const agent = new http.Agent({ keepAlive: true, maxSockets: 256 });

export interface Timed {
  status: number;
  ms: number;
  bytes: number;
}

/** Sends one request to 127.0.0.1:`port` and reads the whole response body. */
export function request(port: number, method: 'GET' | 'POST', path: string, body?: unknown): Promise<Timed> {
  const payload = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
  const started = performance.now();
  return new Promise((resolve, reject) => {
    const req = http.request(
      {
        host: '127.0.0.1',
        port,
        method,
        path,
        agent,
        headers: payload ? { 'content-type': 'application/json', 'content-length': payload.length } : {},
      },
      (res) => {
        let bytes = 0;
        res.on('data', (chunk: Buffer) => (bytes += chunk.length));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, ms: performance.now() - started, bytes }));
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(payload);
  });
}

export interface LoadResult {
  requests: number;
  images: number;
  failures: number;
  seconds: number;
  imagesPerSecond: number;
  p50: number;
  p95: number;
  p99: number;
  statuses: Record<number, number>;
}

export interface LoadOptions {
  concurrency: number;
  /** Stop after this many requests in total... */
  maxRequests: number;
  /** ...or after this many seconds, whichever comes first. */
  maxSeconds: number;
  /** Seeds per request for request number `i`. */
  seedsFor: (i: number) => number;
}

/** Runs `concurrency` closed-loop clients of POST /generate with distinct seeds. */
export async function generateLoad(port: number, options: LoadOptions): Promise<LoadResult> {
  const latencies: number[] = [];
  const statuses: Record<number, number> = {};
  let issued = 0;
  let images = 0;
  let failures = 0;
  let nextSeed = 1;
  const started = performance.now();
  const deadline = started + options.maxSeconds * 1000;
  const client = async () => {
    while (issued < options.maxRequests && performance.now() < deadline) {
      const count = options.seedsFor(issued++);
      const seeds = Array.from({ length: count }, () => nextSeed++);
      const result = await request(port, 'POST', '/generate', { seeds, noise_mode: 'const' });
      statuses[result.status] = (statuses[result.status] ?? 0) + 1;
      if (result.status === 200) {
        latencies.push(result.ms);
        images += count;
      } else {
        failures++;
      }
    }
  };
  await Promise.all(Array.from({ length: options.concurrency }, client));
  const seconds = (performance.now() - started) / 1000;
  return {
    requests: latencies.length + failures,
    images,
    failures,
    seconds,
    imagesPerSecond: images / seconds,
    p50: percentile(latencies, 50),
    p95: percentile(latencies, 95),
    p99: percentile(latencies, 99),
    statuses,
  };
}

/** Polls GET `path` sequentially until `stop()` returns true; returns the latencies in ms. */
export async function pollLatencies(port: number, path: string, stop: () => boolean, maxRequests: number): Promise<number[]> {
  const latencies: number[] = [];
  while (!stop() && latencies.length < maxRequests) {
    latencies.push((await request(port, 'GET', path)).ms);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  return latencies;
}

export function closeAgent(): void {
  agent.destroy();
}
