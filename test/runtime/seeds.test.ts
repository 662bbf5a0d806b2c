import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';

import { LegacyRandomState, noiseMapsFromSeed, randnFromSeed, zFromSeed } from '../../src/runtime/seeds.js';

const fixturesDir = new URL('../fixtures/', import.meta.url).pathname;

function readF32(path: string): Float32Array {
  const bytes = readFileSync(path);
  return new Float32Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength));
}

test('raw uint32 outputs of seed 0', () => {
  const state = new LegacyRandomState(0);
  const got = [state.nextUint32(), state.nextUint32(), state.nextUint32(), state.nextUint32()];
  assert.deepEqual(got, [2357136044, 2546248239, 3071714933, 3626093760]);
});

test('random_sample doubles of seed 0', () => {
  const state = new LegacyRandomState(0);
  assert.equal(state.nextDouble(), 0.5488135039273248);
  assert.equal(state.nextDouble(), 0.7151893663724195);
});

/** float64 values may differ from numpy by a few ulp (V8 Math.log), so compare after fround. */
function assertFloat32Equal(actual: ArrayLike<number>, expected: number[], label: string): void {
  assert.equal(actual.length, expected.length, `${label}: length`);
  for (let i = 0; i < expected.length; i++) {
    assert.equal(Math.fround(actual[i]), Math.fround(expected[i]), `${label}[${i}]`);
  }
}

test('randn vectors of seed 0 across 512 values', () => {
  const z = new LegacyRandomState(0).randn(512);
  assertFloat32Equal(z.subarray(0, 4), [1.764052345967664, 0.4001572083672233, 0.9787379841057392, 2.240893199201458], 'head');
  assertFloat32Equal(z.subarray(510, 512), [0.8952602728899299, 1.3749640663929898], 'tail');
});

test('randn of seed 42 keeps the cached value', () => {
  // Three draws: the second comes from the cache of the first polar step.
  assertFloat32Equal(randnFromSeed(42, 3), [0.4967141530112327, -0.13826430117118466, 0.6476885381006925], 'seed 42');
});

test('randn of seed 123 over 10000x512 values', () => {
  const values = randnFromSeed(123, 10000 * 512);
  assertFloat32Equal(values.subarray(0, 2), [-1.0856306033005612, 0.9973454465835858], 'head');
  assertFloat32Equal(values.subarray(values.length - 2), [-0.3818890900382221, 0.14257955150116347], 'tail');
});

test('randn of the largest seed', () => {
  assertFloat32Equal(randnFromSeed(4294967295, 3), [0.6484086742306527, 0.6693235306338161, -1.0805437227474493], 'seed 2^32-1');
});

test('z of every fixture seed is bit-exact', () => {
  let checked = 0;
  for (const model of readdirSync(fixturesDir, { withFileTypes: true })) {
    if (!model.isDirectory()) continue;
    const dir = join(fixturesDir, model.name);
    for (const file of readdirSync(dir)) {
      const match = /^z-seed(\d+)\.f32\.bin$/.exec(file);
      if (!match) continue;
      const expected = readF32(join(dir, file)); // [zDim]
      const actual = zFromSeed(Number(match[1]), expected.length);
      assert.deepEqual(Buffer.from(actual.buffer), Buffer.from(expected.buffer), `${model.name}/${file}`);
      checked++;
    }
  }
  assert.ok(checked >= 4, `expected at least 4 z fixtures, found ${checked}`);
});

test('seeds outside the uint32 range throw', () => {
  for (const seed of [-1, 4294967296, 1.5, Number.NaN]) {
    assert.throws(() => new LegacyRandomState(seed), (err: unknown) => {
      assert.ok(err instanceof RangeError);
      assert.match(err.message, new RegExp(`seed ${String(seed)}`));
      assert.match(err.message, /\[0, 4294967295\]/);
      return true;
    });
  }
});

test('random noise maps are seeded and layered', () => {
  const a = noiseMapsFromSeed(7, [16, 64]);
  const b = noiseMapsFromSeed(7, [16, 64]);
  const c = noiseMapsFromSeed(8, [16, 64]);
  assert.deepEqual(a, b);
  assert.notDeepEqual(a[0], c[0]);
  assert.equal(a[1].length, 64);
  // The second layer continues the same stream.
  const stream = randnFromSeed(7, 80);
  assert.deepEqual(a[1], stream.subarray(16));
});
