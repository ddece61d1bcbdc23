// Jest global setup: make sure the Prisma client is generated and, for tiers that need them, that
// the test profile's PostgreSQL, PgBouncer and Redis (or the faults tier's own) are up with the
// migrations applied. `npm test` does this once for every tier and sets TEST_SERVICES_READY;
// `npx jest <files>` gets it here.
//
// Jest runs a global setup module once per run however many projects name it, with the first
// project's config: so each need has a file of its own (jest-setup-{client,services,faults}.mjs),
// and a run mixing tiers (`npx jest a.test.ts b.e2e.test.ts c.faults.test.ts`) gets all it needs.
import { spawnSync } from 'node:child_process';

/** @param {'client' | 'services' | 'faults'} need */
export async function setupFor(need, projectConfig) {
  // The faults tier has services of its own (its tests kill them): always its setup's.
  if (need === 'faults') return up(projectConfig, ['--services', '--profile', 'faults'], 'faults');
  if (process.env.TEST_SERVICES_READY === need || process.env.TEST_SERVICES_READY === 'services') return;
  up(projectConfig, need === 'services' ? ['--services'] : [], 'test');
  process.env.TEST_SERVICES_READY = need;
}

function up(projectConfig, flags, profile) {
  const run = spawnSync(process.execPath, ['--import', 'tsx', 'scripts/test-services.ts', 'up', ...flags], {
    cwd: projectConfig.rootDir,
    stdio: ['ignore', 'pipe', 'inherit'],
    encoding: 'utf8',
  });
  if (run.status !== 0) throw new Error(`starting the ${profile} services failed (exit ${run.status})`);
  const { started } = JSON.parse(run.stdout.trim().split('\n').pop());
  // Read by jest-teardown.mjs: every profile this run started is stopped at its end.
  if (started) (globalThis.__TEST_SERVICES_STARTED__ ??= []).push({ rootDir: projectConfig.rootDir, profile });
}
