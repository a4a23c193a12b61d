/**
 * Small blobs through the mirror (issue 21): most objects of an image pull are configs and thin
 * layers. `npm start`'s cluster (services/local-cluster.ts: manager, scheduler, seed peer, peer,
 * mTLS) runs in this process against a Range-capable loopback registry; each figure sits beside
 * the same blobs fetched straight from that registry in the same run:
 *   - 1,000 cold 64 KiB blobs through the peer's proxy, 16 in flight;
 *   - 50 cold blobs one at a time;
 *   - 1,000 cache hits, 16 in flight (after unmeasured warm-up rounds, interleaved with direct runs).
 * Plus a profile of one cold blob, from the registry's side: when the HEAD and the GET arrived
 * after the client's request was sent, and how many requests of each method the registry saw.
 * And the floor of any cold path the scheduler coordinates, as upstream's protocol does (one
 * AnnouncePeer stream per peer and task): per blob, one register round trip on its own stream
 * over mTLS to a scheduler that answers at once, then the direct GET, in this process, 16 in
 * flight and one at a time. No proxy hop, no store, no seed peer: the cold figures cannot be
 * under it.
 *
 * Sizes: BENCH_SMALL_BLOBS (default 1000), BENCH_SMALL_BLOB_KIB (default 64).
 */
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { GRPC_OPTIONS } from '../../services/common/grpc';
import { silentLogger } from '../../services/common/logger';
import { TransportSecurity } from '../../services/common/tls';
import { localPki, startLocalCluster } from '../../services/local-cluster';
import { protos, type AnnouncePeerResponse, type SchedulerClient } from '../../services/proto';
import { startNoOpScheduler } from './no-op-scheduler';
import { runStandalone, type BenchFigure } from './types';

const FREE = { managerRest: 0, managerGrpc: 0, managerMetrics: 0, scheduler: 0, schedulerMetrics: 0, peerGrpc: 0, peerProxy: 0, peerUpload: 0, peerMetrics: 0, seedMetrics: 0 };

interface Registry {
  readonly port: number;
  readonly base: string;
  readonly blobs: Map<string, Buffer>;
  /** Requests seen per method ("HEAD", "GET", "GET range"). */
  readonly counts: Map<string, number>;
  /** When each blob's HEAD / GET arrived (hrtime ms), by digest. */
  readonly arrivals: Map<string, { head?: number; get?: number }>;
  close(): Promise<void>;
}

const nowMs = () => Number(process.hrtime.bigint()) / 1e6;

/** A registry-like origin serving blobs from memory, with HEAD and single Range support. */
async function startRegistry(): Promise<Registry> {
  const blobs = new Map<string, Buffer>();
  const counts = new Map<string, number>();
  const arrivals = new Map<string, { head?: number; get?: number }>();
  const server = http.createServer({ keepAlive: true }, (req, res) => {
    const url = (req.url ?? '/').split('?')[0];
    const m = /\/blobs\/(sha256:[a-f0-9]{64})$/.exec(url);
    const blob = m ? blobs.get(m[1]) : undefined;
    const kind = req.method === 'GET' && req.headers.range ? 'GET range' : (req.method ?? '?');
    counts.set(kind, (counts.get(kind) ?? 0) + 1);
    if (!m || !blob) return void res.writeHead(404).end();
    const seen = arrivals.get(m[1]) ?? {};
    if (req.method === 'HEAD') seen.head ??= nowMs();
    else seen.get ??= nowMs();
    arrivals.set(m[1], seen);
    const headers = { 'content-type': 'application/octet-stream', 'docker-content-digest': m[1], 'accept-ranges': 'bytes' };
    const range = /^bytes=(\d+)-(\d*)$/.exec(req.headers.range ?? '');
    if (range) {
      const start = Number(range[1]);
      const end = range[2] ? Math.min(Number(range[2]), blob.length - 1) : blob.length - 1;
      res.writeHead(206, { ...headers, 'content-length': end - start + 1, 'content-range': `bytes ${start}-${end}/${blob.length}` });
      res.end(req.method === 'HEAD' ? undefined : blob.subarray(start, end + 1));
      return;
    }
    res.writeHead(200, { ...headers, 'content-length': blob.length });
    res.end(req.method === 'HEAD' ? undefined : blob);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as AddressInfo).port;
  return {
    port,
    base: `http://127.0.0.1:${port}`,
    blobs,
    counts,
    arrivals,
    close: async () => {
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
    },
  };
}

const agent = new http.Agent({ keepAlive: true, maxSockets: 64 });

/** GETs a blob, checks its length and digest. */
function fetchBlob(port: number, pathName: string, digest: string, size: number, headers: Record<string, string> = {}): Promise<void> {
  return new Promise((resolve, reject) => {
    const req = http.get({ host: '127.0.0.1', port, path: pathName, headers, agent }, (res) => {
      const hash = createHash('sha256');
      let n = 0;
      res.on('data', (c: Buffer) => {
        n += c.length;
        hash.update(c);
      });
      res.on('end', () => {
        if (res.statusCode !== 200) return reject(new Error(`GET ${pathName}: ${res.statusCode}`));
        if (n !== size || `sha256:${hash.digest('hex')}` !== digest) return reject(new Error(`GET ${pathName}: ${n} bytes, wrong content`));
        resolve();
      });
      res.on('error', reject);
    });
    req.on('error', reject);
  });
}

/**
 * Seconds to fetch every digest with `inFlight` requests at a time; `before` runs (and is waited
 * for) ahead of each blob's GET.
 */
async function fetchAll(port: number, digests: readonly string[], size: number, inFlight: number, mirrorOf?: string, before?: (digest: string) => Promise<void>): Promise<number> {
  const t0 = nowMs();
  let next = 0;
  const worker = async () => {
    while (next < digests.length) {
      const d = digests[next++];
      if (before) await before(d);
      await fetchBlob(port, `/v2/bench/small/blobs/${d}${mirrorOf ? '?ns=bench.local' : ''}`, d, size, mirrorOf ? { 'X-Dragonfly-Registry': mirrorOf } : {});
    }
  };
  await Promise.all(Array.from({ length: Math.min(inFlight, digests.length) }, worker));
  return (nowMs() - t0) / 1000;
}

/**
 * The coordination floor's scheduler: the stream no-op (no-op-scheduler.ts) over mTLS, with
 * certificates of its own CA as npm start makes them, answering each register at once.
 */
async function startFloorScheduler(workDir: string): Promise<{ client: SchedulerClient; close(): void }> {
  const pki = localPki(workDir);
  const serverSecurity = TransportSecurity.fromConfig({ insecure: false, reloadInterval: 30_000, ...pki.security('scheduler', { role: 'scheduler', clusterId: 1 }) }, undefined, 'scheduler');
  const clientSecurity = TransportSecurity.fromConfig({ insecure: false, reloadInterval: 30_000, ...pki.security('peer', { role: 'peer', clusterId: 1 }) }, undefined, 'dfdaemon');
  const answer: AnnouncePeerResponse = { needBackToSourceResponse: { description: 'no-op' } };
  const { server, port } = await startNoOpScheduler((req) => (req.request === 'registerPeerRequest' ? answer : undefined), serverSecurity.serverCredentials());
  const client = new (protos().scheduler.scheduler.v2.Scheduler)(`127.0.0.1:${port}`, clientSecurity.channelCredentials(['scheduler']), GRPC_OPTIONS);
  return {
    client,
    close: () => {
      client.close();
      server.forceShutdown();
      serverSecurity.close();
      clientSecurity.close();
    },
  };
}

/** One register round trip on its own AnnouncePeer stream: register, the answer, both ends closed. */
function registerRoundTrip(client: SchedulerClient, registryBase: string, digest: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const stream = client.AnnouncePeer();
    stream.on('data', () => stream.end());
    stream.on('end', resolve);
    stream.on('error', reject);
    stream.write({ hostId: 'floor-host', taskId: digest, peerId: `floor-${digest}`, registerPeerRequest: { download: { url: `${registryBase}/v2/bench/small/blobs/${digest}`, digest } } });
  });
}

function addBlobs(registry: Registry, n: number, size: number): string[] {
  const out: string[] = [];
  for (let i = 0; i < n; i++) {
    const content = randomBytes(size);
    const digest = `sha256:${createHash('sha256').update(content).digest('hex')}`;
    registry.blobs.set(digest, content);
    out.push(digest);
  }
  return out;
}

/** Cache-hit rounds (each a proxy run and a direct run) run before the measured ones, and measured. */
const HIT_WARM_ROUNDS = 2;
const HIT_ROUNDS = 5;

function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

export async function run(): Promise<BenchFigure[]> {
  const count = Number(process.env.BENCH_SMALL_BLOBS ?? 1000);
  const size = Number(process.env.BENCH_SMALL_BLOB_KIB ?? 64) * 1024;
  const serial = 50;
  const dir = mkdtempSync(path.join(tmpdir(), 'small-blobs-bench-'));
  const registry = await startRegistry();
  const cluster = await startLocalCluster({ workDir: dir, logger: silentLogger(), ports: FREE, redis: false, proxyWhiteList: [{ host: '127.0.0.1', ports: [String(registry.port)] }] });
  const proxy = cluster.peer.proxyPort;
  try {
    // Warm-up: connections, JIT, the scheduler's host records.
    const warm = addBlobs(registry, 32, size);
    await fetchAll(registry.port, warm, size, 16);
    await fetchAll(proxy, warm, size, 16, registry.base);

    // One cold blob profiled from the registry's side (median of 10, one at a time).
    const profiled = addBlobs(registry, 10, size);
    const toHead: number[] = [];
    const toGet: number[] = [];
    const total: number[] = [];
    for (const d of profiled) {
      const t0 = nowMs();
      await fetchBlob(proxy, `/v2/bench/small/blobs/${d}?ns=bench.local`, d, size, { 'X-Dragonfly-Registry': registry.base });
      const t1 = nowMs();
      const seen = registry.arrivals.get(d) ?? {};
      if (seen.head !== undefined) toHead.push(seen.head - t0);
      if (seen.get !== undefined) toGet.push(seen.get - t0);
      total.push(t1 - t0);
    }
    const profile = `one cold blob (median of ${profiled.length}): total ${median(total).toFixed(1)} ms; registry saw the HEAD at ${toHead.length ? `${median(toHead).toFixed(1)} ms` : 'never'}, the GET at ${toGet.length ? `${median(toGet).toFixed(1)} ms` : 'never'}`;

    // Cold, 16 in flight: through the proxy, then the same number of fresh blobs direct.
    registry.counts.clear();
    const coldDigests = addBlobs(registry, count, size);
    const cold = await fetchAll(proxy, coldDigests, size, 16, registry.base);
    const coldCounts = Object.fromEntries(registry.counts);
    const directCold = await fetchAll(registry.port, addBlobs(registry, count, size), size, 16);

    // Cold, one at a time.
    const serialCold = await fetchAll(proxy, addBlobs(registry, serial, size), size, 1, registry.base);
    const serialDirect = await fetchAll(registry.port, addBlobs(registry, serial, size), size, 1);

    // The coordination floor, after a warm-up of its own (handshake, JIT).
    const noOp = await startFloorScheduler(path.join(dir, 'floor'));
    const register = (digest: string) => registerRoundTrip(noOp.client, registry.base, digest);
    let floor: number;
    let serialFloor: number;
    try {
      await fetchAll(registry.port, addBlobs(registry, 32, size), size, 16, undefined, register);
      floor = await fetchAll(registry.port, addBlobs(registry, count, size), size, 16, undefined, register);
      serialFloor = await fetchAll(registry.port, addBlobs(registry, serial, size), size, 1, undefined, register);
    } finally {
      noOp.close();
    }

    // Cache hits (the blobs of the cold burst), interleaved with direct runs of the same blobs.
    // The first rounds after the cold burst are not steady for either side (the first hit of
    // each blob reads and checks it from disk, the JIT meets the hit path, the burst's garbage
    // is collected): HIT_WARM_ROUNDS pairs are run and not counted. Each measured pair
    // alternates which side goes first, so neither always runs after the other's garbage.
    const hits: number[] = [];
    const directs: number[] = [];
    for (let i = 0; i < HIT_WARM_ROUNDS + HIT_ROUNDS; i++) {
      const proxyFirst = i % 2 === 0;
      const a = await fetchAll(proxyFirst ? proxy : registry.port, coldDigests, size, 16, proxyFirst ? registry.base : undefined);
      const b = await fetchAll(proxyFirst ? registry.port : proxy, coldDigests, size, 16, proxyFirst ? undefined : registry.base);
      if (i < HIT_WARM_ROUNDS) continue;
      hits.push(proxyFirst ? a : b);
      directs.push(proxyFirst ? b : a);
    }
    const hit = median(hits);
    const directHit = median(directs);

    const blobs = `${size / 1024} KiB blobs over loopback, npm start's cluster in one process (mTLS)`;
    const ratio = (a: number, b: number) => (a / b).toFixed(2);
    return [
      {
        area: 'small-blobs',
        name: `${count} cold blobs through the proxy, 16 in flight`,
        value: cold,
        unit: 's',
        baselineName: 'direct from the registry',
        baselineValue: directCold,
        baselineUnit: 's',
        goal: '≤ 2× direct',
        met: cold / directCold <= 2,
        note: `${blobs}; ratio ${ratio(cold, directCold)}×; registry requests ${JSON.stringify(coldCounts)}`,
      },
      {
        area: 'small-blobs',
        name: `${count} cold blobs, floor of a scheduler-coordinated path (a register round trip per blob, then the direct GET), 16 in flight`,
        value: floor,
        unit: 's',
        baselineName: 'direct from the registry',
        baselineValue: directCold,
        baselineUnit: 's',
        note: `${blobs}; ratio ${ratio(floor, directCold)}×; per blob one AnnouncePeer stream over mTLS (register, the answer, closed) to a scheduler that answers at once, in this process; no proxy hop, store or seed peer: the cold figure cannot be under it.`,
      },
      {
        area: 'small-blobs',
        name: `${serial} cold blobs through the proxy, one at a time`,
        value: serialCold,
        unit: 's',
        baselineName: 'direct from the registry',
        baselineValue: serialDirect,
        baselineUnit: 's',
        goal: '≤ 2× direct',
        met: serialCold / serialDirect <= 2,
        note: `${blobs}; ratio ${ratio(serialCold, serialDirect)}×; ${profile}`,
      },
      {
        area: 'small-blobs',
        name: `${serial} cold blobs, floor of a scheduler-coordinated path (a register round trip per blob, then the direct GET), one at a time`,
        value: serialFloor,
        unit: 's',
        baselineName: 'direct from the registry',
        baselineValue: serialDirect,
        baselineUnit: 's',
        note: `${blobs}; ratio ${ratio(serialFloor, serialDirect)}×; as the floor above, one blob at a time`,
      },
      {
        area: 'small-blobs',
        name: `${count} cache hits through the proxy, 16 in flight`,
        value: hit,
        unit: 's',
        baselineName: 'direct from the registry',
        baselineValue: directHit,
        baselineUnit: 's',
        goal: '≤ 1.0× direct',
        met: hit / directHit <= 1.0,
        note: `${blobs}; median of ${HIT_ROUNDS} after ${HIT_WARM_ROUNDS} unmeasured rounds, interleaved with the direct runs (alternating which goes first); ratio ${ratio(hit, directHit)}×; runs ${hits.map((h, i) => `${h.toFixed(3)}/${directs[i].toFixed(3)}`).join(' ')}`,
      },
    ];
  } finally {
    await cluster.stop();
    await registry.close();
    agent.destroy();
    rmSync(dir, { recursive: true, force: true });
  }
}

if (require.main === module) runStandalone(run);
