// Type checks of the TOML document against the configuration's shape: which sections are tables and
// what each key must hold. Cross-key rules live in load.ts `validate()`.
//
// Why not a schema library: the configuration has six small tables, and zod (which did this before)
// cost the watcher and the operator ~6 MiB of memory each just to load (issue 16, bench P3a/P4i), more
// than the rest of the configuration code together. This is the subset we used, with the same messages.
//
// The rules of the walk: sections and keys are checked in the order of the shape (not of the file), so
// problems come out in a stable order; a key that fails its type or a format check is reported once, with
// the first failing check's message, and left out of the result; unknown keys are left out silently
// (load.ts warns about them); a section that is not a table is reported and left out whole.

/** A problem found in the document: where, and what to do. */
export interface ShapeIssue {
  /** Section and key (and list index), e.g. ['mattermost', 'recipients', 1]. */
  path: (string | number)[];
  message: string;
}

/** How a value is shown in a message: strings quoted, other kinds by name. */
export function show(value: unknown): string {
  if (typeof value === 'string') return `'${value}'`;
  if (Array.isArray(value)) return 'a list';
  if (value instanceof Date) return 'a date';
  if (value !== null && typeof value === 'object') return 'a table';
  return String(value);
}

const wrongType = (expected: string, value: unknown): string =>
  `must be ${expected}, got ${value === undefined ? 'nothing' : show(value)}`;

/** A format check on a string: the message when it fails, undefined when it passes. */
export type StringCheck = (value: string) => string | undefined;

/** What one key holds. `checks` run in order on a string value; the first failure is the key's message. */
export type KeyRule =
  | { type: 'string'; checks?: readonly StringCheck[] }
  | { type: 'boolean' }
  | { type: 'string list' }
  | { type: 'string or string list' };

export type TableShape = Readonly<Record<string, KeyRule>>;

/** Marks a table whose keys the user chooses (e.g. role names): `{ [ANY_KEY]: rule }` for every value. */
export const ANY_KEY = Symbol('any key');
export interface MapShape {
  readonly [ANY_KEY]: KeyRule;
}
/** What a section of the document is: a table of known keys, or a map of user-chosen ones. */
export type SectionShape = TableShape | MapShape;

const isMapShape = (shape: SectionShape): shape is MapShape => ANY_KEY in shape;

/** The keys a section knows, for the unknown-key warnings ('any' for a map). */
export function knownKeys(shape: SectionShape): readonly string[] | 'any' {
  return isMapShape(shape) ? 'any' : Object.keys(shape);
}

const isTable = (v: unknown): v is Record<string, unknown> =>
  v !== null && typeof v === 'object' && !Array.isArray(v) && !(v instanceof Date);

/** Checks one value; returns the issues (paths relative to the value) or the value to keep. */
function checkValue(rule: KeyRule, value: unknown): { issues: ShapeIssue[] } | { value: unknown } {
  const fail = (message: string, path: (string | number)[] = []) => ({ issues: [{ path, message }] });
  switch (rule.type) {
    case 'boolean':
      return typeof value === 'boolean' ? { value } : fail(wrongType('true or false', value));
    case 'string': {
      if (typeof value !== 'string') return fail(wrongType('a string', value));
      for (const check of rule.checks ?? []) {
        const message = check(value);
        if (message !== undefined) return fail(message);
      }
      return { value };
    }
    case 'string list': {
      if (!Array.isArray(value)) return fail(wrongType('a list of strings', value));
      const issues = value.flatMap((v: unknown, i) =>
        typeof v === 'string' ? [] : [{ path: [i], message: wrongType('a string', v) }],
      );
      return issues.length > 0 ? { issues } : { value: [...(value as string[])] };
    }
    case 'string or string list': {
      if (typeof value === 'string') return { value };
      if (Array.isArray(value) && value.every((v) => typeof v === 'string')) return { value: [...value] };
      return fail(`must be a string or a list of strings, got ${show(value)}`);
    }
  }
}

type Checked = { issues: ShapeIssue[]; value?: Record<string, unknown> };

const notATable = (name: string, table: unknown): Checked => ({
  issues: [{ path: [name], message: wrongType(`a table ([${name}])`, table) }],
});

/** Checks the given keys of a table, each by its rule, into `value`; issues carry the section and key. */
function checkEntries(
  name: string,
  table: Record<string, unknown>,
  rules: [string, KeyRule][],
  value: Record<string, unknown>,
): Checked {
  const issues: ShapeIssue[] = [];
  for (const [key, rule] of rules) {
    const checked = checkValue(rule, table[key]);
    if ('issues' in checked)
      issues.push(...checked.issues.map((i) => ({ ...i, path: [name, key, ...i.path] })));
    else value[key] = checked.value;
  }
  return { issues, value };
}

/** Checks one table against its shape; `name` is the section's name, for paths and messages. */
function checkTable(name: string, shape: TableShape, table: unknown): Checked {
  if (!isTable(table)) return notATable(name, table);
  const present = Object.entries(shape).filter(
    ([key]) => Object.hasOwn(table, key) && table[key] !== undefined,
  );
  return checkEntries(name, table, present, {});
}

/**
 * Checks a table of user-chosen keys whose values all follow `rule` (e.g. [role_to_recipients]). Keeps
 * every key of the document, `__proto__` included, in a prototype-free object: keys are outside text.
 */
function checkMap(name: string, rule: KeyRule, table: unknown): Checked {
  if (!isTable(table)) return notATable(name, table);
  const rules = Object.keys(table).map((key): [string, KeyRule] => [key, rule]);
  return checkEntries(name, table, rules, Object.create(null) as Record<string, unknown>);
}

/** Checks one section of the document against its shape. */
export function checkSection(name: string, shape: SectionShape, value: unknown): Checked {
  return isMapShape(shape) ? checkMap(name, shape[ANY_KEY], value) : checkTable(name, shape, value);
}
