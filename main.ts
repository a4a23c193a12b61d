/**
 * The cdk8s app: the two-cluster topology of the seed's multi-cluster walkthrough.
 * `npm run synth` writes dist/cluster-a.k8s.yaml and dist/cluster-b.k8s.yaml
 * (outdir from CDK8S_OUTDIR, as `cdk8s synth` sets it, else "dist").
 */
import { ApiObject, App, Chart, JsonPatch } from 'cdk8s';
import { k8s } from 'cdk8s-plus-28';
import { CentralManager, DragonflyCluster, RemoteCluster, jaegerCollectorUrl } from './constructs';
import { DOCUMENTED_DEFAULT_PASSWORD } from './constructs/datastores';

/**
 * Seed 000's kind cluster: pods on kind's default pod subnet, nodes on Docker's `kind` network
 * (check yours with `docker network inspect kind`). Both "clusters" are node groups of one
 * kind cluster, so their nodes share one range: a policy cannot tell their dfdaemons apart.
 */
const KIND_POD_CIDRS = ['10.244.0.0/16'];
const KIND_NODE_CIDRS = ['172.18.0.0/16'];

/** Keys the seed sets on every component: debug logs and the pprof port. */
const SEED_DEBUG = { verbose: true, pprofPort: 18066 } as const;

/** A Namespace object in a namespaced chart; the chart's namespace must not be stamped on it. */
function namespaceObject(chart: Chart, name: string): void {
  const ns = new k8s.KubeNamespace(chart, 'namespace', { metadata: { name } });
  ApiObject.of(ns).addJsonPatch(JsonPatch.remove('/metadata/namespace'));
}

export function buildSeedTopology(app: App): { clusterA: Chart; clusterB: Chart } {
  // Cluster A: the central manager (with MySQL and Redis) and Dragonfly cluster 1 (the default cluster).
  const clusterA = new Chart(app, 'cluster-a', { namespace: 'cluster-a' });
  namespaceObject(clusterA, 'cluster-a');
  const nodeSelectorA = { cluster: 'a' };
  const manager = new CentralManager(clusterA, 'manager', {
    // The seed's console walkthrough signs in as root / dragonfly; a real cluster names a Secret (rootPasswordSecret).
    demoCredentials: true,
    networkPolicy: { podCidrs: KIND_POD_CIDRS, nodeCidrs: KIND_NODE_CIDRS, remoteClusters: { namespaces: ['cluster-b'] } },
    nodeSelector: nodeSelectorA,
    config: SEED_DEBUG,
    console: { nodePort: 30950 },
    jaegerUrl: jaegerCollectorUrl('cluster-a'),
  });
  new DragonflyCluster(clusterA, 'dragonfly', {
    manager: manager.endpoint,
    jobRedis: manager.jobRedis,
    nodeSelector: nodeSelectorA,
    registries: ['https://ghcr.io'],
    jaeger: true,
    scheduler: { config: SEED_DEBUG },
    seedPeer: { config: SEED_DEBUG },
    dfdaemon: { config: SEED_DEBUG },
    networkPolicy: { nodeCidrs: KIND_NODE_CIDRS },
  });

  // Cluster B: scheduler, seed peer and peers only, registered as cluster 2 with the manager in cluster A.
  const clusterB = new Chart(app, 'cluster-b', { namespace: 'cluster-b' });
  namespaceObject(clusterB, 'cluster-b');
  new RemoteCluster(clusterB, 'dragonfly', {
    manager: { host: 'dragonfly-manager.cluster-a.svc.cluster.local', grpcPort: 65003, restPort: 8080 },
    clusterId: 2,
    scopes: { idc: 'cluster-2' },
    // The seed's externalRedis: jobs (preheat, ...) reach this cluster's scheduler through cluster A's Redis.
    externalRedis: { addrs: ['dragonfly-redis-master.cluster-a.svc.cluster.local:6379'], password: DOCUMENTED_DEFAULT_PASSWORD },
    nodeSelector: { cluster: 'b' },
    registries: ['https://ghcr.io'],
    jaeger: true,
    // A personal access token of scope `cluster`, made by root in cluster A's console and stored here by the user:
    // kubectl -n cluster-b create secret generic dragonfly-manager-token --from-literal=token=<token>
    managerTokenSecret: { name: 'dragonfly-manager-token', key: 'token' },
    networkPolicy: { nodeCidrs: KIND_NODE_CIDRS },
  });
  return { clusterA, clusterB };
}

if (require.main === module) {
  const app = new App({ outdir: process.env.CDK8S_OUTDIR ?? 'dist' });
  buildSeedTopology(app);
  app.synth();
}
