import { infraEnv } from '../../scripts/infra.js';

/** URLs of the test profile's PostgreSQL, PgBouncer and Redis (started by `npm test`). */
export function testInfra(): { DATABASE_URL: string; DIRECT_DATABASE_URL: string; REDIS_URL: string } {
  const fallback = infraEnv('test');
  return {
    DATABASE_URL: process.env['DATABASE_URL'] ?? fallback.DATABASE_URL,
    DIRECT_DATABASE_URL: process.env['DIRECT_DATABASE_URL'] ?? fallback.DIRECT_DATABASE_URL,
    REDIS_URL: process.env['REDIS_URL'] ?? fallback.REDIS_URL,
  };
}
