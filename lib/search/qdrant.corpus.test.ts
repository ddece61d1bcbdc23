/**
 * The Qdrant store's requests, and the fake's responses, checked against Qdrant 1.19's own
 * OpenAPI document (../shared/contracts, read in place; this tier skips where it is absent).
 *
 * The document is OpenAPI 3.0.1: its schemas are JSON Schema plus `nullable`. They are
 * converted for Ajv (draft-07): `type: T, nullable: true` becomes `type: [T, "null"]`, and a
 * bare `{ nullable: true }` (the document's way to say "or null" inside `anyOf`) becomes
 * `{ type: "null" }`; left as is it would accept anything and make every `anyOf` vacuous.
 *
 * Two validators: `spec` (the document as written) and `closed` (every object schema that
 * lists `properties` and says nothing of `additionalProperties` refuses other fields). The
 * document closes only 8 object schemas (Filter among them), so `spec` lets a misspelt field
 * through almost everywhere, as Qdrant itself mostly does (it ignores unknown fields):
 * requests and responses are held to `closed`.
 *
 * The requests are the ones `@qdrant/js-client-rest` builds for the store, as the fake
 * records them (method, path, query parameters, body).
 */
import { existsSync, readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it, jest } from '@jest/globals';
import { QdrantClient, type Schemas } from '@qdrant/js-client-rest';
import { Ajv, type ValidateFunction } from 'ajv';
import {
  chunk,
  FAKE_VERSION,
  startQdrantFake,
  sv,
  type QdrantFake,
  type RecordedRequest,
  type RecordedResponse,
} from '../../tests/support/qdrant-fake.js';
import { collectionFor, createQdrantStore, pointIdFor } from './qdrant.js';

const SPEC = new URL('../../../shared/contracts/qdrant-openapi-1.19.0.json', import.meta.url);
const present = existsSync(SPEC);

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
type Schema = { [key: string]: Json };
interface Operation {
  operationId: string;
  parameters?: { name: string; in: string; required?: boolean; schema: Schema }[];
  requestBody?: { content: { 'application/json': { schema: Schema } } };
  responses: Record<string, { content?: { 'application/json'?: { schema: Schema } } }>;
}
interface OpenApi {
  openapi: string;
  paths: Record<string, Record<string, Operation>>;
  components: { schemas: Record<string, Schema> };
}

const isSchema = (x: Json | undefined): x is Schema => typeof x === 'object' && x !== null && !Array.isArray(x);
const ANNOTATIONS = new Set(['nullable', 'description', 'default', 'deprecated', 'example']);

/** OpenAPI 3.0 schema to draft-07 JSON Schema; `closed` refuses undeclared properties. */
function convert(node: Json, closed: boolean): Json {
  if (Array.isArray(node)) return node.map((n) => convert(n, closed));
  if (!isSchema(node)) return node;
  const out: Schema = {};
  for (const [key, value] of Object.entries(node)) {
    if (key === 'example' || key === 'nullable') continue;
    if (key === '$ref' && typeof value === 'string') out[key] = value.replace('#/components/schemas/', '#/definitions/');
    else if (key === 'properties' && isSchema(value)) {
      out[key] = Object.fromEntries(Object.entries(value).map(([name, s]) => [name, convert(s, closed)]));
    } else out[key] = convert(value, closed);
  }
  if (node['nullable'] === true) {
    if (node['type'] === undefined) {
      // The only shape in the document: `{ nullable: true }` alone, an `anyOf` branch meaning null.
      if (!Object.keys(node).every((k) => ANNOTATIONS.has(k)))
        throw new Error(`nullable without type: ${JSON.stringify(node).slice(0, 200)}`);
      return { ...out, type: 'null' };
    }
    out['type'] = [node['type'] as string, 'null'];
    if (Array.isArray(out['enum'])) out['enum'] = [...out['enum'], null];
  }
  if (closed && isSchema(node['properties']) && node['additionalProperties'] === undefined) out['additionalProperties'] = false;
  return out;
}

const within = (min: number, max: number) => (n: number) => Number.isInteger(n) && n >= min && n <= max;
const F32_MAX = 3.4028234663852886e38;

function validatorFor(spec: OpenApi, closed: boolean) {
  const ajv = new Ajv({ strict: true, strictTypes: false, strictTuples: false, allowUnionTypes: true, allErrors: false });
  ajv.addFormat('uint', { type: 'number', validate: within(0, Number.MAX_SAFE_INTEGER) });
  ajv.addFormat('uint64', { type: 'number', validate: within(0, Number.MAX_SAFE_INTEGER) });
  ajv.addFormat('uint32', { type: 'number', validate: within(0, 2 ** 32 - 1) });
  ajv.addFormat('uint8', { type: 'number', validate: within(0, 255) });
  ajv.addFormat('int64', { type: 'number', validate: within(Number.MIN_SAFE_INTEGER, Number.MAX_SAFE_INTEGER) });
  ajv.addFormat('float', { type: 'number', validate: (n: number) => Number.isFinite(n) && Math.abs(n) <= F32_MAX });
  ajv.addFormat('double', { type: 'number', validate: (n: number) => Number.isFinite(n) });
  ajv.addFormat('uuid', /^[0-9a-f]{8}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{12}$/i);
  ajv.addFormat(
    'date-time',
    (s: string) => /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)$/i.test(s) && !Number.isNaN(Date.parse(s)),
  );
  ajv.addFormat('partial-date-time', (s: string) => !Number.isNaN(Date.parse(s)));
  ajv.addFormat('uri', (s: string) => URL.canParse(s));

  // One schema document: every component schema, plus each operation's inline schemas.
  const definitions: Record<string, Json> = {};
  for (const [name, schema] of Object.entries(spec.components.schemas)) definitions[name] = convert(schema, closed);
  for (const ops of Object.values(spec.paths)) {
    for (const op of Object.values(ops)) {
      const body = op.requestBody?.content['application/json']?.schema;
      if (body) definitions[`${op.operationId}:request`] = convert(body, closed);
      for (const [status, response] of Object.entries(op.responses)) {
        const schema = response.content?.['application/json']?.schema;
        if (schema) definitions[`${op.operationId}:${status}`] = convert(schema, closed);
      }
      for (const p of op.parameters ?? []) definitions[`${op.operationId}:${p.in}:${p.name}`] = convert(p.schema, closed);
    }
  }
  ajv.addSchema({ $id: 'qdrant', definitions }, 'qdrant');
  const cache = new Map<string, ValidateFunction>();
  return {
    names: Object.keys(definitions),
    get(name: string): ValidateFunction {
      let v = cache.get(name);
      if (!v) {
        const got = ajv.getSchema(`qdrant#/definitions/${name.replace(/~/g, '~0').replace(/\//g, '~1')}`);
        if (!got) throw new Error(`no schema ${name}`);
        cache.set(name, (v = got));
      }
      return v;
    },
    /** null when valid, else Ajv's errors as text. */
    check(name: string, data: unknown): string | null {
      const v = this.get(name);
      return v(data) ? null : ajv.errorsText(v.errors, { dataVar: name });
    },
  };
}

/** The operation of a request: the path template that matches with the fewest parameters. */
function operationOf(spec: OpenApi, method: string, path: string): Operation {
  const matches = Object.entries(spec.paths)
    .filter(([template, ops]) => ops[method.toLowerCase()] && new RegExp(`^${template.replace(/\{[^}]+\}/g, '[^/]+')}$`).test(path))
    .sort(([a], [b]) => (a.match(/\{/g)?.length ?? 0) - (b.match(/\{/g)?.length ?? 0));
  const found = matches[0]?.[1][method.toLowerCase()];
  if (!found) throw new Error(`no operation for ${method} ${path} in the document`);
  return found;
}

function responseSchemaName(op: Operation, status: number): string {
  const keys = Object.keys(op.responses);
  const key = keys.includes(String(status)) ? String(status) : status >= 400 && status < 500 && keys.includes('4XX') ? '4XX' : 'default';
  if (!op.responses[key]?.content?.['application/json']) throw new Error(`${op.operationId}: no JSON schema for HTTP ${status}`);
  return `${op.operationId}:${key}`;
}

const suite = present ? describe : describe.skip;
if (!present) console.warn(`skipped: ${SPEC.pathname} is absent (this tier needs ../shared/contracts)`);

/** What the client says on the console when an API key goes over plain http (every store here). */
const PLAIN_HTTP_KEY = 'Api key is used with unsecure connection.';

suite("the Qdrant store against Qdrant 1.19's OpenAPI document", () => {
  let spec: OpenApi;
  let closed: ReturnType<typeof validatorFor>;
  let loose: ReturnType<typeof validatorFor>;
  let fake: QdrantFake;
  let requests: RecordedRequest[];
  let responses: RecordedResponse[];
  let warn: ReturnType<typeof jest.spyOn>;

  beforeAll(async () => {
    warn = jest.spyOn(console, 'warn').mockImplementation(() => {});
    spec = JSON.parse(readFileSync(SPEC, 'utf8')) as OpenApi;
    closed = validatorFor(spec, true);
    loose = validatorFor(spec, false);
    fake = await startQdrantFake({ apiKey: 'k' });

    // Everything the store sends, successes and Qdrant's errors alike.
    const dense = { model: 'nomic-ai/nomic-embed-text-v1.5', dimensions: 4 };
    const opts = { url: fake.url, apiKey: 'k', shardNumber: 2, replicationFactor: 2, writeConsistencyFactor: 1, retry: { attempts: 1 } };
    const hybrid = createQdrantStore({ ...opts, collection: collectionFor('chunks', dense) });
    await hybrid.ensureReady(dense);
    await createQdrantStore({ ...opts, collection: collectionFor('chunks', dense) }).ensureReady(dense);
    const lexical = createQdrantStore({ ...opts, collection: 'chunks' });
    await lexical.ensureReady(null);
    fake.fail({ path: '/collections/chunks/exists', status: 200, body: { result: { exists: false }, status: 'ok', time: 0.000012 } });
    await createQdrantStore({ ...opts, collection: 'chunks' }).ensureReady(null); // creation race: 409

    await hybrid.replaceDocument('c1', 'd1', [
      chunk('c1', 'd1', 0, sv({ 1: 1.5, 4_000_000_000: 0.2 }), [1, 0, 0, 0]),
      chunk('c1', 'd1', 1, sv({}), [0, 1, 0, 0]),
    ]);
    await hybrid.replaceDocument('c2', 'd2', [chunk('c2', 'd2', 0, sv({ 1: 1 }), [1, 0, 0, 0])]);
    await lexical.replaceDocument('c1', 'd1', [chunk('c1', 'd1', 0, sv({ 1: 1 }))]);
    await hybrid.search({ courseId: 'c1', sparse: sv({ 1: 1 }), dense: [1, 0, 0, 0], limit: 5 });
    await hybrid.search({ courseId: 'c1', sparse: sv({ 1: 1 }), dense: [1, 0, 0, 0], documentIds: ['d1', 'd9'], limit: 5 });
    await hybrid.search({ courseId: 'c1', sparse: sv({}), dense: [1, 0, 0, 0], limit: 5 });
    await lexical.search({ courseId: 'c1', sparse: sv({ 1: 1 }), documentIds: ['d1'], limit: 5 });
    await hybrid.deleteDocument('c1', 'd1');
    await expect(hybrid.replaceDocument('c1', 'd1', [chunk('c1', 'd1', 0, sv({ 1: 1 }), [1, 0])])).rejects.toThrow(/HTTP 400/);
    await expect(
      createQdrantStore({ ...opts, collection: 'missing' }).search({ courseId: 'c1', sparse: sv({ 1: 1 }), limit: 1 }),
    ).rejects.toThrow(/HTTP 404/);

    requests = [...fake.requests];
    responses = [...fake.responses];
  });
  afterAll(async () => {
    warn?.mockRestore();
    await fake?.close();
  });

  it('is an OpenAPI 3.0 document whose every schema compiles, as written and closed', () => {
    expect(spec.openapi).toMatch(/^3\.0\./);
    for (const v of [loose, closed]) for (const name of v.names) expect(v.get(name)).toBeInstanceOf(Function);
    expect(closed.names.length).toBeGreaterThan(400);
  });

  it('every request body matches its operation, objects closed to undeclared fields', () => {
    expect(requests.length).toBeGreaterThanOrEqual(20);
    for (const r of requests) {
      const op = operationOf(spec, r.method, r.path);
      const request = `${r.method} ${r.path}: ${JSON.stringify(r.body)?.slice(0, 300)}`;
      if (op.requestBody === undefined) {
        // `${op.operationId} takes no body`
        expect({ request, body: r.body }).toEqual({ request, body: undefined });
        continue;
      }
      expect({ request, errors: closed.check(`${op.operationId}:request`, r.body) }).toEqual({ request, errors: null });
    }
  });

  it('every query parameter is one the operation declares, with a valid value', () => {
    for (const r of requests) {
      const op = operationOf(spec, r.method, r.path);
      for (const [name, raw] of Object.entries(r.query)) {
        const key = `${op.operationId}:query:${name}`;
        const param = op.parameters?.find((p) => p.in === 'query' && p.name === name);
        expect({ key, declared: param !== undefined }).toEqual({ key, declared: true });
        let parsed: unknown = raw;
        try {
          parsed = JSON.parse(raw);
        } catch {
          // a plain string
        }
        const errors = closed.check(key, raw) === null ? null : closed.check(key, parsed);
        expect({ key, raw, errors }).toEqual({ key, raw, errors: null });
      }
    }
  });

  it("every response of the fake matches the operation's response schema, errors included", () => {
    const statuses = new Set(responses.map((r) => r.status));
    expect([...statuses].sort()).toEqual([200, 400, 404, 409]);
    for (const r of responses) {
      const op = operationOf(spec, r.method, r.path);
      const name = responseSchemaName(op, r.status);
      const response = `${r.method} ${r.path} ${r.status}: ${JSON.stringify(r.body).slice(0, 300)}`;
      expect({ response, errors: closed.check(name, r.body) }).toEqual({ response, errors: null });
      // The document marks no envelope field as required; Qdrant always sends these.
      if (r.status === 200) expect(Object.keys(r.body as object)).toEqual(expect.arrayContaining(['result', 'status', 'time']));
      else expect(typeof (r.body as { status: { error: unknown } }).status.error).toBe('string');
    }
  });

  it('covers every operation the store uses', () => {
    const seen = new Set(requests.map((r) => operationOf(spec, r.method, r.path).operationId));
    expect([...seen].sort()).toEqual([
      'collection_exists',
      'create_collection',
      'create_field_index',
      'delete_points',
      'get_collection',
      'query_points',
      'upsert_points',
    ]);
  });

  it('sends the hybrid query the document describes: two prefetches, parametrised RRF, payload selection', () => {
    const query = requests.find((r) => r.path.endsWith('/points/query') && (r.body as { prefetch?: unknown }).prefetch);
    expect(query).toBeDefined();
    const body = query!.body as { prefetch: { using: string }[]; query: unknown; with_payload: unknown };
    expect(body.prefetch.map((p) => p.using)).toEqual(['bm25', 'dense']);
    expect(closed.check('RrfQuery', body.query)).toBeNull();
    expect(body.with_payload).toEqual(['chunk_id']);
    expect(closed.check('ExtendedPointId', pointIdFor('d1', 0))).toBeNull();
  });

  it('catches a misspelt field, a wrong type, a bad enum or an out-of-range number', () => {
    const wrongs: [string, unknown][] = [
      ['query_points:request', { prefetch: [{ usingg: 'bm25' }] }],
      ['query_points:request', { query: { fusion: 'rrf' }, limitt: 3 }],
      ['query_points:request', { query: { fusion: 'rff' }, prefetch: [] }],
      ['query_points:request', { query: { rrf: { k: 0 } }, prefetch: [] }],
      ['query_points:request', { query: { indices: [-1], values: [1] }, using: 'bm25' }],
      ['query_points:request', { query: { indices: [1], values: [1] }, limit: '10' }],
      ['query_points:request', { filter: { must: [{ key: 'course_id', match: { value: 'c1' } }], shoud: [] } }],
      ['query_points:request', { filter: { must: [{ key: 'course_id', mach: { value: 'c1' } }] } }],
      ['query_points:request', { filter: { must: [{ key: 'document_id', match: { any: ['d1', 'd1'] } }] } }],
      ['upsert_points:request', { points: [{ id: 'd1:0', vector: { bm25: { indices: [1], values: [1] } } }] }],
      ['upsert_points:request', { points: [{ id: pointIdFor('d1', 0), vectors: { bm25: { indices: [1], values: [1] } } }] }],
      ['create_collection:request', { sparse_vectors: { bm25: { modifier: 'IDF' } } }],
      ['create_collection:request', { vectors: { dense: { size: 4, distance: 'cosine' } } }],
      ['create_collection:request', { shard_number: 0 }],
      ['create_field_index:request', { field_name: 'course_id', field_schema: { type: 'keyword', is_tennant: true } }],
      ['delete_points:request', { filter: { must: [] }, wait: true }],
      ['query_points:200', { result: { point: [] }, status: 'ok', time: 0 }],
      ['query_points:200', { result: { points: [{ id: 'x', version: 0, score: 1 }] }, status: 'ok', time: 0 }],
      ['upsert_points:200', { result: { operation_id: 1, status: 'done' }, status: 'ok', time: 0 }],
      ['collection_exists:200', { result: { exist: true }, status: 'ok', time: 0 }],
      ['query_points:4XX', { status: { message: 'x' }, time: 0 }],
    ];
    for (const [name, data] of wrongs) {
      expect({ name, data, accepted: closed.check(name, data) === null }).toEqual({ name, data, accepted: false });
    }
  });

  it('enforces additionalProperties: false where the document sets it, and closes the rest itself', () => {
    // Filter is closed by the document: a misspelt clause fails even as written.
    expect(loose.check('query_points:request', { filter: { must: [], shoud: [] } })).not.toBeNull();
    // Prefetch is not: as written, the document (like Qdrant, which ignores unknown fields) lets `usingg` through.
    expect(loose.check('query_points:request', { prefetch: [{ usingg: 'bm25' }] })).toBeNull();
    expect(closed.check('query_points:request', { prefetch: [{ usingg: 'bm25' }] })).not.toBeNull();
    // Maps stay open where the document makes them maps (vector names, payload).
    expect(
      closed.check('create_collection:request', { vectors: { anything: { size: 3, distance: 'Dot' } }, sparse_vectors: { s: {} } }),
    ).toBeNull();
    expect(closed.check('upsert_points:request', { points: [{ id: 7, vector: { v: [1] }, payload: { any: { thing: [1] } } }] })).toBeNull();
  });

  it('a misspelt field in a body the client sends still fails validation, and the fake refuses it', async () => {
    const client = new QdrantClient({ url: fake.url, apiKey: 'k', checkCompatibility: false });
    const sparse = { indices: [1], values: [1] };
    const hybrid = (prefetch: object) => ({ prefetch: [prefetch], query: { rrf: { k: 61 } }, limit: 5 });
    fake.clearLog();

    // The client copies nested objects as they are: a misspelt prefetch field is sent.
    await expect(
      client.query('chunks', hybrid({ query: sparse, usingg: 'bm25', limit: 5 }) as unknown as Schemas['QueryRequest']),
    ).rejects.toMatchObject({ status: 400, data: { status: { error: expect.stringMatching(/unknown field `usingg` in prefetch/) } } });
    const sent = fake.requests[0]!;
    expect(`${sent.method} ${sent.path}`).toBe('POST /collections/chunks/points/query');
    expect(sent.body).toEqual(hybrid({ query: sparse, usingg: 'bm25', limit: 5 }));
    expect(closed.check('query_points:request', sent.body)).not.toBeNull();
    // The document as written lets it through (as Qdrant would, ignoring it): closing objects is what catches it.
    expect(loose.check('query_points:request', sent.body)).toBeNull();
    // Spelt right, the same request is valid and answered.
    await client.query('chunks', hybrid({ query: sparse, using: 'bm25', limit: 5 }) as Schemas['QueryRequest']);
    expect(closed.check('query_points:request', fake.requests[1]!.body)).toBeNull();
    expect(fake.responses[1]!.status).toBe(200);

    // A misspelt top-level field never leaves the client's methods (they pick the fields they know)...
    fake.clearLog();
    await client.query('chunks', { query: sparse, using: 'bm25', limitt: 3 } as unknown as Schemas['QueryRequest']);
    expect(fake.requests[0]!.body).toEqual({ query: sparse, using: 'bm25' });
    // ...but its generated API sends it, and the closed check catches it there too.
    fake.clearLog();
    await expect(
      client.api().queryPoints({ collection_name: 'chunks', query: sparse, using: 'bm25', limitt: 3 } as never),
    ).rejects.toMatchObject({ status: 400 });
    expect(fake.requests[0]!.body).toEqual({ query: sparse, using: 'bm25', limitt: 3 });
    expect(closed.check('query_points:request', fake.requests[0]!.body)).not.toBeNull();
  });

  it("answers the client's version check (GET /) as the document says, so the client does not warn", async () => {
    fake.clearLog();
    const client = new QdrantClient({ url: fake.url, apiKey: 'k' }); // checkCompatibility on: it sends GET / now
    expect(await client.versionInfo()).toEqual(FAKE_VERSION);
    for (let i = 0; i < 100 && fake.responses.length < 2; i++) await new Promise((resolve) => setTimeout(resolve, 10));
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect(fake.requests.map((r) => `${r.method} ${r.path} ${String(r.body)}`)).toEqual(['GET / undefined', 'GET / undefined']);
    for (const r of fake.responses) {
      const op = operationOf(spec, r.method, r.path);
      expect(op.operationId).toBe('root');
      expect(closed.check(responseSchemaName(op, r.status), r.body)).toBeNull();
    }
    // The only console output of the client in this file: the API key over plain http (no version warning).
    expect(warn).toHaveBeenCalled();
    for (const args of warn.mock.calls) expect(args).toEqual([PLAIN_HTTP_KEY]);
  });
});
