/** Worker pool tests: real worker threads and ONNX Runtime sessions on a tiny random model. */

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';

import { silentLogger } from '../../src/log.js';
import { packBatch } from '../../src/runtime/batch-input.js';
import { resolveRuntimeConfig } from '../../src/runtime/config.js';
import { InferenceError } from '../../src/runtime/errors.js';
import { ModelRegistry } from '../../src/runtime/model-registry.js';
import { WorkerPool } from '../../src/runtime/worker-pool.js';
import { bytesOf, makeModelsDir, removeDir, seedSpec, slowArch, tinyArch } from './helpers.js';

let modelsDir: string;
let registry: ModelRegistry;

before(async () => {
  modelsDir = await makeModelsDir({ tiny: tinyArch, slow: slowArch });
  registry = await ModelRegistry.load(modelsDir, []);
});

after(async () => {
  await removeDir(modelsDir);
});

function waitForIdle(pool: WorkerPool): Promise<void> {
  return new Promise((resolve) => {
    const poll = () => (pool.idleCount() > 0 ? resolve() : setTimeout(poll, 10));
    poll();
  });
}

test('worker runs a padded batch and trims the padding', async () => {
  const config = resolveRuntimeConfig({ modelsDir, session: { intraOpNumThreads: 1 } });
  const pool = await WorkerPool.start(registry.list(), config.session, silentLogger());
  try {
    const tiny = registry.require('tiny').manifest;
    const output = await pool.run(packBatch(tiny, [seedSpec(1, 32), seedSpec(2, 32), seedSpec(3, 32)], 4));
    assert.equal(output.img.length, 3 * 3 * 32 * 32);
    assert.equal(output.ws.length, 3 * 8 * 32);
    assert.ok(output.img.every(Number.isFinite));
    assert.equal(pool.provider.name, 'cpu');
  } finally {
    await pool.close();
  }
});

test('batch errors reject without killing the worker', async () => {
  const config = resolveRuntimeConfig({ modelsDir, session: { intraOpNumThreads: 1 } });
  const pool = await WorkerPool.start(registry.list(), config.session, silentLogger());
  try {
    const tiny = registry.require('tiny').manifest;
    const batch = packBatch(tiny, [seedSpec(1, 32)], 1);
    batch.model = 'missing';
    await assert.rejects(pool.run(batch), (err: unknown) => {
      assert.ok(err instanceof InferenceError);
      assert.match(err.message, /model missing is not loaded/);
      return true;
    });
    assert.equal(pool.idleCount(), 1);
    const output = await pool.run(packBatch(tiny, [seedSpec(1, 32)], 1));
    assert.equal(output.img.length, 3 * 32 * 32);
    assert.equal(pool.restarts, 0);
  } finally {
    await pool.close();
  }
});

test('crashed worker fails its batch and is restarted', async () => {
  const config = resolveRuntimeConfig({ modelsDir, session: { intraOpNumThreads: 1 } });
  const pool = await WorkerPool.start(registry.list(), config.session, silentLogger());
  try {
    const slow = registry.require('slow').manifest;
    const tiny = registry.require('tiny').manifest;
    const [reference] = [await pool.run(packBatch(tiny, [seedSpec(4, 32)], 1))];
    // The exit request reaches the worker before the batch, so the batch is in flight when it exits.
    pool.stopWorker(0, 1);
    const running = pool.run(packBatch(slow, Array.from({ length: 8 }, (_, i) => seedSpec(i, 64)), 8));
    await assert.rejects(running, (err: unknown) => {
      assert.ok(err instanceof InferenceError);
      assert.match(err.message, /exited \(code 1\) while running a batch of model slow/);
      return true;
    });
    await waitForIdle(pool);
    assert.equal(pool.restarts, 1);
    const again = await pool.run(packBatch(tiny, [seedSpec(4, 32)], 1));
    assert.deepEqual(bytesOf(again.img), bytesOf(reference.img));
  } finally {
    await pool.close();
  }
});

test('auto provider falls back to cpu without CUDA', async (t) => {
  const config = resolveRuntimeConfig({ modelsDir, models: ['tiny'], session: { intraOpNumThreads: 1, executionProvider: 'auto' } });
  const pool = await WorkerPool.start([registry.require('tiny')], config.session, silentLogger());
  try {
    if (pool.provider.name === 'cuda') t.skip('this machine has a working CUDA provider');
    else assert.match(pool.provider.reason, /CUDA unavailable/);
  } finally {
    await pool.close();
  }
});

test('cuda provider fails at start without CUDA', async (t) => {
  const config = resolveRuntimeConfig({ modelsDir, models: ['tiny'], session: { intraOpNumThreads: 1, executionProvider: 'cuda' } });
  const started = WorkerPool.start([registry.require('tiny')], config.session, silentLogger());
  const outcome = await started.then(
    async (pool) => {
      await pool.close();
      return 'started';
    },
    (err: Error) => err,
  );
  if (outcome === 'started') t.skip('this machine has a working CUDA provider');
  else assert.match((outcome as Error).message, /CUDA execution provider/);
});
