import { composeServices } from '@apollo/composition';
import { parse } from 'graphql';
import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';

/** rover's supergraph.yaml, the parts we use: each subgraph's routing URL and SDL file. */
const configSchema = z.object({
  federation_version: z.string().optional(),
  subgraphs: z.record(z.string(), z.object({ routing_url: z.string().url(), schema: z.object({ file: z.string() }) })),
});

export interface CompositionResult {
  supergraphSdl: string;
}

/** Composes the subgraphs named in a rover-format config; throws with every composition error. */
export function composeFromConfig(configPath: string, overrides: Record<string, string> = {}): CompositionResult {
  const config = configSchema.parse(parseYaml(readFileSync(configPath, 'utf8')));
  const base = dirname(resolve(configPath));
  const services = Object.entries(config.subgraphs).map(([name, sub]) => ({
    name,
    url: sub.routing_url,
    typeDefs: parse(overrides[name] ?? readFileSync(resolve(base, sub.schema.file), 'utf8')),
  }));
  const result = composeServices(services);
  if (result.errors?.length || !result.supergraphSdl) {
    throw new Error(`Composition failed:\n${(result.errors ?? []).map((e) => `  - ${e.message}`).join('\n')}`);
  }
  return { supergraphSdl: `${result.supergraphSdl.trimEnd()}\n` };
}

/** Reads a subgraph's SDL as the config names it (for tests that compose a variant). */
export function subgraphSdl(configPath: string, name: string): string {
  const config = configSchema.parse(parseYaml(readFileSync(configPath, 'utf8')));
  const sub = config.subgraphs[name];
  if (!sub) throw new Error(`no subgraph ${name} in ${configPath}`);
  return readFileSync(resolve(dirname(resolve(configPath)), sub.schema.file), 'utf8');
}
