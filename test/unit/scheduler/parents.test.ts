import { addEdge } from '../../../services/scheduler/resource/model';
import type { Peer } from '../../../services/scheduler/resource/model';
import { chooseParents, idcAffinity, isEligibleParent, locationAffinity, scoreParent, type ParentChoiceOptions } from '../../../services/scheduler/scheduling/parents';
import { makeHost, makePeer, makeTask } from './helpers';

const opts: ParentChoiceOptions = { candidateParentLimit: 4, filterParentLimit: 40, defaultUploadLimit: 10 };

describe('chooseParents', () => {
  test('prefers the parent in the same IDC, then the closer location', () => {
    const task = makeTask();
    const child = makePeer(task, makeHost({ idc: 'idc-a', location: 'cn|sh|pd' }), 'ReceivedNormal');
    const far = makePeer(task, makeHost({ idc: 'idc-b', location: 'us|ca' }), 'Running', [0, 1]);
    const sameLocation = makePeer(task, makeHost({ idc: 'idc-b', location: 'cn|sh|xh' }), 'Running', [0, 1]);
    const sameIdc = makePeer(task, makeHost({ idc: 'idc-a', location: 'us|ca' }), 'Running', [0, 1]);
    expect(chooseParents(child, opts)).toEqual([sameIdc, sameLocation, far]);
    expect(idcAffinity('a', 'a')).toBe(1);
    expect(idcAffinity('', '')).toBe(0);
    expect(locationAffinity('cn|sh|pd', 'cn|sh|xh')).toBeCloseTo(0.4);
    expect(locationAffinity('cn|sh', 'cn|sh')).toBe(1);
  });

  test('prefers the less loaded host and skips hosts with no free upload slot', () => {
    const task = makeTask();
    const child = makePeer(task, makeHost(), 'ReceivedNormal');
    const busy = makePeer(task, makeHost({ concurrentUploadCount: 9 }), 'Running', [0]);
    const idle = makePeer(task, makeHost({ concurrentUploadCount: 0 }), 'Running', [0]);
    const full = makePeer(task, makeHost({ concurrentUploadCount: 10 }), 'Running', [0, 1, 2]);
    const chosen = chooseParents(child, opts);
    expect(chosen).toEqual([idle, busy]);
    expect(chosen).not.toContain(full);
    // Slots the scheduler itself assigned count as load too.
    idle.host.assignedChildren = 10;
    expect(chooseParents(child, opts)).toEqual([busy]);
  });

  test('chooses in-flight parents that hold pieces the child lacks, skips those that hold nothing new', () => {
    const task = makeTask(8);
    const child = makePeer(task, makeHost(), 'Running', [0, 1, 2]);
    const inFlight = makePeer(task, makeHost(), 'Running', [2, 3]);
    const nothingNew = makePeer(task, makeHost(), 'Running', [0, 1]);
    const empty = makePeer(task, makeHost(), 'Running', []);
    const chosen = chooseParents(child, opts);
    expect(chosen).toEqual([inFlight]);
    expect(chosen).not.toContain(nothingNew);
    expect(chosen).not.toContain(empty);
  });

  test('a seed fetching from the origin is a parent before it holds any piece, and ranks first', () => {
    const task = makeTask();
    const child = makePeer(task, makeHost(), 'ReceivedNormal');
    const seed = makePeer(task, makeHost({ type: 'SUPER_HOST', concurrentUploadLimit: 10 }), 'BackToSource');
    const normal = makePeer(task, makeHost(), 'Running', [0]);
    expect(chooseParents(child, opts)).toEqual([seed, normal]);
  });

  test('a slow parent is skipped while a better one exists, and chosen when it is the only one', () => {
    const task = makeTask();
    const child = makePeer(task, makeHost(), 'ReceivedNormal');
    const slow = makePeer(task, makeHost(), 'Succeeded');
    // Piece costs: steady, then one 50x outlier as the last one: isSlowParent() holds.
    for (const cost of [1e6, 1e6, 1e6, 50e6]) slow.recordPieceCost(cost);
    expect(slow.isSlowParent()).toBe(true);
    const fast = makePeer(task, makeHost(), 'Running', [0]);
    expect(chooseParents(child, opts)).toEqual([fast]);
    child.block(fast.id);
    expect(chooseParents(child, opts)).toEqual([slow]);
  });

  test('skips blocked parents, the same host, disable_shared hosts and non-serving states', () => {
    const task = makeTask();
    const childHost = makeHost();
    const child = makePeer(task, childHost, 'ReceivedNormal');
    const blocked = makePeer(task, makeHost(), 'Succeeded');
    child.block(blocked.id);
    const sameHost = makePeer(task, childHost, 'Succeeded');
    const unshared = makePeer(task, makeHost({ disableShared: true }), 'Succeeded');
    const failed = makePeer(task, makeHost(), 'Failed', [0, 1]);
    task.addToPool(failed);
    const ok = makePeer(task, makeHost(), 'Succeeded');
    expect(chooseParents(child, opts)).toEqual([ok]);
    expect(sameHost.state).toBe('Succeeded');
    expect(unshared.state).toBe('Succeeded');
  });

  test('never closes a cycle in the DAG', () => {
    const task = makeTask(4);
    const a = makePeer(task, makeHost(), 'Running', [0]);
    const b = makePeer(task, makeHost(), 'Running', [1]);
    const c = makePeer(task, makeHost(), 'Running', [2]);
    expect(addEdge(a, b)).toBe(true);
    expect(addEdge(b, c)).toBe(true);
    // c → a would close a → b → c → a.
    expect(chooseParents(a, opts)).not.toContain(c);
    expect(chooseParents(a, opts)).not.toContain(b);
    expect(addEdge(c, a)).toBe(false);
  });

  test('returns at most candidate_parent_limit parents, best first, and samples at most filter_parent_limit', () => {
    const task = makeTask();
    const child = makePeer(task, makeHost(), 'ReceivedNormal');
    const peers = Array.from({ length: 30 }, (_, i) => makePeer(task, makeHost({ concurrentUploadCount: i % 10 }), 'Running', [0]));
    const chosen = chooseParents(child, { ...opts, candidateParentLimit: 3 });
    expect(chosen).toHaveLength(3);
    for (const p of chosen) expect(p.host.info.concurrentUploadCount).toBe(0);
    // A sample of 1 sees one random pool member only.
    const one = chooseParents(child, { ...opts, filterParentLimit: 1 });
    expect(one).toHaveLength(1);
    expect(peers).toContain(one[0]);
  });

  test('checks eligibility only for candidates whose score could still enter the list', () => {
    const task = makeTask();
    const child = makePeer(task, makeHost({ idc: 'idc-a' }), 'ReceivedNormal');
    // Pool order is sample order when the pool fits the sample: four best first, then worse.
    for (let i = 0; i < 4; i++) makePeer(task, makeHost({ idc: 'idc-a' }), 'Succeeded');
    for (let i = 0; i < 36; i++) makePeer(task, makeHost({ concurrentUploadCount: 5 }), 'Succeeded');
    const isBlocked = jest.spyOn(child, 'isBlocked');
    expect(chooseParents(child, opts)).toHaveLength(4);
    // isEligibleParent reads the blocklist once per candidate it checks.
    expect(isBlocked).toHaveBeenCalledTimes(4);
  });

  test('chooses what filtering every candidate and then ranking by score chooses (randomised pools)', () => {
    let seed = 7;
    const rnd = (): number => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
    const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rnd() * xs.length)];
    /** The specification: eligible candidates (origin peers first, then the pool), stable-sorted by score. */
    const reference = (child: Peer, o: ParentChoiceOptions): Peer[] => {
      const task = child.task;
      const order = [...task.originPeers, ...task.samplePool(Number.MAX_SAFE_INTEGER).filter((p) => !task.originPeers.has(p))];
      const rank = (allowSlow: boolean): Peer[] =>
        order
          .filter((p) => isEligibleParent(p, child, o.defaultUploadLimit, allowSlow))
          .map((p, i) => ({ p, i, s: scoreParent(p, child, o.defaultUploadLimit) }))
          .sort((a, b) => b.s - a.s || a.i - b.i)
          .slice(0, o.candidateParentLimit)
          .map((x) => x.p);
      const strict = rank(false);
      return strict.length > 0 ? strict : rank(true);
    };
    let chosenTotal = 0;
    for (let round = 0; round < 200; round++) {
      const task = makeTask(8);
      const hosts = Array.from({ length: 1 + Math.floor(rnd() * 12) }, () =>
        makeHost({ idc: pick(['', 'idc-a', 'idc-b']), location: pick(['', 'cn|sh', 'cn|sh|pd', 'us|ca']), concurrentUploadCount: Math.floor(rnd() * 11), type: rnd() < 0.1 ? 'SUPER_HOST' : 'NORMAL_HOST', disableShared: rnd() < 0.1 }),
      );
      const child = makePeer(task, pick(hosts), pick(['ReceivedNormal', 'Running'] as const), [0, 1, 2].filter(() => rnd() < 0.5));
      const peers = Array.from({ length: Math.floor(rnd() * 30) }, () =>
        makePeer(task, pick(hosts), pick(['Running', 'BackToSource', 'Succeeded', 'Failed'] as const), [0, 1, 2, 3, 4, 5, 6, 7].filter(() => rnd() < 0.3)),
      );
      for (const p of peers) {
        if (rnd() < 0.15) child.block(p.id);
        if (rnd() < 0.15) for (const cost of [1e6, 1e6, 1e6, 50e6]) p.recordPieceCost(cost);
        if (rnd() < 0.1) addEdge(child, p);
        if (rnd() < 0.1) p.host.assignedChildren += 3;
      }
      const o = { ...opts, candidateParentLimit: 1 + Math.floor(rnd() * 4), filterParentLimit: 1000 };
      const chosen = chooseParents(child, o);
      expect(chosen).toEqual(reference(child, o));
      chosenTotal += chosen.length;
    }
    // The pools are varied enough that most rounds choose someone.
    expect(chosenTotal).toBeGreaterThan(200);
  });
});
