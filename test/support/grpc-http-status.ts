// What a gRPC client makes of an HTTP status that comes without grpc-status (gRPC's http-grpc-status-mapping.md):
// the unit tests check the mapping itself, the wire tests the client's answer to a real HTTP/2 response.
import { Status } from '../../operator/teleport/status.js';

export const HTTP_WITHOUT_GRPC_STATUS: ReadonlyArray<[number, Status]> = [
  [400, Status.INTERNAL],
  [401, Status.UNAUTHENTICATED],
  [403, Status.PERMISSION_DENIED],
  [404, Status.UNIMPLEMENTED],
  [429, Status.UNAVAILABLE],
  [502, Status.UNAVAILABLE],
  [503, Status.UNAVAILABLE],
  [504, Status.UNAVAILABLE],
  [500, Status.UNKNOWN],
  [302, Status.UNKNOWN],
];
