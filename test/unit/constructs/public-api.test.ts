/**
 * The construct library's entry point exports its public API and nothing else: shared helpers
 * (config rendering, wiring, validation) are importable from their modules by this repository's
 * code and tests, but are not part of the published package.
 */
import * as api from '../../../constructs';

describe('constructs/index.ts', () => {
  it('exports exactly the public runtime API', () => {
    expect(Object.keys(api).sort()).toEqual(
      [
        'CentralManager',
        'ClusterRecord',
        'ConfigError',
        'DASHBOARDS',
        'DEFAULT_IMAGE_REGISTRY',
        'DEFAULT_IMAGE_TAG',
        'DEFAULT_REGISTRIES',
        'DFDAEMON_GRPC_PORT',
        'DFDAEMON_PROXY_PORT',
        'DFDAEMON_UPLOAD_PORT',
        'Dfdaemon',
        'DragonflyCluster',
        'DragonflyMonitoring',
        'InClusterMysql',
        'InClusterRedis',
        'JAEGER_OTLP_GRPC_PORT',
        'JAEGER_OTLP_HTTP_PORT',
        'JAEGER_QUERY_PORT',
        'Jaeger',
        'MANAGER_GRPC_PORT',
        'MANAGER_REST_PORT',
        'METRICS_PORT',
        'MYSQL_PORT',
        'REDIS_PORT',
        'RemoteCluster',
        'SCHEDULER_GRPC_PORT',
        'Scheduler',
        'SeedPeer',
        'Workload',
        'fromHelmValues',
        'jaegerCollectorUrl',
      ].sort(),
    );
  });

  it('keeps the internals out', () => {
    for (const internal of ['dfdaemonWiring', 'DATA_DIR', 'assertRelease', 'assertClusterId', 'imageOf', 'pullPolicyOf', 'renderConfig', 'clusterSpecOf', 'managerGrpcAddr', 'parseConfig', 'resources', 'nonRootSecurityContext', 'rootSecurityContext', 'hostKeysOf', 'RUN_DIR', 'IMAGE_UID', 'waitFor']) {
      expect(api).not.toHaveProperty(internal);
    }
  });
});
