/**
 * dfdaemon.yaml: keys of the Go-era Dragonfly dfdaemon (`dfget daemon`), which the seed
 * documents' chart `config:` blocks use. The same file runs a seed peer when
 * `scheduler.manager.seedPeer.enable` is true.
 */
import { z } from 'zod';
import { securityBlock } from './security';
import { commonKeys, duration, hostPort, ipAddress, listenAddr, logDir, port, regex, size } from './primitives';

const netAddr = z.strictObject({ type: z.enum(['tcp']).default('tcp'), addr: hostPort });

/** `listen` empty (the default): host.listenIP. */
const tcpListen = (defaultPort: number) =>
  z.strictObject({ listen: ipAddress.default(''), port: port.default(defaultPort) }).prefault({});

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

/** Ports as the Go dfdaemon wrote them (strings) or as numbers; stored as strings. */
const whiteListPort = z
  .union([z.string().regex(/^\d{1,5}$/, 'expected a port such as "443"'), z.number().int()])
  .transform((v) => String(v))
  .refine((v) => Number(v) >= 1 && Number(v) <= 65535, 'expected a port in 1..65535');

/**
 * A host the proxy may talk to on a caller's behalf (Go-era `proxy.whiteList`): an exact
 * `host` or a `regx` matched against the host name, optionally limited to `ports`.
 */
export const whiteListEntrySchema = z
  .strictObject({
    host: z.string().default(''),
    regx: regex.default(''),
    /** Empty: every port for plain HTTP; CONNECT tunnels need the port listed. */
    ports: z.array(whiteListPort).default([]),
  })
  .refine((e) => e.host !== '' || e.regx !== '', { message: 'a whiteList entry needs a host or a regx', path: ['host'] });

/**
 * Go-era `proxy.hijackHTTPS`. This proxy does not intercept TLS; the hosts listed here may be
 * reached with CONNECT as plain tunnels, so `cert` and `key` must stay empty.
 */
export const hijackHTTPSSchema = z.strictObject({
  cert: z.string().refine((v) => v === '', 'TLS interception is not supported: hijackHTTPS.hosts only allows CONNECT tunnels; leave cert empty').default(''),
  key: z.string().refine((v) => v === '', 'TLS interception is not supported: hijackHTTPS.hosts only allows CONNECT tunnels; leave key empty').default(''),
  /** `regx` matched against the CONNECT target "host:port". */
  hosts: z.array(z.strictObject({ regx: regex })).default([]),
});

/** Concurrent proxy requests when the config says nothing (or 0, the Go dfdaemon's "unbounded"). */
export const DEFAULT_PROXY_MAX_CONCURRENCY = 256;

export const dfdaemonConfigSchema = z.strictObject({
  /** Go-era idle exit; the daemon runs until stopped, so only 0 is accepted. */
  aliveTime: duration
    .prefault('0s')
    .refine((ms) => ms === 0, 'the dfdaemon runs until it is stopped (a DaemonSet restarts it anyway); remove aliveTime or set it to 0'),
  gcInterval: duration.prefault('1m'),
  /** Compatibility only (a warning at start): everything the daemon keeps is under dataDir. */
  workHome: z.string().optional(),
  dataDir: z.string().default('/var/lib/dragonfly'),
  logDir,
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
      /** Address every TCP listener binds unless its own `tcpListen.listen` says otherwise. */
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
      /** Always on: every piece and every task is checked against its digest. */
      calculateDigest: z
        .boolean()
        .default(true)
        .refine((v) => v, 'content is always checked against its digest (a wrong byte is never served); remove calculateDigest: false'),
      totalRateLimit: size.prefault('50GB'),
      perPeerRateLimit: size.prefault('50GB'),
      backSourceRateLimit: size.prefault('50GB'),
      /** Total time for one piece from a parent or the origin (not only idle: a slow drip ends too). */
      pieceDownloadTimeout: duration.prefault('60s'),
      /** How long a DfdaemonUpload.DownloadTask call (the scheduler's seed trigger) may run before DEADLINE_EXCEEDED. */
      seedTriggerTimeout: duration.prefault('30m'),
      concurrentPieceCount: z.number().int().min(1).max(64).default(8),
      /** Go-era whole-file prefetch after a range request; not done, so only false is accepted. */
      prefetch: z
        .boolean()
        .default(false)
        .refine((v) => !v, 'a range request downloads only the pieces it covers; fetch the whole file first with dfget (or a plain GET through the proxy) and remove prefetch: true'),
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
      /**
       * HTTPS with client certificates (the `security` files) on the piece port and for this
       * daemon's piece downloads. Every peer of a cluster must agree; off by default because
       * it costs throughput (see docs/benchmarks.md).
       */
      tls: z.strictObject({ enable: z.boolean().default(false) }).prefault({}),
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
      /**
       * Hosts (besides registryMirror.url) the proxy may reach: mirror upstreams named by
       * X-Dragonfly-Registry / ?ns=, and absolute-URI requests. Nothing else is relayed.
       */
      whiteList: z.array(whiteListEntrySchema).max(1024).default([]),
      hijackHTTPS: hijackHTTPSSchema.prefault({}),
      /** Requests served at once; 0 (the Go dfdaemon's "unbounded") means the default. */
      maxConcurrency: z
        .number()
        .int()
        .min(0)
        .max(65536)
        .default(DEFAULT_PROXY_MAX_CONCURRENCY)
        .transform((n) => (n === 0 ? DEFAULT_PROXY_MAX_CONCURRENCY : n)),
      /** Requests that may wait for a free slot; beyond that the proxy answers 429. */
      maxQueued: z.number().int().min(0).max(1 << 20).default(1024),
      /** How long a queued request waits for a slot before a 503. */
      queueTimeout: duration.prefault('30s'),
      /** Total deadline of one request, origin transfer included (a slow drip is cut here). */
      requestTimeout: duration.prefault('30m'),
      /** A pass-through or tunnel socket with no traffic for this long is closed. */
      idleTimeout: duration.prefault('60s'),
      /** Time to connect to an origin and get its response headers. */
      originHeaderTimeout: duration.prefault('60s'),
    })
    .prefault({}),
  /** mTLS of the upload gRPC server and of calls to the manager, schedulers and peers. */
  security: securityBlock,
  ...commonKeys,
})
  .refine((c) => !(c.upload.tls.enable && c.security.insecure), {
    message: 'upload.tls.enable needs the security files; it cannot be on with security.insecure: true',
    path: ['upload', 'tls', 'enable'],
  })
  .transform((c) => {
    // host.listenIP is the address of every listener that does not name its own.
    const bind = <T extends { listen: string; port: number }>(l: T): T => ({ ...l, listen: l.listen || c.host.listenIP });
    return {
      ...c,
      download: { ...c.download, peerGRPC: { ...c.download.peerGRPC, tcpListen: bind(c.download.peerGRPC.tcpListen) } },
      upload: { ...c.upload, tcpListen: bind(c.upload.tcpListen) },
      proxy: { ...c.proxy, tcpListen: bind(c.proxy.tcpListen) },
    };
  });

export type DfdaemonConfigInput = z.input<typeof dfdaemonConfigSchema>;
export type DfdaemonConfig = z.output<typeof dfdaemonConfigSchema>;
export type ProxyRule = z.output<typeof proxyRuleSchema>;
