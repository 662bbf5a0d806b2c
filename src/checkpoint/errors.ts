/**
 * The one error type every checkpoint reader throws. Callers branch on `code`; the message names the
 * detected format, the bad value and what is supported instead.
 */

export type CheckpointErrorCode =
  /** Not a checkpoint format we read (or a format version we do not read). */
  | 'unsupported_format'
  /** A readable checkpoint of a network we cannot convert (StyleGAN3, TF LabelConcat, ...). */
  | 'unsupported_model'
  /** A pickle references a global outside the reader's allowlist. */
  | 'disallowed_global'
  /** The input ends before a declared length, record or opcode is complete. */
  | 'truncated'
  /** The bytes parse but do not have the structure the format requires. */
  | 'invalid_structure'
  /** A declared size, nesting depth or count exceeds the reader's limits. */
  | 'too_large';

export class CheckpointError extends Error {
  readonly code: CheckpointErrorCode;

  constructor(code: CheckpointErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'CheckpointError';
    this.code = code;
  }
}

/** Formats that `readCheckpoint` reads, for messages that reject something else. */
export const supportedFormatsText =
  'NVlabs network pickles (.pkl from stylegan2-ada-pytorch, or StyleGAN2 generators from the stylegan3 ' +
  'repository), TensorFlow StyleGAN2 network pickles (.pkl, Network state version 4 or 5), and ' +
  'rosinality stylegan2-pytorch checkpoints (.pt, torch.save zip or legacy format)';
