/** Seed chart values imported through fromHelmValues build the same objects as hand-written constructs. */
import { CentralManager, DragonflyCluster, RemoteCluster, fromHelmValues, jaegerCollectorUrl } from '../../../constructs';
import { fixture, newChart, synth, type KubeObject } from './helpers';

const SEED_DEBUG = { verbose: true, pprofPort: 18066 };

function sorted(objects: KubeObject[]): KubeObject[] {
  return [...objects].sort((x, y) => `${x.kind}/${x.metadata.name}`.localeCompare(`${y.kind}/${y.metadata.name}`));
}

const imageKeys = (components: string[]) => components.flatMap((c) => [`${c}.image`, `${c}.tag`]).sort();

test('seed 000 cluster A values = CentralManager + DragonflyCluster (cluster=a nodes, ghcr.io, jaeger, debug config)', () => {
  const imported = newChart('cluster-a', 'cluster-a');
  const result = fromHelmValues(imported.chart, fixture('charts-config-cluster-a.yaml'));

  const hand = newChart('cluster-a', 'cluster-a');
  const manager = new CentralManager(hand.chart, 'manager', {
    demoCredentials: true,
    nodeSelector: { cluster: 'a' },
    replicas: 1,
    config: SEED_DEBUG,
    jaegerUrl: jaegerCollectorUrl('cluster-a'),
  });
  new DragonflyCluster(hand.chart, 'dragonfly', {
    manager: manager.endpoint,
    jobRedis: manager.jobRedis,
    nodeSelector: { cluster: 'a' },
    registries: ['https://ghcr.io'],
    jaeger: true,
    scheduler: { replicas: 1, config: SEED_DEBUG },
    seedPeer: { replicas: 1, config: SEED_DEBUG },
    dfdaemon: { config: SEED_DEBUG },
  });

  expect(sorted(synth(imported.chart))).toEqual(sorted(synth(hand.chart)));
  expect(result.manager).toBeInstanceOf(CentralManager);
  expect(result.cluster).not.toBeInstanceOf(RemoteCluster);
  // The upstream Go images are reported, not silently swapped.
  expect(result.unmapped.map((u) => u.key).sort()).toEqual(imageKeys(['dfdaemon', 'manager', 'scheduler', 'seedPeer']));
  expect(result.unmapped[0].reason).toMatch(/upstream image dragonflyoss\//);
  expect(imported.chart.node.metadata.filter((m) => m.type === 'warning')).toHaveLength(result.unmapped.length);
});

test('seed 000 cluster B values = RemoteCluster 2 with idc cluster-2 wired to cluster A\'s manager', () => {
  const imported = newChart('cluster-b', 'cluster-b');
  const result = fromHelmValues(imported.chart, fixture('charts-config-cluster-b.yaml'));

  const hand = newChart('cluster-b', 'cluster-b');
  new RemoteCluster(hand.chart, 'dragonfly', {
    manager: { host: 'dragonfly-manager.cluster-a.svc.cluster.local', grpcPort: 65003, restPort: 8080 },
    clusterId: 2,
    scopes: { idc: 'cluster-2' },
    nodeSelector: { cluster: 'b' },
    registries: ['https://ghcr.io'],
    jaeger: true,
    scheduler: { replicas: 1 },
    seedPeer: { replicas: 1 },
    externalRedis: { addrs: ['dragonfly-redis-master.cluster-a.svc.cluster.local:6379'], passwordSecret: { name: 'dragonfly-external-redis', key: 'password' } },
  });

  expect(sorted(synth(imported.chart))).toEqual(sorted(synth(hand.chart)));
  expect(result.manager).toBeUndefined();
  expect(result.cluster).toBeInstanceOf(RemoteCluster);
  const keys = result.unmapped.map((u) => u.key);
  expect(keys).toEqual(expect.arrayContaining([...imageKeys(['dfdaemon', 'scheduler', 'seedPeer']), 'redis', 'externalRedis.password', 'mysql']));
  // externalRedis is the central Redis the scheduler takes jobs from; only its plain password is not copied.
  expect(result.unmapped.find((u) => u.key === 'externalRedis.password')?.reason).toMatch(/create Secret "dragonfly-external-redis"/);
  expect(keys).toHaveLength(9);
});

test('seed 002 single-cluster values = CentralManager + DragonflyCluster in dragonfly-system', () => {
  const imported = newChart('dragonfly', 'dragonfly-system');
  const result = fromHelmValues(imported.chart, fixture('charts-config.yaml'));

  const hand = newChart('dragonfly', 'dragonfly-system');
  const manager = new CentralManager(hand.chart, 'manager', { demoCredentials: true, replicas: 1, config: SEED_DEBUG, jaegerUrl: jaegerCollectorUrl('dragonfly-system') });
  new DragonflyCluster(hand.chart, 'dragonfly', {
    manager: manager.endpoint,
    jobRedis: manager.jobRedis,
    registries: ['https://ghcr.io'],
    jaeger: true,
    scheduler: { replicas: 1, config: SEED_DEBUG },
    seedPeer: { replicas: 1, config: SEED_DEBUG },
    dfdaemon: { config: SEED_DEBUG },
  });

  expect(sorted(synth(imported.chart))).toEqual(sorted(synth(hand.chart)));
  expect(result.unmapped).toEqual([]);
});

describe('what the importer cannot map is reported or refused, never dropped', () => {
  test('unknown keys and unsupported modes come back by key with a reason', () => {
    const { chart } = newChart('x', 'x');
    const values = {
      containerRuntime: { containerd: { enable: true, injectConfigPath: false, registries: ['https://docker.io'] }, docker: { enable: true } },
      scheduler: { service: { type: 'LoadBalancer' } },
      ingress: { enable: true },
    };
    const result = fromHelmValues(chart, values);
    const byKey = Object.fromEntries(result.unmapped.map((u) => [u.key, u.reason]));
    expect(Object.keys(byKey).sort()).toEqual(['containerRuntime.containerd.injectConfigPath', 'containerRuntime.docker.enable', 'ingress.enable', 'scheduler.service.type']);
    expect(byKey['containerRuntime.containerd.injectConfigPath']).toMatch(/config_path/);
    expect(byKey['ingress.enable']).toMatch(/no equivalent/);
  });

  test('components that disagree on the manager address or cluster id are refused with the keys named', () => {
    const values = fixture('charts-config-cluster-b.yaml') as Record<string, Record<string, unknown>>;
    const badAddr = structuredClone(values);
    (badAddr.dfdaemon.config as { scheduler: { manager: { netAddrs: { addr: string }[] } } }).scheduler.manager.netAddrs[0].addr = 'other-manager:65003';
    expect(() => fromHelmValues(newChart('b', 'cluster-b').chart, badAddr)).toThrow(/disagree on the manager address: dfdaemon\.config\.scheduler\.manager\.netAddrs\.0\.addr/);
    const badId = structuredClone(values);
    (badId.scheduler.config as { manager: { schedulerClusterID: number } }).manager.schedulerClusterID = 3;
    expect(() => fromHelmValues(newChart('b', 'cluster-b').chart, badId)).toThrow(/disagree on the cluster id/);
  });

  test('an external manager without an address is refused', () => {
    expect(() => fromHelmValues(newChart('b', 'cluster-b').chart, { manager: { enable: false } })).toThrow(/externalManager\.host/);
  });

  test('config keys the programs do not know fail with the key path', () => {
    expect(() => fromHelmValues(newChart('b', 'b').chart, { dfdaemon: { config: { hots: { idc: 'x' } } } })).toThrow(/hots/);
  });
});
