// Dialing Teleport: TCP (or an HTTP CONNECT tunnel through HTTPS_PROXY), then mutual TLS with the current
// identity, SNI teleport.cluster.local and the ALPN list of the path: the proxy's TLS routing needs
// ["teleport-auth@<hex(cluster)>.teleport.cluster.local", "h2"], direct Auth gets ["h2"]. The TLS socket is
// handed to our gRPC channel (channel.ts) as is. A renewed identity applies to every new connection.
// The dialer keeps the last failure to reach Teleport in words (lastError): calls only see "connection
// closed", so the client adds this hint to Unavailable errors.
import type { ClientHttp2Session } from 'node:http2';
import type net from 'node:net';
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

export interface DialerOptions {
  addr: string;
  path: ConnectionPath;
  identity: () => Identity;
  handshakeTimeoutMs?: number;
  /** Reach Teleport through this HTTP proxy (HTTPS_PROXY) with CONNECT. */
  httpProxy?: HttpProxy;
}

export class TeleportDialer {
  /** The last failure to reach Teleport, worded for humans; cleared when the server first answers. */
  lastError: string | undefined;
  private readonly sockets = new Set<net.Socket>();

  constructor(private readonly opts: DialerOptions) {}

  private get handshakeTimeoutMs(): number {
    return this.opts.handshakeTimeoutMs ?? 15_000;
  }

  /** A TLS socket to Teleport that negotiated h2; rejects with a sentence (also kept in lastError). */
  async dial(): Promise<tls.TLSSocket> {
    const identity = this.opts.identity();
    let tunnel: net.Socket | undefined;
    const proxy = this.opts.httpProxy;
    if (proxy) {
      const { host, port } = splitHostPort(this.opts.addr);
      try {
        tunnel = await httpConnect(proxy, host, port, this.handshakeTimeoutMs);
      } catch (err) {
        throw this.fail(identity, `through the HTTPS proxy ${proxy.display}: ${(err as Error).message}`);
      }
    }
    return this.handshake(identity, tunnel);
  }

  private handshake(identity: Identity, tunnel: net.Socket | undefined): Promise<tls.TLSSocket> {
    return new Promise((resolve, reject) => {
      let remote: tls.TLSSocket;
      try {
        remote = tls.connect({
          ...tlsOptions(identity, this.opts.path, this.opts.addr),
          ...(tunnel ? { socket: tunnel } : {}),
        });
        // gRPC writes small frames; Nagle + delayed ACK would add ~40 ms to every call.
        remote.setNoDelay(true);
        this.track(remote);
      } catch (err) {
        tunnel?.destroy();
        return reject(this.fail(identity, (err as Error).message));
      }
      let settled = false;
      // The first cause is the one to tell: an error is followed by a close.
      const refuse = (message: string): void => {
        clearTimeout(timer);
        remote.destroy();
        if (settled) return;
        settled = true;
        reject(this.fail(identity, message));
      };
      const timer = setTimeout(
        () => refuse(`no TLS handshake within ${this.handshakeTimeoutMs / 1000}s`),
        this.handshakeTimeoutMs,
      );
      const onError = (err: Error): void => refuse(describeTlsError(err, this.opts.path, identity));
      const onClose = (): void => refuse('the connection closed during the TLS handshake');
      remote.on('error', onError);
      remote.once('close', onClose);
      remote.once('secureConnect', () => {
        clearTimeout(timer);
        remote.off('error', onError);
        remote.off('close', onClose);
        if (remote.alpnProtocol !== 'h2')
          return refuse(`the server did not select HTTP/2 (ALPN ${JSON.stringify(remote.alpnProtocol)})`);
        settled = true;
        resolve(remote);
      });
    });
  }

  /**
   * Watches a session on a dialed socket: the server's SETTINGS mean it accepted us (the hint is cleared).
   * With TLS 1.3 the server refuses a client certificate only after the client's side of the handshake is
   * done, so the refusal comes here: as a TLS alert, or just a close before any SETTINGS.
   */
  observe(session: ClientHttp2Session): void {
    const identity = this.opts.identity();
    let answered = false;
    let explained = false;
    session.once('remoteSettings', () => {
      answered = true;
      this.lastError = undefined;
    });
    session.on('error', (err) => {
      if (!isTlsAlert(err)) return;
      explained = true;
      this.fail(identity, describeTlsError(err, this.opts.path, identity));
    });
    session.once('close', () => {
      if (!answered && !explained)
        this.fail(identity, rejectedClientCert(identity, 'closed before answering'));
    });
  }

  private track(s: net.Socket): void {
    this.sockets.add(s);
    s.on('close', () => this.sockets.delete(s));
  }

  private fail(identity: Identity, message: string): Error {
    // An expired certificate is the most likely cause of any refusal; say so first.
    this.lastError =
      Date.now() >= identity.notAfter.getTime()
        ? `the certificate in ${identity.source} expired at ${identity.notAfter.toISOString()} (renew it, e.g. with tbot, and set refresh_identity = true); ${message}`
        : message;
    return new Error(this.lastError);
  }

  /** Closes every connection it dialed (tests; identity rotation does not need it). */
  dropConnections(): void {
    for (const s of this.sockets) s.destroy();
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
