/**
 * Profiles one synthesis graph with ONNX Runtime's built-in profiler and prints the time per op
 * type and the slowest nodes, summed over the timed runs.
 *
 *   npx tsx bench/profile.ts [--config paper256|f1024] [--batch N] [--runs N] [--form two-step|folded]
 */

import { mkdtempSync, readdirSync as readdirSyncSafe, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';

import { InferenceSession, Tensor } from 'onnxruntime-node';

import { noiseLayers } from '../src/graph/layers.js';
import { configF1024Arch, paper256Arch, randomGeneratorWeights } from '../src/graph/random-weights.js';
import { buildSynthesisGraph, type UpsampleConvForm } from '../src/graph/synthesis.js';
import { benchZ } from './lib/model-sessions.js';

interface TraceEvent {
  cat: string;
  name: string;
  dur: number;
  args?: { op_name?: string };
}

const { values } = parseArgs({
  options: {
    config: { type: 'string', default: 'paper256' },
    batch: { type: 'string', default: '1' },
    runs: { type: 'string', default: '3' },
    form: { type: 'string', default: 'two-step' },
    top: { type: 'string', default: '15' },
  },
});
const batch = Number(values.batch);
const runs = Number(values.runs);
const weights = randomGeneratorWeights(values.config === 'f1024' ? configF1024Arch : paper256Arch, 1);
const { arch } = weights;

const folder = mkdtempSync(path.join(tmpdir(), 'stylegan-profile-'));
const modelPath = path.join(folder, 'synthesis.onnx');
writeFileSync(modelPath, buildSynthesisGraph(weights, { upsampleConv: values.form as UpsampleConvForm }));

const options: InferenceSession.SessionOptions = {
  executionProviders: ['cpu'],
  intraOpNumThreads: 2,
  interOpNumThreads: 1,
  executionMode: 'sequential',
  graphOptimizationLevel: 'all',
  extra: { session: { intra_op: { allow_spinning: '0' } } },
};
const feeds: Record<string, Tensor> = {
  ws: new Tensor('float32', benchZ(batch * arch.numWs * arch.wDim, 1), [batch, arch.numWs, arch.wDim]),
};
for (const layer of noiseLayers(arch)) {
  feeds[layer.name] = new Tensor('float32', new Float32Array(layer.resolution ** 2), [1, 1, layer.resolution, layer.resolution]);
}

// Warm up without the profiler, so the trace holds only steady-state runs.
const plain = await InferenceSession.create(modelPath, options);
await plain.run(feeds);
await plain.release();

const profiled = await InferenceSession.create(modelPath, { ...options, enableProfiling: true, profileFilePrefix: path.join(folder, 'trace') });
await profiled.run(feeds);
const started = performance.now();
for (let i = 0; i < runs; i++) await profiled.run(feeds);
const wallMs = (performance.now() - started) / runs;
profiled.endProfiling();
await profiled.release();

const traceFile = readdirTrace(folder);
const events = JSON.parse(readFileSync(traceFile, 'utf8')) as TraceEvent[];
const nodeEvents = events.filter((e) => e.cat === 'Node' && e.name.endsWith('_kernel_time'));
const byOp = new Map<string, number>();
const byNode = new Map<string, number>();
for (const e of nodeEvents) {
  const op = e.args?.op_name ?? '?';
  byOp.set(op, (byOp.get(op) ?? 0) + e.dur);
  const node = `${e.name.replace(/_kernel_time$/, '')} (${op})`;
  byNode.set(node, (byNode.get(node) ?? 0) + e.dur);
}
const totalUs = [...byOp.values()].reduce((a, b) => a + b, 0);
// The trace also holds the first (unmeasured) profiled run, so divide by runs + 1.
const perRunMs = (us: number) => us / 1000 / (runs + 1);
console.log(`${values.config} batch ${batch} ${values.form}: wall ${wallMs.toFixed(1)} ms/run, kernel sum ${perRunMs(totalUs).toFixed(1)} ms/run`);
for (const [op, us] of [...byOp].sort((a, b) => b[1] - a[1])) {
  console.log(`  ${op.padEnd(24)} ${perRunMs(us).toFixed(1).padStart(8)} ms  ${((100 * us) / totalUs).toFixed(1).padStart(5)}%`);
}
console.log('slowest nodes:');
for (const [node, us] of [...byNode].sort((a, b) => b[1] - a[1]).slice(0, Number(values.top))) {
  console.log(`  ${node.padEnd(60)} ${perRunMs(us).toFixed(1).padStart(8)} ms`);
}
rmSync(folder, { recursive: true, force: true });

function readdirTrace(dir: string): string {
  const name = readdirSyncSafe(dir).find((file) => file.startsWith('trace') && file.endsWith('.json'));
  if (!name) throw new Error(`no profiler trace found in ${dir}`);
  return path.join(dir, name);
}
