// Typed gRPC calls for protobuf-es descriptors over our own HTTP/2 client (call.ts, channel.ts), the gRPC
// status codes, and the gRPC status → TeleportError mapping.
import { create, fromBinary, toBinary } from '@bufbuild/protobuf';
import type { DescMessage, DescMethod, MessageInitShape, MessageShape } from '@bufbuild/protobuf';
import { EventEmitter } from 'node:events';
import { TeleportError } from './api.js';
import type { TeleportErrorKind } from './api.js';
import { GrpcCall } from './call.js';
import type { CallOptions, CallStatus, GrpcChannel } from './channel.js';
import { Status } from './status.js';

export { Status } from './status.js';
export type { CallOptions } from './channel.js';

export function methodPath(method: DescMethod): string {
  return `/${method.parent.typeName}/${method.name}`;
}

/** The error of a failed call: gRPC's code and message, shaped like grpc-js's ServiceError. */
export class ServiceError extends Error {
  constructor(
    readonly code: Status,
    readonly details: string,
  ) {
    super(`${code} ${Status[code] ?? 'UNKNOWN'}: ${details}`);
    this.name = 'ServiceError';
  }
}

const errorOf = (s: CallStatus): ServiceError => new ServiceError(s.code, s.details);

function startCall<I extends DescMessage>(
  channel: GrpcChannel,
  method: DescMethod & { input: I },
  request: MessageInitShape<I>,
  opts: CallOptions,
): GrpcCall {
  const body = toBinary(method.input, create(method.input, request));
  return new GrpcCall(channel, methodPath(method), body, opts);
}

/** One unary call; a failure is rejected as a ServiceError (map it with toTeleportError). */
export function unaryCall<I extends DescMessage, O extends DescMessage>(
  channel: GrpcChannel,
  method: DescMethod & { input: I; output: O },
  request: MessageInitShape<I>,
  opts: CallOptions = {},
): Promise<MessageShape<O>> {
  return new Promise((resolve, reject) => {
    const call = startCall(channel, method, request, opts);
    const messages: Buffer[] = [];
    call.on('message', (m: Buffer) => {
      messages.push(m);
      if (messages.length > 1) call.abort(Status.UNIMPLEMENTED, 'unary call got more than one response');
    });
    call.on('status', (s: CallStatus) => {
      if (s.code !== Status.OK) return reject(errorOf(s));
      // Cardinality violations are UNIMPLEMENTED (gRPC statuscodes.md).
      if (messages.length !== 1)
        return reject(new ServiceError(Status.UNIMPLEMENTED, 'unary call got no response'));
      try {
        resolve(fromBinary(method.output, messages[0]!));
      } catch (err) {
        reject(new ServiceError(Status.INTERNAL, `cannot parse the response: ${(err as Error).message}`));
      }
    });
  });
}

/**
 * A server stream: 'data' per message, then 'end' (status OK) or 'error' (a ServiceError). After cancel()
 * nothing more is emitted: the caller who cancelled already knows.
 */
export class ServerStream<T> extends EventEmitter {
  private cancelled = false;
  constructor(
    private readonly call: GrpcCall,
    decode: (bytes: Buffer) => T,
  ) {
    super();
    call.on('message', (m: Buffer) => {
      if (this.cancelled) return;
      let item: T;
      try {
        item = decode(m);
      } catch (err) {
        call.abort(Status.INTERNAL, `cannot parse a stream message: ${(err as Error).message}`);
        return;
      }
      this.emit('data', item);
    });
    call.on('status', (s: CallStatus) => {
      if (this.cancelled) return;
      if (s.code === Status.OK) this.emit('end');
      else this.emit('error', errorOf(s));
    });
  }

  cancel(): void {
    this.cancelled = true;
    this.call.abort(Status.CANCELLED, 'cancelled by the client');
  }
}

export function serverStreamCall<I extends DescMessage, O extends DescMessage>(
  channel: GrpcChannel,
  method: DescMethod & { input: I; output: O },
  request: MessageInitShape<I>,
  opts: CallOptions = {},
): ServerStream<MessageShape<O>> {
  const call = startCall(channel, method, request, opts);
  return new ServerStream(call, (bytes) => fromBinary(method.output, bytes));
}

/** Collects a whole server stream: ours, or grpc-js's in the tests of the fake server (same events). */
export function collectStream<T>(stream: ServerStream<T> | NodeJS.EventEmitter): Promise<T[]> {
  return new Promise((resolve, reject) => {
    const items: T[] = [];
    stream.on('data', (item: T) => items.push(item));
    stream.on('error', reject);
    stream.on('end', () => resolve(items));
  });
}

/** gravitational/trace trail.go mapping, inverted. */
const KIND_BY_CODE: Partial<Record<number, TeleportErrorKind>> = {
  [Status.NOT_FOUND]: 'NotFound',
  [Status.ALREADY_EXISTS]: 'AlreadyExists',
  [Status.PERMISSION_DENIED]: 'AccessDenied',
  [Status.UNAUTHENTICATED]: 'AccessDenied',
  [Status.FAILED_PRECONDITION]: 'CompareFailed',
  [Status.INVALID_ARGUMENT]: 'BadParameter',
  [Status.OUT_OF_RANGE]: 'BadParameter',
  [Status.RESOURCE_EXHAUSTED]: 'LimitExceeded',
  [Status.UNAVAILABLE]: 'Unavailable',
  [Status.DEADLINE_EXCEEDED]: 'Unavailable',
  [Status.CANCELLED]: 'Unavailable',
  [Status.UNIMPLEMENTED]: 'NotImplemented',
};

/** Anything with a numeric gRPC `code` (ours, or grpc-js's in tests). */
export function isServiceError(err: unknown): err is Error & { code: number; details?: string } {
  return err instanceof Error && typeof (err as { code?: unknown }).code === 'number';
}

/**
 * Maps a gRPC error to a TeleportError. `context` says what was being done (e.g. "UpdatePluginData for
 * request X"); `connectionHint` is appended to Unavailable errors (e.g. the dialer's last TLS failure).
 */
export function toTeleportError(err: unknown, context: string, connectionHint?: string): TeleportError {
  if (err instanceof TeleportError) return err;
  if (!isServiceError(err))
    return new TeleportError('Unknown', `${context}: ${(err as Error)?.message ?? String(err)}`);
  const kind = KIND_BY_CODE[err.code] ?? 'Unknown';
  const details = err.details || err.message;
  if (kind === 'Unavailable' && connectionHint) {
    return new TeleportError(kind, `${context}: ${connectionHint} (gRPC: ${details})`, err.code);
  }
  return new TeleportError(kind, `${context}: ${details}`, err.code);
}
