/**
 * /project inputs found by adversarial testing: loosely written numbers, out-of-range labels, job
 * ids in upper case, and the cap on finished jobs kept in memory.
 */

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import sharp from 'sharp';
import { maxFinishedJobs, ProjectionJobStore } from '../../src/runtime/projector-jobs.js';
import { convertFixture, makeTempDir, readJson, removeDir, startTestServer, type TestServer } from '../helpers/server.js';

let modelsDir: string;
let server: TestServer;
let png: Uint8Array;

before(async () => {
  modelsDir = await makeTempDir('project-hardening');
  await convertFixture(modelsDir, 'ada-cond-64', 'ada-cond-64.pkl');
  server = await startTestServer({ 'models-dir': modelsDir, model: 'ada-cond-64' });
  png = new Uint8Array(await sharp({ create: { width: 40, height: 40, channels: 3, background: '#808080' } }).png().toBuffer());
});

after(async () => {
  await server?.close();
  await removeDir(modelsDir);
});

async function project(query: string): Promise<Response> {
  return fetch(`${server.url}/project?${query}`, { method: 'POST', headers: { 'Content-Type': 'image/png' }, body: png });
}

describe('project option parsing', () => {
  test('rejects numbers that are not plain decimal integers', async () => {
    for (const query of ['class=&steps=2', 'class=1&steps=0x10', 'class=1&steps=1e1', 'class=1&steps=+5', 'class=1&seed=', 'class=1&steps=2&preview_every=-1']) {
      const response = await project(query);
      assert.equal(response.status, 422, query);
      assert.equal(response.headers.get('content-type'), 'application/problem+json');
      await response.arrayBuffer();
    }
  });

  test('rejects labels beyond the latent magnitude limit', async () => {
    const response = await project('steps=2&label=1e300,0,0');
    assert.equal(response.status, 422);
    assert.match((await readJson(response)).detail, /label/);
  });

  test('accepts job ids in upper case', async () => {
    const started = await project('class=1&steps=2&async=true');
    assert.equal(started.status, 202);
    const { id } = await readJson(started);
    const upper = await fetch(`${server.url}/project/jobs/${String(id).toUpperCase()}`);
    assert.equal(upper.status, 200, await upper.clone().text());
    await upper.arrayBuffer();
  });
});

describe('projection job store', () => {
  test('keeps at most maxFinishedJobs finished jobs', async () => {
    const store = new ProjectionJobStore<number>(() => ({ maxJobs: 1, ttlMs: 3_600_000 }));
    const ids: string[] = [];
    for (let i = 0; i < maxFinishedJobs + 5; i++) {
      const job = store.start('model', 1, async () => i, () => ({ status: 500, detail: 'failed' }));
      await job.done;
      ids.push(job.id);
    }
    assert.equal(store.get(ids[0]), undefined, 'the oldest finished job was dropped');
    assert.equal(store.get(ids[4]), undefined);
    assert.equal(store.get(ids[5])?.result, 5);
    assert.equal(store.get(ids[ids.length - 1])?.result, maxFinishedJobs + 4);
  });
});
