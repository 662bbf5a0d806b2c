/**
 * GET /docs: Swagger UI for the OpenAPI document served at /openapi.json. The page is left out of
 * the OpenAPI document itself and needs no API key because it contains no data.
 */

import type { OpenAPIHono } from '@hono/zod-openapi';
import { swaggerUI } from '@hono/swagger-ui';
import type { AppEnv } from './env.js';

export const docsPath = '/docs';

export function registerDocs(app: OpenAPIHono<AppEnv>): void {
  // NOTE: @hono/swagger-ui 0.6 loads the Swagger UI scripts and styles from cdn.jsdelivr.net, so the
  // page renders only in a browser that can reach that CDN. /openapi.json works offline.
  app.get(docsPath, swaggerUI({ url: '/openapi.json', title: 'stylegan-serve API', persistAuthorization: true }));
}
