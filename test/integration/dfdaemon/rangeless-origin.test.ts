/**
 * An origin that ignores Range (like Python's http.server or many artifact servers): no
 * `Accept-Ranges` on HEAD, a 200 with the whole body to every GET. One seed peer and three
 * peers behind a real scheduler: a cold dfget and a cold proxy pull each read the origin
 * exactly once (one GET), and the three peers get the pieces from the P2P network while
 * that one origin stream is still running.
 */
import { createHash, randomBytes } from 'node:crypto';
import * as fsp from 'node:fs/promises';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import * as path from 'node:path';
import type { DfdaemonHandle } from '../../../services/dfdaemon/daemon';
import { main as dfget } from '../../../services/dfget/main';
import type { SchedulerHandle } from '../../../services/scheduler/server';
import { MiB, sha256File, startSeededCluster, tempDir } from './helpers';

jest.setTimeout(120_000);

interface RangelessOrigin {
  readonly base: string;
  /** GET requests per path (HEADs are not counted here). */
  gets(p: string): number;
  heads(p: string): number;
  /** True while a GET body of `p` is still being sent. */
  streaming(p: string): boolean;
  close(): Promise<void>;
}

/** Serves `files` (path → bytes) ignoring Range, `bytesPerSecond` per response so the stream lasts a while. */
async function startRangelessOrigin(files: Map<string, Buffer>, bytesPerSecond: number): Promise<RangelessOrigin> {
  const gets = new Map<string, number>();
  const heads = new Map<string, number>();
  const open = new Map<string, number>();
  const timers = new Set<NodeJS.Timeout>();
  const server = http.createServer((req, res) => {
    const p = (req.url ?? '/').split('?')[0];
    const body = files.get(p);
    const counter = req.method === 'HEAD' ? heads : gets;
    counter.set(p, (counter.get(p) ?? 0) + 1);
    if (!body) return void res.writeHead(404).end();
    // No Accept-Ranges, and Range is ignored.
    res.writeHead(200, { 'content-length': body.length, 'content-type': 'application/octet-stream' });
    if (req.method === 'HEAD') return void res.end();
    open.set(p, (open.get(p) ?? 0) + 1);
    const step = 256 * 1024;
    let pos = 0;
    const send = () => {
      if (pos >= body.length) {
        open.set(p, (open.get(p) ?? 1) - 1);
        res.end();
        return;
      }
      const chunk = body.subarray(pos, pos + step);
      pos += chunk.length;
      res.write(chunk);
      const t = setTimeout(send, (chunk.length / bytesPerSecond) * 1000);
      timers.add(t);
    };
    res.on('close', () => {
      if (pos < body.length) open.set(p, (open.get(p) ?? 1) - 1);
      pos = body.length + 1;
    });
    send();
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    base: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    gets: (p) => gets.get(p) ?? 0,
    heads: (p) => heads.get(p) ?? 0,
    streaming: (p) => (open.get(p) ?? 0) > 0,
    close: async () => {
      for (const t of timers) clearTimeout(t);
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
    },
  };
}

const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');

describe('an origin without Range support', () => {
  let root: string;
  let origin: RangelessOrigin;
  let scheduler: SchedulerHandle;
  let seed: DfdaemonHandle;
  const peers: DfdaemonHandle[] = [];
  const files = new Map<string, Buffer>();
  const SIZE = 48 * MiB + 12345;
  const fileContent = randomBytes(SIZE);
  const blobContent = randomBytes(40 * MiB + 7);
  const blobHex = sha256(blobContent);
  const blobPath = `/v2/library/app/blobs/sha256:${blobHex}`;

  beforeAll(async () => {
    root = await tempDir('dfdaemon-rangeless');
    files.set('/file.bin', fileContent);
    files.set(blobPath, blobContent);
    // ~2 s per stream: long enough that peers must be served while it runs.
    origin = await startRangelessOrigin(files, 24 * MiB);
    const cluster = await startSeededCluster(root, 3);
    ({ scheduler, seed } = cluster);
    peers.push(...cluster.peers);
  });

  afterAll(async () => {
    for (const d of [...peers, seed]) await d?.stop();
    await scheduler?.stop();
    await origin?.close();
    await fsp.rm(root, { recursive: true, force: true });
  });

  /** Samples, every 20 ms until `work` ends, which peers already hold pieces while the origin stream of `p` runs. */
  async function watchSharing<T>(p: string, taskId: string, work: Promise<T>): Promise<{ result: T; servedWhileStreaming: boolean[] }> {
    const servedWhileStreaming = peers.map(() => false);
    let done = false;
    const sampler = (async () => {
      while (!done) {
        if (origin.streaming(p)) {
          peers.forEach((peer, i) => {
            if ((peer.tasks.stat(taskId)?.finishedPieces ?? 0) > 0) servedWhileStreaming[i] = true;
          });
        }
        await new Promise((r) => setTimeout(r, 20));
      }
    })();
    try {
      return { result: await work, servedWhileStreaming };
    } finally {
      done = true;
      await sampler;
    }
  }

  async function bytesBySource(d: DfdaemonHandle, source: string): Promise<number> {
    return (await d.metrics.downloadBytes.get()).values.find((v) => v.labels.source === source)?.value ?? 0;
  }

  it('a cold dfget on three peers: one origin GET, peers share the pieces while it streams', async () => {
    const url = `${origin.base}/file.bin`;
    const taskId = peers[0].engine.taskIdFor({ url, requestHeaders: {} });
    const outputs = peers.map((_, i) => path.join(root, `out-${i}.bin`));
    const errors: string[][] = peers.map(() => []);
    const { result: codes, servedWhileStreaming } = await watchSharing(
      '/file.bin',
      taskId,
      Promise.all(
        peers.map((peer, i) =>
          dfget(['node', 'dfget', url, '-O', outputs[i], '-e', peer.config.download.downloadGRPC.unixListen.socket], { stderr: { write: (s: string) => errors[i].push(s), isTTY: false } }),
        ),
      ),
    );
    expect(errors.map((e) => e.join(''))).toEqual(['', '', '']);
    expect(codes).toEqual([0, 0, 0]);
    const want = sha256(fileContent);
    for (const out of outputs) expect(await sha256File(out)).toBe(want);
    expect(origin.gets('/file.bin')).toBe(1);
    expect(origin.heads('/file.bin')).toBeLessThanOrEqual(1);
    expect(servedWhileStreaming).toEqual([true, true, true]);
    // Only the seed went to the origin; every peer byte came from a peer.
    expect(await bytesBySource(seed, 'back_to_source')).toBe(SIZE);
    for (const peer of peers) expect(await bytesBySource(peer, 'remote_peer')).toBe(SIZE);
    for (const peer of peers) expect(await bytesBySource(peer, 'back_to_source')).toBe(0);
  });

  it('a cold proxy pull of a blob on three peers: one origin GET, peers share the pieces while it streams', async () => {
    const pull = (peer: DfdaemonHandle) =>
      new Promise<{ status: number; body: Buffer }>((resolve, reject) => {
        const req = http.get(
          { host: '127.0.0.1', port: peer.proxyPort, path: `${blobPath}?ns=registry.local`, headers: { 'X-Dragonfly-Registry': origin.base } },
          (res) => {
            const chunks: Buffer[] = [];
            res.on('data', (c: Buffer) => chunks.push(c));
            res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks) }));
            res.on('error', reject);
          },
        );
        req.on('error', reject);
      });
    const { result: answers, servedWhileStreaming } = await watchSharing(blobPath, blobHex, Promise.all(peers.map(pull)));
    for (const a of answers) {
      expect(a.status).toBe(200);
      expect(a.body.length).toBe(blobContent.length);
      expect(sha256(a.body)).toBe(blobHex);
    }
    expect(origin.gets(blobPath)).toBe(1);
    expect(servedWhileStreaming).toEqual([true, true, true]);
    for (const peer of peers) expect(peer.tasks.stat(blobHex)?.finished).toBe(true);
  });
});
