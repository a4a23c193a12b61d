/**
 * The cdk8s app: the two-cluster topology of the seed's multi-cluster walkthrough.
 * `npm run synth` writes dist/cluster-a.k8s.yaml and dist/cluster-b.k8s.yaml
 * (outdir from CDK8S_OUTDIR, as `cdk8s synth` sets it, else "dist").
 */
import { ApiObject, App, Chart, JsonPatch } from 'cdk8s';
import { k8s } from 'cdk8s-plus-28';
import { CentralManager, DragonflyCluster, RemoteCluster, jaegerCollectorUrl } from './constructs';
import { DOCUMENTED_DEFAULT_PASSWORD } from './constructs/datastores';

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
  });
  return { clusterA, clusterB };
}

if (require.main === module) {
  const app = new App({ outdir: process.env.CDK8S_OUTDIR ?? 'dist' });
  buildSeedTopology(app);
  app.synth();
}
