/**
 * The small HTTP server every program runs for `/metrics` (prom-client) and `/healthy`,
 * plus helpers to listen on a configured address and to close a server without waiting
 * for idle keep-alive connections.
 */
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import { Registry, collectDefaultMetrics } from 'prom-client';
import { splitListenAddr } from './config/primitives';

/** A metrics registry with Node's default process metrics, prefixed per program. */
export function createMetricsRegistry(program: string): Registry {
  const registry = new Registry();
  registry.setDefaultLabels({ program });
  collectDefaultMetrics({ register: registry, prefix: 'dragonfly_' });
  return registry;
}

export type HealthCheck = () => boolean | Promise<boolean>;

/** Serves GET /metrics and GET /healthy (200 "OK" / 503 when the check fails). */
export function createOpsServer(registry: Registry, healthy: HealthCheck = () => true): http.Server {
  return http.createServer((req, res) => {
    void (async () => {
      const path = (req.url ?? '/').split('?')[0];
      if (req.method !== 'GET' && req.method !== 'HEAD') {
        res.writeHead(405, { 'content-type': 'application/json' }).end(JSON.stringify({ message: 'method not allowed' }));
      } else if (path === '/metrics') {
        const body = await registry.metrics();
        res.writeHead(200, { 'content-type': registry.contentType }).end(body);
      } else if (path === '/healthy') {
        const ok = await healthy();
        res.writeHead(ok ? 200 : 503, { 'content-type': 'text/plain' }).end(ok ? 'OK' : 'unhealthy');
      } else {
        res.writeHead(404, { 'content-type': 'application/json' }).end(JSON.stringify({ message: `no route ${path}` }));
      }
    })().catch((err: unknown) => {
      if (!res.headersSent) res.writeHead(500, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ message: (err as Error).message }));
    });
  });
}

/** Listens on "host:port" / ":port" (port 0 picks a free one) and resolves with the bound port. */
export function listen(server: http.Server, addr: string | { host: string; port: number }): Promise<number> {
  const { host, port } = typeof addr === 'string' ? splitListenAddr(addr) : addr;
  return new Promise((resolve, reject) => {
    const onError = (err: Error) => reject(err);
    server.once('error', onError);
    server.listen(port, host, () => {
      server.off('error', onError);
      resolve((server.address() as AddressInfo).port);
    });
  });
}

/** Stops accepting, ends idle keep-alive sockets, and resolves once the server is closed. */
export function closeServer(server: http.Server): Promise<void> {
  return new Promise((resolve) => {
    if (!server.listening) return resolve();
    server.close(() => resolve());
    server.closeIdleConnections();
  });
}
