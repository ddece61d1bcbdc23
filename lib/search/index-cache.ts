import type { PrismaClient } from '../db/client.js';
import { buildSegment, CourseIndex, type ChunkPostings, type Segment } from './bm25-index.js';

export interface IndexCacheLogger {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
}

export interface CourseIndexCacheOptions {
  /** Bytes all courses' indexes may take together; the least recently searched course goes first. */
  maxBytes: number;
  /** How long a search waits for its course's index to load or refresh before it is ranked in SQL instead. */
  waitMs: number;
  log?: IndexCacheLogger | undefined;
}

/** Postings (estimated from the chunks' lengths) loaded per query while building segments. */
const BATCH_TOKENS = 400_000;
/** After a load that failed or did not fit, the course is ranked in SQL for this long before another try. */
const RETRY_AFTER_MS = 60_000;
/** Courses remembered (with or without an index). */
const MAX_ENTRIES = 10_000;
/** Loads at once (each holds a database connection for its snapshot); the others queue. */
const LOAD_CONCURRENCY = 2;

interface Entry {
  index: CourseIndex | null;
  /** Written through this process since it was loaded: compare the documents again, even at the same version. */
  stale: boolean;
  refreshing: Promise<CourseIndex | null> | null;
  /** When the refresh under way started: searches wait for it until `waitMs` after that, not each `waitMs`. */
  refreshStarted: number;
  retryAfter: number;
}

class TooBig extends Error {}

/**
 * In-memory BM25 indexes of the courses searched recently, one per course, kept in step with
 * PostgreSQL by `Course.searchVersion`, which every change to a course's chunks bumps (ingestion
 * and deletion in the transaction that makes the change; a re-index once it has rewritten every
 * document, the moment the result cache also moves on). An index loaded at version v answers
 * every search that read a version ≤ v, in every replica; a search that read a newer one
 * refreshes it first. A refresh reads, in one REPEATABLE READ snapshot, the version and each
 * document's signature: the transaction that wrote its postings (the `xmin` of any one of them: a
 * document's postings are always replaced whole, in one transaction, with its chunks), or for a
 * document without postings the one that wrote its chunks. Documents with the same signature keep
 * their segment; the others are read again, in the same snapshot. Writes through this process
 * (`invalidate`) force the comparison at the next search even at the same version.
 *
 * A search waits for a load or refresh until `waitMs` after it started, then ranks in SQL while
 * the load goes on (a course's first load at 100,000 chunks takes seconds). Indexes are dropped least recently
 * searched first to stay within `maxBytes`; a course larger than that is always ranked in SQL.
 */
export class CourseIndexCache {
  private readonly entries = new Map<string, Entry>();
  private bytes = 0;
  private loading = 0;
  private readonly queued: (() => void)[] = [];

  constructor(
    private readonly prisma: PrismaClient,
    private readonly opts: CourseIndexCacheOptions,
  ) {}

  get enabled(): boolean {
    return this.opts.maxBytes > 0;
  }

  /** Courses held and their bytes. */
  stats(): { courses: number; bytes: number } {
    let courses = 0;
    for (const e of this.entries.values()) if (e.index) courses++;
    return { courses, bytes: this.bytes };
  }

  /** The course's index if it is at `version` or newer, after waiting up to `waitMs` for a refresh; null: rank in SQL. */
  async get(courseId: string, version: number): Promise<CourseIndex | null> {
    if (!this.enabled) return null;
    const entry = this.touch(courseId);
    for (let attempt = 0; attempt < 2; attempt++) {
      if (entry.index && !entry.stale && entry.index.version >= version) return entry.index;
      if (Date.now() < entry.retryAfter) return null;
      const refreshing = this.refresh(courseId, entry);
      const ready = await waitFor(refreshing, Math.max(0, entry.refreshStarted + this.opts.waitMs - Date.now()));
      // Still loading (this search goes to SQL meanwhile), or failed, too large, or the course is gone.
      if (!ready) return null;
    }
    return entry.index && !entry.stale && entry.index.version >= version ? entry.index : null;
  }

  /** Loads or refreshes the course's index now and waits for it (benchmarks, tests, warming). */
  async warm(courseId: string): Promise<CourseIndex | null> {
    if (!this.enabled) return null;
    const entry = this.touch(courseId);
    if (entry.refreshing) await entry.refreshing; // it may have started before the caller's last write
    entry.stale = true;
    entry.retryAfter = 0;
    return this.refresh(courseId, entry);
  }

  /** This process changed the course's postings: its index is checked again at the next search. */
  invalidate(courseId: string): void {
    const entry = this.entries.get(courseId);
    if (entry) entry.stale = true;
  }

  private touch(courseId: string): Entry {
    let entry = this.entries.get(courseId);
    if (entry) this.entries.delete(courseId);
    else {
      entry = { index: null, stale: false, refreshing: null, refreshStarted: 0, retryAfter: 0 };
      // Courses without an index (too large, failed, dropped) are remembered only so many.
      if (this.entries.size >= MAX_ENTRIES) {
        for (const [id, e] of this.entries) {
          if (this.entries.size < MAX_ENTRIES) break;
          if (!e.index && !e.refreshing) this.entries.delete(id);
        }
      }
    }
    this.entries.set(courseId, entry); // most recently used last
    return entry;
  }

  private refresh(courseId: string, entry: Entry): Promise<CourseIndex | null> {
    if (entry.refreshing) return entry.refreshing;
    entry.stale = false; // a write from now on marks it again
    entry.refreshStarted = Date.now();
    const started = performance.now();
    const previous = entry.index;
    const run = this.limited(() => this.load(courseId, previous))
      .then(
        (loaded) => {
          if (this.entries.get(courseId) !== entry) return null; // dropped meanwhile
          this.replace(entry, loaded?.index ?? null);
          if (loaded) {
            this.evict(entry);
            this.opts.log?.info(
              {
                courseId,
                version: loaded.index.version,
                chunks: loaded.index.chunkCount,
                postings: loaded.index.postings,
                bytes: loaded.index.bytes,
                documentsLoaded: loaded.documentsLoaded,
                documentsKept: loaded.documentsKept,
                ms: Math.round(performance.now() - started),
              },
              'search index loaded',
            );
          }
          return entry.index;
        },
        (err: unknown) => {
          this.replace(entry, null);
          entry.retryAfter = Date.now() + RETRY_AFTER_MS;
          if (err instanceof TooBig) {
            this.opts.log?.warn({ courseId, maxBytes: this.opts.maxBytes }, 'course too large for the search index; ranking in SQL');
          } else {
            this.opts.log?.warn({ courseId, err: (err as Error).message }, 'search index load failed; ranking in SQL');
          }
          return null;
        },
      )
      .finally(() => {
        entry.refreshing = null;
      });
    entry.refreshing = run;
    return run;
  }

  private async limited<T>(fn: () => Promise<T>): Promise<T> {
    // A finished load hands its slot to the next one queued.
    if (this.loading >= LOAD_CONCURRENCY) await new Promise<void>((resolve) => this.queued.push(resolve));
    else this.loading++;
    try {
      return await fn();
    } finally {
      const next = this.queued.shift();
      if (next) next();
      else this.loading--;
    }
  }

  private replace(entry: Entry, index: CourseIndex | null) {
    this.bytes += (index?.bytes ?? 0) - (entry.index?.bytes ?? 0);
    entry.index = index;
  }

  /** Drops the least recently searched indexes until all fit (never `keep`, which fits alone). */
  private evict(keep: Entry) {
    for (const [courseId, e] of this.entries) {
      if (this.bytes <= this.opts.maxBytes) return;
      if (e === keep || !e.index) continue;
      this.replace(e, null);
      this.entries.delete(courseId);
    }
  }

  private load(courseId: string, previous: CourseIndex | null) {
    const budget = this.opts.maxBytes;
    return this.prisma.$transaction(
      async (tx) => {
        // Loading reads whole documents: no JIT compilation, no sorting the postings (hash aggregation).
        const [course] = await tx.$queryRaw<{ version: number }[]>`
          SELECT "searchVersion" AS version, set_config('jit', 'off', true), set_config('enable_sort', 'off', true),
            set_config('work_mem', '32MB', true)
          FROM "Course" WHERE id = ${courseId}::uuid`;
        if (!course) return null;
        // A document's signature: the transaction that wrote its postings (all of them, with its chunks), or,
        // when it has none, the one that wrote its chunks ('c…'); null: no chunks, nothing to count or find.
        const documents = await tx.$queryRaw<{ id: string; signature: string | null }[]>`
          SELECT d.id::text AS id, coalesce(
            (SELECT t.xmin::text FROM "ChunkTerm" t WHERE t."documentId" = d.id LIMIT 1),
            (SELECT 'c' || c.xmin::text FROM "Chunk" c WHERE c."documentId" = d.id ORDER BY c.position LIMIT 1)) AS signature
          FROM "Document" d WHERE d."courseId" = ${courseId}::uuid`;
        const segments = new Map<string, Segment>();
        const changed = new Map<string, string>();
        let bytes = 0;
        for (const { id, signature } of documents) {
          if (signature === null) continue;
          const kept = previous?.segments.get(id);
          if (kept?.signature === signature) {
            segments.set(id, kept);
            bytes += kept.bytes;
          } else changed.set(id, signature);
        }
        const documentsKept = segments.size;
        if (bytes > budget) throw new TooBig();
        if (changed.size) {
          const stats = await tx.$queryRaw<{ documentId: string; chunks: number; tokens: number }[]>`
            SELECT "documentId"::text AS "documentId", count(*)::int AS chunks, coalesce(sum("tokenCount"), 0)::float8 AS tokens
            FROM "Chunk" WHERE "courseId" = ${courseId}::uuid AND "documentId" = ANY(${[...changed.keys()]}::uuid[])
            GROUP BY "documentId"`;
          for (const batch of batches(stats, BATCH_TOKENS)) {
            // Each chunk's (term, tf) pairs as base64 text: the driver turns bytea into an array of numbers.
            const rows = await tx.$queryRaw<{ documentId: string; id: string; dl: number; pairs: string }[]>`
              SELECT "documentId"::text AS "documentId", "chunkId" AS id, min(dl)::int AS dl,
                encode(string_agg(int4send("termId") || int2send(tf), ''::bytea), 'base64') AS pairs
              FROM "ChunkTerm"
              WHERE "courseId" = ${courseId}::uuid AND "documentId" = ANY(${batch.map((s) => s.documentId)}::uuid[])
              GROUP BY "documentId", "chunkId"`;
            const byDocument = new Map<string, ChunkPostings[]>();
            for (const r of rows) {
              const chunk = { id: r.id, dl: r.dl, pairs: Buffer.from(r.pairs, 'base64') };
              const list = byDocument.get(r.documentId);
              if (list) list.push(chunk);
              else byDocument.set(r.documentId, [chunk]);
            }
            for (const s of batch) {
              // Chunks in id order, so that a segment does not depend on the order rows arrive in.
              const chunks = (byDocument.get(s.documentId) ?? []).sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
              const segment = buildSegment(s.documentId, changed.get(s.documentId)!, { chunkCount: s.chunks, tokenSum: s.tokens }, chunks);
              segments.set(s.documentId, segment);
              bytes += segment.bytes;
            }
            if (bytes > budget) throw new TooBig();
          }
        }
        return {
          index: new CourseIndex(courseId, course.version, segments),
          documentsLoaded: segments.size - documentsKept,
          documentsKept,
        };
      },
      { isolationLevel: 'RepeatableRead', maxWait: 10_000, timeout: 600_000 },
    );
  }
}

/** Documents grouped so that each group's chunks hold about `tokens` terms. */
function* batches<T extends { tokens: number }>(stats: T[], tokens: number): Generator<T[]> {
  let batch: T[] = [];
  let sum = 0;
  for (const s of stats) {
    if (batch.length && sum + s.tokens > tokens) {
      yield batch;
      batch = [];
      sum = 0;
    }
    batch.push(s);
    sum += s.tokens;
  }
  if (batch.length) yield batch;
}

/** The promise's value, or undefined if it takes longer than `ms`. */
async function waitFor<T>(promise: Promise<T>, ms: number): Promise<T | undefined> {
  if (!Number.isFinite(ms)) return promise;
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([promise, new Promise<undefined>((resolve) => (timer = setTimeout(() => resolve(undefined), ms)))]);
  } finally {
    clearTimeout(timer);
  }
}
