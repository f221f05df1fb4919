// The fake Teleport itself, exercised with plain grpc-js / tls (independent of our client).
import type { AddressInfo } from 'node:net';
import tls from 'node:tls';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client, credentials, status } from '@grpc/grpc-js';
import type { ServiceError } from '@grpc/grpc-js';
import { collectStream } from '../../../operator/teleport/grpc.js';
import { parseIdentity } from '../../../operator/teleport/identity.js';
import {
  grpcJsServerStream as serverStreamCall,
  grpcJsUnary as unaryCall,
} from '../../teleport-server/grpc-js.js';
import {
  AuthService,
  Operation,
} from '../../../operator/teleport/gen/teleport/legacy/client/proto/authservice_pb.js';
import type { Event } from '../../../operator/teleport/gen/teleport/legacy/client/proto/authservice_pb.js';
import { startFakeTeleport } from '../../teleport-server/index.js';
import type { FakeTeleport } from '../../teleport-server/index.js';
import { encodeClusterName } from '../../teleport-server/proxy.js';

let tp: FakeTeleport;
let client: Client;
let identity: ReturnType<typeof parseIdentity>;

beforeAll(async () => {
  tp = await startFakeTeleport({ clusterName: 'example.com' });
  identity = parseIdentity(tp.identityText({ keyType: 'rsa' }), 'test');
  client = new Client(
    tp.authAddr,
    credentials.createSsl(
      Buffer.from(identity.tlsCaPems.join('')),
      Buffer.from(identity.privateKeyPem),
      Buffer.from(identity.tlsCertPem),
    ),
    { 'grpc.ssl_target_name_override': 'teleport.cluster.local' },
  );
});

afterAll(async () => {
  client.close();
  await tp.stop();
});

const m = AuthService.method;

function nextEvents(stream: ReturnType<typeof serverStreamCall>, n: number): Promise<Event[]> {
  return new Promise((resolve, reject) => {
    const got: Event[] = [];
    const onData = (ev: Event): void => {
      got.push(ev);
      if (got.length === n) {
        stream.off('data', onData);
        resolve(got);
      }
    };
    stream.on('data', onData);
    stream.on('error', reject);
  });
}

describe('fake Teleport Auth', () => {
  it('answers Ping over mutual TLS with SNI teleport.cluster.local', async () => {
    const pong = await unaryCall(client, m.ping, {});
    expect(pong.ClusterName).toBe('example.com');
    expect(pong.ServerVersion).toBe('17.4.2');
  });

  it('watch: INIT first, PUT filtered by state, DELETE with a ResourceHeader always passes', async () => {
    const stream = serverStreamCall(client, m.watchEvents, {
      Kinds: [{ Kind: 'access_request', Filter: { state: 'PENDING' } }],
    }) as ReturnType<typeof serverStreamCall>;
    const [init] = await nextEvents(stream, 1);
    expect(init!.Type).toBe(Operation.INIT);
    expect(init!.Resource.case).toBe('WatchStatus');
    const events = nextEvents(stream, 2);
    const a = tp.createRequest({ user: 'bob' });
    tp.setState(a.id, 'APPROVED'); // filtered out (state filter)
    tp.deleteRequest(a.id);
    const [put, del] = await events;
    expect(put!.Type).toBe(Operation.PUT);
    expect(put!.Resource.case === 'AccessRequest' && put!.Resource.value.Metadata?.Name).toBe(a.id);
    expect(del!.Type).toBe(Operation.DELETE);
    expect(del!.Resource.case).toBe('ResourceHeader');
    expect(del!.Resource.case === 'ResourceHeader' && del!.Resource.value.Metadata?.Name).toBe(a.id);
    stream.cancel();
  });

  it('rejects a global watch and unknown filter keys', async () => {
    const empty = collectStream(serverStreamCall(client, m.watchEvents, { Kinds: [] }));
    await expect(empty).rejects.toMatchObject({ code: status.PERMISSION_DENIED });
    const bad = collectStream(
      serverStreamCall(client, m.watchEvents, { Kinds: [{ Kind: 'access_request', Filter: { nope: 'x' } }] }),
    );
    await expect(bad).rejects.toMatchObject({
      code: status.INVALID_ARGUMENT,
      details: expect.stringContaining('nope'),
    });
  });

  it('plugin data: NOT_FOUND for unknown requests, CAS on Expect, empty list when absent', async () => {
    const params = { Kind: 'access_request', Plugin: 'mattermost' };
    await expect(
      unaryCall(client, m.updatePluginData, { ...params, Resource: 'missing', Set: { a: '1' } }),
    ).rejects.toMatchObject({ code: status.NOT_FOUND });
    const r = tp.createRequest();
    const none = await unaryCall(client, m.getPluginData, {
      Kind: 'access_request',
      Resource: r.id,
      Plugin: 'mattermost',
    });
    expect(none.PluginData).toEqual([]);
    await unaryCall(client, m.updatePluginData, {
      ...params,
      Resource: r.id,
      Set: { a: '1' },
      Expect: { a: '' },
    });
    await expect(
      unaryCall(client, m.updatePluginData, {
        ...params,
        Resource: r.id,
        Set: { a: '2' },
        Expect: { a: '' },
      }),
    ).rejects.toMatchObject({ code: status.FAILED_PRECONDITION });
    await unaryCall(client, m.updatePluginData, {
      ...params,
      Resource: r.id,
      Set: { a: '2' },
      Expect: { a: '1' },
    });
    expect(tp.pluginData(r.id)).toEqual({ a: '2' });
    tp.deleteRequest(r.id);
    expect(tp.pluginData(r.id)).toEqual({ a: '2' });
  });

  it('rejects a non-semver version header', async () => {
    const { Metadata } = await import('@grpc/grpc-js');
    const md = new Metadata();
    md.set('version', 'not-a-version');
    const err = await new Promise<ServiceError | null>((resolve) =>
      client.makeUnaryRequest(
        '/proto.AuthService/Ping',
        () => Buffer.alloc(0),
        (b: Buffer) => b,
        {},
        md,
        (e) => resolve(e),
      ),
    );
    expect(err?.code).toBe(status.PERMISSION_DENIED);
  });
});

describe('fake Teleport Proxy (TLS routing)', () => {
  const connect = (alpn: string[]): Promise<string | false | null> =>
    new Promise((resolve, reject) => {
      const [host, port] = tp.proxyAddr.split(':');
      const sock = tls.connect({
        host,
        port: Number(port),
        servername: 'teleport.cluster.local',
        ALPNProtocols: alpn,
        cert: identity.tlsCertPem,
        key: identity.privateKeyPem,
        ca: identity.tlsCaPems,
      });
      sock.on('secureConnect', () => {
        resolve(sock.alpnProtocol);
        sock.destroy();
      });
      sock.on('error', reject);
    });

  it('routes teleport-auth@<hex> to Auth as raw TLS (Auth selects h2)', async () => {
    await expect(connect([`teleport-auth@${encodeClusterName('example.com')}`, 'h2'])).resolves.toBe('h2');
  });

  it('closes the connection for an unknown cluster or another ALPN', async () => {
    await expect(connect([`teleport-auth@${encodeClusterName('other.com')}`, 'h2'])).rejects.toThrow();
    await expect(connect(['h2'])).rejects.toThrow();
    const routes = tp.proxyRoutes();
    expect(routes.some((r) => !r.routed && r.reason.includes('"other.com"'))).toBe(true);
  });

  it('writes identity files, also as a Kubernetes-style symlink swap', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'tp-fake-'));
    const path = await tp.writeIdentity({ dir, symlinkSwap: true });
    await tp.writeIdentity({ dir, symlinkSwap: true });
    const { readFile } = await import('node:fs/promises');
    expect(parseIdentity(await readFile(path, 'utf8'), path).clusterName).toBe('example.com');
  });
});

describe('ClientHello parsing', () => {
  it('reads ALPN and SNI from a real Node ClientHello, even when it arrives in pieces', async () => {
    const net = await import('node:net');
    const { parseClientHello } = await import('../../teleport-server/proxy.js');
    const bytes = await new Promise<Buffer>((resolve) => {
      const server = net.createServer((s) => {
        let buf = Buffer.alloc(0);
        s.on('data', (d: Buffer) => {
          buf = Buffer.concat([buf, d]);
          if (parseClientHello(buf).kind !== 'incomplete') {
            s.destroy();
            server.close();
            resolve(buf);
          }
        });
      });
      server.listen(0, '127.0.0.1', () => {
        const port = (server.address() as AddressInfo).port;
        const c = tls.connect({
          host: '127.0.0.1',
          port,
          servername: 'teleport.cluster.local',
          ALPNProtocols: ['teleport-auth@00.teleport.cluster.local', 'h2'],
        });
        c.on('error', () => {});
      });
    });
    expect(parseClientHello(bytes)).toEqual({
      kind: 'hello',
      alpn: ['teleport-auth@00.teleport.cluster.local', 'h2'],
      sni: 'teleport.cluster.local',
    });
    expect(parseClientHello(bytes.subarray(0, 20))).toEqual({ kind: 'incomplete' });
    expect(parseClientHello(Buffer.from('GET / HTTP/1.1\r\n\r\n'))).toEqual({ kind: 'not-tls' });
  });
});
