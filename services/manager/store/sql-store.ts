/** `ManagerStore` over a `SqlDriver`: the same statements serve SQLite and MySQL/MariaDB. */
import { ConflictError, NotFoundError } from '../../common/errors';
import { clusterScopesSchema } from '../../common/config/cluster-spec';
import type { Row, SqlDriver, SqlExecutor, SqlValue } from './driver';
import type {
  ActiveState,
  ClusterRecord,
  JobClusterRecord,
  JobFilter,
  JobInput,
  JobRecord,
  JobState,
  JsonObject,
  ManagerStore,
  Page,
  PageResult,
  PeerInput,
  PeerRecord,
  PersonalAccessTokenRecord,
  SchedulerCluster,
  SchedulerClusterInput,
  SchedulerFilter,
  SchedulerKey,
  SchedulerRecord,
  SchedulerUpsert,
  SeedPeerCluster,
  SeedPeerClusterInput,
  SeedPeerFilter,
  SeedPeerKey,
  SeedPeerRecord,
  SeedPeerUpsert,
  UserRecord,
} from './types';

const ALL: Page = { page: 1, perPage: Number.MAX_SAFE_INTEGER };

function json<T>(text: unknown, fallback: T): T {
  if (typeof text !== 'string' || text === '') return fallback;
  try {
    return JSON.parse(text) as T;
  } catch {
    return fallback;
  }
}

const num = (v: unknown): number => Number(v ?? 0);
const str = (v: unknown): string => (typeof v === 'string' ? v : typeof v === 'number' || typeof v === 'bigint' ? v.toString() : Buffer.isBuffer(v) ? v.toString('utf8') : '');

function toSchedulerCluster(r: Row): SchedulerCluster {
  return {
    id: num(r.id),
    name: str(r.name),
    bio: str(r.bio),
    config: json<JsonObject>(r.config, {}),
    clientConfig: json<JsonObject>(r.client_config, {}),
    scopes: clusterScopesSchema.parse(json<JsonObject>(r.scopes, {})),
    isDefault: num(r.is_default) === 1,
    createdAt: num(r.created_at),
    updatedAt: num(r.updated_at),
  };
}

function toSeedPeerCluster(r: Row): SeedPeerCluster {
  return { id: num(r.id), name: str(r.name), bio: str(r.bio), config: json<JsonObject>(r.config, {}), createdAt: num(r.created_at), updatedAt: num(r.updated_at) };
}

function toScheduler(r: Row): SchedulerRecord {
  return {
    id: num(r.id),
    hostname: str(r.hostname),
    ip: str(r.ip),
    port: num(r.port),
    idc: str(r.idc),
    location: str(r.location),
    state: str(r.state) as ActiveState,
    features: json<string[]>(r.features, []),
    config: json<JsonObject>(r.config, {}),
    schedulerClusterId: num(r.scheduler_cluster_id),
    lastKeepAliveAt: num(r.last_keep_alive_at),
    createdAt: num(r.created_at),
    updatedAt: num(r.updated_at),
  };
}

function toSeedPeer(r: Row): SeedPeerRecord {
  return {
    id: num(r.id),
    hostname: str(r.hostname),
    type: str(r.type),
    ip: str(r.ip),
    port: num(r.port),
    downloadPort: num(r.download_port),
    idc: str(r.idc),
    location: str(r.location),
    state: str(r.state) as ActiveState,
    seedPeerClusterId: num(r.seed_peer_cluster_id),
    lastKeepAliveAt: num(r.last_keep_alive_at),
    createdAt: num(r.created_at),
    updatedAt: num(r.updated_at),
  };
}

function toUser(r: Row): UserRecord {
  return { id: num(r.id), name: str(r.name), email: str(r.email), passwordHash: str(r.encrypted_password), state: str(r.state) as UserRecord['state'], createdAt: num(r.created_at), updatedAt: num(r.updated_at) };
}

function toToken(r: Row): PersonalAccessTokenRecord {
  return {
    id: num(r.id),
    name: str(r.name),
    bio: str(r.bio),
    token: str(r.token),
    scopes: json<string[]>(r.scopes, []),
    state: str(r.state) as ActiveState,
    expiredAt: num(r.expired_at),
    userId: num(r.user_id),
    createdAt: num(r.created_at),
    updatedAt: num(r.updated_at),
  };
}

function toJob(r: Row, clusters: JobClusterRecord[]): JobRecord {
  return {
    id: num(r.id),
    taskId: str(r.task_id),
    type: str(r.type),
    state: str(r.state) as JobState,
    args: json<JsonObject>(r.args, {}),
    result: json<JsonObject>(r.result, {}),
    userId: num(r.user_id),
    deadlineAt: num(r.deadline_at),
    clusters,
    createdAt: num(r.created_at),
    updatedAt: num(r.updated_at),
  };
}

function toJobCluster(r: Row): JobClusterRecord {
  return { schedulerClusterId: num(r.scheduler_cluster_id), state: str(r.state) as JobState, result: json<JsonObject>(r.result, {}), error: str(r.error), attempts: num(r.attempts), updatedAt: num(r.updated_at) };
}

/** A job is PENDING while any cluster is; then FAILURE if any cluster failed, else SUCCESS. */
function jobStateOf(clusters: readonly { state: JobState }[]): JobState {
  if (clusters.some((c) => c.state === 'PENDING')) return 'PENDING';
  return clusters.some((c) => c.state === 'FAILURE') ? 'FAILURE' : 'SUCCESS';
}

function toPeer(r: Row): PeerRecord {
  return {
    id: num(r.id),
    hostId: str(r.host_id),
    hostname: str(r.hostname),
    type: str(r.type),
    ip: str(r.ip),
    port: num(r.port),
    downloadPort: num(r.download_port),
    idc: str(r.idc),
    location: str(r.location),
    schedulerClusterId: num(r.scheduler_cluster_id),
    createdAt: num(r.created_at),
    updatedAt: num(r.updated_at),
  };
}

/** WHERE clause from column=value pairs that are defined. */
function where(conds: Record<string, SqlValue | undefined>): { sql: string; params: SqlValue[] } {
  const parts: string[] = [];
  const params: SqlValue[] = [];
  for (const [col, value] of Object.entries(conds)) {
    if (value === undefined) continue;
    parts.push(`${col} = ?`);
    params.push(value);
  }
  return { sql: parts.length ? ` WHERE ${parts.join(' AND ')}` : '', params };
}

function limit(page: Page): string {
  const perPage = Math.max(1, Math.floor(page.perPage));
  const offset = Math.max(0, (Math.max(1, Math.floor(page.page)) - 1) * perPage);
  return perPage >= Number.MAX_SAFE_INTEGER ? '' : ` LIMIT ${perPage} OFFSET ${offset}`;
}

export class SqlManagerStore implements ManagerStore {
  readonly kind: string;
  constructor(private readonly db: SqlDriver) {
    this.kind = db.dialect;
  }

  close(): Promise<void> {
    return this.db.close();
  }

  private async paged<T>(table: string, conds: Record<string, SqlValue | undefined>, page: Page, map: (r: Row) => T, db: SqlExecutor = this.db): Promise<PageResult<T>> {
    const w = where(conds);
    const rows = await db.all(`SELECT * FROM ${table}${w.sql} ORDER BY id${limit(page)}`, w.params);
    if (page === ALL) return { items: rows.map(map), total: rows.length };
    const [count] = await db.all(`SELECT COUNT(*) AS n FROM ${table}${w.sql}`, w.params);
    return { items: rows.map(map), total: num(count.n) };
  }

  private async one<T>(db: SqlExecutor, sql: string, params: SqlValue[], map: (r: Row) => T): Promise<T | undefined> {
    const rows = await db.all(sql, params);
    return rows.length ? map(rows[0]) : undefined;
  }

  // ---- clusters -------------------------------------------------------------------

  private async insertSchedulerCluster(db: SqlExecutor, input: SchedulerClusterInput, now = Date.now()): Promise<SchedulerCluster> {
    const cols = ['name', 'bio', 'config', 'client_config', 'scopes', 'is_default', 'created_at', 'updated_at'];
    const values: SqlValue[] = [input.name, input.bio, JSON.stringify(input.config), JSON.stringify(input.clientConfig), JSON.stringify(input.scopes), input.isDefault ? 1 : 0, now, now];
    if (input.id !== undefined) {
      cols.unshift('id');
      values.unshift(input.id);
    }
    const r = await db.run(`INSERT INTO scheduler_cluster (${cols.join(', ')}) VALUES (${cols.map(() => '?').join(', ')})`, values);
    return (await this.one(db, 'SELECT * FROM scheduler_cluster WHERE id = ?', [input.id ?? r.insertId], toSchedulerCluster))!;
  }

  private async insertSeedPeerCluster(db: SqlExecutor, input: SeedPeerClusterInput, now = Date.now()): Promise<SeedPeerCluster> {
    const cols = ['name', 'bio', 'config', 'created_at', 'updated_at'];
    const values: SqlValue[] = [input.name, input.bio, JSON.stringify(input.config), now, now];
    if (input.id !== undefined) {
      cols.unshift('id');
      values.unshift(input.id);
    }
    const r = await db.run(`INSERT INTO seed_peer_cluster (${cols.join(', ')}) VALUES (${cols.map(() => '?').join(', ')})`, values);
    return (await this.one(db, 'SELECT * FROM seed_peer_cluster WHERE id = ?', [input.id ?? r.insertId], toSeedPeerCluster))!;
  }

  private async patchSchedulerCluster(db: SqlExecutor, id: number, patch: Partial<SchedulerClusterInput>): Promise<SchedulerCluster> {
    const sets: Record<string, SqlValue | undefined> = {
      name: patch.name,
      bio: patch.bio,
      config: patch.config && JSON.stringify(patch.config),
      client_config: patch.clientConfig && JSON.stringify(patch.clientConfig),
      scopes: patch.scopes && JSON.stringify(patch.scopes),
      is_default: patch.isDefault === undefined ? undefined : patch.isDefault ? 1 : 0,
    };
    await this.patchRow(db, 'scheduler_cluster', id, sets);
    const found = await this.one(db, 'SELECT * FROM scheduler_cluster WHERE id = ?', [id], toSchedulerCluster);
    if (!found) throw new NotFoundError(`scheduler cluster ${id} not found`);
    return found;
  }

  private async patchSeedPeerCluster(db: SqlExecutor, id: number, patch: Partial<SeedPeerClusterInput>): Promise<SeedPeerCluster> {
    await this.patchRow(db, 'seed_peer_cluster', id, { name: patch.name, bio: patch.bio, config: patch.config && JSON.stringify(patch.config) });
    const found = await this.one(db, 'SELECT * FROM seed_peer_cluster WHERE id = ?', [id], toSeedPeerCluster);
    if (!found) throw new NotFoundError(`seed peer cluster ${id} not found`);
    return found;
  }

  private async patchRow(db: SqlExecutor, table: string, id: number, sets: Record<string, SqlValue | undefined>): Promise<void> {
    const cols = Object.entries(sets).filter(([, v]) => v !== undefined);
    const sql = `UPDATE ${table} SET ${[...cols.map(([c]) => `${c} = ?`), 'updated_at = ?'].join(', ')} WHERE id = ?`;
    await db.run(sql, [...cols.map(([, v]) => v as SqlValue), Date.now(), id]);
  }

  private async clusterOf(db: SqlExecutor, schedulerCluster: SchedulerCluster): Promise<ClusterRecord> {
    // The seed-peer cluster created with it: same id first, else the first linked one.
    const seedPeerCluster = await this.one(
      db,
      `SELECT s.* FROM seed_peer_cluster s JOIN seed_peer_cluster_scheduler_cluster l ON l.seed_peer_cluster_id = s.id
       WHERE l.scheduler_cluster_id = ? ORDER BY CASE WHEN s.id = ? THEN 0 ELSE 1 END, s.id LIMIT 1`,
      [schedulerCluster.id, schedulerCluster.id],
      toSeedPeerCluster,
    );
    return { schedulerCluster, seedPeerCluster };
  }

  async createCluster(sc: SchedulerClusterInput, spc: SeedPeerClusterInput, id?: number): Promise<ClusterRecord> {
    return this.db.transaction(async (tx) => {
      let clusterId = id;
      if (clusterId === undefined) {
        // Keep the two halves on one id, so "cluster N" means the same in every config.
        const [r] = await tx.all('SELECT MAX(id) AS max_id FROM (SELECT id FROM scheduler_cluster UNION ALL SELECT id FROM seed_peer_cluster) ids');
        clusterId = num(r.max_id) + 1;
      } else {
        const taken = await tx.all('SELECT id FROM scheduler_cluster WHERE id = ? UNION ALL SELECT id FROM seed_peer_cluster WHERE id = ?', [clusterId, clusterId]);
        if (taken.length) throw new ConflictError(`cluster id ${clusterId} is already used`);
      }
      const now = Date.now();
      const schedulerCluster = await this.insertSchedulerCluster(tx, { ...sc, id: clusterId }, now);
      const seedPeerCluster = await this.insertSeedPeerCluster(tx, { ...spc, id: clusterId }, now);
      await tx.run('INSERT INTO seed_peer_cluster_scheduler_cluster (seed_peer_cluster_id, scheduler_cluster_id) VALUES (?, ?)', [seedPeerCluster.id, schedulerCluster.id]);
      return { schedulerCluster, seedPeerCluster };
    });
  }

  async updateCluster(id: number, sc: Partial<SchedulerClusterInput>, spc: Partial<SeedPeerClusterInput>): Promise<ClusterRecord> {
    return this.db.transaction(async (tx) => {
      const current = await this.one(tx, 'SELECT * FROM scheduler_cluster WHERE id = ?', [id], toSchedulerCluster);
      if (!current) throw new NotFoundError(`cluster ${id} not found`);
      const schedulerCluster = await this.patchSchedulerCluster(tx, id, sc);
      const record = await this.clusterOf(tx, schedulerCluster);
      if (record.seedPeerCluster) record.seedPeerCluster = await this.patchSeedPeerCluster(tx, record.seedPeerCluster.id, spc);
      return record;
    });
  }

  async getCluster(id: number): Promise<ClusterRecord | undefined> {
    const sc = await this.getSchedulerCluster(id);
    return sc && this.clusterOf(this.db, sc);
  }

  async listClusters(filter: { name?: string }, page: Page): Promise<PageResult<ClusterRecord>> {
    const result = await this.listSchedulerClusters(filter, page);
    const items: ClusterRecord[] = [];
    for (const sc of result.items) items.push(await this.clusterOf(this.db, sc));
    return { items, total: result.total };
  }

  async deleteCluster(id: number): Promise<void> {
    await this.db.transaction(async (tx) => {
      const found = await tx.all('SELECT id FROM scheduler_cluster WHERE id = ?', [id]);
      if (!found.length) throw new NotFoundError(`cluster ${id} not found`);
      const linked = (await tx.all('SELECT seed_peer_cluster_id AS id FROM seed_peer_cluster_scheduler_cluster WHERE scheduler_cluster_id = ?', [id])).map((r) => num(r.id));
      await tx.run('DELETE FROM seed_peer_cluster_scheduler_cluster WHERE scheduler_cluster_id = ?', [id]);
      await tx.run('DELETE FROM scheduler WHERE scheduler_cluster_id = ?', [id]);
      await tx.run('DELETE FROM scheduler_cluster WHERE id = ?', [id]);
      for (const spcId of linked) {
        const others = await tx.all('SELECT 1 FROM seed_peer_cluster_scheduler_cluster WHERE seed_peer_cluster_id = ?', [spcId]);
        if (others.length) continue;
        await tx.run('DELETE FROM seed_peer WHERE seed_peer_cluster_id = ?', [spcId]);
        await tx.run('DELETE FROM seed_peer_cluster WHERE id = ?', [spcId]);
      }
    });
  }

  createSchedulerCluster(input: SchedulerClusterInput): Promise<SchedulerCluster> {
    return this.insertSchedulerCluster(this.db, input);
  }
  getSchedulerCluster(id: number): Promise<SchedulerCluster | undefined> {
    return this.one(this.db, 'SELECT * FROM scheduler_cluster WHERE id = ?', [id], toSchedulerCluster);
  }
  listSchedulerClusters(filter: { name?: string }, page: Page = ALL): Promise<PageResult<SchedulerCluster>> {
    return this.paged('scheduler_cluster', { name: filter.name }, page, toSchedulerCluster);
  }
  async updateSchedulerCluster(id: number, patch: Partial<SchedulerClusterInput>): Promise<SchedulerCluster> {
    return this.db.transaction((tx) => this.patchSchedulerCluster(tx, id, patch));
  }
  async deleteSchedulerCluster(id: number): Promise<void> {
    await this.db.transaction(async (tx) => {
      const schedulers = await tx.all('SELECT COUNT(*) AS n FROM scheduler WHERE scheduler_cluster_id = ?', [id]);
      if (num(schedulers[0].n) > 0) throw new ConflictError(`scheduler cluster ${id} still has schedulers; delete them first`);
      const r = await tx.run('DELETE FROM scheduler_cluster WHERE id = ?', [id]);
      if (!r.affectedRows) throw new NotFoundError(`scheduler cluster ${id} not found`);
      await tx.run('DELETE FROM seed_peer_cluster_scheduler_cluster WHERE scheduler_cluster_id = ?', [id]);
    });
  }

  createSeedPeerCluster(input: SeedPeerClusterInput): Promise<SeedPeerCluster> {
    return this.insertSeedPeerCluster(this.db, input);
  }
  getSeedPeerCluster(id: number): Promise<SeedPeerCluster | undefined> {
    return this.one(this.db, 'SELECT * FROM seed_peer_cluster WHERE id = ?', [id], toSeedPeerCluster);
  }
  listSeedPeerClusters(filter: { name?: string }, page: Page = ALL): Promise<PageResult<SeedPeerCluster>> {
    return this.paged('seed_peer_cluster', { name: filter.name }, page, toSeedPeerCluster);
  }
  async updateSeedPeerCluster(id: number, patch: Partial<SeedPeerClusterInput>): Promise<SeedPeerCluster> {
    return this.db.transaction((tx) => this.patchSeedPeerCluster(tx, id, patch));
  }
  async deleteSeedPeerCluster(id: number): Promise<void> {
    await this.db.transaction(async (tx) => {
      const peers = await tx.all('SELECT COUNT(*) AS n FROM seed_peer WHERE seed_peer_cluster_id = ?', [id]);
      if (num(peers[0].n) > 0) throw new ConflictError(`seed peer cluster ${id} still has seed peers; delete them first`);
      const r = await tx.run('DELETE FROM seed_peer_cluster WHERE id = ?', [id]);
      if (!r.affectedRows) throw new NotFoundError(`seed peer cluster ${id} not found`);
      await tx.run('DELETE FROM seed_peer_cluster_scheduler_cluster WHERE seed_peer_cluster_id = ?', [id]);
    });
  }

  async linkClusters(seedPeerClusterId: number, schedulerClusterId: number): Promise<void> {
    await this.db.transaction(async (tx) => {
      if (!(await tx.all('SELECT id FROM seed_peer_cluster WHERE id = ?', [seedPeerClusterId])).length) throw new NotFoundError(`seed peer cluster ${seedPeerClusterId} not found`);
      if (!(await tx.all('SELECT id FROM scheduler_cluster WHERE id = ?', [schedulerClusterId])).length) throw new NotFoundError(`scheduler cluster ${schedulerClusterId} not found`);
      const exists = await tx.all('SELECT 1 FROM seed_peer_cluster_scheduler_cluster WHERE seed_peer_cluster_id = ? AND scheduler_cluster_id = ?', [seedPeerClusterId, schedulerClusterId]);
      if (!exists.length) await tx.run('INSERT INTO seed_peer_cluster_scheduler_cluster (seed_peer_cluster_id, scheduler_cluster_id) VALUES (?, ?)', [seedPeerClusterId, schedulerClusterId]);
    });
  }
  async seedPeerClusterIdsOf(schedulerClusterId: number): Promise<number[]> {
    const rows = await this.db.all('SELECT seed_peer_cluster_id AS id FROM seed_peer_cluster_scheduler_cluster WHERE scheduler_cluster_id = ? ORDER BY seed_peer_cluster_id', [schedulerClusterId]);
    return rows.map((r) => num(r.id));
  }
  async schedulerClusterIdsOf(seedPeerClusterId: number): Promise<number[]> {
    const rows = await this.db.all('SELECT scheduler_cluster_id AS id FROM seed_peer_cluster_scheduler_cluster WHERE seed_peer_cluster_id = ? ORDER BY scheduler_cluster_id', [seedPeerClusterId]);
    return rows.map((r) => num(r.id));
  }

  // ---- schedulers and seed peers --------------------------------------------------

  async upsertScheduler(input: SchedulerUpsert): Promise<SchedulerRecord> {
    const key = [input.hostname, input.ip, input.schedulerClusterId];
    const fields = [input.port, input.idc, input.location, JSON.stringify(input.features), JSON.stringify(input.config)];
    const update = () =>
      this.db.run('UPDATE scheduler SET port = ?, idc = ?, location = ?, features = ?, config = ?, updated_at = ? WHERE hostname = ? AND ip = ? AND scheduler_cluster_id = ?', [...fields, Date.now(), ...key]);
    const r = await update();
    if (r.affectedRows === 0) {
      const now = Date.now();
      try {
        await this.db.run(
          `INSERT INTO scheduler (hostname, ip, scheduler_cluster_id, port, idc, location, features, config, state, last_keep_alive_at, created_at, updated_at)
           VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'inactive', 0, ?, ?)`,
          [...key, ...fields, now, now],
        );
      } catch (err) {
        if (!(err instanceof ConflictError)) throw err;
        await update(); // a concurrent registration inserted it first
      }
    }
    return (await this.findScheduler(input))!;
  }
  findScheduler(key: SchedulerKey): Promise<SchedulerRecord | undefined> {
    return this.one(this.db, 'SELECT * FROM scheduler WHERE hostname = ? AND ip = ? AND scheduler_cluster_id = ?', [key.hostname, key.ip, key.schedulerClusterId], toScheduler);
  }
  getScheduler(id: number): Promise<SchedulerRecord | undefined> {
    return this.one(this.db, 'SELECT * FROM scheduler WHERE id = ?', [id], toScheduler);
  }
  listSchedulers(filter: SchedulerFilter, page: Page = ALL): Promise<PageResult<SchedulerRecord>> {
    return this.paged('scheduler', { scheduler_cluster_id: filter.schedulerClusterId, state: filter.state, hostname: filter.hostname, ip: filter.ip }, page, toScheduler);
  }
  async deleteScheduler(id: number): Promise<void> {
    const r = await this.db.run('DELETE FROM scheduler WHERE id = ?', [id]);
    if (!r.affectedRows) throw new NotFoundError(`scheduler ${id} not found`);
  }
  private async mark(table: 'scheduler' | 'seed_peer', clusterCol: string, key: [string, string, number], state: ActiveState, now: number, label: string): Promise<boolean> {
    const changed = await this.db.run(`UPDATE ${table} SET state = ?, last_keep_alive_at = ?, updated_at = ? WHERE hostname = ? AND ip = ? AND ${clusterCol} = ? AND state <> ?`, [state, now, now, ...key, state]);
    if (changed.affectedRows > 0) return true;
    const touched = await this.db.run(`UPDATE ${table} SET last_keep_alive_at = ? WHERE hostname = ? AND ip = ? AND ${clusterCol} = ?`, [now, ...key]);
    if (touched.affectedRows === 0) throw new NotFoundError(`${label} ${key[0]} (${key[1]}) in cluster ${key[2]} is not registered`);
    return false;
  }
  markScheduler(key: SchedulerKey, state: ActiveState, now: number): Promise<boolean> {
    return this.mark('scheduler', 'scheduler_cluster_id', [key.hostname, key.ip, key.schedulerClusterId], state, now, 'scheduler');
  }
  async expireSchedulers(before: number): Promise<number> {
    const r = await this.db.run("UPDATE scheduler SET state = 'inactive', updated_at = ? WHERE state = 'active' AND last_keep_alive_at < ?", [Date.now(), before]);
    return r.affectedRows;
  }
  async countActiveSchedulers(): Promise<number> {
    const [r] = await this.db.all("SELECT COUNT(*) AS n FROM scheduler WHERE state = 'active'");
    return num(r.n);
  }

  async upsertSeedPeer(input: SeedPeerUpsert): Promise<SeedPeerRecord> {
    const key = [input.hostname, input.ip, input.seedPeerClusterId];
    const fields = [input.type, input.port, input.downloadPort, input.idc, input.location];
    const update = () =>
      this.db.run('UPDATE seed_peer SET type = ?, port = ?, download_port = ?, idc = ?, location = ?, updated_at = ? WHERE hostname = ? AND ip = ? AND seed_peer_cluster_id = ?', [...fields, Date.now(), ...key]);
    const r = await update();
    if (r.affectedRows === 0) {
      const now = Date.now();
      try {
        await this.db.run(
          `INSERT INTO seed_peer (hostname, ip, seed_peer_cluster_id, type, port, download_port, idc, location, state, last_keep_alive_at, created_at, updated_at)
           VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'inactive', 0, ?, ?)`,
          [...key, ...fields, now, now],
        );
      } catch (err) {
        if (!(err instanceof ConflictError)) throw err;
        await update();
      }
    }
    return (await this.findSeedPeer(input))!;
  }
  findSeedPeer(key: SeedPeerKey): Promise<SeedPeerRecord | undefined> {
    return this.one(this.db, 'SELECT * FROM seed_peer WHERE hostname = ? AND ip = ? AND seed_peer_cluster_id = ?', [key.hostname, key.ip, key.seedPeerClusterId], toSeedPeer);
  }
  getSeedPeer(id: number): Promise<SeedPeerRecord | undefined> {
    return this.one(this.db, 'SELECT * FROM seed_peer WHERE id = ?', [id], toSeedPeer);
  }
  listSeedPeers(filter: SeedPeerFilter, page: Page = ALL): Promise<PageResult<SeedPeerRecord>> {
    return this.paged('seed_peer', { seed_peer_cluster_id: filter.seedPeerClusterId, state: filter.state, hostname: filter.hostname, ip: filter.ip }, page, toSeedPeer);
  }
  async deleteSeedPeer(id: number): Promise<void> {
    const r = await this.db.run('DELETE FROM seed_peer WHERE id = ?', [id]);
    if (!r.affectedRows) throw new NotFoundError(`seed peer ${id} not found`);
  }
  markSeedPeer(key: SeedPeerKey, state: ActiveState, now: number): Promise<boolean> {
    return this.mark('seed_peer', 'seed_peer_cluster_id', [key.hostname, key.ip, key.seedPeerClusterId], state, now, 'seed peer');
  }
  async expireSeedPeers(before: number): Promise<number> {
    const r = await this.db.run("UPDATE seed_peer SET state = 'inactive', updated_at = ? WHERE state = 'active' AND last_keep_alive_at < ?", [Date.now(), before]);
    return r.affectedRows;
  }

  // ---- users, roles, tokens, jobs, settings --------------------------------------

  async createUser(input: { name: string; email: string; passwordHash: string; state?: UserRecord['state'] }): Promise<UserRecord> {
    const now = Date.now();
    const r = await this.db.run('INSERT INTO `user` (name, email, encrypted_password, state, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?)', [input.name, input.email, input.passwordHash, input.state ?? 'enable', now, now]);
    return (await this.getUser(r.insertId))!;
  }
  getUser(id: number): Promise<UserRecord | undefined> {
    return this.one(this.db, 'SELECT * FROM `user` WHERE id = ?', [id], toUser);
  }
  getUserByName(name: string): Promise<UserRecord | undefined> {
    return this.one(this.db, 'SELECT * FROM `user` WHERE name = ?', [name], toUser);
  }
  listUsers(page: Page = ALL): Promise<PageResult<UserRecord>> {
    return this.paged('`user`', {}, page, toUser);
  }
  async updateUserPassword(id: number, passwordHash: string): Promise<void> {
    const r = await this.db.run('UPDATE `user` SET encrypted_password = ?, updated_at = ? WHERE id = ?', [passwordHash, Date.now(), id]);
    if (!r.affectedRows) throw new NotFoundError(`user ${id} not found`);
  }
  async ensureRole(name: string): Promise<void> {
    if ((await this.db.all('SELECT id FROM role WHERE name = ?', [name])).length) return;
    try {
      await this.db.run('INSERT INTO role (name) VALUES (?)', [name]);
    } catch (err) {
      if (!(err instanceof ConflictError)) throw err;
    }
  }
  async listRoles(): Promise<string[]> {
    return (await this.db.all('SELECT name FROM role ORDER BY id')).map((r) => str(r.name));
  }
  async rolesOf(userId: number): Promise<string[]> {
    const rows = await this.db.all('SELECT r.name FROM role r JOIN user_role ur ON ur.role_id = r.id WHERE ur.user_id = ? ORDER BY r.id', [userId]);
    return rows.map((r) => str(r.name));
  }
  private async roleId(db: SqlExecutor, role: string): Promise<number> {
    const rows = await db.all('SELECT id FROM role WHERE name = ?', [role]);
    if (!rows.length) throw new NotFoundError(`role ${role} not found`);
    return num(rows[0].id);
  }
  async addUserRole(userId: number, role: string): Promise<void> {
    await this.db.transaction(async (tx) => {
      const roleId = await this.roleId(tx, role);
      if (!(await tx.all('SELECT id FROM `user` WHERE id = ?', [userId])).length) throw new NotFoundError(`user ${userId} not found`);
      if ((await tx.all('SELECT 1 FROM user_role WHERE user_id = ? AND role_id = ?', [userId, roleId])).length) return;
      await tx.run('INSERT INTO user_role (user_id, role_id) VALUES (?, ?)', [userId, roleId]);
    });
  }
  async removeUserRole(userId: number, role: string): Promise<void> {
    const roleId = await this.roleId(this.db, role);
    const r = await this.db.run('DELETE FROM user_role WHERE user_id = ? AND role_id = ?', [userId, roleId]);
    if (!r.affectedRows) throw new NotFoundError(`user ${userId} does not have role ${role}`);
  }

  async createPersonalAccessToken(input: Omit<PersonalAccessTokenRecord, 'id' | 'createdAt' | 'updatedAt'>): Promise<PersonalAccessTokenRecord> {
    const now = Date.now();
    const r = await this.db.run(
      'INSERT INTO personal_access_token (name, bio, token, scopes, state, expired_at, user_id, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)',
      [input.name, input.bio, input.token, JSON.stringify(input.scopes), input.state, input.expiredAt, input.userId, now, now],
    );
    return (await this.getPersonalAccessToken(r.insertId))!;
  }
  getPersonalAccessToken(id: number): Promise<PersonalAccessTokenRecord | undefined> {
    return this.one(this.db, 'SELECT * FROM personal_access_token WHERE id = ?', [id], toToken);
  }
  findPersonalAccessToken(token: string): Promise<PersonalAccessTokenRecord | undefined> {
    return this.one(this.db, 'SELECT * FROM personal_access_token WHERE token = ?', [token], toToken);
  }
  listPersonalAccessTokens(filter: { userId?: number }, page: Page = ALL): Promise<PageResult<PersonalAccessTokenRecord>> {
    return this.paged('personal_access_token', { user_id: filter.userId }, page, toToken);
  }
  async updatePersonalAccessToken(id: number, patch: Partial<Pick<PersonalAccessTokenRecord, 'name' | 'bio' | 'scopes' | 'state' | 'expiredAt'>>): Promise<PersonalAccessTokenRecord> {
    await this.patchRow(this.db, 'personal_access_token', id, { name: patch.name, bio: patch.bio, scopes: patch.scopes && JSON.stringify(patch.scopes), state: patch.state, expired_at: patch.expiredAt });
    const found = await this.getPersonalAccessToken(id);
    if (!found) throw new NotFoundError(`personal access token ${id} not found`);
    return found;
  }
  async deletePersonalAccessToken(id: number): Promise<void> {
    const r = await this.db.run('DELETE FROM personal_access_token WHERE id = ?', [id]);
    if (!r.affectedRows) throw new NotFoundError(`personal access token ${id} not found`);
  }

  async createJob(input: JobInput): Promise<JobRecord> {
    const now = Date.now();
    const clusters = input.clusters.map((c) => ({ schedulerClusterId: c.schedulerClusterId, state: c.state ?? 'PENDING', error: c.error ?? '' }));
    const id = await this.db.transaction(async (tx) => {
      const r = await tx.run('INSERT INTO job (task_id, type, state, args, result, user_id, deadline_at, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)', [
        input.taskId,
        input.type,
        jobStateOf(clusters),
        JSON.stringify(input.args),
        '{}',
        input.userId,
        input.deadlineAt,
        now,
        now,
      ]);
      for (const c of clusters) {
        await tx.run('INSERT INTO job_scheduler_cluster (job_id, scheduler_cluster_id, state, result, error, attempts, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?)', [r.insertId, c.schedulerClusterId, c.state, '{}', c.error, 0, now]);
      }
      return r.insertId;
    });
    return (await this.getJob(id))!;
  }

  private async jobClusters(db: SqlExecutor, ids: readonly number[]): Promise<Map<number, JobClusterRecord[]>> {
    const out = new Map<number, JobClusterRecord[]>();
    if (ids.length === 0) return out;
    const rows = await db.all(`SELECT * FROM job_scheduler_cluster WHERE job_id IN (${ids.map(() => '?').join(', ')}) ORDER BY scheduler_cluster_id`, [...ids]);
    for (const r of rows) {
      const list = out.get(num(r.job_id)) ?? [];
      list.push(toJobCluster(r));
      out.set(num(r.job_id), list);
    }
    return out;
  }

  async getJob(id: number): Promise<JobRecord | undefined> {
    const rows = await this.db.all('SELECT * FROM job WHERE id = ?', [id]);
    if (rows.length === 0) return undefined;
    return toJob(rows[0], (await this.jobClusters(this.db, [id])).get(id) ?? []);
  }

  async listJobs(filter: JobFilter, page: Page = ALL): Promise<PageResult<JobRecord>> {
    const w = where({ type: filter.type, state: filter.state, user_id: filter.userId });
    // Newest first, as the console lists them.
    const rows = await this.db.all(`SELECT * FROM job${w.sql} ORDER BY id DESC${limit(page)}`, w.params);
    const [count] = await this.db.all(`SELECT COUNT(*) AS n FROM job${w.sql}`, w.params);
    const clusters = await this.jobClusters(this.db, rows.map((r) => num(r.id)));
    return { items: rows.map((r) => toJob(r, clusters.get(num(r.id)) ?? [])), total: num(count.n) };
  }

  async pendingJobIds(max: number): Promise<number[]> {
    const rows = await this.db.all(`SELECT id FROM job WHERE state = ? ORDER BY id LIMIT ${Math.max(1, Math.floor(max))}`, ['PENDING']);
    return rows.map((r) => num(r.id));
  }

  async finishJobCluster(jobId: number, schedulerClusterId: number, outcome: { state: 'SUCCESS' | 'FAILURE'; result?: JsonObject; error?: string; attempts?: number }): Promise<boolean> {
    return this.db.transaction(async (tx) => {
      const now = Date.now();
      const r = await tx.run(
        'UPDATE job_scheduler_cluster SET state = ?, result = ?, error = ?, attempts = ?, updated_at = ? WHERE job_id = ? AND scheduler_cluster_id = ? AND state = ?',
        [outcome.state, JSON.stringify(outcome.result ?? {}), outcome.error ?? '', outcome.attempts ?? 0, now, jobId, schedulerClusterId, 'PENDING'],
      );
      if (!r.affectedRows) return false;
      const clusters = (await this.jobClusters(tx, [jobId])).get(jobId) ?? [];
      await tx.run('UPDATE job SET state = ?, updated_at = ? WHERE id = ?', [jobStateOf(clusters), now, jobId]);
      return true;
    });
  }

  async replacePeers(schedulerClusterId: number, peers: readonly PeerInput[]): Promise<void> {
    await this.db.transaction(async (tx) => {
      const now = Date.now();
      const existing = new Map((await tx.all('SELECT host_id, created_at FROM peer WHERE scheduler_cluster_id = ?', [schedulerClusterId])).map((r) => [str(r.host_id), num(r.created_at)]));
      await tx.run('DELETE FROM peer WHERE scheduler_cluster_id = ?', [schedulerClusterId]);
      for (const p of peers) {
        await tx.run(
          'INSERT INTO peer (host_id, hostname, type, ip, port, download_port, idc, location, scheduler_cluster_id, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)',
          [p.hostId, p.hostname, p.type, p.ip, p.port, p.downloadPort, p.idc, p.location, schedulerClusterId, existing.get(p.hostId) ?? now, now],
        );
      }
    });
  }

  listPeers(filter: { schedulerClusterId?: number; hostname?: string; ip?: string }, page: Page = ALL): Promise<PageResult<PeerRecord>> {
    return this.paged('peer', { scheduler_cluster_id: filter.schedulerClusterId, hostname: filter.hostname, ip: filter.ip }, page, toPeer);
  }

  async getOrSetSetting(name: string, value: string): Promise<string> {
    const read = async () => (await this.db.all('SELECT value FROM setting WHERE name = ?', [name]))[0];
    const existing = await read();
    if (existing) return str(existing.value);
    try {
      await this.db.run('INSERT INTO setting (name, value) VALUES (?, ?)', [name, value]);
      return value;
    } catch (err) {
      if (!(err instanceof ConflictError)) throw err;
      return str((await read()).value);
    }
  }
}
