/**
 * Inputs that once broke the server: huge counts and arrays, wrong methods, unusual Accept headers,
 * output-size limits and bad settings. Each must end in a small, clear 4xx (or a start-up error),
 * quickly, with the server still serving.
 */

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { loadServerConfig } from '../../src/config.js';
import { convertFixture, makeTempDir, postJson, readJson, removeDir, startTestServer, type TestServer } from '../helpers/server.js';

let modelsDir: string;
let server: TestServer;

before(async () => {
  modelsDir = await makeTempDir('hardening');
  await convertFixture(modelsDir, 'ada-tiny-32', 'ada-tiny-32.pkl');
  server = await startTestServer({ 'models-dir': modelsDir, model: 'ada-tiny-32', 'max-output-pixels': String(40 * 32 * 32) });
});

after(async () => {
  await server?.close();
  await removeDir(modelsDir);
});

async function expect422(response: Response, detail: RegExp) {
  assert.equal(response.status, 422);
  const text = await response.text();
  assert.ok(text.length < 8192, `problem body is ${text.length} bytes`);
  assert.match(JSON.parse(text).detail, detail);
}

describe('request hardening', () => {
  test('rejects a huge strength count before allocating', async () => {
    const started = performance.now();
    const response = await postJson(`${server.url}/edit`, { seeds: [1], direction: 0, strengths: { from: 0, to: 1, count: 4294967295 } });
    await expect422(response, /strengths\.count/);
    assert.ok(performance.now() - started < 1000);
  });

  test('rejects a huge invalid seed list with one small problem', async () => {
    const response = await postJson(`${server.url}/generate`, { seeds: Array(500_000).fill(-1) });
    await expect422(response, /seeds/);
  });

  test('lists at most 20 field errors and counts the rest', async () => {
    const response = await postJson(`${server.url}/generate`, { seeds: Array(30).fill(-1) });
    assert.equal(response.status, 422);
    const problem = await readJson(response);
    assert.equal(problem.errors.length, 20);
    assert.match(problem.detail, /and 10 more problems/);
    assert.match(problem.errors[0].message, /got -1/);
  });

  test('deduplicates repeated edit layers', async () => {
    const started = performance.now();
    const response = await postJson(`${server.url}/edit`, { seeds: [1], direction: 0, strengths: [1], layers: Array(1000).fill(0) });
    assert.equal(response.status, 200);
    await response.arrayBuffer();
    assert.ok(performance.now() - started < 5000);
    await expect422(await postJson(`${server.url}/edit`, { seeds: [1], direction: 0, layers: Array(2000).fill(0) }), /layers/);
  });

  test('returns 405 with Allow for a wrong method', async () => {
    const response = await fetch(`${server.url}/generate`);
    assert.equal(response.status, 405);
    assert.equal(response.headers.get('allow'), 'POST');
    assert.equal(response.headers.get('content-type'), 'application/problem+json');
  });

  test('negotiates formats by q-value and rejects unsupported Accept', async () => {
    const webp = await postJson(`${server.url}/generate`, { seeds: [1] }, { Accept: 'image/png;q=0.5, image/webp' });
    assert.equal(webp.headers.get('content-type'), 'image/webp');
    const browser = await postJson(`${server.url}/generate`, { seeds: [1] }, { Accept: 'image/avif,*/*;q=0.8' });
    assert.equal(browser.headers.get('content-type'), 'image/png');
    const lookalike = await postJson(`${server.url}/generate`, { seeds: [1] }, { Accept: 'image/webp-foo' });
    assert.equal(lookalike.status, 406);
    const mixRaw = await postJson(`${server.url}/mix`, { rows: { seeds: [1] }, cols: { seeds: [2] } }, { Accept: 'application/octet-stream, image/png;q=0.1' });
    assert.equal(mixRaw.headers.get('content-type'), 'image/png');
  });

  test('rejects raw /mix output before queuing any work', async () => {
    const before = server.server.service.stats().imagesComputed;
    await expect422(await postJson(`${server.url}/mix`, { rows: { seeds: [1, 2] }, cols: { seeds: [3, 4] }, format: 'raw' }), /raw output is not available/);
    assert.equal(server.server.service.stats().imagesComputed, before);
  });

  test('enforces maxOutputPixels on every image route', async () => {
    await expect422(await postJson(`${server.url}/generate`, { seeds: Array.from({ length: 41 }, (_, i) => i) }), /maxOutputPixels/);
    await expect422(await postJson(`${server.url}/mix`, { rows: { seeds: [1, 2, 3, 4, 5, 6] }, cols: { seeds: [1, 2, 3, 4, 5, 6] } }), /maxOutputPixels/);
    await expect422(await postJson(`${server.url}/edit`, { seeds: [1], direction: 0, strengths: { from: -1, to: 1, count: 41 } }), /maxOutputPixels/);
  });

  test('wraps noise seeds at 2^32', async () => {
    const response = await postJson(`${server.url}/generate`, { seeds: [1, 2], noise_mode: 'random', noise_seed: 4294967295 });
    assert.equal(response.status, 200);
    await response.arrayBuffer();
  });

  test('rejects a non-decimal timeout header', async () => {
    for (const value of ['0x10', '1e3', '-5', '']) {
      const response = await postJson(`${server.url}/generate`, { seeds: [1] }, { 'Request-Timeout-Ms': value });
      assert.equal(response.status, value === '' ? 200 : 422, `header "${value}"`);
      await response.arrayBuffer();
    }
  });

  test('names mix latent errors inside rows or cols', async () => {
    const response = await postJson(`${server.url}/mix`, { rows: { z: [[1, 2]] }, cols: { seeds: [1] } });
    assert.equal(response.status, 422);
    const problem = await readJson(response);
    assert.equal(problem.errors[0].pointer, '/rows/z/0');
    assert.match(problem.detail, /^rows\.z\.0: expected 64 values/);
  });
});

describe('settings hardening', () => {
  test('rejects timeouts beyond the timer limit', () => {
    assert.throws(() => loadServerConfig({ 'max-timeout-ms': '3000000000' }, {}), /--max-timeout-ms/);
  });

  test('rejects an empty flag value', () => {
    assert.throws(() => loadServerConfig({ port: '' }, {}), /--port is empty/);
  });

  test('treats an empty environment variable as unset', () => {
    assert.equal(loadServerConfig({}, { PORT: '' }).port, 8080);
  });

  test('rejects API keys that contain no key', () => {
    assert.throws(() => loadServerConfig({}, { API_KEYS: ' , ' }), /contains no key/);
  });
});
