/**
 * npm run dev: the whole system on this machine.
 * Installs what is missing, starts PostgreSQL, PgBouncer and Redis (data in
 * .data/dev), applies migrations, starts the four subgraphs and the router,
 * and prints where to go. Ctrl-C stops everything, in order.
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

const ROUTER_PORT = Number(process.env['PORT'] ?? 4000);
const pretty = pinoPretty.prettyFactory({
  colorize: process.stdout.isTTY,
  translateTime: 'HH:MM:ss.l',
  ignore: 'pid,hostname,service',
  singleLine: true,
});

let stack: Stack | undefined;
let stopping = false;
const stopAll = async (code: number) => {
  if (stopping) return;
  stopping = true;
  process.stderr.write('\n[dev] stopping services…\n');
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

  const url = `http://localhost:${ROUTER_PORT}/graphql`;
  const tutorEngine =
    process.env['LLM_URL'] && process.env['LLM_MODEL']
      ? `model ${process.env['LLM_MODEL']} at ${process.env['LLM_URL']}`
      : 'offline (extractive answers; set LLM_URL and LLM_MODEL for a language model)';
  process.stdout.write(`
  AI-Teacher is running.

  GraphQL         ${url}
  Apollo Sandbox  ${url}  (open it in a browser; the token below is pre-filled)
  Subscriptions   ws://localhost:${ROUTER_PORT}/graphql
  Uploads         POST http://localhost:${ROUTER_PORT}/uploads  (multipart field "file", same token)
  Metrics         http://localhost:${ROUTER_PORT}/metrics  (worker: http://localhost:4010/metrics)

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
