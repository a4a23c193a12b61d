/** Objects from the optional paths (not in main.ts) are valid Kubernetes too. */
import { CentralManager, DragonflyCluster, RemoteCluster, fromHelmValues } from '../../../constructs';
import { fixture, newChart, schemaError, synth } from './helpers';

test('external datastores, existing Secrets, containerd restart, custom images and ports validate', () => {
  const { chart } = newChart('variants', 'dragonfly-system');
  const manager = new CentralManager(chart, 'manager', {
    replicas: 3,
    externalMysql: { host: 'mysql.db.svc.cluster.local', port: 3307, passwordSecret: { name: 'mysql-creds', key: 'password' } },
    externalRedis: { addrs: ['redis.db.svc.cluster.local:6380'], db: 3 },
    rootPasswordSecret: { name: 'root-creds', key: 'password' },
    image: { repository: 'registry.local:5000/dragonfly/manager', tag: 'dev', pullPolicy: 'Always' },
    resources: { cpuRequest: '250m', memoryRequest: '512Mi', cpuLimit: '2', memoryLimit: '4Gi' },
    metricsService: false,
  });
  new DragonflyCluster(chart, 'dragonfly', {
    manager: manager.endpoint,
    registries: ['https://docker.io', 'https://ghcr.io', 'http://registry.local:5000'],
    seedPeer: { replicas: 2, storageSize: '20Gi', storageClassName: 'local-path' },
    dfdaemon: { ports: { grpc: 4000, proxy: 4001, upload: 4002, metrics: 4003 }, dfinit: { restartContainerd: true, containerdConfigDir: '/etc/containerd' } },
  });
  const other = newChart('remote', 'edge');
  new RemoteCluster(other.chart, 'dragonfly', {
    manager: manager.endpoint,
    clusterId: 7,
    scopes: { location: 'asia|cn|bj', cidrs: ['10.20.0.0/16', 'fd00::/8'], hostnames: ['^edge-.*'] },
    managerTokenSecret: { name: 'manager-login', key: 'token' },
    dfdaemon: { dfinit: { enable: false } },
  });
  const objects = [...synth(chart), ...synth(other.chart)];
  expect(objects.length).toBeGreaterThan(20);
  expect(objects.map(schemaError).filter(Boolean)).toEqual([]);
  const ds = objects.find((o) => o.kind === 'DaemonSet' && o.metadata.namespace === 'dragonfly-system');
  expect(JSON.stringify(ds)).toContain('"privileged":true');
});

test.each(['charts-config-cluster-a.yaml', 'charts-config-cluster-b.yaml', 'charts-config.yaml'])('objects imported from %s validate', (file) => {
  const { chart } = newChart('imported', 'ns');
  fromHelmValues(chart, fixture(file));
  expect(synth(chart).map(schemaError).filter(Boolean)).toEqual([]);
});
