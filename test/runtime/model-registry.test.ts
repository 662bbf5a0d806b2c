/** Model registry tests on random model folders written by the converter. */

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { cp, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

import { ModelNotFoundError } from '../../src/runtime/errors.js';
import { ModelRegistry, assertModelName, listModelFolders, loadModel } from '../../src/runtime/model-registry.js';
import { makeModelsDir, removeDir, tinyArch } from './helpers.js';

let modelsDir: string;

before(async () => {
  modelsDir = await makeModelsDir({ tiny: tinyArch, other: { ...tinyArch, resolution: 16 } });
});

after(async () => {
  await removeDir(modelsDir);
});

async function copyModel(from: string, to: string): Promise<string> {
  const dir = join(modelsDir, to);
  await cp(join(modelsDir, from), dir, { recursive: true });
  const manifestPath = join(dir, 'model.json');
  const manifest = JSON.parse(await readFile(manifestPath, 'utf8'));
  manifest.name = to;
  await writeFile(manifestPath, JSON.stringify(manifest));
  return dir;
}

test('loads several models', async () => {
  const registry = await ModelRegistry.load(modelsDir, ['tiny', 'other']);
  assert.deepEqual(registry.list().map((m) => m.name), ['tiny', 'other']);
  assert.equal(registry.require('other').manifest.arch.resolution, 16);
  assert.equal(registry.get('missing'), undefined);
  assert.throws(() => registry.require('missing'), /model missing not found: loaded models are tiny, other/);
});

test('empty list loads every folder', async () => {
  assert.deepEqual(await listModelFolders(modelsDir), ['other', 'tiny']);
});

test('names are checked before any file access', async () => {
  for (const name of ['../tiny', 'Tiny', '', '.hidden', 'a/b', 'x'.repeat(65)]) {
    assert.throws(() => assertModelName(name), ModelNotFoundError, name);
    await assert.rejects(loadModel(modelsDir, name), /invalid model name/, name);
  }
});

test('missing folder is ModelNotFoundError', async () => {
  await assert.rejects(loadModel(modelsDir, 'absent'), (err: unknown) => {
    assert.ok(err instanceof ModelNotFoundError);
    assert.match(err.message, /model absent not found/);
    return true;
  });
});

test('damaged file fails the sha256 check', async () => {
  const dir = await copyModel('tiny', 'damaged');
  const bytes = await readFile(join(dir, 'noise_const.f32.bin'));
  bytes[0] ^= 0xff;
  await writeFile(join(dir, 'noise_const.f32.bin'), bytes);
  await assert.rejects(loadModel(modelsDir, 'damaged'), /model damaged: sha256 of noise_const\.f32\.bin is [0-9a-f]{64}, model\.json expects/);
  await removeDir(dir);
});

test('other converter version is rejected', async () => {
  const dir = await copyModel('tiny', 'old');
  const manifest = JSON.parse(await readFile(join(dir, 'model.json'), 'utf8'));
  manifest.converterVersion = 0;
  await writeFile(join(dir, 'model.json'), JSON.stringify(manifest));
  await assert.rejects(loadModel(modelsDir, 'old'), /converterVersion is 0, this build reads version 1; re-run the converter/);
  await removeDir(dir);
});

test('inconsistent shapes are rejected', async () => {
  const dir = await copyModel('tiny', 'bad-shape');
  const manifest = JSON.parse(await readFile(join(dir, 'model.json'), 'utf8'));
  manifest.wAvg = manifest.wAvg.slice(1);
  await writeFile(join(dir, 'model.json'), JSON.stringify(manifest));
  await assert.rejects(loadModel(modelsDir, 'bad-shape'), /wAvg has 31 values, expected wDim = 32/);
  manifest.wAvg.push(0);
  manifest.noiseLayers[1].offset += 1;
  await writeFile(join(dir, 'model.json'), JSON.stringify(manifest));
  await assert.rejects(loadModel(modelsDir, 'bad-shape'), /noiseLayers\[1\]\.offset is 17, expected 16/);
  await removeDir(dir);
});
