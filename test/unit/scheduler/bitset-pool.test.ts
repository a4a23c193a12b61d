import { PieceBitset } from '../../../services/scheduler/resource/bitset';
import { makeHost, makePeer, makeTask } from './helpers';

describe('PieceBitset', () => {
  test('set/has/size grow past the initial capacity; hasAnyNotIn compares sets', () => {
    const a = new PieceBitset(8);
    expect(a.set(3)).toBe(true);
    expect(a.set(3)).toBe(false);
    expect(a.set(1000)).toBe(true);
    expect(a.has(1000)).toBe(true);
    expect(a.has(999)).toBe(false);
    expect(a.size).toBe(2);
    expect(a.toArray()).toEqual([3, 1000]);
    const b = new PieceBitset();
    b.fill(64);
    expect(b.size).toBe(64);
    expect(a.hasAnyNotIn(b)).toBe(true); // 1000
    expect(b.hasAnyNotIn(a)).toBe(true);
    const c = new PieceBitset();
    c.set(3);
    expect(c.hasAnyNotIn(a)).toBe(false);
    expect(new PieceBitset().hasAnyNotIn(a)).toBe(false);
  });
});

describe('task parent pool', () => {
  test('samples distinct members, never more than asked; removal keeps the index consistent', () => {
    const task = makeTask();
    const peers = Array.from({ length: 50 }, () => makePeer(task, makeHost(), 'Succeeded'));
    expect(task.poolSize).toBe(50);
    for (let round = 0; round < 20; round++) {
      const sample = task.samplePool(10);
      expect(sample).toHaveLength(10);
      expect(new Set(sample).size).toBe(10);
    }
    for (const p of peers.slice(0, 45)) task.removeFromPool(p);
    expect(task.poolSize).toBe(5);
    expect(new Set(task.samplePool(10))).toEqual(new Set(peers.slice(45)));
    task.removeFromPool(peers[0]); // not a member any more: no-op
    expect(task.poolSize).toBe(5);
  });
});

describe('task parent pool sampling', () => {
  test('uniform over the pool, across tasks of different sizes, and each call starts afresh', () => {
    const big = makeTask();
    const small = makeTask();
    const bigPeers = Array.from({ length: 30 }, () => makePeer(big, makeHost(), 'Succeeded'));
    const smallPeers = Array.from({ length: 12 }, () => makePeer(small, makeHost(), 'Succeeded'));
    const counts = new Map<unknown, number>();
    for (let round = 0; round < 3000; round++) {
      const task = round % 2 === 0 ? big : small;
      const sample = task.samplePool(5);
      expect(new Set(sample).size).toBe(5);
      for (const p of sample) {
        expect(p.task).toBe(task);
        counts.set(p, (counts.get(p) ?? 0) + 1);
      }
    }
    // 1500 samples of 5: each of 30 members is picked ~250 times, each of 12 ~625 times.
    for (const p of bigPeers) expect(Math.abs((counts.get(p) ?? 0) - 250)).toBeLessThan(100);
    for (const p of smallPeers) expect(Math.abs((counts.get(p) ?? 0) - 625)).toBeLessThan(150);
    // A generator that always answers 0 picks the first members in pool order: nothing is left
    // over from the calls before.
    expect(big.samplePool(4, () => 0)).toEqual(bigPeers.slice(0, 4));
    expect(small.samplePool(3, () => 0)).toEqual(smallPeers.slice(0, 3));
    // ... and one that always answers just below 1 swaps the last member to the front, then
    // takes the one swapped out to the end: the same each time.
    expect(big.samplePool(2, () => 0.999999)).toEqual([bigPeers[29], bigPeers[0]]);
    expect(big.samplePool(2, () => 0.999999)).toEqual([bigPeers[29], bigPeers[0]]);
  });
});
