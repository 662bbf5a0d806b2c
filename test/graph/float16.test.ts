/** fp16 conversion: rounding, special values and the round trip of every bit pattern. */

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { float16Bits, float16Max, float16ToFloat32, float16Value, roundToFloat16, toFloat16Bits } from '../../src/graph/float16.js';

describe('float16Bits', () => {
  const cases: [string, number, number][] = [
    ['one', 1, 0x3c00],
    ['minus two', -2, 0xc000],
    ['zero', 0, 0x0000],
    ['negative zero', -0, 0x8000],
    ['largest finite', float16Max, 0x7bff],
    ['half-way to overflow rounds to Inf', 65520, 0x7c00],
    ['just under the overflow tie', 65519, 0x7bff],
    ['Inf', Infinity, 0x7c00],
    ['smallest subnormal', 2 ** -24, 0x0001],
    ['half the smallest subnormal ties to zero', 2 ** -25, 0x0000],
    ['smallest normal', 2 ** -14, 0x0400],
    ['tie below an even mantissa rounds down', 1 + 2 ** -11, 0x3c00],
    ['tie below an odd mantissa rounds up', 1 + 3 * 2 ** -11, 0x3c02],
    ['mantissa carry bumps the exponent', 2 - 2 ** -12, 0x4000],
    ['subnormal rounds to nearest', 3.1 * 2 ** -24, 0x0003],
    ['sqrt(2)', Math.SQRT2, 0x3da8],
  ];
  for (const [label, value, bits] of cases) {
    it(label, () => assert.equal(float16Bits(value).toString(16), bits.toString(16)));
  }

  it('NaN stays NaN', () => {
    assert.ok(Number.isNaN(float16Value(float16Bits(NaN))));
  });

  it('round-trips every finite bit pattern', () => {
    for (let bits = 0; bits < 0x10000; bits++) {
      const exponent = (bits >>> 10) & 0x1f;
      if (exponent === 0x1f && (bits & 0x3ff) !== 0) continue; // NaN payloads
      assert.equal(float16Bits(float16Value(bits)), bits, `bits 0x${bits.toString(16)}`);
    }
  });
});

describe('array conversions', () => {
  it('round to the nearest fp16 value', () => {
    const values = Float32Array.of(0.1, -3.14159, 1e-6, 70000);
    const bits = toFloat16Bits(values);
    assert.deepEqual(Array.from(float16ToFloat32(bits)), Array.from(roundToFloat16(values)));
    for (let i = 0; i < 3; i++) {
      const relative = Math.abs(roundToFloat16(values)[i] - values[i]) / Math.abs(values[i]);
      assert.ok(relative <= 2 ** -11 || Math.abs(values[i]) < 2 ** -14, `value ${values[i]}: relative error ${relative}`);
    }
    assert.equal(roundToFloat16(values)[3], Infinity);
  });
});
