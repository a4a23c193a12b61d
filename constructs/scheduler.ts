/** The scheduler of one Dragonfly cluster: StatefulSet, Service :8002, metrics Service, ConfigMap. */
import { k8s } from 'cdk8s-plus-28';
import { Construct } from 'constructs';
import type { SchedulerConfigInput } from '../services/common/config';
import {
  CONFIG_DIR,
  componentLabels,
  dragonflyProbes,
  envFromField,
  envFromSecret,
  renderConfig,
  resources,
  service,
  serviceAccount,
  waitFor,
  type ResourceSettings,
  type SecretKeyRef,
  type WiredKey,
} from './_util';
import { MANAGER_GRPC_PORT, METRICS_PORT, SCHEDULER_GRPC_PORT, managerGrpcAddr, type ManagerEndpoint } from './endpoints';
import { imageOf, pullPolicyOf, type ImageRef } from './images';
import { componentTls } from './tls';

/** Options of the scheduler that a DragonflyCluster exposes to users. */
export interface SchedulerOptions {
  /**
   * Number of scheduler pods.
   * @default 1
   */
  readonly replicas?: number;
  /**
   * Extra scheduler.yaml keys (Go-era Dragonfly keys such as `verbose`, `pprofPort`,
   * `scheduler.backToSourceCount`). The manager address, cluster id, ports and tracing are
   * set from the construct's props; setting them here to another value is an error.
   * @default - none
   */
  readonly config?: SchedulerConfigInput;
  /**
   * Image.
   * @default - ghcr.io/dragonfly-ts/scheduler:<package version>
   */
  readonly image?: ImageRef;
  /**
   * CPU and memory.
   * @default - requests 0, limits 8 CPU / 16Gi (the chart's)
   */
  readonly resources?: ResourceSettings;
  /**
   * Node labels the scheduler pods must run on; overrides the cluster-wide nodeSelector.
   * @default - the cluster's nodeSelector
   */
  readonly nodeSelector?: Readonly<Record<string, string>>;
  /**
   * Create the `<release>-scheduler-metrics` Service (port 8000).
   * @default true
   */
  readonly metricsService?: boolean;
}

/** The manager's Redis, where this cluster's job queue (preheat, get_task, ...) lives. */
export interface JobRedis {
  /** "host:port" addresses (one, or the sentinels). */
  readonly addrs: readonly string[];
  /**
   * Secret key holding the password.
   * @default - no password
   */
  readonly passwordSecret?: SecretKeyRef;
  /**
   * Database number.
   * @default 0
   */
  readonly db?: number;
  /**
   * Key prefix; must equal the manager's `database.redis.keyPrefix`.
   * @default "manager:"
   */
  readonly keyPrefix?: string;
}

export interface SchedulerProps extends SchedulerOptions {
  /** Helm-style release name; objects are named `<release>-scheduler`. */
  readonly release: string;
  /** Manager this scheduler registers with. */
  readonly manager: ManagerEndpoint;
  /** Scheduler cluster id (`manager.schedulerClusterID`). */
  readonly clusterId: number;
  /**
   * Tracing collector URL written to the `jaeger` key.
   * @default - tracing off
   */
  readonly jaegerUrl?: string;
  /**
   * IDC / location of the cluster, written to `host.idc` / `host.location`.
   * @default - empty
   */
  readonly host?: { readonly idc?: string; readonly location?: string };
  /**
   * Redis the scheduler takes jobs from (`database.redis`).
   * @default - none: the scheduler takes no jobs
   */
  readonly jobRedis?: JobRedis;
}

export class Scheduler extends Construct {
  /** Service name peers and init containers use: `<release>-scheduler`. */
  public readonly serviceName: string;
  public readonly port = SCHEDULER_GRPC_PORT;
  /** The scheduler.yaml object rendered into the ConfigMap (before env overrides). */
  public readonly config: Readonly<Record<string, unknown>>;

  constructor(scope: Construct, id: string, props: SchedulerProps) {
    super(scope, id);
    const replicas = props.replicas ?? 1;
    if (!Number.isInteger(replicas) || replicas < 1) {
      throw new Error(`scheduler replicas must be an integer of 1 or more (got ${replicas})`);
    }
    const name = `${props.release}-scheduler`;
    this.serviceName = name;
    const labels = componentLabels(props.release, 'scheduler');

    const wired: WiredKey[] = [
      {
        prop: 'the manager / clusterId props',
        value: { manager: { addr: managerGrpcAddr(props.manager), schedulerClusterID: props.clusterId } },
      },
      { prop: 'the scheduler port (fixed at 8002)', value: { server: { port: SCHEDULER_GRPC_PORT } } },
      { prop: 'the metrics port (fixed at 8000)', value: { metrics: { enable: true, addr: `:${METRICS_PORT}` } } },
    ];
    if (props.jaegerUrl) wired.push({ prop: 'the jaeger prop', value: { jaeger: props.jaegerUrl } });
    const host: Record<string, string> = {};
    if (props.host?.idc) host.idc = props.host.idc;
    if (props.host?.location) host.location = props.host.location;
    if (Object.keys(host).length > 0) wired.push({ prop: 'the scopes prop', value: { host } });
    const jobRedis = props.jobRedis;
    if (jobRedis) {
      if (jobRedis.addrs.length === 0) throw new Error('jobRedis.addrs (externalRedis.addrs) is empty; list at least one "host:port" or drop it');
      const redis = { addrs: [...jobRedis.addrs], ...(jobRedis.db !== undefined ? { db: jobRedis.db } : {}), ...(jobRedis.keyPrefix !== undefined ? { keyPrefix: jobRedis.keyPrefix } : {}) };
      wired.push({ prop: 'the jobRedis / externalRedis prop', value: { database: { redis } } });
    }
    const tls = componentTls(this, { release: props.release, component: 'scheduler', clusterId: props.clusterId, serviceName: name });
    wired.push(tls.wired);
    const rendered = renderConfig('scheduler', 'scheduler', props.config, wired);
    this.config = rendered.input;

    const configMap = new k8s.KubeConfigMap(this, 'Config', {
      metadata: { name, labels },
      data: { 'scheduler.yaml': rendered.yaml },
    });
    serviceAccount(this, 'ServiceAccount', name, labels);
    service(this, 'Service', name, labels, [{ name: 'grpc', port: SCHEDULER_GRPC_PORT }]);
    if (props.metricsService ?? true) service(this, 'MetricsService', `${name}-metrics`, labels, [{ name: 'http-metrics', port: METRICS_PORT }]);

    const pprofPort = typeof props.config?.pprofPort === 'number' && props.config.pprofPort > 0 ? props.config.pprofPort : undefined;
    new k8s.KubeStatefulSet(this, 'Resource', {
      metadata: { name, labels },
      spec: {
        replicas,
        serviceName: name,
        selector: { matchLabels: labels },
        template: {
          metadata: { labels },
          spec: {
            serviceAccountName: name,
            automountServiceAccountToken: false,
            ...(props.nodeSelector && Object.keys(props.nodeSelector).length > 0 ? { nodeSelector: { ...props.nodeSelector } } : {}),
            initContainers: [waitFor('manager', props.manager.host, props.manager.grpcPort ?? MANAGER_GRPC_PORT)],
            containers: [
              {
                name: 'scheduler',
                image: imageOf('scheduler', props.image),
                imagePullPolicy: pullPolicyOf(props.image),
                command: ['dfscheduler', '--config', `${CONFIG_DIR}/scheduler.yaml`],
                env: [
                  envFromField('scheduler', ['server', 'advertiseIP'], 'status.podIP'),
                  ...(jobRedis?.passwordSecret ? [envFromSecret('scheduler', ['database', 'redis', 'password'], jobRedis.passwordSecret)] : []),
                ],
                ports: [
                  { name: 'grpc', containerPort: SCHEDULER_GRPC_PORT, protocol: 'TCP' },
                  { name: 'http-metrics', containerPort: METRICS_PORT, protocol: 'TCP' },
                  ...(pprofPort ? [{ name: 'pprof', containerPort: pprofPort, protocol: 'TCP' }] : []),
                ],
                ...dragonflyProbes(SCHEDULER_GRPC_PORT, METRICS_PORT),
                ...tls.readinessProbe(METRICS_PORT),
                resources: resources(props.resources, { cpu: '8', memory: '16Gi' }),
                volumeMounts: [{ name: 'config', mountPath: CONFIG_DIR, readOnly: true }, ...tls.volumeMounts],
              },
            ],
            volumes: [{ name: 'config', configMap: { name: configMap.name } }, ...tls.volumes],
          },
        },
      },
    });
  }
}
