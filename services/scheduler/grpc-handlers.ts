/**
 * gRPC transport for scheduler.v2.Scheduler: decode, call the service with the caller's
 * address, map errors once. Every refusal is logged once with the caller's address; a
 * refused stream or call never affects anyone else's.
 */
import type * as grpc from '@grpc/grpc-js';
import { DragonflyError, InternalError, toGrpcError } from '../common/errors';
import type { Logger } from '../common/logger';
import type { AnnouncePeerRequest__Output, AnnouncePeerResponse, SchedulerHandlers } from '../proto';
import type { PeerStream, SchedulerService } from './service';
import { callerIpOf, normalizeIp } from './validation';
import { contextOfMetadata } from '../common/telemetry';

type Callback<T> = (err: Partial<grpc.ServiceError> | null, value?: T) => void;

export interface SchedulerHandlerOptions {
  /**
   * Asks the manager for its seed peers again (coalesced and rate-limited by the caller):
   * a seed peer may announce before this scheduler's last refresh saw it registered.
   */
  readonly refreshSeeds?: () => Promise<void>;
  /** Each answered call's outcome, for Dragonfly's published call counters (issue 18). */
  readonly onCall?: (method: string, ok: boolean) => void;
}

function typed(err: unknown): DragonflyError {
  return err instanceof DragonflyError ? err : new InternalError(err instanceof Error ? err.message : String(err));
}

export function schedulerHandlers(service: SchedulerService, logger: Logger, options: SchedulerHandlerOptions = {}): SchedulerHandlers {
  /** One line per refusal; internal errors are the scheduler's fault and logged as such. */
  const refused = (method: string, caller: string, err: DragonflyError, fields: Record<string, unknown> = {}): void => {
    if (err.kind === 'Internal') logger.error({ method, caller, ...fields, err: err.message }, 'scheduler request failed');
    else if (err.kind === 'NotFound') logger.info({ method, caller, ...fields, kind: err.kind, err: err.message }, 'scheduler request refused');
    else logger.warn({ method, caller, ...fields, kind: err.kind, err: err.message }, 'scheduler request refused');
  };
  const answer = <T>(method: string, call: grpc.ServerUnaryCall<unknown, unknown>, callback: Callback<T>, fn: (caller: string) => T): void => {
    const caller = callerIpOf(call.getPeer());
    try {
      callback(null, fn(caller));
      options.onCall?.(method, true);
    } catch (err) {
      const e = typed(err);
      options.onCall?.(method, false);
      refused(method, caller, e);
      callback(toGrpcError(e));
    }
  };

  return {
    AnnouncePeer(call: grpc.ServerDuplexStream<AnnouncePeerRequest__Output, AnnouncePeerResponse>) {
      const caller = callerIpOf(call.getPeer());
      try {
        service.openStream(caller);
        options.onCall?.('AnnouncePeer', true);
      } catch (err) {
        const e = typed(err);
        options.onCall?.('AnnouncePeer', false);
        refused('AnnouncePeer', caller, e);
        call.on('error', () => undefined);
        call.emit('error', toGrpcError(e));
        return;
      }
      let closed = false;
      let released = false;
      const stream: PeerStream = {
        caller,
        traceContext: contextOfMetadata(call.metadata), // telemetry
        session: {
          send: (response) => {
            if (!closed) call.write(response);
          },
          fail: (err: DragonflyError) => {
            if (closed) return;
            closed = true;
            call.emit('error', toGrpcError(err));
          },
        },
      };
      const finish = (): void => {
        if (!released) {
          released = true;
          service.releaseStream(caller);
        }
        service.streamClosed(stream);
      };
      call.on('data', (req: AnnouncePeerRequest__Output) => {
        if (closed) return;
        try {
          service.handle(stream, req);
        } catch (err) {
          const e = typed(err);
          refused('AnnouncePeer', caller, e, { request: req.request, peer: (stream.peer?.id ?? req.peerId)?.slice(0, 200) });
          stream.session.fail(e);
          finish();
        }
      });
      call.on('end', () => {
        finish();
        if (!closed) {
          closed = true;
          call.end();
        }
      });
      call.on('cancelled', () => {
        closed = true;
        finish();
      });
      call.on('error', () => {
        closed = true;
        finish();
      });
    },
    StatPeer(call, callback) {
      answer('StatPeer', call, callback, () => service.statPeer(call.request.peerId));
    },
    DeletePeer(call, callback) {
      answer('DeletePeer', call, callback, (caller) => {
        service.deletePeer(call.request.peerId, caller);
        return {};
      });
    },
    StatTask(call, callback) {
      answer('StatTask', call, callback, () => service.statTask(call.request.taskId));
    },
    DeleteTask(call, callback) {
      answer('DeleteTask', call, callback, (caller) => {
        service.deleteTask(call.request.taskId, call.request.hostId, caller);
        return {};
      });
    },
    AnnounceHost(call, callback) {
      const caller = callerIpOf(call.getPeer());
      const h = call.request.host;
      const run = (): void =>
        answer('AnnounceHost', call, callback, () => {
          service.announceHost(call.request, caller);
          return {};
        });
      // A seed peer the last manager answer did not list yet: ask the manager once more first.
      if (h?.type === 'SUPER_HOST' && options.refreshSeeds && typeof h.ip === 'string' && !service.isTrustedSeed(normalizeIp(h.ip), h.port, caller)) {
        options.refreshSeeds().then(run, run);
        return;
      }
      run();
    },
    ListHosts(call, callback) {
      answer('ListHosts', call, callback, () => ({ hosts: service.listHosts() }));
    },
    DeleteHost(call, callback) {
      answer('DeleteHost', call, callback, (caller) => {
        service.deleteHost(call.request.hostId, caller);
        return {};
      });
    },
  };
}
