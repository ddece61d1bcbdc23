import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { composeFromConfig, subgraphSdl } from './lib/compose.js';

describe('supergraph composition', () => {
  it('the committed schema/supergraph.graphql matches the subgraphs’ SDL files (run npm run compose if not)', () => {
    const { supergraphSdl } = composeFromConfig('schema/supergraph.yaml');
    assert.equal(readFileSync('schema/supergraph.graphql', 'utf8'), supergraphSdl);
  });

  it('notices a change in any subgraph’s SDL', () => {
    const changed = subgraphSdl('schema/supergraph.yaml', 'exam').replace('title: String!', 'title: String!\n  difficulty: Int');
    const { supergraphSdl } = composeFromConfig('schema/supergraph.yaml', { exam: changed });
    assert.notEqual(readFileSync('schema/supergraph.graphql', 'utf8'), supergraphSdl);
    assert.match(supergraphSdl, /difficulty: Int/);
  });

  it('fails loudly when subgraphs do not compose', () => {
    const broken = subgraphSdl('schema/supergraph.yaml', 'chat').replace('title: String!', 'title: Int!');
    const conflicting = subgraphSdl('schema/supergraph.yaml', 'rag').replace(
      'type Course @key(fields: "id") {',
      'type Conversation @key(fields: "id") { id: ID! title: String! }\ntype Course @key(fields: "id") {',
    );
    assert.throws(() => composeFromConfig('schema/supergraph.yaml', { chat: broken, rag: conflicting }), /Composition failed/);
  });
});
