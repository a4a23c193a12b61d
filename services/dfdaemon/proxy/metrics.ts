/** Prometheus metrics of the registry-mirror proxy. */
import { Counter, Gauge, type Registry } from 'prom-client';
import type { ProxyMode } from './routing';

export interface ProxyMetrics {
  readonly requests: Counter<'mode' | 'status'>;
  readonly bytes: Counter<'mode'>;
  readonly cacheHits: Counter;
  readonly inflight: Gauge;
}

function counter<L extends string>(registry: Registry, name: string, help: string, labelNames: readonly L[]): Counter<L> {
  const existing = registry.getSingleMetric(name);
  if (existing) return existing as Counter<L>;
  return new Counter({ name, help, labelNames, registers: [registry] });
}

/** Reuses the metrics when a registry already holds them (a second proxy in one process). */
export function createProxyMetrics(registry: Registry): ProxyMetrics {
  const inflightName = 'dragonfly_dfdaemon_proxy_inflight_requests';
  return {
    requests: counter(registry, 'dragonfly_dfdaemon_proxy_requests_total', 'Proxy requests answered, by mode (p2p, pass-through, tunnel or refused) and HTTP status', ['mode', 'status']),
    bytes: counter(registry, 'dragonfly_dfdaemon_proxy_response_bytes_total', 'Body bytes the proxy sent to clients, by mode', ['mode']),
    cacheHits: counter(registry, 'dragonfly_dfdaemon_proxy_cache_hits_total', 'P2P proxy requests answered from a task already complete on this host', []),
    inflight:
      (registry.getSingleMetric(inflightName) as Gauge | undefined) ??
      new Gauge({ name: inflightName, help: 'Proxy requests being served now', registers: [registry] }),
  };
}

export function recordAnswer(metrics: ProxyMetrics, mode: ProxyMode | 'refused' | 'tunnel', status: number | string, bytes: number): void {
  metrics.requests.inc({ mode, status: String(status) });
  if (bytes > 0) metrics.bytes.inc({ mode }, bytes);
}

const P2P_OK = { mode: 'p2p', status: '200' } as const;
const P2P = { mode: 'p2p' } as const;

/** recordAnswer for a whole cache hit (p2p, 200) plus the cache-hit count, with label sets made once. */
export function recordHeldHit(metrics: ProxyMetrics, bytes: number): void {
  metrics.cacheHits.inc();
  metrics.requests.inc(P2P_OK);
  if (bytes > 0) metrics.bytes.inc(P2P, bytes);
}
