/**
 * Bounds the proxy's work: at most `limit` requests run, at most `maxQueued` wait (FIFO) for a
 * slot, each for at most `queueTimeoutMs`. Beyond the queue a request is refused with 429; a
 * request that waited too long with 503.
 */
import { ProxyRefusal } from './policy';

interface Waiter {
  readonly grant: () => void;
}

export class ConcurrencyLimiter {
  private running = 0;
  private readonly waiters: Waiter[] = [];

  constructor(
    readonly limit: number,
    readonly maxQueued: number,
    private readonly queueTimeoutMs: number,
  ) {}

  get active(): number {
    return this.running;
  }

  get queued(): number {
    return this.waiters.length;
  }

  /** Resolves once a slot is held (call `release` exactly once afterwards); rejects on refusal or abort. */
  acquire(signal: AbortSignal): Promise<void> {
    if (signal.aborted) return Promise.reject(new Error('request aborted'));
    if (this.running < this.limit) {
      this.running++;
      return Promise.resolve();
    }
    if (this.waiters.length >= this.maxQueued) {
      return Promise.reject(
        new ProxyRefusal(429, `proxy is serving its limit of ${this.limit} requests with ${this.waiters.length} queued (proxy.maxConcurrency, proxy.maxQueued)`),
      );
    }
    return new Promise<void>((resolve, reject) => {
      const leave = () => {
        const i = this.waiters.indexOf(waiter);
        if (i >= 0) this.waiters.splice(i, 1);
        clearTimeout(timer);
        signal.removeEventListener('abort', onAbort);
      };
      const waiter: Waiter = {
        grant: () => {
          leave();
          resolve();
        },
      };
      const timer = setTimeout(() => {
        leave();
        reject(new ProxyRefusal(503, `no free proxy slot within ${this.queueTimeoutMs} ms (proxy.queueTimeout); ${this.limit} requests running`));
      }, this.queueTimeoutMs);
      const onAbort = () => {
        leave();
        reject(new Error('request aborted'));
      };
      signal.addEventListener('abort', onAbort, { once: true });
      this.waiters.push(waiter);
    });
  }

  /** Hands the slot to the longest waiter, or frees it. */
  release(): void {
    const next = this.waiters[0];
    if (next) next.grant();
    else this.running--;
  }
}
