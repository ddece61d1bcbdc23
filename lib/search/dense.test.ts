import { afterAll, describe, expect, it } from '@jest/globals';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { fakeEmbedding, startFakeOpenAI, type FakeOpenAI } from '../../tests/support/openai-fake.js';
import { createDenseEmbedder, EmbeddingError, parseRetryAfter, type DenseEmbedderOptions } from './dense.js';
import { createLexicalEmbedder } from './lexical.js';

const servers: FakeOpenAI[] = [];
async function fake(opts: Parameters<typeof startFakeOpenAI>[0] = {}): Promise<FakeOpenAI> {
  const server = await startFakeOpenAI(opts);
  servers.push(server);
  return server;
}
afterAll(() => Promise.all(servers.map((s) => s.close())));

const dot = (a: number[], b: number[]) => a.reduce((sum, x, i) => sum + x * b[i]!, 0);
const inputsOf = (body: unknown) => (body as { input: string[] }).input;
function expectClose(actual: number[] | undefined, expected: number[]): void {
  expect(actual?.length).toBe(expected.length);
  expected.forEach((x, i) => expect(Math.abs(actual![i]! - x)).toBeLessThan(1e-12));
}

async function rejection(promise: Promise<unknown>): Promise<EmbeddingError> {
  const outcome = await promise.then(
    () => 'resolved (expected a rejection)',
    (err: unknown) => err,
  );
  expect(outcome).toBeInstanceOf(EmbeddingError);
  return outcome as EmbeddingError;
}

/** A fetch that answers every request with this JSON body. */
function answering(body: unknown, status = 200, headers: Record<string, string> = {}): typeof fetch {
  return async () => new Response(JSON.stringify(body), { status, headers: { 'content-type': 'application/json', ...headers } });
}

async function listen(server: Server): Promise<string> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1`;
}
async function shut(server: Server): Promise<void> {
  server.closeAllConnections();
  await new Promise<void>((resolve) => server.close(() => resolve()));
}

describe('createDenseEmbedder', () => {
  it('sends batches of batchSize inputs and returns the vectors in input order', async () => {
    const api = await fake({ dimensions: 32 });
    const embedder = createDenseEmbedder({ baseUrl: api.url, model: 'fake-embed', dimensions: 32, batchSize: 64 });
    const texts = Array.from({ length: 150 }, (_, i) => `passage number ${i} about topic${i % 7} and item${i}`);
    const vectors = await embedder.embed(texts, 'document');

    expect(api.requests).toHaveLength(3);
    expect(api.requests.map((r) => inputsOf(r.body).length)).toEqual([64, 64, 22]);
    expect(api.requests.flatMap((r) => inputsOf(r.body))).toEqual(texts);
    for (const request of api.requests) {
      expect(request.path).toBe('/v1/embeddings');
      const body = request.body as Record<string, unknown>;
      expect(body['model']).toBe('fake-embed');
      expect(body['encoding_format']).toBe('float');
      expect('dimensions' in body).toBe(false);
      expect(request.authorization).toBeUndefined();
    }
    expect(vectors).toHaveLength(150);
    vectors.forEach((vector, i) => expectClose(vector, fakeEmbedding(texts[i]!, 32)));
    expect(embedder.model).toBe('fake-embed');
    expect(embedder.dimensions).toBe(32);
  });

  it('sends the API key as a bearer token and dimensions only when asked to', async () => {
    const api = await fake({ dimensions: 64 });
    const embedder = createDenseEmbedder({ baseUrl: `${api.url}/`, apiKey: 'sk-test', model: 'm', dimensions: 16, sendDimensions: true });
    const [vector] = await embedder.embed(['hello world'], 'query');
    expect(vector).toHaveLength(16);
    expect(api.requests[0]!.authorization).toBe('Bearer sk-test');
    expect((api.requests[0]!.body as { dimensions: number }).dimensions).toBe(16);
  });

  it('makes no request for no input', async () => {
    const api = await fake();
    expect(await createDenseEmbedder({ baseUrl: api.url, model: 'm', dimensions: 256 }).embed([], 'document')).toEqual([]);
    expect(api.requests).toHaveLength(0);
  });

  it('retries on 503 and then succeeds', async () => {
    const api = await fake({ dimensions: 8, failFirst: 2 });
    const embedder = createDenseEmbedder({ baseUrl: api.url, model: 'm', dimensions: 8 });
    const [vector] = await embedder.embed(['photosynthesis'], 'document');
    expectClose(vector, fakeEmbedding('photosynthesis', 8));
    expect(api.requests).toHaveLength(3);
  });

  it('retries on 429 honouring Retry-After: 0 instead of its own backoff', async () => {
    const api = await fake({ dimensions: 8, rateLimitFirst: 2 });
    // The SDK's own backoff for two retries is at least 0.375 s + 0.75 s: only Retry-After lets it finish sooner.
    const embedder = createDenseEmbedder({ baseUrl: api.url, model: 'm', dimensions: 8 });
    const started = Date.now();
    await embedder.embed(['a', 'b'], 'document');
    expect(api.requests).toHaveLength(3);
    expect(Date.now() - started).toBeLessThan(1000);
  });

  it('cuts a Retry-After longer than retryMaxMs', async () => {
    let calls = 0;
    const fetch: typeof globalThis.fetch = async (...args) => {
      calls++;
      return calls === 1
        ? answering({ error: { message: 'slow down' } }, 429, { 'retry-after': '3600' })(...args)
        : answering({ data: [{ index: 0, embedding: [1, 0] }] })(...args);
    };
    const embedder = createDenseEmbedder({ baseUrl: 'http://x.invalid/v1', model: 'm', dimensions: 2, retryMaxMs: 50, fetch });
    const started = Date.now();
    expect(await embedder.embed(['t'], 'query')).toEqual([[1, 0]]);
    expect(calls).toBe(2);
    expect(Date.now() - started).toBeLessThan(2000);
  });

  it('gives up after maxRetries with EMBEDDINGS_UNAVAILABLE naming the URL and model', async () => {
    const api = await fake({ dimensions: 8, failFirst: 100 });
    const embedder = createDenseEmbedder({ baseUrl: api.url, model: 'nomic-embed-text', dimensions: 8, maxRetries: 2 });
    const err = await rejection(embedder.embed(['x'], 'document'));
    expect(err.code).toBe('EMBEDDINGS_UNAVAILABLE');
    expect(err.details.status).toBe(503);
    expect(api.requests).toHaveLength(3);
    expect(err.message).toMatch(/nomic-embed-text/);
    expect(err.message).toContain(`${api.url}/embeddings`);
    expect(err.message).toMatch(/gave up after 3 attempts/);
  });

  it('logs every failed attempt as a warning', async () => {
    const api = await fake({ dimensions: 8, failFirst: 1 });
    const lines: Array<Record<string, unknown>> = [];
    const sink = new Writable({
      write(chunk: Buffer, _encoding, callback) {
        lines.push(JSON.parse(chunk.toString('utf8')) as Record<string, unknown>);
        callback();
      },
    });
    const log = pino({ level: 'warn' }, sink);
    await createDenseEmbedder({ baseUrl: api.url, model: 'm', dimensions: 8, log }).embed(['x'], 'document');
    expect(api.requests).toHaveLength(2);
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatchObject({ msg: 'model request failed', status: 503, attempt: 1, url: `${api.url}/embeddings` });
  });

  it('does not retry a 400 and reports EMBEDDINGS_REJECTED with the server message', async () => {
    const api = await fake({ dimensions: 8, maxInputChars: 100 });
    const embedder = createDenseEmbedder({ baseUrl: api.url, model: 'm', dimensions: 8, maxInputChars: 10_000 });
    const err = await rejection(embedder.embed(['x'.repeat(500)], 'document'));
    expect(err.code).toBe('EMBEDDINGS_REJECTED');
    expect(err.details.status).toBe(400);
    expect(err.message).toMatch(/maximum context length/);
    expect(api.requests).toHaveLength(1);
  });

  it('does not retry an unknown model (404)', async () => {
    const api = await fake({ dimensions: 8, models: ['known'] });
    const err = await rejection(createDenseEmbedder({ baseUrl: api.url, model: 'unknown', dimensions: 8 }).embed(['x'], 'query'));
    expect(err.code).toBe('EMBEDDINGS_REJECTED');
    expect(err.details.status).toBe(404);
    expect(err.message).toMatch(/does not exist/);
    expect(api.requests).toHaveLength(1);
  });

  it('cuts inputs longer than maxInputChars and replaces empty ones with a space', async () => {
    const api = await fake({ dimensions: 8, maxInputChars: 100 });
    const embedder = createDenseEmbedder({ baseUrl: api.url, model: 'm', dimensions: 8, maxInputChars: 100 });
    const vectors = await embedder.embed(['y'.repeat(500), '', `a${'😀'.repeat(60)}`], 'document');
    expect(vectors).toHaveLength(3);
    const [long, empty, emoji] = inputsOf(api.requests[0]!.body);
    expect(long).toBe('y'.repeat(100));
    expect(empty).toBe(' ');
    // a surrogate pair is never split
    expect(emoji).toBe(`a${'😀'.repeat(49)}`);
  });

  it('prepends the query or document prefix', async () => {
    const api = await fake({ dimensions: 8 });
    const embedder = createDenseEmbedder({
      baseUrl: api.url,
      model: 'm',
      dimensions: 8,
      queryPrefix: 'search_query: ',
      documentPrefix: 'search_document: ',
    });
    await embedder.embed(['q'], 'query');
    await embedder.embed(['d'], 'document');
    expect(api.requests.map((r) => inputsOf(r.body))).toEqual([['search_query: q'], ['search_document: d']]);
  });

  it('reports EMBEDDINGS_UNAVAILABLE when nothing listens on the port', async () => {
    const probe = createServer();
    const baseUrl = await listen(probe);
    await shut(probe);

    const err = await rejection(createDenseEmbedder({ baseUrl, model: 'm', dimensions: 8, maxRetries: 1 }).embed(['x'], 'query'));
    expect(err.code).toBe('EMBEDDINGS_UNAVAILABLE');
    expect(err.message).toMatch(/cannot reach the endpoint/);
    expect(err.message).toContain(`${baseUrl}/embeddings`);
    expect(err.message).toMatch(/ECONNREFUSED/);
  });

  it('reports EMBEDDINGS_UNAVAILABLE when the endpoint never answers', async () => {
    let hits = 0;
    const silent: Server = createServer(() => {
      hits++; // never answers
    });
    const baseUrl = await listen(silent);
    try {
      const embedder = createDenseEmbedder({ baseUrl, model: 'm', dimensions: 8, timeoutMs: 100, maxRetries: 1 });
      const err = await rejection(embedder.embed(['x'], 'query'));
      expect(err.code).toBe('EMBEDDINGS_UNAVAILABLE');
      expect(err.message).toMatch(/no answer within 100 ms/);
      expect(hits).toBe(2);
    } finally {
      await shut(silent);
    }
  }, 10_000);

  it('reports EMBEDDINGS_UNAVAILABLE when the answer stalls after its headers', async () => {
    let hits = 0;
    const stalling: Server = createServer((_req, res) => {
      hits++;
      res.writeHead(200, { 'content-type': 'application/json' });
      res.write('{"object":"list","data":['); // and nothing more
    });
    const baseUrl = await listen(stalling);
    try {
      const embedder = createDenseEmbedder({ baseUrl, model: 'm', dimensions: 8, timeoutMs: 150, maxRetries: 1 });
      const err = await rejection(embedder.embed(['x'], 'query'));
      expect(err.code).toBe('EMBEDDINGS_UNAVAILABLE');
      expect(err.message).toMatch(/no data for 150 ms while reading the answer/);
      // Once an answer has started, the SDK does not retry.
      expect(hits).toBe(1);
    } finally {
      await shut(stalling);
    }
  }, 10_000);

  it('refuses vectors of the wrong length, naming the model and both dimensions', async () => {
    const api = await fake({ dimensions: 16 });
    const err = await rejection(createDenseEmbedder({ baseUrl: api.url, model: 'bge-m3', dimensions: 8 }).embed(['x'], 'document'));
    expect(err.code).toBe('EMBEDDINGS_BAD_RESPONSE');
    expect(err.message).toMatch(/bge-m3/);
    expect(err.message).toMatch(/returned 16-dimensional vectors but 8 are configured/);
  });

  it('L2-normalises vectors and orders them by index', async () => {
    const fetch = answering({
      data: [
        { index: 1, embedding: [0, 0, 2] },
        { index: 0, embedding: [3, 4, 0] },
      ],
    });
    const embedder = createDenseEmbedder({ baseUrl: 'http://embeddings.invalid/v1', model: 'm', dimensions: 3, fetch });
    expect(await embedder.embed(['first', 'second'], 'document')).toEqual([
      [0.6, 0.8, 0],
      [0, 0, 1],
    ]);
  });

  it('normalises the fake server vectors too (cosine equals dot product)', async () => {
    const api = await fake({ dimensions: 64 });
    const vectors = await createDenseEmbedder({ baseUrl: api.url, model: 'm', dimensions: 64 }).embed(
      ['one two three', 'four'],
      'document',
    );
    for (const v of vectors) expect(Math.abs(dot(v, v) - 1)).toBeLessThan(1e-12);
  });

  it('decodes base64 embeddings from servers that send them anyway', async () => {
    const embedding = Buffer.from(new Float32Array([0, 3, 4]).buffer).toString('base64');
    const embedder = createDenseEmbedder({
      baseUrl: 'http://x.invalid/v1',
      model: 'm',
      dimensions: 3,
      fetch: answering({ data: [{ index: 0, embedding }] }),
    });
    expect(await embedder.embed(['t'], 'query')).toEqual([[0, 0.6, 0.8]]);
  });

  it('asks for floats and takes float arrays as they come (servers that ignore encoding_format)', async () => {
    const bodies: unknown[] = [];
    const fetch: typeof globalThis.fetch = async (url, init) => {
      bodies.push(JSON.parse(String(init?.body)));
      return answering({ data: [{ index: 0, embedding: [0.5, 0.5, 0.5, 0.5] }] })(url, init);
    };
    const embedder = createDenseEmbedder({ baseUrl: 'http://x.invalid/v1', model: 'm', dimensions: 4, fetch });
    expect(await embedder.embed(['t'], 'document')).toEqual([[0.5, 0.5, 0.5, 0.5]]);
    expect(bodies).toEqual([{ model: 'm', input: ['t'], encoding_format: 'float' }]);
  });

  it('reports malformed answers as EMBEDDINGS_BAD_RESPONSE without retrying', async () => {
    let calls = 0;
    const counting =
      (body: unknown): typeof fetch =>
      async (...args) => {
        calls++;
        return answering(body)(...args);
      };
    const make = (stub: typeof fetch) => createDenseEmbedder({ baseUrl: 'http://x.invalid/v1', model: 'm', dimensions: 2, fetch: stub });
    const cases: Array<[unknown, RegExp]> = [
      [{ nope: true }, /no "data" array/],
      [{ data: [{ index: 0, embedding: [1, 0] }] }, /1 embeddings for 2 inputs/],
      [
        {
          data: [
            { index: 0, embedding: [1, 0] },
            { index: 0, embedding: [0, 1] },
          ],
        },
        /duplicate or out-of-range index 0/,
      ],
      [
        {
          data: [
            { index: 0, embedding: [1, 'a'] },
            { index: 1, embedding: [0, 1] },
          ],
        },
        /not an array of finite numbers/,
      ],
    ];
    for (const [body, message] of cases) {
      calls = 0;
      const err = await rejection(make(counting(body)).embed(['a', 'b'], 'document'));
      expect(err.code).toBe('EMBEDDINGS_BAD_RESPONSE');
      expect(err.message).toMatch(message);
      expect(calls).toBe(1);
    }
    const notJson: typeof fetch = async () => new Response('<html>proxy error</html>', { status: 200 });
    expect((await rejection(make(notJson).embed(['a'], 'query'))).code).toBe('EMBEDDINGS_BAD_RESPONSE');
    const labelledJson: typeof fetch = async () =>
      new Response('<html>proxy error</html>', { status: 200, headers: { 'content-type': 'application/json' } });
    const err = await rejection(make(labelledJson).embed(['a'], 'query'));
    expect(err.code).toBe('EMBEDDINGS_BAD_RESPONSE');
    expect(err.message).toMatch(/not valid JSON/);
  });

  it('refuses invalid options', () => {
    const base: DenseEmbedderOptions = { baseUrl: 'http://x.invalid/v1', model: 'm', dimensions: 8 };
    expect(() => createDenseEmbedder({ ...base, dimensions: 0 })).toThrow(RangeError);
    expect(() => createDenseEmbedder({ ...base, model: '' })).toThrow(RangeError);
    expect(() => createDenseEmbedder({ ...base, batchSize: 0 })).toThrow(RangeError);
  });
});

describe('parseRetryAfter', () => {
  it('reads delta-seconds and HTTP dates', () => {
    expect(parseRetryAfter('0')).toBe(0);
    expect(parseRetryAfter('2')).toBe(2000);
    expect(parseRetryAfter('Wed, 21 Oct 2015 07:28:10 GMT', Date.parse('Wed, 21 Oct 2015 07:28:00 GMT'))).toBe(10_000);
    expect(parseRetryAfter(null)).toBeUndefined();
    expect(parseRetryAfter('soon')).toBeUndefined();
  });
});

describe('fake OpenAI server', () => {
  it('embeds synonyms alike, so "automobile" finds the car passage on the dense side only', async () => {
    const api = await fake({ dimensions: 256 });
    const dense = createDenseEmbedder({ baseUrl: api.url, model: 'fake-embed', dimensions: 256 });
    const passages = ['The car would not start on cold mornings.', 'Photosynthesis turns light into chemical energy.'];
    const [car, plants] = await dense.embed(passages, 'document');
    const [query] = await dense.embed(['automobile'], 'query');
    expect(dot(query!, car!)).toBeGreaterThan(0.4);
    expect(dot(query!, car!)).toBeGreaterThan(dot(query!, plants!));

    const lexical = createLexicalEmbedder();
    const [carTerms] = lexical.embedDocuments([passages[0]!]);
    expect(lexical.embedQuery('automobile').indices.filter((id) => carTerms!.indices.includes(id))).toHaveLength(0);
  });

  it('answers chat completions with the best matching sentence, whole or streamed as SSE', async () => {
    const api = await fake();
    const messages = [
      { role: 'system', content: 'Answer from this material only.\nPlants use photosynthesis to make sugar. Cars burn fuel.' },
      { role: 'user', content: 'What is photosynthesis for?' },
    ];
    const whole = await fetch(`${api.url}/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'fake-chat', messages }),
    });
    const completion = (await whole.json()) as { object: string; choices: Array<{ message: { content: string }; finish_reason: string }> };
    expect(completion.object).toBe('chat.completion');
    expect(completion.choices[0]!.message.content).toBe('Plants use photosynthesis to make sugar.');
    expect(completion.choices[0]!.finish_reason).toBe('stop');

    const streamed = await fetch(`${api.url}/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'fake-chat', messages, stream: true, stream_options: { include_usage: true } }),
    });
    expect(streamed.headers.get('content-type') ?? '').toMatch(/^text\/event-stream/);
    const events = (await streamed.text()).split('\n\n').filter(Boolean);
    expect(events.at(-1)).toBe('data: [DONE]');
    const chunks = events.slice(0, -1).map((e) => {
      expect(e.startsWith('data: ')).toBe(true);
      return JSON.parse(e.slice(6)) as {
        object: string;
        choices: Array<{ delta: { content?: string }; finish_reason: string | null }>;
        usage?: unknown;
      };
    });
    expect(chunks.every((c) => c.object === 'chat.completion.chunk')).toBe(true);
    expect(chunks.map((c) => c.choices[0]?.delta.content ?? '').join('')).toBe('Plants use photosynthesis to make sugar.');
    expect(chunks.at(-2)!.choices[0]!.finish_reason).toBe('stop');
    expect(chunks.at(-1)!.usage).toBeDefined();
  });
});
