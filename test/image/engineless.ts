// Runs a parsed Dockerfile without a container engine, so CI (which has none) still performs the image's
// build: each stage gets a scratch directory as its root, COPY copies (honouring .dockerignore), RUN runs
// the same commands with /bin/sh in the mapped WORKDIR, ENV/ARG/WORKDIR/ENTRYPOINT/CMD are kept. The base
// image is stood in for by this machine: `node` on PATH is the Node 24 running the test (a node:24 base is
// required), `npm` and apt-get-installed commands are the machine's. RUN lines that name absolute paths
// are not run on this machine: `ln -s` is checked (its target must exist in the stage), anything else
// fails with a message asking to teach this file the new instruction.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import {
  argDefault,
  envPairs,
  execForm,
  substitute,
  type Dockerfile,
  type Instruction,
} from './dockerfile.js';

export interface BuiltStage {
  name: string;
  /** Scratch directory standing in for the stage's filesystem root. */
  root: string;
  workdir: string;
  env: Record<string, string>;
  entrypoint: string[];
  cmd: string[];
  user: string;
}

export interface BuildOptions {
  /** The build context (the repository). */
  context: string;
  /** Empty directory for the stages' roots. */
  scratch: string;
  /** One line per instruction, for the test's output. */
  log: (line: string) => void;
}

const BASE_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

/** The stage-root path of an image path (absolute, or relative to the WORKDIR). */
export function inStage(stage: BuiltStage, p: string): string {
  return path.join(stage.root, path.posix.isAbsolute(p) ? p : path.posix.join(stage.workdir, p));
}

/** Performs every stage of the Dockerfile; returns the last (the image). */
export function buildWithoutEngine(df: Dockerfile, options: BuildOptions): BuiltStage {
  const ignored = dockerignore(options.context);
  const nodeDir = path.join(options.scratch, 'node-bin');
  fs.mkdirSync(nodeDir, { recursive: true });
  fs.symlinkSync(process.execPath, path.join(nodeDir, 'node'));
  const built = new Map<string, BuiltStage>();
  let stage: BuiltStage | undefined;
  for (const s of df.stages) {
    stage = startStage(s.name, s.base, built, options.scratch);
    const args: Record<string, string> = { ...df.globalArgs };
    for (const ins of s.instructions) {
      const started = Date.now();
      apply(ins, stage, { args, built, ignored, nodeDir, context: options.context });
      options.log(`[${s.name}] ${((Date.now() - started) / 1000).toFixed(1)}s ${ins.op} ${ins.args}`);
    }
    built.set(s.name, stage);
  }
  return stage!;
}

function startStage(name: string, base: string, built: Map<string, BuiltStage>, scratch: string): BuiltStage {
  const root = path.join(scratch, 'stages', name);
  const parent = built.get(base);
  if (parent) {
    fs.cpSync(parent.root, root, { recursive: true, verbatimSymlinks: true });
    return { ...parent, name, root, env: { ...parent.env } };
  }
  const major = /^node:(\d+)/.exec(base)?.[1];
  const running = process.versions.node.split('.')[0];
  if (major !== running)
    throw new Error(`base image ${base}: the engine-less build stands in for node:${running} images only`);
  fs.mkdirSync(root, { recursive: true });
  return { name, root, workdir: '/', env: {}, entrypoint: [], cmd: [], user: 'root' };
}

interface Context {
  args: Record<string, string>;
  built: Map<string, BuiltStage>;
  ignored: (relative: string) => boolean;
  nodeDir: string;
  context: string;
}

function apply(ins: Instruction, stage: BuiltStage, ctx: Context): void {
  const vars = { ...ctx.args, ...stage.env };
  switch (ins.op) {
    case 'ARG': {
      const [name, value] = argDefault(ins.args);
      ctx.args[name] = ctx.args[name] ?? substitute(value, vars);
      return;
    }
    case 'ENV':
      for (const [k, v] of envPairs(ins.args)) stage.env[k] = substitute(v, vars);
      return;
    case 'WORKDIR':
      stage.workdir = path.posix.resolve(stage.workdir, substitute(ins.args, vars));
      fs.mkdirSync(inStage(stage, '.'), { recursive: true });
      return;
    case 'COPY':
      return copy(substitute(ins.args, vars), stage, ctx);
    case 'RUN':
      return run(substitute(ins.args, vars), stage, ctx, ins.line);
    case 'USER':
      stage.user = ins.args;
      return;
    case 'ENTRYPOINT':
    case 'CMD': {
      const form = execForm(ins.args) ?? ['/bin/sh', '-c', ins.args];
      if (ins.op === 'ENTRYPOINT') stage.entrypoint = form;
      else stage.cmd = form;
      return;
    }
    case 'EXPOSE':
    case 'LABEL':
    case 'STOPSIGNAL':
    case 'HEALTHCHECK':
      return;
    default:
      throw new Error(
        `Dockerfile:${ins.line}: ${ins.op} is new to the engine-less build; teach test/image/engineless.ts`,
      );
  }
}

function copy(args: string, stage: BuiltStage, ctx: Context): void {
  const words = execForm(args) ?? args.split(/\s+/);
  const flags = words.filter((w) => w.startsWith('--'));
  const paths = words.filter((w) => !w.startsWith('--'));
  const dest = paths.pop()!;
  const from = flags.find((f) => f.startsWith('--from='))?.slice('--from='.length);
  const source = from ? ctx.built.get(from) : undefined;
  if (from && !source) throw new Error(`COPY --from=${from}: no such earlier stage`);
  const target = inStage(stage, dest);
  const intoDir = dest.endsWith('/') || paths.length > 1;
  for (const p of paths) {
    if (/[*?[]/.test(p)) throw new Error(`COPY ${p}: wildcards are new to the engine-less build`);
    const src = source ? path.join(source.root, p) : path.join(ctx.context, p);
    if (!fs.existsSync(src)) throw new Error(`COPY ${p}: ${src} does not exist`);
    const isDir = fs.statSync(src).isDirectory();
    const to = intoDir && !isDir ? path.join(target, path.basename(p)) : target;
    const filter = source
      ? undefined
      : (file: string) => !ctx.ignored(path.relative(ctx.context, file).split(path.sep).join('/'));
    fs.mkdirSync(path.dirname(to), { recursive: true });
    fs.cpSync(src, to, { recursive: true, verbatimSymlinks: true, ...(filter ? { filter } : {}) });
  }
}

function run(command: string, stage: BuiltStage, ctx: Context, line: number): void {
  if (/\bapt-get\b/.test(command)) return requireCommands(command, line);
  const link = /^ln -s(?:f)? (\S+) (\S+)$/.exec(command.trim());
  if (link) {
    if (!fs.existsSync(inStage(stage, link[1]!)))
      throw new Error(`Dockerfile:${line}: ${command}: ${link[1]} is not in the image`);
    return;
  }
  if (/(^|[\s=])\/(?!dev\/null)/.test(command))
    throw new Error(
      `Dockerfile:${line}: RUN ${command} names an absolute path, which would change this machine; ` +
        'teach test/image/engineless.ts how to perform it inside the stage',
    );
  const env = { PATH: `${ctx.nodeDir}:${BASE_PATH}`, HOME: process.env.HOME ?? '/root', ...stage.env };
  const r = spawnSync('/bin/sh', ['-c', command], { cwd: inStage(stage, '.'), env, encoding: 'utf8' });
  if (r.status !== 0)
    throw new Error(
      `Dockerfile:${line}: RUN ${command} exited ${r.status}:\n${r.stdout}${r.stderr}`.trimEnd(),
    );
}

/** apt-get lines install the build's system commands: this machine must already have them. */
function requireCommands(command: string, line: number): void {
  const install = /apt-get install ([^&;|]*)/.exec(command)?.[1] ?? '';
  for (const pkg of install.split(/\s+/).filter((w) => w && !w.startsWith('-'))) {
    if (spawnSync('/bin/sh', ['-c', `command -v ${pkg}`]).status !== 0)
      throw new Error(`Dockerfile:${line}: the image build installs ${pkg}; install it on this machine too`);
  }
}

/** A matcher for the context's .dockerignore (plain paths and `*` globs, anchored at the context). */
export function dockerignore(context: string): (relative: string) => boolean {
  const file = path.join(context, '.dockerignore');
  const patterns = fs.existsSync(file)
    ? fs
        .readFileSync(file, 'utf8')
        .split('\n')
        .map((l) => l.trim().replace(/^\/+|\/+$/g, ''))
        .filter((l) => l && !l.startsWith('#'))
    : [];
  const regexes = patterns.map(
    (p) =>
      new RegExp(
        `^${p
          .replace(/[.+^${}()|[\]\\]/g, '\\$&')
          .replace(/\*\*/g, '.*')
          .replace(/(?<!\.)\*/g, '[^/]*')}(/|$)`,
      ),
  );
  return (relative) => regexes.some((re) => re.test(relative));
}
