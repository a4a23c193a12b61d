/** The scheduling modules called directly: decider, seed triggering and backoff, wait timers, peer scheduler. */
import type { DragonflyError } from '../../../services/common/errors';
import { silentLogger } from '../../../services/common/logger';
import type { AnnouncePeerResponse, Download } from '../../../services/proto';
import type { Peer, Task } from '../../../services/scheduler/resource/model';
import { Decider, dataOnItsWay, mayGoToOrigin } from '../../../services/scheduler/scheduling/decider';
import { PeerScheduler } from '../../../services/scheduler/scheduling/peer-scheduler';
import { SEED_RETRY_MIN_MS, SeedTriggering, seedRetryDelayMs } from '../../../services/scheduler/scheduling/seeds';
import { NO_EVENTS, type SchedulingSettings } from '../../../services/scheduler/scheduling/settings';
import { WaitTimers } from '../../../services/scheduler/scheduling/wait-timers';
import type { SeedHost, SeedTrigger } from '../../../services/scheduler/seed-peers';
import { WireShapes } from '../../../services/scheduler/wire-shapes';
import { makeHost, makePeer, makeTask } from './helpers';

const settings: SchedulingSettings = {
  candidateParentLimit: 2,
  filterParentLimit: 40,
  defaultUploadLimit: 50,
  backToSourceCount: 1,
  retryLimit: 3,
  retryBackToSourceLimit: 2,
  retryIntervalMs: 60_000,
  seedPeerEnabled: true,
};

class FakeTrigger implements SeedTrigger {
  calls: { seed: SeedHost; download: Download; done: (err?: DragonflyError) => void }[] = [];
  trigger(seed: SeedHost, download: Download, done: (err?: DragonflyError) => void): void {
    this.calls.push({ seed, download, done });
  }
  close(): void {}
}

const SEED: SeedHost = { key: '10.9.0.1:65000', ip: '10.9.0.1', port: 65000, hostname: 'seed' };

function fixture(over: { seeds?: SeedHost[]; requests?: Map<Peer, Download> } = {}) {
  let now = 10_000;
  const trigger = new FakeTrigger();
  const settled: Task[] = [];
  const seeds = new SeedTriggering({ trigger, hosts: () => [], trustedSeeds: () => over.seeds ?? [SEED], onSettled: (t) => settled.push(t), logger: silentLogger(), now: () => now });
  const requests = over.requests ?? new Map<Peer, Download>();
  const decider = new Decider({ seeds, requestOf: (p) => requests.get(p) });
  return { trigger, settled, seeds, decider, requests, advance: (ms: number) => (now += ms) };
}

/** A pending peer of `task` with no data, as after register. */
function newcomer(task: Task): Peer {
  return makePeer(task, makeHost(), 'Pending');
}

describe('Decider', () => {
  test('a seed peer is sent to the origin; a peer past retryLimit fails with FAILED_PRECONDITION', () => {
    const f = fixture();
    const task = makeTask();
    const seed = newcomer(task);
    seed.needBackToSource = true;
    expect(f.decider.decide(seed, settings)).toEqual({ kind: 'origin', reason: 'seed peer: fetch from the origin' });
    const tired = newcomer(task);
    tired.retryCount = settings.retryLimit;
    const d = f.decider.decide(tired, settings);
    expect(d.kind).toBe('fail');
    expect(d.kind === 'fail' && d.error.kind).toBe('FailedPrecondition');
  });

  test('an empty task is answered empty without parents or seeds', () => {
    const f = fixture();
    const empty = makeTask(0, 0);
    expect(f.decider.decide(newcomer(empty), settings)).toEqual({ kind: 'empty' });
    expect(f.trigger.calls).toHaveLength(0);
  });

  test('parents: the best holders, edges committed, under-served when fewer than the limit', () => {
    const f = fixture();
    const task = makeTask(10);
    const holder = makePeer(task, makeHost(), 'Succeeded');
    const child = newcomer(task);
    const d = f.decider.decide(child, settings);
    expect(d).toEqual({ kind: 'parents', parents: [holder] });
    expect([...child.parents]).toEqual([holder]);
    expect(holder.host.assignedChildren).toBe(1);
    expect(task.underServed.has(child)).toBe(true); // 1 < candidateParentLimit 2
    // Deciding again starts afresh: the old edge goes before the new choice.
    f.decider.decide(child, settings);
    expect(holder.host.assignedChildren).toBe(1);
  });

  test('nobody holds data: one seed trigger with the asking peer’s headers, then everyone waits', () => {
    const f = fixture();
    const task = makeTask();
    task.contentLength = undefined;
    const a = newcomer(task);
    f.requests.set(a, { url: task.info.url, requestHeader: { authorization: 'Bearer a' }, filteredQueryParams: [] });
    expect(f.decider.decide(a, settings)).toEqual({ kind: 'wait', reason: 'a seed peer is fetching the task' });
    expect(f.trigger.calls).toHaveLength(1);
    expect(f.trigger.calls[0].seed).toBe(SEED);
    expect(f.trigger.calls[0].download.requestHeader).toEqual({ authorization: 'Bearer a' });
    const b = newcomer(task);
    expect(dataOnItsWay(b, settings)).toBe(true);
    expect(f.decider.decide(b, settings)).toEqual({ kind: 'wait', reason: 'waiting for a parent that holds data' });
    expect(f.trigger.calls).toHaveLength(1);
  });

  test('a holder with nothing the peer lacks (the peer itself after its seed died) is no reason to wait', () => {
    const f = fixture();
    const task = makeTask(10);
    const stuck = makePeer(task, makeHost(), 'Running', [0, 1]);
    const sameCopy = makePeer(task, makeHost(), 'Running', [0, 1]);
    expect(dataOnItsWay(stuck, settings)).toBe(false);
    // No parent for it (the other holder has nothing it lacks), nothing on its way: the seed is asked again.
    expect(f.decider.decide(stuck, settings)).toEqual({ kind: 'wait', reason: 'a seed peer is fetching the task' });
    expect(f.trigger.calls).toHaveLength(1);
    expect(stuck.parents.has(sameCopy)).toBe(false);
  });

  test('no seed reachable: backToSourceCount peers go to the origin, the rest wait; disabled back-to-source fails', () => {
    const f = fixture({ seeds: [] });
    const task = makeTask();
    task.contentLength = undefined;
    const a = newcomer(task);
    expect(f.decider.decide(a, settings)).toEqual({ kind: 'origin', reason: 'no seed peer reachable' });
    const b = newcomer(task);
    expect(mayGoToOrigin(b, undefined, settings)).toBe(true); // a is not counted until it is sent
    task.originPeers.add(a);
    expect(mayGoToOrigin(b, undefined, settings)).toBe(false);
    expect(f.decider.decide(b, settings).kind).toBe('wait');
    const other = makeTask();
    other.contentLength = undefined;
    const strict = newcomer(other);
    f.requests.set(strict, { url: other.info.url, disableBackToSource: true });
    const d = f.decider.decide(strict, settings);
    expect(d.kind === 'fail' && d.error.message).toMatch(/back-to-source is disabled/);
  });

  test('retryBackToSourceLimit reschedules send a peer to the origin when a slot is free', () => {
    const f = fixture();
    const task = makeTask();
    makePeer(task, makeHost(), 'Succeeded');
    const p = newcomer(task);
    p.retryCount = settings.retryBackToSourceLimit;
    expect(f.decider.decide(p, settings).kind).toBe('origin');
  });
});

describe('SeedTriggering', () => {
  test('a failed trigger backs seeds off for the task (2 s, doubling); a success resets it', () => {
    const f = fixture();
    const task = makeTask();
    expect(f.seeds.trigger(task, undefined, settings)).toBe(true);
    expect(task.seedTriggerPending).toBe(true);
    f.trigger.calls[0].done({ kind: 'Unavailable', message: 'refused' } as DragonflyError);
    expect(task.seedTriggerPending).toBe(false);
    expect(f.settled).toEqual([task]);
    expect(task.seedFailures).toBe(1);
    expect(f.seeds.usable(task, settings)).toBe(false);
    f.advance(SEED_RETRY_MIN_MS + 1);
    expect(f.seeds.usable(task, settings)).toBe(true);
    f.seeds.failed(task);
    f.advance(SEED_RETRY_MIN_MS + 1);
    expect(f.seeds.usable(task, settings)).toBe(false); // 4 s now
    expect(seedRetryDelayMs(task.seedFailures)).toBe(2 * SEED_RETRY_MIN_MS);
    f.seeds.succeeded(task);
    expect(f.seeds.usable(task, settings)).toBe(true);
    expect(f.seeds.usable(task, { ...settings, seedPeerEnabled: false })).toBe(false);
  });

  test('a trigger that ends without anyone holding data counts as a failure', () => {
    const f = fixture();
    const task = makeTask();
    f.seeds.trigger(task, undefined, settings);
    f.trigger.calls[0].done();
    expect(task.seedFailures).toBe(1);
  });

  test('seed hosts: announced trusted SUPER hosts plus the trusted list, once each', () => {
    const superHost = makeHost({ type: 'SUPER_HOST', ip: '10.9.0.1', port: 65000, hostname: 'seed' });
    const seeds = new SeedTriggering({ trigger: new FakeTrigger(), hosts: () => [superHost, makeHost()], trustedSeeds: () => [SEED, { ...SEED, key: '10.9.0.2:65000', ip: '10.9.0.2' }], onSettled: () => undefined, logger: silentLogger(), now: () => 0 });
    expect(seeds.seedHosts().map((s) => s.key)).toEqual(['10.9.0.1:65000', '10.9.0.2:65000']);
  });
});

describe('WaitTimers', () => {
  beforeEach(() => jest.useFakeTimers());
  afterEach(() => jest.useRealTimers());

  test('one timer per task, jittered within ±25 % of the interval; cancel and retain drop them', () => {
    const timers = new WaitTimers(() => 0.5);
    const task = makeTask();
    const fired: Task[] = [];
    timers.arm(task, 1000, (t) => fired.push(t));
    timers.arm(task, 1000, (t) => fired.push(t));
    expect(timers.size).toBe(1);
    jest.advanceTimersByTime(999);
    expect(fired).toEqual([]);
    jest.advanceTimersByTime(1);
    expect(fired).toEqual([task]);
    expect(timers.has(task)).toBe(false);
    timers.arm(task, 1000, (t) => fired.push(t));
    timers.retain(() => false);
    const other = makeTask();
    timers.arm(other, 1000, (t) => fired.push(t));
    timers.cancel(other);
    jest.advanceTimersByTime(5000);
    expect(fired).toEqual([task]);
    expect(timers.size).toBe(0);
  });
});

describe('PeerScheduler', () => {
  function scheduler(decider: Decider, s: SchedulingSettings = settings) {
    return new PeerScheduler({ decider, settings: () => s, wire: new WireShapes(), taskHeld: () => true, events: NO_EVENTS, logger: silentLogger() });
  }
  function session(peer: Peer) {
    const answers: AnnouncePeerResponse[] = [];
    const errors: DragonflyError[] = [];
    peer.session = { send: (r) => answers.push(r), fail: (e) => errors.push(e) };
    return { answers, errors };
  }

  test('a waiting peer is told once, then gets parents when a peer starts holding data', () => {
    const f = fixture();
    const ps = scheduler(f.decider);
    const task = makeTask();
    task.contentLength = undefined;
    const child = newcomer(task);
    const out = session(child);
    ps.schedule(child);
    ps.schedule(child); // still waiting: no second wait_response
    expect(out.answers.map((a) => Object.keys(a)[0])).toEqual(['waitResponse']);
    task.setMetadata(40 * 1024 * 1024, 4 * 1024 * 1024);
    const parent = makePeer(task, makeHost(), 'Running', [0]);
    task.removeFromPool(parent); // becameParent adds it
    ps.becameParent(parent);
    expect(out.answers).toHaveLength(2);
    expect(out.answers[1].normalTaskResponse?.candidateParents?.map((p) => p.id)).toEqual([parent.id]);
    expect(child.state).toBe('ReceivedNormal');
    ps.close();
  });

  test('a failing decision ends only that peer’s stream, and detaches it', () => {
    const f = fixture();
    const ps = scheduler(f.decider);
    const task = makeTask();
    const holder = makePeer(task, makeHost(), 'Succeeded');
    const child = newcomer(task);
    const out = session(child);
    ps.schedule(child);
    expect(child.parents.has(holder)).toBe(true);
    child.retryCount = settings.retryLimit;
    ps.scheduleOther(child);
    expect(out.errors.map((e) => e.kind)).toEqual(['FailedPrecondition']);
    expect(child.session).toBeUndefined();
    expect(child.parents.size).toBe(0);
    expect(holder.host.assignedChildren).toBe(0);
  });

  test('an under-served child is topped up with a new parent; an orphan is decided again', () => {
    const f = fixture();
    const ps = scheduler(f.decider);
    const task = makeTask();
    const first = makePeer(task, makeHost(), 'Succeeded');
    const child = newcomer(task);
    const out = session(child);
    ps.schedule(child);
    child.state = 'Running';
    const second = makePeer(task, makeHost(), 'Running', [1, 2]);
    task.removeFromPool(second);
    ps.becameParent(second);
    // The top-up goes out at the end of the turn (flushed here by hand).
    const answered = out.answers.length;
    ps.flushPushes();
    expect(out.answers).toHaveLength(answered + 1);
    expect(out.answers[out.answers.length - 1].normalTaskResponse?.candidateParents?.map((p) => p.id).sort()).toEqual([first.id, second.id].sort());
    ps.detach(first);
    ps.detach(second);
    // Both parents gone: the orphan is decided again and, nobody holding data, waits on a seed.
    expect(Object.keys(out.answers[out.answers.length - 1])[0]).toBe('waitResponse');
    expect(f.trigger.calls).toHaveLength(1);
    ps.close();
  });
});
