/**
 * The edge: the real nginx (nginx/*.conf, scripts/lib/edge.ts) on random high ports in front
 * of the real stack. Between nginx and the router sits a recording proxy, so the tests see
 * exactly what reaches the router.
 *
 * Every test speaks for its own client address (X-Forwarded-For from the trusted proxy, here
 * 127.0.0.1), so the per-IP limits of one test never touch another. The GraphQL limit is
 * 1 request a minute with a burst of 10 (11 requests pass at once, the 12th is refused): no
 * test depends on timing, only on being done within the minute.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { createHash, randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { request as httpRequest, type IncomingHttpHeaders } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect as tlsConnect, type SecureVersion } from 'node:tls';
import { createClient } from 'graphql-ws';
import WebSocket from 'ws';
import { signFileLink } from '../../lib/file-links.js';
import { findNginx, startEdge, type Edge } from '../../scripts/lib/edge.js';
import { testInfra } from '../support/infra.js';
import { createCourse, ingest, upload, waitForTask } from '../support/ingest.js';
import { makeTextPdf } from '../support/pdf-fixtures.js';
import { startRecordingProxy, type RecordingProxy } from '../support/recording-proxy.js';
import { logEntries, startTestStack, type TestStack } from '../support/stack.js';

const FILE_URL_SECRET = 'edge-test-secret-0123456789abcdef-0123456789';
const GRAPHQL_BURST = 10;

/**
 * A Redis database of this file's own (the test profile's Redis, another index): test stacks of
 * other files, run at the same time by someone else, would otherwise take this stack's jobs
 * (BullMQ queues are shared by name) with their own workers.
 */
const OWN_REDIS = `${testInfra().REDIS_URL}/${1 + Math.floor(Math.random() * 15)}`;

const present = findNginx() !== null;
if (!present) console.warn('skipped: the edge tests need nginx (apt-get install nginx-light), which is absent');
const suite = present ? describe : describe.skip;

interface Reply {
  status: number;
  headers: IncomingHttpHeaders;
  body: Buffer;
  text: string;
  json<T = Record<string, any>>(): T;
}

let nextIp = 1;
/** A client address of its own (TEST-NET-3), sent as X-Forwarded-For. */
const clientIp = () => `203.0.113.${nextIp++}`;

suite('the edge (nginx) in front of the stack', () => {
  let stack: TestStack;
  let proxy: RecordingProxy;
  let edge: Edge;
  let dir: string;

  /** One HTTP(S) request, trusting the edge's self-signed certificate. */
  function call(
    url: string,
    opts: {
      method?: string;
      headers?: Record<string, string>;
      body?: string | Buffer;
      /** Declares this Content-Length but sends only `body`. */
      declaredLength?: number;
      localAddress?: string;
    } = {},
  ): Promise<Reply> {
    const u = new URL(url);
    const send = u.protocol === 'https:' ? httpsRequest : httpRequest;
    const headers: Record<string, string> = { ...opts.headers };
    if (opts.declaredLength !== undefined) headers['content-length'] = String(opts.declaredLength);
    else if (opts.body !== undefined) headers['content-length'] = String(Buffer.byteLength(opts.body));
    return new Promise((resolve, reject) => {
      const req = send(
        u,
        {
          method: opts.method ?? 'GET',
          headers,
          ca: edge.certificate,
          agent: false,
          ...(opts.localAddress ? { localAddress: opts.localAddress } : {}),
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () => {
            const body = Buffer.concat(chunks);
            const text = body.toString('utf8');
            resolve({ status: res.statusCode ?? 0, headers: res.headers, body, text, json: () => JSON.parse(text) });
          });
          res.on('error', reject);
        },
      );
      req.on('error', reject);
      if (opts.body !== undefined) req.write(opts.body);
      // A declared body that never fully arrives: the answer must come before it would.
      if (opts.declaredLength === undefined) req.end();
    });
  }

  /** The first access log line that matches: nginx writes it just after the answer, so it may take a moment. */
  async function accessEntry(match: (e: Record<string, unknown>) => boolean, timeoutMs = 10_000) {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const found = edge.accessEntries().find(match);
      if (found || Date.now() > deadline) return found;
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  const gqlVia = (
    ip: string,
    token: string,
    query: string,
    variables: Record<string, unknown> = {},
    headers: Record<string, string> = {},
  ) =>
    call(`${edge.httpsUrl}/graphql`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${token}`, 'x-forwarded-for': ip, ...headers },
      body: JSON.stringify({ query, variables }),
    });

  beforeAll(async () => {
    stack = await startTestStack({
      router: { FILE_URL_SECRET, REDIS_URL: OWN_REDIS },
      subgraphs: { FILE_URL_SECRET, REDIS_URL: OWN_REDIS },
      worker: { REDIS_URL: OWN_REDIS },
    });
    proxy = await startRecordingProxy(new URL(stack.routerUrl).host);
    dir = mkdtempSync(join(tmpdir(), 'edge-'));
    edge = await startEdge({
      dir,
      router: proxy.address,
      blobDir: stack.blobDir,
      limits: {
        graphqlRate: '1r/m',
        graphqlBurst: GRAPHQL_BURST,
        websocketRate: '1r/m',
        websocketBurst: 5,
        uploadsRate: '1r/m',
        uploadsBurst: 3,
      },
    });
  });

  afterAll(async () => {
    await edge?.stop();
    await proxy?.close();
    await stack?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('redirects plain HTTP to HTTPS, except the health check', async () => {
    const health = await call(`${edge.httpUrl}/health`);
    expect(health.status).toBe(200);
    expect(health.json()).toEqual({ status: 'ok' });

    const get = await call(`${edge.httpUrl}/graphql?query=%7B__typename%7D`);
    expect(get.status).toBe(308);
    expect(get.headers.location).toBe(`https://127.0.0.1:${edge.httpsPort}/graphql?query=%7B__typename%7D`);
    const post = await call(`${edge.httpUrl}/uploads`, { method: 'POST', body: 'x' });
    expect(post.status).toBe(308);
    expect(post.headers.location).toBe(`https://127.0.0.1:${edge.httpsPort}/uploads`);
  });

  it('speaks TLS 1.2 and 1.3, and refuses TLS 1.1', async () => {
    const handshake = (version: SecureVersion) =>
      new Promise<{ protocol: string | null } | { error: string }>((resolve) => {
        const socket = tlsConnect({
          host: '127.0.0.1',
          port: edge.httpsPort,
          servername: 'localhost',
          ca: edge.certificate,
          minVersion: version,
          maxVersion: version,
          // Lets this client offer TLS 1.1 at all (OpenSSL 3 refuses to by default): the refusal must be the server's.
          ...(version === 'TLSv1.1' ? { ciphers: 'DEFAULT@SECLEVEL=0' } : {}),
        });
        socket.once('secureConnect', () => {
          resolve({ protocol: socket.getProtocol() });
          socket.end();
        });
        socket.once('error', (err: NodeJS.ErrnoException) => resolve({ error: err.code ?? err.message }));
      });
    expect(await handshake('TLSv1.3')).toEqual({ protocol: 'TLSv1.3' });
    expect(await handshake('TLSv1.2')).toEqual({ protocol: 'TLSv1.2' });
    // The server's alert, not a client that could not offer the version.
    expect(await handshake('TLSv1.1')).toEqual({ error: 'ERR_SSL_TLSV1_ALERT_PROTOCOL_VERSION' });
  });

  it('sends HSTS and the security headers, on its own answers and the router’s', async () => {
    const token = await stack.token(stack.user('headers'), 'TEACHER');
    const routerAnswer = await gqlVia(clientIp(), token, '{ __typename }');
    const edgeAnswer = await call(`${edge.httpsUrl}/metrics`, { headers: { 'x-forwarded-for': clientIp() } });
    expect(routerAnswer.status).toBe(200);
    // The services' metrics are scraped inside, never served by the edge.
    expect(edgeAnswer.status).toBe(404);
    for (const res of [routerAnswer, edgeAnswer]) {
      expect(res.headers['strict-transport-security']).toBe('max-age=63072000; includeSubDomains');
      expect(res.headers['x-content-type-options']).toBe('nosniff');
      expect(res.headers['x-frame-options']).toBe('DENY');
      expect(res.headers['referrer-policy']).toBe('no-referrer');
      expect(res.headers['content-security-policy']).toBe("frame-ancestors 'none'");
      expect(res.headers['server']).toBe('nginx');
    }
  });

  it('answers 429 per client address past its burst, not below it, and not to another address', async () => {
    const token = await stack.token(stack.user('limited'), 'TEACHER');
    const ip = clientIp();
    const statuses: number[] = [];
    for (let i = 0; i < GRAPHQL_BURST + 1; i++) statuses.push((await gqlVia(ip, token, '{ __typename }')).status);
    expect(statuses).toEqual(Array(GRAPHQL_BURST + 1).fill(200));

    const refused = await gqlVia(ip, token, '{ __typename }');
    expect(refused.status).toBe(429);
    expect(refused.headers['retry-after']).toBe('1');
    expect(refused.json().errors[0].extensions.code).toBe('RATE_LIMITED');
    expect(refused.headers['x-request-id']).toMatch(/^[0-9a-f]{32}$/);

    // Another client is not affected.
    expect((await gqlVia(clientIp(), token, '{ __typename }')).status).toBe(200);

    // Uploads and WebSocket upgrades have zones of their own: the same address still gets through.
    const uploadAttempt = await call(`${edge.httpsUrl}/uploads`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'x-forwarded-for': ip, 'content-type': 'text/plain' },
      body: 'not a form',
    });
    expect(uploadAttempt.status).toBe(400);
    expect(uploadAttempt.json().errors[0].extensions.code).toBe('BAD_USER_INPUT');
    const upgraded = await new Promise<string>((resolve) => {
      const socket = new WebSocket(`${edge.httpsUrl.replace('https', 'wss')}/graphql`, 'graphql-transport-ws', {
        ca: edge.certificate,
        headers: { 'x-forwarded-for': ip },
      });
      socket.once('open', () => (socket.close(), resolve('open')));
      socket.once('unexpected-response', (_req, res) => (socket.terminate(), resolve(`refused ${res.statusCode}`)));
      socket.once('error', (err) => resolve(`error ${err.message}`));
    });
    expect(upgraded).toBe('open');
  });

  it('believes X-Forwarded-For only from the trusted proxy', async () => {
    const token = await stack.token(stack.user('spoofer'), 'TEACHER');
    // From 127.0.0.2 (not trusted), each request names another client, but they all count as 127.0.0.2.
    const statuses: number[] = [];
    for (let i = 0; i < GRAPHQL_BURST + 2; i++) {
      const res = await call(`${edge.httpsUrl}/graphql`, {
        method: 'POST',
        localAddress: '127.0.0.2',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${token}`, 'x-forwarded-for': clientIp() },
        body: JSON.stringify({ query: '{ __typename }' }),
      });
      statuses.push(res.status);
    }
    expect(statuses.slice(0, GRAPHQL_BURST + 1)).toEqual(Array(GRAPHQL_BURST + 1).fill(200));
    expect(statuses[GRAPHQL_BURST + 1]).toBe(429);
    const logged = await accessEntry((e) => e['status'] === 429 && e['client'] === '127.0.0.2');
    expect(logged).toMatchObject({ path: '/graphql', method: 'POST' });
  });

  it('refuses bodies over the router’s limits with 413, and passes a 1,000,000-character paste', async () => {
    const token = await stack.token(stack.user('bodies'), 'TEACHER');
    const tooBig = await call(`${edge.httpsUrl}/graphql`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${token}`, 'x-forwarded-for': clientIp() },
      body: '{"query":"{ __typename }","variables":{"pad":"',
      declaredLength: 6 * 1024 * 1024 + 1,
    });
    expect(tooBig.status).toBe(413);
    expect(tooBig.json().errors[0].extensions.code).toBe('PAYLOAD_TOO_LARGE');

    const hugeUpload = await call(`${edge.httpsUrl}/uploads`, {
      method: 'POST',
      headers: { 'content-type': 'multipart/form-data; boundary=x', authorization: `Bearer ${token}`, 'x-forwarded-for': clientIp() },
      body: '--x\r\n',
      declaredLength: 102 * 1024 * 1024,
    });
    expect(hugeUpload.status).toBe(413);

    // The largest paste ingestDocument allows (three bytes a character: 3 MB of JSON) passes the edge and the
    // router and reaches the rag subgraph's resolver, which answers for the course (none: nothing is ingested).
    const text = '漢字のテキスト。'.repeat(125_000);
    expect(text.length).toBe(1_000_000);
    const body = JSON.stringify({
      query: 'mutation($i: IngestDocumentInput!) { ingestDocument(input: $i) { id } }',
      variables: { i: { courseId: randomUUID(), title: 'A million characters', text, format: 'TEXT' } },
    });
    expect(Buffer.byteLength(body)).toBeGreaterThan(3_000_000);
    const paste = await call(`${edge.httpsUrl}/graphql`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${token}`, 'x-forwarded-for': clientIp() },
      body,
    });
    expect(paste.status).toBe(200);
    expect(['NOT_FOUND', 'FORBIDDEN']).toContain(paste.json().errors[0].extensions.code);
  });

  it('never lets client-sent identity headers reach the router', async () => {
    const user = stack.user('honest');
    const token = await stack.token(user, 'STUDENT');
    const marker = `spoof-${randomUUID()}`;
    const res = await gqlVia(
      clientIp(),
      token,
      '{ myCourses { id } }',
      {},
      {
        'x-user-id': 'admin',
        'x-user-role': 'ADMIN',
        'x-internal-assertion': 'forged.jwt.value',
        'x-accel-files': '/etc/',
        'x-request-id': marker,
      },
    );
    expect(res.status).toBe(200);
    const reached = proxy.seen.filter((r) => r.headers['x-request-id'] === marker);
    expect(reached.length).toBe(1);
    const headers = reached[0]!.headers;
    for (const name of ['x-user-id', 'x-user-role', 'x-internal-assertion', 'x-accel-files']) expect(headers[name]).toBeUndefined();
    expect(headers['x-forwarded-proto']).toBe('https');
    expect(headers['authorization']).toBe(`Bearer ${token}`);
  });

  it('passes the request id to the router and a subgraph, and logs it', async () => {
    const token = await stack.token(stack.user('traced'), 'TEACHER');
    // Without one from the client: nginx's own.
    const res = await gqlVia(clientIp(), token, 'query Traced { myCourses { id } }');
    expect(res.status).toBe(200);
    const id = res.headers['x-request-id'] as string;
    expect(id).toMatch(/^[0-9a-f]{32}$/);
    // With one: the client's, everywhere.
    const own = `trace-${randomUUID()}`;
    const res2 = await gqlVia(clientIp(), token, 'query Traced { myCourses { id } }', {}, { 'x-request-id': own });
    expect(res2.headers['x-request-id']).toBe(own);

    for (const reqId of [id, own]) {
      const deadline = Date.now() + 10_000;
      const has = (service: string) => logEntries(stack.services[service]!.lines).some((e) => e['reqId'] === reqId);
      while (!(has('router') && has('rag')) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
      expect(has('router')).toBe(true);
      expect(has('rag')).toBe(true);
      expect(await accessEntry((e) => e['reqId'] === reqId)).toMatchObject({ path: '/graphql', status: 200 });
    }
  });

  it('streams a subscription through the edge (wss)', async () => {
    const teacher = stack.user('streamer');
    const token = await stack.token(teacher, 'TEACHER');
    const courseId = await createCourse(stack, token, 'Streamed');
    const task = await ingest(stack, token, {
      courseId,
      title: 'Short',
      text: '# Notes\n\nOhm’s law relates voltage and current.',
      format: 'MARKDOWN',
    });
    const ip = clientIp();
    const ca = edge.certificate;
    class EdgeSocket extends WebSocket {
      constructor(address: string | URL, protocols?: string | string[]) {
        super(address, protocols, { ca, headers: { 'x-forwarded-for': ip } });
      }
    }
    const client = createClient({
      url: `${edge.httpsUrl.replace('https', 'wss')}/graphql`,
      webSocketImpl: EdgeSocket,
      connectionParams: { authorization: `Bearer ${token}` },
      retryAttempts: 0,
      lazy: true,
    });
    try {
      const statuses: string[] = [];
      await new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`no final status through the edge; got ${statuses.join(',')}`)), 60_000);
        const unsubscribe = client.subscribe<{ taskUpdated: { status: string } }>(
          { query: 'subscription($id: ID!) { taskUpdated(id: $id) { id status } }', variables: { id: task.id } },
          {
            next: ({ data }) => {
              if (data) statuses.push(data.taskUpdated.status);
              if (data && ['COMPLETED', 'FAILED', 'CANCELLED'].includes(data.taskUpdated.status)) {
                clearTimeout(timer);
                unsubscribe();
                resolve();
              }
            },
            error: (err) => (clearTimeout(timer), reject(err instanceof Error ? err : new Error(JSON.stringify(err)))),
            complete: () => {},
          },
        );
      });
      expect(statuses.at(-1)).toBe('COMPLETED');
    } finally {
      await client.dispose();
    }
    // The upgrade went through the edge's WebSocket location, with its own limit zone.
    expect(proxy.seen.some((r) => r.headers['upgrade'] === 'websocket' && r.headers['x-forwarded-for']?.includes(ip))).toBe(true);
  });

  it('caches a public GET (MISS, then HIT) and never an authorised private one', async () => {
    const alice = await stack.token(stack.user('alice'), 'TEACHER');
    const bob = await stack.token(stack.user('bob'), 'TEACHER');
    const ip = clientIp();
    const getHeaders = (token: string) => ({ authorization: `Bearer ${token}`, 'apollo-require-preflight': 'true', 'x-forwarded-for': ip });

    // A persisted query (APQ) on a field the rag subgraph marks PUBLIC: registered once, then fetched by GET.
    const query = `query Limits { limits { titleMaxChars pastedTextMaxChars } } # ${randomUUID()}`;
    const sha256Hash = createHash('sha256').update(query).digest('hex');
    const extensions = { persistedQuery: { version: 1, sha256Hash } };
    const register = await call(`${edge.httpsUrl}/graphql`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...getHeaders(alice) },
      body: JSON.stringify({ query, extensions }),
    });
    expect(register.json().data.limits.pastedTextMaxChars).toBe(1_000_000);
    const url = `${edge.httpsUrl}/graphql?operationName=Limits&extensions=${encodeURIComponent(JSON.stringify(extensions))}`;
    const first = await call(url, { headers: getHeaders(alice) });
    expect(first.status).toBe(200);
    expect(first.headers['cache-control']).toBe('max-age=3600, public');
    expect(first.headers['x-cache-status']).toBe('MISS');
    const second = await call(url, { headers: getHeaders(bob) });
    expect(second.headers['x-cache-status']).toBe('HIT');
    expect(second.json()).toEqual(first.json());
    // Without credentials the cache is not read: the router refuses.
    const anonymous = await call(url, { headers: { 'apollo-require-preflight': 'true', 'x-forwarded-for': clientIp() } });
    expect(anonymous.status).toBe(401);
    expect(anonymous.headers['x-cache-status']).toBe('BYPASS');

    // A private answer: the same URL for two users, each gets their own, nothing is stored.
    const created = await gqlVia(ip, alice, 'mutation { createCourse(input: { title: "Alice only" }) { id } }');
    const aliceCourse = created.json().data.createCourse.id as string;
    const mine = `${edge.httpsUrl}/graphql?query=${encodeURIComponent('query Mine { myCourses { id } }')}`;
    const a1 = await call(mine, { headers: getHeaders(alice) });
    const a2 = await call(mine, { headers: getHeaders(alice) });
    const b1 = await call(mine, { headers: getHeaders(bob) });
    for (const res of [a1, a2, b1]) {
      expect(res.status).toBe(200);
      expect(res.headers['cache-control']).toBe('no-store');
      expect(res.headers['x-cache-status']).toBe('MISS');
    }
    expect(a1.json().data.myCourses.map((c: { id: string }) => c.id)).toContain(aliceCourse);
    expect(b1.json().data.myCourses.map((c: { id: string }) => c.id)).not.toContain(aliceCourse);
  });

  it('serves a course file by its signed link: 206 for a range, refused once expired or altered', async () => {
    const teacher = stack.user('filer');
    const token = await stack.token(teacher, 'TEACHER');
    const courseId = await createCourse(stack, token, 'Files');
    const pdf = await makeTextPdf([['Page one of the notes.'], ['Page two: the cited passage.']], { title: 'Notes' });
    const up = await upload(stack, token, pdf, 'week 1 notes.pdf');
    const task = await ingest(stack, token, { courseId, title: 'Week 1', uploadId: up.body.uploadId });
    const done = await waitForTask(stack, token, task.id);
    expect(done.status).toBe('COMPLETED');

    const ip = clientIp();
    const doc = await gqlVia(ip, token, 'query($id: ID!) { document(id: $id) { fileUrl } }', { id: done.document!.id });
    const fileUrl = doc.json().data.document.fileUrl as string;
    expect(fileUrl).toMatch(new RegExp(`^/files/${done.document!.id}/week-1-notes\\.pdf\\?k=.+&f=PDF&e=\\d+&s=`));

    const range = await call(`${edge.httpsUrl}${fileUrl}`, { headers: { range: 'bytes=0-99', 'x-forwarded-for': ip } });
    expect(range.status).toBe(206);
    expect(range.headers['content-range']).toBe(`bytes 0-99/${pdf.length}`);
    expect(range.headers['content-type']).toBe('application/pdf');
    expect(range.headers['cache-control']).toMatch(/^private, max-age=\d+$/);
    expect(range.headers['x-content-type-options']).toBe('nosniff');
    expect(range.body).toEqual(pdf.subarray(0, 100));
    const whole = await call(`${edge.httpsUrl}${fileUrl}`, { headers: { 'x-forwarded-for': ip } });
    expect(whole.status).toBe(200);
    expect(whole.headers['accept-ranges']).toBe('bytes');
    expect(whole.headers['etag']).toBeDefined();
    expect(whole.body).toEqual(pdf);
    // The bytes came from nginx, not through the router.
    const byRouter = proxy.seen.filter((r) => r.url.startsWith('/files/'));
    expect(byRouter.length).toBe(2);
    expect(byRouter.every((r) => r.headers['x-accel-files'] === '/.blobs/')).toBe(true);

    // The same link, signed as it was but already expired, and one with an altered expiry.
    const params = new URL(fileUrl, 'https://x').searchParams;
    const target = { documentId: done.document!.id, blobKey: params.get('k')!, format: 'PDF' as const, filename: 'week 1 notes.pdf' };
    const expired = signFileLink(FILE_URL_SECRET, target, Math.floor(Date.now() / 1000) - 1);
    const gone = await call(`${edge.httpsUrl}${expired}`, { headers: { 'x-forwarded-for': ip } });
    expect(gone.status).toBe(403);
    expect(gone.json().errors[0].extensions.reason).toBe('expired');
    const altered = fileUrl.replace(/e=(\d+)/, (_, e: string) => `e=${Number(e) + 3600}`);
    const forged = await call(`${edge.httpsUrl}${altered}`, { headers: { 'x-forwarded-for': ip } });
    expect(forged.status).toBe(403);
    expect(forged.json().errors[0].extensions.reason).toBe('invalid_signature');

    // The blob directory itself is not reachable from outside.
    const direct404 = await call(`${edge.httpsUrl}/.blobs/${params.get('k')}`, { headers: { 'x-forwarded-for': ip } });
    expect(direct404.status).toBe(404);

    // Without the edge, the router serves the file itself, ranges included.
    const direct = await call(`${new URL(stack.routerUrl).origin}${fileUrl}`, { headers: { range: 'bytes=100-199' } });
    expect(direct.status).toBe(206);
    expect(direct.body).toEqual(pdf.subarray(100, 200));
  });
});
