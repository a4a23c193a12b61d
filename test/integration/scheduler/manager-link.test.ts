/** The scheduler's manager link against an in-test manager.v2.Manager gRPC server. */
import * as grpc from '@grpc/grpc-js';
import { parseConfig } from '../../../services/common/config';
import { GRPC_OPTIONS, startGrpcServer, unary, type GrpcServerHandle } from '../../../services/common/grpc';
import { silentLogger } from '../../../services/common/logger';
import { managerService, protos, type ManagerHandlers, type SchedulerClient } from '../../../services/proto';
import type { KeepAliveRequest__Output } from '../../../services/proto/gen/manager/v2/KeepAliveRequest';
import type { UpdateSchedulerRequest__Output } from '../../../services/proto/gen/manager/v2/UpdateSchedulerRequest';
import type { GetSchedulerRequest__Output } from '../../../services/proto/gen/manager/v2/GetSchedulerRequest';
import { startScheduler, type SchedulerHandle } from '../../../services/scheduler/server';

async function until(check: () => boolean, timeoutMs = 5000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > end) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe('scheduler ↔ manager', () => {
  let manager: GrpcServerHandle;
  let scheduler: SchedulerHandle | undefined;
  const updates: UpdateSchedulerRequest__Output[] = [];
  const keepAlives: KeepAliveRequest__Output[] = [];
  const getSchedulers: GetSchedulerRequest__Output[] = [];

  beforeAll(async () => {
    const handlers: Partial<ManagerHandlers> = {
      UpdateScheduler(call, cb) {
        updates.push(call.request);
        // The cluster is "declared" only from the second call on.
        if (updates.length === 1) return cb({ code: grpc.status.NOT_FOUND, details: 'scheduler cluster 7 not found' });
        cb(null, { id: 1, hostname: call.request.hostname, ip: call.request.ip, port: call.request.port, schedulerClusterId: 7, state: 'active' });
      },
      KeepAlive(call, cb) {
        call.on('data', (m: KeepAliveRequest__Output) => keepAlives.push(m));
        call.on('end', () => cb(null, {}));
        call.on('error', () => undefined);
      },
      GetScheduler(call, cb) {
        getSchedulers.push(call.request);
        cb(null, {
          id: 1,
          hostname: call.request.hostname,
          schedulerClusterId: 7,
          schedulerCluster: {
            id: 7,
            name: 'cluster-7',
            config: Buffer.from(JSON.stringify({ candidate_parent_limit: 7, filter_parent_limit: 33 })),
            clientConfig: Buffer.from(JSON.stringify({ load_limit: 99 })),
          },
          seedPeers: [{ id: 3, hostname: 'seed-a', ip: '10.9.9.9', port: 65000, downloadPort: 65002, state: 'active', type: 'super' }],
        });
      },
    };
    manager = await startGrpcServer('127.0.0.1:0', [{ name: 'manager.v2.Manager', definition: managerService(), handlers: handlers as grpc.UntypedServiceImplementation }]);
  });

  afterAll(async () => {
    await scheduler?.stop();
    await manager?.shutdown(100);
  });

  test('registers through NOT_FOUND, keeps alive, applies cluster config, survives the manager going away', async () => {
    const config = parseConfig('scheduler', { security: { insecure: true },
      server: { port: 0, listenIP: '127.0.0.1', advertiseIP: '127.0.0.1', host: 'sched-test' },
      host: { idc: 'idc-1', location: 'cn|sh' },
      manager: { addr: `127.0.0.1:${manager.port}`, schedulerClusterID: 7, keepAlive: { interval: '100ms' } },
      dynConfig: { refreshInterval: '200ms' },
      metrics: { enable: false },
    });
    scheduler = await startScheduler(config, { logger: silentLogger(), managerBackoff: { initialMs: 50, maxMs: 200 } });
    expect(scheduler.settings().candidateParentLimit).toBe(config.scheduler.candidateParentLimit);

    await until(() => updates.length >= 2 && keepAlives.length >= 3 && scheduler?.settings().candidateParentLimit === 7);
    expect(updates[1]).toMatchObject({ sourceType: 'SCHEDULER_SOURCE', hostname: 'sched-test', ip: '127.0.0.1', port: scheduler.port, idc: 'idc-1', location: 'cn|sh', schedulerClusterId: 7 });
    expect(updates[1].features).toEqual(['schedule', 'preheat']);
    expect(keepAlives[0]).toMatchObject({ sourceType: 'SCHEDULER_SOURCE', hostname: 'sched-test', clusterId: 7, ip: '127.0.0.1' });
    expect(getSchedulers[0]).toMatchObject({ sourceType: 'SCHEDULER_SOURCE', hostname: 'sched-test', schedulerClusterId: 7 });
    expect(scheduler.settings()).toMatchObject({ candidateParentLimit: 7, filterParentLimit: 33, defaultUploadLimit: 99 });
    expect(scheduler.service.seedHosts()).toEqual([{ key: '10.9.9.9:65000', ip: '10.9.9.9', port: 65000, hostname: 'seed-a' }]);
    expect(scheduler.manager?.registered).toBe(true);

    // The manager goes away: the scheduler keeps serving on the last config.
    await manager.shutdown(0);
    await until(() => scheduler?.manager?.registered === false);
    await new Promise((r) => setTimeout(r, 400));
    const client: SchedulerClient = new (protos().scheduler.scheduler.v2.Scheduler)(`127.0.0.1:${scheduler.port}`, grpc.credentials.createInsecure(), GRPC_OPTIONS);
    try {
      await unary(client.AnnounceHost.bind(client), { host: { id: 'h1', ip: '127.0.0.1', port: 1 }, intervalMs: 1000 });
      await expect(unary(client.StatTask.bind(client), { taskId: 'unknown' })).rejects.toMatchObject({ kind: 'NotFound' });
      expect(scheduler.settings().candidateParentLimit).toBe(7);
      expect(scheduler.service.seedHosts().map((s) => s.key)).toContain('10.9.9.9:65000');
    } finally {
      client.close();
    }
  });
});
