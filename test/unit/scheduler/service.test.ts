import { silentLogger } from '../../../services/common/logger';
import type { DragonflyError } from '../../../services/common/errors';
import type { AnnouncePeerRequest__Output, AnnouncePeerResponse, AnnounceHostRequest__Output, Download } from '../../../services/proto';
import { ResourceStore } from '../../../services/scheduler/resource/store';
import type { SeedHost, SeedTrigger } from '../../../services/scheduler/seed-peers';
import { SEED_FAILURE_BACKOFF_MS, SEED_RETRY_MIN_MS, SchedulerService, seedRetryDelayMs, type PeerStream, type SchedulingSettings } from '../../../services/scheduler/service';
import { taskIdOf } from '../../../services/common/ids';

const MiB = 1024 * 1024;
const TASK_ID = taskIdOf({ url: 'http://origin/file', tag: 't', application: 'app', filteredQueryParams: ['X-Sig'] });

class FakeTrigger implements SeedTrigger {
  calls: { seed: SeedHost; download: Download; done: (err?: DragonflyError) => void }[] = [];
  trigger(seed: SeedHost, download: Download, onDone: (err?: DragonflyError) => void): void {
    this.calls.push({ seed, download, done: onDone });
  }
  close(): void {}
}

interface Client extends PeerStream {
  answers: AnnouncePeerResponse[];
  error?: DragonflyError;
  id: string;
  hostId: string;
}

const settings: SchedulingSettings = {
  candidateParentLimit: 3,
  filterParentLimit: 40,
  defaultUploadLimit: 50,
  backToSourceCount: 1,
  retryLimit: 3,
  retryBackToSourceLimit: 2,
  retryIntervalMs: 60_000,
  seedPeerEnabled: true,
};

/** Lets the end-of-turn pushes of the scheduler go out. */
const nextTurn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

function setup(over: Partial<SchedulingSettings> = {}) {
  let now = 1_000;
  const trigger = new FakeTrigger();
  const s = { ...settings, ...over };
  const seeds: SeedHost[] = [];
  const service = new SchedulerService({ store: new ResourceStore(), settings: () => s, trigger, managerSeeds: () => seeds, logger: silentLogger(), now: () => now });
  const announce = (n: number, seed = false, intervalMs = 10_000): string => {
    const id = `10.0.1.${n}-node${n}${seed ? '-seed' : ''}`;
    const req: AnnounceHostRequest__Output = {
      host: {
        id, type: seed ? 'SUPER_HOST' : 'NORMAL_HOST', hostname: `node${n}`, ip: `10.0.1.${n}`, port: 65000 + n, downloadPort: 56000 + n,
        network: { idc: '', location: '', maxTxBandwidth: 0, txBandwidth: 0 }, schedulerClusterId: 1, disableShared: false, proxyPort: 0,
        concurrentUploadLimit: 0, concurrentUploadCount: 0, uploadCount: 0, uploadFailedCount: 0,
      },
      intervalMs,
    };
    if (seed) seeds.push({ key: `10.0.1.${n}:${65000 + n}`, ip: `10.0.1.${n}`, port: 65000 + n, hostname: `node${n}` });
    service.announceHost(req, `10.0.1.${n}`);
    return id;
  };
  const send = (c: Client, body: Partial<AnnouncePeerRequest__Output>): void =>
    service.handle(c, { hostId: c.hostId, taskId: TASK_ID, peerId: c.id, ...body });
  const register = (hostId: string, peerId: string, needBackToSource = false): Client => {
    const c: Client = {
      caller: hostId.split('-')[0],
      id: peerId,
      hostId,
      answers: [],
      session: { send: (r) => c.answers.push(r), fail: (e) => (c.error = e) },
    };
    const download = { url: 'http://origin/file', requestHeader: { authorization: 'Bearer x' }, filteredQueryParams: ['X-Sig'], tag: 't', application: 'app', needBackToSource } as unknown as Download;
    send(c, { request: 'registerPeerRequest', registerPeerRequest: { download: download as never } });
    return c;
  };
  const last = (c: Client) => {
    const r = c.answers[c.answers.length - 1];
    return { ...r, response: r ? Object.keys(r).find((k) => k.endsWith('Response')) : undefined };
  };
  return { service, trigger, announce, register, send, last, advance: (ms: number) => (now += ms) };
}

describe('SchedulerService origin control', () => {
  test('the first peer triggers one seed peer, peers wait, then get the seed as parent once it starts', () => {
    const t = setup();
    const seedHost = t.announce(100, true);
    const a = t.register(t.announce(1), 'peer-a');
    const b = t.register(t.announce(2), 'peer-b');
    expect(t.last(a).response).toBe('waitResponse');
    expect(t.last(b).response).toBe('waitResponse');
    expect(t.trigger.calls).toHaveLength(1);
    expect(t.trigger.calls[0].seed).toMatchObject({ ip: '10.0.1.100', port: 65100 });
    expect(t.trigger.calls[0].download).toMatchObject({ url: 'http://origin/file', tag: 't', application: 'app', filteredQueryParams: ['X-Sig'], requestHeader: { authorization: 'Bearer x' } });

    const seed = t.register(seedHost, 'seed-peer', true);
    expect(t.last(seed).response).toBe('needBackToSourceResponse');
    expect(a.answers).toHaveLength(1);
    t.send(seed, { request: 'downloadPeerBackToSourceStartedRequest', downloadPeerBackToSourceStartedRequest: { contentLength: 40 * MiB, pieceLength: 10 * MiB, responseHeader: { etag: 'x' } } });
    for (const c of [a, b]) {
      const r = t.last(c).normalTaskResponse;
      expect(r?.candidateParents?.map((p) => p.id)).toEqual(['seed-peer']);
      expect(r?.candidateParents?.[0].host).toMatchObject({ id: seedHost, ip: '10.0.1.100', port: 65100, downloadPort: 56100, type: 'SUPER_HOST' });
      expect(r?.task).toMatchObject({ contentLength: 40 * MiB, pieceLength: 10 * MiB, pieceCount: 4, responseHeader: { etag: 'x' } });
    }
    // Nobody but the seed was sent to the origin.
    expect([a, b].some((c) => c.answers.some((r) => r.needBackToSourceResponse !== undefined))).toBe(false);
  });

  test('a failed trigger lets at most backToSourceCount peers go to the origin; the others wait for them', () => {
    const t = setup({ backToSourceCount: 1 });
    t.announce(100, true);
    const a = t.register(t.announce(1), 'peer-a');
    const b = t.register(t.announce(2), 'peer-b');
    t.trigger.calls[0].done({ kind: 'Unavailable', message: 'connect refused' } as DragonflyError);
    const answers = [t.last(a).response, t.last(b).response].sort();
    expect(answers).toEqual(['needBackToSourceResponse', 'waitResponse']);
    const [origin, waiter] = t.last(a).response === 'needBackToSourceResponse' ? [a, b] : [b, a];
    t.send(origin, { request: 'downloadPeerBackToSourceStartedRequest', downloadPeerBackToSourceStartedRequest: { contentLength: 40 * MiB, pieceLength: 10 * MiB, responseHeader: {} } });
    expect(t.last(waiter).normalTaskResponse?.candidateParents?.map((p) => p.id)).toEqual([origin.id]);
  });

  test('a seed that failed a task is tried again after a backoff (2 s, doubling), not banned for 30 minutes', () => {
    const t = setup({ backToSourceCount: 1 });
    t.announce(100, true);
    const failAll = (c: Client) => t.send(c, { request: 'downloadPeerBackToSourceFailedRequest', downloadPeerBackToSourceFailedRequest: { description: 'x' } });
    const a = t.register(t.announce(1), 'peer-a');
    expect(t.trigger.calls).toHaveLength(1);
    t.trigger.calls[0].done({ kind: 'Unavailable', message: 'scheduler restarted under the seed' } as DragonflyError);
    failAll(a);
    t.advance(SEED_RETRY_MIN_MS + 1);
    const b = t.register(t.announce(2), 'peer-b');
    expect(t.trigger.calls).toHaveLength(2); // retried after 2 s
    t.trigger.calls[1].done({ kind: 'Unavailable', message: 'again' } as DragonflyError);
    failAll(b);
    t.advance(SEED_RETRY_MIN_MS + 1);
    const c = t.register(t.announce(3), 'peer-c');
    expect(t.trigger.calls).toHaveLength(2); // second failure in a row: 4 s
    failAll(c);
    t.advance(2 * SEED_RETRY_MIN_MS);
    t.register(t.announce(4), 'peer-d');
    expect(t.trigger.calls).toHaveLength(3);
    expect(seedRetryDelayMs(0)).toBe(0);
    expect(seedRetryDelayMs(1)).toBe(2_000);
    expect(seedRetryDelayMs(3)).toBe(8_000);
    expect(seedRetryDelayMs(40)).toBe(SEED_FAILURE_BACKOFF_MS);
  });

  describe('the origin dies under the seed while peers download from it (issue 12, kill -9 of the origin)', () => {
    const piece = (n: number, parentId: string) =>
      ({ request: 'downloadPieceFinishedRequest', downloadPieceFinishedRequest: { piece: { number: n, parentId, offset: n * 10 * MiB, length: 10 * MiB, digest: '', trafficType: 'REMOTE_PEER', costNs: 1000, createdAtMs: 0 } } }) as never;
    /** A seed fetching a 4-piece task from the origin, and `peers` that hold piece 0 from it. */
    const seedServing = (peers: number) => {
      const t = setup({ backToSourceCount: 1 });
      const seedHost = t.announce(100, true);
      const clients = Array.from({ length: peers }, (_, i) => t.register(t.announce(i + 1), `peer-${i}`));
      const seed = t.register(seedHost, 'seed-peer', true);
      t.send(seed, { request: 'downloadPeerBackToSourceStartedRequest', downloadPeerBackToSourceStartedRequest: { contentLength: 40 * MiB, pieceLength: 10 * MiB, responseHeader: {} } });
      for (const c of clients) {
        expect(t.last(c).normalTaskResponse?.candidateParents?.map((p) => p.id)).toContain('seed-peer');
        t.send(c, { request: 'downloadPeerStartedRequest', downloadPeerStartedRequest: {} });
        t.send(c, piece(0, 'seed-peer'));
      }
      const seedFails = () => t.send(seed, { request: 'downloadPeerBackToSourceFailedRequest', downloadPeerBackToSourceFailedRequest: { description: 'connect ECONNREFUSED' } });
      return { t, clients, seedFails };
    };

    test('a peer holding the first pieces is not kept waiting on itself: it is sent to the origin', () => {
      const { t, clients, seedFails } = seedServing(1);
      const [a] = clients;
      // The seed's trigger call ends first, then its failure report arrives.
      t.trigger.calls[0].done({ kind: 'Unavailable', message: 'connect ECONNREFUSED' } as DragonflyError);
      seedFails();
      expect(t.last(a).response).toBe('needBackToSourceResponse');
    });

    test('peers stuck with the same pieces do not wait for each other: one goes to the origin, the other waits for it', () => {
      const { t, clients, seedFails } = seedServing(2);
      // The failure report first, while the trigger is still pending: the peers (each the other's
      // second parent) find no piece left to fetch and ask again; waiting is right until the trigger ends.
      seedFails();
      for (const c of clients) t.send(c, { request: 'reschedulePeerRequest', reschedulePeerRequest: { candidateParentIds: ['seed-peer'] } });
      for (const c of clients) expect(t.last(c).response).toBe('waitResponse');
      t.trigger.calls[0].done({ kind: 'Unavailable', message: 'connect ECONNREFUSED' } as DragonflyError);
      const answers = clients.map((c) => t.last(c).response).sort();
      expect(answers).toEqual(['needBackToSourceResponse', 'waitResponse']);
      const [toOrigin, waiter] = t.last(clients[0]).response === 'needBackToSourceResponse' ? clients : [...clients].reverse();
      // A later pull of the task is not blocked by the seed's failure either: the peer at the origin is its parent.
      t.send(toOrigin, { request: 'downloadPeerBackToSourceStartedRequest', downloadPeerBackToSourceStartedRequest: { contentLength: 40 * MiB, pieceLength: 10 * MiB, responseHeader: {} } });
      const later = t.register(t.announce(9), 'peer-later');
      expect(t.last(later).normalTaskResponse?.candidateParents?.map((p) => p.id)).toContain(toOrigin.id);
      expect(t.last(waiter).response).toBe('waitResponse');
    });
  });

  test('without any seed host the first peer goes to the origin itself', () => {
    const t = setup();
    const a = t.register(t.announce(1), 'peer-a');
    expect(t.last(a).response).toBe('needBackToSourceResponse');
    expect(t.trigger.calls).toHaveLength(0);
  });

  test('a new parent is pushed to an under-served child; reschedule blocks parents; retry limits', async () => {
    const t = setup({ backToSourceCount: 0 });
    const seedHost = t.announce(100, true);
    const a = t.register(t.announce(1), 'peer-a');
    const seed = t.register(seedHost, 'seed-peer', true);
    t.send(seed, { request: 'downloadPeerBackToSourceStartedRequest', downloadPeerBackToSourceStartedRequest: { contentLength: 40 * MiB, pieceLength: 10 * MiB, responseHeader: {} } });
    const b = t.register(t.announce(2), 'peer-b');
    expect(t.last(b).normalTaskResponse?.candidateParents?.map((p) => p.id)).toEqual(['seed-peer']);
    t.send(a, { request: 'downloadPeerStartedRequest', downloadPeerStartedRequest: {} });
    t.send(b, { request: 'downloadPeerStartedRequest', downloadPeerStartedRequest: {} });
    // a stores its first piece (from the seed): b gets a as an extra parent while a is still downloading.
    t.send(a, { request: 'downloadPieceFinishedRequest', downloadPieceFinishedRequest: { piece: { number: 0, parentId: 'seed-peer', offset: 0, length: 10 * MiB, digest: '', trafficType: 'REMOTE_PEER', costNs: 1000, createdAtMs: 0 } } as never });
    // The push goes out at the end of this turn of the event loop.
    expect(b.answers).toHaveLength(1);
    await nextTurn();
    expect(b.answers).toHaveLength(2);
    expect(t.last(b).normalTaskResponse?.candidateParents?.map((p) => p.id).sort()).toEqual(['peer-a', 'seed-peer']);
    // b reschedules blaming both: nothing left, it waits; after retryLimit it fails.
    t.send(b, { request: 'reschedulePeerRequest', reschedulePeerRequest: { candidateParentIds: ['peer-a', 'seed-peer'] } });
    expect(t.last(b).response).toBe('waitResponse');
    t.send(b, { request: 'reschedulePeerRequest', reschedulePeerRequest: { candidateParentIds: [] } });
    t.send(b, { request: 'reschedulePeerRequest', reschedulePeerRequest: { candidateParentIds: [] } });
    expect(b.error?.kind).toBe('FailedPrecondition');
  });

  test('top-ups of one turn go out as one push per child, and none to a child answered in that turn', async () => {
    const t = setup({ backToSourceCount: 0 });
    const seedHost = t.announce(100, true);
    const seed = t.register(seedHost, 'seed-peer', true);
    t.send(seed, { request: 'downloadPeerBackToSourceStartedRequest', downloadPeerBackToSourceStartedRequest: { contentLength: 40 * MiB, pieceLength: 10 * MiB, responseHeader: {} } });
    // Four peers that start with the seed as their only parent (under-served: limit 3).
    const [a, b, c, d] = [1, 2, 3, 4].map((n) => t.register(t.announce(n), `peer-${n}`));
    for (const p of [a, b, c, d]) {
      expect(t.last(p).normalTaskResponse?.candidateParents?.map((x) => x.id)).toEqual(['seed-peer']);
      t.send(p, { request: 'downloadPeerStartedRequest', downloadPeerStartedRequest: {} });
    }
    const piece = (p: Client, n: number): void =>
      t.send(p, { request: 'downloadPieceFinishedRequest', downloadPieceFinishedRequest: { piece: { number: n, parentId: 'seed-peer', offset: 0, length: 10 * MiB, digest: '', trafficType: 'REMOTE_PEER', costNs: 1000, createdAtMs: 0 } } as never });
    // In one turn a and b get their first pieces (each becomes a parent for the others) and d reschedules.
    piece(a, 0);
    piece(b, 1);
    t.send(d, { request: 'reschedulePeerRequest', reschedulePeerRequest: { candidateParentIds: [] } });
    const dAnswers = d.answers.length;
    expect(c.answers).toHaveLength(1);
    await nextTurn();
    // c: one push naming both new parents.
    expect(c.answers).toHaveLength(2);
    expect(t.last(c).normalTaskResponse?.candidateParents?.map((x) => x.id).sort()).toEqual(['peer-1', 'peer-2', 'seed-peer']);
    // d: its reschedule answer already carried its parents; no push after it.
    expect(d.answers).toHaveLength(dAnswers);
    // b got a as an extra parent (one push); a not b, which would close a cycle.
    expect(t.last(b).normalTaskResponse?.candidateParents?.map((x) => x.id).sort()).toEqual(['peer-1', 'seed-peer']);
    expect(b.answers).toHaveLength(2);
    expect(a.answers).toHaveLength(1);
    // A child that left before the turn ended gets nothing.
    piece(c, 2);
    t.service.streamClosed(d);
    const before = d.answers.length;
    await nextTurn();
    expect(d.answers).toHaveLength(before);
    t.service.close();
  });

  test('a host that asks for a finished task again (cache wiped) loses its earlier peer and gets the others as parents', () => {
    const t = setup();
    const seedHost = t.announce(100, true);
    const h1 = t.announce(1);
    const a = t.register(h1, 'peer-a');
    const seed = t.register(seedHost, 'seed-peer', true);
    t.send(seed, { request: 'downloadPeerBackToSourceStartedRequest', downloadPeerBackToSourceStartedRequest: { contentLength: 40 * MiB, pieceLength: 10 * MiB, responseHeader: {} } });
    t.send(seed, { request: 'downloadPeerBackToSourceFinishedRequest', downloadPeerBackToSourceFinishedRequest: { contentLength: 40 * MiB, pieceCount: 4, pieceLength: 10 * MiB, responseHeader: {} } });
    t.send(a, { request: 'downloadPeerStartedRequest', downloadPeerStartedRequest: {} });
    t.send(a, { request: 'downloadPeerFinishedRequest', downloadPeerFinishedRequest: { contentLength: 40 * MiB, pieceCount: 4 } });
    expect(t.service.store.peers.get('peer-a')?.state).toBe('Succeeded');
    t.service.streamClosed(a);

    // Same host, restarted with an empty cache: a new peer id for the same task.
    const again = t.register(h1, 'peer-a2');
    expect(t.service.store.peers.has('peer-a')).toBe(false);
    expect(t.last(again).normalTaskResponse?.candidateParents?.map((p) => p.id)).toEqual(['seed-peer']);
    // A peer of the same host still on its stream is not dropped by another registration.
    t.register(h1, 'peer-a3');
    expect(t.service.store.peers.has('peer-a2')).toBe(true);
    // Another host is never offered the dropped peer.
    const b = t.register(t.announce(2), 'peer-b');
    expect(t.last(b).normalTaskResponse?.candidateParents?.map((p) => p.id)).not.toContain('peer-a');
  });

  test('a host with more peers than the task re-registers it: only its earlier peer of that task goes', () => {
    const t = setup();
    const h1 = t.announce(1);
    // Disconnected peers of h1 on two other tasks: h1 holds more peers than TASK_ID has.
    for (const [n, url] of ['http://origin/other-1', 'http://origin/other-2'].entries()) {
      const c: PeerStream = { caller: '10.0.1.1', session: { send: () => undefined, fail: () => undefined } };
      t.service.handle(c, { hostId: h1, taskId: taskIdOf({ url }), peerId: `other-${n}`, request: 'registerPeerRequest', registerPeerRequest: { download: { url, filteredQueryParams: [], requestHeader: {} } as never } });
      t.service.streamClosed(c);
    }
    const a = t.register(h1, 'peer-a');
    t.service.streamClosed(a);
    expect([...t.service.store.peers.keys()].sort()).toEqual(['other-0', 'other-1', 'peer-a']);
    t.register(h1, 'peer-a2');
    expect([...t.service.store.peers.keys()].sort()).toEqual(['other-0', 'other-1', 'peer-a2']);
  });

  test('finished, stat and empty tasks', () => {
    const t = setup();
    const a = t.register(t.announce(1), 'peer-a');
    expect(t.last(a).response).toBe('needBackToSourceResponse');
    t.send(a, { request: 'downloadPeerBackToSourceStartedRequest', downloadPeerBackToSourceStartedRequest: { contentLength: 0, pieceLength: 4 * MiB, responseHeader: {} } });
    t.send(a, { request: 'downloadPeerBackToSourceFinishedRequest', downloadPeerBackToSourceFinishedRequest: { contentLength: 0, pieceCount: 0, pieceLength: 4 * MiB, responseHeader: {} } });
    expect(t.service.statTask(TASK_ID)).toMatchObject({ sizeScope: 'EMPTY', state: 'Succeeded' });
    const b = t.register(t.announce(2), 'peer-b');
    expect(t.last(b).response).toBe('emptyTaskResponse');
    expect(() => t.service.statTask('nope')).toThrow(/not found/);
    // Illegal transition: finishing again from a Pending-like state is refused.
    const c = t.register(t.announce(3), 'peer-c');
    expect(() => t.send(c, { request: 'downloadPeerStartedRequest', downloadPeerStartedRequest: {} })).not.toThrow();
  });

  test('GC removes silent hosts with their peers, left peers and empty tasks', () => {
    const t = setup();
    const h1 = t.announce(1, false, 1000);
    const a = t.register(h1, 'peer-a');
    t.service.streamClosed(a);
    expect(t.service.store.peers.get('peer-a')?.state).toBe('Leave');
    t.announce(2, false, 1000);
    t.advance(1500);
    t.announce(2, false, 1000);
    let r = t.service.gc({ hostTTLMs: 3_600_000, peerTTLMs: 86_400_000 });
    expect(r.peers).toEqual(['peer-a']);
    expect(r.tasks).toEqual([TASK_ID]);
    expect(r.hosts).toEqual([]);
    t.advance(1000);
    r = t.service.gc({ hostTTLMs: 3_600_000, peerTTLMs: 86_400_000 });
    expect(r.hosts).toEqual([h1]);
    expect(t.service.listHosts().map((h) => h.id)).toEqual(['10.0.1.2-node2']);
  });

  test('register without an announced host is NOT_FOUND; messages before register are refused', () => {
    const t = setup();
    expect(() => t.register('unknown-host', 'p')).toThrow(/not announced/);
    const c: Client = { caller: '10.0.0.1', id: 'x', hostId: 'h', answers: [], session: { send: () => undefined, fail: () => undefined } };
    expect(() => t.send(c, { request: 'downloadPeerStartedRequest', downloadPeerStartedRequest: {} })).toThrow(/before register_peer_request/);
  });
});
