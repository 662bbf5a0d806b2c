/**
 * Latent-space arithmetic done on the CPU in TypeScript: truncation of user-supplied w/ws, label
 * vectors, style mixing and interpolation. Everything that needs the networks runs in the graphs.
 */

/** Truncates `ws [numWs, wDim]` in place toward `wAvg [wDim]` on layers `l < cutoff`; psi 1 is a no-op. */
export function truncateWs(ws: Float32Array, wAvg: Float32Array, psi: number, cutoff: number | undefined): void {
  if (psi === 1) return;
  const wDim = wAvg.length;
  const numWs = ws.length / wDim;
  const layers = Math.min(cutoff ?? numWs, numWs);
  for (let l = 0; l < layers; l++) {
    for (let j = 0; j < wDim; j++) {
      const i = l * wDim + j;
      ws[i] = Math.fround(wAvg[j] + Math.fround(psi * Math.fround(ws[i] - wAvg[j])));
    }
  }
}

/** Repeats `w [wDim]` into `ws [numWs, wDim]`. */
export function broadcastW(w: Float32Array, numWs: number): Float32Array {
  const ws = new Float32Array(numWs * w.length); // [numWs, wDim]
  for (let l = 0; l < numWs; l++) ws.set(w, l * w.length);
  return ws;
}

/** One-hot label `[cDim]` for class `classIndex`. */
export function oneHot(classIndex: number, cDim: number): Float32Array {
  const c = new Float32Array(cDim);
  c[classIndex] = 1;
  return c;
}

/** Copies `ws [numWs, wDim]` of `row` and replaces the layers in `layers` with those of `col`. */
export function mixStyles(row: Float32Array, col: Float32Array, layers: readonly number[], wDim: number): Float32Array {
  const mixed = row.slice(); // [numWs, wDim]
  for (const l of layers) mixed.set(col.subarray(l * wDim, (l + 1) * wDim), l * wDim);
  return mixed;
}

/** Linear interpolation a + t·(b − a), element-wise, in float32. */
export function lerp(a: Float32Array, b: Float32Array, t: number): Float32Array {
  const out = new Float32Array(a.length);
  for (let i = 0; i < a.length; i++) out[i] = Math.fround(a[i] + Math.fround(t * Math.fround(b[i] - a[i])));
  return out;
}

/**
 * Spherical interpolation between the directions of `a` and `b` (the perceptual path length
 * metric's z interpolation). Returns a unit vector; its scale does not matter because the mapping
 * network normalizes z first.
 */
export function slerp(a: Float32Array, b: Float32Array, t: number): Float32Array {
  const n = a.length;
  const ua = normalize(Float64Array.from(a));
  const ub = normalize(Float64Array.from(b));
  let dot = 0;
  for (let i = 0; i < n; i++) dot += ua[i] * ub[i];
  dot = Math.min(1, Math.max(-1, dot));
  const angle = t * Math.acos(dot);
  const ortho = new Float64Array(n);
  for (let i = 0; i < n; i++) ortho[i] = ub[i] - dot * ua[i];
  const orthoUnit = normalizeOrZero(ortho);
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = ua[i] * Math.cos(angle) + orthoUnit[i] * Math.sin(angle);
  return out;
}

function normalize(v: Float64Array): Float64Array {
  let norm = 0;
  for (const x of v) norm += x * x;
  norm = Math.sqrt(norm);
  if (norm === 0) throw new RangeError('cannot interpolate a zero vector: every z must have a non-zero element');
  return v.map((x) => x / norm);
}

function normalizeOrZero(v: Float64Array): Float64Array {
  let norm = 0;
  for (const x of v) norm += x * x;
  return norm === 0 ? v : v.map((x) => x / Math.sqrt(norm));
}
