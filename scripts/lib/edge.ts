/**
 * The edge (nginx) as a plain local process, for `npm run dev` and the tests: renders
 * nginx/*.conf with this machine's ports, paths and upstream (scripts/lib/template.ts),
 * makes a self-signed certificate with openssl unless one is given, runs Debian's nginx
 * with `-p <dir>` in the foreground, and stops it. docker-compose.yml renders the same
 * files inside its nginx container (config/render.sh).
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { renderFile } from './template.js';

export const NGINX_DIR = resolve(dirname(fileURLToPath(import.meta.url)), '../../nginx');

/** Per-IP limits (nginx's limit_req rates and bursts, limit_conn). */
export interface EdgeLimits {
  graphqlRate: string;
  graphqlBurst: number;
  uploadsRate: string;
  uploadsBurst: number;
  websocketRate: string;
  websocketBurst: number;
  filesRate: string;
  filesBurst: number;
  connectionsPerIp: number;
}

/** What production uses too (docker-compose.yml passes the same numbers). */
export const DEFAULT_EDGE_LIMITS: EdgeLimits = {
  graphqlRate: '50r/s',
  graphqlBurst: 100,
  uploadsRate: '2r/s',
  uploadsBurst: 10,
  websocketRate: '5r/s',
  websocketBurst: 20,
  filesRate: '50r/s',
  filesBurst: 200,
  connectionsPerIp: 200,
};

export interface EdgeOptions {
  /** nginx's prefix: rendered configuration, certificate, logs, cache and temporary files. */
  dir: string;
  /** 0 (the default) picks a free port. */
  httpPort?: number;
  httpsPort?: number;
  /** Address to listen on (127.0.0.1). */
  host?: string;
  /** The router, host:port. */
  router: string;
  /** The blob directory the router, rag and the workers share (files are served from it). */
  blobDir: string;
  /** CIDR whose X-Forwarded-For is believed (real_ip). */
  trustedProxy?: string;
  limits?: Partial<EdgeLimits>;
  /** Certificate and key (PEM paths); without them a self-signed one for localhost is made in `dir/tls`. */
  tls?: { cert: string; key: string };
  startTimeoutMs?: number;
}

export interface Edge {
  httpUrl: string;
  httpsUrl: string;
  httpPort: number;
  httpsPort: number;
  /** The certificate (PEM), to trust in clients when it is self-signed. */
  certificate: Buffer;
  accessLog: string;
  errorLog: string;
  /** The access log's lines so far, parsed. */
  accessEntries(): Record<string, unknown>[];
  exited: Promise<number | null>;
  stop(): Promise<void>;
}

export function findNginx(): string | null {
  for (const p of ['/usr/sbin/nginx', '/usr/local/sbin/nginx', '/usr/bin/nginx', '/usr/local/nginx/sbin/nginx'])
    if (existsSync(p)) return p;
  return null;
}

/** A free TCP port on the host (bound, then released: the caller binds it right away). */
export function freePort(host = '127.0.0.1'): Promise<number> {
  return new Promise((resolvePort, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, host, () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolvePort(port));
    });
  });
}

/** The values of the placeholders in nginx/*.conf for a local run. */
export function localEdgeVars(opts: {
  dir: string;
  host: string;
  httpPort: number;
  httpsPort: number;
  router: string;
  blobDir: string;
  trustedProxy: string;
  limits: EdgeLimits;
  cert: string;
  key: string;
}): Record<string, string> {
  const l = opts.limits;
  const isRoot = typeof process.getuid === 'function' && process.getuid() === 0;
  return {
    // As root, nginx's workers would become "nobody" and could not read the blob directory (0750).
    NGINX_USER_DIRECTIVE: isRoot ? 'user root root;' : '',
    NGINX_WORKER_PROCESSES: '1',
    NGINX_PID_FILE: join(opts.dir, 'nginx.pid'),
    NGINX_ERROR_LOG: join(opts.dir, 'logs/error.log'),
    NGINX_ACCESS_LOG: join(opts.dir, 'logs/access.log'),
    NGINX_MIME_TYPES: '/etc/nginx/mime.types',
    NGINX_TEMP_DIR: join(opts.dir, 'temp'),
    NGINX_CACHE_DIR: join(opts.dir, 'cache'),
    NGINX_TRUSTED_PROXY: opts.trustedProxy,
    NGINX_GRAPHQL_RATE: l.graphqlRate,
    NGINX_GRAPHQL_BURST: String(l.graphqlBurst),
    NGINX_UPLOADS_RATE: l.uploadsRate,
    NGINX_UPLOADS_BURST: String(l.uploadsBurst),
    NGINX_WEBSOCKET_RATE: l.websocketRate,
    NGINX_WEBSOCKET_BURST: String(l.websocketBurst),
    NGINX_FILES_RATE: l.filesRate,
    NGINX_FILES_BURST: String(l.filesBurst),
    NGINX_CONNECTIONS_PER_IP: String(l.connectionsPerIp),
    NGINX_ROUTER_SERVER: opts.router,
    NGINX_RESOLVER: '127.0.0.1',
    NGINX_HTTP_LISTEN: `${opts.host}:${opts.httpPort}`,
    NGINX_HTTPS_LISTEN: `${opts.host}:${opts.httpsPort}`,
    NGINX_HTTPS_PORT_SUFFIX: opts.httpsPort === 443 ? '' : `:${opts.httpsPort}`,
    NGINX_ACME_ROOT: join(opts.dir, 'acme'),
    NGINX_TLS_CERT: opts.cert,
    NGINX_TLS_KEY: opts.key,
    NGINX_BLOB_DIR: resolve(opts.blobDir),
  };
}

/** Renders every nginx/*.conf into `dir/conf/`; returns the main file's path. */
export function renderEdgeConfig(dir: string, vars: Record<string, string>): string {
  const conf = join(dir, 'conf');
  mkdirSync(conf, { recursive: true });
  for (const name of readdirSync(NGINX_DIR).filter((f) => f.endsWith('.conf'))) {
    writeFileSync(join(conf, name), renderFile(join(NGINX_DIR, name), vars));
  }
  return join(conf, 'nginx.conf');
}

/**
 * A self-signed certificate for localhost and 127.0.0.1 (P-256, 30 days), made with openssl
 * unless a valid one is already there.
 */
export function ensureSelfSignedCertificate(tlsDir: string): { cert: string; key: string } {
  const cert = join(tlsDir, 'cert.pem');
  const key = join(tlsDir, 'key.pem');
  mkdirSync(tlsDir, { recursive: true, mode: 0o700 });
  const valid =
    existsSync(cert) && existsSync(key) && spawnSync('openssl', ['x509', '-checkend', '86400', '-noout', '-in', cert]).status === 0;
  if (valid) return { cert, key };
  const res = spawnSync(
    'openssl',
    [
      'req',
      '-x509',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:prime256v1',
      '-nodes',
      '-days',
      '30',
      '-subj',
      '/CN=localhost',
      '-addext',
      'subjectAltName=DNS:localhost,IP:127.0.0.1',
      '-keyout',
      key,
      '-out',
      cert,
    ],
    { encoding: 'utf8' },
  );
  if (res.status !== 0) throw new Error(`openssl could not make a certificate: ${res.error?.message ?? res.stderr}`);
  return { cert, key };
}

/** `nginx -t` on a rendered configuration: null when it is valid, else nginx's complaint. */
export function testEdgeConfig(nginx: string, dir: string, confPath: string): string | null {
  const res = spawnSync(nginx, ['-t', '-q', '-p', dir, '-c', confPath, '-e', join(dir, 'logs/error.log')], { encoding: 'utf8' });
  return res.status === 0 ? null : `${res.stdout}${res.stderr}`.trim();
}

async function waitFor(check: () => Promise<boolean>, timeoutMs: number, exited: () => boolean): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline && !exited()) {
    if (await check()) return true;
    await new Promise((r) => setTimeout(r, 100));
  }
  return false;
}

/** Starts nginx in front of `router`; resolves once it answers /health on plain HTTP. */
export async function startEdge(opts: EdgeOptions): Promise<Edge> {
  const nginx = findNginx();
  if (!nginx) throw new Error('nginx not found: apt-get install nginx-light (scripts/infra.ts installs it as root)');
  const dir = resolve(opts.dir);
  const host = opts.host ?? '127.0.0.1';
  for (const sub of ['logs', 'temp', 'cache', 'acme']) mkdirSync(join(dir, sub), { recursive: true });
  const tls = opts.tls ?? ensureSelfSignedCertificate(join(dir, 'tls'));
  const httpPort = opts.httpPort || (await freePort(host));
  let httpsPort = opts.httpsPort || (await freePort(host));
  while (httpsPort === httpPort) httpsPort = await freePort(host);
  const vars = localEdgeVars({
    dir,
    host,
    httpPort,
    httpsPort,
    router: opts.router,
    blobDir: opts.blobDir,
    trustedProxy: opts.trustedProxy ?? '127.0.0.1/32',
    limits: { ...DEFAULT_EDGE_LIMITS, ...opts.limits },
    cert: tls.cert,
    key: tls.key,
  });
  const confPath = renderEdgeConfig(dir, vars);
  const problem = testEdgeConfig(nginx, dir, confPath);
  if (problem) throw new Error(`nginx refused its configuration:\n${problem}`);

  const errorLog = vars['NGINX_ERROR_LOG']!;
  const accessLog = vars['NGINX_ACCESS_LOG']!;
  const child: ChildProcess = spawn(nginx, ['-p', dir, '-c', confPath, '-e', errorLog, '-g', 'daemon off;'], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  let gone = false;
  const exited = new Promise<number | null>((r) =>
    child.once('exit', (code) => {
      gone = true;
      r(code);
    }),
  );
  const httpUrl = `http://${host}:${httpPort}`;
  const up = await waitFor(
    async () => {
      try {
        return (await fetch(`${httpUrl}/health`, { signal: AbortSignal.timeout(1000) })).ok;
      } catch {
        return false;
      }
    },
    opts.startTimeoutMs ?? 15_000,
    () => gone,
  );
  const stop = async () => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    child.kill('SIGTERM'); // fast shutdown: open WebSockets are cut
    const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
    await exited;
    clearTimeout(timer);
  };
  if (!up) {
    await stop();
    const log = existsSync(errorLog) ? readFileSync(errorLog, 'utf8').split('\n').slice(-20).join('\n') : '';
    throw new Error(`nginx did not start:\n${stderr}\n${log}`);
  }
  return {
    httpUrl,
    httpsUrl: `https://${host === '127.0.0.1' ? 'localhost' : host}:${httpsPort}`,
    httpPort,
    httpsPort,
    certificate: readFileSync(tls.cert),
    accessLog,
    errorLog,
    accessEntries: () => {
      if (!existsSync(accessLog)) return [];
      return readFileSync(accessLog, 'utf8')
        .split('\n')
        .filter(Boolean)
        .flatMap((line) => {
          try {
            return [JSON.parse(line) as Record<string, unknown>];
          } catch {
            return [];
          }
        });
    },
    exited,
    stop,
  };
}
