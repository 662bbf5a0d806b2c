/**
 * Writes openapi.yaml from the route definitions (`npm run openapi`). The test suite fails when the
 * committed file differs from what this script would write, so never edit openapi.yaml by hand.
 */

import { writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { renderOpenApiYaml } from '../src/openapi-yaml.js';

const target = fileURLToPath(new URL('../openapi.yaml', import.meta.url));
writeFileSync(target, renderOpenApiYaml());
process.stdout.write(`wrote ${target}\n`);
