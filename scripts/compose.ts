/**
 * npm run compose [-- --check]: composes schema/supergraph.yaml into schema/supergraph.graphql.
 * With --check it writes nothing and exits 1 when the committed file is stale.
 * Written atomically, so a router watching the file never reads half of it.
 */
import { readFileSync, renameSync, writeFileSync } from 'node:fs';
import { composeFromConfig } from './lib/compose.js';

const CONFIG = 'schema/supergraph.yaml';
const OUTPUT = 'schema/supergraph.graphql';

const { supergraphSdl } = composeFromConfig(CONFIG);
if (process.argv.includes('--check')) {
  let current = '';
  try {
    current = readFileSync(OUTPUT, 'utf8');
  } catch {}
  if (current !== supergraphSdl) {
    console.error(`${OUTPUT} is stale: run npm run compose`);
    process.exit(1);
  }
  console.log(`${OUTPUT} is up to date`);
} else {
  writeFileSync(`${OUTPUT}.tmp`, supergraphSdl);
  renameSync(`${OUTPUT}.tmp`, OUTPUT);
  console.log(`wrote ${OUTPUT} (${supergraphSdl.length} bytes)`);
}
