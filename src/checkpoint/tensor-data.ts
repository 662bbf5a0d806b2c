/**
 * Element types of stored tensors and their conversion to float32. Storage bytes are read as
 * little-endian, because torch and numpy write the host order and the readers reject files from
 * big-endian hosts. A view is an element offset, a shape and element strides, as in torch's
 * `as_strided`.
 */

import { CheckpointError } from './errors.js';

export type DType = 'float32' | 'float16' | 'bfloat16' | 'float64' | 'int64' | 'int32' | 'int16' | 'int8' | 'uint8' | 'bool';

export const dtypeByteSize: Record<DType, number> = {
  float32: 4,
  float16: 2,
  bfloat16: 2,
  float64: 8,
  int64: 8,
  int32: 4,
  int16: 2,
  int8: 1,
  uint8: 1,
  bool: 1,
};

/** A strided view of elements stored in `bytes`. */
export interface StridedView {
  dtype: DType;
  /** The whole storage, `numel · dtypeByteSize[dtype]` bytes. */
  bytes: Uint8Array;
  /** Offset of element [0, 0, ...] in elements. */
  offset: number;
  shape: number[];
  /** Step per dimension in elements. */
  stride: number[];
}

const hostIsLittleEndian = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

export function elementCount(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

export function contiguousStrides(shape: readonly number[]): number[] {
  const stride = new Array<number>(shape.length);
  let step = 1;
  for (let i = shape.length - 1; i >= 0; i--) {
    stride[i] = step;
    step *= shape[i];
  }
  return stride;
}

/**
 * Checks that every element of the view lies inside a storage of `storageNumel` elements. Called
 * before any data is read, so a crafted shape cannot address memory outside the storage.
 */
export function checkViewBounds(shape: readonly number[], stride: readonly number[], offset: number, storageNumel: number, what: string): void {
  const valid = (v: unknown) => Number.isSafeInteger(v) && (v as number) >= 0;
  if (shape.length !== stride.length || !shape.every(valid) || !stride.every(valid) || !valid(offset)) {
    throw new CheckpointError(
      'invalid_structure',
      `Invalid view of ${what}: size [${shape.join(', ')}], stride [${stride.join(', ')}], offset ${offset}`,
    );
  }
  if (elementCount(shape) === 0) return;
  let last = offset;
  for (let i = 0; i < shape.length; i++) last += (shape[i] - 1) * stride[i];
  if (last >= storageNumel) {
    throw new CheckpointError(
      'invalid_structure',
      `Invalid view of ${what}: size [${shape.join(', ')}] with stride [${stride.join(', ')}] at offset ` +
        `${offset} reaches element ${last}, but the storage holds ${storageNumel} elements`,
    );
  }
}

let halfTable: Float32Array | undefined;

/** float16 bit pattern -> float32 value, for all 65536 patterns (256 KiB, built on first use). */
function halfToFloatTable(): Float32Array {
  if (halfTable) return halfTable;
  halfTable = new Float32Array(65536);
  for (let h = 0; h < 65536; h++) {
    const sign = h & 0x8000 ? -1 : 1;
    const exponent = (h >> 10) & 0x1f;
    const fraction = h & 0x3ff;
    let v: number;
    if (exponent === 0) v = fraction * 2 ** -24;
    else if (exponent === 31) v = fraction === 0 ? Infinity : NaN;
    else v = (1 + fraction / 1024) * 2 ** (exponent - 15);
    halfTable[h] = sign * v;
  }
  return halfTable;
}

/** Decodes `count` elements starting at element `start` into float32 (C order of the storage). */
function decodeRange(bytes: Uint8Array, dtype: DType, start: number, count: number): Float32Array {
  if (!hostIsLittleEndian) {
    throw new CheckpointError('unsupported_format', 'Reading checkpoints needs a little-endian host');
  }
  const size = dtypeByteSize[dtype];
  // Copy into a fresh, aligned buffer; the source view may sit at any byte offset of the file.
  const aligned = new Uint8Array(count * size);
  aligned.set(bytes.subarray(start * size, (start + count) * size));
  const buffer = aligned.buffer;
  switch (dtype) {
    case 'float32':
      return new Float32Array(buffer);
    case 'float16': {
      const table = halfToFloatTable();
      const half = new Uint16Array(buffer);
      const out = new Float32Array(count);
      for (let i = 0; i < count; i++) out[i] = table[half[i]];
      return out;
    }
    case 'bfloat16': {
      const half = new Uint16Array(buffer);
      const bits = new Uint32Array(count);
      for (let i = 0; i < count; i++) bits[i] = half[i] << 16;
      return new Float32Array(bits.buffer);
    }
    case 'float64':
      return Float32Array.from(new Float64Array(buffer));
    case 'int64': {
      const wide = new BigInt64Array(buffer);
      const out = new Float32Array(count);
      for (let i = 0; i < count; i++) out[i] = Number(wide[i]);
      return out;
    }
    case 'int32':
      return Float32Array.from(new Int32Array(buffer));
    case 'int16':
      return Float32Array.from(new Int16Array(buffer));
    case 'int8':
      return Float32Array.from(new Int8Array(buffer));
    case 'uint8':
      return Float32Array.from(aligned);
    case 'bool':
      return Float32Array.from(aligned, (b) => (b === 0 ? 0 : 1));
  }
}

/** Materialises a strided view as a dense float32 array in C order. */
export function viewToFloat32(view: StridedView, what: string): Float32Array {
  const { shape, stride, offset, dtype } = view;
  const numel = Math.floor(view.bytes.length / dtypeByteSize[dtype]);
  checkViewBounds(shape, stride, offset, numel, what);
  const count = elementCount(shape);
  if (count === 0) return new Float32Array(0);

  const expected = contiguousStrides(shape);
  const contiguous = shape.every((d, i) => d === 1 || stride[i] === expected[i]);
  if (contiguous) return decodeRange(view.bytes, dtype, offset, count);

  // General strided view: decode the addressed span once, then gather in C order.
  let span = 1;
  for (let i = 0; i < shape.length; i++) span += (shape[i] - 1) * stride[i];
  const source = decodeRange(view.bytes, dtype, offset, span);
  const out = new Float32Array(count);
  const index = new Array<number>(shape.length).fill(0);
  let sourcePos = 0;
  for (let i = 0; i < count; i++) {
    out[i] = source[sourcePos];
    for (let d = shape.length - 1; d >= 0; d--) {
      index[d]++;
      sourcePos += stride[d];
      if (index[d] < shape[d]) break;
      sourcePos -= stride[d] * shape[d];
      index[d] = 0;
    }
  }
  return out;
}
