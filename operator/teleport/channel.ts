/*
 * A gRPC channel of our own: one HTTP/2 session (node:http2) at a time, over a socket someone else dials.
 *
 * Why not @grpc/grpc-js: the watcher makes two kinds of calls (unary and server-streaming) to one server,
 * and grpc-js brought name resolution, load balancing, service configs, compression, protobufjs and
 * lodash into its memory (issue 16: +2.7 MiB RSS, 400 KB of the watcher's bundle). It also forced ALPN
 * ["h2"] on its own TLS, which the Teleport proxy's TLS routing cannot use, so every connection went
 * through a local Unix-socket bridge. Here the TLS socket comes from `dial` (dial.ts: ALPN, HTTP CONNECT
 * proxy, the current identity) and is handed to http2.connect as is.
 *
 * Life of a session. Nothing is dialed until a call needs it; calls made while dialing wait for that one
 * dial. The session is kept while it lives; once it is gone (socket closed, error, GOAWAY, keepalive
 * timeout) the next call dials again — no background reconnect loop: the callers retry with backoff
 * (watch) or fail and are retried (unary), as with grpc-js's idle channel. A dial failure fails the calls
 * waiting for it with UNAVAILABLE. A new GrpcChannel is a new connection (new TLS with a renewed
 * identity); nothing is shared between channels.
 *
 * In-flight calls when the session goes: GOAWAY(NO_ERROR) lets streams the server already took finish
 * (Node closes the session gracefully) and refuses the others (REFUSED_STREAM → UNAVAILABLE); any other
 * end of the session fails them with UNAVAILABLE, with the reason (lost()) once the session has closed,
 * so whoever watches sessions (dial.ts's hints) has seen the close before the call reports.
 *
 * Keepalive: an HTTP/2 PING every keepaliveMs, with or without calls (as Teleport's Go client); no
 * answer within keepaliveTimeoutMs destroys the session, which fails its calls with UNAVAILABLE. The
 * session holds the process open only while calls are in flight (as grpc-js).
 */
import type { ClientHttp2Session } from 'node:http2';
import type { Duplex } from 'node:stream';
import { http2 } from '../node-builtins.js';
import type { Status } from './status.js';

export interface CallOptions {
  deadlineMs?: number;
  signal?: AbortSignal;
}

export interface CallStatus {
  code: Status;
  details: string;
}

export interface ChannelOptions {
  /** A connected socket that speaks HTTP/2 (TLS with ALPN h2 already negotiated). */
  dial: () => Promise<Duplex>;
  /** :authority of every call. */
  authority: string;
  keepaliveMs: number;
  keepaliveTimeoutMs: number;
  /** Larger response messages fail the call with RESOURCE_EXHAUSTED. */
  maxReceiveBytes: number;
  /** Sees every new session first (dial.ts keeps its connection hints from the session's events). */
  onSession?: (session: ClientHttp2Session) => void;
}

interface Live {
  session: ClientHttp2Session;
  /** Resolves with why the session ended, once it has closed. */
  gone: Promise<string>;
  calls: number;
}

export class GrpcChannel {
  private live: Live | undefined;
  private dialing: Promise<Live> | undefined;
  private closed = false;
  private readonly lives = new WeakMap<ClientHttp2Session, Live>();

  constructor(readonly opts: ChannelOptions) {}

  /** The session for a new call (dialing one if needed); the caller must call release() when done. */
  async acquire(): Promise<ClientHttp2Session> {
    if (this.closed) throw new Error('the client is closed');
    const live = usable(this.live) ? this.live! : await this.connect();
    if (this.closed || !usable(live)) throw new Error('the connection closed while the call started');
    if (live.calls++ === 0) live.session.ref();
    return live.session;
  }

  release(session: ClientHttp2Session): void {
    const live = this.lives.get(session);
    if (live && --live.calls === 0 && !session.destroyed) session.unref();
  }

  /** Why a session ended; settles when it has closed. */
  lost(session: ClientHttp2Session): Promise<string> {
    return this.lives.get(session)?.gone ?? Promise.resolve('the connection closed');
  }

  private connect(): Promise<Live> {
    this.dialing ??= this.opts
      .dial()
      .then((socket) => this.adopt(socket))
      .finally(() => (this.dialing = undefined));
    return this.dialing;
  }

  private adopt(socket: Duplex): Live {
    const session = http2.connect(`https://${this.opts.authority}`, {
      createConnection: () => socket,
      settings: { enablePush: false },
    });
    // The first cause wins: a GOAWAY with an error code is followed by the 'error' it implies.
    let reason: string | undefined;
    session.on('error', (err) => (reason ??= `connection error: ${err.message}`));
    session.on('goaway', (code) => {
      reason ??= `the server ended the connection (GOAWAY, HTTP/2 error code ${code})`;
      if (this.live?.session === session) this.live = undefined;
    });
    const gone = new Promise<string>((resolve) =>
      session.once('close', () => resolve(reason ?? 'the connection closed')),
    );
    const live: Live = { session, gone, calls: 0 };
    this.opts.onSession?.(session);
    this.keepAlive(session, (why) => (reason ??= why));
    session.once('close', () => {
      if (this.live === live) this.live = undefined;
    });
    session.unref();
    this.lives.set(session, live);
    if (this.closed) session.destroy();
    else this.live = live;
    return live;
  }

  private keepAlive(session: ClientHttp2Session, setReason: (why: string) => void): void {
    const { keepaliveMs, keepaliveTimeoutMs } = this.opts;
    let waiting: NodeJS.Timeout | undefined;
    const interval = setInterval(() => {
      if (waiting || session.destroyed) return;
      waiting = setTimeout(() => {
        setReason(`no answer to a keepalive ping within ${keepaliveTimeoutMs / 1000}s`);
        session.destroy();
      }, keepaliveTimeoutMs).unref();
      let sent = false;
      try {
        sent = session.ping(() => {
          clearTimeout(waiting);
          waiting = undefined;
        });
      } catch {
        // The session is closing: its 'close' ends this loop.
      }
      if (!sent) {
        clearTimeout(waiting);
        waiting = undefined;
      }
    }, keepaliveMs).unref();
    session.once('close', () => {
      clearInterval(interval);
      clearTimeout(waiting);
    });
  }

  /** No new calls; the session ends when the calls in flight have (graceful HTTP/2 close). */
  close(): void {
    this.closed = true;
    this.live?.session.close();
    this.live = undefined;
  }

  /** Ends the connection now; calls in flight fail with UNAVAILABLE (tests). */
  destroy(): void {
    this.closed = true;
    this.live?.session.destroy();
    this.live = undefined;
  }
}

function usable(live: Live | undefined): boolean {
  return !!live && !live.session.closed && !live.session.destroyed;
}
