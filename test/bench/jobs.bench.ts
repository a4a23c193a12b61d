/**
 * Jobs benchmark: preheat of a 1 GiB image in four 256 MiB layers into one cluster (manager
 * on SQLite, queue on the local Redis under its own prefix, scheduler, one seed peer; all on
 * loopback), from POST /api/v1/jobs to SUCCESS — beside a direct pull of the same four blobs
 * from the same registry in the same run (token auth, four parallel GETs written to disk and
 * hashed, as a seed peer's store does).
 */
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as fsp from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { Redis } from 'ioredis';
import { parseConfig, silentLogger } from '../../services/common';
import { startDfdaemon } from '../../services/dfdaemon/daemon';
import { startManager } from '../../services/manager/server';
import { startScheduler } from '../../services/scheduler/server';
import { startTestRegistry } from '../integration/manager/test-registry';
import { type BenchFigure, runStandalone } from './types';

const MiB = 1024 * 1024;
const LAYER = 256 * MiB;
const REDIS = '127.0.0.1:6379';

async function until(check: () => Promise<boolean> | boolean, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error('condition not reached in time');
    await new Promise((r) => setTimeout(r, 50));
  }
}

async function dropPrefix(prefix: string): Promise<void> {
  const redis = new Redis({ host: '127.0.0.1', port: 6379, lazyConnect: true });
  try {
    await redis.connect();
    const keys = await redis.keys(`${prefix}*`);
    if (keys.length) await redis.del(...keys);
  } finally {
    redis.disconnect();
  }
}

export async function run(): Promise<BenchFigure[]> {
  const dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'jobs-bench-'));
  const prefix = `bench-jobs-${process.pid}-${Date.now().toString(36)}:`;
  const registry = await startTestRegistry({ images: [{ repository: 'bench/app', layerSizes: [LAYER, LAYER, LAYER, LAYER] }] });
  const stops: Array<() => Promise<unknown>> = [() => registry.close()];
  try {
    const image = registry.image('bench/app');

    // Baseline: the same blobs straight from the registry, to disk, hashed.
    const token = ((await (await fetch(`${registry.base}/token?service=test-registry&scope=repository:bench/app:pull`)).json()) as { token: string }).token;
    const directStart = performance.now();
    await Promise.all(
      image.layers.map(async (l, i) => {
        const res = await fetch(`${registry.base}/v2/bench/app/blobs/${l.digest}`, { headers: { authorization: `Bearer ${token}` } });
        const hash = createHash('sha256');
        const body = Readable.fromWeb(res.body as import('node:stream/web').ReadableStream<Uint8Array>);
        body.on('data', (c: Buffer) => hash.update(c));
        await pipeline(body, fs.createWriteStream(path.join(dir, `direct-${i}`)));
        if (`sha256:${hash.digest('hex')}` !== l.digest) throw new Error('direct pull: digest mismatch');
      }),
    );
    const directMs = performance.now() - directStart;
    for (let i = 0; i < image.layers.length; i++) await fsp.rm(path.join(dir, `direct-${i}`));

    const manager = await startManager(
      parseConfig('manager', { security: { insecure: true },
        server: { workHome: dir, rest: { addr: '127.0.0.1:0' }, grpc: { listenIP: '127.0.0.1', advertiseIP: '127.0.0.1', port: { start: 0, end: 0 } } },
        database: { type: 'sqlite', sqlite: { file: path.join(dir, 'manager.db') }, redis: { addrs: [REDIS], keyPrefix: prefix } },
        auth: { demoCredentials: true },
        job: { reconcileInterval: '100ms' },
        metrics: { enable: false },
      }),
      { logger: silentLogger() },
    );
    stops.push(() => manager.stop());
    const managerAddr = `127.0.0.1:${manager.grpcPort}`;
    const scheduler = await startScheduler(
      parseConfig('scheduler', { security: { insecure: true },
        server: { port: 0, listenIP: '127.0.0.1', advertiseIP: '127.0.0.1', host: 'bench-scheduler' },
        manager: { addr: managerAddr, schedulerClusterID: 1, keepAlive: { interval: '500ms' } },
        dynConfig: { refreshInterval: '1s' },
        metrics: { enable: false },
        database: { redis: { addrs: [REDIS], keyPrefix: prefix } },
      }),
      { logger: silentLogger() },
    );
    stops.push(() => scheduler.stop());
    const seedDir = path.join(dir, 'seed');
    const seed = await startDfdaemon(
      parseConfig('dfdaemon', { security: { insecure: true },
        dataDir: seedDir,
        workHome: seedDir,
        metrics: { enable: false, addr: ':0' },
        host: { hostname: 'bench-seed', advertiseIP: '127.0.0.1', listenIP: '127.0.0.1' },
        download: { peerGRPC: { tcpListen: { listen: '127.0.0.1', port: 0 } }, downloadGRPC: { unixListen: { socket: path.join(seedDir, 'dfdaemon.sock') } } },
        upload: { tcpListen: { listen: '127.0.0.1', port: 0 } },
        proxy: { tcpListen: { listen: '127.0.0.1', port: 0 } },
        scheduler: { manager: { enable: true, netAddrs: [{ addr: managerAddr }], seedPeer: { enable: true, clusterID: 1 } }, announceInterval: '1s' },
      }),
      { logger: silentLogger() },
    );
    stops.push(() => seed.stop());
    await until(() => scheduler.service.store.hosts.size >= 1, 30_000);

    const signin = await fetch(`http://127.0.0.1:${manager.restPort}/api/v1/users/signin`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ name: 'root', password: 'dragonfly' }) });
    const jwt = ((await signin.json()) as { token: string }).token;
    const headers = { authorization: `Bearer ${jwt}`, 'content-type': 'application/json' };
    const preheatStart = performance.now();
    const created = (await (
      await fetch(`http://127.0.0.1:${manager.restPort}/api/v1/jobs`, { method: 'POST', headers, body: JSON.stringify({ type: 'preheat', args: { type: 'image', url: registry.manifestUrl('bench/app') }, scheduler_cluster_ids: [1] }) })
    ).json()) as { id: number; state: string };
    let job = created;
    while (job.state === 'PENDING') {
      await new Promise((r) => setTimeout(r, 50));
      job = (await (await fetch(`http://127.0.0.1:${manager.restPort}/api/v1/jobs/${created.id}`, { headers })).json()) as typeof created;
    }
    const preheatMs = performance.now() - preheatStart;
    if (job.state !== 'SUCCESS') throw new Error(`preheat ended ${JSON.stringify(job)}`);
    for (const l of image.layers) if (!seed.tasks.stat(l.digest.slice(7))?.finished) throw new Error(`layer ${l.digest} not on the seed peer`);

    const note = `1 GiB in 4 × 256 MiB layers, loopback registry with token auth, seed peer stores and verifies each piece; ${os.cpus().length} cores`;
    return [
      {
        area: 'jobs',
        name: 'preheat of a 1 GiB four-layer image into one cluster (POST → SUCCESS)',
        value: Math.round(preheatMs),
        unit: 'ms',
        baselineName: 'direct pull of the same blobs (4 parallel GETs to disk, sha256)',
        baselineValue: Math.round(directMs),
        note,
      },
    ];
  } finally {
    for (const s of stops.reverse()) await s().catch(() => undefined);
    await dropPrefix(prefix);
    await fsp.rm(dir, { recursive: true, force: true });
  }
}

if (require.main === module) runStandalone(run);
