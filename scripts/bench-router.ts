/**
 * npm run bench:router [-- --duration 10 --connections 50]
 * Runs, in one go and on the same subgraphs and supergraph, the router (JWT
 * auth, Redis rate limits, metrics, internal assertions) and a bare
 * @apollo/gateway; loads each in turn with the same federated query from a
 * second process (autocannon) and prints requests/s, p50 and p99 and ratios.
 */
import { spawn } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { availableParallelism } from 'node:os';
import { parseArgs } from 'node:util';
import { ensureDatabase } from './lib/database.js';
import { startService, stopService } from './lib/stack.js';
import { infraDown, infraEnv, infraUp } from './infra.js';
import { startTestStack } from '../tests/support/stack.js';

const { values } = parseArgs({
  options: {
    duration: { type: 'string', default: '10' },
    connections: { type: 'string', default: '50' },
    /** Only the queries whose label contains this ("rag", "federated"). */
    only: { type: 'string' },
    /** Writes .cpuprofile files of the router, the bare gateway and the subgraphs into this directory (on exit). */
    'cpu-prof': { type: 'string' },
  },
});
/**
 * Node 20 refuses --cpu-prof in NODE_OPTIONS: a preloaded module runs the inspector's profiler
 * instead and writes <dir>/<pid>.cpuprofile when the process exits (its graceful SIGTERM path).
 */
function profilerHook(dir: string): string {
  mkdirSync(dir, { recursive: true });
  const hook = join(dir, 'profile-hook.mjs');
  writeFileSync(
    hook,
    `import { Session } from 'node:inspector';
import { writeFileSync } from 'node:fs';
const session = new Session();
session.connect();
session.post('Profiler.enable');
session.post('Profiler.setSamplingInterval', { interval: 500 });
session.post('Profiler.start');
process.on('exit', () => {
  session.post('Profiler.stop', (err, res) => {
    if (!err) writeFileSync(${JSON.stringify(dir)} + '/' + process.argv[process.argv.length - 1].replace(/\\W+/g, '_') + '-' + process.pid + '.cpuprofile', JSON.stringify(res.profile));
  });
});
`,
  );
  return hook;
}
const profileEnv: Record<string, string> = values['cpu-prof']
  ? { NODE_OPTIONS: `${process.env['NODE_OPTIONS'] ?? ''} --import=${profilerHook(values['cpu-prof'])}`.trim() }
  : {};
const QUERIES = {
  'federated (rag + chat + exam)':
    'query Bench { myCourses { id title myRole members { userId role } myConversations { id } exams { id } } }',
  'one subgraph (rag)': 'query Light { myCourses { id title } }',
};

interface Result {
  rps: number;
  p50: number;
  p99: number;
  errors: number;
  non2xx: number;
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
async function measure(url: string, pid: number | undefined, query: string, token?: string): Promise<Result> {
  const subgraphCpu = () => SUBGRAPHS.map((s) => cpuMs(subgraphPid(s)));
  const before = cpuMs(pid);
  const subgraphsBefore = subgraphCpu();
  const result = await autocannon(url, query, token);
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

function autocannon(url: string, query: string, token?: string): Promise<Result> {
  const args = [
    'node_modules/autocannon/autocannon.js',
    '--json',
    '-c',
    values.connections,
    '-d',
    values.duration,
    '-m',
    'POST',
    '-H',
    'content-type=application/json',
    ...(token ? ['-H', `authorization=Bearer ${token}`] : []),
    '-b',
    JSON.stringify({ query }),
    url,
  ];
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'ignore'] });
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    child.on('exit', (code) => {
      if (code !== 0) return reject(new Error(`autocannon exited ${code}`));
      const r = JSON.parse(out) as {
        requests: { average: number; total: number };
        latency: { p50: number; p99: number };
        errors: number;
        non2xx: number;
      };
      resolve({
        rps: r.requests.average,
        p50: r.latency.p50,
        p99: r.latency.p99,
        errors: r.errors,
        non2xx: r.non2xx,
        total: r.requests.total,
      });
    });
  });
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
  bare = await startService('bare-gateway', {
    PORT: '0',
    ...profileEnv,
    BENCH_USER: user,
    INTERNAL_JWT_PRIVATE_JWK: JSON.stringify(stack.keys.internal.privateJwk),
    ...Object.fromEntries(['rag', 'chat', 'exam', 'tasks'].map((s) => [`SUBGRAPH_${s.toUpperCase()}_URL`, stack.services[s]!.url])),
  });
  const fmt = (name: string, r: Result) =>
    `  ${name.padEnd(34)} ${r.rps.toFixed(0).padStart(7)} req/s   p50 ${String(r.p50).padStart(4)} ms   p99 ${String(r.p99).padStart(4)} ms   CPU ${r.cpuMsPerRequest?.toFixed(2)} ms/req   subgraphs CPU ${r.subgraphCpuMsPerRequest?.toFixed(2)} ms/req (${Object.entries(
      r.perSubgraph ?? {},
    )
      .map(([s, ms]) => `${s} ${ms.toFixed(2)}`)
      .join(', ')})   errors ${r.errors + r.non2xx}`;
  console.log(
    `\n${values.connections} connections, ${values.duration} s per run; ${availableParallelism()} cores shared by the load generator, the gateway and four subgraphs`,
  );
  for (const [label, query] of Object.entries(QUERIES)) {
    if (values.only && !label.includes(values.only)) continue;
    // Warm both (JIT, pools), then measure each in turn.
    await autocannon(stack.routerUrl, query, token);
    await autocannon(bare.url, query);
    const router = await measure(stack.routerUrl, stack.services['router']!.child.pid, query, token);
    const baseline = await measure(bare.url, bare.child.pid, query);
    console.log(`\n${label}`);
    console.log(fmt('router (auth + limits + metrics)', router));
    console.log(fmt('bare @apollo/gateway', baseline));
    console.log(
      `  ratio router/bare: throughput ${(router.rps / baseline.rps).toFixed(2)}, p50 ${(router.p50 / Math.max(baseline.p50, 1)).toFixed(2)}, p99 ${(router.p99 / Math.max(baseline.p99, 1)).toFixed(2)}, gateway CPU per request ${(router.cpuMsPerRequest! / baseline.cpuMsPerRequest!).toFixed(2)}`,
    );
  }
} finally {
  if (bare) await stopService(bare);
  await stack.stop();
  if (started) await infraDown('test');
}
