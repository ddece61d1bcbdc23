import { describe, expect, it } from '@jest/globals';
import { APIConnectionError, APIConnectionTimeoutError, APIError, APIUserAbortError } from 'openai';
import {
  BodyTimeoutError,
  embeddingErrorCode,
  EmbeddingError,
  ModelError,
  toEmbeddingError,
  toModelError,
  type ModelCallContext,
} from './errors.js';

const ctx: ModelCallContext = { kind: 'chat', url: 'http://llm.test/v1/chat/completions', model: 'm', timeoutMs: 5000, maxRetries: 2 };
const statusError = (status: number, body: unknown = { error: { message: `boom ${status}` } }, headers: Record<string, string> = {}) =>
  APIError.generate(status, body as object, undefined, new Headers(headers));

describe('toModelError', () => {
  it('maps the SDK error classes to stable codes and reasons', () => {
    const cases: Array<[unknown, string, string, RegExp]> = [
      [new APIUserAbortError(), 'MODEL_ABORTED', 'aborted', /aborted/],
      [new APIConnectionTimeoutError(), 'MODEL_UNAVAILABLE', 'timeout', /no answer within 5000 ms \(gave up after 3 attempts\)/],
      [
        new APIConnectionError({ cause: Object.assign(new Error('fetch failed'), { cause: { code: 'ECONNREFUSED' } }) }),
        'MODEL_UNAVAILABLE',
        'connection',
        /cannot reach the endpoint: fetch failed \(ECONNREFUSED\) \(gave up after 3 attempts\)/,
      ],
      [statusError(429), 'MODEL_UNAVAILABLE', 'rate_limited', /answered 429: boom 429 \(gave up after 3 attempts\)/],
      [statusError(500), 'MODEL_UNAVAILABLE', 'server_error', /answered 500: boom 500/],
      [statusError(503), 'MODEL_UNAVAILABLE', 'server_error', /answered 503/],
      [statusError(408), 'MODEL_UNAVAILABLE', 'timeout', /answered 408/],
      [statusError(400), 'MODEL_ERROR', 'rejected', /rejected the request with 400: boom 400$/],
      [statusError(401), 'MODEL_ERROR', 'rejected', /rejected the request with 401/],
      [statusError(404), 'MODEL_ERROR', 'rejected', /rejected the request with 404/],
      [statusError(422, { error: 'input too long' }), 'MODEL_ERROR', 'rejected', /422: input too long/],
      [
        new APIError(undefined, { message: 'engine died' }, undefined, undefined),
        'MODEL_UNAVAILABLE',
        'server_error',
        /mid-answer: engine died/,
      ],
      [new SyntaxError('Unexpected token <'), 'MODEL_ERROR', 'bad_output', /not valid JSON: Unexpected token </],
      [new BodyTimeoutError(5000), 'MODEL_UNAVAILABLE', 'timeout', /no data for 5000 ms/],
      [
        new TypeError('terminated', { cause: Object.assign(new Error('other side closed'), { code: 'UND_ERR_SOCKET' }) }),
        'MODEL_UNAVAILABLE',
        'connection',
        /while the answer was being read: terminated \(UND_ERR_SOCKET\)/,
      ],
      [new TypeError("Cannot read properties of undefined (reading 'x')"), 'MODEL_ERROR', 'unknown', /unexpected failure/],
    ];
    for (const [thrown, code, reason, message] of cases) {
      const err = toModelError(thrown, ctx);
      expect(err).toBeInstanceOf(ModelError);
      expect({ code: err.code, reason: err.details.reason }).toEqual({ code, reason });
      expect(err.message).toMatch(message);
      expect(err.message.startsWith('chat model "m" at http://llm.test/v1/chat/completions: ')).toBe(true);
      expect(err.cause).toBe(thrown);
    }
  });

  it('keeps the status and the number of attempts', () => {
    expect(toModelError(statusError(503), ctx).details).toMatchObject({ status: 503, attempts: 3 });
    expect(toModelError(statusError(400), ctx).details).toMatchObject({ status: 400, attempts: 1 });
    // A server that says not to retry was not retried.
    const notRetried = toModelError(statusError(503, undefined, { 'x-should-retry': 'false' }), ctx);
    expect(notRetried.details.attempts).toBe(1);
    expect(notRetried.message).not.toMatch(/gave up/);
    // Without retries there is nothing to give up on.
    expect(toModelError(statusError(503), { ...ctx, maxRetries: 0 }).message).not.toMatch(/gave up/);
  });

  it('returns a ModelError as it is', () => {
    const err = toModelError(statusError(400), ctx);
    expect(toModelError(err, ctx)).toBe(err);
  });
});

describe('EmbeddingError mapping', () => {
  const embeddings: ModelCallContext = { ...ctx, kind: 'embeddings', url: 'http://e.test/v1/embeddings' };

  it('keeps the embedding codes dense.ts always had', () => {
    expect(embeddingErrorCode(toModelError(statusError(503), embeddings))).toBe('EMBEDDINGS_UNAVAILABLE');
    expect(embeddingErrorCode(toModelError(statusError(429), embeddings))).toBe('EMBEDDINGS_UNAVAILABLE');
    expect(embeddingErrorCode(toModelError(new APIConnectionTimeoutError(), embeddings))).toBe('EMBEDDINGS_UNAVAILABLE');
    expect(embeddingErrorCode(toModelError(new APIUserAbortError(), embeddings))).toBe('EMBEDDINGS_UNAVAILABLE');
    expect(embeddingErrorCode(toModelError(statusError(400), embeddings))).toBe('EMBEDDINGS_REJECTED');
    expect(embeddingErrorCode(toModelError(statusError(404), embeddings))).toBe('EMBEDDINGS_REJECTED');
    expect(embeddingErrorCode(toModelError(new SyntaxError('x'), embeddings))).toBe('EMBEDDINGS_BAD_RESPONSE');
  });

  it('carries the message, URL, model and status', () => {
    const err = toEmbeddingError(toModelError(statusError(404), embeddings));
    expect(err).toBeInstanceOf(EmbeddingError);
    expect(err.message).toMatch(/^embeddings model "m" at http:\/\/e\.test\/v1\/embeddings: rejected the request with 404/);
    expect(err.details).toEqual({ url: 'http://e.test/v1/embeddings', model: 'm', status: 404 });
    expect(err.cause).toBeInstanceOf(ModelError);
  });
});
