/**
 * npm run dev: the whole system on this machine.
 * Installs what is missing, starts PostgreSQL, PgBouncer and Redis (data in
 * .data/dev), applies migrations, starts the four subgraphs and the router,
 * then the edge (nginx, https://localhost:8443) and Prometheus (:9090), and
 * prints where to go. Ctrl-C stops everything, in order.
 */
import pinoPretty from 'pino-pretty';
import { DEV_AUDIENCE, DEV_ISSUER, ensureDevKeys } from './lib/dev-keys.js';
import { ensureDatabase } from './lib/database.js';
import { startStack, type Stack } from './lib/stack.js';
import { devStackOptions } from './lib/dev-stack.js';
import { infraDown, infraEnv, infraUp } from './infra.js';
import { mintUserToken } from '../lib/tokens.js';
import { composeFromConfig } from './lib/compose.js';
import { readFileSync, writeFileSync } from 'node:fs';
import { startEdge, type Edge } from './lib/edge.js';
import { startPrometheus, type LocalPrometheus } from './lib/prometheus.js';

const ROUTER_PORT = Number(process.env['PORT'] ?? 4000);
const EDGE_HTTP_PORT = Number(process.env['EDGE_HTTP_PORT'] ?? 8080);
const EDGE_HTTPS_PORT = Number(process.env['EDGE_HTTPS_PORT'] ?? 8443);
const PROMETHEUS_PORT = Number(process.env['PROMETHEUS_PORT'] ?? 9090);
const pretty = pinoPretty.prettyFactory({
  colorize: process.stdout.isTTY,
  translateTime: 'HH:MM:ss.l',
  ignore: 'pid,hostname,service',
  singleLine: true,
});

let stack: Stack | undefined;
let edge: Edge | undefined;
let prometheus: LocalPrometheus | undefined;
let stopping = false;
const stopAll = async (code: number) => {
  if (stopping) return;
  stopping = true;
  process.stderr.write('\n[dev] stopping services…\n');
  await Promise.all([edge?.stop(), prometheus?.stop()]);
  await stack?.stop();
  await infraDown('dev');
  process.stderr.write('[dev] stopped. Data is kept in .data/dev for the next run.\n');
  process.exit(code);
};
process.on('SIGINT', () => void stopAll(0));
process.on('SIGTERM', () => void stopAll(0));

try {
  await infraUp('dev');
  const infra = infraEnv('dev');
  await ensureDatabase({ migrate: true, directUrl: infra.DIRECT_DATABASE_URL });

  // Keep the committed supergraph in step with the SDL files being edited.
  const { supergraphSdl } = composeFromConfig('schema/supergraph.yaml');
  if (readFileSync('schema/supergraph.graphql', 'utf8') !== supergraphSdl) {
    writeFileSync('schema/supergraph.graphql', supergraphSdl);
    process.stderr.write('[dev] schema/supergraph.graphql was stale: recomposed\n');
  }

  const keys = await ensureDevKeys();
  const devToken = await mintUserToken({
    privateJwk: keys.user.privateJwk,
    sub: 'dev-teacher',
    role: 'TEACHER',
    issuer: DEV_ISSUER,
    audience: DEV_AUDIENCE,
    expiresIn: '12h',
  });

  stack = await startStack(
    devStackOptions({
      infra,
      keys,
      devToken,
      routerPort: ROUTER_PORT,
      parentEnv: process.env,
      onLine: (service, line) => {
        const text = line.startsWith('{') ? pretty(line).trimEnd() : line;
        process.stdout.write(`${service.padEnd(6)}| ${text}\n`);
      },
    }),
  );

  // The edge in front of the router (TLS with a self-signed certificate, per-IP limits, caching, files) and Prometheus.
  // Either may fail to start (a port in use): the router on its own port still works.
  try {
    edge = await startEdge({
      dir: '.data/dev/edge',
      httpPort: EDGE_HTTP_PORT,
      httpsPort: EDGE_HTTPS_PORT,
      router: `127.0.0.1:${ROUTER_PORT}`,
      blobDir: '.data/dev/blobs',
    });
  } catch (err) {
    process.stderr.write(`[dev] the edge (nginx) did not start, use the router directly: ${(err as Error).message}\n`);
  }
  try {
    // Where each service's /metrics is (the router's is on its internal port, OPS_PORT).
    const hostPort = (name: string) => new URL(stack!.services[name]!.opsUrl).host;
    prometheus = await startPrometheus({
      dir: '.data/dev/prometheus',
      port: PROMETHEUS_PORT,
      targets: {
        router: [hostPort('router')],
        rag: [hostPort('rag')],
        chat: [hostPort('chat')],
        exam: [hostPort('exam')],
        tasks: [hostPort('tasks')],
        worker: Object.keys(stack.services)
          .filter((n) => n.startsWith('worker-'))
          .map(hostPort),
      },
    });
  } catch (err) {
    process.stderr.write(`[dev] Prometheus did not start: ${(err as Error).message}\n`);
  }

  const url = `http://localhost:${ROUTER_PORT}/graphql`;
  const edgeLines = edge
    ? `  HTTPS (edge)    ${edge.httpsUrl}/graphql  (nginx: TLS with a self-signed certificate, per-IP limits, files)
  HTTP (edge)     ${edge.httpUrl}  (redirects to HTTPS)
`
    : '';
  const prometheusLine = prometheus
    ? `  Prometheus      ${prometheus.url}  (the services' metrics, the rules and alerts of monitoring/)\n`
    : '';
  const tutorEngine =
    process.env['LLM_URL'] && process.env['LLM_MODEL']
      ? `model ${process.env['LLM_MODEL']} at ${process.env['LLM_URL']}`
      : 'offline (extractive answers; set LLM_URL and LLM_MODEL for a language model)';
  process.stdout.write(`
  AI-Teacher is running.

${edgeLines}  GraphQL         ${url}
  Apollo Sandbox  ${url}  (open it in a browser; the token below is pre-filled)
  Subscriptions   ws://localhost:${ROUTER_PORT}/graphql
  Uploads         POST http://localhost:${ROUTER_PORT}/uploads  (multipart field "file", same token)
  Metrics         ${stack.services['router']!.opsUrl}/metrics  (internal port; worker: http://localhost:4010/metrics)
${prometheusLine}
  Tutor engine    ${tutorEngine}

  Development token (user dev-teacher, role TEACHER, 12 h):
  ${devToken}

  Another user: npm run token -- --sub alice --role STUDENT
  Try: curl -s ${url} -H 'content-type: application/json' -H "authorization: Bearer <token>" \\
         -d '{"query":"mutation { createCourse(input: { title: \\"Physics\\" }) { id title } }"}'

  Ctrl-C stops everything.
`);
  await Promise.race(Object.values(stack.services).map((s) => s.exited.then((code) => ({ name: s.name, code })))).then(({ name, code }) => {
    if (!stopping) {
      process.stderr.write(`[dev] ${name} exited (${code}); stopping the rest\n`);
      void stopAll(1);
    }
  });
} catch (err) {
  process.stderr.write(`[dev] ${(err as Error).message}\n`);
  await stopAll(1);
}
