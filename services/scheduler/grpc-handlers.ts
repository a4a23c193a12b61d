/** gRPC transport for scheduler.v2.Scheduler: decode, call the service, map errors once. */
import type * as grpc from '@grpc/grpc-js';
import { DragonflyError, InternalError, toGrpcError } from '../common/errors';
import type { Logger } from '../common/logger';
import type { AnnouncePeerRequest__Output, AnnouncePeerResponse, SchedulerHandlers } from '../proto';
import type { PeerStream, SchedulerService } from './service';

type Callback<T> = (err: Partial<grpc.ServiceError> | null, value?: T) => void;

function answer<T>(callback: Callback<T>, fn: () => T): void {
  try {
    callback(null, fn());
  } catch (err) {
    callback(toGrpcError(err));
  }
}

export function schedulerHandlers(service: SchedulerService, logger: Logger): SchedulerHandlers {
  return {
    AnnouncePeer(call: grpc.ServerDuplexStream<AnnouncePeerRequest__Output, AnnouncePeerResponse>) {
      let closed = false;
      const stream: PeerStream = {
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
        service.streamClosed(stream);
      };
      call.on('data', (req: AnnouncePeerRequest__Output) => {
        if (closed) return;
        try {
          service.handle(stream, req);
        } catch (err) {
          logger.debug({ peer: req.peerId, err: (err as Error).message }, 'announce peer request rejected');
          stream.session.fail(err instanceof DragonflyError ? err : new InternalError((err as Error).message ?? String(err)));
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
      answer(callback, () => service.statPeer(call.request.peerId));
    },
    DeletePeer(call, callback) {
      answer(callback, () => {
        service.deletePeer(call.request.peerId);
        return {};
      });
    },
    StatTask(call, callback) {
      answer(callback, () => service.statTask(call.request.taskId));
    },
    DeleteTask(call, callback) {
      answer(callback, () => {
        service.deleteTask(call.request.taskId, call.request.hostId);
        return {};
      });
    },
    AnnounceHost(call, callback) {
      answer(callback, () => {
        service.announceHost(call.request);
        return {};
      });
    },
    ListHosts(_call, callback) {
      answer(callback, () => ({ hosts: service.listHosts() }));
    },
    DeleteHost(call, callback) {
      answer(callback, () => {
        service.deleteHost(call.request.hostId);
        return {};
      });
    },
  };
}
