/**
 * The Qdrant vector store: one collection per vector space (see `collectionFor`), every
 * course in it (payload partitioning, `course_id` is the tenant key), spoken to over
 * Qdrant's REST API with `fetch`. Request bodies follow Qdrant 1.19's OpenAPI document
 * (checked by qdrant.corpus.test.ts).
 *
 * Every request this store sends is idempotent: point ids are derived from chunk ids,
 * deletes are by filter, index creation is repeatable, and a collection creation that
 * meets an existing collection (409) is treated as done. So requests that failed with
 * 429/502/503/504, a network error or a timeout are retried with backoff.
 */
import { createHash } from 'node:crypto';
import { RRF_K, type ChunkPoint, type ScoredChunk, type SearchQuery, type SparseVector, type VectorStore } from './types.js';

/** Names of the two vectors of a point. */
export const SPARSE_VECTOR = 'bm25';
export const DENSE_VECTOR = 'dense';
/** Points per upsert request. */
export const UPSERT_BATCH = 256;
/** How many candidates each prefetch of a hybrid search keeps before fusion, at least. */
const MIN_PREFETCH = 50;
const PREFETCH_FACTOR = 5;
const MAX_PREFETCH = 1000;

export type VectorStoreErrorCode = 'VECTOR_STORE_UNAVAILABLE' | 'VECTOR_STORE_REJECTED';

/**
 * `VECTOR_STORE_UNAVAILABLE`: Qdrant could not be reached, timed out, or failed on its
 * side (5xx); trying again later may work. `VECTOR_STORE_REJECTED`: Qdrant refused the
 * request (4xx: bad request, missing collection, wrong API key) or the collection does
 * not fit this store; trying again will not help.
 */
export class VectorStoreError extends Error {
  override name = 'VectorStoreError';
  constructor(
    readonly code: VectorStoreErrorCode,
    message: string,
    /** The HTTP status Qdrant answered with, if it answered. */
    readonly status?: number,
    options?: ErrorOptions,
  ) {
    super(message, options);
  }
}

/** The subset of a pino logger used here (any pino Logger fits). */
export interface QdrantLogger {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
}

export interface QdrantStoreOptions {
  /** Qdrant's REST endpoint, e.g. http://localhost:6333. */
  url: string;
  /** Sent as the `api-key` header. */
  apiKey?: string;
  /** Used as is: build it with `collectionFor(base, dense)`. */
  collection: string;
  shardNumber: number;
  replicationFactor: number;
  writeConsistencyFactor: number;
  /** Per attempt, body included. Default 10 s. */
  timeoutMs?: number;
  fetch?: typeof fetch;
  log?: QdrantLogger;
  /** Attempts per request (default 4) and the first backoff (default 200 ms, doubled each time, with jitter). */
  retry?: { attempts?: number; baseDelayMs?: number };
}

export interface DenseSpace {
  model: string;
  dimensions: number;
}

/**
 * The collection for a vector space. Without a dense embedder it is `base`; with one it
 * is `<base>__<model slug>__<dimensions>`, so a model change (or a dimension change of
 * the same model) indexes into a new collection instead of mixing vector spaces. When
 * the slug loses characters of the model name, 8 hex digits of its SHA-256 are added
 * so that distinct names never share a collection.
 */
export function collectionFor(base: string, dense: DenseSpace | null): string {
  if (dense === null) return base;
  const slug = dense.model
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, '-')
    .replace(/^-+|-+$/g, '')
    .slice(0, 100);
  const suffix = slug === dense.model ? slug : `${slug || 'model'}-${createHash('sha256').update(dense.model).digest('hex').slice(0, 8)}`;
  return `${base}__${suffix}__${dense.dimensions}`;
}

/** RFC 4122 version 5 (SHA-1, name-based) UUID of `name` in `namespace`. */
export function uuidV5(name: string, namespace: string): string {
  const ns = Buffer.from(namespace.replace(/-/g, ''), 'hex');
  if (ns.length !== 16) throw new TypeError(`not a UUID: ${namespace}`);
  const h = createHash('sha1').update(ns).update(name, 'utf8').digest();
  h[6] = (h[6]! & 0x0f) | 0x50;
  h[8] = (h[8]! & 0x3f) | 0x80;
  const hex = h.subarray(0, 16).toString('hex');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

/** This project's namespace for point ids (a constant: changing it orphans every stored point). */
const POINT_NAMESPACE = 'ad558b0c-049b-4682-b4cd-5e04e8f1c238';

/**
 * Qdrant point ids are unsigned integers or UUIDs: the point of the chunk at `position` in
 * `documentId` is the UUID v5 of "<documentId>:<position>" (the chunk id's format), so a
 * re-run writes the same points whatever ids the chunks got.
 */
export function pointIdFor(documentId: string, position: number): string {
  return uuidV5(`${documentId}:${position}`, POINT_NAMESPACE);
}

// The parts of Qdrant's request and response bodies used here (names as in its OpenAPI document).
type Condition = { key: string; match: { value: string } | { any: string[] } };
interface Filter {
  must: Condition[];
}
interface PointStruct {
  id: string;
  vector: Record<string, number[] | SparseVector>;
  payload: { course_id: string; document_id: string; position: number; chunk_id: string };
}
interface UpdateResult {
  operation_id?: number | null;
  status: 'acknowledged' | 'completed' | 'wait_timeout';
}
interface ScoredPoint {
  id: string | number;
  version: number;
  score: number;
  payload?: Record<string, unknown> | null;
}
interface VectorParams {
  size: number;
  distance: string;
}
interface CollectionInfo {
  config: {
    params: {
      vectors?: VectorParams | Record<string, VectorParams>;
      sparse_vectors?: Record<string, { modifier?: string | null }> | null;
    };
  };
  payload_schema: Record<string, { data_type: string; params?: { is_tenant?: boolean | null } | null }>;
}

interface Call {
  /** Named in errors and logs. */
  operation: string;
  method: 'GET' | 'PUT' | 'POST';
  path: string;
  query?: Record<string, string>;
  body?: unknown;
}

const RETRY_STATUS = new Set([429, 502, 503, 504]);

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** `{ status: { error } }`, Qdrant's error body; else the start of whatever came back. */
function errorDetail(text: string, statusText: string): string {
  try {
    const body = JSON.parse(text) as { status?: { error?: unknown } };
    if (typeof body?.status?.error === 'string') return body.status.error;
  } catch {
    // not JSON (a proxy's page, an empty body, a plain-text 401)
  }
  const trimmed = text.trim().slice(0, 200);
  return trimmed || statusText || 'no details';
}

export function createQdrantStore(opts: QdrantStoreOptions): VectorStore {
  const base = opts.url.replace(/\/+$/, '');
  /** For messages: without any credentials the URL may carry. */
  const where = URL.canParse(base) ? new URL(base).origin : 'the configured URL';
  const collection = opts.collection;
  const collectionPath = `/collections/${encodeURIComponent(collection)}`;
  const doFetch = opts.fetch ?? fetch;
  const timeoutMs = opts.timeoutMs ?? 10_000;
  const attempts = Math.max(1, opts.retry?.attempts ?? 4);
  const baseDelayMs = opts.retry?.baseDelayMs ?? 200;
  const log = opts.log;

  async function attempt<T>(c: Call): Promise<{ ok: true; result: T } | { ok: false; error: VectorStoreError; retry: boolean }> {
    const url = `${base}${c.path}${c.query ? `?${new URLSearchParams(c.query)}` : ''}`;
    const headers: Record<string, string> = { accept: 'application/json' };
    if (c.body !== undefined) headers['content-type'] = 'application/json';
    if (opts.apiKey) headers['api-key'] = opts.apiKey;
    let status: number;
    let text: string;
    let statusText: string;
    try {
      const res = await doFetch(url, {
        method: c.method,
        headers,
        body: c.body === undefined ? undefined : JSON.stringify(c.body),
        signal: AbortSignal.timeout(timeoutMs),
      });
      status = res.status;
      statusText = res.statusText;
      text = await res.text();
    } catch (err) {
      const timedOut = err instanceof Error && (err.name === 'TimeoutError' || err.name === 'AbortError');
      const cause = err instanceof Error ? (err.cause as { code?: string; message?: string } | undefined) : undefined;
      const why = timedOut
        ? `did not answer within ${timeoutMs} ms`
        : `could not be reached (${cause?.code ?? cause?.message ?? (err instanceof Error ? err.message : String(err))})`;
      return {
        ok: false,
        retry: true,
        error: new VectorStoreError('VECTOR_STORE_UNAVAILABLE', `Qdrant at ${where} ${why} during ${c.operation}`, undefined, {
          cause: err,
        }),
      };
    }
    if (status >= 200 && status < 300) {
      try {
        const body = JSON.parse(text) as { result?: unknown };
        if (body !== null && typeof body === 'object' && 'result' in body) return { ok: true, result: body.result as T };
      } catch {
        // fall through
      }
      return {
        ok: false,
        retry: false,
        error: new VectorStoreError(
          'VECTOR_STORE_UNAVAILABLE',
          `Qdrant answered ${c.operation} with HTTP ${status} but no result: ${text.slice(0, 200)}`,
          status,
        ),
      };
    }
    const detail = errorDetail(text, statusText);
    if (status >= 500 || status === 429) {
      return {
        ok: false,
        retry: RETRY_STATUS.has(status),
        error: new VectorStoreError('VECTOR_STORE_UNAVAILABLE', `Qdrant failed ${c.operation} (HTTP ${status}): ${detail}`, status),
      };
    }
    const hint = status === 401 || status === 403 ? ' (check the Qdrant API key)' : '';
    return {
      ok: false,
      retry: false,
      error: new VectorStoreError('VECTOR_STORE_REJECTED', `Qdrant rejected ${c.operation} (HTTP ${status}): ${detail}${hint}`, status),
    };
  }

  async function call<T>(c: Call): Promise<T> {
    for (let n = 1; ; n++) {
      const outcome = await attempt<T>(c);
      if (outcome.ok) return outcome.result;
      if (!outcome.retry || n >= attempts) throw outcome.error;
      const delay = Math.round(baseDelayMs * 2 ** (n - 1) * (0.5 + Math.random() / 2));
      log?.warn(
        { operation: c.operation, attempt: n, status: outcome.error.status, delayMs: delay, err: outcome.error.message },
        'qdrant request failed, retrying',
      );
      await sleep(delay);
    }
  }

  /**
   * Writes wait until applied (`wait=true`), so a search right after sees them. Ordering
   * `medium` sends them through a dynamically elected leader: with replicas, the default
   * `weak` may apply a document's delete and its upserts (same point ids) in different
   * orders on different replicas; `strong` (the permanent leader) would fail writes while
   * that one peer is down. Without replicas the three are the same.
   */
  async function update(operation: string, method: 'PUT' | 'POST', path: string, body: unknown): Promise<void> {
    const result = await call<UpdateResult>({ operation, method, path, query: { wait: 'true', ordering: 'medium' }, body });
    if (result?.status !== 'completed') {
      throw new VectorStoreError('VECTOR_STORE_UNAVAILABLE', `Qdrant did not complete ${operation} (status ${String(result?.status)})`);
    }
  }

  function mismatch(message: string): VectorStoreError {
    return new VectorStoreError('VECTOR_STORE_REJECTED', `Qdrant collection "${collection}" ${message}`);
  }

  function checkConfig(info: CollectionInfo, dense: DenseSpace | null): void {
    const { vectors, sparse_vectors: sparse } = info.config.params;
    const sparseParams = sparse?.[SPARSE_VECTOR];
    if (!sparseParams) throw mismatch(`has no sparse vector "${SPARSE_VECTOR}": it was not created by this store`);
    if (sparseParams.modifier !== 'idf') {
      throw mismatch(
        `has sparse vector "${SPARSE_VECTOR}" without the IDF modifier: BM25 scores would be wrong; re-index into a new collection`,
      );
    }
    if (dense === null) return;
    const named = vectors && !('size' in vectors) ? (vectors as Record<string, VectorParams>)[DENSE_VECTOR] : undefined;
    if (!named) {
      throw mismatch(
        `has no dense vector "${DENSE_VECTOR}" for model ${dense.model}: use collectionFor(base, dense) to index into a new collection`,
      );
    }
    if (named.size !== dense.dimensions) {
      throw mismatch(
        `holds ${named.size}-dimensional dense vectors but ${dense.model} gives ${dense.dimensions}: ` +
          'vectors of different models are never mixed; use collectionFor(base, dense) to index into a new collection',
      );
    }
    if (named.distance !== 'Cosine') throw mismatch(`uses ${named.distance} distance for "${DENSE_VECTOR}", expected Cosine`);
  }

  const INDEXES = [
    { field_name: 'course_id', field_schema: { type: 'keyword', is_tenant: true } },
    { field_name: 'document_id', field_schema: { type: 'keyword' } },
  ] as const;

  async function prepare(dense: DenseSpace | null): Promise<void> {
    const { exists } = await call<{ exists: boolean }>({ operation: 'collection exists', method: 'GET', path: `${collectionPath}/exists` });
    let created = false;
    if (!exists) {
      const body = {
        vectors: dense ? { [DENSE_VECTOR]: { size: dense.dimensions, distance: 'Cosine' } } : {},
        sparse_vectors: { [SPARSE_VECTOR]: { modifier: 'idf' } },
        shard_number: opts.shardNumber,
        replication_factor: opts.replicationFactor,
        write_consistency_factor: opts.writeConsistencyFactor,
      };
      try {
        await call<boolean>({ operation: 'create collection', method: 'PUT', path: collectionPath, body });
        created = true;
        log?.info({ collection, dense: dense ?? undefined }, 'qdrant collection created');
      } catch (err) {
        // Another process (or an earlier attempt of this request) created it first.
        if (!(err instanceof VectorStoreError && err.status === 409)) throw err;
      }
    }
    let existing: CollectionInfo['payload_schema'] = {};
    if (!created) {
      const info = await call<CollectionInfo>({ operation: 'get collection', method: 'GET', path: collectionPath });
      checkConfig(info, dense);
      existing = info.payload_schema ?? {};
    }
    // The tenant index exists before any point does (created right after the collection,
    // or repaired here if an earlier start stopped in between).
    for (const index of INDEXES) {
      const current = existing[index.field_name];
      if (current === undefined) {
        await update(`create payload index ${index.field_name}`, 'PUT', `${collectionPath}/index`, index);
      } else if (current.data_type !== 'keyword' || ('is_tenant' in index.field_schema && current.params?.is_tenant !== true)) {
        log?.warn({ collection, field: index.field_name, current }, 'qdrant payload index differs from the expected one');
      }
    }
  }

  const ready = new Map<string, Promise<void>>();

  function documentFilter(courseId: string, documentId: string): Filter {
    return {
      must: [
        { key: 'course_id', match: { value: courseId } },
        { key: 'document_id', match: { value: documentId } },
      ],
    };
  }

  return {
    kind: 'qdrant',

    ensureReady(dense) {
      const key = dense ? `${dense.model}\n${dense.dimensions}` : '';
      let p = ready.get(key);
      if (p === undefined) {
        p = prepare(dense);
        ready.set(key, p);
        p.catch(() => ready.delete(key));
      }
      return p;
    },

    async replaceDocument(courseId, documentId, points) {
      for (const p of points) {
        if (p.courseId !== courseId || p.documentId !== documentId) {
          throw new VectorStoreError(
            'VECTOR_STORE_REJECTED',
            `chunk ${p.id} belongs to course ${p.courseId}, document ${p.documentId}, not to course ${courseId}, document ${documentId}`,
          );
        }
      }
      await update('delete document points', 'POST', `${collectionPath}/points/delete`, { filter: documentFilter(courseId, documentId) });
      for (let i = 0; i < points.length; i += UPSERT_BATCH) {
        const batch = points.slice(i, i + UPSERT_BATCH).map(toPoint);
        await update('upsert points', 'PUT', `${collectionPath}/points`, { points: batch });
      }
    },

    async deleteDocument(courseId, documentId) {
      await update('delete document points', 'POST', `${collectionPath}/points/delete`, { filter: documentFilter(courseId, documentId) });
    },

    async search(q: SearchQuery): Promise<ScoredChunk[]> {
      if (q.limit <= 0) return [];
      const documentIds = q.documentIds === undefined ? undefined : [...new Set(q.documentIds)];
      if (documentIds !== undefined && documentIds.length === 0) return [];
      const filter: Filter = { must: [{ key: 'course_id', match: { value: q.courseId } }] };
      if (documentIds !== undefined) filter.must.push({ key: 'document_id', match: { any: documentIds } });

      const sparse = q.sparse.indices.length > 0 ? { indices: q.sparse.indices, values: q.sparse.values } : undefined;
      const dense = q.dense !== undefined && q.dense.length > 0 ? q.dense : undefined;
      const common = { filter, limit: q.limit, with_payload: ['chunk_id'] };
      let body: object;
      if (sparse && dense) {
        const depth = Math.min(Math.max(q.limit * PREFETCH_FACTOR, MIN_PREFETCH), MAX_PREFETCH);
        body = {
          prefetch: [
            { query: sparse, using: SPARSE_VECTOR, filter, limit: depth },
            { query: dense, using: DENSE_VECTOR, filter, limit: depth },
          ],
          // Qdrant scores 1 / (k + rank - 1), rank from 1; types.ts's RRF_K is for 1 / (k + rank).
          query: { rrf: { k: RRF_K + 1 } },
          ...common,
        };
      } else if (sparse) {
        body = { query: sparse, using: SPARSE_VECTOR, ...common };
      } else if (dense) {
        body = { query: dense, using: DENSE_VECTOR, ...common };
      } else {
        return [];
      }
      const result = await call<{ points: ScoredPoint[] }>({
        operation: 'query points',
        method: 'POST',
        path: `${collectionPath}/points/query`,
        body,
      });
      const out: ScoredChunk[] = [];
      for (const point of result.points) {
        const chunkId = point.payload?.['chunk_id'];
        if (typeof chunkId === 'string') out.push({ id: chunkId, score: point.score });
        else log?.warn({ collection, pointId: point.id }, 'qdrant point without chunk_id skipped');
      }
      return out;
    },
  };
}

function toPoint(p: ChunkPoint): PointStruct {
  const vector: PointStruct['vector'] = { [SPARSE_VECTOR]: { indices: p.sparse.indices, values: p.sparse.values } };
  if (p.dense !== undefined) vector[DENSE_VECTOR] = p.dense;
  return {
    id: pointIdFor(p.documentId, p.position),
    vector,
    payload: { course_id: p.courseId, document_id: p.documentId, position: p.position, chunk_id: p.id },
  };
}
