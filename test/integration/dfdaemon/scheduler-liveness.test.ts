/**
 * dfdaemon against schedulers that are late or silent:
 * - a peer that starts before the manager knows any scheduler finds one within seconds (not
 *   after scheduler.manager.refreshInterval) and then downloads through it;
 * - a scheduler that answers "wait" and then nothing: after scheduler.scheduleTimeout the peer
 *   goes back to source instead of hanging (upstream's behaviour).
 */
import * as fsp from 'node:fs/promises';
import * as path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { GRPC_OPTIONS, parseConfig } from '../../../services/common';
import { startDfdaemon, type DfdaemonHandle } from '../../../services/dfdaemon/daemon';
import { startManager, type ManagerHandle } from '../../../services/manager/server';
import { protos, type AnnouncePeerRequest__Output } from '../../../services/proto';
import { startScheduler, type SchedulerHandle } from '../../../services/scheduler/server';
import { daemonConfig, MiB, quiet, randomFile, sha256File, startOrigin, tempDir, until, type Origin } from './helpers';

jest.setTimeout(60_000);

describe('dfdaemon with late or silent schedulers', () => {
  let root: string;
  let origin: Origin;
  let digest: string;
  const cleanup: Array<() => Promise<unknown>> = [];

  beforeAll(async () => {
    root = await tempDir('dfdaemon-liveness');
    await fsp.mkdir(path.join(root, 'origin'));
    digest = await randomFile(path.join(root, 'origin', 'f.bin'), 6 * MiB);
    origin = await startOrigin(path.join(root, 'origin'));
  });

  afterAll(async () => {
    for (const c of cleanup.reverse()) await c();
    await origin?.close();
    await fsp.rm(root, { recursive: true, force: true });
  });

  it('a peer started before its scheduler registered finds it within seconds, not after refreshInterval', async () => {
    const manager: ManagerHandle = await startManager(
      parseConfig('manager', { security: { insecure: true },
        server: { workHome: root, rest: { addr: '127.0.0.1:0' }, grpc: { listenIP: '127.0.0.1', advertiseIP: '127.0.0.1', port: { start: 0, end: 0 } } },
        database: { type: 'sqlite', sqlite: { file: path.join(root, 'manager.db') } },
        auth: { demoCredentials: true },
        metrics: { enable: false },
      }),
      { logger: quiet() },
    );
    cleanup.push(() => manager.stop());
    const netAddrs = [{ addr: `127.0.0.1:${manager.grpcPort}` }];
    const peer: DfdaemonHandle = await startDfdaemon(
      daemonConfig(path.join(root, 'early'), 'early-peer', { scheduler: { manager: { enable: true, netAddrs, refreshInterval: '10m' } } }),
      { logger: quiet() },
    );
    cleanup.push(() => peer.stop());
    expect(peer.engine.schedulers?.addresses()).toEqual([]);

    const scheduler: SchedulerHandle = await startScheduler(
      parseConfig('scheduler', { security: { insecure: true },
        server: { port: 0, listenIP: '127.0.0.1', advertiseIP: '127.0.0.1', host: 'late-sched' },
        manager: { addr: netAddrs[0].addr, schedulerClusterID: 1, keepAlive: { interval: '200ms' } },
        metrics: { enable: false },
      }),
      { logger: quiet(), managerBackoff: { initialMs: 50, maxMs: 200 } },
    );
    cleanup.push(() => scheduler.stop());
    // Backoff while empty is 1, 2, 4, then 8 s: well under the 10 m refreshInterval.
    await until(() => (peer.engine.schedulers?.addresses().length ?? 0) > 0, 20_000);
    expect(peer.engine.schedulers?.addresses()).toEqual([`127.0.0.1:${scheduler.port}`]);

    const out = path.join(root, 'early.bin');
    await peer.tasks.downloadToFile({ url: origin.url('f.bin'), requestHeaders: {}, outputPath: out });
    expect(await sha256File(out)).toBe(digest);
    expect(scheduler.service.store.tasks.size).toBe(1);
  });

  it('a scheduler that says "wait" and then nothing: back to source after scheduleTimeout', async () => {
    const registered: AnnouncePeerRequest__Output[] = [];
    const server = new grpc.Server(GRPC_OPTIONS);
    const def = protos().scheduler.scheduler.v2.Scheduler.service;
    server.addService(def, {
      AnnounceHost: (_call: grpc.ServerUnaryCall<unknown, unknown>, cb: grpc.sendUnaryData<object>) => cb(null, {}),
      AnnouncePeer: (call: grpc.ServerDuplexStream<AnnouncePeerRequest__Output, object>) => {
        call.on('data', (req: AnnouncePeerRequest__Output) => {
          if (req.registerPeerRequest) {
            registered.push(req);
            call.write({ waitResponse: { description: 'a seed peer is fetching the task' } });
          }
        });
        call.on('end', () => call.end());
        call.on('error', () => undefined);
      },
    });
    const port = await new Promise<number>((resolve, reject) =>
      server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p))),
    );
    cleanup.push(async () => server.forceShutdown());

    const peer = await startDfdaemon(
      daemonConfig(path.join(root, 'waiting'), 'waiting-peer', { scheduler: { netAddrs: [{ addr: `127.0.0.1:${port}` }], scheduleTimeout: '1500ms' } }),
      { logger: quiet() },
    );
    cleanup.push(() => peer.stop());
    const before = origin.requests();
    const started = Date.now();
    const out = path.join(root, 'waiting.bin');
    await peer.tasks.downloadToFile({ url: origin.url('f.bin'), requestHeaders: {}, outputPath: out });
    const took = Date.now() - started;
    expect(await sha256File(out)).toBe(digest);
    expect(registered).toHaveLength(1);
    expect(took).toBeGreaterThanOrEqual(1400);
    expect(origin.requests()).toBeGreaterThan(before);
  });
});
