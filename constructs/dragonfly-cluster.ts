/**
 * One Dragonfly cluster inside one Kubernetes cluster: scheduler, seed peer, a dfdaemon on
 * every node (with dfinit for containerd), optional Jaeger. It registers with a manager that
 * lives elsewhere (a CentralManager in the same chart, or another cluster's manager by DNS).
 */
import { Construct } from 'constructs';
import { assertNodeSelector, namespaceOf } from './_util';
import { Dfdaemon, type DfdaemonOptions } from './dfdaemon';
import { assertManagerEndpoint, SCHEDULER_GRPC_PORT, type HostScope, type ManagerEndpoint } from './endpoints';
import { Jaeger } from './jaeger';
import { ClusterNetworkPolicies, type ClusterNetworkPolicyOptions } from './network-policies';
import { DragonflyMonitoring, type DragonflyMonitoringOptions } from './monitoring';
import { Scheduler, type JobRedis, type SchedulerOptions } from './scheduler';
import { SeedPeer, type SeedPeerOptions } from './seed-peer';
import { DragonflyPki, type TlsProps } from './tls';

export interface DragonflyClusterProps {
  /** Manager the scheduler and seed peer register with and peers ask for schedulers. */
  readonly manager: ManagerEndpoint;
  /**
   * Scheduler cluster id and seed-peer cluster id (the manager's cluster record). The
   * manager creates cluster 1 (`cluster-1`, the default cluster) on first start.
   * @default 1
   */
  readonly clusterId?: number;
  /**
   * Helm-style release name: objects are named `<release>-scheduler`, `<release>-seed-peer`...
   * and labelled `app: dragonfly, release: <release>, component: <component>`.
   * @default "dragonfly"
   */
  readonly release?: string;
  /**
   * Node labels every component runs on (e.g. `{ cluster: 'a' }`); a component's own
   * nodeSelector wins.
   * @default - any node
   */
  readonly nodeSelector?: Readonly<Record<string, string>>;
  /**
   * Registries containerd pulls through the dfdaemon proxy (dfinit writes one hosts.toml
   * per entry). `https://docker.io` maps to host namespace docker.io, server https://index.docker.io.
   * Each is also added to the dfdaemon's `proxy.whiteList`: the proxy refuses registries it
   * does not list.
   * @default ["https://docker.io", "https://ghcr.io"] (the chart's)
   */
  readonly registries?: readonly string[];
  /**
   * Deploy Jaeger all-in-one and send every component's traces to it (`jaeger` key).
   * @default false
   */
  readonly jaeger?: boolean;
  /**
   * ServiceMonitors, PrometheusRule and Grafana dashboards for this cluster's scheduler, seed
   * peers and dfdaemons (needs prometheus-operator's CRDs; see DragonflyMonitoring).
   * @default false
   */
  readonly monitoring?: boolean | DragonflyMonitoringOptions;
  /**
   * `host.idc` / `host.location` written to every component's config.
   * @default - empty (peers are served by the manager's default cluster)
   */
  readonly hostScope?: HostScope;
  /**
   * Scheduler options.
   * @default - 1 replica, chart resources
   */
  readonly scheduler?: SchedulerOptions;
  /**
   * Seed peer options.
   * @default - 1 replica, 100Gi storage
   */
  readonly seedPeer?: SeedPeerOptions;
  /**
   * Per-node dfdaemon options.
   * @default - default ports, dfinit on
   */
  readonly dfdaemon?: DfdaemonOptions;
  /**
   * The manager's Redis, where the scheduler takes this cluster's jobs from (CentralManager's
   * `jobRedis` in the manager's own cluster).
   * @default - none: jobs (preheat, get_task, ...) sent to this cluster fail with "no live scheduler"
   */
  readonly jobRedis?: JobRedis;
  /**
   * Ingress NetworkPolicies for the scheduler, seed peers and Jaeger (see constructs/network-policies.ts).
   * @default - none: every pod and node can reach them
   */
  readonly networkPolicy?: ClusterNetworkPolicyOptions;
  /**
   * mTLS with certificates from cert-manager (one CA per topology). In a chart without a
   * CentralManager the CA Secret (`tls.caSecretName`) must be copied in from the manager's
   * namespace before applying.
   * @default - on, CA Secret "dragonfly-ca", piece HTTP plain
   */
  readonly tls?: TlsProps;
}

export const DEFAULT_REGISTRIES: readonly string[] = ['https://docker.io', 'https://ghcr.io'];

export function assertClusterId(id: number, what: string): void {
  if (!Number.isInteger(id) || id < 1) {
    throw new Error(`${what} cluster id must be an integer of 1 or more (got ${id}); cluster 1 is the manager's default cluster, use 2, 3... for more clusters`);
  }
}

export function assertRelease(release: string): void {
  if (!/^[a-z]([-a-z0-9]{0,30}[a-z0-9])?$/.test(release)) {
    throw new Error(`release "${release}" must be a short lowercase DNS label (e.g. "dragonfly"); it prefixes every object name`);
  }
}

export class DragonflyCluster extends Construct {
  public readonly namespace: string;
  public readonly release: string;
  public readonly clusterId: number;
  public readonly scheduler: Scheduler;
  public readonly seedPeer: SeedPeer;
  public readonly dfdaemon: Dfdaemon;
  public readonly jaeger?: Jaeger;

  constructor(scope: Construct, id: string, props: DragonflyClusterProps) {
    super(scope, id);
    assertManagerEndpoint(props.manager, 'DragonflyCluster');
    const clusterId = props.clusterId ?? 1;
    assertClusterId(clusterId, 'DragonflyCluster');
    const release = props.release ?? 'dragonfly';
    assertRelease(release);
    assertNodeSelector(props.nodeSelector, 'nodeSelector');
    assertNodeSelector(props.scheduler?.nodeSelector, 'scheduler.nodeSelector');
    assertNodeSelector(props.seedPeer?.nodeSelector, 'seedPeer.nodeSelector');
    assertNodeSelector(props.dfdaemon?.nodeSelector, 'dfdaemon.nodeSelector');
    this.namespace = namespaceOf(this, 'DragonflyCluster');
    this.release = release;
    this.clusterId = clusterId;

    DragonflyPki.ensure(this, props.tls, false).registerCluster(release, clusterId);
    if (props.jaeger) {
      this.jaeger = new Jaeger(this, 'Jaeger', { release, namespace: this.namespace, nodeSelector: props.nodeSelector });
    }
    const common = {
      release,
      manager: props.manager,
      clusterId,
      jaegerUrl: this.jaeger?.collectorUrl,
      host: props.hostScope,
    };
    this.scheduler = new Scheduler(this, 'Scheduler', {
      ...props.scheduler,
      ...common,
      jobRedis: props.jobRedis,
      nodeSelector: props.scheduler?.nodeSelector ?? props.nodeSelector,
    });
    this.seedPeer = new SeedPeer(this, 'SeedPeer', {
      ...props.seedPeer,
      ...common,
      nodeSelector: props.seedPeer?.nodeSelector ?? props.nodeSelector,
    });
    this.dfdaemon = new Dfdaemon(this, 'Dfdaemon', {
      ...props.dfdaemon,
      release,
      manager: props.manager,
      jaegerUrl: this.jaeger?.collectorUrl,
      host: props.hostScope,
      registries: props.registries ?? DEFAULT_REGISTRIES,
      scheduler: { host: `${this.scheduler.serviceName}.${this.namespace}.svc.cluster.local`, port: SCHEDULER_GRPC_PORT },
      nodeSelector: props.dfdaemon?.nodeSelector ?? props.nodeSelector,
    });
    if (props.networkPolicy) new ClusterNetworkPolicies(this, 'NetworkPolicies', { ...props.networkPolicy, release, jaeger: this.jaeger !== undefined });
    // Monitoring (issue 18): opt-in, in its own module.
    if (props.monitoring) new DragonflyMonitoring(this, 'Monitoring', { release, ...(props.monitoring === true ? {} : props.monitoring) });
  }
}
