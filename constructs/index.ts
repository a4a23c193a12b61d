/**
 * cdk8s construct library for Dragonfly-shaped P2P distribution on Kubernetes.
 *
 * ```ts
 * const central = new Chart(app, 'central', { namespace: 'dragonfly' });
 * const manager = new CentralManager(central, 'manager');
 * new DragonflyCluster(central, 'cluster', { manager: manager.endpoint });
 * for (const [i, region] of ['eu', 'us'].entries()) {
 *   const chart = new Chart(app, `remote-${region}`, { namespace: 'dragonfly' });
 *   new RemoteCluster(chart, 'cluster', { manager: manager.endpoint, clusterId: i + 2, scopes: { idc: region } });
 * }
 * ```
 */
export * from './endpoints';
export * from './images';
export * from './scheduler';
export * from './seed-peer';
export * from './dfdaemon';
export * from './jaeger';
export * from './datastores';
export * from './dragonfly-cluster';
export * from './central-manager';
export * from './remote-cluster';
export * from './helm-values';
export type { ResourceSettings, SecretKeyRef } from './_util';
