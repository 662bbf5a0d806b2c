/**
 * Builders for hand-assembled test inputs: pickle byte streams, stored/deflated zip archives and
 * legacy torch.save files. They write the formats from their specifications, independently of the
 * readers under test, so crafted and broken files can be made without Python.
 */

import { deflateRawSync } from 'node:zlib';

const encoder = new TextEncoder();

/** Appends pickle opcodes; every method returns `this` so a pickle reads as one chain. */
export class PickleBuilder {
  private readonly bytes: number[] = [];

  raw(...values: number[]): this {
    for (const v of values) this.bytes.push(v & 0xff);
    return this;
  }

  rawBytes(data: Uint8Array): this {
    for (const b of data) this.bytes.push(b);
    return this;
  }

  u32(v: number): this {
    return this.raw(v, v >>> 8, v >>> 16, v >>> 24);
  }

  u64(v: bigint): this {
    for (let i = 0n; i < 8n; i++) this.bytes.push(Number((v >> (8n * i)) & 0xffn));
    return this;
  }

  proto(version: number): this {
    return this.raw(0x80, version);
  }

  /** BINUNICODE. */
  str(text: string): this {
    const data = encoder.encode(text);
    return this.raw(0x58).u32(data.length).rawBytes(data);
  }

  /** SHORT_BINUNICODE (protocol 4). */
  shortStr(text: string): this {
    const data = encoder.encode(text);
    return this.raw(0x8c, data.length).rawBytes(data);
  }

  /** BININT. */
  int(v: number): this {
    return this.raw(0x4a).u32(v >>> 0);
  }

  /** BINBYTES. */
  binBytes(data: Uint8Array): this {
    return this.raw(0x42).u32(data.length).rawBytes(data);
  }

  /** GLOBAL 'module name' (text form, protocols 0-3). */
  global(module: string, name: string): this {
    return this.raw(0x63).rawBytes(encoder.encode(`${module}\n${name}\n`));
  }

  /** STACK_GLOBAL (protocol 4). */
  stackGlobal(module: string, name: string): this {
    return this.shortStr(module).shortStr(name).raw(0x93);
  }

  mark(): this {
    return this.raw(0x28);
  }

  tuple(): this {
    return this.raw(0x74);
  }

  tuple1(): this {
    return this.raw(0x85);
  }

  reduce(): this {
    return this.raw(0x52);
  }

  none(): this {
    return this.raw(0x4e);
  }

  stop(): this {
    return this.raw(0x2e);
  }

  build(): Uint8Array {
    return Uint8Array.from(this.bytes);
  }
}

/** Builds a pickle that calls `module.name(argument)` with REDUCE, the classic code-execution payload. */
export function callPickle(module: string, name: string, argument: string, stackGlobal = false): Uint8Array {
  const p = new PickleBuilder().proto(stackGlobal ? 4 : 2);
  if (stackGlobal) p.stackGlobal(module, name);
  else p.global(module, name);
  return p.str(argument).tuple1().reduce().stop().build();
}

export interface ZipEntrySpec {
  name: string;
  data: Uint8Array;
  /** 0 = stored (default), 8 = deflated. */
  method?: 0 | 8;
  /** Uncompressed size written to the headers; defaults to the true size. */
  declaredSize?: number;
}

/**
 * Builds a zip archive with zero CRCs, which the reader does not check. With `zip64`, every size and
 * offset is written as 0xffffffff in the 32-bit fields and stored in ZIP64 extra fields and records,
 * as writers do for archives over 4 GiB.
 */
export function buildZip(entries: ZipEntrySpec[], zip64 = false): Uint8Array {
  const chunks: Uint8Array[] = [];
  const central: Uint8Array[] = [];
  let offset = 0;
  for (const entry of entries) {
    const name = encoder.encode(entry.name);
    const payload = entry.method === 8 ? new Uint8Array(deflateRawSync(entry.data)) : entry.data;
    const size = entry.declaredSize ?? entry.data.length;
    const local = new DataView(new ArrayBuffer(30));
    local.setUint32(0, 0x04034b50, true);
    local.setUint16(4, 20, true);
    local.setUint16(8, entry.method ?? 0, true);
    local.setUint32(18, payload.length, true);
    local.setUint32(22, size, true);
    local.setUint16(26, name.length, true);
    chunks.push(new Uint8Array(local.buffer), name, payload);

    const extra = new DataView(new ArrayBuffer(zip64 ? 28 : 0));
    if (zip64) {
      extra.setUint16(0, 0x0001, true);
      extra.setUint16(2, 24, true);
      extra.setBigUint64(4, BigInt(size), true);
      extra.setBigUint64(12, BigInt(payload.length), true);
      extra.setBigUint64(20, BigInt(offset), true);
    }
    const header = new DataView(new ArrayBuffer(46));
    header.setUint32(0, 0x02014b50, true);
    header.setUint16(4, 45, true);
    header.setUint16(6, 45, true);
    header.setUint16(10, entry.method ?? 0, true);
    header.setUint32(20, zip64 ? 0xffffffff : payload.length, true);
    header.setUint32(24, zip64 ? 0xffffffff : size, true);
    header.setUint16(28, name.length, true);
    header.setUint16(30, extra.byteLength, true);
    header.setUint32(42, zip64 ? 0xffffffff : offset, true);
    central.push(new Uint8Array(header.buffer), name, new Uint8Array(extra.buffer));
    offset += 30 + name.length + payload.length;
  }

  const centralSize = central.reduce((n, c) => n + c.length, 0);
  const records: Uint8Array[] = [];
  if (zip64) {
    const record = new DataView(new ArrayBuffer(56));
    record.setUint32(0, 0x06064b50, true);
    record.setBigUint64(4, 44n, true);
    record.setBigUint64(24, BigInt(entries.length), true);
    record.setBigUint64(32, BigInt(entries.length), true);
    record.setBigUint64(40, BigInt(centralSize), true);
    record.setBigUint64(48, BigInt(offset), true);
    const locator = new DataView(new ArrayBuffer(20));
    locator.setUint32(0, 0x07064b50, true);
    locator.setBigUint64(8, BigInt(offset + centralSize), true);
    locator.setUint32(16, 1, true);
    records.push(new Uint8Array(record.buffer), new Uint8Array(locator.buffer));
  }
  const end = new DataView(new ArrayBuffer(22));
  end.setUint32(0, 0x06054b50, true);
  end.setUint16(8, zip64 ? 0xffff : entries.length, true);
  end.setUint16(10, zip64 ? 0xffff : entries.length, true);
  end.setUint32(12, zip64 ? 0xffffffff : centralSize, true);
  end.setUint32(16, zip64 ? 0xffffffff : offset, true);
  return concat([...chunks, ...central, ...records, new Uint8Array(end.buffer)]);
}

export function concat(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/** Builds the three header pickles of a legacy torch.save file: magic number, protocol 1001, sys_info. */
export function legacyTorchHeader(): Uint8Array {
  const magic = [0x80, 0x02, 0x8a, 0x0a, 0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19, 0x2e];
  const protocol = [0x80, 0x02, 0x4d, 0xe9, 0x03, 0x2e]; // BININT2 1001
  const sysInfo = new PickleBuilder().proto(2).raw(0x7d).mark().str('protocol_version').raw(0x4d, 0xe9, 0x03)
    .str('little_endian').raw(0x88).raw(0x75).stop().build();
  return concat([Uint8Array.from(magic), Uint8Array.from(protocol), sysInfo]);
}

/** Appends the persistent id of float32 storage '0' with `numel` elements, then BINPERSID. */
function storagePid(p: PickleBuilder, numel: number): PickleBuilder {
  return p.mark().str('storage').global('torch', 'FloatStorage').str('0').str('cpu').raw(0x8a, 0x08).u64(BigInt(numel)).none().tuple().raw(0x51);
}

/** Legacy torch.save bytes of `objectPickle` plus storage '0' claiming `numel` elements but carrying `dataBytes`. */
function legacyTorchFile(objectPickle: Uint8Array, numel: number, dataBytes: number): Uint8Array {
  const keys = new PickleBuilder().proto(2).raw(0x5d).str('0').raw(0x61).stop().build();
  const count = new PickleBuilder().u64(BigInt(numel)).build();
  return concat([legacyTorchHeader(), objectPickle, keys, count, new Uint8Array(dataBytes)]);
}

/** Builds a legacy torch.save file of one float32 tensor whose storage claims `numel` elements. */
export function legacyTorchTensorFile(numel: number, dataBytes: number): Uint8Array {
  const object = storagePid(new PickleBuilder().proto(2).global('torch._utils', '_rebuild_tensor_v2').mark(), numel)
    .int(0)
    .mark().raw(0x8a, 0x08).u64(BigInt(numel)).tuple()
    .mark().int(1).tuple()
    .raw(0x89) // NEWFALSE
    .global('collections', 'OrderedDict').raw(0x29).reduce()
    .tuple().reduce().stop().build();
  return legacyTorchFile(object, numel, dataBytes);
}

/** Builds a legacy torch.save file of one bare float32 storage, as `torch.storage._load_from_bytes` reads. */
export function legacyTorchStorageFile(numel: number, dataBytes: number): Uint8Array {
  return legacyTorchFile(storagePid(new PickleBuilder().proto(2), numel).stop().build(), numel, dataBytes);
}

/** Deterministic pseudo-random bytes (xorshift32), so failures reproduce. */
export function pseudoRandomBytes(length: number, seed: number): Uint8Array {
  const out = new Uint8Array(length);
  let state = seed >>> 0 || 1;
  for (let i = 0; i < length; i++) {
    state ^= state << 13;
    state >>>= 0;
    state ^= state >>> 17;
    state ^= state << 5;
    state >>>= 0;
    out[i] = state & 0xff;
  }
  return out;
}
