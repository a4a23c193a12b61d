/**
 * A prom-client Counter fed at scrape time. prom-client hashes the label object on every
 * inc() (sorting its keys, building a string): on the scheduler's hot path, one to three
 * labelled increments per AnnouncePeer message. Here an increment adds to a plain number held
 * under a key the caller already has (a peer's label set, computed once when it registers),
 * and the sums go into the Counter when /metrics is read. What a scrape shows is the same;
 * the pending sums hold only the series touched since the last scrape.
 */
import { Counter, type CounterConfiguration } from 'prom-client';

type Labels<L extends string> = Partial<Record<L, string | number>>;

/** One series' increments since the last scrape. */
export interface PendingSeries<L extends string> {
  readonly labels: Labels<L>;
  value: number;
}

export class DeferredCounter<L extends string> {
  readonly counter: Counter<L>;
  private readonly pending = new Map<string, PendingSeries<L>>();

  constructor(config: Omit<CounterConfiguration<L>, 'collect'>) {
    const pending = this.pending;
    this.counter = new Counter<L>({
      ...config,
      collect(this: Counter<L>) {
        for (const s of pending.values()) this.inc(s.labels, s.value);
        pending.clear();
      },
    });
  }

  /** The pending series `key` names, if touched since the last scrape. */
  at(key: string): PendingSeries<L> | undefined {
    return this.pending.get(key);
  }

  /** Starts the pending series `key` with `labels` (the same key must always mean the same labels). */
  open(key: string, labels: Labels<L>): PendingSeries<L> {
    const s = { labels, value: 0 };
    this.pending.set(key, s);
    return s;
  }

  /** Adds `n` to the series `key` names. */
  add(key: string, labels: Labels<L>, n = 1): void {
    (this.pending.get(key) ?? this.open(key, labels)).value += n;
  }
}
