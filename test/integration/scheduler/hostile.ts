/**
 * Helpers for attacking a real scheduler over real sockets: the scheduler listens on "::"
 * so that two distinct caller addresses exist on one machine — the honest neighbour calls
 * from 127.0.0.1, the attacker from ::1 — and every call is a raw gRPC client call.
 */
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { protoPath as healthProtoPath } from 'grpc-health-check';
import { parseConfig, type SchedulerConfigInput } from '../../../services/common/config';
import { GRPC_OPTIONS } from '../../../services/common/grpc';
import { taskIdOf } from '../../../services/common/ids';
import { silentLogger } from '../../../services/common/logger';
import { protos, type AnnouncePeerRequest, type AnnouncePeerResponse__Output, type SchedulerClient } from '../../../services/proto';
import type { AnnounceHostRequest } from '../../../services/proto/gen/scheduler/v2/AnnounceHostRequest';
import { startScheduler, type SchedulerHandle, type StartSchedulerOptions } from '../../../services/scheduler/server';

export const HONEST_IP = '127.0.0.1';
export const ATTACKER_IP = '::1';
export const MiB = 1024 * 1024;

export interface Target {
  readonly scheduler: SchedulerHandle;
  /** Calls from 127.0.0.1. */
  readonly honest: SchedulerClient;
  /** Calls from ::1. */
  readonly attacker: SchedulerClient;
  close(): Promise<void>;
}

export function schedulerClient(address: string, credentials = grpc.credentials.createInsecure()): SchedulerClient {
  return new (protos().scheduler.scheduler.v2.Scheduler)(address, credentials, GRPC_OPTIONS);
}

export async function startTarget(overrides: SchedulerConfigInput = {}, options: StartSchedulerOptions = {}): Promise<Target> {
  const config = parseConfig('scheduler', { security: { insecure: true }, ...overrides, server: { port: 0, listenIP: '::', advertiseIP: HONEST_IP, ...overrides.server }, metrics: { enable: false } });
  const scheduler = await startScheduler(config, { logger: silentLogger(), ...options });
  const honest = schedulerClient(`${HONEST_IP}:${scheduler.port}`);
  const attacker = schedulerClient(`[${ATTACKER_IP}]:${scheduler.port}`);
  return {
    scheduler,
    honest,
    attacker,
    close: async () => {
      honest.close();
      attacker.close();
      await scheduler.stop();
    },
  };
}

/** A unary call; resolves to the answer or to the gRPC error (never rejects). */
export function call<Req, Res>(
  method: (req: Req, metadata: grpc.Metadata, options: grpc.CallOptions, cb: (err: grpc.ServiceError | null, res?: Res) => void) => grpc.ClientUnaryCall,
  req: Req,
  timeoutMs = 5000,
): Promise<{ res?: Res; err?: grpc.ServiceError }> {
  return new Promise((resolve) => {
    method(req, new grpc.Metadata(), { deadline: Date.now() + timeoutMs }, (err, res) => resolve(err ? { err } : { res }));
  });
}

export function announce(client: SchedulerClient, host: AnnounceHostRequest['host'], intervalMs = 60_000): Promise<{ err?: grpc.ServiceError }> {
  return call(client.AnnounceHost.bind(client), { host, intervalMs });
}

/** A normal host as dfdaemon announces it. */
export function hostOf(id: string, ip: string, port = 65000): NonNullable<AnnounceHostRequest['host']> {
  return { id, type: 'NORMAL_HOST', hostname: id, ip, port, downloadPort: port + 2, concurrentUploadLimit: 10, network: { idc: '', location: '' } };
}

/** One AnnouncePeer stream: what it answered and how it ended. */
export class PeerStream {
  readonly stream: grpc.ClientDuplexStream<AnnouncePeerRequest, AnnouncePeerResponse__Output>;
  readonly answers: AnnouncePeerResponse__Output[] = [];
  error: grpc.ServiceError | undefined;
  ended = false;
  private waiters: (() => void)[] = [];

  constructor(client: SchedulerClient) {
    this.stream = client.AnnouncePeer();
    this.stream.on('data', (r: AnnouncePeerResponse__Output) => {
      this.answers.push(r);
      this.wake();
    });
    this.stream.on('error', (err: grpc.ServiceError) => {
      this.error = err;
      this.wake();
    });
    this.stream.on('end', () => {
      this.ended = true;
      this.wake();
    });
  }

  private wake(): void {
    for (const w of this.waiters.splice(0)) w();
  }

  write(req: AnnouncePeerRequest): void {
    if (!this.error && !this.ended) this.stream.write(req);
  }

  /** Waits until `check` holds (or throws after timeoutMs). */
  async until(check: () => boolean, timeoutMs = 5000): Promise<void> {
    const end = Date.now() + timeoutMs;
    while (!check()) {
      const left = end - Date.now();
      if (left <= 0) throw new Error(`stream condition not met in ${timeoutMs} ms (answers: ${this.answers.map((a) => a.response).join(',')}, error: ${this.error?.details})`);
      await new Promise<void>((resolve) => {
        this.waiters.push(resolve);
        setTimeout(resolve, Math.min(left, 50)).unref();
      });
    }
  }

  /** The status the stream was closed with. */
  async refusal(timeoutMs = 5000): Promise<grpc.ServiceError> {
    await this.until(() => this.error !== undefined, timeoutMs);
    return this.error as grpc.ServiceError;
  }

  close(): void {
    if (!this.error && !this.ended) this.stream.end();
  }
}

export function register(stream: PeerStream, ids: { hostId: string; peerId: string }, url: string, extra: Partial<NonNullable<NonNullable<AnnouncePeerRequest['registerPeerRequest']>['download']>> = {}): string {
  const taskId = taskIdOf({ url });
  stream.write({ ...ids, taskId, registerPeerRequest: { download: { url, ...extra } } });
  return taskId;
}

/** grpc.health.v1 Check on the scheduler's port: "SERVING" when healthy. */
export async function healthStatus(port: number): Promise<string> {
  const pkg = grpc.loadPackageDefinition(protoLoader.loadSync(healthProtoPath, { enums: String, defaults: true })) as unknown as {
    grpc: { health: { v1: { Health: new (address: string, credentials: grpc.ChannelCredentials) => grpc.Client & { Check: grpc.requestCallback<unknown> & ((...args: unknown[]) => void) } } } };
  };
  const client = new pkg.grpc.health.v1.Health(`${HONEST_IP}:${port}`, grpc.credentials.createInsecure());
  try {
    return await new Promise<string>((resolve, reject) => {
      client.Check({ service: 'scheduler.v2.Scheduler' }, { deadline: Date.now() + 3000 }, (err: grpc.ServiceError | null, res?: { status: string }) => (err ? reject(err) : resolve(String(res?.status))));
    });
  } finally {
    client.close();
  }
}

let legitSeq = 0;

/**
 * The proof that the scheduler still serves everyone else: an honest host (announced now,
 * or the given one) registers a peer for a new task and gets a scheduling answer.
 */
export async function honestPeerIsScheduled(target: Target, hostId?: string): Promise<string | undefined> {
  legitSeq++;
  const id = hostId ?? `${HONEST_IP}-honest-${legitSeq}`;
  if (!hostId) {
    const { err } = await announce(target.honest, hostOf(id, HONEST_IP, 40000 + legitSeq));
    if (err) throw new Error(`honest AnnounceHost refused: ${err.details}`);
  }
  const s = new PeerStream(target.honest);
  try {
    register(s, { hostId: id, peerId: `${id}-peer-${legitSeq}` }, `http://origin.test/honest-${legitSeq}-${Date.now()}.bin`);
    await s.until(() => s.answers.length > 0 || s.error !== undefined);
    if (s.error) throw new Error(`honest peer refused: ${s.error.code} ${s.error.details}`);
    return s.answers[0].response;
  } finally {
    s.close();
  }
}
