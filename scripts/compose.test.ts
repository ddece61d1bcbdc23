import { describe, expect, it } from '@jest/globals';
import { readFileSync } from 'node:fs';
import { operationFromDocument, Supergraph } from '@apollo/federation-internals';
import { QueryPlanner, type QueryPlan } from '@apollo/query-planner';
import { parse } from 'graphql';
import { composeFromConfig, subgraphSdl } from './lib/compose.js';

/** The subgraphs the router's query planner fetches from for an operation, in order. */
function fetches(supergraphSdl: string, operation: string): string[] {
  const supergraph = Supergraph.build(supergraphSdl);
  const plan: QueryPlan = new QueryPlanner(supergraph).buildQueryPlan(operationFromDocument(supergraph.schema, parse(operation)));
  const services: string[] = [];
  const walk = (node: QueryPlan['node']): void => {
    if (!node) return;
    if (node.kind === 'Fetch') services.push(node.serviceName);
    else if (node.kind === 'Flatten') walk(node.node);
    else if (node.kind === 'Sequence' || node.kind === 'Parallel') node.nodes.forEach(walk);
  };
  walk(plan.node);
  return services;
}

const TASK = 'id kind status progress message attempts error { code message } ownerId createdAt startedAt finishedAt';

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

  // The mutations that start a task answer its fields from the row they wrote (@provides): a teacher
  // pasting a thousand notes costs a thousand fetches, not two thousand.
  it.each([
    ['rag', `mutation { ingestDocument(input: { courseId: "c", title: "t", text: "x" }) { ${TASK} document { id status } } }`],
    ['rag', `mutation { reindexCourse(courseId: "c") { ${TASK} } }`],
    ['exam', `mutation { generateExam(input: { courseId: "c", title: "t", questionCount: 5 }) { ${TASK} exam { id status } } }`],
  ])('a mutation that starts a task is one fetch from %s, its Task fields included', (service, operation) => {
    expect(fetches(readFileSync('schema/supergraph.graphql', 'utf8'), operation)).toEqual([service]);
  });

  it('fields the starting subgraph does not provide still come from the tasks subgraph', () => {
    expect(
      fetches(readFileSync('schema/supergraph.graphql', 'utf8'), 'mutation { reindexCourse(courseId: "c") { id course { id } } }'),
    ).toEqual(['rag', 'tasks']);
    expect(fetches(readFileSync('schema/supergraph.graphql', 'utf8'), 'query { task(id: "t") { id status } }')).toEqual(['tasks']);
  });
});
