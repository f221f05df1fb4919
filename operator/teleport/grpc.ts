// Glue between protobuf-es descriptors and @grpc/grpc-js: service definitions (for the test server) and
// typed unary / server-streaming calls (for the client), plus the gRPC status → TeleportError mapping.
import { create, fromBinary, toBinary } from '@bufbuild/protobuf';
import type {
  DescMessage,
  DescMethod,
  DescService,
  MessageInitShape,
  MessageShape,
} from '@bufbuild/protobuf';
import { Metadata, status } from '@grpc/grpc-js';
import type {
  Client,
  ClientReadableStream,
  MethodDefinition,
  ServiceDefinition,
  ServiceError,
} from '@grpc/grpc-js';
import { TeleportError } from './api.js';
import type { TeleportErrorKind } from './api.js';

export function methodPath(method: DescMethod): string {
  return `/${method.parent.typeName}/${method.name}`;
}

const serializer =
  <D extends DescMessage>(schema: D) =>
  (message: MessageShape<D>): Buffer =>
    Buffer.from(toBinary(schema, message));
const deserializer =
  <D extends DescMessage>(schema: D) =>
  (bytes: Buffer): MessageShape<D> =>
    fromBinary(schema, bytes);

/** A grpc-js ServiceDefinition for a protobuf-es service descriptor (keys are the methods' localName). */
export function grpcServiceDefinition(service: DescService): ServiceDefinition {
  const def: Record<string, MethodDefinition<unknown, unknown>> = {};
  for (const method of service.methods) {
    def[method.localName] = {
      path: methodPath(method),
      originalName: method.name,
      requestStream: method.methodKind === 'client_streaming' || method.methodKind === 'bidi_streaming',
      responseStream: method.methodKind === 'server_streaming' || method.methodKind === 'bidi_streaming',
      requestSerialize: serializer(method.input) as (m: unknown) => Buffer,
      requestDeserialize: deserializer(method.input),
      responseSerialize: serializer(method.output) as (m: unknown) => Buffer,
      responseDeserialize: deserializer(method.output),
    };
  }
  return def as ServiceDefinition;
}

export interface CallOptions {
  deadlineMs?: number;
  signal?: AbortSignal;
}

/** One unary call; errors are rejected as raw grpc-js ServiceErrors (map them with toTeleportError). */
export function unaryCall<I extends DescMessage, O extends DescMessage>(
  client: Client,
  method: DescMethod & { input: I; output: O },
  request: MessageInitShape<I>,
  opts: CallOptions = {},
): Promise<MessageShape<O>> {
  return new Promise((resolve, reject) => {
    const call = client.makeUnaryRequest(
      methodPath(method),
      serializer(method.input),
      deserializer(method.output),
      create(method.input, request),
      new Metadata(),
      opts.deadlineMs ? { deadline: Date.now() + opts.deadlineMs } : {},
      (err, response) => {
        opts.signal?.removeEventListener('abort', onAbort);
        if (err) reject(err);
        else resolve(response as MessageShape<O>);
      },
    );
    const onAbort = (): void => call.cancel();
    opts.signal?.addEventListener('abort', onAbort, { once: true });
  });
}

export function serverStreamCall<I extends DescMessage, O extends DescMessage>(
  client: Client,
  method: DescMethod & { input: I; output: O },
  request: MessageInitShape<I>,
  opts: CallOptions = {},
): ClientReadableStream<MessageShape<O>> {
  return client.makeServerStreamRequest(
    methodPath(method),
    serializer(method.input),
    deserializer(method.output),
    create(method.input, request),
    new Metadata(),
    opts.deadlineMs ? { deadline: Date.now() + opts.deadlineMs } : {},
  );
}

/** Collects a whole server stream. */
export function collectStream<T>(stream: ClientReadableStream<T>): Promise<T[]> {
  return new Promise((resolve, reject) => {
    const items: T[] = [];
    stream.on('data', (item: T) => items.push(item));
    stream.on('error', reject);
    stream.on('end', () => resolve(items));
  });
}

/** gravitational/trace trail.go mapping, inverted. */
const KIND_BY_CODE: Partial<Record<number, TeleportErrorKind>> = {
  [status.NOT_FOUND]: 'NotFound',
  [status.ALREADY_EXISTS]: 'AlreadyExists',
  [status.PERMISSION_DENIED]: 'AccessDenied',
  [status.UNAUTHENTICATED]: 'AccessDenied',
  [status.FAILED_PRECONDITION]: 'CompareFailed',
  [status.INVALID_ARGUMENT]: 'BadParameter',
  [status.OUT_OF_RANGE]: 'BadParameter',
  [status.RESOURCE_EXHAUSTED]: 'LimitExceeded',
  [status.UNAVAILABLE]: 'Unavailable',
  [status.DEADLINE_EXCEEDED]: 'Unavailable',
  [status.CANCELLED]: 'Unavailable',
  [status.UNIMPLEMENTED]: 'NotImplemented',
};

export function isServiceError(err: unknown): err is ServiceError {
  return err instanceof Error && typeof (err as Partial<ServiceError>).code === 'number';
}

/**
 * Maps a grpc-js error to a TeleportError. `context` says what was being done (e.g. "UpdatePluginData for
 * request X"); `connectionHint` is appended to Unavailable errors (e.g. the bridge's last TLS failure).
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
