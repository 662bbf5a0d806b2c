/**
 * Entry point of the checkpoint readers: detects the format from the bytes and returns the
 * canonical weight set of types.ts. The file name only sharpens error messages. Every failure is a
 * `CheckpointError`.
 */

import { CheckpointError, supportedFormatsText } from './errors.js';
import { PersistentModule, nvlabsGlobals, nvlabsWeights } from './nvlabs.js';
import { unpickle } from './pickle-vm.js';
import { rosinalityGlobals, rosinalityWeights } from './rosinality.js';
import { TfNetwork, tensorflowGlobals, tensorflowWeights } from './tensorflow.js';
import { allowlist, readLegacyTorch, readTorchZip } from './torch-storage.js';
import type { GeneratorWeights } from './types.js';
import { isZip } from './zip.js';

export { CheckpointError, type CheckpointErrorCode } from './errors.js';
export type { GeneratorWeights, GeneratorArchitecture, Tensor, SourceFormat } from './types.js';

export interface ReadCheckpointOptions {
  /** Base name of the file, used only in error messages. */
  fileName?: string;
}

/** Bytes 2..11 of a legacy torch.save file: LONG1 of length 10 holding the torch magic number. */
const legacyTorchPrefix = [0x8a, 0x0a, 0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19];

function startsWithLegacyTorchMagic(bytes: Uint8Array): boolean {
  return bytes[0] === 0x80 && legacyTorchPrefix.every((b, i) => bytes[2 + i] === b);
}

function isPickleWithProto(bytes: Uint8Array): boolean {
  return bytes.length >= 2 && bytes[0] === 0x80 && bytes[1] >= 2 && bytes[1] <= 5;
}

/**
 * Recognises an ONNX ModelProto that starts with field 1 (ir_version, a varint) followed by another
 * ModelProto field tag, where serializers that write fields in field-number order put them. A
 * heuristic, used only to give a better message.
 */
function looksLikeOnnx(bytes: Uint8Array, fileName?: string): boolean {
  if (fileName?.toLowerCase().endsWith('.onnx')) return true;
  const modelProtoTags = new Set([0x12, 0x1a, 0x22, 0x28, 0x32, 0x3a, 0x42, 0x72, 0xa2, 0xca]);
  return bytes.length > 3 && bytes[0] === 0x08 && bytes[1] >= 1 && bytes[1] <= 30 && modelProtoTags.has(bytes[2]);
}

function describeUnknown(bytes: Uint8Array): string {
  if (bytes[0] === 0x1f && bytes[1] === 0x8b) return 'a gzip stream (decompress it first)';
  if (bytes[0] === 0x89 && bytes[1] === 0x48 && bytes[2] === 0x44 && bytes[3] === 0x46) return 'an HDF5 file';
  if (bytes.length > 10 && bytes[8] === 0x7b && bytes[9] === 0x22) return 'a safetensors file';
  if (bytes[0] === 0x80) return `a pickle with protocol byte ${bytes[1]} (protocols 2-5 are supported)`;
  const head = [...bytes.subarray(0, 8)].map((b) => b.toString(16).padStart(2, '0')).join(' ');
  return `an unknown format (first bytes: ${head})`;
}

function pickleCheckpoint(bytes: Uint8Array): GeneratorWeights {
  const findClass = allowlist([...nvlabsGlobals(), ...tensorflowGlobals()]);
  const { value, protocol } = unpickle(bytes, { findClass, context: 'network pickle' });
  const details = { pickleProtocol: protocol };
  const isSnapshot = value instanceof Map && (value.has('G_ema') || value.has('G'));
  if (isSnapshot || value instanceof PersistentModule) return nvlabsWeights(value, details);
  if (value instanceof TfNetwork || (Array.isArray(value) && value.some((v) => v instanceof TfNetwork))) return tensorflowWeights(value, details);
  const keys = value instanceof Map ? ` with keys ${[...value.keys()].slice(0, 8).map(String).join(', ')}` : '';
  throw new CheckpointError(
    'unsupported_format',
    `Unsupported pickle: it holds a ${value instanceof Map ? 'dict' : Array.isArray(value) ? 'tuple/list' : typeof value}${keys}, ` +
      `not a StyleGAN2 network snapshot. Supported: ${supportedFormatsText}.`,
  );
}

/** Reads a checkpoint file's bytes into the canonical weight set. Throws `CheckpointError`. */
export function readCheckpoint(bytes: Uint8Array, options: ReadCheckpointOptions = {}): GeneratorWeights {
  const file = options.fileName ? ` ${JSON.stringify(options.fileName)}` : '';
  if (bytes.length === 0) {
    throw new CheckpointError('truncated', `The checkpoint file${file} is empty (0 bytes). Supported: ${supportedFormatsText}.`);
  }
  if (isZip(bytes)) {
    const value = readTorchZip(bytes, allowlist(rosinalityGlobals()), 'rosinality checkpoint (torch zip format)');
    return rosinalityWeights(value, { container: 'torch-zip' });
  }
  if (startsWithLegacyTorchMagic(bytes)) {
    const { value } = readLegacyTorch(bytes, allowlist(rosinalityGlobals()), 'rosinality checkpoint (legacy torch format)');
    return rosinalityWeights(value, { container: 'torch-legacy' });
  }
  if (isPickleWithProto(bytes)) return pickleCheckpoint(bytes);
  if (looksLikeOnnx(bytes, options.fileName)) {
    throw new CheckpointError(
      'unsupported_format',
      `The file${file} is already an ONNX model, not a checkpoint. Convert the original .pkl or .pt checkpoint instead; ` +
        `supported: ${supportedFormatsText}.`,
    );
  }
  throw new CheckpointError('unsupported_format', `The file${file} is ${describeUnknown(bytes)}, not a supported checkpoint. Supported: ${supportedFormatsText}.`);
}
