// A TLS-routing front like Teleport's Proxy (lib/srv/alpnproxy): it peeks at the ClientHello without
// terminating TLS, reads only ALPN[0], and when it is `teleport-auth@<hex(cluster)>.teleport.cluster.local`
// for the local cluster, forwards the raw TLS bytes to Auth. Anything else (unknown cluster, other ALPN,
// not TLS) has its connection closed, so the client sees EOF during the handshake.
import net from 'node:net';

export const AUTH_ALPN_PREFIX = 'teleport-auth@';
export const API_DOMAIN_SUFFIX = '.teleport.cluster.local';

export type ClientHelloResult =
  { kind: 'incomplete' } | { kind: 'not-tls' } | { kind: 'hello'; alpn: string[]; sni?: string };

/** Parses the ALPN list (and SNI) from the start of a TLS stream; the hello may span several records. */
export function parseClientHello(data: Buffer): ClientHelloResult {
  // Reassemble the handshake payload from consecutive handshake records.
  const chunks: Buffer[] = [];
  let pos = 0;
  let total = 0;
  let needed: number | undefined;
  while (true) {
    if (pos + 5 > data.length) return { kind: 'incomplete' };
    if (data[pos] !== 0x16) return { kind: 'not-tls' };
    const len = data.readUInt16BE(pos + 3);
    if (pos + 5 + len > data.length) return { kind: 'incomplete' };
    chunks.push(data.subarray(pos + 5, pos + 5 + len));
    total += len;
    pos += 5 + len;
    const hs = Buffer.concat(chunks);
    if (needed === undefined && hs.length >= 4) {
      if (hs[0] !== 0x01) return { kind: 'not-tls' };
      needed = 4 + hs.readUIntBE(1, 3);
    }
    if (needed !== undefined && total >= needed) return parseHelloBody(hs.subarray(4, needed));
  }
}

function parseHelloBody(body: Buffer): ClientHelloResult {
  let p = 2 + 32; // client_version, random
  p += 1 + body[p]!; // session id
  p += 2 + body.readUInt16BE(p); // cipher suites
  p += 1 + body[p]!; // compression methods
  const alpn: string[] = [];
  let sni: string | undefined;
  if (p + 2 > body.length) return { kind: 'hello', alpn };
  const extEnd = p + 2 + body.readUInt16BE(p);
  p += 2;
  while (p + 4 <= extEnd) {
    const type = body.readUInt16BE(p);
    const len = body.readUInt16BE(p + 2);
    const ext = body.subarray(p + 4, p + 4 + len);
    if (type === 0x10) {
      let q = 2;
      while (q < ext.length) {
        const l = ext[q]!;
        alpn.push(ext.subarray(q + 1, q + 1 + l).toString('ascii'));
        q += 1 + l;
      }
    } else if (type === 0x00 && ext.length > 5) {
      const l = ext.readUInt16BE(3);
      sni = ext.subarray(5, 5 + l).toString('ascii');
    }
    p += 4 + len;
  }
  return { kind: 'hello', alpn, ...(sni ? { sni } : {}) };
}

/** EncodeClusterName / DecodeClusterName of api/utils/cluster.go. */
export function encodeClusterName(cluster: string): string {
  return `${Buffer.from(cluster, 'utf8').toString('hex')}${API_DOMAIN_SUFFIX}`;
}

export function decodeClusterName(encoded: string): string | undefined {
  if (!encoded.endsWith(API_DOMAIN_SUFFIX)) return undefined;
  const hex = encoded.slice(0, -API_DOMAIN_SUFFIX.length);
  if (!/^([0-9a-f]{2})+$/i.test(hex)) return undefined;
  return Buffer.from(hex, 'hex').toString('utf8');
}

export interface ProxyRouteLog {
  alpn: string[];
  routed: boolean;
  reason: string;
}

export class FakeProxy {
  private server: net.Server | undefined;
  private readonly sockets = new Set<net.Socket>();
  readonly routes: ProxyRouteLog[] = [];
  port = 0;

  constructor(
    private readonly clusterName: () => string,
    private readonly authPort: () => number,
  ) {}

  async start(): Promise<void> {
    this.server = net.createServer((socket) => this.handle(socket));
    await new Promise<void>((resolve) => this.server!.listen(0, '127.0.0.1', resolve));
    this.port = (this.server.address() as net.AddressInfo).port;
  }

  private track(s: net.Socket): void {
    this.sockets.add(s);
    s.on('close', () => this.sockets.delete(s));
    s.on('error', () => s.destroy());
  }

  private handle(socket: net.Socket): void {
    socket.setNoDelay(true);
    this.track(socket);
    let buffered = Buffer.alloc(0);
    const onData = (chunk: Buffer): void => {
      buffered = Buffer.concat([buffered, chunk]);
      const hello = parseClientHello(buffered);
      if (hello.kind === 'incomplete' && buffered.length < 64 * 1024) return;
      socket.off('data', onData);
      socket.pause();
      const alpn = hello.kind === 'hello' ? hello.alpn : [];
      const first = alpn[0] ?? '';
      const cluster = first.startsWith(AUTH_ALPN_PREFIX)
        ? decodeClusterName(first.slice(AUTH_ALPN_PREFIX.length))
        : undefined;
      if (cluster === undefined || cluster !== this.clusterName()) {
        const reason =
          cluster !== undefined
            ? `auth server for "${cluster}" cluster name not found`
            : `no route for ALPN ${JSON.stringify(alpn)}`;
        this.routes.push({ alpn, routed: false, reason });
        socket.destroy();
        return;
      }
      this.routes.push({ alpn, routed: true, reason: 'local auth' });
      const upstream = net.connect(this.authPort(), '127.0.0.1');
      upstream.setNoDelay(true);
      this.track(upstream);
      upstream.write(buffered);
      socket.pipe(upstream).pipe(socket);
      socket.resume();
      const close = (): void => {
        socket.destroy();
        upstream.destroy();
      };
      socket.on('close', close);
      upstream.on('close', close);
    };
    socket.on('data', onData);
  }

  dropConnections(): void {
    for (const s of this.sockets) s.destroy();
  }

  async stop(): Promise<void> {
    this.dropConnections();
    await new Promise<void>((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
  }
}
