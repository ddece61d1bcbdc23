// URLs for the database integration tests: DATABASE_URL / DIRECT_DATABASE_URL
// when set, otherwise the local `test` infra profile (scripts/infra.ts), which
// the test runner is expected to have started (`npm run infra:up -- --profile test`).
import { testInfra } from './infra.js';

export interface TestDbUrls {
  /** Through PgBouncer (transaction pooling). */
  pooled: string;
  /** Straight to PostgreSQL. */
  direct: string;
}

export function testDbUrls(): TestDbUrls {
  const urls = testInfra();
  return { pooled: urls.DATABASE_URL, direct: urls.DIRECT_DATABASE_URL };
}

/** Same server and credentials, another database. */
export function withDatabase(url: string, database: string): string {
  const u = new URL(url);
  u.pathname = `/${database}`;
  return u.toString();
}
