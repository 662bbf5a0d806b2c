import { writeModelFolder } from '/work/main/src/graph/convert.js';
import { paper256Arch, randomGeneratorWeights } from '/work/main/src/graph/random-weights.js';
let t = performance.now();
const w = randomGeneratorWeights(paper256Arch, 1);
console.log('weights', performance.now() - t); t = performance.now();
await writeModelFolder({ ...w, wAvgSource: 'mapping' as never }, { name: 'paper256', modelsDir: '/tmp/bench-models', source: { file: 'random', sha256: null, bytes: null }, overwrite: true, onProgress: (e) => console.log(e.stage, (performance.now() - t).toFixed(0)) });
