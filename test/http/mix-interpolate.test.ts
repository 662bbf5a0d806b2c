/**
 * /mix and /interpolate over real HTTP: reference parity for style mixing and W interpolation on
 * every fixture model, grid layout, animated WebP pages equal to /generate, frame streams that stop
 * when the client leaves, and 422s for invalid layer lists, frame counts and spaces.
 */

import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import sharp from 'sharp';
import {
  convertFixture,
  decodeRgb,
  fixturesDir,
  makeTempDir,
  maxAbsDiff,
  parseMultipart,
  postJson,
  readJson,
  removeDir,
  startTestServer,
  type TestServer,
} from '../helpers/server.js';

const models = [
  { name: 'ada-tiny-32', file: 'ada-tiny-32.pkl', label: {} },
  { name: 'ada-cond-64', file: 'ada-cond-64.pkl', label: { class: 1 } },
  { name: 'sg3-stylegan2-32', file: 'sg3-stylegan2-32.pkl', label: {} },
  { name: 'rosi-tiny-32', file: 'rosi-tiny-32.pt', label: {} },
  { name: 'tf-tiny-32', file: 'tf-tiny-32.pkl', label: {} },
];

let modelsDir: string;
let server: TestServer;

before(async () => {
  modelsDir = await makeTempDir('mix');
  for (const m of models) await convertFixture(modelsDir, m.name, m.file);
  server = await startTestServer({ 'models-dir': modelsDir, model: 'ada-tiny-32', 'max-batch': '4', 'max-frames': '200' });
});

after(async () => {
  await server?.close();
  await removeDir(modelsDir);
});

async function referencePng(fixture: string, kind: 'style_mixing' | 'interpolate_w', t?: number) {
  const manifest = JSON.parse(await readFile(join(fixturesDir, fixture, 'manifest.json'), 'utf8'));
  const found = manifest.cases.find((c: { kind: string; t?: number }) => c.kind === kind && (t === undefined || c.t === t));
  assert.ok(found, `${fixture}: no ${kind} case`);
  return decodeRgb(await readFile(join(fixturesDir, fixture, found.files.png)));
}

async function expectProblem(response: Response, detail: RegExp) {
  assert.equal(response.status, 422);
  assert.equal(response.headers.get('content-type'), 'application/problem+json');
  assert.match((await readJson(response)).detail, detail);
}

describe('mix', () => {
  for (const m of models) {
    test(`${m.name} mix matches the reference`, async () => {
      const response = await postJson(`${server.url}/mix`, {
        model: m.name,
        rows: { seeds: [0] },
        cols: { seeds: [42] },
        styles: [0, 1, 2, 3],
        output: 'multipart',
        ...m.label,
      });
      assert.equal(response.status, 200, await response.clone().text());
      const parts = parseMultipart(new Uint8Array(await response.arrayBuffer()), response.headers.get('content-type')!);
      assert.equal(parts.length, 1);
      assert.equal(parts[0].headers['x-row-seed'], '0');
      assert.equal(parts[0].headers['x-col-seed'], '42');
      const got = await decodeRgb(parts[0].body);
      const want = await referencePng(m.name, 'style_mixing');
      assert.ok(maxAbsDiff(got.data, want.data) <= 1, `differs by ${maxAbsDiff(got.data, want.data)}`);
    });
  }

  test('returns a grid laid out like the reference', async () => {
    const rows = [0, 1];
    const cols = [42, 85, 7];
    const response = await postJson(`${server.url}/mix`, { rows: { seeds: rows }, cols: { seeds: cols }, styles: ['coarse'] });
    assert.equal(response.status, 200);
    assert.equal(response.headers.get('x-grid'), '3x4');
    const grid = await decodeRgb(new Uint8Array(await response.arrayBuffer()));
    assert.equal(grid.width, 4 * 32);
    assert.equal(grid.height, 3 * 32);
    const cell = (row: number, col: number) => {
      const out = new Uint8Array(32 * 32 * 3);
      for (let y = 0; y < 32; y++) {
        const start = ((row * 32 + y) * grid.width + col * 32) * 3;
        out.set(grid.data.subarray(start, start + 32 * 3), y * 32 * 3);
      }
      return out;
    };
    assert.ok(cell(0, 0).every((v) => v === 0), 'top-left cell is black');
    const single = async (seed: number) =>
      (await decodeRgb(new Uint8Array(await (await postJson(`${server.url}/generate`, { seeds: [seed] })).arrayBuffer()))).data;
    assert.deepEqual(cell(0, 2), await single(85), 'top row holds the column images');
    assert.deepEqual(cell(2, 0), await single(1), 'first column holds the row images');
  });

  test('rejects invalid layer lists naming numWs', async () => {
    await expectProblem(await postJson(`${server.url}/mix`, { rows: { seeds: [0] }, cols: { seeds: [1] }, styles: [8] }), /numWs 8/);
    await expectProblem(await postJson(`${server.url}/mix`, { rows: { seeds: [0] }, cols: { seeds: [1] }, styles: [-1] }), /numWs 8/);
    await expectProblem(await postJson(`${server.url}/mix`, { rows: { seeds: [0] }, cols: { seeds: [1] }, styles: ['fine'] }), /empty for a model with numWs 8/);
    const response = await postJson(`${server.url}/mix`, { rows: { seeds: [0] }, cols: { seeds: [1] }, styles: ['tiny'] });
    assert.equal(response.status, 422);
  });
});

describe('interpolate', () => {
  for (const m of models) {
    test(`${m.name} W interpolation matches the reference`, async () => {
      const response = await postJson(`${server.url}/interpolate`, {
        model: m.name,
        seeds: [0, 1],
        space: 'w',
        frames_per_segment: 4,
        output: 'multipart',
        ...m.label,
      });
      assert.equal(response.status, 200, await response.clone().text());
      const parts = parseMultipart(new Uint8Array(await response.arrayBuffer()), response.headers.get('content-type')!);
      assert.equal(parts.length, 5);
      assert.deepEqual(parts.map((p) => p.headers['x-frame']), ['0', '1', '2', '3', '4']);
      for (const [frame, t] of [
        [1, 0.25],
        [2, 0.5],
      ] as const) {
        const got = await decodeRgb(parts[frame].body);
        const want = await referencePng(m.name, 'interpolate_w', t);
        assert.ok(maxAbsDiff(got.data, want.data) <= 1, `t=${t} differs by ${maxAbsDiff(got.data, want.data)}`);
      }
    });
  }

  test('returns an animated WebP whose pages equal /generate', async () => {
    const request = { seeds: [3, 4], space: 'cubic', frames_per_segment: 4, delay_ms: 120, loop_count: 3 };
    const response = await postJson(`${server.url}/interpolate`, { ...request, output: 'webp' });
    assert.equal(response.status, 200, await response.clone().text());
    assert.equal(response.headers.get('content-type'), 'image/webp');
    const bytes = new Uint8Array(await response.arrayBuffer());
    const meta = await sharp(bytes, { animated: true }).metadata();
    assert.equal(meta.pages, 8);
    assert.equal(meta.pageHeight, 32);
    assert.equal(meta.width, 32);
    assert.deepEqual(meta.delay, Array(8).fill(120));
    assert.equal(meta.loop, 3);
    const { data } = await sharp(bytes, { animated: true }).removeAlpha().raw().toBuffer({ resolveWithObject: true });

    const latents = await postJson(`${server.url}/interpolate`, { ...request, output: 'ndjson', include_latents: true });
    const events = (await latents.text()).trim().split('\n').map((line) => JSON.parse(line));
    assert.equal(events.length, 8);
    for (const event of events) {
      const single = await postJson(`${server.url}/generate`, { ws: [event.ws] });
      const expected = await decodeRgb(new Uint8Array(await single.arrayBuffer()));
      const page = data.subarray(event.frame * 32 * 32 * 3, (event.frame + 1) * 32 * 32 * 3);
      assert.deepEqual(new Uint8Array(page), expected.data, `page ${event.frame}`);
      assert.deepEqual(Buffer.from(event.data, 'base64'), Buffer.from(await (await postJson(`${server.url}/generate`, { ws: [event.ws] })).arrayBuffer()));
    }
  });

  test('streams SSE frames in order and ends with an end event', async () => {
    const response = await postJson(`${server.url}/interpolate`, { seeds: [0, 1, 2], space: 'z', frames_per_segment: 2 }, { Accept: 'text/event-stream' });
    assert.equal(response.status, 200);
    assert.match(response.headers.get('content-type') ?? '', /text\/event-stream/);
    const text = await response.text();
    const frames = [...text.matchAll(/event: frame\ndata: (.*)\nid: (\d+)/g)].map((m) => Number(m[2]));
    assert.deepEqual(frames, [0, 1, 2, 3, 4]);
    assert.match(text, /event: end/);
  });

  test('rejects zero or too many frames and unknown spaces', async () => {
    await expectProblem(await postJson(`${server.url}/interpolate`, { seeds: [0, 1], frames_per_segment: 0 }), /frames_per_segment/);
    await expectProblem(await postJson(`${server.url}/interpolate`, { seeds: [0, 1], frames_per_segment: 500 }), /maxFrames 200/);
    await expectProblem(await postJson(`${server.url}/interpolate`, { seeds: [0, 1], space: 'q' }), /space/);
    await expectProblem(await postJson(`${server.url}/interpolate`, { seeds: [0] }), /at least 2 keyframes/);
    await expectProblem(await postJson(`${server.url}/interpolate`, { w: [Array(64).fill(0), Array(64).fill(1)], space: 'z' }), /space "z"/);
  });
});
