/**
 * Scheduler and seed-peer registration, keep-alive state, and the ListSchedulers answer
 * (searcher + cache). Transport-free: the gRPC handlers are thin wrappers around this.
 */
import type { Logger } from 'pino';
import { NotFoundError } from '../common/errors';
import type { SchedulerListCache } from './cache';
import { searchSchedulerClusters } from './searcher';
import type { ActiveState, ManagerStore, SchedulerCluster, SchedulerKey, SchedulerRecord, SeedPeerCluster, SeedPeerKey, SeedPeerRecord } from './store/types';

export const DEFAULT_SCHEDULER_FEATURES = ['schedule', 'preheat'];
export const SCHEDULE_FEATURE = 'schedule';

export type SourceKind = 'SCHEDULER_SOURCE' | 'PEER_SOURCE' | 'SEED_PEER_SOURCE';

export interface ListSchedulersQuery {
  sourceType: SourceKind;
  hostname: string;
  ip: string;
  idc?: string;
  location?: string;
  schedulerClusterId?: number;
  seedPeerClusterId?: number;
}

/** One cluster of a ListSchedulers answer with its usable schedulers; clusters come best first. */
export interface ListedCluster {
  cluster: SchedulerCluster;
  schedulers: SchedulerRecord[];
}

export interface SchedulerDetail {
  scheduler: SchedulerRecord;
  cluster: SchedulerCluster;
  seedPeers: Array<SeedPeerRecord & { cluster: SeedPeerCluster | undefined }>;
}

export interface RegistryMetrics {
  searched(found: boolean, peer?: { hostname: string; ip: string }): void;
}

export class Registry {
  constructor(
    private readonly store: ManagerStore,
    private readonly cache: SchedulerListCache,
    private readonly logger: Logger,
    private readonly metrics: RegistryMetrics = { searched: () => undefined },
  ) {}

  /** Drops cached answers after any change to schedulers, seed peers or clusters. */
  invalidate(): Promise<void> {
    return this.cache.invalidate();
  }

  async updateScheduler(input: SchedulerKey & { port: number; idc: string; location: string; features: string[]; config: Record<string, unknown> }): Promise<SchedulerDetail> {
    const cluster = await this.store.getSchedulerCluster(input.schedulerClusterId);
    if (!cluster) throw new NotFoundError(`scheduler cluster ${input.schedulerClusterId} not found`);
    const features = input.features.length ? input.features : DEFAULT_SCHEDULER_FEATURES;
    await this.store.upsertScheduler({ ...input, features });
    await this.invalidate();
    return this.getScheduler(input);
  }

  async getScheduler(key: SchedulerKey): Promise<SchedulerDetail> {
    const cluster = await this.store.getSchedulerCluster(key.schedulerClusterId);
    if (!cluster) throw new NotFoundError(`scheduler cluster ${key.schedulerClusterId} not found`);
    const scheduler = await this.store.findScheduler(key);
    if (!scheduler) throw new NotFoundError(`scheduler ${key.hostname} (${key.ip}) is not registered in cluster ${key.schedulerClusterId}`);
    return { scheduler, cluster, seedPeers: await this.activeSeedPeersFor(cluster.id) };
  }

  /** Active seed peers of the seed-peer clusters linked to a scheduler cluster. */
  async activeSeedPeersFor(schedulerClusterId: number): Promise<SchedulerDetail['seedPeers']> {
    const out: SchedulerDetail['seedPeers'] = [];
    for (const spcId of await this.store.seedPeerClusterIdsOf(schedulerClusterId)) {
      const cluster = await this.store.getSeedPeerCluster(spcId);
      const peers = await this.store.listSeedPeers({ seedPeerClusterId: spcId, state: 'active' });
      for (const p of peers.items) out.push({ ...p, cluster });
    }
    return out;
  }

  async updateSeedPeer(input: SeedPeerKey & { type: string; port: number; downloadPort: number; idc: string; location: string }): Promise<SeedPeerRecord & { cluster: SeedPeerCluster }> {
    const cluster = await this.store.getSeedPeerCluster(input.seedPeerClusterId);
    if (!cluster) throw new NotFoundError(`seed peer cluster ${input.seedPeerClusterId} not found`);
    const record = await this.store.upsertSeedPeer({ ...input, type: input.type || 'super' });
    await this.invalidate();
    return { ...record, cluster };
  }

  async getSeedPeer(key: SeedPeerKey): Promise<SeedPeerRecord & { cluster: SeedPeerCluster | undefined }> {
    const record = await this.store.findSeedPeer(key);
    if (!record) throw new NotFoundError(`seed peer ${key.hostname} (${key.ip}) is not registered in seed peer cluster ${key.seedPeerClusterId}`);
    return { ...record, cluster: await this.store.getSeedPeerCluster(record.seedPeerClusterId) };
  }

  async deleteSeedPeer(key: SeedPeerKey): Promise<void> {
    const record = await this.store.findSeedPeer(key);
    if (!record) throw new NotFoundError(`seed peer ${key.hostname} (${key.ip}) is not registered in seed peer cluster ${key.seedPeerClusterId}`);
    await this.store.deleteSeedPeer(record.id);
    await this.invalidate();
  }

  async deleteSchedulerById(id: number): Promise<void> {
    await this.store.deleteScheduler(id);
    await this.invalidate();
  }

  async deleteSeedPeerById(id: number): Promise<void> {
    await this.store.deleteSeedPeer(id);
    await this.invalidate();
  }

  /** A keep-alive message (or the stream's end): sets the state; invalidates when it changed. */
  async keepAlive(source: SourceKind, hostname: string, ip: string, clusterId: number, state: ActiveState): Promise<void> {
    const now = Date.now();
    const changed =
      source === 'SEED_PEER_SOURCE'
        ? await this.store.markSeedPeer({ hostname, ip, seedPeerClusterId: clusterId }, state, now)
        : await this.store.markScheduler({ hostname, ip, schedulerClusterId: clusterId }, state, now);
    if (changed) {
      this.logger.info({ source, hostname, ip, clusterId, state }, 'keep-alive state changed');
      await this.invalidate();
    }
  }

  /** Marks schedulers and seed peers without a keep-alive for `timeoutMs` inactive. */
  async sweep(timeoutMs: number): Promise<number> {
    const before = Date.now() - timeoutMs;
    const n = (await this.store.expireSchedulers(before)) + (await this.store.expireSeedPeers(before));
    if (n > 0) {
      this.logger.info({ count: n }, 'marked silent schedulers/seed peers inactive');
      await this.invalidate();
    }
    return n;
  }

  async listSchedulers(query: ListSchedulersQuery): Promise<ListedCluster[]> {
    const key = JSON.stringify([query.sourceType, query.hostname, query.ip, query.idc ?? '', query.location ?? '', query.schedulerClusterId ?? 0, query.seedPeerClusterId ?? 0]);
    const cached = await this.cache.get<ListedCluster[]>(key);
    if (cached) return cached;
    const answer = await this.computeListSchedulers(query);
    await this.cache.set(key, answer);
    return answer;
  }

  private async computeListSchedulers(query: ListSchedulersQuery): Promise<ListedCluster[]> {
    if (query.schedulerClusterId) {
      const cluster = await this.store.getSchedulerCluster(query.schedulerClusterId);
      if (!cluster) return [];
      const schedulers = (await this.store.listSchedulers({ schedulerClusterId: cluster.id, state: 'active' })).items;
      return schedulers.length ? [{ cluster, schedulers }] : [];
    }
    let candidates = await this.eligibleClusters();
    if (query.sourceType === 'SEED_PEER_SOURCE' && query.seedPeerClusterId) {
      const linked = new Set(await this.store.schedulerClusterIdsOf(query.seedPeerClusterId));
      candidates = candidates.filter((c) => linked.has(c.cluster.id));
    }
    const ranked = searchSchedulerClusters(
      candidates.map((c) => ({ id: c.cluster.id, scopes: c.cluster.scopes, isDefault: c.cluster.isDefault, listed: c })),
      { hostname: query.hostname, ip: query.ip, idc: query.idc, location: query.location },
    );
    this.metrics.searched(ranked.length > 0, { hostname: query.hostname, ip: query.ip });
    return ranked.map((r) => r.cluster.listed);
  }

  /** Clusters with at least one active scheduler that has the `schedule` feature, with those schedulers. */
  private async eligibleClusters(): Promise<ListedCluster[]> {
    const clusters = (await this.store.listSchedulerClusters({})).items;
    const active = (await this.store.listSchedulers({ state: 'active' })).items.filter((s) => s.features.includes(SCHEDULE_FEATURE));
    const byCluster = new Map<number, SchedulerRecord[]>();
    for (const s of active) {
      const list = byCluster.get(s.schedulerClusterId) ?? [];
      list.push(s);
      byCluster.set(s.schedulerClusterId, list);
    }
    return clusters.filter((c) => byCluster.has(c.id)).map((cluster) => ({ cluster, schedulers: byCluster.get(cluster.id)! }));
  }
}
