/** scheduler.yaml: keys of the Go-era Dragonfly scheduler. */
import { z } from 'zod';
import { commonKeys, duration, hostPort, ipAddress, metricsBlock, port } from './primitives';

export const schedulerConfigSchema = z.strictObject({
  server: z
    .strictObject({
      advertiseIP: ipAddress.default(''),
      advertisePort: port.default(0),
      listenIP: ipAddress.default('0.0.0.0'),
      port: port.default(8002),
      host: z.string().default(''),
      workHome: z.string().default('/var/lib/dragonfly/scheduler'),
      logDir: z.string().default(''),
    })
    .prefault({}),
  scheduler: z
    .strictObject({
      algorithm: z.enum(['default']).default('default'),
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
  seedPeer: z.strictObject({ enable: z.boolean().default(true) }).prefault({}),
  metrics: metricsBlock,
  ...commonKeys,
});

export type SchedulerConfigInput = z.input<typeof schedulerConfigSchema>;
export type SchedulerConfig = z.output<typeof schedulerConfigSchema>;
