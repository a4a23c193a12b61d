/**
 * Import of Dragonfly Helm chart values (a `charts-config*.yaml` object, as in the seed
 * documents) into the constructs. Every key is either mapped to a prop or reported back as
 * `{ key, reason }` (and as `warning` metadata on the scope's construct node); nothing is dropped silently.
 */
import type { Construct } from 'constructs';
import { namespaceOf, type PlainObject, type SecretKeyRef } from './_util';
import { CentralManager, type CentralManagerProps } from './central-manager';
import { DragonflyCluster, type DragonflyClusterProps } from './dragonfly-cluster';
import { MANAGER_GRPC_PORT, MANAGER_REST_PORT, type ManagerEndpoint } from './endpoints';
import { DEFAULT_IMAGE_REGISTRY, DEFAULT_IMAGE_TAG, type DragonflyComponentImage, type ImageRef } from './images';
import { jaegerCollectorUrl } from './jaeger';
import { RemoteCluster, type RemoteRedis } from './remote-cluster';

/** A values key the importer could not express with the constructs, and why. */
export interface UnmappedValue {
  /** Dotted key path in the values, e.g. "externalRedis.addrs". */
  readonly key: string;
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
}

export interface HelmImportResult {
  /** The manager, when the values deploy one (`manager.enable` not false). */
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

function imageFrom(r: ValuesReader, component: string, image: DragonflyComponentImage): ImageRef | undefined {
  const repository = r.peek(`${component}.image`);
  const tag = r.peek(`${component}.tag`);
  if (repository === undefined && tag === undefined) return undefined;
  if (typeof repository === 'string' && repository.startsWith('dragonflyoss/')) {
    const reason = `upstream Go image ${repository}; it reads a different config format, so ${DEFAULT_IMAGE_REGISTRY}/${image}:${DEFAULT_IMAGE_TAG} (built from this repo's Dockerfile) is used`;
    r.report(`${component}.image`, reason);
    r.report(`${component}.tag`, reason);
    return undefined;
  }
  return { repository: r.string(`${component}.image`), tag: r.string(`${component}.tag`) };
}

interface ComponentValues<C> {
  readonly replicas?: number;
  readonly nodeSelector?: Record<string, string>;
  readonly metricsService?: boolean;
  readonly image?: ImageRef;
  /** Mutable: wired keys are taken out of it as they are mapped to props. */
  config: C;
}

function componentValues<C>(r: ValuesReader, component: string, image: DragonflyComponentImage): ComponentValues<C> {
  const config = r.get(`${component}.config`);
  if (config !== undefined && config !== null && !isObject(config)) throw new Error(`helm values key "${component}.config" must be a map`);
  const metrics = r.bool(`${component}.metrics.enable`);
  return {
    replicas: component === 'dfdaemon' ? undefined : r.number(`${component}.replicas`),
    nodeSelector: r.labels(`${component}.nodeSelector`),
    metricsService: metrics === false ? false : undefined,
    image: imageFrom(r, component, image),
    config: (isObject(config) ? structuredClone(config) : {}) as C,
  };
}

function sameLabels(a: Record<string, string> | undefined, b: Record<string, string> | undefined): boolean {
  return JSON.stringify(Object.entries(a ?? {}).sort()) === JSON.stringify(Object.entries(b ?? {}).sort());
}

function isEmpty(o: unknown): boolean {
  return !isObject(o) || Object.keys(o).length === 0;
}

/**
 * Builds the constructs a Dragonfly Helm chart would install with these values, into `scope`
 * (a Chart whose namespace is the Helm release namespace). Construct ids are "manager" and
 * "dragonfly".
 */
export function fromHelmValues(scope: Construct, values: unknown, options: HelmImportOptions = {}): HelmImportResult {
  if (!isObject(values)) throw new Error('helm values must be a YAML mapping (the parsed charts-config.yaml object)');
  const r = new ValuesReader(values);
  const release = options.release ?? 'dragonfly';
  const namespace = namespaceOf(scope, 'fromHelmValues');

  // Container runtime → dfinit.
  const containerdEnable = r.bool('containerRuntime.containerd.enable');
  const inject = r.bool('containerRuntime.containerd.injectConfigPath');
  if (inject === false) {
    r.report('containerRuntime.containerd.injectConfigPath', 'dfinit always writes hosts.toml under config_path; the legacy mirrors-in-config.toml mode is not supported');
  }
  const registriesValue = r.get('containerRuntime.containerd.registries');
  if (registriesValue !== undefined && (!Array.isArray(registriesValue) || registriesValue.some((x) => typeof x !== 'string'))) {
    throw new Error('helm values key "containerRuntime.containerd.registries" must be a list of registry URLs');
  }
  const registries = registriesValue as string[] | undefined;

  // Components.
  const scheduler = componentValues<PlainObject>(r, 'scheduler', 'scheduler');
  const seedPeer = componentValues<PlainObject>(r, 'seedPeer', 'dfdaemon');
  const dfdaemon = componentValues<PlainObject>(r, 'dfdaemon', 'dfdaemon');
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
  for (const [name, comp] of [['seedPeer', seedPeer], ['dfdaemon', dfdaemon]] as const) {
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
    for (const k of ['externalManager']) r.report(k, 'manager.enable is true, so the in-chart manager is used and externalManager is ignored (as the chart does)');
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
  const seedCfg = (((seedPeer.config.scheduler as PlainObject | undefined)?.manager as PlainObject | undefined)?.seedPeer ?? {}) as PlainObject;
  if (seedCfg.clusterID !== undefined) ids.push({ key: 'seedPeer.config.scheduler.manager.seedPeer.clusterID', id: Number(seedCfg.clusterID) });
  seedPeer.config = without(seedPeer.config, ['scheduler', 'manager', 'seedPeer', 'clusterID']);
  if (seedCfg.enable === true) seedPeer.config = without(seedPeer.config, ['scheduler', 'manager', 'seedPeer', 'enable']);
  const clusterId = ids[0]?.id ?? 1;
  for (const i of ids) {
    if (i.id !== clusterId) {
      throw new Error(`helm values disagree on the cluster id: ${i.key} is ${i.id} but ${ids[0].key} is ${clusterId}; the scheduler and seed peer of one cluster share one id`);
    }
  }

  // host.idc / host.location: the peers' scope; must agree where given.
  const hostKeys: Record<'idc' | 'location', string | undefined> = { idc: undefined, location: undefined };
  for (const [name, comp] of [['dfdaemon', dfdaemon], ['seedPeer', seedPeer], ['scheduler', scheduler]] as const) {
    for (const field of ['idc', 'location'] as const) {
      const v = (comp.config.host as PlainObject | undefined)?.[field];
      if (v === undefined) continue;
      if (typeof v !== 'string') throw new Error(`helm values key "${name}.config.host.${field}" must be a string`);
      if (hostKeys[field] !== undefined && hostKeys[field] !== v) {
        throw new Error(`helm values disagree on host.${field}: ${name}.config.host.${field} is "${v}" but another component says "${hostKeys[field]}"; one cluster has one ${field}`);
      }
      hostKeys[field] = v;
      comp.config = without(comp.config, ['host', field]);
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
    scheduler: {
      ...(scheduler.replicas !== undefined ? { replicas: scheduler.replicas } : {}),
      ...(!common && scheduler.nodeSelector ? { nodeSelector: scheduler.nodeSelector } : {}),
      ...(scheduler.metricsService === false ? { metricsService: false } : {}),
      ...(scheduler.image ? { image: scheduler.image } : {}),
      ...(!isEmpty(scheduler.config) ? { config: scheduler.config } : {}),
    },
    seedPeer: {
      ...(seedPeer.replicas !== undefined ? { replicas: seedPeer.replicas } : {}),
      ...(!common && seedPeer.nodeSelector ? { nodeSelector: seedPeer.nodeSelector } : {}),
      ...(seedPeer.metricsService === false ? { metricsService: false } : {}),
      ...(seedPeer.image ? { image: seedPeer.image } : {}),
      ...(!isEmpty(seedPeer.config) ? { config: seedPeer.config } : {}),
    },
    dfdaemon: {
      ...(!common && dfdaemon.nodeSelector ? { nodeSelector: dfdaemon.nodeSelector } : {}),
      ...(dfdaemon.metricsService === false ? { metricsService: false } : {}),
      ...(dfdaemon.image ? { image: dfdaemon.image } : {}),
      ...(!isEmpty(dfdaemon.config) ? { config: dfdaemon.config } : {}),
      ...(containerdEnable === false ? { dfinit: { enable: false } } : {}),
    },
  };

  // Datastores and the manager.
  let manager: CentralManager | undefined;
  if (managerEnabled) {
    const m = componentValues<PlainObject>(r, 'manager', 'manager');
    const managerProps: CentralManagerProps = {
      release,
      ...(m.replicas !== undefined ? { replicas: m.replicas } : {}),
      ...(m.nodeSelector ? { nodeSelector: m.nodeSelector } : {}),
      ...(m.metricsService === false ? { metricsService: false } : {}),
      ...(m.image ? { image: m.image } : {}),
      ...(!isEmpty(m.config) ? { config: m.config } : {}),
      ...(jaeger ? { jaegerUrl: jaegerCollectorUrl(namespace, release) } : {}),
      ...datastoreProps(r, release),
      ...(options.rootPasswordSecret ? { rootPasswordSecret: options.rootPasswordSecret } : { demoCredentials: true }),
    };
    manager = new CentralManager(scope, 'manager', managerProps);
  } else {
    r.get('manager.enable');
    for (const key of ['redis', 'mysql', 'externalMysql']) {
      r.report(key, 'no manager is deployed here (manager.enable is false); the remote manager owns its datastores');
    }
  }
  // A cluster without its own manager takes its jobs from the central manager's Redis (as the chart's schedulers do).
  const remoteRedis = !managerEnabled ? remoteRedisOf(r, release) : undefined;

  let cluster: DragonflyCluster;
  if (!managerEnabled && clusterId >= 2 && (hostKeys.idc || hostKeys.location)) {
    cluster = new RemoteCluster(scope, 'dragonfly', {
      ...clusterProps,
      manager: clusterProps.manager,
      clusterId,
      scopes: { ...(hostKeys.idc ? { idc: hostKeys.idc } : {}), ...(hostKeys.location ? { location: hostKeys.location } : {}) },
      ...(remoteRedis ? { externalRedis: remoteRedis } : {}),
    });
  } else {
    cluster = new DragonflyCluster(scope, 'dragonfly', {
      ...clusterProps,
      ...(clusterId !== 1 ? { clusterId } : {}),
      ...(remoteRedis ? { jobRedis: remoteRedis } : managerEnabled && manager ? { jobRedis: manager.jobRedis } : {}),
      ...(hostKeys.idc || hostKeys.location ? { hostScope: { idc: hostKeys.idc, location: hostKeys.location } } : {}),
    });
  }

  const unmapped = [...r.unmapped, ...r.leftovers()];
  // Warnings on the construct tree, where tools that walk node metadata (and tests) find them.
  for (const u of unmapped) scope.node.addMetadata('warning', `helm values key "${u.key}" not mapped: ${u.reason}`);
  return { manager, cluster, unmapped };
}

/** `externalRedis` of a cluster without a manager: the central Redis its schedulers take jobs from. */
function remoteRedisOf(r: ValuesReader, release: string): RemoteRedis | undefined {
  const addrs = r.get('externalRedis.addrs');
  if (addrs === undefined) return undefined;
  if (!Array.isArray(addrs) || addrs.length === 0 || addrs.some((a) => typeof a !== 'string')) throw new Error('helm values externalRedis.addrs is not a list of "host:port"');
  const secret = `${release}-external-redis`;
  const hasPassword = r.has('externalRedis.password');
  if (hasPassword) r.report('externalRedis.password', `plain-text passwords are not put in manifests; create Secret "${secret}" with key "password" (it is referenced, not created)`);
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
    out.externalMysql = {
      host: extMysqlHost,
      port: r.number('externalMysql.port'),
      username: r.string('externalMysql.username'),
      database: r.string('externalMysql.database'),
      passwordSecret: { name: secret, key: 'password' },
    };
    r.report('externalMysql.password', `plain-text passwords are not put in manifests; create Secret "${secret}" with key "password" (it is referenced, not created)`);
    r.report('externalMysql.migrate', 'the manager always runs its migrations at start');
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
    const hasPassword = r.has('externalRedis.password');
    out.externalRedis = {
      addrs: addrs as string[],
      ...(hasPassword ? { passwordSecret: { name: secret, key: 'password' } } : {}),
      ...(r.number('externalRedis.db') !== undefined ? { db: r.number('externalRedis.db') } : {}),
    };
    r.report('externalRedis.password', `plain-text passwords are not put in manifests; create Secret "${secret}" with key "password" (it is referenced, not created)`);
  } else {
    r.report('externalRedis', 'redis.enable is true, so the in-cluster Redis is used and externalRedis is ignored (as the chart does)');
  }
  return out;
}
