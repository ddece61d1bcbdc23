import { spawnSync } from 'node:child_process';
import { existsSync, statSync } from 'node:fs';
import { migrate } from '../../lib/db/migrate.js';

const SCHEMA = 'prisma/schema.prisma';
const GENERATED = 'lib/db/generated/index.js';

/**
 * Generates the Prisma client when it is missing or older than the schema
 * (npm does not run Prisma's install scripts here), and applies the committed
 * migrations over the direct connection when asked.
 */
export async function ensureDatabase({ migrate: apply, directUrl }: { migrate: boolean; directUrl?: string | undefined }) {
  if (!existsSync(GENERATED) || statSync(SCHEMA).mtimeMs > statSync(GENERATED).mtimeMs) {
    process.stderr.write('[db] generating the Prisma client\n');
    const run = spawnSync(process.execPath, ['node_modules/prisma/build/index.js', 'generate'], { stdio: ['ignore', 'ignore', 'inherit'] });
    if (run.status !== 0) throw new Error('prisma generate failed');
  }
  if (apply) {
    if (!directUrl) throw new Error('ensureDatabase: directUrl is required to migrate');
    await migrate(directUrl, (message) => process.stderr.write(`[db] ${message}\n`));
  }
}
