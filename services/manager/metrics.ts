/** Prometheus metrics of the manager. */
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';

const MANAGER_VERSION = '0.1.0';
const VERSION_LABELS = { version: `v${MANAGER_VERSION}`, commit: '' };
const PEER_WINDOW_MS = 10 * 60_000;
const MAX_RECENT_PEERS = 100_000;

export class ManagerMetrics {
  readonly searchTotal: Counter<'version' | 'commit'>;
  readonly searchFailureTotal: Counter<'version' | 'commit'>;
  readonly httpRequests: Counter<'method' | 'route' | 'code'>;
  readonly httpDuration: Histogram<'method' | 'route'>;
  readonly grpcRequests: Counter<'method' | 'code'>;
  readonly grpcDuration: Histogram<'method'>;

  constructor(registry: Registry, activeSchedulers: () => Promise<number>) {
    const registers = [registry];
    // Upstream's names and labels (version, commit; manager_version), see docs/observability.md.
    this.searchTotal = new Counter({ name: 'dragonfly_manager_search_scheduler_cluster_total', help: 'ListSchedulers searches run', labelNames: ['version', 'commit'], registers });
    this.searchFailureTotal = new Counter({ name: 'dragonfly_manager_search_scheduler_cluster_failure_total', help: 'Searches that found no eligible scheduler cluster', labelNames: ['version', 'commit'], registers });
    this.searchTotal.inc(VERSION_LABELS, 0);
    this.searchFailureTotal.inc(VERSION_LABELS, 0);
    const recent = this.recentPeers;
    new Gauge({
      name: 'dragonfly_manager_peer_total',
      help: `Peers (hostname + IP) that searched for schedulers in the last ${PEER_WINDOW_MS / 60_000} minutes`,
      labelNames: ['version', 'commit'],
      registers,
      collect() {
        const since = Date.now() - PEER_WINDOW_MS;
        for (const [k, at] of recent) if (at < since) recent.delete(k);
        this.set(VERSION_LABELS, recent.size);
      },
    });
    new Gauge({
      name: 'dragonfly_manager_version',
      help: 'Version of the manager',
      labelNames: ['major', 'minor', 'git_version', 'git_commit', 'platform', 'build_time', 'go_version', 'go_tags', 'go_gcflags'],
      registers,
    }).set({ major: MANAGER_VERSION.split('.')[0], minor: MANAGER_VERSION.split('.')[1], git_version: `v${MANAGER_VERSION}`, git_commit: '', platform: `${process.platform}/${process.arch}`, build_time: '', go_version: `node ${process.version}`, go_tags: '', go_gcflags: '' }, 1);
    this.httpRequests = new Counter({ name: 'dragonfly_manager_http_requests_total', help: 'REST requests by route and status code', labelNames: ['method', 'route', 'code'], registers });
    this.httpDuration = new Histogram({ name: 'dragonfly_manager_http_request_duration_seconds', help: 'REST request latency by route', labelNames: ['method', 'route'], registers, buckets: [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5] });
    this.grpcRequests = new Counter({ name: 'dragonfly_manager_grpc_requests_total', help: 'gRPC requests by method and status code', labelNames: ['method', 'code'], registers });
    this.grpcDuration = new Histogram({ name: 'dragonfly_manager_grpc_request_duration_seconds', help: 'gRPC unary latency by method', labelNames: ['method'], registers, buckets: [0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1] });
    new Gauge({
      name: 'dragonfly_manager_active_schedulers',
      help: 'Schedulers currently active',
      registers,
      async collect() {
        this.set(await activeSchedulers());
      },
    });
  }

  /** Peers seen recently, by "hostname/ip"; bounded (the oldest goes first). */
  private readonly recentPeers = new Map<string, number>();

  searched(found: boolean, peer?: { hostname: string; ip: string }): void {
    this.searchTotal.inc(VERSION_LABELS);
    if (!found) this.searchFailureTotal.inc(VERSION_LABELS);
    if (peer && (peer.hostname || peer.ip)) {
      const key = `${peer.hostname.slice(0, 256)}/${peer.ip.slice(0, 64)}`;
      this.recentPeers.delete(key);
      this.recentPeers.set(key, Date.now());
      if (this.recentPeers.size > MAX_RECENT_PEERS) this.recentPeers.delete(this.recentPeers.keys().next().value as string);
    }
  }
}
