import {
  GraphQLError,
  GraphQLObjectType,
  Kind,
  TypeInfo,
  getNamedType,
  visitWithTypeInfo,
  OperationTypeNode,
  buildASTSchema,
  defaultFieldResolver,
  executeSync,
  getArgumentValues,
  getVariableValues,
  parse,
  printSchema,
  visit,
  type ASTNode,
  type DirectiveNode,
  type DocumentNode,
  type ExecutionResult,
  type FieldNode,
  type FragmentDefinitionNode,
  type GraphQLFieldResolver,
  type GraphQLSchema,
  type OperationDefinitionNode,
  type SelectionNode,
  type SelectionSetNode,
  type VariableDefinitionNode,
} from 'graphql';
import { messageCitations, messageError, messageUsage, ROW_FIELDS, type MessageRow } from '@lib/answers/message-view.js';
import { textOf, type AnswerHub, type AnswerStart, type AnswerStreamEvent } from '@lib/answers/stream.js';
import { ErrorCode } from '@lib/errors.js';
import type { Logger } from '@lib/logger.js';

/**
 * `answerStream(messageId)`: an answer as the worker writes it, served by the router.
 *
 * The text travels through Redis (lib/answers/stream.ts): every event is appended to the
 * answer's stream and announced on its channel. A subscription listens on the channel first,
 * then reads the stream (the text so far), and meanwhile reads the message through the gateway
 * with the subscriber's identity (which also checks they may see it). It sends a SNAPSHOT, then
 * every live event whose sequence number follows the last one sent, in order, then DONE with
 * the message read again once it is final. Live events that were already in the history are
 * skipped, early ones wait for the ones before them, and a gap that never fills (an event lost
 * by its publisher) is resolved from the stream. While the answer is being written, the
 * message's status is re-read every `recheckMs`: a final status ends the stream even if its
 * `done` event never comes (a worker that died, a sweeper that failed the message).
 *
 * The final read is skipped when the `done` event carries the final row (the worker sends it) and
 * the client asked only for what the row answers (lib/answers/message-view.ts): the same query is
 * then executed against the row, with the chat subgraph's own field mappings, in this process.
 *
 * Each event is shaped exactly as the client asked: the client's own document is executed
 * against (a resolver-free copy of) the supergraph's API schema, with the event as root value
 * and the message as the gateway returned it (keyed by the client's aliases).
 */

/** Errors that end a stream, or refuse it; any other error is retried. */
const FINAL_CODES = new Set(['FORBIDDEN', 'NOT_FOUND', 'UNAUTHENTICATED', 'BAD_USER_INPUT', 'GRAPHQL_VALIDATION_FAILED']);
const FINAL_STATUSES = new Set(['COMPLETE', 'FAILED', 'CANCELLED']);
const ID_VAR = '__routerMessageId';
const ROUTER_KEY = '__routerMessage';
const STATUS_KEY = '__routerStatus';
const CONTENT_KEY = '__routerContent';
/** Reads of a final message that failed or still said GENERATING are retried this many times quickly, then at `recheckMs`. */
const QUICK_RETRIES = 3;

const STATUS_QUERY = parse(
  `query AnswerStreamStatus($${ID_VAR}: ID!) { ${ROUTER_KEY}: message(id: $${ID_VAR}) { ${STATUS_KEY}: status } }`,
);

export type AnswerEventType = 'SNAPSHOT' | 'DELTA' | 'RESET' | 'DONE';

/** A result as Apollo's executeOperation gives it (errors already formatted). */
export interface GatewayResult {
  data?: Record<string, unknown> | null;
  errors?: readonly { message: string; path?: readonly (string | number)[]; extensions?: Record<string, unknown> }[];
}

/** Runs a query through the gateway as the subscriber. `shareKey`: reads with the same key may share one result. */
export type RunQuery = (query: DocumentNode, variables: Record<string, unknown>, shareKey?: string) => Promise<GatewayResult>;

export interface AnswerStreamDeps {
  hub: Pick<AnswerHub, 'listen'> & Partial<Pick<AnswerHub, 'onReconnect'>>;
  /** Every event of the answer so far, in order (`readAnswerHistory`). */
  readHistory: (messageId: string) => Promise<AnswerStreamEvent[]>;
  /**
   * The same and the row recorded as the answer was created (`readAnswerStart`), read as a
   * subscription starts. Without it (or without a row) the message is read through the gateway.
   */
  readStart?: (messageId: string) => Promise<AnswerStart>;
  /** How often the message's status is re-read while it is being written. */
  recheckMs: number;
  /** Delay before a read that failed in passing is tried again. */
  retryMs?: number;
  /** How long events wait behind a missing one before the stream is read to fill the gap. */
  gapMs?: number;
  /** Called for each final message: shaped from the done event's row, or read through the gateway (metrics). */
  onFinalRead?: (source: 'event' | 'gateway') => void;
  /** Called for each subscription started: its first message shaped from a row in the stream, or read through the gateway (metrics). */
  onStartRead?: (source: 'row' | 'gateway') => void;
}

export interface AnswerStreamRequest {
  /** The API schema the document was validated against. */
  schema: GraphQLSchema;
  document: DocumentNode;
  operation: OperationDefinitionNode;
  /** The `answerStream` field of the operation. */
  field: FieldNode;
  variables: Record<string, unknown>;
  run: RunQuery;
  /**
   * The subscriber's user id. A row in the answer's stream answers the first read only when it is
   * theirs (the rule the chat subgraph applies to everyone but admins, who are read through the gateway).
   */
  viewerId?: string;
  log: Logger;
  /** False once the client's connection has closed (checked after every wait while starting). */
  isOpen: () => boolean;
  /** Called for every message handed out (for metrics). */
  onMessage?: () => void;
}

export interface AnswerStream {
  readonly messageId: string;
  /**
   * The messages to send. Ending it early (`return`, as graphql-ws does when the client
   * completes) stops at once, even while the stream waits for an event.
   */
  results(): AsyncIterableIterator<ExecutionResult> & { return(): Promise<IteratorResult<ExecutionResult>> };
  /** Stops listening and forgets every timer; idempotent. */
  close(): void;
}

const refuse = (message: string, code: string) => [new GraphQLError(message, { extensions: { code } })];

// ---------------------------------------------------------------------------
// The queries run through the gateway

export interface AnswerStreamPlan {
  messageId: string;
  /** The answerStream field's response key in the client's result. */
  responseKey: string;
  /** The message with the client's selections (one root field per response key) and the router's status and content. */
  query: DocumentNode;
  variables: Record<string, unknown>;
  /** The response key under which the router's status and content come back. */
  routerKey: string;
  /** Only the status, for rechecks. */
  statusQuery: DocumentNode;
  statusVariables: Record<string, unknown>;
  /** The client's operation, for shaping events. */
  client: { schema: GraphQLSchema; document: DocumentNode; operationName: string | undefined; variables: Record<string, unknown> };
  /** True when `query` asks only for what a Message row answers: a done event's row can answer it. */
  fromRow: boolean;
}

interface FoundMessage {
  node: FieldNode;
  /** Directives of the fragments the field sits in, outermost first (only those that have some). */
  conditions: (readonly DirectiveNode[])[];
}

const name = (value: string) => ({ kind: Kind.NAME, value }) as const;
const aliased = (alias: string, field: string): FieldNode => ({ kind: Kind.FIELD, alias: name(alias), name: name(field) });
const idArgument = {
  kind: Kind.ARGUMENT,
  name: name('id'),
  value: { kind: Kind.VARIABLE, name: name(ID_VAR) },
} as const;

/** Every `message` field of the answerStream selection, looking through fragments on AnswerEvent. */
function findMessageFields(
  selectionSet: SelectionSetNode | undefined,
  fragments: Map<string, FragmentDefinitionNode>,
  conditions: (readonly DirectiveNode[])[] = [],
  out: FoundMessage[] = [],
): FoundMessage[] {
  for (const selection of selectionSet?.selections ?? []) {
    if (selection.kind === Kind.FIELD) {
      if (selection.name.value === 'message') out.push({ node: selection, conditions });
    } else {
      const inner = selection.kind === Kind.INLINE_FRAGMENT ? selection.selectionSet : fragments.get(selection.name.value)?.selectionSet;
      const more = selection.directives?.length ? [...conditions, selection.directives] : conditions;
      findMessageFields(inner, fragments, more, out); // validation has ruled out fragment cycles
    }
  }
  return out;
}

/** The fragments a selection uses, directly or through other fragments. */
function usedFragments(selectionSet: SelectionSetNode, fragments: Map<string, FragmentDefinitionNode>) {
  const used = new Map<string, FragmentDefinitionNode>();
  const walk = (set: SelectionSetNode | undefined) => {
    for (const selection of set?.selections ?? []) {
      if (selection.kind === Kind.FRAGMENT_SPREAD) {
        const def = fragments.get(selection.name.value);
        if (def && !used.has(def.name.value)) {
          used.set(def.name.value, def);
          walk(def.selectionSet);
        }
      } else walk(selection.selectionSet);
    }
  };
  walk(selectionSet);
  return [...used.values()];
}

function usedVariables(nodes: readonly ASTNode[]) {
  const names = new Set<string>();
  for (const node of nodes) visit(node, { Variable: (v) => void names.add(v.name.value) });
  return names;
}

/**
 * Reads the message id and turns the client's `answerStream { ... message { sel } }` into
 * `query { <key>: message(id: $id) { sel } ... }`: one root field per response key the client
 * gave `message`, under the same fragments' conditions, with the router's status and content
 * added to an unconditional one (or to a field of their own). Only the client's variables and
 * fragments that the query uses are kept: the gateway refuses unused ones.
 */
export function planAnswerStream(
  schema: GraphQLSchema,
  document: DocumentNode,
  operation: OperationDefinitionNode,
  field: FieldNode,
  variables: Record<string, unknown>,
): AnswerStreamPlan | GraphQLError[] {
  const coerced = getVariableValues(schema, operation.variableDefinitions ?? [], variables, { maxErrors: 10 });
  if (coerced.errors) {
    return coerced.errors.map(
      (e) => new GraphQLError(e.message, { nodes: e.nodes ?? null, extensions: { code: ErrorCode.BAD_USER_INPUT } }),
    );
  }
  const fieldDef = schema.getSubscriptionType()?.getFields()['answerStream'];
  if (!fieldDef) return refuse('This supergraph has no answerStream', ErrorCode.SERVICE_UNAVAILABLE);
  const args = getArgumentValues(fieldDef, field, coerced.coerced);
  const raw = args['messageId'];
  if (typeof raw !== 'string' && typeof raw !== 'number') return refuse('answerStream needs a messageId', ErrorCode.BAD_USER_INPUT);
  const messageId = String(raw);

  const fragments = new Map<string, FragmentDefinitionNode>();
  for (const def of document.definitions) if (def.kind === Kind.FRAGMENT_DEFINITION) fragments.set(def.name.value, def);

  const found = findMessageFields(field.selectionSet, fragments);
  const routerFields: FieldNode[] = [aliased(STATUS_KEY, 'status'), aliased(CONTENT_KEY, 'content')];
  const carrier = found.find((f) => f.conditions.length === 0 && !f.node.directives?.length);
  const selections: SelectionNode[] = found.map((f) => {
    let selection: SelectionNode = {
      ...f.node,
      arguments: [idArgument],
      ...(f === carrier
        ? { selectionSet: { kind: Kind.SELECTION_SET, selections: [...(f.node.selectionSet?.selections ?? []), ...routerFields] } }
        : {}),
    };
    // The fragments' conditions, kept as inline fragments on Query (no type condition).
    for (const directives of [...f.conditions].reverse()) {
      selection = { kind: Kind.INLINE_FRAGMENT, directives, selectionSet: { kind: Kind.SELECTION_SET, selections: [selection] } };
    }
    return selection;
  });
  if (!carrier) {
    selections.push({
      ...aliased(ROUTER_KEY, 'message'),
      arguments: [idArgument],
      selectionSet: { kind: Kind.SELECTION_SET, selections: routerFields },
    });
  }
  const selectionSet: SelectionSetNode = { kind: Kind.SELECTION_SET, selections };
  const fragmentDefs = usedFragments(selectionSet, fragments);
  const varNames = usedVariables([selectionSet, ...fragmentDefs]);
  varNames.delete(ID_VAR);
  const clientDefs = (operation.variableDefinitions ?? []).filter((d) => varNames.has(d.variable.name.value));
  const idDef: VariableDefinitionNode = {
    kind: Kind.VARIABLE_DEFINITION,
    variable: { kind: Kind.VARIABLE, name: name(ID_VAR) },
    type: { kind: Kind.NON_NULL_TYPE, type: { kind: Kind.NAMED_TYPE, name: name('ID') } },
  };
  const query: OperationDefinitionNode = {
    kind: Kind.OPERATION_DEFINITION,
    operation: OperationTypeNode.QUERY,
    ...(operation.name ? { name: operation.name } : {}),
    variableDefinitions: [...clientDefs, idDef],
    selectionSet,
  };
  const queryVariables: Record<string, unknown> = { [ID_VAR]: messageId };
  for (const def of clientDefs) {
    const key = def.variable.name.value;
    if (key in variables) queryVariables[key] = variables[key];
  }
  return {
    messageId,
    responseKey: field.alias?.value ?? field.name.value,
    query: { kind: Kind.DOCUMENT, definitions: [query, ...fragmentDefs] },
    variables: queryVariables,
    routerKey: carrier ? (carrier.node.alias?.value ?? carrier.node.name.value) : ROUTER_KEY,
    statusQuery: STATUS_QUERY,
    statusVariables: { [ID_VAR]: messageId },
    client: { schema, document, operationName: operation.name?.value, variables },
    fromRow: rowAnswers(schema, { kind: Kind.DOCUMENT, definitions: [query, ...fragmentDefs] }),
  };
}

// ---------------------------------------------------------------------------
// A final message from the done event's row

/** Whether every field the query asks for (fragments included, whatever their conditions) is one a Message row answers. */
export function rowAnswers(schema: GraphQLSchema, query: DocumentNode): boolean {
  const typeInfo = new TypeInfo(schema);
  let answerable = true;
  visit(
    query,
    visitWithTypeInfo(typeInfo, {
      Field(node) {
        if (node.name.value === '__typename') return;
        const parent = typeInfo.getParentType();
        const allowed = parent?.name === 'Query' ? new Set(['message']) : ROW_FIELDS[parent?.name ?? ''];
        if (!allowed?.has(node.name.value) || !typeInfo.getFieldDef()) answerable = false;
      },
    }),
  );
  return answerable;
}

const ROW = Symbol('row');
/** The API schema with resolvers that answer `message(id)` from a row, as the chat subgraph does. One per supergraph version. */
const rowSchemas = new WeakMap<GraphQLSchema, GraphQLSchema>();
function rowSchema(schema: GraphQLSchema) {
  let copy = rowSchemas.get(schema);
  if (!copy) {
    copy = buildASTSchema(parse(printSchema(schema)), { assumeValidSDL: true });
    const field = (type: string, name: string) => (copy!.getType(type) as GraphQLObjectType | undefined)?.getFields()[name];
    const message = field('Query', 'message');
    if (message) {
      message.resolve = (root: { [ROW]: Record<string, unknown> }, args: { id?: unknown }) =>
        String(args.id) === root[ROW]['id'] ? root[ROW] : null;
    }
    const computed: Record<string, (row: MessageRow) => unknown> = {
      citations: messageCitations,
      usage: messageUsage,
      error: messageError,
    };
    for (const [name, resolve] of Object.entries(computed)) {
      const f = field('Message', name);
      if (f) f.resolve = (row: MessageRow) => resolve(row);
    }
    rowSchemas.set(schema, copy);
  }
  return copy;
}

/** The result the gateway would give `plan.query`, from the final row; undefined if it cannot (then read it). */
function resultFromRow(plan: AnswerStreamPlan, row: Record<string, unknown>): GatewayResult | undefined {
  if (!plan.fromRow) return undefined;
  const schema = rowSchema(plan.client.schema);
  if (getNamedType(schema.getQueryType()?.getFields()['message']?.type)?.name !== 'Message') return undefined;
  const result = executeSync({ schema, document: plan.query, rootValue: { [ROW]: row }, variableValues: plan.variables });
  return result.errors?.length ? undefined : { data: result.data as Record<string, unknown> };
}

/**
 * How long after its creation the recorded row may stand for the message at a subscription's
 * start. The asker subscribes within milliseconds of askTutor's answer; a later start (a reload, a
 * second tab) reads through the gateway, which knows what happened since (a cancellation whose
 * `done` was never published, a deleted conversation).
 */
export const RECORDED_ROW_FRESH_MS = 5000;

/**
 * The first read of a subscription from the row recorded in the answer's stream as it was created,
 * when that can answer it: only for the message's own asker, only while the answer is being
 * written (no `done` in the history: a finished, cancelled or deleted answer is read through the
 * gateway) and only while the row is fresh (above).
 */
function firstReadFromRow(
  plan: AnswerStreamPlan,
  history: readonly AnswerStreamEvent[],
  row: Record<string, unknown> | undefined,
  viewerId: string,
  now = Date.now(),
): GatewayResult | undefined {
  if (!row || row['id'] !== plan.messageId || row['userId'] !== viewerId || row['status'] !== 'GENERATING') return undefined;
  if (history.some((e) => e.type === 'done')) return undefined;
  const age = now - Date.parse(String(row['createdAt']));
  if (!(age >= -RECORDED_ROW_FRESH_MS && age <= RECORDED_ROW_FRESH_MS)) return undefined;
  return resultFromRow(plan, row);
}

// ---------------------------------------------------------------------------
// Shaping an event as the client asked

/**
 * The schema events are shaped with: a copy of the API schema without resolvers. Apollo Server
 * wraps every field of the gateway's schema in place (for its willResolveField hooks), and those
 * wrappers ignore `execute`'s fieldResolver. One copy per supergraph version.
 */
const shapingSchemas = new WeakMap<GraphQLSchema, GraphQLSchema>();
function shapingSchema(schema: GraphQLSchema) {
  let copy = shapingSchemas.get(schema);
  if (!copy) {
    copy = buildASTSchema(parse(printSchema(schema)), { assumeValidSDL: true });
    shapingSchemas.set(schema, copy);
  }
  return copy;
}

/** Objects that came from the gateway: their fields are keyed by the client's response keys. */
const fromGateway = new WeakSet<object>();
const MESSAGE = Symbol('message');

function markFromGateway(value: unknown) {
  if (value === null || typeof value !== 'object' || fromGateway.has(value)) return;
  fromGateway.add(value);
  for (const item of Array.isArray(value) ? value : Object.values(value)) markFromGateway(item);
}

const fieldResolver: GraphQLFieldResolver<unknown, unknown> = (source, args, context, info) => {
  if (source !== null && typeof source === 'object') {
    if (fromGateway.has(source)) return (source as Record<string, unknown>)[String(info.path.key)];
    if (MESSAGE in source && info.fieldName === 'message') {
      const message = (source as { [MESSAGE]: Record<string, unknown> | null })[MESSAGE];
      return message?.[String(info.path.key)] ?? null;
    }
  }
  return defaultFieldResolver(source, args, context, info);
};

export interface AnswerEventValue {
  type: AnswerEventType;
  seq: number;
  text: string;
  /** The gateway's data for the message query (keyed by the client's aliases), or null. */
  message: Record<string, unknown> | null;
}

/**
 * The client's shape of one event: its document executed with the event as root value. The
 * gateway's errors about the message (a subgraph that did not answer for some field) follow,
 * at the path the client sees.
 */
export function shapeAnswerEvent(plan: Pick<AnswerStreamPlan, 'client' | 'responseKey'>, event: AnswerEventValue, gateway?: GatewayResult) {
  markFromGateway(event.message);
  const root = { answerStream: { type: event.type, seq: event.seq, text: event.text, [MESSAGE]: event.message } };
  const result = executeSync({
    schema: shapingSchema(plan.client.schema),
    document: plan.client.document,
    operationName: plan.client.operationName ?? null,
    rootValue: root,
    variableValues: plan.client.variables,
    fieldResolver,
  });
  const passed = (gateway?.errors ?? [])
    .filter((e) => !e.path || (typeof e.path[0] === 'string' && !e.path[0].startsWith('__router')))
    .map((e) => new GraphQLError(e.message, { path: e.path ? [plan.responseKey, ...e.path] : null, extensions: e.extensions ?? {} }));
  if (event.message && passed.length) return { ...result, errors: [...(result.errors ?? []), ...passed] } as ExecutionResult;
  return result as ExecutionResult;
}

// ---------------------------------------------------------------------------
// Order

/**
 * Puts events in sequence order: each is handed out once, after the one before it. Events
 * already sent (or seen in the history) are dropped; early ones wait.
 */
export class AnswerSequencer {
  private pending = new Map<number, AnswerStreamEvent>();

  constructor(private last = 0) {}

  /** The sequence number of the last event handed out. */
  get lastSeq() {
    return this.last;
  }

  /** Keeps an event for `next`; false when it was sent already or is already waiting. */
  accept(event: AnswerStreamEvent): boolean {
    if (event.seq <= this.last || this.pending.has(event.seq)) return false;
    this.pending.set(event.seq, event);
    return true;
  }

  /** Everything up to `seq` counts as sent (the history read at the start). */
  skipTo(seq: number) {
    if (seq <= this.last) return;
    this.last = seq;
    for (const s of this.pending.keys()) if (s <= seq) this.pending.delete(s);
  }

  /** The next event in order, if it has arrived. */
  next(): AnswerStreamEvent | undefined {
    const event = this.pending.get(this.last + 1);
    if (!event) return undefined;
    this.pending.delete(event.seq);
    this.last = event.seq;
    return event;
  }

  /** True when events wait behind one that has not arrived. */
  get stuck() {
    return this.pending.size > 0 && !this.pending.has(this.last + 1);
  }

  /** Gives up on the missing events before the first waiting one; returns the sequence numbers skipped. */
  skipGap(): number[] {
    if (!this.stuck) return [];
    const first = Math.min(...this.pending.keys());
    const skipped = Array.from({ length: first - this.last - 1 }, (_, i) => this.last + 1 + i);
    this.last = first - 1;
    return skipped;
  }
}

// ---------------------------------------------------------------------------
// One subscription

type Read =
  | { kind: 'message'; data: Record<string, unknown>; status: string; content: string }
  | { kind: 'denied'; errors: GraphQLError[] }
  | { kind: 'failed'; errors: string[] };

const toErrors = (errors: NonNullable<GatewayResult['errors']>) =>
  errors.map((e) => new GraphQLError(e.message, { extensions: e.extensions ?? {} }));

/**
 * What a read of the message says: the message (perhaps with errors on some of its fields,
 * passed on to the client), a refusal (the message itself denied or gone, or a query the
 * gateway no longer accepts), or a passing failure.
 */
function readMessage(result: GatewayResult, routerKey: string): Read {
  const errors = result.errors ?? [];
  const message = result.data?.[routerKey] as Record<string, unknown> | null | undefined;
  const status = message?.[STATUS_KEY];
  if (message && typeof status === 'string') {
    const content = message[CONTENT_KEY];
    return { kind: 'message', data: result.data!, status, content: typeof content === 'string' ? content : '' };
  }
  const denied = errors.filter((e) => FINAL_CODES.has(String(e.extensions?.['code'])) && (e.path?.length ?? 0) <= 1);
  if (denied.length) return { kind: 'denied', errors: toErrors(denied) };
  if (!errors.length) return { kind: 'denied', errors: refuse('Message not found', ErrorCode.NOT_FOUND) };
  return { kind: 'failed', errors: errors.map((e) => e.message) };
}

class AnswerSession implements AnswerStream {
  readonly messageId: string;
  readonly seq = new AnswerSequencer();
  private closed = false;
  private unlisten: (() => void) | undefined;
  private wakeUp: (() => void) | undefined;
  private dirty = false;
  private timers = new Set<NodeJS.Timeout>();
  private gapTimer: NodeJS.Timeout | undefined;
  private recheckDue = false;
  private gapDue = false;
  /** The hub's connection came back: events may have been missed while it was away. */
  private refillDue = false;
  /** Set once the answer is known to be final (a done event, a final status): read the message and send DONE. */
  private finishing = false;
  private finishDue = false;
  private finishAttempts = 0;
  private doneSeq: number | undefined;
  /** The final row the done event carried, if it did. */
  private finalRow: Record<string, unknown> | undefined;
  private first: ExecutionResult[] = [];
  private final = false;
  private readonly onClosed = new Set<() => void>();
  private readonly retryMs: number;
  private readonly gapMs: number;

  constructor(
    private readonly deps: AnswerStreamDeps,
    private readonly plan: AnswerStreamPlan,
    private readonly run: RunQuery,
    private readonly log: Logger,
    private readonly onMessage: () => void,
  ) {
    this.messageId = plan.messageId;
    this.retryMs = deps.retryMs ?? 1000;
    this.gapMs = deps.gapMs ?? 1000;
  }

  setUnlisten(unlisten: () => void) {
    if (this.closed) unlisten();
    else this.unlisten = unlisten;
  }

  /** Events may have been published while the hub could not hear them: read the history again. */
  historyMayBeMissing() {
    if (this.closed) return;
    this.refillDue = true;
    this.wake();
  }

  /** A live event from the hub. */
  accept(event: AnswerStreamEvent) {
    if (this.closed) return;
    if (this.seq.accept(event)) this.wake();
  }

  /** The state when the subscription starts: the history read after listening, the message read after that. */
  begin(history: readonly AnswerStreamEvent[], snapshot: Extract<Read, { kind: 'message' }>, result: GatewayResult) {
    const lastSeq = history.reduce((max, e) => Math.max(max, e.seq), 0);
    const historyDone = history.find((e) => e.type === 'done');
    this.seq.skipTo(lastSeq);
    if (FINAL_STATUSES.has(snapshot.status)) {
      // Already written (its stream may have expired long ago): the message says it all.
      this.final = true;
      this.first = [
        this.shape({ type: 'SNAPSHOT', seq: lastSeq, text: snapshot.content, message: snapshot.data }, result),
        this.shape({ type: 'DONE', seq: historyDone?.seq ?? lastSeq, text: '', message: snapshot.data }, result),
      ];
      return;
    }
    this.first = [this.shape({ type: 'SNAPSHOT', seq: lastSeq, text: textOf(history), message: snapshot.data }, result)];
    if (historyDone) {
      this.finalRow = historyDone.message;
      this.startFinishing(historyDone.seq);
    }
    this.recheck(this.deps.recheckMs);
  }

  /**
   * The next recheck, `ms` give or take a quarter: streams that started together (a class asking at
   * once; they start in a few milliseconds now that their first message needs no read) must not all
   * read through the gateway in the same instant (200 at once held every stream's deltas up to 85 ms).
   */
  private recheck(ms: number) {
    this.after(ms * (0.75 + Math.random() * 0.5), () => (this.recheckDue = true));
  }

  results() {
    const inner = this.produce();
    let ended = false;
    const stopped = new Promise<IteratorResult<ExecutionResult>>((resolve) =>
      this.onClosed.add(() => resolve({ done: true, value: undefined })),
    );
    const iterator = {
      next: async (): Promise<IteratorResult<ExecutionResult>> => {
        if (ended) return { done: true, value: undefined };
        try {
          const step = await Promise.race([inner.next(), stopped]);
          if (step.done) {
            ended = true;
            this.close();
          } else this.onMessage();
          return step;
        } catch (err) {
          ended = true;
          this.close();
          throw err;
        }
      },
      return: async (): Promise<IteratorResult<ExecutionResult>> => {
        ended = true;
        this.close();
        return { done: true, value: undefined };
      },
      [Symbol.asyncIterator]() {
        return iterator;
      },
    };
    return iterator;
  }

  close() {
    if (this.closed) return;
    this.closed = true;
    this.unlisten?.();
    this.unlisten = undefined;
    for (const timer of this.timers) clearTimeout(timer);
    this.timers.clear();
    for (const fn of this.onClosed) fn();
    this.wake();
  }

  private wake() {
    this.dirty = true;
    const wake = this.wakeUp;
    this.wakeUp = undefined;
    wake?.();
  }

  private async wait() {
    if (!this.dirty) await new Promise<void>((resolve) => (this.wakeUp = resolve));
    this.dirty = false;
  }

  private after(ms: number, fn: () => void) {
    if (this.closed) return undefined;
    const timer = setTimeout(
      () => {
        this.timers.delete(timer);
        fn();
        this.wake();
      },
      Math.max(1, ms),
    );
    timer.unref();
    this.timers.add(timer);
    return timer;
  }

  private shape(event: AnswerEventValue, result?: GatewayResult) {
    return shapeAnswerEvent(this.plan, event, result);
  }

  private startFinishing(doneSeq?: number) {
    if (doneSeq !== undefined) this.doneSeq = doneSeq;
    if (this.finishing) return;
    this.finishing = true;
    this.finishDue = true;
  }

  private ended(errors: GraphQLError[]): never {
    this.log.info({ messageId: this.messageId, errors: errors.map((e) => e.message) }, 'answer stream ended: message unavailable');
    // Thrown, graphql-ws sends it as the subscription's error (its code kept in extensions).
    throw errors[0]!;
  }

  private liveEvent(event: AnswerStreamEvent): ExecutionResult | undefined {
    if (event.type === 'done') {
      this.finalRow = event.message;
      this.startFinishing(event.seq);
      return undefined;
    }
    if (event.type === 'delta') return this.shape({ type: 'DELTA', seq: event.seq, text: event.text, message: null });
    return this.shape({ type: 'RESET', seq: event.seq, text: '', message: null });
  }

  private async *produce(): AsyncGenerator<ExecutionResult> {
    for (const result of this.first) yield result;
    this.first = [];
    if (this.final || this.closed) return;

    while (!this.closed) {
      // Everything that is next in order, until the answer is done.
      while (!this.finishing && !this.closed) {
        const event = this.seq.next();
        if (!event) break;
        const out = this.liveEvent(event);
        if (out) yield out;
      }
      if (this.closed) return;

      if (this.finishing && this.finishDue) {
        this.finishDue = false;
        // Tabs of one user on one answer share the read (a retry never reuses an earlier one).
        const shareKey = `done:${this.doneSeq ?? `final-${this.seq.lastSeq}`}:${this.finishAttempts}`;
        const fromRow = this.finishAttempts === 0 && this.finalRow ? resultFromRow(this.plan, this.finalRow) : undefined;
        this.deps.onFinalRead?.(fromRow ? 'event' : 'gateway');
        const result = fromRow ?? (await this.runSafely(this.plan.query, this.plan.variables, shareKey));
        if (this.closed) return;
        const read = readMessage(result, this.plan.routerKey);
        if (read.kind === 'denied') this.ended(read.errors);
        if (read.kind === 'message' && FINAL_STATUSES.has(read.status)) {
          yield this.shape({ type: 'DONE', seq: this.doneSeq ?? this.seq.lastSeq, text: '', message: read.data }, result);
          return;
        }
        this.finishAttempts += 1;
        const delay = this.finishAttempts <= QUICK_RETRIES ? this.retryMs : this.deps.recheckMs;
        this.log.warn(
          {
            messageId: this.messageId,
            status: read.kind === 'message' ? read.status : undefined,
            errors: read.kind === 'failed' ? read.errors : undefined,
            delay,
          },
          'answer stream: final message not readable yet; retrying',
        );
        this.after(delay, () => (this.finishDue = true));
        continue;
      }

      if (this.recheckDue && !this.finishing) {
        this.recheckDue = false;
        const result = await this.runSafely(this.plan.statusQuery, this.plan.statusVariables);
        if (this.closed) return;
        const read = readMessage(result, ROUTER_KEY);
        if (read.kind === 'denied') this.ended(read.errors);
        if (read.kind === 'failed') {
          this.log.warn({ messageId: this.messageId, errors: read.errors }, 'answer stream recheck failed; retrying');
          this.recheck(this.retryMs);
          continue;
        }
        if (!FINAL_STATUSES.has(read.status)) {
          this.recheck(this.deps.recheckMs);
          continue;
        }
        // Final without its done event (lost, or never sent): send what the stream holds, then DONE.
        this.log.info({ messageId: this.messageId, status: read.status }, 'answer stream: message final without a done event');
        await this.fillFromHistory();
        if (this.closed) return;
        for (;;) {
          let event = this.seq.next();
          if (!event && this.seq.skipGap().length) event = this.seq.next();
          if (!event) break;
          const out = this.liveEvent(event);
          if (out) yield out;
          if (this.closed) return;
          if (this.finishing) break;
        }
        this.startFinishing();
        continue;
      }

      if (this.refillDue) {
        this.refillDue = false;
        if (!(await this.fillFromHistory())) this.after(this.retryMs, () => (this.refillDue = true));
        if (this.closed) return;
        continue;
      }

      if (this.gapDue) {
        this.gapDue = false;
        this.gapTimer = undefined;
        if (!this.seq.stuck) continue;
        const ok = await this.fillFromHistory();
        if (this.closed) return;
        if (!ok) {
          this.gapTimer = this.after(this.gapMs, () => (this.gapDue = true));
          continue;
        }
        const skipped = this.seq.skipGap();
        if (skipped.length) this.log.warn({ messageId: this.messageId, skipped }, 'answer stream: events never published; skipped');
        continue;
      }

      if (this.seq.stuck && !this.gapTimer && !this.finishing) {
        this.gapTimer = this.after(this.gapMs, () => (this.gapDue = true));
      }
      await this.wait();
    }
  }

  /** Adds the stream's events to the pending ones; false when it could not be read. */
  private async fillFromHistory() {
    try {
      for (const event of await this.deps.readHistory(this.messageId)) this.seq.accept(event);
      return true;
    } catch (err) {
      this.log.warn({ messageId: this.messageId, err }, 'answer stream: history unreadable');
      return false;
    }
  }

  private async runSafely(query: DocumentNode, variables: Record<string, unknown>, shareKey?: string): Promise<GatewayResult> {
    try {
      return await this.run(query, variables, shareKey === undefined ? undefined : `${this.messageId}:${shareKey}`);
    } catch (err) {
      return { errors: [{ message: err instanceof Error ? err.message : String(err) }] };
    }
  }
}

// ---------------------------------------------------------------------------

/** Starts `answerStream` subscriptions: their listener, their history, their first read. */
export function createAnswerStreams(deps: AnswerStreamDeps) {
  return {
    /** The stream, or the errors that refuse the subscription. */
    async start(req: AnswerStreamRequest): Promise<AnswerStream | GraphQLError[]> {
      const plan = planAnswerStream(req.schema, req.document, req.operation, req.field, req.variables);
      if (Array.isArray(plan)) return plan;
      const log = req.log;
      const session = new AnswerSession(deps, plan, req.run, log, req.onMessage ?? (() => undefined));
      const gone = () => {
        if (req.isOpen()) return false;
        session.close();
        return true;
      };
      const closedMeanwhile = () => refuse('Connection closed', ErrorCode.BAD_USER_INPUT);

      // The message is read through the gateway meanwhile: it needs neither the listener nor the
      // history (its status only says whether the answer is already final; the text comes from the
      // history, and a `done` the read missed is in the history or arrives live). Unless a row in
      // the stream may answer instead (a query a row answers, from someone who may be its asker):
      // then the gateway is asked only if it does not, after the history (a Redis round trip later).
      const readThroughGateway = () =>
        req
          .run(plan.query, plan.variables)
          .catch((err: unknown): GatewayResult => ({ errors: [{ message: err instanceof Error ? err.message : String(err) }] }));
      const rowMayAnswer = plan.fromRow && req.viewerId !== undefined && deps.readStart !== undefined;
      let reading = rowMayAnswer ? undefined : readThroughGateway();
      // Listen first: an event published while the history is read is not lost.
      try {
        const unlisten = await deps.hub.listen(plan.messageId, (event) => session.accept(event));
        const offReconnect = deps.hub.onReconnect?.(() => session.historyMayBeMissing());
        session.setUnlisten(() => {
          unlisten();
          offReconnect?.();
        });
      } catch (err) {
        log.error({ err, messageId: plan.messageId }, 'answer stream: cannot listen');
        session.close();
        return refuse('Answers cannot be streamed right now; retry', ErrorCode.SERVICE_UNAVAILABLE);
      }
      if (gone()) return closedMeanwhile();

      let history: AnswerStreamEvent[];
      let row: Record<string, unknown> | undefined;
      try {
        if (rowMayAnswer) ({ events: history, row } = await deps.readStart!(plan.messageId));
        else history = await deps.readHistory(plan.messageId);
      } catch (err) {
        log.error({ err, messageId: plan.messageId }, 'answer stream: history unreadable');
        session.close();
        return refuse('Answers cannot be streamed right now; retry', ErrorCode.SERVICE_UNAVAILABLE);
      }
      if (gone()) return closedMeanwhile();

      const fromRow = rowMayAnswer ? firstReadFromRow(plan, history, row, req.viewerId!) : undefined;
      deps.onStartRead?.(fromRow ? 'row' : 'gateway');
      const result = fromRow ?? (await (reading ??= readThroughGateway()));
      if (gone()) return closedMeanwhile();
      const read = readMessage(result, plan.routerKey);
      if (read.kind !== 'message') {
        // As taskUpdated: a message the subscriber may not see, or one that cannot be read now, refuses it.
        session.close();
        return read.kind === 'denied'
          ? read.errors
          : result.errors?.length
            ? toErrors(result.errors)
            : refuse('Message not found', ErrorCode.NOT_FOUND);
      }
      session.begin(history, read, result);
      return session;
    },
  };
}
export type AnswerStreams = ReturnType<typeof createAnswerStreams>;
