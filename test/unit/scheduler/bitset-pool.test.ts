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
