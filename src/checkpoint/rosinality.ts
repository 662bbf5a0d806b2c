/**
 * rosinality/stylegan2-pytorch checkpoints: a torch.save dict (zip or legacy format) holding the
 * `g_ema` state dict and, in converted checkpoints, `latent_avg`. Trained checkpoints also hold `g`,
 * `d`, optimizer states and `args` (an argparse.Namespace).
 *
 * Name mapping to the canonical (stylegan2-ada-pytorch) names, with n = log2(R) - 2 upsampling blocks:
 *   style.{i+1}                -> mapping.fc{i}          (style.0 is PixelNorm)
 *   input.input [1,C,4,4]      -> synthesis.b4.const [C,4,4]
 *   conv1, to_rgb1             -> synthesis.b4.conv1, synthesis.b4.torgb
 *   convs.{2j}, convs.{2j+1}   -> synthesis.b{2^(j+3)}.conv0, .conv1
 *   to_rgbs.{j}                -> synthesis.b{2^(j+3)}.torgb
 *   noises.noise_0             -> synthesis.b4.conv1.noise_const; noise_{2j+1} -> conv0, noise_{2j+2} -> conv1
 * Within a layer: conv.weight [1,O,I,k,k] -> weight [O,I,k,k]; conv.modulation -> affine;
 * noise.weight [1] -> noise_strength []; activate.bias -> bias; to_rgb bias [1,3,1,1] -> bias [3].
 * Gains match the canonical convention (raw weights), so values are copied unchanged.
 */

import { checkCanonicalTensors, isPowerOfTwoResolution, missingWAvgWarning, numWsFor, standardResampleFilter } from './canonical.js';
import { CheckpointError } from './errors.js';
import { numpyGlobals } from './numpy.js';
import { PickleGlobal, PyObject } from './pickle-vm.js';
import { TorchTensor, checkStorageSharing, torchTensorGlobals } from './torch-storage.js';
import { blockResolutions, type GeneratorArchitecture, type GeneratorWeights, type Tensor } from './types.js';

const format = 'rosinality checkpoint';
/** rosinality's `lr_mlp` default; the state dict does not store it. */
const rosinalityMappingLrMultiplier = 0.01;

/** Returns the allowlist of a rosinality checkpoint; every other global is rejected. */
export function rosinalityGlobals(): PickleGlobal[] {
  return [
    ...torchTensorGlobals(),
    ...numpyGlobals(),
    new PickleGlobal('argparse.Namespace', { construct: () => new PyObject('argparse.Namespace') }),
    new PickleGlobal('builtins.set', { call: ([items]) => new Set(Array.isArray(items) ? items : []) }),
  ];
}

type StateDict = Map<unknown, unknown>;

function pickStateDict(value: unknown, warnings: string[]): StateDict {
  if (!(value instanceof Map)) throw new CheckpointError('invalid_structure', `Invalid ${format}: the saved object is not a dict`);
  if (value.has('style.1.weight')) return value; // a bare g_ema state dict
  const gEma = value.get('g_ema');
  if (gEma instanceof Map) return gEma;
  const g = value.get('g');
  if (g instanceof Map) {
    warnings.push('The checkpoint has no g_ema; using the training generator g, whose weights are not the averaged ones.');
    return g;
  }
  throw new CheckpointError('invalid_structure', `Invalid ${format}: no g_ema state dict (keys: ${[...value.keys()].map(String).join(', ')})`);
}

class RosinalityState {
  constructor(private readonly dict: StateDict) {}

  has(name: string): boolean {
    return this.dict.get(name) instanceof TorchTensor;
  }

  tensor(name: string): TorchTensor {
    const t = this.dict.get(name);
    if (!(t instanceof TorchTensor)) throw new CheckpointError('invalid_structure', `Invalid ${format}: tensor ${name} is missing`);
    return t;
  }

  /** Reads a tensor and drops leading singleton dimensions until `rank` remain. */
  squeezed(name: string, rank: number): Tensor {
    const t = this.tensor(name);
    const shape = [...t.shape];
    while (shape.length > rank && shape[0] === 1) shape.shift();
    if (shape.length !== rank) {
      throw new CheckpointError('invalid_structure', `Invalid ${format}: ${name} has shape [${t.shape.join(', ')}], expected rank ${rank} after dropping leading 1s`);
    }
    return { shape, data: t.toFloat32(name) };
  }

  /** Reads a tensor whose dimensions are all 1 except one (ToRGB bias [1, 3, 1, 1]) as a vector. */
  vector(name: string): Tensor {
    const t = this.tensor(name);
    const long = t.shape.filter((d) => d !== 1);
    if (long.length > 1) throw new CheckpointError('invalid_structure', `Invalid ${format}: ${name} has shape [${t.shape.join(', ')}], expected a vector`);
    return { shape: [long[0] ?? 1], data: t.toFloat32(name) };
  }

  count(pattern: RegExp): number {
    let n = 0;
    for (const key of this.dict.keys()) if (typeof key === 'string' && pattern.test(key)) n++;
    return n;
  }
}

/** Checks that a stored blur/upsample kernel is the standard [1,3,3,1] filter times 4. */
function checkBlurKernel(state: RosinalityState, name: string): void {
  if (!state.has(name)) return;
  const kernel = state.tensor(name).toFloat32(name);
  const standard = standardResampleFilter().data;
  if (kernel.length !== 16 || kernel.some((v, i) => Math.abs(v - 4 * standard[i]) > 1e-6)) {
    throw new CheckpointError('unsupported_model', `Unsupported ${format}: ${name} is not the standard [1,3,3,1] blur kernel`);
  }
}

function convLayer(state: RosinalityState, source: string, target: string, noise: string, out: Map<string, Tensor>): void {
  out.set(`${target}.weight`, state.squeezed(`${source}.conv.weight`, 4)); // [O, I, 3, 3]
  out.set(`${target}.affine.weight`, state.squeezed(`${source}.conv.modulation.weight`, 2)); // [I, wDim]
  out.set(`${target}.affine.bias`, state.squeezed(`${source}.conv.modulation.bias`, 1)); // [I]
  out.set(`${target}.bias`, state.squeezed(`${source}.activate.bias`, 1)); // [O]
  out.set(`${target}.noise_strength`, state.squeezed(`${source}.noise.weight`, 0)); // []
  out.set(`${target}.noise_const`, state.squeezed(noise, 2)); // [R, R]
  out.set(`${target}.resample_filter`, standardResampleFilter());
}

function toRgbLayer(state: RosinalityState, source: string, target: string, out: Map<string, Tensor>): void {
  out.set(`${target}.weight`, state.squeezed(`${source}.conv.weight`, 4)); // [3, I, 1, 1]
  out.set(`${target}.affine.weight`, state.squeezed(`${source}.conv.modulation.weight`, 2)); // [I, wDim]
  out.set(`${target}.affine.bias`, state.squeezed(`${source}.conv.modulation.bias`, 1)); // [I]
  out.set(`${target}.bias`, state.vector(`${source}.bias`)); // [3]
}

/** Converts an unpickled rosinality checkpoint to the canonical weight set. */
export function rosinalityWeights(value: unknown, details: Record<string, string | number | boolean>): GeneratorWeights {
  const warnings: string[] = [];
  const stateDict = pickStateDict(value, warnings);
  checkStorageSharing([...stateDict.values()].filter((v): v is TorchTensor => v instanceof TorchTensor), format);
  const state = new RosinalityState(stateDict);
  const tensors = new Map<string, Tensor>();

  const mappingLayers = state.count(/^style\.\d+\.weight$/);
  if (mappingLayers === 0) throw new CheckpointError('invalid_structure', `Invalid ${format}: no style.{i}.weight mapping layers`);
  for (let i = 0; i < mappingLayers; i++) {
    tensors.set(`mapping.fc${i}.weight`, state.squeezed(`style.${i + 1}.weight`, 2)); // [out, in]
    tensors.set(`mapping.fc${i}.bias`, state.squeezed(`style.${i + 1}.bias`, 1)); // [out]
  }
  const upBlocks = state.count(/^to_rgbs\.\d+\.conv\.weight$/);
  const resolution = 2 ** (upBlocks + 2);
  if (!isPowerOfTwoResolution(resolution) || state.count(/^convs\.\d+\.conv\.weight$/) !== 2 * upBlocks) {
    throw new CheckpointError('invalid_structure', `Invalid ${format}: ${upBlocks} to_rgbs layers do not match the number of convs`);
  }

  tensors.set('synthesis.b4.const', state.squeezed('input.input', 3)); // [C4, 4, 4]
  tensors.set('synthesis.b4.resample_filter', standardResampleFilter());
  convLayer(state, 'conv1', 'synthesis.b4.conv1', 'noises.noise_0', tensors);
  toRgbLayer(state, 'to_rgb1', 'synthesis.b4.torgb', tensors);
  for (let j = 0; j < upBlocks; j++) {
    const block = `synthesis.b${2 ** (j + 3)}`;
    checkBlurKernel(state, `convs.${2 * j}.conv.blur.kernel`);
    checkBlurKernel(state, `to_rgbs.${j}.upsample.kernel`);
    tensors.set(`${block}.resample_filter`, standardResampleFilter());
    convLayer(state, `convs.${2 * j}`, `${block}.conv0`, `noises.noise_${2 * j + 1}`, tensors);
    convLayer(state, `convs.${2 * j + 1}`, `${block}.conv1`, `noises.noise_${2 * j + 2}`, tensors);
    toRgbLayer(state, `to_rgbs.${j}`, `${block}.torgb`, tensors);
  }

  const channels: Record<number, number> = {};
  for (const res of blockResolutions(resolution)) channels[res] = tensors.get(`synthesis.b${res}.conv1.weight`)!.shape[0];
  const firstFc = tensors.get('mapping.fc0.weight')!.shape;
  const wDim = tensors.get(`mapping.fc${mappingLayers - 1}.weight`)!.shape[0];
  const arch: GeneratorArchitecture = {
    zDim: firstFc[1],
    wDim,
    cDim: 0,
    resolution,
    imgChannels: tensors.get('synthesis.b4.torgb.weight')!.shape[0],
    numWs: numWsFor(resolution),
    mappingLayers,
    mappingFeatures: mappingLayers > 1 ? firstFc[0] : wDim,
    embedFeatures: 0,
    // NOTE: lr_mlp is a constructor argument that the checkpoint does not store; 0.01 is rosinality's default.
    mappingLrMultiplier: rosinalityMappingLrMultiplier,
    channels,
    convClamp: null,
    architecture: 'skip',
    activation: 'lrelu',
    useNoise: true,
    fp16Resolutions: [],
  };

  const top = value instanceof Map ? value : new Map();
  const latentAvg = top.get('latent_avg');
  let wAvg: Float32Array;
  if (latentAvg instanceof TorchTensor) {
    wAvg = latentAvg.toFloat32('latent_avg');
    if (wAvg.length !== wDim) throw new CheckpointError('invalid_structure', `Invalid ${format}: latent_avg has ${wAvg.length} values, w_dim is ${wDim}`);
    tensors.set('mapping.w_avg', { shape: [wDim], data: wAvg.slice() });
  } else {
    wAvg = new Float32Array(wDim);
    warnings.push(missingWAvgWarning);
  }
  checkCanonicalTensors(arch, tensors, format);
  return {
    arch,
    tensors,
    wAvg,
    wAvgSource: latentAvg instanceof TorchTensor ? 'checkpoint' : 'estimated',
    source: { format: 'rosinality-pt', details: { ...details, hasLatentAvg: latentAvg instanceof TorchTensor } },
    warnings,
  };
}
