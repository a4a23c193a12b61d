/**
 * The central manager: manager Deployment with its MySQL and Redis (in-cluster or external),
 * the `<release>-manager` Service other clusters reach by DNS, and an optional console NodePort.
 */
import { k8s } from 'cdk8s-plus-28';
import { Construct } from 'constructs';
import type { ManagerConfigInput } from '../services/common/config';
import {
  CONFIG_DIR,
  assertNodeSelector,
  assertPort,
  assertSecretKeyRef,
  componentLabels,
  envFromSecret,
  namespaceOf,
  renderConfig,
  service,
  serviceAccount,
  waitFor,
  type SecretKeyRef,
  type WiredKey,
} from './_util';
import type { JobRedis } from './scheduler';
import { DOCUMENTED_DEFAULT_PASSWORD, InClusterMysql, InClusterRedis, MYSQL_PORT, REDIS_PORT, type InClusterMysqlProps, type InClusterRedisProps } from './datastores';
import { assertRelease } from './dragonfly-cluster';
import { MANAGER_GRPC_PORT, MANAGER_REST_PORT, METRICS_PORT, type ManagerEndpoint } from './endpoints';
import { imageOf, pullPolicyOf, type ImageRef } from './images';
import { ManagerNetworkPolicies, type ManagerNetworkPolicyOptions } from './network-policies';
import { componentTls, DragonflyPki, managerRestTls, type TlsProps } from './tls';
import { Workload, nonRootSecurityContext, type DisruptionBudget, type WorkloadOptions } from './workload';

/** A MySQL server the manager uses instead of the in-cluster one. */
export interface ExternalMysql {
  /** Host name or IP of the MySQL server. */
  readonly host: string;
  /**
   * Port.
   * @default 3306
   */
  readonly port?: number;
  /**
   * User.
   * @default "dragonfly"
   */
  readonly username?: string;
  /**
   * Database.
   * @default "manager"
   */
  readonly database?: string;
  /** Secret key holding the password (user-provided Secret in the manager's namespace). */
  readonly passwordSecret: SecretKeyRef;
}

/** A Redis the manager uses instead of the in-cluster one. */
export interface ExternalRedis {
  /** "host:port" addresses. */
  readonly addrs: readonly string[];
  /**
   * Secret key holding the password (user-provided Secret).
   * @default - no password
   */
  readonly passwordSecret?: SecretKeyRef;
  /**
   * Database number.
   * @default 0
   */
  readonly db?: number;
}

/** The manager console exposed on every node. */
export interface ConsoleNodePort {
  /** Node port (30000-32767), e.g. 30950 as in the seed's kind setup. */
  readonly nodePort: number;
  /**
   * Service name.
   * @default "manager-rest" (the seed's manager-rest-svc.yaml)
   */
  readonly serviceName?: string;
}

export interface CentralManagerProps extends WorkloadOptions {
  /**
   * Helm-style release name (`<release>-manager`, `<release>-mysql`, `<release>-redis-master`).
   * @default "dragonfly"
   */
  readonly release?: string;
  /**
   * Manager pods.
   * @default 1
   */
  readonly replicas?: number;
  /**
   * Extra manager.yaml keys (e.g. `verbose`, `pprofPort`, `auth.jwt.timeout`). Database,
   * Redis, ports and tracing come from props.
   * @default - none
   */
  readonly config?: ManagerConfigInput;
  /**
   * Image.
   * @default - ghcr.io/dragonfly-ts/manager:<package version>
   */
  readonly image?: ImageRef;
  /**
   * Node labels for the manager and its in-cluster datastores.
   * @default - any node
   */
  readonly nodeSelector?: Readonly<Record<string, string>>;
  /**
   * PodDisruptionBudget of the manager pods, or false for none.
   * @default { maxUnavailable: 1 } (a node drain takes one manager down at a time, and never blocks)
   */
  readonly disruptionBudget?: DisruptionBudget | false;
  /**
   * Use this MySQL instead of deploying one.
   * @default - an in-cluster MySQL `<release>-mysql`
   */
  readonly externalMysql?: ExternalMysql;
  /**
   * In-cluster MySQL settings (ignored with externalMysql).
   * @default - mysql:8.0, password "dragonfly" (documented default), 8Gi
   */
  readonly mysql?: Omit<InClusterMysqlProps, 'release' | 'nodeSelector'>;
  /**
   * Use this Redis instead of deploying one.
   * @default - an in-cluster Redis `<release>-redis-master`
   */
  readonly externalRedis?: ExternalRedis;
  /**
   * In-cluster Redis settings (ignored with externalRedis).
   * @default - redis:7.2-alpine, password "dragonfly" (documented default)
   */
  readonly redis?: Omit<InClusterRedisProps, 'release' | 'nodeSelector'>;
  /**
   * Secret key holding root's password: a Secret you create in the manager's namespace, e.g.
   * `kubectl -n <ns> create secret generic dragonfly-root-password --from-literal=password=<8-20 chars>`.
   * The manager applies it at every start (`auth.rootPassword`), so changing the Secret and
   * restarting the manager rotates the password. Give this or `demoCredentials`.
   * @default - none: required unless demoCredentials is true
   */
  readonly rootPasswordSecret?: SecretKeyRef;
  /**
   * Give root the well-known demo password `dragonfly` (a Secret `<release>-manager-credentials`
   * holding it is created). For demos and tests only; synthesizing prints a warning.
   * @default false
   */
  readonly demoCredentials?: boolean;
  /**
   * Expose the REST API and console on a NodePort.
   * @default - no NodePort
   */
  readonly console?: ConsoleNodePort;
  /**
   * Tracing collector URL (`jaeger` key), e.g. a DragonflyCluster's jaeger.collectorUrl.
   * @default - tracing off
   */
  readonly jaegerUrl?: string;
  /**
   * Ingress NetworkPolicies for the manager, MySQL and Redis (see constructs/network-policies.ts).
   * @default - none: every pod and node can reach them
   */
  readonly networkPolicy?: ManagerNetworkPolicyOptions;
  /**
   * Create the `<release>-manager-metrics` Service (port 8000).
   * @default true
   */
  readonly metricsService?: boolean;
  /**
   * mTLS of the manager's gRPC with certificates from cert-manager. This chart holds the
   * topology's self-signed root CA (Secret `tls.caSecretName`), which other clusters copy.
   * @default - on, root CA created here
   */
  readonly tls?: TlsProps;
  /**
   * HTTPS for the REST API and console (`server.rest.tls`) with a certificate of the topology's
   * CA; browsers and REST clients must trust that CA. The RemoteCluster registration Job speaks
   * plain HTTP, so leave it off for topologies that register clusters that way.
   * @default false
   */
  readonly restTls?: boolean;
}

export class CentralManager extends Construct {
  /** Where schedulers, peers and apply-cluster Jobs reach this manager (full cluster DNS name). */
  public readonly endpoint: Required<ManagerEndpoint>;
  public readonly serviceName: string;
  /** `<release>-redis-master.<ns>.svc.cluster.local:6379`, or the first external address. */
  public readonly redisAddr: string;
  /** The Redis schedulers of this Kubernetes cluster take their jobs from (pass it to DragonflyCluster's `jobRedis`). */
  public readonly jobRedis: JobRedis;
  /** Secret key the manager takes root's password from (at every start). */
  public readonly rootPasswordSecret: SecretKeyRef;
  public readonly config: Readonly<Record<string, unknown>>;
  public readonly mysql?: InClusterMysql;
  /** The Deployment and its PodDisruptionBudget; add volumes, env or pod metadata through it. */
  public readonly workload: Workload;
  public readonly redis?: InClusterRedis;

  constructor(scope: Construct, id: string, props: CentralManagerProps = {}) {
    super(scope, id);
    const release = props.release ?? 'dragonfly';
    assertRelease(release);
    assertNodeSelector(props.nodeSelector, 'nodeSelector');
    const replicas = props.replicas ?? 1;
    if (!Number.isInteger(replicas) || replicas < 1) throw new Error(`manager replicas must be an integer of 1 or more (got ${replicas})`);
    const namespace = namespaceOf(this, 'CentralManager');
    const name = `${release}-manager`;
    const labels = componentLabels(release, 'manager');
    this.serviceName = name;
    this.endpoint = { host: `${name}.${namespace}.svc.cluster.local`, grpcPort: MANAGER_GRPC_PORT, restPort: MANAGER_REST_PORT };

    // Datastores.
    let mysqlHost: string;
    let mysqlPort: number;
    let mysqlUser: string;
    let mysqlDb: string;
    let mysqlSecret: SecretKeyRef;
    if (props.externalMysql) {
      if (!props.externalMysql.host) throw new Error('externalMysql.host is empty; give the MySQL host name or drop externalMysql to deploy one in-cluster');
      mysqlHost = props.externalMysql.host;
      mysqlPort = props.externalMysql.port ?? MYSQL_PORT;
      assertPort(mysqlPort, 'externalMysql.port');
      mysqlUser = props.externalMysql.username ?? 'dragonfly';
      mysqlDb = props.externalMysql.database ?? 'manager';
      mysqlSecret = props.externalMysql.passwordSecret;
    } else {
      this.mysql = new InClusterMysql(this, 'Mysql', { ...props.mysql, release, nodeSelector: props.nodeSelector });
      mysqlHost = `${this.mysql.serviceName}.${namespace}.svc.cluster.local`;
      mysqlPort = MYSQL_PORT;
      mysqlUser = this.mysql.user;
      mysqlDb = this.mysql.database;
      mysqlSecret = this.mysql.passwordSecret;
    }
    let redisAddrs: string[];
    let redisSecret: SecretKeyRef | undefined;
    if (props.externalRedis) {
      if (props.externalRedis.addrs.length === 0) throw new Error('externalRedis.addrs is empty; list at least one "host:port" or drop externalRedis');
      redisAddrs = [...props.externalRedis.addrs];
      redisSecret = props.externalRedis.passwordSecret;
    } else {
      this.redis = new InClusterRedis(this, 'Redis', { ...props.redis, release, nodeSelector: props.nodeSelector });
      redisAddrs = [`${this.redis.serviceName}.${namespace}.svc.cluster.local:${REDIS_PORT}`];
      redisSecret = this.redis.passwordSecret;
    }
    this.redisAddr = redisAddrs[0];
    const keyPrefix = props.config?.database?.redis?.keyPrefix;
    this.jobRedis = {
      addrs: redisAddrs,
      ...(redisSecret ? { passwordSecret: redisSecret } : {}),
      ...(props.externalRedis?.db !== undefined ? { db: props.externalRedis.db } : {}),
      ...(keyPrefix !== undefined ? { keyPrefix } : {}),
    };

    // Root's password: from the user's Secret, or the demo one.
    if (props.config?.auth?.rootPassword !== undefined) throw new Error('config.auth.rootPassword would put root\'s password in a ConfigMap; use rootPasswordSecret instead');
    if (props.demoCredentials && props.rootPasswordSecret) throw new Error('give rootPasswordSecret or demoCredentials: true, not both');
    if (props.rootPasswordSecret) {
      assertSecretKeyRef(props.rootPasswordSecret, 'rootPasswordSecret');
      this.rootPasswordSecret = props.rootPasswordSecret;
    } else if (props.demoCredentials) {
      this.rootPasswordSecret = { name: `${name}-credentials`, key: 'password' };
      new k8s.KubeSecret(this, 'Credentials', {
        metadata: { name: this.rootPasswordSecret.name, labels },
        type: 'Opaque',
        stringData: { username: 'root', password: DOCUMENTED_DEFAULT_PASSWORD },
      });
      console.warn(`warning: ${this.node.path}: demoCredentials: the manager's root user has the well-known password "${DOCUMENTED_DEFAULT_PASSWORD}"; use rootPasswordSecret for a real cluster`);
    } else {
      throw new Error(
        'CentralManager needs root\'s password: set rootPasswordSecret: { name, key } (a Secret you create, e.g. kubectl create secret generic dragonfly-root-password --from-literal=password=...), or demoCredentials: true for the demo password',
      );
    }

    const wired: WiredKey[] = [
      {
        prop: 'the mysql / externalMysql props',
        value: { database: { type: 'mysql', mysql: { host: mysqlHost, port: mysqlPort, user: mysqlUser, dbname: mysqlDb } } },
      },
      {
        prop: 'the redis / externalRedis props',
        value: { database: { redis: { addrs: redisAddrs, ...(props.externalRedis?.db !== undefined ? { db: props.externalRedis.db } : {}) } } },
      },
      {
        prop: 'the manager ports (fixed: REST 8080, gRPC 65003, metrics 8000)',
        value: {
          server: { rest: { addr: `:${MANAGER_REST_PORT}` }, grpc: { port: { start: MANAGER_GRPC_PORT, end: MANAGER_GRPC_PORT } } },
          metrics: { enable: true, addr: `:${METRICS_PORT}` },
        },
      },
    ];
    if (props.jaegerUrl) wired.push({ prop: 'the jaegerUrl prop', value: { jaeger: props.jaegerUrl } });
    DragonflyPki.ensure(this, props.tls, true);
    const tls = componentTls(this, { release, component: 'manager', serviceName: name });
    const restTls = props.restTls ? managerRestTls(this, release, [name, `${name}.${namespace}.svc.cluster.local`, ...(props.console ? [props.console.serviceName ?? 'manager-rest'] : [])]) : undefined;
    wired.push(tls.wired, ...(restTls ? [restTls.wired] : []));
    const rendered = renderConfig('manager', 'manager', props.config, wired);
    this.config = rendered.input;

    const configMap = new k8s.KubeConfigMap(this, 'Config', { metadata: { name, labels }, data: { 'manager.yaml': rendered.yaml } });
    serviceAccount(this, 'ServiceAccount', name, labels);
    service(this, 'Service', name, labels, [
      { name: 'http-rest', port: MANAGER_REST_PORT },
      { name: 'grpc', port: MANAGER_GRPC_PORT },
    ]);
    if (props.metricsService ?? true) service(this, 'MetricsService', `${name}-metrics`, labels, [{ name: 'http-metrics', port: METRICS_PORT }]);
    if (props.console) {
      const np = props.console.nodePort;
      if (!Number.isInteger(np) || np < 30000 || np > 32767) {
        throw new Error(`console.nodePort ${np} is outside the NodePort range 30000-32767; pick one such as 30950`);
      }
      service(this, 'ConsoleService', props.console.serviceName ?? 'manager-rest', labels, [{ name: 'http', port: MANAGER_REST_PORT, nodePort: np }], 'NodePort');
    }

    if (props.networkPolicy) {
      new ManagerNetworkPolicies(this, 'NetworkPolicies', { ...props.networkPolicy, release, inClusterMysql: !props.externalMysql, inClusterRedis: !props.externalRedis });
    }

    const env: k8s.EnvVar[] = [
      envFromSecret('manager', ['database', 'mysql', 'password'], mysqlSecret),
      envFromSecret('manager', ['auth', 'rootPassword'], this.rootPasswordSecret),
    ];
    if (redisSecret) env.push(envFromSecret('manager', ['database', 'redis', 'password'], redisSecret));
    const [redisHost, redisPortText] = splitHostPort(redisAddrs[0]);
    const pprofPort = typeof props.config?.pprofPort === 'number' && props.config.pprofPort > 0 ? props.config.pprofPort : undefined;

    this.workload = new Workload(this, 'Workload', {
      kind: 'Deployment',
      name,
      what: 'manager',
      labels,
      replicas,
      options: props,
      defaults: { cpu: '8', memory: '16Gi', securityContext: nonRootSecurityContext() },
      disruptionBudget: props.disruptionBudget ?? { maxUnavailable: 1 },
      initContainers: [waitFor('mysql', mysqlHost, mysqlPort), waitFor('redis', redisHost, Number(redisPortText))],
      container: {
        name: 'manager',
        image: imageOf('manager', props.image),
        imagePullPolicy: pullPolicyOf(props.image),
        command: ['dfmanager', '--config', `${CONFIG_DIR}/manager.yaml`],
        env,
        ports: [
          { name: 'http-rest', port: MANAGER_REST_PORT },
          { name: 'grpc', port: MANAGER_GRPC_PORT },
          { name: 'http-metrics', port: METRICS_PORT },
          ...(pprofPort ? [{ name: 'pprof', port: pprofPort }] : []),
        ],
        probePorts: { grpc: tls.enabled ? undefined : MANAGER_GRPC_PORT, http: METRICS_PORT },
        volumeMounts: [{ name: 'config', mountPath: CONFIG_DIR, readOnly: true }, ...tls.volumeMounts, ...(restTls?.volumeMounts ?? [])],
      },
      volumes: [{ name: 'config', configMap: { name: configMap.name } }, ...tls.volumes, ...(restTls?.volumes ?? [])],
    });
  }
}

function splitHostPort(addr: string): [string, string] {
  const i = addr.lastIndexOf(':');
  if (i <= 0 || !/^\d{1,5}$/.test(addr.slice(i + 1))) {
    throw new Error(`redis address "${addr}" must be "host:port", e.g. "dragonfly-redis-master.cluster-a.svc.cluster.local:6379"`);
  }
  return [addr.slice(0, i), addr.slice(i + 1)];
}
