/**
 * The Qdrant vector store: one collection per vector space (see `collectionFor`), every
 * course in it (payload partitioning, `course_id` is the tenant key), spoken to through
 * Qdrant's official REST client (`@qdrant/js-client-rest`): it builds the requests, sends
 * them and parses the answers. Request bodies follow Qdrant 1.19's OpenAPI document
 * (checked by qdrant.corpus.test.ts).
 *
 * What the client does not do is here: it never retries, and its errors are its own. Every
 * request this store sends is idempotent: point ids are derived from chunk ids, deletes are
 * by filter, index creation is repeatable, and a collection creation that meets an existing
 * collection (409) is treated as done. So requests that failed with 429/502/503/504, a
 * network error or a timeout are retried with backoff, and every failure becomes a
 * `VectorStoreError`.
 */
import { createHash } from 'node:crypto';
import {
  QdrantClient,
  QdrantClientResourceExhaustedError,
  QdrantClientTimeoutError,
  QdrantClientUnexpectedResponseError,
  type Schemas,
} from '@qdrant/js-client-rest';
import { RRF_K, type ChunkPoint, type ScoredChunk, type SearchQuery, type VectorStore } from './types.js';

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
  /** Qdrant's REST endpoint, e.g. http://localhost:6333 (a path, for a reverse proxy, is kept). */
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

/**
 * The client's constructor options for `url`. Of a `url` the client keeps only the scheme,
 * host and port: it drops a path, and a URL without a port gets 6333 rather than its scheme's
 * 80 or 443. So the path goes in `prefix` and the port is spelt out.
 */
function endpoint(raw: string): { url: string; port: number; prefix: string } {
  const u = URL.canParse(raw) ? new URL(raw) : undefined;
  if (u === undefined || (u.protocol !== 'http:' && u.protocol !== 'https:') || u.username || u.password || u.search || u.hash) {
    throw new VectorStoreError(
      'VECTOR_STORE_REJECTED',
      'the Qdrant URL must be http(s)://host[:port][/path], without credentials (use the API key), query or fragment',
    );
  }
  return { url: u.origin, port: Number(u.port) || (u.protocol === 'https:' ? 443 : 80), prefix: u.pathname.replace(/\/+$/, '') };
}

/** What the client's fetcher throws for a non-2xx answer (its `ApiError`, which the client does not export). */
interface HttpFailure extends Error {
  status: number;
  statusText: string;
  /** The body, as parsed JSON, or the text when it was not JSON. */
  data: unknown;
}

function isHttpFailure(err: unknown): err is HttpFailure {
  return typeof err === 'object' && err !== null && typeof (err as Partial<HttpFailure>).status === 'number' && 'data' in err;
}

/**
 * The name, message and cause of anything thrown. Not `instanceof Error`: fetch's errors may
 * come from another realm (Jest runs tests in a VM context), where that test fails.
 */
function describeThrown(err: unknown): { name: string; message: string; cause: { code?: unknown; message?: unknown } | undefined } {
  const e = typeof err === 'object' && err !== null ? (err as { name?: unknown; message?: unknown; cause?: unknown }) : {};
  return {
    name: typeof e.name === 'string' ? e.name : '',
    message: typeof e.message === 'string' ? e.message : String(err),
    cause: typeof e.cause === 'object' && e.cause !== null ? e.cause : undefined,
  };
}

/** `{ status: { error } }`, Qdrant's error body; else the start of whatever came back. */
function errorDetail(data: unknown, statusText: string): string {
  const error = (data as { status?: { error?: unknown } } | null | undefined)?.status?.error;
  if (typeof error === 'string') return error;
  const text = typeof data === 'string' ? data : data === undefined || data === null ? '' : JSON.stringify(data);
  return text.trim().slice(0, 200) || statusText || 'no details';
}

const RETRY_STATUS = new Set([429, 502, 503, 504]);

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/**
 * Writes wait until applied (`wait=true`), so a search right after sees them. Ordering
 * `medium` sends them through a dynamically elected leader: with replicas, the default
 * `weak` may apply a document's delete and its upserts (same point ids) in different
 * orders on different replicas; `strong` (the permanent leader) would fail writes while
 * that one peer is down. Without replicas the three are the same.
 */
const WRITE = { wait: true, ordering: 'medium' } as const satisfies { wait: boolean; ordering: Schemas['WriteOrdering'] };

const INDEXES = [
  { field_name: 'course_id', field_schema: { type: 'keyword', is_tenant: true } },
  { field_name: 'document_id', field_schema: { type: 'keyword' } },
] as const satisfies readonly Schemas['CreateFieldIndex'][];

export function createQdrantStore(opts: QdrantStoreOptions): VectorStore {
  const collection = opts.collection;
  const timeoutMs = opts.timeoutMs ?? 10_000;
  const attempts = Math.max(1, opts.retry?.attempts ?? 4);
  const baseDelayMs = opts.retry?.baseDelayMs ?? 200;
  const log = opts.log;
  const { url, port, prefix } = endpoint(opts.url);
  /** For messages: without any credentials the URL may carry. */
  const where = url;
  const client = new QdrantClient({
    url,
    port,
    prefix,
    ...(opts.apiKey ? { apiKey: opts.apiKey } : {}),
    // Per request, through an AbortController; the client's default is 300 s.
    timeout: timeoutMs,
    // Otherwise every construction sends GET / to compare versions and only console.warns
    // about the outcome; ensureReady checks what matters, the collection.
    checkCompatibility: false,
  });

  /** A failed attempt: the error to throw, and whether trying again may help. */
  function failure(err: unknown, operation: string): { error: VectorStoreError; retry: boolean } {
    const unavailable = (message: string, retry: boolean, status?: number) => ({
      retry,
      error: new VectorStoreError('VECTOR_STORE_UNAVAILABLE', message, status, { cause: err }),
    });
    const answered = (status: number, detail: string) => {
      if (status >= 500 || status === 429) {
        return unavailable(`Qdrant failed ${operation} (HTTP ${status}): ${detail}`, RETRY_STATUS.has(status), status);
      }
      const hint = status === 401 || status === 403 ? ' (check the Qdrant API key)' : '';
      return {
        retry: false,
        error: new VectorStoreError('VECTOR_STORE_REJECTED', `Qdrant rejected ${operation} (HTTP ${status}): ${detail}${hint}`, status, {
          cause: err,
        }),
      };
    };
    if (isHttpFailure(err)) return answered(err.status, errorDetail(err.data, err.statusText));
    const { name, message, cause } = describeThrown(err);
    // A 429 with a Retry-After header: the client turns it into this error, keeping neither the
    // status nor the body (and it reads only the header's first character as the seconds)...
    if (err instanceof QdrantClientResourceExhaustedError) return answered(429, message || 'Too Many Requests');
    // ...or, when that character is not a digit (Retry-After as an HTTP date), into a bare error.
    if (message.startsWith('Invalid retryAfter value')) return answered(429, 'Too Many Requests');
    // The client's timeout (it aborts the request; the AbortError is its own unless it came from another realm).
    if (err instanceof QdrantClientTimeoutError || name === 'AbortError' || name === 'TimeoutError') {
      return unavailable(`Qdrant at ${where} did not answer within ${timeoutMs} ms during ${operation}`, true);
    }
    // A 2xx other than 200 and 201.
    if (err instanceof QdrantClientUnexpectedResponseError) {
      return unavailable(`Qdrant answered ${operation} unexpectedly: ${message.replace(/\s+/g, ' ').trim()}`, false);
    }
    // A 200 whose body has no `result` (a proxy's page, say): the client's own message.
    if (message === 'Result came uninitialized') {
      return unavailable(`Qdrant answered ${operation} with HTTP 200/201 but no result (is something else answering at ${where}?)`, false);
    }
    // A body labelled JSON that is not.
    if (name === 'SyntaxError') return unavailable(`Qdrant answered ${operation} with a body that is not JSON: ${message}`, false);
    // Anything else failed before an answer came: fetch's TypeError, the socket error as its cause.
    const why = [cause?.code, cause?.message].find((x) => typeof x === 'string') ?? message;
    return unavailable(`Qdrant at ${where} could not be reached (${String(why)}) during ${operation}`, true);
  }

  /** Runs one client call, trying again (with backoff) while that may help. */
  async function call<T>(operation: string, request: () => Promise<T>): Promise<T> {
    for (let n = 1; ; n++) {
      try {
        return await request();
      } catch (err) {
        const { error, retry } = failure(err, operation);
        if (!retry || n >= attempts) throw error;
        const delay = Math.round(baseDelayMs * 2 ** (n - 1) * (0.5 + Math.random() / 2));
        log?.warn({ operation, attempt: n, status: error.status, delayMs: delay, err: error.message }, 'qdrant request failed, retrying');
        await sleep(delay);
      }
    }
  }

  /** A write (see WRITE), which must have been applied when Qdrant answers. */
  async function update(operation: string, request: () => Promise<Schemas['UpdateResult']>): Promise<void> {
    const result = await call(operation, request);
    if (result.status !== 'completed') {
      throw new VectorStoreError('VECTOR_STORE_UNAVAILABLE', `Qdrant did not complete ${operation} (status ${String(result.status)})`);
    }
  }

  function mismatch(message: string): VectorStoreError {
    return new VectorStoreError('VECTOR_STORE_REJECTED', `Qdrant collection "${collection}" ${message}`);
  }

  function checkConfig(info: Schemas['CollectionInfo'], dense: DenseSpace | null): void {
    const { vectors, sparse_vectors: sparse } = info.config.params;
    const sparseParams = sparse?.[SPARSE_VECTOR];
    if (!sparseParams) throw mismatch(`has no sparse vector "${SPARSE_VECTOR}": it was not created by this store`);
    if (sparseParams.modifier !== 'idf') {
      throw mismatch(
        `has sparse vector "${SPARSE_VECTOR}" without the IDF modifier: BM25 scores would be wrong; re-index into a new collection`,
      );
    }
    if (dense === null) return;
    const named =
      vectors && !('size' in vectors) ? (vectors as Record<string, Schemas['VectorParams'] | undefined>)[DENSE_VECTOR] : undefined;
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

  async function prepare(dense: DenseSpace | null): Promise<void> {
    const { exists } = await call('collection exists', () => client.collectionExists(collection));
    let created = false;
    if (!exists) {
      try {
        await call('create collection', () =>
          client.createCollection(collection, {
            vectors: dense ? { [DENSE_VECTOR]: { size: dense.dimensions, distance: 'Cosine' } } : {},
            sparse_vectors: { [SPARSE_VECTOR]: { modifier: 'idf' } },
            shard_number: opts.shardNumber,
            replication_factor: opts.replicationFactor,
            write_consistency_factor: opts.writeConsistencyFactor,
          }),
        );
        created = true;
        log?.info({ collection, dense: dense ?? undefined }, 'qdrant collection created');
      } catch (err) {
        // Another process (or an earlier attempt of this request) created it first.
        if (!(err instanceof VectorStoreError && err.status === 409)) throw err;
      }
    }
    let existing: Schemas['CollectionInfo']['payload_schema'] = {};
    if (!created) {
      const info = await call('get collection', () => client.getCollection(collection));
      checkConfig(info, dense);
      existing = info.payload_schema ?? {};
    }
    // The tenant index exists before any point does (created right after the collection,
    // or repaired here if an earlier start stopped in between).
    for (const index of INDEXES) {
      const current = existing[index.field_name];
      if (current === undefined) {
        await update(`create payload index ${index.field_name}`, () => client.createPayloadIndex(collection, { ...WRITE, ...index }));
      } else if (
        current.data_type !== 'keyword' ||
        ('is_tenant' in index.field_schema && (current.params as { is_tenant?: boolean | null } | null | undefined)?.is_tenant !== true)
      ) {
        log?.warn({ collection, field: index.field_name, current }, 'qdrant payload index differs from the expected one');
      }
    }
  }

  const ready = new Map<string, Promise<void>>();

  function deleteDocumentPoints(courseId: string, documentId: string): Promise<void> {
    const filter: Schemas['Filter'] = {
      must: [
        { key: 'course_id', match: { value: courseId } },
        { key: 'document_id', match: { value: documentId } },
      ],
    };
    return update('delete document points', () => client.delete(collection, { ...WRITE, filter }));
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
      await deleteDocumentPoints(courseId, documentId);
      for (let i = 0; i < points.length; i += UPSERT_BATCH) {
        const batch = points.slice(i, i + UPSERT_BATCH).map(toPoint);
        await update('upsert points', () => client.upsert(collection, { ...WRITE, points: batch }));
      }
    },

    async deleteDocument(courseId, documentId) {
      await deleteDocumentPoints(courseId, documentId);
    },

    async search(q: SearchQuery): Promise<ScoredChunk[]> {
      if (q.limit <= 0) return [];
      const documentIds = q.documentIds === undefined ? undefined : [...new Set(q.documentIds)];
      if (documentIds !== undefined && documentIds.length === 0) return [];
      const must: Schemas['Condition'][] = [{ key: 'course_id', match: { value: q.courseId } }];
      if (documentIds !== undefined) must.push({ key: 'document_id', match: { any: documentIds } });
      const filter: Schemas['Filter'] = { must };

      const sparse = q.sparse.indices.length > 0 ? { indices: q.sparse.indices, values: q.sparse.values } : undefined;
      const dense = q.dense !== undefined && q.dense.length > 0 ? q.dense : undefined;
      const common = { filter, limit: q.limit, with_payload: ['chunk_id'] };
      let request: Schemas['QueryRequest'];
      if (sparse && dense) {
        const depth = Math.min(Math.max(q.limit * PREFETCH_FACTOR, MIN_PREFETCH), MAX_PREFETCH);
        request = {
          prefetch: [
            { query: sparse, using: SPARSE_VECTOR, filter, limit: depth },
            { query: dense, using: DENSE_VECTOR, filter, limit: depth },
          ],
          // Qdrant scores 1 / (k + rank - 1), rank from 1; types.ts's RRF_K is for 1 / (k + rank).
          query: { rrf: { k: RRF_K + 1 } },
          ...common,
        };
      } else if (sparse) {
        request = { query: sparse, using: SPARSE_VECTOR, ...common };
      } else if (dense) {
        request = { query: dense, using: DENSE_VECTOR, ...common };
      } else {
        return [];
      }
      const result = await call('query points', () => client.query(collection, request));
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

function toPoint(p: ChunkPoint): Schemas['PointStruct'] {
  const vector: Record<string, Schemas['Vector']> = { [SPARSE_VECTOR]: { indices: p.sparse.indices, values: p.sparse.values } };
  if (p.dense !== undefined) vector[DENSE_VECTOR] = p.dense;
  return {
    id: pointIdFor(p.documentId, p.position),
    vector,
    payload: { course_id: p.courseId, document_id: p.documentId, position: p.position, chunk_id: p.id },
  };
}
