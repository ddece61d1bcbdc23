/**
 * Why a model call failed, with a stable code, mapped from the openai SDK's
 * error classes (and from what can go wrong once an answer is being read).
 *
 * - MODEL_UNAVAILABLE: worth trying again later or degrading gracefully:
 *   cannot connect, timed out, 408/409/429/5xx after the SDK's retries, the
 *   connection dropped or the server reported an error mid-answer, an answer
 *   stream that ended before the model finished.
 * - MODEL_ERROR: trying again will not help: a 4xx other than those (bad
 *   request, unknown model, bad key), an answer that is not what was asked
 *   for (not JSON, wrong shape), a refusal.
 * - MODEL_ABORTED: the caller's AbortSignal fired.
 */
import { APIConnectionError, APIConnectionTimeoutError, APIError, APIUserAbortError } from 'openai';

export type ModelErrorCode = 'MODEL_UNAVAILABLE' | 'MODEL_ERROR' | 'MODEL_ABORTED';

export type ModelErrorReason =
  'connection' | 'timeout' | 'rate_limited' | 'server_error' | 'incomplete' | 'rejected' | 'bad_output' | 'refused' | 'aborted' | 'unknown';

export interface ModelErrorDetails {
  kind: 'chat' | 'embeddings';
  /** The endpoint, e.g. `http://localhost:11434/v1/chat/completions`. */
  url: string;
  model: string;
  reason: ModelErrorReason;
  /** HTTP status of the answer that failed, if there was one. */
  status?: number | undefined;
  /** How many requests were made (the SDK's retries included), when known. */
  attempts?: number | undefined;
}

export class ModelError extends Error {
  override readonly name = 'ModelError';
  constructor(
    readonly code: ModelErrorCode,
    message: string,
    readonly details: ModelErrorDetails,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/** What a call was, to word its errors. */
export interface ModelCallContext {
  kind: 'chat' | 'embeddings';
  url: string;
  model: string;
  timeoutMs: number;
  maxRetries: number;
}

/** Thrown by the client's fetch when an answer's body stays silent longer than the timeout. */
export class BodyTimeoutError extends Error {
  override readonly name = 'BodyTimeoutError';
  constructor(readonly timeoutMs: number) {
    super(`no data for ${timeoutMs} ms while reading the answer`);
  }
}

export function modelError(
  ctx: Pick<ModelCallContext, 'kind' | 'url' | 'model'>,
  code: ModelErrorCode,
  reason: ModelErrorReason,
  text: string,
  extra: { status?: number | undefined; attempts?: number | undefined; cause?: unknown } = {},
): ModelError {
  return new ModelError(
    code,
    `${ctx.kind} model "${ctx.model}" at ${ctx.url}: ${text}`,
    { kind: ctx.kind, url: ctx.url, model: ctx.model, reason, status: extra.status, attempts: extra.attempts },
    { cause: extra.cause },
  );
}

/** Statuses the SDK retries (unless the server sends `x-should-retry: false`). */
export function isRetryableStatus(status: number): boolean {
  return status === 408 || status === 409 || status === 429 || status >= 500;
}

/** Maps anything a model call threw to a ModelError (a ModelError is returned as is). */
export function toModelError(err: unknown, ctx: ModelCallContext): ModelError {
  if (err instanceof ModelError) return err;
  // The SDK made maxRetries + 1 attempts before it let a retryable failure through.
  const exhausted = () => {
    const attempts = ctx.maxRetries + 1;
    return { attempts, suffix: attempts > 1 ? ` (gave up after ${attempts} attempts)` : '' };
  };
  if (err instanceof APIUserAbortError) return modelError(ctx, 'MODEL_ABORTED', 'aborted', 'the request was aborted', { cause: err });
  if (err instanceof APIConnectionTimeoutError) {
    const { attempts, suffix } = exhausted();
    return modelError(ctx, 'MODEL_UNAVAILABLE', 'timeout', `no answer within ${ctx.timeoutMs} ms${suffix}`, { attempts, cause: err });
  }
  if (err instanceof APIConnectionError) {
    const { attempts, suffix } = exhausted();
    const text = `cannot reach the endpoint: ${networkReason(err.cause ?? err)}${suffix}`;
    return modelError(ctx, 'MODEL_UNAVAILABLE', 'connection', text, { attempts, cause: err });
  }
  if (err instanceof APIError) {
    const status = err.status;
    if (status === undefined) {
      // An error event inside a stream that had started well.
      return modelError(ctx, 'MODEL_UNAVAILABLE', 'server_error', `reported an error mid-answer: ${serverMessage(err)}`, { cause: err });
    }
    if (isRetryableStatus(status)) {
      const notRetried = err.headers?.get('x-should-retry') === 'false';
      const { attempts, suffix } = notRetried ? { attempts: 1, suffix: '' } : exhausted();
      const reason = status === 429 ? 'rate_limited' : status === 408 ? 'timeout' : 'server_error';
      const text = `answered ${status}: ${serverMessage(err)}${suffix}`;
      return modelError(ctx, 'MODEL_UNAVAILABLE', reason, text, { status, attempts, cause: err });
    }
    const text = `rejected the request with ${status}: ${serverMessage(err)}`;
    return modelError(ctx, 'MODEL_ERROR', 'rejected', text, { status, attempts: 1, cause: err });
  }
  // Not an SDK error: something failed while the answer was being read.
  const name = errorName(err);
  if (findInCauses(err, (e) => errorName(e) === 'BodyTimeoutError')) {
    return modelError(ctx, 'MODEL_UNAVAILABLE', 'timeout', `no data for ${ctx.timeoutMs} ms while reading the answer`, { cause: err });
  }
  if (name === 'AbortError') return modelError(ctx, 'MODEL_ABORTED', 'aborted', 'the request was aborted', { cause: err });
  if (name === 'SyntaxError') {
    return modelError(ctx, 'MODEL_ERROR', 'bad_output', `the answer is not valid JSON: ${errorMessage(err)}`, { cause: err });
  }
  // undici: TypeError("terminated") caused by a SocketError when the other side closes mid-body.
  const hasSystemCode = findInCauses(err, (e) => typeof (e as { code?: unknown }).code === 'string') !== undefined;
  if (hasSystemCode || (name === 'TypeError' && /terminated|fetch failed|socket|network/i.test(errorMessage(err)))) {
    const text = `the connection failed while the answer was being read: ${networkReason(err)}`;
    return modelError(ctx, 'MODEL_UNAVAILABLE', 'connection', text, { cause: err });
  }
  return modelError(ctx, 'MODEL_ERROR', 'unknown', `unexpected failure: ${errorMessage(err)}`, { cause: err });
}

export type EmbeddingErrorCode = 'EMBEDDINGS_UNAVAILABLE' | 'EMBEDDINGS_REJECTED' | 'EMBEDDINGS_BAD_RESPONSE';

/** Why embeddings could not be had, with a stable code (the codes lib/search/dense.ts always had). */
export class EmbeddingError extends Error {
  override readonly name = 'EmbeddingError';
  constructor(
    readonly code: EmbeddingErrorCode,
    message: string,
    readonly details: { url: string; model: string; status?: number | undefined },
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/** MODEL_UNAVAILABLE (and MODEL_ABORTED) → EMBEDDINGS_UNAVAILABLE; MODEL_ERROR → EMBEDDINGS_REJECTED for a refused request, EMBEDDINGS_BAD_RESPONSE otherwise. */
export function embeddingErrorCode(err: ModelError): EmbeddingErrorCode {
  if (err.code !== 'MODEL_ERROR') return 'EMBEDDINGS_UNAVAILABLE';
  return err.details.reason === 'rejected' ? 'EMBEDDINGS_REJECTED' : 'EMBEDDINGS_BAD_RESPONSE';
}

export function toEmbeddingError(err: ModelError): EmbeddingError {
  const { url, model, status } = err.details;
  return new EmbeddingError(embeddingErrorCode(err), err.message, { url, model, status }, { cause: err });
}

/** The message the server put in its error body; the SDK keeps `body.error` (an object or, from some servers, a string). */
function serverMessage(err: APIError): string {
  const body: unknown = err.error;
  if (typeof body === 'string' && body) return body;
  const message = (body as { message?: unknown } | undefined)?.message;
  if (typeof message === 'string' && message) return message;
  return err.message.replace(/^\d{3} /, '');
}

// Errors from undici come from Node's own realm (not Jest's, in tests): check names, not classes.
function errorName(err: unknown): string | undefined {
  return typeof err === 'object' && err !== null && typeof (err as { name?: unknown }).name === 'string'
    ? (err as { name: string }).name
    : undefined;
}

function errorMessage(err: unknown): string {
  const message = typeof err === 'object' && err !== null ? (err as { message?: unknown }).message : undefined;
  return typeof message === 'string' ? message : String(err);
}

function findInCauses(err: unknown, test: (e: object) => boolean): object | undefined {
  let current: unknown = err;
  for (let depth = 0; depth < 6 && typeof current === 'object' && current !== null; depth++) {
    if (test(current)) return current;
    current = (current as { cause?: unknown }).cause;
  }
  return undefined;
}

/** "fetch failed (ECONNREFUSED)": the error's message and the first system error code among its causes. */
function networkReason(err: unknown): string {
  const coded = findInCauses(err, (e) => typeof (e as { code?: unknown }).code === 'string') as { code: string } | undefined;
  const message = errorMessage(err);
  return coded && !message.includes(coded.code) ? `${message} (${coded.code})` : message;
}
