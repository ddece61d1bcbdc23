/**
 * A stand-in for Qdrant 1.19's REST API, on a local port: the endpoints the Qdrant
 * vector store uses (through `@qdrant/js-client-rest`), plus `GET /`, the version info
 * the client asks for when it is built with its compatibility check on, with response
 * bodies shaped like the real ones (`{ result, status: "ok", time }`, errors `{ status:
 * { error }, time }`; the corpus tier checks them against Qdrant's OpenAPI document). Points live in memory and are searched exactly:
 * sparse vectors by dot product (with IDF when the vector has the `idf` modifier), dense
 * vectors by cosine, prefetches fused with Qdrant's RRF formula.
 *
 * Every request is recorded (method, path, query, body) and so is every response; a
 * request can be made to fail with a status and body, a reset connection or no answer.
 * The fake refuses what it does not implement with a 400 saying so, and is stricter
 * than Qdrant about unknown fields (Qdrant ignores most of them).
 */
import { createServer, type IncomingHttpHeaders, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { ChunkPoint, SparseVector as StoreSparseVector } from '../../lib/search/types.js';

export interface RecordedRequest {
  method: string;
  /** Path without the query string, e.g. /collections/chunks/points/query. */
  path: string;
  query: Record<string, string>;
  /** Parsed JSON, or the raw text if it was not JSON, or undefined if empty. */
  body: unknown;
  headers: IncomingHttpHeaders;
}

export interface RecordedResponse {
  method: string;
  path: string;
  status: number;
  /** Parsed JSON, or the raw text. */
  body: unknown;
}

export interface FailureRule {
  method?: string;
  /** The exact path, or a pattern tested against it. Any path when absent. */
  path?: string | RegExp;
  /** How many matching requests fail (default 1). */
  times?: number;
  /** Answer with this status and body (an object is sent as JSON, a string as text). */
  status?: number;
  body?: unknown;
  /** Extra response headers (e.g. `retry-after`; a `content-type` here replaces the one chosen from the body). */
  headers?: Record<string, string>;
  /** Or: destroy the connection, or never answer. */
  network?: 'reset' | 'hang';
}

interface SparseVector {
  indices: number[];
  values: number[];
}

export interface FakePoint {
  id: string | number;
  vector: Record<string, number[] | SparseVector>;
  payload: Record<string, unknown>;
  version: number;
}

export interface FakeCollection {
  name: string;
  vectors: Record<string, { size: number; distance: string }>;
  sparse: Record<string, { modifier?: string }>;
  params: { shard_number: number; replication_factor: number; write_consistency_factor: number };
  indexes: Map<string, { data_type: string; params: Record<string, unknown> }>;
  points: Map<string, FakePoint>;
}

export interface QdrantFake {
  url: string;
  requests: RecordedRequest[];
  responses: RecordedResponse[];
  collections: Map<string, FakeCollection>;
  /** Makes matching requests fail (rules are tried in order; each is used `times` times). */
  fail(rule: FailureRule): void;
  /** The points of a collection, sorted by id. */
  points(collection: string): FakePoint[];
  /** Forgets recorded requests and responses (not the data). */
  clearLog(): void;
  close(): Promise<void>;
}

class ApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}
const badRequest = (message: string) => new ApiError(400, message);
const unsupported = (what: string) => new ApiError(400, `Bad request: (qdrant fake) not implemented: ${what}`);

/** What `GET /` answers: the version this fake stands in for. */
export const FAKE_VERSION = { title: 'qdrant - vector search engine', version: '1.19.0', commit: null };

const UUID = /^[0-9a-f]{8}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{12}$/i;
const ORDERINGS = ['weak', 'medium', 'strong'];

function isObject(x: unknown): x is Record<string, unknown> {
  return typeof x === 'object' && x !== null && !Array.isArray(x);
}

/** Rejects fields this fake does not know (Qdrant would mostly ignore them: stricter on purpose). */
function onlyFields(where: string, obj: Record<string, unknown>, allowed: string[]): void {
  for (const key of Object.keys(obj)) {
    if (!allowed.includes(key)) throw badRequest(`Format error in JSON body: unknown field \`${key}\` in ${where} (qdrant fake)`);
  }
}

function normaliseId(id: unknown): string {
  if (typeof id === 'number' && Number.isSafeInteger(id) && id >= 0) return String(id);
  if (typeof id === 'string' && UUID.test(id)) {
    const hex = id.replace(/-/g, '').toLowerCase();
    return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
  }
  throw badRequest(
    `Format error in JSON body: value ${JSON.stringify(id)} is not a valid point ID, valid values are either an unsigned integer or a UUID`,
  );
}

function asSparse(x: unknown): SparseVector | undefined {
  if (!isObject(x) || !Array.isArray(x['indices']) || !Array.isArray(x['values'])) return undefined;
  onlyFields('sparse vector', x, ['indices', 'values']);
  const v = { indices: x['indices'] as number[], values: x['values'] as number[] };
  if (v.indices.length !== v.values.length) throw badRequest('Validation error in JSON body: values and indices must be the same length');
  if (new Set(v.indices).size !== v.indices.length) throw badRequest('Validation error in JSON body: indices must be unique');
  return v;
}

function asDense(x: unknown): number[] | undefined {
  return Array.isArray(x) && x.every((n) => typeof n === 'number') ? (x as number[]) : undefined;
}

// ---- filters ----

function asList(x: unknown): unknown[] {
  if (x === undefined || x === null) return [];
  return Array.isArray(x) ? x : [x];
}

function matchesFilter(filter: unknown, payload: Record<string, unknown>): boolean {
  if (filter === undefined || filter === null) return true;
  if (!isObject(filter)) throw badRequest('Format error in JSON body: filter must be an object');
  onlyFields('filter', filter, ['must', 'should', 'must_not']);
  const must = asList(filter['must']);
  const should = asList(filter['should']);
  const mustNot = asList(filter['must_not']);
  return (
    must.every((c) => matchesCondition(c, payload)) &&
    (should.length === 0 || should.some((c) => matchesCondition(c, payload))) &&
    !mustNot.some((c) => matchesCondition(c, payload))
  );
}

function matchesCondition(c: unknown, payload: Record<string, unknown>): boolean {
  if (!isObject(c)) throw badRequest('Format error in JSON body: data did not match any variant of untagged enum Condition');
  if ('must' in c || 'should' in c || 'must_not' in c) return matchesFilter(c, payload);
  if (typeof c['key'] !== 'string')
    throw badRequest('Format error in JSON body: data did not match any variant of untagged enum Condition');
  onlyFields('field condition', c, ['key', 'match']);
  const match = c['match'];
  const raw = payload[c['key']];
  const values = Array.isArray(raw) ? raw : [raw];
  if (isObject(match) && 'value' in match) {
    onlyFields('match', match, ['value']);
    return values.includes(match['value']);
  }
  if (isObject(match) && 'any' in match && Array.isArray(match['any'])) {
    onlyFields('match', match, ['any']);
    const any = match['any'];
    return values.some((v) => any.includes(v));
  }
  throw unsupported(`condition ${JSON.stringify(c)}`);
}

// ---- queries ----

interface Scored {
  id: string;
  score: number;
}

const byScore = (a: Scored, b: Scored) => b.score - a.score || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0);

/** Qdrant's RRF: 1 / (position + k), position from 0, k = 2 by default; summed over the lists. */
function rrf(lists: Scored[][], k: number, weights?: number[]): Scored[] {
  if (weights && weights.length !== lists.length) {
    throw badRequest(
      `Bad request: Number of weights in RRF should match number of pre-fetches: got ${weights.length}, expected ${lists.length}`,
    );
  }
  const scores = new Map<string, number>();
  lists.forEach((list, i) => {
    const w = weights?.[i] ?? 1;
    list.forEach((s, pos) => {
      const add = w <= 0 ? 0 : 1 / ((pos + 1) / w + k - 1);
      scores.set(s.id, (scores.get(s.id) ?? 0) + add);
    });
  });
  return [...scores].map(([id, score]) => ({ id, score })).sort(byScore);
}

function scoreVector(col: FakeCollection, candidates: FakePoint[], query: unknown, using: unknown): Scored[] {
  const input = isObject(query) && 'nearest' in query ? query['nearest'] : query;
  const name = typeof using === 'string' ? using : '';
  const dense = asDense(input);
  if (dense) {
    const params = col.vectors[name];
    if (!params) throw badRequest(`Wrong input: Not existing vector name error: ${name}`);
    if (dense.length !== params.size)
      throw badRequest(`Wrong input: Vector dimension error: expected dim: ${params.size}, got ${dense.length}`);
    const norm = Math.hypot(...dense);
    const out: Scored[] = [];
    for (const p of candidates) {
      const v = asDense(p.vector[name]);
      if (!v) continue;
      const dot = v.reduce((s, x, i) => s + x * dense[i]!, 0);
      out.push({ id: String(p.id), score: norm === 0 ? 0 : dot / (norm * (Math.hypot(...v) || 1)) });
    }
    return out.sort(byScore);
  }
  const sparse = asSparse(input);
  if (sparse) {
    const params = col.sparse[name];
    if (!params) throw badRequest(`Wrong input: Not existing vector name error: ${name}`);
    const idf = new Map<number, number>();
    if (params.modifier === 'idf') {
      const withVector = [...col.points.values()].filter((p) => asSparse(p.vector[name]));
      for (const i of sparse.indices) {
        const df = withVector.filter((p) => (p.vector[name] as SparseVector).indices.includes(i)).length;
        idf.set(i, Math.log((withVector.length - df + 0.5) / (df + 0.5) + 1));
      }
    }
    const out: Scored[] = [];
    for (const p of candidates) {
      const v = p.vector[name];
      if (!v || Array.isArray(v)) continue;
      let score = 0;
      let overlap = false;
      sparse.indices.forEach((index, qi) => {
        const at = v.indices.indexOf(index);
        if (at < 0) return;
        overlap = true;
        score += sparse.values[qi]! * v.values[at]! * (idf.get(index) ?? 1);
      });
      // A sparse search only finds points that share at least one index with the query.
      if (overlap) out.push({ id: String(p.id), score });
    }
    return out.sort(byScore);
  }
  throw unsupported(`query ${JSON.stringify(query)?.slice(0, 100)}`);
}

const QUERY_FIELDS = ['prefetch', 'query', 'using', 'filter', 'limit'];

function runQuery(col: FakeCollection, node: Record<string, unknown>): Scored[] {
  const limit = node['limit'] ?? 10;
  if (typeof limit !== 'number') throw badRequest('Format error in JSON body: limit must be an unsigned integer');
  const query = node['query'];
  const isFusion = isObject(query) && ('fusion' in query || 'rrf' in query);
  const prefetches = asList(node['prefetch']);
  if (prefetches.length > 0) {
    const lists = prefetches.map((p) => {
      if (!isObject(p)) throw badRequest('Format error in JSON body: prefetch must be an object');
      onlyFields('prefetch', p, QUERY_FIELDS);
      return runQuery(col, p);
    });
    if (!isFusion) throw unsupported('a prefetch without fusion (rescoring)');
    let fused: Scored[];
    if ('fusion' in query) {
      if (query['fusion'] !== 'rrf') throw unsupported(`fusion ${String(query['fusion'])}`);
      fused = rrf(lists, 2);
    } else {
      const params = query['rrf'];
      if (!isObject(params)) throw badRequest('Format error in JSON body: rrf must be an object');
      onlyFields('rrf', params, ['k', 'weights']);
      fused = rrf(lists, typeof params['k'] === 'number' ? params['k'] : 2, params['weights'] as number[] | undefined);
    }
    // The root filter applies to the merged results; it is not pushed into the prefetches.
    return fused.filter((s) => matchesFilter(node['filter'], col.points.get(s.id)!.payload)).slice(0, limit);
  }
  if (isFusion) throw badRequest('Bad request: cannot apply Fusion without prefetches');
  if (query === undefined) throw unsupported('a query without vector (scroll)');
  const candidates = [...col.points.values()].filter((p) => matchesFilter(node['filter'], p.payload));
  return scoreVector(col, candidates, query, node['using']).slice(0, limit);
}

function selectPayload(payload: Record<string, unknown>, withPayload: unknown): Record<string, unknown> | null {
  if (withPayload === true) return payload;
  if (Array.isArray(withPayload))
    return Object.fromEntries(withPayload.filter((k: string) => k in payload).map((k: string) => [k, payload[k]]));
  if (withPayload === undefined || withPayload === false || withPayload === null) return null;
  throw unsupported(`with_payload ${JSON.stringify(withPayload)}`);
}

// ---- server ----

export async function startQdrantFake(opts: { apiKey?: string } = {}): Promise<QdrantFake> {
  const requests: RecordedRequest[] = [];
  const responses: RecordedResponse[] = [];
  const collections = new Map<string, FakeCollection>();
  const rules: (FailureRule & { left: number })[] = [];
  let operationId = 0;

  function collectionInfo(col: FakeCollection) {
    const count = col.points.size;
    return {
      status: 'green',
      optimizer_status: 'ok',
      indexed_vectors_count: 0,
      points_count: count,
      segments_count: 1,
      config: {
        params: {
          vectors: col.vectors,
          shard_number: col.params.shard_number,
          replication_factor: col.params.replication_factor,
          write_consistency_factor: col.params.write_consistency_factor,
          on_disk_payload: true,
          sparse_vectors: col.sparse,
        },
        hnsw_config: { m: 16, ef_construct: 100, full_scan_threshold: 10000, max_indexing_threads: 0, on_disk: false },
        optimizer_config: {
          deleted_threshold: 0.2,
          vacuum_min_vector_number: 1000,
          default_segment_number: 0,
          max_segment_size: null,
          memmap_threshold: null,
          indexing_threshold: 10000,
          flush_interval_sec: 5,
          max_optimization_threads: null,
        },
        wal_config: { wal_capacity_mb: 32, wal_segments_ahead: 0 },
        quantization_config: null,
        strict_mode_config: { enabled: false },
      },
      payload_schema: Object.fromEntries(
        [...col.indexes].map(([field, index]) => [
          field,
          { data_type: index.data_type, params: index.params, points: [...col.points.values()].filter((p) => field in p.payload).length },
        ]),
      ),
    };
  }

  function getCollection(name: string): FakeCollection {
    const col = collections.get(name);
    if (!col) throw new ApiError(404, `Not found: Collection \`${name}\` doesn't exist!`);
    return col;
  }

  function checkWriteParams(query: Record<string, string>): void {
    const ordering = query['ordering'];
    if (ordering !== undefined && !ORDERINGS.includes(ordering)) {
      throw badRequest(`Query deserialize error: unknown variant \`${ordering}\`, expected one of \`weak\`, \`medium\`, \`strong\``);
    }
    const wait = query['wait'];
    if (wait !== undefined && wait !== 'true' && wait !== 'false')
      throw badRequest('Query deserialize error: provided string was not `true` or `false`');
    checkTimeout(query);
  }

  /** `timeout` (seconds), which the client sends when a call is given one. */
  function checkTimeout(query: Record<string, string>): void {
    const timeout = query['timeout'];
    if (timeout !== undefined && !/^[1-9]\d*$/.test(timeout)) throw badRequest(`Query deserialize error: invalid digit found in string`);
  }

  /** With wait=true Qdrant answers once the change is applied, otherwise as soon as it is queued. */
  const updated = (q: Record<string, string>) => ({
    operation_id: operationId++,
    status: q['wait'] === 'true' ? 'completed' : 'acknowledged',
  });

  function createCollection(name: string, body: unknown): boolean {
    if (collections.has(name)) throw new ApiError(409, `Wrong input: Collection \`${name}\` already exists!`);
    if (!isObject(body)) throw badRequest('Format error in JSON body: expected an object');
    onlyFields('create collection', body, ['vectors', 'sparse_vectors', 'shard_number', 'replication_factor', 'write_consistency_factor']);
    const vectors = (body['vectors'] ?? {}) as Record<string, unknown>;
    if (!isObject(vectors) || 'size' in vectors) throw unsupported('an unnamed (default) vector');
    const dense: FakeCollection['vectors'] = {};
    for (const [vname, params] of Object.entries(vectors)) {
      if (!isObject(params) || typeof params['size'] !== 'number' || typeof params['distance'] !== 'string') {
        throw badRequest(`Format error in JSON body: vectors.${vname}: missing field \`size\` or \`distance\``);
      }
      onlyFields(`vectors.${vname}`, params, ['size', 'distance']);
      if (params['distance'] !== 'Cosine') throw unsupported(`distance ${params['distance']}`);
      dense[vname] = { size: params['size'], distance: params['distance'] };
    }
    const sparse: FakeCollection['sparse'] = {};
    for (const [vname, params] of Object.entries((body['sparse_vectors'] ?? {}) as Record<string, unknown>)) {
      if (!isObject(params)) throw badRequest(`Format error in JSON body: sparse_vectors.${vname} must be an object`);
      onlyFields(`sparse_vectors.${vname}`, params, ['modifier']);
      if (params['modifier'] !== undefined && params['modifier'] !== 'idf' && params['modifier'] !== 'none') {
        throw badRequest(`Format error in JSON body: unknown variant \`${String(params['modifier'])}\`, expected \`none\` or \`idf\``);
      }
      sparse[vname] = params['modifier'] === undefined ? {} : { modifier: params['modifier'] as string };
    }
    const int = (key: string) => {
      const v = body[key] ?? 1;
      if (typeof v !== 'number' || !Number.isInteger(v) || v < 1)
        throw badRequest(`Validation error in JSON body: ${key} must be at least 1`);
      return v;
    };
    collections.set(name, {
      name,
      vectors: dense,
      sparse,
      params: {
        shard_number: int('shard_number'),
        replication_factor: int('replication_factor'),
        write_consistency_factor: int('write_consistency_factor'),
      },
      indexes: new Map(),
      points: new Map(),
    });
    return true;
  }

  function createIndex(col: FakeCollection, body: unknown, q: Record<string, string>) {
    if (!isObject(body) || typeof body['field_name'] !== 'string')
      throw badRequest('Format error in JSON body: missing field `field_name`');
    onlyFields('create index', body, ['field_name', 'field_schema']);
    const schema = body['field_schema'];
    let params: Record<string, unknown>;
    if (schema === 'keyword') params = { type: 'keyword' };
    else if (isObject(schema) && schema['type'] === 'keyword') {
      onlyFields('keyword index params', schema, ['type', 'is_tenant']);
      params = schema;
    } else throw unsupported(`field_schema ${JSON.stringify(schema)}`);
    col.indexes.set(body['field_name'], { data_type: 'keyword', params });
    return updated(q);
  }

  function upsert(col: FakeCollection, body: unknown, q: Record<string, string>) {
    if (!isObject(body) || !Array.isArray(body['points'])) throw unsupported('upsert without a `points` list');
    onlyFields('upsert', body, ['points']);
    const prepared = body['points'].map((raw: unknown) => {
      if (!isObject(raw)) throw badRequest('Format error in JSON body: a point must be an object');
      onlyFields('point', raw, ['id', 'vector', 'payload']);
      const id = normaliseId(raw['id']);
      const vector = raw['vector'];
      if (!isObject(vector)) throw unsupported('an unnamed (default) vector');
      for (const [vname, v] of Object.entries(vector)) {
        if (col.vectors[vname]) {
          const d = asDense(v);
          if (!d) throw badRequest(`Wrong input: Conversion between sparse and regular vectors failed`);
          if (d.length !== col.vectors[vname].size) {
            throw badRequest(`Wrong input: Vector dimension error: expected dim: ${col.vectors[vname].size}, got ${d.length}`);
          }
        } else if (col.sparse[vname]) {
          if (!asSparse(v)) throw badRequest(`Wrong input: Conversion between sparse and regular vectors failed`);
        } else {
          throw badRequest(`Wrong input: Not existing vector name error: ${vname}`);
        }
      }
      const payload = raw['payload'] ?? {};
      if (!isObject(payload)) throw badRequest('Format error in JSON body: payload must be an object');
      return { id, vector: vector as FakePoint['vector'], payload };
    });
    const version = operationId;
    for (const p of prepared) col.points.set(p.id, { ...p, id: /^\d+$/.test(p.id) ? Number(p.id) : p.id, version });
    return updated(q);
  }

  function deletePoints(col: FakeCollection, body: unknown, q: Record<string, string>) {
    if (!isObject(body)) throw badRequest('Format error in JSON body: expected an object');
    if ('filter' in body) {
      onlyFields('delete', body, ['filter']);
      for (const [id, p] of col.points) if (matchesFilter(body['filter'], p.payload)) col.points.delete(id);
    } else if (Array.isArray(body['points'])) {
      onlyFields('delete', body, ['points']);
      for (const id of body['points']) col.points.delete(normaliseId(id));
    } else {
      throw badRequest('Format error in JSON body: data did not match any variant of untagged enum PointsSelector');
    }
    return updated(q);
  }

  function query(col: FakeCollection, body: unknown) {
    if (!isObject(body)) throw badRequest('Format error in JSON body: expected an object');
    onlyFields('query', body, [...QUERY_FIELDS, 'with_payload']);
    const scored = runQuery(col, body);
    return {
      points: scored.map((s) => {
        const p = col.points.get(s.id)!;
        return { id: p.id, version: p.version, score: s.score, payload: selectPayload(p.payload, body['with_payload']) };
      }),
    };
  }

  function route(method: string, path: string, queryParams: Record<string, string>, body: unknown): unknown {
    const m = /^\/collections\/([^/]+)(\/exists|\/index|\/points|\/points\/delete|\/points\/query)?$/.exec(path);
    if (!m) throw new ApiError(404, `(qdrant fake) no route for ${method} ${path}`);
    const name = decodeURIComponent(m[1]!);
    const rest = m[2] ?? '';
    const key = `${method} ${rest}`;
    switch (key) {
      case 'GET /exists':
        return { exists: collections.has(name) };
      case 'GET ':
        return collectionInfo(getCollection(name));
      case 'PUT ':
        checkTimeout(queryParams);
        return createCollection(name, body);
      case 'PUT /index':
        checkWriteParams(queryParams);
        return createIndex(getCollection(name), body, queryParams);
      case 'PUT /points':
        checkWriteParams(queryParams);
        return upsert(getCollection(name), body, queryParams);
      case 'POST /points/delete':
        checkWriteParams(queryParams);
        return deletePoints(getCollection(name), body, queryParams);
      case 'POST /points/query':
        checkTimeout(queryParams);
        return query(getCollection(name), body);
      default:
        throw new ApiError(404, `(qdrant fake) no route for ${method} ${path}`);
    }
  }

  function send(
    req: IncomingMessage,
    res: ServerResponse,
    path: string,
    status: number,
    body: unknown,
    headers: Record<string, string> = {},
  ): void {
    responses.push({ method: req.method ?? '', path, status, body });
    const text = typeof body === 'string' ? body : JSON.stringify(body);
    res.writeHead(status, { 'content-type': typeof body === 'string' ? 'text/plain' : 'application/json', ...headers });
    res.end(text);
  }

  const server = createServer((req, res) => {
    const started = performance.now();
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const url = new URL(req.url ?? '/', 'http://fake');
      const path = url.pathname;
      const method = req.method ?? 'GET';
      const text = Buffer.concat(chunks).toString('utf8');
      let body: unknown;
      let badJson: string | undefined;
      if (text.length > 0) {
        try {
          body = JSON.parse(text);
        } catch (err) {
          body = text;
          badJson = (err as Error).message;
        }
      }
      const query = Object.fromEntries(url.searchParams);
      requests.push({ method, path, query, body, headers: req.headers });
      const time = () => (performance.now() - started) / 1000;

      const rule = rules.find(
        (r) =>
          r.left > 0 &&
          (r.method === undefined || r.method.toUpperCase() === method) &&
          (r.path === undefined || (typeof r.path === 'string' ? r.path === path : r.path.test(path))),
      );
      if (rule) {
        rule.left--;
        if (rule.network === 'reset') return req.socket.destroy();
        if (rule.network === 'hang') return;
        return send(
          req,
          res,
          path,
          rule.status ?? 500,
          rule.body ?? { status: { error: 'Service internal error: (qdrant fake) failure' }, time: time() },
          rule.headers,
        );
      }
      if (opts.apiKey !== undefined && req.headers['api-key'] !== opts.apiKey) {
        return send(req, res, path, 401, 'Must provide an API key or an Authorization bearer token');
      }
      if (badJson !== undefined) return send(req, res, path, 400, { status: { error: `Format error in JSON body: ${badJson}` }, time: 0 });
      // The version info is the only answer without the `{ result, status, time }` envelope.
      if (method === 'GET' && path === '/') return send(req, res, path, 200, FAKE_VERSION);
      try {
        const result = route(method, path, query, body);
        send(req, res, path, 200, { result, status: 'ok', time: time() });
      } catch (err) {
        if (!(err instanceof ApiError)) throw err;
        send(req, res, path, err.status, { status: { error: err.message }, time: time() });
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;

  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    responses,
    collections,
    fail(rule) {
      rules.push({ ...rule, left: rule.times ?? 1 });
    },
    points(name) {
      return [...getCollection(name).points.values()].sort((a, b) => (String(a.id) < String(b.id) ? -1 : 1));
    },
    clearLog() {
      requests.length = 0;
      responses.length = 0;
    },
    close() {
      return new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
    },
  };
}

/** A sparse vector from { termId: weight }. */
export function sv(terms: Record<number, number>): StoreSparseVector {
  const entries = Object.entries(terms).map(([i, v]) => [Number(i), v] as const);
  return { indices: entries.map(([i]) => i), values: entries.map(([, v]) => v) };
}

/** A point for the store, with every term counted once. */
export function chunk(courseId: string, documentId: string, position: number, sparse: StoreSparseVector, dense?: number[]): ChunkPoint {
  const terms = { ids: sparse.indices, tf: sparse.indices.map(() => 1), length: sparse.indices.length };
  return { id: `${documentId}:${position}`, courseId, documentId, position, sparse, terms, dense };
}
