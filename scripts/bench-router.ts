/**
 * npm run bench:router [-- --duration 10 --connections 50]
 * Runs, in one go and on the same subgraphs and supergraph, the router (JWT
 * auth, Redis rate limits, metrics, internal assertions), a bare
 * @apollo/gateway and Hive Gateway; loads each in turn with the same queries
 * from a second process (autocannon) and prints requests/s, p50, p95 and p99,
 * CPU per request (gateway and subgraphs) and ratios.
 */
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { availableParallelism, loadavg } from 'node:os';
import { parseArgs } from 'node:util';
import { ensureDatabase } from './lib/database.js';
import { startService, stopService } from './lib/stack.js';
import { profileEnv as profileEnvFor } from './lib/profile.js';
import { infraDown, infraEnv, infraUp } from './infra.js';
import { startTestStack } from '../tests/support/stack.js';

const { values } = parseArgs({
  options: {
    duration: { type: 'string', default: '10' },
    connections: { type: 'string', default: '50' },
    /** Only the queries whose label contains this ("rag", "federated"). */
    only: { type: 'string' },
    /** Writes .cpuprofile files of the router, the two baselines and the subgraphs into this directory (on exit). */
    'cpu-prof': { type: 'string' },
  },
});
const profileEnv = profileEnvFor(values['cpu-prof']);
const QUERIES = {
  'federated (rag + chat + exam)':
    'query Bench { myCourses { id title myRole members { userId role } myConversations { id } exams { id } } }',
  'one subgraph (rag)': 'query Light { myCourses { id title } }',
};

interface Result {
  rps: number;
  p50: number;
  p95: number;
  p99: number;
  errors: number;
  non2xx: number;
  /** Answers other than the one checked first (200 with errors included). */
  mismatches: number;
  total: number;
  cpuMsPerRequest?: number;
  /** CPU per request of the subgraphs together (the whole system's work, beside the gateway's). */
  subgraphCpuMsPerRequest?: number;
  perSubgraph?: Record<string, number>;
}

/** CPU time (user + system) a process has used so far, in ms, from /proc (Linux). */
function cpuMs(pid: number | undefined): number {
  try {
    const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
    return ((Number(fields[11]) + Number(fields[12])) * 1000) / 100;
  } catch {
    return NaN;
  }
}

/** Runs the load and measures the gateway process's own CPU per request. */
async function measure(url: string, pid: number | undefined, query: string, token?: string, expectBody?: string): Promise<Result> {
  const subgraphCpu = () => SUBGRAPHS.map((s) => cpuMs(subgraphPid(s)));
  const before = cpuMs(pid);
  const subgraphsBefore = subgraphCpu();
  const result = await autocannon(url, query, token, expectBody);
  const n = Math.max(result.total, 1);
  const perSubgraph = subgraphCpu().map((after, i) => (after - subgraphsBefore[i]!) / n);
  return {
    ...result,
    cpuMsPerRequest: (cpuMs(pid) - before) / n,
    subgraphCpuMsPerRequest: perSubgraph.reduce((a, b) => a + b, 0),
    perSubgraph: Object.fromEntries(SUBGRAPHS.map((s, i) => [s, perSubgraph[i]!])),
  };
}
const SUBGRAPHS = ['rag', 'chat', 'exam', 'tasks'];
let subgraphPid = (_name: string): number | undefined => undefined;

function autocannon(url: string, query: string, token?: string, expectBody?: string): Promise<Result> {
  const options = {
    url,
    body: JSON.stringify({ query }),
    headers: { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) },
    connections: Number(values.connections),
    duration: Number(values.duration),
    expectBody,
  };
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['scripts/lib/load.mjs', JSON.stringify(options)], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    child.on('exit', (code) => {
      if (code !== 0) return reject(new Error(`the load generator exited ${code}`));
      resolve(JSON.parse(out) as Result);
    });
  });
}

/** One request, checked: a gateway whose subgraphs refuse it still answers 200, with errors. */
async function check(name: string, url: string, query: string, token?: string) {
  const res = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) },
    body: JSON.stringify({ query }),
  });
  const text = await res.text();
  const body = JSON.parse(text) as { data?: { myCourses?: unknown[] }; errors?: unknown[] };
  if (res.status !== 200 || body.errors?.length || !body.data?.myCourses?.length) {
    throw new Error(`${name} answered ${res.status} ${text.slice(0, 500)}`);
  }
  return { data: JSON.stringify(body.data), text };
}

const started = (await infraUp('test')).started.length > 0;
const infra = infraEnv('test');
await ensureDatabase({ migrate: true, directUrl: infra.DIRECT_DATABASE_URL });
// Logs stay at info, as in production: one line per operation in the router and in each subgraph.
const stack = await startTestStack({
  router: { RATE_LIMIT_TEACHER: '1000000000', ...profileEnv },
  subgraphs: { DB_POOL_MAX: '10', ...profileEnv },
});
let bare: Awaited<ReturnType<typeof startService>> | undefined;
let hive: Awaited<ReturnType<typeof startService>> | undefined;
let hiveNoDedupe: Awaited<ReturnType<typeof startService>> | undefined;
try {
  const user = stack.user('bench');
  const asUser = await stack.as(user, 'TEACHER');
  for (let i = 0; i < 5; i++) {
    const { id } = (await asUser<{ createCourse: { id: string } }>(`mutation { createCourse(input: { title: "Bench ${i}" }) { id } }`)).body
      .data!.createCourse;
    await asUser(`mutation { addCourseMember(courseId: "${id}", userId: "${user}-student", role: STUDENT) { userId } }`);
  }
  const token = await stack.token(user, 'TEACHER');
  subgraphPid = (name) => stack.services[name]?.child.pid;
  // The baselines sign one assertion per subgraph for the bench user at start and send it with every request.
  const baselineEnv = {
    PORT: '0',
    ...profileEnv,
    BENCH_USER: user,
    INTERNAL_JWT_PRIVATE_JWK: JSON.stringify(stack.keys.internal.privateJwk),
    ...Object.fromEntries(SUBGRAPHS.map((s) => [`SUBGRAPH_${s.toUpperCase()}_URL`, stack.services[s]!.url])),
  };
  bare = await startService('bare-gateway', baselineEnv);
  hive = await startService('hive-gateway', baselineEnv);
  hiveNoDedupe = await startService('hive-gateway-2', { ...baselineEnv, HIVE_DEDUPE: 'false' });
  const fmt = (name: string, r: Result) =>
    `  ${name.padEnd(34)} ${r.rps.toFixed(0).padStart(6)} req/s   p50 ${r.p50.toFixed(1).padStart(5)} ms   p95 ${r.p95.toFixed(1).padStart(5)} ms   p99 ${r.p99.toFixed(1).padStart(5)} ms   CPU ${r.cpuMsPerRequest?.toFixed(2)} ms/req   subgraphs CPU ${r.subgraphCpuMsPerRequest?.toFixed(2)} ms/req (${Object.entries(
      r.perSubgraph ?? {},
    )
      .map(([s, ms]) => `${s} ${ms.toFixed(2)}`)
      .join(', ')})   errors ${r.errors + r.non2xx + r.mismatches}`;
  const ratio = (name: string, a: Result, b: Result) =>
    `  ${name.padEnd(34)} throughput ${(a.rps / b.rps).toFixed(2)}, p50 ${(a.p50 / b.p50).toFixed(2)}, p95 ${(a.p95 / b.p95).toFixed(2)}, gateway CPU per request ${(a.cpuMsPerRequest! / b.cpuMsPerRequest!).toFixed(2)}`;
  console.log(
    `\n${values.connections} connections, ${values.duration} s per run; ${availableParallelism()} cores shared by the load generator, the gateway and four subgraphs; load average ${loadavg()
      .map((l) => l.toFixed(2))
      .join(' ')}`,
  );
  const gateways = [
    {
      name: 'router (auth + limits + metrics)',
      url: stack.routerUrl,
      pid: () => stack.services['router']!.child.pid,
      lines: () => stack.services['router']!.lines,
      token,
    },
    { name: 'bare @apollo/gateway', url: bare.url, pid: () => bare!.child.pid, lines: () => bare!.lines },
    { name: 'Hive Gateway (defaults)', url: hive.url, pid: () => hive!.child.pid, lines: () => hive!.lines },
    {
      name: 'Hive Gateway, no in-flight dedup',
      url: hiveNoDedupe.url,
      pid: () => hiveNoDedupe!.child.pid,
      lines: () => hiveNoDedupe!.lines,
    },
  ];
  for (const [label, query] of Object.entries(QUERIES)) {
    if (values.only && !label.includes(values.only)) continue;
    // The same answer from each, then each warmed (JIT, pools), then each measured in turn.
    const answers = new Set<string>();
    const texts: string[] = [];
    for (const g of gateways) {
      const answer = await check(g.name, g.url, query, g.token).catch((err: Error) => {
        throw new Error(`${err.message}\n${g.lines().slice(-20).join('\n')}`);
      });
      answers.add(answer.data);
      texts.push(answer.text);
    }
    if (answers.size !== 1) throw new Error(`the gateways answer "${label}" differently:\n${[...answers].join('\n')}`);
    for (const g of gateways) await autocannon(g.url, query, g.token);
    const results: Result[] = [];
    for (const [i, g] of gateways.entries()) results.push(await measure(g.url, g.pid(), query, g.token, texts[i]));
    const [router, apollo, hiveResult, hivePlain] = results as [Result, Result, Result, Result];
    console.log(`\n${label}`);
    gateways.forEach((g, i) => console.log(fmt(g.name, results[i]!)));
    results.forEach((r, i) => {
      if (r.errors + r.non2xx + r.mismatches > 0)
        console.log(`  WARNING: ${gateways[i]!.name} answered with errors: its figures do not count`);
    });
    console.log(ratio('ratio router / bare Apollo:', router, apollo));
    console.log(ratio('ratio router / Hive Gateway:', router, hiveResult));
    console.log(ratio('ratio router / Hive, no dedup:', router, hivePlain));
    console.log(ratio('ratio Hive Gateway / bare Apollo:', hiveResult, apollo));
  }
  console.log(
    `\nload average after: ${loadavg()
      .map((l) => l.toFixed(2))
      .join(' ')}`,
  );
} finally {
  if (hiveNoDedupe) await stopService(hiveNoDedupe);
  if (hive) await stopService(hive);
  if (bare) await stopService(bare);
  await stack.stop();
  if (started) await infraDown('test');
}
