/** Bad props fail at construction with a message that says how to fix them. */
import { Chart, Testing } from 'cdk8s';
import { CentralManager, DragonflyCluster, RemoteCluster, type RemoteClusterProps } from '../../../constructs';
import { newChart } from './helpers';

const MANAGER = { host: 'dragonfly-manager.cluster-a.svc.cluster.local' };
const remote = (over: Partial<RemoteClusterProps>): RemoteClusterProps => ({ manager: MANAGER, clusterId: 2, scopes: { idc: 'cluster-2' }, ...over });
const build = (props: RemoteClusterProps) => () => new RemoteCluster(newChart('b', 'cluster-b').chart, 'dragonfly', props);

describe('RemoteCluster', () => {
  test('without a manager address', () => {
    expect(build(remote({ manager: undefined }))).toThrow(/needs a manager address; set manager: \{ host:/);
    expect(build(remote({ manager: { host: '' } }))).toThrow(/needs a manager address/);
    expect(build(remote({ manager: { host: 'http://dragonfly-manager:65003' } }))).toThrow(/give the host only, without scheme or port/);
  });

  test('cluster id below 1 or not an integer', () => {
    expect(build(remote({ clusterId: 0 }))).toThrow(/cluster id must be an integer of 1 or more \(got 0\)/);
    expect(build(remote({ clusterId: -3 }))).toThrow(/got -3/);
    expect(build(remote({ clusterId: 2.5 }))).toThrow(/got 2.5/);
  });

  test('bad or duplicate scopes', () => {
    expect(build(remote({ scopes: { cidrs: ['10.0.0.0/33'] } }))).toThrow(/scopes\.cidrs\.0: expected a CIDR such as "10\.0\.0\.0\/8"/);
    expect(build(remote({ scopes: { cidrs: ['10.1.0.0/16', '10.1.0.0/16'] } }))).toThrow(/scopes\.cidrs lists "10\.1\.0\.0\/16" twice; remove the duplicate/);
    expect(build(remote({ scopes: { hostnames: ['kind-worker.*', 'kind-worker.*'] } }))).toThrow(/scopes\.hostnames lists "kind-worker\.\*" twice/);
    expect(build(remote({ scopes: { hostnames: ['(unclosed'] } }))).toThrow(/expected a valid regular expression/);
    expect(build(remote({ scopes: {} }))).toThrow(/scopes are empty; set at least one of idc, location, cidrs or hostnames/);
    expect(build(remote({ scopes: { idc: 'a||b' } }))).toThrow(/empty entry/);
    expect(build(remote({ scopes: { idc: 'a|a' } }))).toThrow(/lists an IDC twice/);
  });

  test('bad cluster name', () => {
    expect(build(remote({ clusterName: 'Cluster_B' }))).toThrow(/name: expected a lowercase DNS label such as "cluster-b"/);
  });
});

describe('DragonflyCluster', () => {
  const cluster = (props: Partial<ConstructorParameters<typeof DragonflyCluster>[2]>, chart: Chart = newChart('a', 'a').chart) => () =>
    new DragonflyCluster(chart, 'dragonfly', { manager: MANAGER, ...props });

  test('port clash between proxy, upload, gRPC, metrics and pprof on hostNetwork', () => {
    expect(cluster({ dfdaemon: { ports: { proxy: 65002 } } })).toThrow(
      /dfdaemon ports clash on the host network: proxy and upload both use 65002; give each a different port/,
    );
    expect(cluster({ dfdaemon: { ports: { metrics: 65000 } } })).toThrow(/grpc and metrics both use 65000/);
    expect(cluster({ dfdaemon: { config: { pprofPort: 8000 } } })).toThrow(/metrics and pprofPort \(config\) both use 8000/);
    expect(cluster({ dfdaemon: { ports: { proxy: 0 } } })).toThrow(/ports\.proxy must be a port in 1\.\.65535 \(got 0\)/);
  });

  test('config keys that contradict the wiring name the prop to use instead', () => {
    expect(cluster({ scheduler: { config: { manager: { schedulerClusterID: 5 } } } })).toThrow(
      /scheduler config key "manager\.schedulerClusterID" is 5 but the construct sets it to 1 from the manager \/ clusterId props; remove the key/,
    );
    expect(cluster({ dfdaemon: { config: { proxy: { tcpListen: { port: 1234 } } } } })).toThrow(/"proxy\.tcpListen\.port" .* from the ports prop/);
  });

  test('config the program would reject fails at synth time with the key path', () => {
    expect(cluster({ seedPeer: { config: { download: { concurrentPieceCount: 0 } } } })).toThrow(/seed peer config is invalid; fix these keys[\s\S]*download\.concurrentPieceCount/);
    expect(cluster({ scheduler: { config: { shceduler: {} } as never } })).toThrow(/shceduler: .*unknown key/);
  });

  test('bad registries, node selectors, replicas, release and missing namespace', () => {
    expect(cluster({ registries: ['ghcr.io'] })).toThrow(/registry "ghcr\.io" is not a URL; write it with its scheme/);
    expect(cluster({ registries: ['https://docker.io', 'https://index.docker.io'] })).toThrow(/registries lists docker\.io twice/);
    expect(cluster({ nodeSelector: { 'bad key!': 'a' } })).toThrow(/not a valid Kubernetes label key/);
    expect(cluster({ scheduler: { replicas: 0 } })).toThrow(/scheduler replicas must be an integer of 1 or more/);
    expect(cluster({ release: 'Dragonfly' })).toThrow(/lowercase DNS label/);
    expect(cluster({ seedPeer: { storageSize: '100 GB' } })).toThrow(/write it like "100Gi"/);
    expect(cluster({}, new Chart(Testing.app(), 'nons'))).toThrow(/needs a namespace to build DNS names; create its chart with new Chart\(app, id, \{ namespace:/);
  });
});

describe('CentralManager', () => {
  const ROOT_SECRET = { name: 'dragonfly-root-password', key: 'password' };
  const manager = (props: ConstructorParameters<typeof CentralManager>[2]) => () => new CentralManager(newChart('a', 'a').chart, 'manager', { rootPasswordSecret: ROOT_SECRET, ...props });

  test('console NodePort outside the NodePort range', () => {
    expect(manager({ console: { nodePort: 8080 } })).toThrow(/outside the NodePort range 30000-32767; pick one such as 30950/);
  });

  test('root\'s password: a Secret the user names or demoCredentials, exactly one', () => {
    expect(manager({ rootPasswordSecret: undefined })).toThrow(/CentralManager needs root's password: set rootPasswordSecret: \{ name, key \}.*or demoCredentials: true/);
    expect(manager({ demoCredentials: true })).toThrow(/give rootPasswordSecret or demoCredentials: true, not both/);
    expect(manager({ rootPasswordSecret: { name: 'Bad_Name', key: 'password' } })).toThrow(/rootPasswordSecret\.name "Bad_Name" is not a Secret name/);
    expect(manager({ config: { auth: { rootPassword: 'in-a-configmap' } } })).toThrow(/config\.auth\.rootPassword would put root's password in a ConfigMap; use rootPasswordSecret/);
    expect(manager({ rootPasswordSecret: { name: 'ok', key: 'a/b' } })).toThrow(/rootPasswordSecret\.key "a\/b" is not a Secret key/);
  });

  test('demoCredentials: a Secret with the demo password, wired the same way, and a warning at synthesis', () => {
    const warn = jest.spyOn(console, 'warn').mockImplementation(() => undefined);
    try {
      const { chart } = newChart('a', 'a');
      new CentralManager(chart, 'manager', { demoCredentials: true });
      expect(warn).toHaveBeenCalledWith(expect.stringMatching(/demoCredentials: the manager's root user has the well-known password "dragonfly"; use rootPasswordSecret/));
      const text = JSON.stringify(Testing.synth(chart));
      expect(text).toContain('"name":"DFMANAGER__auth__rootPassword","valueFrom":{"secretKeyRef":{"key":"password","name":"dragonfly-manager-credentials"}}');
    } finally {
      warn.mockRestore();
    }
  });

  test('the manager takes root\'s password from the named Secret at every start (auth.rootPassword by env); no password in the manifests', () => {
    const { chart } = newChart('a', 'a');
    new CentralManager(chart, 'manager', { rootPasswordSecret: ROOT_SECRET });
    const objects = Testing.synth(chart) as { kind: string; metadata: { name: string } }[];
    const text = JSON.stringify(objects);
    expect(text).toContain('"name":"DFMANAGER__auth__rootPassword","valueFrom":{"secretKeyRef":{"key":"password","name":"dragonfly-root-password"}}');
    expect(objects.some((o) => o.kind === 'Secret' && o.metadata.name === 'dragonfly-manager-credentials')).toBe(false);
  });

  test('external datastores without an address', () => {
    expect(manager({ externalRedis: { addrs: [] } })).toThrow(/externalRedis\.addrs is empty/);
    expect(manager({ externalMysql: { host: '', passwordSecret: { name: 's', key: 'k' } } })).toThrow(/externalMysql\.host is empty/);
  });

  test('external datastores replace the in-cluster ones and are referenced by Secret', () => {
    const { chart } = newChart('a', 'a');
    new CentralManager(chart, 'manager', {
      rootPasswordSecret: ROOT_SECRET,
      externalMysql: { host: 'mysql.db.svc', passwordSecret: { name: 'mysql-creds', key: 'password' } },
      externalRedis: { addrs: ['redis.db.svc:6379'], passwordSecret: { name: 'redis-creds', key: 'password' } },
    });
    const objects = Testing.synth(chart) as { kind: string; metadata: { name: string } }[];
    expect(objects.some((o) => o.metadata.name === 'dragonfly-mysql' || o.metadata.name === 'dragonfly-redis-master')).toBe(false);
    const text = JSON.stringify(objects);
    expect(text).toContain('"name":"DFMANAGER__database__mysql__password","valueFrom":{"secretKeyRef":{"key":"password","name":"mysql-creds"}}');
    expect(text).toContain('"name":"DFMANAGER__database__redis__password","valueFrom":{"secretKeyRef":{"key":"password","name":"redis-creds"}}');
  });
});

test('a library user can build N remote clusters in a loop, one chart each', () => {
  const app = Testing.app();
  const central = new Chart(app, 'central', { namespace: 'dragonfly' });
  const mgr = new CentralManager(central, 'manager', { rootPasswordSecret: { name: 'dragonfly-root-password', key: 'password' } });
  new DragonflyCluster(central, 'cluster', { manager: mgr.endpoint });
  const ids = ['eu', 'us', 'ap'].map((region, i) => {
    const chart = new Chart(app, `remote-${region}`, { namespace: 'dragonfly' });
    return new RemoteCluster(chart, 'cluster', { manager: mgr.endpoint, clusterId: i + 2, scopes: { idc: region } }).spec.id;
  });
  expect(ids).toEqual([2, 3, 4]);
  expect(app.charts.map((c) => Testing.synth(c).filter((o: { kind: string }) => o.kind === 'Job').length)).toEqual([0, 1, 1, 1]);
});
