/**
 * End-to-end scheduler tests through the real worker thread and real ONNX Runtime sessions on tiny
 * random models: batching, determinism, deadlines, cancellation, backpressure, fairness.
 */

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';

import type { ImageSpec } from '../../src/runtime/contract.js';
import { CancelledError, DeadlineExceededError, InvalidInputError, ModelNotFoundError, QueueFullError, UnavailableError, type InferenceService } from '../../src/runtime/service.js';
import { bytesOf, collect, expectIteratorError, jobOptions, makeModelsDir, removeDir, seedSpec, slowArch, startService, tinyArch } from './helpers.js';

let modelsDir: string;
let service: InferenceService;
const tinyZ = tinyArch.zDim!;
const slowZ = slowArch.zDim!;

before(async () => {
  modelsDir = await makeModelsDir({ tiny: tinyArch, slow: slowArch });
  service = await startService(modelsDir);
});

after(async () => {
  await service?.close();
  await removeDir(modelsDir);
});

describe('determinism', () => {
  test('same seed gives identical bytes at batch sizes 1, 3 and 8', async () => {
    const target = seedSpec(5, tinyZ);
    const [alone] = await collect(service.generate('tiny', [target], jobOptions()));
    assert.equal(alone.batchSize, 1);

    const three = await collect(service.generate('tiny', [seedSpec(9, tinyZ), target, seedSpec(7, tinyZ)], jobOptions()));
    assert.equal(three[1].batchSize, 3);
    assert.deepEqual(bytesOf(three[1].image), bytesOf(alone.image));
    assert.deepEqual(bytesOf(three[1].ws), bytesOf(alone.ws));

    const eight = Array.from({ length: 8 }, (_, i) => seedSpec(100 + i, tinyZ));
    eight[6] = target;
    const results = await collect(service.generate('tiny', eight, jobOptions()));
    assert.equal(results[6].batchSize, 8);
    assert.deepEqual(bytesOf(results[6].image), bytesOf(alone.image));
    assert.notDeepEqual(bytesOf(results[5].image), bytesOf(alone.image));
  });

  test('noise modes are per image in mixed batches', async () => {
    const random = seedSpec(5, tinyZ, { noiseMode: 'random', noiseSeed: 11 });
    const none = seedSpec(5, tinyZ, { noiseMode: 'none' });
    const constant = seedSpec(5, tinyZ);
    const solo = [];
    for (const spec of [random, none, constant]) solo.push((await collect(service.generate('tiny', [spec], jobOptions())))[0]);
    for (const result of solo) assert.equal(result.batchSize, 1);

    // Three jobs submitted together share one batch of 6 with other images.
    const jobs = [
      service.generate('tiny', [seedSpec(1, tinyZ), random], jobOptions()),
      service.generate('tiny', [none, seedSpec(2, tinyZ, { noiseMode: 'random', noiseSeed: 3 })], jobOptions()),
      service.generate('tiny', [seedSpec(3, tinyZ), constant], jobOptions()),
    ];
    const shared = await Promise.all(jobs.map(collect));
    assert.equal(shared[0][1].batchSize, 6);
    assert.deepEqual(bytesOf(shared[0][1].image), bytesOf(solo[0].image), 'random noise');
    assert.deepEqual(bytesOf(shared[1][0].image), bytesOf(solo[1].image), 'no noise');
    assert.deepEqual(bytesOf(shared[2][1].image), bytesOf(solo[2].image), 'const noise');
    assert.notDeepEqual(bytesOf(solo[0].image), bytesOf(solo[2].image));
    assert.notDeepEqual(bytesOf(solo[1].image), bytesOf(solo[2].image));
  });

  test('ws input reproduces the mapped image', async () => {
    const [mapped] = await collect(service.generate('tiny', [seedSpec(8, tinyZ, {}, 0.7)], jobOptions()));
    const fromWs: ImageSpec = { latent: { kind: 'ws', ws: mapped.ws }, noiseMode: 'const' };
    const [direct] = await collect(service.generate('tiny', [fromWs, seedSpec(4, tinyZ)], jobOptions()));
    assert.deepEqual(bytesOf(direct.image), bytesOf(mapped.image));
  });
});

describe('submission checks', () => {
  test('wrong latent size names the expected size', () => {
    const bad: ImageSpec = { latent: { kind: 'z', z: new Float32Array(tinyZ + 1), psi: 1 }, noiseMode: 'const' };
    assert.throws(() => service.generate('tiny', [bad], jobOptions()), (err: unknown) => {
      assert.ok(err instanceof InvalidInputError);
      assert.match(err.message, /zDim = 32/);
      return true;
    });
    const badWs: ImageSpec = { latent: { kind: 'ws', ws: new Float32Array(3) }, noiseMode: 'const' };
    assert.throws(() => service.generate('tiny', [badWs], jobOptions()), /numWs x wDim = 8 x 32 = 256/);
  });

  test('random noise needs a valid noise seed', () => {
    assert.throws(() => service.generate('tiny', [seedSpec(1, tinyZ, { noiseMode: 'random' })], jobOptions()), InvalidInputError);
    assert.throws(() => service.generate('tiny', [seedSpec(1, tinyZ, { noiseMode: 'random', noiseSeed: -1 })], jobOptions()), /noise seed -1/);
  });

  test('unknown and malformed model names', () => {
    assert.throws(() => service.generate('nope', [seedSpec(1, tinyZ)], jobOptions()), (err: unknown) => {
      assert.ok(err instanceof ModelNotFoundError);
      assert.match(err.message, /loaded models are slow, tiny/);
      return true;
    });
    assert.throws(() => service.generate('../tiny', [seedSpec(1, tinyZ)], jobOptions()), /invalid model name/);
    assert.equal(service.getModel('../tiny'), undefined);
  });

  test('already aborted signal and past deadline', () => {
    const controller = new AbortController();
    controller.abort();
    assert.throws(() => service.generate('tiny', [seedSpec(1, tinyZ)], jobOptions({ signal: controller.signal })), CancelledError);
    assert.throws(() => service.generate('tiny', [seedSpec(1, tinyZ)], jobOptions({ deadlineMs: Date.now() - 1 })), DeadlineExceededError);
  });
});

describe('deadlines and cancellation', () => {
  test('queued job expires on time behind a long batch', async (t) => {
    const long = service.generate('slow', Array.from({ length: 8 }, (_, i) => seedSpec(i, slowZ)), jobOptions());
    const longDone = collect(long);
    await new Promise((resolve) => setTimeout(resolve, 20)); // the batch of 8 is running now
    const before = service.stats();
    assert.equal(before.inFlightImages, 8);

    const deadlineMs = Date.now() + 150;
    const late = service.generate('slow', [seedSpec(50, slowZ)], jobOptions({ deadlineMs }));
    const { error } = await expectIteratorError(late);
    const lateByMs = Date.now() - deadlineMs;
    assert.ok(error instanceof DeadlineExceededError, `got ${error.name}: ${error.message}`);
    t.diagnostic(`iterator threw ${lateByMs} ms after the deadline`);
    assert.ok(lateByMs < 100, `iterator threw ${lateByMs} ms after the deadline`);
    assert.equal(service.stats().inFlightImages, 8, 'the long batch was still running');
    assert.equal(service.stats().expirations, before.expirations + 1);
    assert.equal(service.stats().queuedImages, 0, 'expired image left the queue');

    const results = await longDone;
    assert.equal(results.length, 8);
    assert.equal((late as unknown as { computed: number }).computed, 0);
  });

  test('cancelled queued job computes nothing', async () => {
    const before = service.stats();
    const long = collect(service.generate('slow', Array.from({ length: 8 }, (_, i) => seedSpec(i, slowZ)), jobOptions()));
    await new Promise((resolve) => setTimeout(resolve, 20));
    const controller = new AbortController();
    const victim = service.generate('slow', Array.from({ length: 4 }, (_, i) => seedSpec(200 + i, slowZ)), jobOptions({ signal: controller.signal }));
    assert.equal(service.stats().queuedImages, 4);
    const failure = expectIteratorError(victim);
    controller.abort();
    assert.equal(service.stats().queuedImages, 0, 'queued images left at once');
    const { error, received } = await failure;
    assert.ok(error instanceof CancelledError, `got ${error.name}`);
    assert.equal(received, 0);

    await long;
    const after = service.stats();
    assert.equal(victim.computed, 0);
    assert.equal(after.imagesComputed - before.imagesComputed, 8, 'only the long job was computed');
    assert.equal(after.cancellations, before.cancellations + 1);

    const [next] = await collect(service.generate('slow', [seedSpec(1, slowZ)], jobOptions()));
    assert.equal(next.image.length, 3 * 128 * 128);
  });

  test('in-flight results of a cancelled job are dropped', async () => {
    const controller = new AbortController();
    const job = service.generate('slow', Array.from({ length: 8 }, (_, i) => seedSpec(300 + i, slowZ)), jobOptions({ signal: controller.signal }));
    const failure = expectIteratorError(job);
    await new Promise((resolve) => setTimeout(resolve, 20));
    controller.abort();
    const { error, received } = await failure;
    assert.ok(error instanceof CancelledError);
    assert.equal(received, 0);
    for (let waitedMs = 0; service.stats().inFlightImages > 0 && waitedMs < 10_000; waitedMs += 10) {
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    assert.equal(job.computed, 8, 'the running batch finished');
    assert.equal(service.stats().activeJobs, 0);
  });

  test('breaking out of the iterator cancels the rest', async () => {
    const before = service.stats();
    const job = service.generate('tiny', Array.from({ length: 40 }, (_, i) => seedSpec(i, tinyZ)), jobOptions());
    for await (const _ of job) break;
    assert.equal(service.stats().queuedImages, 0);
    assert.equal(service.stats().cancellations, before.cancellations + 1);
    assert.ok(job.computed < 40, `computed ${job.computed}`);
  });
});

describe('fairness', () => {
  test('one image behind 200 images finishes first', async () => {
    const big = service.generate('tiny', Array.from({ length: 200 }, (_, i) => seedSpec(i, tinyZ)), jobOptions());
    let bigReceived = 0;
    let bigAtSmallDone = -1;
    const bigDone = (async () => {
      for await (const _ of big) bigReceived++;
    })();
    const small = service.generate('tiny', [seedSpec(999, tinyZ)], jobOptions());
    await collect(small);
    bigAtSmallDone = bigReceived;
    await bigDone;
    assert.equal(bigReceived, 200);
    assert.ok(bigAtSmallDone <= 16, `the big job had ${bigAtSmallDone} images when the small one finished`);
  });

  test('interactive images go before bulk ones', async () => {
    const bulk = service.generate('slow', Array.from({ length: 24 }, (_, i) => seedSpec(i, slowZ)), jobOptions({ priority: 'bulk' }));
    let bulkReceived = 0;
    const bulkDone = (async () => {
      for await (const _ of bulk) bulkReceived++;
    })();
    await new Promise((resolve) => setTimeout(resolve, 20));
    // With priorities the next batch contains all 8 interactive images; round-robin alone would mix them.
    const interactive = await collect(service.generate('slow', Array.from({ length: 8 }, (_, i) => seedSpec(100 + i, slowZ)), jobOptions({ priority: 'interactive' })));
    const bulkAtInteractiveDone = bulkReceived;
    await bulkDone;
    assert.equal(interactive.length, 8);
    assert.equal(interactive[0].batchSize, 8);
    assert.ok(bulkAtInteractiveDone <= 8, `bulk had ${bulkAtInteractiveDone} images when the interactive job finished`);
  });
});

describe('responsiveness', () => {
  test('event loop stays free during batches of 8', async (t) => {
    let maxGapMs = 0;
    let last = performance.now();
    const ticker = setInterval(() => {
      const now = performance.now();
      maxGapMs = Math.max(maxGapMs, now - last);
      last = now;
    }, 5);
    try {
      const before = service.stats().batchesRun;
      const results = await collect(service.generate('slow', Array.from({ length: 24 }, (_, i) => seedSpec(i, slowZ)), jobOptions()));
      assert.equal(results.length, 24);
      assert.equal(service.stats().batchesRun - before, 3);
    } finally {
      clearInterval(ticker);
    }
    t.diagnostic(`max event loop gap ${maxGapMs.toFixed(1)} ms`);
    assert.ok(maxGapMs < 100, `max event loop gap ${maxGapMs.toFixed(1)} ms`);
  });
});

describe('backpressure and draining', () => {
  test('burst beyond maxQueuedImages gets QueueFullError', async () => {
    const small = await startService(modelsDir, { maxQueuedImages: 16, maxBatch: 4 }, false);
    try {
      const specsOf = (job: number) => Array.from({ length: 4 }, (_, i) => seedSpec(job * 10 + i, slowZ));
      const accepted: { job: number; results: Promise<Awaited<ReturnType<typeof collect>>> }[] = [];
      const rejected: QueueFullError[] = [];
      for (let job = 0; job < 10; job++) {
        try {
          accepted.push({ job, results: collect(small.generate('slow', specsOf(job), jobOptions())) });
        } catch (err) {
          assert.ok(err instanceof QueueFullError, `job ${job}: ${(err as Error).name}`);
          rejected.push(err);
        }
      }
      assert.ok(rejected.length > 0, 'some jobs were rejected');
      assert.ok(accepted.length >= 4, `${accepted.length} jobs accepted`);
      for (const err of rejected) assert.ok(err.retryAfterSeconds >= 1);
      assert.throws(() => small.generate('slow', Array.from({ length: 17 }, (_, i) => seedSpec(i, slowZ)), jobOptions()), InvalidInputError);

      // Every accepted job completes with the images its seeds give on their own.
      for (const { job, results } of accepted) {
        const images = await results;
        assert.equal(images.length, 4);
        const [reference] = await collect(small.generate('slow', [specsOf(job)[2]], jobOptions()));
        assert.deepEqual(bytesOf(images[2].image), bytesOf(reference.image), `job ${job}`);
      }
    } finally {
      await small.close();
    }
  });

  test('draining rejects new work and waits for running jobs', async () => {
    const draining = await startService(modelsDir, {}, false);
    try {
      const running = collect(draining.generate('tiny', [seedSpec(1, tinyZ), seedSpec(2, tinyZ)], jobOptions()));
      const drained = draining.drain();
      assert.equal(draining.isDraining(), true);
      assert.equal(draining.isReady(), false);
      assert.throws(() => draining.generate('tiny', [seedSpec(1, tinyZ)], jobOptions()), UnavailableError);
      await drained;
      assert.equal((await running).length, 2);
    } finally {
      await draining.close();
    }
  });
});

describe('metrics', () => {
  test('registry exposes the scheduler metrics', async () => {
    const text = await service.metricsRegistry.metrics();
    for (const name of ['stylegan_queued_images', 'stylegan_queue_wait_seconds', 'stylegan_batch_size_images', 'stylegan_inference_seconds', 'stylegan_job_cancellations_total', 'stylegan_job_expirations_total']) {
      assert.match(text, new RegExp(`^# TYPE ${name} `, 'm'), name);
    }
    assert.match(text, /stylegan_batch_size_images_count\{model="tiny"\} [1-9]/);
  });
});
