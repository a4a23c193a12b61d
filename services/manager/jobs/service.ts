/**
 * Jobs: validated, recorded in the SQL store (one row per scheduler cluster), queued on that
 * cluster's Redis queue, and reconciled from the queues until every cluster has a result.
 * A cluster's part fails, with the reason, when no scheduler consumes its queue, when the
 * job's deadline passes, when the job is canceled, or when its scheduler gives up after the
 * configured attempts; so no job stays PENDING. Transport-free: REST calls these methods.
 */
import { randomUUID } from 'node:crypto';
import type { Logger } from 'pino';
import { z } from 'zod';
import { DragonflyError, InvalidArgumentError, NotFoundError, UnavailableError } from '../../common/errors';
import { DEFAULT_FILTERED_QUERY_PARAMS, parseFilter, taskIdOf } from '../../common/ids';
import { MAX_RESULT_PEERS, type JobWork, type PreheatTarget, type QueuedJobPayload } from '../../common/job-queue';
import { problemsOf } from '../validation';
import type { JobClusterRecord, JobRecord, JobState, JsonObject, ManagerStore, Page, PageResult } from '../store/types';
import { createJobSchema, redactArgs, type CreateJobBody, type PreheatArgs, type TaskArgs } from './args';
import { resolveImage, type ResolveImageOptions, type ResolvedImage } from './image';
import type { JobQueues } from './queues';

export interface JobSettings {
  readonly timeoutMs: number;
  readonly attempts: number;
  readonly noSchedulerTimeoutMs: number;
  readonly registryTimeoutMs: number;
}

/** Pending jobs looked at per reconcile pass (oldest first). */
const RECONCILE_BATCH = 500;
/** A queued entry missing this long is gone for good. */
const MISSING_GRACE_MS = 3000;
/** Largest result kept per cluster (JSON characters). */
const MAX_RESULT_CHARS = 4 * 1024 * 1024;

export const NO_REDIS_MESSAGE =
  'jobs need Redis: set database.redis.addrs in manager.yaml (e.g. ["127.0.0.1:6379"]) and give every scheduler the same Redis under its database.redis ' +
  '(a remote cluster reaches it through externalRedis); `npm start` uses 127.0.0.1:6379 when a Redis answers there';

const jobPeerSchema = z.strictObject({
  host_id: z.string().max(1024),
  hostname: z.string().max(256),
  ip: z.string().max(64),
  port: z.number().int().min(0).max(65535),
  download_port: z.number().int().min(0).max(65535),
  host_type: z.enum(['super', 'normal']),
  idc: z.string().max(1024),
  location: z.string().max(1024),
});
const syncPeersResultSchema = z.looseObject({ peers: z.array(jobPeerSchema).max(MAX_RESULT_PEERS) });

export function noSchedulerMessage(schedulerClusterId: number): string {
  return (
    `scheduler cluster ${schedulerClusterId} has no live scheduler consuming its job queue: ` +
    'check that its schedulers run and that their database.redis points at the manager\'s Redis (externalRedis for a remote cluster)'
  );
}

export function jobView(job: JobRecord) {
  return {
    id: job.id,
    task_id: job.taskId,
    type: job.type,
    state: job.state,
    args: job.args,
    user_id: job.userId,
    scheduler_cluster_ids: job.clusters.map((c) => c.schedulerClusterId),
    result: {
      job_states: job.clusters.map((c) => ({
        scheduler_cluster_id: c.schedulerClusterId,
        state: c.state,
        results: c.result,
        ...(c.error ? { error: c.error } : {}),
        attempts: c.attempts,
        updated_at: new Date(c.updatedAt).toISOString(),
      })),
    },
    deadline_at: new Date(job.deadlineAt).toISOString(),
    created_at: new Date(job.createdAt).toISOString(),
    updated_at: new Date(job.updatedAt).toISOString(),
  };
}

export type JobView = ReturnType<typeof jobView>;

function parseBody(body: unknown): CreateJobBody {
  const r = createJobSchema.safeParse(body ?? {});
  if (r.success) return r.data;
  const errors = problemsOf(r.error);
  throw new InvalidArgumentError(`invalid job: ${errors.map((e) => `${e.path}: ${e.message}`).join('; ')}`, { errors });
}

function filtersOf(text: string): string[] {
  return text ? parseFilter(text) : [...DEFAULT_FILTERED_QUERY_PARAMS];
}

export class JobService {
  /** When each queued cluster part was first seen without any consuming scheduler. */
  private readonly noWorkerSince = new Map<string, number>();
  /** When each cluster part was first seen missing from its queue (a read racing a state change can miss it once). */
  private readonly missingSince = new Map<string, number>();
  private reconciling: Promise<void> | undefined;

  constructor(
    private readonly store: ManagerStore,
    private readonly queues: JobQueues | undefined,
    private readonly settings: JobSettings,
    private readonly logger: Logger,
    private readonly resolve: (o: ResolveImageOptions) => Promise<ResolvedImage> = resolveImage,
  ) {}

  private readyQueues(): JobQueues {
    if (!this.queues) throw new UnavailableError(NO_REDIS_MESSAGE);
    if (!this.queues.ready) throw new UnavailableError(`jobs need Redis, and the Redis at ${this.queues.where} (database.redis.addrs) does not answer`);
    return this.queues;
  }

  async create(userId: number, body: unknown): Promise<JobView> {
    const queues = this.readyQueues();
    const b = parseBody(body);
    let clusterIds: number[];
    if (b.scheduler_cluster_ids && b.scheduler_cluster_ids.length > 0) {
      for (const id of b.scheduler_cluster_ids) {
        if (!(await this.store.getSchedulerCluster(id))) throw new InvalidArgumentError(`scheduler_cluster_ids: scheduler cluster ${id} does not exist`);
      }
      clusterIds = b.scheduler_cluster_ids;
    } else {
      clusterIds = (await this.store.listSchedulerClusters({})).items.map((c) => c.id);
      if (clusterIds.length === 0) throw new InvalidArgumentError('scheduler_cluster_ids: there is no scheduler cluster to run the job');
    }
    const timeoutMs = b.args.timeout ? b.args.timeout * 1000 : this.settings.timeoutMs;
    const work = await this.payloadOf(b);

    const clusters: Array<{ schedulerClusterId: number; state?: JobState; error?: string }> = [];
    for (const id of clusterIds) {
      let workers: number;
      try {
        workers = await queues.workerCount(id);
      } catch (err) {
        throw new UnavailableError(`jobs need Redis, and the Redis at ${queues.where} failed: ${(err as Error).message}`);
      }
      clusters.push(workers > 0 ? { schedulerClusterId: id } : { schedulerClusterId: id, state: 'FAILURE', error: noSchedulerMessage(id) });
    }
    const job = await this.store.createJob({
      taskId: `group_${randomUUID()}`,
      type: b.type,
      args: redactArgs(b.args),
      userId,
      deadlineAt: Date.now() + timeoutMs,
      clusters,
    });
    for (const c of clusters) {
      if (c.state) continue;
      const payload: QueuedJobPayload = { ...work, jobId: job.id, deadlineAt: job.deadlineAt };
      try {
        await queues.enqueue(c.schedulerClusterId, payload, this.settings.attempts);
      } catch (err) {
        await this.store.finishJobCluster(job.id, c.schedulerClusterId, { state: 'FAILURE', error: `could not queue the job on Redis: ${(err as Error).message}` });
      }
    }
    this.logger.info({ job: job.id, type: b.type, clusters: clusterIds }, 'job created');
    return jobView((await this.store.getJob(job.id))!);
  }

  /** What every cluster's scheduler is asked to do (preheat: the resolved layer URLs). */
  private async payloadOf(b: CreateJobBody): Promise<JobWork> {
    switch (b.type) {
      case 'preheat':
        return { type: 'preheat', scope: b.args.scope, targets: await this.preheatTargets(b.args) };
      case 'get_task':
      case 'delete_task':
        return { type: b.type, taskId: this.taskIdOf(b.args) };
      case 'sync_peers':
        return { type: 'sync_peers' };
    }
  }

  private taskIdOf(a: TaskArgs): string {
    if (a.task_id) return a.task_id;
    return taskIdOf({ url: a.url!, tag: a.tag, application: a.application, filteredQueryParams: filtersOf(a.filtered_query_params) });
  }

  private async preheatTargets(a: PreheatArgs): Promise<PreheatTarget[]> {
    const filteredQueryParams = filtersOf(a.filteredQueryParams);
    const common = { tag: a.tag, application: a.application, filteredQueryParams };
    if (a.type === 'file') {
      const headers = { ...a.headers };
      if (a.username) headers.authorization = `Basic ${Buffer.from(`${a.username}:${a.password}`).toString('base64')}`;
      return [{ url: a.url, taskId: taskIdOf({ url: a.url, ...common }), headers, ...common }];
    }
    const image = await this.resolve({ url: a.url, platform: a.platform, username: a.username, password: a.password, headers: a.headers, timeoutMs: this.settings.registryTimeoutMs });
    // Each layer is the task the registry-mirror proxy computes for the same blob: its digest.
    return image.layers.map((l) => ({ url: l.url, digest: l.digest, taskId: taskIdOf({ url: l.url }), headers: image.headers, ...common }));
  }

  async get(id: number): Promise<JobView> {
    let job = await this.store.getJob(id);
    if (!job) throw new NotFoundError(`job ${id} not found`);
    if (job.state === 'PENDING') {
      await this.reconcileJob(job, new Map());
      job = (await this.store.getJob(id))!;
    }
    return jobView(job);
  }

  async list(filter: { type?: string; state?: JobState }, page: Page): Promise<PageResult<JobView>> {
    const r = await this.store.listJobs(filter, page);
    return { items: r.items.map(jobView), total: r.total };
  }

  /** Cancels every cluster part still pending: queued entries are dropped, running ones stop at their next step. */
  async cancel(id: number, by: string): Promise<JobView> {
    const job = await this.store.getJob(id);
    if (!job) throw new NotFoundError(`job ${id} not found`);
    const pending = job.clusters.filter((c) => c.state === 'PENDING');
    if (pending.length > 0 && this.queues?.ready) {
      await this.queues.cancel(id, job.deadlineAt - Date.now() + 60_000).catch((err: unknown) => this.logger.warn({ err, job: id }, 'could not publish the cancel flag'));
    }
    for (const c of pending) {
      await this.store.finishJobCluster(id, c.schedulerClusterId, { state: 'FAILURE', error: `canceled by ${by}`, attempts: c.attempts });
      if (this.queues?.ready) await this.queues.remove(c.schedulerClusterId, id).catch(() => undefined);
      this.noWorkerSince.delete(`${id}:${c.schedulerClusterId}`);
      this.missingSince.delete(`${id}:${c.schedulerClusterId}`);
    }
    return jobView((await this.store.getJob(id))!);
  }

  /** One pass over pending jobs; concurrent calls share the pass. */
  reconcile(): Promise<void> {
    this.reconciling ??= (async () => {
      try {
        const workers = new Map<number, Promise<number>>();
        const pending = await this.store.pendingJobIds(RECONCILE_BATCH);
        for (const id of pending) {
          const job = await this.store.getJob(id);
          if (job) await this.reconcileJob(job, workers);
        }
        // Parts another manager finished leave no trace here.
        const live = new Set(pending.map(String));
        for (const map of [this.noWorkerSince, this.missingSince]) {
          for (const key of map.keys()) if (!live.has(key.split(':')[0])) map.delete(key);
        }
      } finally {
        this.reconciling = undefined;
      }
    })();
    return this.reconciling;
  }

  private async reconcileJob(job: JobRecord, workers: Map<number, Promise<number>>): Promise<void> {
    for (const c of job.clusters) {
      if (c.state !== 'PENDING') continue;
      try {
        await this.reconcileCluster(job, c, workers);
      } catch (err) {
        // Redis hiccups leave the part pending; its deadline still ends it.
        this.logger.debug({ err: (err as Error).message, job: job.id, cluster: c.schedulerClusterId }, 'reconcile failed');
      }
    }
  }

  private async finish(job: JobRecord, c: JobClusterRecord, outcome: { state: 'SUCCESS' | 'FAILURE'; result?: JsonObject; error?: string; attempts?: number }): Promise<void> {
    this.noWorkerSince.delete(`${job.id}:${c.schedulerClusterId}`);
    this.missingSince.delete(`${job.id}:${c.schedulerClusterId}`);
    if (await this.store.finishJobCluster(job.id, c.schedulerClusterId, outcome)) {
      this.logger.info({ job: job.id, cluster: c.schedulerClusterId, state: outcome.state, error: outcome.error }, 'job part finished');
    }
  }

  private async reconcileCluster(job: JobRecord, c: JobClusterRecord, workers: Map<number, Promise<number>>): Promise<void> {
    const now = Date.now();
    const key = `${job.id}:${c.schedulerClusterId}`;
    const queues = this.queues?.ready ? this.queues : undefined;
    if (now >= job.deadlineAt) {
      const seconds = Math.round((job.deadlineAt - job.createdAt) / 1000);
      const status = await queues?.status(c.schedulerClusterId, job.id).catch(() => undefined);
      await this.finish(job, c, { state: 'FAILURE', error: `deadline exceeded: scheduler cluster ${c.schedulerClusterId} did not finish within ${seconds}s`, attempts: status?.attemptsMade ?? c.attempts });
      await queues?.cancel(job.id, 60_000).catch(() => undefined);
      await queues?.remove(c.schedulerClusterId, job.id).catch(() => undefined);
      return;
    }
    if (!queues) return;
    const status = await queues.status(c.schedulerClusterId, job.id);
    if (!status) {
      const since = this.missingSince.get(key) ?? now;
      this.missingSince.set(key, since);
      if (now - since >= MISSING_GRACE_MS) {
        await this.finish(job, c, { state: 'FAILURE', error: `the queued job vanished from Redis (flushed or evicted) before scheduler cluster ${c.schedulerClusterId} finished it` });
      }
      return;
    }
    this.missingSince.delete(key);
    if (status.state === 'completed') {
      await this.finish(job, c, await this.outcomeOf(job, c, status.returnValue, status.attemptsMade));
      await queues.remove(c.schedulerClusterId, job.id);
      return;
    }
    if (status.state === 'failed') {
      await this.finish(job, c, { state: 'FAILURE', error: status.failedReason || 'failed without a reason', attempts: status.attemptsMade });
      await queues.remove(c.schedulerClusterId, job.id);
      return;
    }
    if (status.state === 'active') {
      this.noWorkerSince.delete(key);
      return;
    }
    // Queued: someone must be there to take it.
    let count = workers.get(c.schedulerClusterId);
    if (!count) {
      count = queues.workerCount(c.schedulerClusterId);
      workers.set(c.schedulerClusterId, count);
    }
    if ((await count) > 0) {
      this.noWorkerSince.delete(key);
      return;
    }
    const since = this.noWorkerSince.get(key) ?? now;
    this.noWorkerSince.set(key, since);
    if (now - since >= this.settings.noSchedulerTimeoutMs) {
      await this.finish(job, c, { state: 'FAILURE', error: noSchedulerMessage(c.schedulerClusterId), attempts: status.attemptsMade });
      await queues.remove(c.schedulerClusterId, job.id);
    }
  }

  /** Checks what a scheduler returned (it crossed Redis) and applies sync_peers to the inventory. */
  private async outcomeOf(job: JobRecord, c: JobClusterRecord, value: unknown, attempts: number): Promise<{ state: 'SUCCESS' | 'FAILURE'; result?: JsonObject; error?: string; attempts: number }> {
    if (typeof value !== 'object' || value === null || Array.isArray(value)) return { state: 'FAILURE', error: `scheduler returned no result object (got ${JSON.stringify(value)?.slice(0, 200) ?? typeof value})`, attempts };
    if (JSON.stringify(value).length > MAX_RESULT_CHARS) return { state: 'FAILURE', error: `scheduler result is larger than ${MAX_RESULT_CHARS} characters`, attempts };
    if (job.type === 'sync_peers') {
      const parsed = syncPeersResultSchema.safeParse(value);
      if (!parsed.success) return { state: 'FAILURE', error: `scheduler returned a malformed peer list: ${parsed.error.issues[0]?.message ?? ''}`, attempts };
      await this.store.replacePeers(
        c.schedulerClusterId,
        parsed.data.peers.map((p) => ({ hostId: p.host_id, hostname: p.hostname, type: p.host_type, ip: p.ip, port: p.port, downloadPort: p.download_port, idc: p.idc, location: p.location })),
      );
    }
    return { state: 'SUCCESS', result: value as JsonObject, attempts };
  }

  /** Starts the periodic reconcile; returns a stop function. */
  start(intervalMs: number): () => void {
    const timer = setInterval(() => {
      this.reconcile().catch((err: unknown) => {
        if (!(err instanceof DragonflyError)) this.logger.warn({ err }, 'job reconcile pass failed');
      });
    }, intervalMs);
    timer.unref();
    return () => clearInterval(timer);
  }
}
