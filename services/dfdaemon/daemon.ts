/**
 * Assembles a dfdaemon (or seed peer): piece store, upload server, DfdaemonUpload on TCP,
 * the download API on the unix socket only, scheduler pool with host announces, seed-peer
 * registration, GC and the metrics server. The registry-mirror proxy plugs in on top of `tasks`, `registry` and
 * `logger` of the returned handle.
 */
import * as os from 'node:os';
import type * as http from 'node:http';
import type { Registry } from 'prom-client';
import {
  closeServer,
  compatibilityWarnings,
  createLogger,
  createMetricsRegistry,
  createOpsServer,
  hostIdOf,
  listen,
  startGrpcServer,
  TransportSecurity,
  type DfdaemonConfig,
  type GrpcServerHandle,
  type Logger,
} from '../common';
import { dfdaemonUploadService } from '../proto';
import { SchedulerPool, SeedPeerRegistrar, type HostIdentity } from './control-plane';
import { serveDownloadSocket } from './download-socket';
import { uploadHandlers } from './grpc-services';
import { createDfdaemonMetrics, type DfdaemonMetrics } from './metrics';
import { bucketFor } from './rate-limiter';
import { TaskStore } from './storage';
import type { TaskApi } from './task-api';
import { TaskManager } from './task-manager';
import { UploadServer } from './upload-server';
import { UploadTrace, attachTracing, hostAttributes } from './tracing';
import { Tracing } from '../common/telemetry';
import { ClientUpstreamMetrics } from './upstream-metrics';
import { startProxyServer } from './proxy';

export interface DfdaemonHandle {
  readonly tasks: TaskApi;
  /** The engine itself (stat of pieces, store), for in-process front ends and tests. */
  readonly engine: TaskManager;
  readonly hostId: string;
  readonly host: HostIdentity;
  readonly grpcPort: number;
  readonly uploadPort: number;
  /** Registry-mirror proxy (proxy.tcpListen). */
  readonly proxyPort: number;
  /** 0 when metrics are disabled. */
  readonly metricsPort: number;
  readonly registry: Registry;
  readonly metrics: DfdaemonMetrics;
  readonly config: DfdaemonConfig;
  readonly logger: Logger;
  /** Extra shutdown steps (e.g. the proxy server), run first by stop(). */
  onStop(step: () => Promise<void>): void;
  stop(): Promise<void>;
}

/** host.advertiseIP, else the first non-internal IPv4 address, else 127.0.0.1. */
export function advertiseIpOf(config: DfdaemonConfig): string {
  if (config.host.advertiseIP) return config.host.advertiseIP;
  for (const addrs of Object.values(os.networkInterfaces())) {
    for (const a of addrs ?? []) if (a.family === 'IPv4' && !a.internal) return a.address;
  }
  return '127.0.0.1';
}

export async function startDfdaemon(config: DfdaemonConfig, options: { logger?: Logger } = {}): Promise<DfdaemonHandle> {
  const seed = config.scheduler.manager.seedPeer.enable;
  const logger = options.logger ?? createLogger({ name: seed ? 'seed-peer' : 'dfdaemon', verbose: config.verbose });
  for (const w of compatibilityWarnings('dfdaemon', config)) logger.warn({ key: w.key }, w.message);
  const registry = createMetricsRegistry('dfdaemon');
  const metrics = createDfdaemonMetrics(registry);
  const stopSteps: Array<() => Promise<void>> = [];
  const cleanup: Array<() => Promise<void>> = [];
  const runCleanup = async () => {
    for (const step of cleanup.reverse()) await step().catch((err: unknown) => logger.warn({ err }, 'shutdown step failed'));
  };

  try {
    const security = TransportSecurity.fromConfig(config.security, logger, 'dfdaemon');
    cleanup.push(async () => security.close());
    if (!config.upload.tls.enable && security.enabled) logger.info('upload.tls.enable is false: piece bytes between peers travel as plain HTTP (digests still checked)');
    const store = await TaskStore.open({
      dataDir: config.dataDir,
      keepStorage: config.keepStorage,
      taskExpireMs: config.storage.taskExpireTime,
      diskGCThreshold: config.storage.diskGCThreshold,
      highPercent: config.storage.diskGCThresholdPercent,
      lowPercent: config.storage.diskGCLowThresholdPercent,
      logger,
    });
    cleanup.push(() => store.close());

    const uploadTrace = new UploadTrace();
    // The task manager is made once the upload port is known; until then no download is pending.
    const late: { engine?: TaskManager } = {};
    const upload = new UploadServer({
      trace: uploadTrace,
      store,
      concurrentLimit: config.upload.concurrentLimit,
      rateLimit: bucketFor(config.upload.rateLimit, 64 * 1024 * 1024),
      metrics,
      logger,
      security: config.upload.tls.enable ? security : undefined,
      pendingEntry: (taskId) => late.engine?.pendingEntry(taskId),
    });
    const uploadPort = await listen(upload.server, { host: config.upload.tcpListen.listen, port: config.upload.tcpListen.port });
    cleanup.push(() => closeServer(upload.server));

    const hostname = config.host.hostname || os.hostname();
    const ip = advertiseIpOf(config);
    const host: HostIdentity = { id: hostIdOf(ip, hostname, seed), hostname, ip, seed, idc: config.host.idc, location: config.host.location, grpcPort: 0, uploadPort };
    const load = () => ({ limit: config.upload.concurrentLimit, ...upload.stats() });

    const schedulers = new SchedulerPool({ config, host, load, logger, security });
    const engine = new TaskManager({ store, config, host, schedulers, metrics, logger, security });
    late.engine = engine;
    cleanup.push(() => engine.stop());
    // Tracing (issue 18): one provider per program, flushed after everything else stopped.
    const tracing = Tracing.start({
      serviceName: seed ? 'dragonfly-seed-peer' : 'dragonfly-dfdaemon',
      jaeger: config.jaeger,
      attributes: hostAttributes(host, seed ? config.scheduler.manager.seedPeer.clusterID : undefined),
      registry,
    });
    cleanup.unshift(() => tracing.shutdown());
    attachTracing(engine, tracing, new ClientUpstreamMetrics(registry, metrics, () => upload.stats().active));
    uploadTrace.use(tracing);
    cleanup.push(async () => uploadTrace.close());

    // TCP serves peers and the scheduler only: the download API (which writes files) is on the socket.
    const tcp = `${config.download.peerGRPC.tcpListen.listen}:${config.download.peerGRPC.tcpListen.port}`;
    const grpcServer: GrpcServerHandle = await startGrpcServer(tcp, [
      { name: 'dfdaemon.v2.DfdaemonUpload', definition: dfdaemonUploadService(), handlers: uploadHandlers(engine) },
    ], security.serverCredentials());
    host.grpcPort = grpcServer.port;
    cleanup.push(() => grpcServer.shutdown(2000));

    const { socket } = config.download.downloadGRPC.unixListen;
    const downloadSocket = await serveDownloadSocket(engine, config.download.downloadGRPC.unixListen);
    cleanup.push(() => downloadSocket.close());

    // Seed peers register with the manager before asking it for their schedulers.
    let registrar: SeedPeerRegistrar | undefined;
    if (seed) {
      registrar = new SeedPeerRegistrar(config, host, logger, security);
      registrar.start();
      cleanup.push(async () => registrar?.stop());
    }
    await schedulers.start();
    cleanup.push(async () => schedulers.stop());

    const gcTimer = setInterval(() => {
      store
        .gc()
        .then(() => engine.updateGauge())
        .catch((err: unknown) => logger.warn({ err }, 'storage GC failed'));
    }, Math.max(1000, config.gcInterval));
    gcTimer.unref();
    cleanup.push(async () => clearInterval(gcTimer));

    let metricsPort = 0;
    if (config.metrics.enable) {
      const ops: http.Server = createOpsServer(registry);
      metricsPort = await listen(ops, config.metrics.addr);
      cleanup.push(() => closeServer(ops));
    }

    // Registry-mirror proxy on top of the engine; closed first on stop (cleanup runs in reverse).
    const proxy = await startProxyServer({ config, tasks: engine, logger, registry });
    cleanup.push(() => proxy.close());

    logger.info(
      { hostId: host.id, seed, grpcPort: host.grpcPort, uploadPort, proxyPort: proxy.port, metricsPort, socket, schedulers: schedulers.addresses() },
      seed ? 'seed peer started' : 'dfdaemon started',
    );

    let stopping: Promise<void> | undefined;
    return {
      tasks: engine,
      engine,
      hostId: host.id,
      host,
      grpcPort: host.grpcPort,
      uploadPort,
      proxyPort: proxy.port,
      metricsPort,
      registry,
      metrics,
      config,
      logger,
      onStop: (step) => stopSteps.push(step),
      stop: () => {
        stopping ??= (async () => {
          for (const step of stopSteps) await step().catch((err: unknown) => logger.warn({ err }, 'shutdown step failed'));
          await runCleanup();
        })();
        return stopping;
      },
    };
  } catch (err) {
    await runCleanup();
    throw err;
  }
}
