import { afterEach, describe, expect, it, jest } from '@jest/globals';
import type { ApolloServer } from '@apollo/server';
import { buildSchema, execute, GraphQLError, type DocumentNode } from 'graphql';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { once } from 'node:events';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { Registry } from 'prom-client';
import WebSocket from 'ws';
import type { TaskEvent, TaskEventStream } from '@lib/tasks/events.js';
import type { Authenticator } from './auth.js';
import type { RouterContext } from './context.js';
import type { RateLimiter } from './rate-limit.js';
import { armExpiry, startSubscriptions, type SubscriptionLimits } from './subscriptions.js';

/**
 * The router's task subscriptions against stand-ins: a gateway that runs the query on a small
 * schema, an event stream the test publishes on, a rate limiter and a gateway that can be held,
 * and a raw graphql-transport-ws client, so every message and every close is the test's to time.
 */

const DAY_MS = 24 * 3600 * 1000;
const TASK_SUB = 'subscription($id: ID!) { taskUpdated(id: $id) { id status progress } }';
const MY_TASKS = 'subscription { myTaskUpdated { id status progress } }';

const schema = buildSchema(`
  enum TaskStatus { ACCEPTED RUNNING COMPLETED FAILED CANCELLED }
  type Task { id: ID! status: TaskStatus! progress: Float! }
  type Query { task(id: ID!): Task }
  type Subscription { taskUpdated(id: ID!): Task! myTaskUpdated: Task! }
`);

interface TaskRow {
  id: string;
  ownerId: string;
  status: TaskEvent['status'];
  progress: number;
  /** Reads of it are refused with this code (a task the user may no longer see). */
  deny?: 'NOT_FOUND' | 'FORBIDDEN';
}

/** A promise the test opens when it wants the held call to go on. */
function gate() {
  let open = () => {};
  const wait = new Promise<void>((resolve) => (open = resolve));
  return { wait, open };
}

async function waitFor(check: () => boolean | Promise<boolean>, what: string, ms = 10_000) {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`${what}: not within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

interface Harness {
  url: string;
  registry: Registry;
  tasks: Map<string, TaskRow>;
  listeners: Set<(event: TaskEvent, id: string) => void>;
  calls: { consume: number; execute: number };
  rateGate: ReturnType<typeof gate> | undefined;
  executeGate: ReturnType<typeof gate> | undefined;
  logs: { msg: string }[];
  gauge(name: 'subscriptions_open' | 'websocket_connections_open'): Promise<number>;
  /** Publishes the task's current state, as a worker's store would. */
  emit(taskId: string): void;
  close(): Promise<void>;
}

const harnesses: Harness[] = [];
afterEach(async () => {
  await Promise.all(harnesses.splice(0).map((h) => h.close()));
});

async function startHarness(opts: { limits?: Partial<SubscriptionLimits>; tokenLifetimeS?: number } = {}): Promise<Harness> {
  const server = createServer();
  const registry = new Registry();
  const tasks = new Map<string, TaskRow>();
  const listeners = new Set<(event: TaskEvent, id: string) => void>();
  const logs: { msg: string }[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, cb) {
      for (const line of chunk.toString('utf8').split('\n')) if (line) logs.push(JSON.parse(line) as { msg: string });
      cb();
    },
  });
  let seq = 0;
  const h = {
    registry,
    tasks,
    listeners,
    logs,
    calls: { consume: 0, execute: 0 },
    rateGate: undefined,
    executeGate: undefined,
  } as unknown as Harness;

  const events: TaskEventStream = {
    on(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
    close: async () => undefined,
  };
  const authenticator: Authenticator = {
    authenticate: async (header) => ({
      userId: (header ?? '').replace(/^Bearer /, ''),
      role: 'TEACHER',
      expiresAt: Math.floor(Date.now() / 1000) + (opts.tokenLifetimeS ?? 3600),
    }),
  };
  const rateLimiter: RateLimiter = {
    consume: async () => {
      h.calls.consume++;
      await h.rateGate?.wait;
      return { allowed: true, limit: 100, remaining: 99 };
    },
    knownRefusal: () => undefined,
  };
  // The gateway: runs the router's query on the schema; answers come back formatted, as Apollo's do.
  const apollo = {
    executeOperation: async ({ query, variables }: { query: DocumentNode; variables: Record<string, unknown> }) => {
      h.calls.execute++;
      await h.executeGate?.wait;
      const task = ({ id }: { id: string }) => {
        const row = tasks.get(id);
        if (!row || row.deny === 'NOT_FOUND') throw new GraphQLError('Task not found', { extensions: { code: 'NOT_FOUND' } });
        if (row.deny) throw new GraphQLError('Forbidden', { extensions: { code: row.deny } });
        return { id: row.id, status: row.status, progress: row.progress };
      };
      const result = await execute({ schema, document: query, variableValues: variables, rootValue: { task } });
      return { body: { kind: 'single', singleResult: JSON.parse(JSON.stringify(result)) as unknown } };
    },
  } as unknown as ApolloServer<RouterContext>;

  const subscriptions = startSubscriptions({
    server,
    path: '/graphql',
    apollo,
    schema: () => schema,
    authenticator,
    events,
    log: pino({ level: 'info' }, sink),
    registry,
    limits: { maxConnectionsPerUser: 10, maxSubscriptionsPerConnection: 100, ...opts.limits },
    rateLimiter,
    answers: { hub: { listen: async () => () => undefined }, readHistory: async () => [], recheckMs: 10_000 },
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  h.url = `ws://127.0.0.1:${(server.address() as AddressInfo).port}/graphql`;
  h.gauge = async (name) => (await registry.getSingleMetric(name)!.get()).values[0]?.value ?? 0;
  h.emit = (taskId) => {
    const row = tasks.get(taskId)!;
    const event: TaskEvent = { taskId, ownerId: row.ownerId, courseId: 'c-1', status: row.status, progress: row.progress, at: Date.now() };
    for (const listener of [...listeners]) listener(event, `${Date.now()}-${seq++}`);
  };
  h.close = async () => {
    h.rateGate?.open();
    h.executeGate?.open();
    await subscriptions.close();
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  };
  harnesses.push(h);
  return h;
}

interface WireMessage {
  type: string;
  id?: string;
  payload?: {
    data?: Record<string, { id: string; status: string; progress: number }>;
    errors?: { message: string; extensions?: Record<string, unknown> }[];
  } & { message?: string; extensions?: Record<string, unknown> }[];
}

/** A graphql-transport-ws client speaking the protocol by hand, acknowledged as `user`. */
async function connect(h: Harness, user = 'user-1') {
  const socket = new WebSocket(h.url, 'graphql-transport-ws');
  const received: WireMessage[] = [];
  let closedWith: { code: number; reason: string } | undefined;
  const closed = new Promise<{ code: number; reason: string }>((resolve) =>
    socket.on('close', (code, reason) => resolve((closedWith = { code, reason: String(reason) }))),
  );
  socket.on('message', (data) => received.push(JSON.parse(String(data)) as WireMessage));
  await once(socket, 'open');
  socket.send(JSON.stringify({ type: 'connection_init', payload: { authorization: `Bearer ${user}` } }));
  await waitFor(() => closedWith !== undefined || received.some((m) => m.type === 'connection_ack'), 'connection_ack');
  return {
    socket,
    received,
    closed,
    closedWith: () => closedWith,
    subscribe(id: string, query: string, variables: Record<string, unknown> = {}) {
      socket.send(JSON.stringify({ id, type: 'subscribe', payload: { query, variables } }));
    },
    complete(id: string) {
      socket.send(JSON.stringify({ id, type: 'complete' }));
    },
    of: (id: string) => received.filter((m) => m.id === id),
    /** Resolves once the subscription has ended (a `complete` or an `error` message). */
    ended: (id: string) =>
      waitFor(() => received.some((m) => m.id === id && (m.type === 'complete' || m.type === 'error')), `end of ${id}`),
  };
}

const statusesOf = (messages: WireMessage[]) =>
  messages.filter((m) => m.type === 'next' && m.payload?.data).map((m) => Object.values(m.payload!.data!)[0]!.status);

const waitForLog = (h: Harness, ...msgs: string[]) =>
  waitFor(() => h.logs.some((l) => msgs.includes(l.msg)), `a log "${msgs.join('" or "')}"`);

describe('task subscriptions', () => {
  it('sends the current state first, then each change, and completes after a final status', async () => {
    const h = await startHarness();
    h.tasks.set('t-1', { id: 't-1', ownerId: 'user-1', status: 'ACCEPTED', progress: 0 });
    const c = await connect(h);
    c.subscribe('1', TASK_SUB, { id: 't-1' });
    await waitFor(() => c.of('1').length === 1, 'the first state');
    h.tasks.set('t-1', { ...h.tasks.get('t-1')!, status: 'RUNNING', progress: 0.5 });
    h.emit('t-1');
    await waitFor(() => c.of('1').length === 2, 'the change');
    h.tasks.set('t-1', { ...h.tasks.get('t-1')!, status: 'COMPLETED', progress: 1 });
    h.emit('t-1');
    await c.ended('1');
    expect(statusesOf(c.of('1'))).toEqual(['ACCEPTED', 'RUNNING', 'COMPLETED']);
    expect(c.of('1').at(-1)!.type).toBe('complete');
    await waitFor(async () => (await h.gauge('subscriptions_open')) === 0, 'the session freed');
    expect(h.listeners.size).toBe(0);
    c.socket.close();
  });

  it('validates a document once by its text: the same text is served again, an invalid one is refused every time', async () => {
    const h = await startHarness();
    h.tasks.set('t-1', { id: 't-1', ownerId: 'user-1', status: 'RUNNING', progress: 0.5 });
    const c = await connect(h);
    const invalid = TASK_SUB.replace('progress', 'noSuchField');
    for (const id of ['1', '2']) {
      c.subscribe(id, invalid, { id: 't-1' });
      await c.ended(id);
      expect(c.of(id).map((m) => m.type)).toEqual(['error']);
    }
    for (const id of ['3', '4']) {
      c.subscribe(id, TASK_SUB, { id: 't-1' });
      await waitFor(() => c.of(id).length === 1, `the state for ${id}`);
      expect(statusesOf(c.of(id))).toEqual(['RUNNING']);
    }
    // A variable of the wrong type is still refused with a remembered document (variables are checked each time).
    c.subscribe('5', TASK_SUB, { id: { not: 'an id' } });
    await c.ended('5');
    expect(c.of('5').map((m) => m.type)).toEqual(['error']);
    c.socket.close();
  });

  it('does not register a subscription whose socket closed while the rate limiter answered', async () => {
    const h = await startHarness();
    h.rateGate = gate();
    const c = await connect(h);
    c.subscribe('1', MY_TASKS);
    await waitFor(() => h.calls.consume === 1, 'the rate limiter asked');
    c.socket.close();
    await c.closed;
    await waitFor(async () => (await h.gauge('websocket_connections_open')) === 0, 'the close handled');
    h.rateGate.open();
    await waitForLog(h, 'subscription started', 'subscription not started: connection closed');
    expect(h.logs.map((l) => l.msg)).not.toContain('subscription started');
    expect(h.listeners.size).toBe(0);
    expect(await h.gauge('subscriptions_open')).toBe(0);
  });

  it('does not register a taskUpdated whose socket closed while its current state was read', async () => {
    const h = await startHarness();
    h.tasks.set('t-1', { id: 't-1', ownerId: 'user-1', status: 'RUNNING', progress: 0.1 });
    h.executeGate = gate();
    const c = await connect(h);
    c.subscribe('1', TASK_SUB, { id: 't-1' });
    await waitFor(() => h.calls.execute === 1, 'the first read started');
    c.socket.close();
    await c.closed;
    await waitFor(async () => (await h.gauge('websocket_connections_open')) === 0, 'the close handled');
    h.executeGate.open();
    await waitForLog(h, 'subscription started', 'subscription not started: connection closed');
    expect(h.logs.map((l) => l.msg)).not.toContain('subscription started');
    expect(h.listeners.size).toBe(0);
    expect(await h.gauge('subscriptions_open')).toBe(0);
    // Nothing is left to read the task when it changes.
    h.emit('t-1');
    await new Promise((r) => setImmediate(r));
    expect(h.calls.execute).toBe(1);
  });

  it('refuses subscribe messages sent together beyond the per-connection limit', async () => {
    const h = await startHarness({ limits: { maxSubscriptionsPerConnection: 2 } });
    h.rateGate = gate();
    const c = await connect(h);
    for (const id of ['a', 'b', 'c', 'd']) c.subscribe(id, MY_TASKS);
    await waitFor(() => h.calls.consume >= 2, 'two subscriptions waiting on the rate limiter');
    h.rateGate.open();
    const refused = () => c.received.filter((m) => m.type === 'error');
    await waitFor(async () => refused().length + (await h.gauge('subscriptions_open')) === 4, 'every subscribe answered');
    expect(refused().map((m) => m.payload![0]!.extensions?.['code'])).toEqual(['RATE_LIMITED', 'RATE_LIMITED']);
    expect(await h.gauge('subscriptions_open')).toBe(2);
    expect(h.calls.consume).toBe(2);
    expect(h.listeners.size).toBe(2);
    c.socket.close();
  });

  it('keeps the connection of a token valid for 30 days open', async () => {
    const h = await startHarness({ tokenLifetimeS: 30 * 24 * 3600 });
    h.tasks.set('t-1', { id: 't-1', ownerId: 'user-1', status: 'COMPLETED', progress: 1 });
    const c = await connect(h);
    // A round trip after the acknowledgement: a timer that overflowed would have closed the socket by now.
    c.subscribe('1', TASK_SUB, { id: 't-1' });
    await waitFor(() => c.closedWith() !== undefined || c.of('1').some((m) => m.type === 'complete'), 'a round trip');
    expect(c.closedWith()).toBeUndefined();
    expect(statusesOf(c.of('1'))).toEqual(['COMPLETED']);
    expect(c.socket.readyState).toBe(WebSocket.OPEN);
    expect(await h.gauge('websocket_connections_open')).toBe(1);
    c.socket.close();
  });

  it('frees an idle myTaskUpdated, its connection and the user’s slot as soon as the client closes its socket', async () => {
    const h = await startHarness({ limits: { maxConnectionsPerUser: 1 } });
    const c = await connect(h);
    c.subscribe('1', MY_TASKS);
    await waitFor(async () => (await h.gauge('subscriptions_open')) === 1, 'the subscription started');
    c.socket.close();
    await c.closed;
    await waitFor(
      async () => (await h.gauge('websocket_connections_open')) === 0 && (await h.gauge('subscriptions_open')) === 0,
      'the close handled without an event',
    );
    expect(h.listeners.size).toBe(0);
    // The user's one connection is free again.
    const again = await connect(h);
    expect(again.closedWith()).toBeUndefined();
    expect(again.received.map((m) => m.type)).toEqual(['connection_ack']);
    again.socket.close();
  });

  it('frees a quiet taskUpdated or myTaskUpdated as soon as the client completes it', async () => {
    const h = await startHarness();
    h.tasks.set('t-1', { id: 't-1', ownerId: 'user-1', status: 'RUNNING', progress: 0.2 });
    const c = await connect(h);
    c.subscribe('1', TASK_SUB, { id: 't-1' });
    c.subscribe('2', MY_TASKS);
    await waitFor(async () => (await h.gauge('subscriptions_open')) === 2, 'both started');
    c.complete('1');
    await waitFor(async () => (await h.gauge('subscriptions_open')) === 1, 'taskUpdated freed without an event');
    c.complete('2');
    await waitFor(async () => (await h.gauge('subscriptions_open')) === 0, 'myTaskUpdated freed without an event');
    expect(h.listeners.size).toBe(0);
    // The connection itself stays.
    expect(await h.gauge('websocket_connections_open')).toBe(1);
    expect(c.closedWith()).toBeUndefined();
    c.socket.close();
  });

  it('ends a taskUpdated whose later read is denied with that code (NOT_FOUND, FORBIDDEN)', async () => {
    const h = await startHarness();
    const c = await connect(h);
    for (const [id, deny] of [
      ['t-1', 'NOT_FOUND'],
      ['t-2', 'FORBIDDEN'],
    ] as const) {
      h.tasks.set(id, { id, ownerId: 'user-1', status: 'RUNNING', progress: 0.2 });
      c.subscribe(id, TASK_SUB, { id });
      await waitFor(() => c.of(id).length === 1, 'the first state');
      h.tasks.set(id, { ...h.tasks.get(id)!, deny });
      h.emit(id);
      await c.ended(id);
      const [, denied, end] = c.of(id);
      expect({ id, type: denied!.type, codes: denied!.payload?.errors?.map((e) => e.extensions?.['code']) }).toEqual({
        id,
        type: 'next',
        codes: [deny],
      });
      expect(end!.type).toBe('complete');
    }
    c.socket.close();
  });

  it('delivers a final status whose event was lost, by reading unfinished tasks again on a timer', async () => {
    const h = await startHarness({ limits: { taskRecheckMs: 50 } });
    h.tasks.set('t-1', { id: 't-1', ownerId: 'user-1', status: 'RUNNING', progress: 0.3 });
    h.tasks.set('t-2', { id: 't-2', ownerId: 'user-1', status: 'RUNNING', progress: 0.3 });
    const c = await connect(h);
    c.subscribe('one', TASK_SUB, { id: 't-1' });
    c.subscribe('mine', MY_TASKS);
    await waitFor(async () => (await h.gauge('subscriptions_open')) === 2, 'both started');
    h.emit('t-2');
    await waitFor(() => c.of('mine').length === 1, 'myTaskUpdated heard of t-2');
    // Both finish, and their events are lost (trimmed from the stream, say).
    h.tasks.set('t-1', { ...h.tasks.get('t-1')!, status: 'COMPLETED', progress: 1 });
    h.tasks.set('t-2', { ...h.tasks.get('t-2')!, status: 'FAILED', progress: 0.3 });
    await c.ended('one');
    expect(statusesOf(c.of('one'))).toEqual(['RUNNING', 'COMPLETED']);
    await waitFor(() => statusesOf(c.of('mine')).includes('FAILED'), 'myTaskUpdated sent the final status');
    expect(statusesOf(c.of('mine'))).toEqual(['RUNNING', 'FAILED']);
    c.socket.close();
  });
});

describe('armExpiry', () => {
  it('fires at expiry however far away, never early, and not once cancelled', () => {
    jest.useFakeTimers({ now: new Date('2026-01-01T00:00:00Z') });
    try {
      const expired = jest.fn();
      armExpiry(Date.now() + 30 * DAY_MS, expired);
      jest.advanceTimersByTime(29 * DAY_MS);
      expect(expired).not.toHaveBeenCalled();
      jest.advanceTimersByTime(DAY_MS - 1000);
      expect(expired).not.toHaveBeenCalled();
      jest.advanceTimersByTime(1000);
      expect(expired).toHaveBeenCalledTimes(1);

      const soon = jest.fn();
      armExpiry(Date.now() + 2000, soon);
      jest.advanceTimersByTime(2000);
      expect(soon).toHaveBeenCalledTimes(1);

      const cancelled = jest.fn();
      const cancel = armExpiry(Date.now() + 40 * DAY_MS, cancelled);
      jest.advanceTimersByTime(25 * DAY_MS);
      cancel();
      jest.advanceTimersByTime(20 * DAY_MS);
      expect(cancelled).not.toHaveBeenCalled();
    } finally {
      jest.useRealTimers();
    }
  });
});
