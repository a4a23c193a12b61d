/**
 * dfdaemon.yaml: keys of the Go-era Dragonfly dfdaemon (`dfget daemon`), which the seed
 * documents' chart `config:` blocks use. The same file runs a seed peer when
 * `scheduler.manager.seedPeer.enable` is true.
 */
import { z } from 'zod';
import { commonKeys, duration, hostPort, ipAddress, listenAddr, port, regex, size } from './primitives';

const netAddr = z.strictObject({ type: z.enum(['tcp']).default('tcp'), addr: hostPort });

const tcpListen = (defaultPort: number) =>
  z.strictObject({ listen: ipAddress.default('0.0.0.0'), port: port.default(defaultPort) }).prefault({});

export const proxyRuleSchema = z.strictObject({
  /** Matched against the URL without query and fragment. Go-era key name kept. */
  regx: regex,
  useHTTPS: z.boolean().default(false),
  /** Pass matching requests straight to the origin instead of P2P. */
  direct: z.boolean().default(false),
  /** Replace the authority of matching URLs with this host. */
  redirect: z.string().default(''),
});

export const registryMirrorSchema = z.strictObject({
  /** Upstream for mirror requests that carry neither X-Dragonfly-Registry nor ?ns=. */
  url: z.string().url('expected a URL such as https://index.docker.io').default('https://index.docker.io'),
  insecure: z.boolean().default(false),
  direct: z.boolean().default(false),
  dynamic: z.boolean().default(true),
});

export const dfdaemonConfigSchema = z.strictObject({
  aliveTime: duration.prefault('0s'),
  gcInterval: duration.prefault('1m'),
  workHome: z.string().default('/var/lib/dragonfly'),
  dataDir: z.string().default('/var/lib/dragonfly'),
  logDir: z.string().default(''),
  /** Keep finished tasks across restarts (chart default true). */
  keepStorage: z.boolean().default(true),
  /** Go dfdaemon writes `metrics: ":8000"`; `{enable, addr}` is accepted too. */
  metrics: z
    .union([listenAddr, z.literal(''), z.strictObject({ enable: z.boolean().default(true), addr: listenAddr.default(':8000') })])
    .default(':8000')
    .transform((m) => (typeof m === 'string' ? { enable: m !== '', addr: m === '' ? ':8000' : m } : m)),
  host: z
    .strictObject({
      idc: z.string().default(''),
      location: z.string().default(''),
      hostname: z.string().default(''),
      advertiseIP: ipAddress.default(''),
      listenIP: ipAddress.default('0.0.0.0'),
      /** Non-zero: skip the manager's searcher and use this scheduler cluster. */
      schedulerClusterID: z.number().int().min(0).default(0),
    })
    .prefault({}),
  scheduler: z
    .strictObject({
      manager: z
        .strictObject({
          enable: z.boolean().default(true),
          netAddrs: z.array(netAddr).default([]),
          refreshInterval: duration.prefault('5m'),
          seedPeer: z
            .strictObject({
              enable: z.boolean().default(false),
              type: z.enum(['super', 'strong', 'weak']).default('super'),
              clusterID: z.number().int().min(1, 'expected a seed-peer cluster id of 1 or more').default(1),
              keepAlive: z.strictObject({ interval: duration.prefault('5s') }).prefault({}),
            })
            .prefault({}),
        })
        .prefault({}),
      /** Static schedulers, used when no manager is configured. */
      netAddrs: z.array(netAddr).default([]),
      scheduleTimeout: duration.prefault('30s'),
      disableAutoBackSource: z.boolean().default(false),
      announceInterval: duration.prefault('30s'),
    })
    .prefault({}),
  download: z
    .strictObject({
      calculateDigest: z.boolean().default(true),
      totalRateLimit: size.prefault('50GB'),
      perPeerRateLimit: size.prefault('50GB'),
      backSourceRateLimit: size.prefault('50GB'),
      /** Total time for one piece from a parent or the origin (not only idle: a slow drip ends too). */
      pieceDownloadTimeout: duration.prefault('60s'),
      /** How long a DfdaemonUpload.DownloadTask call (the scheduler's seed trigger) may run before DEADLINE_EXCEEDED. */
      seedTriggerTimeout: duration.prefault('30m'),
      concurrentPieceCount: z.number().int().min(1).max(64).default(8),
      prefetch: z.boolean().default(false),
      downloadGRPC: z
        .strictObject({
          /**
           * The download API (DfdaemonDownload: dfget, local tools) listens only here, never on
           * TCP: a caller of DownloadTask names a file the daemon (root) writes.
           */
          unixListen: z
            .strictObject({
              socket: z.string().min(1, 'expected the path of the download API unix socket').default('/var/run/dragonfly/dfdaemon.sock'),
              /** File mode of the socket, octal: who may call the download API. */
              socketMode: z
                .string()
                .regex(/^0?[0-7]{3}$/, 'expected an octal file mode such as "0600" or "0660"')
                .default('0600'),
              /** Group (name or numeric gid) given the socket, e.g. with socketMode "0660"; empty keeps the daemon's group. */
              socketGroup: z.union([z.string(), z.number().int().min(0)]).default(''),
            })
            .prefault({}),
        })
        .prefault({}),
      peerGRPC: z.strictObject({ tcpListen: tcpListen(65000) }).prefault({}),
    })
    .prefault({}),
  upload: z
    .strictObject({
      rateLimit: size.prefault('50GB'),
      /** Concurrent piece uploads this host accepts; the scheduler sees the free slots. */
      concurrentLimit: z.number().int().min(1).default(100),
      tcpListen: tcpListen(65002),
    })
    .prefault({}),
  storage: z
    .strictObject({
      taskExpireTime: duration.prefault('720h'),
      /** Only this much of the disk is ours to fill; 0 means the whole file system. */
      diskGCThreshold: size.prefault(0),
      /** Start evicting at this much usage of the disk (or of diskGCThreshold)... */
      diskGCThresholdPercent: z.number().min(1).max(100).default(90),
      /** ...and stop once usage is back under this. */
      diskGCLowThresholdPercent: z.number().min(1).max(100).default(70),
    })
    .prefault({})
    .refine((s) => s.diskGCLowThresholdPercent < s.diskGCThresholdPercent, {
      message: 'diskGCLowThresholdPercent must be below diskGCThresholdPercent',
      path: ['diskGCLowThresholdPercent'],
    }),
  proxy: z
    .strictObject({
      /** Query params dropped from the task id, `&`-separated (Go-era format). */
      defaultFilter: z.string().default('Expires&Signature&ns'),
      defaultTag: z.string().default(''),
      defaultApplication: z.string().default(''),
      tcpListen: tcpListen(65001),
      registryMirror: registryMirrorSchema.prefault({}),
      proxies: z.array(proxyRuleSchema).default([{ regx: 'blobs/sha256.*', useHTTPS: false, direct: false, redirect: '' }]),
      maxConcurrency: z.number().int().min(0).default(0),
    })
    .prefault({}),
  ...commonKeys,
});

export type DfdaemonConfigInput = z.input<typeof dfdaemonConfigSchema>;
export type DfdaemonConfig = z.output<typeof dfdaemonConfigSchema>;
export type ProxyRule = z.output<typeof proxyRuleSchema>;
