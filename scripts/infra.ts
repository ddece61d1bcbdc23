// Local infrastructure for development and tests: PostgreSQL, PgBouncer
// (transaction pooling) and Redis, run as plain local processes from Debian's
// packages, with their data under .data/<profile>/ and on non-default ports.
//
//   npx tsx scripts/infra.ts up   --profile dev|test   start (or reuse) all services
//   npx tsx scripts/infra.ts down --profile dev|test   stop them (idempotent)
//   npx tsx scripts/infra.ts env  --profile dev|test   print DATABASE_URL, DIRECT_DATABASE_URL, REDIS_URL
//
// Importable: infraUp(profile), infraDown(profile), infraEnv(profile).
// Ports can be overridden with PG_PORT, PGBOUNCER_PORT, REDIS_PORT.
//
// PostgreSQL and PgBouncer refuse to run as root: when this script runs as
// root, their files are owned by the `postgres` system user and their binaries
// run through `runuser -u postgres --`.
import { spawnSync, type SpawnSyncReturns } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  chmodSync,
  chownSync,
  closeSync,
  existsSync,
  lstatSync,
  mkdirSync,
  openSync,
  readFileSync,
  readdirSync,
  realpathSync,
  rmSync,
  symlinkSync,
  unlinkSync,
  writeFileSync,
  writeSync,
} from 'node:fs';
import { connect } from 'node:net';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { Redis } from 'ioredis';
import pg from 'pg';
import { renderFile } from './lib/template.js';

/**
 * dev: `npm run dev`. test: the test tiers. faults: the faults tier, whose tests kill and restart
 * these processes (so nothing else ever shares them).
 */
export type Profile = 'dev' | 'test' | 'faults';
export const PROFILES: readonly Profile[] = ['dev', 'test', 'faults'];

export interface InfraEnv {
  /** Through PgBouncer (transaction pooling): what services use. */
  DATABASE_URL: string;
  /** Straight to PostgreSQL: migrations, advisory locks, LISTEN/NOTIFY. */
  DIRECT_DATABASE_URL: string;
  REDIS_URL: string;
}

export type ServiceName = 'postgres' | 'pgbouncer' | 'redis';

export interface InfraUpResult {
  env: InfraEnv;
  started: ServiceName[];
  reused: ServiceName[];
}

interface Ports {
  postgres: number;
  pgbouncer: number;
  redis: number;
}

const DEFAULT_PORTS: Record<Exclude<Profile, 'faults'>, Ports> = {
  dev: { postgres: 55432, pgbouncer: 56432, redis: 56379 },
  test: { postgres: 55442, pgbouncer: 56442, redis: 56389 },
};
/** The faults profile sits next to the test profile (whose ports PG_PORT & co. may move): +5 each, or FAULTS_*_PORT. */
const FAULTS_PORT_OFFSET = 5;

const DB_USER = 'aiteacher';
const DB_PASSWORD = 'aiteacher';
const DB_NAME = 'aiteacher';
const HOST = '127.0.0.1';
const PG_SYSTEM_USER = 'postgres';

/**
 * Debian packages the local infrastructure needs, each with a check telling
 * whether it is already there: the data services, the edge and monitoring
 * (nginx, Prometheus with promtool), OCR for scanned pages (tesseract with
 * English, poppler's pdftoppm) and xmllint for the exam exports' checks.
 */
export const REQUIRED_PACKAGES: readonly { pkg: string; present: () => boolean }[] = [
  { pkg: 'postgresql', present: () => findPgBinDir() !== null },
  { pkg: 'redis-server', present: () => findExecutable('redis-server') !== null },
  { pkg: 'pgbouncer', present: () => findExecutable('pgbouncer') !== null },
  { pkg: 'nginx-light', present: () => findExecutable('nginx') !== null },
  { pkg: 'prometheus', present: () => findExecutable('prometheus') !== null && findExecutable('promtool') !== null },
  { pkg: 'tesseract-ocr', present: () => findExecutable('tesseract') !== null },
  { pkg: 'tesseract-ocr-eng', present: () => existsSync('/usr/share/tesseract-ocr/5/tessdata/eng.traineddata') },
  { pkg: 'poppler-utils', present: () => findExecutable('pdftoppm') !== null },
  { pkg: 'libxml2-utils', present: () => findExecutable('xmllint') !== null },
];

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
/** The services' own configuration files, shared with docker-compose.yml (see config/). */
export const CONFIG_DIR = join(ROOT, 'config');
const IS_ROOT = typeof process.getuid === 'function' && process.getuid() === 0;

// ---------------------------------------------------------------------------
// Small helpers

function log(message: string): void {
  process.stderr.write(`[infra] ${message}\n`);
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

function envPort(name: string, fallback: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n) || n <= 0 || n > 65535) throw new Error(`${name}=${raw} is not a valid port`);
  return n;
}

export function infraPorts(profile: Profile): Ports {
  if (profile === 'faults') {
    const t = infraPorts('test');
    return {
      postgres: envPort('FAULTS_PG_PORT', t.postgres + FAULTS_PORT_OFFSET),
      pgbouncer: envPort('FAULTS_PGBOUNCER_PORT', t.pgbouncer + FAULTS_PORT_OFFSET),
      redis: envPort('FAULTS_REDIS_PORT', t.redis + FAULTS_PORT_OFFSET),
    };
  }
  const d = DEFAULT_PORTS[profile];
  return {
    postgres: envPort('PG_PORT', d.postgres),
    pgbouncer: envPort('PGBOUNCER_PORT', d.pgbouncer),
    redis: envPort('REDIS_PORT', d.redis),
  };
}

export function infraEnv(profile: Profile): InfraEnv {
  const p = infraPorts(profile);
  const cred = `${DB_USER}:${DB_PASSWORD}`;
  return {
    DATABASE_URL: `postgresql://${cred}@${HOST}:${p.pgbouncer}/${DB_NAME}`,
    DIRECT_DATABASE_URL: `postgresql://${cred}@${HOST}:${p.postgres}/${DB_NAME}`,
    REDIS_URL: `redis://${HOST}:${p.redis}`,
  };
}

function findExecutable(name: string): string | null {
  const dirs = [
    ...(process.env.PATH ?? '').split(':').filter(Boolean),
    '/usr/local/sbin',
    '/usr/local/bin',
    '/usr/sbin',
    '/usr/bin',
    '/sbin',
    '/bin',
  ];
  for (const d of dirs) {
    const p = join(d, name);
    if (existsSync(p)) return p;
  }
  return null;
}

/** Highest-versioned /usr/lib/postgresql/<v>/bin that has a postgres binary (or $PG_BIN_DIR). */
function findPgBinDir(): string | null {
  const override = process.env.PG_BIN_DIR;
  if (override) return existsSync(join(override, 'postgres')) ? override : null;
  const base = '/usr/lib/postgresql';
  if (!existsSync(base)) return null;
  const versions = readdirSync(base)
    .filter((v) => existsSync(join(base, v, 'bin', 'postgres')))
    .sort((a, b) => Number.parseFloat(b) - Number.parseFloat(a));
  const top = versions[0];
  return top === undefined ? null : join(base, top, 'bin');
}

interface RunOptions {
  /** Run as the postgres system user when we are root. */
  asPostgres?: boolean;
  timeoutMs?: number;
  /** Send the child's output to our stderr instead of capturing it. */
  passthrough?: boolean;
  env?: NodeJS.ProcessEnv;
}

function run(cmd: string, args: readonly string[], opts: RunOptions = {}): SpawnSyncReturns<string> {
  const [file, argv] = opts.asPostgres && IS_ROOT ? ['runuser', ['-u', PG_SYSTEM_USER, '--', cmd, ...args]] : [cmd, [...args]];
  const res = spawnSync(file, argv, {
    // The postgres user may not be able to read our cwd.
    cwd: '/',
    encoding: 'utf8',
    // Daemons started from here must not keep our pipes open, hence 'ignore'
    // for stdin and files/pipes that pg_ctl/pgbouncer/redis close on detach.
    stdio: opts.passthrough ? ['ignore', 2, 2] : ['ignore', 'pipe', 'pipe'],
    timeout: opts.timeoutMs ?? 120_000,
    env: opts.env ?? process.env,
  });
  if (res.error) throw new Error(`${file} ${argv.join(' ')}: ${res.error.message}`);
  return res;
}

function runOk(cmd: string, args: readonly string[], opts: RunOptions = {}): string {
  const res = run(cmd, args, opts);
  if (res.status !== 0) {
    const out = `${res.stdout ?? ''}${res.stderr ?? ''}`.trim();
    throw new Error(`${cmd} ${args.join(' ')} exited with ${res.status ?? res.signal}${out ? `:\n${out}` : ''}`);
  }
  return res.stdout ?? '';
}

function tail(path: string, lines = 20): string {
  try {
    return readFileSync(path, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
  } catch {
    return '(no log)';
  }
}

/** Process alive and its command name is `comm` (guards against pid reuse after a reboot). */
function processIs(pid: number, comm: string): boolean {
  try {
    process.kill(pid, 0);
  } catch (err) {
    // EPERM means it exists but belongs to another user.
    if ((err as NodeJS.ErrnoException).code !== 'EPERM') return false;
  }
  try {
    // A zombie (killed, not reaped: PID 1 of a container may never reap) is gone.
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    if (stat.slice(stat.lastIndexOf(')') + 2).startsWith('Z')) return false;
    return readFileSync(`/proc/${pid}/comm`, 'utf8').trim().startsWith(comm);
  } catch {
    return !existsSync('/proc/self'); // no procfs: trust kill(0); with procfs the process is gone
  }
}

function readPid(pidfile: string): number | null {
  try {
    const first = readFileSync(pidfile, 'utf8').split('\n')[0]?.trim() ?? '';
    const pid = Number(first);
    return Number.isInteger(pid) && pid > 0 ? pid : null;
  } catch {
    return null;
  }
}

async function waitGone(pid: number, comm: string, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (!processIs(pid, comm)) return true;
    await sleep(100);
  }
  return !processIs(pid, comm);
}

function portOpen(port: number, timeoutMs = 500): Promise<boolean> {
  return new Promise((resolvePromise) => {
    const sock = connect({ host: HOST, port });
    const done = (ok: boolean) => {
      sock.destroy();
      resolvePromise(ok);
    };
    sock.setTimeout(timeoutMs, () => done(false));
    sock.once('connect', () => done(true));
    sock.once('error', () => done(false));
  });
}

async function retryUntil<T>(what: string, timeoutMs: number, fn: () => Promise<T>): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let lastErr: unknown;
  while (Date.now() < deadline) {
    try {
      return await fn();
    } catch (err) {
      lastErr = err;
      await sleep(200);
    }
  }
  throw new Error(`${what} not ready after ${timeoutMs} ms: ${(lastErr as Error | undefined)?.message ?? lastErr}`);
}

async function pgSelect1(connectionString: string): Promise<void> {
  const client = new pg.Client({ connectionString, connectionTimeoutMillis: 2000 });
  client.on('error', () => {});
  try {
    await client.connect();
    await client.query('SELECT 1');
  } finally {
    await client.end().catch(() => {});
  }
}

async function redisPing(url: string): Promise<void> {
  const redis = new Redis(url, {
    lazyConnect: true,
    connectTimeout: 2000,
    maxRetriesPerRequest: 0,
    enableOfflineQueue: false,
    retryStrategy: () => null,
  });
  redis.on('error', () => {});
  try {
    await redis.connect();
    const pong = await redis.ping();
    if (pong !== 'PONG') throw new Error(`unexpected PING reply ${pong}`);
  } finally {
    redis.disconnect();
  }
}

// ---------------------------------------------------------------------------
// Packages

function isDebianLike(): boolean {
  try {
    const osr = readFileSync('/etc/os-release', 'utf8');
    return /^(ID|ID_LIKE)=.*\b(debian|ubuntu)\b/m.test(osr);
  } catch {
    return false;
  }
}

export function ensurePackages(packages: readonly { pkg: string; present: () => boolean }[] = REQUIRED_PACKAGES): void {
  const missing = packages.filter((p) => !p.present()).map((p) => p.pkg);
  if (missing.length === 0) return;
  const installArgs = ['install', '-y', '--no-install-recommends', ...missing];
  if (!IS_ROOT || !isDebianLike()) {
    throw new Error(
      `missing system packages: ${missing.join(', ')}. Install them with:\n` +
        `  sudo apt-get update && sudo apt-get ${installArgs.join(' ')}`,
    );
  }
  log(`installing missing packages: ${missing.join(' ')}`);
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  runOk('apt-get', ['update'], { passthrough: true, env, timeoutMs: 600_000 });
  runOk('apt-get', installArgs, { passthrough: true, env, timeoutMs: 900_000 });
  const still = packages.filter((p) => !p.present()).map((p) => p.pkg);
  if (still.length > 0) throw new Error(`packages still missing after apt-get install: ${still.join(', ')}`);
}

// ---------------------------------------------------------------------------
// Layout
//
// .data/<profile>/
//   infra.lock                 held while `up`/`down` run
//   pg/                        owned by the postgres user (or a symlink, see below)
//     data/                    PGDATA
//     postgres.log
//     pgbouncer.ini, userlist.txt, pgbouncer.pid, pgbouncer.log
//   redis/                     redis.conf, redis.pid, redis.log, AOF and RDB files
//
// When running as root and the postgres user cannot reach .data (a checkout
// below a 0700 directory, e.g. mktemp -d), pg/ is a symlink to
// /var/lib/aiteacher/<hash of the .data path>/pg and the real path is used.

interface Layout {
  base: string;
  lock: string;
  pgLink: string;
  redisDir: string;
}

function layout(profile: Profile): Layout {
  const base = join(ROOT, '.data', profile);
  return { base, lock: join(base, 'infra.lock'), pgLink: join(base, 'pg'), redisDir: join(base, 'redis') };
}

interface PgPaths {
  dir: string;
  data: string;
  log: string;
  bouncerIni: string;
  bouncerUsers: string;
  bouncerPid: string;
  bouncerLog: string;
}

function pgPaths(dir: string): PgPaths {
  return {
    dir,
    data: join(dir, 'data'),
    log: join(dir, 'postgres.log'),
    bouncerIni: join(dir, 'pgbouncer.ini'),
    bouncerUsers: join(dir, 'userlist.txt'),
    bouncerPid: join(dir, 'pgbouncer.pid'),
    bouncerLog: join(dir, 'pgbouncer.log'),
  };
}

/** Existing pg dir, following the fallback symlink; null if there is none. */
function existingPgDir(l: Layout): string | null {
  try {
    lstatSync(l.pgLink);
  } catch {
    return null;
  }
  try {
    return realpathSync(l.pgLink);
  } catch {
    return null; // dangling symlink
  }
}

let pgIds: { uid: number; gid: number } | undefined;

function pgUserIds(): { uid: number; gid: number } {
  pgIds ??= {
    uid: Number(runOk('id', ['-u', PG_SYSTEM_USER]).trim()),
    gid: Number(runOk('id', ['-g', PG_SYSTEM_USER]).trim()),
  };
  return pgIds;
}

function ensurePgSystemUser(): void {
  if (!IS_ROOT) return;
  if (run('id', ['-u', PG_SYSTEM_USER]).status === 0) return;
  log(`creating system user ${PG_SYSTEM_USER}`);
  runOk('useradd', [
    '--system',
    '--user-group',
    '--no-create-home',
    '--home-dir',
    '/var/lib/postgresql',
    '--shell',
    '/usr/sbin/nologin',
    PG_SYSTEM_USER,
  ]);
}

function chownToPg(path: string): void {
  if (!IS_ROOT) return;
  const { uid, gid } = pgUserIds();
  chownSync(path, uid, gid);
}

function pgCanWrite(dir: string): boolean {
  if (!IS_ROOT) return true;
  return run('test', ['-w', dir, '-a', '-x', dir], { asPostgres: true }).status === 0;
}

function ensurePgDir(l: Layout): string {
  const existing = existingPgDir(l);
  if (existing !== null) {
    if (!pgCanWrite(existing)) {
      throw new Error(`${existing} is not writable by the ${PG_SYSTEM_USER} user; run infra down and remove ${l.pgLink}`);
    }
    return existing;
  }
  try {
    unlinkSync(l.pgLink); // dangling symlink
  } catch {
    /* none */
  }
  mkdirSync(l.pgLink, { mode: 0o755 });
  chownToPg(l.pgLink);
  if (pgCanWrite(l.pgLink)) return l.pgLink;

  // The postgres user cannot traverse the path to the checkout.
  rmSync(l.pgLink, { recursive: true, force: true });
  const hash = createHash('sha256').update(realpathSync(l.base)).digest('hex').slice(0, 16);
  const target = join('/var/lib/aiteacher', hash, 'pg');
  const p = pgPaths(target);
  const pid = readPid(join(p.data, 'postmaster.pid'));
  if (existsSync(target) && !(pid !== null && processIs(pid, 'postgres'))) {
    // .data was wiped: start from scratch here too.
    rmSync(target, { recursive: true, force: true });
  }
  mkdirSync(target, { recursive: true, mode: 0o755 });
  chmodSync('/var/lib/aiteacher', 0o755);
  chmodSync(dirname(target), 0o755);
  chownToPg(target);
  symlinkSync(target, l.pgLink);
  log(`the ${PG_SYSTEM_USER} user cannot reach ${l.base}; PostgreSQL/PgBouncer files live in ${target} (symlinked from ${l.pgLink})`);
  return target;
}

// ---------------------------------------------------------------------------
// Lock: one `up`/`down` per profile at a time (several test processes may call
// up concurrently).

async function withLock<T>(l: Layout, fn: () => Promise<T>): Promise<T> {
  mkdirSync(l.base, { recursive: true, mode: 0o755 });
  chmodSync(l.base, 0o755);
  const deadline = Date.now() + 180_000;
  let announced = false;
  for (;;) {
    try {
      const fd = openSync(l.lock, 'wx');
      writeSync(fd, `${process.pid}\n`);
      closeSync(fd);
      break;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      const holder = readPid(l.lock);
      if (holder !== null && holder !== process.pid && !processIs(holder, '')) {
        rmSync(l.lock, { force: true }); // holder died
        continue;
      }
      if (holder === null) {
        // Being written right now, or garbage: give it a moment, then take over.
        await sleep(200);
        if (readPid(l.lock) === null) rmSync(l.lock, { force: true });
        continue;
      }
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${l.lock} (held by pid ${holder})`);
      if (!announced) {
        log(`waiting for another infra process (pid ${holder})`);
        announced = true;
      }
      await sleep(250);
    }
  }
  try {
    return await fn();
  } finally {
    rmSync(l.lock, { force: true });
  }
}

// ---------------------------------------------------------------------------
// PostgreSQL

/** PGDATA/aiteacher.conf: config/postgresql.conf (+ config/postgresql-test.conf for the test profile). */
export function postgresConf(profile: Profile, port: number): string {
  const header = '# Written by scripts/infra.ts on every `up` from config/postgresql.conf; edit that file, not this one.\n';
  const main = renderFile(join(CONFIG_DIR, 'postgresql.conf'), { PG_LISTEN_ADDRESSES: HOST, PG_PORT: port, PG_SOCKET_DIR: '' });
  const test = profile !== 'dev' ? readFileSync(join(CONFIG_DIR, 'postgresql-test.conf'), 'utf8') : '';
  return `${header}${main}${test}`;
}

function pgRunningPid(p: PgPaths): number | null {
  const pidfile = join(p.data, 'postmaster.pid');
  const pid = readPid(pidfile);
  if (pid === null) return null;
  if (processIs(pid, 'postgres')) return pid;
  // Stale (e.g. machine restarted and the pid was reused): postgres would refuse to start.
  log(`removing stale ${pidfile} (pid ${pid} is not postgres)`);
  rmSync(pidfile, { force: true });
  return null;
}

function pgPidfilePort(p: PgPaths): number | null {
  try {
    const port = Number(readFileSync(join(p.data, 'postmaster.pid'), 'utf8').split('\n')[3]);
    return Number.isInteger(port) ? port : null;
  } catch {
    return null;
  }
}

function initdb(bin: string, p: PgPaths): void {
  log(`initdb ${p.data}`);
  mkdirSync(p.data, { mode: 0o700 });
  chownToPg(p.data);
  const pwfile = join(p.dir, '.pwfile');
  writeFileSync(pwfile, `${DB_PASSWORD}\n`, { mode: 0o600 });
  chownToPg(pwfile);
  try {
    runOk(
      join(bin, 'initdb'),
      [
        '-D',
        p.data,
        '-U',
        DB_USER,
        `--pwfile=${pwfile}`,
        '--auth-host=scram-sha-256',
        '--auth-local=scram-sha-256',
        '--encoding=UTF8',
        '--locale=C',
      ],
      { asPostgres: true },
    );
  } finally {
    rmSync(pwfile, { force: true });
  }
  const conf = join(p.data, 'postgresql.conf');
  writeFileSync(conf, `${readFileSync(conf, 'utf8')}\ninclude = 'aiteacher.conf'\n`);
}

async function ensureDatabase(directAdminUrl: string): Promise<void> {
  const client = new pg.Client({ connectionString: directAdminUrl, connectionTimeoutMillis: 5000 });
  client.on('error', () => {});
  await client.connect();
  try {
    const { rowCount } = await client.query('SELECT 1 FROM pg_database WHERE datname = $1', [DB_NAME]);
    if (!rowCount) {
      log(`creating database ${DB_NAME}`);
      await client.query(`CREATE DATABASE ${DB_NAME} OWNER ${DB_USER}`);
    }
  } finally {
    await client.end().catch(() => {});
  }
}

async function postgresUp(profile: Profile, p: PgPaths, port: number): Promise<'started' | 'reused'> {
  const bin = findPgBinDir();
  if (bin === null) throw new Error('PostgreSQL binaries not found');
  const adminUrl = `postgresql://${DB_USER}:${DB_PASSWORD}@${HOST}:${port}/postgres`;

  if (existsSync(join(p.data, 'PG_VERSION'))) {
    const dataVersion = readFileSync(join(p.data, 'PG_VERSION'), 'utf8').trim();
    const binVersion = bin.split('/').at(-2) ?? '';
    if (/^\d+$/.test(binVersion) && dataVersion !== binVersion) {
      throw new Error(
        `${p.data} was created by PostgreSQL ${dataVersion} but ${bin} is ${binVersion}; remove .data/${profile} to start over`,
      );
    }
  } else {
    if (existsSync(p.data)) rmSync(p.data, { recursive: true, force: true }); // half-made by an interrupted initdb
    initdb(bin, p);
  }
  const confFile = join(p.data, 'aiteacher.conf');
  writeFileSync(confFile, postgresConf(profile, port));
  chownToPg(confFile);

  const pid = pgRunningPid(p);
  if (pid !== null) {
    const runningPort = pgPidfilePort(p);
    if (runningPort !== null && runningPort !== port) {
      throw new Error(`PostgreSQL (pid ${pid}) runs on port ${runningPort}, not ${port}; run infra down first`);
    }
    await retryUntil(`PostgreSQL on ${port}`, 30_000, () => pgSelect1(adminUrl));
    await ensureDatabase(adminUrl);
    log(`postgres   reused  pid ${pid}, 127.0.0.1:${port}`);
    return 'reused';
  }
  if (await portOpen(port)) {
    throw new Error(`port ${port} is already in use by another process; set PG_PORT to another port`);
  }
  if (!existsSync(p.log)) writeFileSync(p.log, '');
  chownToPg(p.log);
  const res = run(join(bin, 'pg_ctl'), ['-D', p.data, '-l', p.log, '-w', '-t', '60', 'start'], { asPostgres: true });
  if (res.status !== 0) {
    throw new Error(`pg_ctl start failed (${res.status}): ${(res.stderr ?? '').trim()}\n--- ${p.log} ---\n${tail(p.log)}`);
  }
  await retryUntil(`PostgreSQL on ${port}`, 30_000, () => pgSelect1(adminUrl));
  await ensureDatabase(adminUrl);
  log(`postgres   started pid ${pgRunningPid(p) ?? '?'}, 127.0.0.1:${port}, data ${p.data}`);
  return 'started';
}

async function postgresDown(p: PgPaths): Promise<boolean> {
  const pid = pgRunningPid(p);
  if (pid === null) return false;
  const bin = findPgBinDir();
  if (bin === null) throw new Error('PostgreSQL binaries not found');
  const res = run(join(bin, 'pg_ctl'), ['-D', p.data, '-m', 'fast', '-w', '-t', '60', 'stop'], { asPostgres: true });
  if (res.status !== 0 && !(await waitGone(pid, 'postgres', 1000))) {
    throw new Error(`pg_ctl stop failed: ${(res.stderr ?? '').trim()}`);
  }
  return true;
}

// ---------------------------------------------------------------------------
// PgBouncer

/** pgbouncer.ini: config/pgbouncer.ini with this profile's ports and paths. */
export function pgbouncerIni(p: Pick<PgPaths, 'bouncerUsers' | 'bouncerLog' | 'bouncerPid'>, ports: Ports): string {
  const header = '; Written by scripts/infra.ts on every `up` from config/pgbouncer.ini; edit that file, not this one.\n';
  return (
    header +
    renderFile(join(CONFIG_DIR, 'pgbouncer.ini'), {
      DB_NAME,
      DB_USER,
      PG_HOST: HOST,
      PG_PORT: ports.postgres,
      PGBOUNCER_LISTEN_ADDR: HOST,
      PGBOUNCER_PORT: ports.pgbouncer,
      PGBOUNCER_AUTH_FILE: p.bouncerUsers,
      PGBOUNCER_LOGFILE: p.bouncerLog,
      PGBOUNCER_PIDFILE: p.bouncerPid,
    })
  );
}

/** userlist.txt: config/pgbouncer-userlist.txt (a plain-text password lets PgBouncer do SCRAM both ways). */
export function pgbouncerUserlist(): string {
  return renderFile(join(CONFIG_DIR, 'pgbouncer-userlist.txt'), { DB_USER, DB_PASSWORD });
}

function pgbouncerRunningPid(p: PgPaths): number | null {
  const pid = readPid(p.bouncerPid);
  if (pid === null) return null;
  if (processIs(pid, 'pgbouncer')) return pid;
  rmSync(p.bouncerPid, { force: true }); // stale: pgbouncer refuses to start over a live-looking pidfile
  return null;
}

function writeOwned(path: string, content: string, mode: number): boolean {
  let old: string | null = null;
  try {
    old = readFileSync(path, 'utf8');
  } catch {
    /* new */
  }
  if (old !== content) writeFileSync(path, content, { mode });
  chmodSync(path, mode);
  chownToPg(path);
  return old !== null && old !== content;
}

async function pgbouncerUp(p: PgPaths, ports: Ports, pooledUrl: string): Promise<'started' | 'reused'> {
  const exe = findExecutable('pgbouncer');
  if (exe === null) throw new Error('pgbouncer not found');
  // Plain-text password: lets PgBouncer do SCRAM both towards clients and towards PostgreSQL.
  writeOwned(p.bouncerUsers, pgbouncerUserlist(), 0o600);
  const changed = writeOwned(p.bouncerIni, pgbouncerIni(p, ports), 0o640);

  const pid = pgbouncerRunningPid(p);
  if (pid !== null) {
    if (changed) {
      log('pgbouncer.ini changed: reloading PgBouncer (a port change needs infra down/up)');
      process.kill(pid, 'SIGHUP');
    }
    await retryUntil(`PgBouncer on ${ports.pgbouncer}`, 30_000, () => pgSelect1(pooledUrl));
    log(`pgbouncer  reused  pid ${pid}, 127.0.0.1:${ports.pgbouncer}`);
    return 'reused';
  }
  if (await portOpen(ports.pgbouncer)) {
    throw new Error(`port ${ports.pgbouncer} is already in use by another process; set PGBOUNCER_PORT to another port`);
  }
  if (!existsSync(p.bouncerLog)) writeFileSync(p.bouncerLog, '');
  chownToPg(p.bouncerLog);
  // max_client_conn 1000 needs more than the usual soft limit of 1024 descriptors.
  const res = run('sh', ['-c', 'ulimit -S -n 4096 2>/dev/null || true; exec "$0" "$@"', exe, '-d', p.bouncerIni], { asPostgres: true });
  if (res.status !== 0) {
    throw new Error(
      `pgbouncer failed to start (${res.status}): ${(res.stderr ?? '').trim()}\n--- ${p.bouncerLog} ---\n${tail(p.bouncerLog)}`,
    );
  }
  try {
    await retryUntil(`PgBouncer on ${ports.pgbouncer}`, 30_000, () => pgSelect1(pooledUrl));
  } catch (err) {
    throw new Error(`${(err as Error).message}\n--- ${p.bouncerLog} ---\n${tail(p.bouncerLog)}`);
  }
  log(`pgbouncer  started pid ${pgbouncerRunningPid(p) ?? '?'}, 127.0.0.1:${ports.pgbouncer} (transaction pooling)`);
  return 'started';
}

async function pgbouncerDown(p: PgPaths): Promise<boolean> {
  const pid = pgbouncerRunningPid(p);
  if (pid === null) return false;
  process.kill(pid, 'SIGTERM'); // immediate shutdown (SIGINT would wait for clients)
  if (!(await waitGone(pid, 'pgbouncer', 10_000))) {
    process.kill(pid, 'SIGKILL');
    await waitGone(pid, 'pgbouncer', 5_000);
  }
  rmSync(p.bouncerPid, { force: true });
  return true;
}

// ---------------------------------------------------------------------------
// Redis

/** redis.conf: config/redis.conf with this profile's port and paths (Redis runs daemonized here). */
export function redisConf(dir: string, port: number): string {
  const header = '# Written by scripts/infra.ts on every `up` from config/redis.conf; edit that file, not this one.\n';
  for (const path of [dir]) {
    // Paths go inside double quotes: keep them to characters that need no escaping there.
    if (/["\\]/.test(path)) throw new Error(`Redis directory ${path} has a quote or a backslash`);
  }
  return (
    header +
    renderFile(join(CONFIG_DIR, 'redis.conf'), {
      REDIS_BIND: HOST,
      REDIS_PORT: port,
      REDIS_DAEMONIZE: 'yes',
      REDIS_PIDFILE: join(dir, 'redis.pid'),
      REDIS_LOGFILE: join(dir, 'redis.log'),
      REDIS_DIR: dir,
    })
  );
}

function redisRunningPid(dir: string): number | null {
  const pidfile = join(dir, 'redis.pid');
  const pid = readPid(pidfile);
  if (pid === null) return null;
  if (processIs(pid, 'redis-server')) return pid;
  rmSync(pidfile, { force: true });
  return null;
}

async function redisUp(dir: string, port: number, url: string): Promise<'started' | 'reused'> {
  const exe = findExecutable('redis-server');
  if (exe === null) throw new Error('redis-server not found');
  mkdirSync(dir, { recursive: true, mode: 0o750 });
  const conf = join(dir, 'redis.conf');
  writeFileSync(conf, redisConf(dir, port));

  const pid = redisRunningPid(dir);
  if (pid !== null) {
    await retryUntil(`Redis on ${port}`, 30_000, () => redisPing(url));
    log(`redis      reused  pid ${pid}, 127.0.0.1:${port}`);
    return 'reused';
  }
  if (await portOpen(port)) {
    throw new Error(`port ${port} is already in use by another process; set REDIS_PORT to another port`);
  }
  const res = run(exe, [conf]);
  if (res.status !== 0) {
    throw new Error(`redis-server failed to start (${res.status}): ${(res.stdout ?? '').trim()}\n${tail(join(dir, 'redis.log'))}`);
  }
  try {
    await retryUntil(`Redis on ${port}`, 30_000, () => redisPing(url));
  } catch (err) {
    throw new Error(`${(err as Error).message}\n--- redis.log ---\n${tail(join(dir, 'redis.log'))}`);
  }
  log(`redis      started pid ${redisRunningPid(dir) ?? '?'}, 127.0.0.1:${port}, AOF in ${dir}`);
  return 'started';
}

async function redisDown(dir: string, port: number): Promise<boolean> {
  const pid = redisRunningPid(dir);
  if (pid === null) return false;
  const redis = new Redis(`redis://${HOST}:${port}`, {
    lazyConnect: true,
    connectTimeout: 2000,
    maxRetriesPerRequest: 0,
    retryStrategy: () => null,
  });
  redis.on('error', () => {});
  try {
    await redis.connect();
    await redis.call('SHUTDOWN'); // persists (AOF fsync + RDB) then exits; the reply never comes
  } catch {
    /* connection closed by the shutdown, or Redis not answering: checked below */
  } finally {
    redis.disconnect();
  }
  if (!(await waitGone(pid, 'redis-server', 15_000))) {
    process.kill(pid, 'SIGTERM');
    if (!(await waitGone(pid, 'redis-server', 15_000))) process.kill(pid, 'SIGKILL');
  }
  return true;
}

// ---------------------------------------------------------------------------
// Public API

/**
 * The pid of one of a profile's running services, or null: what the faults tier signals
 * (SIGKILL, SIGSTOP, a fast shutdown) before `infraUp` starts it again.
 */
export function infraPid(profile: Profile, service: ServiceName): number | null {
  const l = layout(profile);
  if (service === 'redis') return redisRunningPid(l.redisDir);
  const dir = existingPgDir(l);
  if (dir === null) return null;
  return service === 'postgres' ? pgRunningPid(pgPaths(dir)) : pgbouncerRunningPid(pgPaths(dir));
}

export async function infraUp(profile: Profile): Promise<InfraUpResult> {
  const l = layout(profile);
  const ports = infraPorts(profile);
  const env = infraEnv(profile);
  ensurePackages();
  ensurePgSystemUser();
  return withLock(l, async () => {
    const started: ServiceName[] = [];
    const reused: ServiceName[] = [];
    const note = (name: ServiceName, what: 'started' | 'reused') => (what === 'started' ? started : reused).push(name);

    const p = pgPaths(ensurePgDir(l));
    note('postgres', await postgresUp(profile, p, ports.postgres));
    note('pgbouncer', await pgbouncerUp(p, ports, env.DATABASE_URL));
    note('redis', await redisUp(l.redisDir, ports.redis, env.REDIS_URL));
    log(`profile ${profile} up: started [${started.join(', ')}], reused [${reused.join(', ')}]`);
    return { env, started, reused };
  });
}

export async function infraDown(profile: Profile): Promise<{ stopped: ServiceName[] }> {
  const l = layout(profile);
  const ports = infraPorts(profile);
  if (!existsSync(l.base)) {
    log(`profile ${profile}: nothing to stop (no ${l.base})`);
    return { stopped: [] };
  }
  return withLock(l, async () => {
    const stopped: ServiceName[] = [];
    const pgDir = existingPgDir(l);
    if (pgDir !== null) {
      const p = pgPaths(pgDir);
      if (await pgbouncerDown(p)) stopped.push('pgbouncer');
      if (await postgresDown(p)) stopped.push('postgres');
    }
    if (await redisDown(l.redisDir, ports.redis)) stopped.push('redis');
    log(`profile ${profile} down: stopped [${stopped.join(', ')}]`);
    return { stopped };
  });
}

// ---------------------------------------------------------------------------
// CLI

function parseArgs(argv: readonly string[]): { command: string | undefined; profile: Profile } {
  let command: string | undefined;
  let profile: string = process.env.INFRA_PROFILE ?? 'dev';
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i] ?? '';
    if (a === '--profile' || a === '-p') profile = argv[++i] ?? '';
    else if (a.startsWith('--profile=')) profile = a.slice('--profile='.length);
    else if (command === undefined) command = a;
    else throw new Error(`unexpected argument ${a}`);
  }
  if (!(PROFILES as readonly string[]).includes(profile)) {
    throw new Error(`unknown profile "${profile}" (expected ${PROFILES.join(' or ')})`);
  }
  return { command, profile: profile as Profile };
}

async function main(): Promise<void> {
  const usage = 'usage: tsx scripts/infra.ts <up|down|env> [--profile dev|test|faults]';
  const { command, profile } = parseArgs(process.argv.slice(2));
  switch (command) {
    case 'up':
      await infraUp(profile);
      break;
    case 'down':
      await infraDown(profile);
      break;
    case 'env':
      for (const [k, v] of Object.entries(infraEnv(profile))) process.stdout.write(`${k}=${v}\n`);
      break;
    default:
      throw new Error(usage);
  }
}

function isMain(): boolean {
  const entry = process.argv[1];
  if (!entry) return false;
  try {
    return pathToFileURL(realpathSync(entry)).href === pathToFileURL(realpathSync(fileURLToPath(import.meta.url))).href;
  } catch {
    return false;
  }
}

if (isMain()) {
  main().catch((err: unknown) => {
    process.stderr.write(`[infra] error: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(1);
  });
}
