/**
 * Errors the runtime throws to the HTTP layer. Each has a stable `code` that the routes map to an
 * HTTP status (QueueFull 429/503, DeadlineExceeded 504, Cancelled 499, Unavailable 503,
 * ModelNotFound 404, InvalidInput 422, Inference 500).
 */

export type RuntimeErrorCode =
  | 'queue_full'
  | 'deadline_exceeded'
  | 'cancelled'
  | 'unavailable'
  | 'model_not_found'
  | 'invalid_input'
  | 'inference_failed';

export abstract class RuntimeError extends Error {
  abstract readonly code: RuntimeErrorCode;
}

/** The queue has no room for the job's images; retry after `retryAfterSeconds`. */
export class QueueFullError extends RuntimeError {
  readonly code = 'queue_full';
  constructor(
    message: string,
    /** Estimated seconds until the queue has room, at least 1. */
    readonly retryAfterSeconds: number,
  ) {
    super(message);
    this.name = 'QueueFullError';
  }
}

/** The job's deadline passed before all its images were computed. */
export class DeadlineExceededError extends RuntimeError {
  readonly code = 'deadline_exceeded';
  constructor(message: string) {
    super(message);
    this.name = 'DeadlineExceededError';
  }
}

/** The job's abort signal fired. */
export class CancelledError extends RuntimeError {
  readonly code = 'cancelled';
  constructor(message: string) {
    super(message);
    this.name = 'CancelledError';
  }
}

/** The service is starting, draining or closed and takes no new work. */
export class UnavailableError extends RuntimeError {
  readonly code = 'unavailable';
  constructor(message: string) {
    super(message);
    this.name = 'UnavailableError';
  }
}

export class ModelNotFoundError extends RuntimeError {
  readonly code = 'model_not_found';
  constructor(
    message: string,
    readonly model: string,
  ) {
    super(message);
    this.name = 'ModelNotFoundError';
  }
}

/** A latent, label, psi or seed that does not fit the model. */
export class InvalidInputError extends RuntimeError {
  readonly code = 'invalid_input';
  constructor(message: string) {
    super(message);
    this.name = 'InvalidInputError';
  }
}

/** ONNX Runtime failed on a batch, or the inference worker exited while running it. */
export class InferenceError extends RuntimeError {
  readonly code = 'inference_failed';
  constructor(message: string) {
    super(message);
    this.name = 'InferenceError';
  }
}
