/**
 * dfdaemon's control-plane clients: which schedulers to use (the manager's ListSchedulers,
 * first cluster, or static `scheduler.netAddrs`), AnnounceHost to each of them, and, for a
 * seed peer, UpdateSeedPeer + KeepAlive with the manager.
 */
import { createHash } from 'node:crypto';
import * as grpc from '@grpc/grpc-js';
import type { Logger } from 'pino';
import { GRPC_OPTIONS, grpcTarget, unary, type DfdaemonConfig, type TransportSecurity } from '../common';
import { protos, type ManagerClient, type SchedulerClient } from '../proto';
import type { Host } from '../proto';
import type { ListSchedulersResponse__Output } from '../proto/gen/manager/v2/ListSchedulersResponse';
import type { SeedPeer__Output } from '../proto/gen/manager/v2/SeedPeer';

export interface HostIdentity {
  readonly id: string;
  readonly hostname: string;
  readonly ip: string;
  readonly seed: boolean;
  readonly idc: string;
  readonly location: string;
  /** gRPC (DfdaemonUpload) port. */
  grpcPort: number;
  /** Piece upload HTTP port. */
  uploadPort: number;
}

export interface UploadLoad {
  readonly limit: number;
  readonly active: number;
  readonly total: number;
  readonly failed: number;
}

/** Host message for AnnounceHost and the scheduler's view of this host. */
export function hostMessage(host: HostIdentity, load: UploadLoad, schedulerClusterId: number): Host {
  return {
    id: host.id,
    type: host.seed ? 'SUPER_HOST' : 'NORMAL_HOST',
    hostname: host.hostname,
    ip: host.ip,
    port: host.grpcPort,
    downloadPort: host.uploadPort,
    network: { idc: host.idc, location: host.location },
    schedulerClusterId,
    concurrentUploadLimit: load.limit,
    concurrentUploadCount: load.active,
    uploadCount: load.total,
    uploadFailedCount: load.failed,
  };
}

function managerClients(config: DfdaemonConfig, security: TransportSecurity | undefined): ManagerClient[] {
  if (!config.scheduler.manager.enable) return [];
  const Manager = protos().manager.manager.v2.Manager;
  const credentials = security?.channelCredentials(['manager']) ?? grpc.credentials.createInsecure();
  return config.scheduler.manager.netAddrs.map((a) => new Manager(grpcTarget(a.addr), credentials, GRPC_OPTIONS));
}

/** Rendezvous hash order of `addrs` for `key`: the same task goes to the same scheduler on every peer. */
export function rendezvousOrder(key: string, addrs: readonly string[]): string[] {
  const score = (a: string) => createHash('sha256').update(`${a}|${key}`).digest().readUInt32BE(0);
  return [...addrs].sort((a, b) => score(b) - score(a) || a.localeCompare(b));
}

export interface SchedulerPoolOptions {
  readonly config: DfdaemonConfig;
  readonly host: HostIdentity;
  readonly load: () => UploadLoad;
  readonly logger: Logger;
  /** mTLS to the manager and schedulers (common/tls.ts); plaintext when absent. */
  readonly security?: TransportSecurity;
}

/** Backoff while the manager lists no scheduler for this host: 1 s, 2 s, 4 s, then every 8 s. */
const EMPTY_RETRY_MIN_MS = 1000;
const EMPTY_RETRY_MAX_MS = 8000;
/** Re-announce backoff after a broken stream or a failed AnnounceHost: 250 ms doubling up to 4 s. */
const REANNOUNCE_MIN_MS = 250;
const REANNOUNCE_MAX_MS = 4000;
const ANNOUNCE_DEADLINE_MS = 5000;
/** How long a download waits for that one extra ListSchedulers before going to the origin. */
const RESOLVE_WAIT_MS = 2000;

export class SchedulerPool {
  private addrs: string[] = [];
  private schedulerClusterId = 0;
  private readonly clients = new Map<string, SchedulerClient>();
  private readonly managers: ManagerClient[];
  private timers: NodeJS.Timeout[] = [];
  private stopped = false;
  private pendingResolve: Promise<void> | undefined;
  private lastResolveAt = 0;
  private reannouncing = false;

  constructor(private readonly options: SchedulerPoolOptions) {
    this.managers = managerClients(options.config, options.security);
    this.addrs = options.config.scheduler.netAddrs.map((a) => grpcTarget(a.addr));
  }

  /** Scheduler addresses in use ("host:port"). */
  addresses(): readonly string[] {
    return this.addrs;
  }

  /** Schedulers for a task, best first (consistent hash of the task id). */
  forTask(taskId: string): string[] {
    return rendezvousOrder(taskId, this.addrs);
  }

  client(addr: string): SchedulerClient {
    let c = this.clients.get(addr);
    if (!c) {
      c = new (protos().scheduler.scheduler.v2.Scheduler)(addr, this.options.security?.channelCredentials(['scheduler']) ?? grpc.credentials.createInsecure(), GRPC_OPTIONS);
      this.clients.set(addr, c);
    }
    return c;
  }

  /** Resolves schedulers once and starts the refresh and AnnounceHost loops. */
  async start(): Promise<void> {
    await this.refresh();
    await this.announceAll();
    if (this.managers.length > 0) this.scheduleRefresh(0);
    const a = setInterval(() => void this.announceAll(), Math.max(1000, this.options.config.scheduler.announceInterval));
    a.unref();
    this.timers.push(a);
  }

  /**
   * Re-asks the manager every refreshInterval; while it knows no scheduler for us yet (the
   * cluster is still being declared, or its scheduler has not registered) much sooner, so a
   * node that starts before its scheduler does not spend refreshInterval going to the origin.
   */
  private scheduleRefresh(emptyRounds: number): void {
    if (this.stopped) return;
    const interval = Math.max(1000, this.options.config.scheduler.manager.refreshInterval);
    const delay = this.addrs.length > 0 ? interval : Math.min(EMPTY_RETRY_MAX_MS, EMPTY_RETRY_MIN_MS * 2 ** emptyRounds, interval);
    const t = setTimeout(() => {
      this.timers = this.timers.filter((x) => x !== t);
      void this.refresh()
        .then(() => this.announceAll())
        .finally(() => this.scheduleRefresh(this.addrs.length > 0 ? 0 : emptyRounds + 1));
    }, delay);
    t.unref();
    this.timers.push(t);
  }

  /**
   * For a download that finds no scheduler: asks the manager once more now (at most once a
   * second, shared by concurrent callers) instead of waiting for the next refresh round.
   */
  async resolveIfEmpty(): Promise<void> {
    if (this.addrs.length > 0 || this.managers.length === 0 || this.stopped) return;
    if (!this.pendingResolve && Date.now() - this.lastResolveAt >= 1000) {
      this.lastResolveAt = Date.now();
      this.pendingResolve = this.refresh()
        .then(() => (this.addrs.length > 0 ? this.announceAll() : undefined))
        .finally(() => {
          this.pendingResolve = undefined;
        });
    }
    // A manager that does not answer must not hold the download up for a whole RPC deadline.
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([this.pendingResolve, new Promise<void>((r) => (timer = setTimeout(r, RESOLVE_WAIT_MS)))]);
    clearTimeout(timer);
  }

  /** Asks the manager for schedulers (first cluster, active ones); keeps the last answer on failure. */
  async refresh(): Promise<void> {
    if (this.managers.length === 0) return;
    const { config, host, logger } = this.options;
    const seed = host.seed;
    for (const m of this.managers) {
      try {
        const res = await unary<object, ListSchedulersResponse__Output>(m.ListSchedulers.bind(m), {
          sourceType: seed ? 'SEED_PEER_SOURCE' : 'PEER_SOURCE',
          hostname: host.hostname,
          ip: host.ip,
          idc: host.idc,
          location: host.location,
          version: '0.1.0',
          schedulerClusterId: config.host.schedulerClusterID,
          seedPeerClusterId: seed ? config.scheduler.manager.seedPeer.clusterID : 0,
        });
        const list = res.schedulers;
        if (list.length === 0) {
          logger.warn('manager returned no schedulers');
          return;
        }
        const clusterId = list[0].schedulerClusterId;
        const ofCluster = list.filter((s) => s.schedulerClusterId === clusterId);
        const active = ofCluster.filter((s) => s.state === '' || s.state === 'active');
        const chosen = (active.length > 0 ? active : ofCluster).map((s) => `${s.ip.includes(':') ? `[${s.ip}]` : s.ip}:${s.port}`);
        if (chosen.join(',') !== this.addrs.join(',')) logger.info({ schedulers: chosen, schedulerClusterId: clusterId }, 'schedulers updated from manager');
        this.addrs = chosen;
        this.schedulerClusterId = clusterId;
        return;
      } catch (err) {
        logger.warn({ err: (err as Error).message }, 'ListSchedulers failed; keeping the previous schedulers');
      }
    }
  }

  async announceAll(): Promise<void> {
    if (this.stopped) return;
    const results = await Promise.all(this.addrs.map((addr) => this.announceTo(addr)));
    // One that failed (scheduler restarting) is retried soon, not at the next announceInterval.
    if (results.includes(false)) this.reannounceSoon();
  }

  /** AnnounceHost to one scheduler; false when it failed. */
  private async announceTo(addr: string): Promise<boolean> {
    if (this.stopped) return false;
    const { config, host, load, logger } = this.options;
    const msg = { host: hostMessage(host, load(), this.schedulerClusterId || config.host.schedulerClusterID), intervalMs: config.scheduler.announceInterval };
    const c = this.client(addr);
    try {
      await unary(c.AnnounceHost.bind(c), msg, ANNOUNCE_DEADLINE_MS);
      return true;
    } catch (err) {
      logger.warn({ scheduler: addr, err: (err as Error).message }, 'AnnounceHost failed');
      return false;
    }
  }

  /** Announces this host to `addr` now (it answered NOT_FOUND for this host); false when that failed. */
  reannounce(addr: string): Promise<boolean> {
    return this.announceTo(addr);
  }

  /**
   * An AnnouncePeer stream broke or a scheduler did not know this host: announce to every
   * scheduler at once, and keep retrying the ones that fail with a short backoff (250 ms
   * doubling, at most REANNOUNCE_MAX_MS) until they answer, so a restarted scheduler knows its
   * hosts again within a second of coming back. One retry loop at a time.
   */
  reannounceSoon(): void {
    if (this.reannouncing || this.stopped) return;
    this.reannouncing = true;
    void (async () => {
      let delay = REANNOUNCE_MIN_MS;
      try {
        let pending = [...this.addrs];
        while (!this.stopped && pending.length > 0) {
          const ok = await Promise.all(pending.map((a) => this.announceTo(a)));
          pending = pending.filter((a, i) => !ok[i] && this.addrs.includes(a));
          if (pending.length === 0) break;
          await new Promise((r) => setTimeout(r, delay).unref());
          delay = Math.min(delay * 2, REANNOUNCE_MAX_MS, Math.max(REANNOUNCE_MIN_MS, this.options.config.scheduler.announceInterval));
        }
      } finally {
        this.reannouncing = false;
      }
    })();
  }

  stop(): void {
    this.stopped = true;
    for (const t of this.timers) clearTimeout(t);
    this.timers = [];
    for (const c of this.clients.values()) c.close();
    for (const m of this.managers) m.close();
    this.clients.clear();
  }
}

/**
 * Seed-peer registration: UpdateSeedPeer (retried with backoff while the manager or the
 * seed-peer cluster is missing), then a KeepAlive stream with one message per interval,
 * re-registering when the stream breaks.
 */
export class SeedPeerRegistrar {
  private readonly managers: ManagerClient[];
  private stopped = false;
  private stream: grpc.ClientWritableStream<object> | undefined;
  private timer: NodeJS.Timeout | undefined;
  registered = false;

  constructor(
    private readonly config: DfdaemonConfig,
    private readonly host: HostIdentity,
    private readonly logger: Logger,
    security?: TransportSecurity,
  ) {
    this.managers = managerClients(config, security);
  }

  start(): void {
    if (this.managers.length === 0) {
      this.logger.warn('seed peer enabled but scheduler.manager.netAddrs is empty: not registering with a manager');
      return;
    }
    void this.loop();
  }

  private request() {
    const sp = this.config.scheduler.manager.seedPeer;
    return {
      sourceType: 'SEED_PEER_SOURCE' as const,
      hostname: this.host.hostname,
      type: sp.type,
      idc: this.host.idc,
      location: this.host.location,
      ip: this.host.ip,
      port: this.host.grpcPort,
      downloadPort: this.host.uploadPort,
      seedPeerClusterId: sp.clusterID,
    };
  }

  private async loop(): Promise<void> {
    let backoff = 500;
    let i = 0;
    while (!this.stopped) {
      const m = this.managers[i++ % this.managers.length];
      try {
        await unary<object, SeedPeer__Output>(m.UpdateSeedPeer.bind(m), this.request());
        this.registered = true;
        this.logger.info({ seedPeerClusterId: this.config.scheduler.manager.seedPeer.clusterID }, 'seed peer registered with manager');
        backoff = 500;
        await this.keepAlive(m);
      } catch (err) {
        this.logger.warn({ err: (err as Error).message, retryInMs: backoff }, 'seed peer registration failed; retrying');
      }
      this.registered = false;
      if (this.stopped) return;
      await new Promise((r) => setTimeout(r, backoff).unref());
      backoff = Math.min(backoff * 2, 30_000);
    }
  }

  /** Resolves when the KeepAlive stream ends (error, or stop()). */
  private keepAlive(m: ManagerClient): Promise<void> {
    return new Promise((resolve) => {
      const stream = m.KeepAlive((err) => {
        if (err && !this.stopped) this.logger.warn({ err: err.message }, 'seed peer KeepAlive stream ended');
        if (this.timer) clearInterval(this.timer);
        resolve();
      });
      this.stream = stream;
      const msg = {
        sourceType: 'SEED_PEER_SOURCE' as const,
        hostname: this.host.hostname,
        clusterId: this.config.scheduler.manager.seedPeer.clusterID,
        ip: this.host.ip,
      };
      stream.write(msg);
      this.timer = setInterval(() => stream.write(msg), Math.max(100, this.config.scheduler.manager.seedPeer.keepAlive.interval));
      this.timer.unref();
    });
  }

  stop(): void {
    this.stopped = true;
    if (this.timer) clearInterval(this.timer);
    this.stream?.end();
    for (const m of this.managers) m.close();
  }
}
