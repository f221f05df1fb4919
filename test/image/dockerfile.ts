// The Dockerfile as data, and the rules it must keep (hadolint is not packaged for Debian bookworm, so
// `make lint` checks these instead: `node test/image/dockerfile.ts [Dockerfile]`). The engine-less build
// (engineless.ts) runs the same parsed instructions, so the image test cannot drift from the Dockerfile.
// Only Node built-ins are imported: `make lint` runs this file directly with Node 24's type stripping.
import fs from 'node:fs';
import { pathToFileURL } from 'node:url';

export interface Instruction {
  /** Upper-case instruction name: FROM, RUN, COPY… */
  op: string;
  /** Everything after the name, continuation lines joined. */
  args: string;
  /** 1-based line of the instruction's first line. */
  line: number;
}

export interface Stage {
  /** `AS` name, or its index when it has none. */
  name: string;
  /** The image (or earlier stage) it starts from, ARGs substituted. */
  base: string;
  instructions: Instruction[];
  /** Line of its FROM. */
  line: number;
}

export interface Dockerfile {
  /** ARGs declared before the first FROM, with their defaults. */
  globalArgs: Record<string, string>;
  stages: Stage[];
}

/** Instructions with continuation lines joined; comments and blank lines dropped. */
export function instructions(text: string): Instruction[] {
  const result: Instruction[] = [];
  let pending: Instruction | undefined;
  text.split('\n').forEach((raw, index) => {
    const line = raw.trim();
    if (!pending && (line === '' || line.startsWith('#'))) return;
    if (pending && line.startsWith('#')) return;
    const continued = line.endsWith('\\');
    const body = continued ? line.slice(0, -1).trim() : line;
    if (pending) pending.args = `${pending.args} ${body}`.trim();
    else {
      const m = /^(\S+)\s*(.*)$/.exec(body)!;
      pending = { op: m[1]!.toUpperCase(), args: m[2] ?? '', line: index + 1 };
    }
    if (!continued) {
      result.push(pending);
      pending = undefined;
    }
  });
  if (pending) result.push(pending);
  return result;
}

/** `$NAME` and `${NAME}` replaced from vars (unknown names become empty, as in Docker). */
export function substitute(text: string, vars: Record<string, string>): string {
  return text.replace(
    /\$\{(\w+)\}|\$(\w+)/g,
    (_, a: string | undefined, b: string | undefined) => vars[a ?? b!] ?? '',
  );
}

/** `NAME=default` (or `NAME`) of an ARG. */
export function argDefault(args: string): [string, string] {
  const [name, ...rest] = args.split('=');
  return [
    name!.trim(),
    rest
      .join('=')
      .trim()
      .replace(/^"(.*)"$/, '$1'),
  ];
}

export function parseDockerfile(text: string): Dockerfile {
  const globalArgs: Record<string, string> = {};
  const stages: Stage[] = [];
  for (const ins of instructions(text)) {
    if (ins.op === 'FROM') {
      const m = /^(?:--platform=\S+\s+)?(\S+)(?:\s+AS\s+(\S+))?$/i.exec(ins.args);
      if (!m) throw new Error(`Dockerfile:${ins.line}: cannot read FROM ${ins.args}`);
      stages.push({
        name: m[2] ?? String(stages.length),
        base: substitute(m[1]!, globalArgs),
        instructions: [],
        line: ins.line,
      });
    } else if (stages.length === 0) {
      if (ins.op !== 'ARG') throw new Error(`Dockerfile:${ins.line}: ${ins.op} before the first FROM`);
      const [name, value] = argDefault(ins.args);
      globalArgs[name] = value;
    } else stages.at(-1)!.instructions.push(ins);
  }
  return { globalArgs, stages };
}

/** `ENV A=1 B="2 3"` or the legacy `ENV A 1`. */
export function envPairs(args: string): [string, string][] {
  if (!/^\w+=/.test(args)) {
    const [k, ...v] = args.split(/\s+/);
    return [[k!, v.join(' ')]];
  }
  return [...args.matchAll(/(\w+)=("(?:[^"\\]|\\.)*"|\S*)/g)].map((m) => [
    m[1]!,
    m[2]!.replace(/^"(.*)"$/, '$1'),
  ]);
}

/**
 * The environment the image's final stage sets with ENV (what both roles run with), leaving out values
 * that come from build ARGs. The bench runs the relay and the operator with it.
 */
export function imageEnv(df: Dockerfile): Record<string, string> {
  const env: Record<string, string> = {};
  for (const ins of df.stages.at(-1)?.instructions ?? []) {
    if (ins.op !== 'ENV') continue;
    for (const [k, v] of envPairs(ins.args)) if (!v.includes('$')) env[k] = v;
  }
  return env;
}

/**
 * The node flags of the final stage's ENTRYPOINT (`["node", "--flag", …, "/app/…/main.mjs"]`): what both roles
 * start with, besides NODE_OPTIONS (some V8 flags are not accepted there). The bench starts them the same way.
 */
export function imageNodeArgs(df: Dockerfile): string[] {
  const entry = df.stages
    .at(-1)
    ?.instructions.filter((i) => i.op === 'ENTRYPOINT')
    .at(-1);
  const [program, ...rest] = (entry && execForm(entry.args)) ?? [];
  if (program !== 'node') return [];
  const script = rest.findIndex((a) => !a.startsWith('-'));
  return script < 0 ? rest : rest.slice(0, script);
}

/** Exec-form (`["node", "x"]`) arguments, or undefined for shell form. */
export function execForm(args: string): string[] | undefined {
  if (!args.trim().startsWith('[')) return undefined;
  return JSON.parse(args) as string[];
}

/** Why a base image reference is not pinned, or '' when it is (a digest, or a tag with a version). */
function unpinned(base: string): string {
  if (/@sha256:[0-9a-f]{64}$/.test(base)) return '';
  const tag = /:([^/:]+)$/.exec(base)?.[1];
  if (!tag) return `has no tag (it means :latest); pin a version, e.g. ${base}:24-bookworm-slim`;
  if (tag === 'latest') return 'uses :latest; pin a version tag or a digest';
  if (!/\d/.test(tag)) return `tag :${tag} names no version; pin one`;
  return '';
}

/** The Dockerfile's rule violations, each "Dockerfile:<line>: <what to do>". */
export function dockerfileProblems(df: Dockerfile): string[] {
  const problems: string[] = [];
  const names = new Set<string>();
  for (const stage of df.stages) {
    if (!names.has(stage.base)) {
      const why = unpinned(stage.base);
      if (why) problems.push(`Dockerfile:${stage.line}: base image ${stage.base} ${why}`);
    }
    names.add(stage.name);
    for (const ins of stage.instructions) {
      const at = `Dockerfile:${ins.line}`;
      if (ins.op === 'RUN' && /\bnpm (install|i|add)\b/.test(ins.args))
        problems.push(`${at}: install npm packages with \`npm ci\` (or \`make deps\`), not npm install`);
      if (ins.op === 'RUN' && /\bapt-get install\b/.test(ins.args)) {
        if (!ins.args.includes('--no-install-recommends'))
          problems.push(`${at}: apt-get install needs --no-install-recommends`);
        if (!ins.args.includes('rm -rf /var/lib/apt/lists'))
          problems.push(`${at}: remove /var/lib/apt/lists/*`);
      }
      if (ins.op === 'ADD') problems.push(`${at}: use COPY (ADD also fetches URLs and unpacks archives)`);
      if ((ins.op === 'ENTRYPOINT' || ins.op === 'CMD') && !execForm(ins.args))
        problems.push(`${at}: ${ins.op} in exec form (["node", …]) so signals reach node`);
    }
  }
  if (
    !df.stages.some((s) =>
      s.instructions.some((i) => i.op === 'RUN' && /\b(npm ci|make deps)\b/.test(i.args)),
    )
  )
    problems.push('Dockerfile: no stage installs the locked packages (`npm ci` or `make deps`)');
  const final = df.stages.at(-1);
  const user = final?.instructions.filter((i) => i.op === 'USER').at(-1);
  const name = user?.args.split(':')[0]?.trim();
  if (!user || name === '0' || name === 'root')
    problems.push(
      `Dockerfile:${user?.line ?? 0}: the final stage must end with a non-root USER (e.g. 65532:65532)`,
    );
  return problems;
}

function main(file: string): number {
  const text = fs.readFileSync(file, 'utf8');
  const problems = dockerfileProblems(parseDockerfile(text));
  for (const p of problems) process.stderr.write(`${p}\n`);
  if (problems.length > 0) return 1;
  process.stdout.write(
    `dockerfile: ${file} keeps the rules (pinned base, npm ci, exec form, non-root USER)\n`,
  );
  return 0;
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  process.exitCode = main(process.argv[2] ?? 'Dockerfile');
}
