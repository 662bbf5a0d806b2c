/**
 * POST /project with loss=discriminator over real HTTP: on ada-tiny-32, whose network pickle carries
 * the discriminator, and on rosi-tiny-32, a rosinality checkpoint converted without one.
 */

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { convertFixture, makeTempDir, postJson, readJson, removeDir, startTestServer, type TestServer } from '../helpers/server.js';

let modelsDir: string;
let server: TestServer;

before(async () => {
  modelsDir = await makeTempDir('project-discriminator');
  await convertFixture(modelsDir, 'ada-tiny-32', 'ada-tiny-32.pkl');
  await convertFixture(modelsDir, 'rosi-tiny-32', 'rosi-tiny-32.pt');
  server = await startTestServer({ 'models-dir': modelsDir, model: 'ada-tiny-32' });
});

after(async () => {
  await server?.close();
  await removeDir(modelsDir);
});

async function generatedPng(model: string, seed: number): Promise<Uint8Array> {
  const response = await postJson(`${server.url}/generate`, { model, seeds: [seed], noise_mode: 'const' });
  assert.equal(response.status, 200);
  return new Uint8Array(await response.arrayBuffer());
}

async function project(image: Uint8Array, query: Record<string, string>): Promise<Response> {
  return fetch(`${server.url}/project?${new URLSearchParams(query).toString()}`, { method: 'POST', headers: { 'Content-Type': 'image/png' }, body: image });
}

describe('loss=discriminator', () => {
  test('projects on a model with a discriminator and names the loss', async (t) => {
    const target = await generatedPng('ada-tiny-32', 3);
    const response = await project(target, { model: 'ada-tiny-32', loss: 'discriminator', steps: '30', async: 'true' });
    assert.equal(response.status, 202, await response.clone().text());
    const job = (await response.json()) as { id: string };
    let body: any; // eslint-disable-line @typescript-eslint/no-explicit-any
    for (let attempt = 0; attempt < 600; attempt++) {
      body = await readJson(await fetch(`${server.url}/project/jobs/${job.id}`));
      if (body.status !== 'running') break;
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    assert.equal(body.status, 'succeeded', JSON.stringify(body).slice(0, 500));
    const result = body.result;
    assert.equal(result.loss_name, 'discriminator');
    assert.deepEqual(result.loss_weights, { pixel: 0.1, pixel_2x: 0, pixel_4x: 0, ssim: 0, discriminator: 1 });
    assert.ok(Number.isFinite(result.loss), `loss ${result.loss} is finite`);
    assert.ok(result.loss >= 0, `loss ${result.loss} is not negative`);
    assert.equal(result.ws.length, 8);
    t.diagnostic(`loss ${result.loss} after 30 steps, PSNR ${result.psnr} dB`);
    assert.ok(Number.isFinite(result.psnr), `psnr ${result.psnr}`);
  });

  test('returns 422 naming the available losses on a model without a discriminator', async () => {
    const target = await generatedPng('rosi-tiny-32', 3);
    const response = await project(target, { model: 'rosi-tiny-32', loss: 'discriminator', steps: '5' });
    const text = await response.text();
    assert.equal(response.status, 422, text);
    assert.equal(response.headers.get('content-type'), 'application/problem+json');
    const detail = JSON.parse(text).detail as string;
    assert.match(detail, /loss "discriminator" is not available/);
    assert.match(detail, /rosi-tiny-32/);
    assert.match(detail, /Available losses: pixel_ssim, mse$/);
  });
});
