/**
 * The scheduler's resource model: hosts, tasks, peers and the per-task parent DAG. Plain
 * classes with no transport; the service mutates them and the parent chooser reads them.
 *
 * Indexes kept per task so a scheduling decision never scans every peer of the task:
 * - `parentPool`: peers that can serve data now (origin-sourcing or holding ≥ 1 piece);
 * - `originPeers`: peers currently going to the origin (seeds included);
 * - `waiting`: peers told to wait for a parent;
 * - `underServed`: downloading peers with fewer parents than the candidate limit, topped up
 *   when a new parent appears.
 */
import type { AnnouncePeerResponse, Download } from '../../proto';
import type { DragonflyError } from '../../common/errors';
import type { PeerSeries } from '../upstream-metrics';
import { PieceBitset } from './bitset';
import { PieceCosts } from './piece-costs';
import { nextPeerState, nextTaskState, type PeerEvent, type PeerState, type TaskEvent, type TaskState } from './state';

export type HostType = 'NORMAL_HOST' | 'SUPER_HOST';

export interface HostInfo {
  readonly id: string;
  readonly type: HostType;
  readonly hostname: string;
  readonly ip: string;
  readonly port: number;
  readonly downloadPort: number;
  readonly idc: string;
  readonly location: string;
  readonly disableShared: boolean;
  readonly concurrentUploadLimit: number;
  readonly concurrentUploadCount: number;
  readonly uploadCount: number;
  readonly uploadFailedCount: number;
  readonly maxTxBandwidth: number;
  readonly txBandwidth: number;
  readonly schedulerClusterId: number;
}

export class Host {
  info: HostInfo;
  /** 0: unknown, the host is collected after hostTTL instead. */
  announceIntervalMs: number;
  lastAnnounceAt: number;
  readonly peers = new Set<Peer>();
  /** Download edges this scheduler handed out with a peer of this host as parent. */
  assignedChildren = 0;
  /** Upload failures reported by children (download_piece_failed naming a peer of this host). */
  uploadFailures = 0;
  /**
   * The address (caller IP) the host was announced from: only that address may announce it
   * again, register its peers or delete it.
   */
  owner: string;
  private locationCache: { location: string; parts: readonly string[] } | undefined;

  constructor(info: HostInfo, intervalMs: number, now: number, owner: string = info.ip) {
    this.info = info;
    this.owner = owner;
    this.announceIntervalMs = intervalMs;
    this.lastAnnounceAt = now;
  }

  get id(): string {
    return this.info.id;
  }

  get isSeed(): boolean {
    return this.info.type === 'SUPER_HOST';
  }

  /** network.location split on "|", cached (it is compared on every scheduling decision). */
  locationParts(): readonly string[] {
    const location = this.info.location;
    if (this.locationCache?.location !== location) this.locationCache = { location, parts: location === '' ? [] : location.split('|') };
    return this.locationCache.parts;
  }

  uploadLimit(defaultLimit: number): number {
    return this.info.concurrentUploadLimit > 0 ? this.info.concurrentUploadLimit : defaultLimit;
  }

  /** Upload slots left: the limit minus the larger of what the host reported and what we assigned. */
  freeUploadSlots(defaultLimit: number): number {
    return Math.max(0, this.uploadLimit(defaultLimit) - Math.max(this.info.concurrentUploadCount, this.assignedChildren));
  }
}

export type SizeScope = 'NORMAL' | 'SMALL' | 'TINY' | 'EMPTY' | 'UNKNOW';

export interface TaskInfo {
  readonly id: string;
  readonly url: string;
  readonly digest?: string;
  readonly tag?: string;
  readonly application?: string;
  readonly filteredQueryParams: readonly string[];
  readonly requestHeader: Readonly<Record<string, string>>;
}

export class Task {
  readonly id: string;
  info: TaskInfo;
  state: TaskState = 'Pending';
  /** undefined until a peer learned it from the origin. */
  contentLength: number | undefined;
  pieceLength = 0;
  pieceCount = 0;
  responseHeader: Record<string, string> = {};
  readonly peers = new Map<string, Peer>();
  readonly originPeers = new Set<Peer>();
  readonly waiting = new Set<Peer>();
  readonly underServed = new Set<Peer>();
  /** The parent pool; each member's index in it is its poolSlot. */
  private readonly pool: Peer[] = [];
  /** Piece-cost windows of its peers (Peer.recordPieceCost), made when a peer first serves one. */
  private costWindows: PieceCosts | undefined = undefined;
  /** When this scheduler last asked a seed peer to fetch the task, and whether that is still pending. */
  seedTriggeredAt: number | undefined;
  seedTriggerPending = false;
  /** Last time a seed peer failed this task (trigger call or its back-to-source); seeds are skipped for a while after. */
  seedFailedAt: number | undefined;
  /** Seed failures of this task in a row (reset when a seed succeeds): the retry backoff doubles with each. */
  seedFailures = 0;
  createdAt: number;
  updatedAt: number;

  constructor(info: TaskInfo, now: number) {
    this.id = info.id;
    this.info = info;
    this.createdAt = now;
    this.updatedAt = now;
  }

  transition(event: TaskEvent): void {
    this.state = nextTaskState(this.state, event);
  }

  get sizeScope(): SizeScope {
    if (this.contentLength === undefined) return 'UNKNOW';
    if (this.contentLength === 0) return 'EMPTY';
    if (this.contentLength <= 128) return 'TINY';
    if (this.pieceCount === 1) return 'SMALL';
    return 'NORMAL';
  }

  /** Records what the origin said; the first complete answer wins (later ones must agree). */
  setMetadata(contentLength: number, pieceLength: number, responseHeader?: Record<string, string>): void {
    if (this.contentLength === undefined || this.pieceLength === 0) {
      this.contentLength = contentLength;
      this.pieceLength = pieceLength;
      this.pieceCount = contentLength === 0 || pieceLength === 0 ? 0 : Math.ceil(contentLength / pieceLength);
    }
    if (responseHeader && Object.keys(responseHeader).length > 0) this.responseHeader = { ...responseHeader };
  }

  /** Normal (non-seed) peers currently sent to the origin: the ones `backToSourceCount` limits. */
  normalOriginPeerCount(): number {
    let n = 0;
    for (const p of this.originPeers) if (!p.isSeed) n++;
    return n;
  }

  /** The piece-cost windows of its peers, created on first use. */
  pieceCosts(): PieceCosts {
    return (this.costWindows ??= new PieceCosts());
  }

  /** Cost windows its peers hold (0 before any peer served a piece). */
  get costWindowsHeld(): number {
    return this.costWindows?.size ?? 0;
  }

  inPool(peer: Peer): boolean {
    return peer.poolSlot >= 0 && this.pool[peer.poolSlot] === peer;
  }

  addToPool(peer: Peer): boolean {
    if (peer.task !== this) throw new RangeError(`peer ${peer.id} is not a peer of task ${this.id}`);
    if (this.inPool(peer)) return false;
    peer.poolSlot = this.pool.length;
    this.pool.push(peer);
    return true;
  }

  removeFromPool(peer: Peer): void {
    if (!this.inPool(peer)) return;
    const i = peer.poolSlot;
    const last = this.pool.pop() as Peer;
    if (last !== peer) {
      this.pool[i] = last;
      last.poolSlot = i;
    }
    peer.poolSlot = -1;
  }

  get poolSize(): number {
    return this.pool.length;
  }

  /**
   * Up to `limit` distinct pool members chosen uniformly at random: a partial Fisher–Yates
   * shuffle over a shared scratch permutation that is swapped back afterwards, so a call
   * costs O(limit) and allocates nothing but its answer (it runs on every decision).
   */
  samplePool(limit: number, random: () => number = Math.random): Peer[] {
    const n = this.pool.length;
    if (n <= limit) return this.pool.slice();
    const perm = scratchPermutation(n);
    const swaps = scratchSwaps(limit);
    const picked: Peer[] = [];
    for (let i = 0; i < limit; i++) {
      const j = i + Math.floor(random() * (n - i));
      swaps[i] = j;
      const at = perm[j];
      perm[j] = perm[i];
      perm[i] = at;
      picked.push(this.pool[at]);
    }
    // Undo the swaps in reverse: the scratch is the identity again for the next call.
    for (let i = limit - 1; i >= 0; i--) {
      const j = swaps[i];
      const at = perm[j];
      perm[j] = perm[i];
      perm[i] = at;
    }
    return picked;
  }

  /** A pool member other than on `excludeHost`, for has_available_peer. */
  hasAvailablePeer(excludeHost?: Host): boolean {
    for (const p of this.pool) if (p.host !== excludeHost) return true;
    return false;
  }
}

/** What the scheduler last told a peer: parents, wait, go to the origin, or the task is empty. */
export type AnswerKind = 'normal' | 'wait' | 'origin' | 'empty';

/** The identity permutation of at least `n` indexes, shared by every task's samplePool (callers leave it as they found it). */
let permutation = new Int32Array(0);
function scratchPermutation(n: number): Int32Array {
  if (permutation.length < n) {
    permutation = new Int32Array(Math.max(n, 2 * permutation.length));
    for (let i = 0; i < permutation.length; i++) permutation[i] = i;
  }
  return permutation;
}

let swapScratch = new Int32Array(0);
function scratchSwaps(n: number): Int32Array {
  if (swapScratch.length < n) swapScratch = new Int32Array(Math.max(n, 2 * swapScratch.length));
  return swapScratch;
}

/** Answers and errors for one peer's AnnouncePeer stream. */
export interface PeerSession {
  send(response: AnnouncePeerResponse): void;
  fail(err: DragonflyError): void;
}

/** What a peer without parents, children or blocked parents answers with (never mutated). */
const NO_PEERS: ReadonlySet<Peer> = new Set<Peer>();

/**
 * A peer of a task on a host. Finished peers stay in the store as parents until peerTTL, so
 * a peer holds as few objects of its own as it can: its piece bitset, blocklist, edge sets
 * and piece-cost window exist only while they hold something (edge sets go when emptied; a
 * peer that finished keeps neither bitset nor blocklist; cost windows live in the task's
 * shared PieceCosts), and its place in the task's parent pool is a field, not a map entry.
 */
export class Peer {
  readonly id: string;
  readonly task: Task;
  readonly host: Host;
  state: PeerState = 'Pending';
  priority: string;
  needBackToSource: boolean;
  /** Reschedules so far (retryLimit / retryBackToSourceLimit). */
  retryCount = 0;
  /** Sent need_back_to_source and has not finished/failed since. */
  sentToOrigin = false;
  /** Holds every piece of the task (it succeeded): the bitset is dropped. */
  private allPieces = false;
  session: PeerSession | undefined;
  /** The register request (origin trigger and back-to-source options). */
  request: Download | undefined = undefined;
  /** The kind of the last answer sent, so a still-waiting peer is not told to wait again; undefined after a reschedule. */
  lastAnswer: AnswerKind | undefined = undefined;
  /** The peer's metric label set (SchedulerUpstreamMetrics), shared with the other peers of the same labels. */
  metricSeries: PeerSeries | undefined = undefined;
  createdAt: number;
  updatedAt: number;
  /** Its index in its task's parent pool, -1 outside it (kept by Task). */
  poolSlot = -1;
  /** Its slot in the task's PieceCosts, -1 before its first sample. */
  private costSlot = -1;
  private pieces: PieceBitset | undefined = undefined;
  private blocked: Set<string> | undefined = undefined;
  private parentSet: Set<Peer> | undefined = undefined;
  private childSet: Set<Peer> | undefined = undefined;

  constructor(id: string, task: Task, host: Host, now: number, options: { priority?: string; needBackToSource?: boolean } = {}) {
    this.id = id;
    this.task = task;
    this.host = host;
    this.priority = options.priority ?? 'LEVEL0';
    this.needBackToSource = options.needBackToSource ?? false;
    this.createdAt = now;
    this.updatedAt = now;
  }

  get isSeed(): boolean {
    return this.host.isSeed;
  }

  transition(event: PeerEvent): void {
    this.state = nextPeerState(this.state, event);
  }

  /** Its parents (the DAG's in-edges); read-only, edges change through addEdge / removeEdge. */
  get parents(): ReadonlySet<Peer> {
    return this.parentSet ?? NO_PEERS;
  }

  /** Its children (the DAG's out-edges). */
  get children(): ReadonlySet<Peer> {
    return this.childSet ?? NO_PEERS;
  }

  // ------------------------------------------------------------ pieces

  /** Records finished piece n; true when it is new. */
  markPiece(n: number): boolean {
    if (this.allPieces && n < this.task.pieceCount) return false;
    this.pieces ??= new PieceBitset(this.task.pieceCount > 0 ? this.task.pieceCount : undefined);
    return this.pieces.set(n);
  }

  /**
   * The peer holds the whole task (it succeeded): its bitset goes. With the piece count still
   * unknown (an empty task) the pieces it reported stay as they are.
   */
  markAllPieces(): void {
    if (this.task.pieceCount <= 0) return;
    this.allPieces = true;
    this.pieces = undefined;
  }

  /** Finished pieces, or every piece of the task once the peer succeeded. */
  finishedPieceCount(): number {
    if ((this.allPieces || this.state === 'Succeeded') && this.task.pieceCount > 0) return this.task.pieceCount;
    return this.pieces?.size ?? 0;
  }

  /** Whether this peer holds a piece `other` lacks. */
  holdsPieceNotIn(other: Peer): boolean {
    if (this.allPieces) return other.finishedPieceCount() < this.task.pieceCount;
    const mine = this.pieces;
    if (!mine || mine.size === 0 || other.allPieces) return false;
    return other.pieces === undefined || mine.hasAnyNotIn(other.pieces);
  }

  /** The numbers of its finished pieces, ascending (StatPeer). */
  pieceNumbers(): number[] {
    if (this.allPieces) return Array.from({ length: this.task.pieceCount }, (_, i) => i);
    return this.pieces?.toArray() ?? [];
  }

  // ------------------------------------------------------------ blocked parents

  /** The child will not be offered this parent again (reschedule, failed piece). */
  block(parentId: string): void {
    (this.blocked ??= new Set()).add(parentId);
  }

  isBlocked(parentId: string): boolean {
    return this.blocked !== undefined && this.blocked.has(parentId);
  }

  get blockedCount(): number {
    return this.blocked?.size ?? 0;
  }

  /** The peer finished downloading: what only a downloader reads (its register request, its blocklist) goes. */
  dropDownloadState(): void {
    this.request = undefined;
    this.blocked = undefined;
  }

  // ------------------------------------------------------------ piece costs

  /** Piece download cost in nanoseconds; keeps a rolling window for the bad-parent test. */
  recordPieceCost(costNs: number): void {
    if (!(costNs > 0)) return;
    const costs = this.task.pieceCosts();
    if (this.costSlot < 0) this.costSlot = costs.alloc();
    costs.record(this.costSlot, costNs);
  }

  /** Upstream's bad-parent test on its piece costs (PieceCosts.isSlow). */
  isSlowParent(): boolean {
    return this.costSlot >= 0 && this.task.pieceCosts().isSlow(this.costSlot);
  }

  /** Gives its cost window back to the task (the store dropped the peer). */
  releaseCosts(): void {
    if (this.costSlot < 0) return;
    this.task.pieceCosts().release(this.costSlot);
    this.costSlot = -1;
  }

  // ------------------------------------------------------------ DAG edges (see addEdge and friends)

  /** @internal parent → child; the caller checked canAddEdge. */
  static link(parent: Peer, child: Peer): void {
    (parent.childSet ??= new Set()).add(child);
    (child.parentSet ??= new Set()).add(parent);
  }

  /** @internal Removes parent → child; false when there was no such edge. */
  static unlink(parent: Peer, child: Peer): boolean {
    const parents = child.parentSet;
    if (!parents || !parents.has(parent)) return false;
    child.parentSet = without(parents, parent);
    const children = parent.childSet;
    if (children) parent.childSet = without(children, child);
    return true;
  }

  /** @internal Removes every in-edge; returns the former parents. */
  static unlinkParents(child: Peer): ReadonlySet<Peer> {
    const parents = child.parentSet;
    if (!parents) return NO_PEERS;
    child.parentSet = undefined;
    for (const p of parents) {
      const children = p.childSet;
      if (children) p.childSet = without(children, child);
    }
    return parents;
  }
}

/**
 * An edge set less `peer`: undefined instead of an empty set. The last member is not deleted
 * from the set, which is dropped whole: V8 gives a Set emptied by delete() a new hash table
 * (twice the time, and garbage), on the path of every finished peer and every decision.
 */
function without(set: Set<Peer>, peer: Peer): Set<Peer> | undefined {
  if (set.size === 1 && set.has(peer)) return undefined;
  set.delete(peer);
  return set;
}

/** True when `ancestor` is `peer` or reachable from it through parent edges. */
export function isAncestor(ancestor: Peer, peer: Peer): boolean {
  if (ancestor === peer) return true;
  const seen = new Set<Peer>();
  const stack: Peer[] = [peer];
  while (stack.length > 0) {
    const cur = stack.pop() as Peer;
    for (const p of cur.parents) {
      if (p === ancestor) return true;
      if (!seen.has(p)) {
        seen.add(p);
        stack.push(p);
      }
    }
  }
  return false;
}

/** Whether parent → child may be added without a cycle (child must not be an ancestor of parent). */
export function canAddEdge(parent: Peer, child: Peer): boolean {
  if (parent === child || parent.task !== child.task || child.parents.has(parent)) return false;
  // A peer with no children is nobody's ancestor: the common case needs no walk.
  return child.children.size === 0 || !isAncestor(child, parent);
}

export function addEdge(parent: Peer, child: Peer): boolean {
  if (!canAddEdge(parent, child)) return false;
  Peer.link(parent, child);
  parent.host.assignedChildren++;
  return true;
}

export function removeEdge(parent: Peer, child: Peer): void {
  if (!Peer.unlink(parent, child)) return;
  parent.host.assignedChildren = Math.max(0, parent.host.assignedChildren - 1);
}

export function removeInEdges(child: Peer): void {
  for (const p of Peer.unlinkParents(child)) p.host.assignedChildren = Math.max(0, p.host.assignedChildren - 1);
}

/** Removes every edge of the peer; returns its former children. */
export function removeAllEdges(peer: Peer): Peer[] {
  removeInEdges(peer);
  const orphans = [...peer.children];
  for (const c of orphans) removeEdge(peer, c);
  return orphans;
}
