// The operator's own Kubernetes REST client: JSON requests and watches over one keep-alive node:https
// Agent. @kubernetes/client-node costs ~80 MiB RSS just to import (its generated models and serializer),
// more than the rest of the operator together, and the operator needs only a dozen calls: list, watch,
// get, server-side apply, create and replace. Objects stay plain JSON as the API server sends them.
//
// Connection settings come from a client-node-shaped KubeConfig (tests pass one), else the in-cluster
// ServiceAccount (the token file is re-read, as kubelet rotates it), else $KUBECONFIG or ~/.kube/config.
import { existsSync, readFileSync } from 'node:fs';
import type { Agent, ClientRequest } from 'node:http';
import { http } from '../node-builtins.js';
import https from 'node:https';
import os from 'node:os';
import path from 'node:path';

/** The parts of a @kubernetes/client-node KubeConfig (or any look-alike) used to connect. */
export interface KubeConfigLike {
  getCurrentCluster(): {
    server: string;
    caData?: string;
    caFile?: string;
    skipTLSVerify?: boolean;
  } | null;
  getCurrentUser(): {
    token?: string;
    certData?: string;
    certFile?: string;
    keyData?: string;
    keyFile?: string;
  } | null;
}

/** An answer of the API server that is not 2xx: `code` is the HTTP status (409 conflict, 404, 410...). */
export class KubeApiError extends Error {
  constructor(
    readonly code: number,
    readonly body: string,
    message: string,
  ) {
    super(message);
    this.name = 'KubeApiError';
  }
  /** Same field name as client-node's ApiException and the watch's Status, for shared checks. */
  get statusCode(): number {
    return this.code;
  }
}

/** The operator cannot reach any cluster with this configuration (exit 2, nothing to retry; the CLI
 * recognises it by name). */
export class KubeConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'KubeConfigError';
  }
}

export interface RequestOptions {
  query?: Record<string, string | number | boolean | undefined>;
  body?: unknown;
  contentType?: string;
  accept?: string;
}

export interface WatchHandle {
  abort(): void;
}

/** Where the connection settings are looked for (tests pass their own). */
export interface KubeConfigSources {
  env: NodeJS.ProcessEnv;
  home: string;
  /** The in-cluster ServiceAccount's token and ca.crt. */
  serviceAccountDir: string;
}

const DEFAULT_SOURCES: KubeConfigSources = {
  env: process.env,
  home: os.homedir(),
  serviceAccountDir: '/var/run/secrets/kubernetes.io/serviceaccount',
};
const TOKEN_REREAD_MS = 60_000;
/** A watch that sends nothing (not even a bookmark) for this long past its timeout is presumed dead. */
const WATCH_IDLE_GRACE_MS = 30_000;

interface Connection {
  server: URL;
  agent: Agent;
  token: () => string | undefined;
}

function fileToken(file: string): () => string | undefined {
  let value: string | undefined;
  let readAt = 0;
  return () => {
    if (Date.now() - readAt > TOKEN_REREAD_MS) {
      value = readFileSync(file, 'utf8').trim();
      readAt = Date.now();
    }
    return value;
  };
}

const b64 = (s: string | undefined) => (s ? Buffer.from(s, 'base64') : undefined);
const file = (p: string | undefined) => (p ? readFileSync(p) : undefined);

function connect(o: {
  server: string;
  ca?: Buffer;
  cert?: Buffer;
  key?: Buffer;
  insecure?: boolean;
  token: () => string | undefined;
}): Connection {
  const server = new URL(o.server);
  const agent =
    server.protocol === 'http:'
      ? new http.Agent({ keepAlive: true })
      : new https.Agent({
          keepAlive: true,
          ca: o.ca,
          cert: o.cert,
          key: o.key,
          rejectUnauthorized: !o.insecure,
        });
  return { server, agent, token: o.token };
}

function fromKubeConfigLike(kc: KubeConfigLike): Connection {
  const cluster = kc.getCurrentCluster();
  if (!cluster) throw new Error('the kubeconfig has no current cluster; set current-context');
  const user = kc.getCurrentUser() ?? {};
  return connect({
    server: cluster.server,
    ca: b64(cluster.caData) ?? file(cluster.caFile),
    cert: b64(user.certData) ?? file(user.certFile),
    key: b64(user.keyData) ?? file(user.keyFile),
    insecure: cluster.skipTLSVerify,
    token: () => user.token,
  });
}

type Named<K extends string, V> = { name: string } & Record<K, V>;
interface KubeconfigFile {
  'current-context'?: string;
  contexts?: Named<'context', { cluster: string; user: string }>[];
  clusters?: Named<
    'cluster',
    {
      server: string;
      'certificate-authority'?: string;
      'certificate-authority-data'?: string;
      'insecure-skip-tls-verify'?: boolean;
    }
  >[];
  users?: Named<
    'user',
    {
      token?: string;
      tokenFile?: string;
      'client-certificate'?: string;
      'client-certificate-data'?: string;
      'client-key'?: string;
      'client-key-data'?: string;
      exec?: unknown;
      'auth-provider'?: unknown;
    }
  >[];
}

type YamlParse = (text: string) => unknown;

/** Reads a kubeconfig file (the yaml parser is only loaded on this path, never in a cluster). */
async function fromKubeconfigFile(p: string): Promise<Connection> {
  // yaml is CommonJS: a bundle's dynamic import sees it as { default }, tsc's output as named exports.
  const mod = (await import('yaml')) as { parse?: YamlParse; default?: { parse: YamlParse } };
  const parse = mod.parse ?? mod.default!.parse;
  let doc: KubeconfigFile;
  try {
    doc = (parse(readFileSync(p, 'utf8')) ?? {}) as KubeconfigFile;
  } catch (err) {
    throw new KubeConfigError(`kubeconfig ${p} cannot be read: ${(err as Error).message.split('\n')[0]}`);
  }
  const rel = (f: string | undefined) => (f ? path.resolve(path.dirname(p), f) : undefined);
  const ctx = doc.contexts?.find((c) => c.name === doc['current-context'])?.context;
  if (!ctx)
    throw new KubeConfigError(
      `kubeconfig ${p}: no current cluster (current-context '${doc['current-context'] ?? ''}' not found); set current-context (kubectl config use-context <name>)`,
    );
  const cluster = doc.clusters?.find((c) => c.name === ctx.cluster)?.cluster;
  if (!cluster) throw new KubeConfigError(`kubeconfig ${p}: cluster '${ctx.cluster}' not found`);
  if (cluster.server.startsWith('http://') && !cluster['insecure-skip-tls-verify'])
    throw new KubeConfigError(
      `kubeconfig ${p}: cluster ${ctx.cluster} is served over plain HTTP (${cluster.server}); use its https:// address ` +
        '(or set insecure-skip-tls-verify: true for that cluster to allow plain HTTP)',
    );
  const user = doc.users?.find((u) => u.name === ctx.user)?.user ?? {};
  if (user.exec || user['auth-provider'])
    throw new KubeConfigError(
      `kubeconfig ${p}: user '${ctx.user}' uses an exec or auth-provider plugin, which the operator does not run; use a token or client certificate`,
    );
  const tokenFile = rel(user.tokenFile);
  return connect({
    server: cluster.server,
    ca: b64(cluster['certificate-authority-data']) ?? file(rel(cluster['certificate-authority'])),
    cert: b64(user['client-certificate-data']) ?? file(rel(user['client-certificate'])),
    key: b64(user['client-key-data']) ?? file(rel(user['client-key'])),
    insecure: cluster['insecure-skip-tls-verify'],
    token: tokenFile ? fileToken(tokenFile) : () => user.token,
  });
}

function inCluster(sources: KubeConfigSources): Connection | undefined {
  const host = sources.env.KUBERNETES_SERVICE_HOST;
  const port = sources.env.KUBERNETES_SERVICE_PORT ?? '443';
  const dir = sources.serviceAccountDir;
  if (!host || !existsSync(path.join(dir, 'token'))) return undefined;
  return connect({
    server: `https://${host.includes(':') ? `[${host}]` : host}:${port}`,
    ca: readFileSync(path.join(dir, 'ca.crt')),
    token: fileToken(path.join(dir, 'token')),
  });
}

function queryString(q: RequestOptions['query']): string {
  const params = new URLSearchParams();
  for (const [k, v] of Object.entries(q ?? {})) if (v !== undefined) params.set(k, String(v));
  const s = params.toString();
  return s ? `?${s}` : '';
}

function apiError(status: number, method: string, p: string, text: string): KubeApiError {
  let detail = text.slice(0, 500);
  try {
    detail = (JSON.parse(text) as { message?: string }).message ?? detail;
  } catch {
    // not a Status object: keep the raw text
  }
  return new KubeApiError(status, text, `${method} ${p}: HTTP ${status}: ${detail}`);
}

export class KubeApi {
  private constructor(private readonly conn: Connection) {}

  /**
   * From a KubeConfig-like object, else as kubectl looks: the first existing file of $KUBECONFIG (entries
   * that do not exist are skipped), else ~/.kube/config, else the in-cluster ServiceAccount; else a
   * KubeConfigError (exit 2) that says what to set — never a silent http://localhost:8080 fallback or a
   * bare ENOENT.
   */
  static async create(kc?: KubeConfigLike, sources: KubeConfigSources = DEFAULT_SOURCES): Promise<KubeApi> {
    if (kc) return new KubeApi(fromKubeConfigLike(kc));
    const listed = (sources.env.KUBECONFIG ?? '').split(path.delimiter).filter(Boolean);
    const home = path.join(sources.home, '.kube', 'config');
    if (listed.length > 0) {
      const present = listed.find((f) => existsSync(f));
      if (!present)
        throw new KubeConfigError(
          `no kubeconfig: KUBECONFIG=${sources.env.KUBECONFIG} names no existing file; set KUBECONFIG to a kubeconfig file or run in-cluster`,
        );
      return new KubeApi(await fromKubeconfigFile(present));
    }
    if (existsSync(home)) return new KubeApi(await fromKubeconfigFile(home));
    const cluster = inCluster(sources);
    if (cluster) return new KubeApi(cluster);
    throw new KubeConfigError(
      `no kubeconfig: set KUBECONFIG or run in-cluster (there is no ${home}, and no in-cluster service account)`,
    );
  }

  /** The API server's URL (for messages and tests). */
  get server(): string {
    return this.conn.server.href;
  }

  private send(method: string, p: string, o: RequestOptions, timeoutMs?: number): ClientRequest {
    const token = this.conn.token();
    const body = o.body === undefined ? undefined : JSON.stringify(o.body);
    const mod = this.conn.server.protocol === 'http:' ? http : https;
    const req = mod.request(new URL(this.conn.server.pathname.replace(/\/$/, '') + p, this.conn.server), {
      method,
      agent: this.conn.agent,
      timeout: timeoutMs,
      headers: {
        accept: o.accept ?? 'application/json',
        ...(token ? { authorization: `Bearer ${token}` } : {}),
        ...(body !== undefined
          ? { 'content-type': o.contentType ?? 'application/json', 'content-length': Buffer.byteLength(body) }
          : {}),
      },
    });
    req.end(body);
    return req;
  }

  /** One JSON request; a non-2xx answer rejects with KubeApiError. */
  request<T>(method: string, p: string, o: RequestOptions = {}): Promise<T> {
    const full = p + queryString(o.query);
    return new Promise<T>((resolve, reject) => {
      const req = this.send(method, full, o, 60_000);
      req.on('timeout', () => req.destroy(new Error(`${method} ${p}: no answer in 60 s`)));
      req.on('error', reject);
      req.on('response', (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('error', reject);
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          const status = res.statusCode ?? 0;
          if (status < 200 || status >= 300) return reject(apiError(status, method, p, text));
          try {
            resolve((text ? JSON.parse(text) : {}) as T);
          } catch (err) {
            reject(new Error(`${method} ${p}: answer is not JSON: ${(err as Error).message}`));
          }
        });
      });
    });
  }

  /**
   * Watches a collection: calls onEvent for every event line, then onDone exactly once (undefined when
   * the server closed the watch normally, e.g. at timeoutSeconds; an error otherwise; nothing after abort).
   */
  watch(
    p: string,
    query: RequestOptions['query'] & { timeoutSeconds: number },
    onEvent: (type: string, obj: unknown) => void,
    onDone: (err?: unknown) => void,
    accept?: string,
  ): WatchHandle {
    let finished = false;
    const done = (err?: unknown) => {
      if (finished) return;
      finished = true;
      onDone(err);
    };
    const req = this.send(
      'GET',
      p + queryString({ ...query, watch: true }),
      { accept },
      query.timeoutSeconds * 1000 + WATCH_IDLE_GRACE_MS,
    );
    req.on('timeout', () => req.destroy(new Error(`watch ${p}: no data for too long`)));
    req.on('error', (err) => done(err));
    req.on('response', (res) => {
      const status = res.statusCode ?? 0;
      if (status !== 200) {
        let text = '';
        res.on('data', (c: Buffer) => (text += c.toString('utf8')));
        res.on('end', () => done(apiError(status, 'WATCH', p, text)));
        res.on('error', (err) => done(err));
        return;
      }
      let buf = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => {
        buf += chunk;
        let nl: number;
        while ((nl = buf.indexOf('\n')) >= 0) {
          const line = buf.slice(0, nl);
          buf = buf.slice(nl + 1);
          if (!line.trim()) continue;
          let ev: { type: string; object: unknown };
          try {
            ev = JSON.parse(line) as { type: string; object: unknown };
          } catch (err) {
            req.destroy();
            return done(new Error(`watch ${p}: bad event line: ${(err as Error).message}`));
          }
          if (!finished) onEvent(ev.type, ev.object);
        }
      });
      res.on('end', () => done());
      res.on('error', (err) => done(err));
      res.on('aborted', () => done(new Error(`watch ${p}: connection aborted`)));
    });
    return {
      abort: () => {
        finished = true;
        req.destroy();
      },
    };
  }

  /** Closes idle keep-alive sockets. */
  close(): void {
    this.conn.agent.destroy();
  }
}
