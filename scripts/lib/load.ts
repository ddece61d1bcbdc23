/**
 * A load of many independent clients on the public API: each one a user with its own token and
 * its own address (X-Forwarded-For, believed by nginx from a trusted proxy), sending a mix of
 * queries (its courses, a course across subgraphs, search, its tasks), uploads and, for teachers,
 * ingestions of pasted text, with a think time between requests; some hold a graphql-ws
 * subscription open all along. Every outcome is counted: HTTP status, GraphQL error codes,
 * connection errors, latency per operation.
 *
 * Used by `npm run load` (scripts/load.ts) and the faults tier's load test.
 */
import { Agent as HttpAgent, request as httpRequest } from 'node:http';
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';
import { createClient } from 'graphql-ws';
import WebSocket from 'ws';

export interface LoadClient {
  token: string;
  role: 'STUDENT' | 'TEACHER';
  /** The address this client speaks for (X-Forwarded-For). */
  ip: string;
}

export interface LoadOptions {
  /** `http(s)://host:port/graphql`: the router, or nginx in front of it. */
  graphqlUrl: string;
  /** Certificate to trust (nginx's self-signed one). */
  ca?: Buffer;
  clients: LoadClient[];
  courseId: string;
  durationMs: number;
  /** Pause between one client's requests, drawn uniformly from this range (ms). */
  thinkMs: [number, number];
  /** How many clients hold a `myTaskUpdated` subscription open for the whole run. */
  subscribers: number;
  /** A request with no answer after this long counts as a connection error (default 60 s). */
  requestTimeoutMs?: number;
  onProgress?: (line: string) => void;
}

type Op = 'courses' | 'course' | 'search' | 'tasks' | 'upload' | 'ingest';

export interface LoadReport {
  durationS: number;
  clients: number;
  requests: number;
  perSecond: number;
  byStatus: Record<string, number>;
  /** GraphQL error codes in answers (whatever the status). */
  errorCodes: Record<string, number>;
  /** 429s whose body names the limit (RATE_LIMITED): a limit said so. */
  rateLimitedLabelled: number;
  rateLimitedUnlabelled: number;
  /** 503s that say so (SERVICE_UNAVAILABLE and Retry-After): load shed, to retry later. */
  unavailableLabelled: number;
  unavailableUnlabelled: number;
  /** Every 5xx (503s included). */
  serverErrors: number;
  connectionErrors: number;
  connectionErrorSamples: string[];
  latencyMs: Record<Op, { n: number; p50: number; p95: number; p99: number; max: number }>;
  subscriptions: { opened: number; failed: number; closedEarly: number; events: number; failures: string[] };
}

const QUERIES: Record<Exclude<Op, 'upload'>, string> = {
  courses: 'query MyCourses { myCourses { id title } }',
  course: 'query Course($id: ID!) { course(id: $id) { id title documents { id title status } exams { id title } } }',
  search: 'query Search($c: ID!, $q: String!) { search(courseId: $c, query: $q, limit: 5) { chunkId score pageStart } }',
  tasks: 'query MyTasks { myTasks(first: 5) { edges { node { id status } } } }',
  ingest: 'mutation Ingest($i: IngestDocumentInput!) { ingestDocument(input: $i) { id status } }',
};

const WORDS = ['photosynthesis', 'energy', 'cell', 'membrane', 'protein', 'enzyme', 'light', 'water', 'carbon', 'oxygen'];

function pick<T>(items: readonly T[]): T {
  return items[Math.floor(Math.random() * items.length)]!;
}

/** Students read (uploading material is for teachers); teachers read and sometimes add material. */
function nextOp(role: LoadClient['role']): Op {
  const r = Math.random();
  if (role === 'TEACHER') {
    if (r < 0.1) return 'upload';
    if (r < 0.2) return 'ingest';
  }
  const q = Math.random();
  return q < 0.3 ? 'courses' : q < 0.6 ? 'course' : q < 0.9 ? 'search' : 'tasks';
}

function percentile(sorted: number[], p: number): number {
  if (!sorted.length) return 0;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

export async function runLoad(opts: LoadOptions): Promise<LoadReport> {
  const url = new URL(opts.graphqlUrl);
  const https = url.protocol === 'https:';
  const send = https ? httpsRequest : httpRequest;
  const uploadsUrl = new URL('/uploads', url);
  const timeoutMs = opts.requestTimeoutMs ?? 60_000;

  const byStatus: Record<string, number> = {};
  const errorCodes: Record<string, number> = {};
  const latencies = new Map<Op, number[]>();
  const connectionErrorSamples: string[] = [];
  let requests = 0;
  let connectionErrors = 0;
  let rateLimitedLabelled = 0;
  let rateLimitedUnlabelled = 0;
  let unavailableLabelled = 0;
  let unavailableUnlabelled = 0;

  const call = (agent: HttpAgent, client: LoadClient, target: URL, body: Buffer, contentType: string) =>
    new Promise<{ status: number; text: string; retryAfter: string | undefined }>((resolve, reject) => {
      const req = send(
        target,
        {
          method: 'POST',
          agent,
          headers: {
            authorization: `Bearer ${client.token}`,
            'content-type': contentType,
            'content-length': String(body.length),
            'x-forwarded-for': client.ip,
            // Apollo's CSRF prevention: a non-simple request.
            'apollo-require-preflight': 'true',
          },
          timeout: timeoutMs,
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () =>
            resolve({
              status: res.statusCode ?? 0,
              text: Buffer.concat(chunks).toString('utf8'),
              retryAfter: res.headers['retry-after'],
            }),
          );
          res.on('error', reject);
        },
      );
      req.on('timeout', () => req.destroy(new Error(`no answer within ${timeoutMs} ms`)));
      req.on('error', reject);
      req.end(body);
    });

  const record = (
    op: Op,
    started: number,
    { status, text, retryAfter }: { status: number; text: string; retryAfter: string | undefined },
  ) => {
    requests++;
    byStatus[status] = (byStatus[status] ?? 0) + 1;
    let list = latencies.get(op);
    if (!list) latencies.set(op, (list = []));
    list.push(Date.now() - started);
    let codes: string[] = [];
    try {
      const parsed = JSON.parse(text) as { errors?: { extensions?: { code?: string } }[] };
      codes = parsed.errors?.map((e) => e.extensions?.code ?? 'NO_CODE') ?? [];
    } catch {
      if (status !== 201 && status !== 200) codes = ['NOT_JSON'];
    }
    for (const c of codes) errorCodes[c] = (errorCodes[c] ?? 0) + 1;
    if (status === 429) {
      if (codes.includes('RATE_LIMITED')) rateLimitedLabelled++;
      else rateLimitedUnlabelled++;
    }
    if (status === 503) {
      if (codes.length > 0 && codes.every((c) => c === 'SERVICE_UNAVAILABLE') && retryAfter) unavailableLabelled++;
      else unavailableUnlabelled++;
    }
  };

  const deadline = Date.now() + opts.durationMs;
  const runClient = async (client: LoadClient, index: number) => {
    const agent = new (https ? HttpsAgent : HttpAgent)({ keepAlive: true, maxSockets: 2, ...(https && opts.ca ? { ca: opts.ca } : {}) });
    // Spread the starts over the first think interval, as real users arrive.
    await new Promise((r) => setTimeout(r, Math.random() * opts.thinkMs[1]));
    try {
      for (let i = 0; Date.now() < deadline; i++) {
        const op = nextOp(client.role);
        const started = Date.now();
        try {
          if (op === 'upload') {
            const boundary = `----load${index}x${i}`;
            const file = `Notes ${index}-${i}: ${pick(WORDS)} and ${pick(WORDS)} in the ${pick(WORDS)}.\n`;
            const body = Buffer.from(
              `--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="notes-${index}-${i}.txt"\r\nContent-Type: text/plain\r\n\r\n${file}\r\n--${boundary}--\r\n`,
            );
            const res = await call(agent, client, uploadsUrl, body, `multipart/form-data; boundary=${boundary}`);
            record(op, started, res);
          } else {
            const variables =
              op === 'course'
                ? { id: opts.courseId }
                : op === 'search'
                  ? { c: opts.courseId, q: `${pick(WORDS)} ${pick(WORDS)}` }
                  : op === 'ingest'
                    ? {
                        i: {
                          courseId: opts.courseId,
                          title: `Load ${index}-${i}`,
                          text: `# Load ${index}-${i}\n\n${Array.from({ length: 20 }, () => `The ${pick(WORDS)} of the ${pick(WORDS)} needs ${pick(WORDS)}.`).join(' ')}`,
                        },
                      }
                    : {};
            const res = await call(agent, client, url, Buffer.from(JSON.stringify({ query: QUERIES[op], variables })), 'application/json');
            record(op, started, res);
          }
        } catch (err) {
          requests++;
          connectionErrors++;
          if (connectionErrorSamples.length < 10) connectionErrorSamples.push(`${op}: ${(err as Error).message}`);
        }
        const [lo, hi] = opts.thinkMs;
        await new Promise((r) => setTimeout(r, lo + Math.random() * (hi - lo)));
      }
    } finally {
      agent.destroy();
    }
  };

  // Subscriptions: opened first, held for the whole run, then completed by us.
  const subscriptions = { opened: 0, failed: 0, closedEarly: 0, events: 0, failures: [] as string[] };
  const wsUrl = opts.graphqlUrl.replace(/^http/, 'ws');
  const wsClients = opts.clients.slice(0, opts.subscribers).map((client) => {
    let ended = false;
    const ws = createClient({
      url: wsUrl,
      webSocketImpl: class extends WebSocket {
        constructor(address: string, protocols?: string | string[]) {
          super(address, protocols, { headers: { 'x-forwarded-for': client.ip }, ...(opts.ca ? { ca: opts.ca } : {}) });
        }
      },
      connectionParams: { authorization: `Bearer ${client.token}` },
      retryAttempts: 0,
      lazy: true,
      on: { connected: () => void subscriptions.opened++ },
    });
    const done = new Promise<void>((resolve) => {
      ws.subscribe(
        { query: 'subscription Mine { myTaskUpdated { id status } }' },
        {
          next: () => void subscriptions.events++,
          error: (err) => {
            if (!ended) {
              subscriptions.failed++;
              if (subscriptions.failures.length < 10) {
                subscriptions.failures.push(err instanceof Error ? err.message : JSON.stringify(err));
              }
            }
            resolve();
          },
          complete: () => {
            if (!ended) subscriptions.closedEarly++;
            resolve();
          },
        },
      );
    });
    return {
      done,
      end: async () => {
        ended = true;
        await ws.dispose();
      },
    };
  });

  const progress = setInterval(() => {
    opts.onProgress?.(`${Math.round((deadline - Date.now()) / 1000)} s left: ${requests} requests, ${connectionErrors} connection errors`);
  }, 10_000);
  const startedAt = Date.now();
  try {
    await Promise.all(opts.clients.map((c, i) => runClient(c, i)));
  } finally {
    clearInterval(progress);
    await Promise.all(wsClients.map((w) => w.end()));
    await Promise.all(wsClients.map((w) => w.done));
  }
  const durationS = (Date.now() - startedAt) / 1000;

  const latencyMs = Object.fromEntries(
    [...latencies.entries()].map(([op, list]) => {
      const sorted = [...list].sort((a, b) => a - b);
      return [
        op,
        {
          n: sorted.length,
          p50: percentile(sorted, 50),
          p95: percentile(sorted, 95),
          p99: percentile(sorted, 99),
          max: sorted.at(-1) ?? 0,
        },
      ];
    }),
  ) as LoadReport['latencyMs'];
  const serverErrors = Object.entries(byStatus)
    .filter(([s]) => Number(s) >= 500)
    .reduce((n, [, c]) => n + c, 0);
  return {
    durationS,
    clients: opts.clients.length,
    requests,
    perSecond: Math.round(requests / durationS),
    byStatus,
    errorCodes,
    rateLimitedLabelled,
    rateLimitedUnlabelled,
    unavailableLabelled,
    unavailableUnlabelled,
    serverErrors,
    connectionErrors,
    connectionErrorSamples,
    latencyMs,
    subscriptions,
  };
}
