/**
 * The services a test tier needs, for the test runner and Jest's global setup.
 *
 *   tsx scripts/test-services.ts up [--services]   generate the Prisma client; with
 *                                                  --services also start (or reuse) the
 *                                                  test profile and apply the migrations
 *   tsx scripts/test-services.ts down              stop the test profile
 *
 * `up` prints one JSON line on stdout: { "started": true|false }, true when it
 * started a service that was not running (so the caller knows to stop it).
 */
import { realpathSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
import { ensureDatabase } from './lib/database.js';
import { infraDown, infraEnv, infraUp } from './infra.js';

export async function testServicesUp(services: boolean): Promise<{ started: boolean }> {
  // Even unit tests import code that needs the generated Prisma client.
  await ensureDatabase({ migrate: false });
  if (!services) return { started: false };
  const started = (await infraUp('test')).started.length > 0;
  await ensureDatabase({ migrate: true, directUrl: infraEnv('test').DIRECT_DATABASE_URL });
  return { started };
}

/** Only as a command: scripts/test.ts imports this file with its own arguments. */
const isEntry = process.argv[1] !== undefined && import.meta.url === pathToFileURL(realpathSync(process.argv[1])).href;
if (isEntry) {
  const [command, ...flags] = process.argv.slice(2);
  if (command === 'up') {
    const result = await testServicesUp(flags.includes('--services'));
    process.stdout.write(`${JSON.stringify(result)}\n`);
  } else if (command === 'down') {
    await infraDown('test');
  } else {
    process.stderr.write('usage: tsx scripts/test-services.ts up [--services] | down\n');
    process.exit(2);
  }
}
