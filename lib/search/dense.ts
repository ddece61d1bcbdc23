/**
 * Dense embeddings from any OpenAI-compatible `POST {baseUrl}/embeddings`
 * endpoint (OpenAI, Ollama's /v1, vLLM, LM Studio, llama.cpp server, LiteLLM...),
 * through the model client of lib/model: the SDK makes the requests, retries
 * what can succeed later and times them out. Here: batching, cutting long
 * inputs, and the checks the SDK does not make (one vector per input, in
 * input order, of the configured dimension), then L2 normalisation so that
 * cosine similarity is a dot product.
 */
import { createModelClient, trimBaseURL } from '../model/client.js';
import { EmbeddingError, toEmbeddingError, toModelError, type ModelCallContext } from '../model/errors.js';
import type { Logger } from '../logger.js';
import type { DenseEmbedder } from './types.js';

export { EmbeddingError, type EmbeddingErrorCode } from '../model/errors.js';
export { parseRetryAfter } from '../model/client.js';

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
  /** Retries after the first attempt (the SDK's: 408, 409, 429, 5xx, timeouts and network errors, with backoff). Default 5. */
  maxRetries?: number | undefined;
  /** Per-attempt time limit to the response headers, then the longest silence while the body is read. Default 60 s. */
  timeoutMs?: number | undefined;
  /** Inputs longer than this (in characters) are cut. Default 8000. */
  maxInputChars?: number | undefined;
  /** Longest wait a `Retry-After` may impose between two attempts. Default 30 s. */
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
  retryMaxMs: 30_000,
} as const;

/** Cuts a string to at most `max` UTF-16 units without splitting a surrogate pair. */
function truncate(text: string, max: number): string {
  if (text.length <= max) return text;
  const code = text.charCodeAt(max - 1);
  return text.slice(0, code >= 0xd800 && code <= 0xdbff ? max - 1 : max);
}

function normalise(vector: number[]): number[] {
  let sum = 0;
  for (const x of vector) sum += x * x;
  const norm = Math.sqrt(sum);
  return norm > 0 ? vector.map((x) => x / norm) : vector;
}

/**
 * Decodes a base64 embedding (little-endian float32). We ask for `float`, and the SDK
 * then passes the answer through untouched; a server that sends base64 regardless gets
 * decoded here. (Left to its default, the SDK asks for base64 and decodes every
 * embedding as base64, which turns the float arrays of servers that ignore
 * `encoding_format` into garbage.)
 */
function decodeBase64(text: string): number[] {
  const bytes = Buffer.from(text, 'base64');
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const out: number[] = [];
  for (let i = 0; i + 4 <= bytes.byteLength; i += 4) out.push(view.getFloat32(i, true));
  return out;
}

export function createDenseEmbedder(opts: DenseEmbedderOptions): DenseEmbedder {
  const { model, dimensions } = opts;
  const batchSize = opts.batchSize ?? DEFAULTS.batchSize;
  const maxRetries = opts.maxRetries ?? DEFAULTS.maxRetries;
  const timeoutMs = opts.timeoutMs ?? DEFAULTS.timeoutMs;
  const maxInputChars = opts.maxInputChars ?? DEFAULTS.maxInputChars;
  const url = `${trimBaseURL(opts.baseUrl)}/embeddings`;

  if (!model) throw new RangeError('dense embedder: model is required');
  if (!Number.isInteger(dimensions) || dimensions < 1)
    throw new RangeError(`dense embedder: dimensions must be a positive integer, got ${dimensions}`);
  if (!Number.isInteger(batchSize) || batchSize < 1)
    throw new RangeError(`dense embedder: batchSize must be a positive integer, got ${batchSize}`);
  if (!Number.isInteger(maxRetries) || maxRetries < 0)
    throw new RangeError(`dense embedder: maxRetries must be 0 or more, got ${maxRetries}`);
  if (!Number.isInteger(maxInputChars) || maxInputChars < 1)
    throw new RangeError(`dense embedder: maxInputChars must be positive, got ${maxInputChars}`);

  const client = createModelClient({
    baseURL: opts.baseUrl,
    apiKey: opts.apiKey,
    timeoutMs,
    maxRetries,
    maxRetryAfterMs: opts.retryMaxMs ?? DEFAULTS.retryMaxMs,
    fetch: opts.fetch,
    log: opts.log,
  });
  const ctx: ModelCallContext = { kind: 'embeddings', url, model, timeoutMs, maxRetries };

  const fail = (reason: string) =>
    new EmbeddingError('EMBEDDINGS_BAD_RESPONSE', `embeddings model "${model}" at ${url}: ${reason}`, { url, model });

  async function request(input: string[]): Promise<unknown> {
    try {
      return await client.embeddings.create({
        model,
        input,
        encoding_format: 'float',
        ...(opts.sendDimensions ? { dimensions } : {}),
      });
    } catch (err) {
      throw toEmbeddingError(toModelError(err, ctx));
    }
  }

  function check(body: unknown, count: number): number[][] {
    // The SDK hands back the text of an answer that is not JSON: no "data" then.
    const data = (body as { data?: unknown } | null)?.data;
    if (!Array.isArray(data)) throw fail('the answer has no "data" array');
    if (data.length !== count) throw fail(`the answer has ${data.length} embeddings for ${count} inputs`);
    const out: Array<number[] | undefined> = new Array(count);
    data.forEach((item: { index?: unknown; embedding?: unknown }, position) => {
      const index = item?.index === undefined ? position : item.index;
      if (typeof index !== 'number' || !Number.isInteger(index) || index < 0 || index >= count || out[index]) {
        throw fail(`the answer has a missing, duplicate or out-of-range index ${String(index)}`);
      }
      const raw = typeof item.embedding === 'string' ? decodeBase64(item.embedding) : item.embedding;
      if (!Array.isArray(raw) || !raw.every((x) => typeof x === 'number' && Number.isFinite(x))) {
        throw fail(`embedding ${index} is not an array of finite numbers`);
      }
      if (raw.length !== dimensions) {
        throw fail(`dimension mismatch: the model returned ${raw.length}-dimensional vectors but ${dimensions} are configured`);
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
        vectors.push(...check(await request(batch), batch.length));
      }
      return vectors;
    },
  };
}
