import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { copyFileSync, mkdtempSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { composeFromConfig, subgraphSdl } from '../../scripts/lib/compose.js';
import { stopService } from '../../scripts/lib/stack.js';
import { testInfra } from '../support/infra.js';
import { startExtraRouter, startTestStack, type TestStack } from '../support/stack.js';

const STUDENT_LIMIT = 5;

describe('router', () => {
  let stack: TestStack;
  let supergraphPath: string;
  beforeAll(async () => {
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
  afterAll(async () => {
    await stack?.stop();
  });

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
      expect(introspection.body.errors?.[0]?.extensions?.code).toBe('GRAPHQL_VALIDATION_FAILED');
      const page = await fetch(router.url, { headers: { accept: 'text/html' } });
      // No page at all: the request is a GraphQL GET like any other, refused without a token, never HTML.
      expect(page.status).toBe(401);
      expect(page.headers.get('content-type')).toMatch(/^application\/json/);
      expect(await page.text()).not.toMatch(/EmbeddedSandbox/);
      expect((await post('{ myCourses { id } }')).body).toEqual({ data: { myCourses: [] } });
    } finally {
      await stopService(router);
    }
  });

  it('refuses the request after the limit with 429, RATE_LIMITED and Retry-After, per user', async () => {
    const asStudent = await stack.as(stack.user('busy'), 'STUDENT');
    for (let i = 0; i < STUDENT_LIMIT; i++) {
      expect({ request: i + 1, status: (await asStudent('{ myCourses { id } }')).status }).toEqual({ request: i + 1, status: 200 });
    }
    const refused = await asStudent('{ myCourses { id } }');
    expect(refused.status).toBe(429);
    expect(refused.body.errors?.[0]?.extensions?.['code']).toBe('RATE_LIMITED');
    const retryAfter = Number(refused.headers.get('retry-after'));
    expect(retryAfter).toBeGreaterThanOrEqual(1);
    expect(retryAfter).toBeLessThanOrEqual(60);
    // Another user has their own budget.
    const asOther = await stack.as(stack.user('calm'), 'STUDENT');
    expect((await asOther('{ myCourses { id } }')).status).toBe(200);
    // Teachers have a larger budget.
    const teacher = await stack.as(stack.user('busy-teacher'), 'TEACHER');
    for (let i = 0; i < STUDENT_LIMIT + 1; i++) {
      expect({ request: i + 1, status: (await teacher('{ myCourses { id } }')).status }).toEqual({ request: i + 1, status: 200 });
    }
    const metrics = await (await fetch(`${stack.services['router']!.opsUrl}/metrics`)).text();
    expect(metrics).toMatch(/rate_limit_rejections_total\{[^}]*role="STUDENT"[^}]*\} [1-9]/);
  });

  it('serves /health, /ready and /metrics on the router and every subgraph', async () => {
    for (const service of Object.values(stack.services)) {
      // /health on the service's own port; /ready with details and /metrics where they are served (the router's internal port).
      const base = service.url.replace('/graphql', '');
      const health = (await fetch(`${base}/health`)).status;
      const ready = await fetch(`${service.opsUrl}/ready`);
      const metrics = await (await fetch(`${service.opsUrl}/metrics`)).text();
      expect({
        service: service.name,
        health,
        ready: ready.status,
        checks: Object.values(((await ready.json()) as { checks: Record<string, string> }).checks).every((c) => c === 'ok'),
        processMetrics: /process_cpu_seconds_total/.test(metrics),
      }).toEqual({
        service: service.name,
        health: 200,
        ready: 200,
        checks: true,
        processMetrics: true,
      });
    }
    // The router's public port: readiness as a status only, no metrics.
    const publicBase = stack.routerUrl.replace('/graphql', '');
    expect(await (await fetch(`${publicBase}/ready`)).json()).toEqual({ status: 'ready' });
    expect((await fetch(`${publicBase}/metrics`)).status).toBe(404);
    const asTeacher = await stack.as(stack.user('metered'), 'TEACHER');
    expect((await stack.gql('{ myCourses { id } }', {}, { headers: { authorization: 'Bearer not.a.jwt' } })).status).toBe(401);
    await asTeacher('query MeteredOp { myCourses { id } }');
    const routerMetrics = await (await fetch(`${stack.services['router']!.opsUrl}/metrics`)).text();
    expect(routerMetrics).toMatch(/graphql_requests_total\{[^}]*operation="MeteredOp",outcome="success"[^}]*\} 1/);
    expect(routerMetrics).toMatch(/graphql_request_duration_seconds_bucket\{le="\+Inf"[^}]*operation="MeteredOp"[^}]*\} 1/);
    expect(routerMetrics).toMatch(/subgraph_fetch_duration_seconds_count\{[^}]*subgraph="rag"[^}]*outcome="success"[^}]*\} [1-9]/);
    expect(routerMetrics).toMatch(/auth_failures_total\{[^}]*reason="(MALFORMED_TOKEN|BAD_SIGNATURE|ALGORITHM_NOT_ALLOWED)"[^}]*\} [1-9]/);
  });

  it('serves the Sandbox landing page configured for this endpoint, and introspection in development', async () => {
    const page = await fetch(stack.routerUrl, { headers: { accept: 'text/html' } });
    expect(page.status).toBe(200);
    const html = await page.text();
    expect(html).toMatch(/EmbeddedSandbox/);
    expect(html).toMatch(/initialEndpoint/);
    // The development token is pre-filled.
    expect(html).toMatch(/Bearer sandbox-token-xyz/);
    const token = await stack.token(stack.user('explorer'), 'STUDENT');
    const introspection = await stack.gql<{ __schema: { queryType: { name: string }; types: { name: string }[] } }>(
      '{ __schema { queryType { name } types { name } } }',
      {},
      { token },
    );
    expect(introspection.body.data?.__schema.queryType.name).toBe('Query');
    expect(introspection.body.data?.__schema.types.map((t) => t.name)).toContain('Course');
    const preflight = await fetch(stack.routerUrl, {
      method: 'OPTIONS',
      headers: { origin: 'https://studio.apollographql.com', 'access-control-request-method': 'POST' },
    });
    expect(preflight.headers.get('access-control-allow-origin')).toBe('https://studio.apollographql.com');
  });

  it('answers malformed and oversized bodies with a GraphQL error, not a crash', async () => {
    const token = await stack.token(stack.user('sloppy'), 'TEACHER');
    const bad = await fetch(stack.routerUrl, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
      body: '{"query": ',
    });
    expect(bad.status).toBe(400);
    expect(((await bad.json()) as { errors: { extensions: { code: string } }[] }).errors[0]?.extensions.code).toBe('BAD_USER_INPUT');
    const huge = await fetch(stack.routerUrl, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
      body: JSON.stringify({ query: `{ myCourses { id } } #${'x'.repeat(6_500_000)}` }),
    });
    expect(huge.status).toBe(413);
  });

  it('reloads an edited supergraph without dropping requests', async () => {
    const token = await stack.token(stack.user('reload'), 'TEACHER');
    const ask = () =>
      stack.gql<{ __type: { fields: { name: string }[] } | null }>('{ __type(name: "Course") { fields { name } } }', {}, { token });
    const fieldsBefore = (await ask()).body.data?.__type?.fields.map((f) => f.name);
    expect(fieldsBefore).toContain('id');
    expect(fieldsBefore).not.toContain('reloadProbe');

    let stop = false;
    const statuses: number[] = [];
    const load = (async () => {
      while (!stop) statuses.push((await stack.gql('{ myCourses { id } }', {}, { token })).status);
    })();
    let reloaded = false;
    try {
      const sdl = subgraphSdl('schema/supergraph.yaml', 'rag').replace(
        'type Course @key(fields: "id") {',
        'type Course @key(fields: "id") {\n  reloadProbe: String',
      );
      const { supergraphSdl } = composeFromConfig('schema/supergraph.yaml', { rag: sdl });
      writeFileSync(`${supergraphPath}.tmp`, supergraphSdl);
      renameSync(`${supergraphPath}.tmp`, supergraphPath);

      // The router polls the file every 100 ms; allow for a busy machine.
      const deadline = Date.now() + 20_000;
      while (!reloaded && Date.now() < deadline) {
        await new Promise((r) => setTimeout(r, 100));
        reloaded = !!(await ask()).body.data?.__type?.fields.some((f) => f.name === 'reloadProbe');
      }
      await new Promise((r) => setTimeout(r, 200));
    } finally {
      stop = true;
      await load;
    }
    try {
      // The new field appears; requests ran during the reload and none failed.
      expect(reloaded).toBe(true);
      expect(statuses.length).toBeGreaterThan(5);
      expect([...new Set(statuses)]).toEqual([200]);
    } finally {
      writeFileSync(supergraphPath, readFileSync('schema/supergraph.graphql', 'utf8'));
    }
  });

  it('on SIGTERM finishes a slow request, fails readiness meanwhile, then exits 0', async () => {
    // A second router, so the shared stack stays up; the slow request is a real one held by a row lock.
    const infra = testInfra();
    const router = await extraRouter({ DRAIN_DELAY_MS: '1500' });
    const db = new pg.Client({ connectionString: infra.DIRECT_DATABASE_URL });
    let locked = false;
    try {
      const base = router.url.replace('/graphql', '');
      const asTeacher = await stack.as(stack.user('slow'), 'TEACHER');
      const { id } = (await asTeacher<{ createCourse: { id: string } }>('mutation { createCourse(input: { title: "Slow" }) { id } }')).body
        .data!.createCourse;
      const token = await stack.token(stack.user('slow'), 'TEACHER');

      await db.connect();
      await db.query('BEGIN');
      await db.query('LOCK TABLE "Course" IN ACCESS EXCLUSIVE MODE');
      locked = true;
      const slow = fetch(router.url, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
        body: JSON.stringify({ query: 'query { course(id: "' + id + '") { title } }' }),
      });
      slow.catch(() => {}); // awaited below; a failure before then must not go unhandled
      await new Promise((r) => setTimeout(r, 300));
      router.child.kill('SIGTERM');
      await new Promise((r) => setTimeout(r, 300));
      const ready = await fetch(`${base}/ready`);
      // Readiness fails while draining; the process is still alive.
      expect(ready.status).toBe(503);
      expect((await fetch(`${base}/health`)).status).toBe(200);
      await new Promise((r) => setTimeout(r, 1500));
      await db.query('ROLLBACK');
      locked = false;
      const res = await slow;
      expect(res.status).toBe(200);
      expect(((await res.json()) as { data: unknown }).data).toEqual({ course: { title: 'Slow' } });
      expect(await router.exited).toBe(0);
    } finally {
      // Never leave the table locked: other tests (and other people's) share this database.
      if (locked) await db.query('ROLLBACK').catch(() => {});
      await db.end().catch(() => {});
      await stopService(router);
    }
  });
});
