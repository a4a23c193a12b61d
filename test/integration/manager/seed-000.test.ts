/* eslint-disable @typescript-eslint/no-unsafe-member-access, @typescript-eslint/no-unsafe-call -- response bodies are arbitrary JSON checked field by field */
/**
 * Seed 000 end to end on MariaDB + Redis: one central manager serves clusters A and B;
 * cluster-B peers (host.idc cluster-2) get cluster B's scheduler first, everyone else A's.
 */
import type * as grpc from '@grpc/grpc-js';
import { Redis } from 'ioredis';
import { createServer } from 'node:net';
import pino from 'pino';
import type { ManagerConfig } from '../../../services/common/config/manager';
import type { ManagerHandle } from '../../../services/manager/server';
import type { ManagerClient } from '../../../services/proto';
import { call, http, managerClient, managerConfig, signin, startTestManager, waitFor } from '../../unit/manager/helpers';
import { dropDatabase, dropRedisPrefix, MYSQL, REDIS_ADDR, uniqueName } from './db';

interface ListedScheduler {
  hostname: string;
  schedulerClusterId: number;
  schedulerCluster: { id: number; name: string; scopes: Buffer };
}

const dbname = uniqueName('mgr_seed000');
const keyPrefix = `${dbname}:`;

function configFor(redisAddr: string): { config: ManagerConfig; cleanup: () => void } {
  return managerConfig({
    database: { type: 'mysql', mysql: { ...MYSQL, dbname }, redis: { addrs: [redisAddr], keyPrefix } },
    keepAlive: { timeout: '3s' },
  });
}

/** A scheduler's keep-alive loop, as the scheduler runs it: one message every 300 ms. */
function keepAliveLoop(client: ManagerClient, hostname: string, ip: string, clusterId: number) {
  const stream = client.KeepAlive(() => undefined) as unknown as grpc.ClientWritableStream<unknown>;
  const send = () => stream.write({ sourceType: 'SCHEDULER_SOURCE', hostname, ip, clusterId });
  send();
  const timer = setInterval(send, 300);
  return {
    end: () => {
      clearInterval(timer);
      stream.end();
    },
    pause: () => clearInterval(timer),
  };
}

async function listFor(client: ManagerClient, peer: { hostname: string; ip: string; idc?: string; schedulerClusterId?: number; seedPeerClusterId?: number; sourceType?: string }): Promise<ListedScheduler[]> {
  const res = await call<object, { schedulers: ListedScheduler[] }>(client, 'ListSchedulers', { sourceType: 'PEER_SOURCE', ...peer });
  return res.schedulers;
}

describe('seed 000 on MariaDB + Redis', () => {
  let m: ManagerHandle;
  let client: ManagerClient;
  let cleanup: () => void;
  let config: ManagerConfig;
  let root: string;
  const loops: Array<{ end: () => void }> = [];
  const redis = new Redis({ host: '127.0.0.1', port: 6379, lazyConnect: true });

  beforeAll(async () => {
    ({ config, cleanup } = configFor(REDIS_ADDR));
    m = await startTestManager(config);
    client = managerClient(m.grpcPort);
    await redis.connect();
  });
  afterAll(async () => {
    for (const l of loops) l.end();
    client?.close();
    await m?.stop();
    redis.disconnect();
    cleanup?.();
    await dropDatabase(dbname);
    await dropRedisPrefix(keyPrefix);
  });

  test('root creates cluster B over REST; schedulers of A and B register and keep alive over gRPC', async () => {
    root = await signin(m);
    const b = await http(m, 'POST', '/api/v1/clusters', root, { name: 'cluster-b', scopes: { idc: 'cluster-2' } });
    expect(b.status).toBe(201);
    expect(b.body).toMatchObject({ id: 2, scheduler_cluster_id: 2, seed_peer_cluster_id: 2 });

    await call(client, 'UpdateScheduler', { sourceType: 'SCHEDULER_SOURCE', hostname: 'scheduler-a', ip: '10.1.0.10', port: 8002, schedulerClusterId: 1, features: ['schedule', 'preheat'] });
    await call(client, 'UpdateScheduler', { sourceType: 'SCHEDULER_SOURCE', hostname: 'scheduler-b', ip: '10.2.0.10', port: 8002, schedulerClusterId: 2, idc: 'cluster-2' });
    loops.push(keepAliveLoop(client, 'scheduler-a', '10.1.0.10', 1), keepAliveLoop(client, 'scheduler-b', '10.2.0.10', 2));
    await waitFor(async () => (await m.store.listSchedulers({ state: 'active' })).total === 2);
  });

  test('ListSchedulers: a cluster-B peer gets cluster B first, a cluster-A peer cluster A', async () => {
    const forB = await listFor(client, { hostname: 'node-b-1', ip: '10.2.3.4', idc: 'cluster-2' });
    expect(forB.map((s) => s.hostname)).toEqual(['scheduler-b', 'scheduler-a']);
    expect(forB[0].schedulerCluster).toMatchObject({ id: 2, name: 'cluster-b' });
    expect(JSON.parse(forB[0].schedulerCluster.scopes.toString())).toMatchObject({ idc: 'cluster-2' });
    const forA = await listFor(client, { hostname: 'node-a-1', ip: '10.1.3.4', idc: 'cluster-1' });
    expect(forA.map((s) => s.hostname)).toEqual(['scheduler-a', 'scheduler-b']);
    expect(forA[0].schedulerClusterId).toBe(1);
    // scheduler_cluster_id skips the searcher; a seed peer gets its linked cluster only.
    expect((await listFor(client, { hostname: 'node-a-1', ip: '10.1.3.4', idc: 'cluster-1', schedulerClusterId: 2 })).map((s) => s.hostname)).toEqual(['scheduler-b']);
    expect((await listFor(client, { sourceType: 'SEED_PEER_SOURCE', hostname: 'seed-b', ip: '10.2.0.20', seedPeerClusterId: 2 })).map((s) => s.hostname)).toEqual(['scheduler-b']);
    // The answers are in the shared Redis cache.
    expect(await redis.hlen(`${keyPrefix}list-schedulers`)).toBeGreaterThanOrEqual(4);
    const ttl = await redis.pttl(`${keyPrefix}list-schedulers`);
    expect(ttl).toBeGreaterThan(0);
    expect(ttl).toBeLessThanOrEqual(config.cache.redis.ttl);
  });

  test('guest cannot write; bad and expired tokens are 401; a PAT works on /oapi/v1/clusters', async () => {
    expect((await http(m, 'POST', '/api/v1/users/signup', root, { name: 'viewer', password: 'viewer-pass' })).status).toBe(201);
    const guest = await signin(m, 'viewer', 'viewer-pass');
    expect((await http(m, 'GET', '/api/v1/clusters', guest)).status).toBe(200);
    expect((await http(m, 'POST', '/api/v1/clusters', guest, { name: 'cluster-x' })).status).toBe(403);
    expect((await http(m, 'DELETE', '/api/v1/clusters/2', guest)).status).toBe(403);
    expect((await http(m, 'GET', '/api/v1/clusters', 'not-a-token')).status).toBe(401);
    const jwt = await import('jsonwebtoken');
    const key = await m.store.getOrSetSetting('jwt_key', 'unused');
    expect((await http(m, 'GET', '/api/v1/clusters', jwt.sign({ id: 1, exp: Math.floor(Date.now() / 1000) - 1 }, key))).status).toBe(401);
    const pat = (await http(m, 'POST', '/api/v1/personal-access-tokens', root, { name: 'ci', scopes: ['cluster'] })).body.token as string;
    const listed = await http(m, 'GET', '/oapi/v1/clusters?name=cluster-b', pat);
    expect(listed.status).toBe(200);
    expect(listed.body.map((c: { id: number }) => c.id)).toEqual([2]);
  });

  test('keep-alive end marks the scheduler inactive and the ListSchedulers answer changes', async () => {
    loops[1].end();
    await waitFor(async () => (await m.store.findScheduler({ hostname: 'scheduler-b', ip: '10.2.0.10', schedulerClusterId: 2 }))?.state === 'inactive');
    // The state is stored before the cached answers are dropped: the answer follows within moments.
    let forB: string[] = [];
    await waitFor(async () => {
      forB = (await listFor(client, { hostname: 'node-b-1', ip: '10.2.3.4', idc: 'cluster-2' })).map((s) => s.hostname);
      return forB.length === 1;
    }, 5_000).catch(() => undefined);
    expect(forB).toEqual(['scheduler-a']);
  });

  test('a change on one manager replica drops the cached answers of another (Redis pub/sub)', async () => {
    const replica = await startTestManager(config);
    const replicaClient = managerClient(replica.grpcPort);
    try {
      const peer = { hostname: 'node-b-9', ip: '10.2.3.9', idc: 'cluster-2' };
      await call(client, 'UpdateScheduler', { hostname: 'scheduler-b', ip: '10.2.0.10', port: 8002, schedulerClusterId: 2 });
      const loop = keepAliveLoop(client, 'scheduler-b', '10.2.0.10', 2);
      await waitFor(async () => (await listFor(replicaClient, peer))[0]?.hostname === 'scheduler-b'); // cached on the replica
      expect((await listFor(replicaClient, peer))[0].hostname).toBe('scheduler-b');
      loop.end(); // the first manager marks it inactive and publishes the change
      await waitFor(async () => (await m.store.findScheduler({ hostname: 'scheduler-b', ip: '10.2.0.10', schedulerClusterId: 2 }))?.state === 'inactive');
      await waitFor(async () => (await listFor(replicaClient, peer))[0]?.hostname === 'scheduler-a', 2000);
    } finally {
      replicaClient.close();
      await replica.stop();
    }
  });

  test('a scheduler that stops sending is marked inactive after keepAlive.timeout', async () => {
    await call(client, 'UpdateScheduler', { hostname: 'scheduler-b', ip: '10.2.0.10', port: 8002, schedulerClusterId: 2 });
    const silent = keepAliveLoop(client, 'scheduler-b', '10.2.0.10', 2);
    loops.push(silent);
    await waitFor(async () => (await listFor(client, { hostname: 'node-b-1', ip: '10.2.3.4', idc: 'cluster-2' }))[0]?.hostname === 'scheduler-b');
    silent.pause(); // stream stays open, no more messages
    await waitFor(async () => (await m.store.findScheduler({ hostname: 'scheduler-b', ip: '10.2.0.10', schedulerClusterId: 2 }))?.state === 'inactive', 10_000);
    // scheduler-a keeps sending, so it stays; scheduler-b's open but silent stream does not keep it.
    await waitFor(async () => (await listFor(client, { hostname: 'node-b-1', ip: '10.2.3.4', idc: 'cluster-2' })).map((s) => s.hostname).join() === 'scheduler-a');
  });

  test('a restarted manager keeps users, clusters, schedulers and sessions', async () => {
    client.close();
    await m.stop();
    m = await startTestManager(config);
    client = managerClient(m.grpcPort);
    const clusters = await http(m, 'GET', '/api/v1/clusters', root); // the old session token still verifies
    expect(clusters.status).toBe(200);
    expect(clusters.body.map((c: { name: string }) => c.name)).toEqual(['cluster-1', 'cluster-b']);
    expect((await m.store.listSchedulers({})).total).toBe(2);
    expect((await m.store.listUsers()).total).toBe(2);
    expect(await signin(m, 'viewer', 'viewer-pass')).toBeTruthy();
  });

  test('with Redis unreachable the manager still answers from the database', async () => {
    const port = await new Promise<number>((resolve) => {
      const s = createServer().listen(0, '127.0.0.1', () => {
        const p = (s.address() as { port: number }).port;
        s.close(() => resolve(p));
      });
    });
    const down = configFor(`127.0.0.1:${port}`);
    const lines: string[] = [];
    const logger = pino({ level: 'info' }, { write: (line: string) => lines.push(line) });
    const started = Date.now();
    const other = await startTestManager(down.config, { logger });
    const otherClient = managerClient(other.grpcPort);
    try {
      expect(Date.now() - started).toBeLessThan(10_000);
      // The schedulers reconnect their keep-alive streams to this manager.
      loops.push(keepAliveLoop(otherClient, 'scheduler-a', '10.1.0.10', 1), keepAliveLoop(otherClient, 'scheduler-b', '10.2.0.10', 2));
      await waitFor(async () => (await other.store.listSchedulers({ state: 'active' })).total === 2);
      const forB = await listFor(otherClient, { hostname: 'node-b-1', ip: '10.2.3.4', idc: 'cluster-2' });
      expect(forB.map((s) => s.hostname)).toEqual(['scheduler-b', 'scheduler-a']);
      for (let i = 0; i < 20; i++) await listFor(otherClient, { hostname: `node-${i}`, ip: '10.2.3.4', idc: 'cluster-2' });
      const token = await signin(other);
      expect((await http(other, 'GET', '/api/v1/clusters', token)).status).toBe(200);
      // One warning, not one per call or per reconnect attempt.
      expect(lines.filter((l) => l.includes('redis unreachable'))).toHaveLength(1);
    } finally {
      otherClient.close();
      await other.stop();
      down.cleanup();
    }
  });
});
