import { fromBinary, toBinary, create } from '@bufbuild/protobuf';
import type { AccessRequest } from '../../../operator/teleport/api.js';
import { TeleportError } from '../../../operator/teleport/api.js';
import {
  alpnProtocols,
  encodeClusterName,
  splitHostPort,
  tlsOptions,
} from '../../../operator/teleport/dial.js';
import { DecorrelatedBackoff } from '../../../operator/teleport/client.js';
import {
  GO_ZERO_TIME_SECONDS,
  accessRequestFromProto,
  accessRequestToProto,
  dateFromTimestamp,
  pingFromProto,
  ruleFromProto,
  ruleToProto,
  watchEventFromProto,
} from '../../../operator/teleport/convert.js';
import {
  EventSchema,
  Operation,
  PingResponseSchema,
} from '../../../operator/teleport/gen/teleport/legacy/client/proto/authservice_pb.js';
import { AccessRequestV3Schema } from '../../../operator/teleport/gen/teleport/legacy/types/types_pb.js';
import { ServiceError, Status as status, toTeleportError } from '../../../operator/teleport/grpc.js';
import { parseIdentity } from '../../../operator/teleport/identity.js';
import { identityFileText, TestCA } from '../../teleport-server/ca.js';

const request: AccessRequest = {
  id: '7a0b3a5e-1c7f-4b8f-9a0e-2f1f5d2c9e01',
  user: 'alice@example.com',
  roles: ['editor', 'db-admin'],
  state: 'APPROVED',
  created: new Date('2026-11-23T10:00:00.000Z'),
  expires: new Date('2026-11-23T18:00:00.000Z'),
  resourceExpires: new Date('2026-11-23T11:00:00.000Z'),
  requestReason: 'deploy <fix> & "hotfix"',
  resolveReason: 'ok',
  reviews: [
    {
      author: 'bob',
      roles: ['reviewer'],
      proposedState: 'APPROVED',
      reason: 'lgtm',
      created: new Date('2026-11-23T10:05:00.000Z'),
    },
  ],
  suggestedReviewers: ['carol'],
  requestedResources: [{ clusterName: 'example.com', kind: 'node', name: 'db-1', subResourceName: '' }],
  systemAnnotations: { 'teleport.dev/notify-services': ['mattermost'] },
  loginHint: 'root',
};

describe('proto conversions', () => {
  it('round-trips an access request through the wire format', () => {
    const bytes = toBinary(AccessRequestV3Schema, accessRequestToProto(request));
    expect(accessRequestFromProto(fromBinary(AccessRequestV3Schema, bytes))).toEqual(request);
  });

  it('reads Go zero times as undefined and emits them for unset non-nullable times', () => {
    const pb = accessRequestToProto({ ...request, created: undefined, expires: undefined });
    expect(pb.Spec?.Created?.seconds).toBe(GO_ZERO_TIME_SECONDS);
    expect(pb.Spec?.MaxDuration?.seconds).toBe(GO_ZERO_TIME_SECONDS);
    const back = accessRequestFromProto(
      fromBinary(AccessRequestV3Schema, toBinary(AccessRequestV3Schema, pb)),
    );
    expect(back.created).toBeUndefined();
    expect(back.expires).toBeUndefined();
    expect(dateFromTimestamp(undefined)).toBeUndefined();
  });

  it('uses the upstream field numbers on the wire', () => {
    // Spec (5) → User (1): tag 0x2a then 0x0a.
    const bytes = toBinary(AccessRequestV3Schema, create(AccessRequestV3Schema, { Spec: { User: 'u' } }));
    expect(Buffer.from(bytes).toString('hex')).toBe('2a030a0175');
    // Event.AccessRequest is field 14, WatchStatus 43, ResourceHeader 2, AccessMonitoringRule 54.
    const ev = (c: string): string =>
      Buffer.from(
        toBinary(
          EventSchema,
          create(EventSchema, { Type: Operation.PUT, Resource: { case: c, value: {} } as never }),
        ),
      ).toString('hex');
    expect(ev('AccessRequest')).toBe('08017200');
    expect(ev('ResourceHeader')).toBe('08011200');
    expect(ev('WatchStatus')).toBe('0801da0200');
    expect(ev('AccessMonitoringRule')).toBe('0801b20300');
  });

  it('maps watch events: PUT, DELETE by header, rules, and ignores other kinds', () => {
    const put = create(EventSchema, {
      Type: Operation.PUT,
      Resource: { case: 'AccessRequest', value: accessRequestToProto(request) },
    });
    expect(watchEventFromProto(put)).toEqual({ type: 'PUT', request });
    const del = (kind: string) =>
      create(EventSchema, {
        Type: Operation.DELETE,
        Resource: { case: 'ResourceHeader', value: { Kind: kind, Version: 'v3', Metadata: { Name: 'x' } } },
      });
    expect(watchEventFromProto(del('access_request'))).toEqual({ type: 'DELETE', requestId: 'x' });
    expect(watchEventFromProto(del('access_monitoring_rule'))).toEqual({ type: 'RULE_DELETE', name: 'x' });
    expect(watchEventFromProto(del('role'))).toBeUndefined();
    expect(watchEventFromProto(create(EventSchema, { Type: Operation.INIT }))).toEqual({ type: 'INIT' });
    const rule = {
      name: 'r',
      subjects: ['access_request'],
      states: ['pending'],
      condition: 'access_request.spec.roles.contains("admin")',
      notification: { name: 'mattermost', recipients: ['ops'] },
    };
    expect(ruleFromProto(ruleToProto(rule))).toEqual(rule);
  });

  it('maps Ping', () => {
    const p = create(PingResponseSchema, {
      ClusterName: 'c',
      ServerVersion: '17.0.0',
      ProxyPublicAddr: 'p:443',
      ServerFeatures: { AdvancedAccessWorkflows: true },
    });
    expect(pingFromProto(p)).toEqual({
      clusterName: 'c',
      serverVersion: '17.0.0',
      proxyPublicAddr: 'p:443',
      advancedAccessWorkflows: true,
      accessMonitoringConfigured: false,
    });
  });
});

describe('gRPC error mapping', () => {
  const grpcError = (code: number, details: string): ServiceError => new ServiceError(code, details);

  it.each([
    [status.NOT_FOUND, 'NotFound'],
    [status.ALREADY_EXISTS, 'AlreadyExists'],
    [status.PERMISSION_DENIED, 'AccessDenied'],
    [status.FAILED_PRECONDITION, 'CompareFailed'],
    [status.INVALID_ARGUMENT, 'BadParameter'],
    [status.RESOURCE_EXHAUSTED, 'LimitExceeded'],
    [status.UNAVAILABLE, 'Unavailable'],
    [status.UNIMPLEMENTED, 'NotImplemented'],
    [status.INTERNAL, 'Unknown'],
  ])('code %i → %s', (code, kind) => {
    const e = toTeleportError(grpcError(code, 'boom'), 'Doing X');
    expect(e).toBeInstanceOf(TeleportError);
    expect(e.kind).toBe(kind);
    expect(e.grpcCode).toBe(code);
    expect(e.message).toBe('Doing X: boom');
  });

  it('adds the connection hint to Unavailable only', () => {
    expect(toTeleportError(grpcError(status.UNAVAILABLE, 'x'), 'C', 'refused').message).toBe(
      'C: refused (gRPC: x)',
    );
    expect(toTeleportError(grpcError(status.NOT_FOUND, 'x'), 'C', 'refused').message).toBe('C: x');
  });
});

describe('connection details', () => {
  it('encodes the cluster name like api/utils EncodeClusterName', () => {
    expect(encodeClusterName('example.com')).toBe('6578616d706c652e636f6d.teleport.cluster.local');
  });

  it('offers h2 direct, and teleport-auth@<hex> first through the proxy', () => {
    expect(alpnProtocols('direct', 'example.com')).toEqual(['h2']);
    expect(alpnProtocols('proxy', 'example.com')).toEqual([
      'teleport-auth@6578616d706c652e636f6d.teleport.cluster.local',
      'h2',
    ]);
  });

  it('builds TLS options with SNI teleport.cluster.local and the identity CAs', () => {
    const ca = TestCA.create('example.com');
    const id = parseIdentity(identityFileText({ ca }), 'f');
    const o = tlsOptions(id, 'proxy', 'tenant.teleport.sh:443');
    expect(o).toMatchObject({ host: 'tenant.teleport.sh', port: 443, servername: 'teleport.cluster.local' });
    expect(o.ca).toEqual(id.tlsCaPems);
    expect(o.ALPNProtocols).toHaveLength(2);
  });

  it('splits host:port, including IPv6, and explains bad addresses', () => {
    expect(splitHostPort('[::1]:3025')).toEqual({ host: '::1', port: 3025 });
    expect(splitHostPort('auth:3025')).toEqual({ host: 'auth', port: 3025 });
    expect(() => splitHostPort('teleport.example.com')).toThrow(/must be host:port/);
  });
});

describe('DecorrelatedBackoff', () => {
  it('stays between the bounds and grows towards the cap', () => {
    const b = new DecorrelatedBackoff(20, 5000, () => 1);
    const seq = Array.from({ length: 8 }, () => b.next());
    expect(seq).toEqual([60, 180, 540, 1620, 4860, 5000, 5000, 5000]);
    b.reset();
    expect(b.next()).toBe(60);
    const r = new DecorrelatedBackoff(20, 5000);
    for (let i = 0; i < 200; i++) {
      const v = r.next();
      expect(v).toBeGreaterThanOrEqual(20);
      expect(v).toBeLessThanOrEqual(5000);
    }
  });
});
