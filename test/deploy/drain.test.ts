/**
 * SIGTERM on the real CLI server during a long multipart request: readiness turns 503, new
 * requests get 503 problem+json, the in-flight request still gets every image, and the process
 * exits 0 after the drain.
 */

import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { makeTempDir, parseMultipart, postJson, readJson, removeDir, runCli } from '../helpers/server.js';
import { startCliServer, type CliServer } from './cli-server.js';

const seedCount = 64;

let modelsDir: string;
let server: CliServer | undefined;

before(async () => {
  modelsDir = await makeTempDir('deploy-drain');
  // The 64×64 sample model: slow enough on CPU that 64 images take about a second at batch 1.
  await runCli(['sample-model', '--models-dir', modelsDir]);
});

after(async () => {
  await server?.stop();
  await removeDir(modelsDir);
});

test('SIGTERM drains in-flight work and exits 0', async () => {
  server = await startCliServer([
    '--models-dir', modelsDir,
    '--model', 'sample',
    '--max-batch', '1',
    '--max-queue-delay-ms', '0',
    '--drain-timeout-ms', '30000',
  ]);
  const { url } = server;

  const seeds = Array.from({ length: seedCount }, (_, i) => i);
  const inFlight = await postJson(`${url}/generate`, { seeds });
  // Headers come with the first image, so the other 63 are queued or running now.
  assert.equal(inFlight.status, 200);
  let bodyDone = false;
  const body = inFlight.arrayBuffer().then((buffer) => {
    bodyDone = true;
    return new Uint8Array(buffer);
  });

  server.child.kill('SIGTERM');
  await server.waitForLog('draining', () => true, 5000);

  const ready = await fetch(`${url}/health/ready`);
  assert.equal(ready.status, 503);
  assert.deepEqual(await readJson(ready), { status: 'unavailable' });

  const health = await fetch(`${url}/health`);
  assert.equal(health.status, 503);
  assert.equal((await readJson(health)).status, 'draining');

  const rejected = await postJson(`${url}/generate`, { seeds: [1] });
  assert.equal(rejected.status, 503);
  assert.equal(rejected.headers.get('content-type'), 'application/problem+json');
  assert.ok(rejected.headers.get('retry-after'));
  const rejectedProblem = await readJson(rejected);
  assert.equal(rejectedProblem.status, 503);
  assert.match(rejectedProblem.type, /unavailable$/);
  assert.equal(bodyDone, false, 'the long request finished before the checks ran, so they did not overlap the drain');

  const parts = parseMultipart(await body, inFlight.headers.get('content-type') ?? '');
  assert.equal(parts.length, seedCount);
  for (const part of parts) {
    assert.equal(part.headers['content-type'], 'image/png');
    assert.ok(part.body.byteLength > 0);
  }
  assert.deepEqual(
    parts.map((part) => Number(part.headers['x-seed'])).sort((a, b) => a - b),
    seeds,
  );

  assert.equal(await server.exited, 0);
  assert.ok(server.logs.some((line) => line.msg === 'stopped' && line.reason === 'SIGTERM'));
  assert.ok(!server.logs.some((line) => line.msg === 'drain timed out; failing the remaining requests'));
});
