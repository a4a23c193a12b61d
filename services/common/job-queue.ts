/**
 * The contract between the manager (producer) and schedulers (consumers) of jobs: one
 * BullMQ queue per scheduler cluster on the manager's Redis, the payload each queued job
 * carries, and what a scheduler answers. Both sides import it, so they cannot drift.
 */
import type { ConnectionOptions } from 'bullmq';

export const JOB_TYPES = ['preheat', 'get_task', 'delete_task', 'sync_peers'] as const;
export type JobType = (typeof JOB_TYPES)[number];

export const PREHEAT_SCOPES = ['single_seed_peer', 'all_seed_peers', 'all_peers'] as const;
export type PreheatScope = (typeof PREHEAT_SCOPES)[number];

/** Queue of one scheduler cluster (BullMQ forbids ':' in names). */
export function jobQueueName(schedulerClusterId: number): string {
  return `scheduler-cluster-${schedulerClusterId}`;
}

/** BullMQ key prefix under the manager's `database.redis.keyPrefix`. */
export function bullPrefixOf(keyPrefix: string): string {
  return `${keyPrefix}bull`;
}

/** Redis key a manager sets when a job is canceled; workers poll it between steps. */
export function jobCancelKey(keyPrefix: string, jobId: number): string {
  return `${keyPrefix}job-cancel:${jobId}`;
}

/** BullMQ job id of one cluster's part of a manager job. */
export function queuedJobId(jobId: number, schedulerClusterId: number): string {
  return `job-${jobId}-cluster-${schedulerClusterId}`;
}

/** One file to put into the cluster: a blob of an image, or a file URL. */
export interface PreheatTarget {
  readonly url: string;
  /** "sha256:<hex>" of an image layer; the seed checks the content against it. */
  readonly digest?: string;
  readonly taskId: string;
  readonly tag: string;
  readonly application: string;
  readonly filteredQueryParams: readonly string[];
  /** Sent to the origin (user headers, registry bearer token). */
  readonly headers: Readonly<Record<string, string>>;
}

/** What a scheduler is asked to do. */
export type JobWork =
  | { readonly type: 'preheat'; readonly scope: PreheatScope; readonly targets: readonly PreheatTarget[] }
  | { readonly type: 'get_task' | 'delete_task'; readonly taskId: string }
  | { readonly type: 'sync_peers' };

export type QueuedJobPayload = JobWork & { readonly jobId: number; readonly deadlineAt: number };

/** A peer as a scheduler reports it in job results. */
export interface JobPeer {
  readonly host_id: string;
  readonly hostname: string;
  readonly ip: string;
  readonly port: number;
  readonly download_port: number;
  /** "super" (seed peer) or "normal". */
  readonly host_type: 'super' | 'normal';
  readonly idc: string;
  readonly location: string;
}

/** Most hosts a result lists (a bound on what Redis and the SQL row carry). */
export const MAX_RESULT_PEERS = 10_000;

export interface RedisSettings {
  readonly addrs: readonly string[];
  readonly masterName: string;
  readonly username: string;
  readonly password: string;
  readonly db: number;
}

function splitHostPort(addr: string): { host: string; port: number } {
  const clean = addr.replace(/^[a-z]+:\/\//, '');
  const i = clean.lastIndexOf(':');
  return { host: clean.slice(0, i).replace(/^\[|\]$/g, ''), port: Number(clean.slice(i + 1)) };
}

/** ioredis options for BullMQ (it needs `maxRetriesPerRequest: null` for blocking workers). */
export function bullConnectionOf(r: RedisSettings): ConnectionOptions {
  const common = {
    username: r.username || undefined,
    password: r.password || undefined,
    db: r.db,
    maxRetriesPerRequest: null,
    connectTimeout: 5000,
    retryStrategy: (times: number) => Math.min(500 * times, 10_000),
  };
  if (r.masterName) return { ...common, sentinels: r.addrs.map(splitHostPort), name: r.masterName };
  return { ...common, ...splitHostPort(r.addrs[0]) };
}
