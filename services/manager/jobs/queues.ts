/** The manager's side of the job queues: one BullMQ Queue per scheduler cluster on its Redis. */
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { bullConnectionOf, bullPrefixOf, jobCancelKey, jobQueueName, queuedJobId, type QueuedJobPayload, type RedisSettings } from '../../common/job-queue';

/** Queues of clusters not used for this long are closed (the map stays bounded by active clusters). */
const IDLE_QUEUE_MS = 10 * 60_000;
/** Finished queue entries kept at most this long / this many per queue, once the manager has read them. */
const KEEP_FINISHED = { age: 24 * 3600, count: 10_000 };

export interface QueuedJobStatus {
  /** BullMQ state: waiting, delayed, prioritized, active, completed, failed, ... */
  readonly state: string;
  readonly returnValue: unknown;
  readonly failedReason: string;
  readonly attemptsMade: number;
}

export class JobQueues {
  private readonly client: Redis;
  private readonly queues = new Map<number, { queue: Queue; usedAt: number }>();
  private readonly prefix: string;

  constructor(
    private readonly settings: RedisSettings,
    private readonly keyPrefix: string,
  ) {
    this.prefix = bullPrefixOf(keyPrefix);
    // Producer side: fail fast while Redis is away instead of queueing commands in memory.
    this.client = new Redis({ ...(bullConnectionOf(settings) as object), lazyConnect: true, enableOfflineQueue: false, maxRetriesPerRequest: 1 });
    this.client.on('error', () => undefined); // availability is reported by `ready`, per request
  }

  async connect(): Promise<void> {
    await this.client.connect().catch(() => undefined);
  }

  /** Whether Redis answers now. */
  get ready(): boolean {
    return this.client.status === 'ready';
  }

  get where(): string {
    return this.settings.masterName ? `sentinel master ${this.settings.masterName} (${this.settings.addrs.join(', ')})` : this.settings.addrs[0];
  }

  private queue(schedulerClusterId: number): Queue {
    const now = Date.now();
    for (const [id, q] of this.queues) {
      if (now - q.usedAt > IDLE_QUEUE_MS && id !== schedulerClusterId) {
        this.queues.delete(id);
        void q.queue.close().catch(() => undefined);
      }
    }
    let entry = this.queues.get(schedulerClusterId);
    if (!entry) {
      entry = { queue: new Queue(jobQueueName(schedulerClusterId), { connection: this.client, prefix: this.prefix, skipWaitingForReady: true }), usedAt: now };
      entry.queue.on('error', () => undefined);
      this.queues.set(schedulerClusterId, entry);
    }
    entry.usedAt = now;
    return entry.queue;
  }

  async enqueue(schedulerClusterId: number, payload: QueuedJobPayload, attempts: number): Promise<void> {
    await this.queue(schedulerClusterId).add(payload.type, payload, {
      jobId: queuedJobId(payload.jobId, schedulerClusterId),
      attempts,
      backoff: { type: 'exponential', delay: 1000 },
      removeOnComplete: KEEP_FINISHED,
      removeOnFail: KEEP_FINISHED,
    });
  }

  async status(schedulerClusterId: number, jobId: number): Promise<QueuedJobStatus | undefined> {
    const queue = this.queue(schedulerClusterId);
    const id = queuedJobId(jobId, schedulerClusterId);
    // State first: a job read before it finishes would lack the result its state then claims.
    const state = await queue.getJobState(id);
    const job = await queue.getJob(id);
    if (!job || state === 'unknown') return undefined;
    return { state, returnValue: job.returnvalue as unknown, failedReason: job.failedReason ?? '', attemptsMade: job.attemptsMade };
  }

  /** Drops a queued entry; an entry a worker holds stays (the worker sees the cancel key). */
  async remove(schedulerClusterId: number, jobId: number): Promise<void> {
    const job = await this.queue(schedulerClusterId).getJob(queuedJobId(jobId, schedulerClusterId));
    await job?.remove().catch(() => undefined);
  }

  /** Schedulers consuming this cluster's queue right now (BullMQ names each worker connection). */
  async workerCount(schedulerClusterId: number): Promise<number> {
    return this.queue(schedulerClusterId).getWorkersCount();
  }

  async cancel(jobId: number, ttlMs: number): Promise<void> {
    await this.client.set(jobCancelKey(this.keyPrefix, jobId), '1', 'PX', Math.max(1000, Math.floor(ttlMs)));
  }

  async close(): Promise<void> {
    for (const { queue } of this.queues.values()) await queue.close().catch(() => undefined);
    this.queues.clear();
    this.client.disconnect();
  }
}
