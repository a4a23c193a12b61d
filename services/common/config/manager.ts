/** manager.yaml: keys of the Go-era Dragonfly manager, plus `database.type: sqlite` for the embedded store. */
import { z } from 'zod';
import { restTlsBlock, securityBlock } from './security';
import { commonKeys, duration, hostPort, ipAddress, listenAddr, logDir, managerMetricsBlock, port } from './primitives';

export const managerConfigSchema = z.strictObject({
  server: z
    .strictObject({
      /** Compatibility only (a warning at start): the manager has no name of its own. */
      name: z.string().optional(),
      /** Where the embedded (sqlite) store and nothing else lives. */
      workHome: z.string().default('/var/lib/dragonfly/manager'),
      logDir,
      rest: z
        .strictObject({
          addr: listenAddr.default(':8080'),
          /** HTTPS for REST and the console (no client certificate asked); empty: plain HTTP. */
          tls: restTlsBlock,
        })
        .prefault({}),
      grpc: z
        .strictObject({
          /** Compatibility only (a warning at start): nothing is told the manager's address; clients use its Service name. */
          advertiseIP: ipAddress.optional(),
          listenIP: ipAddress.default('0.0.0.0'),
          port: z.strictObject({ start: port.default(65003), end: port.default(65003) }).prefault({}),
        })
        .prefault({}),
    })
    .prefault({}),
  auth: z
    .strictObject({
      jwt: z
        .strictObject({
          /** Compatibility only (a warning at start): tokens are bearer JWTs, no realm is announced. */
          realm: z.string().optional(),
          /** HMAC secret for session tokens; empty: generated once and kept under workHome. */
          key: z.string().default(''),
          timeout: duration.prefault('336h'),
          /** Compatibility only (a warning at start): sessions are not refreshed; log in again after `timeout`. */
          maxRefresh: duration.optional(),
        })
        .prefault({}),
      /**
       * root's password, applied at EVERY start (so rotating the Secret it comes from and restarting
       * rotates it). Usually set through env `DFMANAGER__auth__rootPassword` from a Secret. Empty: root
       * keeps the password it has (a first start then needs this key or `demoCredentials`).
       */
      rootPassword: z.union([z.literal(''), z.string().min(8, 'expected 8 to 20 characters').max(20, 'expected 8 to 20 characters')]).default(''),
      /** With no `rootPassword`: root gets the well-known demo password `dragonfly` (a warning is logged). */
      demoCredentials: z.boolean().default(false),
      /** Self-service `POST /api/v1/users/signup`; off: only root creates users (same endpoint, signed in). */
      signup: z.strictObject({ enable: z.boolean().default(false) }).prefault({}),
      /** Failed sign-ins allowed per user name and per client address within `window`; more answer 429 with Retry-After. */
      signinLimit: z
        .strictObject({
          perName: z.number().int().min(1).max(1000).default(5),
          perAddress: z.number().int().min(1).max(100_000).default(30),
          window: duration.prefault('5m'),
          /** Names and addresses tracked at once (oldest dropped first), so a flood cannot grow memory. */
          maxTracked: z.number().int().min(100).max(1_000_000).default(10_000),
        })
        .prefault({}),
    })
    .prefault({}),
  database: z
    .strictObject({
      /** mysql: the production store; sqlite: an embedded file, no server needed. */
      type: z.enum(['mysql', 'mariadb', 'sqlite']).default('sqlite'),
      mysql: z
        .strictObject({
          user: z.string().default('dragonfly'),
          password: z.string().default('dragonfly'),
          host: z.string().default('dragonfly-mysql'),
          port: port.default(3306),
          dbname: z.string().regex(/^[A-Za-z0-9_]+$/, 'expected letters, digits and _ only').default('manager'),
          migrate: z.boolean().default(true),
        })
        .prefault({}),
      sqlite: z.strictObject({ file: z.string().default('') }).prefault({}),
      redis: z
        .strictObject({
          /** Empty: no Redis; the manager caches in memory only. */
          addrs: z.array(hostPort).default([]),
          masterName: z.string().default(''),
          username: z.string().default(''),
          password: z.string().default(''),
          db: z.number().int().min(0).max(15).default(0),
          /** Compatibility only (a warning at start): job queues live in `db` under `keyPrefix`. */
          brokerDB: z.number().int().min(0).max(15).optional(),
          /** Compatibility only (a warning at start): job results live in `db` under `keyPrefix`. */
          backendDB: z.number().int().min(0).max(15).optional(),
          /** Key prefix, so several managers (or tests) can share one Redis. */
          keyPrefix: z.string().default('manager:'),
        })
        .prefault({}),
    })
    .prefault({}),
  cache: z
    .strictObject({
      redis: z.strictObject({ ttl: duration.prefault('5m') }).prefault({}),
      local: z.strictObject({ size: z.number().int().positive().default(10000), ttl: duration.prefault('30s') }).prefault({}),
    })
    .prefault({}),
  /** Jobs (preheat, get_task, delete_task, sync_peers), delivered on Redis queues per scheduler cluster. */
  job: z
    .strictObject({
      /** Deadline of a job unless its args give `timeout`; a cluster not done by then is FAILURE. */
      timeout: duration.prefault('1h'),
      /** Tries per scheduler cluster (the first included) before its result is FAILURE. */
      attempts: z.number().int().min(1).max(20).default(3),
      /** A queued job whose cluster has had no scheduler consuming its queue this long fails. */
      noSchedulerTimeout: duration.prefault('15s'),
      /** How often pending jobs are brought up to date from the queues. */
      reconcileInterval: duration.prefault('1s'),
      preheat: z.strictObject({ registryTimeout: duration.prefault('1m') }).prefault({}),
    })
    .prefault({}),
  /** Schedulers and seed peers without a keep-alive for this long are marked inactive. */
  keepAlive: z.strictObject({ timeout: duration.prefault('15s') }).prefault({}),
  /** mTLS of the gRPC server: schedulers and peers must present a certificate of the CA. */
  security: securityBlock,
  metrics: managerMetricsBlock,
  ...commonKeys,
});

export type ManagerConfigInput = z.input<typeof managerConfigSchema>;
export type ManagerConfig = z.output<typeof managerConfigSchema>;
