import type { ApolloServer } from '@apollo/server';
import {
  GraphQLError,
  Kind,
  getOperationAST,
  parse,
  print,
  validate,
  type DocumentNode,
  type ExecutionArgs,
  type ExecutionResult,
  type FieldNode,
  type GraphQLSchema,
  type OperationDefinitionNode,
} from 'graphql';
import type { SubscribePayload } from 'graphql-ws';
import { useServer } from 'graphql-ws/use/ws';
import { isDeepStrictEqual } from 'node:util';
import type { Server } from 'node:http';
import { Counter, Gauge, type Registry } from 'prom-client';
import { WebSocketServer, type WebSocket } from 'ws';
import { ErrorCode } from '@lib/errors.js';
import type { Identity } from '@lib/identity.js';
import type { Logger } from '@lib/logger.js';
import { requestIdFrom } from '@lib/request-id.js';
import type { TaskEvent, TaskEventStream } from '@lib/tasks/events.js';
import { AuthError, KeySourceError, type Authenticator } from './auth.js';
import type { RateLimiter } from './rate-limit.js';
import type { QueryGuard } from './limits.js';
import type { RouterContext } from './context.js';
import { createAnswerStreams, type AnswerStream, type AnswerStreamDeps, type GatewayResult } from './answer-stream.js';

/**
 * GraphQL subscriptions over graphql-ws, served by the router itself (the
 * Apollo gateway cannot execute them). Each subscription listens to the task
 * event stream and, for every event that concerns it, runs the equivalent
 * query through the gateway with the subscriber's identity, so its fields are
 * resolved across subgraphs exactly as a query would be.
 *
 * The listener is registered before the first state is read, so an event that
 * lands between the two is not lost; repeated or late events only re-read the
 * current state, and unchanged results are not sent twice. A task that is not
 * final is also re-read on a timer, so a lost or trimmed final event is not
 * waited for forever.
 *
 * A subscription is registered only while its socket is open (checked after
 * every wait), counts against the per-connection limit from its first message,
 * and ends at once on `complete` or a closed socket, however quiet its task.
 */
const TERMINAL = new Set(['COMPLETED', 'FAILED', 'CANCELLED']);
/** Errors that end a subscription; any other error is retried. */
const FINAL_CODES = new Set(['FORBIDDEN', 'NOT_FOUND', 'UNAUTHENTICATED', 'BAD_USER_INPUT']);
const RETRY_MS = 1000;
const STATUS_ALIAS = '__routerTaskStatus';
const TASK_ID_VAR = '__routerTaskId';
/** The longest delay setTimeout takes; a longer one fires at once (Node warns with TimeoutOverflowWarning). */
const MAX_TIMER_MS = 2 ** 31 - 1;
/** A myTaskUpdated subscription re-reads at most this many unfinished tasks on its timer. */
const MAX_RECHECKED_TASKS = 100;
const DEFAULT_TASK_RECHECK_MS = 10_000;

export interface SubscriptionLimits {
  maxConnectionsPerUser: number;
  maxSubscriptionsPerConnection: number;
  /**
   * How often a task that is not final yet is read again without an event (default 10 s): an event
   * lost or trimmed from the stream must not leave a subscriber waiting for a final status.
   */
  taskRecheckMs?: number | undefined;
}

export interface SubscriptionDeps {
  server: Server;
  path: string;
  apollo: ApolloServer<RouterContext>;
  schema: () => GraphQLSchema | undefined;
  authenticator: Authenticator;
  events: TaskEventStream;
  log: Logger;
  registry: Registry;
  limits: SubscriptionLimits;
  /** Starting a subscription costs one request of the user's budget, as an HTTP request does. */
  rateLimiter: RateLimiter;
  /** `answerStream`: the answers' live events and history (see answer-stream.ts). */
  answers: AnswerStreamDeps;
  /**
   * The router's query limits (limits.ts): tokens, depth, aliases, directives and cost, as over
   * HTTP; the cost's points beyond the first are charged when the subscription starts.
   * Without it: 2,000 tokens and the standard validation only.
   */
  guard?: Pick<QueryGuard, 'parse' | 'validate' | 'price'>;
}

interface ConnectionState {
  identity?: Identity;
  requestId: string;
  log: Logger;
  sessions: Map<string, Session | AnswerStream>;
  /** Subscriptions past the limit check and not yet registered (awaiting the rate limiter or a first read). */
  starting: number;
  /** Stops the timer that closes the connection when its token expires. */
  cancelExpiry?: () => void;
}

/**
 * Calls `onExpiry` at `expiresAtMs` (milliseconds since the epoch), however far away: a single
 * setTimeout of more than about 24.8 days would fire at once, so a long wait is cut into steps.
 * Returns a function that cancels it.
 */
export function armExpiry(expiresAtMs: number, onExpiry: () => void, now: () => number = Date.now): () => void {
  let timer: NodeJS.Timeout | undefined;
  let cancelled = false;
  const arm = () => {
    if (cancelled) return;
    const left = expiresAtMs - now();
    timer = left > MAX_TIMER_MS ? setTimeout(arm, MAX_TIMER_MS) : setTimeout(onExpiry, Math.max(0, left));
    timer.unref();
  };
  arm();
  return () => {
    cancelled = true;
    clearTimeout(timer);
  };
}

let recheckSeq = 0;

/** One live subscription: its event filter, its pending task ids, its query. */
class Session {
  /** Task id -> id of the newest event about it not yet handled. */
  private pending = new Map<string, string>();
  private wake: (() => void) | undefined;
  private closed = false;
  private readonly unsubscribe: () => void;
  private last = new Map<string, unknown>();
  /** Unfinished tasks -> the timer that reads them again should no event come. */
  private rechecks = new Map<string, NodeJS.Timeout>();
  private readonly onClosed = new Set<() => void>();

  constructor(
    events: TaskEventStream,
    private readonly filter: (event: TaskEvent) => boolean,
    private readonly recheckMs: number,
  ) {
    this.unsubscribe = events.on((event, id) => {
      if (!this.closed && this.filter(event)) this.push(event.taskId, id);
    });
  }

  push(taskId: string, eventId: string) {
    if (this.closed) return;
    this.pending.set(taskId, eventId);
    this.wake?.();
  }

  /** Task ids with news, coalesced: ten events while a query runs cause one more query, not ten. */
  async *changes(): AsyncGenerator<{ taskId: string; eventId: string }> {
    while (!this.closed) {
      if (this.pending.size === 0) await new Promise<void>((r) => (this.wake = r));
      this.wake = undefined;
      const batch = [...this.pending];
      this.pending.clear();
      for (const [taskId, eventId] of batch) if (!this.closed) yield { taskId, eventId };
    }
  }

  /** True when the data differs from what this subscription last sent for the task. */
  changed(taskId: string, data: unknown) {
    if (isDeepStrictEqual(this.last.get(taskId), data)) return false;
    this.last.set(taskId, data);
    return true;
  }

  /**
   * The task was read with this status: while it is not final, it is read again after the
   * recheck period unless an event comes first (its event may have been lost or trimmed).
   */
  track(taskId: string, status: string | undefined) {
    const timer = this.rechecks.get(taskId);
    if (timer) clearTimeout(timer);
    this.rechecks.delete(taskId);
    if (this.closed || status === undefined || TERMINAL.has(status) || this.rechecks.size >= MAX_RECHECKED_TASKS) return;
    const next = setTimeout(() => {
      this.rechecks.delete(taskId);
      this.push(taskId, `recheck-${++recheckSeq}`);
    }, this.recheckMs);
    next.unref();
    this.rechecks.set(taskId, next);
  }

  /** Runs `fn` once the session closes (at once if it is closed). */
  whenClosed(fn: () => void) {
    if (this.closed) fn();
    else this.onClosed.add(fn);
  }

  close() {
    if (this.closed) return;
    this.closed = true;
    this.unsubscribe();
    for (const timer of this.rechecks.values()) clearTimeout(timer);
    this.rechecks.clear();
    this.wake?.();
    for (const fn of this.onClosed) fn();
    this.onClosed.clear();
  }
}

/**
 * The messages of a session as graphql-ws wants them: an iterator whose `return` (the client's
 * `complete`, or its socket closing) ends the session at once. An async generator's own `return`
 * would wait for the pending step, which on a quiet task is the next event: until then graphql-ws
 * would neither run onComplete nor onClose, and the session, its listener and its slot would stay.
 */
function stoppable(
  session: Session,
  inner: AsyncGenerator<ExecutionResult>,
): AsyncIterableIterator<ExecutionResult> & { return(): Promise<IteratorResult<ExecutionResult>> } {
  let ended = false;
  const stopped = new Promise<IteratorResult<ExecutionResult>>((resolve) =>
    session.whenClosed(() => resolve({ done: true, value: undefined })),
  );
  const finish = () => {
    ended = true;
    session.close();
    // Queued behind a pending step, if any: the closed session ends that step soon.
    inner.return(undefined).catch(() => undefined);
  };
  const iterator = {
    next: async (): Promise<IteratorResult<ExecutionResult>> => {
      if (ended) return { done: true, value: undefined };
      try {
        const step = await Promise.race([inner.next(), stopped]);
        if (step.done) finish();
        return step;
      } catch (err) {
        finish();
        throw err;
      }
    },
    return: async (): Promise<IteratorResult<ExecutionResult>> => {
      finish();
      return { done: true, value: undefined };
    },
    [Symbol.asyncIterator]() {
      return iterator;
    },
  };
  return iterator;
}

/** Turns `subscription { taskUpdated(id: $id) { ...sel } }` into `query { taskUpdated: task(id: $id) { ...sel, status } }`. */
function toQuery(document: DocumentNode, operation: OperationDefinitionNode, field: FieldNode): DocumentNode {
  const byId = field.name.value === 'myTaskUpdated';
  const task: FieldNode = {
    ...field,
    alias: { kind: Kind.NAME, value: field.alias?.value ?? field.name.value },
    name: { kind: Kind.NAME, value: 'task' },
    arguments: byId
      ? [
          {
            kind: Kind.ARGUMENT,
            name: { kind: Kind.NAME, value: 'id' },
            value: { kind: Kind.VARIABLE, name: { kind: Kind.NAME, value: TASK_ID_VAR } },
          },
        ]
      : field.arguments,
    selectionSet: {
      kind: Kind.SELECTION_SET,
      selections: [
        ...(field.selectionSet?.selections ?? []),
        { kind: Kind.FIELD, alias: { kind: Kind.NAME, value: STATUS_ALIAS }, name: { kind: Kind.NAME, value: 'status' } },
      ],
    },
  };
  const query: OperationDefinitionNode = {
    ...operation,
    operation: 'query' as OperationDefinitionNode['operation'],
    variableDefinitions: [
      ...(operation.variableDefinitions ?? []),
      ...(byId
        ? [
            {
              kind: Kind.VARIABLE_DEFINITION,
              variable: { kind: Kind.VARIABLE, name: { kind: Kind.NAME, value: TASK_ID_VAR } },
              type: { kind: Kind.NON_NULL_TYPE, type: { kind: Kind.NAMED_TYPE, name: { kind: Kind.NAME, value: 'ID' } } },
            } as const,
          ]
        : []),
    ],
    selectionSet: { kind: Kind.SELECTION_SET, selections: [task] },
  };
  return { ...document, definitions: document.definitions.map((d) => (d === operation ? query : d)) };
}

/** A result as Apollo's executeOperation gives it (errors already formatted). */
type Result = GatewayResult;

const refuse = (message: string, code: string = ErrorCode.BAD_USER_INPUT) => [new GraphQLError(message, { extensions: { code } })];

/** Formatted errors (as the gateway returns them) as GraphQLErrors again: graphql-ws sends them with `toJSON`. */
const toErrors = (errors: Result['errors']) =>
  (errors ?? []).map((e) => new GraphQLError(e.message, { extensions: e.extensions ?? {}, ...(e.path ? { path: e.path } : {}) }));

/**
 * Subscription documents that parsed and validated, by their text, per supergraph schema: clients
 * send the same few documents over and over (every answer of the tutor subscribes anew), and
 * validating one against the supergraph costs more than the rest of starting it. Parsing and
 * validation depend on nothing else; a new schema starts with an empty set.
 */
const VALID_DOCUMENTS_MAX = 500;

export function startSubscriptions(deps: SubscriptionDeps) {
  const validDocuments = new WeakMap<GraphQLSchema, Map<string, DocumentNode>>();
  const { log, apollo, events, limits } = deps;
  const open = new Gauge({ name: 'subscriptions_open', help: 'Open GraphQL subscriptions', registers: [deps.registry] });
  const sockets = new Gauge({ name: 'websocket_connections_open', help: 'Open graphql-ws connections', registers: [deps.registry] });
  const messages = new Counter({ name: 'subscription_messages_total', help: 'Messages sent to subscribers', registers: [deps.registry] });
  const connectionsPerUser = new Map<string, number>();
  const finalReads = new Counter({
    name: 'answer_stream_final_reads_total',
    help: "Final answers sent on answerStream, by where the message came from: the worker's done event, or a read through the gateway",
    labelNames: ['source'] as const,
    registers: [deps.registry],
  });
  const startReads = new Counter({
    name: 'answer_stream_start_reads_total',
    help: "answerStream subscriptions started, by where their first message came from: a row in the answer's stream, or a read through the gateway",
    labelNames: ['source'] as const,
    registers: [deps.registry],
  });
  const answerStreams = createAnswerStreams({
    ...deps.answers,
    onFinalRead: (source) => finalReads.inc({ source }),
    onStartRead: (source) => startReads.inc({ source }),
  });

  const wss = new WebSocketServer({ server: deps.server, path: deps.path, maxPayload: 64 * 1024 });

  const run = async (state: ConnectionState, query: DocumentNode, variables: Record<string, unknown>) => {
    const response = await apollo.executeOperation(
      { query, variables },
      { contextValue: { identity: state.identity!, requestId: state.requestId, log: state.log } },
    );
    if (response.body.kind !== 'single') throw new Error('unexpected incremental response');
    return response.body.singleResult as Result;
  };

  /**
   * Subscriptions of one user with the same selection, woken by the same event, share one
   * read: several tabs on one task cost one query per event, not one each. The key holds
   * the event id, so a read never answers for an event that came after it started.
   */
  const inFlight = new Map<string, Promise<Result>>();
  const runShared = (
    state: ConnectionState,
    query: DocumentNode,
    queryKey: string,
    variables: Record<string, unknown>,
    eventId: string,
  ) => {
    const key = `${state.identity!.userId}\u0000${state.identity!.role}\u0000${eventId}\u0000${queryKey}\u0000${JSON.stringify(variables)}`;
    let result = inFlight.get(key);
    if (!result) {
      result = run(state, query, variables);
      inFlight.set(key, result);
      // Sessions that wake a little later still find it; then it goes.
      const forget = () => setTimeout(() => inFlight.delete(key), 1000).unref();
      result.then(forget, forget);
    }
    return result;
  };

  const recheckMs = limits.taskRecheckMs ?? DEFAULT_TASK_RECHECK_MS;
  /** Reads that fail outright (the gateway throwing) are passing failures, as errors in a result are. */
  const runSafely = (read: () => Promise<Result>): Promise<Result> =>
    read().catch((err: unknown) => ({ errors: [{ message: err instanceof Error ? err.message : String(err) }] }));

  const serverCleanup = useServer<Record<string, unknown>, { state?: ConnectionState }>(
    {
      connectionInitWaitTimeout: 5000,
      onConnect: async (ctx) => {
        const requestId = requestIdFrom(ctx.extra.request.headers['x-request-id']);
        const connLog = log.child({ reqId: requestId, transport: 'ws' });
        const raw = ctx.connectionParams?.['authorization'] ?? ctx.connectionParams?.['Authorization'];
        try {
          const identity = await deps.authenticator.authenticate(typeof raw === 'string' ? raw : undefined);
          // The socket may have closed while the token was checked: onClose has already run, so count nothing.
          if (ctx.extra.socket.readyState !== ctx.extra.socket.OPEN) return false;
          const count = connectionsPerUser.get(identity.userId) ?? 0;
          if (count >= limits.maxConnectionsPerUser) {
            connLog.warn({ userId: identity.userId, count }, 'subscription connection refused: too many connections');
            return false;
          }
          connectionsPerUser.set(identity.userId, count + 1);
          // The connection lives no longer than its token (however long that is).
          const cancelExpiry = armExpiry(identity.expiresAt * 1000, () => ctx.extra.socket.close(4401, 'Token expired'));
          ctx.extra.state = {
            identity,
            requestId,
            log: connLog.child({ userId: identity.userId }),
            sessions: new Map(),
            starting: 0,
            cancelExpiry,
          };
          sockets.inc();
          return { requestId };
        } catch (err) {
          if (err instanceof AuthError) connLog.info({ reason: err.reason }, 'subscription connection refused: authentication failed');
          else if (err instanceof KeySourceError) connLog.error({ err }, 'key set unavailable');
          else connLog.error({ err }, 'subscription connection failed');
          return false;
        }
      },
      onSubscribe: async (ctx, id, payload) => {
        const state = ctx.extra.state;
        const schema = deps.schema();
        if (!state?.identity || !schema) return refuse('Not ready', ErrorCode.SERVICE_UNAVAILABLE);
        // Counted before the first wait: subscribe messages sent together cannot all pass the check.
        if (state.sessions.size + state.starting >= limits.maxSubscriptionsPerConnection) {
          return refuse(`At most ${limits.maxSubscriptionsPerConnection} subscriptions per connection`, ErrorCode.RATE_LIMITED);
        }
        state.starting++;
        try {
          return await startSubscription(ctx.extra.socket, state, schema, id, payload);
        } finally {
          state.starting--;
        }
      },
      subscribe: (args) => {
        const { answer } = args.contextValue as { answer?: AnswerStream };
        if (answer) return answer.results();
        const { state, session, query, queryKey, variables, snapshot, first, responseKey, once } = args.contextValue as {
          state: ConnectionState;
          session: Session;
          query: DocumentNode;
          queryKey: string;
          variables: Record<string, unknown>;
          snapshot: Result | undefined;
          first: string | undefined;
          responseKey: string;
          once: boolean;
        };
        const shape = (result: Result, taskId: string) => {
          const data = (result.data as Record<string, Record<string, unknown> | null> | null | undefined)?.[responseKey];
          if (result.errors?.length || !data) {
            const errors = result.errors?.length ? toErrors(result.errors) : refuse('Task not found', ErrorCode.NOT_FOUND);
            return { message: { errors } as ExecutionResult, status: undefined, fresh: true };
          }
          const { [STATUS_ALIAS]: status, ...fields } = data;
          return {
            message: { data: { [responseKey]: fields } } as ExecutionResult,
            status: status as string,
            fresh: session.changed(taskId, fields),
          };
        };
        return stoppable(
          session,
          (async function* () {
            try {
              if (snapshot && first) {
                const out = shape(snapshot, first);
                messages.inc();
                yield out.message;
                if (once && (out.status === undefined || TERMINAL.has(out.status))) return;
                session.track(first, out.status);
              }
              for await (const { taskId, eventId } of session.changes()) {
                const result = await runSafely(() => runShared(state, query, queryKey, { ...variables, [TASK_ID_VAR]: taskId }, eventId));
                const denied = result.errors?.some((e) => FINAL_CODES.has(String(e.extensions?.['code'])));
                if (result.errors?.length && !denied) {
                  // A passing failure (a subgraph restarting, a network blip) must not end the stream: read again soon.
                  state.log.warn({ taskId, errors: result.errors.map((e) => e.message) }, 'subscription refresh failed; retrying');
                  setTimeout(() => session.push(taskId, `${eventId}-retry-${Date.now()}`), RETRY_MS).unref();
                  continue;
                }
                const out = shape(result, taskId);
                session.track(taskId, out.status);
                if (out.status === undefined && !once) continue; // a task this user may no longer see
                if (out.fresh) {
                  messages.inc();
                  yield out.message;
                }
                if (once && (out.status === undefined || TERMINAL.has(out.status))) return;
              }
            } finally {
              session.close();
            }
          })(),
        );
      },
      onComplete: (ctx, id) => {
        const session = ctx.extra.state?.sessions.get(id);
        if (session) {
          session.close();
          ctx.extra.state!.sessions.delete(id);
          open.dec();
        }
      },
      onClose: (ctx) => {
        const state = ctx.extra.state;
        state?.cancelExpiry?.();
        if (!state?.identity) return;
        for (const session of state.sessions.values()) session.close();
        open.dec(state.sessions.size);
        state.sessions.clear();
        sockets.dec();
        const left = (connectionsPerUser.get(state.identity.userId) ?? 1) - 1;
        if (left > 0) connectionsPerUser.set(state.identity.userId, left);
        else connectionsPerUser.delete(state.identity.userId);
      },
    },
    wss,
  );

  /**
   * The rest of onSubscribe, after the limit check. The socket is checked after every wait, as
   * onConnect does: if it closed meanwhile, onClose has already run, and a subscription
   * registered now would keep its listener, its slot and its gauge forever.
   */
  async function startSubscription(
    socket: WebSocket,
    state: ConnectionState,
    schema: GraphQLSchema,
    id: string,
    payload: SubscribePayload,
  ): Promise<ExecutionArgs | readonly GraphQLError[]> {
    const gone = () => socket.readyState !== socket.OPEN;
    const closedMeanwhile = () => {
      state.log.info({ subscriptionId: id }, 'subscription not started: connection closed');
      return refuse('Connection closed', ErrorCode.BAD_USER_INPUT);
    };
    const identity = state.identity!;
    const decision = await deps.rateLimiter.consume(identity);
    if (gone()) return closedMeanwhile();
    if (!decision.allowed) return refuse(`Too many requests; retry in ${decision.retryAfterS} s`, ErrorCode.RATE_LIMITED);
    let valid = validDocuments.get(schema);
    if (!valid) validDocuments.set(schema, (valid = new Map()));
    let document = valid.get(payload.query);
    if (document) {
      // Most recently used last.
      valid.delete(payload.query);
      valid.set(payload.query, document);
    } else {
      try {
        document = deps.guard ? deps.guard.parse(payload.query) : parse(payload.query, { maxTokens: 2000 });
      } catch (err) {
        return [err as GraphQLError];
      }
      const errors = deps.guard ? deps.guard.validate(schema, document) : validate(schema, document);
      if (errors.length) return errors;
      if (valid.size >= VALID_DOCUMENTS_MAX) valid.delete(valid.keys().next().value!);
      valid.set(payload.query, document);
    }
    const operation = getOperationAST(document, payload.operationName);
    if (!operation) return refuse('No operation, or several without an operationName');
    if (operation.operation !== 'subscription') return refuse('Send queries and mutations over HTTP POST to this URL');
    const [field, ...more] = operation.selectionSet.selections;
    if (!field || more.length || field.kind !== Kind.FIELD) return refuse('Subscribe to exactly one field');
    const variables = payload.variables ?? {};
    if (deps.guard) {
      const priced = deps.guard.price(schema, document, payload.operationName, variables);
      if (priced.error) return [priced.error];
      if (priced.points > 1) {
        const extra = await deps.rateLimiter.consume(identity, priced.points - 1);
        if (gone()) return closedMeanwhile();
        if (!extra.allowed) return refuse(`Too many requests; retry in ${extra.retryAfterS} s`, ErrorCode.RATE_LIMITED);
      }
    }
    if (field.name.value === 'answerStream') {
      const answer = await answerStreams.start({
        schema,
        document,
        operation,
        field,
        variables,
        run: (query, vars, shareKey) => (shareKey ? runShared(state, query, print(query), vars, shareKey) : run(state, query, vars)),
        viewerId: identity.userId,
        log: state.log,
        isOpen: () => !gone(),
        onMessage: () => messages.inc(),
      });
      if (Array.isArray(answer)) return answer;
      if (gone()) {
        answer.close();
        return closedMeanwhile();
      }
      state.sessions.set(id, answer);
      open.inc();
      state.log.info({ subscriptionId: id, field: field.name.value, messageId: answer.messageId }, 'subscription started');
      return {
        schema,
        document,
        operationName: payload.operationName ?? null,
        variableValues: variables,
        contextValue: { answer },
      };
    }
    const query = toQuery(document, operation, field);

    let session: Session;
    let first: string | undefined;
    if (field.name.value === 'taskUpdated') {
      const idArg = field.arguments?.find((a) => a.name.value === 'id')?.value;
      const taskId = idArg?.kind === Kind.VARIABLE ? variables[idArg.name.value] : idArg?.kind === Kind.STRING ? idArg.value : undefined;
      if (typeof taskId !== 'string') return refuse('taskUpdated needs an id');
      session = new Session(events, (e) => e.taskId === taskId, recheckMs);
      first = taskId;
    } else if (field.name.value === 'myTaskUpdated') {
      session = new Session(events, (e) => e.ownerId === identity.userId, recheckMs);
    } else {
      return refuse(`Unknown subscription field ${field.name.value}`);
    }

    // The current state, read after the listener is in place; a refusal here refuses the subscription.
    const snapshot = first ? await runSafely(() => run(state, query, variables)) : undefined;
    if (gone()) {
      session.close();
      return closedMeanwhile();
    }
    if (snapshot?.errors?.length) {
      session.close();
      return toErrors(snapshot.errors);
    }
    state.sessions.set(id, session);
    open.inc();
    state.log.info({ subscriptionId: id, field: field.name.value }, 'subscription started');
    return {
      schema,
      document,
      operationName: payload.operationName ?? null,
      variableValues: variables,
      contextValue: {
        state,
        session,
        query,
        queryKey: print(query),
        variables,
        snapshot,
        first,
        responseKey: field.alias?.value ?? field.name.value,
        once: field.name.value === 'taskUpdated',
      },
    };
  }

  return {
    /** Tells every client the server is going away (close code 1001), then stops. */
    async close() {
      await serverCleanup.dispose();
      await new Promise<void>((resolve) => wss.close(() => resolve()));
    },
  };
}
