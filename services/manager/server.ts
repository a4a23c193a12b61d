/**
 * Wires the manager together: store (migrated + seeded), cache, registry, REST, gRPC,
 * metrics, keep-alive sweep. `startManager` resolves once every port is bound.
 */
import * as http from 'node:http';
import * as https from 'node:https';
import { createPrivateKey, X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import * as os from 'node:os';
import { Tracing } from '../common/telemetry';
import type { Logger } from 'pino';
import type { ManagerConfig } from '../common/config/manager';
import { compatibilityWarnings } from '../common/config/compat';
import { closeServer, createMetricsRegistry, createOpsServer, listen } from '../common/http';
import { startGrpcServer, type GrpcServerHandle } from '../common/grpc';
import { createLogger } from '../common/logger';
import { ConfigError } from '../common/config/load';
import { TransportSecurity } from '../common/tls';
import { managerService } from '../proto';
import { AuthService, resolveJwtKey, rootPasswordOf, seedStore } from './auth';
import { SigninLimiter } from './signin-limiter';
import { createRedis, SchedulerListCache } from './cache';
import { createManagerHandlers } from './grpc';
import { ManagerMetrics } from './metrics';
import { Registry } from './registry';
import { JobQueues } from './jobs/queues';
import { JobService } from './jobs/service';
import { createRestApp } from './rest';
import { openStore } from './store';
import type { ManagerStore } from './store/types';

export interface ManagerHandle {
  readonly restPort: number;
  readonly grpcPort: number;
  /** undefined when `metrics.enable` is false. */
  readonly metricsPort: number | undefined;
  readonly store: ManagerStore;
  readonly registry: Registry;
  stop(): Promise<void>;
}

export interface StartManagerOptions {
  logger?: Logger;
  /** Bypass both cache levels (benchmarks of the uncached path). */
  disableCache?: boolean;
}

async function bindGrpc(config: ManagerConfig, services: Parameters<typeof startGrpcServer>[1], security: TransportSecurity): Promise<GrpcServerHandle> {
  const { listenIP, port } = config.server.grpc;
  const host = listenIP.includes(':') ? `[${listenIP}]` : listenIP || '0.0.0.0';
  let lastError: unknown;
  for (let p = port.start; p <= Math.max(port.start, port.end); p++) {
    try {
      return await startGrpcServer(`${host}:${p}`, services, security.serverCredentials());
    } catch (err) {
      lastError = err;
    }
  }
  throw new Error(`cannot bind gRPC on ${host} ports ${port.start}-${port.end}: ${(lastError as Error).message}`);
}

/**
 * REST and console: HTTPS when `server.rest.tls` names a certificate (browsers and the
 * registration Job connect, so no client certificate is asked), re-read like the gRPC files.
 */
function createRestServer(config: ManagerConfig, app: http.RequestListener, logger: Logger): http.Server {
  const t = config.server.rest.tls;
  if (!t.cert) return http.createServer(app);
  const read = () => {
    try {
      const cert = readFileSync(t.cert);
      const key = readFileSync(t.key);
      if (!new X509Certificate(cert).checkPrivateKey(createPrivateKey(key))) throw new Error('the key does not belong to the certificate');
      return { cert, key };
    } catch (err) {
      throw new ConfigError('manager.yaml', [{ path: 'server.rest.tls.cert', value: t.cert, message: `cannot use ${t.cert} with ${t.key}: ${(err as Error).message}` }]);
    }
  };
  let current = read();
  const server = https.createServer({ ...current, minVersion: 'TLSv1.2' }, app);
  const timer = setInterval(() => {
    try {
      const next = read();
      if (next.cert.equals(current.cert) && next.key.equals(current.key)) return;
      current = next;
      server.setSecureContext({ ...next, minVersion: 'TLSv1.2' });
      logger.info({ cert: t.cert }, 'REST TLS certificate reloaded');
    } catch (err) {
      logger.warn({ err: (err as Error).message }, 'renewed REST TLS files rejected; keeping the current certificate');
    }
  }, Math.max(50, config.security.reloadInterval));
  timer.unref();
  server.on('close', () => clearInterval(timer));
  return server;
}

export async function startManager(config: ManagerConfig, options: StartManagerOptions = {}): Promise<ManagerHandle> {
  const logger = options.logger ?? createLogger({ name: 'manager', verbose: config.verbose });
  for (const w of compatibilityWarnings('manager', config)) logger.warn({ key: w.key }, w.message);
  const cleanups: Array<() => Promise<void>> = [];
  const stopAll = async () => {
    for (const fn of cleanups.reverse()) await fn().catch((err: unknown) => logger.warn({ err }, 'error while stopping'));
    cleanups.length = 0;
  };
  try {
    const security = TransportSecurity.fromConfig(config.security, logger, 'manager');
    cleanups.push(async () => security.close());
    const store = await openStore(config);
    cleanups.push(() => store.close());
    const rootPassword = await seedStore(store, rootPasswordOf(config.auth));
    if (!config.auth.rootPassword && config.auth.demoCredentials) logger.warn('auth.demoCredentials: root has the well-known demo password; set auth.rootPassword from a Secret for a real cluster');
    logger.info({ rootPassword }, 'root credentials applied');
    if (config.auth.signup.enable) logger.info('auth.signup.enable: anyone who reaches the REST API can create a guest user');
    const jwtKey = await resolveJwtKey(store, config.auth.jwt.key);

    const redis = createRedis(config);
    const cache = new SchedulerListCache(
      { localTtlMs: config.cache.local.ttl, localSize: config.cache.local.size, redisTtlMs: config.cache.redis.ttl, disabled: options.disableCache },
      redis,
      config.database.redis.keyPrefix,
      logger,
    );
    cleanups.push(() => cache.close());
    await cache.connect();

    const registry = createMetricsRegistry('manager');
    const metrics = new ManagerMetrics(registry, () => store.countActiveSchedulers());
    const schedulers = new Registry(store, cache, logger, metrics);
    const limits = config.auth.signinLimit;
    const auth = new AuthService(store, jwtKey, config.auth.jwt.timeout, {
      signupEnabled: config.auth.signup.enable,
      limiter: new SigninLimiter({ perName: limits.perName, perAddress: limits.perAddress, windowMs: limits.window, maxTracked: limits.maxTracked }),
    });

    const redisSettings = config.database.redis;
    let queues: JobQueues | undefined;
    if (redisSettings.addrs.length > 0) {
      queues = new JobQueues(redisSettings, redisSettings.keyPrefix);
      const q = queues;
      cleanups.push(() => q.close());
      await queues.connect();
      if (!queues.ready) logger.warn({ redis: queues.where }, 'redis does not answer; jobs answer 503 until it does');
    } else {
      logger.info('no database.redis.addrs: jobs (preheat, get_task, delete_task, sync_peers) are off');
    }
    const j = config.job;
    const jobs = new JobService(store, queues, { timeoutMs: j.timeout, attempts: j.attempts, noSchedulerTimeoutMs: j.noSchedulerTimeout, registryTimeoutMs: j.preheat.registryTimeout }, logger);
    if (queues) {
      const stopReconcile = jobs.start(Math.max(100, j.reconcileInterval));
      cleanups.push(async () => stopReconcile());
    }

    const app = createRestApp({ store, auth, registry: schedulers, logger, metrics, jobs });
    const rest = createRestServer(config, app, logger);
    const restPort = await listen(rest, config.server.rest.addr);
    cleanups.push(() => closeServer(rest));

    // Tracing (issue 18): flushed last on stop.
    const tracing = Tracing.start({ serviceName: 'dragonfly-manager', jaeger: config.jaeger, attributes: { 'host.name': os.hostname() }, registry });
    cleanups.unshift(() => tracing.shutdown());
    const grpcHandlers = createManagerHandlers(schedulers, logger, metrics, { requireIdentity: security.enabled, tracing });
    const grpcServer = await bindGrpc(config, [{ name: 'manager.v2.Manager', definition: managerService(), handlers: grpcHandlers.handlers }], security);
    cleanups.push(async () => {
      grpcHandlers.closeStreams();
      await grpcServer.shutdown(3000);
    });

    let metricsPort: number | undefined;
    if (config.metrics.enable) {
      const ops = createOpsServer(registry);
      metricsPort = await listen(ops, config.metrics.addr);
      cleanups.push(() => closeServer(ops));
    }

    // Keep-alive sweep: marks senders silent for `keepAlive.timeout` inactive.
    const timeout = config.keepAlive.timeout;
    const sweep = setInterval(() => {
      schedulers.sweep(timeout).catch((err: unknown) => logger.warn({ err }, 'keep-alive sweep failed'));
    }, Math.max(100, Math.min(5000, Math.floor(timeout / 3))));
    sweep.unref();
    cleanups.push(async () => clearInterval(sweep));

    logger.info({ restPort, grpcPort: grpcServer.port, metricsPort, database: store.kind }, 'manager started');
    let stopped = false;
    return {
      restPort,
      grpcPort: grpcServer.port,
      metricsPort,
      store,
      registry: schedulers,
      async stop() {
        if (stopped) return;
        stopped = true;
        await stopAll();
      },
    };
  } catch (err) {
    await stopAll();
    throw err;
  }
}
