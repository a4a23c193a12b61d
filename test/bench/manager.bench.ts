/**
 * Manager benchmark: ListSchedulers answers/s over gRPC, with the Redis + in-process cache
 * and with the cache disabled (every answer from MariaDB), beside a bare mysql2 point
 * select on the same MariaDB in the same run. Each phase runs a fixed time with a fixed
 * number of calls in flight.
 */
import * as grpc from '@grpc/grpc-js';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { Redis } from 'ioredis';
import * as mysql from 'mysql2/promise';
import { parseConfig } from '../../services/common/config/load';
import { GRPC_OPTIONS } from '../../services/common/grpc';
import { silentLogger } from '../../services/common/logger';
import { startManager, type ManagerHandle } from '../../services/manager/server';
import { protos, type ManagerClient } from '../../services/proto';
import { runStandalone, type BenchFigure } from './types';

const MYSQL = { host: '127.0.0.1', port: 3306, user: 'root', password: '' };
const PHASE_MS = 3000;
const ROUNDS = 3;
const IN_FLIGHT = 32;
const DISTINCT_PEERS = 200;

/** Runs `op` with `inFlight` concurrent loops for `ms`; returns completed operations per second. */
async function rate(ms: number, inFlight: number, op: (i: number) => Promise<unknown>): Promise<number> {
  const deadline = Date.now() + ms;
  let done = 0;
  const started = process.hrtime.bigint();
  await Promise.all(
    Array.from({ length: inFlight }, async (_, worker) => {
      for (let i = worker; Date.now() < deadline; i += inFlight) {
        await op(i);
        done++;
      }
    }),
  );
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  return done / seconds;
}

function listSchedulers(client: ManagerClient, i: number): Promise<number> {
  const peer = i % DISTINCT_PEERS;
  return new Promise((resolve, reject) =>
    client.ListSchedulers({ sourceType: 'PEER_SOURCE', hostname: `node-${peer}`, ip: `10.${peer % 2 === 0 ? 1 : 2}.0.${peer % 250}`, idc: peer % 2 === 0 ? 'cluster-1' : 'cluster-2' }, (err, res) =>
      err ? reject(err) : resolve(res!.schedulers.length),
    ),
  );
}

export async function run(): Promise<BenchFigure[]> {
  const dbname = `mgr_bench_${Date.now().toString(36)}_${randomBytes(3).toString('hex')}`;
  const keyPrefix = `${dbname}:`;
  const dir = mkdtempSync(path.join(tmpdir(), 'manager-bench-'));
  const config = (redis: boolean, localTtl = '30s') =>
    parseConfig('manager', { security: { insecure: true },
      cache: { local: { ttl: localTtl } },
      server: { workHome: dir, rest: { addr: '127.0.0.1:0' }, grpc: { listenIP: '127.0.0.1', port: { start: 0, end: 0 } } },
      metrics: { enable: false },
      database: { type: 'mysql', mysql: { ...MYSQL, dbname }, redis: { addrs: redis ? ['127.0.0.1:6379'] : [], keyPrefix } },
      auth: { demoCredentials: true },
      keepAlive: { timeout: '10m' },
    });
  const managers: ManagerHandle[] = [];
  const clients: ManagerClient[] = [];
  const pool = mysql.createPool({ ...MYSQL, database: dbname, connectionLimit: 10 });
  try {
    const cached = await startManager(config(true), { logger: silentLogger() });
    managers.push(cached);
    // Two clusters (seed 000), two active schedulers each.
    await cached.store.createCluster({ name: 'cluster-b', bio: '', config: {}, clientConfig: {}, scopes: { idc: 'cluster-2', location: '', cidrs: ['10.2.0.0/16'], hostnames: [] }, isDefault: false }, { name: 'cluster-b', bio: '', config: {} });
    for (const [clusterId, host] of [[1, 'a-1'], [1, 'a-2'], [2, 'b-1'], [2, 'b-2']] as const) {
      await cached.registry.updateScheduler({ hostname: `scheduler-${host}`, ip: `10.${clusterId}.0.${host.endsWith('1') ? 10 : 11}`, schedulerClusterId: clusterId, port: 8002, idc: '', location: '', features: [], config: {} });
      await cached.registry.keepAlive('SCHEDULER_SOURCE', `scheduler-${host}`, `10.${clusterId}.0.${host.endsWith('1') ? 10 : 11}`, clusterId, 'active');
    }
    const uncached = await startManager(config(false), { logger: silentLogger(), disableCache: true });
    managers.push(uncached);
    const client = (m: ManagerHandle) => {
      const c = new (protos().manager.manager.v2.Manager)(`127.0.0.1:${m.grpcPort}`, grpc.credentials.createInsecure(), GRPC_OPTIONS);
      clients.push(c);
      return c;
    };
    const cachedClient = client(cached);
    const uncachedClient = client(uncached);
    // Shared Redis level only: in-process TTL 0.
    const redisLevel = await startManager(config(true, '0s'), { logger: silentLogger() });
    managers.push(redisLevel);
    const redisClient = client(redisLevel);

    // Sanity: both answer with all four active schedulers, so the figures measure real answers.
    if ((await listSchedulers(cachedClient, 1)) !== 4 || (await listSchedulers(uncachedClient, 1)) !== 4) throw new Error('unexpected ListSchedulers answer');
    // Warm every cache level and channel, then run the variants interleaved in short rounds,
    // so a load spike on this shared machine hits all of them alike.
    const health = new (grpc.makeGenericClientConstructor({}, ''))(`127.0.0.1:${cached.grpcPort}`, grpc.credentials.createInsecure());
    const peerQuery = (i: number) => {
      const peer = i % DISTINCT_PEERS;
      return { sourceType: 'PEER_SOURCE' as const, hostname: `node-${peer}`, ip: `10.${peer % 2 === 0 ? 1 : 2}.0.${peer % 250}`, idc: peer % 2 === 0 ? 'cluster-1' : 'cluster-2' };
    };
    const variants: Record<string, (i: number) => Promise<unknown>> = {
      withCache: (i) => listSchedulers(cachedClient, i),
      redisOnly: (i) => listSchedulers(redisClient, i),
      withoutCache: (i) => listSchedulers(uncachedClient, i),
      pointSelect: (i) => pool.query('SELECT * FROM scheduler_cluster WHERE id = ?', [(i % 2) + 1]),
      // Transport ceiling: the cheapest unary call the same server answers (grpc.health.v1 Check).
      healthCheck: () =>
        new Promise<void>((resolve, reject) =>
          health.makeUnaryRequest('/grpc.health.v1.Health/Check', (b: Buffer) => b, (b: Buffer) => b, Buffer.from([0x0a, 0x00]), (err) => (err ? reject(err) : resolve())),
        ),
      // The manager's own cost without the transport.
      inProcessCached: (i) => cached.registry.listSchedulers(peerQuery(i)),
      inProcessUncached: (i) => uncached.registry.listSchedulers(peerQuery(i)),
    };
    for (const op of Object.values(variants)) await rate(300, IN_FLIGHT, op);
    const totals: Record<string, number> = {};
    for (let round = 0; round < ROUNDS; round++) {
      for (const [name, op] of Object.entries(variants)) totals[name] = (totals[name] ?? 0) + (await rate(PHASE_MS / ROUNDS, IN_FLIGHT, op)) / ROUNDS;
    }
    health.close();
    const { withCache, redisOnly, withoutCache, pointSelect, healthCheck, inProcessCached, inProcessUncached } = totals;

    const base = { area: 'manager', unit: 'answers/s', baselineName: 'mysql2 point select, same MariaDB', baselineValue: pointSelect, baselineUnit: 'queries/s' };
    const note = `${IN_FLIGHT} calls in flight, ${PHASE_MS / 1000} s per variant in ${ROUNDS} interleaved rounds, ${DISTINCT_PEERS} distinct peers, 2 clusters × 2 active schedulers, one gRPC channel`;
    return [
      { ...base, name: 'ListSchedulers over gRPC, Redis + in-process cache', value: withCache, note },
      { ...base, name: 'ListSchedulers over gRPC, Redis cache only (in-process TTL 0)', value: redisOnly, note },
      { ...base, name: 'ListSchedulers over gRPC, cache disabled (MariaDB every call)', value: withoutCache, note },
      { ...base, name: 'gRPC health Check on the same server (transport ceiling)', value: healthCheck, unit: 'calls/s', note: `${IN_FLIGHT} calls in flight; the upper bound for any unary answer here` },
      { ...base, name: 'Registry.listSchedulers in-process, cache hit', value: inProcessCached, note: 'no transport: the manager\'s own cost per answer' },
      { ...base, name: 'Registry.listSchedulers in-process, cache disabled', value: inProcessUncached, note: 'no transport: searcher + 2 MariaDB queries per answer' },
    ];
  } finally {
    for (const c of clients) c.close();
    for (const m of managers) await m.stop();
    await pool.end();
    const admin = await mysql.createConnection(MYSQL);
    await admin.query(`DROP DATABASE IF EXISTS \`${dbname}\``);
    await admin.end();
    const redis = new Redis({ host: '127.0.0.1', port: 6379, lazyConnect: true });
    await redis.connect();
    const keys = await redis.keys(`${keyPrefix}*`);
    if (keys.length) await redis.del(...keys);
    redis.disconnect();
    rmSync(dir, { recursive: true, force: true });
  }
}

if (require.main === module) runStandalone(run);
