/**
 * Tensor materialisation: element types, storage offsets and strided (transposed) views.
 */

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { CheckpointError } from '../../src/checkpoint/errors.js';
import { viewToFloat32, type DType } from '../../src/checkpoint/tensor-data.js';

function bytesOf(array: ArrayBufferView): Uint8Array {
  return new Uint8Array(array.buffer, array.byteOffset, array.byteLength);
}

function dense(dtype: DType, bytes: Uint8Array, shape: number[]): Float32Array {
  const stride = shape.map((_, d) => shape.slice(d + 1).reduce((a, b) => a * b, 1));
  return viewToFloat32({ dtype, bytes, offset: 0, shape, stride }, 'test tensor');
}

describe('tensor element types', () => {
  it('converts float16 bit patterns', () => {
    // 1.0, -2.0, 65504 (max), 2^-24 (smallest subnormal), +inf
    const half = Uint16Array.of(0x3c00, 0xc000, 0x7bff, 0x0001, 0x7c00);
    assert.deepEqual([...dense('float16', bytesOf(half), [5])], [1, -2, 65504, 2 ** -24, Infinity]);
  });

  it('converts bfloat16 bit patterns', () => {
    const bf16 = Uint16Array.of(0x3f80, 0xc040, 0x3e20); // 1, -3, 0.15625
    assert.deepEqual([...dense('bfloat16', bytesOf(bf16), [3])], [1, -3, 0.15625]);
  });

  it('rounds float64 to float32', () => {
    const f64 = Float64Array.of(0.1, -1e-3, 3);
    assert.deepEqual([...dense('float64', bytesOf(f64), [3])], [Math.fround(0.1), Math.fround(-1e-3), 3]);
  });

  it('converts integers and booleans', () => {
    assert.deepEqual([...dense('int64', bytesOf(BigInt64Array.of(-5n, 7n)), [2])], [-5, 7]);
    assert.deepEqual([...dense('int32', bytesOf(Int32Array.of(-9, 9)), [2])], [-9, 9]);
    assert.deepEqual([...dense('uint8', Uint8Array.of(0, 255), [2])], [0, 255]);
    assert.deepEqual([...dense('bool', Uint8Array.of(0, 1, 2), [3])], [0, 1, 1]);
  });

  it('reads float32 data at an unaligned byte offset', () => {
    const buffer = new Uint8Array(4 * 3 + 1);
    buffer.set(bytesOf(Float32Array.of(1.5, -2.5, 3.25)), 1);
    assert.deepEqual([...dense('float32', buffer.subarray(1), [3])], [1.5, -2.5, 3.25]);
  });
});

describe('tensor views', () => {
  const storage = bytesOf(Float32Array.from({ length: 12 }, (_, i) => i)); // 0..11

  it('honours the storage offset', () => {
    const out = viewToFloat32({ dtype: 'float32', bytes: storage, offset: 8, shape: [2, 2], stride: [2, 1] }, 't');
    assert.deepEqual([...out], [8, 9, 10, 11]);
  });

  it('gathers a transposed view in C order', () => {
    // storage as [2, 6]; the view is its transpose [6, 2] with stride (1, 6)
    const out = viewToFloat32({ dtype: 'float32', bytes: storage, offset: 0, shape: [6, 2], stride: [1, 6] }, 't');
    assert.deepEqual([...out], [0, 6, 1, 7, 2, 8, 3, 9, 4, 10, 5, 11]);
  });

  it('reads a 0-d tensor', () => {
    const out = viewToFloat32({ dtype: 'float32', bytes: storage, offset: 5, shape: [], stride: [] }, 't');
    assert.deepEqual([...out], [5]);
  });

  it('rejects a view past the storage end', () => {
    assert.throws(
      () => viewToFloat32({ dtype: 'float32', bytes: storage, offset: 4, shape: [3, 3], stride: [3, 1] }, 'bad view'),
      (err: unknown) => err instanceof CheckpointError && /reaches element 12, but the storage holds 12 elements/.test(err.message),
    );
  });

  it('rejects negative strides', () => {
    assert.throws(
      () => viewToFloat32({ dtype: 'float32', bytes: storage, offset: 11, shape: [2], stride: [-1] }, 'bad view'),
      (err: unknown) => err instanceof CheckpointError && err.code === 'invalid_structure',
    );
  });
});
