/** Maps runtime errors to HTTP problems: the one place that decides their status codes. */

import {
  CancelledError,
  DeadlineExceededError,
  InvalidInputError,
  ModelNotFoundError,
  QueueFullError,
  UnavailableError,
} from '../runtime/errors.js';
import { HttpProblem } from './problem.js';

export function toHttpProblem(err: unknown): HttpProblem {
  if (err instanceof HttpProblem) return err;
  if (err instanceof QueueFullError) {
    return new HttpProblem(429, 'too-many-requests', err.message, {
      headers: { 'Retry-After': String(Math.max(1, Math.ceil(err.retryAfterSeconds))) },
    });
  }
  if (err instanceof UnavailableError) return new HttpProblem(503, 'unavailable', err.message, { headers: { 'Retry-After': '5' } });
  if (err instanceof DeadlineExceededError) return new HttpProblem(504, 'deadline-exceeded', err.message);
  if (err instanceof CancelledError) return new HttpProblem(499, 'client-closed', err.message);
  if (err instanceof ModelNotFoundError) return new HttpProblem(404, 'not-found', err.message);
  if (err instanceof InvalidInputError) return new HttpProblem(422, 'validation', err.message);
  const message = err instanceof Error ? err.message : String(err);
  return new HttpProblem(500, 'internal', `internal error: ${message}`);
}
