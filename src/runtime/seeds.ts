/**
 * Seeds to latents, compatible with numpy's legacy `np.random.RandomState(seed).randn(...)`, which
 * is how the NVlabs tools turn a seed into z. The generator is MT19937 seeded by an integer, 53-bit
 * doubles, and the legacy polar (Marsaglia) Gaussian that caches its second value.
 *
 * The float64 values can differ from numpy's by a few ulp because V8's `Math.log` is not glibc's
 * `log`. After the float32 cast that the mapping network applies they match numpy's output, which
 * test/runtime/seeds.test.ts checks for seeds 0, 1, 42, 85, 123 and 4294967295.
 */

/** Largest seed numpy's `RandomState` accepts: seeds are unsigned 32-bit integers. */
export const maxSeed = 0xffff_ffff;

const stateSize = 624; // MT19937 words
const shiftSize = 397;
const matrixA = 0x9908_b0df;
const upperMask = 0x8000_0000;
const lowerMask = 0x7fff_ffff;
const initMultiplier = 1_812_433_253;
const twoPow26 = 67_108_864;
const twoPow53 = 9_007_199_254_740_992;

/** Throws a RangeError unless `seed` is an integer in [0, 2^32 - 1]. */
export function assertSeed(seed: number, label = 'seed'): void {
  if (!Number.isInteger(seed) || seed < 0 || seed > maxSeed) {
    throw new RangeError(`invalid ${label} ${seed}: expected an integer in [0, ${maxSeed}]`);
  }
}

/** numpy's legacy `RandomState` restricted to integer seeds, `random_sample` and `randn`. */
export class LegacyRandomState {
  private readonly key = new Uint32Array(stateSize);
  private pos = stateSize;
  private hasGauss = false;
  private gauss = 0;

  constructor(seed: number) {
    assertSeed(seed);
    const key = this.key;
    key[0] = seed;
    for (let i = 1; i < stateSize; i++) {
      const prev = key[i - 1];
      key[i] = Math.imul(initMultiplier, prev ^ (prev >>> 30)) + i;
    }
  }

  /** Regenerates the whole state block (the MT19937 "twist"). */
  private twist(): void {
    const key = this.key;
    for (let i = 0; i < stateSize; i++) {
      const y = (key[i] & upperMask) | (key[(i + 1) % stateSize] & lowerMask);
      key[i] = key[(i + shiftSize) % stateSize] ^ (y >>> 1) ^ (y & 1 ? matrixA : 0);
    }
    this.pos = 0;
  }

  /** Next tempered 32-bit output. */
  nextUint32(): number {
    if (this.pos === stateSize) this.twist();
    let y = this.key[this.pos++];
    y ^= y >>> 11;
    y ^= (y << 7) & 0x9d2c_5680;
    y ^= (y << 15) & 0xefc6_0000;
    y ^= y >>> 18;
    return y >>> 0;
  }

  /** Uniform double in [0, 1) with 53 random bits (`random_sample`). */
  nextDouble(): number {
    const a = this.nextUint32() >>> 5; // 27 bits, drawn first
    const b = this.nextUint32() >>> 6; // 26 bits
    return (a * twoPow26 + b) / twoPow53;
  }

  /** Standard normal draw: the legacy polar method, returning the cached value on every other call. */
  nextGaussian(): number {
    if (this.hasGauss) {
      this.hasGauss = false;
      return this.gauss;
    }
    let x1: number;
    let x2: number;
    let r2: number;
    do {
      x1 = 2 * this.nextDouble() - 1;
      x2 = 2 * this.nextDouble() - 1;
      r2 = x1 * x1 + x2 * x2;
    } while (r2 >= 1 || r2 === 0);
    const f = Math.sqrt((-2 * Math.log(r2)) / r2);
    this.gauss = f * x1;
    this.hasGauss = true;
    return f * x2;
  }

  /** `randn(n)` as float64. */
  randn(n: number): Float64Array {
    const out = new Float64Array(n);
    for (let i = 0; i < n; i++) out[i] = this.nextGaussian();
    return out;
  }

  /** `randn(n).astype(np.float32)`, filling `out` (or a new array) in order. */
  randnFloat32(n: number, out = new Float32Array(n)): Float32Array {
    for (let i = 0; i < n; i++) out[i] = this.nextGaussian();
    return out;
  }
}

/** `np.random.RandomState(seed).randn(n)` cast to float32: the NVlabs tools' z for a seed. */
export function randnFromSeed(seed: number, n: number): Float32Array {
  return new LegacyRandomState(seed).randnFloat32(n);
}

/** z `[zDim]` for a seed, as `generate.py` computes it (`RandomState(seed).randn(1, z_dim)`). */
export function zFromSeed(seed: number, zDim: number): Float32Array {
  return randnFromSeed(seed, zDim); // [zDim]
}

/**
 * Unit-variance noise maps for noise mode `random`: one `RandomState(noiseSeed)` stream, drawn
 * layer after layer in `sizes` order (each entry is R·R floats). This is our own seeded mode, so a
 * given seed always gives the same maps. It is not compatible with torch's `randn` (which cannot be
 * reproduced outside torch), and it differs from the TensorFlow tools, which draw the noise maps
 * right after z from the z seed's stream.
 */
export function noiseMapsFromSeed(noiseSeed: number, sizes: readonly number[]): Float32Array[] {
  assertSeed(noiseSeed, 'noise seed');
  const state = new LegacyRandomState(noiseSeed);
  return sizes.map((size) => state.randnFloat32(size)); // each [R*R]
}

/** Alias of `zFromSeed`, the name the routes use. */
export const seedToZ = zFromSeed;
