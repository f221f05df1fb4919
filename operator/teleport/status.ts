// gRPC status codes (grpc/grpc doc/statuscodes.md), and the codes the HTTP/2 layer implies when a response
// carries no grpc-status (doc/http-grpc-status-mapping.md, PROTOCOL-HTTP2.md "Errors").

export enum Status {
  OK = 0,
  CANCELLED = 1,
  UNKNOWN = 2,
  INVALID_ARGUMENT = 3,
  DEADLINE_EXCEEDED = 4,
  NOT_FOUND = 5,
  ALREADY_EXISTS = 6,
  PERMISSION_DENIED = 7,
  RESOURCE_EXHAUSTED = 8,
  FAILED_PRECONDITION = 9,
  ABORTED = 10,
  OUT_OF_RANGE = 11,
  UNIMPLEMENTED = 12,
  INTERNAL = 13,
  UNAVAILABLE = 14,
  DATA_LOSS = 15,
  UNAUTHENTICATED = 16,
}

/** A non-200 HTTP status of a response without grpc-status (e.g. from a proxy in between). */
export function statusFromHttp(httpStatus: number): Status {
  switch (httpStatus) {
    case 400:
      return Status.INTERNAL;
    case 401:
      return Status.UNAUTHENTICATED;
    case 403:
      return Status.PERMISSION_DENIED;
    case 404:
      return Status.UNIMPLEMENTED;
    case 429:
    case 502:
    case 503:
    case 504:
      return Status.UNAVAILABLE;
    default:
      return Status.UNKNOWN;
  }
}

/** RST_STREAM error codes (RFC 9113 §7) → gRPC status, for a stream reset before it had a status. */
export function statusFromRstCode(rstCode: number): Status {
  switch (rstCode) {
    case 0x7: // REFUSED_STREAM: the server did not process it, safe to retry
      return Status.UNAVAILABLE;
    case 0x8: // CANCEL
      return Status.CANCELLED;
    case 0xb: // ENHANCE_YOUR_CALM
      return Status.RESOURCE_EXHAUSTED;
    case 0xc: // INADEQUATE_SECURITY
      return Status.PERMISSION_DENIED;
    default: // NO_ERROR without a status, PROTOCOL_ERROR, INTERNAL_ERROR, FLOW_CONTROL_ERROR, …
      return Status.INTERNAL;
  }
}

/** grpc-message is percent-encoded (PROTOCOL-HTTP2.md); a malformed one is shown as sent. */
export function decodeGrpcMessage(raw: string | string[] | undefined): string {
  const value = Array.isArray(raw) ? raw.join(',') : (raw ?? '');
  try {
    return decodeURIComponent(value);
  } catch {
    return value;
  }
}

/** grpc-timeout: at most 8 digits and a unit (PROTOCOL-HTTP2.md "Timeout"). */
export function grpcTimeout(ms: number): string {
  const whole = Math.max(1, Math.ceil(ms));
  if (whole < 100_000_000) return `${whole}m`;
  const seconds = Math.ceil(whole / 1000);
  return seconds < 100_000_000 ? `${seconds}S` : `${Math.min(99_999_999, Math.ceil(seconds / 3600))}H`;
}
