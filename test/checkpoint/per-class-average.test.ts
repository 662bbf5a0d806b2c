/** Conditional checkpoints with one average latent per class keep the rows and use their mean. */

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { CheckpointError } from '../../src/checkpoint/errors.js';
import { splitPerClassAverage } from '../../src/checkpoint/nvlabs.js';
import type { GeneratorArchitecture, Tensor } from '../../src/checkpoint/types.js';

const arch = { cDim: 2, wDim: 3 } as GeneratorArchitecture;

test('per-class w_avg splits into rows and a mean', () => {
  const tensors = new Map<string, Tensor>([['mapping.w_avg', { shape: [2, 3], data: Float32Array.of(1, 2, 3, 3, 4, 5) }]]);
  const rows = splitPerClassAverage(arch, tensors);
  assert.deepEqual(rows, Float32Array.of(1, 2, 3, 3, 4, 5));
  assert.deepEqual(tensors.get('mapping.w_avg'), { shape: [3], data: Float32Array.of(2, 3, 4) });
});

test('global w_avg stays as it is', () => {
  const tensors = new Map<string, Tensor>([['mapping.w_avg', { shape: [3], data: Float32Array.of(1, 2, 3) }]]);
  assert.equal(splitPerClassAverage(arch, tensors), undefined);
  assert.deepEqual(tensors.get('mapping.w_avg')?.shape, [3]);
});

test('per-class w_avg of the wrong shape is rejected', () => {
  const tensors = new Map<string, Tensor>([['mapping.w_avg', { shape: [4, 3], data: new Float32Array(12) }]]);
  assert.throws(() => splitPerClassAverage(arch, tensors), (err: unknown) => err instanceof CheckpointError && /\[2, 3\]/.test(err.message));
});
