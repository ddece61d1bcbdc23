// Jest 30, TypeScript through @swc/jest, native ES modules.
//
// The code is ESM with top-level await and import.meta, so Jest runs it as ESM,
// which needs Node's --experimental-vm-modules. `npm test` passes the flag; for
// `npx jest path/to/file.test.ts` this file re-runs Jest with it (Jest reads its
// config before it loads any test, so nothing has run yet).
//
// One project per tier, selected by file suffix. Tiers that need services have a
// global setup that starts the test profile's PostgreSQL, PgBouncer and Redis when
// they are not up (and stops them afterwards if it started them).
import { spawnSync } from 'node:child_process';

const FLAG = '--experimental-vm-modules';
if (!process.execArgv.includes(FLAG) && !(process.env.NODE_OPTIONS ?? '').includes(FLAG)) {
  const run = spawnSync(process.execPath, [FLAG, '--no-warnings=ExperimentalWarning', ...process.argv.slice(1)], {
    stdio: 'inherit',
  });
  process.exit(run.status ?? 1);
}

const swc = {
  jsc: {
    parser: { syntax: 'typescript' },
    target: 'es2022',
    keepClassNames: true,
  },
  module: { type: 'es6' },
  sourceMaps: 'inline',
};

const ROOTS = ['<rootDir>/lib', '<rootDir>/router', '<rootDir>/subgraphs', '<rootDir>/workers', '<rootDir>/scripts', '<rootDir>/tests'];

/** @param {string} name @param {string[]} testMatch @param {string[]} ignore @param {boolean | 'faults'} services */
function tier(name, testMatch, ignore, services) {
  return {
    displayName: name,
    roots: ROOTS,
    testMatch,
    testPathIgnorePatterns: ['/node_modules/', '/lib/db/generated/', ...ignore],
    testEnvironment: 'node',
    extensionsToTreatAsEsm: ['.ts'],
    moduleFileExtensions: ['ts', 'js', 'mjs', 'cjs', 'json'],
    moduleNameMapper: {
      '^@lib/(.*)\\.js$': '<rootDir>/lib/$1',
      '^(\\.{1,2}/.*)\\.js$': '$1',
    },
    transform: { '^.+\\.ts$': ['@swc/jest', swc] },
    globalSetup: `<rootDir>/tests/support/jest-setup-${services === 'faults' ? 'faults' : services ? 'services' : 'client'}.mjs`,
    globalTeardown: `<rootDir>/tests/support/jest-teardown.mjs`,
  };
}

const OTHER_TIERS = ['\\.int\\.test\\.ts$', '\\.e2e\\.test\\.ts$', '\\.faults\\.test\\.ts$', '\\.corpus\\.test\\.ts$'];

/** @type {import('jest').Config} */
export default {
  projects: [
    tier('unit', ['**/*.test.ts'], OTHER_TIERS, false),
    tier('int', ['**/*.int.test.ts'], [], true),
    tier('e2e', ['**/*.e2e.test.ts'], [], true),
    // Real processes killed, stopped and restarted: PostgreSQL, PgBouncer and Redis of its own (the faults profile).
    tier('faults', ['**/*.faults.test.ts'], [], 'faults'),
    tier('corpus', ['**/*.corpus.test.ts'], [], true),
  ],
  coverageProvider: 'v8',
  coverageReporters: ['text-summary', 'lcov'],
  collectCoverageFrom: ['{lib,router,subgraphs,workers}/**/*.ts', '!**/*.test.ts', '!lib/db/generated/**'],
  // Stacks of real processes take a while to start on two shared cores.
  testTimeout: 120_000,
  // Jest must exit by itself: a test that leaves a handle open is a bug.
  detectOpenHandles: false,
};
