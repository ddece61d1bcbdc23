// Jest global teardown: stop the test profile's services if this run's setup started them.
import { spawnSync } from 'node:child_process';

export default async function teardown() {
  const started = globalThis.__TEST_SERVICES_STARTED__;
  if (!started) return;
  delete globalThis.__TEST_SERVICES_STARTED__;
  spawnSync(process.execPath, ['--import', 'tsx', 'scripts/test-services.ts', 'down', '--profile', started.profile], {
    cwd: started.rootDir,
    stdio: 'inherit',
  });
}
