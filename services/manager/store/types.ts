/**
 * The manager's storage contract. Domain code and transports only see `ManagerStore`;
 * `SqlManagerStore` implements it over a `SqlDriver` (SQLite embedded, or MySQL/MariaDB).
 */
import type { ClusterScopes } from '../../common/config/cluster-spec';

export type JsonObject = Record<string, unknown>;
export type ActiveState = 'active' | 'inactive';

export interface Page {
  readonly page: number;
  readonly perPage: number;
}

export interface PageResult<T> {
  readonly items: T[];
  readonly total: number;
}

export interface SchedulerCluster {
  id: number;
  name: string;
  bio: string;
  config: JsonObject;
  clientConfig: JsonObject;
  scopes: ClusterScopes;
  isDefault: boolean;
  createdAt: number;
  updatedAt: number;
}

export interface SeedPeerCluster {
  id: number;
  name: string;
  bio: string;
  config: JsonObject;
  createdAt: number;
  updatedAt: number;
}

export interface SchedulerRecord {
  id: number;
  hostname: string;
  ip: string;
  port: number;
  idc: string;
  location: string;
  state: ActiveState;
  features: string[];
  config: JsonObject;
  schedulerClusterId: number;
  lastKeepAliveAt: number;
  createdAt: number;
  updatedAt: number;
}

export interface SeedPeerRecord {
  id: number;
  hostname: string;
  type: string;
  ip: string;
  port: number;
  downloadPort: number;
  idc: string;
  location: string;
  state: ActiveState;
  seedPeerClusterId: number;
  lastKeepAliveAt: number;
  createdAt: number;
  updatedAt: number;
}

export interface UserRecord {
  id: number;
  name: string;
  email: string;
  passwordHash: string;
  state: 'enable' | 'disable';
  createdAt: number;
  updatedAt: number;
}

export interface PersonalAccessTokenRecord {
  id: number;
  name: string;
  bio: string;
  token: string;
  scopes: string[];
  state: ActiveState;
  expiredAt: number;
  userId: number;
  createdAt: number;
  updatedAt: number;
}

export type JobState = 'PENDING' | 'SUCCESS' | 'FAILURE';

/** One scheduler cluster's part of a job. */
export interface JobClusterRecord {
  schedulerClusterId: number;
  state: JobState;
  result: JsonObject;
  /** Why it failed; empty otherwise. */
  error: string;
  attempts: number;
  updatedAt: number;
}

export interface JobRecord {
  id: number;
  /** Group id shown to users (`group_<uuid>`, as upstream). */
  taskId: string;
  type: string;
  state: JobState;
  args: JsonObject;
  result: JsonObject;
  userId: number;
  /** Epoch ms after which unfinished clusters fail. */
  deadlineAt: number;
  clusters: JobClusterRecord[];
  createdAt: number;
  updatedAt: number;
}

export interface JobInput {
  taskId: string;
  type: string;
  args: JsonObject;
  userId: number;
  deadlineAt: number;
  /** Clusters given a state other than PENDING are finished from the start (e.g. no scheduler). */
  clusters: Array<Pick<JobClusterRecord, 'schedulerClusterId'> & Partial<Pick<JobClusterRecord, 'state' | 'error'>>>;
}

export interface JobFilter {
  type?: string;
  state?: JobState;
  userId?: number;
}

/** A peer host as a scheduler reported it (sync_peers). */
export interface PeerRecord {
  id: number;
  hostId: string;
  hostname: string;
  type: string;
  ip: string;
  port: number;
  downloadPort: number;
  idc: string;
  location: string;
  schedulerClusterId: number;
  createdAt: number;
  updatedAt: number;
}

export type PeerInput = Omit<PeerRecord, 'id' | 'schedulerClusterId' | 'createdAt' | 'updatedAt'>;

export type SchedulerClusterInput = Omit<SchedulerCluster, 'id' | 'createdAt' | 'updatedAt'> & { id?: number };
export type SeedPeerClusterInput = Omit<SeedPeerCluster, 'id' | 'createdAt' | 'updatedAt'> & { id?: number };

export interface SchedulerKey {
  hostname: string;
  ip: string;
  schedulerClusterId: number;
}

export interface SeedPeerKey {
  hostname: string;
  ip: string;
  seedPeerClusterId: number;
}

export type SchedulerUpsert = SchedulerKey & Pick<SchedulerRecord, 'port' | 'idc' | 'location' | 'features' | 'config'>;
export type SeedPeerUpsert = SeedPeerKey & Pick<SeedPeerRecord, 'type' | 'port' | 'downloadPort' | 'idc' | 'location'>;

export interface SchedulerFilter {
  schedulerClusterId?: number;
  state?: ActiveState;
  hostname?: string;
  ip?: string;
}

export interface SeedPeerFilter {
  seedPeerClusterId?: number;
  state?: ActiveState;
  hostname?: string;
  ip?: string;
}

/** A scheduler cluster and the seed-peer cluster created with it (what /clusters shows). */
export interface ClusterRecord {
  schedulerCluster: SchedulerCluster;
  seedPeerCluster: SeedPeerCluster | undefined;
}

export interface ManagerStore {
  /** "sqlite" or "mysql". */
  readonly kind: string;
  close(): Promise<void>;

  /** Creates a scheduler cluster, a seed-peer cluster and their link in one transaction; both get `id` when given. */
  createCluster(schedulerCluster: SchedulerClusterInput, seedPeerCluster: SeedPeerClusterInput, id?: number): Promise<ClusterRecord>;
  /** Updates both halves of a cluster in one transaction. */
  updateCluster(id: number, schedulerCluster: Partial<SchedulerClusterInput>, seedPeerCluster: Partial<SeedPeerClusterInput>): Promise<ClusterRecord>;
  getCluster(id: number): Promise<ClusterRecord | undefined>;
  listClusters(filter: { name?: string }, page: Page): Promise<PageResult<ClusterRecord>>;
  /** Deletes the scheduler cluster, its schedulers, and the linked seed-peer clusters that no other scheduler cluster uses. */
  deleteCluster(id: number): Promise<void>;

  createSchedulerCluster(input: SchedulerClusterInput): Promise<SchedulerCluster>;
  getSchedulerCluster(id: number): Promise<SchedulerCluster | undefined>;
  listSchedulerClusters(filter: { name?: string }, page?: Page): Promise<PageResult<SchedulerCluster>>;
  updateSchedulerCluster(id: number, patch: Partial<SchedulerClusterInput>): Promise<SchedulerCluster>;
  deleteSchedulerCluster(id: number): Promise<void>;

  createSeedPeerCluster(input: SeedPeerClusterInput): Promise<SeedPeerCluster>;
  getSeedPeerCluster(id: number): Promise<SeedPeerCluster | undefined>;
  listSeedPeerClusters(filter: { name?: string }, page?: Page): Promise<PageResult<SeedPeerCluster>>;
  updateSeedPeerCluster(id: number, patch: Partial<SeedPeerClusterInput>): Promise<SeedPeerCluster>;
  deleteSeedPeerCluster(id: number): Promise<void>;

  linkClusters(seedPeerClusterId: number, schedulerClusterId: number): Promise<void>;
  seedPeerClusterIdsOf(schedulerClusterId: number): Promise<number[]>;
  schedulerClusterIdsOf(seedPeerClusterId: number): Promise<number[]>;

  upsertScheduler(input: SchedulerUpsert): Promise<SchedulerRecord>;
  findScheduler(key: SchedulerKey): Promise<SchedulerRecord | undefined>;
  getScheduler(id: number): Promise<SchedulerRecord | undefined>;
  listSchedulers(filter: SchedulerFilter, page?: Page): Promise<PageResult<SchedulerRecord>>;
  deleteScheduler(id: number): Promise<void>;
  /** Sets the state and refreshes last_keep_alive_at; returns whether the state changed. Throws NotFound for an unknown key. */
  markScheduler(key: SchedulerKey, state: ActiveState, now: number): Promise<boolean>;
  /** Marks active schedulers silent since `before` inactive; returns how many changed. */
  expireSchedulers(before: number): Promise<number>;
  countActiveSchedulers(): Promise<number>;

  upsertSeedPeer(input: SeedPeerUpsert): Promise<SeedPeerRecord>;
  findSeedPeer(key: SeedPeerKey): Promise<SeedPeerRecord | undefined>;
  getSeedPeer(id: number): Promise<SeedPeerRecord | undefined>;
  listSeedPeers(filter: SeedPeerFilter, page?: Page): Promise<PageResult<SeedPeerRecord>>;
  deleteSeedPeer(id: number): Promise<void>;
  markSeedPeer(key: SeedPeerKey, state: ActiveState, now: number): Promise<boolean>;
  expireSeedPeers(before: number): Promise<number>;

  createUser(input: { name: string; email: string; passwordHash: string; state?: UserRecord['state'] }): Promise<UserRecord>;
  getUser(id: number): Promise<UserRecord | undefined>;
  getUserByName(name: string): Promise<UserRecord | undefined>;
  listUsers(page?: Page): Promise<PageResult<UserRecord>>;
  updateUserPassword(id: number, passwordHash: string): Promise<void>;
  ensureRole(name: string): Promise<void>;
  listRoles(): Promise<string[]>;
  rolesOf(userId: number): Promise<string[]>;
  addUserRole(userId: number, role: string): Promise<void>;
  removeUserRole(userId: number, role: string): Promise<void>;

  createPersonalAccessToken(input: Omit<PersonalAccessTokenRecord, 'id' | 'createdAt' | 'updatedAt'>): Promise<PersonalAccessTokenRecord>;
  getPersonalAccessToken(id: number): Promise<PersonalAccessTokenRecord | undefined>;
  findPersonalAccessToken(token: string): Promise<PersonalAccessTokenRecord | undefined>;
  listPersonalAccessTokens(filter: { userId?: number }, page?: Page): Promise<PageResult<PersonalAccessTokenRecord>>;
  updatePersonalAccessToken(id: number, patch: Partial<Pick<PersonalAccessTokenRecord, 'name' | 'bio' | 'scopes' | 'state' | 'expiredAt'>>): Promise<PersonalAccessTokenRecord>;
  deletePersonalAccessToken(id: number): Promise<void>;

  /** Creates the job and its per-cluster rows in one transaction; the job's state follows the clusters'. */
  createJob(input: JobInput): Promise<JobRecord>;
  getJob(id: number): Promise<JobRecord | undefined>;
  listJobs(filter: JobFilter, page?: Page): Promise<PageResult<JobRecord>>;
  /** Ids of jobs still PENDING, oldest first. */
  pendingJobIds(limit: number): Promise<number[]>;
  /**
   * Finishes one cluster's part if it is still PENDING (so concurrent managers and a late
   * worker result cannot overwrite each other), then settles the job's state. Returns
   * whether this call finished it.
   */
  finishJobCluster(jobId: number, schedulerClusterId: number, outcome: { state: 'SUCCESS' | 'FAILURE'; result?: JsonObject; error?: string; attempts?: number }): Promise<boolean>;

  /** Replaces the peer inventory of one scheduler cluster. */
  replacePeers(schedulerClusterId: number, peers: readonly PeerInput[]): Promise<void>;
  listPeers(filter: { schedulerClusterId?: number; hostname?: string; ip?: string }, page?: Page): Promise<PageResult<PeerRecord>>;

  /** Stores `value` under `name` unless a value exists; returns the stored value either way. */
  getOrSetSetting(name: string, value: string): Promise<string>;
}
