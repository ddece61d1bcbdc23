// Jest global teardown: stop every profile this run's setup started (the test profile, the faults one).
import { spawnSync } from 'node:child_process';

export default async function teardown() {
  const started = globalThis.__TEST_SERVICES_STARTED__ ?? [];
  delete globalThis.__TEST_SERVICES_STARTED__;
  for (const { rootDir, profile } of started) {
    spawnSync(process.execPath, ['--import', 'tsx', 'scripts/test-services.ts', 'down', '--profile', profile], {
      cwd: rootDir,
      stdio: 'inherit',
    });
  }
}
