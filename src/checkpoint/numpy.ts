/**
 * Allowlist entries for pickled numpy values: dtypes, scalars (`numpy.core.multiarray.scalar`) and
 * arrays (`_reconstruct` + BUILD, or `_frombuffer` in protocol 5). numpy 2 moved `numpy.core` to
 * `numpy._core`; both names are accepted.
 */

import { CheckpointError } from './errors.js';
import { PickleGlobal, PyObject } from './pickle-vm.js';
import { contiguousStrides, dtypeByteSize, elementCount, viewToFloat32, type DType } from './tensor-data.js';

const numpyKinds: Record<string, DType> = {
  f4: 'float32',
  f2: 'float16',
  f8: 'float64',
  i8: 'int64',
  i4: 'int32',
  i2: 'int16',
  i1: 'int8',
  u1: 'uint8',
  b1: 'bool',
};

/** `numpy.dtype(spec, align, copy)` followed by BUILD `(version, byteorder, ...)`. */
export class NumpyDType extends PyObject {
  byteOrder = '=';

  constructor(readonly spec: string) {
    super('numpy.dtype', [spec]);
  }

  override setState(state: unknown): void {
    super.setState(state);
    if (Array.isArray(state) && typeof state[1] === 'string') this.byteOrder = state[1];
  }

  /** Our element type, or an error naming the numpy dtype. */
  element(what: string): DType {
    const spec = this.spec.replace(/^[<>=|]/, '');
    const dtype = numpyKinds[spec];
    if (dtype === undefined) throw new CheckpointError('unsupported_format', `Unsupported numpy dtype ${JSON.stringify(this.spec)} for ${what}`);
    if (this.byteOrder === '>' || this.spec.startsWith('>')) {
      throw new CheckpointError('unsupported_format', `Unsupported big-endian numpy array for ${what}`);
    }
    return dtype;
  }
}

/** A numpy ndarray: shape, element type and the raw C- or Fortran-order bytes. */
export class NumpyArray extends PyObject {
  shape: number[] = [];
  dtype?: NumpyDType;
  fortranOrder = false;
  data?: Uint8Array;

  constructor(private readonly latin1Cache = new Map<string, Uint8Array>()) {
    super('numpy.ndarray');
  }

  override setState(state: unknown): void {
    if (!Array.isArray(state)) throw new CheckpointError('invalid_structure', 'Invalid numpy array state');
    const fields = state.length === 5 ? state.slice(1) : state; // (version, shape, dtype, fortran, data)
    const [shape, dtype, fortran, data] = fields;
    this.fill(shape, dtype, fortran === true, data);
  }

  fill(shape: unknown, dtype: unknown, fortranOrder: boolean, data: unknown): void {
    if (!Array.isArray(shape) || !shape.every((d) => Number.isSafeInteger(d) && d >= 0)) {
      throw new CheckpointError('invalid_structure', 'Invalid numpy array: shape is not a tuple of sizes');
    }
    if (!(dtype instanceof NumpyDType)) throw new CheckpointError('invalid_structure', 'Invalid numpy array: no dtype');
    this.shape = shape as number[];
    this.dtype = dtype;
    this.fortranOrder = fortranOrder;
    this.data = toBytes(data, this.latin1Cache);
  }

  toFloat32(what: string): Float32Array {
    if (this.dtype === undefined || this.data === undefined) throw new CheckpointError('invalid_structure', `Invalid numpy array for ${what}: no data`);
    const dtype = this.dtype.element(what);
    const count = elementCount(this.shape);
    if (this.data.length !== count * dtypeByteSize[dtype]) {
      throw new CheckpointError(
        'invalid_structure',
        `Invalid numpy array for ${what}: shape [${this.shape.join(', ')}] needs ${count * dtypeByteSize[dtype]} bytes, the pickle holds ${this.data.length}`,
      );
    }
    const stride = this.fortranOrder ? contiguousStrides([...this.shape].reverse()).reverse() : contiguousStrides(this.shape);
    return viewToFloat32({ dtype, bytes: this.data, offset: 0, shape: this.shape, stride }, what);
  }
}

/**
 * Raw array bytes: a bytes object, or latin-1 text when the pickle came from Python 2 (cached per
 * text, so memo references to one large string cost one copy).
 */
function toBytes(data: unknown, cache?: Map<string, Uint8Array>): Uint8Array {
  if (data instanceof Uint8Array) return data;
  if (typeof data === 'string') {
    const cached = cache?.get(data);
    if (cached) return cached;
    const out = new Uint8Array(data.length);
    for (let i = 0; i < data.length; i++) out[i] = data.charCodeAt(i) & 0xff;
    cache?.set(data, out);
    return out;
  }
  throw new CheckpointError('invalid_structure', 'Invalid numpy data: not a bytes object (object arrays are not supported)');
}

function numpyScalar([dtype, data]: unknown[]): number | bigint {
  if (!(dtype instanceof NumpyDType)) throw new CheckpointError('invalid_structure', 'Invalid numpy scalar: no dtype');
  const element = dtype.element('a numpy scalar');
  const bytes = toBytes(data);
  if (bytes.length !== dtypeByteSize[element]) throw new CheckpointError('invalid_structure', 'Invalid numpy scalar: wrong byte count');
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (element === 'float64') return view.getFloat64(0, true);
  if (element === 'int64') {
    const v = view.getBigInt64(0, true);
    return v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v;
  }
  return viewToFloat32({ dtype: element, bytes, offset: 0, shape: [], stride: [] }, 'a numpy scalar')[0];
}

function frombuffer([buffer, dtype, shape, order]: unknown[], cache: Map<string, Uint8Array>): NumpyArray {
  const array = new NumpyArray(cache);
  array.fill(shape, dtype, order === 'F', buffer);
  return array;
}

export function numpyGlobals(): PickleGlobal[] {
  const latin1Cache = new Map<string, Uint8Array>();
  const globals = [
    new PickleGlobal('numpy.dtype', {
      call: ([spec]) => {
        if (typeof spec !== 'string') throw new CheckpointError('invalid_structure', 'Invalid numpy dtype');
        return new NumpyDType(spec);
      },
    }),
    new PickleGlobal('numpy.ndarray'),
  ];
  for (const core of ['numpy.core', 'numpy._core']) {
    globals.push(
      new PickleGlobal(`${core}.multiarray.scalar`, { call: numpyScalar }),
      new PickleGlobal(`${core}.multiarray._reconstruct`, { call: () => new NumpyArray(latin1Cache) }),
      new PickleGlobal(`${core}.numeric._frombuffer`, { call: (args) => frombuffer(args, latin1Cache) }),
    );
  }
  return globals;
}
