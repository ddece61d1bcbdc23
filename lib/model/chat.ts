/**
 * Chat completions from any OpenAI-compatible `POST {baseURL}/chat/completions`,
 * through the client of ./client.ts: streamed (`streamChat`, for the tutor) or
 * whole (`completeChat`, e.g. JSON-schema structured output for the exam generator).
 *
 * Retries are the SDK's and happen only before an answer starts (until the
 * response headers); once a stream has started, a failure is a ModelError,
 * never a retry, so the caller never sees a token twice.
 */
import type OpenAI from 'openai';
import type { ChatCompletion, ChatCompletionChunk, ChatCompletionCreateParamsBase } from 'openai/resources/chat/completions';
import type { ResponseFormatJSONObject, ResponseFormatJSONSchema, ResponseFormatText } from 'openai/resources/shared';
import type { Logger } from '../logger.js';
import { createModelClient, trimBaseURL } from './client.js';
import type { ChatEnv } from './config.js';
import { modelError, toModelError, type ModelCallContext } from './errors.js';

export interface ChatMessage {
  role: 'system' | 'user' | 'assistant';
  content: string;
}

/** `{ type: 'json_schema', json_schema: { name, schema, strict } }`, `{ type: 'json_object' }` or `{ type: 'text' }`. */
export type ResponseFormat = ResponseFormatJSONSchema | ResponseFormatJSONObject | ResponseFormatText;

export interface ChatRequest {
  messages: ChatMessage[];
  /** Default: the model's configured maxTokens (LLM_MAX_TOKENS). Sent as `max_tokens`. */
  maxTokens?: number | undefined;
  /** Default: the model's configured temperature (LLM_TEMPERATURE). */
  temperature?: number | undefined;
  /** Aborts the HTTP request (also while the SDK waits to retry); the call then fails with MODEL_ABORTED. */
  signal?: AbortSignal | undefined;
  /** With a JSON format the answer must parse as JSON (MODEL_ERROR otherwise) and is returned as `json` too. */
  responseFormat?: ResponseFormat | undefined;
}

export interface ChatUsage {
  promptTokens: number;
  completionTokens: number;
  /** True when the server reported no usage and these are counts made here (deltas received; about 4 characters a token). */
  estimated: boolean;
}

export interface ChatResult {
  text: string;
  usage: ChatUsage;
  /** As the server said: 'stop', 'length' (cut at maxTokens), 'content_filter'... */
  finishReason: string;
  /** The model that answered, as the server named it. */
  model: string;
  /** The parsed answer, when a JSON responseFormat was asked for. */
  json?: unknown;
}

/**
 * The text deltas of one answer, in order; read it once. The request starts when
 * reading (or `final()`) starts. Breaking out of the loop aborts the request.
 */
export interface ChatStream extends AsyncIterable<string> {
  /** The whole answer, once the stream has ended; reads the stream itself if nobody does. Rejects with the stream's ModelError. */
  final(): Promise<ChatResult>;
}

export interface ChatModel {
  readonly model: string;
  streamChat(request: ChatRequest): ChatStream;
  completeChat(request: ChatRequest): Promise<ChatResult>;
}

export interface ChatModelOptions {
  /** The API root, e.g. `https://api.openai.com/v1` or `http://localhost:11434/v1`. */
  baseURL: string;
  apiKey?: string | undefined;
  model: string;
  /** Time to the response headers (first token), per attempt; then the longest silence in an answer. Default 60 s. */
  timeoutMs?: number | undefined;
  /** The SDK's retries before an answer starts. Default 2. */
  maxRetries?: number | undefined;
  /** Longest wait a `Retry-After` may impose. Default 30 s. */
  maxRetryAfterMs?: number | undefined;
  /** Defaults for requests that do not say. 800 and 0.2. */
  maxTokens?: number | undefined;
  temperature?: number | undefined;
  fetch?: typeof fetch | undefined;
  log?: Logger | undefined;
}

export const CHAT_DEFAULTS = { timeoutMs: 60_000, maxRetries: 2, maxTokens: 800, temperature: 0.2 } as const;

/** The chat model an environment configures, or null when LLM_URL is unset. */
export function chatModelFromEnv(env: ChatEnv, log?: Logger): ChatModel | null {
  if (!env.LLM_URL || !env.LLM_MODEL) return null;
  return createChatModel({
    baseURL: env.LLM_URL,
    apiKey: env.LLM_API_KEY,
    model: env.LLM_MODEL,
    timeoutMs: env.LLM_TIMEOUT_MS,
    maxRetries: env.LLM_MAX_RETRIES,
    maxTokens: env.LLM_MAX_TOKENS,
    temperature: env.LLM_TEMPERATURE,
    log,
  });
}

export function createChatModel(opts: ChatModelOptions): ChatModel {
  const model = opts.model;
  if (!model) throw new RangeError('chat model: model is required');
  const timeoutMs = opts.timeoutMs ?? CHAT_DEFAULTS.timeoutMs;
  const maxRetries = opts.maxRetries ?? CHAT_DEFAULTS.maxRetries;
  const defaultMaxTokens = opts.maxTokens ?? CHAT_DEFAULTS.maxTokens;
  const defaultTemperature = opts.temperature ?? CHAT_DEFAULTS.temperature;
  if (!Number.isInteger(defaultMaxTokens) || defaultMaxTokens < 1)
    throw new RangeError(`chat model: maxTokens must be a positive integer, got ${defaultMaxTokens}`);
  const client = createModelClient({
    baseURL: opts.baseURL,
    apiKey: opts.apiKey,
    timeoutMs,
    maxRetries,
    maxRetryAfterMs: opts.maxRetryAfterMs,
    fetch: opts.fetch,
    log: opts.log,
  });
  const ctx: ModelCallContext = { kind: 'chat', url: `${trimBaseURL(opts.baseURL)}/chat/completions`, model, timeoutMs, maxRetries };

  function params(request: ChatRequest): ChatCompletionCreateParamsBase {
    if (request.messages.length === 0) throw new RangeError('chat model: messages must not be empty');
    return {
      model,
      messages: request.messages.map(({ role, content }) => ({ role, content })),
      max_tokens: request.maxTokens ?? defaultMaxTokens,
      temperature: request.temperature ?? defaultTemperature,
      ...(request.responseFormat ? { response_format: request.responseFormat } : {}),
    };
  }

  async function* run(request: ChatRequest): AsyncGenerator<string, ChatResult> {
    const { signal } = request;
    const body = params(request);
    let stream: Awaited<ReturnType<typeof openStream>>;
    try {
      stream = await untilAborted(openStream(client, body, signal), signal, ctx);
    } catch (err) {
      throw toModelError(err, ctx);
    }
    let text = '';
    let refusal = '';
    let deltas = 0;
    let finishReason: string | undefined;
    let usage: ChatCompletionChunk['usage'] | undefined;
    let served = model;
    let ended = false;
    try {
      for await (const chunk of stream) {
        if (chunk.model) served = chunk.model;
        if (chunk.usage) usage = chunk.usage;
        const choice = chunk.choices?.find((c) => c.index === 0) ?? chunk.choices?.[0];
        if (!choice) continue;
        if (choice.delta?.refusal) refusal += choice.delta.refusal;
        if (choice.finish_reason) finishReason = choice.finish_reason;
        const piece = choice.delta?.content;
        if (piece) {
          text += piece;
          deltas++;
          yield piece;
        }
      }
      ended = true;
    } catch (err) {
      throw toModelError(err, ctx);
    } finally {
      // The reader stopped early (break, return, an error above): stop the HTTP request.
      if (!ended) stream.controller.abort();
    }
    // The SDK ends a stream quietly when it is aborted.
    if (signal?.aborted) throw modelError(ctx, 'MODEL_ABORTED', 'aborted', 'the request was aborted mid-answer', { cause: signal.reason });
    if (finishReason === undefined) {
      throw modelError(
        ctx,
        'MODEL_UNAVAILABLE',
        'incomplete',
        `the answer stream ended before the model finished (after ${deltas} deltas)`,
      );
    }
    return finish(request, {
      text,
      refusal,
      finishReason,
      model: served,
      usage: usage
        ? { promptTokens: usage.prompt_tokens, completionTokens: usage.completion_tokens, estimated: false }
        : { promptTokens: estimateTokens(request.messages), completionTokens: deltas, estimated: true },
    });
  }

  function finish(request: ChatRequest, answer: Omit<ChatResult, 'json'> & { refusal: string }): ChatResult {
    const { refusal, ...result } = answer;
    if (refusal && !result.text) throw modelError(ctx, 'MODEL_ERROR', 'refused', `refused to answer: ${refusal}`);
    const format = request.responseFormat?.type;
    if (format !== 'json_schema' && format !== 'json_object') return result;
    try {
      return { ...result, json: JSON.parse(result.text) as unknown };
    } catch (err) {
      const cut = result.finishReason === 'length' ? ' (the answer was cut at maxTokens)' : '';
      throw modelError(ctx, 'MODEL_ERROR', 'bad_output', `the answer is not valid JSON${cut}: ${(err as Error).message}`, {
        cause: err,
      });
    }
  }

  return {
    model,

    streamChat(request) {
      return readOnce(() => run(request), ctx);
    },

    async completeChat(request) {
      const { signal } = request;
      const body = params(request);
      let completion: ChatCompletion;
      try {
        completion = await untilAborted(client.chat.completions.create({ ...body, stream: false }, { signal }), signal, ctx);
      } catch (err) {
        throw toModelError(err, ctx);
      }
      // A server that answers something other than JSON gets its text passed through by the SDK.
      const choice = Array.isArray(completion?.choices) ? completion.choices[0] : undefined;
      if (!choice?.message) throw modelError(ctx, 'MODEL_ERROR', 'bad_output', 'the answer has no choices[0].message');
      const text = choice.message.content ?? '';
      const usage = completion.usage;
      return finish(request, {
        text,
        refusal: choice.message.refusal ?? '',
        finishReason: choice.finish_reason ?? 'unknown',
        model: completion.model || model,
        usage: usage
          ? { promptTokens: usage.prompt_tokens, completionTokens: usage.completion_tokens, estimated: false }
          : { promptTokens: estimateTokens(request.messages), completionTokens: Math.ceil(text.length / 4), estimated: true },
      });
    },
  };
}

function openStream(client: OpenAI, body: ChatCompletionCreateParamsBase, signal: AbortSignal | undefined) {
  return client.chat.completions.create({ ...body, stream: true, stream_options: { include_usage: true } }, { signal });
}

/** About 4 characters a token, plus a few per message. */
function estimateTokens(messages: ChatMessage[]): number {
  return messages.reduce((sum, m) => sum + 4 + Math.ceil(m.content.length / 4), 0);
}

/**
 * The SDK notices an abort only between steps: it sleeps out a retry's backoff
 * (up to the Retry-After cap) before looking. This settles at once instead; the
 * SDK's request is aborted through the same signal.
 */
function untilAborted<T>(promise: PromiseLike<T>, signal: AbortSignal | undefined, ctx: ModelCallContext): Promise<T> {
  const settled = Promise.resolve(promise);
  if (!signal) return settled;
  settled.catch(() => {}); // rejected after we gave up on it: nobody listens any more
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(modelError(ctx, 'MODEL_ABORTED', 'aborted', 'the request was aborted', { cause: signal.reason }));
    if (signal.aborted) return onAbort();
    signal.addEventListener('abort', onAbort, { once: true });
    settled.then(
      (value) => {
        signal.removeEventListener('abort', onAbort);
        resolve(value);
      },
      (err: unknown) => {
        signal.removeEventListener('abort', onAbort);
        reject(err);
      },
    );
  });
}

/** Wraps the generator: one reader, and a `final()` that settles when it ends. */
function readOnce(start: () => AsyncGenerator<string, ChatResult>, ctx: ModelCallContext): ChatStream {
  let started = false;
  let resolve!: (result: ChatResult) => void;
  let reject!: (err: unknown) => void;
  const done = new Promise<ChatResult>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  done.catch(() => {}); // the iterator throws the same error to its reader
  let settled = false;

  async function* iterate(): AsyncGenerator<string, void> {
    try {
      const result = yield* start();
      settled = true;
      resolve(result);
    } catch (err) {
      settled = true;
      reject(err);
      throw err;
    } finally {
      if (!settled) reject(modelError(ctx, 'MODEL_ABORTED', 'aborted', 'the reader stopped before the answer ended'));
    }
  }

  const stream: ChatStream = {
    [Symbol.asyncIterator]() {
      if (started) throw new Error('a chat stream can be read only once');
      started = true;
      return iterate();
    },
    async final() {
      if (!started) {
        for await (const _ of stream) {
          // the deltas are in the result's text
        }
      }
      return done;
    },
  };
  return stream;
}
