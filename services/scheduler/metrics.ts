/** Prometheus metrics of the scheduler (prefix dragonfly_scheduler_). */
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import { DeferredCounter } from './deferred-counter';
import type { ResourceStore } from './resource/store';
import type { SchedulerEvents } from './service';

export function createSchedulerMetrics(registry: Registry, store: ResourceStore): SchedulerEvents {
  const scheduleDuration = new Histogram({
    name: 'dragonfly_scheduler_schedule_duration_milliseconds',
    help: 'Time to decide one answer for a peer (parents, wait, back-to-source)',
    buckets: [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 25, 100],
    registers: [registry],
  });
  const backToSource = new Counter({ name: 'dragonfly_scheduler_back_to_source_total', help: 'need_back_to_source answers (seed peers included)', registers: [registry] });
  const traffic = new DeferredCounter({ name: 'dragonfly_scheduler_traffic_bytes_total', help: 'Piece bytes reported by peers, by traffic type', labelNames: ['type'], registers: [registry] });
  new Gauge({ name: 'dragonfly_scheduler_hosts', help: 'Hosts known', registers: [registry], collect() { this.set(store.hosts.size); } });
  new Gauge({ name: 'dragonfly_scheduler_peers', help: 'Peers known', registers: [registry], collect() { this.set(store.peers.size); } });
  new Gauge({ name: 'dragonfly_scheduler_tasks', help: 'Tasks known', registers: [registry], collect() { this.set(store.tasks.size); } });
  return {
    // Counted with upstream's labels by SchedulerUpstreamMetrics (register_peer_total, announce_host_total).
    registerPeer: () => undefined,
    scheduleDuration: (ms) => scheduleDuration.observe(ms),
    backToSource: () => backToSource.inc(),
    traffic: (type, bytes) => (traffic.at(type) ?? traffic.open(type, { type })).value += bytes,
    announceHost: () => undefined,
  };
}
