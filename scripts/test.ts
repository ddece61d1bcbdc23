/**
 * npm test [-- <tier> ...] [jest options and paths]
 *
 * Runs the test tiers (Jest projects, see jest.config.mjs) in order, all of them
 * by default. Tiers that need services get the test profile's PostgreSQL,
 * PgBouncer and Redis, started once here (and stopped at the end if this run
 * started them). Any other argument goes to Jest: `npm test -- -t "refuses"`,
 * `npm test -- unit lib/search`, `npm test -- unit int --coverage`.
 *
 *   unit    *.test.ts        no services, files in parallel
 *   int     *.int.test.ts    real PostgreSQL (through PgBouncer) and Redis, in band
 *   e2e     *.e2e.test.ts    the whole stack as processes, in band
 *   faults  *.faults.test.ts the stack while its PostgreSQL, PgBouncer, Redis and subgraphs are
 *                            killed, stalled and restarted (a profile of its own), and under load
 *   corpus  *.corpus.test.ts reads ../shared (skips, saying so, where absent), in band
 *
 * The last line sums every tier: `tests: N passed, N failed, N skipped`.
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { infraDown } from './infra.js';
import { testServicesUp } from './test-services.js';

const TIERS = ['unit', 'int', 'e2e', 'faults', 'corpus'] as const;
type Tier = (typeof TIERS)[number];

const args = process.argv.slice(2);
const requested = args.filter((a): a is Tier => (TIERS as readonly string[]).includes(a));
const passthrough = args.filter((a) => !(TIERS as readonly string[]).includes(a));
const tiers: Tier[] = requested.length ? requested : [...TIERS];
const coverage = passthrough.includes('--coverage');

const RESULTS = '.data/test-results';
rmSync(RESULTS, { recursive: true, force: true });
mkdirSync(RESULTS, { recursive: true });

interface JestJson {
  numPassedTests: number;
  numFailedTests: number;
  numPendingTests: number;
  numTodoTests: number;
  numRuntimeErrorTestSuites: number;
  success: boolean;
}

// The faults tier starts its own profile (its Jest global setup).
const needsServices = tiers.some((t) => t !== 'unit' && t !== 'faults');
let started = false;
let failed = false;
const totals = { passed: 0, failed: 0, skipped: 0, brokenSuites: 0 };
try {
  started = (await testServicesUp(needsServices)).started;
  for (const tier of tiers) {
    console.log(`\n== ${tier}`);
    const output = join(RESULTS, `${tier}.json`);
    const jestArgs = [
      '--experimental-vm-modules',
      '--no-warnings=ExperimentalWarning',
      'node_modules/jest/bin/jest.js',
      '--selectProjects',
      tier,
      '--passWithNoTests',
      '--json',
      '--outputFile',
      output,
      // Unit tests share nothing and run on every core; the others share the
      // test profile's services and run one file at a time.
      ...(tier === 'unit' ? [] : ['--runInBand']),
      ...(coverage ? ['--coverageDirectory', `coverage/${tier}`] : []),
      ...passthrough,
    ];
    const run = spawnSync(process.execPath, jestArgs, {
      stdio: 'inherit',
      env: { ...process.env, NODE_ENV: 'test', TEST_SERVICES_READY: needsServices ? 'services' : 'client' },
    });
    let result: JestJson | undefined;
    try {
      result = JSON.parse(readFileSync(output, 'utf8')) as JestJson;
    } catch {
      result = undefined;
    }
    if (result) {
      totals.passed += result.numPassedTests;
      totals.failed += result.numFailedTests;
      totals.skipped += result.numPendingTests + result.numTodoTests;
      totals.brokenSuites += result.numRuntimeErrorTestSuites;
    }
    if (run.status !== 0 || !result) {
      failed = true;
      console.error(`\n== ${tier}: FAILED${result ? '' : ' (Jest wrote no results)'}`);
    }
  }
} finally {
  if (started) await infraDown('test');
}
if (totals.brokenSuites) console.log(`\n${totals.brokenSuites} test file(s) failed to run`);
console.log(`\ntests: ${totals.passed} passed, ${totals.failed + totals.brokenSuites} failed, ${totals.skipped} skipped`);
process.exit(failed ? 1 : 0);
