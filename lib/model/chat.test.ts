import { afterAll, describe, expect, it } from '@jest/globals';
import { startFakeOpenAI, type FakeOpenAI, type FakeOpenAIOptions } from '../../tests/support/openai-fake.js';
import { chatModelFromEnv, createChatModel, type ChatModelOptions, type ChatStream } from './chat.js';
import { ModelError } from './errors.js';

const servers: FakeOpenAI[] = [];
async function fake(opts: FakeOpenAIOptions = {}): Promise<FakeOpenAI> {
  const server = await startFakeOpenAI(opts);
  servers.push(server);
  return server;
}
afterAll(() => Promise.all(servers.map((s) => s.close())));

const messages = [
  { role: 'system' as const, content: 'You are a patient tutor. Material: plants use photosynthesis to make sugar.' },
  { role: 'user' as const, content: 'What is photosynthesis for?' },
];

function model(api: FakeOpenAI, opts: Partial<ChatModelOptions> = {}) {
  return createChatModel({ baseURL: api.url, model: 'fake-chat', ...opts });
}

/** Reads a stream to its end, keeping the deltas, when each arrived, and the error it ended with. */
async function read(stream: ChatStream, onDelta?: (delta: string, index: number) => void) {
  const deltas: string[] = [];
  const times: number[] = [];
  let error: unknown;
  try {
    for await (const delta of stream) {
      deltas.push(delta);
      times.push(Date.now());
      onDelta?.(delta, deltas.length - 1);
    }
  } catch (err) {
    error = err;
  }
  return { deltas, times, error };
}

function asModelError(err: unknown): ModelError {
  expect(err).toBeInstanceOf(ModelError);
  return err as ModelError;
}

async function rejection(promise: Promise<unknown>): Promise<ModelError> {
  return asModelError(
    await promise.then(
      () => 'resolved (expected a rejection)',
      (err: unknown) => err,
    ),
  );
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe('streamChat', () => {
  it('streams the deltas in order and complete, then the text, usage, finish reason and model', async () => {
    const tokens = ['Photo', 'synthesis', ' turns', ' light', ' into', ' sugar', '.'];
    const api = await fake({ chat: (request) => ({ tokens: request.question.includes('photosynthesis') ? tokens : ['?'] }) });
    const stream = model(api).streamChat({ messages });
    const { deltas, error } = await read(stream);
    expect(error).toBeUndefined();
    expect(deltas).toEqual(tokens);

    const result = await stream.final();
    expect(result.text).toBe('Photosynthesis turns light into sugar.');
    expect(result.finishReason).toBe('stop');
    expect(result.model).toBe('fake-chat');
    expect(result.usage.estimated).toBe(false);
    expect(result.usage.completionTokens).toBe(tokens.length);
    expect(result.usage.promptTokens).toBeGreaterThan(0);
    expect(result.json).toBeUndefined();

    const [request] = api.chatRequests();
    expect(api.chatRequests()).toHaveLength(1);
    expect(request!.body).toMatchObject({
      model: 'fake-chat',
      messages,
      stream: true,
      stream_options: { include_usage: true },
      max_tokens: 800,
      temperature: 0.2,
    });
    expect(request!.body).not.toHaveProperty('response_format');
    expect(request!.authorization).toBeUndefined();
    await api.settled();
    expect(request!.outcome).toBe('completed');
  });

  it('yields each token as it arrives (30 tokens/s), not all at the end', async () => {
    const tokens = Array.from({ length: 10 }, (_, i) => `t${i} `);
    const api = await fake({ chat: [{ tokens, tokensPerSecond: 30 }] });
    const started = Date.now();
    const { deltas, times, error } = await read(model(api).streamChat({ messages }));
    expect(error).toBeUndefined();
    expect(deltas).toEqual(tokens);
    // 10 tokens at 30/s: about 330 ms from the first request to the last token, about 300 between the first and last.
    expect(times.at(-1)! - times[0]!).toBeGreaterThanOrEqual(200);
    expect(times[0]! - started).toBeLessThan(times.at(-1)! - started - 200);
  });

  it('counts the deltas when the server reports no usage', async () => {
    const api = await fake({ chat: [{ text: 'one two three four', usage: null }] });
    const result = await model(api).streamChat({ messages }).final();
    expect(result.text).toBe('one two three four');
    expect(result.usage).toEqual({ promptTokens: expect.any(Number), completionTokens: 4, estimated: true });
    expect(result.usage.promptTokens).toBeGreaterThan(0);
  });

  it('sends maxTokens, temperature and responseFormat of the request, and the API key', async () => {
    const api = await fake({ chat: ['{"ok": true}'] });
    const responseFormat = {
      type: 'json_schema' as const,
      json_schema: { name: 'ok', strict: true, schema: { type: 'object', properties: { ok: { type: 'boolean' } }, required: ['ok'] } },
    };
    const chat = model(api, { apiKey: 'sk-test', maxTokens: 100, temperature: 0.7 });
    const result = await chat.streamChat({ messages, maxTokens: 50, temperature: 0, responseFormat }).final();
    expect(result.json).toEqual({ ok: true });
    const [request] = api.chatRequests();
    expect(request!.authorization).toBe('Bearer sk-test');
    expect(request!.body).toMatchObject({ max_tokens: 50, temperature: 0, response_format: responseFormat });
  });

  it('retries a 429 that comes before the first token, then streams', async () => {
    const api = await fake({
      chat: [{ error: { status: 429, message: 'Rate limit reached', headers: { 'retry-after': '0' } } }, 'hello there'],
    });
    const stream = model(api).streamChat({ messages });
    const { deltas, error } = await read(stream);
    expect(error).toBeUndefined();
    expect(deltas.join('')).toBe('hello there');
    expect(api.chatRequests()).toHaveLength(2);
    expect(api.chatRequests()[1]!.headers['x-stainless-retry-count']).toBe('1');
  });

  it('gives up on repeated 500s with MODEL_UNAVAILABLE after maxRetries', async () => {
    const api = await fake({ chat: [{ error: { status: 500, message: 'engine crashed', headers: { 'retry-after': '0' } } }] });
    const { deltas, error } = await read(model(api, { maxRetries: 2 }).streamChat({ messages }));
    const err = asModelError(error);
    expect(deltas).toEqual([]);
    expect(err.code).toBe('MODEL_UNAVAILABLE');
    expect(err.details).toMatchObject({ kind: 'chat', reason: 'server_error', status: 500, attempts: 3, model: 'fake-chat' });
    expect(err.message).toContain(`${api.url}/chat/completions`);
    expect(err.message).toMatch(/answered 500: engine crashed \(gave up after 3 attempts\)/);
    expect(api.chatRequests()).toHaveLength(3);
  });

  it('does not retry a 400: MODEL_ERROR with the server message', async () => {
    const api = await fake({ chat: [{ error: { status: 400, message: "'messages' is too long" } }] });
    const err = asModelError((await read(model(api).streamChat({ messages }))).error);
    expect(err.code).toBe('MODEL_ERROR');
    expect(err.details).toMatchObject({ reason: 'rejected', status: 400 });
    expect(err.message).toMatch(/rejected the request with 400: 'messages' is too long/);
    expect(api.chatRequests()).toHaveLength(1);
  });

  it('a connection dropped after the first token is a ModelError, not a retry', async () => {
    const api = await fake({ chat: [{ text: 'one two three four', dropAfterTokens: 1 }] });
    const { deltas, error } = await read(model(api, { maxRetries: 2 }).streamChat({ messages }));
    const err = asModelError(error);
    expect(deltas).toEqual(['one ']);
    expect(err.code).toBe('MODEL_UNAVAILABLE');
    expect(err.details.reason).toBe('connection');
    expect(err.message).toMatch(/the connection failed while the answer was being read/);
    await api.settled();
    expect(api.chatRequests()).toHaveLength(1);
    expect(api.chatRequests()[0]!.outcome).toBe('dropped');
  });

  it('aborting mid-stream stops the HTTP request (the server sees the client go)', async () => {
    const tokens = Array.from({ length: 40 }, (_, i) => `w${i} `);
    const api = await fake({ chat: [{ tokens, tokensPerSecond: 50 }] });
    const controller = new AbortController();
    const { deltas, error } = await read(model(api).streamChat({ messages, signal: controller.signal }), (_, i) => {
      if (i === 2) controller.abort();
    });
    const err = asModelError(error);
    expect(err.code).toBe('MODEL_ABORTED');
    expect(err.details.reason).toBe('aborted');
    expect(deltas).toEqual(tokens.slice(0, 3));
    await api.settled();
    const [request] = api.chatRequests();
    expect(request!.outcome).toBe('client-disconnected');
    const sent = request!.tokensSent;
    expect(sent).toBeLessThan(tokens.length);
    await sleep(150);
    expect(request!.tokensSent).toBe(sent);
    expect(api.chatRequests()).toHaveLength(1);
  }, 10_000);

  it('breaking out of the loop aborts the request too, and final() then rejects', async () => {
    const api = await fake({ chat: [{ text: 'a b c d e f g h i j', tokensPerSecond: 50 }] });
    const stream = model(api).streamChat({ messages });
    const seen: string[] = [];
    for await (const delta of stream) {
      seen.push(delta);
      if (seen.length === 2) break;
    }
    expect(seen).toEqual(['a ', 'b ']);
    expect((await rejection(stream.final())).code).toBe('MODEL_ABORTED');
    await api.settled();
    expect(api.chatRequests()[0]!.outcome).toBe('client-disconnected');
  });

  it('a signal aborted before the call makes no request', async () => {
    const api = await fake();
    const { error } = await read(model(api).streamChat({ messages, signal: AbortSignal.abort() }));
    expect(asModelError(error).code).toBe('MODEL_ABORTED');
    expect(api.chatRequests()).toHaveLength(0);
  });

  it('an abort while waiting to retry settles at once, and no retry follows', async () => {
    const api = await fake({ chat: [{ error: { status: 429, headers: { 'retry-after': '1' } } }, 'too late'] });
    const controller = new AbortController();
    setTimeout(() => controller.abort(), 50);
    const started = Date.now();
    const { error } = await read(model(api).streamChat({ messages, signal: controller.signal }));
    expect(asModelError(error).code).toBe('MODEL_ABORTED');
    expect(Date.now() - started).toBeLessThan(800);
    // The SDK wakes up after Retry-After, sees the abort and stops.
    await sleep(1200);
    expect(api.chatRequests()).toHaveLength(1);
  });

  it('cuts a Retry-After longer than maxRetryAfterMs', async () => {
    const api = await fake({ chat: [{ error: { status: 503, headers: { 'retry-after': '3600' } } }, 'after the wait'] });
    const started = Date.now();
    const result = await model(api, { maxRetryAfterMs: 100 }).streamChat({ messages }).final();
    expect(result.text).toBe('after the wait');
    expect(api.chatRequests()).toHaveLength(2);
    expect(Date.now() - started).toBeLessThan(2000);
  });

  it('a server that never answers times out with MODEL_UNAVAILABLE', async () => {
    const api = await fake({ chat: [{ hang: true }] });
    const { error } = await read(model(api, { timeoutMs: 150, maxRetries: 1 }).streamChat({ messages }));
    const err = asModelError(error);
    expect(err.code).toBe('MODEL_UNAVAILABLE');
    expect(err.details.reason).toBe('timeout');
    expect(err.message).toMatch(/no answer within 150 ms \(gave up after 2 attempts\)/);
    expect(api.chatRequests()).toHaveLength(2);
  }, 10_000);

  it('a stream that goes silent mid-answer times out with MODEL_UNAVAILABLE, without a retry', async () => {
    const api = await fake({ chat: [{ text: 'one two three four', stallAfterTokens: 2 }] });
    const { deltas, error } = await read(model(api, { timeoutMs: 200 }).streamChat({ messages }));
    const err = asModelError(error);
    expect(deltas).toEqual(['one ', 'two ']);
    expect(err.code).toBe('MODEL_UNAVAILABLE');
    expect(err.details.reason).toBe('timeout');
    expect(err.message).toMatch(/no data for 200 ms while reading the answer/);
    await api.settled();
    expect(api.chatRequests()).toHaveLength(1);
    expect(api.chatRequests()[0]!.outcome).toBe('client-disconnected');
  }, 10_000);

  it('a reader slower than the timeout is not a silent server: only a pending read runs the clock', async () => {
    const api = await fake({ chat: ['one two three'] });
    const stream = model(api, { timeoutMs: 150 }).streamChat({ messages });
    const pieces: string[] = [];
    for await (const piece of stream) {
      pieces.push(piece);
      await new Promise((r) => setTimeout(r, 250)); // longer than the timeout, between reads
    }
    expect(pieces.join('')).toBe('one two three');
    expect((await stream.final()).finishReason).toBe('stop');
  }, 10_000);

  it('a stream that ends before a finish_reason is MODEL_UNAVAILABLE (incomplete)', async () => {
    const chunk = {
      id: 'x',
      object: 'chat.completion.chunk',
      created: 0,
      model: 'fake-chat',
      choices: [{ index: 0, delta: { content: 'half' }, finish_reason: null }],
    };
    const api = await fake({ chat: [{ raw: `data: ${JSON.stringify(chunk)}\n\ndata: [DONE]\n\n`, contentType: 'text/event-stream' }] });
    const { deltas, error } = await read(model(api).streamChat({ messages }));
    expect(deltas).toEqual(['half']);
    const err = asModelError(error);
    expect(err.code).toBe('MODEL_UNAVAILABLE');
    expect(err.details.reason).toBe('incomplete');
  });

  it('an error event inside the stream is MODEL_UNAVAILABLE; a chunk that is not JSON is MODEL_ERROR', async () => {
    const api = await fake({
      chat: (request) =>
        request.index === 0
          ? { raw: 'data: {"error": {"message": "engine died", "type": "server_error"}}\n\n', contentType: 'text/event-stream' }
          : { raw: 'data: {not json\n\n', contentType: 'text/event-stream' },
    });
    const first = asModelError((await read(model(api).streamChat({ messages }))).error);
    expect(first.code).toBe('MODEL_UNAVAILABLE');
    expect(first.message).toMatch(/reported an error mid-answer: engine died/);
    const second = asModelError((await read(model(api).streamChat({ messages }))).error);
    expect(second.code).toBe('MODEL_ERROR');
    expect(second.details.reason).toBe('bad_output');
    expect(api.chatRequests()).toHaveLength(2);
  });

  it('final() reads the stream itself when nobody iterates; a stream is read once', async () => {
    const api = await fake({ chat: ['all at once'] });
    const stream = model(api).streamChat({ messages });
    expect((await stream.final()).text).toBe('all at once');
    expect(() => stream[Symbol.asyncIterator]()).toThrow(/only once/);
    expect((await stream.final()).text).toBe('all at once');
  });

  it('structured output that is not JSON is MODEL_ERROR once the stream ends', async () => {
    const api = await fake({ chat: ['Sure! Here are your questions: {"questions": ['] });
    const { deltas, error } = await read(model(api).streamChat({ messages, responseFormat: { type: 'json_object' } }));
    expect(deltas.join('')).toBe('Sure! Here are your questions: {"questions": [');
    const err = asModelError(error);
    expect(err.code).toBe('MODEL_ERROR');
    expect(err.details.reason).toBe('bad_output');
  });
});

describe('completeChat', () => {
  const schema = {
    type: 'json_schema' as const,
    json_schema: {
      name: 'exam',
      strict: true,
      schema: {
        type: 'object',
        properties: { questions: { type: 'array', items: { type: 'string' } } },
        required: ['questions'],
        additionalProperties: false,
      },
    },
  };

  it('returns JSON-schema structured output parsed, with its usage', async () => {
    const api = await fake({ chat: (request) => JSON.stringify({ questions: [`About: ${request.question}`] }) });
    const result = await model(api).completeChat({ messages, responseFormat: schema, maxTokens: 300 });
    expect(result.json).toEqual({ questions: ['About: What is photosynthesis for?'] });
    expect(result.text).toBe(JSON.stringify(result.json));
    expect(result.finishReason).toBe('stop');
    expect(result.model).toBe('fake-chat');
    expect(result.usage.estimated).toBe(false);
    expect(result.usage.completionTokens).toBeGreaterThan(0);
    const [request] = api.chatRequests();
    expect(request!.body).toMatchObject({ model: 'fake-chat', messages, response_format: schema, max_tokens: 300, temperature: 0.2 });
    expect((request!.body as { stream?: unknown }).stream).not.toBe(true);
  });

  it('structured output that is not valid JSON is MODEL_ERROR, not retried', async () => {
    const api = await fake({ chat: ['{"questions": ["What is'] });
    const err = await rejection(model(api).completeChat({ messages, responseFormat: schema }));
    expect(err.code).toBe('MODEL_ERROR');
    expect(err.details.reason).toBe('bad_output');
    expect(err.message).toMatch(/not valid JSON/);
    expect(api.chatRequests()).toHaveLength(1);
  });

  it('says when invalid JSON was cut at maxTokens', async () => {
    const api = await fake({ chat: [{ text: '{"questions": ["What', finishReason: 'length' }] });
    const err = await rejection(model(api).completeChat({ messages, responseFormat: schema }));
    expect(err.message).toMatch(/cut at maxTokens/);
  });

  it('plain text comes back as is; usage is estimated when the server sends none', async () => {
    const api = await fake({ chat: [{ text: 'not json, and that is fine', usage: null }] });
    const result = await model(api).completeChat({ messages });
    expect(result.text).toBe('not json, and that is fine');
    expect(result.json).toBeUndefined();
    expect(result.usage.estimated).toBe(true);
    expect(result.usage.completionTokens).toBeGreaterThan(0);
  });

  it('retries a 503 and then succeeds', async () => {
    const api = await fake({ chat: [{ error: { status: 503, headers: { 'retry-after': '0' } } }, '{"questions": []}'] });
    const result = await model(api).completeChat({ messages, responseFormat: schema });
    expect(result.json).toEqual({ questions: [] });
    expect(api.chatRequests()).toHaveLength(2);
  });

  it('an answer that is not JSON at all is MODEL_ERROR', async () => {
    const api = await fake({
      chat: (request) =>
        request.index === 0 ? { raw: '<html>bad gateway</html>' } : { raw: '<html>bad gateway</html>', contentType: 'text/html' },
    });
    const labelledJson = await rejection(model(api).completeChat({ messages }));
    expect(labelledJson.code).toBe('MODEL_ERROR');
    expect(labelledJson.details.reason).toBe('bad_output');
    const html = await rejection(model(api).completeChat({ messages }));
    expect(html.code).toBe('MODEL_ERROR');
    expect(html.message).toMatch(/no choices/);
  });

  it('an answer that stalls after its headers times out with MODEL_UNAVAILABLE', async () => {
    const api = await fake({ chat: [{ text: '{"questions": []}', stallAfterTokens: 0 }] });
    const err = await rejection(model(api, { timeoutMs: 200 }).completeChat({ messages }));
    expect(err.code).toBe('MODEL_UNAVAILABLE');
    expect(err.details.reason).toBe('timeout');
    expect(api.chatRequests()).toHaveLength(1);
  }, 10_000);

  it('aborts the request with the signal', async () => {
    const api = await fake({ chat: [{ hang: true }] });
    const controller = new AbortController();
    setTimeout(() => controller.abort(), 50);
    const err = await rejection(model(api).completeChat({ messages, signal: controller.signal }));
    expect(err.code).toBe('MODEL_ABORTED');
    await api.settled();
    expect(api.chatRequests()[0]!.outcome).toBe('client-disconnected');
  }, 10_000);
});

describe('createChatModel', () => {
  it('refuses invalid options and empty messages', async () => {
    expect(() => createChatModel({ baseURL: 'http://x.invalid/v1', model: '' })).toThrow(RangeError);
    expect(() => createChatModel({ baseURL: 'http://x.invalid/v1', model: 'm', maxTokens: 0 })).toThrow(RangeError);
    expect(() => createChatModel({ baseURL: 'http://x.invalid/v1', model: 'm', timeoutMs: 0 })).toThrow(RangeError);
    await expect(createChatModel({ baseURL: 'http://x.invalid/v1', model: 'm' }).completeChat({ messages: [] })).rejects.toThrow(
      RangeError,
    );
  });

  it('is built from the environment, or not at all without LLM_URL', () => {
    const base = { LLM_TIMEOUT_MS: 60_000, LLM_MAX_RETRIES: 2, LLM_MAX_TOKENS: 800, LLM_TEMPERATURE: 0.2 };
    expect(chatModelFromEnv(base)).toBeNull();
    expect(chatModelFromEnv({ ...base, LLM_URL: 'http://localhost:11434/v1', LLM_MODEL: 'llama3.1' })?.model).toBe('llama3.1');
  });
});
