/**
 * The compact bookkeeping of peers (finished peers stay in the store until peerTTL, so what
 * each holds is what every major GC walks): the shared piece-cost windows, edge sets and
 * bitsets that exist only while they hold something, and what a finished peer still answers.
 */
import * as v8 from 'node:v8';
import * as vm from 'node:vm';
import { silentLogger } from '../../../services/common/logger';
import { taskIdOf } from '../../../services/common/ids';
import type { AnnouncePeerRequest__Output, AnnouncePeerResponse, Download } from '../../../services/proto';
import { addEdge, removeEdge, removeInEdges } from '../../../services/scheduler/resource/model';
import { COST_WINDOW, PieceCosts } from '../../../services/scheduler/resource/piece-costs';
import { ResourceStore } from '../../../services/scheduler/resource/store';
import { SchedulerService, type PeerStream, type SchedulingSettings } from '../../../services/scheduler/service';
import { makeHost, makePeer, makeTask } from './helpers';

/** A deterministic pseudo-random sequence (tests repeat exactly). */
function rng(seed: number): () => number {
  let x = seed;
  return () => {
    x = (x * 1103515245 + 12345) % 2 ** 31;
    return x / 2 ** 31;
  };
}

/** The bad-parent test written out plainly over the kept costs: what PieceCosts must agree with. */
function slowByReference(costs: readonly number[]): boolean {
  const window = costs.slice(-COST_WINDOW);
  if (window.length < 2) return false;
  const last = window[window.length - 1];
  const earlier = window.slice(0, -1);
  const mean = earlier.reduce((a, b) => a + b, 0) / earlier.length;
  if (costs.length < COST_WINDOW) return last > 20 * mean;
  const variance = Math.max(0, earlier.reduce((a, b) => a + b * b, 0) / earlier.length - mean * mean);
  return last > mean + 3 * Math.sqrt(variance);
}

describe('PieceCosts', () => {
  test('each slot agrees with the plain bad-parent test, window full or not, slots interleaved', () => {
    const r = rng(7);
    const costs = new PieceCosts();
    const slots = Array.from({ length: 70 }, () => costs.alloc()); // past the first chunk
    const kept = slots.map(() => [] as number[]);
    let slow = 0;
    for (let i = 0; i < 40_000; i++) {
      const k = Math.floor(r() * slots.length);
      // Mostly steady costs with rare outliers, so both answers occur.
      const cost = r() < 0.02 ? 1e6 * (30 + 100 * r()) : 1e6 * (1 + r());
      costs.record(slots[k], cost);
      kept[k].push(cost);
      const expected = slowByReference(kept[k]);
      if (costs.isSlow(slots[k]) !== expected) throw new Error(`slot ${k} after ${kept[k].length} costs: expected ${expected}`);
      if (expected) slow++;
    }
    expect(slow).toBeGreaterThan(10);
    expect(kept.every((c) => c.length > COST_WINDOW)).toBe(true);
  });

  test('a released slot comes back empty; storage is bounded by the most slots held at once', () => {
    const costs = new PieceCosts();
    const a = costs.alloc();
    expect(costs.capacity).toBe(4); // a task with one serving peer keeps a small first chunk
    for (const c of [1e6, 1e6, 1e6, 90e6]) costs.record(a, c);
    expect(costs.isSlow(a)).toBe(true);
    costs.release(a);
    const b = costs.alloc();
    expect(b).toBe(a);
    expect(costs.isSlow(b)).toBe(false);
    costs.record(b, 1e6);
    expect(costs.isSlow(b)).toBe(false);
    costs.release(b);

    for (let round = 0; round < 5; round++) {
      const held = Array.from({ length: 150 }, () => costs.alloc());
      expect(new Set(held).size).toBe(150);
      expect(costs.size).toBe(150);
      for (const s of held) costs.release(s);
      expect(costs.size).toBe(0);
    }
    expect(costs.capacity).toBe(192); // three chunks of 64, whatever the number of rounds
    expect(() => costs.release(10_000)).toThrow(RangeError);
  });
});

describe('compact peer', () => {
  test('edge sets exist only while they hold an edge', () => {
    const task = makeTask();
    const parent = makePeer(task, makeHost(), 'Succeeded');
    const child = makePeer(task, makeHost(), 'Running');
    const other = makePeer(task, makeHost(), 'Running');
    const none = other.parents;
    expect(addEdge(parent, child)).toBe(true);
    expect([...child.parents]).toEqual([parent]);
    expect([...parent.children]).toEqual([child]);
    expect(parent.host.assignedChildren).toBe(1);
    removeEdge(parent, child);
    // Both ends went back to the one shared empty set.
    expect(child.parents).toBe(none);
    expect(parent.children).toBe(none);
    expect(parent.host.assignedChildren).toBe(0);
    expect(addEdge(parent, child)).toBe(true);
    expect(addEdge(other, child)).toBe(true);
    removeInEdges(child);
    expect(child.parents).toBe(none);
    expect(parent.children).toBe(none);
    expect(other.children).toBe(none);
  });

  test('an edge set losing its last edge is dropped whole, not emptied (V8 reallocates an emptied Set)', () => {
    const task = makeTask();
    const [a, b] = [makePeer(task, makeHost(), 'Succeeded'), makePeer(task, makeHost(), 'Succeeded')];
    const child = makePeer(task, makeHost(), 'Running');
    expect(addEdge(a, child) && addEdge(b, child)).toBe(true);
    const parents = child.parents;
    const aChildren = a.children;
    removeEdge(a, child);
    // Two members: the one set loses one.
    expect(child.parents).toBe(parents);
    expect([...parents]).toEqual([b]);
    // One member: the set is let go as it was.
    expect(a.children).not.toBe(aChildren);
    expect([...aChildren]).toEqual([child]);
    removeEdge(b, child);
    expect(child.parents.size).toBe(0);
    expect([...parents]).toEqual([b]);
    expect(b.host.assignedChildren + a.host.assignedChildren).toBe(0);
  });

  test('pieces: a bitset while downloading, the whole task once it succeeded', () => {
    const task = makeTask(40);
    const a = makePeer(task, makeHost(), 'Running');
    const b = makePeer(task, makeHost(), 'Running');
    expect(a.finishedPieceCount()).toBe(0);
    expect(a.holdsPieceNotIn(b)).toBe(false);
    expect(a.markPiece(3)).toBe(true);
    expect(a.markPiece(3)).toBe(false);
    expect(a.markPiece(39)).toBe(true);
    expect(a.holdsPieceNotIn(b)).toBe(true);
    expect(b.markPiece(3)).toBe(true);
    expect(b.holdsPieceNotIn(a)).toBe(false);
    expect(a.pieceNumbers()).toEqual([3, 39]);

    a.state = 'Succeeded';
    a.markAllPieces();
    expect(a.finishedPieceCount()).toBe(40);
    expect(a.pieceNumbers()).toEqual(Array.from({ length: 40 }, (_, i) => i));
    expect(a.markPiece(7)).toBe(false);
    expect(a.holdsPieceNotIn(b)).toBe(true);
    expect(b.holdsPieceNotIn(a)).toBe(false);
    // Still the whole task after it leaves (StatPeer keeps answering until it is collected).
    a.state = 'Leave';
    expect(a.finishedPieceCount()).toBe(40);

    // An empty task (no piece count) keeps what was reported.
    const empty = makeTask(0);
    const e = makePeer(empty, makeHost(), 'Running');
    e.markAllPieces();
    expect(e.finishedPieceCount()).toBe(0);
    expect(e.pieceNumbers()).toEqual([]);
  });

  test('pool membership is a field: a peer of another task is refused, removal keeps slots consistent', () => {
    const task = makeTask();
    const elsewhere = makePeer(makeTask(), makeHost(), 'Running');
    expect(() => task.addToPool(elsewhere)).toThrow(RangeError);
    expect(task.inPool(elsewhere)).toBe(false);
    const peers = Array.from({ length: 6 }, () => makePeer(task, makeHost(), 'Succeeded'));
    task.removeFromPool(peers[1]);
    task.removeFromPool(peers[4]);
    expect(peers.map((p) => task.inPool(p))).toEqual([true, false, true, true, false, true]);
    expect(task.addToPool(peers[1])).toBe(true);
    expect(task.addToPool(peers[1])).toBe(false);
    expect(task.poolSize).toBe(5);
  });
});

const MiB = 1024 * 1024;
const settings: SchedulingSettings = {
  candidateParentLimit: 4,
  filterParentLimit: 40,
  defaultUploadLimit: 50,
  backToSourceCount: 3,
  retryLimit: 5,
  retryBackToSourceLimit: 4,
  retryIntervalMs: 60_000,
  seedPeerEnabled: false,
};

/** The bench's peer workload on a SchedulerService: register, one piece from a parent, reschedule blaming it, finish, close. */
function fleet(tasks: number, hosts: number) {
  const store = new ResourceStore();
  const service = new SchedulerService({ store, settings: () => settings, trigger: { trigger: () => undefined, close: () => undefined }, logger: silentLogger() });
  const hostIds = Array.from({ length: hosts }, (_, h) => {
    const id = `10.1.${h >> 8}.${h & 255}-node${h}`;
    service.announceHost(
      {
        host: {
          id, type: 'NORMAL_HOST', hostname: `node${h}`, ip: `10.1.${h >> 8}.${h & 255}`, port: 65000, downloadPort: 65002,
          network: { idc: `idc-${h % 4}`, location: `cn|r${h % 3}`, maxTxBandwidth: 0, txBandwidth: 0 }, schedulerClusterId: 1, disableShared: false, proxyPort: 0,
          concurrentUploadLimit: 50, concurrentUploadCount: 0, uploadCount: 0, uploadFailedCount: 0,
        },
        intervalMs: 600_000,
      },
      `10.1.${h >> 8}.${h & 255}`,
    );
    return id;
  });
  const taskIds = Array.from({ length: tasks }, (_, t) => taskIdOf({ url: `http://origin/blob-${t}` }));
  const download = (t: number): Download => ({ url: `http://origin/blob-${t}`, filteredQueryParams: [], requestHeader: {} });
  /** Plays one peer; returns the answers it got. */
  const play = (peerId: string, h: number, t: number, origin = false): AnnouncePeerResponse[] => {
    const answers: AnnouncePeerResponse[] = [];
    const stream: PeerStream = { caller: `10.1.${h >> 8}.${h & 255}`, session: { send: (r) => answers.push(r), fail: () => undefined } };
    const msg = (body: Partial<AnnouncePeerRequest__Output>): AnnouncePeerRequest__Output => ({ hostId: hostIds[h], taskId: taskIds[t], peerId, ...body });
    service.handle(stream, msg({ request: 'registerPeerRequest', registerPeerRequest: { download: download(t) as never } }));
    if (origin) {
      service.handle(stream, msg({ request: 'downloadPeerBackToSourceStartedRequest', downloadPeerBackToSourceStartedRequest: { contentLength: 100 * 4 * MiB, pieceLength: 4 * MiB, responseHeader: {} } }));
      return answers;
    }
    const parent = answers[0]?.normalTaskResponse?.candidateParents?.[0]?.id ?? '';
    service.handle(stream, msg({ request: 'downloadPeerStartedRequest', downloadPeerStartedRequest: {} }));
    service.handle(stream, msg({ request: 'downloadPieceFinishedRequest', downloadPieceFinishedRequest: { piece: { number: 5, parentId: parent, length: 4 * MiB, trafficType: 'REMOTE_PEER', costNs: 1e6 } } as never }));
    service.handle(stream, msg({ request: 'reschedulePeerRequest', reschedulePeerRequest: { candidateParentIds: [parent] } }));
    service.handle(stream, msg({ request: 'downloadPeerFinishedRequest', downloadPeerFinishedRequest: { contentLength: 100 * 4 * MiB, pieceCount: 100 } }));
    service.streamClosed(stream);
    return answers;
  };
  return { store, service, taskIds, play };
}

describe('finished peers through the service', () => {
  test('a finished peer keeps answering StatPeer and serving as a parent; it drops its blocklist and request', () => {
    const f = fleet(1, 8);
    f.play('origin', 0, 0, true);
    f.play('a', 1, 0);
    const a = f.store.peers.get('a');
    expect(a?.state).toBe('Succeeded');
    expect(a?.blockedCount).toBe(0); // it blamed a parent while downloading
    expect(a?.request).toBeUndefined();
    const stat = f.service.statPeer('a');
    expect(stat.pieces).toHaveLength(100);
    expect(stat.pieces?.[99]).toEqual({ number: 99 });
    expect(stat.finishedPieceCount).toBe(100);
    // With the origin peer gone, a newcomer gets the finished peer as its parent.
    f.service.deletePeer('origin', f.store.peers.get('origin')?.host.owner ?? '');
    const [first] = f.play('b', 2, 0);
    expect(first.normalTaskResponse?.candidateParents?.map((p) => p.id)).toEqual(['a']);
    expect(first.normalTaskResponse?.candidateParents?.[0]?.finishedPieceCount).toBe(100);
  });

  test('piece-cost windows go back to the task when the store drops their peers', () => {
    const f = fleet(1, 6);
    f.play('origin', 0, 0, true);
    for (let i = 0; i < 5; i++) f.play(`p${i}`, 1 + i, 0);
    const task = f.store.tasks.get(f.taskIds[0]);
    // Every peer blamed and reported a piece from a parent: those parents hold windows.
    expect(task?.costWindowsHeld).toBeGreaterThan(0);
    for (const id of [...f.store.peers.keys()]) f.service.deletePeer(id, f.store.peers.get(id)?.host.owner ?? '');
    expect(task?.costWindowsHeld).toBe(0);
  });

  test('a finished peer costs a few hundred bytes of heap, not a kilobyte', () => {
    v8.setFlagsFromString('--expose-gc');
    const gc = vm.runInNewContext('gc') as () => void;
    const f = fleet(20, 600);
    for (let t = 0; t < 20; t++) f.play(`origin-${t}`, t, t, true);
    let n = 0;
    const round = (count: number): void => {
      for (let i = 0; i < count; i++, n++) f.play(`peer-${n}`, 20 + Math.floor(n / 20), n % 20); // each a new host+task pair
    };
    round(1_000);
    gc();
    gc();
    const before = process.memoryUsage().heapUsed;
    round(10_000);
    gc();
    gc();
    const perPeer = (process.memoryUsage().heapUsed - before) / 10_000;
    expect(f.store.peers.size).toBe(11_020);
    // About 380 bytes on Node 20 (the peer, its id, two timestamps, its entries in the store's
    // maps); it was about 1,250 with a bitset, three sets and a cost array per peer.
    expect(perPeer).toBeLessThan(600);
  });
});
