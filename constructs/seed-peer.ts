/** The seed peer of one Dragonfly cluster: StatefulSet with a volumeClaimTemplate, Service, ConfigMap. */
import { k8s } from 'cdk8s-plus-28';
import { Construct } from 'constructs';
import type { DfdaemonConfigInput } from '../services/common/config';
import { CONFIG_DIR, componentLabels, envFromField, renderConfig, service, serviceAccount, waitFor, type WiredKey } from './_util';
import {
  DFDAEMON_GRPC_PORT,
  DFDAEMON_PROXY_PORT,
  DFDAEMON_UPLOAD_PORT,
  MANAGER_GRPC_PORT,
  METRICS_PORT,
  hostKeysOf,
  managerGrpcAddr,
  type HostScope,
  type ManagerEndpoint,
} from './endpoints';
import { imageOf, pullPolicyOf, type ImageRef } from './images';
import { componentTls } from './tls';
import { IMAGE_UID, Workload, nonRootSecurityContext, type MainContainer, type WorkloadOptions } from './workload';

/** Options of the seed peer that a DragonflyCluster exposes to users. */
export interface SeedPeerOptions extends WorkloadOptions {
  /**
   * Number of seed peer pods.
   * @default 1
   */
  readonly replicas?: number;
  /**
   * Extra dfdaemon.yaml keys (e.g. `verbose`, `pprofPort`, `download.totalRateLimit`). The
   * manager address, seed-peer cluster id, ports, data dir and tracing come from props.
   * @default - none
   */
  readonly config?: DfdaemonConfigInput;
  /**
   * Image (the dfdaemon image).
   * @default - ghcr.io/dragonfly-ts/dfdaemon:<package version>
   */
  readonly image?: ImageRef;
  /**
   * Size of each seed peer's piece store (the `storage` volumeClaimTemplate).
   * @default "100Gi" (the chart's)
   */
  readonly storageSize?: string;
  /**
   * StorageClass of the piece store.
   * @default - the cluster's default StorageClass
   */
  readonly storageClassName?: string;
  /**
   * Create the `<release>-seed-peer-metrics` Service (port 8000).
   * @default true
   */
  readonly metricsService?: boolean;
}

export interface SeedPeerProps extends SeedPeerOptions {
  /** Helm-style release name; objects are named `<release>-seed-peer`. */
  readonly release: string;
  /** Manager the seed peer registers with. */
  readonly manager: ManagerEndpoint;
  /** Seed-peer cluster id (`scheduler.manager.seedPeer.clusterID`). */
  readonly clusterId: number;
  /**
   * Tracing collector URL.
   * @default - tracing off
   */
  readonly jaegerUrl?: string;
  /**
   * `host.idc` / `host.location` of the seed peers.
   * @default - empty
   */
  readonly host?: HostScope;
}

export const DATA_DIR = '/var/lib/dragonfly';
/** Directory of the dfdaemon's download socket. */
export const RUN_DIR = '/var/run/dragonfly';

/**
 * The dfdaemon program's container ports and probes, the same for the seed peer and the DaemonSet.
 * Under mTLS readiness is GET /healthy: the kubelet's gRPC probe has no certificate.
 */
export function dfdaemonContainerPorts(
  ports: { readonly grpc: number; readonly proxy: number; readonly upload: number; readonly metrics: number },
  pprofPort: number | undefined,
  tlsEnabled: boolean,
): Pick<MainContainer, 'ports' | 'probePorts'> {
  return {
    ports: [
      { name: 'grpc', port: ports.grpc },
      { name: 'proxy', port: ports.proxy },
      { name: 'upload', port: ports.upload },
      { name: 'http-metrics', port: ports.metrics },
      ...(pprofPort ? [{ name: 'pprof', port: pprofPort }] : []),
    ],
    probePorts: { grpc: tlsEnabled ? undefined : ports.grpc, http: ports.metrics },
  };
}

/** Keys both the seed peer and the dfdaemon DaemonSet take from the topology. */
export function dfdaemonWiring(props: {
  manager: ManagerEndpoint;
  jaegerUrl?: string;
  host?: HostScope;
  ports: { grpc: number; proxy: number; upload: number; metrics: number };
}): WiredKey[] {
  const wired: WiredKey[] = [
    {
      prop: 'the manager prop',
      value: { scheduler: { manager: { enable: true, netAddrs: [{ type: 'tcp', addr: managerGrpcAddr(props.manager) }] } } },
    },
    {
      prop: 'the ports prop',
      value: {
        download: { peerGRPC: { tcpListen: { port: props.ports.grpc } } },
        proxy: { tcpListen: { port: props.ports.proxy } },
        upload: { tcpListen: { port: props.ports.upload } },
        metrics: `:${props.ports.metrics}`,
      },
    },
    { prop: 'the data dir (fixed at /var/lib/dragonfly)', value: { dataDir: DATA_DIR } },
  ];
  if (props.jaegerUrl) wired.push({ prop: 'the jaeger prop', value: { jaeger: props.jaegerUrl } });
  const host = hostKeysOf(props.host);
  if (host) wired.push({ prop: 'the scopes prop', value: { host } });
  return wired;
}

export class SeedPeer extends Construct {
  public readonly serviceName: string;
  /** The dfdaemon.yaml object rendered into the ConfigMap (before env overrides). */
  public readonly config: Readonly<Record<string, unknown>>;
  /** The StatefulSet; add volumes, env or pod metadata through it. */
  public readonly workload: Workload;

  constructor(scope: Construct, id: string, props: SeedPeerProps) {
    super(scope, id);
    const replicas = props.replicas ?? 1;
    if (!Number.isInteger(replicas) || replicas < 1) {
      throw new Error(`seed peer replicas must be an integer of 1 or more (got ${replicas})`);
    }
    const storageSize = props.storageSize ?? '100Gi';
    if (!/^\d+(\.\d+)?(Ki|Mi|Gi|Ti|Pi|k|M|G|T|P)?$/.test(storageSize)) {
      throw new Error(`seed peer storageSize "${storageSize}" is not a Kubernetes quantity; write it like "100Gi"`);
    }
    const name = `${props.release}-seed-peer`;
    this.serviceName = name;
    const labels = componentLabels(props.release, 'seed-peer');
    const ports = { grpc: DFDAEMON_GRPC_PORT, proxy: DFDAEMON_PROXY_PORT, upload: DFDAEMON_UPLOAD_PORT, metrics: METRICS_PORT };

    const tls = componentTls(this, { release: props.release, component: 'seed-peer', clusterId: props.clusterId, serviceName: name });
    const wired = [
      ...dfdaemonWiring({ ...props, ports }),
      {
        prop: 'the clusterId prop',
        value: { scheduler: { manager: { seedPeer: { enable: true, clusterID: props.clusterId } } } },
      },
      tls.wired,
    ];
    const rendered = renderConfig('dfdaemon', 'seed peer', props.config, wired);
    this.config = rendered.input;

    const configMap = new k8s.KubeConfigMap(this, 'Config', { metadata: { name, labels }, data: { 'dfdaemon.yaml': rendered.yaml } });
    serviceAccount(this, 'ServiceAccount', name, labels);
    service(this, 'Service', name, labels, [
      { name: 'grpc', port: ports.grpc },
      { name: 'proxy', port: ports.proxy },
      { name: 'upload', port: ports.upload },
    ]);
    if (props.metricsService ?? true) service(this, 'MetricsService', `${name}-metrics`, labels, [{ name: 'http-metrics', port: METRICS_PORT }]);

    const pprofPort = typeof props.config?.pprofPort === 'number' && props.config.pprofPort > 0 ? props.config.pprofPort : undefined;
    this.workload = new Workload(this, 'Workload', {
      kind: 'StatefulSet',
      name,
      what: 'seedPeer',
      labels,
      replicas,
      options: props,
      // The seed peer writes only its piece store (the claim, made group-writable by fsGroup) and its socket dir.
      defaults: { cpu: '8', memory: '16Gi', securityContext: nonRootSecurityContext() },
      pod: { securityContext: { fsGroup: IMAGE_UID } },
      initContainers: [waitFor('manager', props.manager.host, props.manager.grpcPort ?? MANAGER_GRPC_PORT)],
      container: {
        name: 'seed-peer',
        image: imageOf('dfdaemon', props.image),
        imagePullPolicy: pullPolicyOf(props.image),
        command: ['dfdaemon', '--config', `${CONFIG_DIR}/dfdaemon.yaml`],
        env: [envFromField('dfdaemon', ['host', 'advertiseIP'], 'status.podIP')],
        ...dfdaemonContainerPorts(ports, pprofPort, tls.enabled),
        volumeMounts: [
          { name: 'config', mountPath: CONFIG_DIR, readOnly: true },
          { name: 'storage', mountPath: DATA_DIR },
          { name: 'run', mountPath: RUN_DIR },
          ...tls.volumeMounts,
        ],
      },
      volumes: [
        { name: 'config', configMap: { name: configMap.name } },
        { name: 'run', emptyDir: {} },
        ...tls.volumes,
      ],
      workloadSpec: {
        volumeClaimTemplates: [
          {
            metadata: { name: 'storage' },
            spec: {
              accessModes: ['ReadWriteOnce'],
              ...(props.storageClassName ? { storageClassName: props.storageClassName } : {}),
              resources: { requests: { storage: k8s.Quantity.fromString(storageSize) } },
            },
          },
        ],
      },
    });
  }
}
