/**
 * The discriminator `D` of a stylegan2-ada-pytorch snapshot (`training.networks.Discriminator`),
 * read for the discriminator-feature projection loss. Only the feature blocks `b{R}` .. `b8` are
 * read (fromrgb, conv0, conv1 and skip); the epilogue `b4` (minibatch stddev, conv, fc, out) is not.
 *
 * A missing discriminator, or one that fails the structure checks (a CheckpointError), does not
 * fail the generator: the reader returns undefined, with a warning naming the reason in the second case.
 */

import { CheckpointError } from './errors.js';
import { PersistentModule, collectTensors } from './nvlabs.js';
import { TorchTensor } from './torch-storage.js';
import { discriminatorBlockResolutions, type DiscriminatorArchitecture, type DiscriminatorWeights, type Tensor } from './types.js';

/** Returns D's feature blocks, or undefined (with a warning) when `value` is no supported discriminator. */
export function nvlabsDiscriminator(value: unknown, warnings: string[]): DiscriminatorWeights | undefined {
  if (value === undefined || value === null) return undefined;
  try {
    return readDiscriminator(value);
  } catch (error) {
    if (!(error instanceof CheckpointError)) throw error;
    warnings.push(`The pickle's discriminator D was not read, so loss=discriminator is unavailable: ${error.message}`);
    return undefined;
  }
}

function unsupported(message: string): CheckpointError {
  return new CheckpointError('unsupported_model', `Unsupported discriminator: ${message}`);
}

function integerAttr(module: PersistentModule, name: string): number {
  const value = module.attr(name);
  if (!Number.isSafeInteger(value)) throw unsupported(`${module.className}.${name} is ${String(value)}, not an integer`);
  return value as number;
}

function readDiscriminator(value: unknown): DiscriminatorWeights {
  if (!(value instanceof PersistentModule) || value.className !== 'Discriminator') {
    throw unsupported(`D is ${value instanceof PersistentModule ? `a ${value.className}` : 'not a network module'}, not a Discriminator`);
  }
  const D = value;
  const resolution = integerAttr(D, 'img_resolution');
  const imgChannels = integerAttr(D, 'img_channels');
  const resolutions = discriminatorBlockResolutions(resolution);
  if (resolutions.length === 0) throw unsupported(`img_resolution ${resolution} has no feature blocks`);

  const torchTensors = new Map<string, TorchTensor>();
  const tmpChannels: Record<number, number> = {};
  const outChannels: Record<number, number> = {};
  const clamps = new Set<unknown>();
  const architectures = new Set<unknown>();
  for (const [i, res] of resolutions.entries()) {
    const block = D.submodule(`b${res}`);
    if (block === undefined || block.className !== 'DiscriminatorBlock') throw unsupported(`block b${res} is missing`);
    architectures.add(block.attr('architecture'));
    const layers = ['conv0', 'conv1', ...(i === 0 ? ['fromrgb'] : [])].map((name) => {
      const layer = block.submodule(name);
      if (layer === undefined) throw unsupported(`layer b${res}.${name} is missing`);
      if (layer.attr('activation') !== 'lrelu') throw unsupported(`b${res}.${name} uses activation ${String(layer.attr('activation'))}; only lrelu is supported`);
      clamps.add(layer.attr('conv_clamp') ?? null);
      return layer;
    });
    if (i > 0 && block.submodule('fromrgb') !== undefined) throw unsupported(`block b${res} has a fromrgb layer ('skip' discriminators are not supported)`);
    if (layers[1].attr('down') !== 2) throw unsupported(`b${res}.conv1 down-samples by ${String(layers[1].attr('down'))}, expected 2`);
    collectTensors(block, `b${res}.`, torchTensors, 1);
    tmpChannels[res] = shape(torchTensors, `b${res}.conv0.weight`)[0];
    outChannels[res] = shape(torchTensors, `b${res}.conv1.weight`)[0];
  }
  if (architectures.size !== 1) throw unsupported(`blocks use different architectures (${[...architectures].map(String).join(', ')})`);
  const architecture = [...architectures][0];
  if (architecture !== 'resnet' && architecture !== 'orig') throw unsupported(`architecture ${String(architecture)}; 'resnet' and 'orig' are supported`);
  if (clamps.size !== 1) throw unsupported(`layers use different conv_clamp values (${[...clamps].map(String).join(', ')})`);
  const convClamp = [...clamps][0];
  if (convClamp !== null && typeof convClamp !== 'number') throw unsupported(`conv_clamp ${String(convClamp)}`);

  const arch: DiscriminatorArchitecture = { resolution, imgChannels, tmpChannels, outChannels, convClamp, architecture };
  const tensors = new Map<string, Tensor>();
  for (const [name, tensor] of torchTensors) {
    if (name.endsWith('resample_filter')) continue; // always the [1, 3, 3, 1] filter of the spec
    tensors.set(name, { shape: tensor.shape, data: tensor.toFloat32(`D.${name}`) });
  }
  checkShapes(arch, tensors);
  return { arch, tensors };
}

function shape(tensors: Map<string, TorchTensor>, name: string): number[] {
  const tensor = tensors.get(name);
  if (tensor === undefined) throw unsupported(`tensor D.${name} is missing`);
  return tensor.shape;
}

/** Checks every tensor the feature graph reads against the architecture numbers. */
function checkShapes(arch: DiscriminatorArchitecture, tensors: Map<string, Tensor>): void {
  const expect = (name: string, dims: number[]) => {
    const tensor = tensors.get(name);
    if (tensor === undefined) throw unsupported(`tensor D.${name} is missing`);
    if (tensor.shape.join(',') !== dims.join(',')) throw unsupported(`D.${name} has shape [${tensor.shape.join(', ')}], expected [${dims.join(', ')}]`);
  };
  let inChannels = 0;
  for (const res of discriminatorBlockResolutions(arch.resolution)) {
    const tmp = arch.tmpChannels[res];
    const out = arch.outChannels[res];
    if (inChannels === 0) {
      expect(`b${res}.fromrgb.weight`, [tmp, arch.imgChannels, 1, 1]);
      expect(`b${res}.fromrgb.bias`, [tmp]);
      inChannels = tmp;
    }
    if (inChannels !== tmp) throw unsupported(`block b${res} reads ${tmp} channels but the previous block writes ${inChannels}`);
    expect(`b${res}.conv0.weight`, [tmp, tmp, 3, 3]);
    expect(`b${res}.conv0.bias`, [tmp]);
    expect(`b${res}.conv1.weight`, [out, tmp, 3, 3]);
    expect(`b${res}.conv1.bias`, [out]);
    if (arch.architecture === 'resnet') expect(`b${res}.skip.weight`, [out, tmp, 1, 1]);
    inChannels = out;
  }
}
