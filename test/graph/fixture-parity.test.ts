/**
 * ONNX graphs built from real checkpoint files versus the reference outputs stored with the
 * fixtures: z -> ws through the mapping graph, ws -> img through the synthesis graph (noise const
 * and none), and the style-mixing and interpolation ws fed straight to synthesis.
 */

import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';

import { readCheckpoint } from '../../src/checkpoint/index.js';
import type { GeneratorWeights } from '../../src/checkpoint/types.js';
import { noiseConstBytes } from '../../src/graph/convert.js';
import { noiseLayers } from '../../src/graph/layers.js';
import { buildMappingGraph } from '../../src/graph/mapping.js';
import { buildSynthesisGraph } from '../../src/graph/synthesis.js';
import { createSession, maxAbsDiff, runMapping, runSynthesis, type MappingRow } from './graph-session.js';

const fixturesDir = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'fixtures');
const wsTolerance = 1e-4;
const imgTolerance = 1e-3;

interface FixtureCase {
  id: string;
  kind: 'generate' | 'style_mixing' | 'interpolate_w';
  truncation_psi: number;
  noise_mode: 'const' | 'none' | 'stored';
  files: { z_f32?: string; c?: string | null; ws: string; img: string };
}

/** Fixture models: folder and checkpoint file name. */
const fixtureModels = [
  ['ada-tiny-32', 'ada-tiny-32.pkl'],
  ['ada-cond-64', 'ada-cond-64.pkl'],
  ['sg3-stylegan2-32', 'sg3-stylegan2-32.pkl'],
  ['ada-clamp-32', 'ada-clamp-32.pkl'],
  ['rosi-tiny-32', 'rosi-tiny-32.pt'],
  ['rosi-tiny-32', 'rosi-tiny-32.legacy-format.pt'],
  ['tf-tiny-32', 'tf-tiny-32.pkl'],
  ['tf-tiny-32-v5', 'tf-tiny-32-v5.pkl'],
] as const;

function readF32(folder: string, file: string): Float32Array {
  const bytes = readFileSync(path.join(fixturesDir, folder, file));
  const out = new Float32Array(bytes.byteLength / 4);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  for (let i = 0; i < out.length; i++) out[i] = view.getFloat32(i * 4, true);
  return out;
}

/** Returns the stored noise maps, one `[R·R]` array per noise layer, as the converter writes them. */
function constNoise(weights: GeneratorWeights): Float32Array[] {
  const bytes = noiseConstBytes(weights);
  const all = new Float32Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength));
  return noiseLayers(weights.arch).map((layer) => all.slice(layer.offset, layer.offset + layer.resolution * layer.resolution));
}

function zeroNoise(weights: GeneratorWeights): Float32Array[] {
  return noiseLayers(weights.arch).map((layer) => new Float32Array(layer.resolution * layer.resolution));
}

describe('fixture parity', () => {
  for (const [folder, checkpointFile] of fixtureModels) {
    it(`${checkpointFile} matches reference outputs`, async () => {
      const manifest = JSON.parse(readFileSync(path.join(fixturesDir, folder, 'manifest.json'), 'utf8')) as { cases: FixtureCase[] };
      const weights = await readCheckpoint(new Uint8Array(readFileSync(path.join(fixturesDir, folder, checkpointFile))));
      const { arch } = weights;
      const mapping = await createSession(buildMappingGraph(weights));
      const synthesis = await createSession(buildSynthesisGraph(weights));

      const generateCases = manifest.cases.filter((c) => c.kind === 'generate');
      assert.ok(generateCases.length >= 6, `${folder} has generate cases`);
      const rows: MappingRow[] = generateCases.map((c) => ({
        z: readF32(folder, c.files.z_f32!),
        c: c.files.c ? readF32(folder, c.files.c) : undefined,
        psi: c.truncation_psi,
        cutoff: arch.numWs,
      }));
      const wsRows = await runMapping(mapping, arch, rows);
      generateCases.forEach((c, i) => {
        const error = maxAbsDiff(wsRows[i], readF32(folder, c.files.ws));
        assert.ok(error < wsTolerance, `${folder} ${c.id}: ws max error ${error}`);
      });

      for (const mode of ['const', 'none'] as const) {
        const indices = generateCases.flatMap((c, i) => ((c.noise_mode === 'none') === (mode === 'none') ? [i] : []));
        const images = await runSynthesis(synthesis, arch, indices.map((i) => wsRows[i]), mode === 'none' ? zeroNoise(weights) : constNoise(weights));
        indices.forEach((caseIndex, n) => {
          const c = generateCases[caseIndex];
          const error = maxAbsDiff(images[n], readF32(folder, c.files.img));
          assert.ok(error < imgTolerance, `${folder} ${c.id}: img max error ${error}`);
        });
      }

      for (const c of manifest.cases.filter((entry) => entry.kind !== 'generate')) {
        const noise = c.noise_mode === 'none' ? zeroNoise(weights) : constNoise(weights);
        const [image] = await runSynthesis(synthesis, arch, [readF32(folder, c.files.ws)], noise);
        const error = maxAbsDiff(image, readF32(folder, c.files.img));
        assert.ok(error < imgTolerance, `${folder} ${c.id}: img max error ${error}`);
      }
    });
  }
});
