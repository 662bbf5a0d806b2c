/**
 * torch tensors and the two torch.save file formats:
 *
 * - legacy (torch < 1.6, and every storage nested in an NVlabs pickle): five consecutive pickles
 *   (magic number, protocol version 1001, sys_info, the object with BINPERSID storage ids, the list
 *   of storage keys), then per key an int64 element count and the raw little-endian elements;
 * - zip (torch >= 1.6): `<prefix>/data.pkl` with BINPERSID ids, `<prefix>/data/<key>` raw elements.
 *
 * Storage bytes stay views of the input until a tensor is materialised with `toFloat32`.
 */

import { CheckpointError } from './errors.js';
import { PickleGlobal, unpickle } from './pickle-vm.js';
import { checkViewBounds, contiguousStrides, dtypeByteSize, viewToFloat32, type DType } from './tensor-data.js';
import { ZipArchive, isZip } from './zip.js';

export type FindClass = (module: string, name: string) => PickleGlobal | undefined;

/** Magic number that starts a legacy torch.save file (pickled as a 10-byte LONG1). */
const legacyMagic = 0x1950a86a20f9469cfc6cn;
const legacyProtocolVersion = 1001;

const storageClassDTypes: Record<string, DType> = {
  FloatStorage: 'float32',
  HalfStorage: 'float16',
  BFloat16Storage: 'bfloat16',
  DoubleStorage: 'float64',
  LongStorage: 'int64',
  IntStorage: 'int32',
  ShortStorage: 'int16',
  CharStorage: 'int8',
  ByteStorage: 'uint8',
  BoolStorage: 'bool',
};

export class TorchStorage {
  /** The raw elements; set once the file's data section (legacy) or entry (zip) is read. */
  private bytes?: Uint8Array;

  constructor(
    readonly key: string,
    readonly dtype: DType,
    readonly numel: number,
    /** For legacy view storages: the storage this one is a window of. */
    private readonly root?: { storage: TorchStorage; elementOffset: number },
  ) {}

  /** The storage that owns the bytes: this one, or the root of a legacy view storage. */
  get owner(): TorchStorage {
    return this.root ? this.root.storage : this;
  }

  setData(bytes: Uint8Array): void {
    this.bytes = bytes;
  }

  data(): Uint8Array {
    const size = dtypeByteSize[this.dtype];
    if (this.root) {
      const start = this.root.elementOffset * size;
      return this.root.storage.data().subarray(start, start + this.numel * size);
    }
    if (this.bytes === undefined) {
      throw new CheckpointError('invalid_structure', `Invalid torch file: storage ${JSON.stringify(this.key)} has no data section`);
    }
    return this.bytes;
  }
}

export class TorchTensor {
  constructor(
    readonly storage: TorchStorage,
    readonly storageOffset: number,
    readonly shape: number[],
    readonly stride: number[],
  ) {}

  get dtype(): DType {
    return this.storage.dtype;
  }

  /** Dense float32 copy in C order; `what` names the tensor in error messages. */
  toFloat32(what: string): Float32Array {
    return viewToFloat32(
      { dtype: this.dtype, bytes: this.storage.data(), offset: this.storageOffset, shape: this.shape, stride: this.stride },
      what,
    );
  }
}

function asIntList(value: unknown, what: string): number[] {
  if (!Array.isArray(value) || !value.every((v) => Number.isSafeInteger(v))) {
    throw new CheckpointError('invalid_structure', `Invalid torch tensor: ${what} is not a tuple of integers`);
  }
  return value as number[];
}

/** `_rebuild_tensor(_v2)(storage, storage_offset, size, stride, ...)`. */
function rebuildTensor(args: unknown[]): TorchTensor {
  const [storage, offset, size, stride] = args;
  if (!(storage instanceof TorchStorage)) {
    throw new CheckpointError('invalid_structure', 'Invalid torch tensor: the first argument of _rebuild_tensor_v2 is not a storage');
  }
  if (!Number.isSafeInteger(offset)) throw new CheckpointError('invalid_structure', 'Invalid torch tensor: storage offset is not an integer');
  const shape = asIntList(size, 'size');
  const strides = stride === undefined || stride === null ? contiguousStrides(shape) : asIntList(stride, 'stride');
  checkViewBounds(shape, strides, offset as number, storage.numel, `a tensor of storage ${JSON.stringify(storage.key)}`);
  return new TorchTensor(storage, offset as number, shape, strides);
}

function expectTensor(value: unknown, what: string): TorchTensor {
  if (!(value instanceof TorchTensor)) throw new CheckpointError('invalid_structure', `Invalid torch file: ${what} is not a tensor`);
  return value;
}

/** Returns the allowlist entries for tensors, parameters and storage classes (inert markers). */
export function torchTensorGlobals(): PickleGlobal[] {
  const encoded = new Map<string, Uint8Array>();
  const globals = [
    new PickleGlobal('torch._utils._rebuild_tensor_v2', { call: rebuildTensor }),
    new PickleGlobal('torch._utils._rebuild_tensor', { call: rebuildTensor }),
    new PickleGlobal('torch._utils._rebuild_parameter', { call: (args) => expectTensor(args[0], 'the data of _rebuild_parameter') }),
    new PickleGlobal('torch._utils._rebuild_parameter_with_state', {
      call: (args) => expectTensor(args[0], 'the data of _rebuild_parameter_with_state'),
    }),
    new PickleGlobal('torch._tensor._rebuild_from_type_v2', {
      // (func, new_type, args, state): rebuild with func; the subclass (Parameter) does not matter here.
      call: ([func, , args]) => {
        if (!(func instanceof PickleGlobal) || func.call === undefined || !Array.isArray(args)) {
          throw new CheckpointError('invalid_structure', 'Invalid torch file: _rebuild_from_type_v2 without a tensor rebuild function');
        }
        return expectTensor(func.call(args), 'the result of _rebuild_from_type_v2');
      },
    }),
    new PickleGlobal('torch.Tensor'),
    new PickleGlobal('torch.nn.parameter.Parameter'),
    new PickleGlobal('collections.OrderedDict', { call: orderedDict }),
    new PickleGlobal('_codecs.encode', { call: (args) => codecsEncode(args, encoded) }),
  ];
  for (const name of Object.keys(storageClassDTypes)) globals.push(new PickleGlobal(`torch.${name}`));
  return globals;
}

/** Elements that tensors may read beyond their distinct storages (small views, tied weights). */
const sharedStorageSlackElements = 1 << 20;

/**
 * Rejects tensor sets that read far more elements than their distinct storages hold. Views may
 * share a storage, so without this check a few bytes of pickle (many tensors viewing one large
 * storage) could make the reader allocate gigabytes when it materialises them.
 */
export function checkStorageSharing(tensors: Iterable<TorchTensor>, format: string): void {
  let viewed = 0;
  const storages = new Set<TorchStorage>();
  for (const tensor of tensors) {
    viewed += tensor.shape.reduce((a, b) => a * b, 1);
    storages.add(tensor.storage.owner);
  }
  let stored = 0;
  for (const storage of storages) stored += storage.numel;
  if (viewed > 2 * stored + sharedStorageSlackElements) {
    throw new CheckpointError(
      'too_large',
      `Rejected ${format}: its tensors view ${viewed} elements, but their storages hold only ${stored}; ` +
        `a checkpoint does not reuse one storage this often`,
    );
  }
}

/** `collections.OrderedDict()` or `OrderedDict([(key, value), ...])`. */
function orderedDict(args: unknown[]): Map<unknown, unknown> {
  const map = new Map<unknown, unknown>();
  if (args.length > 0 && Array.isArray(args[0])) {
    for (const pair of args[0]) {
      if (!Array.isArray(pair) || pair.length !== 2) throw new CheckpointError('invalid_structure', 'Invalid OrderedDict argument');
      map.set(pair[0], pair[1]);
    }
  }
  return map;
}

/**
 * `_codecs.encode(text, 'latin1')`: how protocol 2 pickles bytes objects. Results are cached per
 * text, so memo references to one large string cost one copy, not one per reference.
 */
function codecsEncode([text, encoding]: unknown[], cache: Map<string, Uint8Array>): Uint8Array {
  if (typeof text !== 'string' || (encoding !== 'latin1' && encoding !== 'latin-1')) {
    throw new CheckpointError('invalid_structure', `Unsupported _codecs.encode call (encoding ${JSON.stringify(encoding)}); only latin1 is used by pickled bytes`);
  }
  const cached = cache.get(text);
  if (cached) return cached;
  const out = new Uint8Array(text.length);
  for (let i = 0; i < text.length; i++) {
    const code = text.charCodeAt(i);
    if (code > 0xff) throw new CheckpointError('invalid_structure', 'Invalid latin1 text in _codecs.encode');
    out[i] = code;
  }
  cache.set(text, out);
  return out;
}

/** Builds a findClass from allowlist entries. */
export function allowlist(globals: PickleGlobal[]): FindClass {
  const byName = new Map(globals.map((g) => [g.qualifiedName, g]));
  return (module, name) => byName.get(`${module}.${name}`);
}

/** Parses a storage persistent id `('storage', cls, key, location, numel[, view_metadata])`. */
function parseStoragePid(pid: unknown): { dtype: DType; key: string; numel: number; view: unknown } {
  if (!Array.isArray(pid) || pid[0] !== 'storage' || pid.length < 5) {
    throw new CheckpointError('invalid_structure', 'Invalid torch file: a persistent id is not a storage id');
  }
  const [, cls, key, , numel, view] = pid;
  const dtype = cls instanceof PickleGlobal && cls.module === 'torch' ? storageClassDTypes[cls.name] : undefined;
  if (dtype === undefined) {
    throw new CheckpointError('unsupported_format', `Unsupported torch storage type ${cls instanceof PickleGlobal ? cls.qualifiedName : String(cls)}`);
  }
  if (typeof key !== 'string' || !Number.isSafeInteger(numel) || (numel as number) < 0) {
    throw new CheckpointError('invalid_structure', 'Invalid torch storage id: key or element count');
  }
  return { dtype, key, numel: numel as number, view };
}

function legacyHeaderValue(bytes: Uint8Array, offset: number, what: string): { value: unknown; end: number } {
  return unpickle(bytes, { offset, findClass: () => undefined, context: `legacy torch file (${what})` });
}

/** Reads a legacy torch.save file; returns the saved object and the offset after its data. */
export function readLegacyTorch(bytes: Uint8Array, findClass: FindClass, context: string): { value: unknown; end: number } {
  const magic = legacyHeaderValue(bytes, 0, 'magic number');
  if (magic.value !== legacyMagic) {
    throw new CheckpointError('unsupported_format', `Not a legacy torch.save file: the first pickle is ${String(magic.value)}, not the torch magic number`);
  }
  const protocol = legacyHeaderValue(bytes, magic.end, 'protocol version');
  if (protocol.value !== legacyProtocolVersion) {
    throw new CheckpointError('unsupported_format', `Unsupported legacy torch file protocol ${String(protocol.value)} (only ${legacyProtocolVersion} exists)`);
  }
  const sysInfo = legacyHeaderValue(bytes, protocol.end, 'sys_info');
  if (!(sysInfo.value instanceof Map) || sysInfo.value.get('little_endian') !== true) {
    throw new CheckpointError('unsupported_format', 'Unsupported legacy torch file: it was written on a big-endian host or has no sys_info');
  }

  const storages = new Map<string, TorchStorage>();
  const persistentLoad = (pid: unknown): TorchStorage => {
    const { dtype, key, numel, view } = parseStoragePid(pid);
    let root = storages.get(key);
    if (root === undefined) {
      root = new TorchStorage(key, dtype, numel);
      storages.set(key, root);
    }
    if (view === null || view === undefined) return root;
    // Pre-1.0 torch: (view_key, element offset, element count) into the root storage.
    const [viewKey, viewOffset, viewSize] = Array.isArray(view) ? view : [];
    if (typeof viewKey !== 'string' || !Number.isSafeInteger(viewOffset) || !Number.isSafeInteger(viewSize) || viewOffset + viewSize > numel) {
      throw new CheckpointError('invalid_structure', `Invalid view of storage ${JSON.stringify(key)} in a legacy torch file`);
    }
    return new TorchStorage(viewKey, dtype, viewSize, { storage: root, elementOffset: viewOffset });
  };
  const object = unpickle(bytes, { offset: sysInfo.end, findClass, persistentLoad, context });
  const keys = legacyHeaderValue(bytes, object.end, 'storage keys');
  if (!Array.isArray(keys.value) || !keys.value.every((k) => typeof k === 'string')) {
    throw new CheckpointError('invalid_structure', 'Invalid legacy torch file: the storage key list is not a list of strings');
  }

  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let pos = keys.end;
  for (const key of keys.value as string[]) {
    const storage = storages.get(key);
    if (storage === undefined) throw new CheckpointError('invalid_structure', `Invalid legacy torch file: data for unknown storage ${JSON.stringify(key)}`);
    if (pos + 8 > bytes.length) throw new CheckpointError('truncated', `Truncated legacy torch file: the data of storage ${JSON.stringify(key)} is missing`);
    const numel = view.getBigInt64(pos, true);
    pos += 8;
    if (numel !== BigInt(storage.numel)) {
      throw new CheckpointError('invalid_structure', `Invalid legacy torch file: storage ${JSON.stringify(key)} contains ${numel} elements, but its persistent id declares ${storage.numel}`);
    }
    const byteLength = storage.numel * dtypeByteSize[storage.dtype];
    if (byteLength > bytes.length - pos) {
      throw new CheckpointError(
        'truncated',
        `Truncated legacy torch file: storage ${JSON.stringify(key)} claims ${byteLength} bytes, but only ` +
          `${bytes.length - pos} bytes remain in the file`,
      );
    }
    storage.setData(bytes.subarray(pos, pos + byteLength));
    pos += byteLength;
  }
  return { value: object.value, end: pos };
}

/** Finds the `<prefix>/` of a torch zip archive from its `data.pkl` entry. */
function torchZipPrefix(archive: ZipArchive): string {
  const names = [...archive.entries.keys()];
  if (names.some((n) => /^[^/]+\/(constants\.pkl|code\/)/.test(n))) {
    throw new CheckpointError('unsupported_format', 'Unsupported zip archive: it is a TorchScript module, not a torch.save checkpoint; save the state dict with torch.save instead');
  }
  const candidates = names.filter((n) => /^[^/]+\/data\.pkl$/.test(n));
  if (candidates.length === 1) return candidates[0].slice(0, -'data.pkl'.length);
  throw new CheckpointError(
    'unsupported_format',
    `Unsupported zip archive: it has ${candidates.length === 0 ? 'no' : 'more than one'} '<name>/data.pkl' entry, so it is not a ` +
      `torch.save checkpoint (first entries: ${names.slice(0, 5).join(', ') || 'none'})`,
  );
}

/** Reads a torch.save zip archive and returns the saved object. */
export function readTorchZip(bytes: Uint8Array, findClass: FindClass, context: string): unknown {
  const archive = new ZipArchive(bytes);
  const prefix = torchZipPrefix(archive);
  const byteOrder = archive.entries.has(`${prefix}byteorder`) ? new TextDecoder().decode(archive.read(`${prefix}byteorder`)) : 'little';
  if (byteOrder.trim() !== 'little') {
    throw new CheckpointError('unsupported_format', `Unsupported torch zip archive: byte order ${JSON.stringify(byteOrder)}; only little-endian is supported`);
  }
  const storages = new Map<string, TorchStorage>();
  const persistentLoad = (pid: unknown): TorchStorage => {
    const { dtype, key, numel } = parseStoragePid(pid);
    const known = storages.get(key);
    if (known) return known;
    const name = `${prefix}data/${key}`;
    if (!archive.entries.has(name)) throw new CheckpointError('invalid_structure', `Invalid torch zip archive: storage entry ${JSON.stringify(name)} is missing`);
    const byteLength = numel * dtypeByteSize[dtype];
    const entry = archive.entries.get(name)!;
    if (entry.uncompressedSize < byteLength) {
      throw new CheckpointError(
        'truncated',
        `Truncated torch zip archive: storage ${JSON.stringify(key)} claims ${byteLength} bytes, but its entry holds ${entry.uncompressedSize}`,
      );
    }
    const storage = new TorchStorage(key, dtype, numel);
    storage.setData(archive.read(name).subarray(0, byteLength));
    storages.set(key, storage);
    return storage;
  };
  return unpickle(archive.read(`${prefix}data.pkl`), { findClass, persistentLoad, context }).value;
}

/** Reads a torch.save file of either format, detected by its first bytes. */
export function readTorchFile(bytes: Uint8Array, findClass: FindClass, context: string): unknown {
  return isZip(bytes) ? readTorchZip(bytes, findClass, context) : readLegacyTorch(bytes, findClass, context).value;
}

const storageOnly = allowlist(torchTensorGlobals().filter((g) => g.module === 'torch' && g.name in storageClassDTypes));

/**
 * `torch.storage._load_from_bytes(blob)`: how a pickled tensor carries its storage. The blob is a
 * complete torch.save file of one storage (legacy format in every torch version we know of).
 */
export function loadStorageFromBytes(args: unknown[]): TorchStorage {
  const [blob] = args;
  if (!(blob instanceof Uint8Array)) throw new CheckpointError('invalid_structure', 'Invalid pickled storage: _load_from_bytes without a bytes argument');
  // A memo reference returns the same bytes object; reusing its storage keeps the sharing check exact.
  const known = storagesByBlob.get(blob);
  if (known) return known;
  const value = readTorchFile(blob, storageOnly, 'pickled torch storage');
  if (!(value instanceof TorchStorage)) throw new CheckpointError('invalid_structure', 'Invalid pickled storage: the nested torch file does not hold a storage');
  storagesByBlob.set(blob, value);
  return value;
}

const storagesByBlob = new WeakMap<Uint8Array, TorchStorage>();
