/**
 * The scheduler's job consumer: it takes jobs from its cluster's BullMQ queue on the
 * manager's Redis (reached through `database.redis`, i.e. externalRedis for a remote
 * cluster) and carries them out on the hosts it knows:
 * - preheat: each target is downloaded by one seed peer (the one the consistent-hash ring
 *   gives for its task id, as for any origin trigger), every seed peer, or every peer,
 *   through DfdaemonUpload.DownloadTask without an output path (into the peer's store);
 * - get_task: StatTask on every host; lists the hosts that hold the task;
 * - delete_task: DeleteTask on every host, then drops the task from the scheduler's state;
 * - sync_peers: the hosts this scheduler knows, for the manager's inventory.
 * `JobRunner` is transport-free (tests call it directly); `SchedulerJobWorker` binds it to BullMQ.
 */
import * as grpc from '@grpc/grpc-js';
import { UnrecoverableError, Worker, type Job } from 'bullmq';
import { Redis } from 'ioredis';
import { z } from 'zod';
import { GRPC_OPTIONS } from '../common/grpc';
import { DragonflyError, fromGrpcError } from '../common/errors';
import {
  bullConnectionOf,
  bullPrefixOf,
  jobCancelKey,
  jobQueueName,
  MAX_RESULT_PEERS,
  PREHEAT_SCOPES,
  type JobPeer,
  type PreheatTarget,
  type QueuedJobPayload,
  type RedisSettings,
} from '../common/job-queue';
import type { Logger } from '../common/logger';
import { protos, type DfdaemonUploadClient, type Download } from '../proto';
import type { Task__Output } from '../proto/gen/common/v2/Task';
import type { Host } from './resource/model';
import { ConsistentHashRing, type SeedHost, type SeedTrigger } from './seed-peers';
import type { SchedulerService } from './service';

/** Per-call deadline of StatTask / DeleteTask on a peer. */
const PEER_CALL_TIMEOUT_MS = 10_000;
const MAX_ERRORS_IN_REASON = 5;

const targetSchema = z.strictObject({
  url: z.url({ protocol: /^https?$/ }).max(4096),
  digest: z.string().regex(/^sha256:[a-f0-9]{64}$/).optional(),
  taskId: z.string().regex(/^[a-f0-9]{64}$/),
  tag: z.string().max(1024),
  application: z.string().max(1024),
  filteredQueryParams: z.array(z.string().max(256)).max(256),
  headers: z.record(z.string().max(256), z.string().max(8192)),
});
const payloadSchema = z.discriminatedUnion('type', [
  z.strictObject({ jobId: z.number().int().positive(), type: z.literal('preheat'), deadlineAt: z.number(), scope: z.enum(PREHEAT_SCOPES), targets: z.array(targetSchema).min(1).max(1000) }),
  z.strictObject({ jobId: z.number().int().positive(), type: z.enum(['get_task', 'delete_task']), deadlineAt: z.number(), taskId: z.string().regex(/^[a-f0-9]{64}$/) }),
  z.strictObject({ jobId: z.number().int().positive(), type: z.literal('sync_peers'), deadlineAt: z.number() }),
]);

/** What a job touches on a peer; the real one is gRPC, tests may replace it. */
export interface PeerTaskClient {
  stat(peer: SeedHost, taskId: string): Promise<Task__Output>;
  delete(peer: SeedHost, taskId: string): Promise<void>;
  close(): void;
}

export class GrpcPeerTaskClient implements PeerTaskClient {
  private readonly clients = new Map<string, DfdaemonUploadClient>();

  /** `credentials`: mTLS accepting peer and seed-peer certificates (common/tls.ts). */
  constructor(private readonly credentials: grpc.ChannelCredentials = grpc.credentials.createInsecure()) {}

  private client(peer: SeedHost): DfdaemonUploadClient {
    let c = this.clients.get(peer.key);
    if (!c) {
      const Ctor = protos().dfdaemon.dfdaemon.v2.DfdaemonUpload;
      c = new Ctor(`${peer.ip.includes(':') ? `[${peer.ip}]` : peer.ip}:${peer.port}`, this.credentials, GRPC_OPTIONS);
      this.clients.set(peer.key, c);
    }
    return c;
  }

  stat(peer: SeedHost, taskId: string): Promise<Task__Output> {
    return new Promise((resolve, reject) => {
      this.client(peer).StatTask({ taskId }, { deadline: Date.now() + PEER_CALL_TIMEOUT_MS }, (err, task) => (err || !task ? reject(fromGrpcError(err)) : resolve(task)));
    });
  }

  delete(peer: SeedHost, taskId: string): Promise<void> {
    return new Promise((resolve, reject) => {
      this.client(peer).DeleteTask({ taskId }, { deadline: Date.now() + PEER_CALL_TIMEOUT_MS }, (err) => (err ? reject(fromGrpcError(err)) : resolve()));
    });
  }

  close(): void {
    for (const c of this.clients.values()) c.close();
    this.clients.clear();
  }
}

/** A peer's (or this scheduler's) "no such task": typed locally, rebuilt from the status code over gRPC. */
function isNotFound(err: unknown): boolean {
  return err instanceof DragonflyError && err.kind === 'NotFound';
}

/** Runs `fn` over `items`, at most `limit` at once. */
async function inPool<T, R>(items: readonly T[], limit: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const out = new Array<R>(items.length);
  let next = 0;
  const lanes = Array.from({ length: Math.min(limit, items.length) }, async () => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i]);
    }
  });
  await Promise.all(lanes);
  return out;
}

function peerOf(host: Host): JobPeer {
  const i = host.info;
  return { host_id: i.id, hostname: i.hostname, ip: i.ip, port: i.port, download_port: i.downloadPort, host_type: host.isSeed ? 'super' : 'normal', idc: i.idc, location: i.location };
}

function targetOf(p: JobPeer): SeedHost {
  return { key: `${p.ip}:${p.port}`, ip: p.ip, port: p.port, hostname: p.hostname };
}

/** A manager seed peer that has not announced itself here (yet). */
function seedPeerOf(s: SeedHost): JobPeer {
  return { host_id: '', hostname: s.hostname, ip: s.ip, port: s.port, download_port: 0, host_type: 'super', idc: '', location: '' };
}

export interface JobRunnerOptions {
  readonly clusterId: number;
  readonly service: SchedulerService;
  readonly trigger: SeedTrigger;
  readonly peers: PeerTaskClient;
  readonly peerConcurrency: number;
  readonly logger: Logger;
}

/** Checked between steps: true once the job is canceled or past its deadline. */
export type StopCheck = () => Promise<string | undefined>;

export class JobRunner {
  private readonly ring = new ConsistentHashRing<SeedHost>();

  constructor(private readonly o: JobRunnerOptions) {}

  /** Every host this scheduler knows (announced ones, plus manager seed peers not announced yet). */
  private hosts(): JobPeer[] {
    const out = [...this.o.service.store.hosts.values()].map(peerOf);
    const seen = new Set(out.map((p) => `${p.ip}:${p.port}`));
    for (const s of this.o.service.seedHosts()) if (!seen.has(s.key)) out.push(seedPeerOf(s));
    return out.slice(0, MAX_RESULT_PEERS);
  }

  private seeds(): JobPeer[] {
    return this.hosts().filter((p) => p.host_type === 'super');
  }

  /** Validates a payload from Redis (untrusted input) and runs it. */
  async run(raw: unknown, stop: StopCheck): Promise<Record<string, unknown>> {
    const parsed = payloadSchema.safeParse(raw);
    if (!parsed.success) throw new UnrecoverableError(`malformed job payload: ${parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`);
    const p = parsed.data as QueuedJobPayload;
    const why = await stop();
    if (why) throw new UnrecoverableError(why);
    switch (p.type) {
      case 'preheat':
        return this.preheat(p.scope, p.targets, stop);
      case 'get_task':
        return this.getTask(p.taskId);
      case 'delete_task':
        return this.deleteTask(p.taskId);
      case 'sync_peers':
        return { peers: this.hosts() };
    }
  }

  private async preheat(scope: (typeof PREHEAT_SCOPES)[number], targets: readonly PreheatTarget[], stop: StopCheck): Promise<Record<string, unknown>> {
    const seeds = this.seeds();
    const everyone = this.hosts();
    if (scope !== 'all_peers' && seeds.length === 0) throw new Error(`scheduler cluster ${this.o.clusterId} has no seed peer to preheat on`);
    if (everyone.length === 0) throw new Error(`scheduler cluster ${this.o.clusterId} has no peer to preheat on`);
    this.ring.update(seeds.map(targetOf));
    const work: Array<{ target: PreheatTarget; peer: JobPeer }> = [];
    for (const target of targets) {
      if (scope === 'single_seed_peer') {
        const picked = this.ring.pick(target.taskId)!;
        work.push({ target, peer: seeds.find((s) => targetOf(s).key === picked.key)! });
      } else {
        for (const peer of scope === 'all_seed_peers' ? seeds : everyone) work.push({ target, peer });
      }
    }
    let stopped: string | undefined;
    const outcomes = await inPool(work, this.o.peerConcurrency, async ({ target, peer }) => {
      stopped ??= await stop();
      if (stopped) return { target, peer, error: stopped };
      const error = await this.download(peer, target);
      return { target, peer, error };
    });
    if (stopped) throw new UnrecoverableError(stopped);
    const failures = outcomes.filter((o) => o.error);
    if (failures.length > 0) {
      const reasons = failures.slice(0, MAX_ERRORS_IN_REASON).map((f) => `${f.peer.hostname} (${f.peer.ip}) ${f.target.url}: ${f.error}`);
      throw new Error(`preheat failed on ${failures.length} of ${outcomes.length} downloads: ${reasons.join('; ')}${failures.length > MAX_ERRORS_IN_REASON ? '; ...' : ''}`);
    }
    const tasks = targets.map((t) => ({
      task_id: t.taskId,
      url: t.url,
      peers: outcomes.filter((o) => o.target === t).map((o) => ({ host_id: o.peer.host_id, hostname: o.peer.hostname, ip: o.peer.ip, host_type: o.peer.host_type })),
    }));
    return { tasks };
  }

  private download(peer: JobPeer, t: PreheatTarget): Promise<string | undefined> {
    const download: Download = {
      url: t.url,
      ...(t.digest ? { digest: t.digest } : {}),
      tag: t.tag,
      application: t.application,
      filteredQueryParams: [...t.filteredQueryParams],
      requestHeader: { ...t.headers },
      type: 'STANDARD',
    };
    return new Promise((resolve) => this.o.trigger.trigger(targetOf(peer), download, (err) => resolve(err?.message)));
  }

  private async getTask(taskId: string): Promise<Record<string, unknown>> {
    const hosts = this.hosts();
    const unreachable: Array<{ hostname: string; ip: string; error: string }> = [];
    const found = await inPool(hosts, this.o.peerConcurrency, async (peer) => {
      try {
        const task = await this.o.peers.stat(targetOf(peer), taskId);
        return { ...peer, task_state: task.state, content_length: Number(task.contentLength), piece_count: task.pieceCount, finished_piece_count: task.pieces.length };
      } catch (err) {
        if (!isNotFound(err)) unreachable.push({ hostname: peer.hostname, ip: peer.ip, error: (err as Error).message });
        return undefined;
      }
    });
    return { task_id: taskId, peers: found.filter((p) => p !== undefined), unreachable_peers: unreachable, asked_peers: hosts.length };
  }

  private async deleteTask(taskId: string): Promise<Record<string, unknown>> {
    const hosts = this.hosts();
    const deleted: JobPeer[] = [];
    const failed: Array<{ hostname: string; ip: string; error: string }> = [];
    await inPool(hosts, this.o.peerConcurrency, async (peer) => {
      try {
        await this.o.peers.delete(targetOf(peer), taskId);
        deleted.push(peer);
      } catch (err) {
        if (!isNotFound(err)) failed.push({ hostname: peer.hostname, ip: peer.ip, error: (err as Error).message });
      }
    });
    // Parents that no longer hold the task must not be offered to children.
    try {
      this.o.service.deleteTaskForJob(taskId);
    } catch (err) {
      if (!isNotFound(err)) throw err;
    }
    if (failed.length > 0) {
      throw new Error(`delete_task could not reach ${failed.length} of ${hosts.length} peers: ${failed.slice(0, MAX_ERRORS_IN_REASON).map((f) => `${f.hostname} (${f.ip}): ${f.error}`).join('; ')}`);
    }
    return { task_id: taskId, peers: deleted, asked_peers: hosts.length };
  }
}

export interface JobWorkerOptions {
  readonly redis: RedisSettings & { readonly keyPrefix: string };
  readonly clusterId: number;
  readonly concurrency: number;
  readonly name: string;
  readonly runner: JobRunner;
  readonly logger: Logger;
}

/** Binds a JobRunner to the cluster's BullMQ queue. */
export class SchedulerJobWorker {
  private readonly worker: Worker;
  private readonly client: Redis;

  constructor(private readonly o: JobWorkerOptions) {
    this.client = new Redis({ ...(bullConnectionOf(o.redis) as object), lazyConnect: true, maxRetriesPerRequest: 1 });
    this.client.on('error', () => undefined);
    this.worker = new Worker(jobQueueName(o.clusterId), (job: Job) => this.process(job), {
      connection: bullConnectionOf(o.redis),
      prefix: bullPrefixOf(o.redis.keyPrefix),
      concurrency: o.concurrency,
      name: o.name,
      autorun: false,
    });
    let redisDown = false;
    this.worker.on('error', (err) => {
      if (!redisDown) o.logger.warn({ err: err.message, redis: o.redis.addrs }, 'job queue unreachable; jobs wait until it is back');
      redisDown = true;
    });
    this.worker.on('ready', () => {
      if (redisDown) o.logger.info('job queue reachable again');
      redisDown = false;
    });
  }

  start(): void {
    void this.worker.run().catch((err: unknown) => this.o.logger.error({ err }, 'job worker stopped'));
  }

  private async process(job: Job): Promise<Record<string, unknown>> {
    const data = job.data as { jobId?: unknown; deadlineAt?: unknown };
    const jobId = typeof data.jobId === 'number' ? data.jobId : 0;
    const deadlineAt = typeof data.deadlineAt === 'number' ? data.deadlineAt : 0;
    const stop: StopCheck = async () => {
      if (Date.now() >= deadlineAt) return 'deadline exceeded';
      const canceled = await this.client.exists(jobCancelKey(this.o.redis.keyPrefix, jobId)).catch(() => 0);
      return canceled ? 'canceled' : undefined;
    };
    this.o.logger.info({ job: jobId, type: job.name, attempt: job.attemptsMade + 1 }, 'job started');
    try {
      const result = await this.o.runner.run(job.data, stop);
      this.o.logger.info({ job: jobId, type: job.name }, 'job finished');
      return result;
    } catch (err) {
      this.o.logger.warn({ job: jobId, type: job.name, err: (err as Error).message }, 'job failed');
      throw err;
    }
  }

  async close(): Promise<void> {
    await this.worker.close().catch(() => undefined);
    this.client.disconnect();
  }
}
