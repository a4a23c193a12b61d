/**
 * The scheduler's link to the manager (docs/protocols.md "Manager ↔ scheduler"):
 * UpdateScheduler with backoff until the cluster exists, a KeepAlive client stream with one
 * message per interval (re-register and reopen on error), and GetScheduler polling for the
 * cluster config and active seed peers. The last good answer is kept while the manager is down.
 */
import * as grpc from '@grpc/grpc-js';
import { GRPC_OPTIONS, grpcTarget } from '../common/grpc';
import { fromGrpcError } from '../common/errors';
import type { Logger } from '../common/logger';
import { protos, type ManagerClient } from '../proto';
import type { Scheduler__Output } from '../proto/gen/manager/v2/Scheduler';
import type { SeedHost } from './seed-peers';

export interface ClusterConfig {
  readonly candidateParentLimit?: number;
  readonly filterParentLimit?: number;
  /** client_config.load_limit: upload slots of a peer that announced none. */
  readonly loadLimit?: number;
  readonly seedPeers: readonly SeedHost[];
}

export interface ManagerLinkOptions {
  /** mTLS credentials accepting the manager's certificate (common/tls.ts); plaintext when absent. */
  readonly credentials?: grpc.ChannelCredentials;
  readonly addr: string;
  readonly hostname: string;
  readonly ip: string;
  readonly port: number;
  readonly idc: string;
  readonly location: string;
  readonly clusterId: number;
  readonly keepAliveIntervalMs: number;
  readonly refreshIntervalMs: number;
  readonly logger: Logger;
  readonly onConfig: (config: ClusterConfig) => void;
  /** Registration backoff: first delay and cap (doubles in between, with jitter). */
  readonly backoff?: { readonly initialMs: number; readonly maxMs: number };
}

function parseJson(bytes: Buffer | Uint8Array | string | undefined | null): Record<string, unknown> {
  if (!bytes || bytes.length === 0) return {};
  try {
    const value: unknown = JSON.parse(Buffer.from(bytes).toString('utf8'));
    return value && typeof value === 'object' && !Array.isArray(value) ? (value as Record<string, unknown>) : {};
  } catch {
    return {};
  }
}

function positiveInt(value: unknown): number | undefined {
  return typeof value === 'number' && Number.isInteger(value) && value > 0 ? value : undefined;
}

/** Reads the cluster config, client config and active seed peers out of a GetScheduler answer. */
export function clusterConfigOf(answer: Scheduler__Output): ClusterConfig {
  const config = parseJson(answer.schedulerCluster?.config);
  const clientConfig = parseJson(answer.schedulerCluster?.clientConfig);
  const seedPeers: SeedHost[] = answer.seedPeers
    .filter((s) => s.ip && s.port > 0 && (s.state === '' || s.state === 'active'))
    .map((s) => ({ key: `${s.ip}:${s.port}`, ip: s.ip, port: s.port, hostname: s.hostname }));
  return {
    candidateParentLimit: positiveInt(config.candidate_parent_limit),
    filterParentLimit: positiveInt(config.filter_parent_limit),
    loadLimit: positiveInt(clientConfig.load_limit),
    seedPeers,
  };
}

export class ManagerLink {
  private readonly client: ManagerClient;
  private stopped = false;
  private registerTimer: NodeJS.Timeout | undefined;
  private keepAliveTimer: NodeJS.Timeout | undefined;
  private refreshTimer: NodeJS.Timeout | undefined;
  private keepAlive: grpc.ClientWritableStream<unknown> | undefined;
  private attempt = 0;
  private onDemand: Promise<void> | undefined;
  private lastOnDemandAt = 0;
  /** True between a successful UpdateScheduler and the next keep-alive failure. */
  registered = false;
  lastConfig: ClusterConfig | undefined;

  constructor(private readonly options: ManagerLinkOptions) {
    const Ctor = protos().manager.manager.v2.Manager;
    this.client = new Ctor(grpcTarget(options.addr), options.credentials ?? grpc.credentials.createInsecure(), GRPC_OPTIONS);
  }

  start(): void {
    this.register();
    this.refreshTimer = setInterval(() => void this.refresh(), this.options.refreshIntervalMs);
    this.refreshTimer.unref();
  }

  private backoffMs(): number {
    const { initialMs, maxMs } = this.options.backoff ?? { initialMs: 500, maxMs: 30_000 };
    const base = Math.min(maxMs, initialMs * 2 ** Math.min(this.attempt, 20));
    return base * (0.8 + Math.random() * 0.4);
  }

  private register(): void {
    if (this.stopped) return;
    const o = this.options;
    this.client.UpdateScheduler(
      { sourceType: 'SCHEDULER_SOURCE', hostname: o.hostname, ip: o.ip, port: o.port, idc: o.idc, location: o.location, schedulerClusterId: o.clusterId, features: ['schedule', 'preheat'] },
      { deadline: Date.now() + 10_000 },
      (err) => {
        if (this.stopped) return;
        if (err) {
          const e = fromGrpcError(err);
          const delay = this.backoffMs();
          this.attempt++;
          o.logger.warn({ manager: o.addr, kind: e.kind, err: e.message, retryInMs: Math.round(delay) }, e.kind === 'NotFound' ? 'scheduler cluster not declared yet; retrying' : 'manager registration failed; retrying');
          this.registerTimer = setTimeout(() => this.register(), delay);
          this.registerTimer.unref();
          return;
        }
        this.attempt = 0;
        this.registered = true;
        o.logger.info({ manager: o.addr, cluster: o.clusterId }, 'registered with the manager');
        this.openKeepAlive();
        void this.refresh();
      },
    );
  }

  private openKeepAlive(): void {
    const o = this.options;
    const stream = this.client.KeepAlive((err) => {
      if (this.keepAlive !== stream) return;
      this.keepAlive = undefined;
      if (this.keepAliveTimer) clearInterval(this.keepAliveTimer);
      if (this.stopped) return;
      this.registered = false;
      o.logger.warn({ manager: o.addr, err: err ? fromGrpcError(err).message : 'stream ended' }, 'manager keep-alive stream closed; re-registering');
      const delay = this.backoffMs();
      this.attempt++;
      this.registerTimer = setTimeout(() => this.register(), delay);
      this.registerTimer.unref();
    });
    this.keepAlive = stream as grpc.ClientWritableStream<unknown>;
    const send = (): void => {
      if (this.keepAlive === stream) stream.write({ sourceType: 'SCHEDULER_SOURCE', hostname: o.hostname, clusterId: o.clusterId, ip: o.ip });
    };
    send();
    this.keepAliveTimer = setInterval(send, o.keepAliveIntervalMs);
    this.keepAliveTimer.unref();
  }

  /** GetScheduler; on failure the last config stays in force. Resolves when the answer is applied (or failed). */
  refresh(deadlineMs = 10_000): Promise<void> {
    if (this.stopped) return Promise.resolve();
    const o = this.options;
    return new Promise((resolve) => {
      this.client.GetScheduler(
        { sourceType: 'SCHEDULER_SOURCE', hostname: o.hostname, ip: o.ip, schedulerClusterId: o.clusterId },
        { deadline: Date.now() + deadlineMs },
        (err, answer) => {
          resolve();
          if (this.stopped) return;
          if (err || !answer) {
            o.logger.warn({ manager: o.addr, err: err ? fromGrpcError(err).message : 'empty answer' }, 'GetScheduler failed; keeping the last cluster config');
            return;
          }
          this.lastConfig = clusterConfigOf(answer);
          o.onConfig(this.lastConfig);
        },
      );
    });
  }

  /**
   * A refresh on demand (an unlisted seed peer announced): concurrent callers share one, and
   * they start at most once a second (a caller inside that second waits for the next slot
   * rather than being answered from an older list), so announces cannot be turned into a
   * flood of manager calls. Each waits at most 3 s for the manager.
   */
  refreshOnDemand(): Promise<void> {
    this.onDemand ??= (async () => {
      const wait = this.lastOnDemandAt + 1000 - Date.now();
      if (wait > 0) await new Promise((r) => setTimeout(r, wait).unref());
      this.lastOnDemandAt = Date.now();
      await this.refresh(3000);
    })().finally(() => {
      this.onDemand = undefined;
    });
    return this.onDemand;
  }

  async stop(): Promise<void> {
    this.stopped = true;
    for (const t of [this.registerTimer, this.refreshTimer]) if (t) clearTimeout(t);
    if (this.keepAliveTimer) clearInterval(this.keepAliveTimer);
    const stream = this.keepAlive;
    this.keepAlive = undefined;
    stream?.end();
    this.client.close();
  }
}
