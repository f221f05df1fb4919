// grpc-js glue for the test side: service definitions for the fake Auth server, and grpc-js client calls
// for tests that exercise the fake server independently of our own client (operator/teleport/grpc.ts).
import { create, fromBinary, toBinary } from '@bufbuild/protobuf';
import type {
  DescMessage,
  DescMethod,
  DescService,
  MessageInitShape,
  MessageShape,
} from '@bufbuild/protobuf';
import { Metadata } from '@grpc/grpc-js';
import type { Client, ClientReadableStream, MethodDefinition, ServiceDefinition } from '@grpc/grpc-js';
import { methodPath } from '../../operator/teleport/grpc.js';

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

/** One unary call with a grpc-js Client; rejects with grpc-js's ServiceError. */
export function grpcJsUnary<I extends DescMessage, O extends DescMessage>(
  client: Client,
  method: DescMethod & { input: I; output: O },
  request: MessageInitShape<I>,
): Promise<MessageShape<O>> {
  return new Promise((resolve, reject) => {
    client.makeUnaryRequest(
      methodPath(method),
      serializer(method.input),
      deserializer(method.output),
      create(method.input, request),
      new Metadata(),
      {},
      (err, response) => (err ? reject(err) : resolve(response as MessageShape<O>)),
    );
  });
}

export function grpcJsServerStream<I extends DescMessage, O extends DescMessage>(
  client: Client,
  method: DescMethod & { input: I; output: O },
  request: MessageInitShape<I>,
): ClientReadableStream<MessageShape<O>> {
  return client.makeServerStreamRequest(
    methodPath(method),
    serializer(method.input),
    deserializer(method.output),
    create(method.input, request),
    new Metadata(),
    {},
  );
}
