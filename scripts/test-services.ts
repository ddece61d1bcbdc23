/**
 * The services a test tier needs, for the test runner and Jest's global setup.
 *
 *   tsx scripts/test-services.ts up [--services] [--profile faults]
 *       generate the Prisma client; with --services also start (or reuse) the test
 *       profile (or the faults tier's own, which its tests kill and restart) and apply
 *       the migrations
 *   tsx scripts/test-services.ts down [--profile faults]   stop that profile
 *
 * `up` prints one JSON line on stdout: { "started": true|false }, true when it
 * started a service that was not running (so the caller knows to stop it).
 */
import { realpathSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
import { ensureDatabase } from './lib/database.js';
import { infraDown, infraEnv, infraUp } from './infra.js';

export type TestProfile = 'test' | 'faults';

export async function testServicesUp(services: boolean, profile: TestProfile = 'test'): Promise<{ started: boolean }> {
  // Even unit tests import code that needs the generated Prisma client.
  await ensureDatabase({ migrate: false });
  if (!services) return { started: false };
  const started = (await infraUp(profile)).started.length > 0;
  await ensureDatabase({ migrate: true, directUrl: infraEnv(profile).DIRECT_DATABASE_URL });
  return { started };
}

/** Only as a command: scripts/test.ts imports this file with its own arguments. */
const isEntry = process.argv[1] !== undefined && import.meta.url === pathToFileURL(realpathSync(process.argv[1])).href;
if (isEntry) {
  const [command, ...flags] = process.argv.slice(2);
  const profile: TestProfile = flags.includes('--profile') && flags[flags.indexOf('--profile') + 1] === 'faults' ? 'faults' : 'test';
  if (command === 'up') {
    const result = await testServicesUp(flags.includes('--services'), profile);
    process.stdout.write(`${JSON.stringify(result)}\n`);
  } else if (command === 'down') {
    await infraDown(profile);
  } else {
    process.stderr.write('usage: tsx scripts/test-services.ts up [--services] [--profile faults] | down [--profile faults]\n');
    process.exit(2);
  }
}
