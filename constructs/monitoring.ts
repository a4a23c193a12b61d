/**
 * Opt-in monitoring for a Dragonfly release with prometheus-operator and Grafana: a
 * ServiceMonitor (or PodMonitor) per component scraping its `http-metrics` port, a
 * PrometheusRule with alerts and recording rules on Dragonfly's published metric names, and
 * the dashboards (constructs/dashboards/*.json) as ConfigMaps labelled for Grafana's sidecar.
 * The monitoring kinds come from prometheus-operator's CRDs (constructs/imports/, `cdk8s import`).
 */
import { Construct } from 'constructs';
import { k8s } from 'cdk8s-plus-28';
import { componentLabels } from './_util';
import { PodMonitor, PrometheusRule, PrometheusRuleSpecGroupsRulesExpr, ServiceMonitor, type PrometheusRuleSpecGroups } from './imports/monitoring.coreos.com';
import p2pDashboard from './dashboards/dragonfly-p2p.json';
import pullsDashboard from './dashboards/dragonfly-pulls.json';
import schedulerDashboard from './dashboards/dragonfly-scheduler.json';

export type MonitoredComponent = 'manager' | 'scheduler' | 'seed-peer' | 'dfdaemon';

export const DASHBOARDS: Readonly<Record<string, unknown>> = {
  'dragonfly-pulls.json': pullsDashboard,
  'dragonfly-p2p.json': p2pDashboard,
  'dragonfly-scheduler.json': schedulerDashboard,
};

export interface DragonflyMonitoringOptions {
  /**
   * How Prometheus finds the pods: `serviceMonitor` through each component's metrics Service,
   * or `podMonitor` straight from the pods (when the metrics Services are not deployed).
   * @default "serviceMonitor"
   */
  readonly mode?: 'serviceMonitor' | 'podMonitor';
  /**
   * Scrape interval, a Prometheus duration.
   * @default "30s"
   */
  readonly interval?: string;
  /**
   * Extra labels on the monitors and rules, for a Prometheus that selects by label
   * (kube-prometheus-stack: `{ release: "<its release>" }`).
   * @default - none
   */
  readonly selectorLabels?: Readonly<Record<string, string>>;
  /**
   * Alerting and recording rules (PrometheusRule).
   * @default true
   */
  readonly rules?: boolean;
  /**
   * Grafana dashboards as ConfigMaps, labelled `<label>: "<labelValue>"` for Grafana's
   * dashboard sidecar; false: none.
   * @default { label: "grafana_dashboard", labelValue: "1" }
   */
  readonly dashboards?: false | { readonly label?: string; readonly labelValue?: string; readonly folder?: string };
}

export interface DragonflyMonitoringProps extends DragonflyMonitoringOptions {
  /**
   * Release whose components are scraped (their `release` label).
   * @default "dragonfly"
   */
  readonly release?: string;
  /**
   * Components to scrape.
   * @default ["scheduler", "seed-peer", "dfdaemon"]
   */
  readonly components?: readonly MonitoredComponent[];
}

const COMPONENTS: readonly MonitoredComponent[] = ['manager', 'scheduler', 'seed-peer', 'dfdaemon'];
const DURATION = /^(\d+(ms|s|m|h))+$/;
const LABEL_NAME = /^([a-z0-9A-Z]([-a-z0-9A-Z_.]*[a-z0-9A-Z])?\/)?[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$/;

/** Alerts and recording rules on the published metric names. */
function ruleGroups(release: string): PrometheusRuleSpecGroups[] {
  const expr = (e: string) => PrometheusRuleSpecGroupsRulesExpr.fromString(e);
  return [
    {
      name: `${release}-dragonfly.rules`,
      rules: [
        {
          record: 'dragonfly:p2p_ratio:rate5m',
          expr: expr('sum by (namespace) (rate(dragonfly_client_download_traffic{type="REMOTE_PEER"}[5m])) / sum by (namespace) (rate(dragonfly_client_download_traffic{type=~"REMOTE_PEER|BACK_TO_SOURCE"}[5m]))'),
        },
        { record: 'dragonfly:origin_bytes:rate5m', expr: expr('sum by (namespace) (rate(dragonfly_client_download_traffic{type="BACK_TO_SOURCE"}[5m]))') },
      ],
    },
    {
      name: `${release}-dragonfly.alerts`,
      rules: [
        {
          alert: 'DragonflySchedulerDown',
          expr: expr(`sum by (namespace) (up{service="${release}-scheduler-metrics"}) == 0`),
          for: '5m',
          labels: { severity: 'critical' },
          annotations: { summary: 'No Dragonfly scheduler answers in {{ $labels.namespace }}', description: 'Peers fall back to the origin while no scheduler is up.' },
        },
        {
          alert: 'DragonflyDownloadFailuresHigh',
          expr: expr('sum by (namespace) (rate(dragonfly_client_download_task_failure_total[10m])) / sum by (namespace) (rate(dragonfly_client_download_task_total[10m])) > 0.1'),
          for: '10m',
          labels: { severity: 'warning' },
          annotations: { summary: 'More than 10% of Dragonfly downloads fail in {{ $labels.namespace }}' },
        },
        {
          alert: 'DragonflyP2PRatioLow',
          expr: expr('dragonfly:p2p_ratio:rate5m < 0.5 and dragonfly:origin_bytes:rate5m > 1048576'),
          for: '30m',
          labels: { severity: 'warning' },
          annotations: { summary: 'Less than half of the bytes in {{ $labels.namespace }} come from peers', description: 'Seed peers or parents are missing: most bytes go back to the origin.' },
        },
        {
          alert: 'DragonflyTraceSpansDropped',
          expr: expr('sum by (namespace, program) (increase(dragonfly_tracing_dropped_spans_total[15m])) > 0'),
          for: '15m',
          labels: { severity: 'info' },
          annotations: { summary: 'Trace spans are dropped in {{ $labels.namespace }} ({{ $labels.program }})', description: 'The tracing collector is down or slower than the programs; downloads are unaffected.' },
        },
      ],
    },
  ];
}

export class DragonflyMonitoring extends Construct {
  /** The ServiceMonitors or PodMonitors, one per component. */
  public readonly monitors: ReadonlyArray<ServiceMonitor | PodMonitor>;
  public readonly rule?: PrometheusRule;
  public readonly dashboards: readonly k8s.KubeConfigMap[];

  constructor(scope: Construct, id: string, props: DragonflyMonitoringProps = {}) {
    super(scope, id);
    const release = props.release ?? 'dragonfly';
    const components = props.components ?? ['scheduler', 'seed-peer', 'dfdaemon'];
    const interval = props.interval ?? '30s';
    for (const c of components) {
      if (!COMPONENTS.includes(c)) throw new Error(`DragonflyMonitoring: components lists "${String(c)}"; use some of ${COMPONENTS.join(', ')}`);
    }
    if (components.length === 0) throw new Error('DragonflyMonitoring: components is empty; list at least one of manager, scheduler, seed-peer, dfdaemon');
    if (!DURATION.test(interval)) throw new Error(`DragonflyMonitoring: interval "${interval}" is not a Prometheus duration such as "30s" or "1m"`);
    const extra = { ...props.selectorLabels };
    for (const [k, v] of Object.entries(extra)) {
      if (!LABEL_NAME.test(k) || v.length > 63) throw new Error(`DragonflyMonitoring: selectorLabels has an invalid label ${JSON.stringify(k)}=${JSON.stringify(v)}`);
    }
    const mode = props.mode ?? 'serviceMonitor';
    this.monitors = components.map((component) => {
      const labels = componentLabels(release, component);
      const metadata = { name: `${release}-${component}`, labels: { ...labels, ...extra } };
      const endpoint = { port: 'http-metrics', path: '/metrics', interval };
      if (mode === 'podMonitor') {
        return new PodMonitor(this, `PodMonitor-${component}`, {
          metadata,
          // The containers name their metrics port http-metrics too.
          spec: { selector: { matchLabels: labels }, podMetricsEndpoints: [endpoint] },
        });
      }
      return new ServiceMonitor(this, `ServiceMonitor-${component}`, {
        metadata,
        spec: { selector: { matchLabels: labels }, endpoints: [endpoint] },
      });
    });
    if (props.rules ?? true) {
      this.rule = new PrometheusRule(this, 'Rules', {
        metadata: { name: `${release}-dragonfly`, labels: { app: 'dragonfly', release, ...extra } },
        spec: { groups: ruleGroups(release) },
      });
    }
    const dash = props.dashboards === false ? undefined : { label: 'grafana_dashboard', labelValue: '1', ...props.dashboards };
    if (dash && !LABEL_NAME.test(dash.label)) throw new Error(`DragonflyMonitoring: dashboards.label ${JSON.stringify(dash.label)} is not a valid label name`);
    this.dashboards = dash
      ? Object.entries(DASHBOARDS).map(
          ([file, json]) =>
            new k8s.KubeConfigMap(this, `Dashboard-${file}`, {
              metadata: {
                name: `${release}-${file.replace(/\.json$/, '')}-dashboard`,
                labels: { app: 'dragonfly', release, [dash.label]: dash.labelValue },
                ...(dash.folder ? { annotations: { grafana_folder: dash.folder } } : {}),
              },
              data: { [file]: `${JSON.stringify(json, null, 2)}\n` },
            }),
        )
      : [];
  }
}
