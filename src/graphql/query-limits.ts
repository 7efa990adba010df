import { EnvelopArmorPlugin } from '@escape.tech/graphql-armor';
import { createComplexityRule } from '@pothos/plugin-complexity';
import {
  getOperationAST,
  GraphQLError,
  Kind,
  NoSchemaIntrospectionCustomRule,
  validate,
  valueFromASTUntyped,
  visit,
  type DocumentNode,
  type ExecutionArgs,
  type ValidationContext,
} from 'graphql';
import type { Plugin } from 'graphql-yoga';
import type { Config } from '../platform/config.js';
import { findInputProblem } from '../platform/input-limits.js';

/** The code of every refusal for size: depth, breadth, cost, aliases, directives, tokens. */
export const QUERY_TOO_COMPLEX = 'QUERY_TOO_COMPLEX';

type Limits = Pick<
  Config,
  'GRAPHQL_MAX_DEPTH' | 'GRAPHQL_MAX_BREADTH' | 'GRAPHQL_MAX_COST' | 'GRAPHQL_MAX_ALIASES' | 'GRAPHQL_MAX_DIRECTIVES' | 'GRAPHQL_MAX_TOKENS'
  | 'GRAPHQL_INTROSPECTION' | 'GRAPHQL_FIELD_SUGGESTIONS'
>;

function tooComplex(what: string, actual: number | null, max: number, variable: keyof Limits): GraphQLError {
  const found = actual === null ? '' : ` (${actual})`;
  return new GraphQLError(`${what}${found} exceeds the limit of ${max} (${variable}); the operation was not run`, {
    extensions: { code: QUERY_TOO_COMPLEX, limit: variable, max, ...(actual === null ? {} : { actual }) },
  });
}

/** graphql-armor's rejections, re-thrown as ours: one code, the setting named. */
function rejectAs(what: string, max: number, variable: keyof Limits) {
  return [
    (_ctx: ValidationContext | null, error: GraphQLError) => {
      const found = /found (\d+)/.exec(error.message);
      throw tooComplex(what, found ? Number(found[1]) : null, max, variable);
    },
  ];
}

/**
 * What one request may ask for, refused before anything runs:
 * - while parsing and validating (graphql-armor): tokens, aliases, directives; field
 *   suggestions hidden when GRAPHQL_FIELD_SUGGESTIONS is off; introspection refused when
 *   GRAPHQL_INTROSPECTION is off;
 * - just before execution, once the variables and the caller are known (the Pothos
 *   complexity plugin's rule): depth, breadth and cost, where live fields cost
 *   GRAPHQL_LIVE_FIELD_COST and connections their page size; and, for queries and
 *   subscriptions, argument values with NUL characters or over their length
 *   (mutations report those as INVALID_INPUT in their userErrors).
 */
export function useQueryLimits(config: Limits): Plugin[] {
  const armor = EnvelopArmorPlugin({
    maxTokens: { n: config.GRAPHQL_MAX_TOKENS, onReject: rejectAs('The number of tokens', config.GRAPHQL_MAX_TOKENS, 'GRAPHQL_MAX_TOKENS') },
    maxAliases: { n: config.GRAPHQL_MAX_ALIASES, onReject: rejectAs('The number of aliases', config.GRAPHQL_MAX_ALIASES, 'GRAPHQL_MAX_ALIASES') },
    maxDirectives: { n: config.GRAPHQL_MAX_DIRECTIVES, onReject: rejectAs('The number of directives', config.GRAPHQL_MAX_DIRECTIVES, 'GRAPHQL_MAX_DIRECTIVES') },
    blockFieldSuggestion: { enabled: !config.GRAPHQL_FIELD_SUGGESTIONS },
    // Depth and cost are measured with the schema's own costs (below), not armor's generic ones.
    maxDepth: { enabled: false },
    costLimit: { enabled: false },
  });
  const plugins: Plugin[] = [armor as Plugin];
  if (!config.GRAPHQL_INTROSPECTION) {
    plugins.push({ onValidate: ({ addValidationRule }) => addValidationRule(NoSchemaIntrospectionCustomRule) });
  }
  // Operations found within the limits, per document (yoga's parser cache hands the same
  // DocumentNode to every request with the same text) and operation name: only documents that
  // declare no variables, whose argument values and costs are then fixed by their text and
  // the configuration, so the answer cannot change between requests. A refusal is not
  // remembered: it is computed again, with errors of its own.
  const withinLimits = new WeakMap<DocumentNode, Set<string | null | undefined>>();
  const check = (args: ExecutionArgs): readonly GraphQLError[] => {
    const known = withinLimits.get(args.document);
    if (known?.has(args.operationName)) return NONE;
    const errors = refusals(config, args);
    if (errors.length === 0 && !declaresVariables(args.document)) {
      if (known) known.add(args.operationName);
      else withinLimits.set(args.document, new Set([args.operationName]));
    }
    return errors;
  };
  const refuse = ({ args, setResultAndStopExecution }: { args: ExecutionArgs; setResultAndStopExecution: (r: { errors: readonly GraphQLError[] }) => void }) => {
    const errors = check(args);
    if (errors.length) setResultAndStopExecution({ errors });
  };
  plugins.push({ onExecute: refuse, onSubscribe: refuse });
  return plugins;
}

const NONE: readonly GraphQLError[] = Object.freeze([]);

/** Whether any operation of the document declares variables (a valid document uses no others). */
function declaresVariables(document: DocumentNode): boolean {
  return document.definitions.some((d) => d.kind === Kind.OPERATION_DEFINITION && (d.variableDefinitions?.length ?? 0) > 0);
}

function refusals(config: Limits, args: ExecutionArgs): readonly GraphQLError[] {
  const operation = getOperationAST(args.document, args.operationName);
  if (operation && operation.operation !== 'mutation') {
    const bad = argumentProblem(args.document, args.variableValues ?? {});
    if (bad) return [bad];
  }
  return validate(args.schema, args.document, [
    createComplexityRule({
      context: args.contextValue as object,
      variableValues: (args.variableValues ?? {}) as Record<string, unknown>,
      operationName: args.operationName ?? undefined,
      validate: ({ depth, breadth, complexity }, report) => {
        if (depth > config.GRAPHQL_MAX_DEPTH) report(tooComplex('The query depth', depth, config.GRAPHQL_MAX_DEPTH, 'GRAPHQL_MAX_DEPTH'));
        else if (breadth > config.GRAPHQL_MAX_BREADTH) report(tooComplex('The number of fields selected', breadth, config.GRAPHQL_MAX_BREADTH, 'GRAPHQL_MAX_BREADTH'));
        else if (complexity > config.GRAPHQL_MAX_COST) report(tooComplex('The query cost', complexity, config.GRAPHQL_MAX_COST, 'GRAPHQL_MAX_COST'));
      },
    }),
  ]);
}

/** The first argument value (literal or variable) with a NUL character or over its length. */
function argumentProblem(document: DocumentNode, variables: Record<string, unknown>): GraphQLError | null {
  let found: GraphQLError | null = null;
  visit(document, {
    Argument(node) {
      if (found) return;
      const problem = findInputProblem(valueFromASTUntyped(node.value, variables), node.name.value);
      if (problem) found = new GraphQLError(problem.message, { nodes: [node], extensions: { code: 'BAD_USER_INPUT', argument: problem.field } });
    },
  });
  return found;
}
