import { clusterConfigOf } from '../../../services/scheduler/manager-link';
import { ConsistentHashRing, type SeedHost } from '../../../services/scheduler/seed-peers';
import type { Scheduler__Output } from '../../../services/proto/gen/manager/v2/Scheduler';

const seed = (n: number): SeedHost => ({ key: `10.0.0.${n}:65000`, ip: `10.0.0.${n}`, port: 65000, hostname: `seed-${n}` });

describe('seed peer ring', () => {
  test('same task → same seed; removing one seed only moves its own tasks', () => {
    const ring = new ConsistentHashRing<SeedHost>();
    expect(ring.pick('t')).toBeUndefined();
    ring.update([seed(1), seed(2), seed(3)]);
    const tasks = Array.from({ length: 300 }, (_, i) => `task-${i}`);
    const before = new Map(tasks.map((t) => [t, ring.pick(t)?.key]));
    const counts = new Map<string, number>();
    for (const k of before.values()) counts.set(k ?? '', (counts.get(k ?? '') ?? 0) + 1);
    expect(counts.size).toBe(3);
    for (const c of counts.values()) expect(c).toBeGreaterThan(40);
    ring.update([seed(3), seed(1), seed(2)]); // same set, other order: no change
    for (const t of tasks) expect(ring.pick(t)?.key).toBe(before.get(t));
    ring.update([seed(1), seed(3)]);
    for (const t of tasks) {
      const was = before.get(t);
      if (was !== seed(2).key) expect(ring.pick(t)?.key).toBe(was);
      else expect(ring.pick(t)?.key).not.toBe(was);
    }
  });
});

describe('clusterConfigOf', () => {
  test('reads candidate/filter limits, load_limit and active seed peers; ignores junk', () => {
    const answer = {
      schedulerCluster: { config: Buffer.from('{"candidate_parent_limit":5,"filter_parent_limit":20}'), clientConfig: Buffer.from('{"load_limit":300}') },
      seedPeers: [
        { hostname: 'a', ip: '10.1.1.1', port: 65000, state: 'active' },
        { hostname: 'b', ip: '10.1.1.2', port: 65000, state: 'inactive' },
      ],
    } as unknown as Scheduler__Output;
    expect(clusterConfigOf(answer)).toEqual({ candidateParentLimit: 5, filterParentLimit: 20, loadLimit: 300, seedPeers: [{ key: '10.1.1.1:65000', ip: '10.1.1.1', port: 65000, hostname: 'a' }] });
    const junk = { schedulerCluster: { config: Buffer.from('not json'), clientConfig: Buffer.from('{"load_limit":-1}') }, seedPeers: [] } as unknown as Scheduler__Output;
    expect(clusterConfigOf(junk)).toEqual({ candidateParentLimit: undefined, filterParentLimit: undefined, loadLimit: undefined, seedPeers: [] });
  });
});
