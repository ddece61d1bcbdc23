/**
 * npm run dashboards [-- --check]: writes the Grafana dashboards defined in
 * scripts/lib/dashboards.ts to monitoring/grafana/dashboards/. With --check it writes nothing and
 * exits 1 when a committed file is stale (tests/deploy/monitoring.test.ts checks the same).
 */
import { readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { renderDashboards } from './lib/dashboards.js';

const DIR = 'monitoring/grafana/dashboards';
const files = renderDashboards();
if (process.argv.includes('--check')) {
  const stale = Object.entries(files).filter(([name, content]) => {
    try {
      return readFileSync(join(DIR, name), 'utf8') !== content;
    } catch {
      return true;
    }
  });
  const extra = readdirSync(DIR).filter((f) => f.endsWith('.json') && !(f in files));
  if (stale.length || extra.length) {
    console.error(`stale: ${[...stale.map(([n]) => n), ...extra].join(', ')}; run npm run dashboards`);
    process.exit(1);
  }
  console.log(`${DIR} is up to date`);
} else {
  for (const f of readdirSync(DIR).filter((f) => f.endsWith('.json') && !(f in files))) rmSync(join(DIR, f));
  for (const [name, content] of Object.entries(files)) writeFileSync(join(DIR, name), content);
  console.log(`wrote ${Object.keys(files).length} dashboards to ${DIR}`);
}
