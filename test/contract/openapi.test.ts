/** The committed openapi.yaml must be exactly what `npm run openapi` writes from the routes. */

import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import { parse } from 'yaml';
import { renderOpenApiYaml } from '../../src/openapi-yaml.js';
import { repoRoot } from '../helpers/server.js';

test('openapi.yaml is up to date (run `npm run openapi` to refresh)', async () => {
  const committed = await readFile(join(repoRoot, 'openapi.yaml'), 'utf8');
  assert.equal(committed, renderOpenApiYaml());
});

test('openapi.yaml documents every route with problem+json errors', async () => {
  const doc = parse(await readFile(join(repoRoot, 'openapi.yaml'), 'utf8'));
  for (const path of ['/generate', '/models', '/models/{name}', '/health', '/health/ready', '/v2/health/ready']) {
    assert.ok(doc.paths[path], `missing ${path}`);
  }
  const generate = doc.paths['/generate'].post;
  assert.ok(generate.responses['422'].content['application/problem+json']);
  assert.ok(generate.responses['200'].content['image/png']);
  assert.ok(doc.components.schemas.Problem);
});
