import { readFileSync } from 'node:fs';
import { describe, expect, it } from '@jest/globals';
import { buildSchema, GraphQLEnumType } from 'graphql';
import { TaskKind, TaskStatus } from '@lib/db/client.js';

/** The SDL's enum values must cover the database's, or a task of a missing kind cannot be serialised. */
function sdlEnumValues(name: string): string[] {
  const sdl = readFileSync(new URL('../schema.graphql', import.meta.url), 'utf8');
  // Federation directives are irrelevant here; a plain parse of the enum definitions is enough.
  const enumDefs = sdl.match(new RegExp(`enum ${name} \\{[^}]*\\}`, 'g')) ?? [];
  const type = buildSchema(enumDefs.join('\n') + '\ntype Query { x: Int }').getType(name);
  if (!(type instanceof GraphQLEnumType)) throw new Error(`no enum ${name} in the tasks SDL`);
  return type.getValues().map((v) => v.name);
}

describe('tasks schema', () => {
  it.each([
    ['TaskKind', TaskKind],
    ['TaskStatus', TaskStatus],
  ] as const)('%s lists every value the database can hold', (name, values) => {
    const database = Object.values(values as Record<string, string>);
    expect(database.length).toBeGreaterThan(1);
    expect(sdlEnumValues(name).sort()).toEqual([...database].sort());
  });
});
