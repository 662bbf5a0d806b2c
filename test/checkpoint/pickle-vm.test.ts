/**
 * Unit tests of the pickle VM on hand-assembled byte streams (bytes as CPython's pickler writes
 * them for the same values).
 */

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { CheckpointError } from '../../src/checkpoint/errors.js';
import { PickleGlobal, PyObject, unpickle, type UnpickleOptions } from '../../src/checkpoint/pickle-vm.js';
import { allowlist, torchTensorGlobals } from '../../src/checkpoint/torch-storage.js';
import { PickleBuilder } from './crafted.js';

const noGlobals: UnpickleOptions['findClass'] = () => undefined;

function load(bytes: number[] | Uint8Array, findClass = noGlobals): unknown {
  return unpickle(Uint8Array.from(bytes), { findClass }).value;
}

function hex(text: string): number[] {
  return text.split(/\s+/).filter(Boolean).map((h) => parseInt(h, 16));
}

describe('pickle VM integers', () => {
  it('reads signed LONG1 values', () => {
    assert.equal(load(hex('80 02 8a 01 ff 2e')), -1);
    assert.equal(load(hex('80 02 8a 06 00 00 00 00 00 ff 2e')), -(2 ** 40));
    assert.equal(load(hex('80 02 8a 00 2e')), 0);
    assert.equal(load(hex('80 02 8a 02 ff 00 2e')), 255);
  });

  it('returns BigInt beyond 2^53', () => {
    assert.equal(load(hex('80 02 8a 09 00 00 00 00 00 00 00 00 40 2e')), 2n ** 70n);
    assert.equal(load(hex('80 02 8a 09 00 00 00 00 00 00 00 80 00 2e')), 2n ** 63n);
    assert.equal(load(hex('80 02 8a 0a 6c fc 9c 46 f9 20 6a a8 50 19 2e')), 0x1950a86a20f9469cfc6cn);
  });

  it('reads LONG4 and the protocol 0 LONG', () => {
    const long4 = [...hex('80 02 8b 0d 00 00 00'), ...new Array<number>(12).fill(0), 0xf0, 0x2e]; // 13 bytes: -2^100
    assert.equal(load(long4), -(2n ** 100n));
    assert.equal(load([...new TextEncoder().encode('L-1267650600228229401496703205376L\n.')]), -(2n ** 100n));
  });

  it('reads BININT, BININT1, BININT2 and INT', () => {
    assert.equal(load(hex('80 02 4a ff ff ff ff 2e')), -1);
    assert.equal(load(hex('80 02 4b c8 2e')), 200);
    assert.equal(load(hex('80 02 4d e9 03 2e')), 1001);
    assert.equal(load([...new TextEncoder().encode('I42\n.')]), 42);
  });
});

describe('pickle VM floats and strings', () => {
  it('reads BINFLOAT as big-endian float64', () => {
    assert.equal(load(hex('80 02 47 3f f8 00 00 00 00 00 00 2e')), 1.5);
    assert.equal(load(hex('80 02 47 bf b9 99 99 99 99 99 9a 2e')), -0.1);
  });

  it('reads unicode, bytes and latin-1 strings', () => {
    assert.equal(load(new PickleBuilder().proto(4).shortStr('héllo').stop().build()), 'héllo');
    const bytes = load(hex('80 03 43 03 01 02 03 2e'));
    assert.ok(bytes instanceof Uint8Array);
    assert.deepEqual([...bytes], [1, 2, 3]);
    assert.equal(load(hex('80 02 55 02 e9 41 2e')), 'éA');
  });
});

describe('pickle VM containers and memo', () => {
  it('builds a protocol 2 list with APPENDS', () => {
    assert.deepEqual(load(hex('80 02 5d 71 00 28 4b 01 4b 02 65 2e')), [1, 2]);
  });

  it('shares memoized objects (BINPUT/BINGET)', () => {
    // {'a': L, 'b': L} with L = [] stored once and fetched again
    const value = load(hex('80 02 7d 71 00 28 58 01 00 00 00 61 71 01 5d 71 02 58 01 00 00 00 62 71 03 68 02 75 2e'));
    assert.ok(value instanceof Map);
    assert.deepEqual([...value.keys()], ['a', 'b']);
    assert.equal(value.get('a'), value.get('b'));
  });

  it('reads protocol 4 FRAME, MEMOIZE, sets and tuples', () => {
    const p = new PickleBuilder().proto(4).raw(0x95).u64(16n)
      .raw(0x8f, 0x94).mark().raw(0x4b, 0x07).raw(0x4b, 0x08).raw(0x90) // EMPTY_SET MEMOIZE ADDITEMS {7, 8}
      .raw(0x68, 0x00) // BINGET 0: the same set again
      .mark().raw(0x4b, 0x09).raw(0x91) // FROZENSET {9}
      .raw(0x87) // TUPLE3
      .stop().build();
    const value = load(p) as unknown[];
    assert.equal(value.length, 3);
    assert.deepEqual(value[0], new Set([7, 8]));
    assert.equal(value[0], value[1]);
    assert.deepEqual(value[2], new Set([9]));
  });

  it('reads protocol 3 GLOBAL with REDUCE, LONG_BINPUT and LONG_BINGET', () => {
    const findClass = allowlist(torchTensorGlobals());
    const p = new PickleBuilder().proto(3).global('collections', 'OrderedDict').raw(0x29).reduce()
      .raw(0x72).u32(300) // LONG_BINPUT 300
      .mark().str('x').raw(0x6a).u32(300).raw(0x75) // SETITEMS x -> LONG_BINGET 300 (itself)
      .stop().build();
    const value = load(p, findClass);
    assert.ok(value instanceof Map);
    assert.equal(value.get('x'), value);
  });

  it('reads protocol 0 text opcodes', () => {
    const text = '(lp0\nI1\naF2.5\nag0\na.';
    const value = load([...new TextEncoder().encode(text)]) as unknown[];
    assert.equal(value[0], 1);
    assert.equal(value[1], 2.5);
    assert.equal(value[2], value);
  });

  it('calls NEWOBJ and BUILD handlers of allowlisted classes only', () => {
    const cls = new PickleGlobal('pkg.Thing', { construct: (args) => new PyObject('pkg.Thing', args) });
    const p = new PickleBuilder().proto(4).stackGlobal('pkg', 'Thing').raw(0x29).raw(0x81).raw(0x7d).raw(0x62).stop().build();
    const value = load(p, (m, n) => (m === 'pkg' && n === 'Thing' ? cls : undefined));
    assert.ok(value instanceof PyObject);
    assert.equal(value.className, 'pkg.Thing');
    assert.ok(value.state instanceof Map);
  });

  it('returns the end offset of consecutive pickles', () => {
    const bytes = Uint8Array.from(hex('80 02 4b 01 2e 80 02 4b 02 2e'));
    const first = unpickle(bytes, { findClass: noGlobals });
    assert.deepEqual([first.value, first.end, first.protocol], [1, 5, 2]);
    const second = unpickle(bytes, { findClass: noGlobals, offset: first.end });
    assert.deepEqual([second.value, second.end], [2, 10]);
  });
});

describe('pickle VM rejections', () => {
  const cases: Array<[string, number[], RegExp, string]> = [
    ['NEXT_BUFFER', hex('80 05 97 2e'), /NEXT_BUFFER \(0x97\) at byte offset 2/, 'unsupported_format'],
    ['READONLY_BUFFER', hex('80 05 98 2e'), /READONLY_BUFFER \(0x98\) at byte offset 2/, 'unsupported_format'],
    ['unknown opcode', hex('80 02 ff 2e'), /unknown \(0xff\) at byte offset 2/, 'unsupported_format'],
    ['protocol 6', hex('80 06 4e 2e'), /pickle protocol 6/, 'unsupported_format'],
    ['missing STOP', hex('80 02 4e'), /Truncated/, 'truncated'],
    ['stack underflow', hex('80 02 52 2e'), /stack underflow/, 'invalid_structure'],
    ['unknown memo key', hex('80 02 68 05 2e'), /memo key 5/, 'invalid_structure'],
    ['SETITEM on a list', hex('80 02 5d 4b 01 4b 02 73 2e'), /not a dict/, 'invalid_structure'],
    ['BINUNICODE past the end', hex('80 02 58 ff ff ff ff 61 2e'), /declares 4294967295 bytes/, 'truncated'],
    ['BINBYTES8 claiming 2^63 bytes', hex('80 04 8e 00 00 00 00 00 00 00 80 2e'), /declares 9223372036854775808 bytes/, 'truncated'],
    ['LONG4 of 2 GB', hex('80 02 8b ff ff ff 7f 2e'), /integer of 2147483647 bytes/, 'too_large'],
  ];
  for (const [name, bytes, message, code] of cases) {
    it(`rejects ${name}`, () => {
      assert.throws(() => load(bytes), (err: unknown) => err instanceof CheckpointError && err.code === code && message.test(err.message));
    });
  }

  it('rejects globals outside the allowlist by name', () => {
    const p = new PickleBuilder().proto(2).global('os', 'system').stop().build();
    assert.throws(() => load(p), (err: unknown) => err instanceof CheckpointError && err.code === 'disallowed_global' && /os\.system/.test(err.message));
  });
});
