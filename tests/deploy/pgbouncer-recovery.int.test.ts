/**
 * PgBouncer's retry settings (config/pgbouncer.ini: server_login_retry = 1, ...): service comes
 * back within a couple of seconds of PostgreSQL. On a PostgreSQL and a PgBouncer of its own
 * (random ports, a temporary directory; the shared test profile is never touched), a query
 * sent through PgBouncer while PostgreSQL is down is answered soon after PostgreSQL is back.
 * With PgBouncer's default (15 s between login attempts) it would wait up to 15 s.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { spawn, spawnSync } from 'node:child_process';
import { chownSync, existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { pgbouncerIni, pgbouncerUserlist } from '../../scripts/infra.js';
import { freePort } from '../../scripts/lib/edge.js';

const IS_ROOT = process.getuid?.() === 0;
const pgBin = (() => {
  const base = '/usr/lib/postgresql';
  if (!existsSync(base)) return null;
  const v = readdirSync(base).sort((a, b) => Number(b) - Number(a))[0];
  return v ? join(base, v, 'bin') : null;
})();
const pgbouncer = ['/usr/sbin/pgbouncer', '/usr/bin/pgbouncer'].find((p) => existsSync(p));
const present = pgBin !== null && pgbouncer !== undefined;
if (!present) console.warn('skipped: the PgBouncer recovery test needs postgresql and pgbouncer, which are absent');

/** Runs as the postgres user when we are root (PostgreSQL and PgBouncer refuse root). */
function asPg(cmd: string, args: string[]) {
  const [file, argv] = IS_ROOT ? ['runuser', ['-u', 'postgres', '--', cmd, ...args]] : [cmd, args];
  return { file, argv };
}
function runPg(cmd: string, args: string[]) {
  const { file, argv } = asPg(cmd, args);
  const res = spawnSync(file, argv, { encoding: 'utf8', cwd: '/' });
  if (res.status !== 0) throw new Error(`${cmd} ${args.join(' ')}: ${res.stderr}${res.stdout}`);
}

(present ? describe : describe.skip)('PgBouncer after PostgreSQL restarts', () => {
  let dir: string;
  let ports: { postgres: number; pgbouncer: number; redis: number };
  let bouncer: ReturnType<typeof spawn> | undefined;
  const data = () => join(dir, 'data');
  const pgStart = () =>
    runPg(join(pgBin!, 'pg_ctl'), [
      '-D',
      data(),
      '-l',
      join(dir, 'pg.log'),
      '-w',
      '-t',
      '60',
      '-o',
      `-p ${ports.postgres} -k ${dir} -c listen_addresses=127.0.0.1`,
      'start',
    ]);
  const pgStop = () => runPg(join(pgBin!, 'pg_ctl'), ['-D', data(), '-m', 'fast', '-w', '-t', '60', 'stop']);

  const query = async (port: number, password = 'aiteacher') => {
    const client = new pg.Client({
      host: '127.0.0.1',
      port,
      user: 'aiteacher',
      password,
      database: 'aiteacher',
      connectionTimeoutMillis: 60_000,
    });
    client.on('error', () => {});
    try {
      await client.connect();
      return (await client.query<{ one: number }>('SELECT 1 AS one')).rows[0]!.one;
    } finally {
      await client.end().catch(() => {});
    }
  };

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'pgbouncer-recovery-'));
    if (IS_ROOT) chownSync(dir, Number(spawnSync('id', ['-u', 'postgres'], { encoding: 'utf8' }).stdout), 0);
    ports = { postgres: await freePort(), pgbouncer: await freePort(), redis: 0 };
    runPg(join(pgBin!, 'initdb'), ['-D', data(), '-U', 'aiteacher', '--auth=trust', '--encoding=UTF8', '--locale=C']);
    pgStart();
    runPg(join(pgBin!, 'createdb'), ['-h', '127.0.0.1', '-p', String(ports.postgres), '-U', 'aiteacher', 'aiteacher']);
    const paths = {
      bouncerUsers: join(dir, 'userlist.txt'),
      bouncerLog: join(dir, 'pgbouncer.log'),
      bouncerPid: join(dir, 'pgbouncer.pid'),
    };
    for (const [file, content] of [
      [join(dir, 'pgbouncer.ini'), pgbouncerIni(paths, ports)],
      [paths.bouncerUsers, pgbouncerUserlist()],
    ] as const) {
      writeFileSync(file, content, { mode: 0o600 });
      if (IS_ROOT) chownSync(file, Number(spawnSync('id', ['-u', 'postgres'], { encoding: 'utf8' }).stdout), 0);
    }
    const { file, argv } = asPg(pgbouncer!, [join(dir, 'pgbouncer.ini')]);
    bouncer = spawn(file, argv, { stdio: 'ignore', cwd: '/' });
    const deadline = Date.now() + 20_000;
    for (;;) {
      try {
        if ((await query(ports.pgbouncer)) === 1) break;
      } catch (err) {
        if (Date.now() > deadline) throw err;
        await new Promise((r) => setTimeout(r, 200));
      }
    }
  }, 120_000);

  afterAll(async () => {
    if (bouncer && bouncer.exitCode === null) {
      const exited = new Promise((r) => bouncer!.once('exit', r));
      // runuser passes SIGTERM on to PgBouncer.
      bouncer.kill('SIGTERM');
      await exited;
    }
    if (dir && existsSync(join(data(), 'postmaster.pid'))) pgStop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  }, 120_000);

  it('answers a query that waited through the restart within seconds of PostgreSQL coming back', async () => {
    expect(await query(ports.pgbouncer)).toBe(1);
    pgStop();
    // Sent while PostgreSQL is down: PgBouncer holds it and retries the login (every server_login_retry).
    const waiting = query(ports.pgbouncer).then(() => Date.now());
    waiting.catch(() => {});
    // Long enough for PgBouncer to have failed a login and be waiting to retry.
    await new Promise((r) => setTimeout(r, 2500));
    pgStart();
    const back = Date.now();
    const answered = await waiting;
    expect(answered - back).toBeLessThan(5000);
  }, 120_000);
});
