/**
 * Cluster records as the REST API and `apply-cluster` see them: a scheduler cluster plus
 * the seed-peer cluster created with it, shaped like the shared cluster spec.
 */
import { z } from 'zod';
import { clusterScopesSchema, clusterSpecSchema, type ClusterSpec } from '../common/config/cluster-spec';
import { InvalidArgumentError, NotFoundError } from '../common/errors';
import type { ClusterRecord, JsonObject, ManagerStore, Page, PageResult, SchedulerCluster, SeedPeerCluster } from './store/types';
import { parseInput } from './validation';

export interface ClusterView {
  id: number;
  name: string;
  bio: string;
  scopes: ClusterSpec['scopes'];
  is_default: boolean;
  scheduler_cluster_id: number;
  seed_peer_cluster_id: number;
  scheduler_cluster_config: JsonObject;
  seed_peer_cluster_config: JsonObject;
  peer_cluster_config: JsonObject;
  created_at: string;
  updated_at: string;
}

export function clusterView(record: ClusterRecord): ClusterView {
  const sc = record.schedulerCluster;
  const spc = record.seedPeerCluster;
  return {
    id: sc.id,
    name: sc.name,
    bio: sc.bio,
    scopes: sc.scopes,
    is_default: sc.isDefault,
    scheduler_cluster_id: sc.id,
    seed_peer_cluster_id: spc?.id ?? 0,
    scheduler_cluster_config: sc.config,
    seed_peer_cluster_config: spc?.config ?? {},
    peer_cluster_config: sc.clientConfig,
    created_at: new Date(sc.createdAt).toISOString(),
    updated_at: new Date(Math.max(sc.updatedAt, spc?.updatedAt ?? 0)).toISOString(),
  };
}

/** The spec fields of a cluster view (what `apply-cluster` compares with its file). */
export function specOfView(view: ClusterView): Omit<ClusterSpec, 'id'> {
  return {
    name: view.name,
    bio: view.bio,
    scopes: view.scopes,
    is_default: view.is_default,
    scheduler_cluster_config: view.scheduler_cluster_config as ClusterSpec['scheduler_cluster_config'],
    seed_peer_cluster_config: view.seed_peer_cluster_config as ClusterSpec['seed_peer_cluster_config'],
    peer_cluster_config: view.peer_cluster_config as ClusterSpec['peer_cluster_config'],
  };
}

function halvesOf(spec: ClusterSpec) {
  return {
    schedulerCluster: {
      name: spec.name,
      bio: spec.bio,
      config: spec.scheduler_cluster_config,
      clientConfig: spec.peer_cluster_config,
      scopes: spec.scopes,
      isDefault: spec.is_default,
    },
    seedPeerCluster: { name: spec.name, bio: spec.bio, config: spec.seed_peer_cluster_config },
  };
}

const isPlainObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

export class ClusterService {
  constructor(
    private readonly store: ManagerStore,
    private readonly onChange: () => Promise<void>,
  ) {}

  async create(body: unknown): Promise<ClusterView> {
    const spec = parseInput(clusterSpecSchema, body);
    const { schedulerCluster, seedPeerCluster } = halvesOf(spec);
    const record = await this.store.createCluster(schedulerCluster, seedPeerCluster, spec.id);
    await this.onChange();
    return clusterView(record);
  }

  async get(id: number): Promise<ClusterView> {
    const record = await this.store.getCluster(id);
    if (!record) throw new NotFoundError(`cluster ${id} not found`);
    return clusterView(record);
  }

  async list(filter: { name?: string }, page: Page): Promise<PageResult<ClusterView>> {
    const result = await this.store.listClusters(filter, page);
    return { items: result.items.map(clusterView), total: result.total };
  }

  /** PATCH: given top-level fields replace the current ones; nested objects merge key by key. */
  async update(id: number, body: unknown): Promise<ClusterView> {
    const current = await this.get(id);
    if (!isPlainObject(body)) throw new InvalidArgumentError('request body must be a JSON object');
    if (body.id !== undefined && body.id !== id) throw new InvalidArgumentError(`id cannot change (cluster ${id}, body says ${JSON.stringify(body.id)})`);
    const base: Record<string, unknown> = { ...specOfView(current) };
    const merged: Record<string, unknown> = { ...base };
    for (const [key, value] of Object.entries(body)) {
      if (key === 'id') continue;
      merged[key] = isPlainObject(value) && isPlainObject(base[key]) ? { ...base[key], ...value } : value;
    }
    const spec = parseInput(clusterSpecSchema, merged);
    const { schedulerCluster, seedPeerCluster } = halvesOf(spec);
    const record = await this.store.updateCluster(id, schedulerCluster, seedPeerCluster);
    await this.onChange();
    return clusterView(record);
  }

  async delete(id: number): Promise<void> {
    await this.store.deleteCluster(id);
    await this.onChange();
  }
}

// ---- scheduler clusters and seed-peer clusters on their own ---------------------------

const specShape = clusterSpecSchema.shape;

export const schedulerClusterBodySchema = z.strictObject({
  name: specShape.name,
  bio: specShape.bio,
  config: specShape.scheduler_cluster_config,
  client_config: specShape.peer_cluster_config,
  scopes: clusterScopesSchema.prefault({}),
  is_default: z.boolean().default(false),
  /** Links the new scheduler cluster to this seed-peer cluster. */
  seed_peer_cluster_id: z.number().int().min(1).optional(),
});

export const seedPeerClusterBodySchema = z.strictObject({
  name: specShape.name,
  bio: specShape.bio,
  config: specShape.seed_peer_cluster_config,
  /** Links the new seed-peer cluster to this scheduler cluster. */
  scheduler_cluster_id: z.number().int().min(1).optional(),
});

export function schedulerClusterView(sc: SchedulerCluster) {
  return {
    id: sc.id,
    name: sc.name,
    bio: sc.bio,
    config: sc.config,
    client_config: sc.clientConfig,
    scopes: sc.scopes,
    is_default: sc.isDefault,
    created_at: new Date(sc.createdAt).toISOString(),
    updated_at: new Date(sc.updatedAt).toISOString(),
  };
}

export function seedPeerClusterView(spc: SeedPeerCluster) {
  return { id: spc.id, name: spc.name, bio: spc.bio, config: spc.config, created_at: new Date(spc.createdAt).toISOString(), updated_at: new Date(spc.updatedAt).toISOString() };
}

function withoutKeys(obj: object, keys: readonly string[]): Record<string, unknown> {
  return Object.fromEntries(Object.entries(obj).filter(([k]) => !keys.includes(k)));
}

function mergeBody(current: Record<string, unknown>, body: unknown): Record<string, unknown> {
  if (!isPlainObject(body)) throw new InvalidArgumentError('request body must be a JSON object');
  const merged = { ...current };
  for (const [key, value] of Object.entries(body)) merged[key] = isPlainObject(value) && isPlainObject(current[key]) ? { ...current[key], ...value } : value;
  return merged;
}

export class SchedulerClusterService {
  constructor(
    private readonly store: ManagerStore,
    private readonly onChange: () => Promise<void>,
  ) {}

  async create(body: unknown) {
    const b = parseInput(schedulerClusterBodySchema, body);
    if (b.seed_peer_cluster_id !== undefined && !(await this.store.getSeedPeerCluster(b.seed_peer_cluster_id))) {
      throw new NotFoundError(`seed peer cluster ${b.seed_peer_cluster_id} not found`);
    }
    const sc = await this.store.createSchedulerCluster({ name: b.name, bio: b.bio, config: b.config, clientConfig: b.client_config, scopes: b.scopes, isDefault: b.is_default });
    if (b.seed_peer_cluster_id !== undefined) await this.store.linkClusters(b.seed_peer_cluster_id, sc.id);
    await this.onChange();
    return schedulerClusterView(sc);
  }

  async get(id: number) {
    const sc = await this.store.getSchedulerCluster(id);
    if (!sc) throw new NotFoundError(`scheduler cluster ${id} not found`);
    return schedulerClusterView(sc);
  }

  async list(filter: { name?: string }, page: Page) {
    const r = await this.store.listSchedulerClusters(filter, page);
    return { items: r.items.map(schedulerClusterView), total: r.total };
  }

  async update(id: number, body: unknown) {
    const current = await this.get(id);
    const editable = withoutKeys(current, ['id', 'created_at', 'updated_at']);
    const b = parseInput(schedulerClusterBodySchema, mergeBody(editable, body));
    const sc = await this.store.updateSchedulerCluster(id, { name: b.name, bio: b.bio, config: b.config, clientConfig: b.client_config, scopes: b.scopes, isDefault: b.is_default });
    if (b.seed_peer_cluster_id !== undefined) await this.store.linkClusters(b.seed_peer_cluster_id, id);
    await this.onChange();
    return schedulerClusterView(sc);
  }

  async delete(id: number): Promise<void> {
    await this.store.deleteSchedulerCluster(id);
    await this.onChange();
  }
}

export class SeedPeerClusterService {
  constructor(
    private readonly store: ManagerStore,
    private readonly onChange: () => Promise<void>,
  ) {}

  async create(body: unknown) {
    const b = parseInput(seedPeerClusterBodySchema, body);
    if (b.scheduler_cluster_id !== undefined && !(await this.store.getSchedulerCluster(b.scheduler_cluster_id))) {
      throw new NotFoundError(`scheduler cluster ${b.scheduler_cluster_id} not found`);
    }
    const spc = await this.store.createSeedPeerCluster({ name: b.name, bio: b.bio, config: b.config });
    if (b.scheduler_cluster_id !== undefined) await this.store.linkClusters(spc.id, b.scheduler_cluster_id);
    await this.onChange();
    return seedPeerClusterView(spc);
  }

  async get(id: number) {
    const spc = await this.store.getSeedPeerCluster(id);
    if (!spc) throw new NotFoundError(`seed peer cluster ${id} not found`);
    return seedPeerClusterView(spc);
  }

  async list(filter: { name?: string }, page: Page) {
    const r = await this.store.listSeedPeerClusters(filter, page);
    return { items: r.items.map(seedPeerClusterView), total: r.total };
  }

  async update(id: number, body: unknown) {
    const current = await this.get(id);
    const editable = withoutKeys(current, ['id', 'created_at', 'updated_at']);
    const b = parseInput(seedPeerClusterBodySchema, mergeBody(editable, body));
    const spc = await this.store.updateSeedPeerCluster(id, { name: b.name, bio: b.bio, config: b.config });
    if (b.scheduler_cluster_id !== undefined) await this.store.linkClusters(id, b.scheduler_cluster_id);
    await this.onChange();
    return seedPeerClusterView(spc);
  }

  async link(id: number, schedulerClusterId: number): Promise<void> {
    await this.store.linkClusters(id, schedulerClusterId);
    await this.onChange();
  }

  async delete(id: number): Promise<void> {
    await this.store.deleteSeedPeerCluster(id);
    await this.onChange();
  }
}
