/** The symmetric eigen-solver: A·v = λ·v, orthonormal vectors, descending order, sign convention. */

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { SeededRandom } from '../../src/graph/prng.js';
import { symmetricEigen } from '../../src/graph/symmetric-eigen.js';

function randomGram(n: number, rows: number, seed: number): Float64Array {
  const random = new SeededRandom(seed);
  const a = Float64Array.from({ length: rows * n }, () => random.nextGaussian());
  const gram = new Float64Array(n * n);
  for (let r = 0; r < rows; r++) for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) gram[i * n + j] += a[r * n + i] * a[r * n + j];
  return gram;
}

for (const [n, rows] of [
  [1, 3],
  [2, 5],
  [17, 40],
  [64, 20],
  [128, 400],
] as const) {
  test(`eigen-decomposition of a ${n}x${n} Gram matrix`, () => {
    const matrix = randomGram(n, rows, n);
    const { values, vectors } = symmetricEigen(matrix, n);
    const scale = Math.max(...values.map(Math.abs), 1);
    for (let k = 0; k < n; k++) {
      if (k > 0) assert.ok(values[k] <= values[k - 1] + 1e-9 * scale, `values descend at ${k}`);
      const v = vectors.subarray(k * n, (k + 1) * n);
      let residual = 0;
      for (let i = 0; i < n; i++) {
        let av = 0;
        for (let j = 0; j < n; j++) av += matrix[i * n + j] * v[j];
        residual = Math.max(residual, Math.abs(av - values[k] * v[i]));
      }
      assert.ok(residual < 1e-9 * scale, `residual ${residual} for eigenvalue ${k}`);
      let largest = 0;
      for (const x of v) if (Math.abs(x) > Math.abs(largest)) largest = x;
      assert.ok(largest > 0, 'largest component is positive');
      for (let other = 0; other <= k; other++) {
        let dot = 0;
        for (let i = 0; i < n; i++) dot += v[i] * vectors[other * n + i];
        assert.ok(Math.abs(dot - (other === k ? 1 : 0)) < 1e-9, `vectors ${k} and ${other} are orthonormal`);
      }
    }
  });
}

test('eigen-decomposition of a diagonal matrix with repeated values', () => {
  const n = 4;
  const matrix = new Float64Array(n * n);
  [3, 1, 3, 2].forEach((value, i) => (matrix[i * n + i] = value));
  const { values } = symmetricEigen(matrix, n);
  assert.deepEqual(Array.from(values), [3, 3, 2, 1]);
});
