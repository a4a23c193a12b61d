/**
 * The download's parts with fakes: SchedulerSession over a fake AnnouncePeer stream,
 * PieceCollector over fake parents' SyncPieces streams, P2PFetch over fake piece fetches, and
 * the one mapping of download errors to gRPC codes and proxy statuses.
 */
import { EventEmitter } from 'node:events';
import * as grpc from '@grpc/grpc-js';
import { LocalStorageError, silentLogger, toGrpcError } from '../../../services/common';
import type { AnnouncePeerRequest, AnnouncePeerResponse__Output, Peer__Output } from '../../../services/proto';
import {
  ContentDigestMismatchError,
  downloadError,
  NoParentsError,
  proxyStatusOf,
  SchedulerLostError,
  SchedulerTimeoutError,
} from '../../../services/dfdaemon/download-errors';
import { MAX_BUSY_REFUSALS, P2PFetch, parentBounds, pickParent, pickPiece } from '../../../services/dfdaemon/p2p-fetch';
import { PieceHttpError } from '../../../services/dfdaemon/piece-transfer';
import { MAX_PARENTS, PieceCollector, type Parent } from '../../../services/dfdaemon/piece-collector';
import { MAX_QUEUED_ANSWERS, SchedulerSession } from '../../../services/dfdaemon/scheduler-session';
import { OriginResponseError } from '../../../services/dfdaemon/task-api';

class FakeAnnounceStream extends EventEmitter {
  readonly written: AnnouncePeerRequest[] = [];
  writableEnded = false;
  destroyed = false;
  cancelled = false;
  write(req: AnnouncePeerRequest) {
    this.written.push(req);
    return true;
  }
  end() {
    this.writableEnded = true;
  }
  cancel() {
    this.cancelled = true;
    this.destroyed = true;
  }
  answer(r: Partial<AnnouncePeerResponse__Output>) {
    this.emit('data', r);
  }
}

const ids = { hostId: 'h', taskId: 't', peerId: 'p' };

describe('SchedulerSession (fake AnnouncePeer stream)', () => {
  it('stamps our ids on every report and stops sending once closed', () => {
    const s = new FakeAnnounceStream();
    const session = new SchedulerSession(s, ids);
    session.send({ downloadPeerStartedRequest: {} });
    session.close();
    session.send({ downloadPeerFinishedRequest: { contentLength: 1, pieceCount: 1 } });
    expect(s.written).toEqual([{ ...ids, downloadPeerStartedRequest: {} }]);
  });

  it('next() returns answers in order, then undefined when the scheduler ends the stream', async () => {
    const s = new FakeAnnounceStream();
    const session = new SchedulerSession(s, ids);
    setTimeout(() => {
      s.answer({ response: 'waitResponse' });
      s.answer({ response: 'needBackToSourceResponse' });
      s.emit('end');
    }, 5);
    expect((await session.next(1000))?.response).toBe('waitResponse');
    expect((await session.next(1000))?.response).toBe('needBackToSourceResponse');
    expect(await session.next(1000)).toBeUndefined();
    expect(session.ended).toBeNull();
  });

  it('next() fails with SchedulerTimeoutError after the timeout of silence', async () => {
    const session = new SchedulerSession(new FakeAnnounceStream(), ids);
    await expect(session.next(30)).rejects.toBeInstanceOf(SchedulerTimeoutError);
  });

  it('a stream error ends the session with that error and calls the hook', async () => {
    const s = new FakeAnnounceStream();
    const seen: number[] = [];
    const session = new SchedulerSession(s, ids, { onStreamError: (e) => seen.push(e.code) });
    const err = Object.assign(new Error('gone'), { code: grpc.status.UNAVAILABLE });
    s.emit('error', err);
    expect(await session.waitForAnswer(1000).result).toBe('ended');
    expect(session.ended).toBe(err);
    expect(seen).toEqual([grpc.status.UNAVAILABLE]);
  });

  it('waitForAnswer can be interrupted, and is the async iterator underneath', async () => {
    const s = new FakeAnnounceStream();
    const session = new SchedulerSession(s, ids);
    const w = session.waitForAnswer(10_000);
    w.interrupt();
    expect(await w.result).toBe('woken');
    setTimeout(() => {
      s.answer({ response: 'waitResponse' });
      s.answer({ response: 'waitResponse' });
      s.emit('end');
    }, 5);
    const got: string[] = [];
    for await (const r of session) got.push(r.response ?? '');
    expect(got).toEqual(['waitResponse', 'waitResponse']);
  });

  it('a scheduler flooding unread answers is cut off at the bound', () => {
    const s = new FakeAnnounceStream();
    const session = new SchedulerSession(s, ids);
    for (let i = 0; i <= MAX_QUEUED_ANSWERS; i++) s.answer({ response: 'waitResponse' });
    expect(session.pending).toBe(MAX_QUEUED_ANSWERS);
    expect(s.cancelled).toBe(true);
    expect(session.ended?.message).toMatch(/unread answers/);
  });

  it('a detached session (no scheduler) accepts reports and is over at once', async () => {
    const session = SchedulerSession.detached();
    session.send({ downloadPeerStartedRequest: {} });
    expect(session.connected).toBe(false);
    expect(await session.next(10)).toBeUndefined();
  });
});

class FakeSync extends EventEmitter {
  cancelled = false;
  cancel() {
    this.cancelled = true;
  }
}

function candidate(id: string, ip = '10.0.0.1', port = 65000): Peer__Output {
  return { id, host: { id: `host-${id}`, ip, port, downloadPort: 65002 } } as unknown as Peer__Output;
}

function seedCandidate(id: string): Peer__Output {
  return { id, host: { id: `host-${id}`, type: 'SUPER_HOST', ip: '10.0.0.9', port: 65000, downloadPort: 65002 } } as unknown as Peer__Output;
}

function collectorWith(pieceCount: number | undefined) {
  const syncs = new Map<string, FakeSync>();
  const blocked: Array<{ peer: string; piece: number | undefined; report: boolean }> = [];
  let changes = 0;
  const collector = new PieceCollector({
    selfPeerId: 'me',
    pieceCount: () => pieceCount,
    openSync: (p) => {
      const s = new FakeSync();
      syncs.set(p.peerId, s);
      return s;
    },
    onBlocked: (p, piece, report) => blocked.push({ peer: p.peerId, piece, report }),
    onChange: () => changes++,
    log: silentLogger(),
  });
  return { collector, syncs, blocked, changes: () => changes };
}

describe('PieceCollector (fake parents)', () => {
  it('syncs each new candidate once, skipping ourselves and unusable addresses', () => {
    const { collector, syncs } = collectorWith(4);
    collector.add([candidate('a'), candidate('a'), candidate('me'), candidate('bad-ip', 'not-an-ip'), candidate('bad-port', '10.0.0.2', 0), candidate('b')]);
    expect([...syncs.keys()]).toEqual(['a', 'b']);
    expect(collector.usable().map((p) => p.peerId)).toEqual(['a', 'b']);
  });

  it('records announced pieces and wakes the fetch', () => {
    const { collector, syncs, changes } = collectorWith(4);
    collector.add([candidate('a')]);
    const before = changes();
    syncs.get('a')!.emit('data', { number: 2, digest: 'crc32:123' });
    expect(collector.usable()[0].digests.get(2)).toBe('crc32:123');
    expect(changes()).toBe(before + 1);
  });

  it.each([
    ['a piece past the end', { number: 4, digest: 'crc32:1' }],
    ['a foreign digest', { number: 1, digest: 'sha256:abc' }],
  ])('blocks (and reports) a parent announcing %s', (_name, announcement) => {
    const { collector, syncs, blocked } = collectorWith(4);
    collector.add([candidate('a')]);
    syncs.get('a')!.emit('data', announcement);
    expect(blocked).toEqual([{ peer: 'a', piece: undefined, report: true }]);
    expect(syncs.get('a')!.cancelled).toBe(true);
    expect(collector.usable()).toEqual([]);
    expect(collector.failedIds()).toEqual(['a']);
    // A blocked parent is never offered again.
    collector.add([candidate('a')]);
    expect(collector.usable()).toEqual([]);
  });

  it('a sync that fails before announcing anything blocks the parent silently; a cancelled one does not', () => {
    const { collector, syncs, blocked } = collectorWith(4);
    collector.add([candidate('a'), candidate('b')]);
    syncs.get('a')!.emit('error', Object.assign(new Error('refused'), { code: grpc.status.UNAVAILABLE }));
    syncs.get('b')!.emit('error', Object.assign(new Error('cancelled'), { code: grpc.status.CANCELLED }));
    expect(blocked).toEqual([{ peer: 'a', piece: undefined, report: false }]);
    expect(collector.usable().map((p) => p.peerId)).toEqual(['b']);
  });

  it('hopeful: while a sync is open, or an ended parent announced a missing piece', () => {
    const { collector, syncs } = collectorWith(4);
    collector.add([candidate('a')]);
    expect(collector.hopeful([0])).toBe(true);
    syncs.get('a')!.emit('data', { number: 1, digest: 'crc32:1' });
    syncs.get('a')!.emit('end');
    expect(collector.hopeful([1])).toBe(true);
    expect(collector.hopeful([0])).toBe(false);
  });

  it(`keeps at most ${MAX_PARENTS} parents`, () => {
    const { collector } = collectorWith(4);
    collector.add(Array.from({ length: MAX_PARENTS + 5 }, (_, i) => candidate(`p${i}`)));
    expect(collector.usable()).toHaveLength(MAX_PARENTS);
  });
});

describe('P2PFetch (fake parents and piece fetches)', () => {
  function setup(pieceCount: number, fetchPiece: (n: number, p: Parent) => Promise<string>, concurrency = 2, idleMs = 10_000, busyRetryMs?: number) {
    const stored = new Set<number>();
    const { collector, syncs, blocked } = collectorWith(pieceCount);
    const noParents: number[][] = [];
    const errors: Array<{ n: number; peer: string }> = [];
    const fetch = new P2PFetch({
      task: { pieceCount, get finishedPieceCount() { return stored.size; }, hasPiece: (n) => stored.has(n) },
      collector,
      concurrency,
      idleMs,
      signal: new AbortController().signal,
      fetchPiece,
      onPiece: (n) => stored.add(n),
      onPieceError: async (n, p, err) => {
        if (err instanceof LocalStorageError) throw err;
        errors.push({ n, peer: p.peerId });
      },
      stopRequested: () => false,
      onNoParents: (m) => noParents.push([...m]),
      parentBusy: (err) => err instanceof PieceHttpError && err.status === 429,
      busyRetryMs,
      random: () => 0,
    });
    return { fetch, collector, syncs, blocked, stored, noParents, errors };
  }

  it('fetches every announced piece, lowest first, within the concurrency bound', async () => {
    let running = 0;
    let peak = 0;
    const order: number[] = [];
    const k = setup(6, async (n) => {
      order.push(n);
      running++;
      peak = Math.max(peak, running);
      await new Promise((r) => setTimeout(r, 2));
      running--;
      return `crc32:${n}`;
    });
    k.collector.add([candidate('a')]);
    for (let n = 0; n < 6; n++) k.syncs.get('a')!.emit('data', { number: n, digest: `crc32:${n}` });
    expect(await k.fetch.run()).toBe('done');
    expect([...k.stored].sort()).toEqual([0, 1, 2, 3, 4, 5]);
    expect(order).toEqual([0, 1, 2, 3, 4, 5]);
    expect(peak).toBe(2);
  });

  it('a failed piece blocks its parent; the piece comes from another; none left: reschedule with what is missing', async () => {
    const k = setup(3, async (n, p) => {
      if (p.peerId === 'bad') throw new Error('connection reset');
      if (n === 2) throw new Error('also bad');
      return `crc32:${n}`;
    });
    k.collector.add([candidate('bad'), candidate('good')]);
    for (const peer of ['bad', 'good']) for (let n = 0; n < 3; n++) k.syncs.get(peer)!.emit('data', { number: n, digest: `crc32:${n}` });
    for (const peer of ['bad', 'good']) k.syncs.get(peer)!.emit('end');
    expect(await k.fetch.run()).toBe('reschedule');
    expect(k.blocked.map((b) => b.peer).sort()).toEqual(['bad', 'good']);
    expect(k.blocked.every((b) => b.report)).toBe(true);
    expect(k.stored.has(0) || k.stored.has(1)).toBe(true);
    expect(k.noParents).toEqual([[2]]);
  });

  it('a parent out of upload slots (429) is retried after a pause, not blocked nor reported', async () => {
    const refused = new Set<number>();
    const k = setup(8, async (n) => {
      if (!refused.has(n)) {
        refused.add(n);
        throw new PieceHttpError(429, 'upload limit of 100 concurrent requests reached');
      }
      return `crc32:${n}`;
    }, 8, 10_000, 5);
    k.collector.add([candidate('seed')]);
    // Eight fetches in flight are refused at once: one refusal toward MAX_BUSY_REFUSALS, not eight.
    for (let n = 0; n < 8; n++) k.syncs.get('seed')!.emit('data', { number: n, digest: `crc32:${n}` });
    k.syncs.get('seed')!.emit('end');
    expect(await k.fetch.run()).toBe('done');
    expect([...k.stored].sort()).toEqual([0, 1, 2, 3, 4, 5, 6, 7]);
    expect(refused.size).toBe(8);
    expect(k.blocked).toEqual([]);
    expect(k.errors).toEqual([]);
    expect(k.noParents).toEqual([]);
  });

  it(`a parent refusing ${MAX_BUSY_REFUSALS + 1} times in a row is blocked like a failed one`, async () => {
    let calls = 0;
    const k = setup(1, async () => {
      calls++;
      throw new PieceHttpError(429, 'busy');
    }, 2, 10_000, 1);
    k.collector.add([candidate('seed')]);
    k.syncs.get('seed')!.emit('data', { number: 0, digest: 'crc32:0' });
    k.syncs.get('seed')!.emit('end');
    expect(await k.fetch.run()).toBe('reschedule');
    expect(calls).toBe(MAX_BUSY_REFUSALS + 1);
    expect(k.blocked).toEqual([{ peer: 'seed', piece: 0, report: true }]);
    expect(k.noParents).toEqual([[0]]);
  });

  it('an error of our own disk ends the fetch instead of blaming the parent', async () => {
    const k = setup(2, async () => {
      throw new LocalStorageError('disk full');
    });
    k.collector.add([candidate('a')]);
    k.syncs.get('a')!.emit('data', { number: 0, digest: 'crc32:0' });
    await expect(k.fetch.run()).rejects.toBeInstanceOf(LocalStorageError);
  });

  it('parents with open but silent syncs stop counting after idleMs: reschedule', async () => {
    const k = setup(2, async (n) => `crc32:${n}`, 2, 50);
    k.collector.add([candidate('a')]);
    const started = Date.now();
    expect(await k.fetch.run()).toBe('reschedule');
    expect(Date.now() - started).toBeGreaterThanOrEqual(45);
    expect(k.noParents).toEqual([[0, 1]]);
  });

  it('spares the seed: pieces a normal parent holds come from it; the seed gets its share of the concurrency', async () => {
    const inflight = new Map<string, number>();
    const peak = new Map<string, number>();
    const from = new Map<number, string>();
    let turn = 0;
    const k = setup(24, async (n, p) => {
      from.set(n, p.peerId);
      inflight.set(p.peerId, (inflight.get(p.peerId) ?? 0) + 1);
      peak.set(p.peerId, Math.max(peak.get(p.peerId) ?? 0, inflight.get(p.peerId)!));
      await new Promise((r) => setTimeout(r, 2 + (turn++ % 3)));
      inflight.set(p.peerId, inflight.get(p.peerId)! - 1);
      return `crc32:${n}`;
    }, 8);
    k.collector.add([seedCandidate('seed'), candidate('peer-a'), candidate('peer-b')]);
    expect(k.collector.usable().map((p) => [p.peerId, p.isSeed])).toEqual([['seed', true], ['peer-a', false], ['peer-b', false]]);
    // The seed holds everything; the normal parents hold the odd pieces (a) and every fourth (b).
    for (let n = 0; n < 24; n++) k.syncs.get('seed')!.emit('data', { number: n, digest: `crc32:${n}` });
    for (let n = 1; n < 24; n += 2) k.syncs.get('peer-a')!.emit('data', { number: n, digest: `crc32:${n}` });
    for (let n = 0; n < 24; n += 4) k.syncs.get('peer-b')!.emit('data', { number: n, digest: `crc32:${n}` });
    for (const id of ['seed', 'peer-a', 'peer-b']) k.syncs.get(id)!.emit('end');
    expect(await k.fetch.run()).toBe('done');
    expect(k.stored.size).toBe(24);
    // Every piece a normal parent held came from a normal parent; the seed gave only the others.
    for (const [n, parent] of from) {
      if (n % 2 === 1 || n % 4 === 0) expect(parent).not.toBe('seed');
      else expect(parent).toBe('seed');
    }
    // Two normal parents share: the seed's bound is ceil(8 / 3) = 3 pieces in flight.
    expect(peak.get('seed')).toBeLessThanOrEqual(3);
    expect(peak.get('seed')).toBeGreaterThan(0);
  });

  it('with only a seed peer, the whole concurrency goes to it', async () => {
    let running = 0;
    let peak = 0;
    const k = setup(16, async (n) => {
      running++;
      peak = Math.max(peak, running);
      await new Promise((r) => setTimeout(r, 3));
      running--;
      return `crc32:${n}`;
    }, 8);
    k.collector.add([seedCandidate('seed')]);
    for (let n = 0; n < 16; n++) k.syncs.get('seed')!.emit('data', { number: n, digest: `crc32:${n}` });
    k.syncs.get('seed')!.emit('end');
    expect(await k.fetch.run()).toBe('done');
    expect(peak).toBe(8);
  });

  it('parentBounds, pickPiece, pickParent', () => {
    const parent = (peerId: string, isSeed: boolean, extra: Partial<Parent> = {}): Parent => ({ peerId, hostId: peerId, ip: '10.0.0.1', grpcPort: 1, downloadPort: 2, isSeed, digests: new Map(), inflight: 0, blocked: false, syncEnded: false, ...extra });
    const seed = parent('seed', true);
    const a = parent('a', false);
    const b = parent('b', false, { inflight: 2 });
    // No normal parent: no bound below the concurrency; one per sharer plus the seed's own.
    expect(parentBounds([seed], 8)(seed)).toBe(8);
    expect(parentBounds([seed, a], 8)(seed)).toBe(4);
    expect(parentBounds([seed, a, b], 8)(seed)).toBe(3);
    expect(parentBounds([seed, a, b], 8)(a)).toBe(8);
    expect(parentBounds([seed, a, b], 2)(seed)).toBe(1);
    // A normal parent that ended its sync with nothing, or is blocked, cannot share: it does not count.
    expect(parentBounds([seed, parent('done', false, { syncEnded: true }), parent('x', false, { blocked: true })], 8)(seed)).toBe(8);
    // A normal holder before the seed, then the least loaded; the seed only when alone.
    expect(pickParent([seed, b], () => 0)).toBe(b);
    expect(pickParent([seed, b, a], () => 0.99)).toBe(a);
    expect(pickParent([seed], () => 0)).toBe(seed);
    // Pieces a normal parent holds first (random among them), else any in the window.
    const window = [{ n: 3, parents: [seed] }, { n: 4, parents: [seed, a] }, { n: 5, parents: [seed] }, { n: 6, parents: [b] }];
    expect(pickPiece(window, () => 0).n).toBe(4);
    expect(pickPiece(window, () => 0.99).n).toBe(6);
    expect(pickPiece([window[0], window[2]], () => 0.99).n).toBe(5);
  });

  it('waits for announcements while a sync is open (woken by the collector)', async () => {
    const k = setup(1, async (n) => `crc32:${n}`);
    const collector = k.collector;
    collector.add([candidate('a')]);
    const run = k.fetch.run();
    // The collector's onChange is wired to the fake counter here, so wake by hand as TaskDownload does.
    setTimeout(() => {
      k.syncs.get('a')!.emit('data', { number: 0, digest: 'crc32:0' });
      k.fetch.wake();
    }, 10);
    expect(await run).toBe('done');
  });
});

describe('download errors map to gRPC codes and proxy statuses in one place', () => {
  it.each([
    [new ContentDigestMismatchError('x'), grpc.status.FAILED_PRECONDITION, 502],
    [new SchedulerLostError('x'), grpc.status.UNAVAILABLE, 503],
    [new SchedulerTimeoutError('x'), grpc.status.UNAVAILABLE, 503],
    [new NoParentsError('x'), grpc.status.FAILED_PRECONDITION, 502],
    [new LocalStorageError('x'), grpc.status.RESOURCE_EXHAUSTED, 507],
    [new OriginResponseError(401, {}, Buffer.alloc(0), 'u'), grpc.status.UNAUTHENTICATED, 502],
    [new OriginResponseError(500, {}, Buffer.alloc(0), 'u'), grpc.status.UNAVAILABLE, 503],
  ])('%s', (err, code, proxyStatus) => {
    expect(toGrpcError(downloadError(err)).code).toBe(code);
    expect(proxyStatusOf(downloadError(err)).status).toBe(proxyStatus);
  });
});
