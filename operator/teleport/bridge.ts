// The local bridge between @grpc/grpc-js and Teleport. grpc-js forces ALPN ["h2"] on its own TLS, but the
// proxy's TLS routing needs ["teleport-auth@<hex(cluster)>.teleport.cluster.local", "h2"]. So grpc-js speaks
// plaintext HTTP/2 to a Unix socket in a private directory, and each accepted connection is carried by our own
// tls.connect to Teleport with the current identity. This uses only public Node APIs (survives grpc-js
// upgrades), and a renewed identity applies to every new connection. A Unix socket (mode 0700 directory)
// instead of a loopback TCP port keeps other local users from riding on the plugin's credentials.
import { mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import tls from 'node:tls';
import { httpConnect } from './httpproxy.js';
import type { HttpProxy } from './httpproxy.js';
import type { Identity } from './identity.js';

/** constants.APIDomain: Auth's cert carries it (and *.teleport.cluster.local) as a DNS SAN. */
export const API_DOMAIN = 'teleport.cluster.local';
export const AUTH_ALPN_PREFIX = 'teleport-auth@';

export type ConnectionPath = 'direct' | 'proxy';

/** api/utils/cluster.go EncodeClusterName. */
export function encodeClusterName(cluster: string): string {
  return `${Buffer.from(cluster, 'utf8').toString('hex')}.${API_DOMAIN}`;
}

/** ALPN list for a path: direct Auth offers h2; the proxy route puts teleport-auth@<hex> first. */
export function alpnProtocols(path: ConnectionPath, clusterName: string): string[] {
  return path === 'proxy' ? [`${AUTH_ALPN_PREFIX}${encodeClusterName(clusterName)}`, 'h2'] : ['h2'];
}

export function splitHostPort(addr: string): { host: string; port: number } {
  const m = /^\[?([^\]]+?)\]?:(\d+)$/.exec(addr.trim());
  if (!m)
    throw new Error(`teleport.addr "${addr}" must be host:port, e.g. teleport.example.com:443 or auth:3025`);
  return { host: m[1]!, port: Number(m[2]) };
}

/** The tls.connect options for one path (exported for tests). */
export function tlsOptions(identity: Identity, path: ConnectionPath, addr: string): tls.ConnectionOptions {
  const { host, port } = splitHostPort(addr);
  return {
    host,
    port,
    servername: API_DOMAIN,
    ALPNProtocols: alpnProtocols(path, identity.clusterName),
    cert: identity.tlsCertPem,
    key: identity.privateKeyPem,
    ca: identity.tlsCaPems,
  };
}

export interface BridgeOptions {
  addr: string;
  path: ConnectionPath;
  identity: () => Identity;
  handshakeTimeoutMs?: number;
  /** Reach Teleport through this HTTP proxy (HTTPS_PROXY) with CONNECT. */
  httpProxy?: HttpProxy;
}

export class TlsBridge {
  readonly socketPath: string;
  private readonly dir: string;
  private readonly server: net.Server;
  private readonly sockets = new Set<net.Socket>();
  /** The last failure to reach Teleport, worded for humans; cleared when the server first answers. */
  lastError: string | undefined;
  connections = 0;

  private constructor(private readonly opts: BridgeOptions) {
    this.dir = mkdtempSync(join(tmpdir(), 'teleport-bridge-'));
    this.socketPath = join(this.dir, 'grpc.sock');
    this.server = net.createServer((local) => this.handle(local));
  }

  static async start(opts: BridgeOptions): Promise<TlsBridge> {
    const bridge = new TlsBridge(opts);
    await new Promise<void>((resolve, reject) => {
      bridge.server.once('error', reject);
      bridge.server.listen(bridge.socketPath, () => resolve());
    });
    return bridge;
  }

  /** The grpc-js target for this bridge. */
  get target(): string {
    return `unix:${this.socketPath}`;
  }

  private track(s: net.Socket): void {
    this.sockets.add(s);
    s.on('close', () => this.sockets.delete(s));
  }

  private handle(local: net.Socket): void {
    this.track(local);
    local.pause();
    const identity = this.opts.identity();
    const proxy = this.opts.httpProxy;
    if (!proxy) {
      this.startTls(local, identity, undefined);
      return;
    }
    const { host, port } = splitHostPort(this.opts.addr);
    httpConnect(proxy, host, port, this.opts.handshakeTimeoutMs ?? 15_000).then(
      (tunnel) => {
        if (local.destroyed) tunnel.destroy();
        else this.startTls(local, identity, tunnel);
      },
      (err: Error) => {
        this.fail(identity, `through the HTTPS proxy ${proxy.display}: ${err.message}`);
        local.destroy();
      },
    );
  }

  private startTls(local: net.Socket, identity: Identity, tunnel: net.Socket | undefined): void {
    let remote: tls.TLSSocket;
    try {
      remote = tls.connect({
        ...tlsOptions(identity, this.opts.path, this.opts.addr),
        ...(tunnel ? { socket: tunnel } : {}),
      });
      // gRPC writes small frames; Nagle + delayed ACK would add ~40 ms to every call.
      remote.setNoDelay(true);
    } catch (err) {
      this.fail(identity, (err as Error).message);
      local.destroy();
      return;
    }
    this.track(remote);
    const timer = setTimeout(() => {
      this.fail(identity, `no TLS handshake within ${(this.opts.handshakeTimeoutMs ?? 15_000) / 1000}s`);
      remote.destroy();
    }, this.opts.handshakeTimeoutMs ?? 15_000);
    let established = false;
    let answered = false;
    remote.once('secureConnect', () => {
      clearTimeout(timer);
      if (remote.alpnProtocol !== 'h2') {
        this.fail(identity, `the server did not select HTTP/2 (ALPN ${JSON.stringify(remote.alpnProtocol)})`);
        remote.destroy();
        local.destroy();
        return;
      }
      established = true;
      this.connections++;
      remote.once('data', () => {
        answered = true;
        this.lastError = undefined;
      });
      local.pipe(remote).pipe(local);
      local.resume();
    });
    remote.on('error', (err) => {
      clearTimeout(timer);
      // With TLS 1.3 the server refuses a client certificate only after the client's handshake completed.
      if (!established || isTlsAlert(err))
        this.fail(identity, describeTlsError(err, this.opts.path, identity));
      local.destroy();
    });
    const onRemoteGone = (): void => {
      clearTimeout(timer);
      if (!established && !this.lastError)
        this.fail(identity, 'the connection closed during the TLS handshake');
      // With TLS 1.3 a server refuses a client certificate after the client's side of the handshake is done,
      // often by just closing: a close before any answer means the credentials were not accepted.
      if (established && !answered)
        this.fail(identity, rejectedClientCert(identity, 'closed before answering'));
    };
    // 'end' comes before the pipe ends the local side, so the hint is in place when grpc-js sees the close.
    remote.on('end', onRemoteGone);
    remote.on('close', () => {
      onRemoteGone();
      local.destroy();
    });
    local.on('error', () => remote.destroy());
    local.on('close', () => remote.destroy());
  }

  private fail(identity: Identity, message: string): void {
    // An expired certificate is the most likely cause of any refusal; say so first.
    this.lastError =
      Date.now() >= identity.notAfter.getTime()
        ? `the certificate in ${identity.source} expired at ${identity.notAfter.toISOString()} (renew it, e.g. with tbot, and set refresh_identity = true); ${message}`
        : message;
  }

  /** Closes all carried connections (tests; identity rotation does not need it). */
  dropConnections(): void {
    for (const s of this.sockets) s.destroy();
  }

  close(): void {
    this.dropConnections();
    this.server.close();
    rmSync(this.dir, { recursive: true, force: true });
  }
}

function rejectedClientCert(identity: Identity, detail: string): string {
  return `the server rejected the client certificate (${detail}): the identity in ${identity.source} was not issued by the CA of the Teleport cluster at this address, or that CA was rotated; export a new identity`;
}

function isTlsAlert(err: Error): boolean {
  return /ALERT/i.test((err as NodeJS.ErrnoException).code ?? '') || /alert/i.test(err.message);
}

/** Turns Node's TLS/socket errors into a sentence that says what it means for Teleport. */
export function describeTlsError(err: Error, path: ConnectionPath, identity: Identity): string {
  const code = (err as NodeJS.ErrnoException).code ?? '';
  const msg = err.message;
  if (code === 'ECONNREFUSED') return `connection refused (${msg})`;
  if (code === 'ENOTFOUND' || code === 'EAI_AGAIN') return `cannot resolve the host (${msg})`;
  if (code === 'ETIMEDOUT') return `connection timed out (${msg})`;
  if (/socket disconnected before secure TLS|ECONNRESET|socket hang up/i.test(`${code} ${msg}`)) {
    return path === 'proxy'
      ? `the server closed the connection during the TLS handshake: a Teleport proxy does this when it has no Auth server for cluster "${identity.clusterName}" (the cluster named in ${identity.source}); check that the identity was issued by the cluster at this address`
      : `the server closed the connection during the TLS handshake (${code || msg})`;
  }
  if (isTlsAlert(err)) return rejectedClientCert(identity, code || msg);
  if (/certificate|self.signed|issuer|CERT_|altname/i.test(`${code} ${msg}`)) {
    return `the server's certificate is not signed by the Teleport CA in ${identity.source} (${code || msg}); this is not the Auth server of cluster "${identity.clusterName}", or the CA was rotated`;
  }
  if (/alert|handshake/i.test(msg))
    return `TLS handshake failed (${msg}); the server may have rejected the client certificate`;
  return msg;
}
