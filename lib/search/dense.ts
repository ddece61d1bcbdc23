/**
 * Dense embeddings from any OpenAI-compatible `POST {baseUrl}/embeddings`
 * endpoint (OpenAI, Ollama's /v1, vLLM, LM Studio, llama.cpp server, LiteLLM...).
 * Batches the inputs, retries what can succeed later, checks the answer and
 * L2-normalises every vector so that cosine similarity is a dot product.
 */
import type { Logger } from '../logger.js';
import type { DenseEmbedder } from './types.js';

export type EmbeddingErrorCode = 'EMBEDDINGS_UNAVAILABLE' | 'EMBEDDINGS_REJECTED' | 'EMBEDDINGS_BAD_RESPONSE';

/** Why embeddings could not be had, with a stable code. */
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

export interface DenseEmbedderOptions {
  /** The API root, e.g. `http://localhost:11434/v1` or `https://api.openai.com/v1`. */
  baseUrl: string;
  apiKey?: string | undefined;
  model: string;
  /** Length of the vectors the model returns; every answer is checked against it. */
  dimensions: number;
  /** Send `dimensions` in the request (models that can shorten their vectors, e.g. text-embedding-3-*). Default false. */
  sendDimensions?: boolean | undefined;
  /** Inputs per request. Default 64. */
  batchSize?: number | undefined;
  /** Retries after the first attempt, on 429, 5xx, timeouts and network errors. Default 5. */
  maxRetries?: number | undefined;
  /** Per-request time limit. Default 60 s. */
  timeoutMs?: number | undefined;
  /** Inputs longer than this (in characters) are cut. Default 8000. */
  maxInputChars?: number | undefined;
  /** First backoff delay; doubles at each retry, with full jitter. Default 500 ms. */
  retryBaseMs?: number | undefined;
  /** Longest wait between two attempts, `Retry-After` included. Default 30 s. */
  retryMaxMs?: number | undefined;
  /** Prepended to every query / document (models such as nomic-embed-text or e5 expect one). Default none. */
  queryPrefix?: string | undefined;
  documentPrefix?: string | undefined;
  fetch?: typeof fetch | undefined;
  log?: Logger | undefined;
}

const DEFAULTS = {
  batchSize: 64,
  maxRetries: 5,
  timeoutMs: 60_000,
  maxInputChars: 8000,
  retryBaseMs: 500,
  retryMaxMs: 30_000,
} as const;

/** Cuts a string to at most `max` UTF-16 units without splitting a surrogate pair. */
function truncate(text: string, max: number): string {
  if (text.length <= max) return text;
  const code = text.charCodeAt(max - 1);
  return text.slice(0, code >= 0xd800 && code <= 0xdbff ? max - 1 : max);
}

/** `Retry-After` as milliseconds: delta-seconds or an HTTP date; undefined when absent or unreadable. */
export function parseRetryAfter(value: string | null, now = Date.now()): number | undefined {
  if (value === null || value.trim() === '') return undefined;
  const seconds = Number(value);
  if (Number.isFinite(seconds)) return Math.max(0, seconds * 1000);
  const date = Date.parse(value);
  return Number.isNaN(date) ? undefined : Math.max(0, date - now);
}

function normalise(vector: number[]): number[] {
  let sum = 0;
  for (const x of vector) sum += x * x;
  const norm = Math.sqrt(sum);
  return norm > 0 ? vector.map((x) => x / norm) : vector;
}

/** Decodes `encoding_format: base64` answers (little-endian float32), which some servers send regardless. */
function decodeBase64(text: string): number[] {
  const bytes = Buffer.from(text, 'base64');
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const out: number[] = [];
  for (let i = 0; i + 4 <= bytes.byteLength; i += 4) out.push(view.getFloat32(i, true));
  return out;
}

/** The error message an OpenAI-style server put in its body, if any. */
function serverMessage(body: string): string {
  try {
    const parsed = JSON.parse(body) as { error?: { message?: unknown } | string; message?: unknown; detail?: unknown };
    const message =
      typeof parsed.error === 'string' ? parsed.error : (parsed.error?.message ?? parsed.message ?? parsed.detail ?? undefined);
    if (typeof message === 'string' && message) return message;
  } catch {
    // not JSON: fall through to the raw text
  }
  return body.slice(0, 300).trim();
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

interface Failure {
  ok: false;
  code: EmbeddingErrorCode;
  reason: string;
  retry: boolean;
  status?: number | undefined;
  retryAfterMs?: number | undefined;
  cause?: unknown;
}
type Attempt = { ok: true; body: unknown } | Failure;

export function createDenseEmbedder(opts: DenseEmbedderOptions): DenseEmbedder {
  const { model, dimensions, apiKey } = opts;
  const batchSize = opts.batchSize ?? DEFAULTS.batchSize;
  const maxRetries = opts.maxRetries ?? DEFAULTS.maxRetries;
  const timeoutMs = opts.timeoutMs ?? DEFAULTS.timeoutMs;
  const maxInputChars = opts.maxInputChars ?? DEFAULTS.maxInputChars;
  const retryBaseMs = opts.retryBaseMs ?? DEFAULTS.retryBaseMs;
  const retryMaxMs = opts.retryMaxMs ?? DEFAULTS.retryMaxMs;
  const doFetch = opts.fetch ?? globalThis.fetch;
  const log = opts.log;
  const url = `${opts.baseUrl.replace(/\/+$/, '')}/embeddings`;

  if (!model) throw new RangeError('dense embedder: model is required');
  if (!Number.isInteger(dimensions) || dimensions < 1)
    throw new RangeError(`dense embedder: dimensions must be a positive integer, got ${dimensions}`);
  if (!Number.isInteger(batchSize) || batchSize < 1)
    throw new RangeError(`dense embedder: batchSize must be a positive integer, got ${batchSize}`);
  if (!Number.isInteger(maxRetries) || maxRetries < 0)
    throw new RangeError(`dense embedder: maxRetries must be 0 or more, got ${maxRetries}`);
  if (!Number.isInteger(maxInputChars) || maxInputChars < 1)
    throw new RangeError(`dense embedder: maxInputChars must be positive, got ${maxInputChars}`);

  const fail = (code: EmbeddingErrorCode, reason: string, status?: number, cause?: unknown) =>
    new EmbeddingError(code, `embeddings model "${model}" at ${url}: ${reason}`, { url, model, status }, { cause });

  async function attempt(input: string[]): Promise<Attempt> {
    const headers: Record<string, string> = { 'content-type': 'application/json', accept: 'application/json' };
    if (apiKey) headers['authorization'] = `Bearer ${apiKey}`;
    const payload = { model, input, encoding_format: 'float', ...(opts.sendDimensions ? { dimensions } : {}) };
    let response: Response;
    let text: string;
    try {
      response = await doFetch(url, { method: 'POST', headers, body: JSON.stringify(payload), signal: AbortSignal.timeout(timeoutMs) });
      text = await response.text();
    } catch (err) {
      const timedOut = err instanceof Error && (err.name === 'TimeoutError' || err.name === 'AbortError');
      const reason = timedOut ? `no answer within ${timeoutMs} ms` : `cannot reach the endpoint: ${networkReason(err)}`;
      return { ok: false, code: 'EMBEDDINGS_UNAVAILABLE', reason, retry: true, cause: err };
    }
    const { status } = response;
    if (status === 429 || status >= 500) {
      const retryAfterMs = parseRetryAfter(response.headers.get('retry-after'));
      return {
        ok: false,
        code: 'EMBEDDINGS_UNAVAILABLE',
        reason: `answered ${status}: ${serverMessage(text)}`,
        retry: true,
        status,
        retryAfterMs,
      };
    }
    if (!response.ok) {
      return {
        ok: false,
        code: 'EMBEDDINGS_REJECTED',
        reason: `rejected the request with ${status}: ${serverMessage(text)}`,
        retry: false,
        status,
      };
    }
    try {
      return { ok: true, body: JSON.parse(text) as unknown };
    } catch (err) {
      return { ok: false, code: 'EMBEDDINGS_BAD_RESPONSE', reason: 'the answer is not JSON', retry: false, status, cause: err };
    }
  }

  async function request(input: string[]): Promise<unknown> {
    for (let retry = 0; ; retry++) {
      const result = await attempt(input);
      if (result.ok) return result.body;
      if (!result.retry || retry >= maxRetries) {
        const reason = retry > 0 ? `${result.reason} (gave up after ${retry + 1} attempts)` : result.reason;
        throw fail(result.code, reason, result.status, result.cause);
      }
      // Exponential backoff with jitter (half fixed, half random), unless the server said when to come back.
      const ceiling = Math.min(retryMaxMs, retryBaseMs * 2 ** retry);
      const delayMs = Math.round(Math.min(retryMaxMs, result.retryAfterMs ?? ceiling / 2 + (Math.random() * ceiling) / 2));
      log?.warn(
        { url, model, attempt: retry + 1, status: result.status, delayMs, reason: result.reason },
        'embeddings request failed, retrying',
      );
      await sleep(delayMs);
    }
  }

  function parse(body: unknown, count: number): number[][] {
    const data = (body as { data?: unknown } | null)?.data;
    if (!Array.isArray(data)) throw fail('EMBEDDINGS_BAD_RESPONSE', 'the answer has no "data" array');
    if (data.length !== count) throw fail('EMBEDDINGS_BAD_RESPONSE', `the answer has ${data.length} embeddings for ${count} inputs`);
    const out: Array<number[] | undefined> = new Array(count);
    data.forEach((item: { index?: unknown; embedding?: unknown }, position) => {
      const index = item?.index === undefined ? position : item.index;
      if (typeof index !== 'number' || !Number.isInteger(index) || index < 0 || index >= count || out[index]) {
        throw fail('EMBEDDINGS_BAD_RESPONSE', `the answer has a missing, duplicate or out-of-range index ${String(index)}`);
      }
      const raw = typeof item.embedding === 'string' ? decodeBase64(item.embedding) : item.embedding;
      if (!Array.isArray(raw) || !raw.every((x) => typeof x === 'number' && Number.isFinite(x))) {
        throw fail('EMBEDDINGS_BAD_RESPONSE', `embedding ${index} is not an array of finite numbers`);
      }
      if (raw.length !== dimensions) {
        throw fail(
          'EMBEDDINGS_BAD_RESPONSE',
          `dimension mismatch: the model returned ${raw.length}-dimensional vectors but ${dimensions} are configured`,
        );
      }
      out[index] = normalise(raw as number[]);
    });
    return out as number[][];
  }

  return {
    model,
    dimensions,
    async embed(texts, kind) {
      const prefix = (kind === 'query' ? opts.queryPrefix : opts.documentPrefix) ?? '';
      // OpenAI rejects empty strings; a single space embeds as "nothing".
      const inputs = texts.map((text) => truncate(prefix + text, maxInputChars) || ' ');
      const vectors: number[][] = [];
      for (let start = 0; start < inputs.length; start += batchSize) {
        const batch = inputs.slice(start, start + batchSize);
        vectors.push(...parse(await request(batch), batch.length));
      }
      return vectors;
    },
  };
}

function networkReason(err: unknown): string {
  if (!(err instanceof Error)) return String(err);
  const cause = err.cause as { code?: unknown; message?: unknown } | undefined;
  const detail = typeof cause?.code === 'string' ? cause.code : typeof cause?.message === 'string' ? cause.message : '';
  return detail ? `${err.message} (${detail})` : err.message;
}
