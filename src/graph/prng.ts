/**
 * A small seeded pseudo-random generator for random weights and the w_avg estimate. It is not
 * numpy-compatible (seeded z for requests comes from the runtime's numpy port). It only has to be
 * deterministic: integer steps use Math.imul, and V8 computes Math.log/sin/cos with its own
 * fdlibm port, so the same seed gives the same numbers on every platform that runs this Node.
 */

/** Mulberry32 uniform generator plus a Box-Muller Gaussian. */
export class SeededRandom {
  #state: number;
  #cachedGaussian: number | null = null;

  constructor(seed: number) {
    if (!Number.isInteger(seed)) throw new Error(`random seed ${seed} is not an integer`);
    this.#state = seed >>> 0;
  }

  /** Next uniform uint32 (mulberry32 step). */
  nextUint32(): number {
    this.#state = (this.#state + 0x6d2b79f5) >>> 0;
    let t = this.#state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (t ^ (t >>> 14)) >>> 0;
  }

  /** Uniform double in [0, 1) with 53 random bits. */
  nextDouble(): number {
    const high = this.nextUint32() >>> 5;
    const low = this.nextUint32() >>> 6;
    return (high * 67108864 + low) / 9007199254740992;
  }

  /** Standard normal sample (Box-Muller, the second value of each pair is cached). */
  nextGaussian(): number {
    if (this.#cachedGaussian !== null) {
      const cached = this.#cachedGaussian;
      this.#cachedGaussian = null;
      return cached;
    }
    let u1 = this.nextDouble();
    while (u1 === 0) u1 = this.nextDouble();
    const u2 = this.nextDouble();
    const radius = Math.sqrt(-2 * Math.log(u1));
    this.#cachedGaussian = radius * Math.sin(2 * Math.PI * u2);
    return radius * Math.cos(2 * Math.PI * u2);
  }

  /** `count` standard normal samples as float32, each times `scale`. */
  gaussians(count: number, scale = 1): Float32Array {
    const out = new Float32Array(count);
    for (let i = 0; i < count; i++) out[i] = this.nextGaussian() * scale;
    return out;
  }
}
