/**
 * Closed-form directions and /edit: stored directions equal eigenvectors found independently by
 * power iteration on the checkpoint's affine weights; strength 0 reproduces /generate; bad
 * indices and layer lists get 422s naming the valid range.
 */

import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { readCheckpoint } from '../../src/checkpoint/index.js';
import {
  convertFixture,
  fixturesDir,
  makeTempDir,
  parseMultipart,
  postJson,
  readJson,
  removeDir,
  startTestServer,
  type TestServer,
} from '../helpers/server.js';

const models = [
  { name: 'ada-tiny-32', file: 'ada-tiny-32.pkl' },
  { name: 'rosi-tiny-32', file: 'rosi-tiny-32.pt' },
];

let modelsDir: string;
let server: TestServer;

before(async () => {
  modelsDir = await makeTempDir('edit');
  for (const m of models) await convertFixture(modelsDir, m.name, m.file);
  server = await startTestServer({ 'models-dir': modelsDir, model: 'ada-tiny-32' });
});

after(async () => {
  await server?.close();
  await removeDir(modelsDir);
});

/** Top-k eigenvectors of AᵀA by power iteration with deflation, A = all stacked affine weights. */
function powerIterationDirections(rows: Float32Array[], wDim: number, k: number): Float64Array[] {
  const apply = (v: Float64Array) => {
    const out = new Float64Array(wDim);
    for (const row of rows) {
      let dot = 0;
      for (let j = 0; j < wDim; j++) dot += row[j] * v[j];
      for (let j = 0; j < wDim; j++) out[j] += dot * row[j];
    }
    return out;
  };
  const found: Float64Array[] = [];
  for (let n = 0; n < k; n++) {
    let v = Float64Array.from({ length: wDim }, (_, j) => Math.cos(j * 1.7 + n));
    for (let iter = 0; iter < 3000; iter++) {
      for (const u of found) {
        let dot = 0;
        for (let j = 0; j < wDim; j++) dot += u[j] * v[j];
        for (let j = 0; j < wDim; j++) v[j] -= dot * u[j];
      }
      const next = apply(v);
      const norm = Math.hypot(...next);
      v = next.map((x) => x / norm);
    }
    found.push(v);
  }
  return found;
}

describe('closed-form directions', () => {
  for (const m of models) {
    test(`${m.name} directions equal power-iteration eigenvectors`, async () => {
      const weights = readCheckpoint(await readFile(join(fixturesDir, m.name, m.file)));
      const rows: Float32Array[] = [];
      for (const [name, tensor] of weights.tensors) {
        const isConvAffine = /^synthesis\.b\d+\.conv[01]\.affine\.weight$/.test(name);
        if (isConvAffine || name === 'synthesis.b4.torgb.affine.weight') {
          const wDim = tensor.shape[1];
          for (let r = 0; r < tensor.shape[0]; r++) rows.push(tensor.data.subarray(r * wDim, (r + 1) * wDim));
        }
      }
      const wDim = weights.arch.wDim;
      const expected = powerIterationDirections(rows, wDim, 3);

      const listed = await readJson(await fetch(`${server.url}/models/${m.name}/directions`));
      const all = listed.sets.find((s: { name: string }) => s.name === 'all');
      assert.equal(all.eigenvalues.length, wDim);
      const manifest = JSON.parse(await readFile(join(modelsDir, m.name, 'model.json'), 'utf8'));
      const bytes = await readFile(join(modelsDir, m.name, manifest.directions.file));
      const stored = new Float32Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength));
      expected.forEach((want, k) => {
        const got = stored.subarray(k * wDim, (k + 1) * wDim);
        let dot = 0;
        for (let j = 0; j < wDim; j++) dot += got[j] * want[j];
        const sign = Math.sign(dot);
        let err = 0;
        for (let j = 0; j < wDim; j++) err = Math.max(err, Math.abs(got[j] - sign * want[j]));
        assert.ok(err < 1e-4, `direction ${k} differs by ${err}`);
      });
    });
  }
});

describe('edit', () => {
  test('returns the /generate image at strength 0 and distinct images at ±d', async () => {
    const response = await postJson(`${server.url}/edit`, { seeds: [5], direction: 0, strengths: [-3, 0, 3] });
    assert.equal(response.status, 200, await response.clone().text());
    const parts = parseMultipart(new Uint8Array(await response.arrayBuffer()), response.headers.get('content-type')!);
    const byStrength = new Map(parts.map((p) => [Number(p.headers['x-strength']), p.body]));
    const plain = new Uint8Array(await (await postJson(`${server.url}/generate`, { seeds: [5] })).arrayBuffer());
    assert.deepEqual(byStrength.get(0), plain);
    assert.notDeepEqual(byStrength.get(-3), plain);
    assert.notDeepEqual(byStrength.get(3), plain);
    assert.notDeepEqual(byStrength.get(3), byStrength.get(-3));
  });

  test('returns a strip for a strength range', async () => {
    const response = await postJson(`${server.url}/edit`, {
      seeds: [5],
      direction: 1,
      direction_set: 'coarse',
      strengths: { from: -2, to: 2, count: 4 },
      output: 'strip',
    });
    assert.equal(response.status, 200);
    const { default: sharp } = await import('sharp');
    const meta = await sharp(new Uint8Array(await response.arrayBuffer())).metadata();
    assert.equal(meta.width, 4 * 32);
    assert.equal(meta.height, 32);
  });

  test('accepts a direction vector of length wDim', async () => {
    const response = await postJson(`${server.url}/edit`, { seeds: [5], vector: Array(64).fill(0.1), strengths: [1] });
    assert.equal(response.status, 200);
  });

  test('rejects invalid direction indices and layers naming the range', async () => {
    const cases: [unknown, RegExp][] = [
      [{ seeds: [5], direction: 64 }, /direction index in \[0, 63\]/],
      [{ seeds: [5], direction: 0, layers: [8] }, /ws index in \[0, 7\]/],
      [{ seeds: [5], direction: 0, layers: [-1] }, /ws index in \[0, 7\]/],
      [{ seeds: [5], vector: [1, 2] }, /expected 64 values/],
      [{ seeds: [5] }, /exactly one of `direction`/],
      [{ seeds: [5], direction: 0, direction_set: 'fine' }, /no "fine" set; available: all, coarse, middle/],
    ];
    for (const [body, detail] of cases) {
      const response = await postJson(`${server.url}/edit`, body);
      assert.equal(response.status, 422, JSON.stringify(body));
      assert.match((await readJson(response)).detail, detail);
    }
  });
});
