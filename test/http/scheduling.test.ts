/**
 * Scheduler behaviour seen through HTTP on a deliberately slow random model: deadlines give 504
 * on time, a disconnected client's queued images are never computed, a full queue gives 429 with
 * Retry-After, and a small request overtakes a large one.
 */

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { writeModelFolder } from '../../src/graph/convert.js';
import { randomGeneratorWeights } from '../../src/graph/random-weights.js';
import { makeTempDir, postJson, readJson, removeDir, startTestServer, type TestServer } from '../helpers/server.js';

/** 128x128 with 128 channels: a batch of 4 takes a few hundred ms on 2 cores. */
const slowArch = { resolution: 128, zDim: 64, wDim: 64, mappingLayers: 2, channelBase: 16384, channelMax: 128 };

let modelsDir: string;
let server: TestServer;

before(async () => {
  modelsDir = await makeTempDir('sched');
  await writeModelFolder(randomGeneratorWeights(slowArch, 7), {
    name: 'slow',
    modelsDir,
    source: { file: 'random slow model', sha256: null, bytes: null },
  });
  server = await startTestServer({
    'models-dir': modelsDir,
    model: 'slow',
    'max-batch': '4',
    'max-queued-images': '24',
    'max-images-per-request': '200',
    'max-frames': '200',
  });
});

after(async () => {
  await server?.close();
  await removeDir(modelsDir);
});

const seeds = (start: number, count: number) => Array.from({ length: count }, (_, i) => start + i);

describe('scheduling over HTTP', () => {
  test('returns 504 within 100 ms of the deadline', async () => {
    const long = postJson(`${server.url}/generate`, { seeds: seeds(0, 16), format: 'raw' });
    await new Promise((r) => setTimeout(r, 50));
    const timeoutMs = 60;
    const started = Date.now();
    const response = await postJson(`${server.url}/generate`, { seeds: [999] }, { 'Request-Timeout-Ms': String(timeoutMs) });
    const elapsed = Date.now() - started;
    assert.equal(response.status, 504);
    assert.equal(response.headers.get('content-type'), 'application/problem+json');
    assert.match((await readJson(response)).detail, /deadline/i);
    assert.ok(elapsed < timeoutMs + 100, `504 came ${elapsed - timeoutMs} ms after the deadline`);
    await (await long).arrayBuffer();
  });

  test('computes none of a disconnected client\'s queued images', async () => {
    const service = server.server.service;
    const long = postJson(`${server.url}/generate`, { seeds: seeds(100, 8), format: 'raw' });
    await new Promise((r) => setTimeout(r, 50));
    const controller = new AbortController();
    const before = service.stats();
    const abandoned = fetch(`${server.url}/generate`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ seeds: seeds(500, 12) }),
      signal: controller.signal,
    }).catch((err: unknown) => err);
    await new Promise((r) => setTimeout(r, 100));
    controller.abort();
    await abandoned;
    await (await long).arrayBuffer();
    await new Promise((r) => setTimeout(r, 200));
    const after = service.stats();
    assert.equal(after.imagesComputed - before.imagesComputed <= 8, true, `computed ${after.imagesComputed - before.imagesComputed} images, expected only the 8 of the first request`);
    assert.ok(after.cancellations > before.cancellations, 'the abandoned job counts as cancelled');
    const next = await postJson(`${server.url}/generate`, { seeds: [1] });
    assert.equal(next.status, 200);
  });

  test('returns 429 with Retry-After when the queue is full', async () => {
    const single = await postJson(`${server.url}/generate`, { seeds: [77], format: 'raw' });
    const expected = new Uint8Array(await single.arrayBuffer());
    const burst = await Promise.all(
      Array.from({ length: 30 }, (_, i) =>
        postJson(`${server.url}/generate`, { seeds: i % 5 === 0 ? [77] : seeds(1000 + i * 8, 8), format: 'raw' }).then(async (r) => ({
          index: i,
          status: r.status,
          retryAfter: r.headers.get('retry-after'),
          body: new Uint8Array(await r.arrayBuffer()),
        })),
      ),
    );
    const rejected = burst.filter((r) => r.status === 429);
    const accepted = burst.filter((r) => r.status === 200);
    assert.ok(rejected.length > 0, 'some requests were rejected');
    assert.ok(accepted.length > 0, 'some requests were accepted');
    for (const r of rejected) assert.match(r.retryAfter ?? '', /^[1-9]\d*$/);
    for (const r of accepted.filter((a) => a.index % 5 === 0)) assert.deepEqual(r.body, expected);
    assert.equal(burst.length, rejected.length + accepted.length, 'every request got 200 or 429');
  });

  test('finishes a 1-image request before a 20-image one', async () => {
    const order: string[] = [];
    const big = postJson(`${server.url}/generate`, { seeds: seeds(2000, 20), format: 'raw' }).then(async (r) => {
      await r.arrayBuffer();
      order.push('big');
    });
    await new Promise((r) => setTimeout(r, 50));
    const small = postJson(`${server.url}/generate`, { seeds: [5] }).then(async (r) => {
      assert.equal(r.status, 200);
      await r.arrayBuffer();
      order.push('small');
    });
    await Promise.all([big, small]);
    assert.deepEqual(order, ['small', 'big']);
  });

  test('stops an aborted frame stream within one batch', async () => {
    const service = server.server.service;
    const controller = new AbortController();
    const before = service.stats().imagesComputed;
    const response = await fetch(`${server.url}/interpolate`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ seeds: [10, 11], frames_per_segment: 120, output: 'multipart' }),
      signal: controller.signal,
    });
    assert.equal(response.status, 200);
    const reader = response.body!.getReader();
    await reader.read(); // the first frame's bytes
    const atAbort = service.stats().imagesComputed;
    controller.abort();
    await new Promise((r) => setTimeout(r, 1000));
    const computedAfterAbort = service.stats().imagesComputed - atAbort;
    assert.ok(computedAfterAbort <= 4, `computed ${computedAfterAbort} images after the abort (max batch 4)`);
    assert.ok(service.stats().imagesComputed - before < 121, 'the 121-frame walk did not run to the end');
    const next = await postJson(`${server.url}/generate`, { seeds: [1] });
    assert.equal(next.status, 200);
  });

  // Last: this test shuts the shared server down.
  test('finishes multi-step requests while draining', async () => {
    const mix = postJson(`${server.url}/mix`, { rows: { seeds: [1, 2] }, cols: { seeds: [3, 4] }, output: 'grid' });
    const edit = postJson(`${server.url}/edit`, { seeds: [5], vector: Array(64).fill(0.5), strengths: [-1, 0, 1] });
    await new Promise((r) => setTimeout(r, 30));
    const shutdown = server.close();
    await new Promise((r) => setTimeout(r, 20));
    const late = await postJson(`${server.url}/generate`, { seeds: [9] }).catch((err: unknown) => err);
    if (late instanceof Response) {
      assert.equal(late.status, 503);
      assert.match((await readJson(late)).detail, /shutting down|draining/);
    }
    const [mixResponse, editResponse] = await Promise.all([mix, edit]);
    assert.equal(mixResponse.status, 200, await mixResponse.clone().text());
    assert.equal(editResponse.status, 200, await editResponse.clone().text());
    await mixResponse.arrayBuffer();
    await editResponse.arrayBuffer();
    await shutdown;
  });
});
