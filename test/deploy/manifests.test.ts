/**
 * Static checks of the deployment files, because no Docker engine or cluster runs in the tests.
 * The Knative Service and KServe InferenceService are checked against zod schemas of the fields
 * we rely on, and their settings against the server's own validation. The Dockerfile is checked
 * for its stages, paths and settings.
 */

import assert from 'node:assert/strict';
import { accessSync, constants, existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { parseAllDocuments } from 'yaml';
import { z } from 'zod';
import { healthPaths } from '../../src/routes/health.js';
import { loadServerConfig, settingSpecs } from '../../src/config.js';
import { repoRoot } from '../helpers/server.js';

const containerPort = 8080;
/** Knative's queue-proxy drains for about 30 s before the user container gets SIGTERM. */
const queueProxyDrainSeconds = 30;
/** Variables read by deploy/entrypoint.sh rather than by `serve`. */
const entrypointVariables = ['CHECKPOINT_URL', 'CHECKPOINT_SHA256', 'MODEL_NAME', 'STYLEGAN_SERVE_CLI'];
const serverVariables = Object.values(settingSpecs).map((spec) => spec.env);

const EnvVar = z.union([
  z.object({ name: z.string(), value: z.string() }).strict(),
  z.object({ name: z.string(), valueFrom: z.object({ secretKeyRef: z.object({ name: z.string(), key: z.string(), optional: z.boolean().optional() }) }) }).strict(),
]);

const HttpProbe = z.object({
  httpGet: z.object({ path: z.string().refine((path) => healthPaths.includes(path), 'not a health route of the server'), port: z.literal(containerPort) }),
  periodSeconds: z.number().int().positive(),
  failureThreshold: z.number().int().positive(),
  initialDelaySeconds: z.number().int().nonnegative().optional(),
});

const Container = z.object({
  name: z.string().min(1),
  image: z.string().min(1),
  ports: z.array(z.object({ name: z.literal('http1'), containerPort: z.literal(containerPort), protocol: z.literal('TCP').optional() })).length(1),
  env: z.array(EnvVar),
  readinessProbe: HttpProbe,
  livenessProbe: HttpProbe,
  resources: z.object({
    requests: z.object({ cpu: z.string(), memory: z.string() }),
    limits: z.object({ memory: z.string(), 'nvidia.com/gpu': z.literal('1') }),
  }),
  securityContext: z.object({ runAsNonRoot: z.literal(true), runAsUser: z.literal(10001) }).passthrough(),
  volumeMounts: z.array(z.object({ name: z.string(), mountPath: z.string() })).optional(),
});

const KnativeService = z.object({
  apiVersion: z.literal('serving.knative.dev/v1'),
  kind: z.literal('Service'),
  metadata: z.object({ name: z.string() }).passthrough(),
  spec: z.object({
    template: z.object({
      metadata: z.object({
        annotations: z.object({
          'autoscaling.knative.dev/class': z.literal('kpa.autoscaling.knative.dev'),
          'autoscaling.knative.dev/metric': z.literal('concurrency'),
          'autoscaling.knative.dev/target': z.string().regex(/^\d+$/),
          'autoscaling.knative.dev/min-scale': z.string().regex(/^\d+$/),
          'autoscaling.knative.dev/max-scale': z.string().regex(/^\d+$/),
        }).passthrough(),
      }).passthrough(),
      // strict: Knative rejects terminationGracePeriodSeconds here and derives it from timeoutSeconds.
      spec: z.object({
        containerConcurrency: z.number().int().positive(),
        timeoutSeconds: z.number().int().positive(),
        containers: z.array(Container).length(1),
      }).strict(),
    }),
  }),
});

const InferenceService = z.object({
  apiVersion: z.literal('serving.kserve.io/v1beta1'),
  kind: z.literal('InferenceService'),
  metadata: z.object({
    name: z.string(),
    annotations: z.object({ 'serving.kserve.io/deploymentMode': z.literal('Serverless') }).passthrough(),
  }),
  spec: z.object({
    predictor: z.object({
      minReplicas: z.number().int().nonnegative(),
      maxReplicas: z.number().int().positive(),
      scaleMetric: z.literal('concurrency'),
      scaleTarget: z.number().int().positive(),
      containerConcurrency: z.number().int().positive(),
      timeout: z.number().int().positive(),
      containers: z.array(Container.extend({ name: z.literal('kserve-container') })).length(1),
      volumes: z.array(z.object({ name: z.string(), emptyDir: z.object({ sizeLimit: z.string() }) })).optional(),
    }).strict(),
  }),
});

function loadYaml(file: string): unknown {
  const documents = parseAllDocuments(readFileSync(join(repoRoot, 'deploy', file), 'utf8'));
  assert.equal(documents.length, 1, `${file} should hold one document`);
  assert.deepEqual(documents[0].errors, []);
  return documents[0].toJS();
}

/** Checks that every variable is known and that `serve` accepts the values as its own settings. */
function checkServerSettings(env: z.infer<typeof EnvVar>[]) {
  const plain: Record<string, string> = {};
  for (const variable of env) {
    assert.ok(
      serverVariables.includes(variable.name) || entrypointVariables.includes(variable.name),
      `${variable.name} is neither a server setting nor an entrypoint variable`,
    );
    if ('value' in variable) plain[variable.name] = variable.value;
  }
  return loadServerConfig({}, plain);
}

function checkTimeouts(terminationGraceSeconds: number, config: ReturnType<typeof loadServerConfig>) {
  const needed = queueProxyDrainSeconds + config.maxTimeoutMs / 1000 + config.drainTimeoutMs / 1000;
  assert.ok(terminationGraceSeconds > needed, `timeout ${terminationGraceSeconds} s must exceed ${needed} s (queue-proxy drain + MAX_TIMEOUT_MS + DRAIN_TIMEOUT_MS)`);
  assert.ok(config.defaultTimeoutMs <= config.maxTimeoutMs);
}

describe('Knative Service', () => {
  const service = KnativeService.parse(loadYaml('knative-service.yaml'));
  const spec = service.spec.template.spec;
  const container = spec.containers[0];

  test('settings are valid server settings', () => {
    const config = checkServerSettings(container.env);
    assert.equal(config.executionProvider, 'cuda');
    checkTimeouts(spec.timeoutSeconds, config);
  });

  test('hard concurrency limit is above the autoscaling target', () => {
    const target = Number(service.spec.template.metadata.annotations['autoscaling.knative.dev/target']);
    assert.ok(spec.containerConcurrency >= target);
  });

  test('readiness uses the readiness route', () => {
    assert.equal(container.readinessProbe.httpGet.path, '/health/ready');
    assert.equal(container.livenessProbe.httpGet.path, '/health/live');
  });
});

describe('KServe InferenceService', () => {
  const service = InferenceService.parse(loadYaml('kserve-inferenceservice.yaml'));
  const predictor = service.spec.predictor;
  const container = predictor.containers[0];

  test('settings are valid server settings', () => {
    const config = checkServerSettings(container.env);
    assert.equal(config.executionProvider, 'cuda');
    checkTimeouts(predictor.timeout, config);
    const modelsMount = container.volumeMounts?.find((mount) => mount.mountPath === config.modelsDir);
    assert.ok(modelsMount, `no volume mounted at MODELS_DIR ${config.modelsDir}`);
    assert.ok(predictor.volumes?.some((volume) => volume.name === modelsMount.name));
  });

  test('checkpoint variables come together', () => {
    const names = container.env.map((variable) => variable.name);
    assert.ok(names.includes('CHECKPOINT_URL'));
    assert.ok(names.includes('MODEL_NAME'), 'the entrypoint needs MODEL_NAME with CHECKPOINT_URL');
    assert.ok(names.includes('CHECKPOINT_SHA256'));
  });

  test('probes use the KServe v2 health routes', () => {
    assert.equal(container.readinessProbe.httpGet.path, '/v2/health/ready');
    assert.equal(container.livenessProbe.httpGet.path, '/v2/health/live');
  });
});

describe('Dockerfile', () => {
  const dockerfile = readFileSync(join(repoRoot, 'Dockerfile'), 'utf8');
  // Join continuation lines so each instruction is one line.
  const instructions = dockerfile
    .replace(/\\\n/g, ' ')
    .split('\n')
    .map((line) => line.trim())
    .filter((line) => line !== '' && !line.startsWith('#'));
  const withKeyword = (keyword: string) => instructions.filter((line) => line.startsWith(`${keyword} `));

  test('has build and runtime stages on a CUDA 12 cuDNN 9 base', () => {
    assert.ok(withKeyword('FROM').length >= 3);
    assert.match(dockerfile, /ARG CUDA_IMAGE=nvidia\/cuda:12\.\d+\.\d+-cudnn-runtime-ubuntu24\.04/);
    assert.match(dockerfile, /ARG NODE_IMAGE=node:20-/);
    assert.ok(withKeyword('FROM').some((line) => /^FROM \$\{CUDA_IMAGE\} AS runtime$/.test(line)));
  });

  test('installs the CUDA provider and checks its libraries', () => {
    assert.match(dockerfile, /node node_modules\/onnxruntime-node\/script\/install\.js/);
    assert.match(dockerfile, /ldd "\$provider"/);
    assert.match(dockerfile, /grep "not found"/);
  });

  test('runs as a non-root user with a models volume and a health check', () => {
    const users = withKeyword('USER');
    assert.deepEqual(users, ['USER app']);
    assert.deepEqual(withKeyword('VOLUME'), ['VOLUME ["/models"]']);
    const healthcheck = withKeyword('HEALTHCHECK');
    assert.equal(healthcheck.length, 1);
    const path = /\/health\/[a-z]+/.exec(healthcheck[0])?.[0];
    assert.ok(path, 'HEALTHCHECK calls no /health route');
    assert.ok(healthPaths.includes(path), `HEALTHCHECK path ${path} is not a health route`);
  });

  test('copied files exist and the entrypoint is executable', () => {
    for (const line of withKeyword('COPY').filter((copy) => !copy.includes('--from='))) {
      const sources = line.split(/\s+/).slice(1, -1).filter((word) => !word.startsWith('--'));
      for (const source of sources) assert.ok(existsSync(join(repoRoot, source)), `COPY source ${source} is missing`);
    }
    accessSync(join(repoRoot, 'deploy', 'entrypoint.sh'), constants.X_OK);
    assert.deepEqual(withKeyword('ENTRYPOINT'), ['ENTRYPOINT ["/usr/local/bin/stylegan-serve-entrypoint"]']);
  });

  test('environment names are server settings', () => {
    const env = withKeyword('ENV').join(' ');
    for (const [, name] of env.matchAll(/([A-Z_]+)=/g)) {
      assert.ok(serverVariables.includes(name) || name === 'NODE_ENV', `${name} is not a server setting`);
    }
  });

  test('.dockerignore keeps the build inputs', () => {
    const ignored = readFileSync(join(repoRoot, '.dockerignore'), 'utf8').split('\n').map((line) => line.trim());
    for (const needed of ['src', 'public', 'package.json', 'package-lock.json', 'deploy/entrypoint.sh', 'tsconfig.json']) {
      assert.ok(!ignored.includes(needed), `${needed} is ignored but the Dockerfile copies it`);
    }
    assert.ok(ignored.includes('node_modules'));
  });
});
