/**
 * A Dragonfly cluster in another Kubernetes cluster, served by a central manager reached by
 * DNS. Its manager record is declared in code: a Job runs `dfmanager apply-cluster` with a
 * cluster.yaml carrying an explicit id, and the scheduler and seed peer are configured with
 * that same id (they retry registration until the Job has created the record). The peers'
 * `host.idc` / `host.location` match the record's scopes, so the manager's searcher sends
 * them to this cluster's scheduler.
 */
import { k8s } from 'cdk8s-plus-28';
import { Construct } from 'constructs';
import { stringify } from 'yaml';
import { clusterSpecSchema, type ClusterSpecInput } from '../services/common/config';
import { CONFIG_DIR, assertSecretKeyRef, componentLabels, shortHash, waitFor, type SecretKeyRef } from './_util';
import { DragonflyCluster, assertClusterId, type DragonflyClusterProps } from './dragonfly-cluster';
import { MANAGER_REST_PORT, assertManagerEndpoint, managerRestUrl, type ManagerEndpoint } from './endpoints';
import { imageOf, pullPolicyOf, type ImageRef } from './images';

/** Which peers this cluster serves (the manager's searcher matches them). */
export interface ClusterScopes {
  /**
   * IDC, or several separated by "|"; the first is written to the peers' `host.idc`.
   * @default - none
   */
  readonly idc?: string;
  /**
   * Location, "|"-separated from broad to narrow; written to the peers' `host.location`.
   * @default - none
   */
  readonly location?: string;
  /**
   * CIDRs of peer IPs (the dfdaemons advertise the node IP).
   * @default - none
   */
  readonly cidrs?: readonly string[];
  /**
   * Regular expressions matched against peer hostnames (node names, as the DaemonSet uses hostNetwork).
   * @default - none
   */
  readonly hostnames?: readonly string[];
}

/** The central manager's Redis as this cluster reaches it (the chart's `externalRedis`). */
export interface RemoteRedis {
  /** "host:port", e.g. `dragonfly-redis-master.cluster-a.svc.cluster.local:6379`. */
  readonly addrs: readonly string[];
  /**
   * Password; a Secret `<release>-external-redis` (key `password`) is created with it.
   * @default - none
   */
  readonly password?: string;
  /**
   * Existing Secret key with the password (instead of `password`).
   * @default - none
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

export interface RemoteClusterProps extends Omit<DragonflyClusterProps, 'clusterId' | 'hostScope' | 'jobRedis'> {
  /** The central manager (e.g. `{ host: 'dragonfly-manager.cluster-a.svc.cluster.local' }`). */
  readonly manager: ManagerEndpoint;
  /** Scheduler cluster id = seed-peer cluster id of the record; 2 or more (1 is the default cluster). */
  readonly clusterId: number;
  /**
   * Cluster record name.
   * @default "cluster-<clusterId>"
   */
  readonly clusterName?: string;
  /**
   * Description of the record.
   * @default - empty
   */
  readonly bio?: string;
  /**
   * Scopes of the record; at least one is needed so the searcher can send peers here.
   */
  readonly scopes: ClusterScopes;
  /**
   * Scheduler-cluster settings of the record (`candidate_parent_limit`, ...).
   * @default - the manager's defaults
   */
  readonly clusterConfig?: ClusterSpecInput['scheduler_cluster_config'];
  /**
   * Secret key (in this cluster's namespace) holding a personal access token of scope `cluster`,
   * which the apply-cluster Job sends to the manager's `/oapi/v1/clusters`; no password leaves
   * the central cluster. Create the token as root (console: Personal access tokens, scope
   * `cluster`; or `POST /api/v1/personal-access-tokens`), then
   * `kubectl -n <ns> create secret generic dragonfly-manager-token --from-literal=token=<token>`.
   * @default - { name: "<release>-manager-token", key: "token" }, a Secret you create
   */
  readonly managerTokenSecret?: SecretKeyRef;
  /**
   * Image of the apply-cluster Job (the manager image holds `dfmanager`).
   * @default - ghcr.io/dragonfly-ts/manager:<package version>
   */
  readonly managerImage?: ImageRef;
  /**
   * The central manager's Redis, where this cluster's schedulers take their jobs (preheat,
   * get_task, delete_task, sync_peers) from.
   * @default - none: jobs sent to this cluster fail with "no live scheduler"
   */
  readonly externalRedis?: RemoteRedis;
}

function assertScopes(scopes: ClusterScopes | undefined): void {
  if (!scopes) throw new Error('RemoteCluster needs scopes; set scopes: { idc: "cluster-2" } (or location, cidrs, hostnames) so the manager can route peers to it');
  const { idc = '', location = '', cidrs = [], hostnames = [] } = scopes;
  if (idc === '' && location === '' && cidrs.length === 0 && hostnames.length === 0) {
    throw new Error('RemoteCluster scopes are empty; set at least one of idc, location, cidrs or hostnames, or peers will go to the default cluster');
  }
  for (const [what, list] of [['cidrs', cidrs], ['hostnames', hostnames]] as const) {
    const seen = new Set<string>();
    for (const item of list) {
      if (seen.has(item)) throw new Error(`scopes.${what} lists "${item}" twice; remove the duplicate`);
      seen.add(item);
    }
  }
  const idcs = idc.split('|');
  if (idc !== '' && idcs.some((i) => i.trim() === '')) throw new Error(`scopes.idc "${idc}" has an empty entry; separate IDCs with a single "|"`);
  if (new Set(idcs).size !== idcs.length) throw new Error(`scopes.idc "${idc}" lists an IDC twice; remove the duplicate`);
  if (location !== '' && location.split('|').some((i) => i.trim() === '')) {
    throw new Error(`scopes.location "${location}" has an empty level; write it like "asia|cn|bj"`);
  }
}

/** Builds and validates the cluster.yaml object; schema errors name the key. */
export function clusterSpecOf(props: Pick<RemoteClusterProps, 'clusterId' | 'clusterName' | 'bio' | 'scopes' | 'clusterConfig'>): ClusterSpecInput {
  const spec: ClusterSpecInput = {
    id: props.clusterId,
    name: props.clusterName ?? `cluster-${props.clusterId}`,
    ...(props.bio ? { bio: props.bio } : {}),
    scopes: {
      idc: props.scopes.idc ?? '',
      location: props.scopes.location ?? '',
      cidrs: [...(props.scopes.cidrs ?? [])],
      hostnames: [...(props.scopes.hostnames ?? [])],
    },
    is_default: false,
    ...(props.clusterConfig ? { scheduler_cluster_config: props.clusterConfig } : {}),
  };
  const parsed = clusterSpecSchema.safeParse(spec);
  if (!parsed.success) {
    const lines = parsed.error.issues.map((i) => `  ${i.path.join('.') || '(root)'}: ${i.message}`);
    throw new Error(`cluster record for cluster ${props.clusterId} is invalid; fix these props:\n${lines.join('\n')}`);
  }
  return spec;
}

export interface ClusterRecordProps {
  /** Helm-style release name: objects are named `<release>-cluster-<id>`, `<release>-apply-cluster-<id>-<hash>`. */
  readonly release: string;
  /** Manager the Job applies the record to (its REST port). */
  readonly manager: ManagerEndpoint;
  /** The cluster record (cluster.yaml), e.g. from `clusterSpecOf`. */
  readonly spec: ClusterSpecInput;
  /** The Secret key holding a personal access token of scope `cluster` (made by the user; see docs/security.md). */
  readonly managerTokenSecret: SecretKeyRef;
  /**
   * Image of the Job (the manager image holds `dfmanager`).
   * @default - ghcr.io/dragonfly-ts/manager:<package version>
   */
  readonly image?: ImageRef;
  /**
   * Node labels the Job's pod must run on.
   * @default - any node
   */
  readonly nodeSelector?: Readonly<Record<string, string>>;
}

/** The declared cluster record: cluster.yaml ConfigMap and the apply-cluster Job (it logs in with the token Secret the user made). */
export class ClusterRecord extends Construct {
  public readonly configMapName: string;
  public readonly jobName: string;
  public readonly managerTokenSecret: SecretKeyRef;
  public readonly clusterYaml: string;

  constructor(scope: Construct, id: string, props: ClusterRecordProps) {
    super(scope, id);
    const labels = componentLabels(props.release, 'cluster-record');
    this.clusterYaml = stringify(props.spec, { lineWidth: 0 });
    // The Job's pod template is immutable: a changed spec gets a new Job name, so applying
    // the new manifest runs apply-cluster again (it upserts, so re-running is harmless).
    const suffix = shortHash(this.clusterYaml);
    this.configMapName = `${props.release}-cluster-${props.spec.id}`;
    this.jobName = `${props.release}-apply-cluster-${props.spec.id}-${suffix}`;

    assertSecretKeyRef(props.managerTokenSecret, 'managerTokenSecret');
    this.managerTokenSecret = props.managerTokenSecret;
    new k8s.KubeConfigMap(this, 'Config', { metadata: { name: this.configMapName, labels }, data: { 'cluster.yaml': this.clusterYaml } });
    new k8s.KubeJob(this, 'Resource', {
      metadata: { name: this.jobName, labels },
      spec: {
        backoffLimit: 10,
        template: {
          metadata: { labels },
          spec: {
            restartPolicy: 'OnFailure',
            automountServiceAccountToken: false,
            ...(props.nodeSelector && Object.keys(props.nodeSelector).length > 0 ? { nodeSelector: { ...props.nodeSelector } } : {}),
            initContainers: [waitFor('manager', props.manager.host, props.manager.restPort ?? MANAGER_REST_PORT)],
            containers: [
              {
                name: 'apply-cluster',
                image: imageOf('manager', props.image),
                imagePullPolicy: pullPolicyOf(props.image),
                command: ['dfmanager', 'apply-cluster', '--manager-url', managerRestUrl(props.manager), '--file', `${CONFIG_DIR}/cluster.yaml`],
                env: [{ name: 'DRAGONFLY_MANAGER_TOKEN', valueFrom: { secretKeyRef: { name: this.managerTokenSecret.name, key: this.managerTokenSecret.key } } }],
                resources: {
                  requests: { cpu: k8s.Quantity.fromString('0'), memory: k8s.Quantity.fromString('0') },
                  limits: { cpu: k8s.Quantity.fromString('1'), memory: k8s.Quantity.fromString('512Mi') },
                },
                volumeMounts: [{ name: 'cluster', mountPath: CONFIG_DIR, readOnly: true }],
              },
            ],
            volumes: [{ name: 'cluster', configMap: { name: this.configMapName } }],
          },
        },
      },
    });
  }
}

export class RemoteCluster extends DragonflyCluster {
  public readonly record: ClusterRecord;
  public readonly spec: ClusterSpecInput;

  constructor(scope: Construct, id: string, props: RemoteClusterProps) {
    const checked = RemoteCluster.check(props);
    const redis = props.externalRedis;
    const release = props.release ?? 'dragonfly';
    const redisSecret = redis?.passwordSecret ?? (redis?.password ? { name: `${release}-external-redis`, key: 'password' } : undefined);
    super(scope, id, {
      ...props,
      ...(redis
        ? { jobRedis: { addrs: redis.addrs, ...(redisSecret ? { passwordSecret: redisSecret } : {}), ...(redis.db !== undefined ? { db: redis.db } : {}), ...(redis.keyPrefix !== undefined ? { keyPrefix: redis.keyPrefix } : {}) } }
        : {}),
      clusterId: props.clusterId,
      hostScope: { idc: props.scopes.idc?.split('|')[0] || undefined, location: props.scopes.location || undefined },
    });
    this.spec = checked;
    if (redis?.password && !redis.passwordSecret) {
      new k8s.KubeSecret(this, 'ExternalRedis', {
        metadata: { name: redisSecret!.name, labels: componentLabels(this.release, 'scheduler') },
        type: 'Opaque',
        stringData: { password: redis.password },
      });
    }
    this.record = new ClusterRecord(this, 'Record', {
      release: this.release,
      manager: props.manager,
      spec: checked,
      managerTokenSecret: props.managerTokenSecret ?? { name: `${this.release}-manager-token`, key: 'token' },
      image: props.managerImage,
      nodeSelector: props.nodeSelector,
    });
  }

  /** Validates the props before any child is created; returns the cluster spec. */
  private static check(props: RemoteClusterProps): ClusterSpecInput {
    if (!props) throw new Error('RemoteCluster needs props: { manager, clusterId, scopes }');
    assertManagerEndpoint(props.manager, 'RemoteCluster');
    assertClusterId(props.clusterId, 'RemoteCluster');
    assertScopes(props.scopes);
    if (props.externalRedis) {
      if (!Array.isArray(props.externalRedis.addrs) || props.externalRedis.addrs.length === 0) throw new Error('externalRedis.addrs is empty; list the central Redis as "host:port" or drop externalRedis');
      if (props.externalRedis.password && props.externalRedis.passwordSecret) throw new Error('externalRedis: give password or passwordSecret, not both');
    }
    return clusterSpecOf(props);
  }
}
