// A real Mattermost server (Team Edition, built by test/mattermost-real/tools.sh) on loopback, with a
// private PostgreSQL cluster, both in one throwaway directory. Mattermost is configured only through
// MM_* environment variables over an empty config.json, with everything that calls out switched off,
// so it never writes its own defaults (ListenAddress ":8065", diagnostics on) nor reaches the network.
//
//   const mm = await startRealMattermost();   // ~10 s cold (migrations), then bootstrap.ts seeds it
//   const limited = await mm.startInstance({ rateLimit: { perSec: 2, maxBurst: 4 } }); // same data
//   await mm.stop();
//
// Every process is a direct child (postgres runs under the `postgres` user when we are root, as it
// refuses root); stop() and the exit/signal hooks end them by pid and remove the directory.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import {
  chmodSync,
  chownSync,
  closeSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

const here = path.dirname(new URL(import.meta.url).pathname);

/** Reads the pins of versions.env (KEY=value lines). */
export function pins(): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of readFileSync(path.join(here, 'versions.env'), 'utf8').split('\n')) {
    const m = /^([A-Z_]+)=(.*)$/.exec(line.trim());
    if (m) out[m[1]!] = m[2]!;
  }
  return out;
}

function toolsDir(): string {
  if (process.env.TOOLS_DIR) return process.env.TOOLS_DIR;
  const cache = process.env.XDG_CACHE_HOME || path.join(os.homedir(), '.cache');
  return path.join(cache, 'teleport-plugin-mattermost', 'tools');
}

/** Where tools.sh installs the server: bin/mattermost with i18n/, templates/, fonts/ next to bin/. */
export function mattermostHome(): string {
  const home = path.join(toolsDir(), `mattermost-${pins().MATTERMOST_SERVER_VERSION}`);
  if (!existsSync(path.join(home, 'bin', 'mattermost'))) {
    throw new Error(`Mattermost is not built (${home}/bin/mattermost is missing): run \`make tools\``);
  }
  return home;
}

function postgresBin(name: string): string {
  const file = path.join('/usr/lib/postgresql', pins().POSTGRES_MAJOR ?? '15', 'bin', name);
  if (!existsSync(file)) {
    throw new Error(`${file} is missing: run \`make tools\` (installs postgresql-${pins().POSTGRES_MAJOR})`);
  }
  return file;
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as net.AddressInfo;
      srv.close(() => resolve(port));
    });
  });
}

/** A child process whose output goes to a log file (its tail is shown when it fails to start). */
interface Proc {
  child: ChildProcess;
  output(): string;
  exited: Promise<void>;
}

/**
 * Output goes to a file, not a pipe: postgres's own background processes would inherit a pipe and keep
 * it (and so this process) open after the server is gone.
 */
function run(
  cmd: string,
  args: string[],
  opts: { cwd?: string; env?: NodeJS.ProcessEnv; uid?: number; gid?: number; log: string },
): Proc {
  const { log, ...spawnOpts } = opts;
  const fd = openSync(log, 'a', 0o666);
  let child: ChildProcess;
  try {
    child = spawn(cmd, args, { ...spawnOpts, stdio: ['ignore', fd, fd] });
  } finally {
    closeSync(fd);
  }
  // Never what keeps the test process alive: stop() and the exit hooks end it explicitly.
  child.unref();
  let failure = '';
  child.once('error', (err) => (failure = `\n${String(err)}`));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const output = () => {
    try {
      return readFileSync(log, 'utf8').slice(-20_000) + failure;
    } catch {
      return failure;
    }
  };
  return { child, output, exited };
}

async function stopProc(p: Proc | undefined, signal: NodeJS.Signals, graceMs: number): Promise<void> {
  if (!p || p.child.exitCode !== null || p.child.signalCode !== null) return;
  p.child.kill(signal);
  let timer: NodeJS.Timeout | undefined;
  const done = await Promise.race([
    p.exited.then(() => true),
    new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(false), graceMs))),
  ]);
  clearTimeout(timer);
  if (!done) {
    p.child.kill('SIGKILL');
    await p.exited;
  }
}

/** Runs under the `postgres` user when we are root (PostgreSQL refuses to run as root). */
function postgresIdentity(): { uid?: number; gid?: number } {
  if (process.getuid?.() !== 0) return {};
  const uid = Number(spawnSync('id', ['-u', 'postgres'], { encoding: 'utf8' }).stdout.trim());
  const gid = Number(spawnSync('id', ['-g', 'postgres'], { encoding: 'utf8' }).stdout.trim());
  if (!Number.isInteger(uid) || !Number.isInteger(gid) || uid <= 0) {
    throw new Error('running as root but there is no `postgres` user: install postgresql (make tools)');
  }
  return { uid, gid };
}

export interface InstanceOptions {
  /** RateLimitSettings: on with this rate, keyed by the remote address (as by default). */
  rateLimit?: { perSec: number; maxBurst: number };
}

export interface MattermostInstance {
  readonly url: string;
  readonly port: number;
  /** Ends this server process (SIGTERM, then SIGKILL after 10 s). */
  stop(): Promise<void>;
}

export interface RealMattermost extends MattermostInstance {
  readonly dir: string;
  readonly dataSource: string;
}

/** The MM_* environment: loopback, PostgreSQL, and nothing that calls out. */
export function mattermostEnv(
  o: { dir: string; port: number; dataSource: string } & InstanceOptions,
): Record<string, string> {
  const url = `http://127.0.0.1:${o.port}`;
  const env: Record<string, string> = {
    MM_SQLSETTINGS_DRIVERNAME: 'postgres',
    MM_SQLSETTINGS_DATASOURCE: o.dataSource,
    MM_SERVICESETTINGS_LISTENADDRESS: `127.0.0.1:${o.port}`,
    MM_SERVICESETTINGS_SITEURL: url,
    MM_SERVICESETTINGS_WEBSERVERMODE: 'disabled',
    MM_SERVICESETTINGS_ENABLEBOTACCOUNTCREATION: 'true',
    MM_SERVICESETTINGS_ENABLEUSERACCESSTOKENS: 'true',
    MM_SERVICESETTINGS_ENABLELOCALMODE: 'false',
    MM_TEAMSETTINGS_ENABLEOPENSERVER: 'true',
    MM_FILESETTINGS_DIRECTORY: path.join(o.dir, 'data'),
    MM_PLUGINSETTINGS_DIRECTORY: path.join(o.dir, 'plugins'),
    MM_PLUGINSETTINGS_CLIENTDIRECTORY: path.join(o.dir, 'client-plugins'),
    MM_LOGSETTINGS_ENABLECONSOLE: 'true',
    MM_LOGSETTINGS_CONSOLELEVEL: 'ERROR',
    MM_LOGSETTINGS_ENABLEFILE: 'false',
    MM_LOGSETTINGS_FILELOCATION: o.dir,
    MM_NOTIFICATIONLOGSETTINGS_ENABLEFILE: 'false',
    MM_NOTIFICATIONLOGSETTINGS_FILELOCATION: o.dir,
    // Off: everything that calls out.
    MM_LOGSETTINGS_ENABLEDIAGNOSTICS: 'false',
    MM_LOGSETTINGS_ENABLESENTRY: 'false',
    MM_SERVICESETTINGS_ENABLESECURITYFIXALERT: 'false',
    MM_ANNOUNCEMENTSETTINGS_ADMINNOTICESENABLED: 'false',
    MM_ANNOUNCEMENTSETTINGS_USERNOTICESENABLED: 'false',
    MM_PLUGINSETTINGS_ENABLE: 'false',
    MM_PLUGINSETTINGS_ENABLEMARKETPLACE: 'false',
    MM_PLUGINSETTINGS_ENABLEREMOTEMARKETPLACE: 'false',
    MM_PLUGINSETTINGS_AUTOMATICPREPACKAGEDPLUGINS: 'false',
    MM_SERVICESETTINGS_ENABLELINKPREVIEWS: 'false',
    MM_SERVICESETTINGS_ENABLEPERMALINKPREVIEWS: 'false',
    MM_SERVICESETTINGS_ENABLEGIFPICKER: 'false',
    MM_IMAGEPROXYSETTINGS_ENABLE: 'false',
    MM_EMAILSETTINGS_SENDEMAILNOTIFICATIONS: 'false',
    MM_EMAILSETTINGS_SENDPUSHNOTIFICATIONS: 'false',
    MM_EMAILSETTINGS_PUSHNOTIFICATIONSERVER: '',
    MM_METRICSSETTINGS_ENABLE: 'false',
    MM_CLUSTERSETTINGS_ENABLE: 'false',
    MM_RATELIMITSETTINGS_ENABLE: o.rateLimit ? 'true' : 'false',
  };
  if (o.rateLimit) {
    env.MM_RATELIMITSETTINGS_PERSEC = String(o.rateLimit.perSec);
    env.MM_RATELIMITSETTINGS_MAXBURST = String(o.rateLimit.maxBurst);
    env.MM_RATELIMITSETTINGS_VARYBYREMOTEADDR = 'true';
  }
  return env;
}

/**
 * What the exit and signal hooks clean up: processes to kill, then directories to remove. One registry per
 * process, on globalThis: jest loads this file once for global setup and again in each test file's module
 * registry (the same process under --runInBand), and a signal must end the servers of all of them.
 */
interface Cleanup {
  live: Set<() => void>;
  dirs: Set<string>;
  hooked: boolean;
}
const cleanup: Cleanup = ((globalThis as { __TPM_MM_REAL_CLEANUP__?: Cleanup }).__TPM_MM_REAL_CLEANUP__ ??= {
  live: new Set(),
  dirs: new Set(),
  hooked: false,
});
const { live, dirs } = cleanup;
function hookExit(): void {
  if (cleanup.hooked) return;
  cleanup.hooked = true;
  const killAll = () => {
    for (const kill of [...live]) kill();
    for (const dir of [...dirs]) rmSync(dir, { recursive: true, force: true });
  };
  process.once('exit', killAll);
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    process.once(sig, () => {
      killAll();
      process.exit(128 + (os.constants.signals[sig] ?? 0));
    });
  }
}

async function waitForPing(url: string, proc: Proc, what: string, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (proc.child.exitCode !== null || proc.child.signalCode !== null) {
      throw new Error(`${what} exited during start-up; last output:\n${proc.output().slice(-3000)}`);
    }
    try {
      const res = await fetch(`${url}/api/v4/system/ping`, { signal: AbortSignal.timeout(2000) });
      if (res.ok) return;
    } catch {
      /* not listening yet */
    }
    if (Date.now() > deadline) {
      throw new Error(
        `${what} did not answer /api/v4/system/ping within ${timeoutMs} ms; last output:\n${proc.output().slice(-3000)}`,
      );
    }
    await sleep(200);
  }
}

async function startPostgres(dir: string): Promise<{ proc: Proc; dataSource: string }> {
  const who = postgresIdentity();
  const pgdata = path.join(dir, 'pg');
  const sockets = path.join(dir, 'pg-socket');
  for (const d of [pgdata, sockets]) {
    mkdirSync(d, { mode: 0o700 });
    if (who.uid !== undefined) chownSync(d, who.uid, who.gid!);
  }
  const init = spawnSync(
    postgresBin('initdb'),
    ['-D', pgdata, '-A', 'trust', '-U', 'postgres', '-E', 'UTF8', '--no-sync'],
    {
      ...who,
      encoding: 'utf8',
    },
  );
  if (init.status !== 0) throw new Error(`initdb failed:\n${init.stdout}\n${init.stderr}`);
  const port = await freePort();
  // Throwaway data: no fsync keeps the server fast on a busy machine.
  const proc = run(
    postgresBin('postgres'),
    [
      '-D',
      pgdata,
      '-p',
      String(port),
      '-k',
      sockets,
      '-c',
      'listen_addresses=127.0.0.1',
      '-c',
      'fsync=off',
      '-c',
      'synchronous_commit=off',
      '-c',
      'full_page_writes=off',
      '-c',
      'max_connections=200',
    ],
    { ...who, log: path.join(dir, 'postgres.log') },
  );
  const deadline = Date.now() + 30_000;
  for (;;) {
    const ready = spawnSync(
      postgresBin('pg_isready'),
      ['-h', '127.0.0.1', '-p', String(port), '-U', 'postgres'],
      { encoding: 'utf8' },
    );
    if (ready.status === 0) break;
    if (proc.child.exitCode !== null || Date.now() > deadline) {
      await stopProc(proc, 'SIGKILL', 1000);
      throw new Error(`PostgreSQL did not start; output:\n${proc.output()}`);
    }
    await sleep(100);
  }
  return {
    proc,
    dataSource: `postgres://postgres@127.0.0.1:${port}/postgres?sslmode=disable&connect_timeout=10`,
  };
}

/**
 * A Mattermost process on an existing database and directory: the tier's main server, or another one
 * on the same data (e.g. with the rate limiter on, which is read only at start-up).
 */
export async function startMattermostProcess(
  o: { dir: string; dataSource: string; name: string } & InstanceOptions,
): Promise<MattermostInstance> {
  const { dir, dataSource, name } = o;
  const home = mattermostHome();
  hookExit();
  const opts: InstanceOptions = o.rateLimit ? { rateLimit: o.rateLimit } : {};
  const port = await freePort();
  const config = path.join(dir, `${name}.config.json`);
  writeFileSync(config, '{}\n');
  const env = {
    PATH: process.env.PATH ?? '/usr/bin:/bin',
    HOME: dir,
    TMPDIR: dir,
    ...mattermostEnv({ dir, port, dataSource, ...opts }),
  };
  const proc = run(path.join(home, 'bin', 'mattermost'), ['server', '--config', config], {
    cwd: home,
    env,
    log: path.join(dir, `${name}.log`),
  });
  const kill = () => proc.child.kill('SIGKILL');
  live.add(kill);
  const url = `http://127.0.0.1:${port}`;
  try {
    await waitForPing(url, proc, `Mattermost (${name})`, 120_000);
  } catch (err) {
    await stopProc(proc, 'SIGKILL', 1000);
    live.delete(kill);
    throw err;
  }
  return {
    url,
    port,
    async stop() {
      await stopProc(proc, 'SIGTERM', 10_000);
      live.delete(kill);
    },
  };
}

/** PostgreSQL + the tier's Mattermost in a new directory; stop() ends both and removes it. */
export async function startRealMattermost(): Promise<RealMattermost> {
  mattermostHome(); // fail fast, before initdb, when the server is not built
  hookExit();
  const dir = mkdtempSync(path.join(os.tmpdir(), 'mm-real-'));
  // postgres (another user) must be able to reach its directories inside.
  chmodSync(dir, 0o755);
  dirs.add(dir);
  let pg: Awaited<ReturnType<typeof startPostgres>> | undefined;
  const killPg = () => pg?.proc.child.kill('SIGKILL');
  live.add(killPg);
  let main: MattermostInstance | undefined;
  const stopAll = async (pgSignal: NodeJS.Signals) => {
    await main?.stop();
    await stopProc(pg?.proc, pgSignal, 10_000);
    live.delete(killPg);
    rmSync(dir, { recursive: true, force: true });
    dirs.delete(dir);
  };
  try {
    pg = await startPostgres(dir);
    main = await startMattermostProcess({ dir, dataSource: pg.dataSource, name: 'main' });
    return { dir, dataSource: pg.dataSource, url: main.url, port: main.port, stop: () => stopAll('SIGINT') };
  } catch (err) {
    await stopAll('SIGKILL');
    throw err;
  }
}
