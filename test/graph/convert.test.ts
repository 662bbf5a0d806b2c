/** Model folder writing: files, checksums, determinism, name checks, w_avg estimate, sample model. */

import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';

import { modelFolderPath, writeModelFolder } from '../../src/graph/convert.js';
import type { ModelManifest } from '../../src/graph/model-manifest.js';
import { SeededRandom } from '../../src/graph/prng.js';
import { randomGeneratorWeights, type RandomArchitecture } from '../../src/graph/random-weights.js';
import { referenceMapping } from '../../src/graph/reference.js';
import { sampleModelArch, sampleModelName, writeSampleModel } from '../../src/graph/sample-model.js';
import { createSession, runMapping, runSynthesis } from './graph-session.js';

const smallArch: RandomArchitecture = {
  resolution: 16,
  zDim: 8,
  wDim: 8,
  cDim: 2,
  mappingLayers: 2,
  channels: { 4: 8, 8: 8, 16: 4 },
};
const source = { file: 'random test weights', sha256: null, bytes: null };

let modelsDir: string;
before(async () => {
  modelsDir = await mkdtemp(path.join(tmpdir(), 'graph-convert-'));
});
after(async () => {
  await rm(modelsDir, { recursive: true, force: true });
});

async function readManifest(name: string): Promise<ModelManifest> {
  return JSON.parse(await readFile(path.join(modelsDir, name, 'model.json'), 'utf8')) as ModelManifest;
}

function sha256(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

describe('writeModelFolder', () => {
  it('writes all files with matching sha256', async () => {
    const weights = randomGeneratorWeights(smallArch, 1);
    const manifest = await writeModelFolder(weights, { name: 'small-a', modelsDir, source });
    const files = (await readdir(path.join(modelsDir, 'small-a'))).sort();
    assert.deepEqual(files, ['directions.f32.bin', 'mapping.onnx', 'model.json', 'noise_const.f32.bin', 'synthesis.onnx', 'synthesis_grad.onnx']);
    assert.deepEqual(await readManifest('small-a'), manifest);
    for (const file of [manifest.files.mapping, manifest.files.synthesis, manifest.files.noiseConst]) {
      assert.equal(sha256(await readFile(path.join(modelsDir, 'small-a', file))), manifest.fileSha256[file], file);
    }
    assert.equal(manifest.wAvg.length, 8);
    assert.deepEqual(
      manifest.noiseLayers.map((layer) => [layer.name, layer.layer, layer.resolution, layer.offset]),
      [
        ['noise_0', 'b4.conv1', 4, 0],
        ['noise_1', 'b8.conv0', 8, 16],
        ['noise_2', 'b8.conv1', 8, 80],
        ['noise_3', 'b16.conv0', 16, 144],
        ['noise_4', 'b16.conv1', 16, 400],
      ],
    );
    const noise = await readFile(path.join(modelsDir, 'small-a', 'noise_const.f32.bin'));
    assert.equal(noise.byteLength, 656 * 4);
    assert.equal(noise.readFloatLE(80 * 4), weights.tensors.get('synthesis.b8.conv1.noise_const')!.data[0]);
    assert.equal(noise.readFloatLE(655 * 4), weights.tensors.get('synthesis.b16.conv1.noise_const')!.data[255]);
  });

  it('writes identical bytes for the same weights', async () => {
    const first = await writeModelFolder(randomGeneratorWeights(smallArch, 2), { name: 'same-1', modelsDir, source });
    const second = await writeModelFolder(randomGeneratorWeights(smallArch, 2), { name: 'same-2', modelsDir, source });
    for (const file of ['mapping.onnx', 'synthesis.onnx', 'noise_const.f32.bin', 'directions.f32.bin']) {
      const a = await readFile(path.join(modelsDir, 'same-1', file));
      const b = await readFile(path.join(modelsDir, 'same-2', file));
      assert.ok(a.equals(b), `${file} differs between two conversions`);
    }
    assert.deepEqual({ ...first, name: '', createdAt: '' }, { ...second, name: '', createdAt: '' });
  });

  it('rejects bad names and existing folders', async () => {
    const weights = randomGeneratorWeights(smallArch, 3);
    for (const name of ['', '../escape', '..', '.hidden', 'Upper', 'a/b', 'a\\b', 'x'.repeat(65), 'sp ace', '-dash']) {
      await assert.rejects(writeModelFolder(weights, { name, modelsDir, source }), /invalid model name/, JSON.stringify(name));
    }
    assert.equal(modelFolderPath(modelsDir, 'ok.name_1-2'), path.join(path.resolve(modelsDir), 'ok.name_1-2'));
    await writeModelFolder(weights, { name: 'taken', modelsDir, source });
    await assert.rejects(writeModelFolder(weights, { name: 'taken', modelsDir, source }), /already exists/);
    const replaced = await writeModelFolder(randomGeneratorWeights(smallArch, 4), { name: 'taken', modelsDir, source, overwrite: true });
    assert.deepEqual(await readManifest('taken'), replaced);
    const leftovers = (await readdir(modelsDir)).filter((entry) => entry.startsWith('.'));
    assert.deepEqual(leftovers, [], 'no temporary folders left behind');
  });

  it('rejects resnet generators with a clear error', async () => {
    const weights = randomGeneratorWeights(smallArch, 5);
    const resnet = { ...weights, arch: { ...weights.arch, architecture: 'resnet' as const } };
    await assert.rejects(writeModelFolder(resnet, { name: 'resnet', modelsDir, source }), /'resnet' is not supported yet/);
  });

  it('estimates w_avg as the mean mapping output', async () => {
    const weights = randomGeneratorWeights(smallArch, 6);
    const manifest = await writeModelFolder(weights, { name: 'estimated', modelsDir, source });
    assert.equal(manifest.wAvgSource, 'estimated');
    const random = new SeededRandom(99);
    const mean = new Float64Array(8);
    const samples = 2000;
    for (let i = 0; i < samples; i++) {
      const c = new Float32Array(2);
      c[i % 2] = 1;
      const ws = referenceMapping(weights, { z: random.gaussians(8), c, psi: 1 });
      for (let j = 0; j < 8; j++) mean[j] += ws[j] / samples;
    }
    for (let j = 0; j < 8; j++) {
      assert.ok(Math.abs(manifest.wAvg[j] - mean[j]) < 0.1, `w_avg[${j}] ${manifest.wAvg[j]} vs sample mean ${mean[j]}`);
      assert.notEqual(manifest.wAvg[j], Math.fround(weights.wAvg[j]), `w_avg[${j}] replaced the placeholder`);
    }
  });
});

describe('sample model', () => {
  it('runs and gives images with std about 0.5', async () => {
    const manifest = await writeSampleModel(modelsDir);
    assert.equal(manifest.name, sampleModelName);
    assert.equal(manifest.arch.resolution, sampleModelArch.resolution);
    assert.equal(manifest.source.format, 'random');
    const folder = path.join(modelsDir, sampleModelName);
    const mapping = await createSession(await readFile(path.join(folder, 'mapping.onnx')));
    const synthesis = await createSession(await readFile(path.join(folder, 'synthesis.onnx')));
    const noiseBytes = await readFile(path.join(folder, 'noise_const.f32.bin'));
    const noiseAll = new Float32Array(noiseBytes.buffer.slice(noiseBytes.byteOffset, noiseBytes.byteOffset + noiseBytes.byteLength));
    const noise = manifest.noiseLayers.map((layer) => noiseAll.slice(layer.offset, layer.offset + layer.resolution ** 2));

    const random = new SeededRandom(4);
    const rows = [0, 1, 2, 3].map(() => ({ z: random.gaussians(manifest.arch.zDim), psi: 1, cutoff: manifest.arch.numWs }));
    const images = await runSynthesis(synthesis, manifest.arch, await runMapping(mapping, manifest.arch, rows), noise);
    let sum = 0;
    let sumSquares = 0;
    let count = 0;
    for (const image of images) {
      for (const value of image) {
        sum += value;
        sumSquares += value * value;
        count++;
      }
    }
    const std = Math.sqrt(sumSquares / count - (sum / count) ** 2);
    assert.ok(std > 0.2, `image std ${std}`);
    assert.ok(std < 1, `image std ${std}`);
    assert.ok(Math.abs(sum / count) < 1, `image mean ${sum / count}`);
  });
});
