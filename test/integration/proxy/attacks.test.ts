/**
 * Issue 11, the proxy's attacks: each sent as a hostile neighbour on the node network would,
 * over real sockets, against a real proxy server. Each must be refused with a status and a JSON
 * reason, logged once with the caller's address, reach nothing (the would-be target records
 * every request and connection it gets), and leave the proxy serving everyone else.
 */
import { randomBytes } from 'node:crypto';
import * as http from 'node:http';
import * as net from 'node:net';
import { Writable } from 'node:stream';
import pino from 'pino';
import { Registry } from 'prom-client';
import { startProxyServer, type ProxyServerHandle } from '../../../services/dfdaemon/proxy';
import type { Resolver } from '../../../services/dfdaemon/proxy/server';
import { blobOf, MemoryTasks, proxyConfig, request, startOrigin, type Answer, type Origin } from '../../unit/proxy/helpers';

/** A service that must never be reached through the proxy: it counts connections and requests. */
interface Target {
  readonly port: number;
  readonly connections: number;
  readonly requests: string[];
  close(): Promise<void>;
}

async function startTarget(): Promise<Target> {
  let connections = 0;
  const requests: string[] = [];
  const server = http.createServer((req, res) => {
    requests.push(`${req.method} ${req.url}`);
    res.writeHead(200, { 'set-cookie': 'session=stolen' }).end('{"created":true}');
  });
  server.on('connection', () => connections++);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as net.AddressInfo).port,
    get connections() {
      return connections;
    },
    requests,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** Log lines the proxy writes, parsed. */
function capturingLogger(): { logger: pino.Logger; lines: Array<Record<string, unknown>> } {
  const lines: Array<Record<string, unknown>> = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      for (const line of chunk.toString().split('\n')) if (line.trim()) lines.push(JSON.parse(line) as Record<string, unknown>);
      done();
    },
  });
  return { logger: pino({ level: 'info' }, sink), lines };
}

/** Sends a CONNECT and resolves with the status line's code and the body the proxy sent. */
function connect(port: number, target: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, method: 'CONNECT', path: target, agent: false });
    // Node reports every answer to CONNECT as 'connect'; a refusal's JSON body follows on the socket.
    req.on('connect', (res, socket, head) => {
      const status = res.statusCode ?? 0;
      if (status === 200) {
        socket.destroy();
        resolve({ status, body: '' });
        return;
      }
      let body = head.toString();
      socket.on('data', (c: Buffer) => (body += c.toString()));
      socket.on('close', () => resolve({ status, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

function reasonOf(answer: Answer | { body: string | Buffer }): string {
  return (JSON.parse(answer.body.toString()) as { message: string }).message;
}

describe('proxy attacks (issue 11)', () => {
  let origin: Origin;
  let target: Target;
  let tasks: MemoryTasks;
  let proxy: ProxyServerHandle;
  let log: ReturnType<typeof capturingLogger>;
  const content = randomBytes(20_000);
  const { digest } = blobOf(content);
  const blobPath = `/v2/library/app/blobs/${digest}`;

  /** Resolver of the test's names: `rebind.test` answers the target's loopback address and a metadata address. */
  const resolve: Resolver = async (hostname) => {
    if (hostname === 'rebind.test') return [{ address: '127.0.0.1', family: 4 }, { address: '169.254.169.254', family: 4 }];
    if (hostname === 'metadata.test') return [{ address: '169.254.169.254', family: 4 }];
    if (hostname === 'v6-link-local.test') return [{ address: 'fe80::1', family: 6 }];
    if (hostname === 'mapped.test') return [{ address: '::ffff:169.254.169.254', family: 6 }];
    throw Object.assign(new Error(`getaddrinfo ENOTFOUND ${hostname}`), { code: 'ENOTFOUND' });
  };

  beforeEach(async () => {
    origin = await startOrigin();
    origin.blobs.set(digest, content);
    target = await startTarget();
    tasks = new MemoryTasks();
    log = capturingLogger();
  });

  afterEach(async () => {
    await proxy?.close();
    await origin.close();
    await target.close();
  });

  async function start(overrides: Parameters<typeof proxyConfig>[0] = {}): Promise<void> {
    proxy = await startProxyServer({ config: proxyConfig({ registryMirror: { url: origin.base }, ...overrides }), tasks, logger: log.logger, registry: new Registry(), resolve });
  }

  /** The proxy still answers /healthy and serves a legitimate blob pull from the configured registry. */
  async function expectHealthy(): Promise<void> {
    const health = await request(proxy.port, '/healthy');
    expect(health.status).toBe(200);
    const pull = await request(proxy.port, `${blobPath}?ns=registry.local`, { headers: { 'X-Dragonfly-Registry': origin.base } });
    expect(pull.status).toBe(200);
    expect(pull.body.equals(content)).toBe(true);
  }

  function refusalLines(): Array<Record<string, unknown>> {
    return log.lines.filter((l) => l.msg === 'proxy: refused request');
  }

  it('refuses an absolute-URI POST to an internal service (the manager signup), relaying nothing', async () => {
    await start();
    const signup = await request(proxy.port, `http://127.0.0.1:${target.port}/api/v1/users/signup`, {
      method: 'POST',
      body: '{"name":"attacker","password":"x"}',
      headers: { 'content-type': 'application/json' },
    });
    expect(signup.status).toBe(403);
    expect(signup.headers['content-type']).toBe('application/json');
    expect(signup.headers['x-dragonfly-error-type']).toBe('proxy');
    expect(JSON.parse(signup.body.toString())).toMatchObject({ kind: 'PermissionDenied' });
    expect(reasonOf(signup)).toContain('not in proxy.whiteList');

    // The same service by GET, by origin-form with the registry header, and by a mirror path that climbs out of /v2/.
    const get = await request(proxy.port, `http://127.0.0.1:${target.port}/api/v1/users`);
    const originForm = await request(proxy.port, '/api/v1/users/signup', { method: 'POST', body: '{}', headers: { 'X-Dragonfly-Registry': `http://127.0.0.1:${target.port}` } });
    const climb = await request(proxy.port, '/v2/../api/v1/users', { headers: { 'X-Dragonfly-Registry': origin.base } });
    const encodedClimb = await request(proxy.port, '/v2/%2e%2e/api/v1/users', { headers: { 'X-Dragonfly-Registry': origin.base } });
    expect([get.status, originForm.status, climb.status, encodedClimb.status]).toEqual([403, 403, 403, 403]);
    expect(reasonOf(climb)).toContain('under /v2/');

    expect(target.connections).toBe(0);
    expect(target.requests).toEqual([]);
    expect(origin.seen).toEqual([]);
    expect(tasks.calls).toEqual([]);
    const lines = refusalLines();
    expect(lines).toHaveLength(5);
    for (const line of lines) {
      expect(line.client).toMatch(/^127\.0\.0\.1:\d+$/);
      expect(line.status).toBe(403);
      expect(typeof line.reason).toBe('string');
    }
    expect(lines[0]).toMatchObject({ method: 'POST', target: `http://127.0.0.1:${target.port}/api/v1/users/signup` });
    await expectHealthy();
  });

  it('refuses CONNECT to an arbitrary host:port, opening no connection', async () => {
    await start();
    const tunnel = await connect(proxy.port, `127.0.0.1:${target.port}`);
    expect(tunnel.status).toBe(403);
    expect(reasonOf(tunnel)).toContain('CONNECT to 127.0.0.1:');
    const v6 = await connect(proxy.port, `[::1]:${target.port}`);
    expect(v6.status).toBe(403);
    const garbage = await connect(proxy.port, 'no-port-given');
    expect(garbage.status).toBe(400);
    expect(target.connections).toBe(0);
    expect(refusalLines().map((l) => l.method)).toEqual(['CONNECT', 'CONNECT', 'CONNECT']);
    await expectHealthy();
  });

  it('allows CONNECT only to what the config lists (hijackHTTPS hosts, whiteList host with the port)', async () => {
    await start({ whiteList: [{ host: 'localhost', ports: ['1'] }], hijackHTTPS: { hosts: [{ regx: `127\\.0\\.0\\.1:${target.port}` }] } });
    const listed = await connect(proxy.port, `127.0.0.1:${target.port}`);
    expect(listed.status).toBe(200);
    const otherPort = await connect(proxy.port, `127.0.0.1:${origin.port}`);
    expect(otherPort.status).toBe(403);
    expect(origin.seen).toEqual([]);
  });

  it('refuses X-Dragonfly-Registry and ?ns= naming any registry the config does not list, on any path', async () => {
    await start();
    const any = `http://127.0.0.1:${target.port}`;
    const answers = await Promise.all([
      request(proxy.port, blobPath, { headers: { 'X-Dragonfly-Registry': any } }),
      request(proxy.port, '/v2/', { headers: { 'X-Dragonfly-Registry': any } }),
      request(proxy.port, '/v2/x/manifests/latest', { headers: { 'X-Dragonfly-Registry': `${any}/api/v1/users` } }),
      request(proxy.port, '/api/v1/users', { headers: { 'X-Dragonfly-Registry': any } }),
      request(proxy.port, `${blobPath}?ns=127.0.0.1:${target.port}`),
      request(proxy.port, '/v2/x/manifests/latest', { headers: { 'X-Dragonfly-Registry': 'http://169.254.169.254' } }),
      request(proxy.port, '/v2/x/manifests/latest', { headers: { 'X-Dragonfly-Registry': 'gopher://127.0.0.1:70' } }),
    ]);
    expect(answers.map((a) => a.status)).toEqual([403, 403, 403, 403, 403, 403, 400]);
    expect(reasonOf(answers[0])).toContain(`registry 127.0.0.1:${target.port} is not allowed`);
    expect(target.connections).toBe(0);
    expect(tasks.calls).toEqual([]);
    expect(refusalLines()).toHaveLength(7);
    await expectHealthy();
  });

  it('keeps serving a registry the config lists (whiteList host and port) by header and by ns', async () => {
    await start({ registryMirror: { url: 'https://index.docker.io' }, whiteList: [{ host: '127.0.0.1', ports: [String(origin.port)] }] });
    const byHeader = await request(proxy.port, blobPath, { headers: { 'X-Dragonfly-Registry': origin.base } });
    expect(byHeader.status).toBe(200);
    const byNs = await request(proxy.port, `/v2/library/app/manifests/v1?ns=127.0.0.1:${origin.port}`, {});
    // ns without a scheme means https; the listed port still matches, so the refusal is not the allow-list's.
    expect(byNs.status).not.toBe(403);
    const otherPort = await request(proxy.port, blobPath, { headers: { 'X-Dragonfly-Registry': `http://127.0.0.1:${target.port}` } });
    expect(otherPort.status).toBe(403);
    expect(target.connections).toBe(0);
  });

  it('refuses link-local and metadata addresses even when a pattern admits every host, checking what names resolve to', async () => {
    await start({ whiteList: [{ regx: '.*' }], hijackHTTPS: { hosts: [{ regx: '.*' }] } });
    const answers = await Promise.all([
      request(proxy.port, 'http://169.254.169.254/latest/meta-data/iam/security-credentials/'),
      request(proxy.port, '/v2/x/manifests/latest', { headers: { 'X-Dragonfly-Registry': 'http://169.254.169.254' } }),
      request(proxy.port, 'http://[fe80::1]/'),
      request(proxy.port, 'http://[::ffff:169.254.169.254]/'),
      request(proxy.port, 'http://100.100.100.200/latest/meta-data/'),
      request(proxy.port, 'http://0.0.0.0:80/'),
      request(proxy.port, 'http://metadata.test/computeMetadata/v1/'),
      request(proxy.port, 'http://v6-link-local.test/'),
      request(proxy.port, 'http://mapped.test/'),
      request(proxy.port, blobPath, { headers: { 'X-Dragonfly-Registry': 'http://metadata.test' } }),
      // A name that also resolves to a live service: one bad address refuses the request, so the live one sees nothing.
      request(proxy.port, `http://rebind.test:${target.port}/admin`),
    ]);
    for (const a of answers) {
      expect(a.status).toBe(403);
      expect(reasonOf(a)).toMatch(/link-local, unspecified or a metadata endpoint/);
    }
    const tunnel = await connect(proxy.port, '169.254.169.254:80');
    expect(tunnel.status).toBe(403);
    const rebindTunnel = await connect(proxy.port, `rebind.test:${target.port}`);
    expect(rebindTunnel.status).toBe(403);
    expect(target.connections).toBe(0);
    expect(tasks.calls).toEqual([]);
    expect(refusalLines()).toHaveLength(answers.length + 2);
    await expectHealthy();
  });

  it('lets an operator list a metadata host exactly, and then connects to the checked address only', async () => {
    // `host: rebind.test` is explicit, so its sensitive address is allowed; the request goes to the first (checked) address.
    await start({ whiteList: [{ host: 'rebind.test' }] });
    const res = await request(proxy.port, `http://rebind.test:${target.port}/status`);
    expect(res.status).toBe(200);
    expect(target.requests).toEqual(['GET /status']);
  });

  it('cuts a slow-drip origin at proxy.requestTimeout on pass-through and on P2P, and stays healthy', async () => {
    const dripSockets = new Set<net.Socket>();
    let dripClosed = 0;
    const drip = http.createServer((req, res) => {
      dripSockets.add(req.socket);
      req.socket.once('close', () => dripClosed++);
      res.writeHead(200, { 'content-type': 'application/octet-stream' });
      const timer = setInterval(() => res.write('x'), 50);
      res.once('close', () => clearInterval(timer));
    });
    await new Promise<void>((r) => drip.listen(0, '127.0.0.1', r));
    const dripPort = (drip.address() as net.AddressInfo).port;
    try {
      await start({ requestTimeout: '1s', idleTimeout: '30s', whiteList: [{ host: '127.0.0.1', ports: [String(dripPort)] }] });
      const dripBase = `http://127.0.0.1:${dripPort}`;

      // Pass-through (a manifest): headers arrive, then one byte per 50 ms, for ever.
      const t0 = Date.now();
      const outcome = await new Promise<{ status: number; bytes: number; cut: boolean }>((resolve) => {
        const req = http.get({ host: '127.0.0.1', port: proxy.port, path: '/v2/x/manifests/latest', headers: { 'X-Dragonfly-Registry': dripBase }, agent: false }, (res) => {
          let bytes = 0;
          res.on('data', (c: Buffer) => (bytes += c.length));
          res.on('error', () => resolve({ status: res.statusCode ?? 0, bytes, cut: true }));
          res.on('aborted', () => resolve({ status: res.statusCode ?? 0, bytes, cut: true }));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, bytes, cut: !res.complete }));
        });
        req.on('error', () => resolve({ status: 0, bytes: 0, cut: true }));
      });
      const elapsed = Date.now() - t0;
      expect(outcome.status).toBe(200);
      expect(outcome.cut).toBe(true);
      expect(elapsed).toBeGreaterThanOrEqual(900);
      // Without the deadline the drip never ends; the margin is for a loaded CI machine.
      expect(elapsed).toBeLessThan(8000);

      // P2P (a blob): the engine's origin read drips; the deadline aborts it and the client gets a 504 before any header.
      const t1 = Date.now();
      const blob = await request(proxy.port, blobPath, { headers: { 'X-Dragonfly-Registry': dripBase } });
      expect(blob.status).toBe(504);
      expect(reasonOf(blob)).toContain('proxy.requestTimeout');
      expect(Date.now() - t1).toBeLessThan(8000);
      expect(tasks.calls[0].signal?.aborted).toBe(true);

      // Both origin connections were closed by the proxy, not left dripping.
      for (let i = 0; i < 100 && dripClosed < dripSockets.size; i++) await new Promise((r) => setTimeout(r, 20));
      expect(dripSockets.size).toBeGreaterThanOrEqual(2);
      expect(dripClosed).toBe(dripSockets.size);
      expect(log.lines.some((l) => l.msg === 'proxy: request cut at its deadline' && typeof l.client === 'string')).toBe(true);
      await expectHealthy();
    } finally {
      drip.closeAllConnections();
      await new Promise<void>((r) => drip.close(() => r()));
    }
  });

  it('cuts an origin that never sends headers at proxy.originHeaderTimeout with a 504', async () => {
    // Reads the request (so it sees the proxy hang up) and never answers.
    const silent = net.createServer((socket) => socket.resume());
    await new Promise<void>((r) => silent.listen(0, '127.0.0.1', r));
    const silentPort = (silent.address() as net.AddressInfo).port;
    try {
      await start({ originHeaderTimeout: '300ms', whiteList: [{ host: '127.0.0.1', ports: [String(silentPort)] }] });
      const t0 = Date.now();
      const res = await request(proxy.port, '/v2/x/manifests/latest', { headers: { 'X-Dragonfly-Registry': `http://127.0.0.1:${silentPort}` } });
      expect(res.status).toBe(504);
      expect(reasonOf(res)).toContain('proxy.originHeaderTimeout');
      expect(Date.now() - t0).toBeLessThan(5000);
    } finally {
      await new Promise<void>((r) => silent.close(() => r()));
    }
  });

  it('replays only content headers of a stored task to later clients (no Set-Cookie, auth challenges or hop-by-hop)', async () => {
    const cookieOrigin = http.createServer((_req, res) => {
      res.writeHead(200, {
        'content-type': 'application/octet-stream',
        'docker-content-digest': digest,
        'set-cookie': 'session=first-client',
        'www-authenticate': 'Basic realm="x"',
        'x-internal-token': 'secret',
        'keep-alive': 'timeout=5',
        'content-length': content.length,
      });
      res.end(content);
    });
    await new Promise<void>((r) => cookieOrigin.listen(0, '127.0.0.1', r));
    const base = `http://127.0.0.1:${(cookieOrigin.address() as net.AddressInfo).port}`;
    try {
      await start({ registryMirror: { url: base } });
      const first = await request(proxy.port, blobPath);
      const second = await request(proxy.port, blobPath);
      for (const res of [first, second]) {
        expect(res.status).toBe(200);
        expect(res.headers['content-type']).toBe('application/octet-stream');
        expect(res.headers['docker-content-digest']).toBe(digest);
        expect(res.headers['set-cookie']).toBeUndefined();
        expect(res.headers['www-authenticate']).toBeUndefined();
        expect(res.headers['x-internal-token']).toBeUndefined();
      }
      expect(second.headers['x-dragonfly-task-download-finished']).toBe('true');
    } finally {
      cookieOrigin.closeAllConnections();
      await new Promise<void>((r) => cookieOrigin.close(() => r()));
    }
  });
});
