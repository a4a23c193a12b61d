/** manager.v2.Manager gRPC handlers: decode, call the Registry, encode. */
import * as grpc from '@grpc/grpc-js';
import { SpanKind } from '@opentelemetry/api';
import { Tracing, contextOfMetadata, endSpan } from '../common/telemetry';
import type { Logger } from 'pino';
import { InvalidArgumentError, PermissionDeniedError, toGrpcError, UnavailableError } from '../common/errors';
import { callerIdentities, identityUri, type ComponentIdentity, type ComponentRole } from '../common/tls';
import type { ManagerHandlers } from '../proto';
import type { KeepAliveRequest__Output } from '../proto/gen/manager/v2/KeepAliveRequest';
import type { Scheduler } from '../proto/gen/manager/v2/Scheduler';
import type { SchedulerCluster as SchedulerClusterMessage } from '../proto/gen/manager/v2/SchedulerCluster';
import type { SeedPeer } from '../proto/gen/manager/v2/SeedPeer';
import type { ManagerMetrics } from './metrics';
import type { Registry, SchedulerDetail, SourceKind } from './registry';
import type { SchedulerCluster, SchedulerRecord, SeedPeerCluster, SeedPeerRecord } from './store/types';

const jsonBytes = (v: unknown): Buffer => Buffer.from(JSON.stringify(v));

function schedulerClusterMessage(c: SchedulerCluster): SchedulerClusterMessage {
  return { id: c.id, name: c.name, bio: c.bio, config: jsonBytes(c.config), clientConfig: jsonBytes(c.clientConfig), scopes: jsonBytes(c.scopes), isDefault: c.isDefault };
}

function seedPeerMessage(p: SeedPeerRecord, cluster: SeedPeerCluster | undefined): SeedPeer {
  return {
    id: p.id,
    hostname: p.hostname,
    type: p.type,
    idc: p.idc,
    location: p.location,
    ip: p.ip,
    port: p.port,
    downloadPort: p.downloadPort,
    state: p.state,
    seedPeerClusterId: p.seedPeerClusterId,
    seedPeerCluster: cluster ? { id: cluster.id, name: cluster.name, bio: cluster.bio, config: jsonBytes(cluster.config) } : null,
  };
}

function schedulerMessage(s: SchedulerRecord, cluster: SchedulerCluster, seedPeers: SchedulerDetail['seedPeers'] = []): Scheduler {
  return {
    id: s.id,
    hostname: s.hostname,
    idc: s.idc,
    location: s.location,
    ip: s.ip,
    port: s.port,
    state: s.state,
    schedulerClusterId: s.schedulerClusterId,
    schedulerCluster: schedulerClusterMessage(cluster),
    seedPeers: seedPeers.map((p) => seedPeerMessage(p, p.cluster)),
    features: s.features,
  };
}

function requireHost(hostname: string, ip: string): void {
  if (!hostname) throw new InvalidArgumentError('hostname is required');
  if (!ip) throw new InvalidArgumentError('ip is required');
}

function parseConfigBytes(bytes: Buffer | undefined): Record<string, unknown> {
  if (!bytes || bytes.length === 0) return {};
  try {
    const v: unknown = JSON.parse(bytes.toString('utf8'));
    if (typeof v === 'object' && v !== null && !Array.isArray(v)) return v as Record<string, unknown>;
  } catch {
    // fall through
  }
  throw new InvalidArgumentError('config must be a JSON object');
}

export interface ManagerGrpcHandlers {
  readonly handlers: ManagerHandlers;
  /**
   * Ends every open KeepAlive stream with UNAVAILABLE, without marking the senders
   * inactive: they reconnect (to this manager after a restart, or to another replica),
   * and the keep-alive sweep catches the ones that never come back.
   */
  closeStreams(): void;
}

export interface ManagerGrpcOptions {
  /**
   * mTLS is on: each call must come from a certificate naming the role the RPC is for, and for
   * registration and keep-alive, the cluster the request names (see common/tls.ts identities).
   */
  readonly requireIdentity?: boolean;
  /** Server spans per call, children of the caller's trace context (issue 18). */
  readonly tracing?: Tracing;
}

type AuthCall = Parameters<typeof callerIdentities>[0];

/** Throws PERMISSION_DENIED unless the caller's certificate names one of `roles` (of `clusterId`, when given). */
function requireCaller(call: AuthCall, roles: readonly ComponentRole[], clusterId?: number): void {
  const ids = callerIdentities(call);
  const ok = (id: ComponentIdentity) => roles.includes(id.role) && (clusterId === undefined || id.clusterId === clusterId);
  if (ids.some(ok)) return;
  const wanted = roles.map((role) => (clusterId === undefined ? role : identityUri({ role, clusterId }))).join(' or ');
  const have = ids.length ? ids.map(identityUri).join(', ') : 'no dragonfly identity';
  throw new PermissionDeniedError(`this call needs a client certificate of ${wanted}; it presented ${have}`);
}

export function createManagerHandlers(registry: Registry, logger: Logger, metrics?: ManagerMetrics, options: ManagerGrpcOptions = {}): ManagerGrpcHandlers {
  const guard = options.requireIdentity ? requireCaller : () => undefined;
  function unaryHandler<Req, Res>(method: string, fn: (req: Req, call: AuthCall) => Promise<Res>) {
    return (call: grpc.ServerUnaryCall<Req, Res>, callback: grpc.sendUnaryData<Res>) => {
      const end = metrics?.grpcDuration.startTimer({ method });
      // telemetry (issue 18): a server span per call, child of the caller's
      const tracing = options.tracing;
      const span = tracing?.enabled ? tracing.tracer.startSpan(`manager.${method}`, { kind: SpanKind.SERVER, attributes: { 'rpc.system': 'grpc', 'rpc.method': method } }, contextOfMetadata(call.metadata)) : undefined;
      Promise.resolve()
        .then(() => fn(call.request, call))
        .then(
        (res) => {
          if (span) endSpan(span);
          end?.();
          metrics?.grpcRequests.inc({ method, code: 'OK' });
          callback(null, res);
        },
        (err: unknown) => {
          if (span) endSpan(span, err);
          end?.();
          const e = toGrpcError(err);
          metrics?.grpcRequests.inc({ method, code: grpc.status[e.code ?? grpc.status.INTERNAL] });
          if (e.code === grpc.status.INTERNAL) logger.error({ err, method }, 'gRPC call failed');
          callback(e);
        },
      );
    };
  }

  // The newest keep-alive stream per sender; an older stream ending must not mark a re-registered sender inactive.
  const latestStream = new Map<string, object>();
  const openStreams = new Set<() => void>();
  let closing = false;

  const handlers: ManagerHandlers = {
    UpdateScheduler: unaryHandler('UpdateScheduler', async (req, call) => {
      guard(call, ['scheduler'], req.schedulerClusterId);
      requireHost(req.hostname, req.ip);
      const detail = await registry.updateScheduler({
        hostname: req.hostname,
        ip: req.ip,
        schedulerClusterId: req.schedulerClusterId,
        port: req.port,
        idc: req.idc,
        location: req.location,
        features: req.features,
        config: parseConfigBytes(req.config),
      });
      return schedulerMessage(detail.scheduler, detail.cluster, detail.seedPeers);
    }),
    GetScheduler: unaryHandler('GetScheduler', async (req, call) => {
      guard(call, ['scheduler'], req.schedulerClusterId);
      requireHost(req.hostname, req.ip);
      const detail = await registry.getScheduler({ hostname: req.hostname, ip: req.ip, schedulerClusterId: req.schedulerClusterId });
      return schedulerMessage(detail.scheduler, detail.cluster, detail.seedPeers);
    }),
    ListSchedulers: unaryHandler('ListSchedulers', async (req, call) => {
      guard(call, ['peer', 'seed-peer', 'scheduler']);
      const listed = await registry.listSchedulers({
        sourceType: req.sourceType,
        hostname: req.hostname,
        ip: req.ip,
        idc: req.idc,
        location: req.location,
        schedulerClusterId: req.schedulerClusterId,
        seedPeerClusterId: req.seedPeerClusterId,
      });
      return { schedulers: listed.flatMap((c) => c.schedulers.map((s) => schedulerMessage(s, c.cluster))) };
    }),
    UpdateSeedPeer: unaryHandler('UpdateSeedPeer', async (req, call) => {
      guard(call, ['seed-peer'], req.seedPeerClusterId);
      requireHost(req.hostname, req.ip);
      const p = await registry.updateSeedPeer({
        hostname: req.hostname,
        ip: req.ip,
        seedPeerClusterId: req.seedPeerClusterId,
        type: req.type,
        port: req.port,
        downloadPort: req.downloadPort,
        idc: req.idc,
        location: req.location,
      });
      return seedPeerMessage(p, p.cluster);
    }),
    GetSeedPeer: unaryHandler('GetSeedPeer', async (req, call) => {
      guard(call, ['seed-peer'], req.seedPeerClusterId);
      requireHost(req.hostname, req.ip);
      const p = await registry.getSeedPeer({ hostname: req.hostname, ip: req.ip, seedPeerClusterId: req.seedPeerClusterId });
      return seedPeerMessage(p, p.cluster);
    }),
    ListSeedPeers: unaryHandler('ListSeedPeers', async (req, call) => {
      guard(call, ['scheduler'], req.schedulerClusterId);
      if (!req.schedulerClusterId) throw new InvalidArgumentError('scheduler_cluster_id is required');
      const peers = await registry.activeSeedPeersFor(req.schedulerClusterId);
      return { seedPeers: peers.map((p) => seedPeerMessage(p, p.cluster)) };
    }),
    DeleteSeedPeer: unaryHandler('DeleteSeedPeer', async (req, call) => {
      guard(call, ['seed-peer'], req.seedPeerClusterId);
      requireHost(req.hostname, req.ip);
      await registry.deleteSeedPeer({ hostname: req.hostname, ip: req.ip, seedPeerClusterId: req.seedPeerClusterId });
      return {};
    }),
    KeepAlive: (call: grpc.ServerReadableStream<KeepAliveRequest__Output, object>, callback: grpc.sendUnaryData<object>) => {
      const token = {};
      let sender: { source: SourceKind; hostname: string; ip: string; clusterId: number; key: string } | undefined;
      let finished = false;
      // Messages are applied one after another so "active" never lands after "inactive".
      let queue: Promise<void> = Promise.resolve();
      const enqueue = (fn: () => Promise<void>) => (queue = queue.then(fn));

      const finish = (err?: unknown) => {
        if (finished) return;
        finished = true;
        openStreams.delete(abandon);
        metrics?.grpcRequests.inc({ method: 'KeepAlive', code: err ? 'ERROR' : 'OK' });
        if (err) callback(toGrpcError(err));
        else callback(null, {});
      };
      const abandon = () => {
        if (sender && latestStream.get(sender.key) === token) latestStream.delete(sender.key);
        finish(new UnavailableError('manager is shutting down; reconnect'));
      };
      if (closing) return abandon();
      openStreams.add(abandon);
      const close = () =>
        enqueue(async () => {
          if (finished || !sender || latestStream.get(sender.key) !== token) return;
          latestStream.delete(sender.key);
          await registry.keepAlive(sender.source, sender.hostname, sender.ip, sender.clusterId, 'inactive').catch((err: unknown) => logger.warn({ err }, 'could not mark keep-alive sender inactive'));
        });

      call.on('data', (msg: KeepAliveRequest__Output) => {
        void enqueue(async () => {
          if (finished) return;
          try {
            requireHost(msg.hostname, msg.ip);
            const source = msg.sourceType;
            if (source !== 'SCHEDULER_SOURCE' && source !== 'SEED_PEER_SOURCE') throw new InvalidArgumentError(`keep-alive needs source_type SCHEDULER_SOURCE or SEED_PEER_SOURCE, got ${source}`);
            guard(call, [source === 'SCHEDULER_SOURCE' ? 'scheduler' : 'seed-peer'], msg.clusterId);
            const key = `${source}|${msg.hostname}|${msg.ip}|${msg.clusterId}`;
            sender = { source, hostname: msg.hostname, ip: msg.ip, clusterId: msg.clusterId, key };
            latestStream.set(key, token);
            await registry.keepAlive(source, msg.hostname, msg.ip, msg.clusterId, 'active');
          } catch (err) {
            finish(err);
            call.destroy();
          }
        });
      });
      call.on('end', () => {
        void close().then(() => finish());
      });
      call.on('error', () => {
        void close().then(() => finish());
      });
      call.on('cancelled', () => {
        void close().then(() => finish());
      });
    },
  };

  return {
    handlers,
    closeStreams() {
      closing = true;
      for (const abandon of [...openStreams]) abandon();
    },
  };
}
