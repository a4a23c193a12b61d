/* eslint-disable @typescript-eslint/no-unsafe-member-access -- response bodies are arbitrary JSON checked field by field */
/** `npm start`'s cluster runs jobs when a Redis answers, and says how to get them when none does. */
import * as fsp from 'node:fs/promises';
import { silentLogger } from '../../../services/common/logger';
import { startLocalCluster } from '../../../services/local-cluster';
import { tempDir, until } from '../dfdaemon/helpers';
import { http, signin } from '../../unit/manager/helpers';
import { dropRedisPrefix, REDIS_ADDR, uniqueName } from './db';

jest.setTimeout(60_000);
const FREE = { managerRest: 0, managerGrpc: 0, managerMetrics: 0, scheduler: 0, schedulerMetrics: 0, peerGrpc: 0, peerProxy: 0, peerUpload: 0, peerMetrics: 0, seedMetrics: 0 };

it('with Redis, a sync_peers job runs on the local scheduler', async () => {
  const dir = await tempDir('local-jobs');
  const prefix = `${uniqueName('local')}:`;
  const cluster = await startLocalCluster({ workDir: dir, logger: silentLogger(), ports: FREE, redis: REDIS_ADDR, redisKeyPrefix: prefix });
  try {
    expect(cluster.lines.join('\n')).toMatch(/jobs +on, queues in Redis 127\.0\.0\.1:6379/);
    await until(() => cluster.scheduler.service.store.hosts.size >= 1, 20_000);
    const token = await signin(cluster.manager);
    const created = await http(cluster.manager, 'POST', '/api/v1/jobs', token, { type: 'sync_peers', args: {} });
    expect(created.status).toBe(200);
    let state = '';
    await until(async () => {
      state = (await http(cluster.manager, 'GET', `/api/v1/jobs/${created.body.id as number}`, token)).body.state as string;
      return state !== 'PENDING';
    });
    expect(state).toBe('SUCCESS');
  } finally {
    await cluster.stop();
    await dropRedisPrefix(prefix);
    await fsp.rm(dir, { recursive: true, force: true });
  }
});

it('without Redis, /api/v1/jobs answers 503 and the banner says how to turn jobs on', async () => {
  const dir = await tempDir('local-nojobs');
  const cluster = await startLocalCluster({ workDir: dir, logger: silentLogger(), ports: FREE, redis: false });
  try {
    expect(cluster.lines.join('\n')).toMatch(/jobs +off: no Redis answered at 127\.0\.0\.1:6379 \(start one, or set LOCAL_CLUSTER_REDIS=host:port\)/);
    const token = await signin(cluster.manager);
    const res = await http(cluster.manager, 'POST', '/api/v1/jobs', token, { type: 'sync_peers', args: {} });
    expect(res.status).toBe(503);
    expect(res.body.message).toMatch(/jobs need Redis/);
  } finally {
    await cluster.stop();
    await fsp.rm(dir, { recursive: true, force: true });
  }
});
