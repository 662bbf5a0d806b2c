/**
 * The contract between the converter, which writes `models/<name>/`, and the runtime, which serves
 * it. A model folder holds:
 *
 * - `model.json`: a `ModelManifest`.
 * - `mapping.onnx`: inputs `z [N, zDim]` float32, `c [N, cDim]` float32 (only when cDim > 0),
 *   `psi [N]` float32, `truncation_cutoff [N]` int64 (layers `l < cutoff` are truncated; pass numWs
 *   for all layers); output `ws [N, numWs, wDim]` float32. Rows with psi exactly 1 skip truncation,
 *   as the reference generator does.
 * - `synthesis.onnx`: inputs `ws [N, numWs, wDim]` float32 and one unit-variance noise map per
 *   noise layer, named as in `ModelManifest.noiseLayers` (`noise_0`, `noise_1`, ...), each
 *   `[N or 1, 1, R, R]` float32 (a batch of 1 broadcasts over N); output `img [N, imgChannels, R, R]`
 *   float32, nominally in [-1, 1]. The graph multiplies each noise map by its `noise_strength`.
 * - `noise_const.f32.bin`: the stored `noise_const` buffers, concatenated in `noiseLayers` order,
 *   little-endian float32; fed to the noise inputs for noise mode `const`.
 * - `synthesis_grad.onnx` (optional; folders converted before it existed lack it): synthesis plus
 *   the projection loss and its explicit backward pass. Inputs are those of synthesis.onnx plus
 *   `target [N, imgChannels, R, R]` and `loss_weights [4]`. Outputs are `loss [N]`, `img`,
 *   `grad_ws [N, numWs, wDim]` and `grad_noise_<i> [N, 1, R, R]` (see src/graph/gradient.ts).
 * - `synthesis_grad_d.onnx` (optional; only for checkpoints that carry a discriminator): the same
 *   inputs and outputs as synthesis_grad.onnx, with the discriminator-feature loss (see
 *   src/graph/gradient-discriminator.ts) instead of the pixel and SSIM loss.
 * - `synthesis_fp16.onnx` (optional, written by `convert --fp16`): the same inputs and output as
 *   synthesis.onnx, all float32, with float16 weights and feature maps inside (see
 *   src/graph/synthesis-fp16.ts). Served with `--precision fp16`.
 * - `directions.f32.bin` (optional): closed-form semantic directions, one `[wDim, wDim]` block of
 *   unit eigenvectors (rows, by descending eigenvalue) per set in `ModelManifest.directions`.
 */

import type { GeneratorArchitecture, SourceFormat } from '../checkpoint/types.js';

/** Bumped whenever the graphs or the manifest change in a way that needs a re-conversion. */
export const converterVersion = 1;

export const modelManifestFile = 'model.json';
export const mappingGraphFile = 'mapping.onnx';
export const synthesisGraphFile = 'synthesis.onnx';
export const noiseConstFile = 'noise_const.f32.bin';
export const directionsFile = 'directions.f32.bin';
export const synthesisGradientGraphFile = 'synthesis_grad.onnx';
export const synthesisFp16GraphFile = 'synthesis_fp16.onnx';
export const discriminatorGradientGraphFile = 'synthesis_grad_d.onnx';

/** One set of closed-form directions stored in `directions.f32.bin`. */
export interface DirectionSetEntry {
  /** `all`, `coarse`, `middle` or `fine`. */
  name: string;
  /** ws indices the set's layers read; edits with this set apply to these by default. */
  layers: number[];
  /** Synthesis layers whose affine weights were factorized, e.g. `b8.conv0`. */
  sources: string[];
  /** Eigenvalues of AᵀA, descending. */
  eigenvalues: number[];
  /** Offset of this set's `[wDim, wDim]` block in `directions.f32.bin`, in floats. */
  offset: number;
}

/** One noise input of the synthesis graph. */
export interface NoiseLayer {
  /** Graph input name, `noise_<index>`. */
  name: string;
  /** The layer it feeds, e.g. `b8.conv0`. */
  layer: string;
  /** Side length R of the `[*, 1, R, R]` map. */
  resolution: number;
  /** Offset of this layer's `R·R` floats inside `noise_const.f32.bin`, in floats. */
  offset: number;
}

export interface ModelManifest {
  name: string;
  converterVersion: number;
  /** ISO 8601 time of conversion; the only field that differs between two conversions. */
  createdAt: string;
  source: {
    format: SourceFormat;
    /** Base name of the converted file, or a description for generated models. */
    file: string;
    /** sha256 of the source file in hex, or null for generated models. */
    sha256: string | null;
    bytes: number | null;
    details: Record<string, string | number | boolean>;
  };
  arch: GeneratorArchitecture;
  /** Truncation centre, `[wDim]`. */
  wAvg: number[];
  wAvgSource: 'checkpoint' | 'estimated';
  /** Per-class truncation centres `[cDim][wDim]`, when the checkpoint has them. */
  wAvgPerClass?: number[][];
  noiseLayers: NoiseLayer[];
  /** Closed-form directions; absent in folders written before they existed. */
  directions?: { file: string; sets: DirectionSetEntry[] };
  files: {
    mapping: string;
    synthesis: string;
    noiseConst: string;
    /** The gradient graph used by projection; absent in folders converted before it existed. */
    synthesisGrad?: string;
    /** The discriminator-feature gradient graph; present only when the checkpoint has a discriminator. */
    synthesisGradD?: string;
    /** The float16 synthesis graph; present only when converted with `--fp16`. */
    synthesisFp16?: string;
  };
  /** sha256 of each file above, so a damaged folder is detected at load time. */
  fileSha256: Record<string, string>;
}
