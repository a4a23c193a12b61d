/**
 * Issue 11, the scheduler's share of the attack list, sent the way a hostile neighbour on the
 * node network would: raw gRPC calls over real sockets, from another address (::1) than the
 * honest hosts (127.0.0.1). Each attack must be refused with its status code, and afterwards
 * the health check answers and an honest peer is still scheduled.
 */
import * as grpc from '@grpc/grpc-js';
import { startGrpcServer, type GrpcServerHandle } from '../../../services/common/grpc';
import { taskIdOf } from '../../../services/common/ids';
import { MAX_CONTENT_LENGTH } from '../../../services/common/pieces';
import { dfdaemonUploadService, managerService, type DfdaemonUploadHandlers, type Download__Output, type ManagerHandlers } from '../../../services/proto';
import type { ListHostsResponse__Output } from '../../../services/proto/gen/scheduler/v2/ListHostsResponse';
import type { SeedPeer } from '../../../services/proto/gen/manager/v2/SeedPeer';
import type { Task__Output } from '../../../services/proto/gen/common/v2/Task';
import {
  ATTACKER_IP,
  HONEST_IP,
  MiB,
  PeerStream,
  announce,
  call,
  healthStatus,
  honestPeerIsScheduled,
  hostOf,
  register,
  startTarget,
  type Target,
} from './hostile';

jest.setTimeout(60_000);

/** A DfdaemonUpload server that records the seed triggers it receives and ends them at once. */
async function triggerRecorder(address: string): Promise<{ server: GrpcServerHandle; triggers: Download__Output[] }> {
  const triggers: Download__Output[] = [];
  const handlers: Partial<DfdaemonUploadHandlers> = {
    DownloadTask(c) {
      if (c.request.download) triggers.push(c.request.download);
      c.end();
    },
  };
  const server = await startGrpcServer(address, [{ name: 'dfdaemon.v2.DfdaemonUpload', definition: dfdaemonUploadService(), handlers: handlers as grpc.UntypedServiceImplementation }]);
  return { server, triggers };
}

/** A manager that lists `seedPeers` (mutable: a seed peer may register after the scheduler's refresh). */
async function fakeManager(seedPeers: SeedPeer[]): Promise<GrpcServerHandle> {
  const handlers: Partial<ManagerHandlers> = {
    UpdateScheduler: (c, cb) => cb(null, { id: 1, hostname: c.request.hostname, ip: c.request.ip, port: c.request.port, schedulerClusterId: 1, state: 'active' }),
    KeepAlive(c, cb) {
      c.on('data', () => undefined);
      c.on('end', () => cb(null, {}));
      c.on('error', () => undefined);
    },
    GetScheduler: (c, cb) => cb(null, { id: 1, hostname: c.request.hostname, schedulerClusterId: 1, schedulerCluster: { id: 1, name: 'c1' }, seedPeers }),
  };
  return startGrpcServer(`${HONEST_IP}:0`, [{ name: 'manager.v2.Manager', definition: managerService(), handlers: handlers as grpc.UntypedServiceImplementation }]);
}

async function expectHealthy(target: Target): Promise<void> {
  expect(await healthStatus(target.scheduler.port)).toBe('SERVING');
  expect(await honestPeerIsScheduled(target)).toMatch(/Response$/);
}

async function hosts(target: Target): Promise<ListHostsResponse__Output['hosts']> {
  const { res } = await call<object, ListHostsResponse__Output>(target.honest.ListHosts.bind(target.honest), {});
  return res?.hosts ?? [];
}

describe('scheduler attacked by a neighbour', () => {
  let target: Target;
  let manager: GrpcServerHandle;
  let seed: Awaited<ReturnType<typeof triggerRecorder>>;
  let rogue: Awaited<ReturnType<typeof triggerRecorder>>;
  const seedPeers: SeedPeer[] = [];
  let seq = 0;
  /** An attacker's host, announced from ::1 (attackers may be hosts too). */
  const attackerHost = async (): Promise<string> => {
    const id = `${ATTACKER_IP}-attacker-${++seq}`;
    const { err } = await announce(target.attacker, hostOf(id, ATTACKER_IP, 30000 + seq));
    expect(err).toBeUndefined();
    return id;
  };

  beforeAll(async () => {
    seed = await triggerRecorder(`${HONEST_IP}:0`);
    rogue = await triggerRecorder(`[${ATTACKER_IP}]:0`);
    manager = await fakeManager(seedPeers);
    // refreshInterval 1h: a seed peer the manager lists later is only seen through the on-demand refresh.
    target = await startTarget({ manager: { addr: `${HONEST_IP}:${manager.port}`, schedulerClusterID: 1 }, dynConfig: { refreshInterval: '1h' } }, { managerBackoff: { initialMs: 50, maxMs: 200 } });
    const deadline = Date.now() + 5000;
    while (!target.scheduler.manager?.lastConfig && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    expect(target.scheduler.manager?.lastConfig).toBeDefined();
  });

  afterAll(async () => {
    await target?.close();
    await manager?.shutdown(0);
    await seed?.server.shutdown(0);
    await rogue?.server.shutdown(0);
  });

  afterEach(async () => {
    await expectHealthy(target);
  });

  test('download_piece_finished with piece number 2^32-1 is INVALID_ARGUMENT and allocates nothing', async () => {
    const hostId = await attackerHost();
    const s = new PeerStream(target.attacker);
    const peerId = `${hostId}-p`;
    const taskId = register(s, { hostId, peerId }, 'http://origin.test/huge-piece.bin');
    await s.until(() => s.answers.length > 0);
    const rssBefore = process.memoryUsage().rss;
    s.write({ hostId, taskId, peerId, downloadPieceFinishedRequest: { piece: { number: 2 ** 32 - 1, length: 4 * MiB, trafficType: 'REMOTE_PEER' } } });
    const err = await s.refusal();
    expect(err.code).toBe(grpc.status.INVALID_ARGUMENT);
    expect(err.details).toMatch(/piece number 4294967295 is outside/);
    expect(process.memoryUsage().rss - rssBefore).toBeLessThan(64 * MiB);
    expect(target.scheduler.service.store.peers.get(peerId)?.finishedPieceCount() ?? 0).toBe(0);

    // A piece number just past a known task's piece count, on a task of 2 pieces.
    const t = new PeerStream(target.attacker);
    const small = register(t, { hostId, peerId: `${hostId}-q` }, 'http://origin.test/two-pieces.bin');
    await t.until(() => t.answers.length > 0);
    t.write({ hostId, taskId: small, peerId: `${hostId}-q`, downloadPeerBackToSourceStartedRequest: { contentLength: 8 * MiB, pieceLength: 4 * MiB } });
    t.write({ hostId, taskId: small, peerId: `${hostId}-q`, downloadPieceBackToSourceFinishedRequest: { piece: { number: 2, length: 4 * MiB } } });
    expect((await t.refusal()).code).toBe(grpc.status.INVALID_ARGUMENT);
    expect(t.error?.details).toMatch(/outside the task's 2 pieces/);
  });

  test('a back-to-source task of 2^40 bytes in 1-byte pieces is INVALID_ARGUMENT, answered at once', async () => {
    const hostId = await attackerHost();
    for (const [name, body] of [
      ['started', { downloadPeerBackToSourceStartedRequest: { contentLength: MAX_CONTENT_LENGTH, pieceLength: 1 } }],
      ['finished', { downloadPeerBackToSourceFinishedRequest: { contentLength: MAX_CONTENT_LENGTH, pieceLength: 1, pieceCount: MAX_CONTENT_LENGTH } }],
      ['finished without piece length', { downloadPeerFinishedRequest: { contentLength: MAX_CONTENT_LENGTH, pieceCount: MAX_CONTENT_LENGTH } }],
      ['content beyond 1 TiB', { downloadPeerBackToSourceStartedRequest: { contentLength: 2 * MAX_CONTENT_LENGTH, pieceLength: 4 * MiB } }],
    ] as const) {
      const s = new PeerStream(target.attacker);
      const peerId = `${hostId}-${name.replace(/ /g, '-')}`;
      const taskId = register(s, { hostId, peerId }, `http://origin.test/tib-${name.replace(/ /g, '-')}.bin`);
      await s.until(() => s.answers.length > 0);
      const sent = performance.now();
      s.write({ hostId, taskId, peerId, ...body });
      const err = await s.refusal();
      expect({ name, code: err.code }).toEqual({ name, code: grpc.status.INVALID_ARGUMENT });
      expect(performance.now() - sent).toBeLessThan(2000);
      expect(target.scheduler.service.store.tasks.get(taskId)?.pieceCount ?? 0).toBe(0);
    }
  });

  test('a task id that is not the download’s is INVALID_ARGUMENT; the victim task is untouched', async () => {
    const victimUrl = 'http://origin.test/victim.bin';
    const victimTask = taskIdOf({ url: victimUrl });
    const honest = new PeerStream(target.honest);
    const honestHost = `${HONEST_IP}-victim-host`;
    expect((await announce(target.honest, hostOf(honestHost, HONEST_IP, 41000))).err).toBeUndefined();
    register(honest, { hostId: honestHost, peerId: `${honestHost}-p` }, victimUrl);
    await honest.until(() => honest.answers.length > 0);

    const hostId = await attackerHost();
    const s = new PeerStream(target.attacker);
    s.write({ hostId, taskId: victimTask, peerId: `${hostId}-x`, registerPeerRequest: { download: { url: 'http://evil.test/other-bytes.bin' } } });
    const err = await s.refusal();
    expect(err.code).toBe(grpc.status.INVALID_ARGUMENT);
    expect(err.details).toMatch(/does not match the download/);

    // An OCI blob URL names its digest: a different digest for it is refused too.
    const blob = `http://registry.test/v2/library/app/blobs/sha256:${'a'.repeat(64)}`;
    const b = new PeerStream(target.attacker);
    b.write({ hostId, taskId: taskIdOf({ url: blob }), peerId: `${hostId}-y`, registerPeerRequest: { download: { url: blob, digest: `sha256:${'b'.repeat(64)}` } } });
    expect((await b.refusal()).code).toBe(grpc.status.INVALID_ARGUMENT);

    const { res } = await call<object, Task__Output>(target.honest.StatTask.bind(target.honest), { taskId: victimTask });
    expect(res).toMatchObject({ url: victimUrl, peerCount: 1 });
    honest.close();
  });

  test('SUPER_HOST is refused to anyone not in the manager’s seed-peer list; seed triggers and their Authorization go to real seed peers only', async () => {
    // The attacker claims SUPER_HOST for its own address, then for the real seed's ip:port.
    const own = await announce(target.attacker, { ...hostOf(`${ATTACKER_IP}-rogue-seed`, ATTACKER_IP, rogue.server.port), type: 'SUPER_HOST' });
    expect(own.err?.code).toBe(grpc.status.PERMISSION_DENIED);
    expect(own.err?.details).toMatch(/is not a seed peer of this scheduler's cluster/);
    seedPeers.push({ id: 1, hostname: 'seed-1', ip: HONEST_IP, port: seed.server.port, downloadPort: 1, state: 'active', type: 'super' });
    const spoofed = await announce(target.attacker, { ...hostOf(`${HONEST_IP}-seed-1-seed`, HONEST_IP, seed.server.port), type: 'SUPER_HOST' });
    expect(spoofed.err?.code).toBe(grpc.status.PERMISSION_DENIED);
    expect(spoofed.err?.details).toMatch(/came from ::1/);

    // The real seed, registered with the manager after the scheduler's last refresh, is accepted.
    const real = await announce(target.honest, { ...hostOf(`${HONEST_IP}-seed-1-seed`, HONEST_IP, seed.server.port), type: 'SUPER_HOST' });
    expect(real.err).toBeUndefined();
    const listed = await hosts(target);
    expect(listed.find((h) => h.id === `${HONEST_IP}-seed-1-seed`)?.type).toBe('SUPER_HOST');
    expect(listed.filter((h) => h.type === 'SUPER_HOST')).toHaveLength(1);

    // An honest peer with registry credentials: the trigger (with the header) reaches the real seed only.
    const hostId = `${HONEST_IP}-creds-host`;
    expect((await announce(target.honest, hostOf(hostId, HONEST_IP, 42000))).err).toBeUndefined();
    const s = new PeerStream(target.honest);
    const url = 'http://registry.test/private-layer.bin';
    register(s, { hostId, peerId: `${hostId}-p` }, url, { requestHeader: { Authorization: 'Bearer secret' } });
    await s.until(() => s.answers.length > 0);
    const deadline = Date.now() + 3000;
    while (!seed.triggers.some((d) => d.url === url) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    expect(seed.triggers.find((d) => d.url === url)?.requestHeader).toEqual({ Authorization: 'Bearer secret' });
    expect(rogue.triggers).toEqual([]);
    s.close();
  });

  test('another address cannot overwrite, borrow or delete a host; a squatter loses the id to the real host', async () => {
    const victim = `${HONEST_IP}-node-victim`;
    expect((await announce(target.honest, hostOf(victim, HONEST_IP, 43000))).err).toBeUndefined();
    const overwrite = await announce(target.attacker, hostOf(victim, ATTACKER_IP, 43100));
    expect(overwrite.err?.code).toBe(grpc.status.PERMISSION_DENIED);
    expect(overwrite.err?.details).toMatch(/was announced from 127\.0\.0\.1; ::1 may not announce it/);
    expect((await hosts(target)).find((h) => h.id === victim)).toMatchObject({ ip: HONEST_IP, port: 43000 });

    const peer = new PeerStream(target.honest);
    register(peer, { hostId: victim, peerId: `${victim}-p` }, 'http://origin.test/victim-2.bin');
    await peer.until(() => peer.answers.length > 0);
    const borrow = new PeerStream(target.attacker);
    register(borrow, { hostId: victim, peerId: `${victim}-evil` }, 'http://origin.test/victim-2.bin');
    expect((await borrow.refusal()).code).toBe(grpc.status.PERMISSION_DENIED);
    const hijack = new PeerStream(target.attacker);
    const own = await attackerHost();
    register(hijack, { hostId: own, peerId: `${victim}-p` }, 'http://origin.test/victim-2.bin');
    expect((await hijack.refusal()).code).toBe(grpc.status.PERMISSION_DENIED);
    expect((await call(target.attacker.DeleteHost.bind(target.attacker), { hostId: victim })).err?.code).toBe(grpc.status.PERMISSION_DENIED);
    expect((await call(target.attacker.DeletePeer.bind(target.attacker), { peerId: `${victim}-p` })).err?.code).toBe(grpc.status.PERMISSION_DENIED);
    const deleteTask = await call(target.attacker.DeleteTask.bind(target.attacker), { taskId: taskIdOf({ url: 'http://origin.test/victim-2.bin' }), hostId: '' });
    expect(deleteTask.err?.code).toBe(grpc.status.PERMISSION_DENIED);
    expect(target.scheduler.service.store.peers.get(`${victim}-p`)?.host.id).toBe(victim);
    peer.close();

    // Squatting: the attacker announces an id naming 127.0.0.1 before that host does.
    const squatted = `${HONEST_IP}-node-late`;
    expect((await announce(target.attacker, hostOf(squatted, HONEST_IP, 44000))).err).toBeUndefined();
    expect((await announce(target.honest, hostOf(squatted, HONEST_IP, 44000))).err).toBeUndefined();
    expect(target.scheduler.service.store.hosts.get(squatted)?.owner).toBe(HONEST_IP);
    expect((await announce(target.attacker, hostOf(squatted, HONEST_IP, 44000))).err?.code).toBe(grpc.status.PERMISSION_DENIED);
  });

  test('a message larger than the scheduler accepts is RESOURCE_EXHAUSTED, and oversized fields INVALID_ARGUMENT', async () => {
    const hostId = await attackerHost();
    const big = new PeerStream(target.attacker);
    big.write({ hostId, taskId: 'x', peerId: `${hostId}-big`, registerPeerRequest: { download: { url: `http://origin.test/${'a'.repeat(2 * MiB)}` } } });
    expect((await big.refusal()).code).toBe(grpc.status.RESOURCE_EXHAUSTED);
    const headers = new PeerStream(target.attacker);
    const many = Object.fromEntries(Array.from({ length: 1000 }, (_, i) => [`x-h-${i}`, 'v']));
    register(headers, { hostId, peerId: `${hostId}-headers` }, 'http://origin.test/headers.bin', { requestHeader: many });
    expect((await headers.refusal()).code).toBe(grpc.status.INVALID_ARGUMENT);
    const badIp = await announce(target.attacker, hostOf(`${ATTACKER_IP}-bad`, 'not-an-ip'));
    expect(badIp.err?.code).toBe(grpc.status.INVALID_ARGUMENT);
  });
});

describe('scheduler caps and GC against a flooding neighbour', () => {
  let target: Target;
  const honestHost = `${HONEST_IP}-honest-fixed`;

  beforeAll(async () => {
    target = await startTarget({
      scheduler: {
        limits: { hosts: 6, tasks: 4, peers: 50, peersPerTask: 3, streamsPerHost: 8, maxAnnounceInterval: '2s' },
        gc: { peerGCInterval: '100ms', hostGCInterval: '100ms', taskGCInterval: '100ms', peerTTL: '1h', hostTTL: '1h' },
      },
    });
  });
  afterAll(async () => {
    await target?.close();
  });

  test('announce interval is clamped: a host claiming to announce every 2^53 ms is collected after 2× maxAnnounceInterval', async () => {
    const id = `${ATTACKER_IP}-forever`;
    expect((await announce(target.attacker, hostOf(id, ATTACKER_IP), Number.MAX_SAFE_INTEGER)).err).toBeUndefined();
    expect(target.scheduler.service.store.hosts.get(id)?.announceIntervalMs).toBe(2000);
    const deadline = Date.now() + 10_000;
    while (target.scheduler.service.store.hosts.has(id) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    expect(target.scheduler.service.store.hosts.has(id)).toBe(false);
  });

  test('hosts, tasks, peers per task and streams per address are capped with RESOURCE_EXHAUSTED; GC frees them', async () => {
    // The honest host keeps announcing (its interval is clamped to 2 s too), and so does the attacker's first host.
    expect((await announce(target.honest, hostOf(honestHost, HONEST_IP, 45000), 2000)).err).toBeUndefined();
    const keepAlive = setInterval(() => void announce(target.honest, hostOf(honestHost, HONEST_IP, 45000), 2000), 300);
    const attackerKeepAlive = setInterval(() => void announce(target.attacker, hostOf(`${ATTACKER_IP}-flood-0`, ATTACKER_IP, 46000), 2000), 300);
    try {
      // Hosts: the attacker fills the table.
      const results: (grpc.ServiceError | undefined)[] = [];
      for (let i = 0; i < 8; i++) results.push((await announce(target.attacker, hostOf(`${ATTACKER_IP}-flood-${i}`, ATTACKER_IP, 46000 + i), 60_000)).err);
      const refusedHost = results.find((e) => e !== undefined);
      expect(refusedHost?.code).toBe(grpc.status.RESOURCE_EXHAUSTED);
      expect(refusedHost?.details).toMatch(/scheduler\.limits\.hosts/);
      const attackerId = `${ATTACKER_IP}-flood-0`;

      // Streams per address: the 9th concurrent stream from ::1 is refused, 127.0.0.1 is not affected.
      const streams = Array.from({ length: 9 }, () => new PeerStream(target.attacker));
      const ninth = await streams[8].refusal();
      expect(ninth.code).toBe(grpc.status.RESOURCE_EXHAUSTED);
      expect(ninth.details).toMatch(/scheduler\.limits\.streamsPerHost/);
      expect(await honestPeerIsScheduled(target, honestHost)).toMatch(/Response$/);

      // Peers per task: 3 on one task, the 4th refused.
      const url = 'http://origin.test/crowded.bin';
      for (let i = 0; i < 3; i++) {
        register(streams[i], { hostId: attackerId, peerId: `${attackerId}-crowd-${i}` }, url);
        await streams[i].until(() => streams[i].answers.length > 0);
      }
      register(streams[3], { hostId: attackerId, peerId: `${attackerId}-crowd-3` }, url);
      const crowded = await streams[3].refusal();
      expect(crowded.code).toBe(grpc.status.RESOURCE_EXHAUSTED);
      expect(crowded.details).toMatch(/scheduler\.limits\.peersPerTask/);

      // Tasks: the crowded task plus 4 more (on streams kept open, so GC cannot free them) exceed 4.
      let refusedTask: grpc.ServiceError | undefined;
      for (let i = 0; i < 4 && !refusedTask; i++) {
        const s = streams[4 + i];
        register(s, { hostId: attackerId, peerId: `${attackerId}-task-${i}` }, `http://origin.test/flood-task-${i}.bin`);
        await s.until(() => s.answers.length > 0 || s.error !== undefined);
        refusedTask = s.error;
      }
      expect(refusedTask?.code).toBe(grpc.status.RESOURCE_EXHAUSTED);
      expect(refusedTask?.details).toMatch(/scheduler\.limits\.tasks/);
      expect(await healthStatus(target.scheduler.port)).toBe('SERVING');

      // The attacker goes away: GC takes its peers, tasks and (silent) hosts, and honest work fits again.
      clearInterval(attackerKeepAlive);
      for (const s of streams) s.close();
      const deadline = Date.now() + 15_000;
      const store = target.scheduler.service.store;
      while ((store.tasks.size > 0 || [...store.hosts.keys()].some((h) => h.startsWith(ATTACKER_IP))) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
      expect([...store.hosts.keys()]).toEqual([honestHost]);
      expect(store.tasks.size).toBe(0);
      expect(target.scheduler.service.openStreams(ATTACKER_IP)).toBe(0);
      expect(await honestPeerIsScheduled(target, honestHost)).toMatch(/Response$/);
      expect(await honestPeerIsScheduled(target)).toMatch(/Response$/);
    } finally {
      clearInterval(keepAlive);
      clearInterval(attackerKeepAlive);
    }
  });
});
