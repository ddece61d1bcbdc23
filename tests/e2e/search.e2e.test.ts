import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { createCourse, ingest, upload, waitForTask } from '../support/ingest.js';
import { startFakeOpenAI } from '../support/openai-fake.js';
import { makeTextPdf } from '../support/pdf-fixtures.js';
import { startTestStack, type TestStack } from '../support/stack.js';

interface PassageView {
  chunkId: string;
  text: string;
  score: number;
  pageStart: number;
  pageEnd: number;
  matchedTerms: string[];
  highlight: string;
  document: { id: string; title: string };
}
const SEARCH = `query($c: ID!, $q: String!, $l: Int, $d: [ID!]) {
  search(courseId: $c, query: $q, limit: $l, documentIds: $d) { chunkId text score pageStart pageEnd matchedTerms highlight document { id title } }
}`;

const filler = (n: number) =>
  Array.from(
    { length: 5 },
    (_, i) => `Section ${n}.${i}: general remarks about laboratory safety, note taking and revision schedules for the course.`,
  ).join(' ');

async function search(
  stack: TestStack,
  token: string,
  courseId: string,
  query: string,
  extra: { limit?: number; documentIds?: string[] } = {},
) {
  const res = await stack.gql<{ search: PassageView[] }>(
    SEARCH,
    { c: courseId, q: query, l: extra.limit, d: extra.documentIds },
    { token },
  );
  return res;
}

describe('search over course material (embedded store, lexical default)', () => {
  let stack: TestStack;
  let token: string;
  let courseId: string;
  let otherCourse: string;
  let pdfDocumentId: string;
  beforeAll(async () => {
    stack = await startTestStack();
    token = await stack.token(stack.user('teacher'), 'TEACHER');
    courseId = await createCourse(stack, token, 'Biology');
    otherCourse = await createCourse(stack, token, 'Other');
    const pdf = await makeTextPdf([
      [filler(1), 'Cells are the basic unit of life.'],
      [filler(2), 'Enzymes speed up chemical reactions in the body.'],
      [filler(3), 'Mitochondria oxidize glucose to release energy that the cell stores as ATP.'],
      [filler(4), 'Ribosomes assemble proteins from amino acids.'],
    ]);
    const up = await upload(stack, token, pdf, 'cells.pdf');
    const task = await waitForTask(stack, token, (await ingest(stack, token, { courseId, uploadId: up.body.uploadId, title: 'Cells' })).id);
    expect(task.status).toBe('COMPLETED');
    pdfDocumentId = task.document!.id;
    const other = await ingest(stack, token, {
      courseId: otherCourse,
      title: 'Secret',
      text: 'Mitochondria oxidize glucose in the other course too, privately.',
    });
    expect((await waitForTask(stack, token, other.id)).status).toBe('COMPLETED');
  });
  afterAll(async () => {
    await stack?.stop();
  });

  it('returns the page-3 passage first, with page 3 and highlighted terms', async () => {
    const res = await search(stack, token, courseId, 'mitochondria oxidize glucose');
    expect(res.body.errors).toBeUndefined();
    const [first] = res.body.data!.search;
    expect(first).toBeDefined();
    expect(first!.text).toMatch(/Mitochondria oxidize glucose/);
    expect(first!.pageStart).toBe(3);
    expect(first!.document.title).toBe('Cells');
    expect(new Set(first!.matchedTerms)).toEqual(new Set(['mitochondria', 'oxidize', 'glucose']));
    expect(first!.highlight).toMatch(/<mark>Mitochondria<\/mark> <mark>oxidize<\/mark> <mark>glucose<\/mark>/);
    // Never another course’s passages.
    expect([...new Set(res.body.data!.search.map((p) => p.document.id))]).toEqual([pdfDocumentId]);
  });

  it('finds a passage from another inflection, ignoring stop words', async () => {
    const res = await search(stack, token, courseId, 'the oxidizing of the mitochondrion');
    const [first] = res.body.data!.search;
    expect(first?.pageStart).toBe(3);
    expect(first?.matchedTerms).toContain('oxidize');
    const onlyStopWords = await search(stack, token, courseId, 'the of and');
    expect(onlyStopWords.body.data?.search).toEqual([]);
  });

  it('refuses empty and absurd input with BAD_USER_INPUT, and outsiders with FORBIDDEN', async () => {
    const cases: [string, { limit?: number; documentIds?: string[] }][] = [
      ['   ', {}],
      ['x'.repeat(10_000), {}],
      ['cells', { limit: 0 }],
      ['cells', { limit: 10_000 }],
      ['cells', { documentIds: ['not-a-uuid'] }],
    ];
    for (const [query, extra] of cases) {
      const res = await search(stack, token, courseId, query, extra);
      const input = { query: query.slice(0, 20), extra };
      expect({ input, code: res.body.errors?.[0]?.extensions?.['code'] }).toEqual({ input, code: 'BAD_USER_INPUT' });
    }
    const stranger = await stack.token(stack.user('stranger'), 'STUDENT');
    expect((await search(stack, stranger, courseId, 'cells')).body.errors?.[0]?.extensions?.['code']).toBe('FORBIDDEN');
    // A course that does not exist is NOT_FOUND, for a stranger too (the course and the membership are read together).
    const unknown = '00000000-0000-4000-8000-000000000000';
    expect((await search(stack, stranger, unknown, 'cells')).body.errors?.[0]?.extensions?.['code']).toBe('NOT_FOUND');
  });

  it('caches results per course version, and a deleted document never comes back', async () => {
    const metrics = async () =>
      (await (await fetch(stack.services['rag']!.url.replace('/graphql', '/metrics'))).text()).match(
        /search_cache_total\{[^}]*result="hit"[^}]*\} (\d+)/,
      )?.[1];
    const hitsBefore = Number((await metrics()) ?? 0);
    await search(stack, token, courseId, 'ribosomes proteins');
    const again = await search(stack, token, courseId, 'ribosomes proteins');
    expect(again.body.data?.search[0]?.pageStart).toBe(4);
    // The second identical search is a cache hit.
    expect(Number(await metrics())).toBe(hitsBefore + 1);

    const extra = await waitForTask(
      stack,
      token,
      (
        await ingest(stack, token, {
          courseId,
          title: 'Ribosome notes',
          text: 'Ribosomes ribosomes proteins proteins: the ribosome reads messenger RNA.',
        })
      ).id,
    );
    expect(extra.status).toBe('COMPLETED');
    // A new document invalidates the cache.
    const withNew = await search(stack, token, courseId, 'ribosomes proteins');
    expect(withNew.body.data!.search.map((p) => p.document.id)).toContain(extra.document!.id);
    await stack.gql('mutation($id: ID!) { deleteDocument(id: $id) }', { id: extra.document!.id }, { token });
    // The deleted document is gone.
    const afterDelete = await search(stack, token, courseId, 'ribosomes proteins');
    expect(afterDelete.body.data!.search.map((p) => p.document.id)).not.toContain(extra.document!.id);
  });

  it('does not duplicate a re-indexed document, and filters by document', async () => {
    const text = 'Osmosis moves water across a semipermeable membrane.';
    const a = await waitForTask(stack, token, (await ingest(stack, token, { courseId, title: 'Osmosis', text })).id);
    const before = (await search(stack, token, courseId, 'osmosis membrane cells', { limit: 100 })).body.data!.search;
    // Every document's index is written again: the same passages must come back, once each, scored alike.
    const reindex = await stack.gql<{ reindexCourse: { id: string } }>(
      'mutation($c: ID!) { reindexCourse(courseId: $c) { id } }',
      { c: courseId },
      { token },
    );
    expect((await waitForTask(stack, token, reindex.body.data!.reindexCourse.id)).status).toBe('COMPLETED');
    const after = (await search(stack, token, courseId, 'osmosis membrane cells', { limit: 100 })).body.data!.search;
    expect(after.map((p) => [p.chunkId, p.score.toFixed(9)])).toEqual(before.map((p) => [p.chunkId, p.score.toFixed(9)]));
    const res = await search(stack, token, courseId, 'osmosis membrane', { documentIds: [a.document!.id] });
    expect(res.body.data!.search.length).toBeGreaterThan(0);
    expect([...new Set(res.body.data!.search.map((p) => p.document.id))]).toEqual([a.document!.id]);
    const none = await search(stack, token, courseId, 'osmosis membrane', { documentIds: [pdfDocumentId] });
    expect(none.body.data?.search).toEqual([]);
  });
});

describe('hybrid search with an OpenAI-compatible embeddings endpoint', () => {
  let stack: TestStack;
  let fake: Awaited<ReturnType<typeof startFakeOpenAI>>;
  let token: string;
  let courseId: string;
  beforeAll(async () => {
    fake = await startFakeOpenAI({ dimensions: 64 });
    const dense = { EMBEDDINGS_URL: fake.url, EMBEDDINGS_MODEL: 'fake-embed', EMBEDDINGS_DIMENSIONS: '64' };
    stack = await startTestStack({ subgraphs: dense, worker: dense });
    token = await stack.token(stack.user('teacher'), 'TEACHER');
    courseId = await createCourse(stack, token, 'Mechanics');
    for (const [title, text] of [
      ['Cars', 'A car needs regular oil changes and tyre checks.'],
      ['Engines', 'The engine engine engine: pistons, valves and the crankshaft of an engine.'],
      ['Trains', 'Trains run on rails and carry freight across the country.'],
    ]) {
      const done = await waitForTask(stack, token, (await ingest(stack, token, { courseId, title, text })).id);
      expect({ title, status: done.status }).toEqual({ title, status: 'COMPLETED' });
    }
  });
  let closed = false;
  afterAll(async () => {
    await stack?.stop();
    if (!closed) await fake?.close();
  });

  it('finds by meaning what words alone miss, and fuses both rankings', async () => {
    const dense = await search(stack, token, courseId, 'automobile');
    // Only the dense side knows automobile = car.
    const titles = dense.body.data!.search.map((p) => p.document.title);
    expect(titles[0]).toBe('Cars');
    // The endpoint was called.
    expect(fake.requests.map((r) => r.path)).toContainEqual(expect.stringMatching(/\/embeddings$/));

    const fused = await search(stack, token, courseId, 'automobile engine');
    const order = fused.body.data!.search.map((p) => p.document.title);
    expect(order.slice(0, 2).sort()).toEqual(['Cars', 'Engines']);
    expect(order.indexOf('Trains') === -1 || order.indexOf('Trains') > 1).toBe(true);
  });

  it('re-indexes a course as a task, overwriting its vectors rather than adding to them', async () => {
    const before = (await search(stack, token, courseId, 'automobile engine trains', { limit: 100 })).body.data!.search;
    const embeddingsBefore = fake.requests.filter((r) => r.path.endsWith('/embeddings')).length;
    const started = await stack.gql<{ reindexCourse: { id: string; status: string } }>(
      'mutation($c: ID!) { reindexCourse(courseId: $c) { id status } }',
      { c: courseId },
      { token },
    );
    expect(started.body.errors).toBeUndefined();
    const done = await waitForTask(stack, token, started.body.data!.reindexCourse.id);
    expect(done.status).toBe('COMPLETED');
    // Vectors were recomputed.
    expect(fake.requests.filter((r) => r.path.endsWith('/embeddings')).length).toBeGreaterThan(embeddingsBefore);
    // The same passages, none twice.
    const after = (await search(stack, token, courseId, 'automobile engine trains', { limit: 100 })).body.data!.search;
    expect(after.map((p) => p.chunkId).sort()).toEqual(before.map((p) => p.chunkId).sort());
    const student = await stack.token(stack.user('student'), 'STUDENT');
    const refused = await stack.gql('mutation($c: ID!) { reindexCourse(courseId: $c) { id } }', { c: courseId }, { token: student });
    expect(refused.body.errors?.[0]?.extensions?.['code']).toBe('FORBIDDEN');
  });

  it('keeps answering with BM25 alone when the embeddings endpoint is down', async () => {
    await fake.close();
    closed = true;
    const t0 = Date.now();
    const res = await search(stack, token, courseId, 'engine pistons');
    expect(res.body.errors).toBeUndefined();
    expect(res.body.data!.search[0]?.document.title).toBe('Engines');
    // No long wait for the dead endpoint.
    expect(Date.now() - t0).toBeLessThan(10_000);
  });
});
