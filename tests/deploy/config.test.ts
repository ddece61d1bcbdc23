/**
 * The configuration files shared by the local runner (scripts/infra.ts, scripts/lib/edge.ts)
 * and docker-compose.yml: rendered the same by both renderers, accepted by the real nginx in
 * both renderings, and saying what the services rely on.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parse } from 'yaml';
import { schema as routerEnv } from '../../router/src/environment.js';
import { CONFIG_DIR, pgbouncerIni, postgresConf, redisConf } from '../../scripts/infra.js';
import {
  DEFAULT_EDGE_LIMITS,
  ensureSelfSignedCertificate,
  findNginx,
  localEdgeVars,
  NGINX_DIR,
  renderEdgeConfig,
  testEdgeConfig,
} from '../../scripts/lib/edge.js';
import { placeholders, renderTemplate, TemplateError } from '../../scripts/lib/template.js';

const ROOT = resolve(import.meta.dirname ?? '.', '../..');
const RENDER_SH = join(CONFIG_DIR, 'render.sh');
const TEMPLATES = [
  ...readdirSync(CONFIG_DIR)
    .filter((f) => /\.(conf|ini|txt)$/.test(f))
    .map((f) => join(CONFIG_DIR, f)),
  ...readdirSync(NGINX_DIR)
    .filter((f) => f.endsWith('.conf'))
    .map((f) => join(NGINX_DIR, f)),
];

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'config-test-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** config/render.sh on one file with exactly `env` (plus PATH). */
function renderSh(src: string, dest: string, env: Record<string, string>) {
  return spawnSync('sh', [RENDER_SH, src, dest], { env: { PATH: process.env['PATH'] ?? '/usr/bin:/bin', ...env }, encoding: 'utf8' });
}

describe('configuration templates', () => {
  it.each(TEMPLATES.map((t) => [t.slice(ROOT.length + 1), t]))(
    '%s renders the same through config/render.sh and template.ts',
    (_, file) => {
      const text = readFileSync(file, 'utf8');
      // Values with characters awk's sub() would mangle (&, \) and an empty one.
      const vars = Object.fromEntries(placeholders(text).map((name, i) => [name, i === 0 ? '' : `v&${name}\\x`]));
      const dest = join(dir, 'out', file.replaceAll('/', '_'));
      const res = renderSh(file, dest, vars);
      expect(res.stderr).toBe('');
      expect(res.status).toBe(0);
      expect(readFileSync(dest, 'utf8')).toBe(renderTemplate(text, vars));
    },
  );

  it('refuses a placeholder without a value, in both renderers', () => {
    const src = join(dir, 'missing.conf');
    writeFileSync(src, 'port ${PORT}\nhost ${HOST}\n');
    const res = renderSh(src, join(dir, 'missing.out'), { PORT: '1' });
    expect(res.status).toBe(1);
    expect(res.stderr).toContain('HOST is not set');
    expect(() => renderTemplate('port ${PORT}\nhost ${HOST}\n', { PORT: 1 })).toThrow(TemplateError);
    expect(() => renderTemplate('x ${A}', { A: 'one\ntwo' })).toThrow(/line break/);
  });

  it('leaves nginx’s own variables alone', () => {
    const out = renderTemplate('proxy_set_header Host $host; set $x ${lower}; ${UPPER}', { UPPER: 'u' });
    expect(out).toBe('proxy_set_header Host $host; set $x ${lower}; u');
  });

  it('runs the command after `--`', () => {
    const src = join(dir, 'cmd.conf');
    writeFileSync(src, 'a ${A}\n');
    const res = spawnSync('sh', [RENDER_SH, src, join(dir, 'cmd.out'), '--', 'cat', join(dir, 'cmd.out')], {
      env: { PATH: process.env['PATH'], A: 'b' },
      encoding: 'utf8',
    });
    expect(res.stdout).toBe('a b\n');
  });
});

describe('what scripts/infra.ts renders from config/', () => {
  it('keeps PgBouncer in transaction pooling, back within seconds of PostgreSQL', () => {
    const ini = pgbouncerIni({ bouncerUsers: '/u', bouncerLog: '/l', bouncerPid: '/p' }, { postgres: 1, pgbouncer: 2, redis: 3 });
    expect(ini).toMatch(/^pool_mode = transaction$/m);
    expect(ini).toMatch(/^server_login_retry = 1$/m);
    expect(ini).toMatch(/^server_connect_timeout = 3$/m);
    expect(ini).toMatch(/^aiteacher = host=127\.0\.0\.1 port=1 dbname=aiteacher$/m);
    expect(ini).toMatch(/^listen_port = 2$/m);
  });

  it('keeps Redis durable (AOF every second) and never evicting', () => {
    const conf = redisConf('/data/redis', 6380);
    for (const line of [
      'appendonly yes',
      'appendfsync everysec',
      'maxmemory-policy noeviction',
      'port 6380',
      'daemonize yes',
      'dir "/data/redis"',
    ]) {
      expect(conf.split('\n')).toContain(line);
    }
    expect(() => redisConf('/data/"quoted"', 1)).toThrow(/quote/);
  });

  it('adds the test profile’s speed settings to PostgreSQL’s, for the test profile only', () => {
    expect(postgresConf('dev', 5)).toMatch(/^port = 5$/m);
    expect(postgresConf('dev', 5)).not.toContain('fsync = off');
    expect(postgresConf('test', 5)).toContain('fsync = off');
    expect(postgresConf('test', 5)).toMatch(/^unix_socket_directories = ''$/m);
  });
});

const nginx = findNginx();
if (!nginx) console.warn('skipped: `nginx -t` needs nginx (apt-get install nginx-light), which is absent');
(nginx ? describe : describe.skip)('nginx/*.conf under `nginx -t`', () => {
  it('is valid rendered for a local run (npm run dev, the tests)', () => {
    const prefix = join(dir, 'local');
    for (const sub of ['logs', 'temp']) mkdirSync(join(prefix, sub), { recursive: true });
    const tls = ensureSelfSignedCertificate(join(prefix, 'tls'));
    const vars = localEdgeVars({
      dir: prefix,
      host: '127.0.0.1',
      httpPort: 18080,
      httpsPort: 18443,
      router: '127.0.0.1:4000',
      blobDir: join(prefix, 'blobs'),
      trustedProxy: '127.0.0.1/32',
      limits: DEFAULT_EDGE_LIMITS,
      cert: tls.cert,
      key: tls.key,
    });
    const conf = renderEdgeConfig(prefix, vars);
    expect(testEdgeConfig(nginx!, prefix, conf)).toBeNull();
  });

  it('is valid rendered by config/render.sh with docker-compose.yml’s values', () => {
    const compose = parse(readFileSync(join(ROOT, 'docker-compose.yml'), 'utf8'), { merge: true }) as {
      services: { nginx: { environment: Record<string, string> } };
    };
    const prefix = join(dir, 'compose');
    for (const sub of ['conf', 'logs']) mkdirSync(join(prefix, sub), { recursive: true });
    const tls = ensureSelfSignedCertificate(join(prefix, 'tls'));
    // Compose's interpolation, with .env.example as the .env.
    const dotenv = Object.fromEntries(
      [...readFileSync(join(ROOT, '.env.example'), 'utf8').matchAll(/^([A-Z][A-Z0-9_]*)=(.*)$/gm)].map((m) => [m[1]!, m[2]!]),
    );
    const interpolate = (v: string) =>
      v.replace(/\$\{([A-Z][A-Z0-9_]*)(?::?[-?]([^}]*))?\}/g, (_, name: string, fallback?: string) => dotenv[name] || fallback || '');
    const inContainer = Object.fromEntries(Object.entries(compose.services.nginx.environment).map(([k, v]) => [k, interpolate(String(v))]));
    const env: Record<string, string> = {
      ...inContainer,
      // Paths of the container, moved here; the rest as compose sets it.
      NGINX_PID_FILE: join(prefix, 'nginx.pid'),
      NGINX_TEMP_DIR: join(prefix, 'conf'),
      NGINX_CACHE_DIR: join(prefix, 'cache'),
      NGINX_ACME_ROOT: join(prefix, 'acme'),
      NGINX_TLS_CERT: tls.cert,
      NGINX_TLS_KEY: tls.key,
      NGINX_BLOB_DIR: join(prefix, 'blobs'),
      NGINX_ERROR_LOG: join(prefix, 'error.log'),
      NGINX_ACCESS_LOG: join(prefix, 'access.log'),
      NGINX_HTTPS_PORT_SUFFIX: '',
      // `resolve` on an upstream server needs nginx 1.27.3 (compose runs 1.28; Debian 12 has 1.22), and
      // without it nginx looks the name up at once: here there is no "router" to find.
      NGINX_ROUTER_SERVER: inContainer['NGINX_ROUTER_SERVER']!.replace(' resolve', '').replace(/^router:/, '127.0.0.1:'),
    };
    expect(inContainer['NGINX_ROUTER_SERVER']).toMatch(/^router:4000 resolve /);
    for (const name of readdirSync(NGINX_DIR).filter((f) => f.endsWith('.conf'))) {
      const res = renderSh(join(NGINX_DIR, name), join(prefix, 'conf', name), env);
      expect(res.stderr).toBe('');
    }
    expect(testEdgeConfig(nginx!, prefix, join(prefix, 'conf/nginx.conf'))).toBeNull();
  });

  it('allows the bodies the router allows: GraphQL up to MAX_BODY_BYTES, uploads up to UPLOAD_MAX_BYTES', () => {
    const conf = readFileSync(join(NGINX_DIR, 'nginx.conf'), 'utf8');
    const mib = (m: RegExpMatchArray | null) => Number(m?.[1]) * 1024 * 1024;
    const server = mib(conf.match(/^ {8}client_max_body_size (\d+)m;/m));
    const uploads = mib(conf.slice(conf.indexOf('location = /uploads {')).match(/client_max_body_size (\d+)m;/));
    const maxBody = routerEnv.shape.MAX_BODY_BYTES.parse(undefined);
    const maxUpload = routerEnv.shape.UPLOAD_MAX_BYTES.parse(undefined);
    expect(server).toBe(maxBody);
    // The file plus the form around it (the router allows 64 KiB of it).
    expect(uploads).toBeGreaterThanOrEqual(maxUpload + 64 * 1024);
    expect(uploads).toBeLessThanOrEqual(maxUpload + 2 * 1024 * 1024);
  });
});
