/**
 * Typed domain errors. Services throw these; transports map them exactly once, to HTTP
 * with `httpStatusOf` / `errorBody` and to gRPC with `toGrpcError`.
 */
import { status as GrpcStatus, type ServiceError, Metadata } from '@grpc/grpc-js';

export type ErrorKind =
  | 'InvalidArgument'
  | 'Unauthenticated'
  | 'PermissionDenied'
  | 'NotFound'
  | 'Conflict'
  | 'FailedPrecondition'
  | 'LocalStorage'
  | 'ResourceExhausted'
  | 'Unavailable'
  | 'DeadlineExceeded'
  | 'Internal';

export class DragonflyError extends Error {
  constructor(
    readonly kind: ErrorKind,
    message: string,
    /** Extra machine-readable detail, e.g. the fields that failed validation. */
    readonly details?: Record<string, unknown>,
  ) {
    super(message);
    this.name = kind;
  }
}

const make = (kind: ErrorKind) =>
  class extends DragonflyError {
    constructor(message: string, details?: Record<string, unknown>) {
      super(kind, message, details);
    }
  };

export class InvalidArgumentError extends make('InvalidArgument') {}
export class UnauthenticatedError extends make('Unauthenticated') {}
export class PermissionDeniedError extends make('PermissionDenied') {}
export class NotFoundError extends make('NotFound') {}
export class ConflictError extends make('Conflict') {}
export class FailedPreconditionError extends make('FailedPrecondition') {}
/**
 * This host's own disk failed or is full (ENOSPC, EIO, ...): never a parent's or the network's
 * fault, so never retried as one; the message names the path and the free space.
 */
export class LocalStorageError extends make('LocalStorage') {}
export class ResourceExhaustedError extends make('ResourceExhausted') {}
export class UnavailableError extends make('Unavailable') {}
export class DeadlineExceededError extends make('DeadlineExceeded') {}
export class InternalError extends make('Internal') {}

const HTTP_STATUS: Record<ErrorKind, number> = {
  InvalidArgument: 400,
  Unauthenticated: 401,
  PermissionDenied: 403,
  NotFound: 404,
  Conflict: 409,
  FailedPrecondition: 422,
  LocalStorage: 507,
  ResourceExhausted: 429,
  Unavailable: 503,
  DeadlineExceeded: 504,
  Internal: 500,
};

const GRPC_STATUS: Record<ErrorKind, GrpcStatus> = {
  InvalidArgument: GrpcStatus.INVALID_ARGUMENT,
  Unauthenticated: GrpcStatus.UNAUTHENTICATED,
  PermissionDenied: GrpcStatus.PERMISSION_DENIED,
  NotFound: GrpcStatus.NOT_FOUND,
  Conflict: GrpcStatus.ALREADY_EXISTS,
  FailedPrecondition: GrpcStatus.FAILED_PRECONDITION,
  // Before ResourceExhausted: RESOURCE_EXHAUSTED from the wire maps back to ResourceExhausted.
  LocalStorage: GrpcStatus.RESOURCE_EXHAUSTED,
  ResourceExhausted: GrpcStatus.RESOURCE_EXHAUSTED,
  Unavailable: GrpcStatus.UNAVAILABLE,
  DeadlineExceeded: GrpcStatus.DEADLINE_EXCEEDED,
  Internal: GrpcStatus.INTERNAL,
};

const FROM_GRPC = new Map<number, ErrorKind>(Object.entries(GRPC_STATUS).map(([k, v]) => [v, k as ErrorKind]));

export function httpStatusOf(err: unknown): number {
  return err instanceof DragonflyError ? HTTP_STATUS[err.kind] : 500;
}

/** JSON body for an HTTP error answer: `{message, kind, ...details}`. Internal errors hide their text. */
export function errorBody(err: unknown): Record<string, unknown> {
  if (err instanceof DragonflyError) return { message: err.message, kind: err.kind, ...(err.details ?? {}) };
  return { message: 'internal error', kind: 'Internal' };
}

/** gRPC status error for a handler callback or stream.destroy(). */
export function toGrpcError(err: unknown): Partial<ServiceError> {
  if (err instanceof DragonflyError) return { code: GRPC_STATUS[err.kind], details: err.message, message: err.message, metadata: new Metadata() };
  const message = err instanceof Error ? err.message : String(err);
  return { code: GrpcStatus.INTERNAL, details: message, message, metadata: new Metadata() };
}

/** Turns a gRPC client error back into a typed error (keeps the server's message). */
export function fromGrpcError(err: unknown): DragonflyError {
  const e = err as Partial<ServiceError>;
  const kind = (e.code !== undefined && FROM_GRPC.get(e.code)) || (e.code === GrpcStatus.CANCELLED ? 'Unavailable' : 'Internal');
  return new DragonflyError(kind, e.details || e.message || String(err));
}
