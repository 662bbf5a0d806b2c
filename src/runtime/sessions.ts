/**
 * Opens ONNX Runtime sessions. Imported only by the inference worker: `InferenceSession.create` and
 * `run` are synchronous native calls that block the thread they run on (onnxruntime-node 1.31.1).
 */

import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';

import { InferenceSession } from 'onnxruntime-node';

import type { SessionConfig } from './config.js';

export type ProviderName = 'cpu' | 'cuda';

export interface OpenedSession {
  session: InferenceSession;
  provider: ProviderName;
  /** Why this provider: the configured one, or the CUDA error that made `auto` fall back. */
  reason: string;
}

function sessionOptions(config: SessionConfig, provider: ProviderName): InferenceSession.SessionOptions {
  return {
    executionProviders: provider === 'cuda' ? [{ name: 'cuda', deviceId: config.deviceId }] : ['cpu'],
    intraOpNumThreads: config.intraOpNumThreads,
    interOpNumThreads: 1,
    executionMode: 'sequential',
    graphOptimizationLevel: 'all',
    // Idle ORT threads sleep instead of spinning, so they leave the cores to Node and sharp.
    extra: { session: { intra_op: { allow_spinning: '0' } } },
  };
}

/**
 * Opens `path`. With `auto`, the first call tries CUDA and falls back to CPU; later calls pass the
 * provider it settled on as `fixed`, so all sessions of a worker use the same one.
 */
export async function openSession(path: string, config: SessionConfig, fixed?: ProviderName): Promise<OpenedSession> {
  const requested = fixed ?? config.executionProvider;
  if (requested === 'cpu') {
    return { session: await InferenceSession.create(path, sessionOptions(config, 'cpu')), provider: 'cpu', reason: fixed ? 'same provider as the first session' : 'configured cpu' };
  }
  if (requested === 'cuda') {
    try {
      return { session: await InferenceSession.create(path, sessionOptions(config, 'cuda')), provider: 'cuda', reason: 'configured cuda' };
    } catch (err) {
      const providerLibrary = join(dirname(createRequire(import.meta.url).resolve('onnxruntime-node')), '..', 'bin', 'napi-v6', process.platform, process.arch, 'libonnxruntime_providers_cuda.so');
      const missing = existsSync(providerLibrary)
        ? 'the CUDA provider library is installed, so CUDA 12, cuDNN 9 or the GPU driver is missing from the library path'
        : `${providerLibrary} is missing: install it with ONNXRUNTIME_NODE_INSTALL=cuda12 node node_modules/onnxruntime-node/script/install.js`;
      throw new Error(
        `cannot open ${path} with the CUDA execution provider: ${(err as Error).message.split('\n')[0]}; ${missing}. ` +
          'Or start with --execution-provider cpu (or auto to fall back to the CPU).',
      );
    }
  }
  try {
    return { session: await InferenceSession.create(path, sessionOptions(config, 'cuda')), provider: 'cuda', reason: 'auto: CUDA loaded' };
  } catch (err) {
    const session = await InferenceSession.create(path, sessionOptions(config, 'cpu'));
    return { session, provider: 'cpu', reason: `auto: CUDA unavailable (${(err as Error).message.split('\n')[0]}), using CPU` };
  }
}

/** Throws unless the session has exactly the expected input names (in any order) and the output. */
export function assertSessionIo(session: InferenceSession, path: string, inputs: string[], output: string): void {
  const actual = [...session.inputNames].sort();
  const expected = [...inputs].sort();
  if (actual.join(',') !== expected.join(',')) {
    throw new Error(`graph ${path} has inputs [${actual.join(', ')}], model.json implies [${expected.join(', ')}]; re-run the converter`);
  }
  if (!session.outputNames.includes(output)) {
    throw new Error(`graph ${path} has outputs [${session.outputNames.join(', ')}], expected ${output}; re-run the converter`);
  }
}
