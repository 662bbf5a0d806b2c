/**
 * deploy/entrypoint.sh, the container entry point, run here with the CLI from source. It
 * downloads and converts a checkpoint from a local HTTP server when the model folder is missing
 * and skips that when the folder exists. It rejects a wrong sha256 and passes the arguments and
 * MODEL on to the CLI.
 */

import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { fixturesDir, makeTempDir, removeDir, repoRoot } from '../helpers/server.js';

const entrypoint = join(repoRoot, 'deploy', 'entrypoint.sh');
const checkpointPath = join(fixturesDir, 'ada-tiny-32', 'ada-tiny-32.pkl');
const cliFromSource = `${process.execPath} --import tsx ${join(repoRoot, 'src', 'cli.ts')}`;

let workDir: string;
let checkpointServer: Server;
let checkpointUrl: string;
let checkpointSha256: string;
/** A stand-in CLI that prints its arguments and environment as JSON. */
let echoCli: string;

before(async () => {
  workDir = await makeTempDir('deploy-entrypoint');
  const checkpoint = await readFile(checkpointPath);
  checkpointSha256 = createHash('sha256').update(checkpoint).digest('hex');
  checkpointServer = createServer((request, response) => {
    if (request.url !== '/ada-tiny-32.pkl') {
      response.writeHead(404).end();
      return;
    }
    response.writeHead(200, { 'Content-Type': 'application/octet-stream', 'Content-Length': checkpoint.byteLength }).end(checkpoint);
  });
  await new Promise<void>((resolve) => checkpointServer.listen(0, '127.0.0.1', resolve));
  checkpointUrl = `http://127.0.0.1:${(checkpointServer.address() as AddressInfo).port}/ada-tiny-32.pkl`;
  const echoScript = join(workDir, 'echo-cli.mjs');
  await writeFile(
    echoScript,
    'console.log(JSON.stringify({ args: process.argv.slice(2), model: process.env.MODEL, modelsDir: process.env.MODELS_DIR }));\n',
  );
  echoCli = `${process.execPath} ${echoScript}`;
});

after(async () => {
  checkpointServer?.close();
  await removeDir(workDir);
});

interface EntrypointRun {
  code: number;
  stdout: string;
  stderr: string;
}

function runEntrypoint(args: string[], env: Record<string, string>): Promise<EntrypointRun> {
  return new Promise((resolve) => {
    execFile(
      '/bin/sh',
      [entrypoint, ...args],
      { cwd: repoRoot, env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', ...env }, timeout: 60_000 },
      (err, stdout, stderr) => resolve({ code: err ? Number(err.code ?? 1) : 0, stdout, stderr }),
    );
  });
}

test('entrypoint converts a missing model then runs the CLI', async () => {
  const modelsDir = join(workDir, 'models-a');
  const converted = await runEntrypoint(['help'], {
    STYLEGAN_SERVE_CLI: cliFromSource,
    MODELS_DIR: modelsDir,
    CHECKPOINT_URL: checkpointUrl,
    CHECKPOINT_SHA256: checkpointSha256,
    MODEL_NAME: 'tiny',
  });
  assert.equal(converted.code, 0, converted.stderr);
  assert.match(converted.stderr, /converting http:\/\/127\.0\.0\.1:\d+\/ada-tiny-32\.pkl into .*models-a\/tiny/);
  assert.ok(existsSync(join(modelsDir, 'tiny', 'model.json')));
  const manifest = JSON.parse(await readFile(join(modelsDir, 'tiny', 'model.json'), 'utf8'));
  assert.equal(manifest.source.sha256, checkpointSha256);
  // `help` reached the CLI: it printed the usage.
  assert.match(converted.stdout, /Usage:/);

  const again = await runEntrypoint([], {
    STYLEGAN_SERVE_CLI: echoCli,
    MODELS_DIR: modelsDir,
    CHECKPOINT_URL: checkpointUrl,
    MODEL_NAME: 'tiny',
  });
  assert.equal(again.code, 0, again.stderr);
  assert.match(again.stderr, /model tiny already in .*skipping the conversion/);
  assert.deepEqual(JSON.parse(again.stdout), { args: ['serve'], model: 'tiny', modelsDir });
});

test('entrypoint keeps an explicit MODEL and the arguments', async () => {
  const result = await runEntrypoint(['serve', '--port', '9000'], { STYLEGAN_SERVE_CLI: echoCli, MODEL: 'other', MODELS_DIR: '/srv/models' });
  assert.equal(result.code, 0, result.stderr);
  assert.deepEqual(JSON.parse(result.stdout), { args: ['serve', '--port', '9000'], model: 'other', modelsDir: '/srv/models' });
});

test('entrypoint rejects a wrong sha256', async () => {
  const modelsDir = join(workDir, 'models-b');
  const result = await runEntrypoint(['help'], {
    STYLEGAN_SERVE_CLI: cliFromSource,
    MODELS_DIR: modelsDir,
    CHECKPOINT_URL: checkpointUrl,
    CHECKPOINT_SHA256: '0'.repeat(64),
    MODEL_NAME: 'tiny',
  });
  assert.notEqual(result.code, 0);
  assert.match(result.stderr, /sha256 mismatch/);
  assert.ok(!existsSync(join(modelsDir, 'tiny', 'model.json')));
  assert.doesNotMatch(result.stdout, /Usage:/);
});

test('entrypoint requires MODEL_NAME with CHECKPOINT_URL', async () => {
  const result = await runEntrypoint(['help'], { STYLEGAN_SERVE_CLI: echoCli, CHECKPOINT_URL: checkpointUrl });
  assert.equal(result.code, 2);
  assert.match(result.stderr, /MODEL_NAME is empty/);
});
