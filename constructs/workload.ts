/**
 * The one pod builder behind every Dragonfly workload (manager Deployment, scheduler and seed
 * peer StatefulSets, dfdaemon DaemonSet): placement (nodeSelector, tolerations, affinity,
 * topology spread, priority class), protection (resources, probes, securityContext,
 * PodDisruptionBudget) and the main container.
 *
 * Extension points (for code that adds to a component without rewriting its pod spec):
 * each component construct exposes its `workload: Workload`; call, from your own file,
 *   workload.addVolume(volume, { mountPath, readOnly })   a volume, mounted in the main container
 *   workload.addEnv(...env)                               env of the main container
 *   workload.addArgs(...args)                             arguments after the command
 *   workload.addContainerPort(port)                       a named container port
 *   workload.addPodLabels(labels) / addPodAnnotations(a)  pod template metadata (not the selector)
 *   workload.addInitContainer(container)                  runs after the built-in wait-for containers
 * These may be called after construction: the pod template is read at synth time.
 * A one-line hook in a component file looks like `mountTls(this.workload, props.tls)`.
 */
import { Lazy } from 'cdk8s';
import { k8s } from 'cdk8s-plus-28';
import { Construct } from 'constructs';
import { deepMerge, type PlainObject } from './_util';

/** Timings of one probe. */
export interface ProbeTimings {
  /**
   * Seconds before the first probe.
   * @default 10 for readiness, 15 for liveness
   */
  readonly initialDelaySeconds?: number;
  /**
   * Seconds between probes.
   * @default 10
   */
  readonly periodSeconds?: number;
  /**
   * Seconds a probe may take.
   * @default 3
   */
  readonly timeoutSeconds?: number;
  /**
   * Failed probes in a row before the pod is unready (readiness) or restarted (liveness).
   * @default 2
   */
  readonly failureThreshold?: number;
}

/** Readiness (gRPC health service) and liveness (GET /healthy on the metrics port) probes. */
export interface ProbeOptions {
  /**
   * Readiness probe timings, or false for no readiness probe.
   * @default - initial delay 10 s, period 10 s, timeout 3 s, 2 failures (the chart's)
   */
  readonly readiness?: ProbeTimings | false;
  /**
   * Liveness probe timings, or false for no liveness probe.
   * @default - initial delay 15 s, period 10 s, timeout 3 s, 2 failures (the chart's)
   */
  readonly liveness?: ProbeTimings | false;
}

/** CPU/memory for a container. */
export interface ResourceSettings {
  /**
   * CPU request, e.g. "100m".
   * @default "0" (like the Helm chart)
   */
  readonly cpuRequest?: string;
  /**
   * Memory request, e.g. "256Mi".
   * @default "0" (like the Helm chart)
   */
  readonly memoryRequest?: string;
  /**
   * CPU limit.
   * @default - the component's chart limit (8 for manager, scheduler and seed peer; 4 for dfdaemon)
   */
  readonly cpuLimit?: string;
  /**
   * Memory limit.
   * @default - the component's chart limit (16Gi for manager, scheduler and seed peer; 8Gi for dfdaemon)
   */
  readonly memoryLimit?: string;
}

/**
 * A PodDisruptionBudget: give exactly one of minAvailable or maxUnavailable (a count or a
 * percentage such as "50%").
 */
export interface DisruptionBudget {
  /**
   * Pods that must stay up during voluntary disruptions (node drains).
   * @default - not set (maxUnavailable is used)
   */
  readonly minAvailable?: number | string;
  /**
   * Pods that may be down at once during voluntary disruptions.
   * @default 1
   */
  readonly maxUnavailable?: number | string;
}

/** Placement and protection of a workload's pods; every Dragonfly workload takes these. */
export interface WorkloadOptions {
  /**
   * Node labels the pods must run on.
   * @default - the cluster's nodeSelector (any node when that is unset)
   */
  readonly nodeSelector?: Readonly<Record<string, string>>;
  /**
   * Taints the pods tolerate.
   * @default - none; the dfdaemon DaemonSet tolerates every taint (`operator: Exists`), like other node agents
   */
  readonly tolerations?: readonly k8s.Toleration[];
  /**
   * Node and pod affinity.
   * @default - none
   */
  readonly affinity?: k8s.Affinity;
  /**
   * How the pods spread over zones or nodes. A constraint without `labelSelector` gets the
   * workload's own pod labels.
   * @default - none
   */
  readonly topologySpreadConstraints?: readonly k8s.TopologySpreadConstraint[];
  /**
   * PriorityClass of the pods.
   * @default - none; "system-node-critical" for the dfdaemon DaemonSet
   */
  readonly priorityClassName?: string;
  /**
   * CPU and memory of the main container.
   * @default - requests 0, the chart's limits (8 CPU / 16Gi; dfdaemon 4 CPU / 8Gi)
   */
  readonly resources?: ResourceSettings;
  /**
   * Probe timings.
   * @default - the chart's timings
   */
  readonly probes?: ProbeOptions;
  /**
   * Container securityContext, merged key by key over the component's default.
   * @default - manager, scheduler, seed peer: uid/gid 10001, runAsNonRoot, read-only root
   * filesystem, no privilege escalation, all capabilities dropped; dfdaemon DaemonSet: the
   * same but uid 0 (it serves hostPath caches and the node's dfget socket)
   */
  readonly securityContext?: k8s.SecurityContext;
  /**
   * Extra labels on the pods (not part of the selector).
   * @default - none
   */
  readonly podLabels?: Readonly<Record<string, string>>;
  /**
   * Annotations on the pods.
   * @default - none
   */
  readonly podAnnotations?: Readonly<Record<string, string>>;
}

/** Placement of a third-party pod (MySQL, Redis): the scheduling subset of WorkloadOptions. */
export type PlacementOptions = Pick<WorkloadOptions, 'tolerations' | 'affinity' | 'priorityClassName'>;

/** Pod-spec fields for placement props, leaving out what is unset. */
export function placementOf(o: PlacementOptions): Pick<k8s.PodSpec, 'tolerations' | 'affinity' | 'priorityClassName'> {
  return {
    ...(o.tolerations && o.tolerations.length > 0 ? { tolerations: [...o.tolerations] } : {}),
    ...(o.affinity ? { affinity: o.affinity } : {}),
    ...(o.priorityClassName ? { priorityClassName: o.priorityClassName } : {}),
  };
}

/** uid/gid of the `dragonfly` user in the images (Dockerfile). */
export const IMAGE_UID = 10001;

/** Non-root, read-only root filesystem: what manager, scheduler and seed peer run with. */
export function nonRootSecurityContext(): k8s.SecurityContext {
  return {
    runAsNonRoot: true,
    runAsUser: IMAGE_UID,
    runAsGroup: IMAGE_UID,
    readOnlyRootFilesystem: true,
    allowPrivilegeEscalation: false,
    capabilities: { drop: ['ALL'] },
  };
}

/** Root with no capabilities and a read-only root filesystem (node agents on hostPath). */
export function rootSecurityContext(): k8s.SecurityContext {
  return { runAsUser: 0, readOnlyRootFilesystem: true, allowPrivilegeEscalation: false, capabilities: { drop: ['ALL'] } };
}

export function resources(settings: ResourceSettings | undefined, defaults: { cpu: string; memory: string }): k8s.ResourceRequirements {
  return {
    requests: {
      cpu: k8s.Quantity.fromString(settings?.cpuRequest ?? '0'),
      memory: k8s.Quantity.fromString(settings?.memoryRequest ?? '0'),
    },
    limits: {
      cpu: k8s.Quantity.fromString(settings?.cpuLimit ?? defaults.cpu),
      memory: k8s.Quantity.fromString(settings?.memoryLimit ?? defaults.memory),
    },
  };
}

const QUANTITY = /^\d+(\.\d+)?(m|Ki|Mi|Gi|Ti|Pi|k|M|G|T|P)?$/;

function assertResources(settings: ResourceSettings | undefined, what: string): void {
  for (const [key, value] of Object.entries(settings ?? {})) {
    if (value !== undefined && (typeof value !== 'string' || !QUANTITY.test(value))) {
      throw new Error(`${what}.resources.${key} "${String(value)}" is not a Kubernetes quantity; write it like "500m" (CPU) or "2Gi" (memory)`);
    }
  }
}

function probe(kind: 'readiness' | 'liveness', timings: ProbeTimings | false | undefined, handler: Pick<k8s.Probe, 'grpc' | 'httpGet'>, what: string): k8s.Probe | undefined {
  if (timings === false) return undefined;
  const t = timings ?? {};
  for (const [key, value] of Object.entries(t)) {
    if (!Number.isInteger(value) || (value as number) < (key === 'initialDelaySeconds' ? 0 : 1)) {
      throw new Error(`${what}.probes.${kind}.${key} must be a whole number of ${key === 'failureThreshold' ? 'failures' : 'seconds'} (got ${String(value)})`);
    }
  }
  return {
    ...handler,
    initialDelaySeconds: t.initialDelaySeconds ?? (kind === 'readiness' ? 10 : 15),
    periodSeconds: t.periodSeconds ?? 10,
    timeoutSeconds: t.timeoutSeconds ?? 3,
    failureThreshold: t.failureThreshold ?? 2,
  };
}

function assertBudget(budget: DisruptionBudget, what: string): void {
  const given = [budget.minAvailable, budget.maxUnavailable].filter((v) => v !== undefined);
  if (given.length !== 1) {
    throw new Error(`${what}.disruptionBudget needs exactly one of minAvailable or maxUnavailable (e.g. { maxUnavailable: 1 }); or set it to false for no PodDisruptionBudget`);
  }
  const v = given[0];
  if (typeof v === 'number' ? !Number.isInteger(v) || v < 0 : !/^\d{1,3}%$/.test(v)) {
    throw new Error(`${what}.disruptionBudget value ${JSON.stringify(v)} must be a pod count (0 or more) or a percentage such as "50%"`);
  }
}

/** The list or map as it is at synth time, left out of the manifest while empty. */
function whenAny<T extends object>(value: T): T | undefined {
  // A Lazy stands in for the value it produces at synth time.
  return Lazy.any({ produce: () => (Object.keys(value).length > 0 ? value : undefined) }) as T | undefined;
}

function intOrString(v: number | string): k8s.IntOrString {
  return typeof v === 'number' ? k8s.IntOrString.fromNumber(v) : k8s.IntOrString.fromString(v);
}

/** The main container as its component describes it. */
export interface MainContainer {
  readonly name: string;
  readonly image: string;
  readonly imagePullPolicy: string;
  readonly command: readonly string[];
  readonly env?: readonly k8s.EnvVar[];
  /** Container ports; on hostNetwork each is also a hostPort. */
  readonly ports: readonly { readonly name: string; readonly port: number }[];
  readonly volumeMounts?: readonly k8s.VolumeMount[];
  /**
   * Ports the readiness (gRPC health) and liveness (GET /healthy) probes use. Without a gRPC
   * port readiness is GET /healthy too: under mTLS the kubelet's gRPC probe has no certificate.
   */
  readonly probePorts: { readonly grpc?: number; readonly http: number };
}

/** What a component passes to the builder; `options` is what its users set. */
export interface WorkloadSpec {
  readonly kind: 'Deployment' | 'StatefulSet' | 'DaemonSet';
  /** Object name, also used in error messages. */
  readonly name: string;
  /** Human name of the component for error messages, e.g. "scheduler" or "dfdaemon". */
  readonly what: string;
  /** Selector labels (also on the pods). */
  readonly labels: Readonly<Record<string, string>>;
  readonly replicas?: number;
  readonly options: WorkloadOptions;
  readonly container: MainContainer;
  readonly initContainers?: readonly k8s.Container[];
  readonly volumes?: readonly k8s.Volume[];
  readonly defaults: {
    readonly cpu: string;
    readonly memory: string;
    readonly securityContext: k8s.SecurityContext;
    readonly tolerations?: readonly k8s.Toleration[];
    readonly priorityClassName?: string;
  };
  /** Pod-level fields the component needs (hostNetwork, dnsPolicy, hostPid, securityContext.fsGroup). */
  readonly pod?: Pick<k8s.PodSpec, 'hostNetwork' | 'dnsPolicy' | 'hostPid' | 'securityContext'>;
  /** Workload-spec fields of the kind (serviceName, updateStrategy, volumeClaimTemplates). */
  readonly workloadSpec?: Readonly<Record<string, unknown>>;
  /**
   * Create a PodDisruptionBudget (Deployment and StatefulSet only), or false for none.
   * @default - none
   */
  readonly disruptionBudget?: DisruptionBudget | false;
}

/** A Dragonfly workload: its Kubernetes object, the pod template it renders and the PDB. */
export class Workload extends Construct {
  /** The Deployment, StatefulSet or DaemonSet. */
  public readonly apiObject: k8s.KubeDeployment | k8s.KubeStatefulSet | k8s.KubeDaemonSet;
  public readonly disruptionBudget?: k8s.KubePodDisruptionBudget;
  private readonly env: k8s.EnvVar[];
  private readonly args: string[] = [];
  private readonly ports: k8s.ContainerPort[];
  private readonly mounts: k8s.VolumeMount[];
  private readonly volumes: k8s.Volume[];
  private readonly initContainers: k8s.Container[];
  private readonly podLabels: Record<string, string>;
  private readonly podAnnotations: Record<string, string>;
  private readonly hostNetwork: boolean;

  constructor(scope: Construct, id: string, spec: WorkloadSpec) {
    super(scope, id);
    const o = spec.options;
    const what = spec.what;
    assertResources(o.resources, what);
    if (o.priorityClassName !== undefined && !/^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$/.test(o.priorityClassName)) {
      throw new Error(`${what}.priorityClassName "${o.priorityClassName}" is not a valid PriorityClass name; use a lowercase DNS name such as "system-node-critical"`);
    }
    for (const [i, t] of (o.tolerations ?? []).entries()) {
      if (t.operator === 'Exists' && t.value !== undefined) throw new Error(`${what}.tolerations[${i}] has operator Exists and a value; drop the value or use operator Equal`);
      if (t.key === undefined && t.operator !== 'Exists') throw new Error(`${what}.tolerations[${i}] has no key; a toleration without key must use operator: "Exists" (tolerates every taint)`);
    }
    for (const [key, value] of Object.entries(o.podLabels ?? {})) {
      if (spec.labels[key] !== undefined && spec.labels[key] !== value) {
        throw new Error(`${what}.podLabels sets "${key}" to "${value}" but the workload selects its pods with ${key}=${spec.labels[key]}; choose another label key`);
      }
    }
    this.hostNetwork = spec.pod?.hostNetwork === true;
    this.env = [...(spec.container.env ?? [])];
    this.ports = [];
    for (const p of spec.container.ports) this.addContainerPort(p);
    this.mounts = [...(spec.container.volumeMounts ?? [])];
    this.volumes = [...(spec.volumes ?? [])];
    this.initContainers = [...(spec.initContainers ?? [])];
    this.podLabels = { ...(o.podLabels ?? {}), ...spec.labels };
    this.podAnnotations = { ...(o.podAnnotations ?? {}) };

    const healthy = { httpGet: { path: '/healthy', port: k8s.IntOrString.fromNumber(spec.container.probePorts.http) } };
    const grpcPort = spec.container.probePorts.grpc;
    const readiness = probe('readiness', o.probes?.readiness, grpcPort === undefined ? healthy : { grpc: { port: grpcPort } }, what);
    const liveness = probe('liveness', o.probes?.liveness, healthy, what);
    const securityContext = deepMerge(spec.defaults.securityContext as PlainObject, (o.securityContext ?? {}) as PlainObject) as k8s.SecurityContext;
    const tolerations = o.tolerations ?? spec.defaults.tolerations;
    const priorityClassName = o.priorityClassName ?? spec.defaults.priorityClassName;
    const spread = o.topologySpreadConstraints?.map((c) => ({ ...c, labelSelector: c.labelSelector ?? { matchLabels: { ...spec.labels } } }));

    const container: k8s.Container = {
      name: spec.container.name,
      image: spec.container.image,
      imagePullPolicy: spec.container.imagePullPolicy,
      command: [...spec.container.command],
      args: whenAny(this.args),
      env: whenAny(this.env),
      ports: this.ports,
      ...(readiness ? { readinessProbe: readiness } : {}),
      ...(liveness ? { livenessProbe: liveness } : {}),
      resources: resources(o.resources, spec.defaults),
      securityContext,
      volumeMounts: whenAny(this.mounts),
    };
    const podSpec: k8s.PodSpec = {
      serviceAccountName: spec.name,
      automountServiceAccountToken: false,
      ...spec.pod,
      ...(o.nodeSelector && Object.keys(o.nodeSelector).length > 0 ? { nodeSelector: { ...o.nodeSelector } } : {}),
      ...(tolerations && tolerations.length > 0 ? { tolerations: [...tolerations] } : {}),
      ...(o.affinity ? { affinity: o.affinity } : {}),
      ...(spread && spread.length > 0 ? { topologySpreadConstraints: spread } : {}),
      ...(priorityClassName ? { priorityClassName } : {}),
      initContainers: whenAny(this.initContainers),
      containers: [container],
      volumes: whenAny(this.volumes),
    };
    // Arrays and maps above stay shared with this object, so add*() after construction still
    // lands in the manifest (cdk8s reads the props when it synthesizes).
    const template: k8s.PodTemplateSpec = { metadata: { labels: this.podLabels, annotations: whenAny(this.podAnnotations) }, spec: podSpec };
    const metadata = { name: spec.name, labels: { ...spec.labels } };
    const selector = { matchLabels: { ...spec.labels } };
    const extra = spec.workloadSpec ?? {};
    switch (spec.kind) {
      case 'Deployment':
        this.apiObject = new k8s.KubeDeployment(this, 'Resource', { metadata, spec: { replicas: spec.replicas, selector, template, ...extra } });
        break;
      case 'StatefulSet':
        this.apiObject = new k8s.KubeStatefulSet(this, 'Resource', {
          metadata,
          spec: { replicas: spec.replicas, serviceName: spec.name, selector, template, ...extra },
        });
        break;
      case 'DaemonSet':
        this.apiObject = new k8s.KubeDaemonSet(this, 'Resource', { metadata, spec: { selector, template, ...extra } });
        break;
    }

    if (spec.disruptionBudget) {
      if (spec.kind === 'DaemonSet') throw new Error(`${what}: a PodDisruptionBudget is not made for a DaemonSet`);
      assertBudget(spec.disruptionBudget, what);
      const b = spec.disruptionBudget;
      this.disruptionBudget = new k8s.KubePodDisruptionBudget(this, 'DisruptionBudget', {
        metadata,
        spec: {
          selector,
          ...(b.minAvailable !== undefined ? { minAvailable: intOrString(b.minAvailable) } : {}),
          ...(b.maxUnavailable !== undefined ? { maxUnavailable: intOrString(b.maxUnavailable) } : {}),
        },
      });
    }
  }

  /** Adds a volume to the pod and, when `mount` is given, mounts it in the main container. */
  public addVolume(volume: k8s.Volume, mount?: Omit<k8s.VolumeMount, 'name'>): void {
    if (this.volumes.some((v) => v.name === volume.name)) throw new Error(`${this.node.path}: volume "${volume.name}" is already defined; pick another name`);
    this.volumes.push(volume);
    if (mount) this.addVolumeMount({ ...mount, name: volume.name });
  }

  /** Mounts an existing volume in the main container. */
  public addVolumeMount(mount: k8s.VolumeMount): void {
    if (this.mounts.some((m) => m.mountPath === mount.mountPath)) throw new Error(`${this.node.path}: ${mount.mountPath} is already mounted; mount at another path`);
    this.mounts.push(mount);
  }

  /** Adds env to the main container; a name already set is an error, so nothing is overridden silently. */
  public addEnv(...env: k8s.EnvVar[]): void {
    for (const e of env) {
      if (this.env.some((x) => x.name === e.name)) throw new Error(`${this.node.path}: env ${e.name} is already set; it would be overridden`);
      this.env.push(e);
    }
  }

  /** Appends arguments after the main container's command. */
  public addArgs(...args: string[]): void {
    this.args.push(...args);
  }

  /** Adds a named port to the main container (a hostPort too on hostNetwork). */
  public addContainerPort(port: { readonly name: string; readonly port: number }): void {
    if (this.ports.some((p) => p.name === port.name || p.containerPort === port.port)) {
      throw new Error(`${this.node.path}: container port ${port.name}/${port.port} clashes with one already declared`);
    }
    this.ports.push({ name: port.name, containerPort: port.port, ...(this.hostNetwork ? { hostPort: port.port } : {}), protocol: 'TCP' });
  }

  /** Adds labels to the pod template (the selector is unchanged). */
  public addPodLabels(labels: Readonly<Record<string, string>>): void {
    Object.assign(this.podLabels, labels);
  }

  /** Adds annotations to the pod template. */
  public addPodAnnotations(annotations: Readonly<Record<string, string>>): void {
    Object.assign(this.podAnnotations, annotations);
  }

  /** Adds an init container after the component's own. */
  public addInitContainer(container: k8s.Container): void {
    this.initContainers.push(container);
  }
}
