/**
 * Two-level cache for ListSchedulers answers: an in-process map (short TTL, bounded size)
 * in front of Redis (shared by manager replicas, TTL `cache.redis.ttl`). All answers live
 * in one Redis hash, so invalidation is a single DEL. Redis is optional: when it is not
 * configured or unreachable every call falls through to the database, with one warning.
 */
import { Redis, type RedisOptions } from 'ioredis';
import type { Logger } from 'pino';
import type { ManagerConfig } from '../common/config/manager';

export interface CacheOptions {
  readonly localTtlMs: number;
  readonly localSize: number;
  readonly redisTtlMs: number;
  /** Disables both levels (benchmarks measure the uncached path with it). */
  readonly disabled?: boolean;
}

const SET_WITH_HASH_TTL = `
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
if redis.call('PTTL', KEYS[1]) < 0 then redis.call('PEXPIRE', KEYS[1], ARGV[3]) end
return 1`;

export class SchedulerListCache {
  private readonly local = new Map<string, { value: string; expiresAt: number }>();
  private readonly hashKey: string;
  private readonly channel: string;
  private readonly subscriber: Redis | undefined;
  private redisHealthy = true;

  constructor(
    private readonly options: CacheOptions,
    private readonly redis: Redis | undefined,
    keyPrefix: string,
    private readonly logger: Logger,
  ) {
    this.hashKey = `${keyPrefix}list-schedulers`;
    this.channel = `${keyPrefix}list-schedulers:invalidate`;
    if (redis) {
      // Other manager replicas publish here when they change something: drop our in-process level too.
      this.subscriber = redis.duplicate();
      this.subscriber.on('error', () => undefined); // the main client reports Redis trouble once
      this.subscriber.on('message', () => this.local.clear());
      this.subscriber.on('ready', () => void this.subscriber?.subscribe(this.channel).catch(() => undefined));
      redis.on('error', (err: Error) => this.redisDown(err));
      redis.on('ready', () => {
        if (this.redisHealthy) return;
        this.redisHealthy = true;
        this.logger.info('redis reachable again; cache re-enabled');
        // Changes made while Redis was away were not invalidated there.
        void this.redis?.del(this.hashKey).catch(() => undefined);
      });
    }
  }

  private redisDown(err: Error): void {
    if (!this.redisHealthy) return;
    this.redisHealthy = false;
    this.logger.warn({ err: err.message }, 'redis unreachable; answering from the database without the shared cache');
  }

  private redisUsable(): Redis | undefined {
    return this.redis && this.redis.status === 'ready' ? this.redis : undefined;
  }

  async get<T>(key: string): Promise<T | undefined> {
    if (this.options.disabled) return undefined;
    const now = Date.now();
    const hit = this.local.get(key);
    if (hit && hit.expiresAt > now) return JSON.parse(hit.value) as T;
    if (hit) this.local.delete(key);
    const redis = this.redisUsable();
    if (!redis) return undefined;
    try {
      const text = await redis.hget(this.hashKey, key);
      if (text === null) return undefined;
      this.setLocal(key, text);
      return JSON.parse(text) as T;
    } catch (err) {
      this.redisDown(err as Error);
      return undefined;
    }
  }

  async set(key: string, value: unknown): Promise<void> {
    if (this.options.disabled) return;
    const text = JSON.stringify(value);
    this.setLocal(key, text);
    const redis = this.redisUsable();
    if (!redis) return;
    try {
      // The whole hash expires `ttl` after its first entry, so no answer outlives it (works on Redis < 7 too).
      await redis.eval(SET_WITH_HASH_TTL, 1, this.hashKey, key, text, String(this.options.redisTtlMs));
    } catch (err) {
      this.redisDown(err as Error);
    }
  }

  /** Drops every cached answer (both levels). */
  async invalidate(): Promise<void> {
    this.local.clear();
    const redis = this.redisUsable();
    if (!redis) return;
    try {
      await redis.multi().del(this.hashKey).publish(this.channel, 'changed').exec();
    } catch (err) {
      this.redisDown(err as Error);
    }
  }

  private setLocal(key: string, value: string): void {
    if (this.options.localTtlMs <= 0) return;
    if (this.local.size >= this.options.localSize) {
      const oldest = this.local.keys().next();
      if (!oldest.done) this.local.delete(oldest.value);
    }
    this.local.set(key, { value, expiresAt: Date.now() + this.options.localTtlMs });
  }

  /** Connects both Redis clients; failures are logged once and the cache runs without Redis. */
  async connect(): Promise<void> {
    if (!this.redis) return;
    await this.redis.connect().catch(() => undefined);
    await this.subscriber?.connect().catch(() => undefined);
  }

  async close(): Promise<void> {
    this.subscriber?.disconnect();
    this.redis?.disconnect();
  }
}

/** An ioredis client that fails fast: no offline queue, no per-command retries, slow reconnects. */
export function createRedis(config: ManagerConfig): Redis | undefined {
  const r = config.database.redis;
  if (r.addrs.length === 0) return undefined;
  const [host, port] = splitHostPort(r.addrs[0]);
  const options: RedisOptions = {
    host,
    port,
    username: r.username || undefined,
    password: r.password || undefined,
    db: r.db,
    lazyConnect: true,
    enableOfflineQueue: false,
    maxRetriesPerRequest: 0,
    connectTimeout: 2000,
    commandTimeout: 1000,
    retryStrategy: (times) => Math.min(1000 * times, 30_000),
    reconnectOnError: () => false,
  };
  if (r.masterName) {
    return new Redis({ ...options, sentinels: r.addrs.map((a) => ({ host: splitHostPort(a)[0], port: splitHostPort(a)[1] })), name: r.masterName });
  }
  return new Redis(options);
}

function splitHostPort(addr: string): [string, number] {
  const clean = addr.replace(/^[a-z]+:\/\//, '');
  const i = clean.lastIndexOf(':');
  return [clean.slice(0, i).replace(/^\[|\]$/g, ''), Number(clean.slice(i + 1))];
}
