/** Prometheus metrics of the registry-mirror proxy. */
import { Counter, Gauge, type Registry } from 'prom-client';
import type { ProxyMode } from './routing';

export interface ProxyMetrics {
  readonly requests: Counter<'mode' | 'status'>;
  readonly bytes: Counter<'mode'>;
  readonly cacheHits: Counter;
  readonly inflight: Gauge;
  /** Whole cache hits answered from memory not yet added to the counters (see recordHeldHit). */
  readonly heldHits: HeldHitTally;
}

/** Per registry: every proxy metrics object of one registry shares it, as it shares the counters. */
interface HeldHitTally {
  hits: number;
  bytes: number;
}

const tallies = new WeakMap<Registry, HeldHitTally>();

const P2P_OK = { mode: 'p2p', status: '200' } as const;
const P2P = { mode: 'p2p' } as const;

function counter<L extends string>(registry: Registry, name: string, help: string, labelNames: readonly L[], collect: () => void): Counter<L> {
  const existing = registry.getSingleMetric(name);
  if (existing) return existing as Counter<L>;
  return new Counter({ name, help, labelNames, registers: [registry], collect });
}

/** Reuses the metrics when a registry already holds them (a second proxy in one process). */
export function createProxyMetrics(registry: Registry): ProxyMetrics {
  const inflightName = 'dragonfly_dfdaemon_proxy_inflight_requests';
  let tally = tallies.get(registry);
  if (tally === undefined) {
    tally = { hits: 0, bytes: 0 };
    tallies.set(registry, tally);
  }
  const held = tally;
  // Read (scraped) counters first take in the held hits tallied since the last read: exact whenever read.
  const flush = () => {
    if (held.hits === 0) return;
    const { hits, bytes } = held;
    held.hits = 0;
    held.bytes = 0;
    metrics.cacheHits.inc(hits);
    metrics.requests.inc(P2P_OK, hits);
    if (bytes > 0) metrics.bytes.inc(P2P, bytes);
  };
  const metrics: ProxyMetrics = {
    requests: counter(registry, 'dragonfly_dfdaemon_proxy_requests_total', 'Proxy requests answered, by mode (p2p, pass-through, tunnel or refused) and HTTP status', ['mode', 'status'], flush),
    bytes: counter(registry, 'dragonfly_dfdaemon_proxy_response_bytes_total', 'Body bytes the proxy sent to clients, by mode', ['mode'], flush),
    cacheHits: counter(registry, 'dragonfly_dfdaemon_proxy_cache_hits_total', 'P2P proxy requests answered from a task already complete on this host', [], flush),
    inflight:
      (registry.getSingleMetric(inflightName) as Gauge | undefined) ??
      new Gauge({ name: inflightName, help: 'Proxy requests being served now', registers: [registry] }),
    heldHits: held,
  };
  return metrics;
}

export function recordAnswer(metrics: ProxyMetrics, mode: ProxyMode | 'refused' | 'tunnel', status: number | string, bytes: number): void {
  metrics.requests.inc({ mode, status: String(status) });
  if (bytes > 0) metrics.bytes.inc({ mode }, bytes);
}

/**
 * A whole cache hit answered from memory (p2p, 200, a cache hit): two additions here; the
 * counters take them in when they are next read (their collect), not through three labelled
 * increments on every hit.
 */
export function recordHeldHit(metrics: ProxyMetrics, bytes: number): void {
  metrics.heldHits.hits++;
  metrics.heldHits.bytes += bytes;
}
