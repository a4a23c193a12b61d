/**
 * Token bucket for bandwidth limits (bytes per second). Consumers take tokens as bytes
 * move and may go into debt; `consume` answers how long to pause so that the average rate
 * stays at `rate`, with bursts of up to `burst` bytes (at least one piece).
 */
import { Transform, type TransformCallback } from 'node:stream';

export class TokenBucket {
  private tokens: number;
  private last: number;

  constructor(
    readonly rate: number,
    readonly burst: number,
    private readonly now: () => number = () => performance.now(),
  ) {
    if (!(rate > 0)) throw new RangeError('rate must be positive');
    this.burst = Math.max(burst, 1);
    this.tokens = this.burst;
    this.last = this.now();
  }

  private refill(): void {
    const t = this.now();
    this.tokens = Math.min(this.burst, this.tokens + ((t - this.last) / 1000) * this.rate);
    this.last = t;
  }

  /** Takes `n` tokens; returns the milliseconds to wait before moving more bytes (0: go on). */
  consume(n: number): number {
    this.refill();
    this.tokens -= n;
    return this.tokens >= 0 ? 0 : (-this.tokens / this.rate) * 1000;
  }

  /** Takes `n` tokens and resolves once they are paid for. */
  async take(n: number): Promise<void> {
    const wait = this.consume(n);
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
  }
}

/** A set of buckets all charged for the same bytes (e.g. total + back-to-source). */
export class Limiters {
  constructor(private readonly buckets: readonly TokenBucket[]) {}
  consume(n: number): number {
    let wait = 0;
    for (const b of this.buckets) wait = Math.max(wait, b.consume(n));
    return wait;
  }
  get empty(): boolean {
    return this.buckets.length === 0;
  }
}

/** Rates at or above this are treated as unlimited (the config default "50GB" means "no limit"). */
export const UNLIMITED_RATE = 10 * 1024 ** 3;

export function bucketFor(rate: number, pieceLength: number): TokenBucket | undefined {
  if (!(rate > 0) || rate >= UNLIMITED_RATE) return undefined;
  return new TokenBucket(rate, Math.max(rate, pieceLength * 2));
}

/** Pass-through stream that paces bytes through the limiters. */
export class ThrottleStream extends Transform {
  constructor(private readonly limiters: Limiters) {
    super();
  }
  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    const wait = this.limiters.consume(chunk.length);
    if (wait <= 0) cb(null, chunk);
    else setTimeout(() => cb(null, chunk), wait);
  }
}
