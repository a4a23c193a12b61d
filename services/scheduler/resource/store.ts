/** In-memory resource store with garbage collection of silent hosts, stale peers and empty tasks. */
import { Host, Peer, Task, removeAllEdges, type HostInfo, type TaskInfo } from './model';

export interface GcPolicy {
  /** Hosts that announced without an interval are collected after this long. */
  readonly hostTTLMs: number;
  /** Peers untouched this long are collected whatever their state. */
  readonly peerTTLMs: number;
}

export interface GcResult {
  readonly hosts: string[];
  readonly peers: string[];
  /** The collected peers themselves (the service closes their streams). */
  readonly removedPeers: Peer[];
  readonly tasks: string[];
  /** Still-downloading children whose parents were collected; the service reschedules them. */
  readonly orphans: Peer[];
}

export class ResourceStore {
  readonly hosts = new Map<string, Host>();
  readonly tasks = new Map<string, Task>();
  readonly peers = new Map<string, Peer>();

  /** Creates or refreshes a host from an announce (the caller checked that `owner` may). */
  upsertHost(info: HostInfo, intervalMs: number, now: number, owner: string = info.ip): Host {
    const existing = this.hosts.get(info.id);
    if (existing) {
      existing.info = info;
      existing.announceIntervalMs = intervalMs;
      existing.lastAnnounceAt = now;
      existing.owner = owner;
      return existing;
    }
    const host = new Host(info, intervalMs, now, owner);
    this.hosts.set(info.id, host);
    return host;
  }

  getOrCreateTask(info: TaskInfo, now: number): Task {
    let task = this.tasks.get(info.id);
    if (!task) {
      task = new Task(info, now);
      this.tasks.set(info.id, task);
    }
    task.updatedAt = now;
    return task;
  }

  addPeer(peer: Peer): void {
    this.peers.set(peer.id, peer);
    peer.task.peers.set(peer.id, peer);
    peer.host.peers.add(peer);
  }

  /** Detaches the peer from every index; returns children that lost a parent and still download. */
  removePeer(peer: Peer): Peer[] {
    if (this.peers.get(peer.id) === peer) this.peers.delete(peer.id);
    const task = peer.task;
    if (task.peers.get(peer.id) === peer) task.peers.delete(peer.id);
    task.removeFromPool(peer);
    task.originPeers.delete(peer);
    task.waiting.delete(peer);
    task.underServed.delete(peer);
    peer.host.peers.delete(peer);
    peer.releaseCosts();
    return removeAllEdges(peer).filter((c) => c.state !== 'Succeeded' && c.state !== 'Failed' && c.state !== 'Leave');
  }

  /** Removes the host and its peers; returns orphaned children on other hosts. */
  removeHost(host: Host): Peer[] {
    this.hosts.delete(host.id);
    const orphans: Peer[] = [];
    for (const peer of [...host.peers]) {
      if (peer.state !== 'Leave' && peer.state !== 'Succeeded' && peer.state !== 'Failed') peer.state = 'Leave';
      orphans.push(...this.removePeer(peer));
    }
    return orphans.filter((c) => c.host !== host);
  }

  removeTask(task: Task): Peer[] {
    const orphans: Peer[] = [];
    for (const peer of [...task.peers.values()]) orphans.push(...this.removePeer(peer));
    this.tasks.delete(task.id);
    return orphans;
  }

  /**
   * One whole GC pass at once (see GcPass for what goes); the server runs passes in slices
   * instead (gcPass), so that a store of many peers never blocks the event loop for the walk.
   */
  gc(now: number, policy: GcPolicy): GcResult {
    return this.gcPass(policy).step(now, Infinity);
  }

  /** A GC pass to run in slices (GcPass.step). */
  gcPass(policy: GcPolicy): GcPass {
    return new GcPass(this, policy);
  }
}

/**
 * One GC pass, run in bounded slices:
 * - hosts silent for 2× their announce interval (hostTTL when they gave none) go, with their peers;
 * - peers that left, or failed with no stream, or untouched for peerTTL go;
 * - tasks without peers go.
 * Each phase walks its map with a live iterator (Map iteration survives deletions and visits
 * later insertions after the earlier entries), bounded by the map's size when the phase began:
 * every entry present then and still present is visited once, so the pass ends however fast
 * entries arrive. Each entry is judged at the `now` of the slice that visits it.
 */
export class GcPass {
  private phase: 0 | 1 | 2 | 3 = 0;
  private cursor: Iterator<Host | Peer | Task> | undefined;
  private left = 0;

  constructor(
    private readonly store: ResourceStore,
    private readonly policy: GcPolicy,
  ) {}

  get done(): boolean {
    return this.phase === 3;
  }

  /** Visits up to `budget` entries (a collected host's peers count too); the result holds what this slice collected. */
  step(now: number, budget: number): GcResult {
    const hosts: string[] = [];
    const peers: string[] = [];
    const removedPeers: Peer[] = [];
    const tasks: string[] = [];
    const orphans = new Set<Peer>();
    const store = this.store;
    let spent = 0;
    while (this.phase < 3 && spent < budget) {
      if (!this.cursor) {
        const map = this.phase === 0 ? store.hosts : this.phase === 1 ? store.peers : store.tasks;
        this.cursor = map.values();
        this.left = map.size;
      }
      const next = this.left > 0 ? this.cursor.next() : undefined;
      if (!next || next.done) {
        this.cursor = undefined;
        this.phase++;
        continue;
      }
      this.left--;
      spent++;
      if (this.phase === 0) {
        const host = next.value as Host;
        const limit = host.announceIntervalMs > 0 ? 2 * host.announceIntervalMs : this.policy.hostTTLMs;
        if (now - host.lastAnnounceAt > limit) {
          for (const p of host.peers) {
            peers.push(p.id);
            removedPeers.push(p);
          }
          spent += host.peers.size;
          for (const o of store.removeHost(host)) orphans.add(o);
          hosts.push(host.id);
        }
      } else if (this.phase === 1) {
        const peer = next.value as Peer;
        const gone = peer.state === 'Leave' || (peer.state === 'Failed' && !peer.session);
        if (gone || now - peer.updatedAt > this.policy.peerTTLMs) {
          if (peer.state !== 'Leave' && peer.state !== 'Succeeded' && peer.state !== 'Failed') peer.state = 'Leave';
          for (const o of store.removePeer(peer)) orphans.add(o);
          peers.push(peer.id);
          removedPeers.push(peer);
        }
      } else {
        const task = next.value as Task;
        if (task.peers.size === 0 && !task.seedTriggerPending) {
          store.tasks.delete(task.id);
          tasks.push(task.id);
        }
      }
    }
    for (const o of orphans) if (store.peers.get(o.id) !== o) orphans.delete(o);
    return { hosts, peers, removedPeers, tasks, orphans: [...orphans] };
  }
}
