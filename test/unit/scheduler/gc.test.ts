/** The scheduler's GC pass run in slices: what expires, and that slices neither miss nor overreach. */
import { Peer } from '../../../services/scheduler/resource/model';
import type { PeerState } from '../../../services/scheduler/resource/state';
import { ResourceStore, type GcPolicy } from '../../../services/scheduler/resource/store';
import { makeHost } from './helpers';

const policy: GcPolicy = { hostTTLMs: 60_000, peerTTLMs: 10_000 };
const NOW = 100_000;
const STATES: PeerState[] = ['Pending', 'ReceivedNormal', 'Running', 'BackToSource', 'Succeeded', 'Failed', 'Leave'];

/** A deterministic pseudo-random sequence (tests repeat exactly). */
function rng(seed: number): () => number {
  let x = seed;
  return () => {
    x = (x * 1103515245 + 12345) % 2 ** 31;
    return x / 2 ** 31;
  };
}

interface Built {
  store: ResourceStore;
  /** Ids of what this pass must collect, judged at NOW. */
  expiredPeers: Set<string>;
  livePeers: Set<string>;
  silentHosts: Set<string>;
}

/** Hosts (a few silent), tasks and peers in every state, some untouched past peerTTL. */
function build(seed: number): Built {
  const r = rng(seed);
  const store = new ResourceStore();
  const hosts = Array.from({ length: 12 }, (_, i) => {
    const info = makeHost().info;
    // Hosts 0-2 are silent: an interval of 1 s announced 5 s ago, or none announced 2 h ago.
    const silent = i < 3;
    return store.upsertHost(info, i === 2 ? 0 : 1_000, silent ? (i === 2 ? NOW - 7_200_000 : NOW - 5_000) : NOW - 500);
  });
  const tasks = Array.from({ length: 30 }, (_, i) => store.getOrCreateTask({ id: `task-gc-${seed}-${i}`, url: `http://origin/${i}`, filteredQueryParams: [], requestHeader: {} }, NOW));
  const expiredPeers = new Set<string>();
  const livePeers = new Set<string>();
  const silentHosts = new Set(hosts.slice(0, 3).map((h) => h.id));
  for (let i = 0; i < 400; i++) {
    const host = hosts[Math.floor(r() * hosts.length)];
    // Tasks 25-29 get no peers: empty, collected.
    const task = tasks[Math.floor(r() * 25)];
    const peer = new Peer(`peer-${seed}-${i}`, task, host, r() < 0.3 ? NOW - 20_000 : NOW - 1_000);
    peer.state = STATES[Math.floor(r() * STATES.length)];
    if (r() < 0.5) peer.session = { send: () => undefined, fail: () => undefined };
    store.addPeer(peer);
    const expired = silentHosts.has(host.id) || peer.state === 'Leave' || (peer.state === 'Failed' && !peer.session) || NOW - peer.updatedAt > policy.peerTTLMs;
    (expired ? expiredPeers : livePeers).add(peer.id);
  }
  return { store, expiredPeers, livePeers, silentHosts };
}

describe('GC pass in slices', () => {
  test('a sliced pass collects exactly what a whole pass does, and nothing live', () => {
    for (const budget of [1, 7, 100]) {
      const whole = build(42);
      const sliced = build(42);
      const all = whole.store.gc(NOW, policy);
      const pass = sliced.store.gcPass(policy);
      const peers: string[] = [];
      const hosts: string[] = [];
      const tasks: string[] = [];
      let steps = 0;
      while (!pass.done) {
        const r = pass.step(NOW, budget);
        peers.push(...r.peers);
        hosts.push(...r.hosts);
        tasks.push(...r.tasks);
        expect(r.peers.length).toBe(r.removedPeers.length);
        steps++;
        expect(steps).toBeLessThan(1_000); // ends
      }
      if (budget === 1) expect(steps).toBeGreaterThan(whole.livePeers.size); // one entry per slice (a silent host with its peers)
      expect(new Set(peers)).toEqual(whole.expiredPeers);
      expect(new Set(all.peers)).toEqual(whole.expiredPeers);
      expect(new Set(hosts)).toEqual(sliced.silentHosts);
      expect(new Set(all.hosts)).toEqual(whole.silentHosts);
      expect(tasks.sort()).toEqual([...all.tasks].sort());
      expect(new Set(sliced.store.peers.keys())).toEqual(sliced.livePeers);
      for (const id of sliced.silentHosts) expect(sliced.store.hosts.has(id)).toBe(false);
      // Every task left holds a peer (or awaits a seed); every task without one went.
      for (const t of sliced.store.tasks.values()) expect(t.peers.size).toBeGreaterThan(0);
      for (const id of ['task-gc-42-25', 'task-gc-42-29']) expect(tasks).toContain(id);
      // Indexes agree with the store: no collected peer left on a task or host.
      for (const t of sliced.store.tasks.values()) for (const id of t.peers.keys()) expect(sliced.livePeers.has(id)).toBe(true);
      for (const h of sliced.store.hosts.values()) for (const p of h.peers) expect(sliced.store.peers.get(p.id)).toBe(p);
    }
  });

  test('peers arriving and leaving during a pass: the pass still ends, new peers stay, old expired ones all go', () => {
    const b = build(7);
    const pass = b.store.gcPass(policy);
    const liveHost = [...b.store.hosts.values()].find((h) => !b.silentHosts.has(h.id))!;
    const task = b.store.getOrCreateTask({ id: 'task-new', url: 'http://origin/new', filteredQueryParams: [], requestHeader: {} }, NOW);
    const collected = new Set<string>();
    const removedByOthers = new Set<string>();
    let n = 0;
    let steps = 0;
    while (!pass.done) {
      for (const id of pass.step(NOW, 5).peers) collected.add(id);
      // Faster arrivals than the slice visits: the pass is bounded by the sizes when each phase began.
      for (let k = 0; k < 10; k++) {
        const p = new Peer(`new-${n++}`, task, liveHost, NOW);
        p.state = 'Running';
        b.store.addPeer(p);
      }
      // Someone else (a stream close, a DeleteTask) removes a live peer mid-pass.
      const victim = [...b.livePeers].find((id) => !removedByOthers.has(id));
      if (victim && steps % 3 === 0) {
        b.store.removePeer(b.store.peers.get(victim)!);
        removedByOthers.add(victim);
      }
      steps++;
      expect(steps).toBeLessThan(1_000);
    }
    expect(collected).toEqual(b.expiredPeers);
    for (let k = 0; k < n; k++) expect(b.store.peers.has(`new-${k}`)).toBe(true);
    for (const id of b.livePeers) expect(b.store.peers.has(id)).toBe(!removedByOthers.has(id));
    expect(b.store.tasks.has('task-new')).toBe(true);
  });

  test('an entry is judged at the time of the slice that visits it, once per pass', () => {
    const store = new ResourceStore();
    const a = store.upsertHost(makeHost().info, 1_000, NOW);
    const b = store.upsertHost(makeHost().info, 1_000, NOW);
    const pass = store.gcPass(policy);
    expect(pass.step(NOW, 1).hosts).toEqual([]); // a, alive at NOW
    expect(pass.done).toBe(false);
    expect(pass.step(NOW + 2_001, 1).hosts).toEqual([b.id]); // b, silent past 2× its interval by then
    pass.step(NOW + 2_001, 10);
    expect(pass.done).toBe(true);
    expect([...store.hosts.keys()]).toEqual([a.id]); // a is not visited again in this pass
    expect(store.gc(NOW + 2_001, policy).hosts).toEqual([a.id]); // the next pass takes it
  });
});
