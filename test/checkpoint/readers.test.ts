/**
 * Reader decisions that the fixtures do not exercise directly: each test unpickles a real fixture,
 * changes one thing in the unpickled structure (as a different checkpoint would have it), and checks
 * the reader's result.
 */

import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { CheckpointError } from '../../src/checkpoint/errors.js';
import { PersistentModule, nvlabsGlobals, nvlabsWeights } from '../../src/checkpoint/nvlabs.js';
import { unpickle } from '../../src/checkpoint/pickle-vm.js';
import { rosinalityGlobals, rosinalityWeights } from '../../src/checkpoint/rosinality.js';
import { NumpyArray } from '../../src/checkpoint/numpy.js';
import { TfNetwork, tensorflowGlobals, tensorflowWeights } from '../../src/checkpoint/tensorflow.js';
import { allowlist, readTorchZip } from '../../src/checkpoint/torch-storage.js';

const fixtures = join(import.meta.dirname, '..', 'fixtures');

function loadTf(): TfNetwork[] {
  const bytes = readFileSync(join(fixtures, 'tf-tiny-32', 'tf-tiny-32.pkl'));
  return unpickle(bytes, { findClass: allowlist(tensorflowGlobals()) }).value as TfNetwork[];
}

function gsKwargs(networks: TfNetwork[]): Map<unknown, unknown> {
  return networks[2].fields.get('static_kwargs') as Map<unknown, unknown>;
}

function loadNvlabs(): Map<unknown, unknown> {
  const bytes = readFileSync(join(fixtures, 'ada-tiny-32', 'ada-tiny-32.pkl'));
  return unpickle(bytes, { findClass: allowlist(nvlabsGlobals()) }).value as Map<unknown, unknown>;
}

function rejects(fn: () => unknown, code: string, message: RegExp): void {
  assert.throws(fn, (err: unknown) => err instanceof CheckpointError && err.code === code && message.test(err.message));
}

describe('TensorFlow reader', () => {
  it('uses Gs, the third network of the tuple', () => {
    const networks = loadTf();
    assert.equal(networks[2].fields.get('name'), 'Gs');
    const fromTuple = tensorflowWeights(networks, {});
    const fromGs = tensorflowWeights(networks[2], {});
    assert.deepEqual(fromTuple.tensors.get('mapping.fc0.weight'), fromGs.tensors.get('mapping.fc0.weight'));
    const fromG = tensorflowWeights(networks[0], {});
    assert.notDeepEqual(fromG.tensors.get('mapping.fc0.weight'), fromGs.tensors.get('mapping.fc0.weight'));
  });

  it('rejects state versions below 4', () => {
    const networks = loadTf();
    networks[2].fields.set('version', 3);
    rejects(() => tensorflowWeights(networks, {}), 'unsupported_format', /state version 3; versions 4 \(stylegan2\) and 5/);
  });

  it('records unknown static kwargs as warnings', () => {
    const networks = loadTf();
    gsKwargs(networks).set('randomize_noise', false);
    const weights = tensorflowWeights(networks, {});
    assert.equal(weights.warnings.length, 1);
    assert.match(weights.warnings[0], /randomize_noise=false/);
  });

  it('applies the TF defaults to missing kwargs', () => {
    const networks = loadTf();
    gsKwargs(networks).delete('mapping_fmaps'); // default: dlatent_size
    gsKwargs(networks).delete('fmap_base'); // default 16384: the stored shapes win, with a warning
    const weights = tensorflowWeights(networks, {});
    assert.equal(weights.arch.mappingFeatures, 64);
    assert.deepEqual(weights.arch.channels, { 4: 48, 8: 48, 16: 32, 32: 16 });
    assert.match(weights.warnings.join(' '), /Block 16x16 stores 32 channels; fmap_base\/fmap_max imply 48/);
    gsKwargs(networks).delete('latent_size'); // default 512 does not fit the stored Dense0 weight
    rejects(() => tensorflowWeights(networks, {}), 'invalid_structure', /mapping\.fc0\.weight has shape \[64, 64\], expected \[64, 512\]/);
  });

  it('rejects non-square generators', () => {
    const networks = loadTf();
    gsKwargs(networks).set('resolution_w', 64);
    rejects(() => tensorflowWeights(networks, {}), 'unsupported_model', /non-square/);
  });

  it('rejects conditional stylegan2-TF LabelConcat models', () => {
    const networks = loadTf();
    const mapping = (networks[2].fields.get('components') as Map<unknown, TfNetwork>).get('mapping')!;
    (mapping.fields.get('variables') as unknown[]).push(['LabelConcat/weight', 0.5]);
    gsKwargs(networks).set('label_size', 3);
    rejects(() => tensorflowWeights(networks, {}), 'unsupported_model', /LabelConcat/);
  });

  it('flips Conv0_up kernels and adds 1 to mod_bias', () => {
    const networks = loadTf();
    const synthesis = (networks[2].fields.get('components') as Map<unknown, TfNetwork>).get('synthesis')!;
    const variables = synthesis.fields.get('variables') as [string, unknown][];
    const raw = new Map(variables.filter(([, v]) => v instanceof NumpyArray).map(([n, v]) => [n, (v as NumpyArray).toFloat32(n)]));
    const weights = tensorflowWeights(networks, {});
    const conv0 = weights.tensors.get('synthesis.b8.conv0.weight')!.data; // [48, 48, 3, 3]
    const conv1 = weights.tensors.get('synthesis.b8.conv1.weight')!.data; // [48, 48, 3, 3]
    const tfConv0 = raw.get('8x8/Conv0_up/weight')!; // [3, 3, 48, 48]
    const tfConv1 = raw.get('8x8/Conv1/weight')!;
    const c = 48;
    for (const [o, i, y, x] of [[0, 0, 0, 0], [5, 7, 0, 2], [47, 1, 2, 1], [3, 40, 1, 0]]) {
      const canonical = ((o * c + i) * 3 + y) * 3 + x;
      assert.equal(conv0[canonical], tfConv0[(((2 - y) * 3 + (2 - x)) * c + i) * c + o], `conv0 [${o},${i},${y},${x}]`);
      assert.equal(conv1[canonical], tfConv1[((y * 3 + x) * c + i) * c + o], `conv1 [${o},${i},${y},${x}]`);
    }
    const modBias = raw.get('8x8/Conv0_up/mod_bias')!;
    const affineBias = weights.tensors.get('synthesis.b8.conv0.affine.bias')!.data;
    for (let i = 0; i < c; i++) assert.equal(affineBias[i], Math.fround(modBias[i] + 1));
    const noise = raw.get('noise2')!; // b8.conv1 uses noise 2·log2(8) − 4 = 2
    assert.deepEqual(weights.tensors.get('synthesis.b8.conv1.noise_const')!.data, noise);
  });
});

describe('NVlabs reader', () => {
  it('rejects StyleGAN3 synthesis networks', () => {
    const snapshot = loadNvlabs();
    const synthesis = (snapshot.get('G_ema') as PersistentModule).submodule('synthesis')!;
    synthesis.submodules().set('input', new PersistentModule('SynthesisInput', 6, new Map()));
    rejects(() => nvlabsWeights(snapshot, {}), 'unsupported_model', /StyleGAN3 \(alias-free/);
  });

  it('rejects per-layer conv_clamp values that differ', () => {
    const snapshot = loadNvlabs();
    const b8 = (snapshot.get('G_ema') as PersistentModule).submodule('synthesis')!.submodule('b8')!;
    b8.submodule('conv0')!.moduleState.set('conv_clamp', 64);
    rejects(() => nvlabsWeights(snapshot, {}), 'unsupported_model', /different conv_clamp values \(256, 64\)/);
  });

  it('reads use_noise=False generators without noise tensors', () => {
    const snapshot = loadNvlabs();
    const G = snapshot.get('G_ema') as PersistentModule;
    for (const block of G.submodule('synthesis')!.submodules().values()) {
      for (const name of ['conv0', 'conv1']) {
        const layer = (block as PersistentModule).submodule(name);
        if (!layer) continue;
        layer.moduleState.set('use_noise', false);
        (layer.attr('_parameters') as Map<string, unknown>).delete('noise_strength');
        (layer.attr('_buffers') as Map<string, unknown>).delete('noise_const');
      }
    }
    const weights = nvlabsWeights(snapshot, {});
    assert.equal(weights.arch.useNoise, false);
    assert.equal([...weights.tensors.keys()].some((k) => k.includes('noise')), false);
  });

  it('estimates w_avg when the pickle has none', () => {
    const snapshot = loadNvlabs();
    const mapping = (snapshot.get('G_ema') as PersistentModule).submodule('mapping')!;
    (mapping.attr('_buffers') as Map<string, unknown>).delete('w_avg');
    const weights = nvlabsWeights(snapshot, {});
    assert.equal(weights.wAvgSource, 'estimated');
    assert.deepEqual(weights.wAvg, new Float32Array(64));
    assert.match(weights.warnings.join(' '), /must be estimated/);
  });
});

describe('rosinality reader', () => {
  const bytes = readFileSync(join(fixtures, 'rosi-tiny-32', 'rosi-tiny-32.pt'));
  const load = () => readTorchZip(bytes, allowlist(rosinalityGlobals()), 'test') as Map<unknown, unknown>;

  it('marks w_avg as estimated without latent_avg', () => {
    const value = load();
    value.delete('latent_avg');
    const weights = rosinalityWeights(value, {});
    assert.equal(weights.wAvgSource, 'estimated');
    assert.equal(weights.tensors.has('mapping.w_avg'), false);
    assert.match(weights.warnings.join(' '), /no average latent/);
  });

  it('reads a bare g_ema state dict', () => {
    const weights = rosinalityWeights(load().get('g_ema'), {});
    assert.equal(weights.arch.resolution, 32);
    assert.equal(weights.wAvgSource, 'estimated');
  });
});
