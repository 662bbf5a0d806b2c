/**
 * The `convert` command as a user runs it: from a file, from a URL served on 127.0.0.1 with sha256
 * verification, and on crafted or broken files, which must exit non-zero with a message, leave no
 * model folder behind and run nothing (a canary file proves it).
 */

import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { readdir, readFile, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { buildZip, callPickle, pseudoRandomBytes } from '../checkpoint/crafted.js';
import { fixturesDir, makeTempDir, readJson, removeDir, runCli } from '../helpers/server.js';

const fixturePath = join(fixturesDir, 'ada-tiny-32', 'ada-tiny-32.pkl');

let workDir: string;
let httpServer: Server;
let baseUrl: string;

before(async () => {
  workDir = await makeTempDir('cli');
  const bytes = await readFile(fixturePath);
  httpServer = createServer((req, res) => {
    if (req.url === '/ada-tiny-32.pkl') {
      res.writeHead(200, { 'Content-Type': 'application/octet-stream', 'Content-Length': bytes.byteLength });
      res.end(bytes);
    } else {
      res.writeHead(404).end('not found');
    }
  });
  await new Promise<void>((resolve) => httpServer.listen(0, '127.0.0.1', resolve));
  baseUrl = `http://127.0.0.1:${(httpServer.address() as AddressInfo).port}`;
});

after(async () => {
  await new Promise((resolve) => httpServer.close(resolve));
  await removeDir(workDir);
});

/** Builds a protocol 4 pickle of a million nested MARK opcodes. */
function deepMarks(): Uint8Array {
  const bytes = new Uint8Array(1_000_003).fill(0x28);
  bytes.set([0x80, 0x04], 0);
  bytes[bytes.length - 1] = 0x2e;
  return bytes;
}

/** Runs the CLI and returns its exit code and output instead of throwing on failure. */
async function cli(args: string[]) {
  try {
    const { stdout, stderr } = await runCli(args);
    return { code: 0, stdout, stderr };
  } catch (err) {
    const failure = err as { code: number; stdout: string; stderr: string };
    return { code: failure.code, stdout: failure.stdout, stderr: failure.stderr };
  }
}

describe('convert command', () => {
  test('converts a file and prints a summary', async () => {
    const modelsDir = join(workDir, 'file');
    const result = await cli(['convert', fixturePath, '--name', 'tiny', '--models-dir', modelsDir]);
    assert.equal(result.code, 0, result.stderr);
    assert.match(result.stdout, /converted ada-tiny-32\.pkl -> .*tiny/);
    assert.match(result.stdout, /latents +z 64, w 64, num_ws 8, c 0/);
    const manifest = await readJson(new Response(await readFile(join(modelsDir, 'tiny', 'model.json'))));
    const expectedSha = createHash('sha256').update(await readFile(fixturePath)).digest('hex');
    assert.equal(manifest.source.sha256, expectedSha);
  });

  test('downloads from a URL, verifies sha256 and converts', async () => {
    const modelsDir = join(workDir, 'url');
    const sha = createHash('sha256').update(await readFile(fixturePath)).digest('hex');
    const result = await cli(['convert', `${baseUrl}/ada-tiny-32.pkl`, '--name', 'remote', '--models-dir', modelsDir, '--sha256', sha]);
    assert.equal(result.code, 0, result.stderr);
    assert.match(result.stderr, /downloading ada-tiny-32\.pkl: \d+%/);
    assert.ok(existsSync(join(modelsDir, 'remote', 'synthesis.onnx')));
  });

  test('rejects a sha256 mismatch without writing a model', async () => {
    const modelsDir = join(workDir, 'mismatch');
    const result = await cli(['convert', `${baseUrl}/ada-tiny-32.pkl`, '--name', 'bad', '--models-dir', modelsDir, '--sha256', '0'.repeat(64)]);
    assert.equal(result.code, 1);
    assert.match(result.stderr, /sha256 mismatch/);
    assert.equal(existsSync(join(modelsDir, 'bad')), false);
  });

  test('fails cleanly on an HTTP error', async () => {
    const result = await cli(['convert', `${baseUrl}/missing.pkl`, '--name', 'gone', '--models-dir', join(workDir, 'gone')]);
    assert.equal(result.code, 1);
    assert.match(result.stderr, /returned HTTP 404/);
  });

  test('rejects an invalid model name', async () => {
    const result = await cli(['convert', fixturePath, '--name', '../escape', '--models-dir', join(workDir, 'names')]);
    assert.notEqual(result.code, 0);
    assert.match(result.stderr, /invalid model name/);
  });

  test('rejects crafted and broken checkpoints with a message', async () => {
    const canary = join(workDir, 'canary');
    const touch = `touch ${canary}`;
    const truncated = (await readFile(fixturePath)).subarray(0, 100_000);
    const files: [string, Uint8Array, RegExp][] = [
      ['os-system.pkl', callPickle('os', 'system', touch), /os\.system/],
      ['eval.pkl', callPickle('builtins', 'eval', `__import__('os').system('${touch}')`), /builtins\.eval/],
      ['posix.pkl', callPickle('posix', 'system', touch, true), /posix\.system/],
      ['traversal.pt', buildZip([{ name: '../evil', data: new Uint8Array(8) }]), /\.\./],
      ['random.bin', pseudoRandomBytes(1024, 3), /not a supported checkpoint|unsupported|format/i],
      ['empty.pkl', new Uint8Array(0), /empty/i],
      ['truncated.pkl', truncated, /truncated|ended/i],
      ['deep.pkl', deepMarks(), /MARK nesting deeper than/],
    ];
    for (const [name, bytes, message] of files) {
      const path = join(workDir, name);
      await writeFile(path, bytes);
      const modelsDir = join(workDir, `models-${name}`);
      const result = await cli(['convert', path, '--name', 'crafted', '--models-dir', modelsDir]);
      assert.equal(result.code, 1, `${name}: exit code`);
      assert.match(result.stderr, message, `${name}: ${result.stderr}`);
      assert.equal(existsSync(join(modelsDir, 'crafted')), false, `${name}: no model folder`);
      if (existsSync(modelsDir)) assert.deepEqual(await readdir(modelsDir), [], `${name}: nothing written`);
      assert.equal(existsSync(canary), false, `${name}: the canary exists, so a payload ran`);
    }
  });
});
