/**
 * POST /project over real HTTP on converted fixtures: convergence on an image the model generated,
 * reproduction of the result with /generate, conditional models, upload pre-processing and limits,
 * and async jobs with cancellation.
 */

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import sharp from 'sharp';
import { convertFixture, decodeRgb, makeTempDir, postJson, readJson, removeDir, startTestServer, type TestServer } from '../helpers/server.js';

let modelsDir: string;
let server: TestServer;

/** Pixel limit of the test server: 300x200 uploads fit, 400x400 does not. */
const maxUploadPixels = 100_000;
const maxUploadBytes = 200_000;

before(async () => {
  modelsDir = await makeTempDir('project');
  await convertFixture(modelsDir, 'ada-tiny-32', 'ada-tiny-32.pkl');
  await convertFixture(modelsDir, 'ada-cond-64', 'ada-cond-64.pkl');
  server = await startTestServer({
    'models-dir': modelsDir,
    model: 'ada-tiny-32',
    'max-upload-pixels': String(maxUploadPixels),
    'max-upload-bytes': String(maxUploadBytes),
    'max-project-jobs': '1',
  });
});

after(async () => {
  await server?.close();
  await removeDir(modelsDir);
});

interface SseEvent {
  event: string;
  data: string;
}

function parseSse(text: string): SseEvent[] {
  return text
    .split('\n\n')
    .filter((block) => block.trim() !== '')
    .map((block) => {
      let event = 'message';
      const data: string[] = [];
      for (const line of block.split('\n')) {
        if (line.startsWith('event:')) event = line.slice(6).trim();
        else if (line.startsWith('data:')) data.push(line.slice(5).trimStart());
      }
      return { event, data: data.join('\n') };
    });
}

async function projectRaw(body: Uint8Array, contentType: string, query: Record<string, string>): Promise<Response> {
  const search = new URLSearchParams(query).toString();
  return fetch(`${server.url}/project?${search}`, { method: 'POST', headers: { 'Content-Type': contentType }, body });
}

async function projectForm(image: Uint8Array, fields: Record<string, string>, fileType = 'image/png'): Promise<Response> {
  const form = new FormData();
  form.set('image', new Blob([image], { type: fileType }), 'target');
  for (const [key, value] of Object.entries(fields)) form.set(key, value);
  return fetch(`${server.url}/project`, { method: 'POST', body: form });
}

/** Reads an SSE projection response and returns its events and the parsed result. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
async function readProjection(response: Response): Promise<{ events: SseEvent[]; result: any }> {
  assert.equal(response.status, 200, await response.clone().text());
  assert.match(response.headers.get('content-type') ?? '', /^text\/event-stream/);
  const events = parseSse(await response.text());
  const last = events[events.length - 1];
  assert.equal(last.event, 'result', `the stream ended with ${last.event}: ${last.data}`);
  return { events, result: JSON.parse(last.data) };
}

async function generatedPng(seed: number): Promise<Uint8Array> {
  const response = await postJson(`${server.url}/generate`, { seeds: [seed], noise_mode: 'const' });
  assert.equal(response.status, 200);
  return new Uint8Array(await response.arrayBuffer());
}

async function expectProblem(response: Response, status: number, detail: RegExp): Promise<void> {
  const text = await response.text();
  assert.equal(response.status, status, text);
  assert.equal(response.headers.get('content-type'), 'application/problem+json');
  assert.match(JSON.parse(text).detail, detail);
}

describe('projection convergence', () => {
  // The fixture generator has untrained random weights, so its loss landscape has many local minima
  // and the outcome depends on the target. Measured with 200 steps (2-core x86-64, ONNX Runtime 1.31):
  // mode w reached 39.1 dB on seed 3 and 26.4 dB on seed 2, where it stalls; w_plus reached 34.8 and
  // 29.6 dB. The tests use seed 3 for the 30 dB bar and seed 2 for w_plus against a stalled w.
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  let wResult: any;

  test('mode w reaches 30 dB on a generated image', async () => {
    const target = await generatedPng(3);
    const { events, result } = await readProjection(await projectRaw(target, 'image/png', { mode: 'w' }));
    const progress = events.filter((e) => e.event === 'progress');
    assert.equal(progress.length, 200);
    assert.equal(result.steps, 200);
    assert.equal(result.loss_name, 'pixel_ssim');
    assert.equal(result.image_noise, 'const');
    assert.ok(result.psnr >= 30, `PSNR ${result.psnr} dB after 200 steps`);
    assert.equal(result.ws.length, 8);
    assert.equal(result.w.length, 64);
    wResult = result;
  });

  test('mode w_plus reaches 30 dB on the same image', async () => {
    const target = await generatedPng(3);
    const { result } = await readProjection(await projectRaw(target, 'image/png', { mode: 'w_plus' }));
    assert.equal(result.w, null);
    assert.ok(result.psnr >= 30, `w_plus PSNR ${result.psnr} dB after 200 steps`);
  });

  test('mode w_plus does at least as well as a stalled w', async () => {
    const target = await generatedPng(2);
    const w = (await readProjection(await projectRaw(target, 'image/png', { mode: 'w' }))).result;
    const wPlus = (await readProjection(await projectRaw(target, 'image/png', { mode: 'w_plus' }))).result;
    assert.ok(wPlus.psnr >= w.psnr, `w_plus ${wPlus.psnr} dB vs w ${w.psnr} dB`);
  });

  test('returned ws re-render to the same image', async () => {
    const response = await postJson(`${server.url}/generate`, { ws: [wResult.ws], noise_mode: 'const' });
    assert.equal(response.status, 200);
    const rendered = await decodeRgb(new Uint8Array(await response.arrayBuffer()));
    const returned = await decodeRgb(Buffer.from(wResult.image_png, 'base64'));
    assert.deepEqual(rendered.data, returned.data);
  });

  test('optimised noise is reported with a const-noise image', async () => {
    const target = await generatedPng(6);
    const { result, events } = await readProjection(await projectForm(target, { steps: '20', optimize_noise: 'true', preview_every: '10' }));
    assert.equal(result.image_noise, 'optimized');
    assert.equal(typeof result.const_noise_image_png, 'string');
    assert.equal(Buffer.from(result.noise_f32_base64, 'base64').byteLength, 4 * (16 + 64 * 2 + 256 * 2 + 1024 * 2));
    const previews = events.filter((e) => e.event === 'progress' && JSON.parse(e.data).preview_png !== undefined);
    assert.equal(previews.length, 2);
    const response = await postJson(`${server.url}/generate`, { ws: [result.ws], noise_mode: 'const' });
    const rendered = await decodeRgb(new Uint8Array(await response.arrayBuffer()));
    const returned = await decodeRgb(Buffer.from(result.const_noise_image_png, 'base64'));
    assert.deepEqual(rendered.data, returned.data);
  });
});

describe('projection of conditional models', () => {
  test('rejects a missing class with 422', async () => {
    const target = await sharp({ create: { width: 64, height: 64, channels: 3, background: '#808080' } }).png().toBuffer();
    await expectProblem(await projectRaw(target, 'image/png', { model: 'ada-cond-64', steps: '2' }), 422, /conditional/);
  });

  test('projects with a class', async () => {
    const target = await sharp({ create: { width: 64, height: 64, channels: 3, background: '#808080' } }).png().toBuffer();
    const { result } = await readProjection(await projectRaw(target, 'image/png', { model: 'ada-cond-64', steps: '2', class: '1' }));
    assert.equal(result.class, 1);
    assert.equal(result.ws.length, 10);
  });
});

/** Decodes the pre-processed target of a result to `[32, 32, 3]`. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
async function targetPixels(result: any) {
  const decoded = await decodeRgb(Buffer.from(result.target_png, 'base64'));
  assert.equal(decoded.width, 32);
  assert.equal(decoded.height, 32);
  return decoded.data;
}

function pixel(data: Uint8Array, x: number, y: number): number[] {
  return Array.from(data.subarray((y * 32 + x) * 3, (y * 32 + x) * 3 + 3));
}

function near(actual: number[], expected: number[], tolerance: number): boolean {
  return actual.every((value, i) => Math.abs(value - expected[i]) <= tolerance);
}

describe('projection uploads', () => {
  test('applies EXIF orientation 6 to a 300x200 JPEG', async () => {
    // Stored image: left half red, right half blue. Orientation 6 rotates it 90° clockwise for display,
    // so the displayed image (200 wide, 300 tall) is red on top and blue at the bottom.
    const stored = new Uint8Array(300 * 200 * 3);
    for (let y = 0; y < 200; y++) {
      for (let x = 0; x < 300; x++) stored.set(x < 150 ? [255, 0, 0] : [0, 0, 255], (y * 300 + x) * 3);
    }
    const jpeg = await sharp(stored, { raw: { width: 300, height: 200, channels: 3 } }).jpeg({ quality: 95 }).withMetadata({ orientation: 6 }).toBuffer();
    assert.equal((await sharp(jpeg).metadata()).orientation, 6);
    const { result } = await readProjection(await projectForm(jpeg, { steps: '1' }, 'image/jpeg'));
    assert.deepEqual(
      { format: result.target.format, width: result.target.width, height: result.target.height, orientation: result.target.orientation },
      { format: 'jpeg', width: 300, height: 200, orientation: 6 },
    );
    assert.equal(result.target.oriented_width, 200);
    assert.equal(result.target.oriented_height, 300);
    const pixels = await targetPixels(result);
    assert.ok(near(pixel(pixels, 16, 2), [255, 0, 0], 40), `top centre is ${pixel(pixels, 16, 2)}, expected red`);
    assert.ok(near(pixel(pixels, 16, 29), [0, 0, 255], 40), `bottom centre is ${pixel(pixels, 16, 29)}, expected blue`);
  });

  test('resizes a 17x17 PNG to the model resolution', async () => {
    const png = await sharp({ create: { width: 17, height: 17, channels: 3, background: '#20a040' } }).png().toBuffer();
    const { result } = await readProjection(await projectRaw(png, 'image/png', { steps: '1' }));
    assert.equal(result.target.width, 17);
    const pixels = await targetPixels(result);
    assert.ok(near(pixel(pixels, 16, 16), [0x20, 0xa0, 0x40], 2), `centre is ${pixel(pixels, 16, 16)}`);
  });

  test('flattens an RGBA PNG onto white', async () => {
    const rgba = new Uint8Array(40 * 40 * 4);
    for (let i = 0; i < 40 * 40; i++) rgba.set(i % 40 < 20 ? [0, 0, 0, 0] : [0, 0, 0, 255], i * 4);
    const png = await sharp(rgba, { raw: { width: 40, height: 40, channels: 4 } }).png().toBuffer();
    const { result } = await readProjection(await projectRaw(png, 'image/png', { steps: '1' }));
    const pixels = await targetPixels(result);
    assert.deepEqual(pixel(pixels, 2, 16), [255, 255, 255]);
    assert.deepEqual(pixel(pixels, 29, 16), [0, 0, 0]);
  });

  test('converts a greyscale PNG to RGB', async () => {
    const grey = new Uint8Array(32 * 32).fill(90);
    const png = await sharp(grey, { raw: { width: 32, height: 32, channels: 1 } }).toColourspace('b-w').png().toBuffer();
    assert.equal((await sharp(png).metadata()).channels, 1);
    const { result } = await readProjection(await projectRaw(png, 'image/png', { steps: '1' }));
    const pixels = await targetPixels(result);
    assert.ok(near(pixel(pixels, 10, 10), [90, 90, 90], 1), `pixel is ${pixel(pixels, 10, 10)}`);
  });

  test('rejects a 2 KB non-image with 415', async () => {
    const text = new TextEncoder().encode('not an image '.repeat(160)); // 2080 bytes
    await expectProblem(await projectRaw(text, 'image/png', {}), 415, /not a readable image/);
    await expectProblem(await projectForm(text, {}), 415, /not a readable image/);
  });

  test('rejects an unsupported content type with 415', async () => {
    await expectProblem(await projectRaw(new TextEncoder().encode('{}'), 'application/json', {}), 415, /not accepted/);
  });

  test('rejects an image over the pixel limit with 413', async () => {
    const png = await sharp({ create: { width: 400, height: 400, channels: 3, background: '#000000' } }).png().toBuffer();
    await expectProblem(await projectRaw(png, 'image/png', {}), 413, /160000 pixels/);
  });

  test('rejects a body over the upload limit with 413', async () => {
    await expectProblem(await projectRaw(new Uint8Array(maxUploadBytes + 1), 'image/png', {}), 413, /max-upload-bytes/);
  });

  test('rejects steps above the limit with 422', async () => {
    const png = await sharp({ create: { width: 8, height: 8, channels: 3, background: '#000000' } }).png().toBuffer();
    await expectProblem(await projectRaw(png, 'image/png', { steps: '1001' }), 422, /max-project-steps/);
  });
});

describe('projection jobs', () => {
  test('runs, reports progress and stops within one step of a cancel', async () => {
    const target = await generatedPng(7);
    const created = await projectRaw(target, 'image/png', { async: 'true', steps: '1000' });
    assert.equal(created.status, 202);
    const job = await readJson(created);
    assert.equal(created.headers.get('location'), `/project/jobs/${job.id}`);
    assert.equal(job.status, 'running');

    // A second projection while the only slot is taken gets 429.
    await expectProblem(await projectRaw(target, 'image/png', { steps: '1' }), 429, /max-project-jobs/);

    let status = job;
    for (let i = 0; i < 200 && status.step < 3; i++) {
      await new Promise((resolve) => setTimeout(resolve, 25));
      status = await readJson(await fetch(`${server.url}/project/jobs/${job.id}`));
    }
    assert.ok(status.step >= 3, `job reached step ${status.step}`);

    const stepBeforeCancel = status.step;
    const cancelled = await fetch(`${server.url}/project/jobs/${job.id}`, { method: 'DELETE' });
    assert.equal(cancelled.status, 200);
    const afterCancel = await readJson(cancelled);
    assert.equal(afterCancel.status, 'cancelled');
    assert.ok(afterCancel.step < 1000);
    assert.equal(afterCancel.result, undefined);
    await new Promise((resolve) => setTimeout(resolve, 200));
    const later = await readJson(await fetch(`${server.url}/project/jobs/${job.id}`));
    assert.equal(later.step, afterCancel.step, 'the job advanced after the cancel returned');
    assert.ok(later.step >= stepBeforeCancel);
  });

  test('returns the result of a finished job', async () => {
    const target = await generatedPng(8);
    const job = await readJson(await projectRaw(target, 'image/png', { async: 'true', steps: '5' }));
    let status = job;
    for (let i = 0; i < 400 && status.status === 'running'; i++) {
      await new Promise((resolve) => setTimeout(resolve, 25));
      status = await readJson(await fetch(`${server.url}/project/jobs/${job.id}`));
    }
    assert.equal(status.status, 'succeeded');
    assert.equal(status.step, 5);
    assert.equal(status.result.steps, 5);
    assert.equal(status.result.ws.length, 8);
  });

  test('unknown job id is 404', async () => {
    const response = await fetch(`${server.url}/project/jobs/2f6f1f7e-2b1a-4c8e-9f3e-0d6f3b8f2a11`);
    await expectProblem(response, 404, /not found/);
  });
});
