/**
 * Reference parity over real HTTP: every fixture checkpoint is converted with the CLI, served by
 * the real server, and every reference case is requested through /generate. PNGs must be within 1
 * of the reference on every channel of every pixel, and the raw float output within 1e-3.
 */

import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import {
  convertFixture,
  decodeRgb,
  fixturesDir,
  makeTempDir,
  maxAbsDiff,
  postJson,
  readF32,
  removeDir,
  startTestServer,
  type TestServer,
} from '../helpers/server.js';

interface FixtureCase {
  id: string;
  kind: 'generate' | 'style_mixing' | 'interpolate_w';
  seed?: number;
  truncation_psi: number;
  noise_mode: 'const' | 'none' | 'stored';
  class_idx?: number | null;
  files: { ws: string; img: string; png: string };
}

const fixtures = [
  { name: 'ada-tiny-32', file: 'ada-tiny-32.pkl' },
  { name: 'ada-cond-64', file: 'ada-cond-64.pkl' },
  { name: 'sg3-stylegan2-32', file: 'sg3-stylegan2-32.pkl' },
  { name: 'ada-clamp-32', file: 'ada-clamp-32.pkl' },
  { name: 'rosi-tiny-32', file: 'rosi-tiny-32.pt' },
  { name: 'rosi-legacy-32', fixture: 'rosi-tiny-32', file: 'rosi-tiny-32.legacy-format.pt' },
  { name: 'tf-tiny-32', file: 'tf-tiny-32.pkl' },
  { name: 'tf-tiny-32-v5', file: 'tf-tiny-32-v5.pkl' },
];

const pngTolerance = 1; // uint8 levels
const floatTolerance = 1e-3; // max abs on the float image

async function loadCases(fixture: string): Promise<FixtureCase[]> {
  const manifest = JSON.parse(await readFile(join(fixturesDir, fixture, 'manifest.json'), 'utf8'));
  return manifest.cases as FixtureCase[];
}

/** The /generate body that reproduces a fixture case. */
async function requestFor(fixture: string, model: string, c: FixtureCase): Promise<Record<string, unknown>> {
  const noise_mode = c.noise_mode === 'stored' ? 'const' : c.noise_mode;
  const label = c.class_idx === null || c.class_idx === undefined ? {} : { class: c.class_idx };
  if (c.kind === 'generate') return { model, seeds: [c.seed], psi: c.truncation_psi, noise_mode, ...label };
  // Mixing and interpolation cases store the exact ws they fed to synthesis.
  const ws = await readF32(join(fixturesDir, fixture, c.files.ws));
  const shape = JSON.parse(await readFile(join(fixturesDir, fixture, 'manifest.json'), 'utf8')).model;
  const numWs: number = shape.num_ws ?? shape.n_latent;
  const wDim = ws.length / numWs;
  const rows = Array.from({ length: numWs }, (_, l) => Array.from(ws.subarray(l * wDim, (l + 1) * wDim)));
  return { model, ws: [rows], noise_mode };
}

describe('generate parity with the reference', () => {
  let modelsDir: string;
  let server: TestServer;

  before(async () => {
    modelsDir = await makeTempDir('parity');
    for (const f of fixtures) await convertFixture(modelsDir, f.fixture ?? f.name, f.file, f.name);
    server = await startTestServer({ 'models-dir': modelsDir, model: 'ada-tiny-32' });
  });

  after(async () => {
    await server?.close();
    await removeDir(modelsDir);
  });

  for (const f of fixtures) {
    const fixture = f.fixture ?? f.name;
    test(`${f.name} matches every reference case`, async () => {
      const cases = await loadCases(fixture);
      assert.ok(cases.length >= 6, `expected fixture cases for ${fixture}`);
      for (const c of cases) {
        const body = await requestFor(fixture, f.name, c);

        const png = await postJson(`${server.url}/generate`, { ...body, format: 'png' });
        assert.equal(png.status, 200, `${c.id}: ${await png.clone().text()}`);
        assert.equal(png.headers.get('content-type'), 'image/png');
        const got = await decodeRgb(new Uint8Array(await png.arrayBuffer()));
        const want = await decodeRgb(await readFile(join(fixturesDir, fixture, c.files.png)));
        assert.equal(got.width, want.width, `${c.id}: width`);
        assert.ok(maxAbsDiff(got.data, want.data) <= pngTolerance, `${c.id}: PNG differs by ${maxAbsDiff(got.data, want.data)}`);

        const raw = await postJson(`${server.url}/generate`, { ...body, format: 'raw' });
        assert.equal(raw.status, 200, `${c.id}: ${await raw.clone().text()}`);
        const image = new Float32Array(await raw.arrayBuffer());
        const reference = await readF32(join(fixturesDir, fixture, c.files.img));
        const err = maxAbsDiff(image, reference);
        assert.ok(err <= floatTolerance, `${c.id}: float image differs by ${err}`);
      }
    });
  }
});
