/**
 * Bounds-checked reading of a pickle's opcode arguments. Every declared length is compared with
 * the remaining input before anything is read or allocated, and byte strings are returned as views.
 */

import { CheckpointError } from './errors.js';

/** Maximum length of a text argument (protocol 0 GLOBAL, INT, PUT, ...), in bytes. */
const maxTextLineBytes = 256;

const latin1Decoder = new TextDecoder('latin1');

export class PickleInput {
  /** Offset of the opcode being executed, for error messages. */
  opcodeOffset = 0;
  private readonly view: DataView;

  constructor(
    private readonly data: Uint8Array,
    public pos: number,
    private readonly context: string,
  ) {
    this.view = new DataView(data.buffer, data.byteOffset, data.byteLength);
  }

  /** Reads the next opcode byte and records its offset. */
  opcode(): number {
    this.opcodeOffset = this.pos;
    return this.u8();
  }

  /** Throws `truncated` unless `length` more bytes exist; returns the length as a number. */
  need(length: number | bigint, what: string): number {
    const remaining = this.data.length - this.pos;
    if (typeof length === 'bigint' ? length > BigInt(remaining) : length > remaining) {
      throw new CheckpointError(
        'truncated',
        `Truncated ${this.context}: ${what} at byte offset ${this.opcodeOffset} declares ${length} bytes ` +
          `but only ${remaining} remain in the input`,
      );
    }
    return Number(length);
  }

  u8(): number {
    this.need(1, 'opcode or argument');
    return this.data[this.pos++];
  }

  u16(): number {
    this.need(2, 'BININT2');
    const v = this.view.getUint16(this.pos, true);
    this.pos += 2;
    return v;
  }

  u32(what: string): number {
    this.need(4, what);
    const v = this.view.getUint32(this.pos, true);
    this.pos += 4;
    return v;
  }

  i32(what: string): number {
    this.need(4, what);
    const v = this.view.getInt32(this.pos, true);
    this.pos += 4;
    return v;
  }

  u64(what: string): bigint {
    this.need(8, what);
    const v = this.view.getBigUint64(this.pos, true);
    this.pos += 8;
    return v;
  }

  /** BINFLOAT's argument: a big-endian float64. */
  f64BigEndian(): number {
    this.need(8, 'BINFLOAT');
    const v = this.view.getFloat64(this.pos, false);
    this.pos += 8;
    return v;
  }

  /** Returns a view of the next `length` bytes (no copy). */
  bytes(length: number | bigint, what: string): Uint8Array {
    const n = this.need(length, what);
    const out = this.data.subarray(this.pos, this.pos + n);
    this.pos += n;
    return out;
  }

  /** Reads a newline-terminated text argument of the protocol 0 opcodes, without the newline. */
  line(): string {
    const window = this.data.subarray(this.pos, this.pos + maxTextLineBytes + 1);
    const length = window.indexOf(0x0a);
    if (length < 0 && window.length > maxTextLineBytes) {
      throw new CheckpointError('too_large', `Invalid ${this.context} at byte offset ${this.opcodeOffset}: text argument longer than ${maxTextLineBytes} bytes`);
    }
    if (length < 0) {
      throw new CheckpointError('truncated', `Truncated ${this.context}: text argument at byte offset ${this.opcodeOffset} has no terminating newline`);
    }
    const text = this.latin1(window.subarray(0, length));
    this.pos += length + 1;
    return text;
  }

  latin1(data: Uint8Array): string {
    return latin1Decoder.decode(data);
  }
}
