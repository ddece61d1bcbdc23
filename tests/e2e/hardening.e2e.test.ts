/**
 * The router in production (NODE_ENV=production), as a real process in front of the test stack's
 * subgraphs: query limits and cost, what it leaks (nothing: a chat subgraph in development mode
 * behind it answers with stack traces, a proxy in front of rag with internal messages), GET
 * authenticated like POST, the operational endpoints on their own port, tokens issued in the
 * future; then the graceful shutdown of the router and of a subgraph, both in production, on
 * SIGTERM. Row locks (never table locks) hold requests in flight: other tests share the database.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { SignJWT, importJWK } from 'jose';
import { createHash } from 'node:crypto';
import { createServer, request, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import pg from 'pg';
import { IdentityHeaders, type Role } from '../../lib/identity.js';
import { createAssertionSigner } from '../../lib/internal-auth.js';
import { startService, stopService, type ServiceProcess } from '../../scripts/lib/stack.js';
import { testInfra } from '../support/infra.js';
import { TEST_AUDIENCE, TEST_ISSUER } from '../support/keys.js';
import { logEntries, startExtraRouter, startTestStack, type TestStack } from '../support/stack.js';
import { subscribe } from '../support/ws.js';

type Body = {
  data?: Record<string, unknown> | null;
  errors?: { message: string; path?: unknown[]; extensions?: Record<string, unknown> }[];
};

/** A proxy in front of a subgraph that answers operations named Leaky* with internal details, as a broken subgraph in development mode would. */
async function startLeakyProxy(targetUrl: string) {
  const target = new URL(targetUrl);
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      let operationName = '';
      try {
        operationName = String((JSON.parse(body.toString('utf8')) as { operationName?: string }).operationName ?? '');
      } catch {}
      if (operationName.startsWith('Leaky')) {
        res.setHeader('content-type', 'application/json');
        res.end(
          JSON.stringify({
            data: null,
            errors: [
              {
                message: 'connect ECONNREFUSED 10.23.4.5:6432 (pool "rag", user aiteacher)',
                path: ['myCourses'],
                extensions: {
                  code: operationName.includes('Unknown') ? 'P1001' : 'INTERNAL_SERVER_ERROR',
                  stacktrace: ['Error: connect ECONNREFUSED 10.23.4.5:6432', '    at /srv/app/lib/db/client.ts:41:11'],
                  exception: { stacktrace: ['Error: connect ECONNREFUSED'] },
                },
              },
            ],
          }),
        );
        return;
      }
      const upstream = request(
        { host: target.hostname, port: target.port, method: req.method, path: req.url, headers: req.headers },
        (up) => {
          res.writeHead(up.statusCode ?? 502, up.headers);
          up.pipe(res);
        },
      );
      upstream.on('error', () => res.destroy());
      upstream.end(body);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/graphql`,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** The environment a subgraph of the test stack runs with. */
function subgraphEnv(stack: TestStack, extra: Record<string, string>) {
  const infra = testInfra();
  return {
    BLOB_DIR: stack.blobDir,
    HOST: '127.0.0.1',
    PORT: '0',
    LOG_LEVEL: 'info',
    LOG_FORMAT: 'json',
    DATABASE_URL: infra.DATABASE_URL,
    REDIS_URL: infra.REDIS_URL,
    INTERNAL_JWT_PUBLIC_JWK: JSON.stringify(stack.keys.internal.publicJwk),
    ...extra,
  };
}

async function call(url: string, init: RequestInit = {}) {
  const res = await fetch(url, init);
  const text = await res.text();
  let body: Body = {};
  try {
    body = JSON.parse(text) as Body;
  } catch {}
  return { status: res.status, headers: res.headers, text, body };
}

const post = (
  url: string,
  token: string | undefined,
  query: string,
  variables: Record<string, unknown> = {},
  headers: Record<string, string> = {},
) =>
  call(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}), ...headers },
    body: JSON.stringify({ query, variables }),
  });

/** The shutdown steps done, in the order they ran (lines may arrive out of order through a full pipe). */
const byStep = (entries: Record<string, unknown>[]) =>
  entries.filter((l) => l['msg'] === 'shutdown step done').sort((a, b) => Number(a['n']) - Number(b['n']));

const aliases = (n: number, field: string) => `{ ${Array.from({ length: n }, (_, i) => `a${i}: ${field}`).join(' ')} }`;
/** A query `depth` levels deep (as graphql-armor counts: the deepest leaf's level), through lists. */
const nested = (depth: number) => {
  let inner = 'id';
  for (let i = 0; i < depth - 2; i++) inner = i % 2 ? `course { ${inner} }` : `documents { ${inner} }`;
  return `{ myCourses { ${inner} } }`;
};
/** The same depth through single objects only: deep but cheap. */
const chain = (depth: number, documentId: string) => {
  let inner = 'id';
  // From the inside out; the outermost (k = 0) is a Document's task.
  for (let k = depth - 3; k >= 0; k--) inner = k % 2 ? `document { ${inner} }` : `task { ${inner} }`;
  return `{ document(id: "${documentId}") { ${inner} } }`;
};

describe('the router in production', () => {
  let stack: TestStack;
  let devChat: ServiceProcess;
  let leaky: Awaited<ReturnType<typeof startLeakyProxy>>;
  let prod: ServiceProcess;
  let teacher: string;
  let teacherToken: string;
  let courseId: string;

  beforeAll(async () => {
    stack = await startTestStack({ workers: 0 });
    // A chat subgraph in development mode: its errors carry stack traces.
    devChat = await startService('chat-2', subgraphEnv(stack, { NODE_ENV: 'development' }));
    leaky = await startLeakyProxy(stack.services['rag']!.url);
    prod = await startExtraRouter(stack, 'router-2', {
      NODE_ENV: 'production',
      SUBGRAPH_CHAT_URL: devChat.url,
      SUBGRAPH_RAG_URL: leaky.url,
    });
    teacher = stack.user('hardened-teacher');
    teacherToken = await stack.token(teacher, 'TEACHER');
    const created = await post(prod.url, teacherToken, 'mutation { createCourse(input: { title: "Hardened" }) { id } }');
    courseId = (created.body.data?.['createCourse'] as { id: string }).id;
  });
  afterAll(async () => {
    if (prod) await stopService(prod);
    if (devChat) await stopService(devChat);
    await leaky?.close();
    await stack?.stop();
  });

  const refusedFor = async (query: string, token = teacherToken) => {
    const res = await post(prod.url, token, query);
    return { status: res.status, data: res.body.data, errors: res.body.errors?.map((e) => e.extensions) };
  };

  it('refuses queries over each limit with 400, one BAD_USER_INPUT error naming the limit, and no data', async () => {
    expect(await refusedFor(nested(20))).toEqual({
      status: 400,
      data: undefined,
      errors: [{ code: 'BAD_USER_INPUT', limit: 'maxDepth', max: 10, found: 20 }],
    });
    // graphql-cop's alias overloading: 101 aliases of __typename.
    expect(await refusedFor(aliases(101, '__typename'))).toEqual({
      status: 400,
      data: undefined,
      errors: [{ code: 'BAD_USER_INPUT', limit: 'maxAliases', max: 15, found: 101 }],
    });
    // graphql-cop's directive overloading: ten unknown directives, answered with one error, not ten.
    expect(await refusedFor('query cop { __typename @aa@aa@aa@aa@aa@aa@aa@aa@aa@aa }')).toEqual({
      status: 400,
      data: undefined,
      errors: [{ code: 'BAD_USER_INPUT', limit: 'maxDirectives', max: 5, found: 10 }],
    });
    // The issue's 1,000 aliases of myCourses: refused before they are even parsed whole.
    expect(await refusedFor(aliases(1000, 'myCourses { id }'))).toEqual({
      status: 400,
      data: undefined,
      errors: [{ code: 'BAD_USER_INPUT', limit: 'maxTokens', max: 1000 }],
    });
    const fanOut = await refusedFor(
      '{ myCourses { documents { course { documents { course { documents { course { documents { id } } } } } } } } }',
    );
    expect(fanOut).toMatchObject({ status: 400, data: undefined, errors: [{ code: 'BAD_USER_INPUT', limit: 'maxCost', max: 5000 }] });
    // 15 re-indexings in one request: within the aliases limit, over the cost one; nothing started.
    const reindex = await refusedFor(`mutation ${aliases(15, `reindexCourse(courseId: "${courseId}") { id }`)}`);
    expect(reindex).toMatchObject({ status: 400, data: undefined, errors: [{ code: 'BAD_USER_INPUT', limit: 'maxCost' }] });
    // Within the limits, the same shapes are answered.
    expect((await post(prod.url, teacherToken, aliases(15, '__typename'))).status).toBe(200);
    const deepButCheap = await post(prod.url, teacherToken, chain(10, '00000000-0000-4000-8000-000000000000'));
    expect(deepButCheap.status).toBe(200);
    expect(deepButCheap.body.errors?.map((e) => e.extensions?.['code'])).toEqual(['NOT_FOUND']);
  });

  it('refuses a subscription over a limit the same way', async () => {
    const sub = subscribe(prod.url, teacherToken, `subscription { myTaskUpdated ${aliases(16, 'status').replace('{', '{ id')} }`);
    try {
      const failure = await sub.done.then(
        () => undefined,
        (err: unknown) => err,
      );
      expect(failure).toEqual([
        expect.objectContaining({ extensions: expect.objectContaining({ code: 'BAD_USER_INPUT', limit: 'maxAliases', max: 15 }) }),
      ]);
    } finally {
      await sub.dispose();
    }
  });

  it('charges the per-user rate limit by cost: fifteen searches in one request cost fifteen points', async () => {
    const light = await post(prod.url, teacherToken, '{ myCourses { id } }');
    const before = Number(light.headers.get('x-ratelimit-remaining'));
    expect(before).toBeGreaterThan(20);
    const searches = await post(
      prod.url,
      teacherToken,
      `query($c: ID!) ${aliases(15, 'search(courseId: $c, query: "alternating current", limit: 5) { chunkId }')}`,
      { c: courseId },
    );
    expect(searches.status).toBe(200);
    expect(searches.body.errors).toBeUndefined();
    expect(Number(searches.headers.get('x-ratelimit-remaining'))).toBe(before - 15);
    expect(searches.headers.get('x-ratelimit-limit')).toBe('300');
  });

  it('answers no "Did you mean" suggestions, no introspection, no landing page', async () => {
    const misspelt = await post(prod.url, teacherToken, '{ myCourse { id } }');
    expect(misspelt.status).toBe(400);
    expect(misspelt.text).not.toMatch(/Did you mean|myCourses/);
    const enumValue = await post(
      prod.url,
      teacherToken,
      'mutation { addCourseMember(courseId: "c", userId: "u", role: STUDNT) { userId } }',
    );
    expect(enumValue.text).not.toMatch(/Did you mean|STUDENT/);
    const introspection = await post(prod.url, teacherToken, '{ __schema { types { name } } }');
    expect(introspection.body.errors?.[0]?.extensions?.['code']).toBe('GRAPHQL_VALIDATION_FAILED');
    expect(introspection.text).not.toMatch(/"types"/);
    const page = await call(prod.url, { headers: { accept: 'text/html', authorization: `Bearer ${teacherToken}` } });
    expect(page.headers.get('content-type')).toMatch(/^application\/json/);
    expect(page.text).not.toMatch(/<html|Sandbox/i);
  });

  it('relays no stack trace, exception, subgraph name or internal message from a subgraph, whatever its mode', async () => {
    const missing = '00000000-0000-4000-8000-000000000000';
    // The premise: the chat subgraph in development mode sends a stack trace with its NOT_FOUND.
    const signer = await createAssertionSigner(stack.keys.internal.privateJwk);
    const direct = await post(
      devChat.url,
      undefined,
      `{ conversation(id: "${missing}") { id } }`,
      {},
      {
        [IdentityHeaders.assertion]: await signer.sign({ identity: { userId: teacher, role: 'TEACHER' }, subgraph: 'chat' }),
      },
    );
    expect(direct.body.errors?.[0]?.extensions).toMatchObject({ code: 'NOT_FOUND', stacktrace: expect.any(Array) });

    const relayed = await post(prod.url, teacherToken, `{ conversation(id: "${missing}") { id } }`);
    expect(relayed.body.data).toEqual({ conversation: null });
    expect(relayed.body.errors).toHaveLength(1);
    expect(relayed.body.errors?.[0]).toMatchObject({ message: 'Conversation not found', path: ['conversation'] });
    expect(relayed.body.errors?.[0]?.extensions).toEqual({ code: 'NOT_FOUND' });

    // A subgraph that fails inside, with the code INTERNAL_SERVER_ERROR or one the router does not know.
    for (const name of ['Leaky', 'LeakyUnknown']) {
      const leaked = await post(prod.url, teacherToken, `query ${name} { myCourses { id } }`);
      expect(leaked.text).not.toMatch(/ECONNREFUSED|10\.23|stacktrace|exception|serviceName|client\.ts|P1001/);
      expect(leaked.body.errors?.length).toBeGreaterThanOrEqual(1);
      for (const error of leaked.body.errors ?? []) {
        expect({ message: error.message, extensions: error.extensions }).toEqual({
          message: 'Internal server error',
          extensions: { code: 'INTERNAL_SERVER_ERROR' },
        });
      }
    }
    // The router's own failures too: an unknown persisted query, malformed JSON.
    const malformed = await call(prod.url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${teacherToken}` },
      body: '{"query": ',
    });
    expect(malformed.status).toBe(400);
    expect(malformed.text).not.toMatch(/stacktrace|at .*\.js|node_modules/);
  });

  it('turns batching off, keeps CSRF prevention on and refuses mutations over GET', async () => {
    const batch = await call(prod.url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${teacherToken}` },
      body: JSON.stringify([{ query: '{ myCourses { id } }' }, { query: '{ myCourses { id } }' }]),
    });
    expect(batch.status).toBe(400);
    expect(batch.text).not.toMatch(/"data"/);
    const get = (query: string, headers: Record<string, string> = {}) =>
      call(`${prod.url}?query=${encodeURIComponent(query)}`, { headers: { authorization: `Bearer ${teacherToken}`, ...headers } });
    // A GET a browser could send cross-site without a preflight: refused before anything runs.
    const simple = await get('{ myCourses { id } }');
    expect(simple.status).toBe(400);
    expect(simple.text).toMatch(/CSRF/);
    expect((await get('{ myCourses { id } }', { 'apollo-require-preflight': 'true' })).body).toEqual({
      data: { myCourses: [{ id: courseId }] },
    });
    const mutation = await get('mutation { createCourse(input: { title: "Over GET" }) { id } }', { 'apollo-require-preflight': 'true' });
    expect(mutation.status).toBe(405);
    expect(mutation.text).not.toMatch(/"createCourse":\{/);
  });

  it('authenticates and rate-limits GET like POST: no operation runs without a token, persisted or not', async () => {
    const query = '{ myCourses { id } }';
    const hash = createHash('sha256').update(query).digest('hex');
    const extensions = encodeURIComponent(JSON.stringify({ persistedQuery: { version: 1, sha256Hash: hash } }));
    // Registered by a legitimate client (automatic persisted queries)...
    const registered = await call(`${prod.url}?query=${encodeURIComponent(query)}&extensions=${extensions}`, {
      headers: { authorization: `Bearer ${teacherToken}`, 'apollo-require-preflight': 'true' },
    });
    expect(registered.body).toEqual({ data: { myCourses: [{ id: courseId }] } });
    // ...then asked for by its hash alone, with no token and an Accept that mentions text/html (the old bypass).
    for (const accept of ['text/html', 'text/html,application/json;q=0.9', 'application/json, text/html']) {
      const anonymous = await call(`${prod.url}?extensions=${extensions}`, { headers: { accept, 'apollo-require-preflight': 'true' } });
      expect({ accept, status: anonymous.status, code: anonymous.body.errors?.[0]?.extensions?.['code'] }).toEqual({
        accept,
        status: 401,
        code: 'UNAUTHENTICATED',
      });
      expect(anonymous.text).not.toMatch(/myCourses/);
    }
    const withToken = await call(`${prod.url}?extensions=${extensions}`, {
      headers: { authorization: `Bearer ${teacherToken}`, 'apollo-require-preflight': 'true' },
    });
    expect(withToken.body).toEqual({ data: { myCourses: [{ id: courseId }] } });
    expect(withToken.headers.get('x-ratelimit-remaining')).toMatch(/^\d+$/);
  });

  it('keeps the Sandbox page, outside production, as the only request served without a token', async () => {
    const page = await call(stack.routerUrl, { headers: { accept: 'text/html' } });
    expect(page.status).toBe(200);
    expect(page.text).toMatch(/EmbeddedSandbox/);
    // Asking for JSON, or for HTML with a query it would run: authenticated.
    const json = await call(`${stack.routerUrl}?query=${encodeURIComponent('{ myCourses { id } }')}`, {
      headers: { accept: 'application/json', 'apollo-require-preflight': 'true' },
    });
    expect(json.status).toBe(401);
    const htmlWithQuery = await call(`${stack.routerUrl}?query=${encodeURIComponent('{ myCourses { id } }')}`, {
      headers: { accept: 'text/html', 'apollo-require-preflight': 'true' },
    });
    expect(htmlWithQuery.text).not.toMatch(/"myCourses"/);
  });

  it('serves /metrics and /ready with details on the internal port only; /health and a bare /ready publicly', async () => {
    const publicBase = prod.url.replace('/graphql', '');
    expect(prod.opsUrl).not.toBe(publicBase);
    expect((await call(`${publicBase}/health`)).body).toEqual({ status: 'ok' });
    expect((await call(`${publicBase}/metrics`)).status).toBe(404);
    const publicReady = await call(`${publicBase}/ready`);
    expect({ status: publicReady.status, body: publicReady.body }).toEqual({ status: 200, body: { status: 'ready' } });
    const opsReady = await call(`${prod.opsUrl}/ready`);
    expect(opsReady.body).toMatchObject({ status: 'ready', checks: { supergraph: 'ok', redis: 'ok' } });
    // And how it sees each subgraph (the public /ready says none of it).
    expect(Object.keys((opsReady.body as { subgraphs: object }).subgraphs).sort()).toEqual(['chat', 'exam', 'rag', 'tasks']);
    const metrics = await call(`${prod.opsUrl}/metrics`);
    expect(metrics.text).toMatch(/graphql_requests_total\{/);
    expect(metrics.text).toMatch(/rate_limit_rejections_total|process_cpu_seconds_total/);
    // The internal port serves nothing else.
    expect((await call(`${prod.opsUrl}/graphql`, { method: 'POST' })).status).toBe(404);
  });

  it('refuses a token issued in the future with 401, UNAUTHENTICATED and a reason', async () => {
    const now = Math.floor(Date.now() / 1000);
    const future = await new SignJWT({ role: 'TEACHER' })
      .setProtectedHeader({ alg: 'RS256', kid: stack.keys.user.publicJwk.kid! })
      .setSubject(stack.user('time-traveller'))
      .setIssuer(TEST_ISSUER)
      .setAudience(TEST_AUDIENCE)
      .setIssuedAt(now + 600)
      .setExpirationTime(now + 3600)
      .sign(await importJWK(stack.keys.user.privateJwk, 'RS256'));
    const res = await post(prod.url, future, '{ myCourses { id } }');
    expect({ status: res.status, extensions: res.body.errors?.[0]?.extensions }).toEqual({
      status: 401,
      extensions: { code: 'UNAUTHENTICATED', reason: 'CLAIM_INVALID' },
    });
    expect(res.body.errors?.[0]?.message).toMatch(/iat.*future/);
  });
});

describe('graceful shutdown in production', () => {
  let stack: TestStack;
  let db: pg.Client;
  beforeAll(async () => {
    stack = await startTestStack({ workers: 0 });
    db = new pg.Client({ connectionString: testInfra().DIRECT_DATABASE_URL });
    await db.connect();
  });
  afterAll(async () => {
    await db?.end().catch(() => {});
    await stack?.stop();
  });

  /** A conversation of a new teacher's, and that teacher's token. */
  const conversationOf = async (name: string, role: Role = 'TEACHER') => {
    const user = stack.user(name);
    const token = await stack.token(user, role);
    const course = await stack.gql<{ createCourse: { id: string } }>(
      'mutation { createCourse(input: { title: "Shutdown" }) { id } }',
      {},
      { token },
    );
    const started = await stack.gql<{ startConversation: { id: string } }>(
      'mutation($c: ID!) { startConversation(courseId: $c, title: "Before") { id } }',
      { c: course.body.data!.createCourse.id },
      { token },
    );
    return { user, token, conversationId: started.body.data!.startConversation.id };
  };

  /** Holds the conversation's row (only it) until `release`: an update of it waits. */
  const lockRow = async (conversationId: string) => {
    await db.query('BEGIN');
    await db.query('SELECT id FROM "Conversation" WHERE id = $1 FOR UPDATE', [conversationId]);
    let held = true;
    return {
      release: async () => {
        if (!held) return;
        held = false;
        await db.query('ROLLBACK');
      },
    };
  };

  const until = async (what: string, check: () => Promise<boolean>, timeoutMs = 20_000) => {
    const deadline = Date.now() + timeoutMs;
    while (!(await check())) {
      if (Date.now() > deadline) throw new Error(`${what}: not within ${timeoutMs} ms`);
      await new Promise((r) => setTimeout(r, 50));
    }
  };
  const statusOf = (url: string) =>
    fetch(url).then(
      (r) => r.status,
      () => 0,
    );
  const settled = (p: Promise<unknown>) => {
    let done = false;
    p.then(
      () => (done = true),
      () => (done = true),
    );
    return () => done;
  };

  it('the router: readiness fails at once, subscribers are told to reconnect (1001), the request in flight finishes, Redis closes, exit 0', async () => {
    // A drain delay long enough that the checks below all fall inside it, even on a busy machine.
    const router = await startExtraRouter(stack, 'router-3', { NODE_ENV: 'production', DRAIN_DELAY_MS: '3000' });
    const { token, conversationId } = await conversationOf('stopping-router');
    const lock = await lockRow(conversationId);
    const sub = subscribe(router.url, token, 'subscription { myTaskUpdated { id status } }');
    try {
      await until('the subscription is open', async () => logEntries(router.lines).some((l) => l['msg'] === 'subscription started'));
      const rename = post(router.url, token, 'mutation($id: ID!) { renameConversation(id: $id, title: "After") { title } }', {
        id: conversationId,
      });
      const renamed = settled(rename);
      await until('the rename reaches the database', async () => {
        const { rows } = await db.query<{ n: string }>(
          `SELECT count(*) AS n FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid WHERE NOT l.granted AND a.query ILIKE '%UPDATE%Conversation%'`,
        );
        return Number(rows[0]?.n) > 0;
      });

      router.child.kill('SIGTERM');
      const opsReady = `${router.opsUrl}/ready`;
      const publicBase = router.url.replace('/graphql', '');
      await until('readiness fails', async () => (await statusOf(opsReady)) === 503);
      expect(await statusOf(`${publicBase}/ready`)).toBe(503);
      expect(await statusOf(`${publicBase}/health`)).toBe(200);
      expect(renamed()).toBe(false);

      // After DRAIN_DELAY_MS: WebSocket clients are told to go away, to reconnect elsewhere.
      const closed = await sub.done.then(
        () => undefined,
        (err: unknown) => err as { code?: number },
      );
      expect(closed?.code).toBe(1001);
      // HTTP drains: the request in flight still finishes once its row is free.
      expect(renamed()).toBe(false);
      await lock.release();
      const res = await rename;
      expect({ status: res.status, body: res.body }).toEqual({ status: 200, body: { data: { renameConversation: { title: 'After' } } } });
      expect(await router.exited).toBe(0);

      const log = logEntries(router.lines);
      expect(log.find((l) => l['msg'] === 'shutdown started')).toMatchObject({ reason: 'SIGTERM', drainDelayMs: 3000 });
      // In order: subscriptions, then HTTP, then the clients (Redis), the internal port last.
      const steps = byStep(log).map((l) => String(l['step']));
      const known = ['subscriptions', 'http', 'redis', 'ops'];
      expect(steps.filter((step) => known.includes(step))).toEqual(known);
      expect(log.find((l) => l['msg'] === 'shutdown complete')).toMatchObject({ code: 0 });
      expect(log.filter((l) => l['msg'] === 'shutdown step failed')).toEqual([]);
    } finally {
      await lock.release();
      await sub.dispose();
      await stopService(router);
    }
  });

  it('a subgraph: readiness fails at once, the request in flight finishes, the database client closes, exit 0', async () => {
    const chat = await startService('chat-3', subgraphEnv(stack, { NODE_ENV: 'production', DRAIN_DELAY_MS: '3000' }));
    const { user, conversationId } = await conversationOf('stopping-subgraph');
    const signer = await createAssertionSigner(stack.keys.internal.privateJwk);
    const lock = await lockRow(conversationId);
    try {
      const rename = post(
        chat.url,
        undefined,
        'mutation($id: ID!) { renameConversation(id: $id, title: "After") { title } }',
        { id: conversationId },
        {
          [IdentityHeaders.assertion]: await signer.sign({ identity: { userId: user, role: 'TEACHER' }, subgraph: 'chat' }),
        },
      );
      const renamed = settled(rename);
      await until('the rename reaches the database', async () => {
        const { rows } = await db.query<{ n: string }>(
          `SELECT count(*) AS n FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid WHERE NOT l.granted AND a.query ILIKE '%UPDATE%Conversation%'`,
        );
        return Number(rows[0]?.n) > 0;
      });

      chat.child.kill('SIGTERM');
      const base = chat.url.replace('/graphql', '');
      await until('readiness fails', async () => (await statusOf(`${base}/ready`)) === 503);
      expect(await statusOf(`${base}/health`)).toBe(200);
      expect(renamed()).toBe(false);
      await lock.release();
      const res = await rename;
      expect({ status: res.status, body: res.body }).toEqual({ status: 200, body: { data: { renameConversation: { title: 'After' } } } });
      expect(await chat.exited).toBe(0);

      const log = logEntries(chat.lines);
      expect(log.find((l) => l['msg'] === 'shutdown started')).toMatchObject({ reason: 'SIGTERM', drainDelayMs: 3000 });
      // HTTP first, the database client last.
      const steps = byStep(log).map((l) => l['step']);
      expect(steps[0]).toBe('http');
      expect(steps.at(-1)).toBe('database');
      expect(log.find((l) => l['msg'] === 'shutdown complete')).toMatchObject({ code: 0 });
    } finally {
      await lock.release();
      await stopService(chat);
    }
  });
});
