/**
 * Registry-mirror proxy benchmark (seed 004: a cached 1 GB image must not be slower than the
 * registry itself). One run, one machine: a 1 GiB "image" of 4 random layers served by a
 * registry-like origin (blobs from files), all 4 blobs fetched in parallel as containerd
 * does — direct from the origin (baseline), through the proxy cold (peer A back to source via
 * the scheduler), as a local cache hit on A, and as a remote-peer hit on peer B (parent A);
 * plus the proxy's added latency on a manifest pass-through (p50 of sequential requests), and
 * what storing the image's bytes in a new file from memory costs here, beside the cold and
 * remote-peer pulls that each store a copy.
 * The origin, the scheduler and each dfdaemon run as their own processes (compiled
 * build/services/... programs with YAML configs), as separate nodes would; the bench
 * process is only the client.
 *
 * Size: BENCH_PROXY_MIB (default 1024) split into 4 layers.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream, promises as fs } from 'node:fs';
import * as http from 'node:http';
import * as net from 'node:net';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { stringify as toYaml } from 'yaml';
import { storeFromMemory } from './store-cost';
import { runStandalone, type BenchFigure } from './types';

const LAYERS = 4;
const MIB = 1024 * 1024;

interface Layer {
  readonly digest: string;
  readonly file: string;
  readonly size: number;
}

async function makeLayers(dir: string, totalMiB: number): Promise<Layer[]> {
  const layers: Layer[] = [];
  const perLayer = Math.floor((totalMiB * MIB) / LAYERS);
  for (let i = 0; i < LAYERS; i++) {
    const file = path.join(dir, `layer-${i}`);
    const handle = await fs.open(file, 'w');
    const hash = createHash('sha256');
    for (let written = 0; written < perLayer; ) {
      const chunk = randomBytes(Math.min(8 * MIB, perLayer - written));
      hash.update(chunk);
      await handle.write(chunk);
      written += chunk.length;
    }
    await handle.close();
    layers.push({ digest: `sha256:${hash.digest('hex')}`, file, size: perLayer });
  }
  return layers;
}

/** A registry-like origin: blobs from files (Range and HEAD supported), a small manifest. */
export async function startRegistry(layers: readonly Layer[], port = 0): Promise<{ server: http.Server; base: string }> {
  const byDigest = new Map(layers.map((l) => [l.digest, l]));
  const manifest = JSON.stringify({ schemaVersion: 2, layers: layers.map((l) => ({ digest: l.digest, size: l.size })) });
  const server = http.createServer({ keepAlive: true }, (req, res) => {
    const url = (req.url ?? '/').split('?')[0];
    if (/^\/v2\/[^]+\/manifests\//.test(url)) {
      res.writeHead(200, { 'content-type': 'application/vnd.oci.image.manifest.v1+json', 'content-length': Buffer.byteLength(manifest), 'docker-content-digest': 'sha256:0' });
      res.end(req.method === 'HEAD' ? undefined : manifest);
      return;
    }
    const m = /\/blobs\/(sha256:[a-f0-9]{64})$/.exec(url);
    const layer = m ? byDigest.get(m[1]) : undefined;
    if (!layer) return void res.writeHead(404).end();
    const headers = { 'content-type': 'application/octet-stream', 'docker-content-digest': layer.digest, 'accept-ranges': 'bytes' };
    const range = /^bytes=(\d+)-(\d*)$/.exec(req.headers.range ?? '');
    let start = 0;
    let end = layer.size - 1;
    if (range) {
      start = Number(range[1]);
      end = range[2] ? Math.min(Number(range[2]), layer.size - 1) : layer.size - 1;
      res.writeHead(206, { ...headers, 'content-length': end - start + 1, 'content-range': `bytes ${start}-${end}/${layer.size}` });
    } else {
      res.writeHead(200, { ...headers, 'content-length': layer.size });
    }
    if (req.method === 'HEAD') return void res.end();
    createReadStream(layer.file, { start, end, highWaterMark: MIB }).pipe(res);
  });
  await new Promise<void>((r) => server.listen(port, '127.0.0.1', r));
  return { server, base: `http://127.0.0.1:${(server.address() as AddressInfo).port}` };
}

const agent = new http.Agent({ keepAlive: true, maxSockets: 64 });

/** GETs a URL and discards the body; resolves with the byte count. */
function fetchBody(port: number, pathName: string, headers: Record<string, string> = {}): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = http.get({ host: '127.0.0.1', port, path: pathName, headers, agent }, (res) => {
      let n = 0;
      res.on('data', (c: Buffer) => (n += c.length));
      res.on('end', () => (res.statusCode === 200 ? resolve(n) : reject(new Error(`GET ${pathName}: ${res.statusCode}`))));
      res.on('error', reject);
    });
    req.on('error', reject);
  });
}

/** Seconds to fetch all layers in parallel; checks every byte arrived. */
async function pullAll(port: number, layers: readonly Layer[], mirrorOf?: string): Promise<number> {
  const t0 = process.hrtime.bigint();
  const sizes = await Promise.all(
    layers.map((l) => fetchBody(port, `/v2/bench/app/blobs/${l.digest}${mirrorOf ? '?ns=bench.local' : ''}`, mirrorOf ? { 'X-Dragonfly-Registry': mirrorOf } : {})),
  );
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  sizes.forEach((n, i) => {
    if (n !== layers[i].size) throw new Error(`layer ${i}: got ${n} of ${layers[i].size} bytes`);
  });
  return seconds;
}

function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

async function latencies(port: number, pathName: string, headers: Record<string, string>, n: number): Promise<number[]> {
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    const t0 = process.hrtime.bigint();
    await fetchBody(port, pathName, headers);
    out.push(Number(process.hrtime.bigint() - t0) / 1e6);
  }
  return out;
}

/** Builds (compiled) program paths from this file's location: build/test/bench → build/services. */
const PROGRAMS = path.resolve(__dirname, '../../services');

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as AddressInfo;
      srv.close(() => resolve(port));
    });
  });
}

async function waitForPort(port: number, child: ChildProcess, what: string, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`${what} exited with ${child.exitCode}`);
    const ok = await new Promise<boolean>((resolve) => {
      const s = net.connect(port, '127.0.0.1');
      s.once('connect', () => {
        s.destroy();
        resolve(true);
      });
      s.once('error', () => resolve(false));
    });
    if (ok) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`${what} did not listen on ${port} within ${timeoutMs} ms`);
}

async function spawnProgram(program: string, args: string[], port: number, what: string, children: ChildProcess[]): Promise<void> {
  const child = spawn(process.execPath, [program, ...args], { stdio: ['ignore', 'ignore', 'inherit'], env: { ...process.env, LOG_LEVEL: 'warn' } });
  children.push(child);
  await waitForPort(port, child, what);
}

async function startPeer(dir: string, name: string, schedulerPort: number, originPort: number, children: ChildProcess[]): Promise<number> {
  const proxyPort = await freePort();
  const config = {
    dataDir: path.join(dir, name),
    workHome: path.join(dir, name),
    metrics: '',
    security: { insecure: true },
    host: { advertiseIP: '127.0.0.1', hostname: name },
    scheduler: { manager: { enable: false }, netAddrs: [{ addr: `127.0.0.1:${schedulerPort}` }], announceInterval: '5s' },
    download: { downloadGRPC: { unixListen: { socket: path.join(dir, `${name}.sock`) } }, peerGRPC: { tcpListen: { listen: '127.0.0.1', port: 0 } } },
    upload: { tcpListen: { listen: '127.0.0.1', port: 0 } },
    // The proxy denies by default: the bench origin is the one registry it may reach.
    proxy: { tcpListen: { listen: '127.0.0.1', port: proxyPort }, whiteList: [{ host: '127.0.0.1', ports: [String(originPort)] }] },
  };
  const file = path.join(dir, `${name}.yaml`);
  await fs.writeFile(file, toYaml(config));
  await spawnProgram(path.join(PROGRAMS, 'dfdaemon/main.js'), ['--config', file], proxyPort, name, children);
  return proxyPort;
}

export async function run(): Promise<BenchFigure[]> {
  const totalMiB = Number(process.env.BENCH_PROXY_MIB ?? 1024);
  const dir = await fs.mkdtemp(path.join(tmpdir(), 'proxy-bench-'));
  const children: ChildProcess[] = [];
  try {
    const layers = await makeLayers(dir, totalMiB);
    await fs.writeFile(path.join(dir, 'layers.json'), JSON.stringify(layers));
    const originPort = await freePort();
    await spawnProgram(__filename, ['--origin', path.join(dir, 'layers.json'), String(originPort)], originPort, 'origin', children);
    const origin = { base: `http://127.0.0.1:${originPort}` };

    const schedulerPort = await freePort();
    const schedulerFile = path.join(dir, 'scheduler.yaml');
    await fs.writeFile(schedulerFile, toYaml({ security: { insecure: true }, server: { listenIP: '127.0.0.1', advertiseIP: '127.0.0.1', port: schedulerPort }, seedPeer: { enable: false }, metrics: { enable: false } }));
    await spawnProgram(path.join(PROGRAMS, 'scheduler/main.js'), ['--config', schedulerFile], schedulerPort, 'scheduler', children);
    const peerA = { proxyPort: await startPeer(dir, 'peer-a', schedulerPort, originPort, children) };
    const peerB = { proxyPort: await startPeer(dir, 'peer-b', schedulerPort, originPort, children) };

    // Latency first, while nothing else is moving in this process.
    const manifestPath = '/v2/bench/app/manifests/latest';
    await latencies(originPort, manifestPath, {}, 20);
    await latencies(peerA.proxyPort, `${manifestPath}?ns=bench.local`, { 'X-Dragonfly-Registry': origin.base }, 20);
    const directLat: number[] = [];
    const proxyLat: number[] = [];
    for (let round = 0; round < 4; round++) {
      directLat.push(...(await latencies(originPort, manifestPath, {}, 50)));
      proxyLat.push(...(await latencies(peerA.proxyPort, `${manifestPath}?ns=bench.local`, { 'X-Dragonfly-Registry': origin.base }, 50)));
    }
    const directP50 = median(directLat);
    const proxyP50 = median(proxyLat);
    const overhead = proxyP50 - directP50;

    await pullAll(originPort, layers); // warm-up
    const directRuns = [await pullAll(originPort, layers)];
    const stored = await storeFromMemory(path.join(dir, 'store-reference'), LAYERS * layers[0].size);
    const cold = await pullAll(peerA.proxyPort, layers, origin.base);
    const remote = await pullAll(peerB.proxyPort, layers, origin.base);
    // Direct and cache-hit pulls interleaved, so both see the same machine load.
    const hits: number[] = [];
    for (let i = 0; i < 3; i++) {
      hits.push(await pullAll(peerA.proxyPort, layers, origin.base));
      directRuns.push(await pullAll(originPort, layers));
    }
    const direct = median(directRuns);
    const hit = median(hits);

    const size = `${LAYERS} layers, ${totalMiB} MiB in all, fetched in parallel over loopback`;
    const figures: BenchFigure[] = [
      {
        area: 'proxy',
        name: 'image pull through the proxy, cold (peer back to source via the scheduler)',
        value: cold,
        unit: 's',
        baselineName: 'direct from the origin',
        baselineValue: direct,
        baselineUnit: 's',
        note: `${size}; ratio ${(cold / direct).toFixed(2)}×`,
      },
      {
        area: 'proxy',
        name: 'image pull through the proxy, local cache hit',
        value: hit,
        unit: 's',
        baselineName: 'direct from the origin',
        baselineValue: direct,
        baselineUnit: 's',
        goal: 'cache hit ≤ direct (ratio ≤ 1.0)',
        met: hit / direct <= 1.0,
        note: `${size}; median of 3, interleaved with the direct pulls; ratio ${(hit / direct).toFixed(2)}×; ${((totalMiB / hit) | 0)} MiB/s`,
      },
      {
        area: 'proxy',
        name: 'image pull through a second peer, remote-peer hit (parent = first peer)',
        value: remote,
        unit: 's',
        baselineName: 'direct from the origin',
        baselineValue: direct,
        baselineUnit: 's',
        goal: 'remote-peer hit ≤ 1.3× direct',
        met: remote / direct <= 1.3,
        note: `${size}; ratio ${(remote / direct).toFixed(2)}×`,
      },
      {
        area: 'proxy',
        name: 'reference: storing the image in a new file from memory, no network',
        value: stored,
        unit: 's',
        baselineName: 'direct from the origin',
        baselineValue: direct,
        baselineUnit: 's',
        note: `${totalMiB} MiB, 4 MiB writes, 4 in flight, measured just before the cold pull; ratio ${(stored / direct).toFixed(2)}×; the cold and the remote-peer pull each store the image in a peer that did not hold it, the direct pull discards it. Not a strict floor: its cost is mostly the VM faulting in fresh page cache, and a write that gets pages freed just before costs far less`,
      },
      {
        area: 'proxy',
        name: 'added latency of a manifest pass-through (p50)',
        value: overhead,
        unit: 'ms',
        baselineName: 'direct manifest GET p50',
        baselineValue: directP50,
        baselineUnit: 'ms',
        goal: '≤ 5 ms p50 added',
        met: overhead <= 5,
        note: `${proxyLat.length} sequential keep-alive GETs each way, interleaved; proxy p50 ${proxyP50.toFixed(2)} ms`,
      },
    ];
    return figures;
  } finally {
    for (const child of children.reverse()) {
      if (child.exitCode !== null) continue;
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      await Promise.race([exited, new Promise((r) => setTimeout(r, 10_000))]);
      if (child.exitCode === null) child.kill('SIGKILL');
    }
    agent.destroy();
    await fs.rm(dir, { recursive: true, force: true });
  }
}

if (require.main === module && process.argv[2] === '--origin') {
  // Child mode: the origin as its own process (argv: --origin <layers.json> <port>).
  void fs.readFile(process.argv[3], 'utf8').then(async (text) => {
    const { server } = await startRegistry(JSON.parse(text) as Layer[], Number(process.argv[4]));
    process.on('SIGTERM', () => {
      server.closeAllConnections();
      server.close(() => process.exit(0));
    });
  });
} else if (require.main === module) {
  runStandalone(run);
}
