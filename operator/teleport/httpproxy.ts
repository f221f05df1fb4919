// HTTPS_PROXY support for the connection to Teleport, as Go's client does (HTTP CONNECT, then the same TLS
// inside). The environment rules follow golang.org/x/net/http/httpproxy: HTTPS_PROXY / https_proxy, NO_PROXY /
// no_proxy (comma list of hosts or domain suffixes, `*` for all), and loopback addresses are never proxied.
import net from 'node:net';

export interface HttpProxy {
  url: URL;
  /** For logs: the proxy URL without credentials. */
  display: string;
}

function isLoopback(host: string): boolean {
  return host === 'localhost' || host.endsWith('.localhost') || /^127\./.test(host) || host === '::1';
}

function bypassed(host: string, noProxy: string): boolean {
  for (const raw of noProxy.split(',')) {
    let entry = raw.trim().toLowerCase();
    if (!entry) continue;
    if (entry === '*') return true;
    entry = entry.replace(/:\d+$/, '');
    const h = host.toLowerCase();
    if (entry.startsWith('.') ? h.endsWith(entry) : h === entry || h.endsWith(`.${entry}`)) return true;
  }
  return false;
}

/** The proxy to use for `host`, or undefined. Throws for a proxy URL we cannot use. */
export function proxyFromEnv(host: string, env: NodeJS.ProcessEnv = process.env): HttpProxy | undefined {
  const value = env.HTTPS_PROXY ?? env.https_proxy;
  if (!value || isLoopback(host) || bypassed(host, env.NO_PROXY ?? env.no_proxy ?? '')) return undefined;
  let url: URL;
  try {
    url = new URL(value.includes('://') ? value : `http://${value}`);
  } catch {
    throw new Error(`HTTPS_PROXY "${value}" is not a valid URL; use http://host:port`);
  }
  if (url.protocol !== 'http:') {
    throw new Error(`HTTPS_PROXY "${url.protocol}//${url.host}": only http:// proxies are supported`);
  }
  return { url, display: `http://${url.host}` };
}

/** Opens a tunnel to host:port through the proxy with HTTP CONNECT; resolves with the raw socket. */
export function httpConnect(
  proxy: HttpProxy,
  host: string,
  port: number,
  timeoutMs: number,
): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(Number(proxy.url.port || 80), proxy.url.hostname);
    socket.setNoDelay(true);
    const target = `${host.includes(':') ? `[${host}]` : host}:${port}`;
    const timer = setTimeout(
      () => fail(new Error(`no answer from the proxy within ${timeoutMs / 1000}s`)),
      timeoutMs,
    );
    let buffered = Buffer.alloc(0);
    function fail(err: Error): void {
      clearTimeout(timer);
      socket.destroy();
      reject(err);
    }
    socket.once('error', fail);
    socket.once('close', () => fail(new Error('the proxy closed the connection')));
    socket.once('connect', () => {
      const auth = proxy.url.username
        ? `Proxy-Authorization: Basic ${Buffer.from(
            `${decodeURIComponent(proxy.url.username)}:${decodeURIComponent(proxy.url.password)}`,
          ).toString('base64')}\r\n`
        : '';
      socket.write(`CONNECT ${target} HTTP/1.1\r\nHost: ${target}\r\n${auth}\r\n`);
    });
    const onData = (chunk: Buffer): void => {
      buffered = Buffer.concat([buffered, chunk]);
      const end = buffered.indexOf('\r\n\r\n');
      if (end < 0) {
        if (buffered.length > 16 * 1024) fail(new Error('the proxy sent an oversized response'));
        return;
      }
      socket.off('data', onData);
      const statusLine = buffered.subarray(0, buffered.indexOf('\r\n')).toString('latin1');
      const code = Number(/^HTTP\/\d\.\d (\d{3})/.exec(statusLine)?.[1]);
      if (code !== 200) return fail(new Error(`the proxy refused CONNECT ${target}: ${statusLine}`));
      clearTimeout(timer);
      socket.removeAllListeners('error');
      socket.removeAllListeners('close');
      socket.pause();
      // Anything after the header belongs to the tunnel (a server speaks first only in odd cases).
      const rest = buffered.subarray(end + 4);
      if (rest.length) socket.unshift(rest);
      resolve(socket);
    };
    socket.on('data', onData);
  });
}
