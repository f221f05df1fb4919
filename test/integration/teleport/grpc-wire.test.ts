// Our gRPC client (operator/teleport/grpc.ts, call.ts, channel.ts) against a raw node:http2 server that
// answers exactly what each test needs, including what grpc-js's server would never send.
import { create, toBinary } from '@bufbuild/protobuf';
import http2 from 'node:http2';
import type { Http2Session, IncomingHttpHeaders, ServerHttp2Stream } from 'node:http2';
import net from 'node:net';
import type { AddressInfo } from 'node:net';
import { GrpcChannel } from '../../../operator/teleport/channel.js';
import type { ChannelOptions } from '../../../operator/teleport/channel.js';
import {
  AuthService,
  EventSchema,
  Operation,
  PingResponseSchema,
} from '../../../operator/teleport/gen/teleport/legacy/client/proto/authservice_pb.js';
import { collectStream, serverStreamCall, Status, unaryCall } from '../../../operator/teleport/grpc.js';
import { HTTP_WITHOUT_GRPC_STATUS } from '../../support/grpc-http-status.js';

type Handler = (stream: ServerHttp2Stream, headers: IncomingHttpHeaders) => void;

interface RawServer {
  port: number;
  sessions: Set<Http2Session>;
  connections: number;
  close(): Promise<void>;
}

const cleanups: Array<() => unknown> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function rawServer(handler: Handler): Promise<RawServer> {
  const server = http2.createServer();
  const sessions = new Set<Http2Session>();
  const s: RawServer = { port: 0, sessions, connections: 0, close: async () => {} };
  server.on('session', (session) => {
    s.connections++;
    sessions.add(session);
    session.on('close', () => sessions.delete(session));
    session.on('error', () => {});
  });
  server.on('stream', (stream, headers) => {
    stream.on('error', () => {});
    handler(stream, headers);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  s.port = (server.address() as AddressInfo).port;
  s.close = () => {
    for (const session of sessions) session.destroy();
    return new Promise<void>((r) => server.close(() => r()));
  };
  cleanups.push(s.close);
  return s;
}

function channelTo(port: number, opts: Partial<ChannelOptions> = {}): GrpcChannel {
  const channel = new GrpcChannel({
    dial: () =>
      new Promise((resolve, reject) => {
        const socket = net.connect(port, '127.0.0.1', () => resolve(socket));
        socket.once('error', reject);
      }),
    authority: 'teleport.cluster.local',
    keepaliveMs: 60_000,
    keepaliveTimeoutMs: 180_000,
    maxReceiveBytes: 1024 * 1024,
    ...opts,
  });
  cleanups.push(() => channel.destroy());
  return channel;
}

const pong = (name: string): Buffer =>
  Buffer.from(toBinary(PingResponseSchema, create(PingResponseSchema, { ClusterName: name })));
const initEvent = (): Buffer =>
  Buffer.from(toBinary(EventSchema, create(EventSchema, { Type: Operation.INIT })));
const framed = (body: Buffer, flag = 0): Buffer => {
  const p = Buffer.alloc(5);
  p[0] = flag;
  p.writeUInt32BE(body.length, 1);
  return Buffer.concat([p, body]);
};
const GRPC_OK = { ':status': 200, 'content-type': 'application/grpc' };

/** Answers with these body chunks (written apart, so they travel as separate DATA frames), then trailers. */
function answer(stream: ServerHttp2Stream, chunks: Buffer[], trailers: Record<string, string>): void {
  stream.respond(GRPC_OK, { waitForTrailers: true });
  stream.on('wantTrailers', () => stream.sendTrailers(trailers));
  void (async () => {
    for (const c of chunks) {
      stream.write(c);
      await new Promise((r) => setTimeout(r, 5));
    }
    stream.end();
  })();
}

/** Resolves with the RST_STREAM code the server saw when the client ended the stream. */
function resetSeen(stream: ServerHttp2Stream): Promise<number> {
  return new Promise((resolve) => stream.on('close', () => resolve(stream.rstCode)));
}

const ping = (channel: GrpcChannel, deadlineMs?: number) =>
  unaryCall(channel, AuthService.method.ping, {}, deadlineMs ? { deadlineMs } : {});

describe('our gRPC client on the wire', () => {
  it('sends a gRPC request and reassembles an answer split over DATA frames', async () => {
    let seen: { headers: IncomingHttpHeaders; body: Buffer } | undefined;
    const server = await rawServer((stream, headers) => {
      const parts: Buffer[] = [];
      stream.on('data', (d: Buffer) => parts.push(d));
      stream.on('end', () => {
        seen = { headers, body: Buffer.concat(parts) };
        const wire = framed(pong('split.example.com'));
        answer(stream, [wire.subarray(0, 2), wire.subarray(2, 9), wire.subarray(9)], { 'grpc-status': '0' });
      });
    });
    const res = await ping(channelTo(server.port), 30_000);
    expect(res.ClusterName).toBe('split.example.com');
    expect(seen!.headers).toMatchObject({
      ':method': 'POST',
      ':path': '/proto.AuthService/Ping',
      ':authority': 'teleport.cluster.local',
      ':scheme': 'https',
      'content-type': 'application/grpc',
      te: 'trailers',
    });
    expect(seen!.headers['grpc-timeout']).toMatch(/^(29\d{3}|30000)m$/);
    expect(seen!.body.toString('hex')).toBe('0000000000'); // an empty PingRequest, length-prefixed
  });

  it('reads several stream messages from one DATA frame, then ends on grpc-status 0', async () => {
    const server = await rawServer((stream) =>
      answer(stream, [Buffer.concat(['a', 'b', 'c'].map((n) => framed(pong(n))))], { 'grpc-status': '0' }),
    );
    const items = await collectStream(
      serverStreamCall(channelTo(server.port), AuthService.method.getAccessRequestsV2, {}),
    );
    expect(items).toHaveLength(3);
  });

  it('takes the status from a Trailers-Only response and percent-decodes grpc-message', async () => {
    const server = await rawServer((stream) =>
      stream.respond(
        { ...GRPC_OK, 'grpc-status': '5', 'grpc-message': 'request %22x%22 not found%3A gone' },
        { endStream: true },
      ),
    );
    await expect(ping(channelTo(server.port))).rejects.toMatchObject({
      code: Status.NOT_FOUND,
      details: 'request "x" not found: gone',
    });
  });

  it('takes an error status from the trailers after messages', async () => {
    const server = await rawServer((stream) =>
      answer(stream, [framed(pong('a'))], { 'grpc-status': '7', 'grpc-message': 'denied' }),
    );
    await expect(ping(channelTo(server.port))).rejects.toMatchObject({
      code: Status.PERMISSION_DENIED,
      details: 'denied',
    });
  });

  it.each(HTTP_WITHOUT_GRPC_STATUS)(
    'maps HTTP %i from something that is not a gRPC server',
    async (httpStatus, code) => {
      const server = await rawServer((stream) => {
        stream.respond({ ':status': httpStatus, 'content-type': 'text/html' });
        stream.end('<html>bad gateway</html>');
      });
      await expect(ping(channelTo(server.port))).rejects.toMatchObject({
        code,
        details: `HTTP status ${httpStatus} without a gRPC status`,
      });
    },
  );

  it('uses grpc-status when a non-200 response carries one', async () => {
    const server = await rawServer((stream) =>
      stream.respond(
        { ':status': 503, 'grpc-status': '8', 'grpc-message': 'slow down' },
        { endStream: true },
      ),
    );
    await expect(ping(channelTo(server.port))).rejects.toMatchObject({ code: Status.RESOURCE_EXHAUSTED });
  });

  it('a 200 that ends without grpc-status is UNKNOWN; a reset stream is mapped by its code', async () => {
    let mode = 'no-status';
    const server = await rawServer((stream) => {
      if (mode === 'no-status') {
        stream.respond(GRPC_OK);
        stream.end(framed(pong('x')));
      } else if (mode === 'html') {
        stream.respond({ ':status': 200, 'content-type': 'text/html' });
        stream.end('hello');
      } else stream.close(mode === 'refused' ? http2.constants.NGHTTP2_REFUSED_STREAM : 2);
    });
    const channel = channelTo(server.port);
    await expect(ping(channel)).rejects.toMatchObject({
      code: Status.UNKNOWN,
      details: 'the response ended without a grpc-status',
    });
    mode = 'html';
    await expect(ping(channel)).rejects.toMatchObject({
      code: Status.UNKNOWN,
      details: expect.stringContaining('text/html'),
    });
    mode = 'refused';
    await expect(ping(channel)).rejects.toMatchObject({ code: Status.UNAVAILABLE });
    mode = 'internal';
    await expect(ping(channel)).rejects.toMatchObject({ code: Status.INTERNAL });
  });

  it('a compressed message without grpc-encoding is INTERNAL', async () => {
    const server = await rawServer((stream) =>
      answer(stream, [framed(pong('x'), 1)], { 'grpc-status': '0' }),
    );
    await expect(ping(channelTo(server.port))).rejects.toMatchObject({ code: Status.INTERNAL });
  });

  it('unary cardinality: no message or two messages with OK are UNIMPLEMENTED', async () => {
    let n = 0;
    const server = await rawServer((stream) =>
      answer(stream, n++ === 0 ? [] : [framed(pong('a')), framed(pong('b'))], { 'grpc-status': '0' }),
    );
    const channel = channelTo(server.port);
    await expect(ping(channel)).rejects.toMatchObject({ code: Status.UNIMPLEMENTED });
    await expect(ping(channel)).rejects.toMatchObject({ code: Status.UNIMPLEMENTED });
  });

  it('deadline: DEADLINE_EXCEEDED from a local timer, and the stream is reset with CANCEL', async () => {
    let reset: Promise<number> | undefined;
    let timeout: string | undefined;
    const server = await rawServer((stream, headers) => {
      timeout = headers['grpc-timeout'] as string;
      reset = resetSeen(stream); // and never answers
    });
    const started = Date.now();
    await expect(ping(channelTo(server.port), 200)).rejects.toMatchObject({
      code: Status.DEADLINE_EXCEEDED,
    });
    expect(Date.now() - started).toBeGreaterThanOrEqual(190);
    expect(timeout).toMatch(/^\d{1,3}m$/);
    await expect(reset).resolves.toBe(http2.constants.NGHTTP2_CANCEL);
  });

  it('cancel(): the server sees CANCEL and the caller gets neither error nor end', async () => {
    let reset: Promise<number> | undefined;
    const server = await rawServer((stream) => {
      reset = resetSeen(stream);
      stream.respond(GRPC_OK);
      stream.write(framed(initEvent()));
    });
    const stream = serverStreamCall(channelTo(server.port), AuthService.method.watchEvents, {});
    const after: string[] = [];
    await new Promise<void>((resolve) => stream.once('data', () => resolve()));
    stream.on('error', () => after.push('error'));
    stream.on('end', () => after.push('end'));
    stream.cancel();
    await expect(reset).resolves.toBe(http2.constants.NGHTTP2_CANCEL);
    await new Promise((r) => setTimeout(r, 50));
    expect(after).toEqual([]);
  });

  it('an aborted signal fails a unary call with CANCELLED', async () => {
    const server = await rawServer(() => {});
    const abort = new AbortController();
    const call = unaryCall(channelTo(server.port), AuthService.method.ping, {}, { signal: abort.signal });
    setTimeout(() => abort.abort(), 50);
    await expect(call).rejects.toMatchObject({ code: Status.CANCELLED });
  });

  it('a message over the size limit is RESOURCE_EXHAUSTED and the stream is reset, not read to its end', async () => {
    let reset: Promise<number> | undefined;
    let written = 0;
    const server = await rawServer((stream) => {
      reset = resetSeen(stream);
      stream.respond(GRPC_OK);
      const header = Buffer.from([0, 0, 0x40, 0, 0]); // 4 MiB announced
      stream.write(header);
      const chunk = Buffer.alloc(16 * 1024);
      const pump = (): void => {
        while (!stream.closed && written < 4 * 1024 * 1024 && stream.write(chunk)) written += chunk.length;
        if (!stream.closed && written < 4 * 1024 * 1024) stream.once('drain', pump);
      };
      pump();
    });
    await expect(ping(channelTo(server.port, { maxReceiveBytes: 64 * 1024 }))).rejects.toMatchObject({
      code: Status.RESOURCE_EXHAUSTED,
      details: 'received a message of 4194304 bytes, more than the limit of 65536',
    });
    await expect(reset).resolves.toBe(http2.constants.NGHTTP2_CANCEL);
    expect(written).toBeLessThan(4 * 1024 * 1024);
  });
});

describe('our gRPC client when the connection goes', () => {
  it('GOAWAY with an error mid-stream: UNAVAILABLE, and the next call connects again', async () => {
    let goaway = true;
    const server = await rawServer((stream) => {
      if (!goaway) return answer(stream, [framed(pong('again'))], { 'grpc-status': '0' });
      stream.respond(GRPC_OK);
      stream.write(framed(initEvent()), () =>
        setTimeout(() => stream.session?.goaway(http2.constants.NGHTTP2_INTERNAL_ERROR), 20),
      );
    });
    const channel = channelTo(server.port);
    const stream = serverStreamCall(channel, AuthService.method.watchEvents, {});
    const got: string[] = [];
    stream.on('data', () => got.push('data'));
    const err = await new Promise<{ code: number; details: string }>((resolve) =>
      stream.on('error', resolve),
    );
    expect(got).toEqual(['data']);
    expect(err.code).toBe(Status.UNAVAILABLE);
    expect(err.details).toMatch(/GOAWAY/);
    goaway = false;
    await expect(ping(channel)).resolves.toMatchObject({ ClusterName: 'again' });
    expect(server.connections).toBe(2);
  });

  it('a graceful GOAWAY lets the stream in flight finish; the next call uses a new connection', async () => {
    const server = await rawServer((stream) => {
      stream.respond(GRPC_OK, { waitForTrailers: true });
      stream.on('wantTrailers', () => stream.sendTrailers({ 'grpc-status': '0' }));
      stream.write(framed(pong('before')));
      stream.session?.goaway(http2.constants.NGHTTP2_NO_ERROR, stream.id);
      setTimeout(() => stream.end(framed(pong('after'))), 30);
    });
    const channel = channelTo(server.port);
    const items = await collectStream(serverStreamCall(channel, AuthService.method.getAccessRequestsV2, {}));
    expect(items).toHaveLength(2);
    await expect(
      collectStream(serverStreamCall(channel, AuthService.method.getAccessRequestsV2, {})),
    ).resolves.toHaveLength(2);
    expect(server.connections).toBe(2);
  });

  it('a connection cut under calls fails them with UNAVAILABLE', async () => {
    const server = await rawServer((stream) => {
      stream.respond(GRPC_OK);
      setTimeout(() => stream.session?.socket.destroy(), 20);
    });
    await expect(ping(channelTo(server.port))).rejects.toMatchObject({ code: Status.UNAVAILABLE });
  });

  it('a peer that falls silent is dropped after the keepalive timeout: UNAVAILABLE', async () => {
    const server = await rawServer((stream) => {
      stream.respond(GRPC_OK);
      stream.write(framed(initEvent()));
    });
    // A TCP relay that can stop forwarding (a dead peer behind a NAT: no FIN, no RST, no answer).
    let silent = false;
    const relay = net.createServer((client) => {
      const upstream = net.connect(server.port, '127.0.0.1');
      client.on('data', (d) => silent || upstream.write(d));
      upstream.on('data', (d) => silent || client.write(d));
      const close = (): void => {
        client.destroy();
        upstream.destroy();
      };
      client.on('close', close).on('error', close);
      upstream.on('close', close).on('error', close);
      cleanups.push(close);
    });
    await new Promise<void>((r) => relay.listen(0, '127.0.0.1', r));
    cleanups.push(() => relay.close());
    const channel = channelTo((relay.address() as AddressInfo).port, {
      keepaliveMs: 100,
      keepaliveTimeoutMs: 300,
    });
    const stream = serverStreamCall(channel, AuthService.method.watchEvents, {});
    await new Promise<void>((resolve) => stream.once('data', () => resolve()));
    await new Promise((r) => setTimeout(r, 350)); // pings are answered while the peer talks
    silent = true;
    const started = Date.now();
    const err = await new Promise<{ code: number; details: string }>((resolve) =>
      stream.on('error', resolve),
    );
    expect(err).toMatchObject({
      code: Status.UNAVAILABLE,
      details: 'no answer to a keepalive ping within 0.3s',
    });
    expect(Date.now() - started).toBeLessThan(2000);
  });

  it('a refused dial fails the call with UNAVAILABLE and the reason', async () => {
    const channel = channelTo(1);
    await expect(ping(channel)).rejects.toMatchObject({
      code: Status.UNAVAILABLE,
      details: expect.stringMatching(/^cannot connect: .*ECONNREFUSED/),
    });
  });

  it('calls made while dialing share one connection', async () => {
    const server = await rawServer((stream) => answer(stream, [framed(pong('x'))], { 'grpc-status': '0' }));
    const channel = channelTo(server.port);
    await Promise.all([ping(channel), ping(channel), ping(channel)]);
    expect(server.connections).toBe(1);
  });
});
