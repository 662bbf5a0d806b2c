/**
 * Crafted and broken files: code-execution payloads, resource exhaustion, path traversal, zip
 * bombs, truncation and noise. Each must end in a CheckpointError that names the problem. The
 * payloads would `touch` a canary file if anything were executed, so the canary must never appear.
 */

import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { CheckpointError, type CheckpointErrorCode } from '../../src/checkpoint/errors.js';
import { readCheckpoint } from '../../src/checkpoint/index.js';
import { PickleBuilder, buildZip, callPickle, concat, legacyTorchHeader, legacyTorchStorageFile, legacyTorchTensorFile, pseudoRandomBytes } from './crafted.js';

const fixtures = join(import.meta.dirname, '..', 'fixtures');
const canaryDir = mkdtempSync(join(tmpdir(), 'checkpoint-canary-'));
const canary = join(canaryDir, 'canary');
const touch = `touch ${canary}`;
const rssLimitBytes = 200 * 1024 * 1024;

after(() => rmSync(canaryDir, { recursive: true, force: true }));

function expectRejected(bytes: Uint8Array, code: CheckpointErrorCode, message: RegExp): void {
  assert.throws(
    () => readCheckpoint(bytes, { fileName: 'crafted.pkl' }),
    (err: unknown) => {
      assert.ok(err instanceof CheckpointError, `expected a CheckpointError, got ${String(err)}`);
      assert.equal(err.code, code, err.message);
      assert.match(err.message, message);
      return true;
    },
  );
  assert.equal(existsSync(canary), false, 'the canary file exists: a payload was executed');
}

/** Builds a protocol 4 snapshot `{'G_ema': <value built by body>}`, shaped like an NVlabs pickle. */
function snapshotWith(body: (p: PickleBuilder) => PickleBuilder): Uint8Array {
  return body(new PickleBuilder().proto(4).raw(0x7d).shortStr('G_ema')).raw(0x73).stop().build();
}

/** Wraps `objectPickle` in a legacy torch.save file without storages. */
function legacyTorchWith(objectPickle: Uint8Array): Uint8Array {
  const keys = new PickleBuilder().proto(2).raw(0x5d).stop().build();
  return concat([legacyTorchHeader(), objectPickle, keys]);
}

const rssBefore = process.memoryUsage().rss;

describe('code-execution payloads', () => {
  it('rejects GLOBAL os.system', () => {
    expectRejected(callPickle('os', 'system', touch), 'disallowed_global', /os\.system/);
  });

  it('rejects subprocess.Popen', () => {
    const p = new PickleBuilder().proto(2).global('subprocess', 'Popen').raw(0x5d).mark().str('touch').str(canary).raw(0x65).raw(0x85).reduce().stop();
    expectRejected(p.build(), 'disallowed_global', /subprocess\.Popen/);
  });

  it('rejects builtins.eval and builtins.exec', () => {
    expectRejected(callPickle('builtins', 'eval', `__import__('os').system('${touch}')`), 'disallowed_global', /builtins\.eval/);
    expectRejected(callPickle('builtins', 'exec', `import os; os.system('${touch}')`), 'disallowed_global', /builtins\.exec/);
  });

  it('rejects a builtins.getattr chain', () => {
    const p = new PickleBuilder().proto(2).global('builtins', 'getattr')
      .global('builtins', '__import__').str('os').tuple1().reduce()
      .str('system').raw(0x86).reduce()
      .str(touch).tuple1().reduce().stop();
    expectRejected(p.build(), 'disallowed_global', /builtins\.getattr/);
  });

  it('rejects posix.system through STACK_GLOBAL', () => {
    expectRejected(callPickle('posix', 'system', touch, true), 'disallowed_global', /posix\.system/);
  });

  it('rejects REDUCE on an allowlisted inert marker', () => {
    const p = new PickleBuilder().proto(4).stackGlobal('torch', 'FloatStorage').str(touch).tuple1().reduce().stop();
    expectRejected(p.build(), 'disallowed_global', /REDUCE on torch\.FloatStorage/);
  });

  it('rejects REDUCE on a plain string', () => {
    const p = new PickleBuilder().proto(4).shortStr('os.system').str(touch).tuple1().reduce().stop();
    expectRejected(p.build(), 'disallowed_global', /REDUCE on a string value/);
  });

  it('rejects copyreg._reconstructor of a class without a constructor', () => {
    const p = new PickleBuilder().proto(2).global('copyreg', '_reconstructor')
      .global('collections', 'OrderedDict').global('builtins', 'object').none().raw(0x87).reduce().stop();
    expectRejected(p.build(), 'disallowed_global', /copyreg\._reconstructor/);
  });

  it('rejects a payload inside a persistent module state', () => {
    const bytes = snapshotWith((p) =>
      p.stackGlobal('torch_utils.persistence', '_reconstruct_persistent_obj')
        .raw(0x7d).mark().shortStr('type').shortStr('class').shortStr('class_name').shortStr('Generator')
        .shortStr('state').raw(0x7d).shortStr('x').stackGlobal('os', 'system').str(touch).tuple1().reduce().raw(0x73)
        .raw(0x75).tuple1().reduce(),
    );
    expectRejected(bytes, 'disallowed_global', /os\.system/);
  });

  it('rejects a payload nested in a pickled storage blob', () => {
    const blob = legacyTorchWith(callPickle('os', 'system', touch));
    const bytes = snapshotWith((p) => p.stackGlobal('torch.storage', '_load_from_bytes').binBytes(blob).tuple1().reduce());
    expectRejected(bytes, 'disallowed_global', /os\.system/);
  });

  it('rejects a payload in a rosinality zip and in a legacy torch file', () => {
    expectRejected(buildZip([{ name: 'x/data.pkl', data: callPickle('os', 'system', touch) }]), 'disallowed_global', /os\.system/);
    expectRejected(legacyTorchWith(callPickle('nt', 'system', touch)), 'disallowed_global', /nt\.system/);
  });
});

describe('resource exhaustion', () => {
  it('rejects a million nested MARKs', () => {
    const bytes = new Uint8Array(1_000_003).fill(0x28);
    bytes.set([0x80, 0x04], 0);
    bytes[bytes.length - 1] = 0x2e;
    expectRejected(bytes, 'too_large', /MARK nesting deeper than/);
  });

  it('rejects a million stacked empty lists', () => {
    const bytes = new Uint8Array(1_000_003).fill(0x5d);
    bytes.set([0x80, 0x04], 0);
    bytes[bytes.length - 1] = 0x2e;
    expectRejected(bytes, 'too_large', /values on the pickle stack/);
  });

  it('rejects a legacy storage claiming 100 GB before allocating', () => {
    expectRejected(legacyTorchTensorFile(25_000_000_000, 64), 'truncated', /claims 100000000000 bytes, but only 64 bytes remain/);
  });

  it('rejects a zip storage claiming 100 GB', () => {
    const pickle = new PickleBuilder().proto(2).raw(0x7d).str('latent_avg')
      .global('torch._utils', '_rebuild_tensor_v2').mark()
      .mark().str('storage').global('torch', 'FloatStorage').str('0').str('cpu').raw(0x8a, 0x08).u64(25_000_000_000n).tuple().raw(0x51)
      .int(0).mark().int(4).tuple().mark().int(1).tuple().raw(0x89).global('collections', 'OrderedDict').raw(0x29).reduce()
      .tuple().reduce().raw(0x73).stop().build();
    const zip = buildZip([{ name: 'x/data.pkl', data: pickle }, { name: 'x/data/0', data: new Uint8Array(16) }]);
    expectRejected(zip, 'truncated', /claims 100000000000 bytes/);
  });

  it('rejects a nested storage blob claiming 100 GB', () => {
    const blob = legacyTorchStorageFile(25_000_000_000, 8);
    const bytes = snapshotWith((p) => p.stackGlobal('torch.storage', '_load_from_bytes').binBytes(blob).tuple1().reduce());
    expectRejected(bytes, 'truncated', /claims 100000000000 bytes, but only 8 bytes remain/);
  });

  it('rejects many tensors viewing one storage', () => {
    // {'g_ema': {'t0': T, 't1': T, ...}} with one 1M-element tensor T referenced 200 times by BINGET
    const numel = 1 << 20;
    const p = new PickleBuilder().proto(2).raw(0x7d).str('g_ema').raw(0x7d)
      .str('t0').global('torch._utils', '_rebuild_tensor_v2').mark()
      .mark().str('storage').global('torch', 'FloatStorage').str('0').str('cpu').int(numel).tuple().raw(0x51)
      .int(0).mark().int(numel).tuple().mark().int(1).tuple().raw(0x89).global('collections', 'OrderedDict').raw(0x29).reduce()
      .tuple().reduce().raw(0x71, 0x01).raw(0x73); // BINPUT 1, SETITEM
    for (let i = 1; i < 200; i++) p.str(`t${i}`).raw(0x68, 0x01).raw(0x73);
    p.raw(0x73).stop();
    const zip = buildZip([{ name: 'x/data.pkl', data: p.build() }, { name: 'x/data/0', data: new Uint8Array(numel * 4) }]);
    expectRejected(zip, 'too_large', /view 209715200 elements, but their storages hold only 1048576/);
  });

  it('rejects a zip bomb by its declared size', () => {
    const bomb = buildZip([{ name: 'x/data.pkl', data: new Uint8Array(1 << 20), method: 8, declaredSize: 0xfffffff0 }]);
    expectRejected(bomb, 'too_large', /declares 4294967280 bytes once inflated/);
  });

  it('rejects a deflated entry larger than it declares', () => {
    const liar = buildZip([{ name: 'x/data.pkl', data: new Uint8Array(8 << 20), method: 8, declaredSize: 1000 }]);
    expectRejected(liar, 'invalid_structure', /exceeded its declared 1000 bytes/);
  });
});

describe('archive and format checks', () => {
  it("rejects a zip entry named '../evil'", () => {
    const zip = buildZip([{ name: 'x/data.pkl', data: new PickleBuilder().proto(2).none().stop().build() }, { name: '../evil', data: new Uint8Array(4) }]);
    expectRejected(zip, 'invalid_structure', /"\.\.\/evil" is absolute or contains '\.\.'/);
  });

  it('rejects an absolute zip entry name', () => {
    expectRejected(buildZip([{ name: '/etc/cron.d/evil', data: new Uint8Array(4) }]), 'invalid_structure', /is absolute/);
  });

  it('rejects a TorchScript archive', () => {
    const none = new PickleBuilder().proto(2).none().stop().build();
    const zip = buildZip([{ name: 'm/data.pkl', data: none }, { name: 'm/constants.pkl', data: none }, { name: 'm/code/m.py', data: none }]);
    expectRejected(zip, 'unsupported_format', /TorchScript module, not a torch\.save checkpoint/);
  });

  it('rejects a zip without data.pkl', () => {
    expectRejected(buildZip([{ name: 'w.npy', data: new Uint8Array(8) }]), 'unsupported_format', /no '<name>\/data\.pkl' entry.*first entries: w\.npy/);
  });

  it('rejects an empty file', () => {
    expectRejected(new Uint8Array(0), 'truncated', /empty \(0 bytes\)/);
  });

  it('rejects an ONNX model with a clear message', () => {
    const onnx = Uint8Array.from([0x08, 0x08, 0x12, 0x07, ...new TextEncoder().encode('pytorch'), 0x3a, 0x00]);
    expectRejected(onnx, 'unsupported_format', /already an ONNX model, not a checkpoint/);
  });

  it('rejects 1 KB of random bytes', () => {
    for (let seed = 1; seed <= 20; seed++) {
      const bytes = pseudoRandomBytes(1024, seed);
      assert.throws(() => readCheckpoint(bytes), (err: unknown) => err instanceof CheckpointError && err.message.length > 0, `seed ${seed}`);
    }
  });

  it('rejects random opcodes after a pickle header', () => {
    for (let seed = 1; seed <= 300; seed++) {
      const bytes = pseudoRandomBytes(1024, seed);
      bytes.set([0x80, 2 + (seed % 4)], 0);
      assert.throws(() => readCheckpoint(bytes), (err: unknown) => err instanceof CheckpointError, `seed ${seed}`);
    }
  });
});

describe('truncated and damaged real checkpoints', () => {
  const files = [
    ['ada-tiny-32', 'ada-tiny-32.pkl'],
    ['tf-tiny-32', 'tf-tiny-32.pkl'],
    ['rosi-tiny-32', 'rosi-tiny-32.pt'],
    ['rosi-tiny-32', 'rosi-tiny-32.legacy-format.pt'],
  ];
  for (const [model, file] of files) {
    it(`rejects ${file} cut short`, () => {
      const bytes = readFileSync(join(fixtures, model, file));
      for (const fraction of [0.001, 0.1, 0.5, 0.9, 0.9999]) {
        const cut = bytes.subarray(0, Math.floor(bytes.length * fraction));
        assert.throws(
          () => readCheckpoint(cut),
          (err: unknown) => err instanceof CheckpointError && (err.code === 'truncated' || err.code === 'invalid_structure'),
          `${file} cut at ${fraction}`,
        );
      }
    });
  }

  it('never fails with another error type on flipped bytes', () => {
    const original = readFileSync(join(fixtures, 'tf-tiny-32', 'tf-tiny-32.pkl'));
    for (let seed = 1; seed <= 40; seed++) {
      const bytes = Uint8Array.from(original);
      const noise = pseudoRandomBytes(8, seed);
      const at = ((noise[0] << 16) | (noise[1] << 8) | noise[2]) % Math.min(bytes.length, 8192); // headers and names
      bytes[at] ^= noise[3] | 1;
      try {
        readCheckpoint(bytes);
      } catch (err) {
        assert.ok(err instanceof CheckpointError, `seed ${seed}: ${String(err)}`);
      }
    }
  });
});

describe('memory', () => {
  it('stays bounded over the whole suite', () => {
    const growth = process.memoryUsage().rss - rssBefore;
    assert.ok(growth < rssLimitBytes, `rss grew by ${Math.round(growth / 2 ** 20)} MiB`);
    assert.equal(existsSync(canary), false);
  });
});
