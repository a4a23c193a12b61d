/**
 * Limits failed sign-ins per user name and per client address (fixed windows). Both maps are
 * bounded: when full, expired entries go first, then the oldest, so a flood of made-up names
 * cannot grow memory (it can only age out other counters, which the per-address limit covers).
 */
import { ResourceExhaustedError } from '../common/errors';

export interface SigninLimits {
  /** Failures allowed per user name within `windowMs`. */
  perName: number;
  /** Failures allowed per client address within `windowMs`. */
  perAddress: number;
  windowMs: number;
  /** Entries per map. */
  maxTracked: number;
}

/** A refused attempt; the REST layer answers 429 with `Retry-After: retryAfterSeconds`. */
export class SigninRateLimitedError extends ResourceExhaustedError {
  constructor(
    what: string,
    readonly retryAfterSeconds: number,
  ) {
    super(`too many failed sign-ins for this ${what}; retry in ${retryAfterSeconds}s`);
  }
}

interface Counter {
  failures: number;
  resetAt: number;
}

class BoundedCounters {
  private readonly counters = new Map<string, Counter>();

  constructor(
    private readonly limit: number,
    private readonly windowMs: number,
    private readonly maxTracked: number,
  ) {}

  /** Seconds until `key` may try again, or 0. */
  blockedFor(key: string, now: number): number {
    const c = this.counters.get(key);
    if (!c || c.resetAt <= now || c.failures < this.limit) return 0;
    return Math.max(1, Math.ceil((c.resetAt - now) / 1000));
  }

  fail(key: string, now: number): void {
    const c = this.counters.get(key);
    if (c && c.resetAt > now) {
      c.failures++;
      return;
    }
    this.counters.delete(key);
    if (this.counters.size >= this.maxTracked) this.evict(now);
    this.counters.set(key, { failures: 1, resetAt: now + this.windowMs });
  }

  clear(key: string): void {
    this.counters.delete(key);
  }

  get size(): number {
    return this.counters.size;
  }

  private evict(now: number): void {
    for (const [k, c] of this.counters) if (c.resetAt <= now) this.counters.delete(k);
    // Map iterates in insertion order: the first key is the oldest window.
    while (this.counters.size >= this.maxTracked) {
      const oldest = this.counters.keys().next().value;
      if (oldest === undefined) break;
      this.counters.delete(oldest);
    }
  }
}

export class SigninLimiter {
  private readonly byName: BoundedCounters;
  private readonly byAddress: BoundedCounters;

  constructor(
    limits: SigninLimits,
    private readonly now: () => number = Date.now,
  ) {
    this.byName = new BoundedCounters(limits.perName, limits.windowMs, limits.maxTracked);
    this.byAddress = new BoundedCounters(limits.perAddress, limits.windowMs, limits.maxTracked);
  }

  /** Throws SigninRateLimitedError while the name or the address is over its limit (even with the right password). */
  check(name: string, address: string): void {
    const now = this.now();
    const addressWait = this.byAddress.blockedFor(address, now);
    if (addressWait > 0) throw new SigninRateLimitedError('address', addressWait);
    const nameWait = this.byName.blockedFor(name, now);
    if (nameWait > 0) throw new SigninRateLimitedError('user name', nameWait);
  }

  failed(name: string, address: string): void {
    const now = this.now();
    this.byName.fail(name, now);
    this.byAddress.fail(address, now);
  }

  /** A successful sign-in clears the name's failures (not the address's: one address may try many names). */
  succeeded(name: string): void {
    this.byName.clear(name);
  }

  /** Tracked entries (for tests of the bound). */
  get tracked(): { names: number; addresses: number } {
    return { names: this.byName.size, addresses: this.byAddress.size };
  }
}
