/** Prometheus metrics of the manager. */
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';

export class ManagerMetrics {
  readonly searchTotal: Counter;
  readonly searchFailureTotal: Counter;
  readonly httpRequests: Counter<'method' | 'route' | 'code'>;
  readonly httpDuration: Histogram<'method' | 'route'>;
  readonly grpcRequests: Counter<'method' | 'code'>;
  readonly grpcDuration: Histogram<'method'>;

  constructor(registry: Registry, activeSchedulers: () => Promise<number>) {
    const registers = [registry];
    this.searchTotal = new Counter({ name: 'dragonfly_manager_search_scheduler_cluster_total', help: 'ListSchedulers searches run', registers });
    this.searchFailureTotal = new Counter({ name: 'dragonfly_manager_search_scheduler_cluster_failure_total', help: 'Searches that found no eligible scheduler cluster', registers });
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

  searched(found: boolean): void {
    this.searchTotal.inc();
    if (!found) this.searchFailureTotal.inc();
  }
}
