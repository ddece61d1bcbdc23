/**
 * The one way this code base makes an OpenAI-compatible client (OpenAI, Ollama's
 * /v1, vLLM, LM Studio, llama.cpp server, TEI, LiteLLM...): the official `openai`
 * SDK, whose retries (connection errors, timeouts, 408, 409, 429, 5xx; exponential
 * backoff with jitter, 0.5 s doubling up to 8 s; `Retry-After` / `retry-after-ms`
 * honoured) and per-request timeout are used as they are.
 *
 * The fetch given to the SDK adds two guards the SDK does not have:
 * - the SDK's timeout stops at the response headers: a body (or an answer
 *   stream) that then goes silent would hang forever. Here a body that sends
 *   nothing for `timeoutMs` fails with a BodyTimeoutError (and the connection
 *   is closed);
 * - the SDK sleeps for whatever `Retry-After` says, without bound and without
 *   watching the caller's AbortSignal. Here a longer wait is cut to
 *   `maxRetryAfterMs`.
 * It also logs (warn) every answer the SDK will retry on and every connection failure.
 */
import OpenAI from 'openai';
import type { Logger } from '../logger.js';
import { BodyTimeoutError, isRetryableStatus } from './errors.js';

/** The SDK insists on a key; servers that need none get this, and no Authorization header at all. */
export const NO_API_KEY = 'not-needed';

export interface ModelClientOptions {
  /** The API root, e.g. `https://api.openai.com/v1` or `http://localhost:11434/v1`. */
  baseURL: string;
  /** Unset or empty: no Authorization header (Ollama, vLLM without --api-key). */
  apiKey?: string | undefined;
  /** Per attempt: time to the response headers; then the longest silence while reading the body. */
  timeoutMs: number;
  /** Retries after the first attempt (the SDK's). */
  maxRetries: number;
  /** Longest wait a `Retry-After` may impose between two attempts. Default 30 s. */
  maxRetryAfterMs?: number | undefined;
  /** For tests: the fetch to use under the guards. */
  fetch?: typeof fetch | undefined;
  log?: Logger | undefined;
}

export const DEFAULT_MAX_RETRY_AFTER_MS = 30_000;

/** The API root without trailing slashes, as errors and logs show it. */
export function trimBaseURL(baseURL: string): string {
  return baseURL.replace(/\/+$/, '');
}

export function createModelClient(opts: ModelClientOptions): OpenAI {
  if (!Number.isInteger(opts.timeoutMs) || opts.timeoutMs < 1)
    throw new RangeError(`model client: timeoutMs must be a positive integer, got ${opts.timeoutMs}`);
  if (!Number.isInteger(opts.maxRetries) || opts.maxRetries < 0)
    throw new RangeError(`model client: maxRetries must be 0 or more, got ${opts.maxRetries}`);
  const baseURL = trimBaseURL(opts.baseURL);
  const log = opts.log;
  return new OpenAI({
    baseURL,
    apiKey: opts.apiKey || NO_API_KEY,
    // Explicit, so that OPENAI_ORG_ID, OPENAI_PROJECT_ID... in the environment are not sent to another server.
    organization: null,
    project: null,
    adminAPIKey: null,
    webhookSecret: null,
    ...(opts.apiKey ? {} : { defaultHeaders: { Authorization: null } }),
    timeout: opts.timeoutMs,
    maxRetries: opts.maxRetries,
    fetch: guardedFetch(opts.fetch ?? globalThis.fetch, {
      timeoutMs: opts.timeoutMs,
      maxRetryAfterMs: opts.maxRetryAfterMs ?? DEFAULT_MAX_RETRY_AFTER_MS,
      log,
    }),
    ...(log ? { logger: sdkLogger(log), logLevel: 'warn' as const } : { logLevel: 'off' as const }),
  });
}

/** `Retry-After` as milliseconds: delta-seconds or an HTTP date; undefined when absent or unreadable. */
export function parseRetryAfter(value: string | null, now = Date.now()): number | undefined {
  if (value === null || value.trim() === '') return undefined;
  const seconds = Number(value);
  if (Number.isFinite(seconds)) return Math.max(0, seconds * 1000);
  const date = Date.parse(value);
  return Number.isNaN(date) ? undefined : Math.max(0, date - now);
}

type Fetch = (input: string | URL | Request, init?: RequestInit) => Promise<Response>;

function guardedFetch(inner: Fetch, opts: { timeoutMs: number; maxRetryAfterMs: number; log?: Logger | undefined }): Fetch {
  const { timeoutMs, maxRetryAfterMs, log } = opts;
  return async (input, init) => {
    const url = typeof input === 'string' ? input : input instanceof URL ? input.href : input.url;
    const attempt = Number(new Headers(init?.headers).get('x-stainless-retry-count') ?? 0) + 1;
    // Aborted when the body goes silent: closes the connection.
    const silence = new AbortController();
    const signal = init?.signal ? AbortSignal.any([init.signal, silence.signal]) : silence.signal;
    const started = Date.now();
    let response: Response;
    try {
      response = await inner(input, { ...init, signal });
    } catch (err) {
      const aborted = init?.signal?.aborted === true;
      // The SDK aborts its own signal at the timeout; a caller's abort comes earlier.
      if (!aborted || Date.now() - started >= timeoutMs) {
        log?.warn({ url, attempt, err: aborted ? `no answer within ${timeoutMs} ms` : describe(err) }, 'model request failed');
      }
      throw ownRealm(err);
    }

    const headers = new Headers(response.headers);
    if (isRetryableStatus(response.status)) {
      const asked = parseMs(headers.get('retry-after-ms')) ?? parseRetryAfter(headers.get('retry-after'));
      if (asked !== undefined && asked > maxRetryAfterMs) {
        headers.delete('retry-after');
        headers.set('retry-after-ms', String(maxRetryAfterMs));
      }
      log?.warn(
        { url, attempt, status: response.status, retryAfterMs: asked === undefined ? undefined : Math.min(asked, maxRetryAfterMs) },
        'model request failed',
      );
    }
    const body = response.body === null ? null : watchSilence(response.body, timeoutMs, silence);
    const guarded = new Response(body, { status: response.status, statusText: response.statusText, headers });
    Object.defineProperty(guarded, 'url', { value: response.url });
    return guarded;
  };
}

/**
 * The SDK recognises a timeout by the error's name, after turning anything that is
 * not `instanceof Error` into a plain Error, which loses the name. fetch's
 * AbortError is a DOMException of Node's own realm: under a vm context (Jest) it is
 * not `instanceof Error` there, and timeouts would pass for connection errors.
 */
function ownRealm(err: unknown): unknown {
  if (err instanceof Error || typeof err !== 'object' || err === null) return err;
  const { name, message, cause } = err as { name?: unknown; message?: unknown; cause?: unknown };
  const copy = new Error(typeof message === 'string' ? message : String(err), cause === undefined ? undefined : { cause });
  if (typeof name === 'string') copy.name = name;
  return copy;
}

function parseMs(value: string | null): number | undefined {
  if (value === null) return undefined;
  const ms = Number.parseFloat(value);
  return Number.isNaN(ms) ? undefined : Math.max(0, ms);
}

/**
 * The same bytes; but when the reader is waiting and nothing arrives for `timeoutMs`,
 * the stream fails with a BodyTimeoutError and the request is aborted. Only the
 * server's silence counts: the clock runs only while a read is pending.
 */
function watchSilence(body: ReadableStream<Uint8Array>, timeoutMs: number, silence: AbortController): ReadableStream<Uint8Array> {
  const reader = body.getReader();
  return new ReadableStream<Uint8Array>(
    {
      async pull(controller) {
        let timer: ReturnType<typeof setTimeout> | undefined;
        const silent = new Promise<never>((_, reject) => {
          timer = setTimeout(() => reject(new BodyTimeoutError(timeoutMs)), timeoutMs);
        });
        try {
          const { done, value } = await Promise.race([reader.read(), silent]);
          if (done) controller.close();
          else controller.enqueue(value);
        } catch (err) {
          if (err instanceof BodyTimeoutError) {
            silence.abort(err);
            reader.cancel(err).catch(() => {});
          }
          controller.error(err);
        } finally {
          clearTimeout(timer);
        }
      },
      cancel(reason) {
        return reader.cancel(reason);
      },
    },
    { highWaterMark: 0 },
  );
}

function describe(err: unknown): string {
  if (typeof err !== 'object' || err === null) return String(err);
  const { message, cause } = err as { message?: unknown; cause?: { code?: unknown; message?: unknown } };
  const detail = typeof cause?.code === 'string' ? cause.code : typeof cause?.message === 'string' ? cause.message : '';
  return detail ? `${String(message)} (${detail})` : String(message);
}

/** The SDK's own warnings and errors, into pino. */
function sdkLogger(log: Logger) {
  const details = (rest: unknown[]) => (rest.length ? { details: rest } : {});
  return {
    error: (message: string, ...rest: unknown[]) => log.error({ component: 'openai', ...details(rest) }, message),
    warn: (message: string, ...rest: unknown[]) => log.warn({ component: 'openai', ...details(rest) }, message),
    info: (message: string, ...rest: unknown[]) => log.debug({ component: 'openai', ...details(rest) }, message),
    debug: (message: string, ...rest: unknown[]) => log.trace({ component: 'openai', ...details(rest) }, message),
  };
}
