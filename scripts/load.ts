/**
 * npm run load [-- --clients 500 --duration 60 --via both|router|edge --think 3000-12000 --subscribers 100]
 *
 * Many clients on the whole stack (test profile's PostgreSQL, PgBouncer and Redis; the services as
 * processes; nginx in front for --via edge): each a user of its own, from an address of its own,
 * with a mix of queries, uploads, ingestions and open subscriptions (scripts/lib/load.ts). Prints,
 * per target, requests per second, answers by status, error codes, 5xx, connection errors,
 * labelled and unlabelled 429/503, latency per operation, and the subscriptions' fate.
 * A benchmark, not a test: it prints figures and fails nothing.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { prepareLoad } from '../tests/support/load.js';
import { startTestStack } from '../tests/support/stack.js';
import { findNginx, startEdge } from './lib/edge.js';
import { runLoad, type LoadReport } from './lib/load.js';
import { ensureDatabase } from './lib/database.js';
import { infraDown, infraEnv, infraUp } from './infra.js';

const { values } = parseArgs({
  options: {
    clients: { type: 'string', default: '500' },
    duration: { type: 'string', default: '60' },
    via: { type: 'string', default: 'both' },
    think: { type: 'string', default: '3000-12000' },
    subscribers: { type: 'string', default: '100' },
  },
});
const clients = Number(values.clients);
const durationMs = Number(values.duration) * 1000;
const [thinkLo, thinkHi] = values.think!.split('-').map(Number) as [number, number];
const subscribers = Math.min(clients, Number(values.subscribers));
const targets = values.via === 'both' ? ['router', 'edge'] : [values.via!];
if (targets.includes('edge') && !findNginx()) throw new Error('--via edge needs nginx (apt-get install nginx-light)');

const infra = infraEnv('test');
const started = (await infraUp('test')).started.length > 0;
await ensureDatabase({ migrate: true, directUrl: infra.DIRECT_DATABASE_URL });

function print(target: string, r: LoadReport) {
  const load = loadavg()
    .map((l) => l.toFixed(1))
    .join(' ');
  console.log(
    `\n== ${target}: ${r.clients} clients for ${r.durationS.toFixed(1)} s (think ${thinkLo}-${thinkHi} ms; load average ${load})`,
  );
  console.log(
    `requests ${r.requests} (${r.perSecond}/s); by status ${JSON.stringify(r.byStatus)}; error codes ${JSON.stringify(r.errorCodes)}`,
  );
  console.log(
    `5xx ${r.serverErrors} (503 with Retry-After ${r.unavailableLabelled}, unlabelled ${r.unavailableUnlabelled}); connection errors ${r.connectionErrors}; ` +
      `429 labelled ${r.rateLimitedLabelled}, unlabelled ${r.rateLimitedUnlabelled}`,
  );
  for (const sample of r.connectionErrorSamples) console.log(`  connection error: ${sample}`);
  for (const [op, l] of Object.entries(r.latencyMs)) {
    console.log(`  ${op.padEnd(8)} n ${String(l.n).padStart(6)}  p50 ${l.p50} ms  p95 ${l.p95} ms  p99 ${l.p99} ms  max ${l.max} ms`);
  }
  console.log(`subscriptions: ${JSON.stringify(r.subscriptions)}`);
}

const stack = await startTestStack({ router: { WS_MAX_CONNECTIONS_PER_USER: '5' } });
const dir = mkdtempSync(join(tmpdir(), 'load-edge-'));
try {
  const edge = targets.includes('edge') ? await startEdge({ dir, router: new URL(stack.routerUrl).host, blobDir: stack.blobDir }) : null;
  try {
    const prepared = await prepareLoad(stack, clients);
    for (const target of targets) {
      const report = await runLoad({
        graphqlUrl: target === 'edge' ? `${edge!.httpsUrl}/graphql` : stack.routerUrl,
        ...(target === 'edge' ? { ca: edge!.certificate } : {}),
        clients: prepared.clients,
        courseId: prepared.courseId,
        durationMs,
        thinkMs: [thinkLo, thinkHi],
        subscribers,
        onProgress: (line) => console.error(`[${target}] ${line}`),
      });
      print(target === 'edge' ? 'through nginx and the router' : 'the router alone', report);
    }
  } finally {
    await edge?.stop();
  }
} finally {
  await stack.stop();
  rmSync(dir, { recursive: true, force: true });
  if (started) await infraDown('test');
}
