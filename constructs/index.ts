// The declarations name Node's types (config loading takes a NodeJS.ProcessEnv; zod's use URL):
// pull them in for apps whose tsconfig does not list "node" in "types".
/// <reference types="node" preserve="true" />
/**
 * cdk8s construct library for Dragonfly-shaped P2P distribution on Kubernetes
 * (published as `@dragonfly-ts/constructs`).
 *
 * ```ts
 * const central = new Chart(app, 'central', { namespace: 'dragonfly' });
 * // root's password comes from a Secret you create (kubectl create secret generic dragonfly-root-password --from-literal=password=...).
 * const manager = new CentralManager(central, 'manager', { rootPasswordSecret: { name: 'dragonfly-root-password', key: 'password' } });
 * new DragonflyCluster(central, 'cluster', { manager: manager.endpoint });
 * for (const [i, region] of ['eu', 'us'].entries()) {
 *   const chart = new Chart(app, `remote-${region}`, { namespace: 'dragonfly' });
 *   // Registers itself with a personal access token of scope `cluster` from Secret dragonfly-manager-token (key `token`).
 *   new RemoteCluster(chart, 'cluster', { manager: manager.endpoint, clusterId: i + 2, scopes: { idc: region } });
 * }
 * ```
 *
 * This file is the public API: each name is listed on purpose. Helpers the constructs share
 * (config rendering, wiring, validation) stay in their modules.
 */
export { CentralManager, type CentralManagerProps, type ConsoleNodePort, type ExternalMysql, type ExternalRedis } from './central-manager';
export { DragonflyCluster, DEFAULT_REGISTRIES, type DragonflyClusterProps } from './dragonfly-cluster';
export { RemoteCluster, ClusterRecord, type RemoteClusterProps, type ClusterRecordProps, type ClusterScopes, type RemoteRedis } from './remote-cluster';
export { type ManagerNetworkPolicyOptions, type ClusterNetworkPolicyOptions, type NetworkPolicyAddresses } from './network-policies';
export { fromHelmValues, type HelmImportOptions, type HelmImportResult, type UnmappedValue } from './helm-values';
export { Scheduler, type SchedulerOptions, type SchedulerProps, type JobRedis } from './scheduler';
export { SeedPeer, type SeedPeerOptions, type SeedPeerProps } from './seed-peer';
export { Dfdaemon, type DfdaemonOptions, type DfdaemonProps, type DfdaemonPorts, type DfinitOptions } from './dfdaemon';
export { DragonflyMonitoring, DASHBOARDS, type DragonflyMonitoringOptions, type DragonflyMonitoringProps, type MonitoredComponent } from './monitoring';
export { Jaeger, jaegerCollectorUrl, JAEGER_OTLP_GRPC_PORT, JAEGER_OTLP_HTTP_PORT, JAEGER_QUERY_PORT, type JaegerProps } from './jaeger';
export { InClusterMysql, InClusterRedis, MYSQL_PORT, REDIS_PORT, type InClusterMysqlProps, type InClusterRedisProps } from './datastores';
export {
  DFDAEMON_GRPC_PORT,
  DFDAEMON_PROXY_PORT,
  DFDAEMON_UPLOAD_PORT,
  MANAGER_GRPC_PORT,
  MANAGER_REST_PORT,
  METRICS_PORT,
  SCHEDULER_GRPC_PORT,
  type HostScope,
  type ManagerEndpoint,
} from './endpoints';
export type { TlsProps } from './tls';
export { DEFAULT_IMAGE_REGISTRY, DEFAULT_IMAGE_TAG, type DragonflyComponentImage, type ImageRef } from './images';
export type { SecretKeyRef } from './_util';
export { Workload, type WorkloadOptions, type PlacementOptions, type ResourceSettings, type ProbeOptions, type ProbeTimings, type DisruptionBudget } from './workload';
// The programs' config input types (what `config:` props accept) and the error a rejected config throws.
export { ConfigError, type ConfigProblem } from '../services/common/config';
export type { ClusterSpecInput, DfdaemonConfigInput, DfinitConfigInput, ManagerConfigInput, SchedulerConfigInput } from '../services/common/config';
