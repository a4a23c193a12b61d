/**
 * The whole control plane for real: manager (sqlite), scheduler registered with it, a seed
 * peer that registers itself (UpdateSeedPeer + KeepAlive) and finds its scheduler through
 * ListSchedulers{SEED_PEER_SOURCE}, and a peer that finds it through ListSchedulers{PEER_SOURCE}.
 */
import * as fsp from 'node:fs/promises';
import * as path from 'node:path';
import { parseConfig } from '../../../services/common';
import { startDfdaemon, type DfdaemonHandle } from '../../../services/dfdaemon/daemon';
import { startManager, type ManagerHandle } from '../../../services/manager/server';
import { startScheduler, type SchedulerHandle } from '../../../services/scheduler/server';
import { daemonConfig, MiB, quiet, randomFile, sha256File, startOrigin, tempDir, until, type Origin } from './helpers';

jest.setTimeout(60_000);

describe('dfdaemon with manager and scheduler', () => {
  let root: string;
  let origin: Origin;
  let manager: ManagerHandle;
  let scheduler: SchedulerHandle;
  const daemons: DfdaemonHandle[] = [];
  let digest: string;
  const SIZE = 24 * MiB;

  beforeAll(async () => {
    root = await tempDir('dfdaemon-mgr');
    await fsp.mkdir(path.join(root, 'origin'));
    digest = await randomFile(path.join(root, 'origin', 'f.bin'), SIZE);
    origin = await startOrigin(path.join(root, 'origin'));
    manager = await startManager(
      parseConfig('manager', { security: { insecure: true },
        server: { workHome: root, rest: { addr: '127.0.0.1:0' }, grpc: { listenIP: '127.0.0.1', advertiseIP: '127.0.0.1', port: { start: 0, end: 0 } } },
        database: { type: 'sqlite', sqlite: { file: path.join(root, 'manager.db') } },
        auth: { demoCredentials: true },
        metrics: { enable: false },
      }),
      { logger: quiet() },
    );
    const managerAddr = `127.0.0.1:${manager.grpcPort}`;
    scheduler = await startScheduler(
      parseConfig('scheduler', { security: { insecure: true },
        server: { port: 0, listenIP: '127.0.0.1', advertiseIP: '127.0.0.1', host: 'sched-1' },
        manager: { addr: managerAddr, schedulerClusterID: 1, keepAlive: { interval: '200ms' } },
        dynConfig: { refreshInterval: '500ms' },
        metrics: { enable: false },
      }),
      { logger: quiet(), managerBackoff: { initialMs: 50, maxMs: 200 } },
    );
    await until(async () => (await manager.store.listSchedulers({ schedulerClusterId: 1, state: 'active' })).items.length > 0);
  });

  afterAll(async () => {
    for (const d of daemons) await d.stop();
    await scheduler?.stop();
    await manager?.stop();
    await origin?.close();
    await fsp.rm(root, { recursive: true, force: true });
  });

  it('the seed registers and keeps alive; both find the scheduler via the manager; P2P works', async () => {
    const netAddrs = [{ addr: `127.0.0.1:${manager.grpcPort}` }];
    const seed = await startDfdaemon(
      daemonConfig(path.join(root, 'seed'), 'm-seed', { scheduler: { manager: { enable: true, netAddrs, seedPeer: { enable: true, clusterID: 1, keepAlive: { interval: '200ms' } } } } }),
      { logger: quiet() },
    );
    daemons.push(seed);
    await until(async () => (await manager.store.listSeedPeers({ seedPeerClusterId: 1, state: 'active' })).items.some((s) => s.hostname === 'm-seed'));
    const record = (await manager.store.listSeedPeers({ seedPeerClusterId: 1 })).items.find((s) => s.hostname === 'm-seed')!;
    expect(record.port).toBe(seed.grpcPort);
    expect(record.downloadPort).toBe(seed.uploadPort);
    expect(record.ip).toBe('127.0.0.1');

    const peer = await startDfdaemon(daemonConfig(path.join(root, 'peer'), 'm-peer', { scheduler: { manager: { enable: true, netAddrs } } }), { logger: quiet() });
    daemons.push(peer);
    const out = path.join(root, 'out.bin');
    const pieces: string[] = [];
    await peer.tasks.downloadToFile({ url: origin.url('f.bin'), requestHeaders: {}, outputPath: out }, (p) => {
      if (p.piece) pieces.push(`${p.piece.trafficType}:${p.piece.parentId ?? ''}`);
    });
    expect(await sha256File(out)).toBe(digest);
    expect(origin.bytesServed()).toBe(SIZE); // only the seed went to the origin
    expect(pieces.length).toBe(6);
    for (const p of pieces) expect(p).toMatch(/^REMOTE_PEER:.*-seed$/);
  });
});
