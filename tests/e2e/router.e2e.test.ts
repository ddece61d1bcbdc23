import assert from 'node:assert/strict';
import { copyFileSync, mkdtempSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import pg from 'pg';
import { composeFromConfig, subgraphSdl } from '../../scripts/lib/compose.js';
import { stopService } from '../../scripts/lib/stack.js';
import { testInfra } from '../support/infra.js';
import { startExtraRouter, startTestStack, type TestStack } from '../support/stack.js';

const STUDENT_LIMIT = 5;

describe('router', () => {
  let stack: TestStack;
  let supergraphPath: string;
  before(async () => {
    const dir = mkdtempSync(join(tmpdir(), 'supergraph-'));
    supergraphPath = join(dir, 'supergraph.graphql');
    copyFileSync('schema/supergraph.graphql', supergraphPath);
    stack = await startTestStack({
      router: {
        SUPERGRAPH_PATH: supergraphPath,
        SUPERGRAPH_POLL_MS: '100',
        RATE_LIMIT_STUDENT: String(STUDENT_LIMIT),
        RATE_LIMIT_WINDOW_S: '60',
        SANDBOX_DEV_TOKEN: 'sandbox-token-xyz',
      },
      subgraphs: { DRAIN_DELAY_MS: '300' },
    });
  });
  after(() => stack?.stop());

  const extraRouter = (env: Record<string, string>) => startExtraRouter(stack, 'router-2', env);

  it('in production: no introspection, no Sandbox page, still serves queries', async () => {
    const router = await extraRouter({ NODE_ENV: 'production' });
    try {
      const token = await stack.token(stack.user('prod'), 'TEACHER');
      const post = (query: string) =>
        fetch(router.url, {
          method: 'POST',
          headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
          body: JSON.stringify({ query }),
        }).then(async (r) => ({
          status: r.status,
          body: (await r.json()) as { data?: unknown; errors?: { extensions?: { code?: string } }[] },
        }));
      const introspection = await post('{ __schema { queryType { name } } }');
      assert.equal(introspection.body.errors?.[0]?.extensions?.code, 'GRAPHQL_VALIDATION_FAILED');
      const page = await fetch(router.url, { headers: { accept: 'text/html' } });
      assert.doesNotMatch(await page.text(), /EmbeddedSandbox/);
      assert.deepEqual((await post('{ myCourses { id } }')).body, { data: { myCourses: [] } });
    } finally {
      await stopService(router);
    }
  });

  it('refuses the request after the limit with 429, RATE_LIMITED and Retry-After, per user', async () => {
    const asStudent = await stack.as(stack.user('busy'), 'STUDENT');
    for (let i = 0; i < STUDENT_LIMIT; i++) assert.equal((await asStudent('{ myCourses { id } }')).status, 200, `request ${i + 1}`);
    const refused = await asStudent('{ myCourses { id } }');
    assert.equal(refused.status, 429);
    assert.equal(refused.body.errors?.[0]?.extensions?.['code'], 'RATE_LIMITED');
    const retryAfter = Number(refused.headers.get('retry-after'));
    assert.ok(retryAfter >= 1 && retryAfter <= 60, `Retry-After ${retryAfter}`);
    const asOther = await stack.as(stack.user('calm'), 'STUDENT');
    assert.equal((await asOther('{ myCourses { id } }')).status, 200, 'another user has their own budget');
    const teacher = await stack.as(stack.user('busy-teacher'), 'TEACHER');
    for (let i = 0; i < STUDENT_LIMIT + 1; i++)
      assert.equal((await teacher('{ myCourses { id } }')).status, 200, 'teachers have a larger budget');
    const metrics = await (await fetch(stack.routerUrl.replace('/graphql', '/metrics'))).text();
    assert.match(metrics, /rate_limit_rejections_total\{[^}]*role="STUDENT"[^}]*\} [1-9]/);
  });

  it('serves /health, /ready and /metrics on the router and every subgraph', async () => {
    for (const service of Object.values(stack.services)) {
      const base = service.url.replace('/graphql', '');
      assert.equal((await fetch(`${base}/health`)).status, 200, `${service.name} health`);
      const ready = await fetch(`${base}/ready`);
      assert.equal(ready.status, 200, `${service.name} ready`);
      const metrics = await (await fetch(`${base}/metrics`)).text();
      assert.match(metrics, /process_cpu_seconds_total/, `${service.name} process metrics`);
    }
    const asTeacher = await stack.as(stack.user('metered'), 'TEACHER');
    assert.equal((await stack.gql('{ myCourses { id } }', {}, { headers: { authorization: 'Bearer not.a.jwt' } })).status, 401);
    await asTeacher('query MeteredOp { myCourses { id } }');
    const routerMetrics = await (await fetch(stack.routerUrl.replace('/graphql', '/metrics'))).text();
    assert.match(routerMetrics, /graphql_requests_total\{[^}]*operation="MeteredOp",outcome="success"[^}]*\} 1/);
    assert.match(routerMetrics, /graphql_request_duration_seconds_bucket\{le="\+Inf"[^}]*operation="MeteredOp"[^}]*\} 1/);
    assert.match(routerMetrics, /subgraph_fetch_duration_seconds_count\{[^}]*subgraph="rag"[^}]*outcome="success"[^}]*\} [1-9]/);
    assert.match(routerMetrics, /auth_failures_total\{[^}]*reason="(MALFORMED_TOKEN|BAD_SIGNATURE|ALGORITHM_NOT_ALLOWED)"[^}]*\} [1-9]/);
  });

  it('serves the Sandbox landing page configured for this endpoint, and introspection in development', async () => {
    const page = await fetch(stack.routerUrl, { headers: { accept: 'text/html' } });
    assert.equal(page.status, 200);
    const html = await page.text();
    assert.match(html, /EmbeddedSandbox/);
    assert.match(html, /initialEndpoint/);
    assert.match(html, /Bearer sandbox-token-xyz/, 'the development token is pre-filled');
    const token = await stack.token(stack.user('explorer'), 'STUDENT');
    const introspection = await stack.gql<{ __schema: { queryType: { name: string }; types: { name: string }[] } }>(
      '{ __schema { queryType { name } types { name } } }',
      {},
      { token },
    );
    assert.equal(introspection.body.data?.__schema.queryType.name, 'Query');
    assert.ok(introspection.body.data?.__schema.types.some((t) => t.name === 'Course'));
    const preflight = await fetch(stack.routerUrl, {
      method: 'OPTIONS',
      headers: { origin: 'https://studio.apollographql.com', 'access-control-request-method': 'POST' },
    });
    assert.equal(preflight.headers.get('access-control-allow-origin'), 'https://studio.apollographql.com');
  });

  it('answers malformed and oversized bodies with a GraphQL error, not a crash', async () => {
    const token = await stack.token(stack.user('sloppy'), 'TEACHER');
    const bad = await fetch(stack.routerUrl, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
      body: '{"query": ',
    });
    assert.equal(bad.status, 400);
    assert.equal(((await bad.json()) as { errors: { extensions: { code: string } }[] }).errors[0]?.extensions.code, 'BAD_USER_INPUT');
    const huge = await fetch(stack.routerUrl, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
      body: JSON.stringify({ query: `{ myCourses { id } } #${'x'.repeat(1_100_000)}` }),
    });
    assert.equal(huge.status, 413);
  });

  it('reloads an edited supergraph without dropping requests', async () => {
    const token = await stack.token(stack.user('reload'), 'TEACHER');
    const ask = () =>
      stack.gql<{ __type: { fields: { name: string }[] } | null }>('{ __type(name: "Course") { fields { name } } }', {}, { token });
    assert.ok(!(await ask()).body.data?.__type?.fields.some((f) => f.name === 'reloadProbe'));

    let stop = false;
    const statuses: number[] = [];
    const load = (async () => {
      while (!stop) statuses.push((await stack.gql('{ myCourses { id } }', {}, { token })).status);
    })();
    const sdl = subgraphSdl('schema/supergraph.yaml', 'rag').replace(
      'type Course @key(fields: "id") {',
      'type Course @key(fields: "id") {\n  reloadProbe: String',
    );
    const { supergraphSdl } = composeFromConfig('schema/supergraph.yaml', { rag: sdl });
    writeFileSync(`${supergraphPath}.tmp`, supergraphSdl);
    renameSync(`${supergraphPath}.tmp`, supergraphPath);

    let reloaded = false;
    for (let i = 0; i < 50 && !reloaded; i++) {
      await new Promise((r) => setTimeout(r, 100));
      reloaded = !!(await ask()).body.data?.__type?.fields.some((f) => f.name === 'reloadProbe');
    }
    await new Promise((r) => setTimeout(r, 200));
    stop = true;
    await load;
    assert.ok(reloaded, 'the new field appears');
    assert.ok(statuses.length > 5, `requests ran during the reload (${statuses.length})`);
    assert.deepEqual([...new Set(statuses)], [200], 'no request failed during the reload');
    writeFileSync(supergraphPath, readFileSync('schema/supergraph.graphql', 'utf8'));
  });

  it('on SIGTERM finishes a slow request, fails readiness meanwhile, then exits 0', async () => {
    // A second router, so the shared stack stays up; the slow request is a real one held by a row lock.
    const infra = testInfra();
    const router = await extraRouter({ DRAIN_DELAY_MS: '1500' });
    const base = router.url.replace('/graphql', '');
    const asTeacher = await stack.as(stack.user('slow'), 'TEACHER');
    const { id } = (await asTeacher<{ createCourse: { id: string } }>('mutation { createCourse(input: { title: "Slow" }) { id } }')).body
      .data!.createCourse;
    const token = await stack.token(stack.user('slow'), 'TEACHER');

    const db = new pg.Client({ connectionString: infra.DIRECT_DATABASE_URL });
    await db.connect();
    await db.query('BEGIN');
    await db.query('LOCK TABLE "Course" IN ACCESS EXCLUSIVE MODE');
    const slow = fetch(router.url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
      body: JSON.stringify({ query: 'query { course(id: "' + id + '") { title } }' }),
    });
    await new Promise((r) => setTimeout(r, 300));
    router.child.kill('SIGTERM');
    await new Promise((r) => setTimeout(r, 300));
    const ready = await fetch(`${base}/ready`);
    assert.equal(ready.status, 503, 'readiness fails while draining');
    assert.equal((await fetch(`${base}/health`)).status, 200, 'still alive');
    await new Promise((r) => setTimeout(r, 1500));
    await db.query('ROLLBACK');
    await db.end();
    const res = await slow;
    assert.equal(res.status, 200);
    assert.deepEqual(((await res.json()) as { data: unknown }).data, { course: { title: 'Slow' } });
    assert.equal(await router.exited, 0);
    await stopService(router);
  });
});
