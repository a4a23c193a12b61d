import { addEdge } from '../../../services/scheduler/resource/model';
import { chooseParents, idcAffinity, locationAffinity, type ParentChoiceOptions } from '../../../services/scheduler/scheduling/parents';
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
});
