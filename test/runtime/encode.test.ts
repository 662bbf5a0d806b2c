/** Encoding tests against the reference PNGs in test/fixtures and round trips through sharp. */

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';

import sharp from 'sharp';

import { encodeAnimation, encodeGrid, encodeImage, toUint8Hwc } from '../../src/runtime/encode.js';

const fixturesDir = new URL('../fixtures/', import.meta.url).pathname;
const shape = { channels: 3, height: 32, width: 32 };

function readF32(path: string): Float32Array {
  const bytes = readFileSync(path);
  return new Float32Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength));
}

/** Pairs of reference float output and the PNG the reference script saved from it. */
function fixturePairs(model: string): { name: string; image: Float32Array; png: Buffer }[] {
  const dir = join(fixturesDir, model);
  return readdirSync(dir)
    .filter((file) => file.startsWith('img-') && file.endsWith('.f32.bin'))
    .map((file) => ({ name: file, image: readF32(join(dir, file)), png: readFileSync(join(dir, file.replace('.f32.bin', '.png'))) }));
}

test('uint8 conversion matches every reference PNG', async () => {
  const pairs = [...fixturePairs('ada-tiny-32'), ...fixturePairs('tf-tiny-32-v5')];
  assert.ok(pairs.length >= 20, `found ${pairs.length} fixture images`);
  for (const { name, image, png } of pairs) {
    const expected = await sharp(png).raw().toBuffer();
    assert.deepEqual(Buffer.from(toUint8Hwc(image, shape)), expected, name);
  }
});

test('uint8 conversion clamps, truncates and maps NaN to 0', () => {
  const values = new Float32Array([-2, -1, -0.5, 0, 0.5, 0.99, 1, 3, Number.NaN]);
  const out = toUint8Hwc(values, { channels: 1, height: 1, width: values.length });
  // x·127.5 + 128, truncated: -1 -> 0.5 -> 0, 0 -> 128, 0.5 -> 191.75 -> 191, 0.99 -> 254.225 -> 254, 1 -> 255.5 -> 255.
  assert.deepEqual([...out], [0, 0, 64, 128, 191, 254, 255, 255, 0]);
});

test('wrong image size is rejected', () => {
  assert.throws(() => toUint8Hwc(new Float32Array(10), shape), /has 10 values, expected 3x32x32 = 3072/);
});

test('png and webp round trip', async () => {
  const [{ image, png: referencePng }] = fixturePairs('ada-tiny-32');
  const expected = await sharp(referencePng).raw().toBuffer();
  const png = await encodeImage(image, shape, { format: 'png' });
  assert.deepEqual(await sharp(png).raw().toBuffer(), expected);
  const lossless = await encodeImage(image, shape, { format: 'webp', lossless: true });
  const meta = await sharp(lossless).metadata();
  assert.equal(meta.format, 'webp');
  assert.deepEqual(await sharp(lossless).raw().toBuffer(), expected);
  const lossy = await encodeImage(image, shape, { format: 'webp', quality: 50 });
  assert.equal((await sharp(lossy).metadata()).width, 32);
});

test('animation has one page per frame', async () => {
  const frames = fixturePairs('ada-tiny-32').slice(0, 4).map((pair) => pair.image);
  for (const format of ['webp', 'gif'] as const) {
    const bytes = await encodeAnimation(frames, shape, { format, delayMs: 80, lossless: true });
    const meta = await sharp(bytes, { animated: true }).metadata();
    assert.equal(meta.format, format);
    assert.equal(meta.pages, 4);
    assert.deepEqual(meta.delay, [80, 80, 80, 80]);
    assert.equal(meta.loop, 0);
  }
});

test('grid places images row-major', async () => {
  const pairs = fixturePairs('ada-tiny-32').slice(0, 3);
  const grid = await encodeGrid(pairs.map((p) => p.image), shape, { format: 'png', columns: 2, gapPx: 2 });
  const { data, info } = await sharp(grid).raw().toBuffer({ resolveWithObject: true });
  assert.equal(info.width, 66);
  assert.equal(info.height, 66);
  const third = await sharp(grid).extract({ left: 0, top: 34, width: 32, height: 32 }).raw().toBuffer();
  assert.deepEqual(third, Buffer.from(toUint8Hwc(pairs[2].image, shape)));
  assert.equal(data[(34 * 66 + 40) * 3], 0, 'the empty cell is black');
});
