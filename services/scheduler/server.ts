/**
 * Wires the scheduler: resource store + service, gRPC server (scheduler.v2.Scheduler and
 * grpc.health.v1), ops server (/metrics, /healthy), GC timers and the manager link.
 */
import * as os from 'node:os';
import type * as http from 'node:http';
import type * as grpc from '@grpc/grpc-js';
import { compatibilityWarnings, type SchedulerConfig } from '../common/config';
import { startGrpcServer, type GrpcServerHandle } from '../common/grpc';
import { closeServer, createMetricsRegistry, createOpsServer, listen } from '../common/http';
import { createLogger, type Logger } from '../common/logger';
import { TransportSecurity } from '../common/tls';
import { schedulerService } from '../proto';
import { withAnswerCodec } from './answer-codec';
import { withRequestCodec } from './request-codec';
import { schedulerHandlers } from './grpc-handlers';
import { ManagerLink, type ClusterConfig } from './manager-link';
import { GrpcPeerTaskClient, JobRunner, SchedulerJobWorker, type PeerTaskClient } from './jobs';
import { createSchedulerMetrics } from './metrics';
import { ResourceStore, type GcPass } from './resource/store';
import { GrpcSeedTrigger, type SeedHost, type SeedTrigger } from './seed-peers';
import { SchedulerService, type SchedulingSettings } from './service';
import { MAX_MESSAGE_BYTES } from './validation';
import { SchedulerTrace } from './tracing';
import { SchedulerUpstreamMetrics } from './upstream-metrics';
import { ATTR, Tracing } from '../common/telemetry';

/**
 * The scheduler's gRPC server options over GRPC_OPTIONS: its message size cap, and no channelz
 * (grpc-js otherwise counts every call, message and stream of every connection for a channelz
 * service nobody here serves).
 */
export const SCHEDULER_GRPC_OPTIONS = { 'grpc.max_receive_message_length': MAX_MESSAGE_BYTES, 'grpc.enable_channelz': 0 } as const;

/** scheduler.v2.Scheduler with the scheduler's own AnnouncePeer codecs (answers out, requests in). */
export function schedulerDefinition(): grpc.ServiceDefinition {
  return withRequestCodec(withAnswerCodec(schedulerService()));
}

/** Upload slots of a peer that announced none and for which the manager gave no load_limit. */
export const DEFAULT_UPLOAD_LIMIT = 50;
/** Entries a GC slice visits per turn of the event loop (about 0.3 ms of work). */
const GC_SLICE = 1_000;

export interface SchedulerHandle {
  readonly port: number;
  /** 0 when metrics are disabled. */
  readonly metricsPort: number;
  readonly service: SchedulerService;
  /** The manager link, when manager.addr is set. */
  readonly manager?: ManagerLink;
  /** The settings in force (static config overlaid with the manager's cluster config). */
  settings(): SchedulingSettings;
  stop(): Promise<void>;
}

export interface StartSchedulerOptions {
  readonly logger?: Logger;
  /** Replaces the gRPC seed trigger (tests). */
  readonly seedTrigger?: SeedTrigger;
  /** Manager registration backoff (tests shorten it). */
  readonly managerBackoff?: { readonly initialMs: number; readonly maxMs: number };
  /** Replaces the gRPC StatTask/DeleteTask client of jobs (tests). */
  readonly peerTaskClient?: PeerTaskClient;
}

/** server.advertiseIP, else the first non-internal IPv4 address, else 127.0.0.1. */
export function advertiseIPOf(configured: string): string {
  if (configured) return configured;
  for (const addrs of Object.values(os.networkInterfaces())) {
    for (const a of addrs ?? []) if (a.family === 'IPv4' && !a.internal) return a.address;
  }
  return '127.0.0.1';
}

export async function startScheduler(config: SchedulerConfig, options: StartSchedulerOptions = {}): Promise<SchedulerHandle> {
  const logger = options.logger ?? createLogger({ name: 'scheduler', verbose: config.verbose });
  for (const w of compatibilityWarnings('scheduler', config)) logger.warn({ key: w.key }, w.message);
  const security = TransportSecurity.fromConfig(config.security, logger, 'scheduler');
  const store = new ResourceStore();
  const registry = createMetricsRegistry('scheduler');
  const events = createSchedulerMetrics(registry, store);
  const upstreamMetrics = new SchedulerUpstreamMetrics(registry, { enableHost: config.metrics.enableHost });
  const tracing = Tracing.start({
    serviceName: 'dragonfly-scheduler',
    jaeger: config.jaeger,
    attributes: { 'host.name': config.server.host || os.hostname(), 'host.ip': advertiseIPOf(config.server.advertiseIP), [ATTR.IDC]: config.host.idc, [ATTR.LOCATION]: config.host.location, [ATTR.CLUSTER_ID]: config.manager.schedulerClusterID },
    registry,
  });
  const trigger = options.seedTrigger ?? new GrpcSeedTrigger(logger, security.channelCredentials(['seed-peer']));
  let cluster: ClusterConfig | undefined;
  const settings = (): SchedulingSettings => ({
    candidateParentLimit: cluster?.candidateParentLimit ?? config.scheduler.candidateParentLimit,
    filterParentLimit: cluster?.filterParentLimit ?? config.scheduler.filterParentLimit,
    defaultUploadLimit: cluster?.loadLimit ?? DEFAULT_UPLOAD_LIMIT,
    backToSourceCount: config.scheduler.backToSourceCount,
    retryLimit: config.scheduler.retryLimit,
    retryBackToSourceLimit: config.scheduler.retryBackToSourceLimit,
    retryIntervalMs: config.scheduler.retryInterval,
    seedPeerEnabled: config.seedPeer.enable,
  });
  // Settings are read on every decision: cache the object and rebuild it only on change.
  let current = settings();
  const staticSeeds: SeedHost[] = config.seedPeer.addrs.map((addr) => {
    const i = addr.lastIndexOf(':');
    const ip = addr.slice(0, i).replace(/^\[|\]$/g, '');
    return { key: `${ip}:${addr.slice(i + 1)}`, ip, port: Number(addr.slice(i + 1)), hostname: '' };
  });
  let trustedSeeds: readonly SeedHost[] = staticSeeds;
  const l = config.scheduler.limits;
  const service = new SchedulerService({
    store,
    settings: () => current,
    trigger,
    managerSeeds: () => trustedSeeds,
    limits: { hosts: l.hosts, tasks: l.tasks, peers: l.peers, peersPerTask: l.peersPerTask, streamsPerHost: l.streamsPerHost, maxAnnounceIntervalMs: l.maxAnnounceInterval },
    events,
    trace: new SchedulerTrace(tracing, config.manager.schedulerClusterID, upstreamMetrics), // telemetry
    logger,
  });
  let manager: ManagerLink | undefined;

  const grpcServer: GrpcServerHandle = await startGrpcServer(
    `${config.server.listenIP.includes(':') ? `[${config.server.listenIP}]` : config.server.listenIP}:${config.server.port}`,
    [{ name: 'scheduler.v2.Scheduler', definition: schedulerDefinition(), handlers: schedulerHandlers(service, logger, { refreshSeeds: () => manager?.refreshOnDemand() ?? Promise.resolve(), onCall: (m, ok) => upstreamMetrics.call(m, ok) }) }],
    security.serverCredentials(),
    SCHEDULER_GRPC_OPTIONS,
  );

  let ops: http.Server | undefined;
  let metricsPort = 0;
  try {
    if (config.metrics.enable) {
      ops = createOpsServer(registry, () => true);
      metricsPort = await listen(ops, config.metrics.addr);
    }
  } catch (err) {
    await grpcServer.shutdown(0);
    throw err;
  }

  const gcPolicy = { hostTTLMs: config.scheduler.gc.hostTTL, peerTTLMs: config.scheduler.gc.peerTTL };
  // Each interval starts a GC pass that walks the store in slices of GC_SLICE entries, one per
  // turn of the event loop: answers due meanwhile wait for one slice, not for a walk over every
  // peer kept until its TTL (tens of milliseconds with tens of thousands of finished peers).
  let gcPass: GcPass | undefined;
  let gcSlice: NodeJS.Immediate | undefined;
  const gcStep = (): void => {
    gcSlice = undefined;
    if (!gcPass) return;
    try {
      service.gcStep(gcPass, GC_SLICE);
    } catch (err) {
      gcPass = undefined;
      logger.error({ err }, 'garbage collection failed');
      return;
    }
    if (gcPass.done) gcPass = undefined;
    else gcSlice = setImmediate(gcStep);
  };
  const timers = [
    setInterval(() => {
      if (gcPass) return; // the previous pass is still under way
      gcPass = store.gcPass(gcPolicy);
      gcStep();
    }, Math.min(config.scheduler.gc.peerGCInterval, config.scheduler.gc.hostGCInterval, config.scheduler.gc.taskGCInterval)),
  ];
  for (const t of timers) t.unref();

  if (config.manager.addr) {
    manager = new ManagerLink({
      addr: config.manager.addr,
      credentials: security.channelCredentials(['manager']),
      hostname: config.server.host || os.hostname(),
      ip: advertiseIPOf(config.server.advertiseIP),
      port: config.server.advertisePort || grpcServer.port,
      idc: config.host.idc,
      location: config.host.location,
      clusterId: config.manager.schedulerClusterID,
      keepAliveIntervalMs: config.manager.keepAlive.interval,
      refreshIntervalMs: config.dynConfig.refreshInterval,
      logger,
      backoff: options.managerBackoff,
      onConfig: (c) => {
        cluster = c;
        current = settings();
        const byKey = new Map(staticSeeds.map((s) => [s.key, s]));
        for (const s of c.seedPeers) byKey.set(s.key, s);
        trustedSeeds = [...byKey.values()];
        service.revalidateSeeds();
        logger.debug({ candidateParentLimit: current.candidateParentLimit, filterParentLimit: current.filterParentLimit, seedPeers: c.seedPeers.length }, 'cluster config applied');
      },
    });
    manager.start();
  }

  // Jobs from the manager, on this cluster's queue in the manager's Redis.
  let jobs: SchedulerJobWorker | undefined;
  let peerTaskClient: PeerTaskClient | undefined;
  if (config.job.enable && config.database.redis.addrs.length > 0) {
    peerTaskClient = options.peerTaskClient ?? new GrpcPeerTaskClient(security.channelCredentials(['peer', 'seed-peer']));
    const runner = new JobRunner({ clusterId: config.manager.schedulerClusterID, service, trigger, peers: peerTaskClient, peerConcurrency: config.job.peerConcurrency, logger });
    jobs = new SchedulerJobWorker({
      redis: config.database.redis,
      clusterId: config.manager.schedulerClusterID,
      concurrency: config.job.schedulerWorkerNum,
      name: `${config.server.host || os.hostname()}-${grpcServer.port}`,
      runner,
      logger,
    });
    jobs.start();
  }

  logger.info({ port: grpcServer.port, metricsPort, manager: config.manager.addr || undefined, jobs: jobs ? config.database.redis.addrs : undefined }, 'scheduler started');
  let stopping: Promise<void> | undefined;
  return {
    port: grpcServer.port,
    metricsPort,
    service,
    manager,
    settings: () => current,
    stop: () => {
      stopping ??= (async () => {
        for (const t of timers) clearInterval(t);
        if (gcSlice) clearImmediate(gcSlice);
        gcPass = undefined;
        await jobs?.close();
        peerTaskClient?.close();
        await manager?.stop();
        service.close();
        trigger.close();
        await grpcServer.shutdown(2000);
        if (ops) await closeServer(ops);
        security.close();
        await tracing.shutdown();
      })();
      return stopping;
    },
  };
}
