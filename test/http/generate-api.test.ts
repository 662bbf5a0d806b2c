/**
 * /generate behaviour over real HTTP: single and multipart responses, format negotiation, batch
 * invariance, problem+json errors, and the service routes (/health, /models, /metrics, /openapi.json).
 */

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import {
  convertFixture,
  decodeRgb,
  makeTempDir,
  parseMultipart,
  postJson,
  readJson,
  removeDir,
  startTestServer,
  type TestServer,
} from '../helpers/server.js';

let modelsDir: string;
let server: TestServer;

before(async () => {
  modelsDir = await makeTempDir('api');
  await convertFixture(modelsDir, 'ada-tiny-32', 'ada-tiny-32.pkl');
  await convertFixture(modelsDir, 'ada-cond-64', 'ada-cond-64.pkl');
  server = await startTestServer({ 'models-dir': modelsDir, model: 'ada-tiny-32', 'max-batch': '8' });
});

after(async () => {
  await server?.close();
  await removeDir(modelsDir);
});

async function generate(body: unknown, headers: Record<string, string> = {}) {
  return postJson(`${server.url}/generate`, body, headers);
}

async function expectProblem(response: Response, status: number, detailPattern: RegExp) {
  assert.equal(response.status, status);
  assert.equal(response.headers.get('content-type'), 'application/problem+json');
  const problem = await readJson(response);
  assert.equal(problem.status, status);
  assert.match(problem.detail, detailPattern);
  return problem;
}

describe('generate responses', () => {
  test('returns one PNG with model and seed headers', async () => {
    const response = await generate({ seeds: [7] });
    assert.equal(response.status, 200);
    assert.equal(response.headers.get('content-type'), 'image/png');
    assert.equal(response.headers.get('x-model'), 'ada-tiny-32');
    assert.equal(response.headers.get('x-seed'), '7');
    assert.match(response.headers.get('server-timing') ?? '', /queue;dur=.*inference;dur=.*encode;dur=/);
    assert.equal(response.headers.get('x-truncation-center'), 'none');
    const truncated = await generate({ seeds: [7], psi: 0.7 });
    assert.equal(truncated.headers.get('x-truncation-center'), 'global');
    const image = await decodeRgb(new Uint8Array(await response.arrayBuffer()));
    assert.equal(image.width, 32);
    assert.equal(image.height, 32);
  });

  test('returns WebP when Accept asks for it', async () => {
    const response = await generate({ seeds: [7] }, { Accept: 'image/webp' });
    assert.equal(response.status, 200);
    assert.equal(response.headers.get('content-type'), 'image/webp');
    const bytes = new Uint8Array(await response.arrayBuffer());
    assert.equal(Buffer.from(bytes.subarray(8, 12)).toString('latin1'), 'WEBP');
  });

  test('returns lossless WebP equal to the PNG pixels', async () => {
    const png = await decodeRgb(new Uint8Array(await (await generate({ seeds: [3] })).arrayBuffer()));
    const webp = await decodeRgb(new Uint8Array(await (await generate({ seeds: [3], format: 'webp' })).arrayBuffer()));
    assert.deepEqual(webp.data, png.data);
  });

  test('returns a multipart stream with one part per seed', async () => {
    const seeds = [5, 6, 7, 8, 9];
    const response = await generate({ seeds });
    assert.equal(response.status, 200);
    const contentType = response.headers.get('content-type') ?? '';
    assert.match(contentType, /^multipart\/mixed; boundary=/);
    const parts = parseMultipart(new Uint8Array(await response.arrayBuffer()), contentType);
    assert.equal(parts.length, seeds.length);
    const bySeed = new Map(parts.map((p) => [Number(p.headers['x-seed']), p]));
    assert.deepEqual([...bySeed.keys()].sort((a, b) => a - b), seeds);
    for (const part of parts) assert.equal(part.headers['content-type'], 'image/png');
    // Each part equals the single-image response for its seed.
    const single = new Uint8Array(await (await generate({ seeds: [7] })).arrayBuffer());
    assert.deepEqual(bySeed.get(7)!.body, single);
  });

  test('returns identical images at batch sizes 1, 3 and 8', async () => {
    const alone = new Uint8Array(await (await generate({ seeds: [42], format: 'raw' })).arrayBuffer());
    for (const seeds of [
      [42, 1, 2],
      [1, 2, 42],
      [0, 1, 2, 3, 4, 5, 6, 42],
      [42, 0, 1, 2, 3, 4, 5, 6],
    ]) {
      const response = await generate({ seeds, format: 'raw' });
      const parts = parseMultipart(new Uint8Array(await response.arrayBuffer()), response.headers.get('content-type')!);
      const part = parts.find((p) => p.headers['x-seed'] === '42');
      assert.ok(part, `seed 42 missing in batch ${seeds}`);
      assert.deepEqual(part.body, alone, `seed 42 differs in batch ${seeds}`);
    }
  });

  test('returns the same image for concurrent requests sharing batches', async () => {
    const alone = new Uint8Array(await (await generate({ seeds: [11], format: 'raw' })).arrayBuffer());
    const responses = await Promise.all(
      [11, 12, 13, 11, 14, 11].map((seed) => generate({ seeds: [seed], format: 'raw' }).then((r) => r.arrayBuffer())),
    );
    for (const index of [0, 3, 5]) assert.deepEqual(new Uint8Array(responses[index]), alone);
  });

  test('returns a conditional model image for a class or an equal one-hot label', async () => {
    const byClass = await generate({ model: 'ada-cond-64', seeds: [0], class: 1, format: 'raw' });
    assert.equal(byClass.status, 200);
    const byLabel = await generate({ model: 'ada-cond-64', seeds: [0], label: [0, 1, 0], format: 'raw' });
    assert.equal(byLabel.status, 200);
    assert.deepEqual(new Uint8Array(await byClass.arrayBuffer()), new Uint8Array(await byLabel.arrayBuffer()));
    const soft = await generate({ model: 'ada-cond-64', seeds: [0], label: [0.2, 0.5, 0.3] });
    assert.equal(soft.status, 200);
  });

  test('returns different images for noise modes const, none and random', async () => {
    const images = await Promise.all(
      (['const', 'none', 'random'] as const).map(async (noise_mode) =>
        new Uint8Array(await (await generate({ seeds: [1], noise_mode, format: 'raw' })).arrayBuffer()),
      ),
    );
    assert.notDeepEqual(images[0], images[1]);
    assert.notDeepEqual(images[0], images[2]);
    const again = new Uint8Array(await (await generate({ seeds: [1], noise_mode: 'random', format: 'raw' })).arrayBuffer());
    assert.deepEqual(again, images[2], 'random noise is seeded, so it repeats');
  });

  test('returns the same image for a seed and its z', async () => {
    const bySeed = new Uint8Array(await (await generate({ seeds: [85], format: 'raw' })).arrayBuffer());
    const { zFromSeed } = await import('../../src/runtime/seeds.js');
    const z = Array.from(zFromSeed(85, 64));
    const byZ = new Uint8Array(await (await generate({ z: [z], format: 'raw' })).arrayBuffer());
    assert.deepEqual(byZ, bySeed);
  });
});

describe('generate errors', () => {
  test('rejects malformed JSON (400)', async () => {
    const response = await fetch(`${server.url}/generate`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: '{"seeds": [1',
    });
    await expectProblem(response, 400, /JSON/i);
  });

  test('rejects a wrong content type (415)', async () => {
    const response = await fetch(`${server.url}/generate`, { method: 'POST', headers: { 'Content-Type': 'text/plain' }, body: 'seeds=1' });
    await expectProblem(response, 415, /application\/json/);
  });

  test('rejects an out-of-range seed naming the field (422)', async () => {
    const problem = await expectProblem(await generate({ seeds: [-1] }), 422, /seeds\.0/);
    assert.equal(problem.errors[0].pointer, '/seeds/0');
    await expectProblem(await generate({ seeds: [4294967296] }), 422, /seeds\.0/);
    await expectProblem(await generate({ seeds: [1.5] }), 422, /seeds\.0/);
  });

  test('rejects unknown fields and wrong types (422)', async () => {
    await expectProblem(await generate({ seeds: [1], sedes: [2] }), 422, /sedes/);
    await expectProblem(await generate({ seeds: [1], psi: 'high' }), 422, /psi/);
    await expectProblem(await generate({ seeds: [1], noise_mode: 'loud' }), 422, /noise_mode/);
  });

  test('rejects zero or several latent kinds (422)', async () => {
    await expectProblem(await generate({ psi: 0.5 }), 422, /exactly one of seeds, z, w or ws/);
    await expectProblem(await generate({ seeds: [1], z: [[0]] }), 422, /seeds, z/);
  });

  test('rejects latents of the wrong size naming the expected size (422)', async () => {
    await expectProblem(await generate({ z: [[1, 2, 3]] }), 422, /z\.0: expected 64 values \(the model's zDim\), got 3/);
    await expectProblem(await generate({ w: [[1]] }), 422, /expected 64 values \(the model's wDim\)/);
    await expectProblem(await generate({ ws: [[[1]]] }), 422, /expected 8 rows \(the model's numWs\)/);
  });

  test('rejects a conditional model request without a class (422)', async () => {
    await expectProblem(await generate({ model: 'ada-cond-64', seeds: [0] }), 422, /conditional \(cDim 3\)/);
    await expectProblem(await generate({ model: 'ada-cond-64', seeds: [0], class: 3 }), 422, /class index in \[0, 2\]/);
    await expectProblem(await generate({ model: 'ada-cond-64', seeds: [0], label: [1, 0] }), 422, /expected 3 values/);
  });

  test('rejects a class on an unconditional model (422)', async () => {
    await expectProblem(await generate({ seeds: [0], class: 0 }), 422, /unconditional/);
  });

  test('rejects a cutoff beyond numWs (422)', async () => {
    await expectProblem(await generate({ seeds: [0], psi: 0.5, truncation_cutoff: 9 }), 422, /numWs/);
  });

  test('rejects too many images (422)', async () => {
    const seeds = Array.from({ length: 65 }, (_, i) => i);
    await expectProblem(await generate({ seeds }), 422, /at most 64 latents \(the server's maxImagesPerRequest\), got 65/);
  });

  test('rejects an unknown model (404)', async () => {
    await expectProblem(await generate({ model: 'nope', seeds: [0] }), 404, /model "nope" not found; loaded models: /);
  });

  test('rejects a bad timeout header (422)', async () => {
    await expectProblem(await generate({ seeds: [0] }, { 'Request-Timeout-Ms': 'soon' }), 422, /Request-Timeout-Ms/);
  });

  test('returns 404 problem for an unknown route', async () => {
    await expectProblem(await fetch(`${server.url}/nowhere`), 404, /no route/);
  });
});

describe('service routes', () => {
  test('returns health with ready status and models', async () => {
    const response = await fetch(`${server.url}/health`);
    assert.equal(response.status, 200);
    const health = await readJson(response);
    assert.equal(health.status, 'ok');
    assert.deepEqual([...health.models].sort(), ['ada-cond-64', 'ada-tiny-32']);
    assert.equal(health.provider.name, 'cpu');
    for (const path of ['/health/live', '/health/ready', '/v2/health/live', '/v2/health/ready']) {
      assert.equal((await fetch(`${server.url}${path}`)).status, 200, path);
    }
  });

  test('returns models with architecture and source', async () => {
    const { models } = await readJson(await fetch(`${server.url}/models`));
    const cond = models.find((m: { name: string }) => m.name === 'ada-cond-64');
    assert.equal(cond.z_dim, 32);
    assert.equal(cond.w_dim, 64);
    assert.equal(cond.c_dim, 3);
    assert.equal(cond.num_ws, 10);
    assert.equal(cond.resolution, 64);
    assert.equal(cond.source.format, 'nvlabs-pickle');
    assert.match(cond.source.sha256, /^[0-9a-f]{64}$/);
    const one = await fetch(`${server.url}/models/ada-cond-64`);
    assert.equal((await readJson(one)).name, 'ada-cond-64');
    await expectProblem(await fetch(`${server.url}/models/missing`), 404, /not found/);
  });

  test('returns Prometheus metrics after requests', async () => {
    await generate({ seeds: [1] });
    const text = await (await fetch(`${server.url}/metrics`)).text();
    assert.match(text, /http_requests_total\{method="POST",route="\/generate",status="200"\} \d+/);
  });

  test('returns the OpenAPI document', async () => {
    const doc = await readJson(await fetch(`${server.url}/openapi.json`));
    assert.equal(doc.openapi, '3.1.0');
    assert.ok(doc.paths['/generate'].post);
  });

  test('keeps /health p99 under 100 ms while batches of 8 run', async () => {
    let running = true;
    const load = (async () => {
      while (running) {
        const response = await generate({ seeds: [0, 1, 2, 3, 4, 5, 6, 7], format: 'raw' });
        await response.arrayBuffer();
      }
    })();
    const latencies: number[] = [];
    for (let i = 0; i < 50; i++) {
      const started = performance.now();
      const response = await fetch(`${server.url}/health`);
      await response.arrayBuffer();
      latencies.push(performance.now() - started);
      await new Promise((r) => setTimeout(r, 10));
    }
    running = false;
    await load;
    latencies.sort((a, b) => a - b);
    const p99 = latencies[Math.ceil(0.99 * latencies.length) - 1];
    assert.ok(p99 < 100, `health p99 ${p99.toFixed(1)} ms`);
  });
});
