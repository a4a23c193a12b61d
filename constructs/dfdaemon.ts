/**
 * The peer on every node: a hostNetwork DaemonSet running dfdaemon, with dfinit as an init
 * container that points containerd at the local proxy (hosts.toml under config_path).
 */
import { k8s } from 'cdk8s-plus-28';
import { Construct } from 'constructs';
import type { DfdaemonConfigInput, DfinitConfigInput } from '../services/common/config';
import { CONFIG_DIR, assertPort, componentLabels, envFromField, renderConfig, service, serviceAccount, waitFor } from './_util';
import { DFDAEMON_GRPC_PORT, DFDAEMON_PROXY_PORT, DFDAEMON_UPLOAD_PORT, METRICS_PORT, type HostScope, type ManagerEndpoint } from './endpoints';
import { imageOf, pullPolicyOf, type ImageRef } from './images';
import { componentTls } from './tls';
import { DATA_DIR, RUN_DIR, dfdaemonContainerPorts, dfdaemonWiring } from './seed-peer';
import { Workload, resources, rootSecurityContext, type WorkloadOptions } from './workload';

/** Host ports of the dfdaemon; on hostNetwork they must all differ. */
export interface DfdaemonPorts {
  /**
   * Peer gRPC port.
   * @default 65000
   */
  readonly grpc?: number;
  /**
   * Registry-mirror proxy port containerd talks to at 127.0.0.1.
   * @default 65001
   */
  readonly proxy?: number;
  /**
   * Piece upload port.
   * @default 65002
   */
  readonly upload?: number;
  /**
   * Metrics and /healthy port.
   * @default 8000
   */
  readonly metrics?: number;
}

/** containerd integration done by dfinit. */
export interface DfinitOptions {
  /**
   * Run dfinit as an init container.
   * @default true
   */
  readonly enable?: boolean;
  /**
   * Restart containerd (nsenter into PID 1, privileged) when dfinit had to add
   * `config_path` to config.toml. Without it, add config_path yourself once per node.
   * @default false
   */
  readonly restartContainerd?: boolean;
  /**
   * Node directory that holds containerd's config.toml.
   * @default "/etc/containerd"
   */
  readonly containerdConfigDir?: string;
  /**
   * Extra dfinit.yaml keys (e.g. `containerRuntime.containerd.replaceExisting`).
   * Registries and the proxy address come from props.
   * @default - none
   */
  readonly config?: DfinitConfigInput;
}

/** Options of the per-node dfdaemon that a DragonflyCluster exposes to users. */
export interface DfdaemonOptions extends WorkloadOptions {
  /**
   * Extra dfdaemon.yaml keys (e.g. `verbose`, `pprofPort`, `proxy.proxies`). The manager
   * address, ports, data dir, host.idc/location and tracing come from props; each of the
   * cluster's `registries` is appended to `proxy.whiteList`.
   * @default - none
   */
  readonly config?: DfdaemonConfigInput;
  /**
   * Host ports.
   * @default - gRPC 65000, proxy 65001, upload 65002, metrics 8000
   */
  readonly ports?: DfdaemonPorts;
  /**
   * Image (also used for the dfinit init container).
   * @default - ghcr.io/dragonfly-ts/dfdaemon:<package version>
   */
  readonly image?: ImageRef;
  /**
   * dfinit (containerd registry mirror setup).
   * @default - enabled, no containerd restart
   */
  readonly dfinit?: DfinitOptions;
  /**
   * Create the `<release>-dfdaemon-metrics` Service (port 8000).
   * @default true
   */
  readonly metricsService?: boolean;
}

export interface DfdaemonProps extends DfdaemonOptions {
  /** Helm-style release name; objects are named `<release>-dfdaemon`. */
  readonly release: string;
  /** Manager the dfdaemon asks for schedulers. */
  readonly manager: ManagerEndpoint;
  /** Scheduler Service the init container waits for. */
  readonly scheduler: { readonly host: string; readonly port: number };
  /** Registry URLs containerd should pull through the proxy (e.g. "https://ghcr.io"). */
  readonly registries: readonly string[];
  /**
   * Tracing collector URL.
   * @default - tracing off
   */
  readonly jaegerUrl?: string;
  /**
   * `host.idc` / `host.location`, so the manager's searcher picks this cluster.
   * @default - empty (the default cluster serves these peers)
   */
  readonly host?: HostScope;
}

/**
 * Maps a registry URL to a dfinit registry entry: `https://docker.io` becomes host namespace
 * docker.io with server https://index.docker.io, as the chart does.
 */
export function dfinitRegistry(url: string): { hostNamespace: string; serverAddr: string; capabilities: ['pull', 'resolve'] } {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new Error(`registry "${url}" is not a URL; write it with its scheme, e.g. "https://ghcr.io"`);
  }
  if ((parsed.protocol !== 'https:' && parsed.protocol !== 'http:') || (parsed.pathname !== '/' && parsed.pathname !== '') || parsed.search) {
    throw new Error(`registry "${url}" must be a plain http(s) origin such as "https://ghcr.io" (no path or query)`);
  }
  const host = parsed.host;
  if (host === 'docker.io' || host === 'index.docker.io' || host === 'registry-1.docker.io') {
    return { hostNamespace: 'docker.io', serverAddr: 'https://index.docker.io', capabilities: ['pull', 'resolve'] };
  }
  return { hostNamespace: host, serverAddr: `${parsed.protocol}//${host}`, capabilities: ['pull', 'resolve'] };
}

/**
 * The proxy denies by default: every registry containerd is pointed at must be on the
 * dfdaemon's `proxy.whiteList` (host and port), or its pulls are refused. The user's own
 * entries come first.
 */
export function withRegistryWhiteList(config: DfdaemonConfigInput | undefined, registries: readonly string[]): DfdaemonConfigInput {
  const base: DfdaemonConfigInput = config ? structuredClone(config) : {};
  const own = base.proxy?.whiteList ?? [];
  const entries = [...own];
  for (const url of registries) {
    const server = new URL(dfinitRegistry(url).serverAddr);
    const port = server.port !== '' ? server.port : server.protocol === 'https:' ? '443' : '80';
    const entry = { host: server.hostname, ports: [port] };
    if (!entries.some((e) => e.host === entry.host && JSON.stringify(e.ports ?? []) === JSON.stringify(entry.ports))) entries.push(entry);
  }
  if (entries.length > 0) base.proxy = { ...base.proxy, whiteList: entries };
  return base;
}

export class Dfdaemon extends Construct {
  public readonly config: Readonly<Record<string, unknown>>;
  /** dfinit.yaml as rendered, or undefined when dfinit is off. */
  public readonly dfinitConfig?: Readonly<Record<string, unknown>>;
  public readonly ports: Required<DfdaemonPorts>;
  /** The DaemonSet; add volumes, env or pod metadata through it. */
  public readonly workload: Workload;

  constructor(scope: Construct, id: string, props: DfdaemonProps) {
    super(scope, id);
    const ports: Required<DfdaemonPorts> = {
      grpc: props.ports?.grpc ?? DFDAEMON_GRPC_PORT,
      proxy: props.ports?.proxy ?? DFDAEMON_PROXY_PORT,
      upload: props.ports?.upload ?? DFDAEMON_UPLOAD_PORT,
      metrics: props.ports?.metrics ?? METRICS_PORT,
    };
    this.ports = ports;
    const named: [string, number][] = Object.entries(ports);
    const pprof = props.config?.pprofPort;
    if (typeof pprof === 'number' && pprof > 0) named.push(['pprofPort (config)', pprof]);
    for (const [what, port] of named) assertPort(port, `dfdaemon ports.${what}`);
    for (let i = 0; i < named.length; i++) {
      for (let j = i + 1; j < named.length; j++) {
        if (named[i][1] === named[j][1]) {
          throw new Error(
            `dfdaemon ports clash on the host network: ${named[i][0]} and ${named[j][0]} both use ${named[i][1]}; ` +
              'give each a different port (the DaemonSet uses hostNetwork, so every port is a node port)',
          );
        }
      }
    }

    const name = `${props.release}-dfdaemon`;
    const labels = componentLabels(props.release, 'dfdaemon');
    const tls = componentTls(this, { release: props.release, component: 'dfdaemon', serviceName: name });
    const rendered = renderConfig('dfdaemon', 'dfdaemon', withRegistryWhiteList(props.config, props.registries), [...dfdaemonWiring({ ...props, ports }), tls.wired]);
    this.config = rendered.input;

    const dfinitEnabled = props.dfinit?.enable ?? true;
    const containerdDir = props.dfinit?.containerdConfigDir ?? '/etc/containerd';
    if (!containerdDir.startsWith('/')) {
      throw new Error(`dfinit.containerdConfigDir "${containerdDir}" must be an absolute path on the node, e.g. "/etc/containerd"`);
    }
    const data: Record<string, string> = { 'dfdaemon.yaml': rendered.yaml };
    if (dfinitEnabled) {
      const registries = props.registries.map(dfinitRegistry);
      const seen = new Set<string>();
      for (const r of registries) {
        if (seen.has(r.hostNamespace)) {
          throw new Error(`registries lists ${r.hostNamespace} twice; keep one entry per registry`);
        }
        seen.add(r.hostNamespace);
      }
      const dfinit = renderConfig('dfinit', 'dfinit', props.dfinit?.config, [
        { prop: 'the dfdaemon proxy port', value: { proxy: { addr: `http://127.0.0.1:${ports.proxy}` } } },
        {
          prop: 'the registries / dfinit props',
          value: {
            containerRuntime: {
              containerd: {
                configPath: `${containerdDir}/config.toml`,
                registries,
                restart: props.dfinit?.restartContainerd ?? false,
              },
            },
          },
        },
      ]);
      this.dfinitConfig = dfinit.input;
      data['dfinit.yaml'] = dfinit.yaml;
    }

    const configMap = new k8s.KubeConfigMap(this, 'Config', { metadata: { name, labels }, data });
    serviceAccount(this, 'ServiceAccount', name, labels);
    if (props.metricsService ?? true) service(this, 'MetricsService', `${name}-metrics`, labels, [{ name: 'http-metrics', port: ports.metrics }]);

    const image = imageOf('dfdaemon', props.image);
    const pullPolicy = pullPolicyOf(props.image);
    const restart = dfinitEnabled && (props.dfinit?.restartContainerd ?? false);
    const initContainers: k8s.Container[] = [waitFor('scheduler', props.scheduler.host, props.scheduler.port)];
    if (dfinitEnabled) {
      initContainers.push({
        name: 'dfinit',
        image,
        imagePullPolicy: pullPolicy,
        command: ['dfinit', '--config', `${CONFIG_DIR}/dfinit.yaml`],
        resources: resources(undefined, { cpu: '2', memory: '4Gi' }),
        // Writes hosts.toml into the node's containerd dir; restarting containerd needs PID 1's mount namespace.
        securityContext: restart ? { privileged: true, runAsUser: 0 } : { runAsUser: 0 },
        volumeMounts: [
          { name: 'config', mountPath: CONFIG_DIR, readOnly: true },
          { name: 'containerd-config', mountPath: containerdDir },
        ],
      });
    }
    const pprofPort = typeof pprof === 'number' && pprof > 0 ? pprof : undefined;

    this.workload = new Workload(this, 'Workload', {
      kind: 'DaemonSet',
      name,
      what: 'dfdaemon',
      labels,
      options: props,
      defaults: {
        cpu: '4',
        memory: '8Gi',
        // Root: the hostPath cache and the node's socket dir are root's; no capability is needed for either.
        securityContext: rootSecurityContext(),
        // A node agent: it must run wherever pods pull images, tainted nodes included.
        tolerations: [{ operator: 'Exists' }],
        priorityClassName: 'system-node-critical',
      },
      pod: { hostNetwork: true, dnsPolicy: 'ClusterFirstWithHostNet', ...(restart ? { hostPid: true } : {}) },
      workloadSpec: {
        updateStrategy: {
          type: 'RollingUpdate',
          rollingUpdate: { maxSurge: k8s.IntOrString.fromNumber(0), maxUnavailable: k8s.IntOrString.fromNumber(20) },
        },
      },
      initContainers,
      container: {
        name: 'dfdaemon',
        image,
        imagePullPolicy: pullPolicy,
        command: ['dfdaemon', '--config', `${CONFIG_DIR}/dfdaemon.yaml`],
        env: [envFromField('dfdaemon', ['host', 'advertiseIP'], 'status.hostIP')],
        ...dfdaemonContainerPorts(ports, pprofPort, tls.enabled),
        volumeMounts: [
          { name: 'config', mountPath: CONFIG_DIR, readOnly: true },
          { name: 'data', mountPath: DATA_DIR },
          { name: 'run', mountPath: RUN_DIR },
          ...tls.volumeMounts,
        ],
      },
      volumes: [
        { name: 'config', configMap: { name: configMap.name } },
        { name: 'data', hostPath: { path: DATA_DIR, type: 'DirectoryOrCreate' } },
        { name: 'run', hostPath: { path: RUN_DIR, type: 'DirectoryOrCreate' } },
        ...(dfinitEnabled ? [{ name: 'containerd-config', hostPath: { path: containerdDir, type: 'Directory' } }] : []),
        ...tls.volumes,
      ],
    });
  }
}
