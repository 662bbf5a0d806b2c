/**
 * The single-image response cache, driven through supertest against the real server. A repeated
 * request is a hit with the same bytes and runs no inference, and any change to the image is a miss.
 */

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import request from 'supertest';
import { convertFixture, makeTempDir, removeDir, startTestServer, type TestServer } from '../helpers/server.js';

let modelsDir: string;
let cached: TestServer;
let uncached: TestServer;

before(async () => {
  modelsDir = await makeTempDir('cache');
  await convertFixture(modelsDir, 'ada-tiny-32', 'ada-tiny-32.pkl');
  cached = await startTestServer({ 'models-dir': modelsDir, model: 'ada-tiny-32' });
  uncached = await startTestServer({ 'models-dir': modelsDir, model: 'ada-tiny-32', 'image-cache-bytes': '0' });
});

after(async () => {
  await cached?.close();
  await uncached?.close();
  await removeDir(modelsDir);
});

describe('image cache', () => {
  test('serves a repeated request from the cache', async () => {
    const first = await request(cached.url).post('/generate').send({ seeds: [21], psi: 0.8 }).buffer(true).expect(200);
    assert.equal(first.headers['x-cache'], 'miss');
    const computed = cached.server.service.stats().imagesComputed;

    const second = await request(cached.url).post('/generate').send({ seeds: [21], psi: 0.8 }).buffer(true).expect(200);
    assert.equal(second.headers['x-cache'], 'hit');
    assert.equal(second.headers['content-type'], 'image/png');
    assert.equal(second.headers['x-seed'], '21');
    assert.deepEqual(second.body, first.body);
    assert.equal(cached.server.service.stats().imagesComputed, computed, 'a hit runs no inference');
  });

  test('misses when anything that changes the image differs', async () => {
    await request(cached.url).post('/generate').send({ seeds: [22] }).expect(200);
    for (const body of [{ seeds: [22], psi: 0.5 }, { seeds: [22], noise_mode: 'none' }, { seeds: [22], format: 'webp' }, { seeds: [23] }]) {
      const response = await request(cached.url).post('/generate').send(body).expect(200);
      assert.equal(response.headers['x-cache'], 'miss', JSON.stringify(body));
    }
  });

  test('does not cache multi-image or raw responses', async () => {
    const multi = await request(cached.url).post('/generate').send({ seeds: [1, 2] }).expect(200);
    assert.equal(multi.headers['x-cache'], undefined);
    const raw = await request(cached.url).post('/generate').send({ seeds: [1], format: 'raw' }).expect(200);
    assert.equal(raw.headers['x-cache'], undefined);
  });

  test('is off when its size is 0', async () => {
    const response = await request(uncached.url).post('/generate').send({ seeds: [21] }).expect(200);
    assert.equal(response.headers['x-cache'], undefined);
  });
});
