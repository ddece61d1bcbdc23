import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { ApolloGateway } from '@apollo/gateway';
import {
  GraphQLError,
  Kind,
  defaultFieldResolver,
  execute,
  getOperationAST,
  isObjectType,
  parse,
  print,
  validate,
  type DocumentNode,
  type ExecutionResult,
  type FieldNode,
  type GraphQLSchema,
} from 'graphql';
import { readFileSync } from 'node:fs';
import { pino } from 'pino';
import type { AnswerStreamEvent } from '@lib/answers/stream.js';
import {
  AnswerSequencer,
  createAnswerStreams,
  planAnswerStream,
  shapeAnswerEvent,
  type AnswerStream,
  type AnswerStreamPlan,
  type GatewayResult,
  type RunQuery,
} from './answer-stream.js';

const log = pino({ level: 'silent' });
let schema: GraphQLSchema;
let gateway: ApolloGateway;

/**
 * What Apollo Server does to the gateway's schema, in place, on its first request with a
 * willResolveField plugin: every field gets a resolver, which ignores execute's fieldResolver.
 */
function instrumentLikeApolloServer(target: GraphQLSchema) {
  for (const type of Object.values(target.getTypeMap())) {
    if (!isObjectType(type) || type.name.startsWith('__')) continue;
    for (const field of Object.values(type.getFields())) {
      const original = field.resolve;
      field.resolve = (source, args, context, info) => (original ?? defaultFieldResolver)(source, args, context, info);
    }
  }
}

beforeAll(async () => {
  // The API schema as the router's gateway builds it from the supergraph, once Apollo Server has served a request.
  gateway = new ApolloGateway({ supergraphSdl: readFileSync(new URL('../../schema/supergraph.graphql', import.meta.url), 'utf8') });
  ({ schema } = await gateway.load());
  instrumentLikeApolloServer(schema);
});
afterAll(async () => {
  await gateway?.stop();
});

function parts(source: string) {
  const document = parse(source);
  expect(validate(schema, document)).toEqual([]);
  const operation = getOperationAST(document)!;
  const field = operation.selectionSet.selections[0] as FieldNode;
  expect(field.kind).toBe(Kind.FIELD);
  return { document, operation, field };
}

function plan(source: string, variables: Record<string, unknown> = {}): AnswerStreamPlan {
  const { document, operation, field } = parts(source);
  const planned = planAnswerStream(schema, document, operation, field, variables);
  if (Array.isArray(planned)) throw new Error(`refused: ${planned.map((e) => e.message).join('; ')}`);
  return planned;
}

const normal = (query: string | DocumentNode) => print(typeof query === 'string' ? parse(query) : query);
/** A result as it goes over the wire (graphql's objects have no prototype). */
const wire = (result: ExecutionResult) => JSON.parse(JSON.stringify(result)) as Record<string, unknown>;

interface Row {
  id: string;
  status: string;
  content: string;
  citations?: { index: number; chunkId: string; pageStart: number; pageEnd: number; quote: string; document: { id: string } }[];
}

/**
 * A stand-in for the gateway: runs the query against the API schema with `message(id)` reading
 * `rows`, so aliases, fragments and directives behave as they do for real. A row that is a
 * GraphQLError is thrown (FORBIDDEN, NOT_FOUND, a subgraph down...).
 */
function fakeGateway(rows: Map<string, Row | GraphQLError>) {
  type Call = { query: string; variables: Record<string, unknown>; shareKey: string | undefined; failed?: boolean; at: number };
  const calls: Call[] = [];
  const answered: Call[] = [];
  let failNext = 0;
  const run: RunQuery = async (query, variables, shareKey) => {
    const call: Call = { query: print(query), variables, shareKey, at: Date.now() };
    calls.push(call);
    await new Promise((r) => setImmediate(r));
    call.failed = failNext > 0;
    if (failNext > 0) {
      failNext -= 1;
      answered.push(call);
      return { errors: [{ message: 'chat subgraph unavailable', extensions: { code: 'INTERNAL_SERVER_ERROR' } }] };
    }
    const invalid = validate(schema, query);
    if (invalid.length) return { errors: invalid.map((e) => ({ message: e.message, extensions: { code: 'GRAPHQL_VALIDATION_FAILED' } })) };
    const message = ({ id }: { id: string }) => {
      const row = rows.get(id);
      if (row instanceof GraphQLError) throw row;
      return row
        ? { role: 'ASSISTANT', mode: 'EXPLAIN', cached: false, citations: [], createdAt: '2026-12-01T09:00:00.000Z', ...row }
        : null;
    };
    const result = await execute({ schema, document: query, variableValues: variables, rootValue: { message } });
    answered.push(call);
    return JSON.parse(JSON.stringify(result)) as GatewayResult;
  };
  return {
    run,
    calls,
    /** Calls whose result is out. */
    answered: () => answered,
    failNext: (n: number) => void (failNext = n),
  };
}

/** A hub whose events the test publishes; `onListen` runs once the listener is in place. */
function fakeHub(onListen?: (emit: (e: AnswerStreamEvent) => void) => void) {
  const listeners = new Map<string, Set<(e: AnswerStreamEvent) => void>>();
  return {
    listeners,
    size: () => [...listeners.values()].reduce((n, s) => n + s.size, 0),
    async listen(messageId: string, listener: (e: AnswerStreamEvent) => void) {
      const set = listeners.get(messageId) ?? new Set();
      set.add(listener);
      listeners.set(messageId, set);
      await new Promise((r) => setImmediate(r));
      onListen?.((e) => listener(e));
      return () => {
        set.delete(listener);
        if (set.size === 0) listeners.delete(messageId);
      };
    },
    emit(messageId: string, event: AnswerStreamEvent) {
      for (const listener of listeners.get(messageId) ?? []) listener(event);
    },
  };
}

let at = 0;
const delta = (seq: number, text: string): AnswerStreamEvent => ({ type: 'delta', seq, text, at: ++at });
const reset = (seq: number): AnswerStreamEvent => ({ type: 'reset', seq, at: ++at });
const done = (seq: number, status: 'COMPLETE' | 'FAILED' | 'CANCELLED' = 'COMPLETE'): AnswerStreamEvent => ({
  type: 'done',
  seq,
  status,
  at: ++at,
});

const STATUS_ONLY =
  'query AnswerStreamStatus($__routerMessageId: ID!) { __routerMessage: message(id: $__routerMessageId) { __routerStatus: status } }';
const SIMPLE = 'subscription($id: ID!) { answerStream(messageId: $id) { type seq text message { id status content } } }';

/** Takes the next `n` messages of a stream (failing after `ms`). */
async function take(iterator: AsyncIterator<ExecutionResult>, n: number, ms = 3000) {
  const out: Record<string, unknown>[] = [];
  for (let i = 0; i < n; i++) {
    let timer: NodeJS.Timeout | undefined;
    const step = await Promise.race([
      iterator.next(),
      new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`no message ${i + 1} of ${n} in ${ms} ms`)), ms))),
    ]).finally(() => clearTimeout(timer));
    if (step.done) throw new Error(`the stream completed after ${i} of ${n} messages`);
    out.push(wire(step.value));
  }
  return out;
}

async function waitFor(check: () => boolean, what: string, ms = 3000) {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`${what}: not within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

const events = (messages: Record<string, unknown>[]) =>
  messages.map((m) => {
    const e = (m['data'] as { answerStream: { type: string; seq: number; text: string; message: Row | null } }).answerStream;
    return [e.type, e.seq, e.text, e.message ? `${e.message.status}:${e.message.content}` : null];
  });

describe('planAnswerStream: whether a done event’s row can answer the final read', () => {
  const fromRow = (selection: string) =>
    plan(`subscription($id: ID!) { answerStream(messageId: $id) { type ${selection} } }`, { id: 'm' }).fromRow;

  it('says yes for the message’s own fields, its citations (document ids only), usage and error, under aliases and fragments', () => {
    expect(fromRow('')).toBe(true);
    expect(fromRow('message { id status content }')).toBe(true);
    expect(
      fromRow(`m: message { __typename role mode grounded engine model cached createdAt u: usage { promptTokens completionTokens }
        error { code message } citations { __typename index chunkId pageStart pageEnd quote document { __typename id } }
        ... on Message { st: status } }`),
    ).toBe(true);
  });

  it('says no for what the row does not hold: the conversation, the reader’s rating, a document’s other fields', () => {
    expect(fromRow('message { status conversation { id } }')).toBe(false);
    expect(fromRow('message { status myRating { helpful } }')).toBe(false);
    expect(fromRow('message { citations { document { id title } } }')).toBe(false);
    expect(fromRow('message { ... on Message { conversation { title } } }')).toBe(false);
  });
});

describe('planAnswerStream: the query run through the gateway', () => {
  it('asks message(id) for the client’s message selection plus the router’s status and content', () => {
    const p = plan(SIMPLE, { id: 'm-1' });
    expect(normal(p.query)).toBe(
      normal(`query($__routerMessageId: ID!) {
        message(id: $__routerMessageId) { id status content __routerStatus: status __routerContent: content }
      }`),
    );
    expect(p.variables).toEqual({ __routerMessageId: 'm-1' });
    expect(p.messageId).toBe('m-1');
    expect(p.routerKey).toBe('message');
    expect(p.responseKey).toBe('answerStream');
    expect(validate(schema, p.query)).toEqual([]);
    expect(validate(schema, p.statusQuery)).toEqual([]);
    expect(p.statusVariables).toEqual({ __routerMessageId: 'm-1' });
  });

  it('keeps aliases, and only the fragments and variables the message selection uses', () => {
    const p = plan(
      `subscription Watch($id: ID!, $withText: Boolean!, $withRating: Boolean!) {
        s: answerStream(messageId: $id) {
          t: type
          text @include(if: $withText)
          ...Seq
          m: message { ...Msg r: myRating @include(if: $withRating) { helpful } }
        }
      }
      fragment Seq on AnswerEvent { seq }
      fragment Msg on Message { id st: status ...Cites }
      fragment Cites on Message { citations { index } }`,
      { id: 'm-2', withText: true, withRating: false },
    );
    expect(normal(p.query)).toBe(
      normal(`query Watch($withRating: Boolean!, $__routerMessageId: ID!) {
        m: message(id: $__routerMessageId) {
          ...Msg
          r: myRating @include(if: $withRating) { helpful }
          __routerStatus: status
          __routerContent: content
        }
      }
      fragment Msg on Message { id st: status ...Cites }
      fragment Cites on Message { citations { index } }`),
    );
    expect(p.variables).toEqual({ withRating: false, __routerMessageId: 'm-2' });
    expect(p.routerKey).toBe('m');
    expect(p.responseKey).toBe('s');
    expect(validate(schema, p.query)).toEqual([]);
  });

  it('keeps a message field’s conditions, and reads status and content in a field of their own when no message field is unconditional', () => {
    const p = plan(
      `subscription($full: Boolean!) {
        answerStream(messageId: "m-3") {
          type
          ... on AnswerEvent @include(if: $full) { message { id } }
          ...Later @skip(if: $full)
          other: message @include(if: $full) { content }
        }
      }
      fragment Later on AnswerEvent { message { status } }`,
      { full: true },
    );
    expect(normal(p.query)).toBe(
      normal(`query($full: Boolean!, $__routerMessageId: ID!) {
        ... @include(if: $full) { message(id: $__routerMessageId) { id } }
        ... @skip(if: $full) { message(id: $__routerMessageId) { status } }
        other: message(id: $__routerMessageId) @include(if: $full) { content }
        __routerMessage: message(id: $__routerMessageId) { __routerStatus: status __routerContent: content }
      }`),
    );
    expect(p.messageId).toBe('m-3');
    expect(p.routerKey).toBe('__routerMessage');
    expect(validate(schema, p.query)).toEqual([]);
  });

  it('asks only for status and content when the client does not select the message', () => {
    const p = plan('subscription { answerStream(messageId: 42) { type seq text } }');
    expect(p.messageId).toBe('42');
    expect(normal(p.query)).toBe(
      normal(
        'query($__routerMessageId: ID!) { __routerMessage: message(id: $__routerMessageId) { __routerStatus: status __routerContent: content } }',
      ),
    );
  });

  it('refuses variables that do not fit their types', () => {
    const { document, operation, field } = parts(SIMPLE);
    const refused = planAnswerStream(schema, document, operation, field, {});
    expect(Array.isArray(refused)).toBe(true);
    expect((refused as GraphQLError[])[0]!.extensions['code']).toBe('BAD_USER_INPUT');
    expect((refused as GraphQLError[])[0]!.message).toMatch(/\$id/);
  });
});

describe('shapeAnswerEvent: each event in exactly the client’s shape', () => {
  const ALIASED = `subscription Watch($id: ID!) {
    s: answerStream(messageId: $id) {
      __typename
      t: type
      n: seq
      ...Body
      m: message { __typename ...Msg cites: citations { i: index doc: document { __typename id } } mine: myRating { helpful } }
    }
  }
  fragment Body on AnswerEvent { text }
  fragment Msg on Message { id st: status c: content }`;

  it('resolves the client’s aliases, fragments and __typename on the event and on the message', async () => {
    const p = plan(ALIASED, { id: 'm-1' });
    const gw = fakeGateway(
      new Map([
        [
          'm-1',
          {
            id: 'm-1',
            status: 'GENERATING',
            content: 'Photosynthesis',
            citations: [{ index: 1, chunkId: 'd:0', pageStart: 1, pageEnd: 1, quote: 'q', document: { id: 'doc-1' } }],
          },
        ],
      ]),
    );
    const result = await gw.run(p.query, p.variables);
    expect(result.errors).toBeUndefined();
    const shaped = shapeAnswerEvent(p, { type: 'SNAPSHOT', seq: 4, text: 'Photo', message: result.data! }, result);
    expect(wire(shaped)).toStrictEqual({
      data: {
        s: {
          __typename: 'AnswerEvent',
          t: 'SNAPSHOT',
          n: 4,
          text: 'Photo',
          m: {
            __typename: 'Message',
            id: 'm-1',
            st: 'GENERATING',
            c: 'Photosynthesis',
            cites: [{ i: 1, doc: { __typename: 'Document', id: 'doc-1' } }],
            mine: null,
          },
        },
      },
    });
    // Key order as the client wrote it.
    expect(Object.keys((wire(shaped)['data'] as { s: object }).s)).toEqual(['__typename', 't', 'n', 'text', 'm']);
  });

  it('gives a null message on DELTA and RESET', () => {
    const p = plan(ALIASED, { id: 'm-1' });
    for (const type of ['DELTA', 'RESET'] as const) {
      const shaped = shapeAnswerEvent(p, { type, seq: 5, text: type === 'DELTA' ? 'syn' : '', message: null });
      expect(wire(shaped)).toStrictEqual({
        data: { s: { __typename: 'AnswerEvent', t: type, n: 5, text: type === 'DELTA' ? 'syn' : '', m: null } },
      });
    }
  });

  it('honours the client’s @include/@skip with its variables', () => {
    const p = plan(
      `subscription($id: ID!, $full: Boolean!) {
        answerStream(messageId: $id) { type text @skip(if: $full) message @include(if: $full) { id } }
      }`,
      { id: 'm-1', full: false },
    );
    const shaped = shapeAnswerEvent(p, { type: 'DELTA', seq: 1, text: 'a', message: null });
    expect(wire(shaped)).toStrictEqual({ data: { answerStream: { type: 'DELTA', text: 'a' } } });
  });

  it('passes the gateway’s errors on message fields at the path the client sees', () => {
    const p = plan(ALIASED, { id: 'm-1' });
    const data = {
      m: {
        __typename: 'Message',
        id: 'm-1',
        st: 'COMPLETE',
        c: 'x',
        cites: [],
        mine: null,
        __routerStatus: 'COMPLETE',
        __routerContent: 'x',
      },
    };
    const result: GatewayResult = {
      data,
      errors: [{ message: 'ratings unavailable', path: ['m', 'mine'], extensions: { code: 'INTERNAL_SERVER_ERROR' } }],
    };
    const shaped = wire(shapeAnswerEvent(p, { type: 'DONE', seq: 9, text: '', message: data }, result));
    expect(shaped['errors']).toEqual([
      { message: 'ratings unavailable', path: ['s', 'm', 'mine'], extensions: { code: 'INTERNAL_SERVER_ERROR' } },
    ]);
    expect((shaped['data'] as { s: { m: Record<string, unknown> } }).s.m).toStrictEqual({
      __typename: 'Message',
      id: 'm-1',
      st: 'COMPLETE',
      c: 'x',
      cites: [],
      mine: null,
    });
  });
});

describe('AnswerSequencer', () => {
  it('hands out events once, in order, whatever order they arrive in', () => {
    const s = new AnswerSequencer();
    expect(s.accept(delta(2, 'b'))).toBe(true);
    expect(s.next()).toBeUndefined();
    expect(s.stuck).toBe(true);
    expect(s.accept(delta(1, 'a'))).toBe(true);
    expect(s.accept(delta(1, 'a'))).toBe(false);
    expect(s.next()?.seq).toBe(1);
    expect(s.next()?.seq).toBe(2);
    expect(s.next()).toBeUndefined();
    expect(s.accept(delta(2, 'b'))).toBe(false);
    expect(s.lastSeq).toBe(2);
    expect(s.stuck).toBe(false);
  });

  it('drops what the history already covered', () => {
    const s = new AnswerSequencer();
    s.accept(delta(3, 'c'));
    s.accept(delta(4, 'd'));
    s.skipTo(3);
    expect(s.accept(delta(2, 'b'))).toBe(false);
    expect(s.next()?.seq).toBe(4);
    expect(s.next()).toBeUndefined();
  });

  it('skips a gap only when asked, and says which events it gave up on', () => {
    const s = new AnswerSequencer(1);
    s.accept(delta(4, 'd'));
    s.accept(delta(6, 'f'));
    expect(s.skipGap()).toEqual([2, 3]);
    expect(s.next()?.seq).toBe(4);
    expect(s.next()).toBeUndefined();
    expect(s.skipGap()).toEqual([5]);
    expect(s.next()?.seq).toBe(6);
    expect(s.skipGap()).toEqual([]);
  });
});

describe('answer streams', () => {
  const ID = 'msg-1';
  let rows: Map<string, Row | GraphQLError>;
  let history: AnswerStreamEvent[];
  const opened: AnswerStream[] = [];

  const setup = (
    opts: {
      onListen?: (emit: (e: AnswerStreamEvent) => void) => void;
      recheckMs?: number;
      gapMs?: number;
      query?: string;
      isOpen?: () => boolean;
      beforeRun?: () => void;
      /** The row recorded in the answer's stream as it was created (given: the router reads it as it starts). */
      recorded?: Record<string, unknown> | null;
      viewerId?: string;
    } = {},
  ) => {
    const hub = fakeHub(opts.onListen);
    const gw = fakeGateway(rows);
    const readHistory = async () => {
      await new Promise((r) => setImmediate(r));
      return [...history];
    };
    const readStart =
      opts.recorded === undefined ? undefined : async () => ({ events: await readHistory(), row: opts.recorded ?? undefined });
    const startReads: string[] = [];
    const streams = createAnswerStreams({
      hub,
      readHistory,
      ...(readStart ? { readStart } : {}),
      recheckMs: opts.recheckMs ?? 60_000,
      retryMs: 20,
      gapMs: opts.gapMs ?? 20,
      onStartRead: (source) => void startReads.push(source),
    });
    let sent = 0;
    const start = async (variables: Record<string, unknown> = { id: ID }) => {
      const { document, operation, field } = parts(opts.query ?? SIMPLE);
      const run: RunQuery = async (q, v, k) => {
        opts.beforeRun?.();
        return gw.run(q, v, k);
      };
      const out = await streams.start({
        schema,
        document,
        operation,
        field,
        variables,
        run,
        ...(opts.viewerId ? { viewerId: opts.viewerId } : {}),
        log,
        isOpen: opts.isOpen ?? (() => true),
        onMessage: () => void (sent += 1),
      });
      if (!Array.isArray(out)) opened.push(out);
      return out;
    };
    return { hub, gw, start, sent: () => sent, startReads };
  };
  const started = async (s: ReturnType<typeof setup>, variables?: Record<string, unknown>) => {
    const out = await s.start(variables);
    if (Array.isArray(out)) throw new Error(`refused: ${out.map((e) => e.message).join('; ')}`);
    return out;
  };

  beforeAll(() => {
    rows = new Map();
    history = [];
  });
  afterAll(() => {
    for (const s of opened) s.close();
  });
  const fresh = (row: Partial<Row> = {}, events: AnswerStreamEvent[] = []) => {
    rows = new Map([[ID, { id: ID, status: 'GENERATING', content: '', ...row }]]);
    history = events;
  };

  it('sends the history’s text, then each later event once and in order, then DONE with the final message', async () => {
    fresh({}, [delta(1, 'Hel'), delta(2, 'lo')]);
    // Delivered while the history is read: one it already holds, and the next one.
    const s = setup({
      onListen: (emit) => {
        emit(delta(2, 'lo'));
        emit(delta(3, ','));
      },
    });
    const stream = await started(s);
    const it = stream.results();
    expect(events(await take(it, 2))).toEqual([
      ['SNAPSHOT', 2, 'Hello', 'GENERATING:'],
      ['DELTA', 3, ',', null],
    ]);
    // Out of order, and repeated.
    s.hub.emit(ID, delta(5, 'world'));
    s.hub.emit(ID, delta(4, ' '));
    s.hub.emit(ID, delta(4, ' '));
    expect(events(await take(it, 2))).toEqual([
      ['DELTA', 4, ' ', null],
      ['DELTA', 5, 'world', null],
    ]);
    // Generation restarts after a crash.
    s.hub.emit(ID, reset(6));
    s.hub.emit(ID, delta(7, 'Hello, world'));
    expect(events(await take(it, 2))).toEqual([
      ['RESET', 6, '', null],
      ['DELTA', 7, 'Hello, world', null],
    ]);
    rows.set(ID, { id: ID, status: 'COMPLETE', content: 'Hello, world.' });
    s.hub.emit(ID, done(8));
    expect(events(await take(it, 1))).toEqual([['DONE', 8, '', 'COMPLETE:Hello, world.']]);
    expect(await it.next()).toEqual({ done: true, value: undefined });
    expect(s.hub.size()).toBe(0);
    expect(s.sent()).toBe(7);
    // The DONE read may be shared by the user's other tabs on the same event.
    expect(s.gw.calls.at(-1)!.shareKey).toBe(`${ID}:done:8:0`);
  });

  it('waits for an event that arrives late before sending the ones after it', async () => {
    fresh({}, [delta(1, 'a')]);
    const s = setup({ gapMs: 5000 });
    const it = (await started(s)).results();
    expect(events(await take(it, 1))).toEqual([['SNAPSHOT', 1, 'a', 'GENERATING:']]);
    s.hub.emit(ID, delta(3, 'c'));
    const next = it.next();
    await new Promise((r) => setTimeout(r, 50));
    s.hub.emit(ID, delta(2, 'b'));
    expect(events([wire((await next).value as ExecutionResult)])).toEqual([['DELTA', 2, 'b', null]]);
    expect(events(await take(it, 1))).toEqual([['DELTA', 3, 'c', null]]);
    await it.return();
  });

  it('fills a gap from the stream, or skips events that were never published', async () => {
    fresh({}, [delta(1, 'a')]);
    const s = setup({ gapMs: 20 });
    const it = (await started(s)).results();
    await take(it, 1);
    // Seq 2 was published but its live message lost (a reconnect): it is in the stream.
    history.push(delta(2, 'b'), delta(3, 'c'));
    s.hub.emit(ID, delta(3, 'c'));
    expect(events(await take(it, 2))).toEqual([
      ['DELTA', 2, 'b', null],
      ['DELTA', 3, 'c', null],
    ]);
    // Seq 4 was taken but never published (the publisher failed between INCR and MULTI).
    history.push(delta(5, 'e'));
    s.hub.emit(ID, delta(5, 'e'));
    expect(events(await take(it, 1))).toEqual([['DELTA', 5, 'e', null]]);
    await it.return();
  });

  it('reads the message alongside the history: an answer that ended after that read still ends with DONE and its final message', async () => {
    fresh({}, [delta(1, 'Chlorophyll'), delta(2, ' absorbs light.'), done(3, 'COMPLETE')]);
    let runs = 0;
    const s = setup({
      // The first read (alongside the history) still sees GENERATING; the answer is final by the next.
      beforeRun: () => {
        if (++runs === 2) rows.set(ID, { id: ID, status: 'COMPLETE', content: 'Chlorophyll absorbs light.' });
      },
    });
    const it = (await started(s)).results();
    expect(events(await take(it, 2))).toEqual([
      ['SNAPSHOT', 3, 'Chlorophyll absorbs light.', 'GENERATING:'],
      ['DONE', 3, '', 'COMPLETE:Chlorophyll absorbs light.'],
    ]);
    expect(await it.next()).toEqual({ done: true, value: undefined });
  });

  it('sends the stored message and DONE at once when the answer is already final, even if its stream expired', async () => {
    fresh({ status: 'COMPLETE', content: 'Chlorophyll absorbs light [1].' }, []);
    const s = setup();
    const it = (await started(s)).results();
    expect(events(await take(it, 2))).toEqual([
      ['SNAPSHOT', 0, 'Chlorophyll absorbs light [1].', 'COMPLETE:Chlorophyll absorbs light [1].'],
      ['DONE', 0, '', 'COMPLETE:Chlorophyll absorbs light [1].'],
    ]);
    expect(await it.next()).toEqual({ done: true, value: undefined });
    expect(s.hub.size()).toBe(0);
    // One read: the snapshot's message is the final one.
    expect(s.gw.calls).toHaveLength(1);
  });

  it('takes the seq of a final answer from its stream while it is kept', async () => {
    fresh({ status: 'CANCELLED', content: 'Half' }, [delta(1, 'Half'), done(2, 'CANCELLED')]);
    const it = (await started(setup())).results();
    expect(events(await take(it, 2))).toEqual([
      ['SNAPSHOT', 2, 'Half', 'CANCELLED:Half'],
      ['DONE', 2, '', 'CANCELLED:Half'],
    ]);
    expect((await it.next()).done).toBe(true);
  });

  it('finishes from a done event in the history when the first read is not final yet', async () => {
    fresh({ status: 'GENERATING', content: 'Al' }, [delta(1, 'All'), done(2)]);
    const s = setup({
      beforeRun: () => {
        if (s.gw.calls.length === 1) rows.set(ID, { id: ID, status: 'COMPLETE', content: 'All' });
      },
    });
    const it = (await started(s)).results();
    expect(events(await take(it, 2))).toEqual([
      ['SNAPSHOT', 2, 'All', 'GENERATING:Al'],
      ['DONE', 2, '', 'COMPLETE:All'],
    ]);
    expect((await it.next()).done).toBe(true);
  });

  it('ends a stream whose done event never comes once the recheck reads a final status, with the stream’s last events first', async () => {
    fresh({}, [delta(1, 'The ')]);
    const s = setup({ recheckMs: 30 });
    const it = (await started(s)).results();
    expect(events(await take(it, 1))).toEqual([['SNAPSHOT', 1, 'The ', 'GENERATING:']]);
    // Rechecks while it is generating change nothing.
    const pending = it.next();
    const rechecks = () => s.gw.calls.filter((c) => c.query.includes('AnswerStreamStatus'));
    await waitFor(() => rechecks().length >= 2, 'two rechecks');
    expect(normal(rechecks()[0]!.query)).toBe(normal(STATUS_ONLY));
    // The worker wrote one more delta (its live message lost), died, and a sweeper failed the message.
    history.push(delta(2, 'cell'));
    rows.set(ID, { id: ID, status: 'FAILED', content: 'The cell' });
    expect(events([wire((await pending).value as ExecutionResult)])).toEqual([['DELTA', 2, 'cell', null]]);
    expect(events(await take(it, 1))).toEqual([['DONE', 2, '', 'FAILED:The cell']]);
    expect((await it.next()).done).toBe(true);
    expect(s.hub.size()).toBe(0);
  });

  it('retries a recheck that fails in passing, without ending the stream', async () => {
    fresh({}, []);
    const s = setup({ recheckMs: 30 });
    const it = (await started(s)).results();
    await take(it, 1);
    s.gw.failNext(2);
    const pending = it.next();
    // Two failed rechecks, retried, then one that reads GENERATING.
    await waitFor(() => s.gw.answered().filter((c) => c.query.includes('AnswerStreamStatus')).length >= 3, 'three rechecks');
    expect(
      s.gw
        .answered()
        .slice(1, 3)
        .map((c) => c.failed),
    ).toEqual([true, true]);
    rows.set(ID, { id: ID, status: 'COMPLETE', content: 'ok' });
    expect(events([wire((await pending).value as ExecutionResult)])).toEqual([['DONE', 0, '', 'COMPLETE:ok']]);
    expect((await it.next()).done).toBe(true);
  });

  it('retries the DONE read when it fails in passing, with a fresh read', async () => {
    fresh({}, []);
    const s = setup();
    const it = (await started(s)).results();
    await take(it, 1);
    rows.set(ID, { id: ID, status: 'COMPLETE', content: 'ok' });
    s.gw.failNext(1);
    s.hub.emit(ID, done(1));
    expect(events(await take(it, 1))).toEqual([['DONE', 1, '', 'COMPLETE:ok']]);
    // Not from a shared earlier result: each attempt has its own key.
    expect(s.gw.calls.slice(1).map((c) => c.shareKey)).toEqual([`${ID}:done:1:0`, `${ID}:done:1:1`]);
    expect((await it.next()).done).toBe(true);
  });

  it('ends the stream with NOT_FOUND when the message goes away', async () => {
    fresh({}, []);
    const s = setup({ recheckMs: 30 });
    const it = (await started(s)).results();
    await take(it, 1);
    rows.set(ID, new GraphQLError('Message not found', { extensions: { code: 'NOT_FOUND' } }));
    await expect(it.next()).rejects.toMatchObject({ extensions: { code: 'NOT_FOUND' } });
    expect(s.hub.size()).toBe(0);
  });

  it('refuses a message the subscriber may not see, and stops listening', async () => {
    fresh();
    rows.set(ID, new GraphQLError('This is not your conversation', { extensions: { code: 'FORBIDDEN' } }));
    const s = setup();
    const refused = await s.start();
    expect(Array.isArray(refused)).toBe(true);
    expect((refused as GraphQLError[]).map((e) => e.extensions['code'])).toEqual(['FORBIDDEN']);
    expect(s.hub.size()).toBe(0);

    rows = new Map();
    const s2 = setup();
    const missing = await s2.start();
    expect((missing as GraphQLError[]).map((e) => e.extensions['code'])).toEqual(['NOT_FOUND']);
    expect(s2.hub.size()).toBe(0);
  });

  it('leaves no listener when the connection closes while it starts', async () => {
    for (const closeAfter of [1, 2, 3]) {
      fresh();
      let checks = 0;
      const s = setup({ isOpen: () => ++checks < closeAfter });
      const out = await s.start();
      expect(Array.isArray(out)).toBe(true);
      expect(s.hub.size()).toBe(0);
    }
  });

  it('stops at once when the client completes, even while waiting for an event', async () => {
    fresh();
    const s = setup();
    const it = (await started(s)).results();
    await take(it, 1);
    const pending = it.next();
    expect(s.hub.size()).toBe(1);
    await it.return();
    await expect(pending).resolves.toEqual({ done: true, value: undefined });
    expect(s.hub.size()).toBe(0);
    // Events after that are ignored.
    s.hub.emit(ID, delta(1, 'late'));
    expect(await it.next()).toEqual({ done: true, value: undefined });
  });

  it('shapes every event with the client’s aliases and fragments', async () => {
    fresh({ content: '' }, [delta(1, 'x')]);
    const s = setup({
      query: `subscription W($m: ID!) { a: answerStream(messageId: $m) { k: type ...F } }
      fragment F on AnswerEvent { s: seq msg: message { st: status } }`,
    });
    const it = (await started(s, { m: ID })).results();
    s.hub.emit(ID, delta(2, 'y'));
    rows.set(ID, { id: ID, status: 'COMPLETE', content: 'xy' });
    s.hub.emit(ID, done(3));
    expect((await take(it, 3)).map((m) => m['data'])).toStrictEqual([
      { a: { k: 'SNAPSHOT', s: 1, msg: { st: 'GENERATING' } } },
      { a: { k: 'DELTA', s: 2, msg: null } },
      { a: { k: 'DONE', s: 3, msg: { st: 'COMPLETE' } } },
    ]);
  });

  describe('the first message from a row in the stream', () => {
    const recordedAt = (ageMs: number) => ({
      id: ID,
      userId: 'asker',
      status: 'GENERATING',
      content: '',
      role: 'ASSISTANT',
      createdAt: new Date(Date.now() - ageMs).toISOString(),
    });
    const finalRow = { ...recordedAt(0), status: 'COMPLETE', content: 'Hello.' };
    const doneWithRow = (seq: number): AnswerStreamEvent => ({ ...done(seq), message: finalRow }) as AnswerStreamEvent;

    it('starts the asker’s own subscription from the row recorded as the answer was created: no read through the gateway', async () => {
      // The gateway would say something else: it must not be asked.
      fresh({ status: 'FAILED', content: 'from the gateway' }, [delta(1, 'Hel')]);
      const s = setup({ recorded: recordedAt(50), viewerId: 'asker' });
      const it = (await started(s)).results();
      expect(events(await take(it, 1))).toEqual([['SNAPSHOT', 1, 'Hel', 'GENERATING:']]);
      s.hub.emit(ID, delta(2, 'lo.'));
      s.hub.emit(ID, doneWithRow(3));
      expect(events(await take(it, 2))).toEqual([
        ['DELTA', 2, 'lo.', null],
        ['DONE', 3, '', 'COMPLETE:Hello.'],
      ]);
      expect(s.gw.calls).toHaveLength(0);
      expect(s.startReads).toEqual(['row']);
    });

    it('spreads the rechecks of streams that started together', async () => {
      fresh({}, [delta(1, 'x')]);
      const s = setup({ recorded: recordedAt(0), viewerId: 'asker', recheckMs: 200 });
      const startedAt = Date.now();
      const streams = await Promise.all(Array.from({ length: 20 }, () => started(s)));
      const iterators = streams.map((stream) => stream.results());
      await Promise.all(iterators.map((it) => take(it, 1)));
      const pending = iterators.map((it) => it.next()); // each waits for its recheck
      await waitFor(() => s.gw.calls.filter((c) => normal(c.query) === normal(STATUS_ONLY)).length >= 20, 'twenty rechecks');
      const times = s.gw.calls.filter((c) => normal(c.query) === normal(STATUS_ONLY)).map((c) => c.at - startedAt);
      // 200 ms give or take a quarter: not all in the same instant.
      expect(Math.min(...times)).toBeGreaterThanOrEqual(140);
      expect(Math.max(...times) - Math.min(...times)).toBeGreaterThanOrEqual(30);
      for (const it of iterators) await it.return();
      await Promise.all(pending);
    });

    it('reads through the gateway for anyone but the asker, without a row, for a done without one, or for fields a row lacks', async () => {
      const cases: { what: string; opts: Parameters<typeof setup>[0]; events?: AnswerStreamEvent[] }[] = [
        { what: 'another user (an admin, say)', opts: { recorded: recordedAt(0), viewerId: 'someone-else' } },
        { what: 'no row recorded (a chat subgraph of before)', opts: { recorded: null, viewerId: 'asker' } },
        { what: 'a row of another message', opts: { recorded: { ...recordedAt(0), id: 'msg-2' }, viewerId: 'asker' } },
        // Finished, cancelled or deleted since (a deleted conversation's answers get a done): the gateway knows.
        {
          what: 'a done event without its row',
          opts: { recorded: recordedAt(0), viewerId: 'asker' },
          events: [delta(1, 'x'), done(2, 'CANCELLED')],
        },
        {
          what: 'a done event with its row',
          opts: { recorded: recordedAt(0), viewerId: 'asker' },
          events: [delta(1, 'x'), doneWithRow(2)],
        },
        // A start long after the answer was asked for (a reload): what happened since is in the database.
        { what: 'a row recorded 6 s ago', opts: { recorded: recordedAt(6000), viewerId: 'asker' } },
        {
          what: 'a field the row does not hold',
          opts: {
            recorded: recordedAt(0),
            viewerId: 'asker',
            query: 'subscription($id: ID!) { answerStream(messageId: $id) { type message { status myRating { helpful } } } }',
          },
        },
      ];
      for (const c of cases) {
        fresh({ status: c.events ? 'CANCELLED' : 'GENERATING', content: c.events ? 'x' : '' }, c.events ?? [delta(1, 'x')]);
        const s = setup(c.opts);
        const it = (await started(s)).results();
        await take(it, 1);
        expect({ what: c.what, calls: s.gw.calls.length, reads: s.startReads }).toEqual({ what: c.what, calls: 1, reads: ['gateway'] });
        await it.return();
      }
    });
  });
});
