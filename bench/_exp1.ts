import { configF1024Arch, paper256Arch, randomGeneratorWeights } from '../src/graph/random-weights.js';
import { openBenchModel, generateBatch } from './lib/model-sessions.js';
const big = process.argv[3] === 'f1024';
const w = randomGeneratorWeights(big ? configF1024Arch : paper256Arch, 1);
const form = (process.argv[2] ?? 'two-step') as 'two-step';
const m = await openBenchModel(w, { graph: { upsampleConv: form } });
for (const b of big ? [1] : [1, 4]) {
  await generateBatch(m, b);
  const t: number[] = [];
  for (let i = 0; i < (big ? 2 : 4); i++) { const s = performance.now(); await generateBatch(m, b); t.push((performance.now() - s) / b); }
  console.log(form, b, t.map((x) => x.toFixed(0)).join(' '));
}
await m.close();
