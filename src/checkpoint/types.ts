/**
 * The canonical generator weight set: what every checkpoint reader produces and the only thing the
 * graph builder reads. Readers translate names, layouts and conventions (TensorFlow kernel flips,
 * rosinality's leading singleton dims, the +1 on TensorFlow modulation biases) into this one form,
 * so the builder never depends on where a model came from.
 *
 * Conventions (the stylegan2-ada-pytorch ones):
 * - Tensor names are the stylegan2-ada-pytorch `G_ema` state-dict names without the leading
 *   `G_ema.`, e.g. `mapping.fc0.weight`, `synthesis.b32.conv0.affine.bias`.
 * - Weights are stored raw, before the equalized learning-rate gains. The builder derives every gain
 *   from the architecture numbers (see `GeneratorArchitecture`).
 * - Affine (modulation) biases already include the +1 that TensorFlow adds at run time.
 * - `noise_const` buffers are `[R, R]`; `noise_strength` is a 0-d tensor (shape `[]`).
 */

export type SourceFormat =
  | 'nvlabs-pickle' // stylegan2-ada-pytorch or stylegan3 network pickle (training.networks[_stylegan2])
  | 'tf-pickle' // original TensorFlow StyleGAN2 or stylegan2-ada TF network pickle
  | 'rosinality-pt' // rosinality/stylegan2-pytorch torch.save checkpoint
  | 'random'; // weights drawn by our own seeded generator (the sample model, benchmarks)

/** A dense float32 tensor in C order. */
export interface Tensor {
  shape: number[];
  data: Float32Array;
}

export type Activation = 'lrelu' | 'linear' | 'relu';

/** Architecture numbers read from the checkpoint (never assumed from a named config). */
export interface GeneratorArchitecture {
  zDim: number;
  wDim: number;
  /** Label length; 0 for unconditional models. */
  cDim: number;
  /** Output side length R; the output image is `[N, imgChannels, R, R]`. */
  resolution: number;
  imgChannels: number;
  /** Number of per-layer latents: 2·log2(R) − 2 for the skip and orig architectures. */
  numWs: number;
  /** Number of fully connected layers in the mapping network. */
  mappingLayers: number;
  /** Hidden width of the mapping network (`layer_features`); usually equals wDim. */
  mappingFeatures: number;
  /** Width of the label embedding (`embed_features`); 0 when cDim is 0. */
  embedFeatures: number;
  /** Learning-rate multiplier of the mapping layers (0.01 in every public config). */
  mappingLrMultiplier: number;
  /** Feature channels per block resolution, e.g. `{4: 512, 8: 512, ..., 1024: 32}`. */
  channels: Record<number, number>;
  /** Clamp bound for conv and ToRGB outputs, or null when the model was trained without one. */
  convClamp: number | null;
  architecture: 'skip' | 'orig' | 'resnet';
  /** Activation of synthesis conv layers (lrelu in every public model). */
  activation: Activation;
  /** False when the model was trained without per-pixel noise inputs. */
  useNoise: boolean;
  /** Resolutions whose blocks were trained in float16; informational only, we compute in float32. */
  fp16Resolutions: number[];
}

/** Everything a reader returns. */
export interface GeneratorWeights {
  arch: GeneratorArchitecture;
  /** Canonical tensors keyed by stylegan2-ada-pytorch name (see file comment). */
  tensors: Map<string, Tensor>;
  /** Truncation centre `[wDim]`; estimated when the checkpoint has none (see `wAvgSource`). */
  wAvg: Float32Array;
  /** Origin of `wAvg`: stored in the checkpoint, or estimated by the converter. */
  wAvgSource: 'checkpoint' | 'estimated';
  /** Optional per-class truncation centres `[cDim, wDim]` (row-major) for conditional models. */
  wAvgPerClass?: Float32Array;
  source: {
    format: SourceFormat;
    /** Format details, e.g. `{ pickleProtocol: 4, networkClass: 'training.networks.Generator' }`. */
    details: Record<string, string | number | boolean>;
  };
  /** Non-fatal remarks a reader wants the converter to log (ignored kwargs and the like). */
  warnings: string[];
  /** The discriminator's feature blocks, when the checkpoint carries a supported one (NVlabs pickles). */
  discriminator?: DiscriminatorWeights;
}

/**
 * Architecture numbers of a stylegan2-ada-pytorch discriminator, feature blocks only (`b{R}` down to
 * `b8`; the epilogue `b4` is not read). Block `b{R}` starts with `fromrgb`.
 */
export interface DiscriminatorArchitecture {
  resolution: number;
  imgChannels: number;
  /** Channels inside block b{res} (`tmp_channels`: fromrgb output, conv0 in and out). */
  tmpChannels: Record<number, number>;
  /** Output channels of block b{res} (conv1 and skip). */
  outChannels: Record<number, number>;
  /** Clamp bound of fromrgb, conv0 and conv1 outputs, or null. */
  convClamp: number | null;
  /** 'resnet' adds the 1x1 skip branch; 'orig' has none. */
  architecture: 'resnet' | 'orig';
}

/**
 * Discriminator tensors keyed by their stylegan2-ada-pytorch `D` state-dict names without `D.`,
 * e.g. `b32.fromrgb.weight`, `b16.conv1.bias`, `b16.skip.weight`; raw, before weight gains.
 */
export interface DiscriminatorWeights {
  arch: DiscriminatorArchitecture;
  tensors: Map<string, Tensor>;
}

/** Feature block resolutions of a discriminator, R down to 8. */
export function discriminatorBlockResolutions(resolution: number): number[] {
  const out: number[] = [];
  for (let r = resolution; r >= 8; r /= 2) out.push(r);
  return out;
}

/** Block resolutions 4, 8, ..., R. */
export function blockResolutions(resolution: number): number[] {
  const out: number[] = [];
  for (let r = 4; r <= resolution; r *= 2) out.push(r);
  return out;
}
