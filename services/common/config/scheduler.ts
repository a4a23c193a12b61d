/** scheduler.yaml: keys of the Go-era Dragonfly scheduler. */
import { z } from 'zod';
import { isIP } from 'node:net';
import { securityBlock } from './security';
import { commonKeys, duration, hostPort, ipAddress, logDir, metricsBlock, port } from './primitives';

/** "10.0.0.5:65000" or "[fd00::5]:65000": an IP literal (seed peers are matched by address). */
const ipPort = z.string().refine((v) => {
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([0-9.]+)):(\d{1,5})$/.exec(v);
  return !!m && isIP(m[1] ?? m[2]) !== 0 && Number(m[3]) > 0 && Number(m[3]) <= 65535;
}, 'expected "ip:port" of a seed peer\'s gRPC port, e.g. "10.0.0.5:65000" or "[fd00::5]:65000"');

export const schedulerConfigSchema = z.strictObject({
  server: z
    .strictObject({
      advertiseIP: ipAddress.default(''),
      advertisePort: port.default(0),
      listenIP: ipAddress.default('0.0.0.0'),
      port: port.default(8002),
      host: z.string().default(''),
      /** Compatibility only (a warning at start): the scheduler keeps no files. */
      workHome: z.string().optional(),
      logDir,
    })
    .prefault({}),
  scheduler: z
    .strictObject({
      /** Compatibility only (a warning at start): "default" is the one algorithm. */
      algorithm: z.enum(['default']).optional(),
      /** At most this many peers of one task go to the origin at once. */
      backToSourceCount: z.number().int().min(0).default(3),
      retryBackToSourceLimit: z.number().int().min(0).default(4),
      retryLimit: z.number().int().min(1).default(5),
      retryInterval: duration.prefault('500ms'),
      /** Used until the manager's cluster config says otherwise. */
      candidateParentLimit: z.number().int().min(1).max(20).default(4),
      filterParentLimit: z.number().int().min(1).max(1000).default(40),
      gc: z
        .strictObject({
          peerGCInterval: duration.prefault('10s'),
          peerTTL: duration.prefault('24h'),
          taskGCInterval: duration.prefault('30m'),
          hostGCInterval: duration.prefault('1m'),
          hostTTL: duration.prefault('1h'),
        })
        .prefault({}),
      /**
       * Hard caps on what peers can make the scheduler hold; a request beyond one is answered
       * RESOURCE_EXHAUSTED. Hosts announce their own interval; it is clamped to
       * maxAnnounceInterval so a silent host is collected after at most twice that.
       */
      limits: z
        .strictObject({
          hosts: z.number().int().min(1).default(20_000),
          tasks: z.number().int().min(1).default(100_000),
          peers: z.number().int().min(1).default(500_000),
          peersPerTask: z.number().int().min(1).default(20_000),
          streamsPerHost: z.number().int().min(1).default(1_000),
          maxAnnounceInterval: duration.prefault('10m'),
        })
        .prefault({}),
    })
    .prefault({}),
  dynConfig: z.strictObject({ refreshInterval: duration.prefault('1m') }).prefault({}),
  host: z.strictObject({ idc: z.string().default(''), location: z.string().default('') }).prefault({}),
  manager: z
    .strictObject({
      /** Manager gRPC address; empty runs the scheduler without a manager (static config). */
      addr: z.union([z.literal(''), hostPort]).default(''),
      schedulerClusterID: z.number().int().min(1, 'expected a cluster id of 1 or more').default(1),
      keepAlive: z.strictObject({ interval: duration.prefault('5s') }).prefault({}),
    })
    .prefault({}),
  seedPeer: z
    .strictObject({
      enable: z.boolean().default(true),
      /**
       * Seed peers ("ip:port" of their DfdaemonUpload gRPC) trusted beside the manager's list,
       * for a scheduler run without a manager. Only these and the manager's seed peers may
       * announce SUPER_HOST and receive seed triggers (with the request's headers).
       */
      addrs: z.array(ipPort).max(1000).default([]),
    })
    .prefault({}),
  /**
   * The manager's Redis, where each scheduler cluster has its job queue (preheat, get_task,
   * delete_task, sync_peers). A remote cluster reaches the central Redis here (the chart's
   * `externalRedis`). No addrs: this scheduler takes no jobs.
   */
  database: z
    .strictObject({
      redis: z
        .strictObject({
          addrs: z.array(hostPort).default([]),
          masterName: z.string().default(''),
          username: z.string().default(''),
          password: z.string().default(''),
          db: z.number().int().min(0).max(15).default(0),
          /** Must equal the manager's `database.redis.keyPrefix`: the queues live under it. */
          keyPrefix: z.string().default('manager:'),
        })
        .prefault({}),
    })
    .prefault({}),
  job: z
    .strictObject({
      /** Consume this cluster's job queue (needs database.redis.addrs). */
      enable: z.boolean().default(true),
      /** Jobs this scheduler runs at once. */
      schedulerWorkerNum: z.number().int().min(1).max(64).default(4),
      /** Peers one job talks to at once (preheat triggers, task stat and delete calls). */
      peerConcurrency: z.number().int().min(1).max(256).default(16),
    })
    .prefault({}),
  /** mTLS of the gRPC server and of the calls to the manager and to peers. */
  security: securityBlock,
  metrics: metricsBlock,
  ...commonKeys,
});

export type SchedulerConfigInput = z.input<typeof schedulerConfigSchema>;
export type SchedulerConfig = z.output<typeof schedulerConfigSchema>;
