#!/usr/bin/env node
/**
 * `npm start`: a whole Dragonfly cluster on this one machine with embedded defaults — the
 * manager (embedded SQLite), a scheduler, a seed peer and a peer — each with its own data
 * under one work directory (LOCAL_CLUSTER_DIR, default <tmp>/dragonfly-local-cluster).
 * Ctrl-C / SIGTERM stops them all, newest first.
 */
import './common/threadpool'; // first: sizes the thread pool before any file call
import * as fs from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { Redis } from 'ioredis';
import { parseConfig } from './common/config';
import { createDevCa, issueDevCert } from './common/dev-pki';
import { identityUri, type ComponentIdentity } from './common/tls';
import { onShutdown } from './common/lifecycle';
import { createLogger, type Logger } from './common/logger';
import { startDfdaemon, type DfdaemonHandle } from './dfdaemon/daemon';
import { startManager, type ManagerHandle } from './manager/server';
import { startSampleRegistry } from './sample-registry';
import { startScheduler, type SchedulerHandle } from './scheduler/server';

export interface LocalClusterOptions {
  readonly workDir: string;
  readonly logger: Logger;
  /** Ports of the well-known endpoints; 0 everywhere picks free ones (tests). */
  readonly ports?: Partial<typeof DEFAULT_PORTS>;
  /**
   * Registries the peer's proxy may reach besides Docker Hub (proxy.registryMirror.url), as
   * proxy.whiteList entries; the proxy refuses every other upstream.
   */
  readonly proxyWhiteList?: ReadonlyArray<{ host?: string; regx?: string; ports?: string[] }>;
  /**
   * Redis for jobs ("host:port"); false: none. Default: 127.0.0.1:6379 when it answers a PING
   * (env LOCAL_CLUSTER_REDIS overrides: an address, or "off").
   */
  readonly redis?: string | false;
  /** Key prefix of the jobs' Redis keys (tests keep apart with it). */
  readonly redisKeyPrefix?: string;
}

export const DEFAULT_LOCAL_REDIS = '127.0.0.1:6379';

/** Whether a Redis answers PING at `addr` within a second. */
export async function redisAnswers(addr: string): Promise<boolean> {
  const i = addr.lastIndexOf(':');
  const client = new Redis({ host: addr.slice(0, i), port: Number(addr.slice(i + 1)), lazyConnect: true, connectTimeout: 1000, maxRetriesPerRequest: 0, retryStrategy: () => null, enableOfflineQueue: false });
  client.on('error', () => undefined);
  try {
    await client.connect();
    return (await client.ping()) === 'PONG';
  } catch {
    return false;
  } finally {
    client.disconnect();
  }
}

/** What `npm start`'s proxy may pull from besides Docker Hub. */
export const DEFAULT_LOCAL_PROXY_WHITELIST = [{ host: 'ghcr.io' }];

/**
 * The whiteList plus the sample registry's loopback port. The proxy takes the first entry naming a
 * host (as Go's checkWhiteList), so the port joins an existing 127.0.0.1 entry instead of a second one.
 */
function withSampleRegistry(entries: NonNullable<LocalClusterOptions['proxyWhiteList']>, port: number): Array<{ host?: string; regx?: string; ports?: string[] }> {
  const list = entries.map((e) => ({ ...e, ports: e.ports ? [...e.ports] : undefined }));
  const loopback = list.find((e) => e.host === LOOPBACK);
  if (!loopback) list.push({ host: LOOPBACK, ports: [String(port)] });
  else if (loopback.ports && loopback.ports.length > 0) loopback.ports.push(String(port));
  return list;
}

export const DEFAULT_PORTS = {
  managerRest: 8080,
  managerGrpc: 65003,
  managerMetrics: 8000,
  scheduler: 8002,
  schedulerMetrics: 8001,
  peerGrpc: 65000,
  peerProxy: 65001,
  peerUpload: 65002,
  peerMetrics: 8004,
  seedMetrics: 8003,
};

export interface LocalCluster {
  readonly lines: readonly string[];
  /** The CA (`ca/ca.crt`) and each program's `tls.crt`/`tls.key` under `<name>/`. */
  readonly pkiDir: string;
  readonly manager: ManagerHandle;
  readonly scheduler: SchedulerHandle;
  readonly seed: DfdaemonHandle;
  readonly peer: DfdaemonHandle;
  stop(): Promise<void>;
}

const LOOPBACK = '127.0.0.1';

/** Single-quoted for a POSIX shell, so the printed command works when pasted as is. */
function shellQuote(s: string): string {
  return /^[\w@%+=:,./-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`;
}

/** The dfget command printed by `npm start`: through the peer's download socket (each daemon has its own). */
export function tryItDfget(url: string, output: string, socket: string): string {
  return ['node', 'build/services/dfget/main.js', url, '-O', output, '--overwrite', '-e', socket].map(shellQuote).join(' ');
}

/**
 * A fresh CA and one certificate per program under `<workDir>/pki` (openssl), so the local
 * cluster runs with mTLS like a deployed one. Returns each program's `security` block.
 */
export function localPki(workDir: string): { dir: string; security: (name: string, id: ComponentIdentity) => { caCert: string; cert: string; key: string } } {
  const dir = path.join(workDir, 'pki');
  fs.rmSync(dir, { recursive: true, force: true });
  const ca = createDevCa(path.join(dir, 'ca'), 'dragonfly-local-cluster-ca');
  return {
    dir,
    security: (name, id) => {
      const c = issueDevCert(ca, path.join(dir, name), { commonName: name, uris: [identityUri(id)], ipAddresses: [LOOPBACK], dnsNames: ['localhost'] });
      return { caCert: ca.certFile, cert: c.certFile, key: c.keyFile };
    },
  };
}

export async function startLocalCluster(options: LocalClusterOptions): Promise<LocalCluster> {
  const ports = { ...DEFAULT_PORTS, ...options.ports };
  const { workDir, logger } = options;
  fs.mkdirSync(workDir, { recursive: true });
  const stops: Array<() => Promise<void>> = [];
  const stop = async () => {
    for (const s of stops.splice(0).reverse()) await s().catch((err: unknown) => logger.warn({ err }, 'stop failed'));
  };
  let redis: string | undefined;
  if (options.redis === undefined) redis = (await redisAnswers(DEFAULT_LOCAL_REDIS)) ? DEFAULT_LOCAL_REDIS : undefined;
  else if (options.redis) redis = options.redis;
  const pki = localPki(workDir);
  const redisConfig = redis ? { redis: { addrs: [redis], ...(options.redisKeyPrefix ? { keyPrefix: options.redisKeyPrefix } : {}) } } : {};
  try {
    const manager = await startManager(
      parseConfig('manager', {
        server: { workHome: path.join(workDir, 'manager'), rest: { addr: `${LOOPBACK}:${ports.managerRest}` }, grpc: { listenIP: LOOPBACK, port: { start: ports.managerGrpc, end: ports.managerGrpc } } },
        database: { type: 'sqlite', sqlite: { file: path.join(workDir, 'manager', 'manager.db') }, ...redisConfig },
        metrics: { enable: true, addr: `${LOOPBACK}:${ports.managerMetrics}` },
        // A single-machine cluster on loopback: the demo password, as the banner below says.
        auth: { demoCredentials: true },
        security: pki.security('manager', { role: 'manager' }),
      }),
      { logger: logger.child({ component: 'manager' }) },
    );
    stops.push(() => manager.stop());
    const managerAddr = `${LOOPBACK}:${manager.grpcPort}`;

    const scheduler = await startScheduler(
      parseConfig('scheduler', {
        server: { advertiseIP: LOOPBACK, listenIP: LOOPBACK, port: ports.scheduler },
        manager: { addr: managerAddr, schedulerClusterID: 1, keepAlive: { interval: '5s' } },
        dynConfig: { refreshInterval: '10s' },
        metrics: { enable: true, addr: `${LOOPBACK}:${ports.schedulerMetrics}` },
        database: redisConfig,
        security: pki.security('scheduler', { role: 'scheduler', clusterId: 1 }),
      }),
      { logger: logger.child({ component: 'scheduler' }) },
    );
    stops.push(() => scheduler.stop());

    // One blob on loopback for the proxy's "try it" line (no registry on the Internet needed).
    const sample = await startSampleRegistry(LOOPBACK, 0);
    stops.push(() => sample.close());
    const sampleRegistry = `http://${LOOPBACK}:${sample.port}`;
    const whiteList = withSampleRegistry(options.proxyWhiteList ?? DEFAULT_LOCAL_PROXY_WHITELIST, sample.port);

    const daemonConfig = (name: string, seed: boolean, p: { grpc: number; proxy: number; upload: number; metrics: number }) =>
      parseConfig('dfdaemon', {
        dataDir: path.join(workDir, name, 'data'),
        host: { advertiseIP: LOOPBACK, hostname: name },
        metrics: `${LOOPBACK}:${p.metrics}`,
        scheduler: {
          manager: { enable: true, netAddrs: [{ type: 'tcp', addr: managerAddr }], refreshInterval: '10s', seedPeer: { enable: seed, clusterID: 1 } },
          announceInterval: '10s',
        },
        download: { downloadGRPC: { unixListen: { socket: path.join(workDir, name, 'dfdaemon.sock') } }, peerGRPC: { tcpListen: { listen: LOOPBACK, port: p.grpc } } },
        upload: { tcpListen: { listen: LOOPBACK, port: p.upload } },
        proxy: { tcpListen: { listen: LOOPBACK, port: p.proxy }, whiteList },
        security: pki.security(name, { role: seed ? 'seed-peer' : 'peer', clusterId: 1 }),
      });

    const seed = await startDfdaemon(daemonConfig('seed-peer', true, { grpc: 0, proxy: 0, upload: 0, metrics: ports.seedMetrics }), { logger: logger.child({ component: 'seed-peer' }) });
    stops.push(() => seed.stop());
    const peer = await startDfdaemon(
      daemonConfig('peer', false, { grpc: ports.peerGrpc, proxy: ports.peerProxy, upload: ports.peerUpload, metrics: ports.peerMetrics }),
      { logger: logger.child({ component: 'peer' }) },
    );
    stops.push(() => peer.stop());

    const lines = [
      `work dir         ${workDir}`,
      `manager          REST + console http://${LOOPBACK}:${manager.restPort}  gRPC ${managerAddr}  metrics :${manager.metricsPort ?? '-'}  (user root / dragonfly)`,
      `scheduler        gRPC ${LOOPBACK}:${scheduler.port}  metrics :${scheduler.metricsPort}`,
      `seed peer        gRPC ${LOOPBACK}:${seed.grpcPort}  proxy :${seed.proxyPort}  upload :${seed.uploadPort}  metrics :${seed.metricsPort}  socket ${seed.config.download.downloadGRPC.unixListen.socket}`,
      redis
        ? `jobs             on, queues in Redis ${redis} (POST /api/v1/jobs: preheat, get_task, delete_task, sync_peers)`
        : `jobs             off: no Redis answered at ${DEFAULT_LOCAL_REDIS} (start one, or set LOCAL_CLUSTER_REDIS=host:port); /api/v1/jobs answers 503`,
      `peer             gRPC ${LOOPBACK}:${peer.grpcPort}  proxy :${peer.proxyPort}  upload :${peer.uploadPort}  metrics :${peer.metricsPort}  socket ${peer.config.download.downloadGRPC.unixListen.socket}`,
      `mTLS             every gRPC port; CA ${path.join(pki.dir, 'ca', 'ca.crt')}, each program's tls.crt/tls.key in ${pki.dir}/<program>/ (made at start with openssl)`,
      `sample registry  ${sampleRegistry} (one ${sample.size / 1024 / 1024} MiB blob, ${sample.digest}; the peer's proxy may reach it)`,
      '',
      'try it (from the repository root):',
      `  ${tryItDfget(`http://${LOOPBACK}:${manager.restPort}/healthy`, path.join(workDir, 'try-it.out'), peer.config.download.downloadGRPC.unixListen.socket)}`,
      `  curl -sSf -o ${path.join(workDir, 'try-it.blob')} -H 'X-Dragonfly-Registry: ${sampleRegistry}' http://${LOOPBACK}:${peer.proxyPort}${sample.blobPath} && sha256sum ${path.join(workDir, 'try-it.blob')}`,
      '',
      'Ctrl-C stops everything.',
    ];
    return { lines, pkiDir: pki.dir, manager, scheduler, seed, peer, stop };
  } catch (err) {
    await stop();
    throw err;
  }
}

if (require.main === module) {
  const logger = createLogger({ name: 'local-cluster', level: (process.env.LOG_LEVEL as 'info' | undefined) ?? 'warn' });
  const workDir = process.env.LOCAL_CLUSTER_DIR ?? path.join(tmpdir(), 'dragonfly-local-cluster');
  const envRedis = process.env.LOCAL_CLUSTER_REDIS;
  startLocalCluster({ workDir, logger, redis: envRedis === 'off' ? false : envRedis || undefined })
    .then((cluster) => {
      process.stdout.write(`Dragonfly local cluster is up:\n${cluster.lines.map((l) => `  ${l}`).join('\n')}\n`);
      onShutdown(logger, () => cluster.stop(), 15_000);
    })
    .catch((err: unknown) => {
      process.stderr.write(`local-cluster: ${err instanceof Error ? err.message : String(err)}\n`);
      process.exit(1);
    });
}
