import type { ApolloServer } from '@apollo/server';
import {
  GraphQLError,
  Kind,
  getOperationAST,
  parse,
  print,
  validate,
  type DocumentNode,
  type ExecutionResult,
  type FieldNode,
  type GraphQLSchema,
  type OperationDefinitionNode,
} from 'graphql';
import { useServer } from 'graphql-ws/use/ws';
import { isDeepStrictEqual } from 'node:util';
import type { Server } from 'node:http';
import { Counter, Gauge, type Registry } from 'prom-client';
import { WebSocketServer } from 'ws';
import { ErrorCode } from '@lib/errors.js';
import type { Identity } from '@lib/identity.js';
import type { Logger } from '@lib/logger.js';
import { requestIdFrom } from '@lib/request-id.js';
import type { TaskEvent, TaskEventStream } from '@lib/tasks/events.js';
import { AuthError, KeySourceError, type Authenticator } from './auth.js';
import type { RateLimiter } from './rate-limit.js';
import type { RouterContext } from './context.js';
import { createAnswerStreams, type AnswerStream, type AnswerStreamDeps } from './answer-stream.js';

/**
 * GraphQL subscriptions over graphql-ws, served by the router itself (the
 * Apollo gateway cannot execute them). Each subscription listens to the task
 * event stream and, for every event that concerns it, runs the equivalent
 * query through the gateway with the subscriber's identity, so its fields are
 * resolved across subgraphs exactly as a query would be.
 *
 * The listener is registered before the first state is read, so an event that
 * lands between the two is not lost; repeated or late events only re-read the
 * current state, and unchanged results are not sent twice.
 */
const TERMINAL = new Set(['COMPLETED', 'FAILED', 'CANCELLED']);
/** Errors that end a subscription; any other error is retried. */
const FINAL_CODES = new Set(['FORBIDDEN', 'NOT_FOUND', 'UNAUTHENTICATED', 'BAD_USER_INPUT']);
const RETRY_MS = 1000;
const STATUS_ALIAS = '__routerTaskStatus';
const TASK_ID_VAR = '__routerTaskId';

export interface SubscriptionLimits {
  maxConnectionsPerUser: number;
  maxSubscriptionsPerConnection: number;
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
}

interface ConnectionState {
  identity?: Identity;
  requestId: string;
  log: Logger;
  sessions: Map<string, Session | AnswerStream>;
  expiry?: NodeJS.Timeout;
}

/** One live subscription: its event filter, its pending task ids, its query. */
class Session {
  /** Task id -> id of the newest event about it not yet handled. */
  private pending = new Map<string, string>();
  private wake: (() => void) | undefined;
  private closed = false;
  private readonly unsubscribe: () => void;
  private last = new Map<string, unknown>();

  constructor(
    events: TaskEventStream,
    private readonly filter: (event: TaskEvent) => boolean,
  ) {
    this.unsubscribe = events.on((event, id) => {
      if (!this.closed && this.filter(event)) this.push(event.taskId, id);
    });
  }

  push(taskId: string, eventId: string) {
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

  close() {
    this.closed = true;
    this.unsubscribe();
    this.wake?.();
  }
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
type Result = { data?: Record<string, unknown> | null; errors?: readonly { message: string; extensions?: Record<string, unknown> }[] };

const refuse = (message: string, code: string = ErrorCode.BAD_USER_INPUT) => [new GraphQLError(message, { extensions: { code } })];

export function startSubscriptions(deps: SubscriptionDeps) {
  const { log, apollo, events, limits } = deps;
  const open = new Gauge({ name: 'subscriptions_open', help: 'Open GraphQL subscriptions', registers: [deps.registry] });
  const sockets = new Gauge({ name: 'websocket_connections_open', help: 'Open graphql-ws connections', registers: [deps.registry] });
  const messages = new Counter({ name: 'subscription_messages_total', help: 'Messages sent to subscribers', registers: [deps.registry] });
  const connectionsPerUser = new Map<string, number>();
  const answerStreams = createAnswerStreams(deps.answers);

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
          // The connection lives no longer than its token.
          const expiry = setTimeout(
            () => ctx.extra.socket.close(4401, 'Token expired'),
            Math.max(0, identity.expiresAt * 1000 - Date.now()),
          );
          expiry.unref();
          ctx.extra.state = { identity, requestId, log: connLog.child({ userId: identity.userId }), sessions: new Map(), expiry };
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
        if (state.sessions.size >= limits.maxSubscriptionsPerConnection) {
          return refuse(`At most ${limits.maxSubscriptionsPerConnection} subscriptions per connection`, ErrorCode.RATE_LIMITED);
        }
        const decision = await deps.rateLimiter.consume(state.identity);
        if (!decision.allowed) return refuse(`Too many requests; retry in ${decision.retryAfterS} s`, ErrorCode.RATE_LIMITED);
        let document: DocumentNode;
        try {
          document = parse(payload.query, { maxTokens: 2000 });
        } catch (err) {
          return [err as GraphQLError];
        }
        const errors = validate(schema, document);
        if (errors.length) return errors;
        const operation = getOperationAST(document, payload.operationName);
        if (!operation) return refuse('No operation, or several without an operationName');
        if (operation.operation !== 'subscription') return refuse('Send queries and mutations over HTTP POST to this URL');
        const [field, ...more] = operation.selectionSet.selections;
        if (!field || more.length || field.kind !== Kind.FIELD) return refuse('Subscribe to exactly one field');
        const variables = payload.variables ?? {};
        const identity = state.identity;
        if (field.name.value === 'answerStream') {
          const socket = ctx.extra.socket;
          const answer = await answerStreams.start({
            schema,
            document,
            operation,
            field,
            variables,
            run: (query, vars, shareKey) => (shareKey ? runShared(state, query, print(query), vars, shareKey) : run(state, query, vars)),
            log: state.log,
            isOpen: () => socket.readyState === socket.OPEN,
            onMessage: () => messages.inc(),
          });
          if (Array.isArray(answer)) return answer;
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
          const taskId =
            idArg?.kind === Kind.VARIABLE ? variables[idArg.name.value] : idArg?.kind === Kind.STRING ? idArg.value : undefined;
          if (typeof taskId !== 'string') return refuse('taskUpdated needs an id');
          session = new Session(events, (e) => e.taskId === taskId);
          first = taskId;
        } else if (field.name.value === 'myTaskUpdated') {
          session = new Session(events, (e) => e.ownerId === identity.userId);
        } else {
          return refuse(`Unknown subscription field ${field.name.value}`);
        }

        // The current state, read after the listener is in place; a refusal here refuses the subscription.
        const snapshot = first ? await run(state, query, variables) : undefined;
        if (snapshot?.errors?.length) {
          session.close();
          return snapshot.errors.map((e) => new GraphQLError(e.message, { extensions: e.extensions ?? {} }));
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
          if (result.errors?.length || !data)
            return { message: { errors: result.errors ?? [] } as unknown as ExecutionResult, status: undefined, fresh: true };
          const { [STATUS_ALIAS]: status, ...fields } = data;
          return {
            message: { data: { [responseKey]: fields } } as ExecutionResult,
            status: status as string,
            fresh: session.changed(taskId, fields),
          };
        };
        return (async function* () {
          try {
            if (snapshot && first) {
              const out = shape(snapshot, first);
              messages.inc();
              yield out.message;
              if (once && (out.status === undefined || TERMINAL.has(out.status))) return;
            }
            for await (const { taskId, eventId } of session.changes()) {
              const result = await runShared(state, query, queryKey, { ...variables, [TASK_ID_VAR]: taskId }, eventId);
              const denied = result.errors?.some((e) => FINAL_CODES.has(String(e.extensions?.['code'])));
              if (result.errors?.length && !denied) {
                // A passing failure (a subgraph restarting, a network blip) must not end the stream: read again soon.
                state.log.warn({ taskId, errors: result.errors.map((e) => e.message) }, 'subscription refresh failed; retrying');
                setTimeout(() => session.push(taskId, `${eventId}-retry-${Date.now()}`), RETRY_MS).unref();
                continue;
              }
              const out = shape(result, taskId);
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
        })();
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
        if (state?.expiry) clearTimeout(state.expiry);
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

  return {
    /** Tells every client the server is going away (close code 1001), then stops. */
    async close() {
      await serverCleanup.dispose();
      await new Promise<void>((resolve) => wss.close(() => resolve()));
    },
  };
}
