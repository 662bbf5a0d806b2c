/** GET /models and GET /models/{name}: the loaded models with their architecture and source. */

import { createRoute, z, type OpenAPIHono } from '@hono/zod-openapi';
import type { ModelInfo } from '../runtime/contract.js';
import type { AppEnv } from './env.js';
import { problemResponses } from './problem.js';
import { requireModel } from './request-context.js';
import { ModelNameSchema } from './schemas.js';

export const ModelSchema = z
  .object({
    name: z.string(),
    default: z.boolean(),
    resolution: z.number().int(),
    img_channels: z.number().int(),
    z_dim: z.number().int(),
    w_dim: z.number().int(),
    c_dim: z.number().int(),
    num_ws: z.number().int(),
    mapping_layers: z.number().int(),
    channels: z.record(z.string(), z.number().int()),
    conv_clamp: z.number().nullable(),
    architecture: z.string(),
    w_avg_source: z.enum(['checkpoint', 'estimated']),
    source: z.object({
      format: z.string(),
      file: z.string(),
      sha256: z.string().nullable(),
      bytes: z.number().nullable(),
    }),
    converter_version: z.number().int(),
  })
  .openapi('Model');

export function describeModel(model: ModelInfo, defaultModel: string): z.infer<typeof ModelSchema> {
  const { arch, source } = model.manifest;
  return {
    name: model.name,
    default: model.name === defaultModel,
    resolution: arch.resolution,
    img_channels: arch.imgChannels,
    z_dim: arch.zDim,
    w_dim: arch.wDim,
    c_dim: arch.cDim,
    num_ws: arch.numWs,
    mapping_layers: arch.mappingLayers,
    channels: Object.fromEntries(Object.entries(arch.channels).map(([res, ch]) => [String(res), ch])),
    conv_clamp: arch.convClamp,
    architecture: arch.architecture,
    w_avg_source: model.manifest.wAvgSource,
    source: { format: source.format, file: source.file, sha256: source.sha256, bytes: source.bytes },
    converter_version: model.manifest.converterVersion,
  };
}

const listRoute = createRoute({
  method: 'get',
  path: '/models',
  operationId: 'listModels',
  summary: 'List the loaded models',
  responses: {
    200: { description: 'Loaded models', content: { 'application/json': { schema: z.object({ models: z.array(ModelSchema) }) } } },
    ...problemResponses(401),
  },
});

const getRoute = createRoute({
  method: 'get',
  path: '/models/{name}',
  operationId: 'getModel',
  summary: 'Describe one model',
  request: { params: z.object({ name: ModelNameSchema.openapi({ param: { name: 'name', in: 'path' } }) }) },
  responses: {
    200: { description: 'The model', content: { 'application/json': { schema: ModelSchema } } },
    ...problemResponses(401, 404, 422),
  },
});

export function registerModels(app: OpenAPIHono<AppEnv>): void {
  app.openapi(listRoute, (c) => {
    const defaultModel = c.get('settings').defaultModel;
    return c.json({ models: c.get('service').models().map((m) => describeModel(m, defaultModel)) }, 200);
  });
  app.openapi(getRoute, (c) => {
    const model = requireModel(c, c.req.valid('param').name);
    return c.json(describeModel(model, c.get('settings').defaultModel), 200);
  });
}
