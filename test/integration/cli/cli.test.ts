// Runs the built artifact (dist/) exactly as the image's entrypoint does: `node dist/operator/cli/main.js …`.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
const entry = path.join(root, 'dist/operator/cli/main.js');

function run(args: string[], env: NodeJS.ProcessEnv = {}) {
  const r = spawnSync(process.execPath, [entry, ...args], {
    encoding: 'utf8',
    timeout: 20_000,
    env: { ...process.env, ...env },
  });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

beforeAll(() => {
  if (!fs.existsSync(entry)) throw new Error(`${entry} is missing: run 'make build' first (make test does)`);
});

describe('teleport-mattermost (built artifact)', () => {
  it('version prints version, git sha and node version', () => {
    const r = run(['version'], { GIT_SHA: '0123456789abcdef' });
    expect(r.code).toBe(0);
    expect(r.stdout.trim()).toMatch(/^teleport-mattermost v\d+\.\d+\.\d+ git:0123456789ab node24\.\d+\.\d+$/);
  });

  it('has --help on every command', () => {
    for (const cmd of [[], ['start'], ['configure'], ['version'], ['operator']]) {
      const r = run([...cmd, '--help']);
      expect(r.code).toBe(0);
      expect(r.stdout).toMatch(/^Usage: teleport-mattermost/);
    }
  });

  it('operator: exits 2 saying how to provide a kubeconfig when there is none', () => {
    const home = fs.mkdtempSync(path.join(os.tmpdir(), 'cli-home-'));
    const noFile = run(['operator', '--metrics-addr', '127.0.0.1:0'], { KUBECONFIG: '/nonexistent' });
    expect(noFile.stderr).toContain(
      'no kubeconfig: KUBECONFIG=/nonexistent names no existing file; set KUBECONFIG to a kubeconfig file or run in-cluster',
    );
    expect(noFile.stderr).not.toContain('ENOENT');
    expect(noFile.code).toBe(2);
    const none = run(['operator', '--metrics-addr', '127.0.0.1:0'], {
      KUBECONFIG: '',
      HOME: home,
      KUBERNETES_SERVICE_HOST: '',
    });
    expect(none.stderr).toContain('no kubeconfig: set KUBECONFIG or run in-cluster');
    expect(none.code).toBe(2);
  });

  it('exits 2 on usage errors', () => {
    expect(run(['frobnicate']).code).toBe(2);
    const r = run(['start', '--colour']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/Unknown option '--colour'/);
    expect(run([]).code).toBe(2);
  });

  it('configure prints a config that start parses (then fails at run time on the missing identity, not on config)', () => {
    const r = run(['configure']);
    expect(r.code).toBe(0);
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cli-'));
    const file = path.join(dir, 'x.toml');
    fs.writeFileSync(
      file,
      r.stdout.replace('"example.com:3025"', '"127.0.0.1:1"').replace(':8081', '127.0.0.1:0'),
    );
    const s = run(['start', '-c', file]);
    expect(s.stderr).not.toMatch(/configuration .* (is invalid|has \d+ problems)/);
    expect(s.stderr).toMatch(/Starting Teleport Access Mattermost Plugin/);
    // An unusable identity at start is a configuration error (issue 15).
    expect(s.stderr).toMatch(/identity file does not exist/);
    expect(s.code).toBe(2);
  });

  it('exits 2 with every problem listed for a bad config', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cli-'));
    const file = path.join(dir, 'bad.toml');
    fs.writeFileSync(file, '[mattermost]\nurl = "mm.example.com"\n[log]\nseverity = "loud"\n');
    const r = run(['start', '-c', file]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(`configuration ${file} has 4 problems:`);
    expect(r.stderr).toContain("mattermost.url: must be an http(s) URL, got 'mm.example.com'");
    expect(r.stderr).toContain("log.severity: must be one of DEBUG, INFO, WARN, ERROR, got 'loud'");
  });

  it('exits 2 when the default config file does not exist', () => {
    const r = run(['start', '-c', '/nonexistent/teleport-mattermost.toml']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/does not exist; create it/);
  });

  it('prints the deprecation warning for the guide file and never the token', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cli-'));
    const file = path.join(dir, 'guide.toml');
    const guide = fs.readFileSync(path.join(root, 'test/fixtures/guide/teleport-mattermost.toml'), 'utf8');
    fs.writeFileSync(
      file,
      guide
        .replace('myinstance.teleport.sh:443', '127.0.0.1:1')
        .replace('/var/lib/teleport/plugins/mattermost/identity', path.join(dir, 'identity'))
        .concat('\n[http]\nlisten_addr = "127.0.0.1:0"\n'),
    );
    const r = run(['start', '-c', file, '-d']);
    expect(r.stderr).toContain('teleport.auth_server is deprecated');
    expect(r.stderr).toContain('DEBUG logging enabled');
    expect(r.stderr).not.toContain('api-token');
    expect(r.code).toBe(2);
  });

  it('exits 2 naming log.output when it cannot be written, instead of logging nowhere (issue 15)', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cli-'));
    const file = path.join(dir, 'x.toml');
    const base = run(['configure']).stdout.replace(':8081', '127.0.0.1:0');
    // A directory, and a parent that cannot be created (a file is in the way).
    for (const output of [dir, path.join(file, 'sub', 'plugin.log')]) {
      fs.writeFileSync(file, `${base}\n`.replace(/^output = .*$/m, `output = "${output}"`));
      const r = run(['start', '-c', file]);
      expect(r.code).toBe(2);
      expect(r.stderr).toMatch(/log\.output: /);
    }
  });

  it('has every line in a log.output file when it exits, the last one included', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cli-'));
    const file = path.join(dir, 'x.toml');
    const logFile = path.join(dir, 'logs', 'plugin.log');
    const base = run(['configure'])
      .stdout.replace('"example.com:3025"', '"127.0.0.1:1"')
      .replace(':8081', '127.0.0.1:0')
      .replace(/^output = .*$/m, `output = "${logFile}"`)
      .replace(/^format = .*$/m, 'format = "json"');
    fs.writeFileSync(file, base);
    const r = run(['start', '-c', file]);
    expect(r.code).toBe(2); // process.exit right after the last line
    const lines = fs
      .readFileSync(logFile, 'utf8')
      .trimEnd()
      .split('\n')
      .map((l) => JSON.parse(l) as Record<string, string>);
    expect(lines[0]).toMatchObject({ level: 'info', message: 'Starting Teleport Access Mattermost Plugin' });
    expect(lines.at(-1)).toMatchObject({ level: 'error', message: 'Cannot use the Teleport credentials' });
    expect(lines.at(-1)!.error).toMatch(/identity file does not exist/);
  });

  it('a crash still shows the line logged just before it, on stderr and in a file', () => {
    const logFile = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'cli-')), 'crash.log');
    const loggerModule = path.join(root, 'dist/operator/observability/logger.js');
    const script = [
      `import { createLogger } from ${JSON.stringify(loggerModule)};`,
      `const file = createLogger({ severity: 'info', format: 'text', output: ${JSON.stringify(logFile)} });`,
      "const stderr = createLogger({ severity: 'info', format: 'text', output: 'stderr' });",
      "file.error('last words', { n: 1 });",
      "stderr.error('last words', { n: 2 });",
      "throw new Error('crash');",
    ].join('\n');
    const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8' });
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/ ERROR last words n=2\n/);
    expect(fs.readFileSync(logFile, 'utf8')).toMatch(/ ERROR last words n=1\n$/);
  });

  it('exits 2 naming the key and file for a token that cannot be a header, never showing it (issue 15)', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cli-'));
    const tokenFile = path.join(dir, 'token');
    fs.writeFileSync(tokenFile, 'firstlinesecret\nsecondlinesecret\n');
    const file = path.join(dir, 'x.toml');
    const base = run(['configure']).stdout.replace(':8081', '127.0.0.1:0');
    fs.writeFileSync(file, base.replace(/^token = .*$/m, `token = "${tokenFile}"`));
    const r = run(['start', '-c', file]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(`mattermost.token (read from the file ${tokenFile}): contains a line break`);
    expect(r.stderr).not.toMatch(/firstlinesecret|secondlinesecret/);
  });
});
