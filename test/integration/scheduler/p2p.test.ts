/**
 * The scheduler over real gRPC: one simulated seed peer (a real DfdaemonUpload server the
 * scheduler triggers) and 50 simulated peers on one task. Piece bytes are not moved; a
 * shared map stands for what SyncPieces would tell a child (which pieces each parent holds),
 * and a child only "fetches" a piece its parent holds at that moment.
 */
import * as grpc from '@grpc/grpc-js';
import { randomUUID } from 'node:crypto';
import { parseConfig } from '../../../services/common/config';
import { GRPC_OPTIONS, startGrpcServer, unary, type GrpcServerHandle } from '../../../services/common/grpc';
import { silentLogger } from '../../../services/common/logger';
import { taskIdOf } from '../../../services/common/ids';
import {
  dfdaemonUploadService,
  protos,
  type AnnouncePeerRequest,
  type AnnouncePeerResponse__Output,
  type DfdaemonUploadHandlers,
  type Peer__Output,
  type Task__Output,
  type SchedulerClient,
} from '../../../services/proto';
import type { Peer } from '../../../services/scheduler/resource/model';
import type { StatPeerRequest } from '../../../services/proto/gen/scheduler/v2/StatPeerRequest';
import type { StatTaskRequest } from '../../../services/proto/gen/scheduler/v2/StatTaskRequest';
import type { ListHostsRequest } from '../../../services/proto/gen/scheduler/v2/ListHostsRequest';
import type { ListHostsResponse__Output } from '../../../services/proto/gen/scheduler/v2/ListHostsResponse';
import { startScheduler, type SchedulerHandle } from '../../../services/scheduler/server';

const PIECES = 20;
const PIECE_LENGTH = 4 * 1024 * 1024;
const PEERS = 50;
const URL = 'http://origin.test/big-file.bin';
const TASK_ID = taskIdOf({ url: URL });

interface Transfer {
  child: string;
  parent: string;
  piece: number;
  parentWasDownloading: boolean;
  parentIsSeed: boolean;
}

/** Which pieces every peer holds (what SyncPieces would stream) and who is complete. */
const held = new Map<string, Set<number>>();
const complete = new Set<string>();

function hasCycle(peers: Iterable<Peer>): boolean {
  const state = new Map<Peer, 1 | 2>();
  const visit = (p: Peer): boolean => {
    state.set(p, 1);
    for (const parent of p.parents) {
      const s = state.get(parent);
      if (s === 1) return true;
      if (s === undefined && visit(parent)) return true;
    }
    state.set(p, 2);
    return false;
  };
  for (const p of peers) if (!state.has(p) && visit(p)) return true;
  return false;
}

describe('scheduler over gRPC: seed peer + 50 peers on one task', () => {
  let scheduler: SchedulerHandle;
  let seedServer: GrpcServerHandle;
  let client: SchedulerClient;
  let triggers = 0;
  let originFetches = 0;
  let cycleSeen = false;
  const seedHostId = '127.0.0.1-seed-host-seed';

  const checkDag = (): void => {
    if (hasCycle(scheduler.service.store.peers.values())) cycleSeen = true;
  };

  /** The seed peer's side: register with need_back_to_source, fetch "the origin", report pieces. */
  function runSeedPeer(download: AnnouncePeerRequest['registerPeerRequest']): Promise<void> {
    const peerId = `127.0.0.1-seed-host-${randomUUID()}-seed`;
    held.set(peerId, new Set());
    return new Promise((resolve, reject) => {
      const stream = client.AnnouncePeer();
      const base = { hostId: seedHostId, taskId: TASK_ID, peerId };
      stream.on('data', (r: AnnouncePeerResponse__Output) => {
        if (r.response !== 'needBackToSourceResponse') return reject(new Error(`seed got ${r.response}`));
        originFetches++;
        stream.write({ ...base, downloadPeerBackToSourceStartedRequest: { contentLength: PIECES * PIECE_LENGTH, pieceLength: PIECE_LENGTH, responseHeader: { etag: '"v1"' } } });
        let n = 0;
        const timer = setInterval(() => {
          held.get(peerId)?.add(n);
          stream.write({ ...base, downloadPieceBackToSourceFinishedRequest: { piece: { number: n, offset: n * PIECE_LENGTH, length: PIECE_LENGTH, trafficType: 'BACK_TO_SOURCE', costNs: 1e6 } } });
          n++;
          if (n === PIECES) {
            clearInterval(timer);
            complete.add(peerId);
            stream.write({ ...base, downloadPeerBackToSourceFinishedRequest: { contentLength: PIECES * PIECE_LENGTH, pieceCount: PIECES, pieceLength: PIECE_LENGTH } });
            stream.end();
          }
        }, 25);
      });
      stream.on('error', reject);
      stream.on('end', () => resolve());
      stream.write({ ...base, registerPeerRequest: download });
    });
  }

  beforeAll(async () => {
    const handlers: DfdaemonUploadHandlers = {
      DownloadTask(call) {
        triggers++;
        runSeedPeer({ download: { ...call.request.download, url: call.request.download?.url ?? '', needBackToSource: true } })
          .then(() => {
            call.write({ hostId: seedHostId, taskId: TASK_ID, downloadTaskStartedResponse: { contentLength: PIECES * PIECE_LENGTH, pieceLength: PIECE_LENGTH, isFinished: true } });
            call.end();
          })
          .catch((err: Error) => call.emit('error', { code: grpc.status.INTERNAL, details: err.message }));
      },
      SyncPieces(_call) {
        _call.emit('error', { code: grpc.status.UNIMPLEMENTED, details: 'not simulated' });
      },
      StatTask(_call, cb) {
        cb({ code: grpc.status.UNIMPLEMENTED });
      },
      DeleteTask(_call, cb) {
        cb({ code: grpc.status.UNIMPLEMENTED });
      },
    };
    seedServer = await startGrpcServer('127.0.0.1:0', [{ name: 'dfdaemon.v2.DfdaemonUpload', definition: dfdaemonUploadService(), handlers: handlers }]);
    const config = parseConfig('scheduler', { security: { insecure: true },
      server: { port: 0, listenIP: '127.0.0.1' },
      scheduler: { backToSourceCount: 3, candidateParentLimit: 4, retryInterval: '100ms' },
      seedPeer: { addrs: [`127.0.0.1:${seedServer.port}`] },
      metrics: { enable: true, addr: '127.0.0.1:0' },
    });
    scheduler = await startScheduler(config, { logger: silentLogger() });
    client = new (protos().scheduler.scheduler.v2.Scheduler)(`127.0.0.1:${scheduler.port}`, grpc.credentials.createInsecure(), GRPC_OPTIONS);
    await unary(client.AnnounceHost.bind(client), {
      host: { id: seedHostId, type: 'SUPER_HOST', hostname: 'seed-host', ip: '127.0.0.1', port: seedServer.port, downloadPort: 1, concurrentUploadLimit: 30 },
      intervalMs: 60_000,
    });
  });

  afterAll(async () => {
    client?.close();
    await scheduler?.stop();
    await seedServer?.shutdown(100);
  });

  test('only the seed goes to the origin, every peer finishes, parents form a DAG, in-flight peers serve pieces', async () => {
    const transfers: Transfer[] = [];
    const normalBackToSource: string[] = [];
    const answersSeen = new Map<string, Set<string>>();

    const runPeer = async (i: number): Promise<void> => {
      const hostId = `127.0.0.${(i % 200) + 2}-node-${i}`;
      await unary(client.AnnounceHost.bind(client), {
        host: { id: hostId, type: 'NORMAL_HOST', hostname: `node-${i}`, ip: '127.0.0.1', port: 20000 + i, downloadPort: 30000 + i, concurrentUploadLimit: 8, network: { idc: i % 2 ? 'idc-a' : 'idc-b', location: 'cn|sh' } },
        intervalMs: 60_000,
      });
      const peerId = `127.0.0.1-node-${i}-${randomUUID()}`;
      const mine = new Set<number>();
      held.set(peerId, mine);
      const base = { hostId, taskId: TASK_ID, peerId };
      let parents: string[] = [];
      let started = false;
      await new Promise<void>((resolve, reject) => {
        const stream = client.AnnouncePeer();
        let timer: NodeJS.Timeout | undefined;
        const tick = (): void => {
          for (let n = 0; n < PIECES; n++) {
            if (mine.has(n)) continue;
            const parent = parents.find((p) => held.get(p)?.has(n));
            if (!parent) continue;
            mine.add(n);
            transfers.push({ child: peerId, parent, piece: n, parentWasDownloading: !complete.has(parent), parentIsSeed: parent.endsWith('-seed') });
            stream.write({ ...base, downloadPieceFinishedRequest: { piece: { number: n, parentId: parent, offset: n * PIECE_LENGTH, length: PIECE_LENGTH, trafficType: 'REMOTE_PEER', costNs: 2e5 } } });
            break; // one piece per tick: peers stay in flight long enough to serve each other
          }
          if (mine.size === PIECES) {
            clearInterval(timer);
            complete.add(peerId);
            stream.write({ ...base, downloadPeerFinishedRequest: { contentLength: PIECES * PIECE_LENGTH, pieceCount: PIECES } });
            stream.end();
          }
        };
        stream.on('data', (r: AnnouncePeerResponse__Output) => {
          checkDag();
          const kinds = answersSeen.get(peerId) ?? new Set<string>();
          kinds.add(r.response ?? '');
          answersSeen.set(peerId, kinds);
          if (r.response === 'needBackToSourceResponse') normalBackToSource.push(peerId);
          if (r.response === 'normalTaskResponse') {
            const candidates = r.normalTaskResponse?.candidateParents ?? [];
            for (const c of candidates) {
              expect(c.host?.ip).toBe('127.0.0.1');
              expect(c.host?.port).toBeGreaterThan(0);
              expect(c.host?.id).not.toBe(hostId);
            }
            expect(r.normalTaskResponse?.task).toMatchObject({ contentLength: PIECES * PIECE_LENGTH, pieceLength: PIECE_LENGTH, pieceCount: PIECES });
            parents = candidates.map((c) => c.id);
            if (!started) {
              started = true;
              stream.write({ ...base, downloadPeerStartedRequest: {} });
              timer = setInterval(tick, 8);
            }
          }
        });
        stream.on('error', (err) => {
          clearInterval(timer);
          reject(err);
        });
        stream.on('end', () => resolve());
        stream.write({ ...base, registerPeerRequest: { download: { url: URL, requestHeader: { 'x-test': '1' } } } });
      });
    };

    // Peers arrive over ~300 ms, like pods starting on many nodes.
    await Promise.all(Array.from({ length: PEERS }, (_, i) => new Promise((r) => setTimeout(r, i * 6)).then(() => runPeer(i))));

    expect(triggers).toBe(1);
    expect(originFetches).toBe(1);
    expect(normalBackToSource).toEqual([]);
    const peers = [...held.keys()].filter((id) => !id.endsWith('-seed'));
    expect(peers).toHaveLength(PEERS);
    for (const id of peers) {
      const stat = await unary<StatPeerRequest, Peer__Output>(client.StatPeer.bind(client), { peerId: id, taskId: TASK_ID });
      expect(stat.state).toBe('Succeeded');
      expect(stat.finishedPieceCount).toBe(PIECES);
    }
    expect(cycleSeen).toBe(false);
    expect(hasCycle(scheduler.service.store.peers.values())).toBe(false);
    // Most peers waited for the seed first; all got parents.
    const waited = [...answersSeen.values()].filter((k) => k.has('waitResponse')).length;
    expect(waited).toBeGreaterThan(0);
    const fromInFlightPeers = transfers.filter((t) => !t.parentIsSeed && t.parentWasDownloading);
    const fromPeers = transfers.filter((t) => !t.parentIsSeed);
    expect(fromInFlightPeers.length).toBeGreaterThan(0);
    expect(fromPeers.length).toBeGreaterThan(transfers.length / 4);
    const task = await unary<StatTaskRequest, Task__Output>(client.StatTask.bind(client), { taskId: TASK_ID });
    expect(task).toMatchObject({ state: 'Succeeded', contentLength: PIECES * PIECE_LENGTH, pieceCount: PIECES, responseHeader: { etag: '"v1"' } });
    // Metrics saw the registrations and the traffic.
    const metrics = await fetch(`http://127.0.0.1:${scheduler.metricsPort}/metrics`).then((r) => r.text());
    // Upstream's name and labels (priority, task_type, task_tag, task_app, host_type): summed over the series.
    const registered = [...metrics.matchAll(/^dragonfly_scheduler_register_peer_total\{priority="[A-Z0-9]+",task_type="STANDARD",task_tag="[^"]*",task_app="[^"]*",host_type="(?:normal|super)",program="scheduler"\} (\d+)$/gm)];
    expect(registered.reduce((n, m) => n + Number(m[1]), 0)).toBe(PEERS + 1);
    expect(metrics).toMatch(/^dragonfly_scheduler_traffic\{type="REMOTE_PEER",task_type="STANDARD",[^}]*\} \d+$/m);
    expect(metrics).toMatch(/^dragonfly_scheduler_download_peer_finished_total\{[^}]*\} \d+$/m);
    expect(metrics).toMatch(/dragonfly_scheduler_traffic_bytes_total\{type="REMOTE_PEER",program="scheduler"\} \d+/);
    expect(metrics).toMatch(/dragonfly_scheduler_back_to_source_total\{program="scheduler"\} 1\n/);
    console.log(`transfers: ${transfers.length}, from peers: ${fromPeers.length}, from in-flight peers: ${fromInFlightPeers.length}, waited: ${waited}`);
  });

  test('unknown task and peer are NOT_FOUND; DeleteHost removes the host', async () => {
    await expect(unary(client.StatTask.bind(client), { taskId: 'nope' })).rejects.toMatchObject({ kind: 'NotFound' });
    await expect(unary(client.StatPeer.bind(client), { peerId: 'nope' })).rejects.toMatchObject({ kind: 'NotFound' });
    await expect(unary(client.AnnounceHost.bind(client), { host: { id: '', ip: '1.2.3.4', port: 1 } })).rejects.toMatchObject({ kind: 'InvalidArgument' });
    const before = (await unary<ListHostsRequest, ListHostsResponse__Output>(client.ListHosts.bind(client), {})).hosts.length;
    await unary(client.DeleteHost.bind(client), { hostId: '127.0.0.2-node-0' });
    expect((await unary<ListHostsRequest, ListHostsResponse__Output>(client.ListHosts.bind(client), {})).hosts.length).toBe(before - 1);
  });
});

describe('scheduler over gRPC: seed peer unreachable', () => {
  test('the trigger fails, one peer (backToSourceCount 1) goes to the origin, the other is scheduled onto it', async () => {
    // A port nothing listens on: bind a server, note its port, shut it down.
    const dead = await startGrpcServer('127.0.0.1:0', []);
    await dead.shutdown(0);
    const config = parseConfig('scheduler', { security: { insecure: true },
      server: { port: 0, listenIP: '127.0.0.1' },
      scheduler: { backToSourceCount: 1, retryInterval: '50ms' },
      seedPeer: { addrs: [`127.0.0.1:${dead.port}`] },
      metrics: { enable: false },
    });
    const scheduler = await startScheduler(config, { logger: silentLogger() });
    const client: SchedulerClient = new (protos().scheduler.scheduler.v2.Scheduler)(`127.0.0.1:${scheduler.port}`, grpc.credentials.createInsecure(), GRPC_OPTIONS);
    const taskX = taskIdOf({ url: 'http://origin/x' });
    const streams: grpc.ClientDuplexStream<AnnouncePeerRequest, AnnouncePeerResponse__Output>[] = [];
    try {
      await unary(client.AnnounceHost.bind(client), { host: { id: 'dead-seed', type: 'SUPER_HOST', hostname: 'dead', ip: '127.0.0.1', port: dead.port, downloadPort: 1 }, intervalMs: 60_000 });
      const answers = new Map<string, AnnouncePeerResponse__Output[]>();
      const open = async (name: string): Promise<grpc.ClientDuplexStream<AnnouncePeerRequest, AnnouncePeerResponse__Output>> => {
        await unary(client.AnnounceHost.bind(client), { host: { id: `h-${name}`, hostname: name, ip: '127.0.0.1', port: 2, downloadPort: 3 }, intervalMs: 60_000 });
        const s = client.AnnouncePeer();
        answers.set(name, []);
        s.on('data', (r: AnnouncePeerResponse__Output) => answers.get(name)?.push(r));
        s.on('error', () => undefined);
        s.write({ hostId: `h-${name}`, taskId: taskX, peerId: name, registerPeerRequest: { download: { url: 'http://origin/x' } } });
        streams.push(s);
        return s;
      };
      const a = await open('a');
      await open('b');
      const kinds = (n: string): (string | undefined)[] => (answers.get(n) ?? []).map((r) => r.response);
      const deadline = Date.now() + 5000;
      while (![...kinds('a'), ...kinds('b')].includes('needBackToSourceResponse') && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
      const origin = kinds('a').includes('needBackToSourceResponse') ? 'a' : 'b';
      const other = origin === 'a' ? 'b' : 'a';
      expect(kinds(origin)).toEqual(['waitResponse', 'needBackToSourceResponse']);
      expect(kinds(other)).toEqual(['waitResponse']);
      const originStream = origin === 'a' ? a : streams[1];
      originStream.write({ hostId: `h-${origin}`, taskId: taskX, peerId: origin, downloadPeerBackToSourceStartedRequest: { contentLength: 100, pieceLength: 4 * 1024 * 1024 } });
      while (!kinds(other).includes('normalTaskResponse') && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
      const last = answers.get(other)?.at(-1);
      expect(last?.normalTaskResponse?.candidateParents.map((p) => p.id)).toEqual([origin]);
    } finally {
      for (const s of streams) s.end();
      client.close();
      await scheduler.stop();
    }
  });
});
