/**
 * Eigen-decomposition of a real symmetric matrix in float64: Householder reduction to tridiagonal
 * form, then the implicit symmetric QR algorithm with Wilkinson shifts (Golub & Van Loan, Matrix
 * Computations, algorithms 8.3.1 and 8.3.3). O(n³) overall; about a second for n = 512 in V8.
 */

/** Machine epsilon of float64, the deflation threshold of the QR iteration. */
const epsilon = 2 ** -52;
/** QR sweeps allowed per eigenvalue before giving up (convergence is cubic; a handful suffice). */
const maxSweepsPerEigenvalue = 60;

/**
 * Reduces symmetric `a` (row-major n×n, overwritten) to tridiagonal T = Qᵀ·A·Q. Returns the
 * diagonal, the sub-diagonal and Q (row-major n×n).
 */
function tridiagonalize(a: Float64Array, n: number): { diagonal: Float64Array; offDiagonal: Float64Array; q: Float64Array } {
  const q = new Float64Array(n * n);
  for (let i = 0; i < n; i++) q[i * n + i] = 1;
  const v = new Float64Array(n);
  const p = new Float64Array(n);

  for (let k = 0; k < n - 2; k++) {
    // Householder vector v that maps A[k+1.., k] onto a multiple of the first unit vector.
    let norm = 0;
    for (let i = k + 1; i < n; i++) norm += a[i * n + k] ** 2;
    norm = Math.sqrt(norm);
    if (norm === 0) continue;
    const x0 = a[(k + 1) * n + k];
    const alpha = x0 > 0 ? -norm : norm;
    let vNorm = 0;
    for (let i = k + 1; i < n; i++) {
      v[i] = a[i * n + k] - (i === k + 1 ? alpha : 0);
      vNorm += v[i] ** 2;
    }
    vNorm = Math.sqrt(vNorm);
    if (vNorm === 0) continue;
    for (let i = k + 1; i < n; i++) v[i] /= vNorm;

    // S ← H·S·H for the trailing block S, with p = S·v, w = p − (vᵀp)·v: S − 2·v·wᵀ − 2·w·vᵀ.
    let vp = 0;
    for (let i = k + 1; i < n; i++) {
      let sum = 0;
      for (let j = k + 1; j < n; j++) sum += a[i * n + j] * v[j];
      p[i] = sum;
      vp += v[i] * sum;
    }
    for (let i = k + 1; i < n; i++) p[i] -= vp * v[i]; // p now contains w
    for (let i = k + 1; i < n; i++) {
      for (let j = k + 1; j < n; j++) a[i * n + j] -= 2 * (v[i] * p[j] + p[i] * v[j]);
    }
    for (let i = k + 1; i < n; i++) {
      a[i * n + k] = i === k + 1 ? alpha : 0;
      a[k * n + i] = a[i * n + k];
    }

    // Q ← Q·H.
    for (let r = 0; r < n; r++) {
      let dot = 0;
      for (let j = k + 1; j < n; j++) dot += q[r * n + j] * v[j];
      if (dot === 0) continue;
      for (let j = k + 1; j < n; j++) q[r * n + j] -= 2 * dot * v[j];
    }
  }

  const diagonal = new Float64Array(n);
  const offDiagonal = new Float64Array(Math.max(0, n - 1));
  for (let i = 0; i < n; i++) diagonal[i] = a[i * n + i];
  for (let i = 0; i < n - 1; i++) offDiagonal[i] = a[(i + 1) * n + i];
  return { diagonal, offDiagonal, q };
}

/**
 * Diagonalizes the tridiagonal matrix (d, e) in place by implicit QR steps with Wilkinson shifts,
 * applying every rotation to the columns of `z` (row-major n×n), so z's columns become eigenvectors.
 */
function tridiagonalQr(d: Float64Array, e: Float64Array, z: Float64Array, n: number): void {
  let hi = n - 1;
  let sweeps = 0;
  while (hi > 0) {
    if (Math.abs(e[hi - 1]) <= epsilon * (Math.abs(d[hi - 1]) + Math.abs(d[hi]))) {
      e[hi - 1] = 0;
      hi--;
      sweeps = 0;
      continue;
    }
    if (++sweeps > maxSweepsPerEigenvalue) throw new Error(`eigen-decomposition did not converge after ${maxSweepsPerEigenvalue} sweeps`);
    let lo = hi - 1;
    while (lo > 0 && Math.abs(e[lo - 1]) > epsilon * (Math.abs(d[lo - 1]) + Math.abs(d[lo]))) lo--;

    // Wilkinson shift: the eigenvalue of the trailing 2×2 block closer to d[hi].
    const delta = (d[hi - 1] - d[hi]) / 2;
    const sign = delta >= 0 ? 1 : -1;
    const mu = d[hi] - e[hi - 1] ** 2 / (delta + sign * Math.hypot(delta, e[hi - 1]));

    // Chase the bulge from (lo, lo) down to (hi, hi) with rotations in planes (k, k+1).
    let x = d[lo] - mu;
    let bulge = e[lo];
    for (let k = lo; k < hi; k++) {
      const r = Math.hypot(x, bulge);
      const c = r === 0 ? 1 : x / r;
      const s = r === 0 ? 0 : -bulge / r;
      if (k > lo) e[k - 1] = r;
      const a = d[k];
      const b = e[k];
      const dd = d[k + 1];
      d[k] = c * c * a - 2 * c * s * b + s * s * dd;
      d[k + 1] = s * s * a + 2 * c * s * b + c * c * dd;
      e[k] = c * s * (a - dd) + (c * c - s * s) * b;
      if (k < hi - 1) {
        bulge = -s * e[k + 1];
        e[k + 1] = c * e[k + 1];
      }
      x = e[k];
      for (let row = 0; row < n; row++) {
        const zk = z[row * n + k];
        const zk1 = z[row * n + k + 1];
        z[row * n + k] = c * zk - s * zk1;
        z[row * n + k + 1] = s * zk + c * zk1;
      }
    }
  }
}

/**
 * Eigen-decomposition of symmetric `matrix` (row-major n×n, not modified). Returns eigenvalues in
 * descending order and the matching unit eigenvectors as rows, each with its largest-magnitude
 * component positive.
 */
export function symmetricEigen(matrix: Float64Array, n: number): { values: Float64Array; vectors: Float64Array } {
  if (matrix.length !== n * n) throw new RangeError(`expected an ${n}x${n} matrix, got ${matrix.length} values`);
  const { diagonal, offDiagonal, q } = tridiagonalize(Float64Array.from(matrix), n);
  tridiagonalQr(diagonal, offDiagonal, q, n);

  const order = Array.from({ length: n }, (_, i) => i).sort((i, j) => diagonal[j] - diagonal[i]);
  const values = Float64Array.from(order, (i) => diagonal[i]);
  const vectors = new Float64Array(n * n);
  order.forEach((col, row) => {
    let largest = 0;
    for (let k = 0; k < n; k++) if (Math.abs(q[k * n + col]) > Math.abs(largest)) largest = q[k * n + col];
    const sign = largest < 0 ? -1 : 1;
    for (let k = 0; k < n; k++) vectors[row * n + k] = sign * q[k * n + col];
  });
  return { values, vectors };
}
