/**
 * A local HTTP server speaking the OpenAI wire format, for tests:
 *
 *   POST /v1/embeddings        deterministic embeddings that carry some meaning
 *   POST /v1/chat/completions  an extractive answer, or what the test's `chat` script says
 *                              (an answer paced token by token, an HTTP error before the
 *                              first token, a connection dropped or stalled after N tokens,
 *                              no answer at all, a body that is not JSON); whole, or as
 *                              Server-Sent Events with `stream: true` exactly as OpenAI
 *                              sends them (`data: {chunk}\n\n`..., the usage chunk when
 *                              `stream_options.include_usage`, `data: [DONE]`)
 *   GET  /v1/models            the model list
 *
 * Every POST is recorded (path, body, headers), with how its exchange ended:
 * completed, dropped by the script, or the client disconnected (an abort).
 *
 * Embeddings are a hashed bag of words: each normalised term (the BM25
 * tokenizer's stems, stop words dropped) adds ±1 to one of `dimensions`
 * buckets, then the vector is L2-normalised. Words of one synonym group below
 * share one "concept" bucket and sign, so "automobile" lands where "car" does:
 * a query for "automobile" finds a passage about cars on the dense side, while
 * the lexical side (different term ids) does not.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { murmurhash3, tokenize } from '@lib/search/lexical.js';

/** Synonym groups: every word of a group embeds as the group's concept. */
export const FAKE_SYNONYMS: Readonly<Record<string, readonly string[]>> = {
  car: ['car', 'automobile', 'vehicle', 'auto'],
  doctor: ['doctor', 'physician', 'medic'],
  big: ['big', 'large', 'huge', 'enormous'],
  small: ['small', 'little', 'tiny'],
  buy: ['buy', 'purchase'],
  begin: ['begin', 'start', 'commence'],
};

const CONCEPT_OF = new Map<string, string>();
for (const [concept, group] of Object.entries(FAKE_SYNONYMS)) {
  for (const word of group) for (const term of tokenize(word)) CONCEPT_OF.set(term, `concept:${concept}`);
}

/** The features a text embeds as: its terms, synonyms replaced by their concept. */
function features(text: string): string[] {
  return tokenize(text).map((term) => CONCEPT_OF.get(term) ?? term);
}

/** The fake model's embedding of a text: deterministic, unit length. */
export function fakeEmbedding(text: string, dimensions: number): number[] {
  const vector = new Array<number>(dimensions).fill(0);
  const terms = features(text);
  if (terms.length === 0) {
    vector[0] = 1;
    return vector;
  }
  for (const feature of terms) {
    const bucket = (murmurhash3(feature, 0x5eed) >>> 0) % dimensions;
    const sign = murmurhash3(feature, 0x51) & 1 ? 1 : -1;
    vector[bucket]! += sign;
  }
  const norm = Math.sqrt(vector.reduce((sum, x) => sum + x * x, 0));
  return vector.map((x) => x / norm);
}

/** The sentence of the context that shares most features with the question; a refusal when none does. */
export function extractiveAnswer(question: string, context: string): string {
  const wanted = new Set(features(question));
  let best = '';
  let bestScore = 0;
  for (const sentence of context.split(/(?<=[.!?])\s+|\n+/)) {
    const score = new Set(features(sentence).filter((f) => wanted.has(f))).size;
    if (score > bestScore) [best, bestScore] = [sentence.trim(), score];
  }
  return bestScore > 0 ? best : "I don't know: the provided material does not say.";
}

export interface FakeOpenAIOptions {
  /** Length of the embeddings (unless a request asks for fewer with `dimensions`). Default 256. */
  dimensions?: number;
  /** Answer 503 to the first N requests (after the rate-limited ones). */
  failFirst?: number;
  /** Answer 429 with `Retry-After: 0` to the first N requests. */
  rateLimitFirst?: number;
  /** Known model names; others get OpenAI's 404 `model_not_found`. Default: any name. */
  models?: string[];
  /** Inputs longer than this many characters get a 400, as a model's context limit does. Default: no limit. */
  maxInputChars?: number;
  /**
   * What `/v1/chat/completions` answers: a function of the request, or one reply per
   * request in turn (the last one repeats). Default: the extractive answer.
   */
  chat?: FakeChatScript;
}

/** A chat completions request as the script sees it. */
export interface FakeChatRequest {
  body: Record<string, unknown>;
  messages: Array<{ role: string; content: string }>;
  /** The last user message. */
  question: string;
  stream: boolean;
  /** 0 for the server's first chat request, 1 for the second... */
  index: number;
}

/**
 * A scripted reply:
 * - a string: that answer (streamed in word pieces when `stream: true`);
 * - `FakeChatAnswer`: an answer with its pacing and its failures;
 * - `{ error }`: that HTTP error, before any token;
 * - `{ hang: true }`: accepts the request and never answers (not even headers);
 * - `{ raw }`: this body as is (e.g. not JSON), status 200 and `application/json` unless said.
 */
export type FakeChatReply =
  string | FakeChatAnswer | { error: FakeChatError } | { hang: true } | { raw: string; status?: number; contentType?: string };

export interface FakeChatAnswer {
  /** The answer; streamed one word (with the spaces after it) per delta unless `tokens` is given. */
  text?: string;
  /** The exact content deltas to stream; the answer is their concatenation. */
  tokens?: string[];
  /** Pacing of a stream: e.g. 30 sends a token every 33 ms. Default: no delay. */
  tokensPerSecond?: number;
  /** Default 'stop'. */
  finishReason?: string;
  /** The usage reported; null: none, even when asked for. Default: counted. */
  usage?: { prompt_tokens: number; completion_tokens: number } | null;
  /** The model name in the answer. Default: the requested one. */
  model?: string;
  /** Stream: destroy the connection after this many tokens. Whole answer: destroy it halfway through the body. */
  dropAfterTokens?: number;
  /** Stream: stop sending after this many tokens, leaving the connection open. Whole answer: stall halfway through the body. */
  stallAfterTokens?: number;
}

export interface FakeChatError {
  status: number;
  message?: string;
  type?: string;
  code?: string | null;
  /** e.g. `{ 'retry-after': '0' }`. */
  headers?: Record<string, string>;
}

export type FakeChatScript = ((request: FakeChatRequest) => FakeChatReply | Promise<FakeChatReply>) | FakeChatReply[];

export interface RecordedRequest {
  path: string;
  body: unknown;
  authorization?: string | undefined;
  /** Every request header, lower-cased names. */
  headers: Record<string, string | string[] | undefined>;
  /** Content deltas sent so far (streamed chat answers). */
  tokensSent: number;
  /**
   * How the exchange ended, once it has: `completed` (the whole answer was sent),
   * `client-disconnected` (the client went away before that: an abort), `dropped`
   * (the script cut the connection) or `server-closed` (by `close()`).
   */
  outcome?: 'completed' | 'client-disconnected' | 'dropped' | 'server-closed' | undefined;
}

export interface FakeOpenAI {
  /** The API root, `http://127.0.0.1:<port>/v1`. */
  url: string;
  /** Every POST received, in order (recorded once its body has been read). */
  requests: RecordedRequest[];
  /** The chat completions requests among them. */
  chatRequests(): RecordedRequest[];
  /** Resolves when every exchange received so far has ended (so `outcome` is set). */
  settled(): Promise<void>;
  close(): Promise<void>;
}

type Json = Record<string, unknown>;

function send(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  res.writeHead(status, { 'content-type': 'application/json', ...headers });
  res.end(JSON.stringify(body));
}

function openaiError(res: ServerResponse, status: number, message: string, type: string, code: string | null = null): void {
  send(res, status, { error: { message, type, param: null, code } });
}

async function readBody(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

function messageText(content: unknown): string {
  if (typeof content === 'string') return content;
  if (Array.isArray(content)) {
    return content
      .map((part: { type?: unknown; text?: unknown }) => (part?.type === 'text' && typeof part.text === 'string' ? part.text : ''))
      .join(' ');
  }
  return '';
}

/** Resolves once `data` has been handed to the socket (true), or could not be (false: the response is gone). */
function write(res: ServerResponse, data: string): Promise<boolean> {
  return new Promise((resolve) => {
    if (res.destroyed || res.writableEnded) return resolve(false);
    res.write(data, (err) => resolve(!err && !res.destroyed));
  });
}

export async function startFakeOpenAI(opts: FakeOpenAIOptions = {}): Promise<FakeOpenAI> {
  const dimensions = opts.dimensions ?? 256;
  const rateLimitFirst = opts.rateLimitFirst ?? 0;
  const failFirst = opts.failFirst ?? 0;
  const requests: RecordedRequest[] = [];
  const open = new Set<Promise<void>>();
  const timers = new Set<{ timer: ReturnType<typeof setTimeout>; resolve: () => void }>();
  let counted = 0;
  let chatCount = 0;
  let closing = false;

  /** Waits `ms`, or less if the response closes or the server stops. */
  function pause(ms: number, res: ServerResponse): Promise<void> {
    return new Promise((resolve) => {
      if (res.destroyed || closing) return resolve();
      const entry = {
        timer: setTimeout(() => done(), ms),
        resolve: () => done(),
      };
      const done = () => {
        clearTimeout(entry.timer);
        timers.delete(entry);
        res.off('close', done);
        resolve();
      };
      timers.add(entry);
      res.once('close', done);
    });
  }

  function embeddings(res: ServerResponse, body: Json): void {
    const model = body['model'];
    if (typeof model !== 'string' || !model) return openaiError(res, 400, 'you must provide a model parameter', 'invalid_request_error');
    if (opts.models && !opts.models.includes(model)) {
      return openaiError(
        res,
        404,
        `The model \`${model}\` does not exist or you do not have access to it.`,
        'invalid_request_error',
        'model_not_found',
      );
    }
    const raw = body['input'];
    const inputs = typeof raw === 'string' ? [raw] : raw;
    if (!Array.isArray(inputs) || inputs.length === 0 || inputs.length > 2048 || !inputs.every((x) => typeof x === 'string' && x !== '')) {
      return openaiError(
        res,
        400,
        "'$.input' is invalid. Please check the API reference: https://platform.openai.com/docs/api-reference.",
        'invalid_request_error',
      );
    }
    const tooLong = inputs.find((x) => opts.maxInputChars !== undefined && x.length > opts.maxInputChars);
    if (tooLong !== undefined) {
      return openaiError(
        res,
        400,
        `This model's maximum context length is ${opts.maxInputChars} characters, your input has ${tooLong.length}.`,
        'invalid_request_error',
      );
    }
    const asked = body['dimensions'];
    if (asked !== undefined && (typeof asked !== 'number' || !Number.isInteger(asked) || asked < 1 || asked > dimensions)) {
      return openaiError(res, 400, `dimensions must be an integer between 1 and ${dimensions}`, 'invalid_request_error');
    }
    const size = (asked as number | undefined) ?? dimensions;
    const base64 = body['encoding_format'] === 'base64';
    const data = (inputs as string[]).map((text, index) => {
      const vector = fakeEmbedding(text, size);
      const embedding = base64 ? Buffer.from(new Float32Array(vector).buffer).toString('base64') : vector;
      return { object: 'embedding', index, embedding };
    });
    const tokens = (inputs as string[]).reduce((n, text) => n + Math.max(1, tokenize(text).length), 0);
    send(res, 200, { object: 'list', data, model, usage: { prompt_tokens: tokens, total_tokens: tokens } });
  }

  async function chat(res: ServerResponse, body: Json, record: RecordedRequest, drop: () => void): Promise<void> {
    const model = typeof body['model'] === 'string' ? body['model'] : 'fake-chat';
    const rawMessages = Array.isArray(body['messages']) ? (body['messages'] as Array<{ role?: unknown; content?: unknown }>) : [];
    if (rawMessages.length === 0) return openaiError(res, 400, "'messages' must be a non-empty array", 'invalid_request_error');
    const messages = rawMessages.map((m) => ({ role: String(m.role), content: messageText(m.content) }));
    const lastUser = messages.findLastIndex((m) => m.role === 'user');
    const question = lastUser >= 0 ? messages[lastUser]!.content : '';
    const stream = body['stream'] === true;
    const index = chatCount++;

    let reply: FakeChatReply;
    if (typeof opts.chat === 'function') reply = await opts.chat({ body, messages, question, stream, index });
    else if (Array.isArray(opts.chat) && opts.chat.length > 0) reply = opts.chat[Math.min(index, opts.chat.length - 1)]!;
    else {
      const context = messages
        .filter((_, i) => i !== lastUser)
        .map((m) => m.content)
        .join('\n');
      reply = extractiveAnswer(question, context);
    }

    if (typeof reply === 'object' && 'error' in reply) {
      const { status, message, type, code, headers } = reply.error;
      return send(
        res,
        status,
        {
          error: {
            message: message ?? `fake error ${status}`,
            type: type ?? (status >= 500 ? 'server_error' : 'invalid_request_error'),
            param: null,
            code: code ?? null,
          },
        },
        headers,
      );
    }
    if (typeof reply === 'object' && 'hang' in reply) return; // never answers
    if (typeof reply === 'object' && 'raw' in reply) {
      res.writeHead(reply.status ?? 200, { 'content-type': reply.contentType ?? 'application/json' });
      res.end(reply.raw);
      return;
    }

    const answer: FakeChatAnswer = typeof reply === 'string' ? { text: reply } : reply;
    const pieces = answer.tokens ?? (answer.text ?? '').match(/\S+\s*/g) ?? [];
    const content = answer.tokens ? answer.tokens.join('') : (answer.text ?? '');
    const id = `chatcmpl-fake${index}`;
    const created = Math.floor(Date.now() / 1000);
    const answeredBy = answer.model ?? model;
    const finishReason = answer.finishReason ?? 'stop';
    const promptTokens = tokenize(messages.map((m) => m.content).join(' ')).length;
    const countedUsage = { prompt_tokens: promptTokens, completion_tokens: pieces.length };
    const reported = answer.usage === null ? null : (answer.usage ?? countedUsage);
    const usage = reported && { ...reported, total_tokens: reported.prompt_tokens + reported.completion_tokens };

    if (!stream) {
      const choice = { index: 0, message: { role: 'assistant', content, refusal: null }, logprobs: null, finish_reason: finishReason };
      const whole = JSON.stringify({
        id,
        object: 'chat.completion',
        created,
        model: answeredBy,
        choices: [choice],
        ...(usage ? { usage } : {}),
      });
      if (answer.dropAfterTokens !== undefined || answer.stallAfterTokens !== undefined) {
        res.writeHead(200, { 'content-type': 'application/json' });
        await write(res, whole.slice(0, Math.floor(whole.length / 2)));
        if (answer.dropAfterTokens !== undefined) drop();
        return; // stalled: the rest never comes
      }
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(whole)) });
      res.end(whole);
      return;
    }

    res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache', connection: 'keep-alive' });
    res.flushHeaders();
    const chunk = (choices: unknown[], extra: Json = {}) =>
      write(res, `data: ${JSON.stringify({ id, object: 'chat.completion.chunk', created, model: answeredBy, choices, ...extra })}\n\n`);
    await chunk([{ index: 0, delta: { role: 'assistant', content: '' }, logprobs: null, finish_reason: null }]);
    const delayMs = answer.tokensPerSecond ? 1000 / answer.tokensPerSecond : 0;
    for (const piece of pieces) {
      if (record.tokensSent === answer.dropAfterTokens) return drop();
      if (record.tokensSent === answer.stallAfterTokens) return; // the connection stays open, silent
      if (delayMs > 0) await pause(delayMs, res);
      if (res.destroyed || closing) return;
      if (!(await chunk([{ index: 0, delta: { content: piece }, logprobs: null, finish_reason: null }]))) return;
      record.tokensSent++;
    }
    if (record.tokensSent === answer.dropAfterTokens) return drop();
    if (record.tokensSent === answer.stallAfterTokens) return;
    await chunk([{ index: 0, delta: {}, logprobs: null, finish_reason: finishReason }]);
    const streamOptions = body['stream_options'] as { include_usage?: unknown } | undefined;
    if (streamOptions?.include_usage === true && usage) await chunk([], { usage });
    res.end('data: [DONE]\n\n');
  }

  const server = createServer((req, res) => {
    void (async () => {
      const path = (req.url ?? '/').split('?')[0]!;
      if (req.method === 'GET' && path === '/v1/models') {
        const ids = opts.models ?? ['fake-embed', 'fake-chat'];
        return send(res, 200, { object: 'list', data: ids.map((id) => ({ id, object: 'model', created: 0, owned_by: 'fake' })) });
      }
      if (req.method !== 'POST') return openaiError(res, 404, `Unknown request URL: ${req.method} ${path}`, 'invalid_request_error');
      const text = await readBody(req);
      let body: unknown;
      try {
        body = JSON.parse(text);
      } catch {
        body = text;
      }
      const record: RecordedRequest = { path, body, authorization: req.headers.authorization, headers: { ...req.headers }, tokensSent: 0 };
      requests.push(record);
      let dropped = false;
      const drop = () => {
        dropped = true;
        res.destroy();
      };
      open.add(
        new Promise<void>((resolve) => {
          res.once('close', () => {
            record.outcome = res.writableFinished ? 'completed' : dropped ? 'dropped' : closing ? 'server-closed' : 'client-disconnected';
            resolve();
          });
        }),
      );
      const n = counted++;
      if (n < rateLimitFirst) {
        return send(
          res,
          429,
          { error: { message: 'Rate limit reached', type: 'requests', code: 'rate_limit_exceeded' } },
          { 'retry-after': '0' },
        );
      }
      if (n < rateLimitFirst + failFirst) return openaiError(res, 503, 'The server is overloaded', 'server_error');
      if (typeof body !== 'object' || body === null)
        return openaiError(res, 400, 'We could not parse the JSON body of your request.', 'invalid_request_error');
      if (path === '/v1/embeddings') return embeddings(res, body as Json);
      if (path === '/v1/chat/completions') return chat(res, body as Json, record, drop);
      return openaiError(res, 404, `Unknown request URL: POST ${path}`, 'invalid_request_error');
    })().catch((err: unknown) => {
      if (!res.headersSent) openaiError(res, 500, String(err), 'server_error');
      else res.end();
    });
  });

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/v1`,
    requests,
    chatRequests: () => requests.filter((r) => r.path === '/v1/chat/completions'),
    settled: async () => {
      await Promise.all([...open]);
    },
    close: () => {
      closing = true;
      for (const { resolve } of [...timers]) resolve();
      return new Promise<void>((resolve, reject) => {
        server.close((err) => (err ? reject(err) : resolve()));
        server.closeAllConnections();
      });
    },
  };
}
