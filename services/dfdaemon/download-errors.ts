/**
 * Why a download failed, as types, and the ONE place that maps them for the front ends:
 * `downloadError` gives the typed error whose kind the common table turns into a gRPC code
 * (toGrpcError) for dfget and seed triggers, and `proxyStatusOf` the HTTP status the
 * registry-mirror proxy answers with (it is a gateway: failures of what lies behind it are
 * 502/503, not 500).
 */
import {
  DragonflyError,
  FailedPreconditionError,
  NotFoundError,
  PermissionDeniedError,
  ResourceExhaustedError,
  UnauthenticatedError,
  UnavailableError,
} from '../common';
import { OriginResponseError } from './task-api';

/** The assembled content does not match its sha256: its bytes cannot be trusted, so the partial task is dropped. */
export class ContentDigestMismatchError extends FailedPreconditionError {}

/** The scheduler's answer cannot describe a task (hostile or broken scheduler): refused, the origin is used instead. */
export class SchedulerAnswerError extends UnavailableError {}

/** The scheduler did not answer within scheduler.scheduleTimeout. */
export class SchedulerTimeoutError extends UnavailableError {}

/** The scheduler stream closed (scheduler restarted or gone) and back-to-source is not allowed. */
export class SchedulerLostError extends UnavailableError {}

/** No parent could provide the missing pieces and back-to-source is not allowed. */
export class NoParentsError extends FailedPreconditionError {}

/** The engine stopped (daemon shutting down or task deleted): partial pieces stay for resumption. */
export class DownloadAbortedError extends UnavailableError {}

/** Engine errors as typed errors: origin refusals keep their meaning (401 stays Unauthenticated, ...). */
export function downloadError(err: unknown): unknown {
  if (err instanceof OriginResponseError) {
    const kinds: Record<number, new (m: string) => DragonflyError> = { 401: UnauthenticatedError, 403: PermissionDeniedError, 404: NotFoundError, 429: ResourceExhaustedError };
    const Kind = kinds[err.status] ?? UnavailableError;
    return new Kind(err.message);
  }
  return err;
}

/** The proxy's answer to a failed P2P download (an origin refusal is replayed as is, before this). */
export function proxyStatusOf(err: unknown): { status: number; kind: string } {
  const kind = err instanceof DragonflyError ? err.kind : 'Internal';
  // LocalStorage: this host's disk cannot hold the content (checked before any byte is sent).
  if (kind === 'LocalStorage') return { status: 507, kind };
  if (kind === 'Unavailable' || kind === 'ResourceExhausted' || kind === 'DeadlineExceeded') return { status: 503, kind };
  return { status: 502, kind };
}
