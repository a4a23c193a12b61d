/**
 * Import of Dragonfly Helm chart values into the constructs. Two formats are read: the Go-era
 * chart of the seed documents (`dfdaemon`, `seedPeer`, `containerRuntime`, ...) and the current
 * chart (`client`, `seedClient` with the Rust client's config keys, `image` as an object).
 * Every key is either mapped to a prop or reported back as `{ key, reason }` (and as `warning`
 * metadata on the scope's construct node); with `strict`, a key that has no equivalent is an
 * error naming its path. Nothing is dropped silently.
 */
import type { k8s } from 'cdk8s-plus-28';
import type { Construct } from 'constructs';
import { namespaceOf, type PlainObject, type SecretKeyRef } from './_util';
import { CentralManager, type CentralManagerProps } from './central-manager';
import { dfinitRegistry, type DfdaemonOptions } from './dfdaemon';
import { DragonflyCluster, type DragonflyClusterProps } from './dragonfly-cluster';
import { MANAGER_GRPC_PORT, MANAGER_REST_PORT, DFDAEMON_PROXY_PORT, type ManagerEndpoint } from './endpoints';
import { DEFAULT_IMAGE_REGISTRY, DEFAULT_IMAGE_TAG, type DragonflyComponentImage, type ImageRef } from './images';
import { jaegerCollectorUrl } from './jaeger';
import { RemoteCluster, type RemoteClusterProps, type RemoteRedis } from './remote-cluster';
import type { ResourceSettings, WorkloadOptions } from './workload';

/** A values key the importer could not express with the constructs, and why. */
export interface UnmappedValue {
  /** Dotted key path in the values, e.g. "externalRedis.addrs". */
  readonly key: string;
  /** Why it has no equivalent, or how it was mapped instead. */
  readonly reason: string;
}

export interface HelmImportOptions {
  /**
   * Helm release name (`helm install <release>`); objects are named `<release>-manager`...
   * @default "dragonfly"
   */
  readonly release?: string;
  /**
   * Secret key with root's password for the imported manager (see CentralManager's rootPasswordSecret).
   * @default - demo credentials: root / "dragonfly", as the chart's manager has (a warning is printed)
   */
  readonly rootPasswordSecret?: SecretKeyRef;
  /**
   * Refuse values keys that have no equivalent (an error naming every such key path) instead
   * of reporting them in `unmapped`.
   * @default false
   */
  readonly strict?: boolean;
}

/** The props the values describe, before any construct is made (what `dragonfly-ts import` prints as code). */
export interface HelmTopology {
  /** The manager's props, when the values deploy one. */
  readonly manager?: CentralManagerProps;
  /**
   * The cluster. When `manager` is set, its `manager` and `jobRedis` props are the manager's
   * `endpoint` and `jobRedis`.
   */
  readonly cluster:
    | { readonly kind: 'DragonflyCluster'; readonly props: DragonflyClusterProps }
    | { readonly kind: 'RemoteCluster'; readonly props: RemoteClusterProps };
  /** Keys that have no equivalent, each with the reason. */
  readonly unmapped: readonly UnmappedValue[];
}

export interface HelmImportResult {
  /**
   * The manager, when the values deploy one.
   * @default - undefined when `manager.enable` is false
   */
  readonly manager?: CentralManager;
  /** The Dragonfly cluster: a RemoteCluster when the values point at an external manager with a cluster id of 2 or more and an IDC/location. */
  readonly cluster: DragonflyCluster;
  /** Keys that have no equivalent, each with the reason. */
  readonly unmapped: readonly UnmappedValue[];
}

function isObject(v: unknown): v is PlainObject {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Reads values and remembers which keys were used or explicitly reported. */
class ValuesReader {
  private readonly handled = new Set<string>();
  readonly unmapped: UnmappedValue[] = [];

  constructor(private readonly root: PlainObject) {}

  get(path: string): unknown {
    this.handled.add(path);
    let cur: unknown = this.root;
    for (const key of path.split('.')) {
      if (!isObject(cur)) return undefined;
      cur = cur[key];
    }
    return cur;
  }

  peek(path: string): unknown {
    let cur: unknown = this.root;
    for (const key of path.split('.')) {
      if (!isObject(cur)) return undefined;
      cur = cur[key];
    }
    return cur;
  }

  has(path: string): boolean {
    return this.peek(path) !== undefined;
  }

  string(path: string): string | undefined {
    const v = this.get(path);
    if (v === undefined || v === null) return undefined;
    if (typeof v !== 'string') throw new Error(`helm values key "${path}" must be a string (got ${JSON.stringify(v)})`);
    return v;
  }

  number(path: string): number | undefined {
    const v = this.get(path);
    if (v === undefined || v === null) return undefined;
    if (typeof v !== 'number') throw new Error(`helm values key "${path}" must be a number (got ${JSON.stringify(v)})`);
    return v;
  }

  bool(path: string): boolean | undefined {
    const v = this.get(path);
    if (v === undefined || v === null) return undefined;
    if (typeof v !== 'boolean') throw new Error(`helm values key "${path}" must be true or false (got ${JSON.stringify(v)})`);
    return v;
  }

  labels(path: string): Record<string, string> | undefined {
    const v = this.get(path);
    if (v === undefined || v === null) return undefined;
    if (!isObject(v) || Object.values(v).some((x) => typeof x !== 'string')) {
      throw new Error(`helm values key "${path}" must be a map of label names to string values`);
    }
    return v as Record<string, string>;
  }

  report(path: string, reason: string): void {
    if (!this.has(path)) return;
    this.handled.add(path);
    this.unmapped.push({ key: path, reason });
  }

  /** Every leaf key that was neither read nor reported. */
  leftovers(): UnmappedValue[] {
    const out: UnmappedValue[] = [];
    const walk = (node: unknown, prefix: string): void => {
      if (prefix !== '' && this.isHandled(prefix)) return;
      if (isObject(node) && Object.keys(node).length > 0) {
        for (const [k, v] of Object.entries(node)) walk(v, prefix === '' ? k : `${prefix}.${k}`);
        return;
      }
      // A key left at an empty value sets nothing (a chart default copied into the file).
      if (isUnset(node)) return;
      out.push({ key: prefix, reason: 'no equivalent in the constructs (not a key this importer maps)' });
    };
    walk(this.root, '');
    return out;
  }

  private isHandled(path: string): boolean {
    const parts = path.split('.');
    for (let i = parts.length; i > 0; i--) if (this.handled.has(parts.slice(0, i).join('.'))) return true;
    return false;
  }
}

function parseHostPort(addr: string, key: string): { host: string; port: number } {
  const m = /^(?:[a-z]+:\/\/)?([^\s:/]+):(\d{1,5})$/.exec(addr);
  if (!m) throw new Error(`helm values key "${key}" must be "host:port" (got "${addr}")`);
  return { host: m[1], port: Number(m[2]) };
}

/** Removes `path` from a copied config object, pruning emptied parents. */
function without(config: PlainObject, path: readonly string[]): PlainObject {
  const copy = structuredClone(config);
  const stack: PlainObject[] = [copy];
  let cur: PlainObject = copy;
  for (const key of path.slice(0, -1)) {
    const next = cur[key];
    if (!isObject(next)) return copy;
    cur = next;
    stack.push(cur);
  }
  delete cur[path[path.length - 1]];
  for (let i = path.length - 2; i >= 0; i--) {
    if (Object.keys(stack[i + 1]).length === 0) delete stack[i][path[i]];
  }
  return copy;
}


/** Values that set nothing: chart defaults copied into a values file (`''`, `[]`, `{}`, null). */
function isUnset(v: unknown): boolean {
  return v === undefined || v === null || v === '' || (Array.isArray(v) && v.length === 0) || (isObject(v) && Object.keys(v).length === 0);
}

function upstreamImageReason(repository: string, image: DragonflyComponentImage): string {
  return `upstream image ${repository}; it reads a different config format, so ${DEFAULT_IMAGE_REGISTRY}/${image}:${DEFAULT_IMAGE_TAG} (built from this repo's Dockerfile) is used`;
}

/** `<section>.image` (+ `.tag`) of the Go-era chart, or the current chart's `image: { registry, repository, tag, pullPolicy }`. */
function imageFrom(r: ValuesReader, section: string, image: DragonflyComponentImage): ImageRef | undefined {
  const value = r.peek(`${section}.image`);
  if (isObject(value)) {
    const registry = r.string(`${section}.image.registry`);
    const repository = r.string(`${section}.image.repository`);
    const tag = r.string(`${section}.image.tag`);
    const pullPolicy = r.string(`${section}.image.pullPolicy`);
    if (pullPolicy !== undefined && !['Always', 'IfNotPresent', 'Never'].includes(pullPolicy)) {
      throw new Error(`helm values key "${section}.image.pullPolicy" must be Always, IfNotPresent or Never (got "${pullPolicy}")`);
    }
    if (repository?.startsWith('dragonflyoss/')) {
      for (const k of ['registry', 'repository', 'tag', 'pullPolicy']) r.report(`${section}.image.${k}`, upstreamImageReason(repository, image));
      return undefined;
    }
    if (repository === undefined && tag === undefined && pullPolicy === undefined) return undefined;
    return {
      ...(repository !== undefined ? { repository: registry ? `${registry}/${repository}` : repository } : {}),
      ...(tag !== undefined ? { tag } : {}),
      ...(pullPolicy !== undefined ? { pullPolicy: pullPolicy as ImageRef['pullPolicy'] } : {}),
    };
  }
  const repository = r.peek(`${section}.image`);
  const tag = r.peek(`${section}.tag`);
  if (repository === undefined && tag === undefined) return undefined;
  if (typeof repository === 'string' && repository.startsWith('dragonflyoss/')) {
    r.report(`${section}.image`, upstreamImageReason(repository, image));
    r.report(`${section}.tag`, upstreamImageReason(repository, image));
    return undefined;
  }
  return { repository: r.string(`${section}.image`), tag: r.string(`${section}.tag`) };
}

function resourcesFrom(r: ValuesReader, section: string): ResourceSettings | undefined {
  const out: Record<string, string> = {};
  const fields = [['requests', 'cpu', 'cpuRequest'], ['requests', 'memory', 'memoryRequest'], ['limits', 'cpu', 'cpuLimit'], ['limits', 'memory', 'memoryLimit']] as const;
  for (const [group, resource, prop] of fields) {
    const key = `${section}.resources.${group}.${resource}`;
    const v = r.get(key);
    if (isUnset(v)) continue;
    if (typeof v !== 'string' && typeof v !== 'number') throw new Error(`helm values key "${key}" must be a quantity such as "500m" or "2Gi"`);
    out[prop] = String(v);
  }
  return Object.keys(out).length > 0 ? out : undefined;
}

/** Placement and protection keys every chart component has. */
function placementFrom(r: ValuesReader, section: string): WorkloadOptions {
  const list = (key: string): unknown[] | undefined => {
    const v = r.get(`${section}.${key}`);
    if (isUnset(v)) return undefined;
    if (!Array.isArray(v) || v.some((x) => !isObject(x))) throw new Error(`helm values key "${section}.${key}" must be a list of objects`);
    return v as unknown[];
  };
  const tolerations = list('tolerations') as k8s.Toleration[] | undefined;
  const topologySpreadConstraints = list('topologySpreadConstraints') as k8s.TopologySpreadConstraint[] | undefined;
  const affinity = r.get(`${section}.affinity`);
  if (!isUnset(affinity) && !isObject(affinity)) throw new Error(`helm values key "${section}.affinity" must be a map (a Kubernetes Affinity)`);
  const priorityClassName = r.string(`${section}.priorityClassName`);
  const podLabels = r.labels(`${section}.podLabels`);
  const podAnnotations = r.labels(`${section}.podAnnotations`);
  const resources = resourcesFrom(r, section);
  return {
    ...(tolerations ? { tolerations } : {}),
    ...(topologySpreadConstraints ? { topologySpreadConstraints } : {}),
    ...(!isUnset(affinity) ? { affinity: affinity as k8s.Affinity } : {}),
    ...(priorityClassName ? { priorityClassName } : {}),
    ...(podLabels && Object.keys(podLabels).length > 0 ? { podLabels } : {}),
    ...(podAnnotations && Object.keys(podAnnotations).length > 0 ? { podAnnotations } : {}),
    ...(resources ? { resources } : {}),
  };
}

interface ComponentValues<C> {
  readonly replicas?: number;
  readonly nodeSelector?: Record<string, string>;
  readonly metricsService?: boolean;
  readonly image?: ImageRef;
  readonly placement: WorkloadOptions;
  /** Mutable: wired keys are taken out of it as they are mapped to props. */
  config: C;
}

/**
 * A component section. `configFormat: 'program'` reads `<section>.config` whole (this
 * project's program schema checks it when the construct is made); 'client' leaves it to
 * clientConfigFrom, key by key.
 */
function componentValues<C>(r: ValuesReader, section: string, image: DragonflyComponentImage, opts: { replicas: boolean; configFormat: 'program' | 'client' }): ComponentValues<C> {
  let config: unknown;
  if (opts.configFormat === 'program') {
    config = r.get(`${section}.config`);
    if (config !== undefined && config !== null && !isObject(config)) throw new Error(`helm values key "${section}.config" must be a map`);
  }
  const metrics = r.bool(`${section}.metrics.enable`);
  const nodeSelector = r.labels(`${section}.nodeSelector`);
  const enable = r.bool(`${section}.enable`);
  if (enable === false && section !== 'manager') {
    throw new Error(`helm values key "${section}.enable" is false, but a Dragonfly cluster always has its ${section}; remove the key (or deploy only a manager with CentralManager in code)`);
  }
  return {
    replicas: opts.replicas ? r.number(`${section}.replicas`) : undefined,
    nodeSelector: nodeSelector && Object.keys(nodeSelector).length > 0 ? nodeSelector : undefined,
    metricsService: metrics === false ? false : undefined,
    image: imageFrom(r, section, image),
    placement: placementFrom(r, section),
    config: (isObject(config) ? structuredClone(config) : {}) as C,
  };
}

/** What the current chart's Rust-client config (`client.config`, `seedClient.config`) says that maps here. */
interface ClientConfig {
  readonly verbose?: boolean;
  readonly managerAddr?: { key: string; value: string };
  readonly clusterId?: { key: string; id: number };
  readonly schedulerClusterId?: { key: string; id: number };
  readonly host: { idc?: string; location?: string };
  readonly ports: { proxy?: number; metrics?: number };
}

function clientConfigFrom(r: ValuesReader, section: 'client' | 'seedClient'): ClientConfig {
  const base = `${section}.config`;
  const cfg = r.peek(base);
  if (cfg !== undefined && cfg !== null && !isObject(cfg)) throw new Error(`helm values key "${base}" must be a map`);
  const out: { verbose?: boolean; managerAddr?: { key: string; value: string }; clusterId?: { key: string; id: number }; schedulerClusterId?: { key: string; id: number }; host: { idc?: string; location?: string }; ports: { proxy?: number; metrics?: number } } = { host: {}, ports: {} };
  if (r.bool(`${base}.console`) === false) throw new Error(`helm values key "${base}.console" is false, but dragonfly-ts programs always log to stdout (collected by the container runtime); remove the key`);
  const level = r.string(`${base}.log.level`);
  if (level === 'debug' || level === 'trace') out.verbose = true;
  else if (level !== undefined && level !== 'info') throw new Error(`helm values key "${base}.log.level" is "${level}"; dragonfly-ts logs at info, or at debug with verbose: use "info" or "debug"`);
  for (const field of ['idc', 'location'] as const) {
    const v = r.string(`${base}.host.${field}`);
    if (v) out.host[field] = v;
  }
  const sid = r.number(`${base}.host.schedulerClusterID`);
  if (sid !== undefined) out.schedulerClusterId = { key: `${base}.host.schedulerClusterID`, id: sid };
  const addr = r.string(`${base}.manager.addr`);
  if (addr) out.managerAddr = { key: `${base}.manager.addr`, value: addr };
  const dir = r.string(`${base}.storage.dir`);
  if (dir !== undefined && dir.replace(/\/+$/, '') !== '/var/lib/dragonfly') {
    throw new Error(`helm values key "${base}.storage.dir" is "${dir}", but the piece store is fixed at /var/lib/dragonfly (a hostPath on the node, a volume claim on the seed peer); remove the key`);
  }
  if (section === 'seedClient') {
    if (r.bool(`${base}.seedPeer.enable`) === false) throw new Error(`helm values key "${base}.seedPeer.enable" is false, but seedClient pods are seed peers; remove the key`);
    const type = r.string(`${base}.seedPeer.type`);
    if (type !== undefined && type !== 'super') throw new Error(`helm values key "${base}.seedPeer.type" is "${type}"; dragonfly-ts has one kind of seed peer ("super"); remove the key`);
    const id = r.number(`${base}.seedPeer.clusterID`);
    if (id !== undefined) out.clusterId = { key: `${base}.seedPeer.clusterID`, id };
  } else {
    const proxy = r.number(`${base}.proxy.server.port`);
    if (proxy !== undefined) out.ports.proxy = proxy;
    const metrics = r.number(`${base}.metrics.server.port`);
    if (metrics !== undefined) out.ports.metrics = metrics;
  }
  return out;
}

/** The current chart's `client.dfinit` block. */
function clientDfinitFrom(r: ValuesReader, proxyPort: number): { dfinit: NonNullable<DfdaemonOptions['dfinit']>; registries?: string[] } {
  const base = 'client.dfinit';
  const enable = r.bool(`${base}.enable`) ?? false;
  const restart = r.bool(`${base}.restartContainerRuntime`);
  const image = r.peek(`${base}.image`);
  if (isObject(image)) for (const k of Object.keys(image)) r.report(`${base}.image.${k}`, 'dfinit runs from the dfdaemon image (it holds dfinit), set with client.image');
  const cfg = `${base}.config`;
  const proxyAddr = r.string(`${cfg}.proxy.addr`);
  if (proxyAddr !== undefined && proxyAddr.replace(/\/+$/, '') !== `http://127.0.0.1:${proxyPort}`) {
    throw new Error(`helm values key "${cfg}.proxy.addr" is "${proxyAddr}", but containerd reaches the local dfdaemon proxy at http://127.0.0.1:${proxyPort}; remove the key (set the port with client.config.proxy.server.port)`);
  }
  const configPath = r.string(`${cfg}.containerRuntime.containerd.configPath`);
  let containerdConfigDir: string | undefined;
  if (configPath !== undefined) {
    if (!configPath.startsWith('/') || !configPath.endsWith('/config.toml')) {
      throw new Error(`helm values key "${cfg}.containerRuntime.containerd.configPath" must be the absolute path of containerd's config.toml (got "${configPath}")`);
    }
    containerdConfigDir = configPath.slice(0, -'/config.toml'.length) || '/';
  }
  const list = r.get(`${cfg}.containerRuntime.containerd.registries`);
  let registries: string[] | undefined;
  if (!isUnset(list)) {
    if (!Array.isArray(list)) throw new Error(`helm values key "${cfg}.containerRuntime.containerd.registries" must be a list`);
    registries = list.map((entry: unknown, i) => {
      const key = `${cfg}.containerRuntime.containerd.registries.${i}`;
      if (!isObject(entry) || typeof entry.serverAddr !== 'string' || typeof entry.hostNamespace !== 'string') {
        throw new Error(`helm values key "${key}" must have hostNamespace and serverAddr, e.g. { hostNamespace: docker.io, serverAddr: https://index.docker.io }`);
      }
      const mapped = dfinitRegistry(entry.serverAddr);
      if (mapped.hostNamespace !== entry.hostNamespace) {
        throw new Error(`helm values key "${key}.hostNamespace" is "${entry.hostNamespace}" but serverAddr ${entry.serverAddr} is registry ${mapped.hostNamespace}; dfinit names each registry after its host`);
      }
      const caps = entry.capabilities;
      if (caps !== undefined && (!Array.isArray(caps) || [...(caps as unknown[])].map(String).sort().join(',') !== 'pull,resolve')) {
        throw new Error(`helm values key "${key}.capabilities" must be [pull, resolve] (what dfinit writes); got ${JSON.stringify(caps)}`);
      }
      if (entry.skipVerify === true) throw new Error(`helm values key "${key}.skipVerify" is true; dfinit always verifies registry TLS, remove the key`);
      for (const extra of Object.keys(entry)) {
        if (!['hostNamespace', 'serverAddr', 'capabilities', 'skipVerify'].includes(extra)) throw new Error(`helm values key "${key}.${extra}" has no equivalent in dfinit's registry entries`);
      }
      return entry.serverAddr === 'https://index.docker.io' ? 'https://docker.io' : entry.serverAddr;
    });
  }
  return {
    dfinit: {
      ...(enable ? {} : { enable: false }),
      ...(enable && restart ? { restartContainerd: true } : {}),
      ...(containerdConfigDir && containerdConfigDir !== '/etc/containerd' ? { containerdConfigDir } : {}),
    },
    ...(registries ? { registries } : {}),
  };
}

function sameLabels(a: Record<string, string> | undefined, b: Record<string, string> | undefined): boolean {
  return JSON.stringify(Object.entries(a ?? {}).sort()) === JSON.stringify(Object.entries(b ?? {}).sort());
}

function isEmpty(o: unknown): boolean {
  return !isObject(o) || Object.keys(o).length === 0;
}

/** A fixed port given in the values: fine when it is the port the constructs use, else an error. */
function fixedPort(r: ValuesReader, key: string, port: number): void {
  const v = r.number(key);
  if (v !== undefined && v !== port) throw new Error(`helm values key "${key}" is ${v}, but dragonfly-ts serves it on ${port} (fixed); remove the key`);
}

/** `{ [key]: value }`, or nothing when value has no keys. */
function nonEmpty<K extends string, V extends object>(key: K, value: V): Partial<Record<K, V>> {
  return Object.keys(value).length > 0 ? ({ [key]: value } as Record<K, V>) : {};
}

/** Component props without the keys left empty. */
function optionsOf<T extends object>(c: ComponentValues<PlainObject>, extra: T, nodeSelector: boolean): T & WorkloadOptions {
  return {
    ...(c.replicas !== undefined ? { replicas: c.replicas } : {}),
    ...(nodeSelector && c.nodeSelector ? { nodeSelector: c.nodeSelector } : {}),
    ...(c.metricsService === false ? { metricsService: false } : {}),
    ...(c.image ? { image: c.image } : {}),
    ...c.placement,
    ...extra,
    ...(!isEmpty(c.config) ? { config: c.config } : {}),
  };
}

/**
 * The props a Dragonfly Helm chart's values describe, for a release in `namespace`; no
 * construct is made. `fromHelmValues` builds them; `dragonfly-ts import` prints them as code.
 */
export function helmValuesToTopology(values: unknown, namespace: string, options: HelmImportOptions = {}): HelmTopology {
  if (!isObject(values)) throw new Error('helm values must be a YAML mapping (the parsed charts-config.yaml object)');
  const r = new ValuesReader(values);
  const release = options.release ?? 'dragonfly';

  if (r.has('client') && r.has('dfdaemon')) throw new Error('helm values set both "client" (current chart) and "dfdaemon" (Go-era chart) for the per-node peer; keep one');
  if (r.has('seedClient') && r.has('seedPeer')) throw new Error('helm values set both "seedClient" (current chart) and "seedPeer" (Go-era chart) for the seed peer; keep one');
  const nodeSection = r.has('client') ? 'client' : 'dfdaemon';
  const seedSection = r.has('seedClient') ? 'seedClient' : 'seedPeer';

  // Container runtime → dfinit (Go-era chart: top-level containerRuntime).
  const containerdEnable = r.bool('containerRuntime.containerd.enable');
  const inject = r.bool('containerRuntime.containerd.injectConfigPath');
  if (inject === false) {
    r.report('containerRuntime.containerd.injectConfigPath', 'dfinit always writes hosts.toml under config_path; the legacy mirrors-in-config.toml mode is not supported');
  }
  const registriesValue = r.get('containerRuntime.containerd.registries');
  if (registriesValue !== undefined && (!Array.isArray(registriesValue) || registriesValue.some((x) => typeof x !== 'string'))) {
    throw new Error('helm values key "containerRuntime.containerd.registries" must be a list of registry URLs');
  }
  let registries = registriesValue as string[] | undefined;

  // Components.
  const scheduler = componentValues<PlainObject>(r, 'scheduler', 'scheduler', { replicas: true, configFormat: 'program' });
  fixedPort(r, 'scheduler.containerPort', 8002);
  const seedPeer = componentValues<PlainObject>(r, seedSection, 'dfdaemon', { replicas: true, configFormat: seedSection === 'seedClient' ? 'client' : 'program' });
  const dfdaemon = componentValues<PlainObject>(r, nodeSection, 'dfdaemon', { replicas: false, configFormat: nodeSection === 'client' ? 'client' : 'program' });
  const seedClient = seedSection === 'seedClient' ? clientConfigFrom(r, 'seedClient') : undefined;
  const nodeClient = nodeSection === 'client' ? clientConfigFrom(r, 'client') : undefined;
  if (nodeClient?.verbose) dfdaemon.config.verbose = true;
  if (seedClient?.verbose) seedPeer.config.verbose = true;
  let storageSize: string | undefined;
  if (seedSection === 'seedClient') {
    if (r.bool('seedClient.persistence.enable') === false) throw new Error('helm values key "seedClient.persistence.enable" is false, but the seed peer keeps its pieces on a volume claim; remove the key');
    storageSize = r.string('seedClient.persistence.size');
    const modes = r.get('seedClient.persistence.accessModes');
    if (!isUnset(modes) && JSON.stringify(modes) !== '["ReadWriteOnce"]') throw new Error('helm values key "seedClient.persistence.accessModes" must be [ReadWriteOnce] (one claim per seed peer)');
  }
  let dfinitOptions: DfdaemonOptions['dfinit'] = containerdEnable === false ? { enable: false } : undefined;
  const ports = { ...(nodeClient?.ports.proxy !== undefined ? { proxy: nodeClient.ports.proxy } : {}), ...(nodeClient?.ports.metrics !== undefined ? { metrics: nodeClient.ports.metrics } : {}) };
  if (nodeSection === 'client') {
    if (r.bool('client.hostNetwork') === false) throw new Error('helm values key "client.hostNetwork" is false, but the dfdaemon serves containerd on the node\'s 127.0.0.1; remove the key');
    if (r.has('containerRuntime')) throw new Error('helm values set "containerRuntime" (Go-era chart) with "client" (current chart); use client.dfinit.config.containerRuntime');
    const d = clientDfinitFrom(r, ports.proxy ?? DFDAEMON_PROXY_PORT);
    dfinitOptions = isEmpty(d.dfinit) ? undefined : d.dfinit;
    registries = d.registries;
  }
  const jaeger = r.bool('jaeger.enable') ?? false;

  // Manager address and cluster id: from externalManager and the components' configs; they must agree.
  const managerEnabled = r.bool('manager.enable') ?? true;
  const addrs: { key: string; host: string; port: number }[] = [];
  const takeAddr = (key: string, value: unknown): void => {
    if (value === undefined) return;
    if (typeof value !== 'string') throw new Error(`helm values key "${key}" must be "host:port"`);
    addrs.push({ key, ...parseHostPort(value, key) });
  };
  takeAddr('scheduler.config.manager.addr', (scheduler.config.manager as PlainObject | undefined)?.addr);
  scheduler.config = without(scheduler.config, ['manager', 'addr']);
  for (const client of [seedClient, nodeClient]) if (client?.managerAddr) takeAddr(client.managerAddr.key, client.managerAddr.value);
  for (const [name, comp] of [['seedPeer', seedPeer], ['dfdaemon', dfdaemon]] as const) {
    if ((name === 'seedPeer' && seedClient) || (name === 'dfdaemon' && nodeClient)) continue;
    const mgr = ((comp.config.scheduler as PlainObject | undefined)?.manager ?? {}) as PlainObject;
    const netAddrs = mgr.netAddrs;
    if (netAddrs !== undefined) {
      if (!Array.isArray(netAddrs)) throw new Error(`helm values key "${name}.config.scheduler.manager.netAddrs" must be a list`);
      netAddrs.forEach((a: unknown, i) => takeAddr(`${name}.config.scheduler.manager.netAddrs.${i}.addr`, isObject(a) ? a.addr : a));
      if (netAddrs.length > 1) {
        r.report(`${name}.config.scheduler.manager.netAddrs`, 'only one manager address is supported; the first is used');
      }
    }
    comp.config = without(comp.config, ['scheduler', 'manager', 'netAddrs']);
    if (mgr.enable === true) comp.config = without(comp.config, ['scheduler', 'manager', 'enable']);
  }
  let externalManager: ManagerEndpoint | undefined;
  if (!managerEnabled) {
    const host = r.string('externalManager.host');
    r.get('externalManager.enable');
    if (host) {
      externalManager = {
        host,
        grpcPort: r.number('externalManager.grpcPort') ?? MANAGER_GRPC_PORT,
        restPort: r.number('externalManager.restPort') ?? MANAGER_REST_PORT,
      };
      addrs.unshift({ key: 'externalManager.host', host, port: externalManager.grpcPort ?? MANAGER_GRPC_PORT });
    } else if (addrs.length > 0) {
      externalManager = { host: addrs[0].host, grpcPort: addrs[0].port, restPort: MANAGER_REST_PORT };
    } else {
      throw new Error('helm values set manager.enable: false but give no manager address; set externalManager.host (and grpcPort/restPort)');
    }
  } else {
    r.report('externalManager', 'manager.enable is true, so the in-chart manager is used and externalManager is ignored (as the chart does)');
    fixedPort(r, 'manager.restPort', MANAGER_REST_PORT);
    fixedPort(r, 'manager.grpcPort', MANAGER_GRPC_PORT);
  }
  const wanted = externalManager;
  for (const a of addrs) {
    if (wanted && (a.host !== wanted.host || a.port !== (wanted.grpcPort ?? MANAGER_GRPC_PORT))) {
      throw new Error(
        `helm values disagree on the manager address: ${a.key} is ${a.host}:${a.port} but ${addrs[0].key} is ${wanted.host}:${wanted.grpcPort}; make them equal`,
      );
    }
  }
  if (managerEnabled && addrs.length > 0) {
    for (const a of addrs) r.report(a.key, 'the in-chart manager is deployed (manager.enable is true); its address is wired by the constructs');
  }

  const ids: { key: string; id: number }[] = [];
  const schedMgr = scheduler.config.manager as PlainObject | undefined;
  if (schedMgr?.schedulerClusterID !== undefined) ids.push({ key: 'scheduler.config.manager.schedulerClusterID', id: Number(schedMgr.schedulerClusterID) });
  scheduler.config = without(scheduler.config, ['manager', 'schedulerClusterID']);
  if (seedClient) {
    if (seedClient.clusterId) ids.push(seedClient.clusterId);
  } else {
    const seedCfg = (((seedPeer.config.scheduler as PlainObject | undefined)?.manager as PlainObject | undefined)?.seedPeer ?? {}) as PlainObject;
    if (seedCfg.clusterID !== undefined) ids.push({ key: 'seedPeer.config.scheduler.manager.seedPeer.clusterID', id: Number(seedCfg.clusterID) });
    seedPeer.config = without(seedPeer.config, ['scheduler', 'manager', 'seedPeer', 'clusterID']);
    if (seedCfg.enable === true) seedPeer.config = without(seedPeer.config, ['scheduler', 'manager', 'seedPeer', 'enable']);
  }
  const clusterId = ids[0]?.id ?? 1;
  for (const i of [...ids, ...[seedClient?.schedulerClusterId, nodeClient?.schedulerClusterId].filter((x) => x !== undefined)]) {
    if (i.id !== clusterId) {
      throw new Error(`helm values disagree on the cluster id: ${i.key} is ${i.id} but ${ids[0]?.key ?? 'the default'} is ${clusterId}; the scheduler, seed peers and peers of one cluster share one id`);
    }
  }

  // host.idc / host.location: the peers' scope; must agree where given.
  const hostKeys: Record<'idc' | 'location', string | undefined> = { idc: undefined, location: undefined };
  const scopeSources: [string, { idc?: unknown; location?: unknown }, (field: 'idc' | 'location') => void][] = [];
  for (const [name, comp, client] of [[nodeSection, dfdaemon, nodeClient], [seedSection, seedPeer, seedClient], ['scheduler', scheduler, undefined]] as const) {
    if (client) scopeSources.push([`${name}.config`, client.host, () => undefined]);
    else scopeSources.push([`${name}.config`, (comp.config.host ?? {}), (field) => (comp.config = without(comp.config, ['host', field]))]);
  }
  for (const [name, host, drop] of scopeSources) {
    for (const field of ['idc', 'location'] as const) {
      const v = host[field];
      if (v === undefined) continue;
      if (typeof v !== 'string') throw new Error(`helm values key "${name}.host.${field}" must be a string`);
      if (hostKeys[field] !== undefined && hostKeys[field] !== v) {
        throw new Error(`helm values disagree on host.${field}: ${name}.host.${field} is "${v}" but another component says "${hostKeys[field]}"; one cluster has one ${field}`);
      }
      hostKeys[field] = v;
      drop(field);
    }
  }

  // Node selection: one cluster-wide selector when the three components agree.
  const common = sameLabels(scheduler.nodeSelector, seedPeer.nodeSelector) && sameLabels(seedPeer.nodeSelector, dfdaemon.nodeSelector);
  const clusterNodeSelector = common ? scheduler.nodeSelector : undefined;

  const clusterProps: DragonflyClusterProps = {
    manager: externalManager ?? { host: `${release}-manager.${namespace}.svc.cluster.local`, grpcPort: MANAGER_GRPC_PORT, restPort: MANAGER_REST_PORT },
    release,
    ...(clusterNodeSelector ? { nodeSelector: clusterNodeSelector } : {}),
    ...(registries ? { registries } : {}),
    ...(jaeger ? { jaeger } : {}),
    ...nonEmpty('scheduler', optionsOf(scheduler, {}, !common)),
    ...nonEmpty('seedPeer', optionsOf(seedPeer, storageSize ? { storageSize } : {}, !common)),
    ...nonEmpty('dfdaemon', optionsOf(dfdaemon, { ...(dfinitOptions ? { dfinit: dfinitOptions } : {}), ...(Object.keys(ports).length > 0 ? { ports } : {}) }, !common)),
  };

  // Datastores and the manager.
  let manager: CentralManagerProps | undefined;
  if (managerEnabled) {
    const m = componentValues<PlainObject>(r, 'manager', 'manager', { replicas: true, configFormat: 'program' });
    manager = {
      release,
      ...optionsOf(m, {}, true),
      ...(jaeger ? { jaegerUrl: jaegerCollectorUrl(namespace, release) } : {}),
      ...datastoreProps(r, release),
      ...(options.rootPasswordSecret ? { rootPasswordSecret: options.rootPasswordSecret } : { demoCredentials: true }),
    };
  } else {
    r.get('manager.enable');
    for (const key of ['redis', 'mysql', 'externalMysql']) {
      r.report(key, 'no manager is deployed here (manager.enable is false); the remote manager owns its datastores');
    }
  }
  // A cluster without its own manager takes its jobs from the central manager's Redis (as the chart's schedulers do).
  const remoteRedis = !managerEnabled ? remoteRedisOf(r, release) : undefined;

  let cluster: HostScopedCluster;
  if (!managerEnabled && clusterId >= 2 && (hostKeys.idc || hostKeys.location)) {
    cluster = {
      kind: 'RemoteCluster',
      props: {
        ...clusterProps,
        manager: clusterProps.manager,
        clusterId,
        scopes: { ...(hostKeys.idc ? { idc: hostKeys.idc } : {}), ...(hostKeys.location ? { location: hostKeys.location } : {}) },
        ...(remoteRedis ? { externalRedis: remoteRedis } : {}),
      },
    };
  } else {
    cluster = {
      kind: 'DragonflyCluster',
      props: {
        ...clusterProps,
        ...(clusterId !== 1 ? { clusterId } : {}),
        ...(remoteRedis ? { jobRedis: remoteRedis } : {}),
        ...(hostKeys.idc || hostKeys.location ? { hostScope: { ...(hostKeys.idc ? { idc: hostKeys.idc } : {}), ...(hostKeys.location ? { location: hostKeys.location } : {}) } } : {}),
      },
    };
  }

  const leftovers = r.leftovers();
  if (options.strict && leftovers.length > 0) {
    throw new Error(
      `helm values keys with no equivalent in dragonfly-ts (remove them, or express them in code with the constructs):\n${leftovers.map((u) => `  ${u.key}`).join('\n')}`,
    );
  }
  return { manager, cluster, unmapped: [...r.unmapped, ...leftovers] };
}

type HostScopedCluster = HelmTopology['cluster'];

/** Makes the constructs of a topology in `scope` (ids "manager" and "dragonfly"). */
export function buildHelmTopology(scope: Construct, topology: HelmTopology): { manager?: CentralManager; cluster: DragonflyCluster } {
  const manager = topology.manager ? new CentralManager(scope, 'manager', topology.manager) : undefined;
  const fromManager = manager ? { manager: manager.endpoint, ...(topology.cluster.kind === 'DragonflyCluster' ? { jobRedis: manager.jobRedis } : {}) } : {};
  const cluster =
    topology.cluster.kind === 'RemoteCluster'
      ? new RemoteCluster(scope, 'dragonfly', { ...topology.cluster.props, ...fromManager })
      : new DragonflyCluster(scope, 'dragonfly', { ...topology.cluster.props, ...fromManager });
  return { manager, cluster };
}

/**
 * Builds the constructs a Dragonfly Helm chart would install with these values, into `scope`
 * (a Chart whose namespace is the Helm release namespace). Construct ids are "manager" and
 * "dragonfly".
 */
export function fromHelmValues(scope: Construct, values: unknown, options: HelmImportOptions = {}): HelmImportResult {
  const topology = helmValuesToTopology(values, namespaceOf(scope, 'fromHelmValues'), options);
  const { manager, cluster } = buildHelmTopology(scope, topology);
  // Warnings on the construct tree, where tools that walk node metadata (and tests) find them.
  for (const u of topology.unmapped) scope.node.addMetadata('warning', `helm values key "${u.key}" not mapped: ${u.reason}`);
  return { manager, cluster, unmapped: topology.unmapped };
}

/** `externalRedis` of a cluster without a manager: the central Redis its schedulers take jobs from. */
function remoteRedisOf(r: ValuesReader, release: string): RemoteRedis | undefined {
  const addrs = r.get('externalRedis.addrs');
  if (addrs === undefined) return undefined;
  if (!Array.isArray(addrs) || addrs.length === 0 || addrs.some((a) => typeof a !== 'string')) throw new Error('helm values externalRedis.addrs is not a list of "host:port"');
  const secret = `${release}-external-redis`;
  const hasPassword = !isUnset(r.peek('externalRedis.password'));
  if (hasPassword) r.report('externalRedis.password', `plain-text passwords are not put in manifests; create Secret "${secret}" with key "password" (it is referenced, not created)`);
  else r.get('externalRedis.password');
  const db = r.number('externalRedis.db');
  return { addrs: addrs as string[], ...(hasPassword ? { passwordSecret: { name: secret, key: 'password' } } : {}), ...(db !== undefined ? { db } : {}) };
}

function datastoreProps(r: ValuesReader, release: string): Partial<CentralManagerProps> {
  const out: { externalMysql?: CentralManagerProps['externalMysql']; externalRedis?: CentralManagerProps['externalRedis'] } = {};
  const mysqlEnabled = r.bool('mysql.enable') ?? true;
  const extMysqlHost = r.string('externalMysql.host');
  if (!mysqlEnabled || extMysqlHost) {
    if (!extMysqlHost) throw new Error('helm values set mysql.enable: false but externalMysql.host is empty; give the MySQL host');
    const secret = `${release}-external-mysql`;
    const port = r.number('externalMysql.port');
    const username = r.string('externalMysql.username');
    const database = r.string('externalMysql.database');
    out.externalMysql = {
      host: extMysqlHost,
      ...(port !== undefined ? { port } : {}),
      ...(username !== undefined ? { username } : {}),
      ...(database !== undefined ? { database } : {}),
      passwordSecret: { name: secret, key: 'password' },
    };
    r.report('externalMysql.password', `plain-text passwords are not put in manifests; create Secret "${secret}" with key "password" (it is referenced, not created)`);
    if (r.bool('externalMysql.migrate') === false) throw new Error('helm values key "externalMysql.migrate" is false, but the manager always runs its versioned migrations at start; remove the key');
  } else {
    r.report('externalMysql', 'mysql.enable is true, so the in-cluster MySQL is used and externalMysql is ignored (as the chart does)');
  }
  const redisEnabled = r.bool('redis.enable') ?? true;
  if (!redisEnabled) {
    const addrs = r.get('externalRedis.addrs');
    if (!Array.isArray(addrs) || addrs.length === 0 || addrs.some((a) => typeof a !== 'string')) {
      throw new Error('helm values set redis.enable: false but externalRedis.addrs is not a list of "host:port"');
    }
    const secret = `${release}-external-redis`;
    const hasPassword = !isUnset(r.peek('externalRedis.password'));
    const db = r.number('externalRedis.db');
    out.externalRedis = {
      addrs: addrs as string[],
      ...(hasPassword ? { passwordSecret: { name: secret, key: 'password' } } : {}),
      ...(db !== undefined ? { db } : {}),
    };
    if (hasPassword) r.report('externalRedis.password', `plain-text passwords are not put in manifests; create Secret "${secret}" with key "password" (it is referenced, not created)`);
    else r.get('externalRedis.password');
  } else {
    r.report('externalRedis', 'redis.enable is true, so the in-cluster Redis is used and externalRedis is ignored (as the chart does)');
  }
  return out;
}
