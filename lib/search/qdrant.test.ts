import { createServer } from 'node:net';
import { afterEach, beforeEach, describe, expect, it, jest } from '@jest/globals';
import { QdrantClient } from '@qdrant/js-client-rest';
import { chunk, FAKE_VERSION, startQdrantFake, sv, type QdrantFake } from '../../tests/support/qdrant-fake.js';
import { collectionFor, createQdrantStore, pointIdFor, uuidV5, VectorStoreError, type QdrantStoreOptions } from './qdrant.js';
import { RRF_K, type VectorStore } from './types.js';

const DENSE = { model: 'test-embed', dimensions: 4 };

let n = 0;
/** A collection name of its own for each test. */
const unique = (prefix: string) => `${prefix}_${process.pid}_${++n}`;

function store(fake: QdrantFake, collection: string, extra: Partial<QdrantStoreOptions> = {}): VectorStore {
  return createQdrantStore({
    url: fake.url,
    collection,
    shardNumber: 2,
    replicationFactor: 1,
    writeConsistencyFactor: 1,
    timeoutMs: 2000,
    retry: { attempts: 3, baseDelayMs: 1 },
    ...extra,
  });
}

/** Awaits `p`, which must reject with a VectorStoreError of that code and message (and status). */
async function rejectsWith(p: Promise<unknown>, code: string, message: RegExp, status?: number): Promise<VectorStoreError> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(VectorStoreError);
  const e = err as VectorStoreError;
  expect(e.code).toBe(code);
  expect(e.message).toMatch(message);
  if (status !== undefined) expect(e.status).toBe(status);
  return e;
}

/** A local port nothing listens on. */
function closedPort(): Promise<number> {
  return new Promise<number>((resolve) => {
    const srv = createServer().listen(0, '127.0.0.1', () => {
      const p = (srv.address() as { port: number }).port;
      srv.close(() => resolve(p));
    });
  });
}

describe('point ids and collection names', () => {
  it('derives RFC 4122 version 5 UUIDs (the standard test vector) and stable point ids', () => {
    expect(uuidV5('www.example.com', '6ba7b810-9dad-11d1-80b4-00c04fd430c8')).toBe('2ed6657d-e927-568b-95e1-2665a8aea6a2');
    expect(pointIdFor('doc1', 0)).toBe(pointIdFor('doc1', 0));
    expect(pointIdFor('doc1', 0)).not.toBe(pointIdFor('doc1', 1));
    expect(pointIdFor('doc1', 0)).toBe(uuidV5('doc1:0', 'ad558b0c-049b-4682-b4cd-5e04e8f1c238'));
    expect(pointIdFor('doc1', 0)).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-5[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
  });

  it('names a collection after the dense model and its dimensions, and keeps lossy slugs distinct', () => {
    expect(collectionFor('chunks', null)).toBe('chunks');
    expect(collectionFor('chunks', { model: 'text-embedding-3-small', dimensions: 1536 })).toBe('chunks__text-embedding-3-small__1536');
    expect(collectionFor('chunks', { model: 'text-embedding-3-small', dimensions: 1536 })).not.toBe(
      collectionFor('chunks', { model: 'text-embedding-3-small', dimensions: 512 }),
    );
    const a = collectionFor('chunks', { model: 'nomic-ai/nomic-embed-text-v1.5', dimensions: 768 });
    const b = collectionFor('chunks', { model: 'nomic-ai-nomic-embed-text-v1-5', dimensions: 768 });
    expect(a).toMatch(/^chunks__nomic-ai-nomic-embed-text-v1-5-[0-9a-f]{8}__768$/);
    expect(a).not.toBe(b);
    expect(a).toMatch(/^[a-z0-9_-]+$/);
  });
});

describe('qdrant vector store', () => {
  let fake: QdrantFake;
  beforeEach(async () => {
    fake = await startQdrantFake();
  });
  afterEach(() => fake.close());

  describe('ensureReady', () => {
    it('creates the collection, then the tenant index, then the document index, once', async () => {
      const name = unique('ready');
      const s = store(fake, name);
      await Promise.all([s.ensureReady(DENSE), s.ensureReady(DENSE)]);
      await s.ensureReady(DENSE);

      expect(fake.requests.map((r) => `${r.method} ${r.path}`)).toEqual([
        `GET /collections/${name}/exists`,
        `PUT /collections/${name}`,
        `PUT /collections/${name}/index`,
        `PUT /collections/${name}/index`,
      ]);
      const [, create, tenant, doc] = fake.requests;
      expect(create!.body).toEqual({
        vectors: { dense: { size: 4, distance: 'Cosine' } },
        sparse_vectors: { bm25: { modifier: 'idf' } },
        shard_number: 2,
        replication_factor: 1,
        write_consistency_factor: 1,
      });
      expect(tenant!.body).toEqual({ field_name: 'course_id', field_schema: { type: 'keyword', is_tenant: true } });
      expect(doc!.body).toEqual({ field_name: 'document_id', field_schema: { type: 'keyword' } });
      expect(tenant!.query['wait']).toBe('true');
      expect(doc!.query['wait']).toBe('true');
    });

    it('only checks an existing collection, and refuses one whose dense size differs', async () => {
      const name = unique('existing');
      await store(fake, name).ensureReady(DENSE);
      fake.clearLog();

      await store(fake, name).ensureReady(DENSE);
      expect(fake.requests.map((r) => `${r.method} ${r.path}`)).toEqual([`GET /collections/${name}/exists`, `GET /collections/${name}`]);

      await rejectsWith(
        store(fake, name).ensureReady({ model: 'test-embed', dimensions: 8 }),
        'VECTOR_STORE_REJECTED',
        /holds 4-dimensional .* gives 8.*collectionFor/,
      );
    });

    it('creates a sparse-only collection without dense vectors, and refuses to add a model to it later', async () => {
      const name = unique('sparse');
      await store(fake, name).ensureReady(null);
      expect(fake.requests[1]!.body).toEqual({
        vectors: {},
        sparse_vectors: { bm25: { modifier: 'idf' } },
        shard_number: 2,
        replication_factor: 1,
        write_consistency_factor: 1,
      });
      await rejectsWith(store(fake, name).ensureReady(DENSE), 'VECTOR_STORE_REJECTED', /no dense vector "dense" for model test-embed/);
    });

    it('adds missing indexes to a collection left without them, and survives a creation race (409)', async () => {
      const name = unique('repair');
      // Another process created the collection between our existence check and our creation.
      fake.fail({ path: `/collections/${name}/exists`, status: 200, body: { result: { exists: false }, status: 'ok', time: 0 } });
      const res = await fetch(`${fake.url}/collections/${name}`, {
        method: 'PUT',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ vectors: { dense: { size: 4, distance: 'Cosine' } }, sparse_vectors: { bm25: { modifier: 'idf' } } }),
      });
      expect(res.status).toBe(200);
      fake.clearLog();

      await store(fake, name).ensureReady(DENSE);
      expect(fake.requests.map((r) => `${r.method} ${r.path} ${fake.responses[fake.requests.indexOf(r)]!.status}`)).toEqual([
        `GET /collections/${name}/exists 200`,
        `PUT /collections/${name} 409`,
        `GET /collections/${name} 200`,
        `PUT /collections/${name}/index 200`,
        `PUT /collections/${name}/index 200`,
      ]);
      expect([...fake.collections.get(name)!.indexes.keys()]).toEqual(['course_id', 'document_id']);
    });

    it('tries again on the next call after a failed one', async () => {
      const name = unique('again');
      fake.fail({ path: `/collections/${name}`, method: 'PUT', status: 400, body: { status: { error: 'Wrong input: nope' }, time: 0 } });
      const s = store(fake, name);
      await rejectsWith(s.ensureReady(DENSE), 'VECTOR_STORE_REJECTED', /Wrong input: nope/, 400);
      await s.ensureReady(DENSE);
      expect(fake.collections.has(name)).toBe(true);
    });
  });

  describe('replaceDocument and deleteDocument', () => {
    it('deletes the document by filter, then upserts batches with deterministic ids; a re-run leaves the same points', async () => {
      const name = unique('replace');
      const s = store(fake, name);
      await s.ensureReady(DENSE);
      const points = Array.from({ length: 600 }, (_, i) => chunk('c1', 'd1', i, sv({ [i]: 1, 7: 0.5 }), [1, i, 0, 0]));
      fake.clearLog();

      await s.replaceDocument('c1', 'd1', points);
      expect(fake.requests.map((r) => `${r.method} ${r.path}`)).toEqual([
        `POST /collections/${name}/points/delete`,
        ...Array(3).fill(`PUT /collections/${name}/points`),
      ]);
      const [del, ...upserts] = fake.requests;
      expect(del!.body).toEqual({
        filter: {
          must: [
            { key: 'course_id', match: { value: 'c1' } },
            { key: 'document_id', match: { value: 'd1' } },
          ],
        },
      });
      for (const r of fake.requests) expect(r.query).toEqual({ wait: 'true', ordering: 'medium' });
      expect(upserts.map((r) => (r.body as { points: unknown[] }).points.length)).toEqual([256, 256, 88]);
      expect((upserts[0]!.body as { points: unknown[] }).points[1]).toEqual({
        id: pointIdFor('d1', 1),
        vector: { bm25: { indices: [1, 7], values: [1, 0.5] }, dense: [1, 1, 0, 0] },
        payload: { course_id: 'c1', document_id: 'd1', position: 1, chunk_id: 'd1:1' },
      });

      const first = fake.points(name);
      await s.replaceDocument('c1', 'd1', points);
      expect(fake.points(name).length).toBe(600);
      expect(fake.points(name).map((p) => [p.id, p.payload])).toEqual(first.map((p) => [p.id, p.payload]));

      // A shorter version of the document leaves no stale chunks behind.
      await s.replaceDocument('c1', 'd1', points.slice(0, 3));
      expect(
        fake
          .points(name)
          .map((p) => p.payload['chunk_id'])
          .sort(),
      ).toEqual(['d1:0', 'd1:1', 'd1:2']);
    });

    it('refuses points of another course or document before sending anything', async () => {
      const s = store(fake, unique('mixed'));
      await s.ensureReady(null);
      fake.clearLog();
      await rejectsWith(
        s.replaceDocument('c1', 'd1', [chunk('c2', 'd1', 0, sv({ 1: 1 }))]),
        'VECTOR_STORE_REJECTED',
        /belongs to course c2/,
      );
      expect(fake.requests.length).toBe(0);
    });

    it('deleteDocument removes that document of that course only', async () => {
      const name = unique('delete');
      const s = store(fake, name);
      await s.ensureReady(null);
      await s.replaceDocument('c1', 'd1', [chunk('c1', 'd1', 0, sv({ 1: 1 }))]);
      await s.replaceDocument('c1', 'd2', [chunk('c1', 'd2', 0, sv({ 1: 1 }))]);
      await s.replaceDocument('c2', 'd1', [chunk('c2', 'd1', 0, sv({ 1: 1 }))]);
      await s.deleteDocument('c1', 'd1');
      expect(
        fake
          .points(name)
          .map((p) => `${String(p.payload['course_id'])}/${String(p.payload['chunk_id'])}`)
          .sort(),
      ).toEqual(['c1/d2:0', 'c2/d1:0']);
    });
  });

  describe('search', () => {
    /** Course A: three chunks; course B: 60 chunks that match the query better than any of A's. */
    async function seed(name: string) {
      const s = store(fake, name);
      await s.ensureReady(DENSE);
      await s.replaceDocument('A', 'a1', [
        chunk('A', 'a1', 0, sv({ 1: 1, 2: 1 }), [1, 0, 0, 0]),
        chunk('A', 'a1', 1, sv({ 1: 0.5 }), [0, 1, 0, 0]),
        chunk('A', 'a1', 2, sv({ 3: 1 }), [0.9, 0.1, 0, 0]),
      ]);
      await s.replaceDocument('A', 'a2', [chunk('A', 'a2', 0, sv({ 2: 3 }), [0.5, 0.5, 0, 0])]);
      await s.replaceDocument(
        'B',
        'b1',
        Array.from({ length: 60 }, (_, i) => chunk('B', 'b1', i, sv({ 1: 5, 2: 5 }), [1, 0, 0, 0])),
      );
      fake.clearLog();
      return s;
    }
    const courseFilter = (course: string) => ({ must: [{ key: 'course_id', match: { value: course } }] });

    it('with only a sparse vector, queries it directly, filtered by course', async () => {
      const name = unique('sparse-search');
      const s = await seed(name);
      const hits = await s.search({ courseId: 'A', sparse: sv({ 1: 1, 2: 1 }), limit: 10 });

      expect(fake.requests[0]!.body).toEqual({
        query: { indices: [1, 2], values: [1, 1] },
        using: 'bm25',
        filter: courseFilter('A'),
        limit: 10,
        with_payload: ['chunk_id'],
      });
      expect(hits.map((h) => h.id)).toEqual(['a2:0', 'a1:0', 'a1:1']);
      for (const h of hits) expect(h.score).toBeGreaterThan(0);
    });

    it('with both vectors, fuses a prefetch per vector with RRF; the course filter is in every prefetch and at the root', async () => {
      const name = unique('hybrid');
      const s = await seed(name);
      const query = { courseId: 'A', sparse: sv({ 1: 1, 2: 1 }), dense: [1, 0, 0, 0], limit: 3 };
      const hits = await s.search(query);

      const body = fake.requests[0]!.body as Record<string, unknown>;
      expect(body).toEqual({
        prefetch: [
          { query: { indices: [1, 2], values: [1, 1] }, using: 'bm25', filter: courseFilter('A'), limit: 50 },
          { query: [1, 0, 0, 0], using: 'dense', filter: courseFilter('A'), limit: 50 },
        ],
        query: { rrf: { k: RRF_K + 1 } },
        filter: courseFilter('A'),
        limit: 3,
        with_payload: ['chunk_id'],
      });
      expect(hits).toHaveLength(3);
      for (const h of hits) expect(h.id).toMatch(/^a/);

      // Scores are the RRF of types.ts: sum of 1 / (RRF_K + rank), rank from 1.
      const sparseRanks = (await s.search({ courseId: 'A', sparse: query.sparse, limit: 10 })).map((h) => h.id);
      const denseRanks = (await s.search({ courseId: 'A', sparse: sv({}), dense: query.dense, limit: 10 })).map((h) => h.id);
      const expected = new Map<string, number>();
      for (const ranking of [sparseRanks, denseRanks]) {
        ranking.forEach((id, i) => expected.set(id, (expected.get(id) ?? 0) + 1 / (RRF_K + i + 1)));
      }
      for (const h of hits) {
        expect(expected.has(h.id)).toBe(true);
        expect(Math.abs(h.score - expected.get(h.id)!)).toBeLessThan(1e-12);
      }
      const best = [...expected].sort((a, b) => b[1] - a[1])[0]![0];
      expect(hits[0]!.id).toBe(best);
    });

    it("never returns another course's chunks, even when they match better and outnumber the prefetch depth", async () => {
      const name = unique('isolation');
      const s = await seed(name);
      for (const q of [
        { courseId: 'A', sparse: sv({ 1: 1, 2: 1 }), limit: 10 },
        // Each prefetch keeps 50 candidates: unfiltered, they would all be course B's.
        { courseId: 'A', sparse: sv({ 1: 1, 2: 1 }), dense: [1, 0, 0, 0], limit: 10 },
      ]) {
        const hits = await s.search(q);
        expect(hits.map((h) => h.id).sort()).toEqual(q.dense ? ['a1:0', 'a1:1', 'a1:2', 'a2:0'] : ['a1:0', 'a1:1', 'a2:0']);
      }
      const b = await s.search({ courseId: 'B', sparse: sv({ 1: 1 }), limit: 100 });
      expect(b.length).toBe(60);
      for (const h of b) expect(h.id).toMatch(/^b1:/);
    });

    it('restricts to the given documents in every prefetch and at the root, and sends nothing for an empty list', async () => {
      const name = unique('docs');
      const s = await seed(name);
      const hits = await s.search({
        courseId: 'A',
        sparse: sv({ 1: 1, 2: 1 }),
        dense: [1, 0, 0, 0],
        documentIds: ['a2', 'a2', 'b1'],
        limit: 10,
      });
      expect(hits.map((h) => h.id)).toEqual(['a2:0']);
      const filter = {
        must: [
          { key: 'course_id', match: { value: 'A' } },
          { key: 'document_id', match: { any: ['a2', 'b1'] } },
        ],
      };
      const body = fake.requests[0]!.body as { filter: unknown; prefetch: { filter: unknown }[] };
      expect(body.filter).toEqual(filter);
      for (const p of body.prefetch) expect(p.filter).toEqual(filter);

      fake.clearLog();
      expect(await s.search({ courseId: 'A', sparse: sv({ 1: 1 }), documentIds: [], limit: 10 })).toEqual([]);
      expect(await s.search({ courseId: 'A', sparse: sv({}), limit: 10 })).toEqual([]);
      expect(await s.search({ courseId: 'A', sparse: sv({ 1: 1 }), limit: 0 })).toEqual([]);
      expect(fake.requests.length).toBe(0);
    });
  });

  describe('errors', () => {
    it("maps Qdrant's 404 and 400 bodies to VECTOR_STORE_REJECTED with its message", async () => {
      const missing = store(fake, 'nowhere');
      await rejectsWith(
        missing.search({ courseId: 'A', sparse: sv({ 1: 1 }), limit: 1 }),
        'VECTOR_STORE_REJECTED',
        /rejected query points \(HTTP 404\): Not found: Collection `nowhere` doesn't exist!/,
        404,
      );
      const s = store(fake, unique('bad'));
      await s.ensureReady(DENSE);
      await rejectsWith(
        s.replaceDocument('A', 'a1', [chunk('A', 'a1', 0, sv({ 1: 1 }), [1, 2, 3])]),
        'VECTOR_STORE_REJECTED',
        /rejected upsert points \(HTTP 400\): Wrong input: Vector dimension error: expected dim: 4, got 3/,
        400,
      );
    });

    it('retries a 503 and succeeds, logging each retry', async () => {
      const warnings: object[] = [];
      const s = store(fake, unique('retry'), { log: { info() {}, warn: (obj) => warnings.push(obj) } });
      await s.ensureReady(null);
      fake.fail({ path: /\/points\/query$/, status: 503, body: { status: { error: 'Service unavailable: too busy' }, time: 0 }, times: 2 });
      fake.clearLog();
      expect(await s.search({ courseId: 'A', sparse: sv({ 1: 1 }), limit: 1 })).toEqual([]);
      expect(fake.requests.length).toBe(3);
      expect(warnings.length).toBe(2);
      expect(warnings[0]).toMatchObject({ operation: 'query points', attempt: 1, status: 503 });
    });

    it('gives up after the attempts with VECTOR_STORE_UNAVAILABLE; a 500 is not retried', async () => {
      const s = store(fake, unique('down'));
      await s.ensureReady(null);
      fake.fail({ path: /\/points\/query$/, status: 502, body: '<html>Bad gateway</html>', times: 3 });
      fake.clearLog();
      await rejectsWith(
        s.search({ courseId: 'A', sparse: sv({ 1: 1 }), limit: 1 }),
        'VECTOR_STORE_UNAVAILABLE',
        /HTTP 502\): <html>Bad gateway/,
        502,
      );
      expect(fake.requests.length).toBe(3);

      fake.fail({ path: /\/points\/query$/, status: 500, body: { status: { error: 'Service internal error: boom' }, time: 0 } });
      fake.clearLog();
      await rejectsWith(
        s.search({ courseId: 'A', sparse: sv({ 1: 1 }), limit: 1 }),
        'VECTOR_STORE_UNAVAILABLE',
        /Service internal error: boom/,
        500,
      );
      expect(fake.requests.length).toBe(1);
    });

    it('retries a 429 whatever its Retry-After (the client turns those into errors of its own) and a 504', async () => {
      const s = store(fake, unique('busy'));
      await s.ensureReady(null);
      const busy = { status: { error: 'Too many requests: rate limited' }, time: 0 };
      const cases: { status: number; headers: Record<string, string>; message: RegExp }[] = [
        { status: 429, headers: {}, message: /HTTP 429\): Too many requests: rate limited/ },
        // The client throws its QdrantClientResourceExhaustedError, without the body.
        { status: 429, headers: { 'retry-after': '1' }, message: /HTTP 429\): Too Many Requests/ },
        // The client cannot read an HTTP date as seconds and throws a plain error.
        { status: 429, headers: { 'retry-after': 'Wed, 21 Oct 2015 07:28:00 GMT' }, message: /HTTP 429\): Too Many Requests/ },
        { status: 504, headers: {}, message: /HTTP 504\): Too many requests: rate limited/ },
      ];
      for (const c of cases) {
        // Once: retried, and the search succeeds.
        fake.fail({ path: /\/points\/query$/, status: c.status, headers: c.headers, body: busy });
        fake.clearLog();
        expect(await s.search({ courseId: 'A', sparse: sv({ 1: 1 }), limit: 1 })).toEqual([]);
        expect(fake.responses.map((r) => r.status)).toEqual([c.status, 200]);
        // Every attempt: VECTOR_STORE_UNAVAILABLE with the status.
        fake.fail({ path: /\/points\/query$/, status: c.status, headers: c.headers, body: busy, times: 3 });
        fake.clearLog();
        await rejectsWith(s.search({ courseId: 'A', sparse: sv({ 1: 1 }), limit: 1 }), 'VECTOR_STORE_UNAVAILABLE', c.message, c.status);
        expect(fake.requests.length).toBe(3);
      }
    });

    it('retries a reset connection, and maps a persistent network failure to VECTOR_STORE_UNAVAILABLE', async () => {
      const s = store(fake, unique('net'));
      await s.ensureReady(null);
      fake.fail({ path: /\/points\/delete$/, network: 'reset' });
      fake.clearLog();
      await s.deleteDocument('A', 'a1');
      expect(fake.requests.length).toBe(2);

      const closed = createQdrantStore({
        url: `http://127.0.0.1:${await closedPort()}`,
        collection: 'x',
        shardNumber: 1,
        replicationFactor: 1,
        writeConsistencyFactor: 1,
        retry: { attempts: 2, baseDelayMs: 1 },
      });
      await rejectsWith(
        closed.ensureReady(null),
        'VECTOR_STORE_UNAVAILABLE',
        /could not be reached \(ECONNREFUSED\) during collection exists/,
      );
    });

    it('maps a request that gets no answer in time to VECTOR_STORE_UNAVAILABLE', async () => {
      const s = store(fake, unique('slow'), { timeoutMs: 100, retry: { attempts: 2, baseDelayMs: 1 } });
      fake.fail({ path: /\/exists$/, network: 'hang', times: 2 });
      await rejectsWith(s.ensureReady(null), 'VECTOR_STORE_UNAVAILABLE', /did not answer within 100 ms during collection exists/);
      expect(fake.requests.length).toBe(2);
    });

    it('treats a 200 without a result (a proxy page) as unavailable, not as data', async () => {
      const s = store(fake, unique('proxy'));
      fake.fail({ path: /\/exists$/, status: 200, body: '<html>captive portal</html>' });
      await rejectsWith(s.ensureReady(null), 'VECTOR_STORE_UNAVAILABLE', /HTTP 200\/201 but no result/);
      expect(fake.requests.length).toBe(1);
    });

    it('treats another 2xx, or a body labelled JSON that is not, as unavailable, without retrying', async () => {
      const s = store(fake, unique('odd'));
      fake.fail({ path: /\/exists$/, status: 204, body: '' });
      await rejectsWith(s.ensureReady(null), 'VECTOR_STORE_UNAVAILABLE', /answered collection exists unexpectedly: .*204/);
      expect(fake.requests.length).toBe(1);

      fake.clearLog();
      fake.fail({ path: /\/exists$/, status: 200, headers: { 'content-type': 'application/json' }, body: '<html>captive portal</html>' });
      await rejectsWith(s.ensureReady(null), 'VECTOR_STORE_UNAVAILABLE', /answered collection exists with a body that is not JSON/);
      expect(fake.requests.length).toBe(1);
    });
  });

  describe('the official client', () => {
    it('sends no request of its own (no version check) and never retries by itself', async () => {
      const name = unique('own');
      const s = store(fake, name, { retry: { attempts: 1 } });
      fake.fail({ path: /\/exists$/, status: 503, body: { status: { error: 'Service unavailable: starting' }, time: 0 } });
      await rejectsWith(s.ensureReady(null), 'VECTOR_STORE_UNAVAILABLE', /Service unavailable: starting/, 503);
      // Let a stray GET / (sent on construction unless disabled) arrive.
      await new Promise((resolve) => setTimeout(resolve, 50));
      expect(fake.requests.map((r) => `${r.method} ${r.path}`)).toEqual([`GET /collections/${name}/exists`]);
      for (const r of fake.requests) expect(r.headers['user-agent']).toMatch(/^qdrant-js\//);
    });

    it('a client with its version check on gets the version the fake stands for, and does not warn', async () => {
      const warn = jest.spyOn(console, 'warn').mockImplementation(() => {});
      try {
        const client = new QdrantClient({ url: fake.url });
        expect(await client.versionInfo()).toEqual(FAKE_VERSION);
        // Two GET /: the one the construction sends for its check, and versionInfo's.
        for (let i = 0; i < 100 && fake.responses.filter((r) => r.path === '/').length < 2; i++) {
          await new Promise((resolve) => setTimeout(resolve, 10));
        }
        await new Promise((resolve) => setTimeout(resolve, 20));
        expect(fake.responses.filter((r) => r.path === '/').map((r) => r.status)).toEqual([200, 200]);
        expect(warn).not.toHaveBeenCalled();
      } finally {
        warn.mockRestore();
      }
    });

    it('keeps the path of the URL (a reverse proxy) in every request', async () => {
      const s = store(fake, 'k', { url: `${fake.url}/qdrant/` });
      await rejectsWith(
        s.ensureReady(null),
        'VECTOR_STORE_REJECTED',
        /HTTP 404\): \(qdrant fake\) no route for GET \/qdrant\/collections\/k\/exists/,
        404,
      );
      expect(fake.requests.map((r) => r.path)).toEqual(['/qdrant/collections/k/exists']);
    });

    it('refuses a URL it cannot use before sending anything, without echoing credentials', () => {
      const opts = { collection: 'k', shardNumber: 1, replicationFactor: 1, writeConsistencyFactor: 1 };
      for (const url of ['ftp://127.0.0.1:6333', 'localhost:6333', 'not a url', 'http://user:sekret@127.0.0.1:6333']) {
        let caught: unknown;
        try {
          createQdrantStore({ ...opts, url });
        } catch (err) {
          caught = err;
        }
        expect(caught).toBeInstanceOf(VectorStoreError);
        expect(caught).toMatchObject({ code: 'VECTOR_STORE_REJECTED', message: expect.stringMatching(/must be http\(s\):\/\/host/) });
        expect((caught as Error).message).not.toContain('sekret');
      }
      expect(fake.requests.length).toBe(0);
    });
  });

  describe('API key', () => {
    let secured: QdrantFake;
    beforeEach(async () => {
      secured = await startQdrantFake({ apiKey: 'sekret' });
    });
    afterEach(() => secured.close());

    it('sends it as the api-key header; without it, a 401 is VECTOR_STORE_REJECTED with a hint', async () => {
      // The client warns on the console when a key goes over plain http.
      const warn = jest.spyOn(console, 'warn').mockImplementation(() => {});
      try {
        await createQdrantStore({
          url: `${secured.url}/`,
          apiKey: 'sekret',
          collection: 'k',
          shardNumber: 1,
          replicationFactor: 1,
          writeConsistencyFactor: 1,
        }).ensureReady(null);
        expect(warn).toHaveBeenCalledWith('Api key is used with unsecure connection.');
      } finally {
        warn.mockRestore();
      }
      expect(secured.requests.length).toBeGreaterThan(0);
      for (const r of secured.requests) expect(r.headers['api-key']).toBe('sekret');
      await rejectsWith(
        createQdrantStore({
          url: secured.url,
          collection: 'k',
          shardNumber: 1,
          replicationFactor: 1,
          writeConsistencyFactor: 1,
        }).ensureReady(null),
        'VECTOR_STORE_REJECTED',
        /HTTP 401\): Must provide an API key .*check the Qdrant API key/,
        401,
      );
    });
  });
});
