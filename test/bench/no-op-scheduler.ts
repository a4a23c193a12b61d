/**
 * The stream no-op: a bare grpc-js server with the scheduler's AnnouncePeer definition (same
 * codec, same server options) that answers each message with `answerTo(message)` (nothing when
 * it returns undefined) and does nothing else. A workload against it costs what the transport
 * costs: the ceiling for the scheduler, the floor for a path the scheduler coordinates.
 */
import * as grpc from '@grpc/grpc-js';
import { GRPC_OPTIONS } from '../../services/common/grpc';
import type { AnnouncePeerRequest__Output, AnnouncePeerResponse } from '../../services/proto';

export async function startNoOpScheduler(
  answerTo: (req: AnnouncePeerRequest__Output) => AnnouncePeerResponse | undefined,
  credentials: grpc.ServerCredentials,
): Promise<{ server: grpc.Server; port: number }> {
  // Loaded here, not at the top: the scheduler bench's main thread never needs it.
  const { SCHEDULER_GRPC_OPTIONS, schedulerDefinition } = await import('../../services/scheduler/server');
  const server = new grpc.Server({ ...GRPC_OPTIONS, ...SCHEDULER_GRPC_OPTIONS });
  server.addService(schedulerDefinition(), {
    AnnouncePeer(call: grpc.ServerDuplexStream<AnnouncePeerRequest__Output, AnnouncePeerResponse>) {
      call.on('data', (req: AnnouncePeerRequest__Output) => {
        const answer = answerTo(req);
        if (answer) call.write(answer);
      });
      call.on('end', () => call.end());
      call.on('error', () => undefined);
    },
  });
  const port = await new Promise<number>((resolve, reject) => server.bindAsync('127.0.0.1:0', credentials, (err, p) => (err ? reject(err) : resolve(p))));
  return { server, port };
}
