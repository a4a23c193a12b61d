/**
 * Ingress NetworkPolicies for a central manager and for a Dragonfly cluster: each component's
 * pods admit exactly the callers the protocols need, nothing else (a pod selected by a policy
 * with an empty rule list takes no ingress at all).
 *
 * What a NetworkPolicy can and cannot express, and why the props are shaped so:
 * - dfdaemon runs with hostNetwork: policies do not apply to its ports (protect them with a host
 *   firewall), and its calls leave from the node's address, so they are admitted by `nodeCidrs`
 *   (ipBlock), not by labels. Any hostNetwork process on those nodes is admitted the same way.
 * - Traffic from the node a pod runs on (kubelet probes) is always admitted by Kubernetes.
 * - NodePort traffic arrives from the client's address (externalTrafficPolicy Local) or SNATed
 *   to a node's (Cluster): the REST rule admits `restClientCidrs`, minus `podCidrs`, so no pod but
 *   an ingress controller reaches the REST API.
 * - Another Dragonfly cluster in this Kubernetes cluster is admitted by namespace and component
 *   labels; one in another Kubernetes cluster only by the addresses its traffic arrives from
 *   (its nodes' or NAT gateway's), as `remoteClusters.cidrs`.
 * Egress is not restricted (the seed peers go back to origins anywhere).
 */
import { k8s } from 'cdk8s-plus-28';
import { Construct } from 'constructs';
import { componentLabels } from './_util';
import { MYSQL_PORT, REDIS_PORT } from './datastores';
import { DFDAEMON_GRPC_PORT, DFDAEMON_UPLOAD_PORT, MANAGER_GRPC_PORT, MANAGER_REST_PORT, SCHEDULER_GRPC_PORT } from './endpoints';
import { JAEGER_OTLP_HTTP_PORT } from './jaeger';

/** The addresses a cluster's traffic comes from, for the ipBlock rules. */
export interface NetworkPolicyAddresses {
  /**
   * Addresses of this cluster's nodes (e.g. kind's Docker network `172.18.0.0/16`): the per-node
   * dfdaemons (hostNetwork) call the manager, scheduler and seed peers from them.
   */
  readonly nodeCidrs: readonly string[];
  /**
   * The pod network (e.g. kind's `10.244.0.0/16`), cut out of `restClientCidrs` so pods cannot use
   * the REST rule meant for the NodePort/ingress.
   */
  readonly podCidrs: readonly string[];
}

/** NetworkPolicy settings of a CentralManager. */
export interface ManagerNetworkPolicyOptions extends NetworkPolicyAddresses {
  /**
   * Who may call the REST API and console through the NodePort: client address ranges.
   * @default ["0.0.0.0/0"] (any address outside podCidrs)
   */
  readonly restClientCidrs?: readonly string[];
  /**
   * Ingress-controller pods that forward to the REST API, by namespace and pod labels.
   * @default - none
   */
  readonly ingressController?: { readonly namespace: string; readonly podLabels: Readonly<Record<string, string>> };
  /**
   * Other Dragonfly clusters served by this manager: `namespaces` in this Kubernetes cluster
   * (their schedulers, seed peers and apply-cluster Jobs are admitted by labels), `cidrs` for
   * clusters elsewhere (their traffic reaches the NodePort/external address from these ranges:
   * REST for the Job, gRPC for schedulers and peers, Redis for schedulers).
   * @default - none
   */
  readonly remoteClusters?: { readonly namespaces?: readonly string[]; readonly cidrs?: readonly string[] };
}

/** NetworkPolicy settings of a DragonflyCluster: where its nodes are. */
export type ClusterNetworkPolicyOptions = Pick<NetworkPolicyAddresses, 'nodeCidrs'>;

type Peer = k8s.NetworkPolicyPeer;

function assertCidrs(cidrs: readonly string[] | undefined, what: string, required: boolean): void {
  if (required && (!cidrs || cidrs.length === 0)) throw new Error(`networkPolicy.${what} is empty; list the address ranges, e.g. ["172.18.0.0/16"]`);
  for (const c of cidrs ?? []) {
    const m = /^(\d{1,3}(?:\.\d{1,3}){3})\/(\d{1,2})$/.exec(c) ?? /^([0-9a-fA-F:]+)\/(\d{1,3})$/.exec(c);
    const v4 = m !== null && m[1].includes('.');
    if (!m || (v4 && (m[1].split('.').some((o) => Number(o) > 255) || Number(m[2]) > 32)) || (!v4 && Number(m[2]) > 128)) {
      throw new Error(`networkPolicy.${what} entry "${c}" is not a CIDR; write it like "10.244.0.0/16"`);
    }
  }
}

const tcp = (...ports: number[]): k8s.NetworkPolicyPort[] => ports.map((port) => ({ protocol: 'TCP', port: k8s.IntOrString.fromNumber(port) }));
const ipBlocks = (cidrs: readonly string[] = [], except: readonly string[] = []): Peer[] =>
  cidrs.map((cidr) => ({ ipBlock: { cidr, ...(except.length > 0 ? { except: except.filter((e) => e.includes(':') === cidr.includes(':')) } : {}) } }));
/** Pods of a component in this namespace (`namespace` unset) or in another one. */
const pods = (release: string, component: string, namespace?: string): Peer => ({
  podSelector: { matchLabels: namespace ? { app: 'dragonfly', component } : componentLabels(release, component) },
  ...(namespace ? { namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': namespace } } } : {}),
});

function policy(scope: Construct, id: string, release: string, component: string, ingress: k8s.NetworkPolicyIngressRule[]): void {
  new k8s.KubeNetworkPolicy(scope, id, {
    metadata: { name: `${release}-${component}`, labels: componentLabels(release, component) },
    spec: { podSelector: { matchLabels: componentLabels(release, component) }, policyTypes: ['Ingress'], ingress: ingress.filter((r) => (r.from?.length ?? 0) > 0) },
  });
}

/** Policies of the manager, its MySQL and its Redis. */
export class ManagerNetworkPolicies extends Construct {
  constructor(scope: Construct, id: string, props: ManagerNetworkPolicyOptions & { release: string; inClusterMysql: boolean; inClusterRedis: boolean }) {
    super(scope, id);
    assertCidrs(props.nodeCidrs, 'nodeCidrs', true);
    assertCidrs(props.podCidrs, 'podCidrs', true);
    assertCidrs(props.restClientCidrs, 'restClientCidrs', false);
    assertCidrs(props.remoteClusters?.cidrs, 'remoteClusters.cidrs', false);
    const { release } = props;
    const remoteNamespaces = props.remoteClusters?.namespaces ?? [];
    const remoteCidrs = ipBlocks(props.remoteClusters?.cidrs);
    const inEveryCluster = (component: string) => [pods(release, component), ...remoteNamespaces.map((ns) => pods(release, component, ns))];
    const ingressController: Peer[] = props.ingressController
      ? [{ podSelector: { matchLabels: { ...props.ingressController.podLabels } }, namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': props.ingressController.namespace } } }]
      : [];

    policy(this, 'Manager', release, 'manager', [
      {
        // The REST API and console: users through the NodePort or an ingress, and the apply-cluster Jobs.
        ports: tcp(MANAGER_REST_PORT),
        from: [...ipBlocks(props.restClientCidrs ?? ['0.0.0.0/0'], props.podCidrs), ...ingressController, ...remoteNamespaces.map((ns) => pods(release, 'cluster-record', ns)), ...remoteCidrs],
      },
      {
        // gRPC: schedulers and seed peers (pods), dfdaemons (node addresses), other clusters.
        ports: tcp(MANAGER_GRPC_PORT),
        from: [...inEveryCluster('scheduler'), ...inEveryCluster('seed-peer'), ...ipBlocks(props.nodeCidrs), ...remoteCidrs],
      },
    ]);
    if (props.inClusterMysql) policy(this, 'Mysql', release, 'mysql', [{ ports: tcp(MYSQL_PORT), from: [pods(release, 'manager')] }]);
    if (props.inClusterRedis) {
      policy(this, 'Redis', release, 'redis', [{ ports: tcp(REDIS_PORT), from: [pods(release, 'manager'), ...inEveryCluster('scheduler'), ...remoteCidrs] }]);
    }
  }
}

/** Policies of a cluster's scheduler, seed peers and Jaeger (the dfdaemons are hostNetwork; the apply-cluster Job listens on nothing). */
export class ClusterNetworkPolicies extends Construct {
  constructor(scope: Construct, id: string, props: ClusterNetworkPolicyOptions & { release: string; jaeger: boolean }) {
    super(scope, id);
    assertCidrs(props.nodeCidrs, 'nodeCidrs', true);
    const { release } = props;
    const dfdaemons = ipBlocks(props.nodeCidrs);
    // Peers find the scheduler through the manager; seed peers announce themselves to it too.
    policy(this, 'Scheduler', release, 'scheduler', [{ ports: tcp(SCHEDULER_GRPC_PORT), from: [...dfdaemons, pods(release, 'seed-peer')] }]);
    policy(this, 'SeedPeer', release, 'seed-peer', [
      // Pieces and piece-availability sync from the peers; the scheduler's back-to-source trigger.
      { ports: tcp(DFDAEMON_UPLOAD_PORT), from: dfdaemons },
      { ports: tcp(DFDAEMON_GRPC_PORT), from: [...dfdaemons, pods(release, 'scheduler')] },
    ]);
    if (props.jaeger) {
      policy(this, 'Jaeger', release, 'jaeger', [
        { ports: tcp(JAEGER_OTLP_HTTP_PORT), from: [...['manager', 'scheduler', 'seed-peer'].map((c) => pods(release, c)), ...dfdaemons] },
      ]);
    }
  }
}
