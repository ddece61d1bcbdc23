import { createHash, randomUUID } from 'node:crypto';
import type { Redis } from 'ioredis';
import { Counter, Histogram, type Registry } from 'prom-client';
import { assertUuid, isUuid, requireCourseMember, requireCourseTeacher } from '@lib/access.js';
import { Prisma, sqlOf, type Chunk } from '@lib/db/client.js';
import { badInput } from '@lib/errors.js';
import { tokenize } from '@lib/search/lexical.js';
import { documentIdOfChunk } from '@lib/search/types.js';
import type { Retrieval } from '@lib/search/retrieval.js';
import { startTask } from '@lib/tasks/store.js';
import { taskView } from '@lib/tasks/view.js';
import type { DocumentContext } from './documents.js';
import { courseIfAllowed } from './courses.js';

export const MAX_QUERY_CHARS = 1000;
export const MAX_LIMIT = 100;
const MAX_DOCUMENT_IDS = 100;
const CACHE_TTL_S = 600;
const SNIPPET_CHARS = 300;

export interface SearchDeps {
  retrieval: Retrieval;
  /** A Redis that may evict: results are cached per course version. */
  cache: Redis;
  metrics: { cache: Counter<'result'>; seconds: Histogram<'store'> };
}

export function createSearchMetrics(registry: Registry): SearchDeps['metrics'] {
  return {
    cache: new Counter({
      name: 'search_cache_total',
      help: 'Search result cache lookups',
      labelNames: ['result'] as const,
      registers: [registry],
    }),
    seconds: new Histogram({
      name: 'search_duration_seconds',
      help: 'Time to rank passages (cache misses)',
      labelNames: ['store'] as const,
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
      registers: [registry],
    }),
  };
}

export interface SearchContext extends DocumentContext {
  search: SearchDeps;
}

export interface Passage {
  chunkId: string;
  documentId: string;
  text: string;
  score: number;
  pageStart: number;
  pageEnd: number;
  position: number;
  heading: string | null;
  matchedTerms: string[];
  highlight: string;
}

const escapeHtml = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
const WORD = /[\p{L}\p{N}]+(?:['’][\p{L}]+)?/gu;

/** The passage's words whose normalised term is one of the query's, and a snippet around the first. */
export function highlight(text: string, queryTerms: Set<string>): { matchedTerms: string[]; highlight: string } {
  const matches: { start: number; end: number; word: string }[] = [];
  for (const m of text.matchAll(WORD)) {
    const [term] = tokenize(m[0]);
    if (term && queryTerms.has(term)) matches.push({ start: m.index, end: m.index + m[0].length, word: m[0] });
  }
  const matchedTerms = [...new Set(matches.map((m) => m.word.toLowerCase()))];
  const first = matches[0];
  let from = first ? Math.max(0, first.start - SNIPPET_CHARS / 3) : 0;
  let to = Math.min(text.length, from + SNIPPET_CHARS);
  // Whole words at the edges.
  if (from > 0) from = text.indexOf(' ', from) + 1 || from;
  if (to < text.length) to = Math.max(text.lastIndexOf(' ', to), from + 1);
  let out = from > 0 ? '…' : '';
  let cursor = from;
  for (const m of matches) {
    if (m.start < from || m.end > to) continue;
    out += `${escapeHtml(text.slice(cursor, m.start))}<mark>${escapeHtml(text.slice(m.start, m.end))}</mark>`;
    cursor = m.end;
  }
  out += escapeHtml(text.slice(cursor, to)) + (to < text.length ? '…' : '');
  return { matchedTerms, highlight: out };
}

/**
 * Members search their course's material. Bad input is refused before any
 * work; results are cached in Redis per course and version (every change to
 * the course's chunks bumps the version, so stale results are never served).
 */
export async function searchPassages(
  ctx: SearchContext,
  args: { courseId: string; query: string; limit?: number | null; documentIds?: string[] | null },
  /** The query asks for Passage.document: the documents are read alongside the passages. */
  withDocuments = false,
): Promise<Passage[]> {
  const courseId = assertUuid(args.courseId, 'courseId');
  const query = args.query.trim();
  if (query.length === 0) throw badInput('The query is empty', 'query');
  if (query.length > MAX_QUERY_CHARS)
    throw badInput(`The query is longer than ${MAX_QUERY_CHARS.toLocaleString('en')} characters`, 'query');
  const limit = args.limit ?? 10;
  if (!Number.isInteger(limit) || limit < 1 || limit > MAX_LIMIT) throw badInput(`limit must be 1 to ${MAX_LIMIT}`, 'limit');
  const documentIds = args.documentIds ? [...new Set(args.documentIds.map((id) => assertUuid(id, 'documentIds')))].sort() : undefined;
  if (documentIds && (documentIds.length === 0 || documentIds.length > MAX_DOCUMENT_IDS)) {
    throw badInput(`documentIds must list 1 to ${MAX_DOCUMENT_IDS} documents`, 'documentIds');
  }
  const course = await courseIfAllowed<{ searchVersion: number }>(ctx, courseId, Prisma.sql`"searchVersion"`, requireCourseMember);

  const { retrieval, cache, metrics } = ctx.search;
  const digest = createHash('sha256')
    .update(JSON.stringify([query, limit, documentIds ?? null, retrieval.dense?.model ?? null]))
    .digest('base64url');
  const key = `search:v1:${courseId}:${course.searchVersion}:${digest}`;
  const cached = await cache.get(key).catch(() => null);
  if (cached) {
    metrics.cache.inc({ result: 'hit' });
    return JSON.parse(cached) as Passage[];
  }
  metrics.cache.inc({ result: 'miss' });

  const end = metrics.seconds.startTimer({ store: retrieval.store.kind });
  const ranked = await retrieval.search({ courseId, query, limit, documentIds, searchVersion: course.searchVersion });
  end();
  // The passages' documents (Passage.document) load meanwhile, not after: their ids are in the chunks'.
  // (Only well-formed ids: a malformed one would fail the whole batch, and the resolvers' loads with it.)
  if (withDocuments) void ctx.documents.loadMany([...new Set(ranked.map((r) => documentIdOfChunk(r.id)))].filter(isUuid));
  const rows = await sqlOf(ctx.prisma)<Chunk>(
    Prisma.sql`SELECT * FROM "Chunk" WHERE id = ANY(${ranked.map((r) => r.id)}::text[]) AND "courseId" = ${courseId}::uuid`,
  );
  const byId = new Map<string, Chunk>(rows.map((c) => [c.id, c]));
  const queryTerms = new Set(tokenize(query));
  const passages = ranked.flatMap((r) => {
    const chunk = byId.get(r.id);
    if (!chunk) return []; // a point whose chunk is gone (a document deleted meanwhile)
    return [
      {
        chunkId: chunk.id,
        documentId: chunk.documentId,
        text: chunk.text,
        score: r.score,
        pageStart: chunk.pageStart,
        pageEnd: chunk.pageEnd,
        position: chunk.position,
        heading: chunk.heading,
        ...highlight(chunk.text, queryTerms),
      },
    ];
  });
  // Not waited for: the answer does not depend on it.
  void cache
    .set(key, JSON.stringify(passages), 'EX', CACHE_TTL_S)
    .catch((err: unknown) => ctx.log.warn({ err }, 'search cache write failed'));
  return passages;
}

/**
 * Starts a REINDEX_COURSE task (teachers and admins). One re-index per course at a time: while
 * one is ACCEPTED or RUNNING, that task is returned instead of a new one.
 */
export async function reindexCourse(ctx: SearchContext, rawCourseId: string) {
  const courseId = assertUuid(rawCourseId, 'courseId');
  await courseIfAllowed(ctx, courseId, Prisma.sql`id`, requireCourseTeacher);
  const taskId = randomUUID();
  const { task, created } = await startTask(
    { prisma: ctx.prisma, queues: ctx.docs.queues, tasks: ctx.docs.tasks, log: ctx.log },
    {
      kind: 'REINDEX_COURSE',
      ownerId: ctx.identity.userId,
      courseId,
      payload: { taskId, courseId },
      before: async (tx) => {
        // Two requests at once: the second waits here, then finds the first one's task.
        await tx.$executeRaw`SELECT pg_advisory_xact_lock(hashtextextended(${`reindex:${courseId}`}, 0))`;
        return tx.task.findFirst({
          where: { courseId, kind: 'REINDEX_COURSE', status: { in: ['ACCEPTED', 'RUNNING'] } },
          orderBy: { createdAt: 'desc' },
        });
      },
    },
  );
  if (!created) ctx.log.info({ taskId: task.id, courseId }, 're-index already under way; returning its task');
  return taskView(task);
}
