import { HeaderMap, type ApolloServerPlugin, type BaseContext } from '@apollo/server';
import { ApolloArmor } from '@escape.tech/graphql-armor';
import {
  GraphQLError,
  Kind,
  getNamedType,
  getNullableType,
  getOperationAST,
  isCompositeType,
  isInterfaceType,
  isListType,
  isObjectType,
  parse,
  specifiedRules,
  validate,
  valueFromASTUntyped,
  type DocumentNode,
  type FieldNode,
  type FragmentDefinitionNode,
  type GraphQLCompositeType,
  type GraphQLField,
  type GraphQLFormattedError,
  type GraphQLSchema,
  type SelectionSetNode,
  type ValidationContext,
  type ValidationRule,
} from 'graphql';
import { ErrorCode } from '@lib/errors.js';
import type { RateDecision, RateRefusal } from './rate-limit.js';

/**
 * What one GraphQL operation may ask of the router, over HTTP and in a subscription:
 *
 * - its size: tokens (graphql-js's own parse limit, which Apollo Server applies while parsing),
 *   depth, aliases (`__typename` counts) and directives (graphql-armor's validation rules);
 * - its estimated cost (below): over `maxCost` it is refused, under it the rate limiter charges
 *   `round(cost / costPerPoint)` points, at least one.
 *
 * A refusal is `BAD_USER_INPUT` naming the limit: `extensions { code, limit: 'maxAliases', max: 15,
 * found: 16 }`, and it comes alone (not beside the ten "Unknown directive" errors of the same query).
 */
export interface QueryLimits {
  maxTokens: number;
  maxDepth: number;
  maxAliases: number;
  maxDirectives: number;
  maxCost: number;
  /** Cost units per rate-limit point. */
  costPerPoint: number;
}

export type LimitName = 'maxTokens' | 'maxDepth' | 'maxAliases' | 'maxDirectives' | 'maxCost';
const LIMIT_NAMES = new Set<string>(['maxTokens', 'maxDepth', 'maxAliases', 'maxDirectives', 'maxCost']);

/**
 * The cost estimate: roughly the resolver calls an operation may cause, with the expensive
 * fields weighted. graphql-armor's cost-limit rule cannot weight a field (it only knows object
 * and scalar costs, a depth factor and `first`/`last`), so this small estimator replaces it.
 *
 * - A field that returns an object (or a list of objects) costs `objectCost`; a scalar or enum
 *   field nothing (its parent already loaded it); `__typename` and introspection nothing.
 * - A list multiplies what is selected inside it by its size: its `first`/`last`/`limit`
 *   argument (a literal or a variable), else that argument's default in the schema, else
 *   `defaultListSize`. A connection's size argument (`messages(first: 50) { edges ... }`) sizes
 *   the lists directly inside it.
 * - `fieldWeights` add to particular fields (`Type.field`); every other mutation field adds
 *   `mutationWeight`.
 * - Fragments count where they are spread; `@skip`/`@include` are ignored (the estimate is an
 *   upper bound).
 */
export interface CostModel {
  objectCost: number;
  defaultListSize: number;
  sizeArguments: readonly string[];
  mutationWeight: number;
  fieldWeights: Readonly<Record<string, number>>;
}

export const COST_MODEL: CostModel = {
  objectCost: 1,
  defaultListSize: 10,
  sizeArguments: ['first', 'last', 'limit'],
  // A write: a transaction, often an event or a job.
  mutationWeight: 100,
  fieldWeights: {
    // BM25 over the course's postings, the embeddings endpoint on a cache miss, fusion.
    'Query.search': 100,
    // Stores up to 1,000,000 characters and queues a parse job.
    'Mutation.ingestDocument': 200,
    // Re-embeds every passage of a course.
    'Mutation.reindexCourse': 500,
  },
};

/**
 * Aliases the router itself adds to the queries it runs for subscriptions (subscriptions.ts,
 * answer-stream.ts): the subscription was checked as the client sent it; these do not count again.
 */
const ROUTER_ALIASES = ['__routerTaskStatus', '__routerMessage', '__routerStatus', '__routerContent', 'taskUpdated', 'myTaskUpdated'];

export function limitError(limit: LimitName, max: number, found: number | undefined, message: string): GraphQLError {
  return new GraphQLError(message, {
    extensions: { code: ErrorCode.BAD_USER_INPUT, limit, max, ...(found === undefined ? {} : { found }) },
  });
}

const isLimitError = (e: GraphQLError | GraphQLFormattedError) => LIMIT_NAMES.has(String(e.extensions?.['limit']));

/** graphql-js's own message when a document has more tokens than `maxTokens` (16.x spells it "more that"). */
const TOO_MANY_TOKENS = /^Syntax Error: Document contains more tha[nt] (\d+) tokens\. Parsing aborted\.$/;

/** The estimated cost of the operation `operationName` (or the only one) of a valid document. */
export function estimateCost(
  schema: GraphQLSchema,
  document: DocumentNode,
  operationName: string | null | undefined,
  variables: Record<string, unknown> = {},
  model: CostModel = COST_MODEL,
): number {
  const operation = getOperationAST(document, operationName);
  if (!operation) return 0;
  const root =
    operation.operation === 'query'
      ? schema.getQueryType()
      : operation.operation === 'mutation'
        ? schema.getMutationType()
        : schema.getSubscriptionType();
  if (!root) return 0;
  const mutation = schema.getMutationType();
  // Variables the request left out take their default in the operation.
  const values: Record<string, unknown> = { ...variables };
  for (const def of operation.variableDefinitions ?? []) {
    const name = def.variable.name.value;
    if (values[name] === undefined && def.defaultValue) values[name] = valueFromASTUntyped(def.defaultValue);
  }
  const fragments = new Map<string, FragmentDefinitionNode>();
  for (const def of document.definitions) if (def.kind === Kind.FRAGMENT_DEFINITION) fragments.set(def.name.value, def);
  const spreading = new Set<string>();

  const sizeOf = (node: FieldNode, def: GraphQLField<unknown, unknown>): number | undefined => {
    for (const name of model.sizeArguments) {
      const arg = node.arguments?.find((a) => a.name.value === name);
      const value = arg ? valueFromASTUntyped(arg.value, values) : def.args.find((a) => a.name === name)?.defaultValue;
      if (typeof value === 'number' && Number.isFinite(value) && value >= 0) return value;
    }
    return undefined;
  };

  /** What @skip / @include leave out is not executed, so not charged (a variable's value decides, as it will). */
  const included = (selection: SelectionSetNode['selections'][number]): boolean => {
    for (const directive of selection.directives ?? []) {
      const name = directive.name.value;
      if (name !== 'skip' && name !== 'include') continue;
      const arg = directive.arguments?.find((a) => a.name.value === 'if');
      const value = arg ? valueFromASTUntyped(arg.value, values) : undefined;
      if (typeof value !== 'boolean') continue; // invalid: validation refuses it; charge as if included
      if ((name === 'skip') === value) return false;
    }
    return true;
  };

  const selectionCost = (set: SelectionSetNode, parent: GraphQLCompositeType, hint: number | undefined): number => {
    let total = 0;
    for (const selection of set.selections) {
      if (!included(selection)) continue;
      if (selection.kind === Kind.FIELD) {
        total += fieldCost(selection, parent, hint);
      } else if (selection.kind === Kind.INLINE_FRAGMENT) {
        const type = selection.typeCondition ? schema.getType(selection.typeCondition.name.value) : parent;
        if (type && isCompositeType(type)) total += selectionCost(selection.selectionSet, type, hint);
      } else {
        const fragment = fragments.get(selection.name.value);
        if (!fragment || spreading.has(fragment.name.value)) continue;
        const type = schema.getType(fragment.typeCondition.name.value);
        if (!type || !isCompositeType(type)) continue;
        spreading.add(fragment.name.value);
        total += selectionCost(fragment.selectionSet, type, hint);
        spreading.delete(fragment.name.value);
      }
    }
    return total;
  };

  const fieldCost = (node: FieldNode, parent: GraphQLCompositeType, hint: number | undefined): number => {
    const name = node.name.value;
    if (name.startsWith('__')) return 0;
    const def = isObjectType(parent) || isInterfaceType(parent) ? parent.getFields()[name] : undefined;
    if (!def) return 0;
    const type = getNamedType(def.type);
    const list = isListType(getNullableType(def.type));
    const composite = isCompositeType(type);
    const weight = model.fieldWeights[`${parent.name}.${name}`] ?? (parent === mutation ? model.mutationWeight : 0);
    const size = sizeOf(node, def);
    const inside = composite && node.selectionSet ? selectionCost(node.selectionSet, type, list ? undefined : size) : 0;
    const count = list ? (size ?? hint ?? model.defaultListSize) : 1;
    return weight + (composite ? model.objectCost : 0) + count * inside;
  };

  return selectionCost(operation.selectionSet, root, undefined);
}

/** Per request: where its cost is recorded, and how its points are charged. */
export interface CostedContext extends BaseContext {
  /**
   * Charges the request's points to the user's rate limit: all of them in one call (one Redis round
   * trip), made once per request. Set by the router's HTTP handler only: operations the router runs
   * itself (subscriptions) are not charged again.
   */
  chargeCost?: (points: number) => Promise<RateDecision>;
  cost?: number;
  /** The rate limit's decision once the request was charged. */
  rateDecision?: RateDecision;
}

export interface QueryGuard {
  /** For Apollo Server: the parse limit, the validation rules and the plugins. */
  parseOptions: { maxTokens: number };
  validationRules: ValidationRule[];
  plugins: ApolloServerPlugin<CostedContext>[];
  /** For formatError: limit errors as BAD_USER_INPUT naming the limit (Apollo gives validation errors its own code). */
  formatError(formatted: GraphQLFormattedError): GraphQLFormattedError;
  /** For documents outside Apollo's pipeline (subscriptions): parse with the token limit. */
  parse(source: string): DocumentNode;
  /** Validation with the standard rules and the limits; a limit's error comes alone. */
  validate(schema: GraphQLSchema, document: DocumentNode): readonly GraphQLError[];
  /** The operation's cost and the points it costs, or the refusal when it is over `maxCost`. */
  price(
    schema: GraphQLSchema,
    document: DocumentNode,
    operationName: string | null | undefined,
    variables: Record<string, unknown> | undefined,
  ): { cost: number; points: number; error?: GraphQLError };
}

export interface QueryGuardOptions {
  limits: QueryLimits;
  /** Hides "Did you mean …" suggestions (graphql-armor's block-field-suggestions). */
  production: boolean;
  model?: CostModel;
  /** Called when the cost's extra points are refused (for the rate-limit metric and log). */
  onRateLimited?: (context: CostedContext, decision: RateRefusal) => void;
}

const DESCRIBE: Record<Exclude<LimitName, 'maxTokens' | 'maxCost'>, string> = {
  maxDepth: 'The query is too deep',
  maxAliases: 'The query has too many aliases',
  maxDirectives: 'The query has too many directives',
};

export function createQueryGuard({ limits, production, model = COST_MODEL, onRateLimited }: QueryGuardOptions): QueryGuard {
  const report = (limit: keyof typeof DESCRIBE, max: number) => (ctx: ValidationContext | null, err: GraphQLError) => {
    const found = Number(/found (\d+)/.exec(err.message)?.[1] ?? NaN);
    const shown = Number.isFinite(found) ? found : undefined;
    ctx?.reportError(
      limitError(limit, max, shown, `${DESCRIBE[limit]}${shown === undefined ? '' : ` (${shown})`}: at most ${max} (${limit})`),
    );
  };
  const armor = new ApolloArmor({
    // The parse limit is graphql-js's own (`parseOptions` below): armor's Apollo plugin parses every
    // document a second time in parsingDidStart and its refusal escapes Apollo's error handling.
    maxTokens: { enabled: false },
    // Replaced by the field-weighted estimate above.
    costLimit: { enabled: false },
    blockFieldSuggestion: { enabled: production },
    maxDepth: { n: limits.maxDepth, flattenFragments: true, propagateOnRejection: false, onReject: [report('maxDepth', limits.maxDepth)] },
    maxAliases: {
      n: limits.maxAliases,
      allowList: ROUTER_ALIASES,
      propagateOnRejection: false,
      onReject: [report('maxAliases', limits.maxAliases)],
    },
    maxDirectives: { n: limits.maxDirectives, propagateOnRejection: false, onReject: [report('maxDirectives', limits.maxDirectives)] },
  });
  const protection = armor.protect();
  const validationRules = protection.validationRules as ValidationRule[];

  /** Only the limits' errors when there are any: a refused query is not also analysed field by field. */
  const keepLimitErrors = <E extends GraphQLError>(errors: E[]) => {
    const limited = errors.filter(isLimitError);
    if (limited.length && limited.length < errors.length) errors.splice(0, errors.length, ...limited);
    return errors;
  };
  const hideSuggestions = (message: string) => (production ? message.replace(/ ?Did you mean .+\?$/s, '') : message);

  const price: QueryGuard['price'] = (schema, document, operationName, variables) => {
    const cost = estimateCost(schema, document, operationName, variables ?? {}, model);
    const points = Math.max(1, Math.round(cost / limits.costPerPoint));
    if (cost <= limits.maxCost) return { cost, points };
    return {
      cost,
      points,
      error: limitError('maxCost', limits.maxCost, cost, `The query costs too much (${cost}): at most ${limits.maxCost} (maxCost)`),
    };
  };

  const rateLimited = (decision: RateRefusal) =>
    new GraphQLError(`Too many requests; retry in ${decision.retryAfterS} s`, {
      extensions: {
        code: ErrorCode.RATE_LIMITED,
        retryAfter: decision.retryAfterS,
        http: { status: 429, headers: new HeaderMap([['retry-after', String(decision.retryAfterS)]]) },
      },
    });
  /** Charges `points` once per request and puts the decision's headers on the response. */
  const charge = async (context: CostedContext, headers: HeaderMap, points: number): Promise<RateDecision | undefined> => {
    if (!context.chargeCost || context.rateDecision) return undefined;
    const decision = await context.chargeCost(points);
    context.rateDecision = decision;
    headers.set('x-ratelimit-limit', String(decision.limit));
    if (decision.allowed) headers.set('x-ratelimit-remaining', String(decision.remaining));
    else onRateLimited?.(context, decision);
    return decision;
  };

  const costPlugin: ApolloServerPlugin<CostedContext> = {
    async requestDidStart() {
      return {
        // Called synchronously with the array Apollo then sends: trimmed in place.
        async validationDidStart() {
          return async (errors) => {
            if (errors) keepLimitErrors(errors as GraphQLError[]);
          };
        },
        async didResolveOperation({ schema, document, operationName, request, contextValue, response }) {
          if (!contextValue.chargeCost) return;
          const priced = price(schema, document, operationName, request.variables);
          contextValue.cost = priced.cost;
          // Refused for its cost: charged one point when the response is sent (below), like any refused request.
          if (priced.error)
            throw new GraphQLError(priced.error.message, { extensions: { ...priced.error.extensions, http: { status: 400 } } });
          // Every point of the request in one call: the first and what its cost adds.
          const decision = await charge(contextValue, response.http.headers, priced.points);
          if (decision && !decision.allowed) throw rateLimited(decision);
        },
        // A request that never reached a resolved operation (it did not parse, was invalid, or over
        // a limit) still costs its one point; if that point is not there it is refused with 429 instead.
        async willSendResponse({ contextValue, response }) {
          const decision = await charge(contextValue, response.http.headers, 1);
          if (!decision || decision.allowed) return;
          const { message, extensions } = rateLimited(decision);
          response.http.status = 429;
          response.http.headers.set('retry-after', String(decision.retryAfterS));
          if (response.body.kind === 'single') {
            response.body.singleResult = {
              errors: [{ message, extensions: { code: extensions['code'], retryAfter: decision.retryAfterS } }],
            };
          }
        },
      };
    },
  };

  return {
    parseOptions: { maxTokens: limits.maxTokens },
    validationRules,
    plugins: [...(protection.plugins as ApolloServerPlugin<CostedContext>[]), costPlugin],
    formatError(formatted) {
      const tokens = TOO_MANY_TOKENS.exec(formatted.message);
      if (tokens) {
        return {
          message: `The query has more than ${limits.maxTokens} tokens (maxTokens)`,
          extensions: { code: ErrorCode.BAD_USER_INPUT, limit: 'maxTokens', max: limits.maxTokens },
        };
      }
      if (isLimitError(formatted)) return { ...formatted, extensions: { ...formatted.extensions, code: ErrorCode.BAD_USER_INPUT } };
      return formatted;
    },
    parse(source) {
      try {
        return parse(source, { maxTokens: limits.maxTokens });
      } catch (err) {
        if (err instanceof GraphQLError && TOO_MANY_TOKENS.test(err.message)) {
          throw limitError('maxTokens', limits.maxTokens, undefined, `The query has more than ${limits.maxTokens} tokens (maxTokens)`);
        }
        throw err;
      }
    },
    validate(schema, document) {
      const errors = keepLimitErrors([...validate(schema, document, [...specifiedRules, ...validationRules])]);
      return production
        ? errors.map((e) =>
            /Did you mean/.test(e.message)
              ? new GraphQLError(hideSuggestions(e.message), { nodes: e.nodes ?? null, extensions: e.extensions })
              : e,
          )
        : errors;
    },
    price,
  };
}
