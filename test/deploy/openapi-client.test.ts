/**
 * The API contract: openapi.yaml passes Redocly's recommended lint rules, the committed client
 * types match it, a typed openapi-fetch client gets a decodable PNG from a running server, and
 * /docs serves Swagger UI for /openapi.json.
 */

import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { promisify } from 'node:util';
import createClient from 'openapi-fetch';
import { parse } from 'yaml';
import type { paths } from '../client/openapi.js';
import { renderClientTypes } from '../client/render.js';
import { convertFixture, decodeRgb, makeTempDir, removeDir, repoRoot, startTestServer, type TestServer } from '../helpers/server.js';

const run = promisify(execFile);

let modelsDir: string;
let server: TestServer;

before(async () => {
  modelsDir = await makeTempDir('deploy-client');
  await convertFixture(modelsDir, 'ada-tiny-32', 'ada-tiny-32.pkl', 'tiny');
  server = await startTestServer({ 'models-dir': modelsDir, model: 'tiny' });
});

after(async () => {
  await server?.close();
  await removeDir(modelsDir);
});

describe('OpenAPI document', () => {
  test('redocly lint finds no errors', async () => {
    const redocly = join(repoRoot, 'node_modules', '.bin', 'redocly');
    // Redocly exits 1 when it finds errors; the JSON report on stdout is read either way.
    const result = await run(redocly, ['lint', 'openapi.yaml', '--format=json'], {
      cwd: repoRoot,
      env: { ...process.env, REDOCLY_TELEMETRY: 'off', REDOCLY_SUPPRESS_UPDATE_NOTICE: 'true' },
      maxBuffer: 16 << 20,
    }).catch((err: { stdout?: string; stderr?: string }) => ({ stdout: err.stdout ?? '', stderr: err.stderr ?? '' }));
    const report = JSON.parse(result.stdout) as {
      totals: { errors: number; warnings: number };
      problems: { ruleId: string; severity: string; message: string; location: { pointer: string }[] }[];
    };
    const errors = report.problems.filter((problem) => problem.severity === 'error');
    assert.deepEqual(
      errors.map((problem) => `${problem.ruleId} at ${problem.location[0]?.pointer}: ${problem.message}`),
      [],
    );
    assert.equal(report.totals.errors, 0);
  });

  test('served /openapi.json equals openapi.yaml', async () => {
    const committed = parse(await readFile(join(repoRoot, 'openapi.yaml'), 'utf8'));
    const served = await (await fetch(`${server.url}/openapi.json`)).json();
    assert.deepEqual(served, committed);
  });

  test('client types match openapi.yaml (regenerate with scripts/generate-client.ts)', async () => {
    const committed = await readFile(join(repoRoot, 'test', 'client', 'openapi.d.ts'), 'utf8');
    assert.equal(committed, await renderClientTypes());
  });
});

describe('generated client', () => {
  test('generate returns a decodable PNG', async () => {
    const client = createClient<paths>({ baseUrl: server.url });
    const { data, error, response } = await client.POST('/generate', {
      body: { seeds: [11], psi: 0.5, noise_mode: 'const', format: 'png' },
      parseAs: 'arrayBuffer',
    });
    assert.equal(error, undefined);
    assert.equal(response.status, 200);
    assert.equal(response.headers.get('content-type'), 'image/png');
    assert.equal(response.headers.get('x-seed'), '11');
    // The document declares the PNG as a binary string; parseAs makes openapi-fetch return bytes.
    const bytes: unknown = data;
    assert.ok(bytes instanceof ArrayBuffer);
    const image = await decodeRgb(new Uint8Array(bytes));
    assert.equal(image.width, 32);
    assert.equal(image.height, 32);
    assert.ok(image.data.some((value) => value !== image.data[0]), 'the image is a single flat colour');
  });

  test('models list is typed JSON', async () => {
    const client = createClient<paths>({ baseUrl: server.url });
    const { data, response } = await client.GET('/models');
    assert.equal(response.status, 200);
    assert.deepEqual(
      data?.models.map((model) => [model.name, model.resolution, model.default]),
      [['tiny', 32, true]],
    );
  });

  test('validation error is a typed problem', async () => {
    const client = createClient<paths>({ baseUrl: server.url });
    const { error, response } = await client.POST('/generate', { body: { seeds: [-1] } });
    assert.equal(response.status, 422);
    assert.equal(error?.status, 422);
    assert.match(error?.detail ?? '', /seeds/);
  });
});

describe('Swagger UI', () => {
  test('docs page loads Swagger UI for /openapi.json', async () => {
    const response = await fetch(`${server.url}/docs`);
    assert.equal(response.status, 200);
    assert.match(response.headers.get('content-type') ?? '', /^text\/html/);
    const html = await response.text();
    assert.match(html, /swagger-ui/);
    assert.match(html, /url: ?['"]\/openapi\.json['"]/);
  });
});
