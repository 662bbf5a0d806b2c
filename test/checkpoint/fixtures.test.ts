/**
 * Reads every fixture checkpoint and compares the result with the fixture manifests, which were
 * written by the reference implementations: architecture numbers, and shape, sum and max|x| of
 * every G_ema tensor.
 */

import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { readCheckpoint } from '../../src/checkpoint/index.js';
import { nvlabsGlobals, nvlabsWeights } from '../../src/checkpoint/nvlabs.js';
import { unpickle } from '../../src/checkpoint/pickle-vm.js';
import { allowlist } from '../../src/checkpoint/torch-storage.js';
import type { GeneratorWeights, Tensor } from '../../src/checkpoint/types.js';
import { ZipArchive } from '../../src/checkpoint/zip.js';
import { buildZip } from './crafted.js';

const fixtures = join(import.meta.dirname, '..', 'fixtures');

interface TensorRecord {
  name: string;
  shape: number[];
  sum: number;
  max_abs: number;
}

interface Manifest {
  model: Record<string, unknown> & { g_ema_tensors: TensorRecord[] };
  network_pickle?: { max_abs_diff_G_vs_G_ema?: number };
}

function loadManifest(model: string): Manifest {
  return JSON.parse(readFileSync(join(fixtures, model, 'manifest.json'), 'utf8')) as Manifest;
}

function readFixture(model: string, file: string): GeneratorWeights {
  return readCheckpoint(readFileSync(join(fixtures, model, file)), { fileName: file });
}

function readFloat32(model: string, file: string): Float32Array {
  const bytes = readFileSync(join(fixtures, model, file));
  return new Float32Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.length));
}

function stats(data: Float32Array): { sum: number; maxAbs: number; absSum: number } {
  let sum = 0;
  let absSum = 0;
  let maxAbs = 0;
  for (const v of data) {
    sum += v;
    absSum += Math.abs(v);
    maxAbs = Math.max(maxAbs, Math.abs(v));
  }
  return { sum, maxAbs, absSum };
}

/** Compares one tensor with a manifest record; the sums may differ only by float64 summation order. */
function assertMatches(name: string, tensor: Tensor | undefined, record: { shape: number[]; sum: number; max_abs: number }): void {
  assert.ok(tensor, `${name} is missing`);
  assert.deepEqual(tensor.shape, record.shape, `${name} shape`);
  const { sum, maxAbs, absSum } = stats(tensor.data);
  assert.ok(Math.abs(sum - record.sum) <= 1e-9 * Math.max(1, absSum), `${name} sum ${sum}, expected ${record.sum}`);
  assert.equal(maxAbs, record.max_abs, `${name} max|x|`);
}

const nvlabsLikeFixtures = [
  { model: 'ada-tiny-32', file: 'ada-tiny-32.pkl', format: 'nvlabs-pickle' },
  { model: 'ada-cond-64', file: 'ada-cond-64.pkl', format: 'nvlabs-pickle' },
  { model: 'sg3-stylegan2-32', file: 'sg3-stylegan2-32.pkl', format: 'nvlabs-pickle' },
  { model: 'ada-clamp-32', file: 'ada-clamp-32.pkl', format: 'nvlabs-pickle' },
  { model: 'tf-tiny-32', file: 'tf-tiny-32.pkl', format: 'tf-pickle' },
  { model: 'tf-tiny-32-v5', file: 'tf-tiny-32-v5.pkl', format: 'tf-pickle' },
];

describe('NVlabs and TensorFlow fixture pickles', () => {
  for (const { model, file, format } of nvlabsLikeFixtures) {
    describe(model, () => {
      const manifest = loadManifest(model);
      const weights = readFixture(model, file);
      const m = manifest.model;

      it('detects the format', () => {
        assert.equal(weights.source.format, format);
      });

      it('reads the architecture of the manifest', () => {
        const { arch } = weights;
        assert.equal(arch.zDim, m.z_dim);
        assert.equal(arch.wDim, m.w_dim);
        assert.equal(arch.cDim, m.c_dim);
        assert.equal(arch.resolution, m.img_resolution);
        assert.equal(arch.imgChannels, m.img_channels);
        assert.equal(arch.numWs, m.num_ws);
        assert.equal(arch.mappingLayers, m.mapping_layers);
        assert.deepEqual(arch.channels, Object.fromEntries(Object.entries(m.channels as Record<string, number>).map(([k, v]) => [Number(k), v])));
        assert.deepEqual(arch.fp16Resolutions, m.use_fp16_blocks);
        assert.equal(arch.convClamp, m.conv_clamp);
        assert.equal(arch.architecture, m.architecture);
        assert.equal(arch.activation, 'lrelu');
        assert.equal(arch.useNoise, true);
        assert.equal(arch.mappingLrMultiplier, 0.01);
      });

      it('matches every G_ema tensor of the manifest', () => {
        const records = m.g_ema_tensors;
        assert.deepEqual([...weights.tensors.keys()].sort(), records.map((r) => r.name).sort());
        for (const record of records) assertMatches(record.name, weights.tensors.get(record.name), record);
      });

      it('returns the stored w_avg exactly', () => {
        assert.equal(weights.wAvgSource, 'checkpoint');
        assert.deepEqual(weights.wAvg, readFloat32(model, 'w_avg.f32.bin'));
        assert.deepEqual(weights.warnings, []);
      });
    });
  }

  it('reports the network class of stylegan3-repository pickles', () => {
    assert.equal(readFixture('sg3-stylegan2-32', 'sg3-stylegan2-32.pkl').source.details.networkClass, 'training.networks_stylegan2.Generator');
    assert.equal(readFixture('ada-tiny-32', 'ada-tiny-32.pkl').source.details.networkClass, 'training.networks.Generator');
  });

  it('reads the label embedding of the conditional model', () => {
    const { arch, tensors } = readFixture('ada-cond-64', 'ada-cond-64.pkl');
    assert.equal(arch.embedFeatures, 64);
    assert.deepEqual(tensors.get('mapping.embed.weight')?.shape, [64, 3]);
    assert.deepEqual(tensors.get('mapping.fc0.weight')?.shape, [64, 32 + 64]); // z_dim 32 + embed 64
  });
});

describe('G versus G_ema', () => {
  const bytes = readFileSync(join(fixtures, 'ada-tiny-32', 'ada-tiny-32.pkl'));
  const manifest = loadManifest('ada-tiny-32');
  const gEmaSum = manifest.model.g_ema_tensors.find((r) => r.name === 'synthesis.b4.const')!.sum;

  it('reads G_ema, whose const sum the manifest records', () => {
    const weights = readCheckpoint(bytes);
    assert.ok(Math.abs(stats(weights.tensors.get('synthesis.b4.const')!.data).sum - gEmaSum) < 1e-9);
  });

  it('would fail the tensor check with G', () => {
    // Drop G_ema from the snapshot: the reader then falls back to G and adds a warning.
    const { value } = unpickle(bytes, { findClass: allowlist(nvlabsGlobals()) });
    assert.ok(value instanceof Map);
    value.delete('G_ema');
    const fromG = nvlabsWeights(value, {});
    assert.match(fromG.warnings.join(' '), /no G_ema/);
    const gSum = stats(fromG.tensors.get('synthesis.b4.const')!.data).sum;
    assert.ok(Math.abs(gSum - gEmaSum) > 1e-3, `G's const sum ${gSum} should differ from G_ema's ${gEmaSum}`);
    assert.ok((manifest.network_pickle?.max_abs_diff_G_vs_G_ema ?? 0) > 0);
  });
});

/** rosinality state-dict name -> canonical name, written from the rosinality model layout. */
function rosinalityToCanonical(name: string): string | undefined {
  const style = /^style\.(\d+)\.(weight|bias)$/.exec(name);
  if (style) return `mapping.fc${Number(style[1]) - 1}.${style[2]}`;
  if (name === 'input.input') return 'synthesis.b4.const';
  const noise = /^noises\.noise_(\d+)$/.exec(name);
  if (noise) {
    const i = Number(noise[1]);
    if (i === 0) return 'synthesis.b4.conv1.noise_const';
    const j = Math.floor((i - 1) / 2);
    return `synthesis.b${2 ** (j + 3)}.${i % 2 === 1 ? 'conv0' : 'conv1'}.noise_const`;
  }
  const layer = /^(conv1|to_rgb1|convs\.(\d+)|to_rgbs\.(\d+))\.(.+)$/.exec(name);
  if (!layer) return undefined;
  let target: string;
  if (layer[1] === 'conv1') target = 'synthesis.b4.conv1';
  else if (layer[1] === 'to_rgb1') target = 'synthesis.b4.torgb';
  else if (layer[2] !== undefined) target = `synthesis.b${2 ** (Math.floor(Number(layer[2]) / 2) + 3)}.${Number(layer[2]) % 2 === 0 ? 'conv0' : 'conv1'}`;
  else target = `synthesis.b${2 ** (Number(layer[3]) + 3)}.torgb`;
  const field: Record<string, string> = {
    'conv.weight': 'weight',
    'conv.modulation.weight': 'affine.weight',
    'conv.modulation.bias': 'affine.bias',
    'noise.weight': 'noise_strength',
    'activate.bias': 'bias',
    bias: 'bias',
  };
  return field[layer[4]] === undefined ? undefined : `${target}.${field[layer[4]]}`;
}

/** Returns the canonical shape of a rosinality tensor, with the leading singleton dims dropped. */
function rosinalityCanonicalShape(name: string, shape: number[]): number[] {
  if (name.endsWith('noise.weight')) return []; // [1] -> []
  if (name.startsWith('noises.')) return shape.slice(2); // [1, 1, R, R] -> [R, R]
  if (/^to_rgb(1|s\.\d+)\.bias$/.test(name)) return [shape[1]]; // [1, 3, 1, 1] -> [3]
  if (name.endsWith('conv.weight') || name === 'input.input') return shape.slice(1); // leading 1
  return shape;
}

describe('rosinality fixture checkpoints', () => {
  const manifest = loadManifest('rosi-tiny-32');
  for (const file of ['rosi-tiny-32.pt', 'rosi-tiny-32.legacy-format.pt']) {
    describe(file, () => {
      const weights = readFixture('rosi-tiny-32', file);

      it('reads the architecture of the manifest', () => {
        const { arch } = weights;
        assert.equal(weights.source.format, 'rosinality-pt');
        assert.equal(arch.zDim, manifest.model.style_dim);
        assert.equal(arch.wDim, manifest.model.style_dim);
        assert.equal(arch.resolution, manifest.model.size);
        assert.equal(arch.mappingLayers, manifest.model.n_mlp);
        assert.equal(arch.numWs, manifest.model.n_latent);
        assert.deepEqual(arch.channels, { 4: 64, 8: 64, 16: 64, 32: 32 });
        assert.equal(arch.convClamp, null);
        assert.equal(arch.mappingLrMultiplier, 0.01);
      });

      it('maps every g_ema tensor to its canonical name', () => {
        let mapped = 0;
        for (const record of manifest.model.g_ema_tensors) {
          if (record.name.endsWith('.kernel')) continue; // blur kernels become resample_filter, checked below
          const canonical = rosinalityToCanonical(record.name);
          assert.ok(canonical, `no canonical name for ${record.name}`);
          const shape = rosinalityCanonicalShape(record.name, record.shape);
          assertMatches(canonical, weights.tensors.get(canonical), { ...record, shape });
          mapped++;
        }
        assert.equal(mapped, 63);
      });

      it('turns the blur kernels into the standard resample filter', () => {
        const kernel = manifest.model.g_ema_tensors.find((r) => r.name === 'convs.0.conv.blur.kernel')!;
        const filter = weights.tensors.get('synthesis.b8.conv0.resample_filter')!;
        assert.deepEqual(filter.shape, [4, 4]);
        assert.ok(Math.abs(stats(filter.data).sum - kernel.sum / 4) < 1e-6);
        assert.equal(stats(filter.data).maxAbs, kernel.max_abs / 4);
      });

      it('returns latent_avg exactly', () => {
        assert.equal(weights.wAvgSource, 'checkpoint');
        assert.deepEqual(weights.wAvg, readFloat32('rosi-tiny-32', 'latent_avg.f32.bin'));
      });
    });
  }

  it('reads the zip file repacked as ZIP64', () => {
    const original = readFileSync(join(fixtures, 'rosi-tiny-32', 'rosi-tiny-32.pt'));
    const archive = new ZipArchive(original);
    const repacked = buildZip([...archive.entries.keys()].map((name) => ({ name, data: archive.read(name) })), true);
    const weights = readCheckpoint(repacked);
    const reference = readCheckpoint(original);
    assert.equal(weights.tensors.size, reference.tensors.size);
    for (const [name, tensor] of reference.tensors) assert.deepEqual(weights.tensors.get(name), tensor, name);
  });

  it('gives identical weights from the zip and legacy files', () => {
    const zip = readFixture('rosi-tiny-32', 'rosi-tiny-32.pt');
    const legacy = readFixture('rosi-tiny-32', 'rosi-tiny-32.legacy-format.pt');
    assert.deepEqual([...zip.tensors.keys()], [...legacy.tensors.keys()]);
    for (const [name, tensor] of zip.tensors) assert.deepEqual(legacy.tensors.get(name), tensor, name);
  });
});
