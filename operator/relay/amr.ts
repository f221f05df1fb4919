// Access Monitoring Rule conditions: the subset of Teleport's predicate language that routing rules
// use for access requests. Anything outside the subset is rejected with a message that names it, and
// the caller skips the rule with a warning (as upstream does for a rule it cannot parse).
//
// Supported:
//   variables   access_request.spec.{roles, suggested_reviewers, user, request_reason},
//               access_request.spec.system_annotations["key"], plugin.spec.name
//   literals    "text" (double or back quotes), true, false
//   functions   set(a, …), contains_any(a, b), contains_all(a, b), is_empty(a), equals(a, b)
//   methods     <set or string>.contains(x)
//   operators   ==, !=, &&, ||, !, ( )
// Not supported (rejected): creation_time/expiry comparisons, user.traits, resource labels, regexes.
import { own } from '../config/dict.js';

export type ConditionValue = string | boolean | string[] | Record<string, string[]>;
export type ConditionInput = Record<string, ConditionValue>;

export type ConditionResult = { ok: true; value: boolean } | { ok: false; error: string };

type Token = { t: 'str'; v: string } | { t: 'id'; v: string } | { t: 'op'; v: string } | { t: 'end' };

const SUPPORTED_VARIABLES = new Set([
  'access_request.spec.roles',
  'access_request.spec.suggested_reviewers',
  'access_request.spec.user',
  'access_request.spec.request_reason',
  'access_request.spec.system_annotations',
  'plugin.spec.name',
]);

class ConditionError extends Error {}

/**
 * A rule is admin input, but one bad rule must not stop the relay: bounds keep the recursive parser and
 * evaluator far from the stack limit (real conditions are a few hundred characters, nested a few levels).
 */
export const MAX_CONDITION_LENGTH = 16 * 1024;
export const MAX_CONDITION_TOKENS = 2_000;
export const MAX_CONDITION_DEPTH = 64;

function tokenize(text: string): Token[] {
  if (text.length > MAX_CONDITION_LENGTH) {
    throw new ConditionError(`the condition is too long (more than ${MAX_CONDITION_LENGTH} characters)`);
  }
  const out: Token[] = [];
  let i = 0;
  while (i < text.length) {
    const c = text[i] as string;
    if (/\s/.test(c)) {
      i++;
    } else if (c === '"' || c === '`') {
      let j = i + 1;
      let v = '';
      while (j < text.length && text[j] !== c) {
        if (c === '"' && text[j] === '\\' && j + 1 < text.length) j++;
        v += text[j];
        j++;
      }
      if (j >= text.length) throw new ConditionError(`unterminated string starting at position ${i}`);
      out.push({ t: 'str', v });
      i = j + 1;
    } else if (/[A-Za-z_]/.test(c) || (c === '.' && /[A-Za-z_]/.test(text[i + 1] ?? ''))) {
      const m = /^\.?[A-Za-z_][A-Za-z0-9_.]*/.exec(text.slice(i)) as RegExpExecArray;
      out.push({ t: 'id', v: m[0] });
      i += m[0].length;
    } else {
      const two = text.slice(i, i + 2);
      if (['==', '!=', '&&', '||'].includes(two)) {
        out.push({ t: 'op', v: two });
        i += 2;
      } else if ('!(),[]'.includes(c)) {
        out.push({ t: 'op', v: c });
        i++;
      } else {
        throw new ConditionError(`unsupported character '${c}' at position ${i}`);
      }
    }
  }
  out.push({ t: 'end' });
  return out;
}

type Node =
  | { k: 'lit'; v: ConditionValue }
  | { k: 'var'; name: string; index?: string }
  | { k: 'call'; fn: string; args: Node[] }
  | { k: 'not'; arg: Node }
  | { k: 'bin'; op: string; left: Node; right: Node };

const FUNCTIONS: Record<string, number | 'variadic'> = {
  set: 'variadic',
  contains_any: 2,
  contains_all: 2,
  is_empty: 1,
  equals: 2,
  contains: 2,
};

class Parser {
  private pos = 0;
  private depth = 0;
  constructor(private readonly tokens: Token[]) {
    if (tokens.length > MAX_CONDITION_TOKENS) {
      throw new ConditionError(`the condition is too long (more than ${MAX_CONDITION_TOKENS} terms)`);
    }
  }

  /** Every recursion goes through here: nesting beyond the bound is refused, not a stack overflow. */
  private nested<T>(parse: () => T): T {
    if (++this.depth > MAX_CONDITION_DEPTH) {
      throw new ConditionError(
        `the condition is nested too deeply (more than ${MAX_CONDITION_DEPTH} levels)`,
      );
    }
    try {
      return parse();
    } finally {
      this.depth--;
    }
  }

  private peek(): Token {
    return this.tokens[this.pos] as Token;
  }
  private next(): Token {
    return this.tokens[this.pos++] as Token;
  }
  private expectOp(v: string): void {
    const t = this.next();
    if (t.t !== 'op' || t.v !== v) throw new ConditionError(`expected '${v}' but found ${describe(t)}`);
  }
  private isOp(v: string): boolean {
    const t = this.peek();
    return t.t === 'op' && t.v === v;
  }

  parse(): Node {
    const node = this.or();
    const t = this.peek();
    if (t.t !== 'end') throw new ConditionError(`unexpected ${describe(t)}`);
    return node;
  }
  private or(): Node {
    return this.nested(() => this.orChain());
  }
  private orChain(): Node {
    let left = this.and();
    while (this.isOp('||')) {
      this.next();
      left = { k: 'bin', op: '||', left, right: this.and() };
    }
    return left;
  }
  private and(): Node {
    let left = this.unary();
    while (this.isOp('&&')) {
      this.next();
      left = { k: 'bin', op: '&&', left, right: this.unary() };
    }
    return left;
  }
  private unary(): Node {
    if (this.isOp('!')) {
      this.next();
      return { k: 'not', arg: this.nested(() => this.unary()) };
    }
    const left = this.primary();
    if (this.isOp('==') || this.isOp('!=')) {
      const op = (this.next() as { v: string }).v;
      return { k: 'bin', op, left, right: this.primary() };
    }
    return left;
  }
  private args(): Node[] {
    this.expectOp('(');
    const args: Node[] = [];
    if (!this.isOp(')')) {
      args.push(this.or());
      while (this.isOp(',')) {
        this.next();
        args.push(this.or());
      }
    }
    this.expectOp(')');
    return args;
  }
  private primary(): Node {
    const t = this.next();
    if (t.t === 'op' && t.v === '(') {
      const inner = this.or();
      this.expectOp(')');
      return inner;
    }
    if (t.t === 'str') return { k: 'lit', v: t.v };
    if (t.t !== 'id') throw new ConditionError(`unexpected ${describe(t)}`);
    if (t.v === 'true' || t.v === 'false') return { k: 'lit', v: t.v === 'true' };
    if (this.isOp('(') && !t.v.includes('.')) {
      const arity = own(FUNCTIONS, t.v);
      if (arity === undefined) throw new ConditionError(`unsupported function '${t.v}'`);
      const args = this.args();
      if (arity !== 'variadic' && args.length !== arity) {
        throw new ConditionError(`${t.v}() takes ${arity} arguments, got ${args.length}`);
      }
      return { k: 'call', fn: t.v, args };
    }
    // A variable, optionally indexed, optionally followed by .contains(x).
    let name = t.v;
    let method: string | undefined;
    if (name.endsWith('.contains')) {
      method = 'contains';
      name = name.slice(0, -'.contains'.length);
    }
    if (!SUPPORTED_VARIABLES.has(name)) throw new ConditionError(`unsupported variable '${name}'`);
    let node: Node = { k: 'var', name };
    if (!method && this.isOp('[')) {
      this.next();
      const key = this.next();
      if (key.t !== 'str') throw new ConditionError(`expected a quoted key after '${name}['`);
      this.expectOp(']');
      node = { k: 'var', name, index: key.v };
      const after = this.peek();
      if (after.t === 'id' && after.v === '.contains') {
        this.next();
        method = 'contains';
      }
    }
    if (method) {
      const args = this.args();
      if (args.length !== 1) throw new ConditionError(`.contains() takes 1 argument, got ${args.length}`);
      return { k: 'call', fn: 'contains', args: [node, args[0] as Node] };
    }
    return node;
  }
}

function describe(t: Token): string {
  return t.t === 'end' ? 'end of condition' : `'${t.v}'`;
}

function asSet(v: ConditionValue, what: string): string[] {
  if (Array.isArray(v)) return v;
  if (typeof v === 'string') return [v];
  throw new ConditionError(`${what} must be a set or a string`);
}

function evaluate(node: Node, input: ConditionInput): ConditionValue {
  switch (node.k) {
    case 'lit':
      return node.v;
    case 'var': {
      const v = own(input, node.name);
      if (v === undefined) return node.name.endsWith('s') ? [] : '';
      if (node.index !== undefined) {
        if (typeof v !== 'object' || Array.isArray(v)) throw new ConditionError(`${node.name} is not a map`);
        return own(v, node.index) ?? [];
      }
      return v;
    }
    case 'not':
      return !truthy(evaluate(node.arg, input));
    case 'bin': {
      if (node.op === '&&') return truthy(evaluate(node.left, input)) && truthy(evaluate(node.right, input));
      if (node.op === '||') return truthy(evaluate(node.left, input)) || truthy(evaluate(node.right, input));
      const eq = equal(evaluate(node.left, input), evaluate(node.right, input));
      return node.op === '==' ? eq : !eq;
    }
    case 'call': {
      const args = node.args.map((a) => evaluate(a, input));
      switch (node.fn) {
        case 'set':
          return args.map((a) => {
            if (typeof a !== 'string') throw new ConditionError('set() takes only strings');
            return a;
          });
        case 'contains': {
          const [container, item] = args as [ConditionValue, ConditionValue];
          if (typeof item !== 'string') throw new ConditionError('.contains() takes a string');
          return asSet(container, 'the value before .contains()').includes(item);
        }
        case 'contains_any': {
          const a = asSet(args[0] as ConditionValue, 'contains_any() argument 1');
          return asSet(args[1] as ConditionValue, 'contains_any() argument 2').some((x) => a.includes(x));
        }
        case 'contains_all': {
          const a = asSet(args[0] as ConditionValue, 'contains_all() argument 1');
          const b = asSet(args[1] as ConditionValue, 'contains_all() argument 2');
          return b.length > 0 && b.every((x) => a.includes(x));
        }
        case 'is_empty': {
          const a = args[0] as ConditionValue;
          return typeof a === 'string' ? a === '' : asSet(a, 'is_empty() argument').length === 0;
        }
        case 'equals':
          return equal(args[0] as ConditionValue, args[1] as ConditionValue);
      }
      throw new ConditionError(`unsupported function '${node.fn}'`);
    }
  }
}

function truthy(v: ConditionValue): boolean {
  if (typeof v !== 'boolean')
    throw new ConditionError('the condition must be made of true/false expressions');
  return v;
}

function equal(a: ConditionValue, b: ConditionValue): boolean {
  if (Array.isArray(a) && Array.isArray(b)) {
    return a.length === b.length && a.every((x) => b.includes(x)) && b.every((x) => a.includes(x));
  }
  return a === b;
}

/** Parses and evaluates a rule's condition; an empty condition matches (nothing to restrict). */
export function evaluateRuleCondition(condition: string, input: ConditionInput): ConditionResult {
  if (condition.trim() === '') return { ok: true, value: true };
  try {
    const node = new Parser(tokenize(condition)).parse();
    return { ok: true, value: truthy(evaluate(node, input)) };
  } catch (err) {
    if (err instanceof ConditionError) return { ok: false, error: err.message };
    throw err;
  }
}

/** Parses only: undefined when the condition is within the supported subset, otherwise why not. */
export function checkRuleCondition(condition: string): string | undefined {
  if (condition.trim() === '') return undefined;
  try {
    new Parser(tokenize(condition)).parse();
    return undefined;
  } catch (err) {
    if (err instanceof ConditionError) return err.message;
    throw err;
  }
}
