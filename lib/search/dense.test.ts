import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, describe, it } from 'node:test';
import { fakeEmbedding, startFakeOpenAI, type FakeOpenAI } from '../../tests/support/openai-fake.js';
import { createDenseEmbedder, EmbeddingError, parseRetryAfter, type DenseEmbedderOptions } from './dense.js';
import { createLexicalEmbedder } from './lexical.js';

const fast = { retryBaseMs: 1, retryMaxMs: 20 } as const;

const servers: FakeOpenAI[] = [];
async function fake(opts: Parameters<typeof startFakeOpenAI>[0] = {}): Promise<FakeOpenAI> {
  const server = await startFakeOpenAI(opts);
  servers.push(server);
  return server;
}
after(() => Promise.all(servers.map((s) => s.close())));

const dot = (a: number[], b: number[]) => a.reduce((sum, x, i) => sum + x * b[i]!, 0);
const inputsOf = (body: unknown) => (body as { input: string[] }).input;
function assertClose(actual: number[] | undefined, expected: number[]): void {
  assert.equal(actual?.length, expected.length);
  expected.forEach((x, i) => assert.ok(Math.abs(actual![i]! - x) < 1e-12, `component ${i}: ${actual![i]} != ${x}`));
}

async function rejection(promise: Promise<unknown>): Promise<EmbeddingError> {
  try {
    await promise;
  } catch (err) {
    assert.ok(err instanceof EmbeddingError, `expected an EmbeddingError, got ${String(err)}`);
    return err;
  }
  assert.fail('expected a rejection');
}

/** A fetch that answers every request with this JSON body. */
function answering(body: unknown, status = 200): typeof fetch {
  return async () => new Response(JSON.stringify(body), { status, headers: { 'content-type': 'application/json' } });
}

describe('createDenseEmbedder', () => {
  it('sends batches of batchSize inputs and returns the vectors in input order', async () => {
    const api = await fake({ dimensions: 32 });
    const embedder = createDenseEmbedder({ baseUrl: api.url, model: 'fake-embed', dimensions: 32, batchSize: 64 });
    const texts = Array.from({ length: 150 }, (_, i) => `passage number ${i} about topic${i % 7} and item${i}`);
    const vectors = await embedder.embed(texts, 'document');

    assert.equal(api.requests.length, 3);
    assert.deepEqual(
      api.requests.map((r) => inputsOf(r.body).length),
      [64, 64, 22],
    );
    assert.deepEqual(
      api.requests.flatMap((r) => inputsOf(r.body)),
      texts,
    );
    for (const request of api.requests) {
      assert.equal(request.path, '/v1/embeddings');
      const body = request.body as Record<string, unknown>;
      assert.equal(body['model'], 'fake-embed');
      assert.equal(body['encoding_format'], 'float');
      assert.equal('dimensions' in body, false);
      assert.equal(request.authorization, undefined);
    }
    assert.equal(vectors.length, 150);
    vectors.forEach((vector, i) => assertClose(vector, fakeEmbedding(texts[i]!, 32)));
    assert.equal(embedder.model, 'fake-embed');
    assert.equal(embedder.dimensions, 32);
  });

  it('sends the API key as a bearer token and dimensions only when asked to', async () => {
    const api = await fake({ dimensions: 64 });
    const embedder = createDenseEmbedder({ baseUrl: `${api.url}/`, apiKey: 'sk-test', model: 'm', dimensions: 16, sendDimensions: true });
    const [vector] = await embedder.embed(['hello world'], 'query');
    assert.equal(vector!.length, 16);
    assert.equal(api.requests[0]!.authorization, 'Bearer sk-test');
    assert.equal((api.requests[0]!.body as { dimensions: number }).dimensions, 16);
  });

  it('makes no request for no input', async () => {
    const api = await fake();
    assert.deepEqual(await createDenseEmbedder({ baseUrl: api.url, model: 'm', dimensions: 256 }).embed([], 'document'), []);
    assert.equal(api.requests.length, 0);
  });

  it('retries on 503 and then succeeds', async () => {
    const api = await fake({ dimensions: 8, failFirst: 2 });
    const embedder = createDenseEmbedder({ baseUrl: api.url, model: 'm', dimensions: 8, ...fast });
    const [vector] = await embedder.embed(['photosynthesis'], 'document');
    assertClose(vector, fakeEmbedding('photosynthesis', 8));
    assert.equal(api.requests.length, 3);
  });

  it('retries on 429 honouring Retry-After: 0 instead of its own backoff', async () => {
    const api = await fake({ dimensions: 8, rateLimitFirst: 2 });
    // A backoff of a minute would time the test out: only Retry-After lets it finish at once.
    const embedder = createDenseEmbedder({ baseUrl: api.url, model: 'm', dimensions: 8, retryBaseMs: 60_000, retryMaxMs: 60_000 });
    const started = Date.now();
    await embedder.embed(['a', 'b'], 'document');
    assert.equal(api.requests.length, 3);
    assert.ok(Date.now() - started < 5_000);
  });

  it('gives up after maxRetries with EMBEDDINGS_UNAVAILABLE naming the URL and model', async () => {
    const api = await fake({ dimensions: 8, failFirst: 100 });
    const embedder = createDenseEmbedder({ baseUrl: api.url, model: 'nomic-embed-text', dimensions: 8, maxRetries: 2, ...fast });
    const err = await rejection(embedder.embed(['x'], 'document'));
    assert.equal(err.code, 'EMBEDDINGS_UNAVAILABLE');
    assert.equal(err.details.status, 503);
    assert.equal(api.requests.length, 3);
    assert.match(err.message, /nomic-embed-text/);
    assert.ok(err.message.includes(`${api.url}/embeddings`));
    assert.match(err.message, /gave up after 3 attempts/);
  });

  it('does not retry a 400 and reports EMBEDDINGS_REJECTED with the server message', async () => {
    const api = await fake({ dimensions: 8, maxInputChars: 100 });
    const embedder = createDenseEmbedder({ baseUrl: api.url, model: 'm', dimensions: 8, maxInputChars: 10_000, ...fast });
    const err = await rejection(embedder.embed(['x'.repeat(500)], 'document'));
    assert.equal(err.code, 'EMBEDDINGS_REJECTED');
    assert.equal(err.details.status, 400);
    assert.match(err.message, /maximum context length/);
    assert.equal(api.requests.length, 1);
  });

  it('does not retry an unknown model (404)', async () => {
    const api = await fake({ dimensions: 8, models: ['known'] });
    const err = await rejection(createDenseEmbedder({ baseUrl: api.url, model: 'unknown', dimensions: 8, ...fast }).embed(['x'], 'query'));
    assert.equal(err.code, 'EMBEDDINGS_REJECTED');
    assert.equal(err.details.status, 404);
    assert.match(err.message, /does not exist/);
    assert.equal(api.requests.length, 1);
  });

  it('cuts inputs longer than maxInputChars and replaces empty ones with a space', async () => {
    const api = await fake({ dimensions: 8, maxInputChars: 100 });
    const embedder = createDenseEmbedder({ baseUrl: api.url, model: 'm', dimensions: 8, maxInputChars: 100 });
    const vectors = await embedder.embed(['y'.repeat(500), '', `a${'😀'.repeat(60)}`], 'document');
    assert.equal(vectors.length, 3);
    const [long, empty, emoji] = inputsOf(api.requests[0]!.body);
    assert.equal(long, 'y'.repeat(100));
    assert.equal(empty, ' ');
    assert.equal(emoji, `a${'😀'.repeat(49)}`, 'a surrogate pair is never split');
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
    assert.deepEqual(
      api.requests.map((r) => inputsOf(r.body)),
      [['search_query: q'], ['search_document: d']],
    );
  });

  it('reports EMBEDDINGS_UNAVAILABLE when nothing listens on the port', async () => {
    const probe = createServer();
    await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
    const { port } = probe.address() as AddressInfo;
    await new Promise<void>((resolve) => probe.close(() => resolve()));

    const baseUrl = `http://127.0.0.1:${port}/v1`;
    const err = await rejection(createDenseEmbedder({ baseUrl, model: 'm', dimensions: 8, maxRetries: 1, ...fast }).embed(['x'], 'query'));
    assert.equal(err.code, 'EMBEDDINGS_UNAVAILABLE');
    assert.match(err.message, /cannot reach the endpoint/);
    assert.ok(err.message.includes(`${baseUrl}/embeddings`));
    assert.match(err.message, /ECONNREFUSED/);
  });

  it('reports EMBEDDINGS_UNAVAILABLE when the endpoint never answers', async () => {
    let hits = 0;
    const silent: Server = createServer(() => {
      hits++; // never answers
    });
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    const { port } = silent.address() as AddressInfo;
    try {
      const embedder = createDenseEmbedder({
        baseUrl: `http://127.0.0.1:${port}/v1`,
        model: 'm',
        dimensions: 8,
        timeoutMs: 100,
        maxRetries: 1,
        ...fast,
      });
      const err = await rejection(embedder.embed(['x'], 'query'));
      assert.equal(err.code, 'EMBEDDINGS_UNAVAILABLE');
      assert.match(err.message, /no answer within 100 ms/);
      assert.equal(hits, 2);
    } finally {
      silent.closeAllConnections();
      await new Promise<void>((resolve) => silent.close(() => resolve()));
    }
  });

  it('refuses vectors of the wrong length, naming the model and both dimensions', async () => {
    const api = await fake({ dimensions: 16 });
    const err = await rejection(createDenseEmbedder({ baseUrl: api.url, model: 'bge-m3', dimensions: 8 }).embed(['x'], 'document'));
    assert.equal(err.code, 'EMBEDDINGS_BAD_RESPONSE');
    assert.match(err.message, /bge-m3/);
    assert.match(err.message, /returned 16-dimensional vectors but 8 are configured/);
  });

  it('L2-normalises vectors and orders them by index', async () => {
    const fetch = answering({
      data: [
        { index: 1, embedding: [0, 0, 2] },
        { index: 0, embedding: [3, 4, 0] },
      ],
    });
    const embedder = createDenseEmbedder({ baseUrl: 'http://embeddings.invalid/v1', model: 'm', dimensions: 3, fetch });
    assert.deepEqual(await embedder.embed(['first', 'second'], 'document'), [
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
    for (const v of vectors) assert.ok(Math.abs(dot(v, v) - 1) < 1e-12);
  });

  it('decodes base64 embeddings from servers that send them anyway', async () => {
    const embedding = Buffer.from(new Float32Array([0, 3, 4]).buffer).toString('base64');
    const embedder = createDenseEmbedder({
      baseUrl: 'http://x.invalid/v1',
      model: 'm',
      dimensions: 3,
      fetch: answering({ data: [{ index: 0, embedding }] }),
    });
    assert.deepEqual(await embedder.embed(['t'], 'query'), [[0, 0.6, 0.8]]);
  });

  it('reports malformed answers as EMBEDDINGS_BAD_RESPONSE without retrying', async () => {
    let calls = 0;
    const counting =
      (body: unknown): typeof fetch =>
      async (...args) => {
        calls++;
        return answering(body)(...args);
      };
    const make = (stub: typeof fetch) =>
      createDenseEmbedder({ baseUrl: 'http://x.invalid/v1', model: 'm', dimensions: 2, fetch: stub, ...fast });
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
      assert.equal(err.code, 'EMBEDDINGS_BAD_RESPONSE');
      assert.match(err.message, message);
      assert.equal(calls, 1);
    }
    const notJson: typeof fetch = async () => new Response('<html>proxy error</html>', { status: 200 });
    assert.equal((await rejection(make(notJson).embed(['a'], 'query'))).code, 'EMBEDDINGS_BAD_RESPONSE');
  });

  it('refuses invalid options', () => {
    const base: DenseEmbedderOptions = { baseUrl: 'http://x.invalid/v1', model: 'm', dimensions: 8 };
    assert.throws(() => createDenseEmbedder({ ...base, dimensions: 0 }), RangeError);
    assert.throws(() => createDenseEmbedder({ ...base, model: '' }), RangeError);
    assert.throws(() => createDenseEmbedder({ ...base, batchSize: 0 }), RangeError);
  });
});

describe('parseRetryAfter', () => {
  it('reads delta-seconds and HTTP dates', () => {
    assert.equal(parseRetryAfter('0'), 0);
    assert.equal(parseRetryAfter('2'), 2000);
    assert.equal(parseRetryAfter('Wed, 21 Oct 2015 07:28:10 GMT', Date.parse('Wed, 21 Oct 2015 07:28:00 GMT')), 10_000);
    assert.equal(parseRetryAfter(null), undefined);
    assert.equal(parseRetryAfter('soon'), undefined);
  });
});

describe('fake OpenAI server', () => {
  it('embeds synonyms alike, so "automobile" finds the car passage on the dense side only', async () => {
    const api = await fake({ dimensions: 256 });
    const dense = createDenseEmbedder({ baseUrl: api.url, model: 'fake-embed', dimensions: 256 });
    const passages = ['The car would not start on cold mornings.', 'Photosynthesis turns light into chemical energy.'];
    const [car, plants] = await dense.embed(passages, 'document');
    const [query] = await dense.embed(['automobile'], 'query');
    assert.ok(dot(query!, car!) > 0.4);
    assert.ok(dot(query!, car!) > dot(query!, plants!));

    const lexical = createLexicalEmbedder();
    const [carTerms] = lexical.embedDocuments([passages[0]!]);
    assert.equal(lexical.embedQuery('automobile').indices.filter((id) => carTerms!.indices.includes(id)).length, 0);
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
    assert.equal(completion.object, 'chat.completion');
    assert.equal(completion.choices[0]!.message.content, 'Plants use photosynthesis to make sugar.');
    assert.equal(completion.choices[0]!.finish_reason, 'stop');

    const streamed = await fetch(`${api.url}/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'fake-chat', messages, stream: true, stream_options: { include_usage: true } }),
    });
    assert.match(streamed.headers.get('content-type') ?? '', /^text\/event-stream/);
    const events = (await streamed.text()).split('\n\n').filter(Boolean);
    assert.equal(events.at(-1), 'data: [DONE]');
    const chunks = events.slice(0, -1).map((e) => {
      assert.ok(e.startsWith('data: '));
      return JSON.parse(e.slice(6)) as {
        object: string;
        choices: Array<{ delta: { content?: string }; finish_reason: string | null }>;
        usage?: unknown;
      };
    });
    assert.ok(chunks.every((c) => c.object === 'chat.completion.chunk'));
    assert.equal(chunks.map((c) => c.choices[0]?.delta.content ?? '').join(''), 'Plants use photosynthesis to make sugar.');
    assert.equal(chunks.at(-2)!.choices[0]!.finish_reason, 'stop');
    assert.ok(chunks.at(-1)!.usage);
  });
});
