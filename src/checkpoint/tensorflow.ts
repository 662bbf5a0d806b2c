/**
 * TensorFlow StyleGAN2 network pickles (NVlabs/stylegan2, Network state version 4, and the
 * stylegan2-ada TF code, version 5): a tuple `(G, D, Gs)` of `dnnlib.tflib.network.Network`
 * objects, or a single Network. Each is NEWOBJ + BUILD with a state dict holding `static_kwargs`,
 * `components` (nested Networks) and `variables` (a list of `(name, numpy value)`). We use `Gs`, the
 * moving average, as the reference loader does. `build_module_src` is Python source that TF's
 * unpickler executes; we never read or run it.
 *
 * Conversion to the canonical names (the stylegan2-ada-pytorch `legacy.py` conventions):
 * dense `[in, out]` -> `[out, in]`; conv `[kh, kw, in, out]` -> `[out, in, kh, kw]`, with `Conv0_up`
 * and `Skip` kernels flipped spatially first (TF's upsample_conv_2d flips inside its transposed conv);
 * `mod_bias` + 1 (TF adds the 1 at run time); `noise{i}` `[1,1,R,R]` -> the noise_const of layer i;
 * `dlatent_avg` -> `mapping.w_avg`.
 */

import { checkCanonicalTensors, isPowerOfTwoResolution, missingWAvgWarning, numWsFor, standardResampleFilter } from './canonical.js';
import { CheckpointError } from './errors.js';
import { NumpyArray, numpyGlobals } from './numpy.js';
import { PickleGlobal, PyObject } from './pickle-vm.js';
import { blockResolutions, type Activation, type GeneratorArchitecture, type GeneratorWeights, type Tensor } from './types.js';

const format = 'TensorFlow network pickle';
const maxComponentDepth = 8;

/** A `dnnlib.tflib.network.Network` as pickled: only its state matters. */
export class TfNetwork extends PyObject {
  constructor() {
    super('dnnlib.tflib.network.Network');
  }

  get fields(): Map<unknown, unknown> {
    if (!(this.state instanceof Map)) throw new CheckpointError('invalid_structure', `Invalid ${format}: a Network without a state dict`);
    return this.state;
  }
}

/** Returns the allowlist of a TF network pickle; every other global is rejected. */
export function tensorflowGlobals(): PickleGlobal[] {
  return [
    ...numpyGlobals(),
    new PickleGlobal('dnnlib.tflib.network.Network', { construct: () => new TfNetwork() }),
    new PickleGlobal('collections.OrderedDict', { call: () => new Map() }),
  ];
}

/**
 * Static kwargs we interpret, with the defaults that apply when a pickle omits them (the TF code
 * defaults, as stylegan2-ada-pytorch's legacy loader assumes). `null` means "derived": mapping_fmaps
 * defaults to dlatent_size, label_fmaps to the stored LabelEmbed width.
 */
const kwargDefaults: Record<string, unknown> = {
  latent_size: 512,
  label_size: 0,
  dlatent_size: 512,
  resolution: 1024,
  num_channels: 3,
  mapping_layers: 8,
  mapping_fmaps: null,
  label_fmaps: null,
  mapping_lrmul: 0.01,
  mapping_nonlinearity: 'lrelu',
  fmap_base: 16384,
  fmap_max: 512,
  num_fp16_res: 0,
  conv_clamp: null,
  architecture: 'skip',
  nonlinearity: 'lrelu',
  use_noise: true,
  resample_kernel: [1, 3, 3, 1],
  w_avg_beta: 0.995,
  dlatent_avg_beta: 0.995,
};
/** Run-time options the loader accepts and ignores. */
const ignoredKwargs = new Set(['truncation_psi', 'truncation_cutoff', 'style_mixing_prob', 'structure', 'dlatent_broadcast', 'fused_modconv', 'dtype']);

function pickGs(value: unknown): TfNetwork {
  if (value instanceof TfNetwork) return value;
  if (Array.isArray(value) && value.length === 3 && value.every((v) => v instanceof TfNetwork)) return value[2] as TfNetwork;
  throw new CheckpointError('invalid_structure', `Invalid ${format}: the top-level object is neither a (G, D, Gs) tuple nor a Network`);
}

function toTensor(value: unknown, name: string): Tensor {
  if (value instanceof NumpyArray) return { shape: [...value.shape], data: value.toFloat32(name) };
  if (typeof value === 'number') return { shape: [], data: Float32Array.of(value) };
  throw new CheckpointError('invalid_structure', `Invalid ${format}: variable ${name} is not a numpy value`);
}

/** Collects variables as `component/.../local_name`, as the reference loader names them. */
function collectVariables(network: TfNetwork, prefix: string, out: Map<string, unknown>, depth: number): void {
  if (depth > maxComponentDepth) throw new CheckpointError('too_large', `Invalid ${format}: components nested deeper than ${maxComponentDepth} levels`);
  const variables = network.fields.get('variables');
  if (!Array.isArray(variables)) throw new CheckpointError('invalid_structure', `Invalid ${format}: Network ${prefix || 'Gs'} has no variable list`);
  for (const entry of variables) {
    if (!Array.isArray(entry) || entry.length !== 2 || typeof entry[0] !== 'string') throw new CheckpointError('invalid_structure', `Invalid ${format}: a variable entry is not (name, value)`);
    out.set(`${prefix}${entry[0]}`, entry[1]);
  }
  const components = network.fields.get('components');
  if (components instanceof Map) {
    for (const [key, child] of components) {
      if (!(child instanceof TfNetwork)) throw new CheckpointError('invalid_structure', `Invalid ${format}: component ${String(key)} is not a Network`);
      collectVariables(child, `${prefix}${String(key)}/`, out, depth + 1);
    }
  }
}

/**
 * Rejects variable lists that name the same numpy data many times (a memo reference costs a few
 * bytes of pickle but a full copy when materialised).
 */
function checkDistinctArrays(values: Iterable<unknown>): void {
  let named = 0;
  let distinct = 0;
  const seen = new Set<unknown>();
  for (const value of values) {
    if (!(value instanceof NumpyArray)) continue;
    const count = value.shape.reduce((a, b) => a * b, 1);
    named += count;
    // Keyed by the data bytes: distinct arrays may be built on one memoized bytes object.
    const key = value.data ?? value;
    if (!seen.has(key)) distinct += count;
    seen.add(key);
  }
  if (named > 2 * distinct + (1 << 20)) {
    throw new CheckpointError('too_large', `Rejected ${format}: its variables name ${named} elements but hold only ${distinct}`);
  }
}

/** `[in, out]` -> `[out, in]`. */
function transposeDense(t: Tensor, name: string): Tensor {
  if (t.shape.length !== 2) throw new CheckpointError('invalid_structure', `Invalid ${format}: ${name} has shape [${t.shape.join(', ')}], expected [in, out]`);
  const [rows, cols] = t.shape;
  const data = new Float32Array(rows * cols);
  for (let i = 0; i < rows; i++) for (let o = 0; o < cols; o++) data[o * rows + i] = t.data[i * cols + o];
  return { shape: [cols, rows], data };
}

/** `[kh, kw, in, out]` -> `[out, in, kh, kw]`, optionally flipping kh and kw. */
function transposeConv(t: Tensor, name: string, flip: boolean): Tensor {
  if (t.shape.length !== 4) throw new CheckpointError('invalid_structure', `Invalid ${format}: ${name} has shape [${t.shape.join(', ')}], expected [kh, kw, in, out]`);
  const [kh, kw, cin, cout] = t.shape;
  const data = new Float32Array(t.data.length);
  for (let y = 0; y < kh; y++) {
    for (let x = 0; x < kw; x++) {
      const sy = flip ? kh - 1 - y : y;
      const sx = flip ? kw - 1 - x : x;
      for (let i = 0; i < cin; i++) {
        for (let o = 0; o < cout; o++) data[((o * cin + i) * kh + y) * kw + x] = t.data[((sy * kw + sx) * cin + i) * cout + o];
      }
    }
  }
  return { shape: [cout, cin, kh, kw], data };
}

function plusOne(t: Tensor): Tensor {
  return { shape: t.shape, data: t.data.map((v) => v + 1) };
}

function dropLeadingOnes(t: Tensor, rank: number, name: string): Tensor {
  const shape = [...t.shape];
  while (shape.length > rank && shape[0] === 1) shape.shift();
  if (shape.length !== rank) throw new CheckpointError('invalid_structure', `Invalid ${format}: ${name} has shape [${t.shape.join(', ')}]`);
  return { shape, data: t.data };
}

/** Reads static kwargs: known ones with defaults, run-time ones ignored, unknown ones as warnings. */
function readKwargs(Gs: TfNetwork, warnings: string[]): Record<string, unknown> {
  const stored = Gs.fields.get('static_kwargs');
  const kwargs: Record<string, unknown> = { ...kwargDefaults };
  if (!(stored instanceof Map)) return kwargs;
  for (const [key, value] of stored) {
    const name = String(key);
    if (name === 'resolution_w' || name === 'resolution_h') {
      throw new CheckpointError('unsupported_model', `Unsupported ${format}: non-square generator (static kwarg ${name}); only square outputs are supported`);
    }
    if (name in kwargDefaults) kwargs[name] = value;
    else if (!ignoredKwargs.has(name)) warnings.push(`Ignored unknown TensorFlow static kwarg ${name}=${JSON.stringify(value)}.`);
  }
  return kwargs;
}

function requireInt(kwargs: Record<string, unknown>, name: string): number {
  const v = kwargs[name];
  if (!Number.isSafeInteger(v)) throw new CheckpointError('invalid_structure', `Invalid ${format}: static kwarg ${name} is ${JSON.stringify(v)}`);
  return v as number;
}

/** Throws `unsupported_model` for generator variants the canonical weight set cannot express. */
function checkSupported(kwargs: Record<string, unknown>, raw: Map<string, unknown>): void {
  const resolution = requireInt(kwargs, 'resolution');
  if (!isPowerOfTwoResolution(resolution)) throw new CheckpointError('unsupported_model', `Unsupported ${format}: resolution ${resolution} is not a square power of two`);
  if ([...raw.keys()].some((k) => k.includes('ToRGB_lod'))) {
    throw new CheckpointError('unsupported_model', `Unsupported ${format}: progressive-growing (ToRGB_lod*) generators are not supported`);
  }
  if (raw.has('mapping/LabelConcat/weight')) {
    throw new CheckpointError('unsupported_model', `Unsupported ${format}: conditional stylegan2-TF generators (LabelConcat) are not supported; only stylegan2-ada TF's LabelEmbed is`);
  }
  if (kwargs.mapping_nonlinearity !== 'lrelu') {
    throw new CheckpointError('unsupported_model', `Unsupported ${format}: mapping_nonlinearity=${JSON.stringify(kwargs.mapping_nonlinearity)}; only lrelu is supported`);
  }
  if (!['lrelu', 'linear', 'relu'].includes(kwargs.nonlinearity as string)) {
    throw new CheckpointError('unsupported_model', `Unsupported ${format}: nonlinearity=${JSON.stringify(kwargs.nonlinearity)}; lrelu, linear and relu are supported`);
  }
  if (JSON.stringify(kwargs.resample_kernel) !== '[1,3,3,1]') {
    throw new CheckpointError('unsupported_model', `Unsupported ${format}: resample_kernel ${JSON.stringify(kwargs.resample_kernel)}; only [1,3,3,1] is supported`);
  }
  if (!['skip', 'orig', 'resnet'].includes(kwargs.architecture as string)) {
    throw new CheckpointError('unsupported_model', `Unsupported ${format}: architecture ${JSON.stringify(kwargs.architecture)}; skip, orig and resnet are supported`);
  }
}

/** Converts an unpickled TF network pickle to the canonical weight set. */
export function tensorflowWeights(value: unknown, details: Record<string, string | number | boolean>): GeneratorWeights {
  const warnings: string[] = [];
  const Gs = pickGs(value);
  const version = Gs.fields.get('version');
  if (typeof version !== 'number' || version < 4 || version > 5) {
    throw new CheckpointError('unsupported_format', `Unsupported ${format}: Network state version ${String(version)}; versions 4 (stylegan2) and 5 (stylegan2-ada TF) are supported`);
  }
  const kwargs = readKwargs(Gs, warnings);
  const raw = new Map<string, unknown>();
  collectVariables(Gs, '', raw, 0);
  checkDistinctArrays(raw.values());
  const variable = (name: string): Tensor => {
    if (!raw.has(name)) throw new CheckpointError('invalid_structure', `Invalid ${format}: variable ${name} is missing`);
    return toTensor(raw.get(name), name);
  };

  checkSupported(kwargs, raw);
  const resolution = kwargs.resolution as number;
  const architecture = kwargs.architecture as GeneratorArchitecture['architecture'];

  const tensors = new Map<string, Tensor>();
  const cDim = requireInt(kwargs, 'label_size');
  if (cDim > 0) {
    tensors.set('mapping.embed.weight', transposeDense(variable('mapping/LabelEmbed/weight'), 'LabelEmbed/weight'));
    tensors.set('mapping.embed.bias', variable('mapping/LabelEmbed/bias'));
  }
  const mappingLayers = [...raw.keys()].filter((k) => /^mapping\/Dense\d+\/weight$/.test(k)).length;
  for (let i = 0; i < mappingLayers; i++) {
    tensors.set(`mapping.fc${i}.weight`, transposeDense(variable(`mapping/Dense${i}/weight`), `Dense${i}/weight`));
    tensors.set(`mapping.fc${i}.bias`, variable(`mapping/Dense${i}/bias`));
  }
  if (mappingLayers !== kwargs.mapping_layers) {
    throw new CheckpointError('invalid_structure', `Invalid ${format}: mapping_layers is ${String(kwargs.mapping_layers)} but ${mappingLayers} Dense layers are stored`);
  }

  const useNoise = kwargs.use_noise !== false;
  const layer = (scope: string, target: string, noiseIndex: number, flip: boolean): void => {
    tensors.set(`${target}.weight`, transposeConv(variable(`${scope}/weight`), `${scope}/weight`, flip));
    tensors.set(`${target}.bias`, variable(`${scope}/bias`));
    tensors.set(`${target}.affine.weight`, transposeDense(variable(`${scope}/mod_weight`), `${scope}/mod_weight`));
    tensors.set(`${target}.affine.bias`, plusOne(variable(`${scope}/mod_bias`)));
    tensors.set(`${target}.resample_filter`, standardResampleFilter());
    if (useNoise) {
      tensors.set(`${target}.noise_strength`, dropLeadingOnes(variable(`${scope}/noise_strength`), 0, `${scope}/noise_strength`));
      tensors.set(`${target}.noise_const`, dropLeadingOnes(variable(`synthesis/noise${noiseIndex}`), 2, `noise${noiseIndex}`));
    }
  };
  const toRgb = (scope: string, target: string): void => {
    tensors.set(`${target}.weight`, transposeConv(variable(`${scope}/weight`), `${scope}/weight`, false));
    tensors.set(`${target}.bias`, variable(`${scope}/bias`));
    tensors.set(`${target}.affine.weight`, transposeDense(variable(`${scope}/mod_weight`), `${scope}/mod_weight`));
    tensors.set(`${target}.affine.bias`, plusOne(variable(`${scope}/mod_bias`)));
  };

  tensors.set('synthesis.b4.const', dropLeadingOnes(variable('synthesis/4x4/Const/const'), 3, 'Const/const'));
  for (const res of blockResolutions(resolution)) {
    const scope = `synthesis/${res}x${res}`;
    const block = `synthesis.b${res}`;
    const log2 = Math.log2(res);
    tensors.set(`${block}.resample_filter`, standardResampleFilter());
    if (res === 4) {
      layer(`${scope}/Conv`, `${block}.conv1`, 0, false);
    } else {
      layer(`${scope}/Conv0_up`, `${block}.conv0`, 2 * log2 - 5, true);
      layer(`${scope}/Conv1`, `${block}.conv1`, 2 * log2 - 4, false);
      if (architecture === 'resnet') {
        tensors.set(`${block}.skip.weight`, transposeConv(variable(`${scope}/Skip/weight`), `${scope}/Skip/weight`, true));
        tensors.set(`${block}.skip.resample_filter`, standardResampleFilter());
      }
    }
    if (architecture === 'skip' || res === resolution) toRgb(`${scope}/ToRGB`, `${block}.torgb`);
  }

  const wDim = requireInt(kwargs, 'dlatent_size');
  const fmapBase = requireInt(kwargs, 'fmap_base');
  const fmapMax = requireInt(kwargs, 'fmap_max');
  const channels: Record<number, number> = {};
  for (const res of blockResolutions(resolution)) {
    channels[res] = tensors.get(`synthesis.b${res}.conv1.weight`)!.shape[0];
    const fromKwargs = Math.min(Math.floor((2 * fmapBase) / res), fmapMax);
    if (channels[res] !== fromKwargs) warnings.push(`Block ${res}x${res} stores ${channels[res]} channels; fmap_base/fmap_max imply ${fromKwargs}. Using the stored shapes.`);
  }
  const numFp16Res = requireInt(kwargs, 'num_fp16_res');
  const fp16Resolution = Math.max(2 ** (Math.log2(resolution) + 1 - numFp16Res), 8);
  const firstFc = tensors.get('mapping.fc0.weight')?.shape ?? [wDim, 0];
  const embedFeatures = cDim > 0 ? tensors.get('mapping.embed.weight')!.shape[0] : 0;
  const arch: GeneratorArchitecture = {
    zDim: requireInt(kwargs, 'latent_size'),
    wDim,
    cDim,
    resolution,
    imgChannels: requireInt(kwargs, 'num_channels'),
    numWs: numWsFor(resolution),
    mappingLayers,
    mappingFeatures: mappingLayers > 1 ? firstFc[0] : wDim,
    embedFeatures,
    mappingLrMultiplier: kwargs.mapping_lrmul as number,
    channels,
    convClamp: (kwargs.conv_clamp as number | null) ?? null,
    architecture,
    activation: kwargs.nonlinearity as Activation,
    useNoise,
    fp16Resolutions: numFp16Res > 0 ? blockResolutions(resolution).filter((r) => r >= fp16Resolution) : [],
  };

  const hasAvg = raw.has('dlatent_avg');
  if (hasAvg) tensors.set('mapping.w_avg', variable('dlatent_avg'));
  else warnings.push(missingWAvgWarning);
  checkCanonicalTensors(arch, tensors, format);
  return {
    arch,
    tensors,
    wAvg: hasAvg ? tensors.get('mapping.w_avg')!.data.slice() : new Float32Array(wDim),
    wAvgSource: hasAvg ? 'checkpoint' : 'estimated',
    source: { format: 'tf-pickle', details: { ...details, stateVersion: version, networkName: String(Gs.fields.get('name')) } },
    warnings,
  };
}
