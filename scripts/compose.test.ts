import { describe, expect, it } from '@jest/globals';
import { readFileSync } from 'node:fs';
import { composeFromConfig, subgraphSdl } from './lib/compose.js';

describe('supergraph composition', () => {
  it('the committed schema/supergraph.graphql matches the subgraphs’ SDL files (run npm run compose if not)', () => {
    const { supergraphSdl } = composeFromConfig('schema/supergraph.yaml');
    expect(readFileSync('schema/supergraph.graphql', 'utf8')).toBe(supergraphSdl);
  });

  it('notices a change in any subgraph’s SDL', () => {
    const changed = subgraphSdl('schema/supergraph.yaml', 'exam').replace('title: String!', 'title: String!\n  difficulty: Int');
    const { supergraphSdl } = composeFromConfig('schema/supergraph.yaml', { exam: changed });
    expect(readFileSync('schema/supergraph.graphql', 'utf8')).not.toBe(supergraphSdl);
    expect(supergraphSdl).toMatch(/difficulty: Int/);
  });

  it('fails loudly when subgraphs do not compose', () => {
    const broken = subgraphSdl('schema/supergraph.yaml', 'chat').replace('title: String!', 'title: Int!');
    const conflicting = subgraphSdl('schema/supergraph.yaml', 'rag').replace(
      'type Course @key(fields: "id") {',
      'type Conversation @key(fields: "id") { id: ID! title: String! }\ntype Course @key(fields: "id") {',
    );
    expect(() => composeFromConfig('schema/supergraph.yaml', { chat: broken, rag: conflicting })).toThrow(/Composition failed/);
  });
});
