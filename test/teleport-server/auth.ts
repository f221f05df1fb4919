// The fake Auth server: a @grpc/grpc-js server (plaintext, loopback) implementing the trimmed AuthService and
// AccessMonitoringRulesService, behind a mutual-TLS front that terminates TLS like Auth on :3025
// (server cert with SANs teleport.cluster.local / *.teleport.cluster.local, client certs from the Host CA).
import net from 'node:net';
import tls from 'node:tls';
import { create } from '@bufbuild/protobuf';
import { EmptySchema } from '@bufbuild/protobuf/wkt';
import { Server, ServerCredentials, status } from '@grpc/grpc-js';
import type { Metadata, ServerUnaryCall, ServerWritableStream, sendUnaryData } from '@grpc/grpc-js';
import type { RequestState } from '../../operator/teleport/api.js';
import {
  accessRequestToProto,
  ruleToProto,
  stateFromProto,
  userToProto,
} from '../../operator/teleport/convert.js';
import {
  AccessMonitoringRulesService,
  ListAccessMonitoringRulesResponseSchema,
  ListAccessMonitoringRulesWithFilterResponseSchema,
} from '../../operator/teleport/gen/teleport/accessmonitoringrules/v1/access_monitoring_rules_pb.js';
import type {
  GetAccessMonitoringRuleRequest,
  ListAccessMonitoringRulesRequest,
  ListAccessMonitoringRulesWithFilterRequest,
} from '../../operator/teleport/gen/teleport/accessmonitoringrules/v1/access_monitoring_rules_pb.js';
import {
  AuthService,
  EventSchema,
  ListAccessRequestsResponseSchema,
  Operation,
  PingResponseSchema,
  PluginDataSeqSchema,
} from '../../operator/teleport/gen/teleport/legacy/client/proto/authservice_pb.js';
import type {
  Event,
  ListAccessRequestsRequest,
  PingRequest,
  RequestStateSetter,
  Watch,
} from '../../operator/teleport/gen/teleport/legacy/client/proto/authservice_pb.js';
import type {
  AccessRequestFilter,
  AccessRequestV3,
  AccessReviewSubmission,
  PluginDataFilter,
  PluginDataUpdateParams,
} from '../../operator/teleport/gen/teleport/legacy/types/types_pb.js';
import { RequestState as PbState } from '../../operator/teleport/gen/teleport/legacy/types/types_pb.js';
import { grpcServiceDefinition } from './grpc-js.js';
import {
  GetUserResponseSchema,
  ListUsersResponseSchema,
  UsersService,
} from '../../operator/teleport/gen/teleport/users/v1/users_service_pb.js';
import type {
  GetUserRequest,
  ListUsersRequest,
} from '../../operator/teleport/gen/teleport/users/v1/users_service_pb.js';
import { ReviewAuthority } from './review.js';
import { KIND_ACCESS_REQUEST, StatusError, accessDenied, badParameter, notFound } from './backend.js';
import type { Watcher, FakeBackend } from './backend.js';

export interface PingSettings {
  clusterName: string;
  serverVersion: string;
  proxyPublicAddr: string;
  advancedAccessWorkflows: boolean;
  accessMonitoringConfigured: boolean;
  cloud: boolean;
}

interface InjectedFailure {
  code: status;
  message: string;
  remaining: number;
}

const SEMVER = /^v?\d+\.\d+\.\d+(-[0-9A-Za-z.-]+)?(\+[0-9A-Za-z.-]+)?$/;
const DEFAULT_LIST_LIMIT = 1000;

export class FakeAuthControls {
  delayMs = 0;
  readonly failures = new Map<string, InjectedFailure>();
  readonly unimplemented = new Set<string>();
  readonly deniedWatchKinds = new Set<string>();
  readonly calls = new Map<string, number>();
  /** Every `version` header value received (the client must never send a non-semver one). */
  readonly versionHeaders: string[] = [];
}

interface ActiveWatch {
  call: ServerWritableStream<Watch, Event>;
  watcher: Watcher;
}

export class FakeAuthServer {
  readonly controls = new FakeAuthControls();
  readonly activeWatches = new Set<ActiveWatch>();
  private grpcServer = new Server();
  private tlsServer: tls.Server | undefined;
  private readonly sockets = new Set<net.Socket>();
  /** Local port of each plaintext hop to the gRPC server → the client certificate's user (CN). */
  private readonly callerByPort = new Map<number, string>();
  readonly reviews = new ReviewAuthority();
  grpcPort = 0;
  port = 0;

  constructor(
    readonly backend: FakeBackend,
    public ping: PingSettings,
  ) {}

  async start(tlsOptions: { keyPem: string; certPem: string; clientCaPems: string[] }): Promise<void> {
    this.grpcServer.addService(grpcServiceDefinition(AuthService), this.authHandlers());
    this.grpcServer.addService(grpcServiceDefinition(AccessMonitoringRulesService), this.amrHandlers());
    this.grpcServer.addService(grpcServiceDefinition(UsersService), this.userHandlers());
    this.grpcPort = await new Promise<number>((resolve, reject) =>
      this.grpcServer.bindAsync('127.0.0.1:0', ServerCredentials.createInsecure(), (err, port) =>
        err ? reject(err) : resolve(port),
      ),
    );
    this.tlsServer = tls.createServer(
      {
        ...this.secureContextOptions(tlsOptions),
        requestCert: true,
        rejectUnauthorized: true,
        ALPNProtocols: ['h2'],
      },
      (clientSocket) => this.forwardToGrpc(clientSocket),
    );
    this.tlsServer.on('tlsClientError', () => {
      // Handshake failures (bad client cert, unknown CA) are expected in tests; the client sees them.
    });
    await new Promise<void>((resolve) => this.tlsServer!.listen(0, '127.0.0.1', resolve));
    this.port = (this.tlsServer.address() as net.AddressInfo).port;
  }

  private secureContextOptions(o: {
    keyPem: string;
    certPem: string;
    clientCaPems: string[];
  }): tls.SecureContextOptions {
    return { key: o.keyPem, cert: o.certPem, ca: o.clientCaPems };
  }

  /** New server cert and client CAs for new connections (CA rotation). */
  updateTls(o: { keyPem: string; certPem: string; clientCaPems: string[] }): void {
    this.tlsServer?.setSecureContext(this.secureContextOptions(o));
  }

  private forwardToGrpc(clientSocket: tls.TLSSocket): void {
    const upstream = net.connect(this.grpcPort, '127.0.0.1');
    const cn = clientSocket.getPeerCertificate().subject?.CN;
    const user = Array.isArray(cn) ? cn[0] : cn;
    upstream.on('connect', () => {
      const port = upstream.localPort;
      if (port === undefined || !user) return;
      this.callerByPort.set(port, user);
      upstream.on('close', () => this.callerByPort.delete(port));
    });
    clientSocket.setNoDelay(true);
    upstream.setNoDelay(true);
    this.track(clientSocket);
    this.track(upstream);
    clientSocket.pipe(upstream).pipe(clientSocket);
    const close = (): void => {
      clientSocket.destroy();
      upstream.destroy();
    };
    clientSocket.on('error', close);
    upstream.on('error', close);
    clientSocket.on('close', close);
    upstream.on('close', close);
  }

  track(socket: net.Socket): void {
    this.sockets.add(socket);
    socket.on('close', () => this.sockets.delete(socket));
  }

  /** Closes every TCP connection (client side sees a network failure). */
  dropConnections(): void {
    for (const s of this.sockets) s.destroy();
  }

  /** Ends every watch stream with UNAVAILABLE, as when Auth restarts; returns how many were dropped. */
  dropStreams(code: status = status.UNAVAILABLE): number {
    const watches = [...this.activeWatches];
    for (const w of watches) this.endWatch(w, { code, details: 'watcher closed by the test server' });
    return watches.length;
  }

  private endWatch(w: ActiveWatch, err?: { code: status; details: string }): void {
    if (!this.activeWatches.delete(w)) return;
    this.backend.watchers.delete(w.watcher);
    if (err) w.call.emit('error', err);
    else w.call.end();
  }

  async stop(): Promise<void> {
    for (const w of [...this.activeWatches]) this.endWatch(w);
    this.dropConnections();
    await new Promise<void>((resolve) =>
      this.tlsServer ? this.tlsServer.close(() => resolve()) : resolve(),
    );
    this.grpcServer.forceShutdown();
  }

  // ---- request plumbing: failure injection, delay, version header, error mapping ----

  private async enter(method: string, metadata: Metadata): Promise<void> {
    this.controls.calls.set(method, (this.controls.calls.get(method) ?? 0) + 1);
    for (const v of metadata.get('version')) {
      const value = String(v);
      this.controls.versionHeaders.push(value);
      // lib/auth/middleware.go ValidateClientVersion: a present but malformed header is AccessDenied.
      if (!SEMVER.test(value)) throw accessDenied(`unsupported client version "${value}"`);
    }
    if (this.controls.delayMs > 0) await new Promise((r) => setTimeout(r, this.controls.delayMs));
    // Access Monitoring Rules (and their service) exist from Teleport 16.
    const major = Number(/^v?(\d+)/.exec(this.ping.serverVersion)?.[1] ?? 17);
    if (major < 16 && method.includes('AccessMonitoringRule')) {
      throw new StatusError(
        status.UNIMPLEMENTED,
        `unknown service teleport.accessmonitoringrules.v1.AccessMonitoringRulesService`,
      );
    }
    if (this.controls.unimplemented.has(method)) {
      throw new StatusError(status.UNIMPLEMENTED, `unknown method ${method} for service proto.AuthService`);
    }
    const failure = this.controls.failures.get(method);
    if (failure && failure.remaining > 0) {
      failure.remaining--;
      if (failure.remaining === 0) this.controls.failures.delete(method);
      throw new StatusError(failure.code, failure.message);
    }
  }

  /** The user of the client certificate that made the call (its CN), from the hop's port. */
  private callerOf(call: { getPeer(): string }): string {
    const port = Number(/:(\d+)$/.exec(call.getPeer())?.[1]);
    return this.callerByPort.get(port) ?? '';
  }

  private unary<Req, Res>(
    method: string,
    fn: (req: Req, caller: string) => Res,
  ): (call: ServerUnaryCall<Req, Res>, callback: sendUnaryData<Res>) => void {
    return (call, callback) => {
      this.enter(method, call.metadata)
        .then(() => callback(null, fn(call.request, this.callerOf(call))))
        .catch((err: unknown) => callback(toStatus(err)));
    };
  }

  private stream<Req, Res>(
    method: string,
    fn: (req: Req) => Res[],
  ): (call: ServerWritableStream<Req, Res>) => void {
    return (call) => {
      this.enter(method, call.metadata)
        .then(() => {
          for (const item of fn(call.request)) call.write(item);
          call.end();
        })
        .catch((err: unknown) => call.emit('error', toStatus(err)));
    };
  }

  private authHandlers() {
    const b = this.backend;
    const filterOf = (f: AccessRequestFilter | undefined) => ({
      id: f?.ID ?? '',
      user: f?.User ?? '',
      state: stateFromProto(f?.State ?? PbState.NONE),
    });
    return {
      ping: this.unary('Ping', (_: PingRequest) =>
        create(PingResponseSchema, {
          ClusterName: this.ping.clusterName,
          ServerVersion: this.ping.serverVersion,
          ProxyPublicAddr: this.ping.proxyPublicAddr,
          ServerFeatures: {
            AdvancedAccessWorkflows: this.ping.advancedAccessWorkflows,
            AccessMonitoringConfigured: this.ping.accessMonitoringConfigured,
            Cloud: this.ping.cloud,
          },
        }),
      ),
      watchEvents: (call: ServerWritableStream<Watch, Event>) => this.watchEvents(call),
      getAccessRequestsV2: this.stream('GetAccessRequestsV2', (f: AccessRequestFilter) =>
        b.listRequests(filterOf(f)).map(accessRequestToProto),
      ),
      listAccessRequests: this.unary('ListAccessRequests', (req: ListAccessRequestsRequest) => {
        const all = b.listRequests(filterOf(req.Filter)).filter((r) => !req.StartKey || r.id >= req.StartKey);
        const limit = req.Limit > 0 ? Math.min(req.Limit, DEFAULT_LIST_LIMIT) : DEFAULT_LIST_LIMIT;
        const page = all.slice(0, limit);
        return create(ListAccessRequestsResponseSchema, {
          AccessRequests: page.map(accessRequestToProto),
          NextKey: all[limit]?.id ?? '',
        });
      }),
      getPluginData: this.unary('GetPluginData', (f: PluginDataFilter) =>
        create(PluginDataSeqSchema, {
          PluginData: b.getPluginData(f.Kind, f.Resource, f.Plugin).map(({ resource, record }) => ({
            Kind: 'plugin_data',
            SubKind: KIND_ACCESS_REQUEST,
            Version: 'v3',
            Metadata: { Name: resource, Namespace: 'default' },
            Spec: {
              Entries: Object.fromEntries(
                [...record.entries].map(([plugin, data]) => [plugin, { Data: { ...data } }]),
              ),
            },
          })),
        }),
      ),
      updatePluginData: this.unary('UpdatePluginData', (p: PluginDataUpdateParams) => {
        b.updatePluginData({
          kind: p.Kind,
          resource: p.Resource,
          plugin: p.Plugin,
          set: p.Set,
          expect: p.Expect,
        });
        return create(EmptySchema);
      }),
      submitAccessReview: this.unary(
        'SubmitAccessReview',
        (s: AccessReviewSubmission, caller: string): AccessRequestV3 => {
          const review = s.Review;
          if (!review) throw badParameter('missing review');
          const req = b.requests.get(s.RequestID);
          if (!req) throw notFound(`access_request "${s.RequestID}" doesn't exist`);
          const onBehalf = review.submittedOnBehalfOfAuthor && this.reviews.onBehalfSupported;
          const author = this.reviews.authorize(
            caller,
            {
              author: review.Author,
              proposedState: stateFromProto(review.ProposedState),
              onBehalfOfAuthor: review.submittedOnBehalfOfAuthor,
            },
            req,
          );
          return accessRequestToProto(
            b.submitReview(s.RequestID, {
              author,
              proposedState: stateFromProto(review.ProposedState),
              reason: review.Reason,
              roles: this.reviews.users.get(author)?.roles ?? [],
              ...(onBehalf ? { submittedBy: caller, onBehalfOfAuthor: true } : {}),
            }),
          );
        },
      ),
      setAccessRequestState: this.unary('SetAccessRequestState', (s: RequestStateSetter) => {
        b.setState(s.ID, stateFromProto(s.State) as RequestState, s.Reason);
        return create(EmptySchema);
      }),
    };
  }

  private amrHandlers() {
    const b = this.backend;
    const page = (rules: ReturnType<FakeBackend['listRules']>, pageSize: bigint, token: string) => {
      const from = rules.filter((r) => !token || r.name >= token);
      const size = pageSize > 0n ? Number(pageSize) : 1000;
      return { rules: from.slice(0, size).map(ruleToProto), nextPageToken: from[size]?.name ?? '' };
    };
    return {
      listAccessMonitoringRules: this.unary(
        'ListAccessMonitoringRules',
        (r: ListAccessMonitoringRulesRequest) =>
          create(ListAccessMonitoringRulesResponseSchema, page(b.listRules([], ''), r.pageSize, r.pageToken)),
      ),
      listAccessMonitoringRulesWithFilter: this.unary(
        'ListAccessMonitoringRulesWithFilter',
        (r: ListAccessMonitoringRulesWithFilterRequest) =>
          create(
            ListAccessMonitoringRulesWithFilterResponseSchema,
            page(b.listRules(r.subjects, r.notificationName), r.pageSize, r.pageToken),
          ),
      ),
      getAccessMonitoringRule: this.unary('GetAccessMonitoringRule', (r: GetAccessMonitoringRuleRequest) => {
        const rule = b.rules.get(r.name);
        if (!rule) throw notFound(`access_monitoring_rule "${r.name}" doesn't exist`);
        return ruleToProto(rule);
      }),
    };
  }

  private userHandlers() {
    return {
      listUsers: this.unary('ListUsers', (r: ListUsersRequest) => {
        const page = this.reviews.listUsers(r.pageToken, r.pageSize);
        return create(ListUsersResponseSchema, {
          users: page.users.map(userToProto),
          nextPageToken: page.nextPageToken,
        });
      }),
      getUser: this.unary('GetUser', (r: GetUserRequest) => {
        const user = this.reviews.users.get(r.name);
        if (!user) throw notFound(`user "${r.name}" not found`);
        return create(GetUserResponseSchema, { user: userToProto(user) });
      }),
    };
  }

  private watchEvents(call: ServerWritableStream<Watch, Event>): void {
    this.enter('WatchEvents', call.metadata)
      .then(() => {
        if (call.cancelled) return; // the client gave up while we were delayed
        const accepted = this.backend.acceptKinds(
          call.request.Kinds,
          call.request.AllowPartialSuccess,
          this.controls.deniedWatchKinds,
          this.ping.serverVersion,
        );
        const active: ActiveWatch = {
          call,
          watcher: {
            kinds: new Map(accepted.map((k) => [k.Kind, { ...k.Filter }])),
            send: (event) => call.write(event),
          },
        };
        // INIT first, carrying the accepted kinds (WatchStatus), then live events.
        call.write(
          create(EventSchema, {
            Type: Operation.INIT,
            Resource: {
              case: 'WatchStatus',
              value: {
                Kind: 'watch_status',
                Version: 'v1',
                Metadata: { Name: 'watch_status' },
                Spec: { Kinds: accepted },
              },
            },
          }),
        );
        this.backend.watchers.add(active.watcher);
        this.activeWatches.add(active);
        call.on('cancelled', () => this.endWatch(active));
        call.on('close', () => this.endWatch(active));
      })
      .catch((err: unknown) => call.emit('error', toStatus(err)));
  }
}

function toStatus(err: unknown): { code: status; details: string } {
  if (err instanceof StatusError) return { code: err.code, details: err.message };
  return { code: status.UNKNOWN, details: (err as Error)?.message ?? String(err) };
}
