/** The scheduler of one Dragonfly cluster: StatefulSet, Service :8002, metrics Service, ConfigMap. */
import { k8s } from 'cdk8s-plus-28';
import { Construct } from 'constructs';
import type { SchedulerConfigInput } from '../services/common/config';
import { CONFIG_DIR, componentLabels, envFromField, envFromSecret, renderConfig, service, serviceAccount, waitFor, type SecretKeyRef, type WiredKey } from './_util';
import { MANAGER_GRPC_PORT, METRICS_PORT, SCHEDULER_GRPC_PORT, hostKeysOf, managerGrpcAddr, type HostScope, type ManagerEndpoint } from './endpoints';
import { imageOf, pullPolicyOf, type ImageRef } from './images';
import { componentTls } from './tls';
import { Workload, nonRootSecurityContext, type DisruptionBudget, type WorkloadOptions } from './workload';

/** Options of the scheduler that a DragonflyCluster exposes to users. */
export interface SchedulerOptions extends WorkloadOptions {
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
   * Create the `<release>-scheduler-metrics` Service (port 8000).
   * @default true
   */
  readonly metricsService?: boolean;
  /**
   * PodDisruptionBudget of the scheduler pods, or false for none.
   * @default { maxUnavailable: 1 } (a node drain takes one scheduler down at a time, and never blocks)
   */
  readonly disruptionBudget?: DisruptionBudget | false;
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
  readonly host?: HostScope;
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
  /** The StatefulSet and its PodDisruptionBudget; add volumes, env or pod metadata through it. */
  public readonly workload: Workload;

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
    const host = hostKeysOf(props.host);
    if (host) wired.push({ prop: 'the scopes prop', value: { host } });
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
    this.workload = new Workload(this, 'Workload', {
      kind: 'StatefulSet',
      name,
      what: 'scheduler',
      labels,
      replicas,
      options: props,
      defaults: { cpu: '8', memory: '16Gi', securityContext: nonRootSecurityContext() },
      disruptionBudget: props.disruptionBudget ?? { maxUnavailable: 1 },
      initContainers: [waitFor('manager', props.manager.host, props.manager.grpcPort ?? MANAGER_GRPC_PORT)],
      container: {
        name: 'scheduler',
        image: imageOf('scheduler', props.image),
        imagePullPolicy: pullPolicyOf(props.image),
        command: ['dfscheduler', '--config', `${CONFIG_DIR}/scheduler.yaml`],
        env: [
          envFromField('scheduler', ['server', 'advertiseIP'], 'status.podIP'),
          ...(jobRedis?.passwordSecret ? [envFromSecret('scheduler', ['database', 'redis', 'password'], jobRedis.passwordSecret)] : []),
        ],
        ports: [
          { name: 'grpc', port: SCHEDULER_GRPC_PORT },
          { name: 'http-metrics', port: METRICS_PORT },
          ...(pprofPort ? [{ name: 'pprof', port: pprofPort }] : []),
        ],
        probePorts: { grpc: tls.enabled ? undefined : SCHEDULER_GRPC_PORT, http: METRICS_PORT },
        volumeMounts: [{ name: 'config', mountPath: CONFIG_DIR, readOnly: true }, ...tls.volumeMounts],
      },
      volumes: [{ name: 'config', configMap: { name: configMap.name } }, ...tls.volumes],
    });
  }
}
