/**
 * gRPC helpers: a server with the standard grpc.health.v1 service, bound to "host:port",
 * clients with sane keep-alive options, and a promise wrapper for unary calls.
 */
import * as grpc from '@grpc/grpc-js';
import { HealthImplementation, type ServingStatusMap } from 'grpc-health-check';
import { fromGrpcError } from './errors';

export const GRPC_OPTIONS: grpc.ChannelOptions = {
  'grpc.keepalive_time_ms': 30_000,
  'grpc.keepalive_timeout_ms': 10_000,
  'grpc.keepalive_permit_without_calls': 1,
  'grpc.max_receive_message_length': 64 * 1024 * 1024,
  'grpc.max_send_message_length': 64 * 1024 * 1024,
  // Targets are IP addresses, and grpc-js would send the IP as the TLS server name, which Node
  // deprecates (DEP0123) and warns about in every program. Our servers present no per-name
  // certificates and clients check the SPIFFE identity, not the name, so a fixed name serves.
  // Plaintext channels ignore this option.
  'grpc.ssl_target_name_override': 'dragonfly',
};

export interface GrpcServerHandle {
  readonly server: grpc.Server;
  readonly health: HealthImplementation;
  readonly port: number;
  /** Marks every service NOT_SERVING, drains calls for up to `graceMs`, then forces shutdown. */
  shutdown(graceMs?: number): Promise<void>;
}

/**
 * Starts a gRPC server with the given services plus grpc.health.v1.Health. `services` maps
 * a health-check service name (e.g. "scheduler.v2.Scheduler") to its definition and handlers.
 */
export async function startGrpcServer(
  address: string,
  services: ReadonlyArray<{ name: string; definition: grpc.ServiceDefinition; handlers: grpc.UntypedServiceImplementation }>,
  credentials: grpc.ServerCredentials = grpc.ServerCredentials.createInsecure(),
  /** Overrides of GRPC_OPTIONS for this server (e.g. a smaller max_receive_message_length). */
  options: grpc.ChannelOptions = {},
): Promise<GrpcServerHandle> {
  const server = new grpc.Server({ ...GRPC_OPTIONS, ...options });
  const statusMap: ServingStatusMap = { '': 'SERVING' };
  for (const s of services) {
    server.addService(s.definition, s.handlers);
    statusMap[s.name] = 'SERVING';
  }
  const health = new HealthImplementation(statusMap);
  health.addToServer(server);
  const port = await new Promise<number>((resolve, reject) => {
    server.bindAsync(address, credentials, (err, boundPort) => (err ? reject(err) : resolve(boundPort)));
  });
  return {
    server,
    health,
    port,
    shutdown: (graceMs = 5000) =>
      new Promise<void>((resolve) => {
        for (const name of Object.keys(statusMap)) health.setStatus(name, 'NOT_SERVING');
        const timer = setTimeout(() => {
          server.forceShutdown();
          resolve();
        }, graceMs);
        timer.unref();
        server.tryShutdown(() => {
          clearTimeout(timer);
          resolve();
        });
      }),
  };
}

/** "host:port" for a gRPC client; accepts and strips an http(s):// or tcp:// scheme. */
export function grpcTarget(addr: string): string {
  return addr.replace(/^[a-z]+:\/\//, '');
}

/** Promise form of a unary client call; errors come back typed (see errors.ts). */
export function unary<Req, Res>(
  call: (req: Req, metadata: grpc.Metadata, options: grpc.CallOptions, cb: (err: grpc.ServiceError | null, res?: Res) => void) => grpc.ClientUnaryCall,
  req: Req,
  timeoutMs = 10_000,
): Promise<Res> {
  return new Promise((resolve, reject) => {
    call(req, new grpc.Metadata(), { deadline: Date.now() + timeoutMs }, (err, res) => {
      if (err) reject(fromGrpcError(err));
      else resolve(res as Res);
    });
  });
}

/** Resolves when the channel is ready, or rejects after `timeoutMs`. */
export function waitForReady(client: grpc.Client, timeoutMs: number): Promise<void> {
  return new Promise((resolve, reject) => client.waitForReady(Date.now() + timeoutMs, (err) => (err ? reject(err) : resolve())));
}
