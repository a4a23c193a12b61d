/**
 * One re-examination timer per task with waiting peers: waiting peers are looked at again
 * when something changes, and at the latest after about retryInterval (jittered ±25 % so
 * tasks do not wake in lockstep). Bounded by the task count: a timer per task, not per peer.
 */
import type { Task } from '../resource/model';

export class WaitTimers {
  private readonly timers = new Map<Task, NodeJS.Timeout>();

  constructor(private readonly random: () => number = Math.random) {}

  /** Arms the task's timer unless one is pending; `fire` runs once when it expires. */
  arm(task: Task, intervalMs: number, fire: (task: Task) => void): void {
    if (this.timers.has(task)) return;
    const interval = Math.max(10, intervalMs);
    const timer = setTimeout(() => {
      this.timers.delete(task);
      fire(task);
    }, interval * (0.75 + this.random() * 0.5));
    timer.unref();
    this.timers.set(task, timer);
  }

  has(task: Task): boolean {
    return this.timers.has(task);
  }

  cancel(task: Task): void {
    const timer = this.timers.get(task);
    if (timer) clearTimeout(timer);
    this.timers.delete(task);
  }

  /** Cancels the timers of tasks `keep` says are gone. */
  retain(keep: (task: Task) => boolean): void {
    for (const task of [...this.timers.keys()]) if (!keep(task)) this.cancel(task);
  }

  get size(): number {
    return this.timers.size;
  }

  close(): void {
    for (const t of this.timers.values()) clearTimeout(t);
    this.timers.clear();
  }
}
