/** Shared set-up for dfdaemon integration tests: temp dirs, an origin that counts bytes, daemon configs. */
import { createHash, randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as fsp from 'node:fs/promises';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { Transform } from 'node:stream';
import { createLogger, parseConfig, silentLogger, type DfdaemonConfig, type DfdaemonConfigInput } from '../../../services/common';
import { startDfdaemon, type DfdaemonHandle } from '../../../services/dfdaemon/daemon';
import { startScheduler, type SchedulerHandle } from '../../../services/scheduler/server';

export const MiB = 1024 * 1024;

/** Polls `check` every 50 ms until it holds; throws after `timeoutMs`. */
export async function until(check: () => Promise<boolean> | boolean, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error('condition not reached in time');
    await new Promise((r) => setTimeout(r, 50));
  }
}

export async function tempDir(prefix: string): Promise<string> {
  return fsp.mkdtemp(path.join(os.tmpdir(), `${prefix}-`));
}

/** A file of `size` random bytes (written in 8 MiB blocks) and its sha256. */
export async function randomFile(file: string, size: number): Promise<string> {
  const hash = createHash('sha256');
  const fh = await fsp.open(file, 'w');
  try {
    for (let pos = 0; pos < size; ) {
      const n = Math.min(8 * MiB, size - pos);
      const block = randomBytes(n);
      hash.update(block);
      await fh.write(block, 0, n, pos);
      pos += n;
    }
  } finally {
    await fh.close();
  }
  return hash.digest('hex');
}

export async function sha256File(file: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of fs.createReadStream(file, { highWaterMark: 4 * MiB })) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

export interface Origin {
  readonly url: (name: string) => string;
  /** Body bytes served so far. */
  bytesServed(): number;
  requests(): number;
  close(): Promise<void>;
}

/** A plain Node origin serving files from `dir` with HEAD and single Range support, counting body bytes. */
export async function startOrigin(dir: string, options: { requireAuth?: string; /** per response */ bytesPerSecond?: number } = {}): Promise<Origin> {
  let served = 0;
  let requests = 0;
  const server = http.createServer((req, res) => {
    requests++;
    if (options.requireAuth && req.headers.authorization !== options.requireAuth) {
      res.writeHead(401, { 'www-authenticate': 'Bearer realm="test"', 'content-type': 'application/json' }).end('{"errors":[{"code":"UNAUTHORIZED"}]}');
      return;
    }
    const file = path.join(dir, path.basename(decodeURIComponent((req.url ?? '/').split('?')[0])));
    fs.stat(file, (err, st) => {
      if (err) {
        res.writeHead(404).end('not found');
        return;
      }
      let start = 0;
      let end = st.size - 1;
      const m = /^bytes=(\d+)-(\d*)$/.exec(req.headers.range ?? '');
      if (m) {
        start = Number(m[1]);
        end = m[2] ? Math.min(Number(m[2]), st.size - 1) : st.size - 1;
        res.writeHead(206, { 'content-length': end - start + 1, 'content-range': `bytes ${start}-${end}/${st.size}`, 'content-type': 'application/octet-stream' });
      } else {
        res.writeHead(200, { 'content-length': st.size, 'content-type': 'application/octet-stream', 'accept-ranges': 'bytes' });
      }
      if (req.method === 'HEAD' || st.size === 0) {
        res.end();
        return;
      }
      const rs = fs.createReadStream(file, { start, end, highWaterMark: MiB });
      res.on('close', () => rs.destroy());
      rs.on('data', (c) => {
        served += c.length;
      });
      const bps = options.bytesPerSecond;
      if (!bps) {
        rs.pipe(res);
        return;
      }
      // A slow origin: each chunk is held back for its share of the time budget.
      rs.pipe(
        new Transform({
          transform(chunk: Buffer, _enc, cb) {
            setTimeout(() => cb(null, chunk), (chunk.length / bps) * 1000);
          },
        }),
      ).pipe(res);
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as AddressInfo).port;
  return {
    url: (name) => `http://127.0.0.1:${port}/${name}`,
    bytesServed: () => served,
    requests: () => requests,
    close: async () => {
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
    },
  };
}

/** A dfdaemon config on free ports, its own data dir and socket. */
export function daemonConfig(dataDir: string, hostname: string, extra: DfdaemonConfigInput = {}): DfdaemonConfig {
  const base: DfdaemonConfigInput = {
    dataDir,
    workHome: dataDir,
    gcInterval: '1h',
    metrics: { enable: false, addr: ':0' },
    host: { hostname, advertiseIP: '127.0.0.1', listenIP: '127.0.0.1' },
    download: {
      peerGRPC: { tcpListen: { listen: '127.0.0.1', port: 0 } },
      downloadGRPC: { unixListen: { socket: path.join(dataDir, 'dfdaemon.sock') } },
      pieceDownloadTimeout: '20s',
    },
    upload: { tcpListen: { listen: '127.0.0.1', port: 0 } },
    // The tests' origins and registries listen on loopback: the default-deny proxy must list them.
    proxy: { tcpListen: { listen: '127.0.0.1', port: 0 }, whiteList: [{ host: '127.0.0.1' }] },
    scheduler: { manager: { enable: false }, scheduleTimeout: '10s' },
    // Plaintext unless a test passes security files (test/integration/tls covers mTLS).
    security: { insecure: true },
  };
  const merged = deepMerge(base, extra);
  return parseConfig('dfdaemon', merged);
}

function deepMerge(a: Record<string, unknown>, b: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = { ...a };
  for (const [k, v] of Object.entries(b)) {
    const cur = out[k];
    if (v && typeof v === 'object' && !Array.isArray(v) && cur && typeof cur === 'object' && !Array.isArray(cur)) out[k] = deepMerge(cur as Record<string, unknown>, v as Record<string, unknown>);
    else out[k] = v;
  }
  return out;
}

/** Silent unless DFDAEMON_TEST_LOG names a level (debugging a failing test). */
export const quiet = () => (process.env.DFDAEMON_TEST_LOG ? createLogger({ name: 'test', level: process.env.DFDAEMON_TEST_LOG as 'debug' }) : silentLogger());

/**
 * A TCP port free on 127.0.0.1 right now: for a seed peer whose gRPC address the scheduler
 * must trust (seedPeer.addrs) before the seed starts.
 */
export async function freePort(): Promise<number> {
  const server = http.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

export interface SeededCluster {
  readonly scheduler: SchedulerHandle;
  readonly seed: DfdaemonHandle;
  readonly peers: DfdaemonHandle[];
}

/**
 * A real scheduler (no manager: it trusts the seed by its address, seedPeer.addrs), one seed
 * peer `seed-1` and `peerCount` peers `peer-1`…, each with its data under `root`.
 */
export async function startSeededCluster(root: string, peerCount: number, seedExtra: DfdaemonConfigInput = {}): Promise<SeededCluster> {
  const seedPort = await freePort();
  const scheduler = await startScheduler(
    parseConfig('scheduler', { server: { port: 0, listenIP: '127.0.0.1', advertiseIP: '127.0.0.1' }, seedPeer: { addrs: [`127.0.0.1:${seedPort}`] }, metrics: { enable: false }, security: { insecure: true } }),
    { logger: quiet() },
  );
  const schedulerAddr = { scheduler: { netAddrs: [{ addr: `127.0.0.1:${scheduler.port}` }] } };
  const seed = await startDfdaemon(
    daemonConfig(path.join(root, 'seed'), 'seed-1', {
      ...seedExtra,
      download: { peerGRPC: { tcpListen: { listen: '127.0.0.1', port: seedPort } } },
      scheduler: { ...schedulerAddr.scheduler, manager: { enable: false, seedPeer: { enable: true } } },
    }),
    { logger: quiet() },
  );
  const peers: DfdaemonHandle[] = [];
  for (let n = 1; n <= peerCount; n++) peers.push(await startDfdaemon(daemonConfig(path.join(root, `peer${n}`), `peer-${n}`, schedulerAddr), { logger: quiet() }));
  return { scheduler, seed, peers };
}
