// The benchmark stack: the in-repo Teleport-compatible and Mattermost-compatible servers on loopback in
// this process, and the relay as its own process (the built CLI, `teleport-mattermost start -c file`),
// so its memory and CPU are its own and a kill -9 is a real one.
import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream, existsSync, type WriteStream } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { POST_PROPS } from '../../operator/relay/reconcile.js';
import type { AccessRequest } from '../../operator/teleport/api.js';
import {
  startFakeMattermost,
  type FakeMattermost,
  type PostRecord,
} from '../../test/mattermost-server/index.js';
import { startFakeTeleport, type FakeTeleport } from '../../test/teleport-server/index.js';
import { IMAGE_ENV, IMAGE_NODE_ARGS, IMAGE_NODE_OPTIONS } from './image-env.js';
import { freePort, sleep } from './measure.js';

const here = path.dirname(fileURLToPath(import.meta.url));
/** The CLI the image ships (dist/bundle, built by `make build`), else the compiled sources. */
export const CLI = [
  path.resolve(here, '../../bundle/main.mjs'),
  path.resolve(here, '../../operator/cli/main.js'),
].find((p) => existsSync(p))!;

/** The image's NODE_OPTIONS; BENCH_RELAY_NODE_OPTIONS replaces them (V8 flags for the relay only). */
export const relayNodeOptions = (): string => process.env.BENCH_RELAY_NODE_OPTIONS ?? IMAGE_NODE_OPTIONS;
/**
 * The image's ENTRYPOINT node flags; BENCH_RELAY_NODE_ARGS replaces them (flags NODE_OPTIONS does not accept,
 * e.g. --no-opt; "" runs the relay without any).
 */
export const relayNodeArgs = (): string => process.env.BENCH_RELAY_NODE_ARGS ?? IMAGE_NODE_ARGS.join(' ');
/** More environment for the relay only, e.g. BENCH_RELAY_ENV="MALLOC_ARENA_MAX=1 MALLOC_TRIM_THRESHOLD_=0". */
const relayExtraEnv = (): Record<string, string> =>
  Object.fromEntries(
    (process.env.BENCH_RELAY_ENV ?? '')
      .split(/\s+/)
      .filter((kv) => kv.includes('='))
      .map((kv) => [kv.slice(0, kv.indexOf('=')), kv.slice(kv.indexOf('=') + 1)]),
  );

const REQUEST_ID_PROP = POST_PROPS.requestId;

export const CHANNEL = 'bench-team/access-requests';
export const REVIEWER = 'reviewer@example.com';

export interface RelayProcess {
  readonly pid: number;
  readonly child: ChildProcess;
  readonly spawnedAt: number;
  /** Resolves with the ms from spawn to the first 200 from /readyz. */
  waitReady(timeoutMs?: number): Promise<number>;
  kill9(): Promise<void>;
  /** SIGTERM and wait for the exit. */
  stop(): Promise<void>;
  exited(): boolean;
}

export interface BenchStack {
  teleport: FakeTeleport;
  mattermost: FakeMattermost;
  dir: string;
  configPath: string;
  identityPath: string;
  healthPort: number;
  /** The bot's token and the channel's id (for the bare post loop). */
  token: string;
  channelId: string;
  /** Recipients per request (every request goes to the channel and to the reviewer's DM). */
  recipients: number;
  /** performance.now() of the accepted root post per `${requestId}|${channelId}` (first one wins). */
  accepted: Map<string, number>;
  /**
   * performance.now() when the server began to create that root post (first one wins): what the relay's
   * own latency ends at. The server then spends its save time (test/mattermost-server/model.ts) before
   * `accepted`, as the real server writes to its database.
   */
  arrived: Map<string, number>;
  /** performance.now() when each request was created. */
  created: Map<string, number>;
  createRequest(partial?: Partial<AccessRequest>): AccessRequest;
  startRelay(): RelayProcess;
  /** Delivered / expected / duplicated root posts for the requests created so far. */
  count(): { delivered: number; expected: number; duplicates: number; lost: number };
  /** Root posts counted by request id + channel (for duplicates). */
  rootPosts(): PostRecord[];
  stop(): Promise<void>;
}

export async function startBenchStack(
  opts: {
    refreshIdentity?: boolean;
    identityTtlMs?: number;
    logSeverity?: string;
    /** More recipients for every request, after the channel and the reviewer (P6). */
    extraRecipients?: string[];
  } = {},
): Promise<BenchStack> {
  const dir = await mkdtemp(path.join(tmpdir(), 'bench-'));
  const teleport = await startFakeTeleport();
  const mattermost = await startFakeMattermost();
  const { user: bot, token } = mattermost.addBot({ username: 'teleport' });
  mattermost.addUser({ email: REVIEWER });
  mattermost.addTeam({ name: 'bench-team', displayName: 'Bench', members: [bot.id] });
  const channel = mattermost.addChannel({ team: 'bench-team', name: 'access-requests', members: [bot.id] });

  const accepted = new Map<string, number>();
  const arrived = new Map<string, number>();
  const created = new Map<string, number>();
  // Record the moment the server accepted each root post, with sub-millisecond resolution.
  const store = mattermost.store as unknown as {
    createPost: (...args: unknown[]) => Promise<{ post: PostRecord }>;
  };
  const original = store.createPost.bind(store);
  store.createPost = async (...args: unknown[]) => {
    const started = performance.now();
    const result = await original(...args);
    const p = result.post;
    const id = p.props[REQUEST_ID_PROP];
    if (p.rootId === '' && typeof id === 'string' && p.props[POST_PROPS.kind] === 'request') {
      const key = `${id}|${p.channelId}`;
      if (!accepted.has(key)) accepted.set(key, performance.now());
      if (!arrived.has(key)) arrived.set(key, started);
    }
    return result;
  };

  // notBefore 1 s back (the test CA's default is a minute back), so ttl is the lifetime from now.
  const identityPath = await teleport.writeIdentity({
    dir,
    ttlMs: (opts.identityTtlMs ?? 24 * 3600_000) + 1000,
    notBefore: new Date(Date.now() - 1000),
  });
  const healthPort = await freePort();
  const configPath = path.join(dir, 'teleport-mattermost.toml');
  await writeFile(
    configPath,
    `[teleport]
addr = "${teleport.authAddr}"
identity = "${identityPath}"
refresh_identity = ${opts.refreshIdentity ? 'true' : 'false'}
refresh_identity_interval = "5s"

[mattermost]
url = "${mattermost.url}"
token = "${token}"

[role_to_recipients]
"*" = ${JSON.stringify([CHANNEL, REVIEWER, ...(opts.extraRecipients ?? [])])}

[log]
output = "stderr"
severity = "${opts.logSeverity ?? 'WARN'}"

[http]
listen_addr = "127.0.0.1:${healthPort}"
`,
  );

  const relays: RelayProcess[] = [];
  const log: WriteStream = createWriteStream(path.join(dir, 'relay.log'));

  const rootPosts = () =>
    mattermost
      .posts()
      .filter(
        (p) =>
          p.rootId === '' &&
          typeof p.props[REQUEST_ID_PROP] === 'string' &&
          p.props[POST_PROPS.kind] === 'request',
      );

  return {
    teleport,
    mattermost,
    dir,
    configPath,
    identityPath,
    healthPort,
    token,
    channelId: channel.id,
    recipients: 2,
    accepted,
    arrived,
    created,
    createRequest(partial) {
      const request = teleport.createRequest({ user: 'alice@example.com', roles: ['editor'], ...partial });
      created.set(request.id, performance.now());
      return request;
    },
    startRelay() {
      const spawnedAt = performance.now();
      // The image's NODE_OPTIONS and ENTRYPOINT flags, or what the BENCH_RELAY_* variables put instead.
      const nodeArgs = relayNodeArgs().split(/\s+/).filter(Boolean);
      const child = spawn(process.execPath, [...nodeArgs, CLI, 'start', '-c', configPath], {
        stdio: ['ignore', 'ignore', 'pipe'],
        env: { ...process.env, ...IMAGE_ENV, NODE_OPTIONS: relayNodeOptions(), ...relayExtraEnv() },
      });
      child.stderr!.pipe(log, { end: false });
      let exited = false;
      const exit = new Promise<void>((r) => child.once('exit', () => ((exited = true), r())));
      const relay: RelayProcess = {
        pid: child.pid!,
        child,
        spawnedAt,
        async waitReady(timeoutMs = 30_000) {
          const deadline = Date.now() + timeoutMs;
          for (;;) {
            if (exited) throw new Error(`the relay exited before it was ready (see ${dir}/relay.log)`);
            try {
              const res = await fetch(`http://127.0.0.1:${healthPort}/readyz`);
              await res.arrayBuffer();
              if (res.status === 200) return performance.now() - spawnedAt;
            } catch {
              // not listening yet
            }
            if (Date.now() > deadline) throw new Error(`the relay was not ready within ${timeoutMs} ms`);
            await sleep(5);
          }
        },
        async kill9() {
          if (!exited) child.kill('SIGKILL');
          await exit;
        },
        async stop() {
          if (!exited) child.kill('SIGTERM');
          const timer = setTimeout(() => child.kill('SIGKILL'), 20_000);
          await exit;
          clearTimeout(timer);
        },
        exited: () => exited,
      };
      relays.push(relay);
      return relay;
    },
    rootPosts,
    count() {
      const perKey = new Map<string, number>();
      for (const p of rootPosts()) {
        const key = `${p.props[REQUEST_ID_PROP] as string}|${p.channelId}`;
        perKey.set(key, (perKey.get(key) ?? 0) + 1);
      }
      const expected = created.size * 2;
      let delivered = 0;
      let duplicates = 0;
      for (const [key, n] of perKey) {
        if (!created.has(key.split('|')[0]!)) continue;
        delivered++;
        duplicates += n - 1;
      }
      return { delivered, expected, duplicates, lost: expected - delivered };
    },
    async stop() {
      for (const r of relays) await r.stop().catch(() => undefined);
      log.end();
      await mattermost.stop();
      await teleport.stop();
      if (!process.env.BENCH_KEEP) await rm(dir, { recursive: true, force: true });
    },
  };
}

/** Creates `count` requests at `perSecond`, evenly paced; resolves when the last one is created. */
export async function paced(
  stack: BenchStack,
  count: number,
  perSecond: number,
  stop?: () => boolean,
): Promise<number> {
  const start = performance.now();
  let made = 0;
  while (made < count && !stop?.()) {
    const due = start + (made * 1000) / perSecond;
    const wait = due - performance.now();
    if (wait > 1) await sleep(wait);
    stack.createRequest();
    made++;
  }
  return made;
}
