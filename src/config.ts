/**
 * Server settings: one table lists every setting with its CLI flag, environment variable, default
 * and meaning. `loadServerConfig` reads flags first, then the environment, then defaults, validates
 * every value at start and reports all problems at once.
 */

import { resolve } from 'node:path';
import { z } from 'zod';

interface SettingSpec {
  flag: string;
  env: string;
  description: string;
  schema: z.ZodType;
  secret?: boolean;
}

const int = (min: number, max = Number.MAX_SAFE_INTEGER) => z.coerce.number().int().min(min).max(max);
/** Largest delay Node's timers accept (2^31 − 1 ms, about 24.8 days); longer ones fire at once. */
const maxTimerMs = 2_147_483_647;
const list = z.preprocess(
  (v) => (typeof v === 'string' ? v.split(',').map((s) => s.trim()).filter(Boolean) : v),
  z.array(z.string()),
);

/** Every server setting. Units are in the names (Ms, Bytes) and the descriptions. */
export const settingSpecs = {
  port: { flag: 'port', env: 'PORT', description: 'TCP port to listen on', schema: int(0, 65535).default(8080) },
  host: { flag: 'host', env: 'HOST', description: 'Address to bind', schema: z.string().min(1).default('0.0.0.0') },
  modelsDir: {
    flag: 'models-dir',
    env: 'MODELS_DIR',
    description: 'Folder with one sub-folder per converted model',
    schema: z.string().min(1).default('models'),
  },
  models: {
    flag: 'models',
    env: 'MODELS',
    description: 'Comma-separated model names to load; empty loads every model in the models folder',
    schema: list.default([]),
  },
  defaultModel: {
    flag: 'model',
    env: 'MODEL',
    description: 'Model used when a request names none (also loaded when --models is set)',
    schema: z.string().min(1).default('sample'),
  },
  logLevel: {
    flag: 'log-level',
    env: 'LOG_LEVEL',
    description: 'pino log level: trace, debug, info, warn, error, fatal or silent',
    schema: z.enum(['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent']).default('info'),
  },
  apiKeys: {
    flag: 'api-keys',
    env: 'API_KEYS',
    description: 'Comma-separated bearer tokens; when set, every route except health, /metrics, /openapi.json and the pages (/, /docs) needs one',
    schema: list.default([]),
    secret: true,
  },
  corsOrigins: {
    flag: 'cors-origins',
    env: 'CORS_ORIGINS',
    description: 'Comma-separated origins allowed to call the API from a browser (CORS), or * for any; empty sends no CORS headers',
    schema: list.pipe(z.array(z.union([z.literal('*'), z.url({ protocol: /^https?$/ }).regex(/^[^/]+\/\/[^/]+$/, 'expected an origin such as https://example.com, without a path')]))).default([]),
  },
  maxBodyBytes: { flag: 'max-body-bytes', env: 'MAX_BODY_BYTES', description: 'Largest request body, in bytes', schema: int(1024).default(16 << 20) },
  maxImagesPerRequest: {
    flag: 'max-images-per-request',
    env: 'MAX_IMAGES_PER_REQUEST',
    description: 'Most images one /generate request may ask for',
    schema: int(1).default(64),
  },
  maxGridCells: {
    flag: 'max-grid-cells',
    env: 'MAX_GRID_CELLS',
    description: 'Most row×column images one /mix request may ask for',
    schema: int(1).default(64),
  },
  maxFrames: {
    flag: 'max-frames',
    env: 'MAX_FRAMES',
    description: 'Most frames one /interpolate request may ask for',
    schema: int(1).default(600),
  },
  maxOutputPixels: {
    flag: 'max-output-pixels',
    env: 'MAX_OUTPUT_PIXELS',
    description: 'Most pixels one response may hold (frames × width × height, or a grid), bounding memory',
    schema: int(1).default(64 * 1024 * 1024),
  },
  maxProjectSteps: {
    flag: 'max-project-steps',
    env: 'MAX_PROJECT_STEPS',
    description: 'Most optimisation steps one /project request may ask for',
    schema: int(1).default(1000),
  },
  maxUploadBytes: {
    flag: 'max-upload-bytes',
    env: 'MAX_UPLOAD_BYTES',
    description: 'Largest /project upload body, in bytes (also capped by --max-body-bytes)',
    schema: int(1024).default(10 << 20),
  },
  maxUploadPixels: {
    flag: 'max-upload-pixels',
    env: 'MAX_UPLOAD_PIXELS',
    description: 'Most pixels (width × height) an uploaded image may have, checked from its header before decoding',
    schema: int(1).default(40_000_000),
  },
  maxProjectJobs: {
    flag: 'max-project-jobs',
    env: 'MAX_PROJECT_JOBS',
    description: 'Most projections (streamed or async) running at once; more get 429',
    schema: int(1).default(4),
  },
  projectJobTtlMs: {
    flag: 'project-job-ttl-ms',
    env: 'PROJECT_JOB_TTL_MS',
    description: 'How long a finished async projection job and its result are kept, in ms',
    schema: int(1000, maxTimerMs).default(3_600_000),
  },
  imageCacheBytes: {
    flag: 'image-cache-bytes',
    env: 'IMAGE_CACHE_BYTES',
    description: 'Memory for cached single-image /generate responses, in bytes; 0 disables the cache',
    schema: int(0).default(64 << 20),
  },
  maxBatch: { flag: 'max-batch', env: 'MAX_BATCH', description: 'Largest inference batch, in images', schema: int(1, 256).default(8) },
  maxQueueDelayMs: {
    flag: 'max-queue-delay-ms',
    env: 'MAX_QUEUE_DELAY_MS',
    description: 'How long to wait for a fuller batch, in ms',
    schema: int(0, 10_000).default(5),
  },
  maxQueuedImages: {
    flag: 'max-queued-images',
    env: 'MAX_QUEUED_IMAGES',
    description: 'Images waiting over all requests before new requests get 429',
    schema: int(1).default(256),
  },
  defaultTimeoutMs: {
    flag: 'default-timeout-ms',
    env: 'DEFAULT_TIMEOUT_MS',
    description: 'Request deadline when the client gives none, in ms',
    schema: int(1, maxTimerMs).default(60_000),
  },
  maxTimeoutMs: {
    flag: 'max-timeout-ms',
    env: 'MAX_TIMEOUT_MS',
    description: 'Maximum deadline a client may request, in ms',
    schema: int(1, maxTimerMs).default(600_000),
  },
  drainTimeoutMs: {
    flag: 'drain-timeout-ms',
    env: 'DRAIN_TIMEOUT_MS',
    description: 'On SIGTERM, how long in-flight requests may take before the process exits, in ms',
    schema: int(0, maxTimerMs).default(30_000),
  },
  executionProvider: {
    flag: 'execution-provider',
    env: 'EXECUTION_PROVIDER',
    description: 'ONNX Runtime execution provider: cpu, cuda, or auto (CUDA when it loads, else CPU)',
    schema: z.enum(['cpu', 'cuda', 'auto']).default('cpu'),
  },
  precision: {
    flag: 'precision',
    env: 'PRECISION',
    description: 'Synthesis graph precision: fp32, or fp16 (synthesis_fp16.onnx from convert --fp16; meant for GPUs, slower on the CPU)',
    schema: z.enum(['fp32', 'fp16']).default('fp32'),
  },
  intraOpThreads: {
    flag: 'intra-op-threads',
    env: 'INTRA_OP_THREADS',
    description: 'ONNX Runtime threads per inference worker; 0 uses the available cores',
    schema: int(0, 1024).default(0),
  },
  workers: { flag: 'workers', env: 'WORKERS', description: 'Inference worker threads', schema: int(1, 64).default(1) },
  splitBatches: {
    flag: 'split-batches',
    env: 'SPLIT_BATCHES',
    description:
      'auto: on the CPU provider, run synthesis batches as single-image runs when start-up timing shows them faster per image; on: always; off: never',
    schema: z.enum(['auto', 'on', 'off']).default('auto'),
  },
  pngCompressionLevel: {
    flag: 'png-compression-level',
    env: 'PNG_COMPRESSION_LEVEL',
    description: 'zlib level for PNG output, 0 (fastest) to 9 (smallest); 1 encodes about twice as fast as 6 for files about 15% larger',
    schema: int(0, 9).default(1),
  },
  webpEffort: {
    flag: 'webp-effort',
    env: 'WEBP_EFFORT',
    description: 'WebP encoder effort, 0 (fastest) to 6 (smallest)',
    schema: int(0, 6).default(0),
  },
} satisfies Record<string, SettingSpec>;

type Specs = typeof settingSpecs;
export type ServerConfig = { [K in keyof Specs]: z.output<Specs[K]['schema']> };

export class ConfigError extends Error {
  override name = 'ConfigError';
}

/**
 * Resolves every setting from `flags` (parsed CLI values keyed by flag name), then `env`, then the
 * default. Throws a ConfigError listing every invalid setting with its flag, variable and value.
 */
export function loadServerConfig(flags: Record<string, string | undefined>, env: NodeJS.ProcessEnv = process.env): ServerConfig {
  const out: Record<string, unknown> = {};
  const problems: string[] = [];
  for (const [key, spec] of Object.entries(settingSpecs) as [string, SettingSpec][]) {
    // An empty environment variable counts as unset (a common container default); an empty flag is an error.
    const fromFlag = flags[spec.flag];
    const raw = fromFlag ?? (env[spec.env] === '' ? undefined : env[spec.env]);
    if (fromFlag !== undefined && fromFlag.trim() === '') {
      problems.push(`--${spec.flag} is empty: give a value or leave the flag out for the default`);
      continue;
    }
    if (spec.secret && raw !== undefined && raw.split(',').every((part) => part.trim() === '')) {
      problems.push(`--${spec.flag} / ${spec.env} is set but contains no key: give comma-separated keys, or unset it to disable auth`);
      continue;
    }
    const parsed = spec.schema.safeParse(raw);
    if (parsed.success) {
      out[key] = parsed.data;
    } else {
      const shown = spec.secret ? '<redacted>' : JSON.stringify(raw);
      problems.push(`--${spec.flag} / ${spec.env} = ${shown}: ${parsed.error.issues.map((i) => i.message).join('; ')}`);
    }
  }
  const config = out as ServerConfig;
  if (problems.length === 0 && config.defaultTimeoutMs > config.maxTimeoutMs) {
    problems.push(`--default-timeout-ms ${config.defaultTimeoutMs} exceeds --max-timeout-ms ${config.maxTimeoutMs}`);
  }
  if (problems.length > 0) throw new ConfigError(`invalid settings:\n  ${problems.join('\n  ')}`);
  config.modelsDir = resolve(config.modelsDir);
  return config;
}

/** Returns the configuration with secrets replaced, for the start-up log. */
export function redactConfig(config: ServerConfig): Record<string, unknown> {
  const shown: Record<string, unknown> = { ...config };
  for (const [key, spec] of Object.entries(settingSpecs) as [string, SettingSpec][]) {
    if (spec.secret) shown[key] = (config[key as keyof ServerConfig] as string[]).length > 0 ? '<redacted>' : [];
  }
  return shown;
}

/** Help text for `serve --help`: one line per setting with flag, variable and default. */
export function settingsHelp(): string {
  return (Object.entries(settingSpecs) as [string, SettingSpec][])
    .map(([, spec]) => {
      const fallback = spec.schema.safeParse(undefined);
      const shown = fallback.success ? JSON.stringify(fallback.data) : 'required';
      return `  --${spec.flag.padEnd(24)} ${spec.env.padEnd(24)} ${spec.description} (default ${shown})`;
    })
    .join('\n');
}
