/**
 * DragonflyMonitoring: monitors select the components' metrics Services by their labels and
 * port name, the rules and dashboards query only metric names the programs really export
 * (read from the programs' own registries), and the dashboards ship as ConfigMaps labelled
 * for Grafana's sidecar.
 */
import { Registry } from 'prom-client';
import { DASHBOARDS, DragonflyCluster, DragonflyMonitoring } from '../../../constructs';
import { SchedulerUpstreamMetrics } from '../../../services/scheduler/upstream-metrics';
import { createSchedulerMetrics } from '../../../services/scheduler/metrics';
import { ResourceStore } from '../../../services/scheduler/resource/store';
import { createDfdaemonMetrics } from '../../../services/dfdaemon/metrics';
import { ClientUpstreamMetrics } from '../../../services/dfdaemon/upstream-metrics';
import { ManagerMetrics } from '../../../services/manager/metrics';
import { Tracing } from '../../../services/common/telemetry';
import { findObject, newChart, synth, type KubeObject } from './helpers';

const MANAGER = { host: 'dragonfly-manager.a.svc.cluster.local', grpcPort: 65003, restPort: 8080 };

/** Every metric family the programs register (histograms add _bucket/_sum/_count). */
async function exportedNames(): Promise<Set<string>> {
  const names = new Set<string>(['up']);
  const scheduler = new Registry();
  createSchedulerMetrics(scheduler, new ResourceStore());
  new SchedulerUpstreamMetrics(scheduler, { enableHost: true });
  const dfdaemon = new Registry();
  const own = createDfdaemonMetrics(dfdaemon);
  new ClientUpstreamMetrics(dfdaemon, own, () => 0);
  Tracing.start({ serviceName: 'x', jaeger: '', registry: dfdaemon, env: {} });
  const manager = new Registry();
  new ManagerMetrics(manager, async () => 0);
  for (const r of [scheduler, dfdaemon, manager]) {
    for (const m of await r.getMetricsAsJSON()) {
      names.add(m.name);
      if (String(m.type) === 'histogram') for (const s of ['_bucket', '_sum', '_count']) names.add(m.name + s);
    }
  }
  return names;
}

/** Metric names in a PromQL expression (identifiers before `{`, `[` or `)`, minus functions and keywords). */
function metricNames(expr: string): string[] {
  const out = new Set<string>();
  const bare = expr.replace(/"[^"]*"/g, '""').replace(/\b(by|without|on|ignoring)\s*\([^)]*\)/g, '');
  for (const m of bare.matchAll(/\b([a-zA-Z_:][a-zA-Z0-9_:]*)\s*(\{|\[|\))/g)) {
    const name = m[1];
    if (/^(sum|rate|increase|histogram_quantile|by|and|or|on|without)$/.test(name) || name.includes(':')) continue;
    out.add(name);
  }
  return [...out];
}

describe('DragonflyMonitoring', () => {
  const { chart } = newChart('mon', 'cluster-a');
  new DragonflyCluster(chart, 'dragonfly', { manager: MANAGER, monitoring: { selectorLabels: { release: 'kube-prometheus-stack' } } });
  const objects = synth(chart);

  it('one ServiceMonitor per component, selecting its metrics Service by labels and port name', () => {
    for (const component of ['scheduler', 'seed-peer', 'dfdaemon']) {
      const sm = findObject(objects, 'ServiceMonitor', `dragonfly-${component}`) as KubeObject & { spec: { selector: { matchLabels: Record<string, string> }; endpoints: Array<{ port: string }> } };
      expect(sm.apiVersion).toBe('monitoring.coreos.com/v1');
      const svc = findObject(objects, 'Service', `dragonfly-${component}-metrics`) as KubeObject & { spec: { ports: Array<{ name: string }> } };
      expect(Object.entries(sm.spec.selector.matchLabels).every(([k, v]) => svc.metadata.labels?.[k] === v)).toBe(true);
      expect(svc.spec.ports.map((p) => p.name)).toContain(sm.spec.endpoints[0].port);
    }
    // The Prometheus selector label is on the monitor, never on the selector (it would match no Service).
    const sm = findObject(objects, 'ServiceMonitor', 'dragonfly-scheduler') as KubeObject & { spec: { selector: { matchLabels: Record<string, string> } } };
    expect(sm.metadata.labels?.release).toBe('kube-prometheus-stack');
    expect(sm.spec.selector.matchLabels.release).toBe('dragonfly');
  });

  it('rules and dashboards query only metric names the programs export', async () => {
    const names = await exportedNames();
    const rule = findObject(objects, 'PrometheusRule', 'dragonfly-dragonfly') as KubeObject & { spec: { groups: Array<{ rules: Array<{ expr: string }> }> } };
    const exprs = rule.spec.groups.flatMap((g) => g.rules.map((r) => r.expr));
    for (const dash of Object.values(DASHBOARDS) as Array<{ panels: Array<{ targets: Array<{ expr: string }> }> }>) exprs.push(...dash.panels.flatMap((p) => p.targets.map((t) => t.expr)));
    expect(exprs.length).toBeGreaterThan(20);
    const unknown = exprs.flatMap(metricNames).filter((n) => !names.has(n));
    expect(unknown).toEqual([]);
  });

  it('ships the dashboards as ConfigMaps labelled for the Grafana sidecar, with valid dashboard JSON', () => {
    const maps = objects.filter((o) => o.kind === 'ConfigMap' && o.metadata.labels?.grafana_dashboard === '1') as Array<KubeObject & { data: Record<string, string> }>;
    expect(maps.map((m) => Object.keys(m.data)[0]).sort()).toEqual(Object.keys(DASHBOARDS).sort());
    for (const m of maps) {
      const dash = JSON.parse(Object.values(m.data)[0]) as { uid: string; title: string; panels: unknown[] };
      expect(dash.uid).toMatch(/^dragonfly-/);
      expect(dash.panels.length).toBeGreaterThan(3);
    }
  });

  it('PodMonitors instead, and refusals that say how to fix the props', () => {
    const { chart: c } = newChart('pm', 'ns');
    new DragonflyMonitoring(c, 'm', { mode: 'podMonitor', components: ['manager'], rules: false, dashboards: false });
    const out = synth(c);
    expect(out.map((o) => `${o.kind}/${o.metadata.name}`)).toEqual(['PodMonitor/dragonfly-manager']);
    const { chart: bad } = newChart('bad', 'ns');
    expect(() => new DragonflyMonitoring(bad, 'a', { interval: 'often' })).toThrow(/interval "often" is not a Prometheus duration/);
    expect(() => new DragonflyMonitoring(bad, 'b', { components: [] })).toThrow(/components is empty/);
    expect(() => new DragonflyMonitoring(bad, 'c', { selectorLabels: { 'bad label': 'x' } })).toThrow(/selectorLabels has an invalid label/);
  });

  it('nothing without the monitoring prop', () => {
    const { chart: c } = newChart('off', 'ns');
    new DragonflyCluster(c, 'dragonfly', { manager: MANAGER });
    expect(synth(c).filter((o) => o.apiVersion.startsWith('monitoring.coreos.com'))).toEqual([]);
  });
});
