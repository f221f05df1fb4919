// A Teleport-compatible test server: Auth (mutual TLS, gRPC) plus a TLS-routing Proxy front, a test CA
// that issues identity files, and controls for tests. Everything binds 127.0.0.1 on port 0.
import type { status } from '@grpc/grpc-js';
import type {
  AccessMonitoringRule,
  AccessRequest,
  AccessReview,
  RequestState,
} from '../../operator/teleport/api.js';
import { FakeAuthServer } from './auth.js';
import type { PingSettings } from './auth.js';
import { FakeBackend } from './backend.js';
import type { FakeRole, FakeUser, ReviewAuthority } from './review.js';
import { FakeProxy } from './proxy.js';
import type { ProxyRouteLog } from './proxy.js';
import { identityFileText, TestCA, writeIdentityFile } from './ca.js';
import type { TestKeyType } from './ca.js';

export { TestCA, identityFileText, writeIdentityFile } from './ca.js';
export type { TestKeyType } from './ca.js';
export type { FakeRole, FakeUser } from './review.js';
export { encodeClusterName, decodeClusterName, parseClientHello } from './proxy.js';

export interface FakeTeleportOptions {
  clusterName?: string;
  caKeyType?: TestKeyType;
  serverVersion?: string;
  /** Reviews needed to approve / deny (default 1 each). */
  approveThreshold?: number;
  denyThreshold?: number;
}

export interface WriteIdentityOptions {
  dir: string;
  keyType?: TestKeyType;
  /** Lifetime from notBefore (default 1 h). */
  ttlMs?: number;
  notBefore?: Date;
  user?: string;
  fileName?: string;
  /** Write like a Kubernetes Secret volume (`..data` symlink swap). */
  symlinkSwap?: boolean;
}

export interface FakeTeleport {
  /** host:port of Auth (mutual TLS, like :3025). */
  readonly authAddr: string;
  /** host:port of the TLS-routing Proxy front (like :443). */
  readonly proxyAddr: string;
  readonly clusterName: string;
  /** The current Host CA (changes on rotateCA()). */
  readonly ca: TestCA;
  writeIdentity(opts: WriteIdentityOptions): Promise<string>;
  identityText(opts?: Omit<WriteIdentityOptions, 'dir' | 'fileName' | 'symlinkSwap'>): string;

  createRequest(partial?: Partial<AccessRequest>): AccessRequest;
  submitReview(
    id: string,
    review: Partial<AccessReview> & { author: string; proposedState: RequestState },
  ): AccessRequest;
  setState(id: string, state: RequestState, reason?: string): AccessRequest;
  /** Deletes the request (DELETE event); its plugin data survives as in Teleport. */
  deleteRequest(id: string): void;
  getRequest(id: string): AccessRequest | undefined;
  putRule(rule: AccessMonitoringRule): void;
  deleteRule(name: string): void;
  /** A plugin's data for a request, or undefined. */
  pluginData(requestId: string, plugin?: string): Record<string, string> | undefined;

  /** Teleport users (name, roles, traits) for review authorization and ListUsers / GetUser. */
  putUser(user: FakeUser): void;
  putRole(role: FakeRole): void;
  /** Review authorization state (users, roles, onBehalfSupported). */
  readonly reviews: ReviewAuthority;
  /** Thresholds of new reviews (N approvals → APPROVED, N denials → DENIED). */
  setThresholds(approve: number, deny: number): void;
  /** Ends all open watch streams with an error (default UNAVAILABLE); returns how many. */
  dropStreams(code?: status): number;
  /** Closes every TCP connection to Auth and the Proxy. */
  dropConnections(): void;
  activeWatchCount(): number;
  /** Resolves once at least `n` watch streams are open (after their INIT was sent). */
  waitForWatchers(n: number, timeoutMs?: number): Promise<void>;
  setPing(p: Partial<PingSettings>): void;
  /** Delays every answer by `ms` (0 to stop). */
  delay(ms: number): void;
  /** The next `times` calls of `method` (e.g. 'UpdatePluginData') fail with `code`. */
  failNext(method: string, code: status, message?: string, times?: number): void;
  /** Makes `method` answer UNIMPLEMENTED, like an older Auth server. */
  setUnimplemented(method: string, on?: boolean): void;
  /** Refuses watching a kind (RBAC); with AllowPartialSuccess the kind is dropped from INIT. */
  denyWatchKind(kind: string, on?: boolean): void;
  callCount(method: string): number;
  versionHeaders(): string[];
  proxyRoutes(): ProxyRouteLog[];
  /**
   * Rotates the Host CA: Auth presents a cert from the new CA and accepts client certs from both;
   * identity files written afterwards are signed by the new CA and trust both.
   */
  rotateCA(): TestCA;
  stop(): Promise<void>;
}

export async function startFakeTeleport(opts: FakeTeleportOptions = {}): Promise<FakeTeleport> {
  const clusterName = opts.clusterName ?? 'example.teleport.sh';
  let ca = TestCA.create(clusterName, opts.caKeyType ?? 'ecdsa');
  let trusted: TestCA[] = [ca];
  const backend = new FakeBackend({
    ...(opts.approveThreshold ? { approveThreshold: opts.approveThreshold } : {}),
    ...(opts.denyThreshold ? { denyThreshold: opts.denyThreshold } : {}),
  });
  const auth = new FakeAuthServer(backend, {
    clusterName,
    serverVersion: opts.serverVersion ?? '17.4.2',
    proxyPublicAddr: `${clusterName}:443`,
    advancedAccessWorkflows: false,
    accessMonitoringConfigured: false,
    cloud: false,
  });
  const tlsMaterial = (): { keyPem: string; certPem: string; clientCaPems: string[] } => {
    const host = ca.issueHostCert({ ipAddresses: ['127.0.0.1'], dnsNames: ['localhost'] });
    return { keyPem: host.keyPem, certPem: host.certPem, clientCaPems: trusted.map((c) => c.certPem) };
  };
  await auth.start(tlsMaterial());
  const proxy = new FakeProxy(
    () => clusterName,
    () => auth.port,
  );
  await proxy.start();

  const identityOpts = (o: Omit<WriteIdentityOptions, 'dir' | 'fileName' | 'symlinkSwap'>) => ({
    ca,
    trusted,
    ...(o.keyType ? { keyType: o.keyType } : {}),
    ...(o.ttlMs ? { ttlMs: o.ttlMs } : {}),
    ...(o.notBefore ? { notBefore: o.notBefore } : {}),
    ...(o.user ? { user: o.user } : {}),
  });

  return {
    authAddr: `127.0.0.1:${auth.port}`,
    proxyAddr: `127.0.0.1:${proxy.port}`,
    clusterName,
    get ca() {
      return ca;
    },
    writeIdentity: (o) =>
      writeIdentityFile({
        ...identityOpts(o),
        dir: o.dir,
        ...(o.fileName ? { fileName: o.fileName } : {}),
        ...(o.symlinkSwap ? { symlinkSwap: true } : {}),
      }),
    identityText: (o = {}) => identityFileText(identityOpts(o)),
    createRequest: (p) => backend.createRequest(p),
    submitReview: (id, r) => backend.submitReview(id, r),
    setState: (id, s, reason) => backend.setState(id, s, reason),
    deleteRequest: (id) => backend.deleteRequest(id),
    getRequest: (id) => {
      const r = backend.requests.get(id);
      return r ? structuredClone(r) : undefined;
    },
    putRule: (rule) => backend.putRule(rule),
    putUser: (user) => void auth.reviews.users.set(user.name, structuredClone(user)),
    putRole: (role) => void auth.reviews.roles.set(role.name, structuredClone(role)),
    reviews: auth.reviews,
    setThresholds: (approve, deny) => {
      backend.approveThreshold = approve;
      backend.denyThreshold = deny;
    },
    deleteRule: (name) => backend.deleteRule(name),
    pluginData: (id, plugin = 'mattermost') => {
      const data = backend.pluginData.get(id)?.entries.get(plugin);
      return data ? { ...data } : undefined;
    },
    dropStreams: (code) => auth.dropStreams(code),
    dropConnections: () => {
      proxy.dropConnections();
      auth.dropConnections();
    },
    activeWatchCount: () => auth.activeWatches.size,
    waitForWatchers: async (n, timeoutMs = 10_000) => {
      const deadline = Date.now() + timeoutMs;
      while (auth.activeWatches.size < n) {
        if (Date.now() > deadline) {
          throw new Error(`fake teleport: expected ${n} open watch streams, have ${auth.activeWatches.size}`);
        }
        await new Promise((r) => setTimeout(r, 5));
      }
    },
    setPing: (p) => {
      auth.ping = { ...auth.ping, ...p };
    },
    delay: (ms) => {
      auth.controls.delayMs = ms;
    },
    failNext: (method, code, message = `injected failure of ${method}`, times = 1) => {
      auth.controls.failures.set(method, { code, message, remaining: times });
    },
    setUnimplemented: (method, on = true) => {
      if (on) auth.controls.unimplemented.add(method);
      else auth.controls.unimplemented.delete(method);
    },
    denyWatchKind: (kind, on = true) => {
      if (on) auth.controls.deniedWatchKinds.add(kind);
      else auth.controls.deniedWatchKinds.delete(kind);
    },
    callCount: (method) => auth.controls.calls.get(method) ?? 0,
    versionHeaders: () => [...auth.controls.versionHeaders],
    proxyRoutes: () => [...proxy.routes],
    rotateCA: () => {
      const next = TestCA.create(clusterName, opts.caKeyType ?? 'ecdsa');
      trusted = [next, ca];
      ca = next;
      auth.updateTls(tlsMaterial());
      return next;
    },
    stop: async () => {
      await proxy.stop();
      await auth.stop();
    },
  };
}
