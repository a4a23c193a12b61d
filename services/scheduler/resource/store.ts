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
   * One GC pass:
   * - hosts silent for 2× their announce interval (hostTTL when they gave none) go, with their peers;
   * - peers that left, or failed with no stream, or untouched for peerTTL go;
   * - tasks without peers go.
   */
  gc(now: number, policy: GcPolicy): GcResult {
    const hosts: string[] = [];
    const peers: string[] = [];
    const removedPeers: Peer[] = [];
    const tasks: string[] = [];
    const orphans = new Set<Peer>();
    for (const host of [...this.hosts.values()]) {
      const limit = host.announceIntervalMs > 0 ? 2 * host.announceIntervalMs : policy.hostTTLMs;
      if (now - host.lastAnnounceAt > limit) {
        for (const p of host.peers) {
          peers.push(p.id);
          removedPeers.push(p);
        }
        for (const o of this.removeHost(host)) orphans.add(o);
        hosts.push(host.id);
      }
    }
    for (const peer of [...this.peers.values()]) {
      const gone = peer.state === 'Leave' || (peer.state === 'Failed' && !peer.session);
      if (gone || now - peer.updatedAt > policy.peerTTLMs) {
        if (peer.state !== 'Leave' && peer.state !== 'Succeeded' && peer.state !== 'Failed') peer.state = 'Leave';
        for (const o of this.removePeer(peer)) orphans.add(o);
        peers.push(peer.id);
        removedPeers.push(peer);
      }
    }
    for (const task of [...this.tasks.values()]) {
      if (task.peers.size === 0 && !task.seedTriggerPending) {
        this.tasks.delete(task.id);
        tasks.push(task.id);
      }
    }
    for (const o of orphans) if (!this.peers.has(o.id)) orphans.delete(o);
    return { hosts, peers, removedPeers, tasks, orphans: [...orphans] };
  }
}
