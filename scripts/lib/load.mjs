/**
 * The load generator of `npm run bench:router`, run as its own process so it does not share the
 * gateway's event loop: node scripts/lib/load.mjs '<json options>'. Options: url, body, headers,
 * connections, duration (s), expectBody (a response with another body counts as a mismatch: a
 * gateway answers 200 with errors when its subgraphs refuse it). Prints one JSON line: rps, p50, p95, p99 (ms, from every response's
 * own time, so any percentile can be read), errors, non2xx, total.
 */
import autocannon from 'autocannon';

const { url, body, headers, connections, duration, expectBody } = JSON.parse(process.argv[2]);
const times = [];
const instance = autocannon({ url, method: 'POST', body, headers, connections, duration, ...(expectBody ? { expectBody } : {}) });
instance.on('response', (_client, _status, _bytes, responseTime) => times.push(responseTime));
const result = await instance;
times.sort((a, b) => a - b);
const at = (q) => (times.length ? Math.round(times[Math.min(times.length - 1, Math.floor(q * times.length))] * 10) / 10 : NaN);
process.stdout.write(
  `${JSON.stringify({
    rps: result.requests.average,
    p50: at(0.5),
    p95: at(0.95),
    p99: at(0.99),
    errors: result.errors + result.timeouts,
    non2xx: result.non2xx,
    mismatches: result.mismatches ?? 0,
    total: result.requests.total,
  })}\n`,
);
