// Jest global setup (one per tier project): make sure the Prisma client is
// generated and, for tiers that need them, that the test profile's PostgreSQL,
// PgBouncer and Redis are up with the migrations applied. `npm test` does this
// once for every tier and sets TEST_SERVICES_READY; `npx jest <file>` gets it here.
import { spawnSync } from 'node:child_process';

export default async function setup(_globalConfig, projectConfig) {
  // The faults tier has services of its own (its tests kill them): always its setup's.
  if (projectConfig.globals?.TEST_NEEDS_SERVICES === 'faults') return up(projectConfig, ['--services', '--profile', 'faults'], 'faults');
  const services = projectConfig.globals?.TEST_NEEDS_SERVICES === true;
  if (process.env.TEST_SERVICES_READY === (services ? 'services' : 'client') || process.env.TEST_SERVICES_READY === 'services') return;
  up(projectConfig, services ? ['--services'] : [], 'test');
  process.env.TEST_SERVICES_READY = services ? 'services' : 'client';
}

function up(projectConfig, flags, profile) {
  const run = spawnSync(process.execPath, ['--import', 'tsx', 'scripts/test-services.ts', 'up', ...flags], {
    cwd: projectConfig.rootDir,
    stdio: ['ignore', 'pipe', 'inherit'],
    encoding: 'utf8',
  });
  if (run.status !== 0) throw new Error(`starting the ${profile} services failed (exit ${run.status})`);
  const { started } = JSON.parse(run.stdout.trim().split('\n').pop());
  if (started) globalThis.__TEST_SERVICES_STARTED__ = { rootDir: projectConfig.rootDir, profile };
}
