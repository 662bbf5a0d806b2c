/**
 * A Python pickle virtual machine for protocols 0-5 that never evaluates anything.
 *
 * Globals (GLOBAL, STACK_GLOBAL) resolve only through the caller's `findClass` allowlist, which
 * returns inert markers or handler functions; any other global is a `CheckpointError`. REDUCE,
 * NEWOBJ and NEWOBJ_EX only call allowlisted handlers. Declared lengths are checked against the
 * remaining input before anything is read, and the MARK depth, stack size and integer size are
 * bounded, so a crafted file cannot exhaust memory or recurse.
 *
 * Python values map to JS as: None -> null, bool -> boolean, int -> number (bigint beyond 2^53),
 * float -> number, str -> string, bytes/bytearray -> Uint8Array (a view of the input, no copy),
 * tuple and list -> Array, dict -> Map, set and frozenset -> Set. Python 2 `str` (BINSTRING) is
 * decoded as latin-1, as `pickle.load(encoding='latin1')` does.
 */

import { CheckpointError } from './errors.js';
import { PickleInput } from './pickle-input.js';
import { PickleGlobal, PyObject } from './pickle-objects.js';

export { PickleGlobal, PyObject, type PickleGlobalHandlers } from './pickle-objects.js';

export interface UnpickleOptions {
  /** Allowlist: returns the handler for `module.name`, or undefined to reject the global. */
  findClass(module: string, name: string): PickleGlobal | undefined;
  /** Resolves BINPERSID / PERSID ids (torch storages); without it a persistent id is an error. */
  persistentLoad?(pid: unknown): unknown;
  /** Byte offset of the pickle inside `bytes` (consecutive pickles). Default 0. */
  offset?: number;
  /** Names the file kind in error messages, e.g. 'NVlabs network pickle'. */
  context?: string;
  /** Maximum number of open MARKs. */
  maxMarkDepth?: number;
  /** Maximum number of values on the stack, all open MARKs together. */
  maxStackItems?: number;
  /** Maximum byte length of one LONG1/LONG4 integer. */
  maxLongBytes?: number;
}

export interface UnpickleResult {
  value: unknown;
  /** Offset just past the STOP opcode, where a following pickle starts. */
  end: number;
  /** Protocol from the PROTO opcode, or 0 when the pickle has none. */
  protocol: number;
}

const defaultMaxMarkDepth = 1_000;
const defaultMaxStackItems = 100_000;
const defaultMaxLongBytes = 1_024;
const highestProtocol = 5;

const utf8Decoder = new TextDecoder('utf-8');

/** Unpickles one pickle starting at `options.offset`. */
export function unpickle(bytes: Uint8Array, options: UnpickleOptions): UnpickleResult {
  const machine = new PickleMachine(bytes, options);
  try {
    return machine.run();
  } catch (err) {
    if (err instanceof CheckpointError) throw err;
    // A handler or container operation failed in a way the checks above did not foresee.
    throw new CheckpointError(
      'invalid_structure',
      `Invalid ${machine.context} at byte offset ${machine.opcodeOffset}: ${(err as Error).message}`,
      { cause: err },
    );
  }
}

class PickleMachine {
  readonly context: string;
  private readonly input: PickleInput;
  private stack: unknown[] = [];
  private readonly metastack: unknown[][] = [];
  private stackedItems = 0;
  private readonly memo = new Map<number, unknown>();
  private protocol = 0;
  private readonly maxMarkDepth: number;
  private readonly maxStackItems: number;
  private readonly maxLongBytes: number;

  constructor(
    bytes: Uint8Array,
    private readonly options: UnpickleOptions,
  ) {
    this.context = options.context ?? 'pickle';
    this.input = new PickleInput(bytes, options.offset ?? 0, this.context);
    this.maxMarkDepth = options.maxMarkDepth ?? defaultMaxMarkDepth;
    this.maxStackItems = options.maxStackItems ?? defaultMaxStackItems;
    this.maxLongBytes = options.maxLongBytes ?? defaultMaxLongBytes;
  }

  get opcodeOffset(): number {
    return this.input.opcodeOffset;
  }

  run(): UnpickleResult {
    for (;;) {
      const op = this.input.opcode();
      if (op === 0x2e) {
        // STOP
        const value = this.pop();
        return { value, end: this.input.pos, protocol: this.protocol };
      }
      this.step(op);
    }
  }

  private fail(code: 'invalid_structure' | 'too_large' | 'truncated' | 'unsupported_format', what: string): never {
    throw new CheckpointError(code, `Invalid ${this.context} at byte offset ${this.opcodeOffset}: ${what}`);
  }

  // ---- stack -------------------------------------------------------------------------------

  private push(value: unknown): void {
    if (this.stack.length + this.stackedItems >= this.maxStackItems) {
      this.fail('too_large', `more than ${this.maxStackItems} values on the pickle stack`);
    }
    this.stack.push(value);
  }

  private pop(): unknown {
    if (this.stack.length === 0) this.fail('invalid_structure', 'stack underflow');
    return this.stack.pop();
  }

  private top(): unknown {
    if (this.stack.length === 0) this.fail('invalid_structure', 'stack underflow');
    return this.stack[this.stack.length - 1];
  }

  private mark(): void {
    if (this.metastack.length >= this.maxMarkDepth) {
      this.fail('too_large', `MARK nesting deeper than ${this.maxMarkDepth} levels`);
    }
    this.stackedItems += this.stack.length;
    this.metastack.push(this.stack);
    this.stack = [];
  }

  private popMark(): unknown[] {
    const items = this.stack;
    const outer = this.metastack.pop();
    if (outer === undefined) this.fail('invalid_structure', 'no MARK to pop to');
    this.stack = outer;
    this.stackedItems -= outer.length;
    return items;
  }

  // ---- values ------------------------------------------------------------------------------

  private decodeLong(data: Uint8Array): number | bigint {
    const n = data.length;
    if (n === 0) return 0;
    if (n > this.maxLongBytes) this.fail('too_large', `integer of ${n} bytes (the limit is ${this.maxLongBytes})`);
    if (n <= 6) {
      let v = 0;
      for (let i = n - 1; i >= 0; i--) v = v * 256 + data[i];
      return data[n - 1] & 0x80 ? v - 2 ** (8 * n) : v;
    }
    let hex = '';
    for (let i = n - 1; i >= 0; i--) hex += data[i].toString(16).padStart(2, '0');
    let v = BigInt('0x' + hex);
    if (data[n - 1] & 0x80) v -= 1n << BigInt(8 * n);
    return v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v;
  }

  private parseDecimal(text: string, what: string): number | bigint {
    const trimmed = text.endsWith('L') ? text.slice(0, -1) : text;
    if (!/^[+-]?\d+$/.test(trimmed)) this.fail('invalid_structure', `${what} argument ${JSON.stringify(text)} is not an integer`);
    const v = BigInt(trimmed);
    return v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v;
  }

  private memoIndex(text: string): number {
    const v = this.parseDecimal(text, 'PUT/GET');
    if (typeof v !== 'number' || v < 0) this.fail('invalid_structure', `memo index ${text} is out of range`);
    return v;
  }

  private memoGet(index: number): void {
    if (!this.memo.has(index)) this.fail('invalid_structure', `memo key ${index} was never stored`);
    this.push(this.memo.get(index));
  }

  private memoPut(index: number): void {
    this.memo.set(index, this.top());
  }

  private resolveGlobal(module: string, name: string): void {
    const found = this.options.findClass(module, name);
    if (found === undefined) {
      throw new CheckpointError(
        'disallowed_global',
        `Rejected global ${module}.${name} at byte offset ${this.opcodeOffset} of the ${this.context}: it is not ` +
          `on the allowlist for this format, so the file is not a supported checkpoint or has been tampered ` +
          `with. Nothing in the file was executed.`,
      );
    }
    this.push(found);
  }

  private callableName(value: unknown): string {
    if (value instanceof PickleGlobal) return value.qualifiedName;
    if (value instanceof PyObject) return `an instance of ${value.className}`;
    return `a ${value === null ? 'None' : Array.isArray(value) ? 'tuple/list' : typeof value} value`;
  }

  private reduce(): void {
    const args = this.pop();
    const callable = this.pop();
    if (!Array.isArray(args)) this.fail('invalid_structure', 'REDUCE arguments are not a tuple');
    if (!(callable instanceof PickleGlobal) || callable.call === undefined) {
      throw new CheckpointError(
        'disallowed_global',
        `Rejected REDUCE on ${this.callableName(callable)} at byte offset ${this.opcodeOffset} of the ` +
          `${this.context}: only allowlisted reconstructors may be called. Nothing was executed.`,
      );
    }
    this.push(callable.call(args));
  }

  private newObject(args: unknown, cls: unknown, kwargs: unknown): void {
    if (!Array.isArray(args)) this.fail('invalid_structure', 'NEWOBJ arguments are not a tuple');
    if (!(kwargs instanceof Map)) this.fail('invalid_structure', 'NEWOBJ_EX keyword arguments are not a dict');
    if (!(cls instanceof PickleGlobal) || cls.construct === undefined) {
      throw new CheckpointError(
        'disallowed_global',
        `Rejected NEWOBJ of ${this.callableName(cls)} at byte offset ${this.opcodeOffset} of the ` +
          `${this.context}: only allowlisted classes may be instantiated. Nothing was executed.`,
      );
    }
    this.push(cls.construct(args, kwargs));
  }

  private build(): void {
    const state = this.pop();
    const target = this.top();
    if (target instanceof PyObject) {
      target.setState(state);
    } else if (target instanceof Map) {
      // A dict subclass with attributes (e.g. OrderedDict._metadata of torch state dicts): the
      // attributes do not matter to any reader, so they are dropped.
      if (!(state instanceof Map) && state !== null && !Array.isArray(state)) {
        this.fail('invalid_structure', 'BUILD on a dict with a state that is not a dict');
      }
    } else {
      this.fail('invalid_structure', `BUILD on ${this.callableName(target)}, which accepts no state`);
    }
  }

  private setItems(dict: unknown, items: unknown[]): void {
    if (!(dict instanceof Map)) this.fail('invalid_structure', `SETITEM(S) on ${this.callableName(dict)}, not a dict`);
    if (items.length % 2 !== 0) this.fail('invalid_structure', 'SETITEMS with an odd number of values');
    for (let i = 0; i < items.length; i += 2) dict.set(items[i], items[i + 1]);
  }

  private appendItems(list: unknown, items: unknown[]): void {
    if (!Array.isArray(list)) this.fail('invalid_structure', `APPEND(S) on ${this.callableName(list)}, not a list`);
    for (const item of items) list.push(item);
  }

  private persistentLoad(pid: unknown): void {
    if (this.options.persistentLoad === undefined) {
      this.fail('invalid_structure', 'persistent id found, but this format has no persistent storage');
    }
    this.push(this.options.persistentLoad(pid));
  }

  private rejectOpcode(op: number, name: string, why: string): never {
    throw new CheckpointError(
      'unsupported_format',
      `Unsupported pickle opcode ${name} (0x${op.toString(16).padStart(2, '0')}) at byte offset ` +
        `${this.opcodeOffset} of the ${this.context}: ${why}`,
    );
  }

  // ---- the opcode table --------------------------------------------------------------------

  private step(op: number): void {
    switch (op) {
      case 0x80: { // PROTO
        this.protocol = this.input.u8();
        if (this.protocol > highestProtocol) {
          this.fail('unsupported_format', `pickle protocol ${this.protocol} (protocols 0-${highestProtocol} are supported)`);
        }
        return;
      }
      case 0x95: { // FRAME: frames only group opcodes, so the length is checked and skipped.
        const length = this.input.u64('FRAME');
        this.input.need(length, 'FRAME');
        return;
      }
      case 0x28: return this.mark(); // MARK
      case 0x30: { // POP (pops a MARK when the stack is empty, as Python does)
        if (this.stack.length === 0) this.popMark();
        else this.stack.pop();
        return;
      }
      case 0x31: this.popMark(); return; // POP_MARK
      case 0x32: return this.push(this.top()); // DUP

      case 0x4e: return this.push(null); // NONE
      case 0x88: return this.push(true); // NEWTRUE
      case 0x89: return this.push(false); // NEWFALSE
      case 0x4a: return this.push(this.input.i32('BININT')); // BININT
      case 0x4b: return this.push(this.input.u8()); // BININT1
      case 0x4d: return this.push(this.input.u16()); // BININT2
      case 0x8a: return this.push(this.decodeLong(this.input.bytes(this.input.u8(), 'LONG1'))); // LONG1
      case 0x8b: { // LONG4
        const n = this.input.i32('LONG4');
        if (n < 0) this.fail('invalid_structure', `LONG4 with negative length ${n}`);
        if (n > this.maxLongBytes) this.fail('too_large', `integer of ${n} bytes (the limit is ${this.maxLongBytes})`);
        return this.push(this.decodeLong(this.input.bytes(n, 'LONG4')));
      }
      case 0x49: { // INT (text); "01"/"00" are protocol 0's True/False
        const line = this.input.line();
        if (line === '01') return this.push(true);
        if (line === '00') return this.push(false);
        return this.push(this.parseDecimal(line, 'INT'));
      }
      case 0x4c: return this.push(this.parseDecimal(this.input.line(), 'LONG')); // LONG (text)
      case 0x47: return this.push(this.input.f64BigEndian()); // BINFLOAT
      case 0x46: { // FLOAT (text)
        const line = this.input.line();
        const v = Number(line);
        if (Number.isNaN(v) && !/^[+-]?nan$/i.test(line)) this.fail('invalid_structure', `FLOAT argument ${JSON.stringify(line)}`);
        return this.push(v);
      }

      case 0x58: return this.push(utf8Decoder.decode(this.input.bytes(this.input.u32('BINUNICODE'), 'BINUNICODE')));
      case 0x8c: return this.push(utf8Decoder.decode(this.input.bytes(this.input.u8(), 'SHORT_BINUNICODE')));
      case 0x8d: return this.push(utf8Decoder.decode(this.input.bytes(this.input.u64('BINUNICODE8'), 'BINUNICODE8')));
      case 0x54: { // BINSTRING
        const n = this.input.i32('BINSTRING');
        if (n < 0) this.fail('invalid_structure', `BINSTRING with negative length ${n}`);
        return this.push(this.input.latin1(this.input.bytes(n, 'BINSTRING')));
      }
      case 0x55: return this.push(this.input.latin1(this.input.bytes(this.input.u8(), 'SHORT_BINSTRING')));
      case 0x42: return this.push(this.input.bytes(this.input.u32('BINBYTES'), 'BINBYTES'));
      case 0x43: return this.push(this.input.bytes(this.input.u8(), 'SHORT_BINBYTES'));
      case 0x8e: return this.push(this.input.bytes(this.input.u64('BINBYTES8'), 'BINBYTES8'));
      case 0x96: return this.push(this.input.bytes(this.input.u64('BYTEARRAY8'), 'BYTEARRAY8'));

      case 0x29: return this.push([]); // EMPTY_TUPLE
      case 0x85: return this.push([this.pop()]); // TUPLE1
      case 0x86: { // TUPLE2
        const b = this.pop();
        const a = this.pop();
        return this.push([a, b]);
      }
      case 0x87: { // TUPLE3
        const c = this.pop();
        const b = this.pop();
        const a = this.pop();
        return this.push([a, b, c]);
      }
      case 0x74: return this.push(this.popMark()); // TUPLE
      case 0x5d: return this.push([]); // EMPTY_LIST
      case 0x6c: return this.push(this.popMark()); // LIST
      case 0x61: { // APPEND
        const item = this.pop();
        return this.appendItems(this.top(), [item]);
      }
      case 0x65: { // APPENDS
        const items = this.popMark();
        return this.appendItems(this.top(), items);
      }
      case 0x7d: return this.push(new Map()); // EMPTY_DICT
      case 0x64: { // DICT
        const dict = new Map();
        this.setItems(dict, this.popMark());
        return this.push(dict);
      }
      case 0x73: { // SETITEM
        const value = this.pop();
        const key = this.pop();
        return this.setItems(this.top(), [key, value]);
      }
      case 0x75: { // SETITEMS
        const items = this.popMark();
        return this.setItems(this.top(), items);
      }
      case 0x8f: return this.push(new Set()); // EMPTY_SET
      case 0x90: { // ADDITEMS
        const items = this.popMark();
        const set = this.top();
        if (!(set instanceof Set)) this.fail('invalid_structure', `ADDITEMS on ${this.callableName(set)}, not a set`);
        for (const item of items) set.add(item);
        return;
      }
      case 0x91: return this.push(new Set(this.popMark())); // FROZENSET

      case 0x71: return this.memoPut(this.input.u8()); // BINPUT
      case 0x72: return this.memoPut(this.input.u32('LONG_BINPUT')); // LONG_BINPUT
      case 0x94: return this.memoPut(this.memo.size); // MEMOIZE
      case 0x70: return this.memoPut(this.memoIndex(this.input.line())); // PUT
      case 0x68: return this.memoGet(this.input.u8()); // BINGET
      case 0x6a: return this.memoGet(this.input.u32('LONG_BINGET')); // LONG_BINGET
      case 0x67: return this.memoGet(this.memoIndex(this.input.line())); // GET

      case 0x63: { // GLOBAL
        const module = this.input.line();
        const name = this.input.line();
        return this.resolveGlobal(module, name);
      }
      case 0x93: { // STACK_GLOBAL
        const name = this.pop();
        const module = this.pop();
        if (typeof module !== 'string' || typeof name !== 'string') {
          this.fail('invalid_structure', 'STACK_GLOBAL operands are not strings');
        }
        return this.resolveGlobal(module, name);
      }
      case 0x52: return this.reduce(); // REDUCE
      case 0x81: { // NEWOBJ
        const args = this.pop();
        const cls = this.pop();
        return this.newObject(args, cls, new Map());
      }
      case 0x92: { // NEWOBJ_EX
        const kwargs = this.pop();
        const args = this.pop();
        const cls = this.pop();
        return this.newObject(args, cls, kwargs);
      }
      case 0x62: return this.build(); // BUILD
      case 0x51: return this.persistentLoad(this.pop()); // BINPERSID
      case 0x50: return this.persistentLoad(this.input.line()); // PERSID

      case 0x97: return this.rejectOpcode(op, 'NEXT_BUFFER', 'out-of-band buffers are not part of any checkpoint format');
      case 0x98: return this.rejectOpcode(op, 'READONLY_BUFFER', 'out-of-band buffers are not part of any checkpoint format');
      case 0x69: return this.rejectOpcode(op, 'INST', 'protocol 0 instances are not used by checkpoints');
      case 0x6f: return this.rejectOpcode(op, 'OBJ', 'protocol 1 instances are not used by checkpoints');
      case 0x53: return this.rejectOpcode(op, 'STRING', 'protocol 0 strings are not used by checkpoints');
      case 0x56: return this.rejectOpcode(op, 'UNICODE', 'protocol 0 strings are not used by checkpoints');
      case 0x82:
      case 0x83:
      case 0x84: return this.rejectOpcode(op, 'EXT1/EXT2/EXT4', 'the extension registry is not supported');
      default: return this.rejectOpcode(op, 'unknown', 'this byte is not a pickle opcode');
    }
  }
}
