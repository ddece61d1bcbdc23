import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
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
  before(async () => {
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
    assert.equal(task.status, 'COMPLETED');
    pdfDocumentId = task.document!.id;
    const other = await ingest(stack, token, {
      courseId: otherCourse,
      title: 'Secret',
      text: 'Mitochondria oxidize glucose in the other course too, privately.',
    });
    await waitForTask(stack, token, other.id);
  });
  after(() => stack?.stop());

  it('returns the page-3 passage first, with page 3 and highlighted terms', async () => {
    const res = await search(stack, token, courseId, 'mitochondria oxidize glucose');
    assert.equal(res.body.errors, undefined, JSON.stringify(res.body.errors));
    const [first] = res.body.data!.search;
    assert.ok(first);
    assert.match(first.text, /Mitochondria oxidize glucose/);
    assert.equal(first.pageStart, 3);
    assert.equal(first.document.title, 'Cells');
    assert.deepEqual(new Set(first.matchedTerms), new Set(['mitochondria', 'oxidize', 'glucose']));
    assert.match(first.highlight, /<mark>Mitochondria<\/mark> <mark>oxidize<\/mark> <mark>glucose<\/mark>/);
    assert.ok(
      res.body.data!.search.every((p) => p.document.id === pdfDocumentId),
      'never another course’s passages',
    );
  });

  it('finds a passage from another inflection, ignoring stop words', async () => {
    const res = await search(stack, token, courseId, 'the oxidizing of the mitochondrion');
    const [first] = res.body.data!.search;
    assert.equal(first?.pageStart, 3);
    assert.ok(first?.matchedTerms.includes('oxidize'));
    const onlyStopWords = await search(stack, token, courseId, 'the of and');
    assert.deepEqual(onlyStopWords.body.data?.search, []);
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
      assert.equal(res.body.errors?.[0]?.extensions?.['code'], 'BAD_USER_INPUT', JSON.stringify({ query: query.slice(0, 20), extra }));
    }
    const stranger = await stack.token(stack.user('stranger'), 'STUDENT');
    assert.equal((await search(stack, stranger, courseId, 'cells')).body.errors?.[0]?.extensions?.['code'], 'FORBIDDEN');
  });

  it('caches results per course version, and a deleted document never comes back', async () => {
    const metrics = async () =>
      (await (await fetch(stack.services['rag']!.url.replace('/graphql', '/metrics'))).text()).match(
        /search_cache_total\{[^}]*result="hit"[^}]*\} (\d+)/,
      )?.[1];
    const hitsBefore = Number((await metrics()) ?? 0);
    await search(stack, token, courseId, 'ribosomes proteins');
    const again = await search(stack, token, courseId, 'ribosomes proteins');
    assert.equal(again.body.data?.search[0]?.pageStart, 4);
    assert.equal(Number(await metrics()), hitsBefore + 1, 'the second identical search is a cache hit');

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
    const withNew = await search(stack, token, courseId, 'ribosomes proteins');
    assert.ok(
      withNew.body.data!.search.some((p) => p.document.id === extra.document!.id),
      'a new document invalidates the cache',
    );
    await stack.gql('mutation($id: ID!) { deleteDocument(id: $id) }', { id: extra.document!.id }, { token });
    const afterDelete = await search(stack, token, courseId, 'ribosomes proteins');
    assert.ok(
      afterDelete.body.data!.search.every((p) => p.document.id !== extra.document!.id),
      'the deleted document is gone',
    );
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
    assert.equal((await waitForTask(stack, token, reindex.body.data!.reindexCourse.id)).status, 'COMPLETED');
    const after = (await search(stack, token, courseId, 'osmosis membrane cells', { limit: 100 })).body.data!.search;
    assert.deepEqual(
      after.map((p) => [p.chunkId, p.score.toFixed(9)]),
      before.map((p) => [p.chunkId, p.score.toFixed(9)]),
    );
    const res = await search(stack, token, courseId, 'osmosis membrane', { documentIds: [a.document!.id] });
    assert.ok(res.body.data!.search.length > 0);
    assert.ok(res.body.data!.search.every((p) => p.document.id === a.document!.id));
    const none = await search(stack, token, courseId, 'osmosis membrane', { documentIds: [pdfDocumentId] });
    assert.deepEqual(none.body.data?.search, []);
  });
});

describe('hybrid search with an OpenAI-compatible embeddings endpoint', () => {
  let stack: TestStack;
  let fake: Awaited<ReturnType<typeof startFakeOpenAI>>;
  let token: string;
  let courseId: string;
  before(async () => {
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
      await waitForTask(stack, token, (await ingest(stack, token, { courseId, title, text })).id);
    }
  });
  let closed = false;
  after(async () => {
    await stack?.stop();
    if (!closed) await fake?.close();
  });

  it('finds by meaning what words alone miss, and fuses both rankings', async () => {
    const dense = await search(stack, token, courseId, 'automobile');
    const titles = dense.body.data!.search.map((p) => p.document.title);
    assert.equal(titles[0], 'Cars', 'only the dense side knows automobile = car');
    assert.ok(
      fake.requests.some((r) => r.path.endsWith('/embeddings')),
      'the endpoint was called',
    );

    const fused = await search(stack, token, courseId, 'automobile engine');
    const order = fused.body.data!.search.map((p) => p.document.title);
    assert.deepEqual(order.slice(0, 2).sort(), ['Cars', 'Engines'], `${order}`);
    assert.equal(order.indexOf('Trains') === -1 || order.indexOf('Trains') > 1, true);
  });

  it('re-indexes a course as a task, overwriting its vectors rather than adding to them', async () => {
    const before = (await search(stack, token, courseId, 'automobile engine trains', { limit: 100 })).body.data!.search;
    const embeddingsBefore = fake.requests.filter((r) => r.path.endsWith('/embeddings')).length;
    const started = await stack.gql<{ reindexCourse: { id: string; status: string } }>(
      'mutation($c: ID!) { reindexCourse(courseId: $c) { id status } }',
      { c: courseId },
      { token },
    );
    assert.equal(started.body.errors, undefined, JSON.stringify(started.body.errors));
    const done = await waitForTask(stack, token, started.body.data!.reindexCourse.id);
    assert.equal(done.status, 'COMPLETED');
    assert.ok(fake.requests.filter((r) => r.path.endsWith('/embeddings')).length > embeddingsBefore, 'vectors were recomputed');
    const after = (await search(stack, token, courseId, 'automobile engine trains', { limit: 100 })).body.data!.search;
    assert.deepEqual(after.map((p) => p.chunkId).sort(), before.map((p) => p.chunkId).sort(), 'the same passages, none twice');
    const student = await stack.token(stack.user('student'), 'STUDENT');
    const refused = await stack.gql('mutation($c: ID!) { reindexCourse(courseId: $c) { id } }', { c: courseId }, { token: student });
    assert.equal(refused.body.errors?.[0]?.extensions?.['code'], 'FORBIDDEN');
  });

  it('keeps answering with BM25 alone when the embeddings endpoint is down', async () => {
    await fake.close();
    closed = true;
    const t0 = Date.now();
    const res = await search(stack, token, courseId, 'engine pistons');
    assert.equal(res.body.errors, undefined, JSON.stringify(res.body.errors));
    assert.equal(res.body.data!.search[0]?.document.title, 'Engines');
    assert.ok(Date.now() - t0 < 10_000, 'no long wait for the dead endpoint');
  });
});
