/**
 * Fetches a task's missing pieces from the parents the collector knows: up to `concurrency`
 * at a time, each from the least loaded holder, normal parents before a seed peer (see
 * parentBounds, pickPiece, pickParent). Lowest pieces first (readers stream in order),
 * randomized within a window of `concurrency` pieces so children of one parent spread out a
 * little and can serve each other. Settles 'done' when every piece is stored, 'reschedule' when no parent can help (or
 * `stopRequested` says the scheduler ordered back-to-source), and rejects on an error the
 * download cannot survive (our own disk, abort).
 */
import type { Parent, PieceCollector } from './piece-collector';

/**
 * A parent out of upload slots (HTTP 429) is busy, not broken: it is skipped for
 * BUSY_RETRY_MS, doubling with each refusal in a row, and blocked only after
 * MAX_BUSY_REFUSALS in a row. Blocking it at once also blocked it at the scheduler for good,
 * and a child whose only holder of some pieces was the busy seed kept asking for parents
 * until the scheduler sent it to the origin for them (a second origin read).
 */
export const BUSY_RETRY_MS = 200;
export const MAX_BUSY_REFUSALS = 6;

/**
 * How many pieces one child fetches from each parent at once. A normal parent: up to the whole
 * concurrency. A seed peer, while normal parents that can share are there: its share of the
 * concurrency (one slot per parent, at least one), so the child takes the rest from the normal
 * parents and the seed's upload is spread over more distinct pieces instead of sending every piece
 * to every child (with kept-alive connections the children would otherwise all keep pace with the
 * seed and fetch each piece from it the moment it is announced).
 */
export function parentBounds(usable: readonly Parent[], concurrency: number): (p: Parent) => number {
  let sharers = 0;
  for (const p of usable) if (!p.isSeed && !p.blocked && (!p.syncEnded || p.digests.size > 0)) sharers++;
  const seedBound = sharers > 0 ? Math.max(1, Math.ceil(concurrency / (sharers + 1))) : concurrency;
  return (p) => (p.isSeed ? seedBound : concurrency);
}

/**
 * The next piece among `candidates` (the in-order window, each with the parents able to give it
 * now): a piece a normal parent holds comes first (it spares the seed, and it is the bytes
 * children exchange), then any, at random within the window so children of the same parents
 * spread over different pieces and can serve each other.
 */
export function pickPiece<T extends { parents: readonly Parent[] }>(candidates: readonly T[], random: () => number): T {
  const shared = candidates.filter((c) => c.parents.some((p) => !p.isSeed));
  const pool = shared.length > 0 ? shared : candidates;
  return pool[Math.floor(random() * pool.length)];
}

/** The parent to fetch a piece from: a normal one before a seed peer, then the least loaded, ties at random. */
export function pickParent(holders: readonly Parent[], random: () => number): Parent {
  const normal = holders.filter((p) => !p.isSeed);
  const from = normal.length > 0 ? normal : holders;
  const minLoad = Math.min(...from.map((p) => p.inflight));
  const least = from.filter((p) => p.inflight === minLoad);
  return least[Math.floor(random() * least.length)];
}

export interface P2PTask {
  readonly pieceCount: number;
  readonly finishedPieceCount: number;
  hasPiece(n: number): boolean;
}

export interface P2PFetchOptions {
  readonly task: P2PTask;
  readonly collector: PieceCollector;
  readonly concurrency: number;
  /**
   * Parents whose piece streams stay open but offer nothing to fetch for this long no longer
   * count as hope: the fetch settles 'reschedule' so the scheduler is asked again instead of
   * waiting on them forever (scheduler.scheduleTimeout).
   */
  readonly idleMs: number;
  readonly signal: AbortSignal;
  /** Fetches piece `n` from `parent` into the content file, checked against the parent's digest; resolves with it. */
  fetchPiece(n: number, parent: Parent): Promise<string>;
  /** Piece `n` is written and verified: store it and announce it. */
  onPiece(n: number, digest: string, costNs: number, parent: Parent): void;
  /**
   * Piece `n` from `parent` failed: return to block that parent and go on, or throw to end the
   * download (an error of our own disk is nobody else's fault).
   */
  onPieceError(n: number, parent: Parent, err: unknown): Promise<void>;
  /** True once the scheduler ordered back-to-source: nothing new starts. */
  stopRequested(): boolean;
  /** The idle bound passed with `parents` usable and `missing` pieces. */
  onIdle?(parents: number, missing: number, ms: number): void;
  /** No usable parent holds (or may still announce) a missing piece. */
  onNoParents(missing: readonly number[]): void;
  /** Whether `err` says the parent is only out of upload slots (see BUSY_RETRY_MS). */
  parentBusy?(err: unknown): boolean;
  /** First skip of a busy parent (default BUSY_RETRY_MS). */
  readonly busyRetryMs?: number;
  /** Makes the random pick repeatable in tests. */
  readonly random?: () => number;
}

export class P2PFetch {
  private readonly inflight = new Set<number>();
  private wakeFn: (() => void) | undefined;
  /** Busy parents: refusals in a row and until when they are skipped (bounded by the collector's parents). */
  private readonly busy = new Map<Parent, { refusals: number; until: number }>();

  constructor(private readonly o: P2PFetchOptions) {}

  /** Pieces neither stored nor being fetched. */
  missing(): number[] {
    const t = this.o.task;
    const out: number[] = [];
    for (let n = 0; n < t.pieceCount; n++) if (!t.hasPiece(n) && !this.inflight.has(n)) out.push(n);
    return out;
  }

  /** Looks again (a parent announced pieces, a new parent came, an order arrived). */
  wake(): void {
    this.wakeFn?.();
  }

  run(): Promise<'done' | 'reschedule'> {
    const { task, collector, concurrency } = this.o;
    const random = this.o.random ?? Math.random;
    return new Promise((resolve, reject) => {
      let settled = false;
      let idleTimer: NodeJS.Timeout | undefined;
      let busyTimer: NodeJS.Timeout | undefined;
      let idle = false;
      let idleParents = 0;
      const finish = (v: 'done' | 'reschedule' | Error) => {
        if (settled) return;
        settled = true;
        clearTimeout(idleTimer);
        clearTimeout(busyTimer);
        this.wakeFn = undefined;
        if (v instanceof Error) reject(v);
        else resolve(v);
      };
      const pump = () => {
        if (settled) return;
        if (this.o.signal.aborted) return finish(new Error('aborted'));
        if (task.finishedPieceCount === task.pieceCount && this.inflight.size === 0) return finish('done');
        if (this.o.stopRequested()) {
          if (this.inflight.size === 0) finish('reschedule');
          return;
        }
        const now = performance.now();
        let busyEnds = Infinity;
        const usable = collector.usable().filter((p) => {
          const until = this.busy.get(p)?.until ?? 0;
          if (until > now) busyEnds = Math.min(busyEnds, until);
          return until <= now;
        });
        // Look again when the first busy parent may be asked again.
        if (busyEnds !== Infinity && !busyTimer) {
          busyTimer = setTimeout(() => {
            busyTimer = undefined;
            pump();
          }, Math.ceil(busyEnds - now) + 1);
          busyTimer.unref();
        }
        const missing = this.missing();
        // The window is as wide as the fetches in flight: every pick is among the next pieces a
        // reader needs, so a proxy streaming the content in order never waits behind pieces far ahead.
        const windowSize = concurrency;
        const bounds = parentBounds(usable, concurrency);
        while (this.inflight.size < concurrency && missing.length > 0) {
          const candidates: Array<{ n: number; parents: Parent[] }> = [];
          for (const n of missing) {
            const holders = usable.filter((p) => !p.blocked && p.digests.has(n) && p.inflight < bounds(p));
            if (holders.length > 0) candidates.push({ n, parents: holders });
            if (candidates.length >= windowSize) break;
          }
          if (candidates.length === 0) break;
          const pick = pickPiece(candidates, random);
          missing.splice(missing.indexOf(pick.n), 1);
          this.fetch(pick.n, pickParent(pick.parents, random)).then(pump, (err: Error) => finish(err));
        }
        if (this.inflight.size > 0) {
          clearTimeout(idleTimer);
          idleTimer = undefined;
          idle = false;
          return;
        }
        // Nothing in flight: is any parent still able to provide a missing piece?
        const stillMissing = this.missing();
        if (stillMissing.length === 0) return finish('done');
        const hopeful = collector.hopeful(stillMissing, !idle);
        if (idleTimer && idleParents !== collector.size) {
          // The scheduler sent more parents: they get a full idle period of their own.
          clearTimeout(idleTimer);
          idleTimer = undefined;
          idle = false;
        }
        if (hopeful && !idleTimer) {
          idleParents = collector.size;
          idleTimer = setTimeout(() => {
            this.o.onIdle?.(collector.usable().length, this.missing().length, this.o.idleMs);
            idle = true;
            pump();
          }, this.o.idleMs);
          idleTimer.unref();
        }
        if (!hopeful) {
          this.o.onNoParents(stillMissing);
          finish('reschedule');
        }
      };
      this.wakeFn = pump;
      pump();
    });
  }

  private async fetch(n: number, parent: Parent): Promise<void> {
    this.inflight.add(n);
    parent.inflight++;
    const started = process.hrtime.bigint();
    try {
      const digest = await this.o.fetchPiece(n, parent);
      this.busy.delete(parent);
      if (!this.o.task.hasPiece(n)) this.o.onPiece(n, digest, Number(process.hrtime.bigint() - started), parent);
    } catch (err) {
      if (this.o.signal.aborted) throw err;
      if (this.o.parentBusy?.(err) && this.deferBusy(parent)) return;
      await this.o.onPieceError(n, parent, err);
      this.o.collector.block(parent, n, true);
    } finally {
      this.inflight.delete(n);
      parent.inflight--;
    }
  }

  /** Skips a busy parent for a while (the pump looks again then); false once it refused too often in a row. */
  private deferBusy(parent: Parent): boolean {
    const known = this.busy.get(parent);
    // Requests that were in flight when the parent was first found busy are one refusal, not many.
    if (known && known.until > performance.now()) return true;
    const refusals = (known?.refusals ?? 0) + 1;
    if (refusals > MAX_BUSY_REFUSALS) {
      this.busy.delete(parent);
      return false;
    }
    const delay = (this.o.busyRetryMs ?? BUSY_RETRY_MS) * 2 ** (refusals - 1);
    this.busy.set(parent, { refusals, until: performance.now() + delay });
    return true;
  }
}
