/**
 * The Grafana dashboards, as code. `npm run dashboards` writes them to
 * monitoring/grafana/dashboards/*.json (committed; a test fails when they are stale), which
 * Grafana loads through monitoring/grafana/provisioning. A small typed builder of Grafana's
 * dashboard JSON model (schemaVersion 39): rows of time series, stat and logs panels.
 *
 * Every Prometheus expression here is checked: its syntax by promtool (unit tier), and, unless
 * it reads an exporter's metrics (PostgreSQL, PgBouncer, Redis: `source: 'exporter'`), that it
 * returns data from the running test stack (tests/e2e/monitoring.e2e.test.ts).
 */

/** Grafana's datasource uids, fixed in monitoring/grafana/provisioning/datasources. */
export const PROMETHEUS = { type: 'prometheus', uid: 'prometheus' } as const;
export const LOKI = { type: 'loki', uid: 'loki' } as const;

/** Where a panel's data comes from: the services' own /metrics, an exporter, or Loki (logs). */
export type Source = 'app' | 'exporter' | 'loki';

export interface Query {
  expr: string;
  legend?: string;
}

export interface Panel {
  title: string;
  description: string;
  kind: 'timeseries' | 'stat' | 'logs';
  unit?: string;
  queries: Query[];
  source?: Source;
  /** Grid width (of 24); 12 by default, 24 for logs. */
  width?: number;
  stack?: boolean;
}

export interface Row {
  title: string;
  panels: Panel[];
}

export interface Dashboard {
  uid: string;
  title: string;
  description: string;
  /** The file name in monitoring/grafana/dashboards. */
  file: string;
  rows: Row[];
  variables?: { name: string; label: string; description: string }[];
}

const ts = (title: string, description: string, unit: string, queries: Query[], extra: Partial<Panel> = {}): Panel => ({
  title,
  description,
  kind: 'timeseries',
  unit,
  queries,
  ...extra,
});
const q = (expr: string, legend?: string): Query => (legend === undefined ? { expr } : { expr, legend });

const SERVICES = 'router|rag|chat|exam|tasks|worker';

export const DASHBOARDS: Dashboard[] = [
  {
    uid: 'ai-teacher-health',
    title: 'AI-Teacher / System health',
    description: 'Is every service up, how much does it serve, how often does it fail and how fast is it.',
    file: 'system-health.json',
    rows: [
      {
        title: 'Services',
        panels: [
          ts('Replicas up', 'Scraped replicas answering, per service (the ServiceDown alert fires at 0).', 'none', [
            q(`sum by (job) (up{job=~"${SERVICES}"})`, '{{job}}'),
          ]),
          ts(
            'GraphQL operations per second',
            'Every GraphQL operation served, per service (the router counts each client operation once).',
            'reqps',
            [q('service:graphql_requests:rate5m', '{{service}}')],
          ),
          ts(
            'Server error ratio',
            'Operations ending in a server error (not bad input, access or rate limits), per service.',
            'percentunit',
            [q('service:graphql_server_error_ratio:rate5m', '{{service}}')],
          ),
          ts('Latency p99 and p50', 'Operation latency per service.', 's', [
            q('service:graphql_request_duration_seconds:p99_5m', 'p99 {{service}}'),
            q('service:graphql_request_duration_seconds:p50_5m', 'p50 {{service}}'),
          ]),
        ],
      },
      {
        title: 'Processes',
        panels: [
          ts('CPU', 'CPU time per second, per process.', 'percentunit', [
            q('job_instance:process_cpu_seconds:rate5m', '{{job}} {{instance}}'),
          ]),
          ts('Resident memory', 'Per process.', 'bytes', [q(`process_resident_memory_bytes{job=~"${SERVICES}"}`, '{{job}} {{instance}}')]),
          ts('Event loop lag p99', 'Time a ready callback waits for the event loop: a busy process shows here first.', 's', [
            q(`max by (job, instance) (nodejs_eventloop_lag_p99_seconds{job=~"${SERVICES}"})`, '{{job}} {{instance}}'),
          ]),
          ts('Database pool', 'Connections of each process to PgBouncer, and requests waiting for one.', 'none', [
            q('sum by (job, state) (db_pool_connections)', '{{job}} {{state}}'),
          ]),
        ],
      },
    ],
  },
  {
    uid: 'ai-teacher-graphql',
    title: 'AI-Teacher / GraphQL operations',
    description:
      'Per operation: traffic, errors and latency; the router’s calls to the subgraphs; authentication, rate limits and subscriptions.',
    file: 'graphql-operations.json',
    rows: [
      {
        title: 'Operations',
        panels: [
          ts('Operations per second', 'The 20 busiest operations.', 'reqps', [
            q('topk(20, service_operation:graphql_requests:rate5m)', '{{service}} {{operation}}'),
          ]),
          ts('Errors by code', 'Operations that ended in an error, by its code (client errors included).', 'reqps', [
            q('sum by (service, outcome) (rate(graphql_requests_total{outcome!="success"}[$__rate_interval]))', '{{service}} {{outcome}}'),
          ]),
          ts('Latency p99 per operation', 'The 20 slowest (GraphQLOperationSlow fires past 2 s).', 's', [
            q('topk(20, service_operation:graphql_request_duration_seconds:p99_5m)', '{{service}} {{operation}}'),
          ]),
          ts('Router to subgraph p99', 'Latency of the router’s calls to each subgraph.', 's', [
            q('subgraph:subgraph_fetch_duration_seconds:p99_5m', '{{subgraph}}'),
          ]),
          ts('Router to subgraph calls', 'Calls per second by outcome.', 'reqps', [
            q('sum by (subgraph, outcome) (rate(subgraph_fetch_duration_seconds_count[$__rate_interval]))', '{{subgraph}} {{outcome}}'),
          ]),
          ts(
            'Router admission',
            'GraphQL requests over HTTP each router replica is serving, and those refused at once because MAX_IN_FLIGHT were (RouterOverloaded).',
            'none',
            [
              q('sum by (instance) (graphql_requests_in_flight)', '{{instance}} in flight'),
              q('sum by (instance) (rate(overload_rejections_total[$__rate_interval]))', '{{instance}} refused per second'),
            ],
          ),
        ],
      },
      {
        title: 'Access',
        panels: [
          ts('Refused tokens', 'Requests refused for their token, by reason.', 'reqps', [
            q('sum by (reason) (rate(auth_failures_total[$__rate_interval]))', '{{reason}}'),
          ]),
          ts(
            'Key set unavailable',
            'Tokens that could not be checked because the identity provider’s key set could not be fetched (JwksUnavailable).',
            'reqps',
            [q('sum(rate(jwks_failures_total[$__rate_interval]))', 'key set failures')],
          ),
          ts('Rate limited', 'Requests refused by the per-user limit, by role (the edge’s per-IP 429s are in its logs).', 'reqps', [
            q('sum by (role) (rate(rate_limit_rejections_total[$__rate_interval]))', '{{role}}'),
          ]),
        ],
      },
      {
        title: 'Subscriptions',
        panels: [
          ts('Open', 'graphql-ws connections and subscriptions, all routers.', 'none', [
            q('sum(websocket_connections_open)', 'connections'),
            q('sum(subscriptions_open)', 'subscriptions'),
          ]),
          ts('Messages per second', 'Messages sent to subscribers.', 'ops', [
            q('sum(rate(subscription_messages_total[$__rate_interval]))', 'messages'),
          ]),
        ],
      },
    ],
  },
  {
    uid: 'ai-teacher-queues',
    title: 'AI-Teacher / Queues and tasks',
    description: 'The job queues (ingestion, re-indexing, tutor answers): backlog, age, throughput, duration and failures.',
    file: 'queues-and-tasks.json',
    rows: [
      {
        title: 'Queues',
        panels: [
          ts('Jobs by state', 'Jobs in each queue (QueueBacklog fires past 100 waiting).', 'none', [
            q('queue_state:queue_jobs:max{state=~"waiting|active|delayed|prioritized"}', '{{queue}} {{state}}'),
          ]),
          ts('Oldest waiting job', 'How long the oldest waiting job has waited (QueueJobWaitingTooLong fires past 5 minutes).', 's', [
            q('queue:queue_oldest_waiting_job_age_seconds:max', '{{queue}}'),
          ]),
          ts('Failed jobs kept', 'Failed jobs the queues keep (7 days).', 'none', [
            q('queue_state:queue_jobs:max{state="failed"}', '{{queue}}'),
          ]),
        ],
      },
      {
        title: 'Jobs',
        panels: [
          ts('Jobs finished per second', 'By job and outcome.', 'ops', [
            q('job_name_outcome:job_duration_seconds_count:rate5m', '{{job_name}} {{outcome}}'),
          ]),
          ts('Job duration p95', 'Time a worker spends on a job.', 's', [q('job_name:job_duration_seconds:p95_5m', '{{job_name}}')]),
          ts('Failures by code', 'Jobs that failed (JobsFailing fires on INTERNAL, WORKER_CRASHED, BAD_JOB).', 'ops', [
            q('job_name_code:job_failures:rate5m', '{{job_name}} {{code}}'),
          ]),
          ts('Parser peak memory p95', 'Peak resident memory of the PDF/HTML parser child.', 'decmbytes', [
            q('histogram_quantile(0.95, sum by (le) (rate(parser_peak_rss_megabytes_bucket[$__rate_interval])))', 'p95'),
          ]),
        ],
      },
    ],
  },
  {
    uid: 'ai-teacher-tutor',
    title: 'AI-Teacher / Ingestion, search and tutor',
    description: 'Ingestion time, search and its cache, and the tutor: answers, first-token time, the model’s speed, tokens and errors.',
    file: 'ingestion-and-tutor.json',
    rows: [
      {
        title: 'Ingestion and search',
        panels: [
          ts('Ingestion duration p95', 'From a worker taking an ingestion job to the document being ready.', 's', [
            q('job_name:job_duration_seconds:p95_5m{job_name="INGEST_DOCUMENT"}', 'p95'),
          ]),
          ts('Search cache', 'Searches answered from the cache or ranked afresh.', 'ops', [q('result:search_cache:rate5m', '{{result}}')]),
          ts('Search ranking p95', 'Ranking time on a cache miss, by store.', 's', [
            q('store:search_duration_seconds:p95_5m', '{{store}}'),
          ]),
        ],
      },
      {
        title: 'Tutor',
        panels: [
          ts('Answers per second', 'By outcome and engine.', 'ops', [q('engine_outcome:tutor_answers:rate5m', '{{engine}} {{outcome}}')]),
          ts('Time to first token p95', 'From the answer job starting to its first text.', 's', [
            q('engine:tutor_time_to_first_token_seconds:p95_5m', '{{engine}}'),
          ]),
          ts('Model speed p50', 'Completion tokens per second while the model writes.', 'none', [
            q('histogram_quantile(0.5, sum by (le) (rate(tutor_tokens_per_second_bucket[$__rate_interval])))', 'tokens/s'),
          ]),
          ts('Model errors', 'Failed model calls by code (TutorModelErrors).', 'ops', [q('code:tutor_model_errors:rate5m', '{{code}}')]),
          ts('Tokens per second', 'Model tokens used, by kind.', 'none', [
            q('sum by (kind) (rate(tutor_tokens_total[$__rate_interval]))', '{{kind}}'),
          ]),
          ts('Answer cache', 'Answer cache lookups by result.', 'ops', [
            q('sum by (result) (rate(tutor_cache_total[$__rate_interval]))', '{{result}}'),
          ]),
          ts('Dropped citation markers', 'Markers the model wrote that named no given passage.', 'ops', [
            q('sum(rate(tutor_dropped_markers_total[$__rate_interval]))', 'dropped'),
          ]),
        ],
      },
    ],
  },
  {
    uid: 'ai-teacher-infra',
    title: 'AI-Teacher / Infrastructure',
    description: 'PostgreSQL, PgBouncer and both Redis instances, from their exporters; the services’ own database pools.',
    file: 'infrastructure.json',
    rows: [
      {
        title: 'PostgreSQL',
        panels: [
          ts(
            'Connections',
            'Backends per database, and the limit.',
            'none',
            [q('sum by (datname) (pg_stat_database_numbackends)', '{{datname}}'), q('max(pg_settings_max_connections)', 'max_connections')],
            { source: 'exporter' },
          ),
          ts(
            'Transactions per second',
            'Commits and rollbacks.',
            'ops',
            [
              q('sum by (datname) (rate(pg_stat_database_xact_commit[$__rate_interval]))', 'commit {{datname}}'),
              q('sum by (datname) (rate(pg_stat_database_xact_rollback[$__rate_interval]))', 'rollback {{datname}}'),
            ],
            { source: 'exporter' },
          ),
          ts(
            'Deadlocks',
            'Per database.',
            'ops',
            [q('sum by (datname) (rate(pg_stat_database_deadlocks[$__rate_interval]))', '{{datname}}')],
            {
              source: 'exporter',
            },
          ),
          ts('Database size', 'Per database.', 'bytes', [q('pg_database_size_bytes', '{{datname}}')], { source: 'exporter' }),
        ],
      },
      {
        title: 'PgBouncer',
        panels: [
          ts(
            'Clients',
            'Client connections served and waiting for a server connection (PgBouncerClientsWaiting).',
            'none',
            [
              q('sum by (database) (pgbouncer_pools_client_active_connections)', 'active {{database}}'),
              q('sum by (database) (pgbouncer_pools_client_waiting_connections)', 'waiting {{database}}'),
            ],
            { source: 'exporter' },
          ),
          ts(
            'Server connections',
            'Connections to PostgreSQL, in use and idle.',
            'none',
            [
              q('sum by (database) (pgbouncer_pools_server_active_connections)', 'active {{database}}'),
              q('sum by (database) (pgbouncer_pools_server_idle_connections)', 'idle {{database}}'),
            ],
            { source: 'exporter' },
          ),
          ts(
            'Longest wait',
            'Age of the oldest waiting client.',
            's',
            [q('max by (database) (pgbouncer_pools_client_maxwait_seconds)', '{{database}}')],
            {
              source: 'exporter',
            },
          ),
          ts('Services’ pools', 'Each service’s own pool towards PgBouncer (from the services).', 'none', [
            q('sum by (job, state) (db_pool_connections)', '{{job}} {{state}}'),
            q('sum by (job) (db_pool_max)', 'max {{job}}'),
          ]),
        ],
      },
      {
        title: 'Redis',
        panels: [
          ts(
            'Memory',
            'Used and the limit: the queue Redis (job redis) never evicts (RedisMemoryHigh at 80%); the cache Redis evicts.',
            'bytes',
            [q('redis_memory_used_bytes', 'used {{job}}'), q('redis_memory_max_bytes', 'max {{job}}')],
            { source: 'exporter' },
          ),
          ts('Commands per second', 'Per instance.', 'ops', [q('rate(redis_commands_processed_total[$__rate_interval])', '{{job}}')], {
            source: 'exporter',
          }),
          ts('Clients', 'Connected clients per instance.', 'none', [q('redis_connected_clients', '{{job}}')], { source: 'exporter' }),
          ts(
            'Evictions',
            'Keys evicted (expected on the cache Redis only).',
            'ops',
            [q('rate(redis_evicted_keys_total[$__rate_interval])', '{{job}}')],
            {
              source: 'exporter',
            },
          ),
        ],
      },
    ],
  },
  {
    uid: 'ai-teacher-logs',
    title: 'AI-Teacher / Logs',
    description:
      'Follow one request across nginx, the router, the subgraphs and (by its task’s id) the workers. Paste a request id (X-Request-ID of the answer) and, for ingestion, the task id the rag subgraph logged.',
    file: 'logs.json',
    variables: [
      { name: 'request_id', label: 'Request id', description: 'X-Request-ID of an answer, or reqId of any log line' },
      { name: 'job_id', label: 'Job id (task id)', description: 'The taskId of the request’s “ingestion accepted” line, or any jobId' },
    ],
    rows: [
      {
        title: 'Follow a request',
        panels: [
          {
            title: 'The request and its job, every service',
            description: 'Every line with this reqId (nginx, router, subgraphs) or this jobId (workers), in order.',
            kind: 'logs',
            source: 'loki',
            width: 24,
            queries: [q('{service=~".+"} | json | (reqId != "" and reqId = "$request_id") or (jobId != "" and jobId = "$job_id")')],
          },
          {
            title: 'Errors, every service',
            description: 'Lines at level error or fatal (pino levels 50 and 60).',
            kind: 'logs',
            source: 'loki',
            width: 24,
            queries: [q('{service=~".+"} | json | level >= 50')],
          },
        ],
      },
    ],
  },
];

/** Every expression with where it is shown, for the checks. */
export function dashboardExpressions(): { dashboard: string; panel: string; expr: string; source: Source }[] {
  return DASHBOARDS.flatMap((d) =>
    d.rows.flatMap((r) =>
      r.panels.flatMap((p) =>
        p.queries.map((query) => ({ dashboard: d.uid, panel: p.title, expr: query.expr, source: p.source ?? 'app' })),
      ),
    ),
  );
}

/** Grafana's JSON model for one dashboard. */
export function dashboardJson(d: Dashboard): Record<string, unknown> {
  const panels: Record<string, unknown>[] = [];
  let id = 1;
  let y = 0;
  for (const row of d.rows) {
    panels.push({ id: id++, type: 'row', title: row.title, collapsed: false, gridPos: { h: 1, w: 24, x: 0, y }, panels: [] });
    y += 1;
    let x = 0;
    for (const p of row.panels) {
      const w = p.width ?? (p.kind === 'logs' ? 24 : 12);
      const h = p.kind === 'logs' ? 12 : 8;
      if (x + w > 24) {
        x = 0;
        y += 8;
      }
      const datasource = p.source === 'loki' ? LOKI : PROMETHEUS;
      const targets = p.queries.map((query, i) => ({
        refId: String.fromCharCode(65 + i),
        datasource,
        expr: query.expr,
        ...(p.kind === 'logs' ? { queryType: 'range' } : { range: true, legendFormat: query.legend ?? '__auto' }),
      }));
      const common = { id: id++, type: p.kind, title: p.title, description: p.description, datasource, gridPos: { h, w, x, y }, targets };
      if (p.kind === 'logs') {
        panels.push({
          ...common,
          options: {
            showTime: true,
            wrapLogMessage: true,
            sortOrder: 'Ascending',
            enableLogDetails: true,
            prettifyLogMessage: false,
            dedupStrategy: 'none',
          },
        });
      } else {
        panels.push({
          ...common,
          fieldConfig: {
            defaults: {
              unit: p.unit ?? 'none',
              min: 0,
              custom: {
                drawStyle: 'line',
                lineWidth: 1,
                fillOpacity: 10,
                showPoints: 'never',
                spanNulls: false,
                stacking: { mode: p.stack ? 'normal' : 'none' },
              },
            },
            overrides: [],
          },
          options: { legend: { displayMode: 'list', placement: 'bottom', showLegend: true }, tooltip: { mode: 'multi', sort: 'desc' } },
        });
      }
      x += w;
      if (x >= 24) {
        x = 0;
        y += h;
      }
    }
    if (x > 0) y += 8;
  }
  return {
    uid: d.uid,
    title: d.title,
    description: d.description,
    tags: ['ai-teacher'],
    editable: true,
    graphTooltip: 1,
    timezone: 'browser',
    refresh: '30s',
    schemaVersion: 39,
    version: 1,
    time: { from: d.rows.some((r) => r.panels.some((p) => p.kind === 'logs')) ? 'now-6h' : 'now-1h', to: 'now' },
    annotations: { list: [] },
    templating: {
      list: (d.variables ?? []).map((v) => ({
        type: 'textbox',
        name: v.name,
        label: v.label,
        description: v.description,
        query: '',
        current: { text: '', value: '' },
        hide: 0,
      })),
    },
    panels,
  };
}

/** The files `npm run dashboards` writes: name → content. */
export function renderDashboards(): Record<string, string> {
  return Object.fromEntries(DASHBOARDS.map((d) => [d.file, `${JSON.stringify(dashboardJson(d), null, 2)}\n`]));
}
