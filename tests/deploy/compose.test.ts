/**
 * docker-compose.yml, checked without Docker: against the Compose Specification's JSON schema
 * (tests/fixtures/compose-spec.json, a copy of ../shared/contracts/compose-spec.json), with
 * `docker-compose config -q` where that tool is installed, and for the rules of this deployment:
 * what publishes ports, healthchecks and start order, which variables reach which service (the
 * ones its env module reads, no typo ignored), that .env.example covers every variable, and that
 * every configuration template gets a value for each of its placeholders.
 */
import { describe, expect, it } from '@jest/globals';
import { Ajv } from 'ajv';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parse } from 'yaml';
import type { z } from 'zod';
import { placeholders } from '../../scripts/lib/template.js';
import { schema as routerEnv } from '../../router/src/environment.js';
import { schema as ragEnv } from '../../subgraphs/rag/src/environment.js';
import { schema as chatEnv } from '../../subgraphs/chat/src/environment.js';
import { schema as examEnv } from '../../subgraphs/exam/src/environment.js';
import { schema as tasksEnv } from '../../subgraphs/tasks/src/environment.js';
import { schema as workerEnv } from '../../workers/src/environment.js';

const ROOT = resolve(import.meta.dirname ?? '.', '../..');
const COMPOSE_FILE = join(ROOT, 'docker-compose.yml');
const composeText = readFileSync(COMPOSE_FILE, 'utf8');

interface Service {
  image?: string;
  build?: unknown;
  command?: string[];
  entrypoint?: string[];
  environment?: Record<string, string | number | boolean | null>;
  ports?: string[];
  healthcheck?: { test?: string[]; disable?: boolean };
  depends_on?: Record<string, { condition?: string }>;
  restart?: string;
  networks?: string[] | Record<string, unknown>;
  volumes?: string[];
  deploy?: { replicas?: number; resources?: { limits?: { cpus?: string; memory?: string } } };
}
const compose = parse(composeText, { merge: true }) as {
  services: Record<string, Service>;
  networks: Record<string, { internal?: boolean }>;
};
const services = compose.services;
const names = Object.keys(services);

/** The one-shot services: they exit, and what needs them waits for their success. */
const ONE_SHOT = ['migrate'];

/** Each Node service's entry file and the zod object of variables its env module reads. */
const ENV_MODULES: Record<string, { entry: string; schema: { shape: Record<string, z.ZodType> } }> = {
  router: { entry: 'router/src/index.ts', schema: routerEnv as never },
  rag: { entry: 'subgraphs/rag/src/index.ts', schema: ragEnv as never },
  chat: { entry: 'subgraphs/chat/src/index.ts', schema: chatEnv as never },
  exam: { entry: 'subgraphs/exam/src/index.ts', schema: examEnv as never },
  tasks: { entry: 'subgraphs/tasks/src/index.ts', schema: tasksEnv as never },
  worker: { entry: 'workers/src/index.ts', schema: workerEnv as never },
};

/** Test values for the secrets .env.example leaves to `npm run -s secrets`. */
const TEST_SECRETS = {
  POSTGRES_PASSWORD: 'test-password',
  INTERNAL_JWT_PRIVATE_JWK: '{"kty":"OKP"}',
  INTERNAL_JWT_PUBLIC_JWK: '{"kty":"OKP"}',
  FILE_URL_SECRET: 'a-secret-of-at-least-thirty-two-characters',
  QDRANT_API_KEY: 'test-key',
  GRAFANA_ADMIN_PASSWORD: 'test-password',
};

describe('docker-compose.yml', () => {
  it('is valid against the Compose Specification', () => {
    // Its $schema (https://json-schema.org/draft-07/schema) is draft-07, Ajv's default, under a URL Ajv does not know.
    const { $schema: _, ...spec } = JSON.parse(readFileSync(join(ROOT, 'tests/fixtures/compose-spec.json'), 'utf8')) as Record<
      string,
      unknown
    >;
    const ajv = new Ajv({ allErrors: true, strict: false, validateFormats: false });
    const validate = ajv.compile(spec);
    const valid = validate(compose);
    expect(validate.errors ?? []).toEqual([]);
    expect(valid).toBe(true);
  });

  const dockerCompose = spawnSync('docker-compose', ['version'], { encoding: 'utf8' }).status === 0;
  if (!dockerCompose)
    console.warn('skipped: `docker-compose config -q` needs docker-compose (apt-get install docker-compose), which is absent');
  (dockerCompose ? it : it.skip)('passes `docker-compose config -q` with .env.example and the secrets filled in', () => {
    const dir = mkdtempSync(join(tmpdir(), 'compose-'));
    try {
      const envFile = join(dir, '.env');
      const secrets = Object.entries(TEST_SECRETS).map(([k, v]) => `${k}=${v}`);
      writeFileSync(envFile, `${readFileSync(join(ROOT, '.env.example'), 'utf8')}\n${secrets.join('\n')}\n`);
      const res = spawnSync('docker-compose', ['--project-directory', ROOT, '-f', COMPOSE_FILE, '--env-file', envFile, 'config', '-q'], {
        encoding: 'utf8',
      });
      expect(`${res.stdout}${res.stderr}`.trim()).toBe('');
      expect(res.status).toBe(0);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('publishes ports for nginx and Grafana only', () => {
    const publishing = names.filter((n) => (services[n]!.ports ?? []).length > 0).sort();
    expect(publishing).toEqual(['grafana', 'nginx']);
    expect(services['nginx']!.ports).toEqual(['${HTTP_PORT:-80}:8080', '${HTTPS_PORT:-443}:8443']);
  });

  it('gives every long-running service a healthcheck, a restart policy and resource limits', () => {
    for (const name of names) {
      const s = services[name]!;
      if (ONE_SHOT.includes(name)) {
        expect({ name, restart: s.restart, healthcheck: s.healthcheck }).toEqual({ name, restart: 'no', healthcheck: { disable: true } });
        continue;
      }
      expect({ name, test: s.healthcheck?.test?.[0] }).toEqual({ name, test: expect.stringMatching(/^CMD(-SHELL)?$/) });
      expect({ name, restart: s.restart }).toEqual({ name, restart: 'unless-stopped' });
      expect({ name, limits: s.deploy?.resources?.limits }).toEqual({
        name,
        limits: { cpus: expect.any(String), memory: expect.any(String) },
      });
    }
  });

  it('starts each service after what it needs is healthy (or, for the migrations, done)', () => {
    for (const name of names) {
      for (const [dep, { condition }] of Object.entries(services[name]!.depends_on ?? {})) {
        expect(names).toContain(dep);
        const expected = ONE_SHOT.includes(dep) ? 'service_completed_successfully' : 'service_healthy';
        expect({ name, dep, condition }).toEqual({ name, dep, condition: expected });
      }
    }
    for (const name of ['rag', 'chat', 'exam', 'tasks', 'worker']) expect(services[name]!.depends_on?.['migrate']).toBeDefined();
    expect(Object.keys(services['router']!.depends_on ?? {}).sort()).toEqual(['chat', 'exam', 'rag', 'redis', 'tasks']);
    expect(Object.keys(services['nginx']!.depends_on ?? {})).toEqual(['router']);
  });

  it('runs two replicas of the router, each subgraph and the workers, from one image', () => {
    const image = services['router']!.image;
    for (const name of ['router', 'rag', 'chat', 'exam', 'tasks', 'worker']) {
      expect({ name, replicas: services[name]!.deploy?.replicas }).toEqual({ name, replicas: 2 });
      expect({ name, image: services[name]!.image, build: services[name]!.build }).toEqual({
        name,
        image,
        build: { context: '.', target: 'app' },
      });
      expect(services[name]!.command?.slice(0, 3)).toEqual(['node', '--import', 'tsx']);
    }
    expect(services['migrate']!.image).toBe(image);
  });

  it('keeps the internal network without a route out, except for the router, rag and the workers', () => {
    expect(compose.networks['internal']).toEqual({ internal: true });
    const out = names.filter((n) => {
      const nets = services[n]!.networks ?? [];
      return (Array.isArray(nets) ? nets : Object.keys(nets)).includes('egress');
    });
    expect(out.sort()).toEqual(['rag', 'router', 'worker']);
  });

  it('shares one blob volume between the router, rag and the workers; nginx reads it', () => {
    const mounting = names.filter((n) => (services[n]!.volumes ?? []).some((v) => v.startsWith('blobs:'))).sort();
    expect(mounting).toEqual(['nginx', 'rag', 'router', 'worker']);
    expect(services['nginx']!.volumes).toContain('blobs:/data/blobs:ro');
    for (const name of ['router', 'rag', 'worker']) {
      expect(services[name]!.volumes).toContain('blobs:/data/blobs');
      expect(services[name]!.environment?.['BLOB_DIR']).toBe('/data/blobs');
    }
  });

  describe('passes each Node service exactly variables its env module reads', () => {
    it.each(Object.keys(ENV_MODULES))('%s', (name) => {
      const { entry, schema } = ENV_MODULES[name]!;
      const service = services[name]!;
      expect(service.command?.at(-1)).toBe(entry);
      const read = Object.keys(schema.shape);
      const passed = Object.keys(service.environment ?? {});
      expect(passed.filter((k) => !read.includes(k))).toEqual([]);
      // And every variable without a default is passed.
      const required = read.filter((k) => !schema.shape[k]!.safeParse(undefined).success);
      expect(required.filter((k) => !passed.includes(k))).toEqual([]);
    });

    it('migrate (lib/db/migrate.ts reads DIRECT_DATABASE_URL only)', () => {
      expect(services['migrate']!.command?.at(-1)).toBe('lib/db/migrate.ts');
      expect(readFileSync(join(ROOT, 'lib/db/migrate.ts'), 'utf8')).toContain("processEnv()['DIRECT_DATABASE_URL']");
      expect(Object.keys(services['migrate']!.environment ?? {})).toEqual(['DIRECT_DATABASE_URL']);
    });
  });

  it('takes every variable it uses from .env, and .env.example lists each one', () => {
    const used = new Set<string>();
    const visit = (value: unknown): void => {
      if (typeof value === 'string') for (const m of value.matchAll(/\$\{([A-Z][A-Z0-9_]*)/g)) used.add(m[1]!);
      else if (value && typeof value === 'object') for (const v of Object.values(value)) visit(v);
    };
    visit(compose);
    // Entries without a value are passed from .env when set there (EMBEDDINGS_URL:, LLM_URL:, ...).
    for (const s of Object.values(services)) {
      for (const [k, v] of Object.entries(s.environment ?? {})) if (v === null) used.add(k);
    }
    const example = readFileSync(join(ROOT, '.env.example'), 'utf8');
    const listed = new Set([...example.matchAll(/^(?:# )?([A-Z][A-Z0-9_]*)=/gm)].map((m) => m[1]!));
    expect([...used].filter((v) => !listed.has(v)).sort()).toEqual([]);
    // Secrets have no value in the repository: .env.example names them, commented out.
    for (const secret of Object.keys(TEST_SECRETS)) {
      expect(example).toMatch(new RegExp(`^# ${secret}=`, 'm'));
      expect(example).not.toMatch(new RegExp(`^${secret}=`, 'm'));
      expect(composeText).toContain(`\${${secret}:?`);
    }
  });

  it('gives every configuration template it renders a value for each placeholder', () => {
    let rendered = 0;
    for (const name of names) {
      const s = services[name]!;
      if (s.entrypoint?.[0] !== '/config/render.sh') continue;
      const stop = s.entrypoint.indexOf('--');
      const args = s.entrypoint.slice(1, stop);
      const mounts = (s.volumes ?? []).map((v) => v.split(':')).filter((p) => p[0]!.startsWith('./'));
      for (let i = 0; i < args.length; i += 2) {
        // The container path back to the repository file, through the service's bind mounts.
        const inContainer = args[i]!;
        const mount = mounts.find(([, target]) => inContainer.startsWith(`${target}/`));
        expect({ name, inContainer, mounted: mount !== undefined }).toEqual({ name, inContainer, mounted: true });
        const file = join(ROOT, mount![0]!, inContainer.slice(mount![1]!.length));
        expect(existsSync(file)).toBe(true);
        const missing = placeholders(readFileSync(file, 'utf8')).filter((p) => !(p in (s.environment ?? {})));
        expect({ name, file: file.slice(ROOT.length + 1), missing }).toEqual({ name, file: file.slice(ROOT.length + 1), missing: [] });
        rendered++;
      }
    }
    // postgres, pgbouncer (2), redis, redis-cache, nginx (4).
    expect(rendered).toBe(9);
  });
});
