/**
 * Writes test/client/openapi.d.ts, the TypeScript types of openapi.yaml for openapi-fetch
 * (`node --import tsx scripts/generate-client.ts`). The deploy tests fail when the committed file differs from this output.
 */

import { writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { renderClientTypes } from '../test/client/render.js';

const target = fileURLToPath(new URL('../test/client/openapi.d.ts', import.meta.url));
writeFileSync(target, await renderClientTypes());
process.stdout.write(`wrote ${target}\n`);
