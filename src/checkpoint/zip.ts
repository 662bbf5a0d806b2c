/**
 * A minimal zip reader for torch.save archives: reads the central directory (ZIP64 aware) and each
 * entry's local header for its data offset (torch pads local headers so data is 64-byte aligned).
 * Stored entries are returned as zero-copy views. Deflated entries are inflated only up to a size
 * bound checked before inflating. Archives with `..` or absolute entry names are rejected.
 */

import { inflateRawSync } from 'node:zlib';
import { CheckpointError } from './errors.js';

export interface ZipEntry {
  name: string;
  /** 0 = stored, 8 = deflated. */
  method: number;
  compressedSize: number;
  uncompressedSize: number;
  localHeaderOffset: number;
}

/** Largest entry we inflate; torch writes every entry stored, so this only bounds foreign archives. */
export const defaultMaxInflatedBytes = 256 * 1024 * 1024;

const localHeaderSignature = 0x04034b50;
const centralHeaderSignature = 0x02014b50;
const endOfCentralDirSignature = 0x06054b50;
const zip64LocatorSignature = 0x07064b50;
const zip64EndSignature = 0x06064b50;
const endOfCentralDirBytes = 22;
const maxCommentBytes = 0xffff;
const zip64ExtraId = 0x0001;

export function isZip(bytes: Uint8Array): boolean {
  return bytes.length >= 4 && bytes[0] === 0x50 && bytes[1] === 0x4b && bytes[2] === 0x03 && bytes[3] === 0x04;
}

function invalid(what: string): never {
  throw new CheckpointError('invalid_structure', `Invalid zip archive: ${what}`);
}

function checkEntryName(name: string): void {
  const segments = name.split(/[\\/]/);
  if (name.startsWith('/') || name.startsWith('\\') || /^[A-Za-z]:/.test(name) || segments.includes('..') || name.includes('\0')) {
    throw new CheckpointError(
      'invalid_structure',
      `Rejected zip archive: entry name ${JSON.stringify(name)} is absolute or contains '..'; a torch ` +
        `checkpoint only holds relative names like 'archive/data.pkl'`,
    );
  }
}

export class ZipArchive {
  readonly entries = new Map<string, ZipEntry>();
  private readonly view: DataView;

  constructor(private readonly bytes: Uint8Array) {
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    this.readCentralDirectory();
  }

  private u16(at: number): number {
    return this.view.getUint16(at, true);
  }

  private u32(at: number): number {
    return this.view.getUint32(at, true);
  }

  private u64(at: number): number {
    const v = this.view.getBigUint64(at, true);
    if (v > BigInt(Number.MAX_SAFE_INTEGER)) invalid(`64-bit field ${v} at offset ${at} is out of range`);
    return Number(v);
  }

  private findEndOfCentralDirectory(): number {
    const lowest = Math.max(0, this.bytes.length - endOfCentralDirBytes - maxCommentBytes);
    for (let at = this.bytes.length - endOfCentralDirBytes; at >= lowest; at--) {
      if (this.u32(at) === endOfCentralDirSignature) return at;
    }
    throw new CheckpointError('truncated', 'Truncated zip archive: no end-of-central-directory record (the file was cut short?)');
  }

  private readCentralDirectory(): void {
    if (this.bytes.length < endOfCentralDirBytes) {
      throw new CheckpointError('truncated', `Truncated zip archive: ${this.bytes.length} bytes`);
    }
    const end = this.findEndOfCentralDirectory();
    let count = this.u16(end + 10);
    let size = this.u32(end + 12);
    let offset = this.u32(end + 16);
    const locator = end - 20;
    if (locator >= 0 && this.u32(locator) === zip64LocatorSignature) {
      const record = this.u64(locator + 8);
      if (record + 56 > locator || this.u32(record) !== zip64EndSignature) invalid('bad ZIP64 end-of-central-directory record');
      count = this.u64(record + 32);
      size = this.u64(record + 40);
      offset = this.u64(record + 48);
    }
    if (offset + size > end) invalid(`central directory (offset ${offset}, ${size} bytes) lies outside the file`);
    if (count * 46 > size) invalid(`central directory of ${size} bytes cannot hold ${count} entries`);

    let at = offset;
    for (let i = 0; i < count; i++) {
      if (at + 46 > offset + size || this.u32(at) !== centralHeaderSignature) invalid(`bad central directory header ${i}`);
      const flags = this.u16(at + 8);
      const method = this.u16(at + 10);
      let compressedSize = this.u32(at + 20);
      let uncompressedSize = this.u32(at + 24);
      const nameLength = this.u16(at + 28);
      const extraLength = this.u16(at + 30);
      const commentLength = this.u16(at + 32);
      let localHeaderOffset = this.u32(at + 42);
      const next = at + 46 + nameLength + extraLength + commentLength;
      if (next > offset + size) invalid(`central directory header ${i} runs past the directory`);
      const name = new TextDecoder('utf-8').decode(this.bytes.subarray(at + 46, at + 46 + nameLength));
      checkEntryName(name);
      if (flags & 0x1) {
        throw new CheckpointError('unsupported_format', `Zip entry ${JSON.stringify(name)} is encrypted; encrypted archives are not supported`);
      }

      // ZIP64 extra field: 64-bit values for exactly the fields set to 0xffffffff, in this order.
      let extra = at + 46 + nameLength;
      const extraEnd = extra + extraLength;
      while (extra + 4 <= extraEnd) {
        const id = this.u16(extra);
        const length = this.u16(extra + 2);
        if (extra + 4 + length > extraEnd) invalid(`extra field of ${JSON.stringify(name)} runs past its header`);
        if (id === zip64ExtraId) {
          let field = extra + 4;
          const take = (): number => {
            if (field + 8 > extra + 4 + length) invalid(`short ZIP64 extra field in ${JSON.stringify(name)}`);
            const v = this.u64(field);
            field += 8;
            return v;
          };
          if (uncompressedSize === 0xffffffff) uncompressedSize = take();
          if (compressedSize === 0xffffffff) compressedSize = take();
          if (localHeaderOffset === 0xffffffff) localHeaderOffset = take();
        }
        extra += 4 + length;
      }

      if (this.entries.has(name)) invalid(`duplicate entry ${JSON.stringify(name)}`);
      this.entries.set(name, { name, method, compressedSize, uncompressedSize, localHeaderOffset });
      at = next;
    }
  }

  /** Returns an entry's bytes: a view for stored entries, a bounded inflate for deflated ones. */
  read(name: string, maxInflatedBytes = defaultMaxInflatedBytes): Uint8Array {
    const entry = this.entries.get(name);
    if (entry === undefined) invalid(`missing entry ${JSON.stringify(name)}`);

    const header = entry.localHeaderOffset;
    if (header + 30 > this.bytes.length || this.u32(header) !== localHeaderSignature) {
      invalid(`bad local header for ${JSON.stringify(name)} at offset ${header}`);
    }
    const dataStart = header + 30 + this.u16(header + 26) + this.u16(header + 28);
    if (dataStart + entry.compressedSize > this.bytes.length) {
      throw new CheckpointError(
        'truncated',
        `Truncated zip archive: entry ${JSON.stringify(name)} declares ${entry.compressedSize} bytes at offset ` +
          `${dataStart}, but the file has ${this.bytes.length} bytes`,
      );
    }
    const data = this.bytes.subarray(dataStart, dataStart + entry.compressedSize);

    if (entry.method === 0) {
      if (entry.uncompressedSize !== entry.compressedSize) invalid(`stored entry ${JSON.stringify(name)} has two different sizes`);
      return data;
    }
    if (entry.method !== 8) {
      throw new CheckpointError('unsupported_format', `Zip entry ${JSON.stringify(name)} uses compression method ${entry.method}; only stored (0) and deflate (8) are supported`);
    }

    if (entry.uncompressedSize > maxInflatedBytes) {
      throw new CheckpointError(
        'too_large',
        `Rejected zip entry ${JSON.stringify(name)}: it declares ${entry.uncompressedSize} bytes once inflated, ` +
          `over the limit of ${maxInflatedBytes} bytes for compressed entries (torch writes entries uncompressed)`,
      );
    }

    let inflated: Buffer;
    try {
      inflated = inflateRawSync(data, { maxOutputLength: Math.max(1, entry.uncompressedSize) });
    } catch (err) {
      throw new CheckpointError(
        'invalid_structure',
        `Invalid zip entry ${JSON.stringify(name)}: inflating failed or exceeded its declared ${entry.uncompressedSize} bytes (${(err as Error).message})`,
        { cause: err },
      );
    }
    if (inflated.length !== entry.uncompressedSize) invalid(`entry ${JSON.stringify(name)} inflates to ${inflated.length} bytes, not the declared ${entry.uncompressedSize}`);
    return new Uint8Array(inflated.buffer, inflated.byteOffset, inflated.length);
  }
}
