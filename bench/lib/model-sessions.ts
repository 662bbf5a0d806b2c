/**
 * Builds mapping and synthesis graphs from random weights into a temporary folder and opens them
 * with the service's own `openSession` (the session options the inference worker uses), then runs
 * mapping + synthesis the way the worker does: z rows through mapping, stored noise broadcast as
 * `[1, 1, R, R]`, ws through synthesis.
 */

import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

import { Tensor, type InferenceSession } from 'onnxruntime-node';

import type { GeneratorWeights } from '../../src/checkpoint/types.js';
import { noiseLayers } from '../../src/graph/layers.js';
import { buildMappingGraph } from '../../src/graph/mapping.js';
import { buildSynthesisGraph, type SynthesisGraphOptions } from '../../src/graph/synthesis.js';
import type { SessionConfig } from '../../src/runtime/config.js';
import { openSession } from '../../src/runtime/sessions.js';

export interface BenchModel {
  weights: GeneratorWeights;
  mapping: InferenceSession;
  synthesis: InferenceSession;
  /** Stored noise per layer, `[1, 1, R, R]`. */
  noise: Record<string, Tensor>;
  folder: string;
  close(): Promise<void>;
}

export interface BenchModelOptions {
  graph?: SynthesisGraphOptions;
  session?: Partial<SessionConfig>;
  /** Synthesis graph bytes to use instead of `buildSynthesisGraph` (an fp16 variant, for example). */
  synthesisBytes?: Uint8Array;
}

export async function openBenchModel(weights: GeneratorWeights, options: BenchModelOptions = {}): Promise<BenchModel> {
  const folder = mkdtempSync(path.join(tmpdir(), 'stylegan-bench-'));
  const mappingPath = path.join(folder, 'mapping.onnx');
  const synthesisPath = path.join(folder, 'synthesis.onnx');
  writeFileSync(mappingPath, buildMappingGraph(weights));
  writeFileSync(synthesisPath, options.synthesisBytes ?? buildSynthesisGraph(weights, options.graph));
  const config: SessionConfig = { executionProvider: 'cpu', deviceId: 0, intraOpNumThreads: 2, workers: 1, ...options.session };
  const mapping = (await openSession(mappingPath, config)).session;
  const synthesis = (await openSession(synthesisPath, config)).session;

  const noise: Record<string, Tensor> = {};
  for (const layer of noiseLayers(weights.arch)) {
    const map = weights.tensors.get(`synthesis.${layer.layer}.noise_const`)?.data ?? new Float32Array(layer.resolution ** 2);
    noise[layer.name] = new Tensor('float32', Float32Array.from(map), [1, 1, layer.resolution, layer.resolution]);
  }
  return {
    weights,
    mapping,
    synthesis,
    noise,
    folder,
    async close() {
      await mapping.release();
      await synthesis.release();
      rmSync(folder, { recursive: true, force: true });
    },
  };
}

/** Deterministic standard-normal z rows `[n, zDim]` (Box-Muller on a small LCG). */
export function benchZ(n: number, zDim: number, seed = 1): Float32Array {
  const z = new Float32Array(n * zDim);
  let state = seed >>> 0;
  const uniform = () => {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    return (state + 1) / 4294967297;
  };
  for (let i = 0; i < z.length; i++) z[i] = Math.sqrt(-2 * Math.log(uniform())) * Math.cos(2 * Math.PI * uniform());
  return z;
}

/** Runs mapping (psi 0.7) then synthesis on `n` images; returns the image `[n, C, R, R]`. */
export async function generateBatch(model: BenchModel, n: number, seed = 1): Promise<Float32Array> {
  const { arch } = model.weights;
  const mapped = await model.mapping.run({
    z: new Tensor('float32', benchZ(n, arch.zDim, seed), [n, arch.zDim]),
    psi: new Tensor('float32', new Float32Array(n).fill(0.7), [n]),
    truncation_cutoff: new Tensor('int64', new BigInt64Array(n).fill(BigInt(arch.numWs)), [n]),
  });
  const out = await model.synthesis.run({ ws: mapped.ws, ...model.noise });
  return out.img.data as Float32Array;
}
