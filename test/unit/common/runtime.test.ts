import * as grpc from '@grpc/grpc-js';
import { Counter } from 'prom-client';
import { closeServer, createMetricsRegistry, createOpsServer, listen } from '../../../services/common/http';
import { startGrpcServer, unary } from '../../../services/common/grpc';
import { schedulerService } from '../../../services/proto';
import { NotFoundError, toGrpcError } from '../../../services/common/errors';
import { HealthImplementation } from 'grpc-health-check';
import * as protoLoader from '@grpc/proto-loader';
import { protoPath as healthProtoPath } from 'grpc-health-check';

describe('ops HTTP server', () => {
  it('serves /metrics with default and custom metrics, /healthy, and JSON 404/405', async () => {
    const registry = createMetricsRegistry('test');
    new Counter({ name: 'dragonfly_test_things_total', help: 'things', registers: [registry] }).inc(3);
    let healthy = true;
    const server = createOpsServer(registry, () => healthy);
    const port = await listen(server, '127.0.0.1:0');
    try {
        const metrics = await fetch(`http://127.0.0.1:${port}/metrics`);
        const text = await metrics.text();
        expect(metrics.status).toBe(200);
        expect(text).toContain('dragonfly_test_things_total{program="test"} 3');
        expect(text).toContain('dragonfly_process_cpu_user_seconds_total');
        expect((await fetch(`http://127.0.0.1:${port}/healthy`)).status).toBe(200);
        healthy = false;
        expect((await fetch(`http://127.0.0.1:${port}/healthy`)).status).toBe(503);
        const missing = await fetch(`http://127.0.0.1:${port}/nope`);
        expect(missing.status).toBe(404);
        expect(await missing.json()).toEqual({ message: 'no route /nope' });
        expect((await fetch(`http://127.0.0.1:${port}/metrics`, { method: 'POST' })).status).toBe(405);
    } finally {
      await closeServer(server);
    }
  });
});

describe('gRPC server helper', () => {
  it('serves grpc.health.v1, maps typed errors to status codes, and drains on shutdown', async () => {
    const handle = await startGrpcServer('127.0.0.1:0', [{
      name: 'scheduler.v2.Scheduler',
      definition: schedulerService(),
      handlers: {
        StatTask: (call: grpc.ServerUnaryCall<{ taskId: string }, unknown>, cb: grpc.sendUnaryData<unknown>) => cb(toGrpcError(new NotFoundError(`task ${call.request.taskId} not found`))),
      },
    }]);
    expect(handle.health).toBeInstanceOf(HealthImplementation);
    const healthDef = protoLoader.loadSync(healthProtoPath, { enums: String });
    const healthPkg = grpc.loadPackageDefinition(healthDef) as unknown as { grpc: { health: { v1: { Health: typeof grpc.Client } } } };
    const health = new healthPkg.grpc.health.v1.Health(`127.0.0.1:${handle.port}`, grpc.credentials.createInsecure()) as grpc.Client & {
      Check: (req: { service: string }, md: grpc.Metadata, opts: grpc.CallOptions, cb: (e: grpc.ServiceError | null, r?: { status: string }) => void) => grpc.ClientUnaryCall;
    };
    try {
      const ok = await unary<{ service: string }, { status: string }>(health.Check.bind(health), { service: 'scheduler.v2.Scheduler' });
      expect(ok.status).toBe('SERVING');

      const Client = grpc.makeGenericClientConstructor(schedulerService(), 'Scheduler');
      const client = new Client(`127.0.0.1:${handle.port}`, grpc.credentials.createInsecure()) as grpc.Client & Record<string, typeof health.Check>;
      await expect(unary(client.StatTask.bind(client), { taskId: 'abc' } as unknown as { service: string })).rejects.toMatchObject({ kind: 'NotFound', message: 'task abc not found' });

      await handle.shutdown(1000);
      await expect(unary(health.Check.bind(health), { service: '' }, 1000)).rejects.toBeDefined();
      client.close();
    } finally {
      await handle.shutdown(100);
      health.close();
    }
  });
});
