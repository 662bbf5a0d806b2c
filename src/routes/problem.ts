/**
 * RFC 9457 problem details: the one error body every route returns. Handlers throw `HttpProblem`
 * (or a runtime error that `toProblem` maps); only `app.onError`, the zod validation hook and
 * `app.notFound` build error responses.
 */

import { z } from '@hono/zod-openapi';
import type { Context } from 'hono';

export const problemContentType = 'application/problem+json';

/** Base URI of our problem `type`s; each kind of error gets a stable fragment. */
const problemTypeBase = 'https://stylegan-serve.dev/problems/';

export const ProblemSchema = z
  .object({
    type: z.string().openapi({ example: `${problemTypeBase}validation` }),
    title: z.string().openapi({ example: 'Request validation failed' }),
    status: z.number().int().openapi({ example: 422 }),
    detail: z.string().optional().openapi({ example: 'seeds[0]: expected an integer in [0, 4294967295], got -1' }),
    instance: z.string().optional(),
    request_id: z.string().optional(),
    errors: z
      .array(z.object({ pointer: z.string(), message: z.string(), code: z.string().optional() }))
      .optional()
      .openapi({ description: 'One entry per invalid field, with a JSON pointer into the request.' }),
  })
  .openapi('Problem');

export type Problem = z.infer<typeof ProblemSchema>;

export type ProblemKind =
  | 'validation'
  | 'bad-request'
  | 'unauthorized'
  | 'not-found'
  | 'not-acceptable'
  | 'method-not-allowed'
  | 'unsupported-media-type'
  | 'payload-too-large'
  | 'too-many-requests'
  | 'unavailable'
  | 'deadline-exceeded'
  | 'client-closed'
  | 'internal';

const titles: Record<ProblemKind, string> = {
  validation: 'Request validation failed',
  'bad-request': 'Bad request',
  unauthorized: 'Unauthorized',
  'not-found': 'Not found',
  'not-acceptable': 'Not acceptable',
  'method-not-allowed': 'Method not allowed',
  'unsupported-media-type': 'Unsupported media type',
  'payload-too-large': 'Payload too large',
  'too-many-requests': 'Too many requests',
  unavailable: 'Service unavailable',
  'deadline-exceeded': 'Deadline exceeded',
  'client-closed': 'Client closed request',
  internal: 'Internal server error',
};

/** An error that carries its HTTP status and problem body; thrown by handlers, rendered by onError. */
export class HttpProblem extends Error {
  readonly status: number;
  readonly kind: ProblemKind;
  readonly errors?: Problem['errors'];
  readonly headers: Record<string, string>;

  constructor(
    status: number,
    kind: ProblemKind,
    detail: string,
    extra: { errors?: Problem['errors']; headers?: Record<string, string> } = {},
  ) {
    super(detail);
    this.name = 'HttpProblem';
    this.status = status;
    this.kind = kind;
    this.errors = extra.errors;
    this.headers = extra.headers ?? {};
  }
}

/** Builds a 422 for one invalid field, named by its JSON pointer. */
export function invalidField(pointer: string, message: string): HttpProblem {
  return new HttpProblem(422, 'validation', `${pointer.slice(1).replaceAll('/', '.') || 'body'}: ${message}`, {
    errors: [{ pointer, message }],
  });
}

/** Maximum number of field errors listed in one problem body; the detail counts the rest. */
export const maxListedErrors = 20;

/** Builds the problem body for `problem`, also used for the error part that ends a failed stream. */
export function problemBody(c: Context, problem: HttpProblem): Problem {
  const body: Problem = {
    type: problemTypeBase + problem.kind,
    title: titles[problem.kind],
    status: problem.status,
    detail: problem.message,
    instance: new URL(c.req.url).pathname,
  };
  const requestId = c.get('requestId' as never) as string | undefined;
  if (requestId) body.request_id = requestId;
  if (problem.errors) body.errors = problem.errors.slice(0, maxListedErrors);
  return body;
}

/** Builds the problem+json response for `problem` (the single place that renders error responses). */
export function problemResponse(c: Context, problem: HttpProblem): Response {
  const body = problemBody(c, problem);
  return new Response(JSON.stringify(body), {
    status: problem.status,
    headers: { 'Content-Type': problemContentType, ...problem.headers },
  });
}

/** OpenAPI response entries for the error statuses a route can return. */
export function problemResponses<S extends number>(...statuses: S[]) {
  const descriptions: Record<number, string> = {
    400: 'Malformed request body',
    401: 'Missing or invalid API key',
    404: 'Model or resource not found',
    406: 'The Accept header allows none of the response types',
    413: 'Request body too large',
    415: 'Unsupported content type',
    422: 'Invalid request fields',
    429: 'Queue full; retry after the number of seconds in Retry-After',
    499: 'Client closed the request',
    500: 'Internal error',
    503: 'Not ready or draining',
    504: 'Deadline passed before the work finished',
  };
  const out = {} as Record<S, { description: string; content: { [problemContentType]: { schema: typeof ProblemSchema } } }>;
  for (const status of statuses) {
    out[status] = { description: descriptions[status] ?? 'Error', content: { [problemContentType]: { schema: ProblemSchema } } };
  }
  return out;
}
