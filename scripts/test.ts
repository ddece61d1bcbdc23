/**
 * npm test [-- unit|int|e2e|corpus ...]
 * Runs the test tiers in order (all of them by default). Tiers that need
 * services get the test profile's PostgreSQL, PgBouncer and Redis, started
 * here (and stopped at the end if this run started them).
 *
 *   unit    *.test.ts        no services
 *   int     *.int.test.ts    real PostgreSQL (through PgBouncer) and Redis
 *   e2e     *.e2e.test.ts    the whole stack as processes
 *   corpus  *.corpus.test.ts reads ../shared (skips, saying so, where absent)
 */
import { spawnSync } from 'node:child_process';
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { ensureDatabase } from './lib/database.js';
import { infraDown, infraEnv, infraUp } from './infra.js';

const TIERS = ['unit', 'int', 'e2e', 'corpus'] as const;
type Tier = (typeof TIERS)[number];
const ROOTS = ['lib', 'router', 'subgraphs', 'workers', 'scripts', 'tests'];

function tierOf(file: string): Tier | undefined {
  if (!file.endsWith('.test.ts')) return undefined;
  if (file.endsWith('.int.test.ts')) return 'int';
  if (file.endsWith('.e2e.test.ts')) return 'e2e';
  if (file.endsWith('.corpus.test.ts')) return 'corpus';
  return 'unit';
}

function walk(dir: string, out: string[] = []): string[] {
  let entries: string[];
  try {
    entries = readdirSync(dir);
  } catch {
    return out;
  }
  for (const name of entries) {
    if (name === 'node_modules' || name === 'generated' || name.startsWith('.')) continue;
    const path = join(dir, name);
    if (statSync(path).isDirectory()) walk(path, out);
    else out.push(path);
  }
  return out;
}

const requested = process.argv.slice(2).filter((a) => !a.startsWith('-'));
const unknown = requested.filter((t) => !(TIERS as readonly string[]).includes(t));
if (unknown.length) {
  console.error(`unknown tier(s): ${unknown.join(', ')}; tiers are ${TIERS.join(', ')}`);
  process.exit(2);
}
const tiers = (requested.length ? requested : TIERS) as Tier[];
const files = ROOTS.flatMap((root) => walk(root)).sort();

const needsServices = tiers.some((t) => t !== 'unit');
let started = false;
let env: Record<string, string> = {};
let failed = false;
try {
  // Even unit tests import code that needs the generated Prisma client.
  await ensureDatabase({ migrate: false });
  if (needsServices) {
    started = (await infraUp('test')).started.length > 0;
    env = { ...infraEnv('test') };
    await ensureDatabase({ migrate: true, directUrl: env['DIRECT_DATABASE_URL'] });
  }
  for (const tier of tiers) {
    const tierFiles = files.filter((f) => tierOf(f) === tier);
    if (tierFiles.length === 0) {
      console.log(`\n== ${tier}: no test files`);
      continue;
    }
    console.log(`\n== ${tier}: ${tierFiles.length} file(s)`);
    const run = spawnSync(process.execPath, ['--import', 'tsx', '--test', '--test-concurrency=1', ...tierFiles], {
      stdio: 'inherit',
      env: { ...process.env, ...env, NODE_ENV: 'test', TEST_TIER: tier },
    });
    if (run.status !== 0) {
      failed = true;
      console.error(`\n== ${tier}: FAILED`);
    }
  }
} finally {
  if (started) await infraDown('test');
}
process.exit(failed ? 1 : 0);
