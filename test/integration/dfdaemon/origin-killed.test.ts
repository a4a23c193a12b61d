/**
 * Issue 12: kill -9 of the origin while the seed peer fetches a task and a peer downloads it
 * from that seed (real scheduler, real seed and peer, an origin that serves the first piece and
 * then dies). The peer's pull must end — with the content or a clear error — within seconds,
 * never wait for an answer that does not come; and once the origin is back, the next pull of
 * the same task completes on the same peer and on another one.
 */
import { createHash, randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as fsp from 'node:fs/promises';
import * as http from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import * as path from 'node:path';
import { parseConfig } from '../../../services/common';
import { startDfdaemon, type DfdaemonHandle } from '../../../services/dfdaemon/daemon';
import { startScheduler, type SchedulerHandle } from '../../../services/scheduler/server';
import { daemonConfig, freePort, MiB, quiet, tempDir } from './helpers';

jest.setTimeout(90_000);

const PIECE = 4 * MiB; // pieceLengthFor(9 MiB + 123)

/**
 * An origin that answers HEAD and the GET of the first piece, holds every other GET open, and
 * can be killed (every connection reset, the port refusing) and revived on the same port.
 */
class DyingOrigin {
  private server: http.Server | undefined;
  private readonly sockets = new Set<Socket>();
  port = 0;
  /** Before the kill only the first piece is served; after a revive, everything. */
  private revived = false;
  alive = false;
  constructor(private readonly content: Buffer) {}

  async start(): Promise<void> {
    const server = http.createServer((req, res) => {
      const m = /^bytes=(\d+)-(\d*)$/.exec(req.headers.range ?? '');
      const start = m ? Number(m[1]) : 0;
      const end = m && m[2] ? Math.min(Number(m[2]), this.content.length - 1) : this.content.length - 1;
      const headers: http.OutgoingHttpHeaders = { 'content-length': end - start + 1, 'accept-ranges': 'bytes' };
      if (m) headers['content-range'] = `bytes ${start}-${end}/${this.content.length}`;
      if (req.method === 'HEAD') return void res.writeHead(m ? 206 : 200, headers).end();
      // Before the kill: only the first piece; the rest hangs until the process "dies".
      if (!this.revived && start !== 0) return;
      res.writeHead(m ? 206 : 200, headers).end(this.content.subarray(start, end + 1));
    });
    server.on('connection', (s: Socket) => {
      this.sockets.add(s);
      s.on('close', () => this.sockets.delete(s));
    });
    await new Promise<void>((r) => server.listen(this.port, '127.0.0.1', r));
    this.port = (server.address() as AddressInfo).port;
    this.server = server;
    this.alive = true;
  }

  /** After a revive every piece is served. */
  async revive(): Promise<void> {
    this.revived = true;
    await this.start();
  }

  /** Like kill -9: open connections reset, new ones refused. */
  async kill(): Promise<void> {
    this.alive = false;
    for (const s of this.sockets) s.destroy();
    await new Promise((r) => this.server?.close(r));
    this.server = undefined;
  }

  url(name: string): string {
    return `http://127.0.0.1:${this.port}/${name}`;
  }
}

const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');

describe('kill -9 of the origin while the seed fetches and a peer pulls from the seed', () => {
  let root: string;
  let scheduler: SchedulerHandle;
  let origin: DyingOrigin;
  const daemons: DfdaemonHandle[] = [];
  const content = randomBytes(2 * PIECE + MiB + 123);

  beforeAll(async () => {
    root = await tempDir('origin-killed');
    origin = new DyingOrigin(content);
    await origin.start();
    const seedPort = await freePort();
    scheduler = await startScheduler(
      parseConfig('scheduler', {
        server: { port: 0, listenIP: '127.0.0.1', advertiseIP: '127.0.0.1' },
        seedPeer: { addrs: [`127.0.0.1:${seedPort}`] },
        scheduler: { retryInterval: '200ms' },
        metrics: { enable: false },
      }),
      { logger: quiet() },
    );
    const schedulerCfg = { netAddrs: [{ addr: `127.0.0.1:${scheduler.port}` }], scheduleTimeout: '3s' };
    daemons.push(
      await startDfdaemon(
        daemonConfig(path.join(root, 'seed'), 'seed-1', {
          download: { peerGRPC: { tcpListen: { listen: '127.0.0.1', port: seedPort } } },
          scheduler: { ...schedulerCfg, manager: { enable: false, seedPeer: { enable: true } } },
        }),
        { logger: quiet() },
      ),
    );
    for (const n of [1, 2]) daemons.push(await startDfdaemon(daemonConfig(path.join(root, `peer${n}`), `peer-${n}`, { scheduler: schedulerCfg }), { logger: quiet() }));
  });

  afterAll(async () => {
    for (const d of daemons) await d.stop();
    await scheduler?.stop();
    if (origin?.alive) await origin.kill();
    await fsp.rm(root, { recursive: true, force: true });
  });

  it('the pull ends within seconds (content or a clear error); after the origin is back the task completes', async () => {
    const [, peer1, peer2] = daemons;
    const url = origin.url('blob.bin');
    const out1 = path.join(root, 'out-1.bin');
    let gotPiece = false;
    const started = Date.now();
    const pull = peer1.tasks.downloadToFile({ url, requestHeaders: {}, outputPath: out1 }, (p) => {
      if (p.piece) gotPiece = true;
    });
    const settled = pull.then(
      () => ({ ok: true as const, at: Date.now() }),
      (err: Error) => ({ ok: false as const, err, at: Date.now() }),
    );
    // The peer holds the first piece (from the seed) and the seed waits on the origin for the rest.
    const deadline = Date.now() + 20_000;
    while (!gotPiece && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    expect(gotPiece).toBe(true);
    await origin.kill();
    const result = await Promise.race([settled, new Promise<'stalled'>((r) => setTimeout(() => r('stalled'), 40_000).unref())]);
    expect(result).not.toBe('stalled');
    if (result === 'stalled') return;
    if (process.env.DFDAEMON_TEST_LOG) process.stdout.write(`first pull: ${JSON.stringify({ ok: result.ok, ms: result.at - started, err: result.ok ? undefined : result.err.message })}\n`);
    // Bounded: the seed's origin retries (~3 s), the peer's own origin retries (~3 s), margins.
    expect(result.at - started).toBeLessThan(30_000);
    if (result.ok) expect(sha256(fs.readFileSync(out1))).toBe(sha256(content));
    else expect(result.err.message).toMatch(/ECONNREFUSED|ECONNRESET|origin|socket hang up/i);

    await origin.revive();
    const again = path.join(root, 'out-1b.bin');
    await peer1.tasks.downloadToFile({ url, requestHeaders: {}, outputPath: again });
    expect(sha256(fs.readFileSync(again))).toBe(sha256(content));
    const other = path.join(root, 'out-2.bin');
    await peer2.tasks.downloadToFile({ url, requestHeaders: {}, outputPath: other });
    expect(sha256(fs.readFileSync(other))).toBe(sha256(content));
  });
});
