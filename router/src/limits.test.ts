import { afterAll, beforeAll, describe, expect, it, jest } from '@jest/globals';
import { ApolloGateway } from '@apollo/gateway';
import { ApolloServer, HeaderMap } from '@apollo/server';
import { buildASTSchema, Kind, parse, print, printSchema, type DocumentNode, type GraphQLSchema } from 'graphql';
import { readFileSync } from 'node:fs';
import { pino } from 'pino';
import { formatErrorFor } from '@lib/graphql-plugins.js';
import { MESSAGE_FIELDS } from '../../tests/support/tutor.js';
import { TASK_FIELDS } from '../../tests/support/ingest.js';
import { COST_MODEL, createQueryGuard, estimateCost, type CostedContext, type QueryLimits } from './limits.js';
import type { RateDecision } from './rate-limit.js';

/** The router's defaults (environment.ts). */
const LIMITS: QueryLimits = { maxTokens: 1000, maxDepth: 10, maxAliases: 15, maxDirectives: 5, maxCost: 5000, costPerPoint: 100 };
const root = new URL('../../', import.meta.url);
const read = (path: string) => readFileSync(new URL(path, root), 'utf8');

let gateway: ApolloGateway;
let schema: GraphQLSchema;
beforeAll(async () => {
  // The API schema as the router's gateway builds it from the supergraph.
  gateway = new ApolloGateway({ supergraphSdl: read('schema/supergraph.graphql') });
  ({ schema } = await gateway.load());
});
afterAll(async () => {
  await gateway?.stop();
});

/** Each operation of a document on its own (a README block holds several anonymous ones). */
function operations(source: string): DocumentNode[] {
  const document = parse(source);
  const fragments = document.definitions.filter((d) => d.kind === Kind.FRAGMENT_DEFINITION);
  return document.definitions
    .filter((d) => d.kind === Kind.OPERATION_DEFINITION)
    .map((op) => ({ kind: Kind.DOCUMENT, definitions: [op, ...fragments] }) as DocumentNode);
}

/** The GraphQL in the user-facing docs: ```graphql blocks, "query" strings in shell examples, `query:` in JS examples. */
function documentedOperations(markdown: string): string[] {
  const found: string[] = [];
  for (const m of markdown.matchAll(/```graphql\n([\s\S]*?)```/g)) found.push(m[1]!);
  for (const m of markdown.matchAll(/"query": "((?:[^"\\]|\\.)*)"/g)) found.push(JSON.parse(`"${m[1]}"`) as string);
  for (const m of markdown.matchAll(/query: `([\s\S]*?)`/g)) found.push(m[1]!);
  return found;
}

/** What the UI, the tutor, exams, the examples and the benchmarks send; each must stay allowed. */
function uiOperations(): Record<string, string> {
  const bench = read('scripts/bench-router.ts');
  const benchQueries = [...bench.matchAll(/'(query \w+ \{[^']*\})'/g)].map((m) => m[1]!);
  expect(benchQueries).toHaveLength(2);
  const documented = [...documentedOperations(read('README.md')), ...documentedOperations(read('docs/api.md'))];
  expect(documented.length).toBeGreaterThanOrEqual(6);
  const ops: Record<string, string> = {};
  documented.forEach((source, i) => operations(source).forEach((op, j) => (ops[`docs #${i + 1}.${j + 1}`] = print(op))));
  benchQueries.forEach((q, i) => (ops[`bench #${i + 1}`] = q));
  Object.assign(ops, {
    // The tutor (tests/support/tutor.ts, scripts/eval-tutor).
    askTutor: `mutation($i: AskTutorInput!) { askTutor(input: $i) { ${MESSAGE_FIELDS} } }`,
    message: `query($id: ID!) { message(id: $id) { ${MESSAGE_FIELDS} } }`,
    answerStream: `subscription($id: ID!) { answerStream(messageId: $id) { type seq text message { ${MESSAGE_FIELDS} } } }`,
    conversationPage: `query($id: ID!, $after: String) { conversation(id: $id) { id title updatedAt course { id title }
      messages(first: 100, after: $after) { edges { cursor node { ${MESSAGE_FIELDS} myRating { helpful comment } } } pageInfo { hasNextPage endCursor } } } }`,
    conversations: 'query($c: ID!) { course(id: $c) { myConversations(first: 100) { id title updatedAt } } }',
    tutorFeedback:
      'query($c: ID!) { course(id: $c) { tutorFeedback(first: 100) { cursor helpful comment question answer userId createdAt } } }',
    rateAnswer: 'mutation($m: ID!) { rateAnswer(messageId: $m, helpful: true, comment: "clear") { id myRating { helpful } } }',
    // Exams.
    exam: 'query($id: ID!) { exam(id: $id) { id title publishedAt createdAt course { id title myRole } } }',
    // A course page, as a teacher sees it.
    coursePage: `query($c: ID!) { course(id: $c) { id title description createdBy createdAt myRole members { userId role joinedAt }
      documents { id title format pages sizeBytes status chunkCount ocrPages ocrConfidence ocrSkippedPages error { code message }
        filename fileUrl createdAt task { id status progress message } }
      exams { id title publishedAt } myConversations { id title updatedAt } } }`,
    // Ingestion and tasks (tests/support/ingest.ts).
    ingest: `mutation($i: IngestDocumentInput!) { ingestDocument(input: $i) { ${TASK_FIELDS} } }`,
    task: `query($id: ID!) { task(id: $id) { ${TASK_FIELDS} } }`,
    myTasks: `query { myTasks(first: 100) { edges { cursor node { id kind status progress message course { id title } } } pageInfo { hasNextPage endCursor } } }`,
    taskUpdated: `subscription($id: ID!) { taskUpdated(id: $id) { ${TASK_FIELDS} } }`,
    myTaskUpdated: 'subscription { myTaskUpdated { id kind status progress message error { code message } } }',
    searchMax: `query($c: ID!) { search(courseId: $c, query: "alternating current", limit: 100) { chunkId text score pageStart pageEnd
      position heading matchedTerms highlight document { id title filename fileUrl } } }`,
    limits: '{ limits { titleMaxChars pastedTextMaxChars searchQueryMaxChars searchLimitMax } }',
  });
  return ops;
}
describe('query limits: the normal operations stay allowed', () => {
  it('passes every operation of the docs, the benchmarks, the tutor and exams, each at a few points', () => {
    const guard = createQueryGuard({ limits: LIMITS, production: true });
    const priced: Record<string, { cost: number; points: number; errors: string[] }> = {};
    for (const [name, source] of Object.entries(uiOperations())) {
      const document = guard.parse(source);
      const errors = guard.validate(schema, document).map((e) => e.message);
      const { cost, points, error } = guard.price(schema, document, undefined, {});
      priced[name] = { cost, points, errors: error ? [...errors, error.message] : errors };
    }
    for (const [name, p] of Object.entries(priced)) {
      expect({ name, errors: p.errors }).toEqual({ name, errors: [] });
      // The heaviest (a 100-message conversation page) is under a third of the cost limit.
      expect({ name, withinCost: p.cost <= LIMITS.maxCost / 3 }).toEqual({ name, withinCost: true });
    }
    // The measured costs the documentation quotes (router/README.md).
    expect(priced['bench #1']).toMatchObject({ cost: 31, points: 1 });
    expect(priced['bench #2']).toMatchObject({ cost: 1, points: 1 });
    expect(priced['askTutor']).toMatchObject({ cost: 115, points: 1 });
    expect(priced['message']!.points).toBe(1);
    expect(priced['task']!.points).toBe(1);
    expect(priced['ingest']).toMatchObject({ cost: 204, points: 2 });
    expect(priced['conversationPage']!.points).toBeLessThanOrEqual(20);
  });
});

describe('query limits: what is refused', () => {
  const guard = createQueryGuard({ limits: LIMITS, production: true });
  const refusal = (source: string) => {
    let document: DocumentNode;
    try {
      document = guard.parse(source);
    } catch (err) {
      return [{ message: (err as Error).message, extensions: (err as { extensions?: unknown }).extensions }];
    }
    const errors = guard.validate(schema, document);
    if (errors.length) return errors.map((e) => ({ message: e.message, extensions: e.extensions }));
    const { error } = guard.price(schema, document, undefined, {});
    return error ? [{ message: error.message, extensions: error.extensions }] : [];
  };
  const aliases = (n: number, field: string) => `{ ${Array.from({ length: n }, (_, i) => `a${i}: ${field}`).join(' ')} }`;

  it('a query deeper than maxDepth, named, alone', () => {
    const deep =
      '{ myCourses { documents { course { documents { course { documents { course { documents { course { documents { id } } } } } } } } } } }';
    expect(refusal(deep)).toEqual([
      {
        message: expect.stringMatching(/too deep.*at most 10/),
        extensions: { code: 'BAD_USER_INPUT', limit: 'maxDepth', max: 10, found: 11 },
      },
    ]);
    // Fragments do not add levels: the same depth through fragments is the same depth.
    const viaFragments = 'query { myCourses { ...C } } fragment C on Course { documents { ...D } } fragment D on Document { id }';
    expect(refusal(viaFragments)).toEqual([]);
  });

  it('more aliases than maxAliases, __typename included (graphql-cop: alias overloading, 101 aliases of __typename)', () => {
    expect(refusal(aliases(15, '__typename'))).toEqual([]);
    expect(refusal(aliases(16, '__typename'))).toEqual([
      { message: expect.stringMatching(/aliases/), extensions: { code: 'BAD_USER_INPUT', limit: 'maxAliases', max: 15, found: 16 } },
    ]);
    expect(refusal(aliases(101, '__typename'))[0]?.extensions).toMatchObject({ limit: 'maxAliases', found: 101 });
    // Aliases inside fragments count too.
    expect(refusal(`query { ...F } fragment F on Query ${aliases(16, 'myCourses { id }')}`)[0]?.extensions).toMatchObject({
      limit: 'maxAliases',
    });
  });

  it('more directives than maxDirectives, with one error instead of one per unknown directive (graphql-cop: directive overloading)', () => {
    const refused = refusal('query cop { __typename @aa@aa@aa@aa@aa@aa@aa@aa@aa@aa }');
    expect(refused).toEqual([
      { message: expect.stringMatching(/directives/), extensions: { code: 'BAD_USER_INPUT', limit: 'maxDirectives', max: 5, found: 10 } },
    ]);
    expect(refusal('query($a: Boolean!) { myCourses @include(if: $a) { id @skip(if: $a) } }')).toEqual([]);
  });

  it('more tokens than maxTokens, before the document is parsed whole', () => {
    const long = `{ ${Array.from({ length: 600 }, () => 'myCourses { id }').join(' ')} }`;
    expect(refusal(long)).toEqual([
      { message: expect.stringMatching(/more than 1000 tokens/), extensions: { code: 'BAD_USER_INPUT', limit: 'maxTokens', max: 1000 } },
    ]);
  });

  it('an operation whose estimated cost is over maxCost, with its cost', () => {
    // Within the depth limit, lists inside lists: 10 courses x 10 documents x 1 course x 10 documents ...
    const fanOut = '{ myCourses { documents { course { documents { course { documents { course { documents { id } } } } } } } } }';
    expect(refusal(fanOut)).toEqual([
      {
        message: expect.stringMatching(/costs too much/),
        extensions: { code: 'BAD_USER_INPUT', limit: 'maxCost', max: 5000, found: estimateCost(schema, parse(fanOut), undefined) },
      },
    ]);
    // 15 re-indexings in one request: within the aliases limit, not within the cost.
    expect(refusal(aliases(15, 'reindexCourse(courseId: "c") { id }').replace('{', 'mutation {'))[0]?.extensions).toMatchObject({
      limit: 'maxCost',
    });
  });

  it('hides "Did you mean" suggestions in production only', () => {
    expect(refusal('{ myCourse { id } }')).toEqual([{ message: 'Cannot query field "myCourse" on type "Query".', extensions: {} }]);
    const development = createQueryGuard({ limits: LIMITS, production: false });
    expect(development.validate(schema, parse('{ myCourse { id } }'))[0]?.message).toMatch(/Did you mean "myCourses"/);
  });
});

describe('the cost model', () => {
  const cost = (source: string, variables: Record<string, unknown> = {}) => estimateCost(schema, parse(source), undefined, variables);

  it('charges objects, not scalars; lists multiply what is inside by their size argument, default or 10', () => {
    expect(cost('{ myCourses { id title } }')).toBe(1);
    expect(cost('{ myCourses { id documents { id } } }')).toBe(1 + 10 * 1);
    expect(cost('{ myCourses { id documents { id course { id } } } }')).toBe(1 + 10 * (1 + 10 * 1));
    // `first` as a literal, as a variable, and the schema's default (myConversations: 20).
    expect(cost('{ course(id: "c") { myConversations(first: 3) { course { id } } } }')).toBe(1 + 1 + 3);
    expect(cost('query($n: Int) { course(id: "c") { myConversations(first: $n) { course { id } } } }', { n: 7 })).toBe(1 + 1 + 7);
    expect(cost('{ course(id: "c") { myConversations { course { id } } } }')).toBe(1 + 1 + 20);
    // A variable left out takes the operation's default, not the schema's.
    expect(cost('query($n: Int = 40) { course(id: "c") { myConversations(first: $n) { course { id } } } }')).toBe(1 + 1 + 40);
    // A connection's size sizes its edges.
    expect(cost('{ myTasks(first: 5) { edges { node { id } } } }')).toBe(1 + 1 + 5 * 1);
    expect(cost('{ __typename a: __typename }')).toBe(0);
  });

  it('weights search and mutations, and counts every alias', () => {
    expect(cost('{ search(courseId: "c", query: "q", limit: 5) { chunkId } }')).toBe(COST_MODEL.fieldWeights['Query.search']! + 1);
    expect(cost('{ a: search(courseId: "c", query: "q") { chunkId } b: search(courseId: "c", query: "r") { chunkId } }')).toBe(2 * 101);
    expect(cost('mutation { createCourse(input: { title: "t" }) { id } }')).toBe(COST_MODEL.mutationWeight + 1);
    expect(cost('mutation { reindexCourse(courseId: "c") { id } }')).toBe(COST_MODEL.fieldWeights['Mutation.reindexCourse']! + 1);
    expect(cost('mutation { deleteDocument(id: "d") }')).toBe(COST_MODEL.mutationWeight);
  });

  it('does not charge what @skip and @include leave out, literal or by variable', () => {
    const search = 'search(courseId: "c", query: "q", limit: 5) { chunkId }';
    const one = COST_MODEL.fieldWeights['Query.search']! + 1;
    expect(cost(`{ ${search} }`)).toBe(one);
    expect(cost(`{ a: ${search} b: search(courseId: "c", query: "r") @skip(if: true) { chunkId } }`)).toBe(one);
    expect(
      cost(`query($on: Boolean!) { ${search} b: search(courseId: "c", query: "r") @include(if: $on) { chunkId } }`, { on: false }),
    ).toBe(one);
    expect(
      cost(`query($on: Boolean!) { ${search} b: search(courseId: "c", query: "r") @include(if: $on) { chunkId } }`, { on: true }),
    ).toBe(2 * one);
    // On fragments too.
    expect(cost(`query($off: Boolean!) { ... @skip(if: $off) { ${search} } }`, { off: true })).toBe(0);
    expect(cost(`fragment S on Query { ${search} } query($off: Boolean!) { ...S @skip(if: $off) }`, { off: false })).toBe(one);
  });
});

describe('the costs router/README.md quotes', () => {
  it('match the estimator', () => {
    const cost = (source: string) => estimateCost(schema, parse(source), undefined, {});
    expect(cost('query Light { myCourses { id title } }')).toBe(1);
    expect(cost('query Bench { myCourses { id title myRole members { userId role } myConversations { id } exams { id } } }')).toBe(31);
    expect(
      cost('query($id: ID!) { task(id: $id) { status progress message error { code message } document { status pages chunkCount } } }'),
    ).toBe(3);
    expect(cost(`query($id: ID!) { message(id: $id) { ${MESSAGE_FIELDS} } }`)).toBe(15);
    expect(
      cost(
        '{ search(courseId: "c", query: "q", limit: 5) { score pageStart pageEnd heading highlight matchedTerms document { id title } } }',
      ),
    ).toBe(106);
    expect(cost(`mutation($i: AskTutorInput!) { askTutor(input: $i) { ${MESSAGE_FIELDS} } }`)).toBe(115);
    expect(cost('mutation($i: IngestDocumentInput!) { ingestDocument(input: $i) { id status } }')).toBe(201);
    expect(cost('mutation { reindexCourse(courseId: "c") { id status } }')).toBe(501);
    expect(
      cost(
        `query($id: ID!) { conversation(id: $id) { id title messages(first: 100) { edges { cursor node { ${MESSAGE_FIELDS} } } pageInfo { hasNextPage endCursor } } } }`,
      ),
    ).toBe(1504);
  });
});

describe('query limits in Apollo Server (the router HTTP path)', () => {
  type Ctx = CostedContext;
  let server: ApolloServer<Ctx>;
  const charged = jest.fn<(points: number) => Promise<RateDecision>>();

  beforeAll(async () => {
    const guard = createQueryGuard({ limits: LIMITS, production: true });
    const formatError = formatErrorFor(pino({ level: 'silent' }), true);
    server = new ApolloServer<Ctx>({
      // A resolver-free copy of the API schema: the roots below answer.
      schema: buildASTSchema(parse(printSchema(schema))),
      rootValue: { myCourses: () => [], search: () => [], createCourse: () => ({ id: 'c1' }) },
      parseOptions: guard.parseOptions,
      validationRules: guard.validationRules,
      plugins: guard.plugins,
      formatError: (formatted, error) => formatError(guard.formatError(formatted), error),
      includeStacktraceInErrorResponses: false,
      stopOnTerminationSignals: false,
    });
    await server.start();
  });
  afterAll(async () => {
    await server?.stop();
  });

  const post = async (query: string, decision?: RateDecision) => {
    charged.mockReset();
    charged.mockResolvedValue(decision ?? { allowed: true, limit: 120, remaining: 100 });
    const res = await server.executeHTTPGraphQLRequest({
      httpGraphQLRequest: {
        method: 'POST',
        headers: new HeaderMap([['content-type', 'application/json']]),
        search: '',
        body: { query },
      },
      context: async () => ({ chargeCost: charged }),
    });
    const text = res.body.kind === 'complete' ? res.body.string : '';
    return {
      status: res.status ?? 200,
      headers: res.headers,
      body: JSON.parse(text) as { data?: unknown; errors?: { message: string; extensions?: Record<string, unknown> }[] },
    };
  };

  it('refuses over a limit with 400 and BAD_USER_INPUT naming it, and runs nothing', async () => {
    const refused = await post(`{ ${Array.from({ length: 16 }, (_, i) => `a${i}: myCourses { id }`).join(' ')} }`);
    expect(refused.status).toBe(400);
    expect(refused.body).toEqual({
      errors: [
        { message: expect.stringMatching(/aliases/), extensions: { code: 'BAD_USER_INPUT', limit: 'maxAliases', max: 15, found: 16 } },
      ],
    });
    // Refused before it ran: it costs the request's one point, as any request does.
    expect(charged.mock.calls).toEqual([[1]]);
    const directives = await post('query cop { __typename @aa@aa@aa@aa@aa@aa@aa@aa@aa@aa }');
    expect(directives.body.errors).toHaveLength(1);
    expect(directives.body.errors?.[0]?.extensions).toMatchObject({ code: 'BAD_USER_INPUT', limit: 'maxDirectives' });
    const tokens = await post(`{ ${'__typename '.repeat(1001)}}`);
    expect({ status: tokens.status, extensions: tokens.body.errors?.[0]?.extensions }).toEqual({
      status: 400,
      extensions: { code: 'BAD_USER_INPUT', limit: 'maxTokens', max: 1000 },
    });
    const costly = await post(
      '{ myCourses { documents { course { documents { course { documents { course { documents { id } } } } } } } } }',
    );
    expect({ status: costly.status, extensions: costly.body.errors?.[0]?.extensions }).toMatchObject({
      status: 400,
      extensions: { code: 'BAD_USER_INPUT', limit: 'maxCost', max: 5000 },
    });
  });

  it('charges all the points an operation costs in one call, and refuses with 429 when they are not there', async () => {
    const cheap = await post('{ myCourses { id } }');
    expect(cheap.body).toEqual({ data: { myCourses: [] } });
    expect(charged.mock.calls).toEqual([[1]]);
    expect(cheap.headers.get('x-ratelimit-limit')).toBe('120');
    expect(cheap.headers.get('x-ratelimit-remaining')).toBe('100');
    const searches = `{ ${Array.from({ length: 15 }, (_, i) => `s${i}: search(courseId: "c", query: "q") { chunkId }`).join(' ')} }`;
    const expensive = await post(searches);
    expect(expensive.status).toBe(200);
    // 15 x (100 + 1 + 10 x 0) = 1515 units: 15 points, the first included, in one call.
    expect(charged.mock.calls).toEqual([[15]]);
    expect(expensive.headers.get('x-ratelimit-remaining')).toBe('100');
    const refused = await post(searches, { allowed: false, limit: 120, retryAfterS: 7 });
    expect(charged.mock.calls).toEqual([[15]]);
    expect(refused.status).toBe(429);
    expect(refused.headers.get('retry-after')).toBe('7');
    expect(refused.headers.get('x-ratelimit-limit')).toBe('120');
    expect(refused.body).toEqual({
      errors: [{ message: expect.stringMatching(/retry in 7 s/), extensions: { code: 'RATE_LIMITED', retryAfter: 7 } }],
    });
  });

  it('charges one point for a request that never runs, and answers 429 instead when that point is not there', async () => {
    const refusal = { allowed: false, limit: 120, retryAfterS: 9 } as const;
    for (const query of ['{ myCourses { id }', '{ noSuchField }', `{ ${'__typename '.repeat(1001)}}`]) {
      const allowed = await post(query);
      expect({ query, status: allowed.status, calls: charged.mock.calls }).toEqual({ query, status: 400, calls: [[1]] });
      const refused = await post(query, refusal);
      expect({ query, status: refused.status, calls: charged.mock.calls }).toEqual({ query, status: 429, calls: [[1]] });
      expect(refused.headers.get('retry-after')).toBe('9');
      expect(refused.body).toEqual({
        errors: [{ message: 'Too many requests; retry in 9 s', extensions: { code: 'RATE_LIMITED', retryAfter: 9 } }],
      });
    }
  });

  it('in production: no suggestions, internal errors masked, no stack traces or subgraph names relayed', async () => {
    const misspelt = await post('{ myCourse { id } }');
    expect(misspelt.body.errors?.[0]?.message).not.toMatch(/Did you mean|myCourses/);
    const format = formatErrorFor(pino({ level: 'silent' }), true);
    const downstream = {
      message: 'Forbidden',
      path: ['course'],
      extensions: {
        code: 'FORBIDDEN',
        serviceName: 'rag',
        stacktrace: ['GraphQLError: Forbidden', '    at /srv/app/lib/access.ts:12'],
        exception: { stacktrace: [] },
      },
    };
    expect(format(downstream, new Error())).toEqual({ message: 'Forbidden', path: ['course'], extensions: { code: 'FORBIDDEN' } });
    for (const code of ['INTERNAL_SERVER_ERROR', 'DOWNSTREAM_SERVICE_ERROR', undefined]) {
      expect(
        format(
          {
            message: 'connect ECONNREFUSED 10.0.0.7:5432',
            path: ['myCourses'],
            extensions: { ...(code ? { code } : {}), stacktrace: ['at x'] },
          },
          new Error(),
        ),
      ).toEqual({ message: 'Internal server error', path: ['myCourses'], extensions: { code: 'INTERNAL_SERVER_ERROR' } });
    }
    expect(
      format(
        {
          message: 'Value "X" does not exist in "TutorMode" enum. Did you mean the enum value "EXPLAIN"?',
          extensions: { code: 'BAD_USER_INPUT' },
        },
        new Error(),
      ).message,
    ).toBe('Value "X" does not exist in "TutorMode" enum.');
  });
});
