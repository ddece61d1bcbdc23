/**
 * A local HTTP server speaking the OpenAI wire format, for tests:
 *
 *   POST /v1/embeddings        deterministic embeddings that carry some meaning
 *   POST /v1/chat/completions  an extractive answer; Server-Sent Events with `stream: true`
 *   GET  /v1/models            the model list
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
}

export interface RecordedRequest {
  path: string;
  body: unknown;
  authorization?: string | undefined;
}

export interface FakeOpenAI {
  /** The API root, `http://127.0.0.1:<port>/v1`. */
  url: string;
  requests: RecordedRequest[];
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

export async function startFakeOpenAI(opts: FakeOpenAIOptions = {}): Promise<FakeOpenAI> {
  const dimensions = opts.dimensions ?? 256;
  const rateLimitFirst = opts.rateLimitFirst ?? 0;
  const failFirst = opts.failFirst ?? 0;
  const requests: RecordedRequest[] = [];
  let counted = 0;

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

  function chat(res: ServerResponse, body: Json): void {
    const model = typeof body['model'] === 'string' ? body['model'] : 'fake-chat';
    const messages = Array.isArray(body['messages']) ? (body['messages'] as Array<{ role?: unknown; content?: unknown }>) : [];
    if (messages.length === 0) return openaiError(res, 400, "'messages' must be a non-empty array", 'invalid_request_error');
    const lastUser = messages.findLastIndex((m) => m.role === 'user');
    const question = lastUser >= 0 ? messageText(messages[lastUser]!.content) : '';
    const context = messages
      .filter((_, i) => i !== lastUser)
      .map((m) => messageText(m.content))
      .join('\n');
    const answer = extractiveAnswer(question, context);
    const id = `chatcmpl-fake${requests.length}`;
    const created = Math.floor(Date.now() / 1000);
    const promptTokens = tokenize(messages.map((m) => messageText(m.content)).join(' ')).length;
    const completionTokens = answer.split(/\s+/).length;
    const usage = { prompt_tokens: promptTokens, completion_tokens: completionTokens, total_tokens: promptTokens + completionTokens };

    if (body['stream'] !== true) {
      const choice = { index: 0, message: { role: 'assistant', content: answer }, logprobs: null, finish_reason: 'stop' };
      return send(res, 200, { id, object: 'chat.completion', created, model, choices: [choice], usage });
    }
    res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache', connection: 'keep-alive' });
    const chunk = (choices: unknown[], extra: Json = {}) =>
      res.write(`data: ${JSON.stringify({ id, object: 'chat.completion.chunk', created, model, choices, ...extra })}\n\n`);
    chunk([{ index: 0, delta: { role: 'assistant', content: '' }, logprobs: null, finish_reason: null }]);
    for (const piece of answer.match(/\S+\s*/g) ?? [])
      chunk([{ index: 0, delta: { content: piece }, logprobs: null, finish_reason: null }]);
    chunk([{ index: 0, delta: {}, logprobs: null, finish_reason: 'stop' }]);
    const streamOptions = body['stream_options'] as { include_usage?: unknown } | undefined;
    if (streamOptions?.include_usage === true) chunk([], { usage });
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
      requests.push({ path, body, authorization: req.headers.authorization });
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
      if (path === '/v1/chat/completions') return chat(res, body as Json);
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
    close: () =>
      new Promise<void>((resolve, reject) => {
        server.close((err) => (err ? reject(err) : resolve()));
        server.closeAllConnections();
      }),
  };
}
