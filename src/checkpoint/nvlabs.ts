/**
 * NVlabs network pickles: stylegan2-ada-pytorch (`training.networks.Generator`) and the StyleGAN2
 * generator of the stylegan3 repository (`training.networks_stylegan2.Generator`).
 *
 * The snapshot is a dict `{G, D, G_ema, augment_pipe, training_set_kwargs}`; every network module is
 * `_reconstruct_persistent_obj(meta)` with `meta.state` holding the module's `__dict__`
 * (`_parameters`, `_buffers`, `_modules`, `_init_kwargs` and plain attributes). `meta.module_src`
 * contains Python source that the reference loader executes. We never read or run it: the
 * architecture comes from the state and the tensor shapes.
 */

import { checkCanonicalTensors, isPowerOfTwoResolution, missingWAvgWarning, numWsFor } from './canonical.js';
import { CheckpointError } from './errors.js';
import { nvlabsDiscriminator } from './nvlabs-discriminator.js';
import { numpyGlobals } from './numpy.js';
import { PickleGlobal, PyObject } from './pickle-vm.js';
import { TorchTensor, checkStorageSharing, loadStorageFromBytes, torchTensorGlobals } from './torch-storage.js';
import { blockResolutions, type Activation, type GeneratorArchitecture, type GeneratorWeights, type Tensor } from './types.js';

const format = 'NVlabs network pickle';
/** Module trees in NVlabs generators are 4 levels deep; this bounds crafted ones. */
const maxModuleDepth = 16;

/** One `@persistent_class` module: its class name and `__dict__`. */
export class PersistentModule extends PyObject {
  constructor(
    className: string,
    readonly version: unknown,
    readonly moduleState: Map<unknown, unknown>,
  ) {
    super(className);
  }

  attr(name: string): unknown {
    return this.moduleState.get(name);
  }

  submodules(): Map<unknown, unknown> {
    const modules = this.attr('_modules');
    return modules instanceof Map ? modules : new Map();
  }

  submodule(name: string): PersistentModule | undefined {
    const child = this.submodules().get(name);
    return child instanceof PersistentModule ? child : undefined;
  }
}

function reconstructPersistentObj([meta]: unknown[]): PersistentModule {
  if (!(meta instanceof Map) || meta.get('type') !== 'class' || typeof meta.get('class_name') !== 'string' || !(meta.get('state') instanceof Map)) {
    throw new CheckpointError('invalid_structure', `Invalid ${format}: a persistent object without class_name and state`);
  }
  return new PersistentModule(meta.get('class_name') as string, meta.get('version'), meta.get('state') as Map<unknown, unknown>);
}

const easyDict = { call: () => new Map(), construct: () => new Map() };

/** Returns the allowlist of an NVlabs network pickle; every other global is rejected. */
export function nvlabsGlobals(): PickleGlobal[] {
  const objectMarker = new PickleGlobal('builtins.object');
  return [
    ...torchTensorGlobals(),
    ...numpyGlobals(),
    new PickleGlobal('torch.storage._load_from_bytes', { call: loadStorageFromBytes }),
    new PickleGlobal('torch_utils.persistence._reconstruct_persistent_obj', { call: reconstructPersistentObj }),
    new PickleGlobal('dnnlib.util.EasyDict', easyDict),
    new PickleGlobal('dnnlib.EasyDict', easyDict),
    new PickleGlobal('builtins.set', { call: ([items]) => new Set(Array.isArray(items) ? items : []) }),
    objectMarker,
    new PickleGlobal('copyreg._reconstructor', {
      // copyreg._reconstructor(cls, object, None): protocol 0/1 form of NEWOBJ, for allowlisted classes only.
      call: ([cls, base]) => {
        if (!(cls instanceof PickleGlobal) || cls.construct === undefined || base !== objectMarker) {
          throw new CheckpointError('disallowed_global', `Rejected copyreg._reconstructor call in the ${format}: the class is not allowlisted`);
        }
        return cls.construct([], new Map());
      },
    }),
  ];
}

function integerAttr(module: PersistentModule, name: string): number {
  const value = module.attr(name);
  if (!Number.isSafeInteger(value)) {
    throw new CheckpointError('invalid_structure', `Invalid ${format}: ${module.className}.${name} is ${String(value)}, not an integer`);
  }
  return value as number;
}

/** Collects `_parameters` and persistent `_buffers` under dotted names, like `state_dict()`. */
export function collectTensors(module: PersistentModule, prefix: string, out: Map<string, TorchTensor>, depth: number): void {
  if (depth > maxModuleDepth) throw new CheckpointError('too_large', `Invalid ${format}: modules nested deeper than ${maxModuleDepth} levels`);
  const nonPersistent = module.attr('_non_persistent_buffers_set');
  for (const field of ['_parameters', '_buffers']) {
    const entries = module.attr(field);
    if (!(entries instanceof Map)) continue;
    for (const [name, tensor] of entries) {
      if (tensor === null || (field === '_buffers' && nonPersistent instanceof Set && nonPersistent.has(name))) continue;
      if (!(tensor instanceof TorchTensor)) throw new CheckpointError('invalid_structure', `Invalid ${format}: ${prefix}${String(name)} is not a tensor`);
      out.set(`${prefix}${String(name)}`, tensor);
    }
  }
  for (const [name, child] of module.submodules()) {
    if (child === null) continue;
    if (!(child instanceof PersistentModule)) throw new CheckpointError('invalid_structure', `Invalid ${format}: module ${prefix}${String(name)} is not a persistent module`);
    collectTensors(child, `${prefix}${String(name)}.`, out, depth + 1);
  }
}

/** Returns the one value shared by all layers, or throws naming the values that differ. */
function uniform<T>(values: T[], what: string): T {
  const distinct = [...new Set(values)];
  if (distinct.length !== 1) {
    throw new CheckpointError('unsupported_model', `Unsupported ${format}: layers use different ${what} (${distinct.map(String).join(', ')}); one value for the whole generator is supported`);
  }
  return distinct[0];
}

function shapeOf(tensors: Map<string, TorchTensor>, name: string): number[] {
  const tensor = tensors.get(name);
  if (tensor === undefined) throw new CheckpointError('invalid_structure', `Invalid ${format}: tensor ${name} is missing`);
  return tensor.shape;
}

/** Reads the architecture numbers from module attributes, checked against the tensor shapes. */
function readArchitecture(G: PersistentModule, tensors: Map<string, TorchTensor>): GeneratorArchitecture {
  const mapping = G.submodule('mapping');
  const synthesis = G.submodule('synthesis');
  if (mapping === undefined || synthesis === undefined) throw new CheckpointError('invalid_structure', `Invalid ${format}: the generator has no mapping or synthesis network`);

  const zDim = integerAttr(G, 'z_dim');
  const cDim = integerAttr(G, 'c_dim');
  const wDim = integerAttr(G, 'w_dim');
  const resolution = integerAttr(G, 'img_resolution');
  const imgChannels = integerAttr(G, 'img_channels');
  const numWs = integerAttr(G, 'num_ws');
  if (!isPowerOfTwoResolution(resolution)) throw new CheckpointError('unsupported_model', `Unsupported ${format}: img_resolution ${resolution} is not a power of two >= 4`);

  const fcNames = [...mapping.submodules().keys()].filter((k) => typeof k === 'string' && /^fc\d+$/.test(k)) as string[];
  const mappingLayers = fcNames.length;
  if (mapping.attr('num_layers') !== undefined && mapping.attr('num_layers') !== mappingLayers) {
    throw new CheckpointError('invalid_structure', `Invalid ${format}: mapping.num_layers is ${String(mapping.attr('num_layers'))} but ${mappingLayers} fc layers are stored`);
  }
  const fcs = fcNames.map((name) => mapping.submodule(name)!);
  uniform(fcs.map((fc) => fc.attr('activation')), 'mapping activations');
  if (fcs[0].attr('activation') !== 'lrelu') {
    throw new CheckpointError('unsupported_model', `Unsupported ${format}: mapping activation ${String(fcs[0].attr('activation'))}; only lrelu is supported`);
  }
  const lr = fcs[0].attr('bias_gain');
  const mappingLrMultiplier = typeof lr === 'number' ? lr : 0.01;
  const embedFeatures = cDim > 0 ? shapeOf(tensors, 'mapping.embed.weight')[0] : 0;
  const mappingFeatures = mappingLayers > 1 ? shapeOf(tensors, 'mapping.fc0.weight')[0] : wDim;

  const blocks = blockResolutions(resolution).map((res) => {
    const block = synthesis.submodule(`b${res}`);
    if (block === undefined) throw new CheckpointError('invalid_structure', `Invalid ${format}: synthesis block b${res} is missing`);
    return { res, block };
  });
  const layers = blocks.flatMap(({ block }) => ['conv0', 'conv1'].map((n) => block.submodule(n)).filter((l): l is PersistentModule => l !== undefined));
  const torgbs = blocks.map(({ block }) => block.submodule('torgb')).filter((l): l is PersistentModule => l !== undefined);

  const clamps = [...layers, ...torgbs].map((l) => l.attr('conv_clamp'));
  const convClamp = uniform(clamps, 'conv_clamp values') as number | null;
  if (convClamp !== null && typeof convClamp !== 'number') throw new CheckpointError('invalid_structure', `Invalid ${format}: conv_clamp ${String(convClamp)}`);
  const activation = uniform(layers.map((l) => l.attr('activation')), 'activations');
  if (activation !== 'lrelu' && activation !== 'linear' && activation !== 'relu') {
    throw new CheckpointError('unsupported_model', `Unsupported ${format}: synthesis activation ${String(activation)}; lrelu, linear and relu are supported`);
  }
  const architecture = uniform(blocks.map(({ block }) => block.attr('architecture')), 'block architectures');
  if (architecture !== 'skip' && architecture !== 'orig' && architecture !== 'resnet') {
    throw new CheckpointError('unsupported_model', `Unsupported ${format}: architecture ${String(architecture)}`);
  }

  const channels: Record<number, number> = {};
  for (const { res } of blocks) channels[res] = shapeOf(tensors, `synthesis.b${res}.conv1.weight`)[0];
  const arch: GeneratorArchitecture = {
    zDim,
    wDim,
    cDim,
    resolution,
    imgChannels,
    numWs,
    mappingLayers,
    mappingFeatures,
    embedFeatures,
    mappingLrMultiplier,
    channels,
    convClamp,
    architecture,
    activation: activation as Activation,
    useNoise: uniform(layers.map((l) => l.attr('use_noise') !== false), 'use_noise settings'),
    fp16Resolutions: blocks.filter(({ block }) => block.attr('use_fp16') === true).map(({ res }) => res),
  };
  if (numWs !== numWsFor(resolution)) throw new CheckpointError('invalid_structure', `Invalid ${format}: num_ws ${numWs} does not match resolution ${resolution}`);
  return arch;
}

/** Picks the generator: `G_ema` from a snapshot dict (never `G` when `G_ema` exists), or a bare Generator. */
function pickGenerator(value: unknown, warnings: string[]): PersistentModule {
  if (value instanceof PersistentModule) return value;
  if (!(value instanceof Map)) throw new CheckpointError('invalid_structure', `Invalid ${format}: the top-level object is not a snapshot dict`);
  const gEma = value.get('G_ema');
  if (gEma instanceof PersistentModule) return gEma;
  const g = value.get('G');
  if (g instanceof PersistentModule) {
    warnings.push('The pickle has no G_ema; using the training generator G, whose weights are not the averaged ones.');
    return g;
  }
  throw new CheckpointError('invalid_structure', `Invalid ${format}: no G_ema or G network (keys: ${[...value.keys()].map(String).join(', ')})`);
}

/** Converts an unpickled NVlabs snapshot to the canonical weight set. */
export function nvlabsWeights(value: unknown, details: Record<string, string | number | boolean>): GeneratorWeights {
  const warnings: string[] = [];
  const G = pickGenerator(value, warnings);
  const synthesis = G.submodule('synthesis');
  const sg3Layer = synthesis && (synthesis.submodule('input') !== undefined || [...synthesis.submodules().keys()].some((k) => typeof k === 'string' && /^L\d+_/.test(k)));
  if (sg3Layer) {
    throw new CheckpointError(
      'unsupported_model',
      `Unsupported ${format}: this is a StyleGAN3 (alias-free, training/networks_stylegan3.py) generator. ` +
        `Only StyleGAN2 generators are supported (stylegan2-ada-pytorch, or stylegan3's --cfg=stylegan2).`,
    );
  }
  if (G.className !== 'Generator') throw new CheckpointError('invalid_structure', `Invalid ${format}: the generator's class is ${G.className}, not Generator`);

  const torchTensors = new Map<string, TorchTensor>();
  collectTensors(G, '', torchTensors, 0);
  const arch = readArchitecture(G, torchTensors);
  checkStorageSharing(torchTensors.values(), format);

  const tensors = new Map<string, Tensor>();
  for (const [name, tensor] of torchTensors) tensors.set(name, { shape: tensor.shape, data: tensor.toFloat32(name) });
  const wAvgPerClass = splitPerClassAverage(arch, tensors);
  checkCanonicalTensors(arch, tensors, format);

  const sg3 = blockResolutions(arch.resolution).some((res) => synthesis!.submodule(`b${res}`)?.attr('fused_modconv_default') !== undefined);
  const storedWAvg = tensors.get('mapping.w_avg');
  if (storedWAvg === undefined) warnings.push(missingWAvgWarning);
  const discriminator = value instanceof Map ? nvlabsDiscriminator(value.get('D'), warnings) : undefined;
  return {
    ...(discriminator ? { discriminator } : {}),
    arch,
    tensors,
    wAvg: storedWAvg ? storedWAvg.data.slice() : new Float32Array(arch.wDim),
    wAvgSource: storedWAvg ? 'checkpoint' : 'estimated',
    ...(wAvgPerClass ? { wAvgPerClass } : {}),
    source: {
      format: 'nvlabs-pickle',
      details: {
        ...details,
        networkClass: sg3 ? 'training.networks_stylegan2.Generator' : 'training.networks.Generator',
        persistenceVersion: typeof G.version === 'number' ? G.version : String(G.version),
      },
    },
    warnings,
  };
}

/**
 * Handles conditional generators that keep one average latent per class (`mapping.w_avg` of shape
 * `[cDim, wDim]`, as some conditional forks of stylegan2-ada-pytorch do): returns those rows and
 * replaces the tensor by their mean, the global centre. Returns undefined for the usual `[wDim]`.
 */
export function splitPerClassAverage(arch: GeneratorArchitecture, tensors: Map<string, Tensor>): Float32Array | undefined {
  const stored = tensors.get('mapping.w_avg');
  if (!stored || stored.shape.length !== 2 || arch.cDim === 0) return undefined;
  const [classes, wDim] = stored.shape;
  if (classes !== arch.cDim || wDim !== arch.wDim) {
    throw new CheckpointError(
      'invalid_structure',
      `Invalid ${format}: mapping.w_avg has shape [${stored.shape.join(', ')}], expected [${arch.wDim}] or per class [${arch.cDim}, ${arch.wDim}]`,
    );
  }
  const mean = new Float32Array(wDim);
  for (let k = 0; k < classes; k++) for (let j = 0; j < wDim; j++) mean[j] += stored.data[k * wDim + j] / classes;
  tensors.set('mapping.w_avg', { shape: [wDim], data: mean });
  return stored.data.slice();
}
