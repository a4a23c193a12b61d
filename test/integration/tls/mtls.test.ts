/**
 * Mutual TLS for real: manager (sqlite), scheduler, seed peer and peer each with certificates
 * of one CA (made with openssl), piece HTTP over TLS. Each server refuses a client without a
 * certificate, with one of another CA and with an expired one; renewed files are picked up
 * without a restart; the manager checks the role and cluster in the client's certificate.
 */
import * as fsp from 'node:fs/promises';
import * as https from 'node:https';
import * as path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { X509Certificate } from 'node:crypto';
import type { TLSSocket } from 'node:tls';
import { ConfigError, identityUri, parseConfig, type ComponentIdentity } from '../../../services/common';
import { createDevCa, issueDevCert, type DevCa, type DevCert } from '../../../services/common/dev-pki';
import { startDfdaemon, type DfdaemonHandle } from '../../../services/dfdaemon/daemon';
import { startManager, type ManagerHandle } from '../../../services/manager/server';
import { protos, type ManagerClient } from '../../../services/proto';
import { startScheduler, type SchedulerHandle } from '../../../services/scheduler/server';
import { daemonConfig, MiB, quiet, randomFile, sha256File, startOrigin, tempDir, until, type Origin } from '../dfdaemon/helpers';

jest.setTimeout(90_000);

const HEALTH = grpc.makeGenericClientConstructor(
  {
    Check: {
      path: '/grpc.health.v1.Health/Check',
      requestStream: false,
      responseStream: false,
      requestSerialize: (b: Buffer) => b,
      requestDeserialize: (b: Buffer) => b,
      responseSerialize: (b: Buffer) => b,
      responseDeserialize: (b: Buffer) => b,
    },
  },
  'Health',
);

/** grpc.health.v1 Check("") over `creds`: "SERVING" or the gRPC error's code and details. */
function healthCheck(port: number, creds: grpc.ChannelCredentials): Promise<string> {
  const client = new HEALTH(`127.0.0.1:${port}`, creds);
  return new Promise<string>((resolve) => {
    client.makeUnaryRequest('/grpc.health.v1.Health/Check', (b: Buffer) => b, (b: Buffer) => b, Buffer.alloc(0), { deadline: Date.now() + 5000 }, (err, res?: Buffer) => {
      client.close();
      // HealthCheckResponse{status: SERVING} is field 1 = 1.
      if (err) resolve(`${grpc.status[err.code]}: ${err.details}`);
      else resolve(res?.equals(Buffer.from([8, 1])) ? 'SERVING' : `unexpected ${res?.toString('hex')}`);
    });
  });
}

const noServerNameCheck = { checkServerIdentity: () => undefined };

describe('mutual TLS between manager, scheduler and dfdaemons', () => {
  let root: string;
  let ca: DevCa;
  let origin: Origin;
  let manager: ManagerHandle;
  let scheduler: SchedulerHandle;
  let seed: DfdaemonHandle;
  let peer: DfdaemonHandle;
  let digest: string;
  const certs: Record<string, DevCert> = {};
  const SIZE = 12 * MiB;

  const issue = (name: string, id: ComponentIdentity, days = 30, issuer = ca) =>
    (certs[name] = issueDevCert(issuer, path.join(root, 'pki', name), { commonName: name, uris: [identityUri(id)], ipAddresses: ['127.0.0.1'], days }));
  const security = (name: string) => ({ insecure: false, caCert: ca.certFile, cert: certs[name].certFile, key: certs[name].keyFile, reloadInterval: '100ms' });
  const read = (f: string) => fsp.readFile(f);
  async function clientCreds(name: string | undefined, issuerCa = ca): Promise<grpc.ChannelCredentials> {
    if (!name) return grpc.credentials.createSsl(await read(issuerCa.certFile), null, null, noServerNameCheck);
    return grpc.credentials.createSsl(await read(ca.certFile), await read(certs[name].keyFile), await read(certs[name].certFile), noServerNameCheck);
  }

  beforeAll(async () => {
    root = await tempDir('mtls');
    ca = createDevCa(path.join(root, 'pki', 'ca'));
    const otherCa = createDevCa(path.join(root, 'pki', 'other-ca'), 'somebody-else');
    issue('manager', { role: 'manager' });
    issue('scheduler', { role: 'scheduler', clusterId: 1 });
    issue('seed', { role: 'seed-peer', clusterId: 1 });
    issue('peer', { role: 'peer', clusterId: 1 });
    issue('peer-cluster-2', { role: 'peer', clusterId: 2 });
    issue('seed-cluster-2', { role: 'seed-peer', clusterId: 2 });
    issue('foreign', { role: 'peer', clusterId: 1 }, 30, otherCa);
    issue('expired', { role: 'peer', clusterId: 1 }, -1);

    await fsp.mkdir(path.join(root, 'origin'));
    digest = await randomFile(path.join(root, 'origin', 'f.bin'), SIZE);
    origin = await startOrigin(path.join(root, 'origin'));
    manager = await startManager(
      parseConfig('manager', {
        server: { workHome: root, rest: { addr: '127.0.0.1:0' }, grpc: { listenIP: '127.0.0.1', advertiseIP: '127.0.0.1', port: { start: 0, end: 0 } } },
        database: { type: 'sqlite', sqlite: { file: path.join(root, 'manager.db') } },
        metrics: { enable: false },
        security: security('manager'),
        auth: { demoCredentials: true },
      }),
      { logger: quiet() },
    );
    scheduler = await startScheduler(
      parseConfig('scheduler', {
        server: { port: 0, listenIP: '127.0.0.1', advertiseIP: '127.0.0.1', host: 'tls-sched' },
        manager: { addr: `127.0.0.1:${manager.grpcPort}`, schedulerClusterID: 1, keepAlive: { interval: '200ms' } },
        dynConfig: { refreshInterval: '500ms' },
        metrics: { enable: false },
        security: security('scheduler'),
      }),
      { logger: quiet(), managerBackoff: { initialMs: 50, maxMs: 200 } },
    );
    await until(async () => (await manager.store.listSchedulers({ schedulerClusterId: 1, state: 'active' })).items.length > 0);
    const netAddrs = [{ addr: `127.0.0.1:${manager.grpcPort}` }];
    seed = await startDfdaemon(
      daemonConfig(path.join(root, 'seed'), 'tls-seed', {
        security: security('seed'),
        upload: { tls: { enable: true } },
        scheduler: { manager: { enable: true, netAddrs, seedPeer: { enable: true, clusterID: 1, keepAlive: { interval: '200ms' } } } },
      }),
      { logger: quiet() },
    );
    await until(async () => (await manager.store.listSeedPeers({ seedPeerClusterId: 1, state: 'active' })).items.some((s) => s.hostname === 'tls-seed'));
    peer = await startDfdaemon(
      daemonConfig(path.join(root, 'peer'), 'tls-peer', { security: security('peer'), upload: { tls: { enable: true } }, scheduler: { manager: { enable: true, netAddrs } } }),
      { logger: quiet() },
    );
  });

  afterAll(async () => {
    await peer?.stop();
    await seed?.stop();
    await scheduler?.stop();
    await manager?.stop();
    await origin?.close();
    await fsp.rm(root, { recursive: true, force: true });
  });

  it('a download crosses manager, scheduler, seed peer and peer with mTLS everywhere, pieces over HTTPS', async () => {
    const out = path.join(root, 'out.bin');
    const pieces: string[] = [];
    await peer.tasks.downloadToFile({ url: origin.url('f.bin'), requestHeaders: {}, outputPath: out }, (p) => {
      if (p.piece) pieces.push(`${p.piece.trafficType}:${p.piece.parentId ?? ''}`);
    });
    expect(await sha256File(out)).toBe(digest);
    expect(origin.bytesServed()).toBe(SIZE);
    expect(pieces.length).toBeGreaterThan(0);
    for (const p of pieces) expect(p).toMatch(/^REMOTE_PEER:.*-seed$/);
  });

  const servers = (): Array<[string, number]> => [
    ['manager gRPC', manager.grpcPort],
    ['scheduler gRPC', scheduler.port],
    ['dfdaemon upload gRPC', peer.grpcPort],
  ];

  it('each gRPC server answers a client with a certificate of the CA', async () => {
    for (const [, port] of servers()) expect(await healthCheck(port, await clientCreds('peer'))).toBe('SERVING');
  });

  it.each([
    ['no client certificate', undefined],
    ['a certificate of another CA', 'foreign'],
    ['an expired certificate', 'expired'],
  ])('each gRPC server refuses a client with %s at the handshake', async (_what, name) => {
    for (const [server, port] of servers()) {
      const answer = await healthCheck(port, await clientCreds(name));
      expect(`${server}: ${answer}`).toMatch(new RegExp(`^${server}: UNAVAILABLE`));
    }
  });

  it('a plaintext client gets nothing from a TLS server', async () => {
    for (const [server, port] of servers()) expect(`${server}: ${await healthCheck(port, grpc.credentials.createInsecure())}`).toMatch(new RegExp(`^${server}: UNAVAILABLE`));
  });

  /** GET /healthy-less probe of the piece port: the TLS result or the HTTP status. */
  async function pieceProbe(name: string | undefined): Promise<string> {
    const options: https.RequestOptions = {
      host: '127.0.0.1',
      port: peer.uploadPort,
      path: '/download/abc/abc?peerId=x',
      ca: await read(ca.certFile),
      checkServerIdentity: () => undefined,
      agent: false,
      ...(name ? { cert: await read(certs[name].certFile), key: await read(certs[name].keyFile) } : {}),
    };
    return new Promise((resolve) => {
      const req = https.get(options, (res) => {
        res.resume();
        resolve(`HTTP ${res.statusCode}`);
      });
      req.on('error', (err: NodeJS.ErrnoException) => resolve(`refused: ${err.code ?? err.message}`));
    });
  }

  it('the piece HTTPS server answers a peer of the CA and refuses the others at the handshake', async () => {
    expect(await pieceProbe('peer')).toMatch(/^HTTP 4\d\d$/);
    for (const name of [undefined, 'foreign', 'expired']) expect(`${name}: ${await pieceProbe(name)}`).toMatch(/: refused: /);
  });

  it('renewed certificate files are used for new connections without a restart (piece HTTPS, and gRPC of dfdaemon, manager and scheduler)', async () => {
    const serverSerial = async (port: number) =>
      new Promise<string>((resolve, reject) => {
        const req = https.get({ host: '127.0.0.1', port, rejectUnauthorized: false, agent: false, path: '/' });
        req.on('socket', (s) => s.on('secureConnect', () => resolve((s as TLSSocket).getPeerCertificate().serialNumber)));
        req.on('error', reject);
      }).catch((err: Error) => err.message);
    const before = new X509Certificate(await read(certs.peer.certFile)).serialNumber;
    // The piece server speaks HTTPS: its certificate is visible to any TLS client before the refusal.
    const servedBefore = await serverSerial(peer.uploadPort);
    expect(servedBefore.toUpperCase()).toBe(before.toUpperCase());
    // Rotate: a new certificate and key written over the old files (cert-manager renews in place).
    const next = issueDevCert(ca, path.join(root, 'pki', 'peer-next'), { commonName: 'peer', uris: [identityUri({ role: 'peer', clusterId: 1 })], ipAddresses: ['127.0.0.1'] });
    await fsp.copyFile(next.keyFile, certs.peer.keyFile);
    await fsp.copyFile(next.certFile, certs.peer.certFile);
    const after = new X509Certificate(await read(next.certFile)).serialNumber;
    expect(after).not.toBe(before);
    await until(async () => (await serverSerial(peer.uploadPort)).toUpperCase() === after.toUpperCase(), 5000);
    // gRPC too: each server presents its renewed certificate (manager and scheduler rotated here as well).
    const grpcSerial = async (port: number) => {
      let seen = '';
      const creds = grpc.credentials.createSsl(await read(ca.certFile), await read(certs.seed.keyFile), await read(certs.seed.certFile), {
        checkServerIdentity: (_h, cert) => {
          seen = cert.serialNumber;
          return undefined;
        },
      });
      expect(await healthCheck(port, creds)).toBe('SERVING');
      return seen.toUpperCase();
    };
    await until(async () => (await grpcSerial(peer.grpcPort)) === after.toUpperCase(), 5000);
    for (const [name, port, id] of [
      ['manager', manager.grpcPort, { role: 'manager' }],
      ['scheduler', scheduler.port, { role: 'scheduler', clusterId: 1 }],
    ] as const) {
      const old = new X509Certificate(await read(certs[name].certFile)).serialNumber.toUpperCase();
      expect(await grpcSerial(port)).toBe(old);
      const renewed = issueDevCert(ca, path.join(root, 'pki', `${name}-next`), { commonName: name, uris: [identityUri(id)], ipAddresses: ['127.0.0.1'] });
      await fsp.copyFile(renewed.keyFile, certs[name].keyFile);
      await fsp.copyFile(renewed.certFile, certs[name].certFile);
      const fresh = new X509Certificate(await read(renewed.certFile)).serialNumber.toUpperCase();
      await until(async () => (await grpcSerial(port)) === fresh, 5000);
    }
    // A half-written renewal (a key that does not match) is refused; the current pair stays in use.
    const manaKey = await read(certs.manager.keyFile);
    await fsp.copyFile(certs.peer.keyFile, certs.manager.keyFile);
    await new Promise((r) => setTimeout(r, 400));
    expect(await healthCheck(manager.grpcPort, await clientCreds('peer'))).toBe('SERVING');
    await fsp.writeFile(certs.manager.keyFile, manaKey);
    // And downloads keep working with the renewed pair (new piece connections use it).
    const out = path.join(root, 'out-2.bin');
    await peer.tasks.downloadToFile({ url: origin.url('f.bin'), requestHeaders: {}, outputPath: out });
    expect(await sha256File(out)).toBe(digest);
  });

  describe('manager gRPC checks the identity in the client certificate', () => {
    let clients: ManagerClient[] = [];
    const managerAs = async (name: string) => {
      const c = new (protos().manager.manager.v2.Manager)(`127.0.0.1:${manager.grpcPort}`, await clientCreds(name));
      clients.push(c);
      return c;
    };
    const call = <Req>(c: ManagerClient, method: 'UpdateSeedPeer' | 'UpdateScheduler' | 'ListSchedulers', req: Req) =>
      new Promise<string>((resolve) => {
        (c[method] as unknown as (r: Req, o: grpc.CallOptions, cb: (e: grpc.ServiceError | null) => void) => void).call(c, req, { deadline: Date.now() + 5000 }, (err) => resolve(err ? `${grpc.status[err.code]}: ${err.details}` : 'OK'));
      });
    afterAll(() => {
      for (const c of clients) c.close();
      clients = [];
    });
    const seedReq = (clusterId: number) => ({ hostname: 'intruder', ip: '10.9.9.9', port: 65000, downloadPort: 65002, seedPeerClusterId: clusterId, type: 'super' });

    it('a peer certificate cannot register a seed peer', async () => {
      expect(await call(await managerAs('peer'), 'UpdateSeedPeer', seedReq(1))).toMatch(/^PERMISSION_DENIED: .*spiffe:\/\/dragonfly\/cluster\/1\/seed-peer/);
    });
    it('a seed peer of cluster 2 cannot register in cluster 1', async () => {
      expect(await call(await managerAs('seed-cluster-2'), 'UpdateSeedPeer', seedReq(1))).toMatch(/^PERMISSION_DENIED/);
    });
    it('a peer cannot register a scheduler', async () => {
      expect(await call(await managerAs('peer'), 'UpdateScheduler', { hostname: 'x', ip: '10.9.9.9', port: 8002, schedulerClusterId: 1 })).toMatch(/^PERMISSION_DENIED/);
    });
    it('the seed peer of cluster 1 may register in cluster 1; any peer may list schedulers', async () => {
      expect(await call(await managerAs('seed'), 'UpdateSeedPeer', { ...seedReq(1), hostname: 'second-seed' })).toBe('OK');
      expect(await call(await managerAs('peer-cluster-2'), 'ListSchedulers', { hostname: 'p', ip: '10.0.0.1', sourceType: 'PEER_SOURCE' })).toBe('OK');
    });
    it('keep-alive of a scheduler needs that scheduler identity', async () => {
      const c = await managerAs('peer');
      const answer = await new Promise<string>((resolve) => {
        const stream = c.KeepAlive((err: grpc.ServiceError | null) => resolve(err ? `${grpc.status[err.code]}: ${err.details}` : 'OK'));
        stream.write({ sourceType: 'SCHEDULER_SOURCE', hostname: 'tls-sched', ip: '127.0.0.1', clusterId: 1 });
      });
      expect(answer).toMatch(/^PERMISSION_DENIED/);
    });
  });
});

describe('manager REST over HTTPS (server.rest.tls)', () => {
  it('serves the API with the configured certificate and picks up a renewed one', async () => {
    const dir = await tempDir('mtls-rest');
    const ca = createDevCa(path.join(dir, 'ca'));
    const restCert = issueDevCert(ca, path.join(dir, 'rest'), { commonName: 'manager-rest', dnsNames: ['localhost'], ipAddresses: ['127.0.0.1'] });
    const manager = await startManager(
      parseConfig('manager', {
        server: { workHome: dir, rest: { addr: '127.0.0.1:0', tls: { cert: restCert.certFile, key: restCert.keyFile } }, grpc: { listenIP: '127.0.0.1', port: { start: 0, end: 0 } } },
        database: { type: 'sqlite', sqlite: { file: path.join(dir, 'manager.db') } },
        metrics: { enable: false },
        security: { insecure: true, reloadInterval: '100ms' },
        auth: { demoCredentials: true },
      }),
      { logger: quiet() },
    );
    const get = (ca?: Buffer) =>
      new Promise<string>((resolve) => {
        const req = https.get({ host: '127.0.0.1', port: manager.restPort, path: '/healthy', ca, agent: false }, (res) => {
          res.resume();
          resolve(`HTTP ${res.statusCode} serial ${(res.socket as TLSSocket).getPeerCertificate().serialNumber}`);
        });
        req.on('error', (err: NodeJS.ErrnoException) => resolve(`refused: ${err.code ?? err.message}`));
      });
    try {
      const caPem = await fsp.readFile(ca.certFile);
      const first = new X509Certificate(await fsp.readFile(restCert.certFile)).serialNumber;
      expect((await get(caPem)).toUpperCase()).toBe(`HTTP 200 SERIAL ${first.toUpperCase()}`);
      // A client that does not trust the CA gets no answer; plain HTTP is not served.
      expect(await get()).toMatch(/^refused: /);
      const plain = await fetch(`http://127.0.0.1:${manager.restPort}/healthy`).then((r) => `HTTP ${r.status}`, () => 'refused');
      expect(plain).not.toBe('HTTP 200');
      const next = issueDevCert(ca, path.join(dir, 'rest-next'), { commonName: 'manager-rest', ipAddresses: ['127.0.0.1'] });
      await fsp.copyFile(next.keyFile, restCert.keyFile);
      await fsp.copyFile(next.certFile, restCert.certFile);
      const second = new X509Certificate(await fsp.readFile(next.certFile)).serialNumber.toUpperCase();
      await until(async () => (await get(caPem)).toUpperCase() === `HTTP 200 SERIAL ${second}`, 5000);
    } finally {
      await manager.stop();
      await fsp.rm(dir, { recursive: true, force: true });
    }
  });
});

describe('security config errors name the key', () => {
  it('no files and no insecure: the program refuses to start, naming security.caCert/cert/key', async () => {
    const dir = await tempDir('mtls-cfg');
    try {
      const err = await startScheduler(parseConfig('scheduler', { server: { port: 0, listenIP: '127.0.0.1' }, metrics: { enable: false } }), { logger: quiet() }).then(
        (s) => s.stop().then(() => undefined),
        (e: unknown) => e,
      );
      expect(err).toBeInstanceOf(ConfigError);
      expect((err as Error).message).toMatch(/security\.caCert.*required unless security\.insecure is true/);
      expect((err as Error).message).toMatch(/security\.key/);
    } finally {
      await fsp.rm(dir, { recursive: true, force: true });
    }
  });

  it('a key of another certificate, a CA that did not issue the certificate, an expired certificate', async () => {
    const dir = await tempDir('mtls-cfg');
    try {
      const ca = createDevCa(path.join(dir, 'ca'));
      const other = createDevCa(path.join(dir, 'other'));
      const a = issueDevCert(ca, path.join(dir, 'a'), { commonName: 'a' });
      const b = issueDevCert(ca, path.join(dir, 'b'), { commonName: 'b' });
      const old = issueDevCert(ca, path.join(dir, 'old'), { commonName: 'old', days: -1 });
      const start = (s: object) => startScheduler(parseConfig('scheduler', { server: { port: 0, listenIP: '127.0.0.1' }, metrics: { enable: false }, security: s }), { logger: quiet() }).then((h) => h.stop().then(() => 'started'), (e: Error) => e.message);
      expect(await start({ caCert: ca.certFile, cert: a.certFile, key: b.keyFile })).toMatch(/security\.key.*does not belong to the certificate/);
      expect(await start({ caCert: other.certFile, cert: a.certFile, key: a.keyFile })).toMatch(/security\.cert.*not issued by the CA in security\.caCert/);
      expect(await start({ caCert: ca.certFile, cert: old.certFile, key: old.keyFile })).toMatch(/security\.cert.*expired at/);
      expect(await start({ caCert: path.join(dir, 'missing.crt'), cert: a.certFile, key: a.keyFile })).toMatch(/security\.caCert.*ENOENT/);
      expect(() => parseConfig('scheduler', { security: { insecure: true, caCert: ca.certFile } })).toThrow(/security\.insecure/);
      expect(() => parseConfig('dfdaemon', { security: { insecure: true }, upload: { tls: { enable: true } } })).toThrow(/upload\.tls\.enable/);
    } finally {
      await fsp.rm(dir, { recursive: true, force: true });
    }
  });
});
