/**
 * Small blobs (issue 21) behind a real scheduler, a seed peer and two peers, pulled through the
 * peers' registry-mirror proxies from a Range-capable registry-like origin:
 * - a one-piece blob and a tiny one (≤ 128 B) each cost exactly one origin request for the
 *   whole cluster (the seed's ranged GET gives the length and the piece: no HEAD), and the
 *   second peer gets them from a peer, not from the origin;
 * - a peer takes a one-piece blob's piece straight from a parent (no SyncPieces stream), and
 *   falls back to SyncPieces with parents that neither wait for the piece nor send its digest;
 * - a cold burst of 1,000 distinct small blobs, 16 in flight, completes with the right digests,
 *   leaves no download, reservation, waiting peer or seed trigger behind, and the heap returns
 *   within a bound after garbage collection.
 */
import { createHash, randomBytes } from 'node:crypto';
import * as fsp from 'node:fs/promises';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import * as v8 from 'node:v8';
import * as vm from 'node:vm';
import type { DfdaemonHandle } from '../../../services/dfdaemon/daemon';
import { PieceCollector } from '../../../services/dfdaemon/piece-collector';
import { PIECE_DIGEST_HEADER, PIECE_WAIT_HEADER, UploadServer } from '../../../services/dfdaemon/upload-server';
import type { SchedulerHandle } from '../../../services/scheduler/server';
import { startSeededCluster, tempDir, until } from './helpers';

jest.setTimeout(300_000);

interface Registry {
  readonly base: string;
  readonly blobs: Map<string, Buffer>;
  /** Requests per blob digest and method ("HEAD", "GET"). */
  requests(digest: string): { HEAD: number; GET: number };
  total(): number;
  close(): Promise<void>;
}

/** Blobs from memory at /v2/<name>/blobs/<digest>, with HEAD and single-range GETs. */
async function startRegistry(): Promise<Registry> {
  const blobs = new Map<string, Buffer>();
  const counts = new Map<string, { HEAD: number; GET: number }>();
  let total = 0;
  const server = http.createServer({ keepAlive: true }, (req, res) => {
    total++;
    const m = /\/blobs\/(sha256:[a-f0-9]{64})$/.exec((req.url ?? '/').split('?')[0]);
    const blob = m ? blobs.get(m[1]) : undefined;
    if (!m || !blob) return void res.writeHead(404).end();
    const c = counts.get(m[1]) ?? { HEAD: 0, GET: 0 };
    if (req.method === 'HEAD' || req.method === 'GET') c[req.method]++;
    counts.set(m[1], c);
    const headers = { 'content-type': 'application/octet-stream', 'docker-content-digest': m[1], 'accept-ranges': 'bytes' };
    const range = /^bytes=(\d+)-(\d*)$/.exec(req.headers.range ?? '');
    if (range) {
      const start = Number(range[1]);
      if (start >= blob.length) return void res.writeHead(416, { 'content-range': `bytes */${blob.length}` }).end();
      const end = range[2] ? Math.min(Number(range[2]), blob.length - 1) : blob.length - 1;
      res.writeHead(206, { ...headers, 'content-length': end - start + 1, 'content-range': `bytes ${start}-${end}/${blob.length}` });
      return void res.end(req.method === 'HEAD' ? undefined : blob.subarray(start, end + 1));
    }
    res.writeHead(200, { ...headers, 'content-length': blob.length });
    res.end(req.method === 'HEAD' ? undefined : blob);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    base: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    blobs,
    requests: (d) => counts.get(d) ?? { HEAD: 0, GET: 0 },
    total: () => total,
    close: async () => {
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
    },
  };
}

const sha256 = (b: Buffer) => `sha256:${createHash('sha256').update(b).digest('hex')}`;

function addBlob(registry: Registry, size: number): string {
  const content = randomBytes(size);
  const digest = sha256(content);
  registry.blobs.set(digest, content);
  return digest;
}

const agent = new http.Agent({ keepAlive: true, maxSockets: 32 });

/** GETs a blob through a peer's proxy; resolves with the status and the body's digest and length. */
function pull(peer: DfdaemonHandle, registry: Registry, digest: string): Promise<{ status: number; digest: string; length: number }> {
  return new Promise((resolve, reject) => {
    const req = http.get(
      { host: '127.0.0.1', port: peer.proxyPort, path: `/v2/test/small/blobs/${digest}?ns=registry.local`, headers: { 'X-Dragonfly-Registry': registry.base }, agent },
      (res) => {
        const hash = createHash('sha256');
        let length = 0;
        res.on('data', (c: Buffer) => {
          hash.update(c);
          length += c.length;
        });
        res.on('end', () => resolve({ status: res.statusCode ?? 0, digest: `sha256:${hash.digest('hex')}`, length }));
        res.on('error', reject);
      },
    );
    req.on('error', reject);
  });
}

async function bytesBySource(d: DfdaemonHandle, source: string): Promise<number> {
  return (await d.metrics.downloadBytes.get()).values.find((v) => v.labels.source === source)?.value ?? 0;
}

/** Full garbage collection (the flag is turned on for this worker: jest does not start it with --expose-gc). */
function collectGarbage(): void {
  v8.setFlagsFromString('--expose-gc');
  (vm.runInNewContext('gc') as () => void)();
}

describe('small blobs through the mirror', () => {
  let root: string;
  let registry: Registry;
  let scheduler: SchedulerHandle;
  let seed: DfdaemonHandle;
  const peers: DfdaemonHandle[] = [];

  beforeAll(async () => {
    root = await tempDir('dfdaemon-small-blobs');
    registry = await startRegistry();
    const cluster = await startSeededCluster(root, 2);
    ({ scheduler, seed } = cluster);
    peers.push(...cluster.peers);
  });

  afterAll(async () => {
    agent.destroy();
    for (const d of [...peers, seed]) await d?.stop();
    await scheduler?.stop();
    await registry?.close();
    await fsp.rm(root, { recursive: true, force: true });
  });

  /** Pulls `digest` on peer 1, then on peer 2: one origin request in all, both served by peers. */
  async function pulledOnceSharedTwice(size: number): Promise<void> {
    const digest = addBlob(registry, size);
    const before = await Promise.all([...peers, seed].map(async (d) => ({ peer: await bytesBySource(d, 'remote_peer'), origin: await bytesBySource(d, 'back_to_source') })));
    const first = await pull(peers[0], registry, digest);
    expect(first).toEqual({ status: 200, digest, length: size });
    const second = await pull(peers[1], registry, digest);
    expect(second).toEqual({ status: 200, digest, length: size });
    // One GET for the whole cluster, no HEAD: the GET's answer gave the length.
    expect(registry.requests(digest)).toEqual({ HEAD: 0, GET: 1 });
    const after = await Promise.all([...peers, seed].map(async (d) => ({ peer: await bytesBySource(d, 'remote_peer'), origin: await bytesBySource(d, 'back_to_source') })));
    // The seed read it from the origin; each peer got it from a peer (the seed, or the other peer).
    expect(after[2].origin - before[2].origin).toBe(size);
    for (const i of [0, 1]) {
      expect(after[i].origin - before[i].origin).toBe(0);
      expect(after[i].peer - before[i].peer).toBe(size);
    }
    for (const d of [...peers, seed]) expect(d.tasks.stat(digest.slice('sha256:'.length))?.finished).toBe(true);
  }

  it('a one-piece blob: exactly one origin request cluster-wide, and the second peer gets it from a peer', async () => {
    await pulledOnceSharedTwice(64 * 1024);
  });

  it('a tiny blob (≤ 128 B): exactly one origin request cluster-wide, and the second peer gets it from a peer', async () => {
    await pulledOnceSharedTwice(100);
  });

  it('a one-piece blob: the peers take the piece straight from a parent, with no SyncPieces stream', async () => {
    const syncs = jest.spyOn(PieceCollector.prototype as unknown as { sync(p: unknown): void }, 'sync');
    try {
      await pulledOnceSharedTwice(64 * 1024);
      expect(syncs).not.toHaveBeenCalled();
    } finally {
      syncs.mockRestore();
    }
  });

  it('parents of an older version (no wait for the piece, no digest with it): the peers fall back to SyncPieces, still one origin request', async () => {
    type Route = (req: http.IncomingMessage, res: http.ServerResponse) => Promise<void>;
    const proto = UploadServer.prototype as unknown as { route: Route };
    const route = proto.route;
    const old = jest.spyOn(proto, 'route').mockImplementation(function (this: unknown, req, res) {
      delete req.headers[PIECE_WAIT_HEADER];
      const writeHead = res.writeHead.bind(res) as (code: number, headers?: http.OutgoingHttpHeaders) => http.ServerResponse;
      res.writeHead = ((code: number, headers?: http.OutgoingHttpHeaders) => {
        if (headers) delete headers[PIECE_DIGEST_HEADER];
        return writeHead(code, headers);
      }) as typeof res.writeHead;
      return route.call(this, req, res);
    });
    const syncs = jest.spyOn(PieceCollector.prototype as unknown as { sync(p: unknown): void }, 'sync');
    try {
      await pulledOnceSharedTwice(64 * 1024);
      expect(old).toHaveBeenCalled();
      expect(syncs).toHaveBeenCalled();
    } finally {
      syncs.mockRestore();
      old.mockRestore();
    }
  });

  it('a one-piece blob pulled on both peers at once: still one origin request', async () => {
    const digest = addBlob(registry, 200 * 1024);
    const answers = await Promise.all(peers.map((p) => pull(p, registry, digest)));
    for (const a of answers) expect(a).toEqual({ status: 200, digest, length: 200 * 1024 });
    expect(registry.requests(digest)).toEqual({ HEAD: 0, GET: 1 });
  });

  it('a cold burst of 1,000 distinct small blobs: every pull completes with its digest, nothing is left stuck, memory comes back', async () => {
    const peer = peers[0];
    // Warm-up (connections, JIT), then the heap baseline.
    const warm = Array.from({ length: 32 }, () => addBlob(registry, 16 * 1024));
    for (const d of warm) expect((await pull(peer, registry, d)).digest).toBe(d);
    const digests = Array.from({ length: 1000 }, () => addBlob(registry, 16 * 1024));
    collectGarbage();
    const heapBefore = process.memoryUsage().heapUsed;

    const originBefore = registry.total();
    const failures: string[] = [];
    let next = 0;
    const worker = async () => {
      while (next < digests.length) {
        const d = digests[next++];
        const got = await pull(peer, registry, d).catch((err: Error) => ({ status: 0, digest: err.message, length: 0 }));
        if (got.status !== 200 || got.digest !== d || got.length !== 16 * 1024) failures.push(`${d}: ${got.status} ${got.digest} ${got.length}`);
      }
    };
    await Promise.all(Array.from({ length: 16 }, worker));
    expect(failures).toEqual([]);
    // One origin request per blob (the seed's GET), no more.
    expect(registry.total() - originBefore).toBe(digests.length);

    // Nothing stuck: no download or reservation left on any daemon; on the scheduler every peer
    // of these tasks succeeded, nobody waits, nobody is still going to the origin, no trigger pending.
    await until(() => [peer, seed].every((d) => d.engine.running.downloads === 0 && d.engine.running.reservations === 0), 30_000);
    const store = scheduler.service.store;
    await until(() => digests.every((d) => [...(store.tasks.get(d.slice('sha256:'.length))?.peers.values() ?? [])].every((p) => p.state === 'Succeeded')), 30_000);
    for (const d of digests) {
      const task = store.tasks.get(d.slice('sha256:'.length));
      expect(task).toBeDefined();
      expect(task!.peers.size).toBe(2); // the peer and the seed
      expect(task!.waiting.size).toBe(0);
      expect(task!.originPeers.size).toBe(0);
      expect(task!.seedTriggerPending).toBe(false);
      expect(task!.state).toBe('Succeeded');
    }
    for (const d of digests) expect(peer.tasks.stat(d.slice('sha256:'.length))?.finished).toBe(true);

    // Memory: what stays is the stored tasks' records (scheduler and both daemons), well under
    // 64 MiB for 1,000 tasks; a leak of the blobs' bytes, of streams or of sessions would exceed it.
    await new Promise((r) => setTimeout(r, 500));
    collectGarbage();
    const grown = process.memoryUsage().heapUsed - heapBefore;
    expect(grown).toBeLessThan(64 * 1024 * 1024);
  });
});
