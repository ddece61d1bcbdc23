// Entry for `npm run dev` and `npm test` on a fresh clone: installs the npm
// dependencies when they are missing or older than the lockfile, then runs the
// TypeScript script named by the first argument with tsx. Plain JavaScript so
// that it needs nothing installed.
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, statSync } from 'node:fs';

const [script, ...args] = process.argv.slice(2);
if (!script) {
  console.error('usage: node scripts/bootstrap.mjs <script.ts> [args]');
  process.exit(2);
}

const marker = 'node_modules/.package-lock.json';
const stale = !existsSync(marker) || statSync('package-lock.json').mtimeMs > statSync(marker).mtimeMs;
if (stale) {
  console.error('[bootstrap] installing npm dependencies (npm ci)…');
  const npm = spawnSync('npm', ['ci', '--no-audit', '--no-fund'], { stdio: 'inherit' });
  if (npm.status !== 0) process.exit(npm.status ?? 1);
}

const child = spawn(process.execPath, ['--import', 'tsx', script, ...args], { stdio: 'inherit' });
// Ctrl-C reaches the child too (same process group); SIGTERM is passed on. The child shuts down and reports its own code.
process.on('SIGINT', () => {});
process.on('SIGTERM', () => child.kill('SIGTERM'));
child.on('exit', (code, signal) => process.exit(code ?? (signal ? 1 : 0)));
