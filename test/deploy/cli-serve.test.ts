/**
 * The `serve` command as a container runs it (a child process, JSON logs on stdout): settings
 * validation, the execution provider choice, API keys, CORS and the request logs.
 */

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { convertFixture, makeTempDir, postJson, readJson, removeDir } from '../helpers/server.js';
import { runCliToExit, startCliServer, type CliServer, type LogLine } from './cli-server.js';

const apiKey = 'test-key-7f3a9c51d2';
const allowedOrigin = 'http://playground.example.test';

let modelsDir: string;
let server: CliServer;

before(async () => {
  modelsDir = await makeTempDir('deploy-serve');
  await convertFixture(modelsDir, 'ada-tiny-32', 'ada-tiny-32.pkl', 'tiny');
  server = await startCliServer(
    ['--models-dir', modelsDir, '--model', 'tiny', '--execution-provider', 'auto', '--log-level', 'debug', '--max-batch', '4'],
    { API_KEYS: `other-key,${apiKey}`, CORS_ORIGINS: allowedOrigin },
  );
});

after(async () => {
  await server?.stop();
  await removeDir(modelsDir);
});

const auth = { Authorization: `Bearer ${apiKey}` };

describe('settings validation', () => {
  test('invalid flag value exits naming the flag', async () => {
    const run = await runCliToExit(['serve', '--max-batch', 'lots', '--port', '0']);
    assert.equal(run.code, 2);
    assert.match(run.stderr, /--max-batch \/ MAX_BATCH = "lots"/);
  });

  test('invalid environment value exits naming the variable', async () => {
    const run = await runCliToExit(['serve', '--port', '0'], { EXECUTION_PROVIDER: 'tpu' });
    assert.equal(run.code, 2);
    assert.match(run.stderr, /--execution-provider \/ EXECUTION_PROVIDER = "tpu"/);
  });

  test('invalid CORS origin exits naming the flag', async () => {
    const run = await runCliToExit(['serve', '--port', '0', '--cors-origins', 'https://ok.example.test,https://bad.example.test/path']);
    assert.equal(run.code, 2);
    assert.match(run.stderr, /--cors-origins \/ CORS_ORIGINS = .*without a path/);
  });

  test('failed start does not print the API keys', async () => {
    const run = await runCliToExit(['serve', '--port', 'x'], { API_KEYS: apiKey });
    assert.equal(run.code, 2);
    assert.doesNotMatch(run.stdout + run.stderr, new RegExp(apiKey));
  });
});

describe('execution provider', () => {
  test('cuda without CUDA libraries exits naming the cause', async () => {
    const run = await runCliToExit(['serve', '--port', '0', '--host', '127.0.0.1', '--models-dir', modelsDir, '--model', 'tiny', '--execution-provider', 'cuda']);
    assert.equal(run.code, 1);
    assert.match(run.stderr, /CUDA execution provider/);
    assert.match(run.stderr, /Failed to load shared library/);
    assert.match(run.stderr, /libonnxruntime_providers_cuda\.so is missing: install it with ONNXRUNTIME_NODE_INSTALL=cuda12/);
    assert.match(run.stderr, /--execution-provider cpu/);
  });

  test('auto falls back to cpu and says why in /health', async () => {
    const response = await fetch(`${server.url}/health`);
    assert.equal(response.status, 200);
    const health = await readJson(response);
    assert.equal(health.provider.name, 'cpu');
    assert.match(health.provider.reason, /^auto: CUDA unavailable \(.+\), using CPU$/);
  });

  test('start-up log names the provider and the reason', async () => {
    const ready = await server.waitForLog('ready');
    assert.equal(ready.provider.name, 'cpu');
    assert.match(ready.provider.reason, /auto: CUDA unavailable/);
  });
});

describe('configuration log', () => {
  test('prints every setting once with API keys redacted', async () => {
    const configLines = server.logs.filter((line) => line.msg === 'configuration');
    assert.equal(configLines.length, 1);
    const config = configLines[0].config;
    assert.equal(config.apiKeys, '<redacted>');
    assert.deepEqual(config.corsOrigins, [allowedOrigin]);
    assert.equal(config.executionProvider, 'auto');
    assert.equal(config.maxBatch, 4);
    assert.doesNotMatch(server.stdout() + server.stderr(), new RegExp(apiKey));
  });
});

describe('API keys', () => {
  test('request without a key gets 401 problem+json', async () => {
    const response = await postJson(`${server.url}/generate`, { seeds: [1] });
    assert.equal(response.status, 401);
    assert.equal(response.headers.get('content-type'), 'application/problem+json');
    assert.equal(response.headers.get('www-authenticate'), 'Bearer');
    const problem = await readJson(response);
    assert.equal(problem.status, 401);
    assert.match(problem.detail, /API key/);
  });

  test('request with a wrong key gets 401', async () => {
    const response = await postJson(`${server.url}/generate`, { seeds: [1] }, { Authorization: 'Bearer not-a-key' });
    assert.equal(response.status, 401);
  });

  test('request with a key gets the image', async () => {
    const response = await postJson(`${server.url}/generate`, { seeds: [1] }, auth);
    assert.equal(response.status, 200);
    assert.equal(response.headers.get('content-type'), 'image/png');
  });

  test('health, metrics and pages stay open', async () => {
    for (const path of ['/health', '/health/live', '/health/ready', '/v2/health/live', '/v2/health/ready', '/metrics', '/', '/docs', '/openapi.json']) {
      const response = await fetch(`${server.url}${path}`);
      assert.equal(response.status, 200, path);
    }
  });
});

describe('CORS', () => {
  test('preflight from an allowed origin is answered without a key', async () => {
    const response = await fetch(`${server.url}/generate`, {
      method: 'OPTIONS',
      headers: { Origin: allowedOrigin, 'Access-Control-Request-Method': 'POST', 'Access-Control-Request-Headers': 'authorization,content-type' },
    });
    assert.equal(response.status, 204);
    assert.equal(response.headers.get('access-control-allow-origin'), allowedOrigin);
    assert.match(response.headers.get('access-control-allow-methods') ?? '', /POST/);
    assert.match((response.headers.get('access-control-allow-headers') ?? '').toLowerCase(), /authorization/);
  });

  test('response to an allowed origin exposes the image headers', async () => {
    const response = await postJson(`${server.url}/generate`, { seeds: [2] }, { ...auth, Origin: allowedOrigin });
    assert.equal(response.status, 200);
    assert.equal(response.headers.get('access-control-allow-origin'), allowedOrigin);
    assert.match(response.headers.get('access-control-expose-headers') ?? '', /X-Seed/);
    await response.arrayBuffer();
  });

  test('other origins get no CORS headers', async () => {
    const response = await fetch(`${server.url}/generate`, {
      method: 'OPTIONS',
      headers: { Origin: 'http://evil.example.test', 'Access-Control-Request-Method': 'POST' },
    });
    assert.equal(response.headers.get('access-control-allow-origin'), null);
  });
});

describe('request logs', () => {
  test('log lines carry request id, model, batch size and durations', async () => {
    const requestId = 'deploy-log-check-0001';
    const response = await postJson(`${server.url}/generate`, { seeds: [3, 4, 5] }, { ...auth, 'X-Request-Id': requestId });
    assert.equal(response.status, 200);
    assert.equal(response.headers.get('x-request-id'), requestId);
    await response.arrayBuffer();

    const handled = await server.waitForLog('request handled', (line) => line.requestId === requestId);
    assert.equal(handled.path, '/generate');
    assert.equal(handled.status, 200);
    assert.equal(handled.model, 'tiny');
    assert.equal(typeof handled.durationMs, 'number');

    // The batch lines may reach the pipe after the response body; wait for all three images.
    const batchLines = () => server.logs.filter((line: LogLine) => line.msg === 'batch finished' && line.requestIds?.includes(requestId));
    const imagesLogged = () => batchLines().reduce((sum, line) => sum + line.batchSize, 0);
    const deadline = Date.now() + 5000;
    while (imagesLogged() < 3 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 20));
    const batches = batchLines();
    assert.ok(batches.length >= 1, 'no "batch finished" line names the request id');
    assert.equal(imagesLogged(), 3);
    for (const batch of batches) {
      assert.equal(batch.model, 'tiny');
      assert.ok(batch.batchSize >= 1);
      assert.ok(batch.batchSize <= 4, `batch of ${batch.batchSize} exceeds --max-batch 4`);
      assert.equal(typeof batch.runMs, 'number');
      assert.equal(typeof batch.maxQueueMs, 'number');
    }
  });

  test('invalid client request id is replaced by a UUID', async () => {
    const response = await fetch(`${server.url}/models`, { headers: { ...auth, 'X-Request-Id': 'bad id with spaces' } });
    assert.equal(response.status, 200);
    assert.match(response.headers.get('x-request-id') ?? '', /^[0-9a-f-]{36}$/);
  });
});
