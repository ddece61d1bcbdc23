/**
 * monitoring/: Prometheus' configuration and rules under promtool (check config, check rules,
 * and the alerts' unit tests with `promtool test rules`), the generated Grafana dashboards
 * (stale files fail), and the syntax of every dashboard expression. That each expression
 * returns data from the running services is tests/e2e/monitoring.e2e.test.ts.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse, stringify } from 'yaml';
import { dashboardExpressions, DASHBOARDS, renderDashboards } from '../../scripts/lib/dashboards.js';
import { localPrometheusConfig, MONITORING_DIR } from '../../scripts/lib/prometheus.js';

const promtool = ['/usr/bin/promtool', '/usr/local/bin/promtool'].find((p) => existsSync(p));
if (!promtool) console.warn('skipped: the promtool checks need promtool (apt-get install prometheus), which is absent');
const withPromtool = promtool ? describe : describe.skip;

function run(args: string[]) {
  const res = spawnSync(promtool!, args, { encoding: 'utf8', cwd: MONITORING_DIR });
  return { status: res.status, output: `${res.stdout}${res.stderr}` };
}

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'monitoring-test-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

withPromtool('Prometheus configuration and rules (promtool)', () => {
  it('accepts docker-compose’s prometheus.yml, with its rule files', () => {
    const res = run(['check', 'config', 'prometheus.yml']);
    expect(res.output).toContain('SUCCESS: prometheus.yml is valid prometheus config file syntax');
    expect(res.output).not.toContain('FAILED');
    expect(res.status).toBe(0);
  });

  it('accepts the configuration npm run dev and the tests write, with the same jobs', () => {
    const targets = Object.fromEntries(['router', 'rag', 'chat', 'exam', 'tasks', 'worker'].map((j, i) => [j, [`127.0.0.1:${4000 + i}`]]));
    const file = join(dir, 'local.yml');
    writeFileSync(file, localPrometheusConfig({ dir, targets, scrapeIntervalS: 1 }));
    const res = run(['check', 'config', file]);
    expect(res.status).toBe(0);
    const local = parse(readFileSync(file, 'utf8')) as { scrape_configs: { job_name: string; metric_relabel_configs?: unknown }[] };
    const compose = parse(readFileSync(join(MONITORING_DIR, 'prometheus.yml'), 'utf8')) as typeof local;
    expect(local.scrape_configs.map((j) => j.job_name)).toEqual(Object.keys(targets));
    // The same relabelling as in production (the workers' job label).
    const worker = (c: typeof local) => c.scrape_configs.find((j) => j.job_name === 'worker')!.metric_relabel_configs;
    expect(worker(local)).toEqual(worker(compose));
  });

  it('scrapes every service and exporter in docker-compose, by DNS for the replicated ones', () => {
    const config = parse(readFileSync(join(MONITORING_DIR, 'prometheus.yml'), 'utf8')) as {
      scrape_configs: {
        job_name: string;
        dns_sd_configs?: { names: string[]; port: number }[];
        static_configs?: { targets: string[] }[];
      }[];
    };
    const byJob = Object.fromEntries(config.scrape_configs.map((j) => [j.job_name, j]));
    for (const [job, port] of Object.entries({ router: 9400, rag: 4001, chat: 4002, exam: 4003, tasks: 4004, worker: 4010 })) {
      expect(byJob[job]?.dns_sd_configs).toEqual([{ names: [job], type: 'A', port }]);
    }
    const compose = parse(readFileSync(join(MONITORING_DIR, '..', 'docker-compose.yml'), 'utf8'), { merge: true }) as {
      services: Record<string, unknown>;
    };
    for (const job of ['postgres', 'pgbouncer', 'redis', 'redis-cache']) {
      const target = byJob[job]!.static_configs![0]!.targets[0]!;
      expect(Object.keys(compose.services)).toContain(target.split(':')[0]);
    }
  });

  it('accepts the recording and alerting rules', () => {
    const files = readdirSync(join(MONITORING_DIR, 'rules')).map((f) => `rules/${f}`);
    expect(files.sort()).toEqual(['rules/alerts.yml', 'rules/recording.yml']);
    const res = run(['check', 'rules', ...files]);
    expect(res.output).not.toContain('FAILED');
    expect(res.status).toBe(0);
  });

  it('fires each alert when it should and not otherwise (promtool test rules)', () => {
    const res = run(['test', 'rules', 'tests/alerts.test.yml']);
    expect(res.output).toContain('SUCCESS');
    expect(res.status).toBe(0);
  });

  it('has a unit test for every alert, and the alerts the deployment asks for', () => {
    const rules = parse(readFileSync(join(MONITORING_DIR, 'rules/alerts.yml'), 'utf8')) as { groups: { rules: { alert: string }[] }[] };
    const alerts = rules.groups.flatMap((g) => g.rules.map((r) => r.alert));
    const tests = parse(readFileSync(join(MONITORING_DIR, 'tests/alerts.test.yml'), 'utf8')) as {
      tests: { alert_rule_test: { alertname: string; exp_alerts: unknown[] }[] }[];
    };
    const fired = new Set(tests.tests.flatMap((t) => t.alert_rule_test.filter((a) => a.exp_alerts.length > 0).map((a) => a.alertname)));
    expect(alerts.filter((a) => !fired.has(a))).toEqual([]);
    const text = readFileSync(join(MONITORING_DIR, 'rules/alerts.yml'), 'utf8');
    for (const metric of [
      'graphql_requests', // error rate
      'graphql_request_duration_seconds:p99', // p99 per operation
      'queue_jobs', // backlog
      'queue_oldest_waiting_job_age_seconds', // oldest waiting job
      'job_failures_total', // failed jobs
      'up{job=~"router|rag|chat|exam|tasks|worker"}', // worker or subgraph down
      'redis_memory_used_bytes',
      'pgbouncer_pools_client_waiting_connections',
      'jwks_failures_total',
      'tutor_model_errors_total',
    ]) {
      expect(text).toContain(metric);
    }
  });

  it('parses every dashboard expression (those of exporters are checked here only)', () => {
    const expressions = dashboardExpressions().filter((e) => e.source !== 'loki');
    const file = join(dir, 'dashboard-expressions.yml');
    writeFileSync(
      file,
      stringify({
        groups: [
          {
            name: 'dashboard-expressions',
            rules: expressions.map((e, i) => ({ record: `dashboard:expression_${i}`, expr: e.expr.replaceAll('$__rate_interval', '1m') })),
          },
        ],
      }),
    );
    const res = run(['check', 'rules', file]);
    expect(res.output).toContain(`SUCCESS: ${expressions.length} rules found`);
    const exporters = expressions.filter((e) => e.source === 'exporter');
    expect(exporters.length).toBeGreaterThan(0);
    console.warn(
      `not evaluated against live data (exporter metrics: PostgreSQL, PgBouncer, Redis; no exporter runs here), syntax checked only:\n${exporters
        .map((e) => `  ${e.dashboard} / ${e.panel}: ${e.expr}`)
        .join('\n')}`,
    );
  });
});

describe('Grafana dashboards', () => {
  it('are committed as generated (npm run dashboards)', () => {
    const files = renderDashboards();
    const onDisk = readdirSync(join(MONITORING_DIR, 'grafana/dashboards')).filter((f) => f.endsWith('.json'));
    expect(onDisk.sort()).toEqual(Object.keys(files).sort());
    for (const [name, content] of Object.entries(files)) {
      expect({ name, fresh: readFileSync(join(MONITORING_DIR, 'grafana/dashboards', name), 'utf8') === content }).toEqual({
        name,
        fresh: true,
      });
    }
  });

  it('cover system health, GraphQL operations, queues and tasks, ingestion and tutor, infrastructure and logs', () => {
    expect(DASHBOARDS.map((d) => d.uid)).toEqual([
      'ai-teacher-health',
      'ai-teacher-graphql',
      'ai-teacher-queues',
      'ai-teacher-tutor',
      'ai-teacher-infra',
      'ai-teacher-logs',
    ]);
    const infra = dashboardExpressions()
      .filter((e) => e.dashboard === 'ai-teacher-infra')
      .map((e) => e.expr)
      .join('\n');
    for (const m of ['pg_stat_database_numbackends', 'pgbouncer_pools_client_waiting_connections', 'redis_memory_used_bytes'])
      expect(infra).toContain(m);
    const logs = dashboardExpressions().filter((e) => e.source === 'loki');
    expect(logs.map((e) => e.expr)).toContain(
      '{service=~".+"} | json | (reqId != "" and reqId = "$request_id") or (jobId != "" and jobId = "$job_id")',
    );
  });

  it('name only the data sources Grafana is provisioned with', () => {
    const provisioned = parse(readFileSync(join(MONITORING_DIR, 'grafana/provisioning/datasources/datasources.yml'), 'utf8')) as {
      datasources: { uid: string; type: string }[];
    };
    const known = new Set(provisioned.datasources.map((d) => `${d.type}/${d.uid}`));
    for (const content of Object.values(renderDashboards())) {
      for (const m of content.matchAll(/"type": "(prometheus|loki)",\s*"uid": "([^"]+)"/g)) expect(known.has(`${m[1]}/${m[2]}`)).toBe(true);
    }
    const providers = parse(readFileSync(join(MONITORING_DIR, 'grafana/provisioning/dashboards/dashboards.yml'), 'utf8')) as {
      providers: { options: { path: string } }[];
    };
    const compose = readFileSync(join(MONITORING_DIR, '..', 'docker-compose.yml'), 'utf8');
    expect(compose).toContain(`./monitoring/grafana/dashboards:${providers.providers[0]!.options.path}:ro`);
  });
});
