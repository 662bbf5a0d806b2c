/**
 * GET /: a small browser page to try the models (generate, style mixing, interpolation). It is
 * plain HTML and JavaScript from `public/`, served as is with no build step, and left out of the
 * OpenAPI document. The page calls the JSON API from the browser, so it sends the API key the user
 * types in; the page itself needs none.
 */

import { readFileSync } from 'node:fs';
import type { OpenAPIHono } from '@hono/zod-openapi';
import type { AppEnv } from './env.js';

/** `public/` at the repository root, which is `../../public/` from both `src/routes/` and `dist/routes/`. */
const publicDir = new URL('../../public/', import.meta.url);

const assets = [
  { path: '/', file: 'playground.html', contentType: 'text/html; charset=utf-8' },
  { path: '/playground.js', file: 'playground.js', contentType: 'text/javascript; charset=utf-8' },
] as const;

export const playgroundPaths: string[] = assets.map((asset) => asset.path);

export function registerPlayground(app: OpenAPIHono<AppEnv>): void {
  for (const asset of assets) {
    // Read once at start-up, so a missing file fails the start and not the first page view.
    const body = readFileSync(new URL(asset.file, publicDir), 'utf8');
    app.get(asset.path, (c) => c.body(body, 200, { 'Content-Type': asset.contentType, 'Cache-Control': 'no-cache' }));
  }
}
