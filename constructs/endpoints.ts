/** Addresses one part of a topology hands to another. */

/** Where a manager is reached: by the schedulers and peers (gRPC) and by apply-cluster Jobs (REST). */
export interface ManagerEndpoint {
  /** DNS name or IP, e.g. "dragonfly-manager.cluster-a.svc.cluster.local". */
  readonly host: string;
  /**
   * Manager gRPC port.
   * @default 65003
   */
  readonly grpcPort?: number;
  /**
   * Manager REST port.
   * @default 8080
   */
  readonly restPort?: number;
}

/** IDC and location a cluster's hosts report (`host.idc`, `host.location`); the manager's searcher matches them against cluster scopes. */
export interface HostScope {
  /**
   * IDC reported by the scheduler, seed peers and peers.
   * @default - empty
   */
  readonly idc?: string;
  /**
   * Location reported, "|"-separated from broad to narrow (e.g. "asia|cn|bj").
   * @default - empty
   */
  readonly location?: string;
}

/** The `host` config keys for a scope, or undefined when it is empty. */
export function hostKeysOf(scope: HostScope | undefined): { idc?: string; location?: string } | undefined {
  const host: { idc?: string; location?: string } = {};
  if (scope?.idc) host.idc = scope.idc;
  if (scope?.location) host.location = scope.location;
  return Object.keys(host).length > 0 ? host : undefined;
}

export const MANAGER_GRPC_PORT = 65003;
export const MANAGER_REST_PORT = 8080;
export const SCHEDULER_GRPC_PORT = 8002;
export const METRICS_PORT = 8000;
export const DFDAEMON_GRPC_PORT = 65000;
export const DFDAEMON_PROXY_PORT = 65001;
export const DFDAEMON_UPLOAD_PORT = 65002;

/** "host:grpcPort" as scheduler.yaml `manager.addr` and dfdaemon.yaml `netAddrs[].addr` want it. */
export function managerGrpcAddr(endpoint: ManagerEndpoint): string {
  return `${endpoint.host}:${endpoint.grpcPort ?? MANAGER_GRPC_PORT}`;
}

/** "http://host:restPort" as `dfmanager apply-cluster --manager-url` wants it. */
export function managerRestUrl(endpoint: ManagerEndpoint): string {
  return `http://${endpoint.host}:${endpoint.restPort ?? MANAGER_REST_PORT}`;
}

/** Throws a how-to-fix error for a missing or malformed manager endpoint. */
export function assertManagerEndpoint(endpoint: ManagerEndpoint | undefined, what: string): asserts endpoint is ManagerEndpoint {
  if (!endpoint || typeof endpoint.host !== 'string' || endpoint.host.trim() === '') {
    throw new Error(
      `${what} needs a manager address; set manager: { host: 'dragonfly-manager.<namespace>.svc.cluster.local' } ` +
        '(or pass centralManager.endpoint from a CentralManager)',
    );
  }
  if (!/^[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?$/.test(endpoint.host)) {
    throw new Error(`${what} manager host "${endpoint.host}" is not a DNS name or IPv4 address; give the host only, without scheme or port`);
  }
  for (const [name, port] of [['grpcPort', endpoint.grpcPort], ['restPort', endpoint.restPort]] as const) {
    if (port !== undefined && (!Number.isInteger(port) || port < 1 || port > 65535)) {
      throw new Error(`${what} manager ${name} must be a port in 1..65535 (got ${port})`);
    }
  }
}
