import { mkdtemp } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { status } from '@grpc/grpc-js';
import type { TeleportConfig } from '../../../operator/config/types.js';
import { isTeleportError } from '../../../operator/teleport/api.js';
import type { WatchEvent, WatchKindName } from '../../../operator/teleport/api.js';
import { connectTeleport, TELEPORT_MAX_MESSAGE_BYTES } from '../../../operator/teleport/client.js';
import type { ConnectOptions, TeleportClient } from '../../../operator/teleport/client.js';
import { IdentityError } from '../../../operator/teleport/identity.js';
import { captureLogger, silentLogger } from '../../../operator/observability/logger.js';
import { startFakeTeleport } from '../../teleport-server/index.js';
import type { FakeTeleport } from '../../teleport-server/index.js';

const logger = silentLogger();
const FAST: ConnectOptions = { backoffMinMs: 5, backoffMaxMs: 50, connectTimeoutMs: 5000 };

let tp: FakeTeleport;
let dir: string;
let identityPath: string;
const clients: TeleportClient[] = [];

beforeAll(async () => {
  tp = await startFakeTeleport({ clusterName: 'example.teleport.sh' });
  dir = await mkdtemp(join(tmpdir(), 'tp-client-'));
  identityPath = await tp.writeIdentity({ dir, keyType: 'rsa' });
});

afterAll(async () => {
  for (const c of clients) c.close();
  await tp.stop();
});

function config(addr: string, extra: Partial<TeleportConfig> = {}): TeleportConfig {
  return {
    addr,
    identity: identityPath,
    refreshIdentity: false,
    refreshIdentityIntervalMs: 60_000,
    ...extra,
  };
}

async function connect(
  addr: string,
  opts: ConnectOptions = {},
  extra: Partial<TeleportConfig> = {},
): Promise<TeleportClient> {
  const c = await connectTeleport(config(addr, extra), logger, { ...FAST, ...opts });
  clients.push(c);
  return c;
}

/** Consumes a watch in the background and lets the test wait for events. */
class Collector {
  readonly events: WatchEvent[] = [];
  private readonly abort = new AbortController();
  private waiters: Array<() => void> = [];
  done: Promise<void>;
  constructor(client: TeleportClient, kinds: WatchKindName[] = ['access_request']) {
    this.done = (async () => {
      for await (const ev of client.watch(kinds, this.abort.signal)) {
        this.events.push(ev);
        for (const w of this.waiters) w();
      }
    })();
  }
  async waitFor(pred: (events: WatchEvent[]) => boolean, what: string, timeoutMs = 10_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!pred(this.events)) {
      if (Date.now() > deadline)
        throw new Error(
          `timed out waiting for ${what}; got ${JSON.stringify(this.events.map((e) => e.type))}`,
        );
      await new Promise<void>((resolve) => {
        this.waiters.push(resolve);
        setTimeout(resolve, 50);
      });
      this.waiters = [];
    }
  }
  count(type: WatchEvent['type']): number {
    return this.events.filter((e) => e.type === type).length;
  }
  async stop(): Promise<void> {
    this.abort.abort();
    await this.done;
  }
}

const putIds = (events: WatchEvent[]): string[] =>
  events.flatMap((e) => (e.type === 'PUT' ? [`${e.request.id}:${e.request.state}`] : []));

describe('connecting', () => {
  it('connects directly to Auth and pings', async () => {
    const c = await connect(tp.authAddr, { path: 'direct' });
    expect(c.connectionPath()).toBe('direct');
    const pong = await c.ping();
    expect(pong).toEqual({
      clusterName: 'example.teleport.sh',
      serverVersion: '17.4.2',
      proxyPublicAddr: 'example.teleport.sh:443',
      advancedAccessWorkflows: false,
      accessMonitoringConfigured: false,
    });
    expect(c.clusterName()).toBe('example.teleport.sh');
    expect(c.identityExpiry().getTime()).toBeGreaterThan(Date.now());
  });

  it('connects through the TLS-routing proxy front', async () => {
    const c = await connect(tp.proxyAddr, { path: 'proxy' });
    tp.setPing({ advancedAccessWorkflows: true });
    expect((await c.ping()).advancedAccessWorkflows).toBe(true);
    tp.setPing({ advancedAccessWorkflows: false });
    expect(tp.proxyRoutes().some((r) => r.routed && r.alpn[0]?.startsWith('teleport-auth@'))).toBe(true);
  });

  it('chooses the path like upstream: both tried, the one that answers wins', async () => {
    const viaProxy = await connect(tp.proxyAddr);
    expect(viaProxy.connectionPath()).toBe('proxy');
    const viaAuth = await connect(tp.authAddr);
    await expect(viaAuth.ping()).resolves.toMatchObject({ clusterName: 'example.teleport.sh' });
  });

  it('never sends a version header', () => {
    expect(tp.versionHeaders()).toEqual([]);
  });

  it('gives a clear error for an identity of a cluster the proxy does not know', async () => {
    const other = await startFakeTeleport({ clusterName: 'other.example.com' });
    try {
      const otherDir = await mkdtemp(join(tmpdir(), 'tp-other-'));
      const otherIdentity = await other.writeIdentity({ dir: otherDir });
      const err = await connectTeleport(
        config(tp.proxyAddr, { identity: otherIdentity }),
        logger,
        FAST,
      ).catch((e: unknown) => e);
      expect(isTeleportError(err, 'Unavailable')).toBe(true);
      expect((err as Error).message).toContain(tp.proxyAddr);
      expect((err as Error).message).toMatch(/no Auth server for cluster "other\.example\.com"/);
      expect((err as Error).message).toContain(otherIdentity);
    } finally {
      await other.stop();
    }
  });

  it('fails at start for an expired identity, naming the file and time', async () => {
    const path = await tp.writeIdentity({
      dir,
      fileName: 'expired',
      notBefore: new Date(Date.now() - 7200_000),
      ttlMs: 3600_000,
    });
    const err = await connectTeleport(config(tp.authAddr, { identity: path }), logger, FAST).catch(
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(IdentityError);
    expect((err as Error).message).toMatch(
      new RegExp(`${path}: the Teleport certificate expired at \\d{4}-`),
    );
  });

  it('rejects an address without a port', async () => {
    await expect(connectTeleport(config('teleport.example.com'), logger, FAST)).rejects.toMatchObject({
      kind: 'BadParameter',
      message: expect.stringMatching(/must be host:port/),
    });
  });

  it('reports an unreachable address with both attempts', async () => {
    const err = await connectTeleport(config('127.0.0.1:1'), logger, FAST).catch((e: unknown) => e);
    expect(isTeleportError(err, 'Unavailable')).toBe(true);
    expect((err as Error).message).toMatch(/direct to Auth: .*connection refused/);
    expect((err as Error).message).toMatch(/through a TLS-routing Proxy: .*connection refused/);
  });
});

describe('API calls', () => {
  let c: TeleportClient;
  beforeAll(async () => {
    c = await connect(tp.proxyAddr, { path: 'proxy', pageSize: 2 });
  });

  it('lists access requests across pages, with filters', async () => {
    const user = `pager-${Date.now()}@example.com`;
    const made = [1, 2, 3, 4, 5].map((i) => tp.createRequest({ user, requestReason: `r${i}` }));
    tp.setState(made[0]!.id, 'APPROVED');
    const calls = tp.callCount('ListAccessRequests');
    const all = await c.listAccessRequests({ user });
    expect(all.map((r) => r.id).sort()).toEqual(made.map((r) => r.id).sort());
    expect(tp.callCount('ListAccessRequests') - calls).toBe(3);
    const pending = await c.listAccessRequests({ user, state: 'PENDING' });
    expect(pending).toHaveLength(4);
    const one = await c.listAccessRequests({ id: made[2]!.id });
    expect(one).toEqual([
      expect.objectContaining({ id: made[2]!.id, user, requestReason: 'r3', state: 'PENDING' }),
    ]);
    expect(one[0]!.created).toBeInstanceOf(Date);
  });

  it('falls back to GetAccessRequestsV2 when ListAccessRequests is unimplemented', async () => {
    const user = `old-${Date.now()}@example.com`;
    tp.createRequest({ user });
    tp.createRequest({ user });
    tp.setUnimplemented('ListAccessRequests');
    try {
      expect(await c.listAccessRequests({ user })).toHaveLength(2);
      expect(tp.callCount('GetAccessRequestsV2')).toBeGreaterThan(0);
    } finally {
      tp.setUnimplemented('ListAccessRequests', false);
    }
  });

  it('plugin data: must-not-exist create, CAS success and mismatch, NotFound for unknown requests', async () => {
    const r = tp.createRequest();
    expect(await c.getPluginData(r.id, 'mattermost')).toBeUndefined();
    await c.updatePluginData(r.id, 'mattermost', { user: 'alice', messages: '' }, { user: '', messages: '' });
    expect(await c.getPluginData(r.id, 'mattermost')).toEqual({ user: 'alice' });
    // Creating again with "must not exist" fails.
    const again = await c
      .updatePluginData(r.id, 'mattermost', { user: 'bob' }, { user: '', messages: '' })
      .catch((e: unknown) => e);
    expect(isTeleportError(again, 'CompareFailed')).toBe(true);
    expect((again as Error).message).toMatch(
      /UpdatePluginData for request .*expectations not met for field "user"/,
    );
    await c.updatePluginData(r.id, 'mattermost', { messages: 'C1/P1' }, { user: 'alice', messages: '' });
    expect(tp.pluginData(r.id)).toEqual({ user: 'alice', messages: 'C1/P1' });
    // Without expect: unconditional.
    await c.updatePluginData(r.id, 'mattermost', { user: '' });
    expect(tp.pluginData(r.id)).toEqual({ messages: 'C1/P1' });
    const missing = await c
      .updatePluginData('no-such-request', 'mattermost', { a: '1' })
      .catch((e: unknown) => e);
    expect(isTeleportError(missing, 'NotFound')).toBe(true);
    // Data survives deletion of the request.
    tp.deleteRequest(r.id);
    expect(await c.getPluginData(r.id, 'mattermost')).toEqual({ messages: 'C1/P1' });
  });

  it('maps gRPC codes to typed errors', async () => {
    tp.failNext('Ping', status.PERMISSION_DENIED, 'access denied to perform action "read"');
    await expect(c.ping()).rejects.toMatchObject({
      kind: 'AccessDenied',
      grpcCode: status.PERMISSION_DENIED,
    });
    tp.failNext('GetPluginData', status.ALREADY_EXISTS, 'exists');
    await expect(c.getPluginData('x', 'mattermost')).rejects.toMatchObject({ kind: 'AlreadyExists' });
    tp.failNext('GetPluginData', status.UNAVAILABLE, 'down');
    await expect(c.getPluginData('x', 'mattermost')).rejects.toMatchObject({ kind: 'Unavailable' });
  });

  it('refuses an answer over the size cap as LimitExceeded (retried), without reading it all (issue 15)', async () => {
    const c = await connect(tp.authAddr, { path: 'direct' });
    const big = tp.createRequest({ requestReason: 'x'.repeat(TELEPORT_MAX_MESSAGE_BYTES + 1024) });
    try {
      const err = await c.listAccessRequests({ id: big.id }).catch((e: unknown) => e);
      expect(isTeleportError(err, 'LimitExceeded')).toBe(true);
    } finally {
      tp.deleteRequest(big.id);
    }
  });

  it('lists access monitoring rules for the plugin across pages', async () => {
    for (let i = 0; i < 3; i++) {
      tp.putRule({
        name: `rule-${i}`,
        subjects: ['access_request'],
        states: ['approved'],
        condition: 'true',
        notification: { name: i === 2 ? 'slack' : 'mattermost', recipients: [`chan-${i}`] },
      });
    }
    const rules = await c.listAccessMonitoringRules('mattermost');
    expect(rules.map((r) => r.name).sort()).toEqual(['rule-0', 'rule-1']);
    expect(rules[0]!.notification.recipients).toEqual(['chan-0']);
  });
});

describe('watch', () => {
  it('yields INIT, then PUT and DELETE; rule events when asked', async () => {
    const c = await connect(tp.authAddr, { path: 'direct' });
    const w = new Collector(c, ['access_request', 'access_monitoring_rule']);
    await w.waitFor((e) => e.length > 0, 'INIT');
    expect(w.events[0]).toEqual({ type: 'INIT' });
    const r = tp.createRequest({ roles: ['admin'], requestReason: 'need it' });
    tp.submitReview(r.id, { author: 'bob', proposedState: 'APPROVED', reason: 'ok' });
    tp.deleteRequest(r.id);
    tp.putRule({
      name: 'w-rule',
      subjects: ['access_request'],
      states: [],
      condition: '',
      notification: { name: 'mattermost', recipients: [] },
    });
    tp.deleteRule('w-rule');
    await w.waitFor((e) => e.some((x) => x.type === 'RULE_DELETE'), 'rule delete');
    expect(w.events.map((e) => e.type)).toEqual(['INIT', 'PUT', 'PUT', 'DELETE', 'RULE_PUT', 'RULE_DELETE']);
    const approved = w.events[2] as Extract<WatchEvent, { type: 'PUT' }>;
    expect(approved.request).toMatchObject({
      id: r.id,
      state: 'APPROVED',
      roles: ['admin'],
      resolveReason: 'ok',
    });
    expect(approved.request.reviews).toEqual([
      expect.objectContaining({ author: 'bob', proposedState: 'APPROVED' }),
    ]);
    expect(w.events[3]).toEqual({ type: 'DELETE', requestId: r.id });
    expect(w.events[5]).toEqual({ type: 'RULE_DELETE', name: 'w-rule' });
    await w.stop();
  });

  it('survives 10 stream drops: INIT after each, no event missed (with resync) or duplicated', async () => {
    const c = await connect(tp.proxyAddr, { path: 'proxy' });
    const user = `drops-${Date.now()}@example.com`;
    const seen = new Set<string>();
    const delivered: string[] = [];
    let inits = 0;
    const abort = new AbortController();
    let resyncs = Promise.resolve();
    const done = (async () => {
      for await (const ev of c.watch(['access_request'], abort.signal)) {
        if (ev.type === 'INIT') {
          inits++;
          // The caller's resync: list after every INIT.
          resyncs = resyncs.then(async () => {
            for (const r of await c.listAccessRequests({ user })) seen.add(r.id);
          });
        } else if (ev.type === 'PUT' && ev.request.user === user) {
          delivered.push(ev.request.id);
          seen.add(ev.request.id);
        }
      }
    })();
    const created: string[] = [];
    await tp.waitForWatchers(1);
    for (let i = 0; i < 10; i++) {
      created.push(tp.createRequest({ user }).id); // on a live stream
      const before = tp.callCount('WatchEvents');
      expect(tp.dropStreams()).toBeGreaterThanOrEqual(1);
      created.push(tp.createRequest({ user }).id); // while the watcher is down: only resync can see it
      while (tp.callCount('WatchEvents') === before || tp.activeWatchCount() === 0) {
        await new Promise((r) => setTimeout(r, 5));
      }
    }
    created.push(tp.createRequest({ user }).id);
    const deadline = Date.now() + 10_000;
    while ((inits < 11 || seen.size < created.length) && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 20));
    }
    await resyncs;
    abort.abort();
    await done;
    expect(inits).toBe(11);
    expect([...seen].sort()).toEqual([...created].sort());
    expect(new Set(delivered).size).toBe(delivered.length); // no duplicates
  });

  it('reconnects after the connections themselves are cut', async () => {
    const c = await connect(tp.authAddr, { path: 'direct' });
    const w = new Collector(c);
    await w.waitFor((e) => e.length === 1, 'INIT');
    tp.dropConnections();
    await w.waitFor((e) => e.filter((x) => x.type === 'INIT').length === 2, 'second INIT');
    const r = tp.createRequest();
    await w.waitFor((e) => putIds(e).includes(`${r.id}:PENDING`), 'PUT after reconnect');
    await w.stop();
  });

  it('keeps retrying while the role may not watch, and starts once it may', async () => {
    const c = await connect(tp.authAddr, { path: 'direct' });
    tp.denyWatchKind('access_monitoring_rule');
    // Partial success: INIT comes without the refused kind.
    const partial = new Collector(c, ['access_request', 'access_monitoring_rule']);
    await partial.waitFor((e) => e.length === 1, 'INIT with partial kinds');
    await partial.stop();
    const before = tp.callCount('WatchEvents');
    const w = new Collector(c, ['access_monitoring_rule']);
    while (tp.callCount('WatchEvents') < before + 3) await new Promise((r) => setTimeout(r, 10));
    expect(w.events).toEqual([]);
    tp.denyWatchKind('access_monitoring_rule', false);
    await w.waitFor((e) => e.length === 1, 'INIT after the role was fixed');
    await w.stop();
  });

  it.each([
    ['11.3.2', /Access Monitoring Rules routing is unavailable on this Teleport version/],
    ['14.3.0', /This Teleport version has no Access Monitoring Rules/],
  ])(
    'on Teleport %s watches access requests alone, with one line saying why (issue 15)',
    async (version, line) => {
      tp.setPing({ serverVersion: version });
      const { logger: capture, lines } = captureLogger();
      try {
        const c = await connectTeleport(config(tp.authAddr), capture, { ...FAST, path: 'direct' });
        clients.push(c);
        const w = new Collector(c, ['access_request', 'access_monitoring_rule']);
        await w.waitFor((e) => e.some((x) => x.type === 'INIT'), 'INIT');
        const req = tp.createRequest();
        await w.waitFor((e) => putIds(e).includes(`${req.id}:PENDING`), 'the PUT');
        await w.stop();
        const warnings = lines.filter((l) => l.level === 'warn' || l.level === 'error').map((l) => l.message);
        expect(warnings.filter((m) => line.test(m))).toHaveLength(1);
        expect(warnings.filter((m) => /check the plugin role|give the plugin's role/.test(m))).toEqual([]);
      } finally {
        tp.setPing({ serverVersion: '17.4.2' });
      }
    },
  );

  it('restarts a watch whose INIT does not come in time', async () => {
    const c = await connect(tp.authAddr, { path: 'direct', initTimeoutMs: 100 });
    const before = tp.callCount('WatchEvents');
    tp.delay(250);
    const w = new Collector(c);
    try {
      while (tp.callCount('WatchEvents') < before + 2) await new Promise((r) => setTimeout(r, 10));
      expect(w.events).toEqual([]);
    } finally {
      tp.delay(0);
    }
    await w.waitFor((e) => e.length === 1, 'INIT once the server answers in time');
    expect(w.events).toEqual([{ type: 'INIT' }]);
    await w.stop();
  });

  it('ends when the signal aborts', async () => {
    const c = await connect(tp.authAddr, { path: 'direct' });
    const w = new Collector(c);
    await w.waitFor((e) => e.length === 1, 'INIT');
    await w.stop();
    await expect(w.done).resolves.toBeUndefined();
  });
});

describe('identity refresh', () => {
  it('picks up a symlink-swapped identity under a live watch with no missed or duplicated event', async () => {
    const k8sDir = await mkdtemp(join(tmpdir(), 'tp-secret-'));
    const path = await tp.writeIdentity({ dir: k8sDir, symlinkSwap: true, ttlMs: 600_000 });
    const c = await connect(
      tp.proxyAddr,
      { path: 'proxy', recycleOverlapMs: 200, refreshDebounceMs: 20 },
      { identity: path, refreshIdentity: true, refreshIdentityIntervalMs: 3600_000 },
    );
    const firstExpiry = c.identityExpiry();
    const w = new Collector(c);
    await w.waitFor((e) => e.length === 1, 'INIT');
    const user = `rot-${Date.now()}@example.com`;
    const created: string[] = [];
    let stop = false;
    const producer = (async () => {
      while (!stop) {
        created.push(tp.createRequest({ user }).id);
        await new Promise((r) => setTimeout(r, 10));
      }
    })();
    const watchCalls = tp.callCount('WatchEvents');
    // CA rotation too: the old identity would no longer verify Auth's new certificate.
    tp.rotateCA();
    await tp.writeIdentity({ dir: k8sDir, symlinkSwap: true, ttlMs: 7200_000 });
    const deadline = Date.now() + 10_000;
    while (c.identityExpiry().getTime() === firstExpiry.getTime() && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 20));
    }
    expect(c.identityExpiry().getTime()).toBeGreaterThan(firstExpiry.getTime());
    // Let the watch move over and run on the new connection for a while.
    await new Promise((r) => setTimeout(r, 600));
    stop = true;
    await producer;
    const ids = (): string[] =>
      w.events.flatMap((e) => (e.type === 'PUT' && e.request.user === user ? [e.request.id] : []));
    await w.waitFor(() => created.every((id) => ids().includes(id)), 'all PUTs');
    expect(ids().sort()).toEqual([...created].sort());
    expect(w.count('INIT')).toBe(1); // a seamless move: no resync needed
    expect(tp.callCount('WatchEvents')).toBe(watchCalls + 1); // the stream moved to a new connection
    expect(tp.activeWatchCount()).toBeGreaterThanOrEqual(1);
    // New calls work over the new connection (new cert, new CA).
    await expect(c.ping()).resolves.toMatchObject({ clusterName: 'example.teleport.sh' });
    await w.stop();
  });

  it('keeps the current identity when the new file is broken', async () => {
    const d = await mkdtemp(join(tmpdir(), 'tp-broken-'));
    const path = await tp.writeIdentity({ dir: d });
    const c = await connect(
      tp.authAddr,
      { path: 'direct' },
      { identity: path, refreshIdentity: true, refreshIdentityIntervalMs: 3600_000 },
    );
    const before = c.identity().fingerprint;
    const { writeFile } = await import('node:fs/promises');
    await writeFile(path, '-----BEGIN PRIVATE KEY-----\ntruncated\n');
    expect(await c.reloadIdentity()).toBe(false);
    expect(c.identity().fingerprint).toBe(before);
    await expect(c.ping()).resolves.toBeDefined();
  });
});

describe('rejected credentials', () => {
  it('explains a client certificate that Auth does not trust', async () => {
    const { TestCA, writeIdentityFile } = await import('../../teleport-server/ca.js');
    const rogue = TestCA.create('example.teleport.sh');
    const d = await mkdtemp(join(tmpdir(), 'tp-rogue-'));
    // Trusts the real CA (so the server verifies), but the user cert is signed by another CA.
    const path = await writeIdentityFile({ dir: d, ca: rogue, trusted: [tp.ca] });
    const err = await connectTeleport(config(tp.authAddr, { identity: path }), logger, {
      ...FAST,
      path: 'direct',
    }).catch((e: unknown) => e);
    expect(isTeleportError(err, 'Unavailable')).toBe(true);
    expect((err as Error).message).toMatch(/rejected the client certificate/);
  });

  it('says the certificate expired when Auth refuses an identity that expired while running', async () => {
    const d = await mkdtemp(join(tmpdir(), 'tp-short-'));
    const path = await tp.writeIdentity({ dir: d, ttlMs: 61_500 }); // notBefore is 60 s in the past
    const c = await connect(tp.authAddr, { path: 'direct' }, { identity: path });
    await c.ping();
    while (Date.now() < c.identityExpiry().getTime() + 100) await new Promise((r) => setTimeout(r, 50));
    tp.dropConnections();
    // The call in flight when the connection drops sees only the reset; reconnection attempts carry the reason.
    let err: unknown;
    for (let i = 0; i < 40; i++) {
      err = await c.ping().catch((e: unknown) => e);
      if (String((err as Error)?.message).includes('expired at')) break;
      await new Promise((r) => setTimeout(r, 50));
    }
    expect(isTeleportError(err, 'Unavailable')).toBe(true);
    expect((err as Error).message).toContain(`the certificate in ${path} expired at`);
  });
});

describe('HTTPS_PROXY', () => {
  it('tunnels through an HTTP CONNECT proxy (which resolves names the client cannot)', async () => {
    const net = await import('node:net');
    const seen: string[] = [];
    const proxy = net.createServer((client) => {
      let head = Buffer.alloc(0);
      const onData = (d: Buffer): void => {
        head = Buffer.concat([head, d]);
        if (!head.includes('\r\n\r\n')) return;
        client.off('data', onData);
        const text = head.toString('latin1');
        seen.push(text);
        const [, target] = /^CONNECT (\S+) /.exec(text) ?? [];
        const [host, port] = (target ?? '').split(':');
        const upstream = net.connect(Number(port), host === 'teleport.test' ? '127.0.0.1' : host!, () => {
          client.write('HTTP/1.1 200 Connection established\r\n\r\n');
          client.pipe(upstream).pipe(client);
        });
        upstream.on('error', () => client.destroy());
        client.on('error', () => upstream.destroy());
      };
      client.on('data', onData);
    });
    await new Promise<void>((r) => proxy.listen(0, '127.0.0.1', r));
    const proxyPort = (proxy.address() as AddressInfo).port;
    try {
      const addr = `teleport.test:${tp.proxyAddr.split(':')[1]}`;
      const env = { HTTPS_PROXY: `http://user:s3cret@127.0.0.1:${proxyPort}` };
      // A fresh identity: an earlier test rotated the CA.
      const fresh = await tp.writeIdentity({ dir, fileName: 'fresh' });
      const c = await connect(addr, { env }, { identity: fresh });
      expect(c.connectionPath()).toBe('proxy');
      await expect(c.ping()).resolves.toMatchObject({ clusterName: 'example.teleport.sh' });
      expect(seen[0]).toMatch(new RegExp(`^CONNECT ${addr} HTTP/1.1\\r\\nHost: ${addr}\\r\\n`));
      expect(seen[0]).toContain(
        `Proxy-Authorization: Basic ${Buffer.from('user:s3cret').toString('base64')}`,
      );
      // Without the proxy the name does not resolve.
      await expect(
        connectTeleport(config(addr, { identity: fresh }), logger, { ...FAST, env: {} }),
      ).rejects.toMatchObject({
        kind: 'Unavailable',
      });
      // A proxy that refuses.
      const refusing = { HTTPS_PROXY: 'http://127.0.0.1:1' };
      await expect(
        connectTeleport(config(addr, { identity: fresh }), logger, { ...FAST, env: refusing }),
      ).rejects.toThrow(/through the HTTPS proxy http:\/\/127\.0\.0\.1:1/);
    } finally {
      proxy.close();
    }
  });
});

describe('watch under churn', () => {
  it('random stream drops, connection cuts and identity renewals: every request seen, no PUT duplicated', async () => {
    const d = await mkdtemp(join(tmpdir(), 'tp-churn-'));
    const path = await tp.writeIdentity({ dir: d });
    const c = await connect(
      tp.proxyAddr,
      { path: 'proxy', recycleOverlapMs: 30, refreshDebounceMs: 5 },
      { identity: path, refreshIdentity: true, refreshIdentityIntervalMs: 3600_000 },
    );
    const user = `churn-${Date.now()}@example.com`;
    const seen = new Set<string>();
    const puts: string[] = [];
    const abort = new AbortController();
    let resyncs = Promise.resolve();
    const done = (async () => {
      for await (const ev of c.watch(['access_request'], abort.signal)) {
        if (ev.type === 'INIT') {
          resyncs = resyncs.then(async () => {
            for (const r of await c.listAccessRequests({ user }).catch(() => [])) seen.add(r.id);
          });
        } else if (ev.type === 'PUT' && ev.request.user === user) {
          puts.push(`${ev.request.id}:${ev.request.state}`);
          seen.add(ev.request.id);
        }
      }
    })();
    await tp.waitForWatchers(1);
    // Deterministic; CHURN_SEED explores other sequences.
    let seed = Number(process.env.CHURN_SEED ?? 42);
    const rand = (): number => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
    const created: string[] = [];
    let renewals = 0;
    for (let step = 0; step < 40; step++) {
      const r = rand();
      if (r < 0.5) created.push(tp.createRequest({ user }).id);
      else if (r < 0.65) tp.dropStreams();
      else if (r < 0.75) tp.dropConnections();
      else {
        await tp.writeIdentity({ dir: d, ttlMs: 3600_000 + ++renewals * 1000 });
        await c.reloadIdentity();
      }
      await new Promise((res) => setTimeout(res, rand() * 30));
    }
    created.push(tp.createRequest({ user }).id);
    const deadline = Date.now() + 15_000;
    while (created.some((id) => !seen.has(id)) && Date.now() < deadline) {
      await new Promise((res) => setTimeout(res, 20));
    }
    await resyncs;
    abort.abort();
    await done;
    expect(renewals).toBeGreaterThan(0);
    expect(created.filter((id) => !seen.has(id))).toEqual([]);
    expect(puts.length - new Set(puts).size).toBe(0);
  });
});
