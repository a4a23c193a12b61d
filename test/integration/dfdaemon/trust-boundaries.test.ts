/**
 * dfdaemon's trust boundaries, attacked as a neighbour on the node network would, over real
 * sockets: the download API (which writes files) is on the unix socket only; the TCP port's
 * DownloadTask refuses output_path; an OCI blob cannot be stored under another digest; the
 * proxy never answers 200 with bytes that do not match the blob's digest, even when the stored
 * file is changed after it finished or while the daemon was down; a hostile scheduler's
 * metadata (1-byte pieces of a 1 TiB task) is refused without allocating for it; content from
 * parents that does not match its digest is reported and fetched again from the origin.
 */
import { createHash, randomBytes } from 'node:crypto';
import * as fsp from 'node:fs/promises';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import * as path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { GRPC_OPTIONS, startGrpcServer, type GrpcServerHandle } from '../../../services/common';
import { startDfdaemon, type DfdaemonHandle } from '../../../services/dfdaemon/daemon';
import { crc32Of, HELD_RECHECK_MS } from '../../../services/dfdaemon/storage';
import {
  dfdaemonUploadService,
  protos,
  schedulerService,
  type AnnouncePeerRequest__Output,
  type AnnouncePeerResponse,
  type DfdaemonDownloadClient,
  type DfdaemonUploadClient,
  type Download,
} from '../../../services/proto';
import type { DownloadTaskResponse__Output } from '../../../services/proto/gen/dfdaemon/v2/DownloadTaskResponse';
import { daemonConfig, MiB, quiet, startOrigin, tempDir, until, type Origin } from './helpers';

jest.setTimeout(90_000);

const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');

interface Answer {
  status: number;
  body: Buffer;
  /** The whole announced body arrived (not cut off by the server). */
  complete: boolean;
}

function proxyGet(port: number, urlPath: string, registry: string): Promise<Answer> {
  return new Promise((resolve) => {
    const req = http.get({ host: '127.0.0.1', port, path: urlPath, headers: { 'X-Dragonfly-Registry': registry }, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      const done = (complete: boolean) => {
        const body = Buffer.concat(chunks);
        resolve({ status: res.statusCode ?? 0, body, complete: complete && body.length === Number(res.headers['content-length'] ?? body.length) });
      };
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => done(res.complete));
      res.on('error', () => done(false));
      res.on('aborted', () => done(false));
    });
    req.on('error', () => resolve({ status: 0, body: Buffer.alloc(0), complete: false }));
  });
}

/** What a client would accept: a complete 200. Such an answer must carry exactly the blob. */
function expectNeverWrongBytes(a: Answer, hex: string): void {
  if (a.status === 200 && a.complete) expect(sha256(a.body)).toBe(hex);
}

function callDownload(client: DfdaemonDownloadClient | DfdaemonUploadClient, download: Download) {
  return new Promise<{ responses: DownloadTaskResponse__Output[]; error?: grpc.ServiceError }>((resolve) => {
    const responses: DownloadTaskResponse__Output[] = [];
    const call = client.DownloadTask({ download });
    call.on('data', (r: DownloadTaskResponse__Output) => responses.push(r));
    call.on('end', () => resolve({ responses }));
    call.on('error', (error: grpc.ServiceError) => resolve({ responses, error }));
  });
}

function healthCheck(target: string): Promise<string> {
  const Health = grpc.makeGenericClientConstructor(
    {
      Check: {
        path: '/grpc.health.v1.Health/Check',
        requestStream: false,
        responseStream: false,
        requestSerialize: () => Buffer.alloc(0),
        requestDeserialize: () => ({}),
        responseSerialize: () => Buffer.alloc(0),
        // HealthCheckResponse { status = 1 }: 0x08 0x01 is SERVING.
        responseDeserialize: (b: Buffer) => (b.length >= 2 && b[0] === 0x08 && b[1] === 0x01 ? 'SERVING' : `other:${b.toString('hex')}`),
      },
    },
    'Health',
  );
  const client = new Health(target, grpc.credentials.createInsecure());
  return new Promise((resolve, reject) => {
    (client as unknown as { Check: (r: object, o: grpc.CallOptions, cb: (e: Error | null, s?: string) => void) => void }).Check({}, { deadline: Date.now() + 5000 }, (err, s) => {
      client.close();
      if (err) reject(err);
      else resolve(s!);
    });
  });
}

describe('dfdaemon trust boundaries', () => {
  let root: string;
  let originDir: string;
  let origin: Origin;
  let daemon: DfdaemonHandle;
  let logLines: string[];
  const blob = randomBytes(9 * MiB + 77);
  const hex = sha256(blob);

  const blobPath = (h: string) => `/v2/library/app/blobs/sha256:${h}`;
  const originBase = () => origin.url('').replace(/\/$/, '');
  const socketOf = (d: DfdaemonHandle) => d.config.download.downloadGRPC.unixListen.socket;
  const uploadClient = (d: DfdaemonHandle) => new (protos().dfdaemon.dfdaemon.v2.DfdaemonUpload)(`127.0.0.1:${d.grpcPort}`, grpc.credentials.createInsecure(), GRPC_OPTIONS);
  const downloadClientOver = (target: string) => new (protos().dfdaemon.dfdaemon.v2.DfdaemonDownload)(target, grpc.credentials.createInsecure(), GRPC_OPTIONS);

  async function start(extra: Parameters<typeof daemonConfig>[2] = {}): Promise<DfdaemonHandle> {
    const pino = await import('pino');
    logLines = [];
    const logger = pino.default({ level: 'info' }, { write: (l: string) => logLines.push(l) });
    return startDfdaemon(daemonConfig(path.join(root, 'd'), 'trust-peer', extra), { logger });
  }

  beforeAll(async () => {
    root = await tempDir('dfdaemon-trust');
    originDir = path.join(root, 'origin');
    await fsp.mkdir(originDir);
    // The helper origin serves a file by the last path segment: "sha256:<hex>" for a blob URL.
    await fsp.writeFile(path.join(originDir, `sha256:${hex}`), blob);
    origin = await startOrigin(originDir);
    daemon = await start({ download: { downloadGRPC: { unixListen: { socketGroup: process.getgid!() } } } });
  });
  afterAll(async () => {
    await daemon?.stop();
    await origin?.close();
    await fsp.rm(root, { recursive: true, force: true });
  });

  it('the download API is on the unix socket only (mode 0600, the configured group), not on TCP', async () => {
    const st = await fsp.stat(socketOf(daemon));
    expect(st.isSocket()).toBe(true);
    expect(st.mode & 0o777).toBe(0o600);
    expect(st.gid).toBe(process.getgid!());
    // No staging directory is left beside the socket.
    expect((await fsp.readdir(path.dirname(socketOf(daemon)))).filter((n) => n.startsWith('.dfdaemon-sock-'))).toEqual([]);

    const target = path.join(root, 'written-over-tcp');
    const tcp = downloadClientOver(`127.0.0.1:${daemon.grpcPort}`);
    const r = await callDownload(tcp, { url: `${originBase()}${blobPath(hex)}`, outputPath: target });
    tcp.close();
    expect(r.error?.code).toBe(grpc.status.UNIMPLEMENTED);
    await expect(fsp.stat(target)).rejects.toThrow();
    expect(await healthCheck(`127.0.0.1:${daemon.grpcPort}`)).toBe('SERVING');
  });

  it('DfdaemonUpload.DownloadTask on TCP refuses output_path: INVALID_ARGUMENT, nothing written, caller logged', async () => {
    const target = path.join(root, 'etc-passwd-stand-in');
    const client = uploadClient(daemon);
    const r = await callDownload(client, { url: `${originBase()}${blobPath(hex)}`, outputPath: target });
    client.close();
    expect(r.error?.code).toBe(grpc.status.INVALID_ARGUMENT);
    expect(r.error?.details).toMatch(/output_path/);
    await expect(fsp.stat(target)).rejects.toThrow();
    const refusal = logLines.map((l) => JSON.parse(l) as Record<string, unknown>).find((l) => l.method === 'DfdaemonUpload.DownloadTask' && l.code === 'InvalidArgument');
    expect(refusal?.caller).toMatch(/127\.0\.0\.1:\d+/);
    expect(await healthCheck(`127.0.0.1:${daemon.grpcPort}`)).toBe('SERVING');
  });

  it('a poisoned digest for an OCI blob URL is refused on both services and stores nothing', async () => {
    const other = randomBytes(1024);
    await fsp.writeFile(path.join(originDir, 'sha256:' + 'e'.repeat(64)), other);
    const url = `${originBase()}${blobPath('e'.repeat(64))}`;
    const poisoned = `sha256:${sha256(other)}`;
    const client = uploadClient(daemon);
    const viaTcp = await callDownload(client, { url, digest: poisoned });
    client.close();
    expect(viaTcp.error?.code).toBe(grpc.status.INVALID_ARGUMENT);
    expect(viaTcp.error?.details).toMatch(/differs from the digest of the blob URL/);
    const local = downloadClientOver(`unix:${socketOf(daemon)}`);
    const viaSocket = await callDownload(local, { url, digest: poisoned, outputPath: path.join(root, 'poisoned.out') });
    local.close();
    expect(viaSocket.error?.code).toBe(grpc.status.INVALID_ARGUMENT);
    await expect(fsp.stat(path.join(root, 'poisoned.out'))).rejects.toThrow();
    expect(daemon.tasks.stat('e'.repeat(64))).toBeUndefined();
    // The other bytes are not served under that digest: the proxy's download fails the check.
    const answer = await proxyGet(daemon.proxyPort, blobPath('e'.repeat(64)), originBase());
    expectNeverWrongBytes(answer, 'e'.repeat(64));
    expect(answer.status === 200 && answer.complete).toBe(false);
    expect(daemon.tasks.stat('e'.repeat(64))?.finished ?? false).toBe(false);
  });

  it('the proxy never serves a stored blob changed on disk after it finished: dropped and fetched again', async () => {
    const first = await proxyGet(daemon.proxyPort, blobPath(hex), originBase());
    expect(first.status).toBe(200);
    expect(sha256(first.body)).toBe(hex);
    const contentPath = daemon.engine.store.contentPathOf(hex);
    for (const offset of [100, 4 * MiB + 5, blob.length - 1]) {
      const before = origin.bytesServed();
      const fh = await fsp.open(contentPath, 'r+');
      await fh.write(Buffer.from([blob[offset] ^ 0xff]), 0, 1, offset);
      await fh.close();
      const again = await proxyGet(daemon.proxyPort, blobPath(hex), originBase());
      expectNeverWrongBytes(again, hex);
      expect(again.status).toBe(200);
      expect(sha256(again.body)).toBe(hex);
      expect(origin.bytesServed() - before).toBeGreaterThanOrEqual(blob.length);
    }
    // The upload port does not hand the changed bytes to peers either.
    const fh = await fsp.open(contentPath, 'r+');
    await fh.write(Buffer.from([blob[7] ^ 0xff]), 0, 1, 7);
    await fh.close();
    const piece = await new Promise<number>((resolve) => {
      http.get({ host: '127.0.0.1', port: daemon.uploadPort, path: `/download/${hex.slice(0, 3)}/${hex}`, headers: { range: 'bytes=0-99' } }, (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      });
    });
    expect(piece).toBe(404);
    expect(daemon.tasks.stat(hex)).toBeUndefined();
  });

  it('a small blob served from memory: a change of its stored file still drops it and it is fetched again', async () => {
    const small = randomBytes(48 * 1024 + 5);
    const smallHex = sha256(small);
    await fsp.writeFile(path.join(originDir, `sha256:${smallHex}`), small);
    // Cold, then the hit that reads it into memory, then a hit from memory.
    for (let i = 0; i < 3; i++) {
      const a = await proxyGet(daemon.proxyPort, blobPath(smallHex), originBase());
      expect(a.status).toBe(200);
      expect(sha256(a.body)).toBe(smallHex);
    }
    expect(daemon.engine.store.contentInMemory(daemon.engine.store.get(smallHex)!)).toBeDefined();
    const before = origin.bytesServed();
    // File times move with the kernel's tick: the write must come after the next one.
    await new Promise((r) => setTimeout(r, 20));
    const contentPath = daemon.engine.store.contentPathOf(smallHex);
    const fh = await fsp.open(contentPath, 'r+');
    await fh.write(Buffer.from([small[1000] ^ 0xff]), 0, 1, 1000);
    await fh.close();
    // Until the identity check is due again, hits still get the verified copy, never the file's bytes.
    const meanwhile = await proxyGet(daemon.proxyPort, blobPath(smallHex), originBase());
    expect(meanwhile.status).toBe(200);
    expect(sha256(meanwhile.body)).toBe(smallHex);
    await new Promise((r) => setTimeout(r, HELD_RECHECK_MS));
    // The next hit sees the change (not the copy in memory): the task is dropped and fetched again.
    const again = await proxyGet(daemon.proxyPort, blobPath(smallHex), originBase());
    expectNeverWrongBytes(again, smallHex);
    expect(again.status).toBe(200);
    expect(sha256(again.body)).toBe(smallHex);
    expect(origin.bytesServed() - before).toBeGreaterThanOrEqual(small.length);
    expect(logLines.some((l) => l.includes('failed verification'))).toBe(true);
    expect(sha256(await fsp.readFile(contentPath))).toBe(smallHex);
  });

  it('a blob changed while the daemon was down is re-verified on first use and never served', async () => {
    expect((await proxyGet(daemon.proxyPort, blobPath(hex), originBase())).status).toBe(200);
    await daemon.stop();
    const contentPath = path.join(root, 'd', 'content', 'tasks', hex.slice(0, 3), hex);
    const fh = await fsp.open(contentPath, 'r+');
    await fh.write(Buffer.from('not the blob'), 0, 12, 2 * MiB);
    await fh.close();
    daemon = await start();
    expect(daemon.tasks.stat(hex)?.finished).toBe(true);
    const before = origin.bytesServed();
    const answer = await proxyGet(daemon.proxyPort, blobPath(hex), originBase());
    expectNeverWrongBytes(answer, hex);
    expect(answer.status).toBe(200);
    expect(sha256(answer.body)).toBe(hex);
    expect(origin.bytesServed() - before).toBeGreaterThanOrEqual(blob.length);
    expect(logLines.some((l) => l.includes('failed verification'))).toBe(true);
  });
});

describe('origin deadlines', () => {
  it('an origin that drips a byte at a time (never idle) is cut off after pieceDownloadTimeout', async () => {
    const root = await tempDir('dfdaemon-drip');
    const timers = new Set<NodeJS.Timeout>();
    const drip = http.createServer((req, res) => {
      res.writeHead(req.headers.range ? 206 : 200, { 'content-length': 1000, ...(req.headers.range ? { 'content-range': 'bytes 0-999/1000' } : {}) });
      if (req.method === 'HEAD') return void res.end();
      const t = setInterval(() => res.write('x'), 50);
      timers.add(t);
      res.on('close', () => clearInterval(t));
    });
    await new Promise<void>((r) => drip.listen(0, '127.0.0.1', r));
    const daemon = await startDfdaemon(daemonConfig(path.join(root, 'd'), 'drip', { download: { pieceDownloadTimeout: '1s' } }), { logger: quiet() });
    try {
      const started = Date.now();
      const err = await daemon.tasks
        .downloadToFile({ url: `http://127.0.0.1:${(drip.address() as AddressInfo).port}/slow.bin`, requestHeaders: {}, outputPath: path.join(root, 'slow.out') })
        .then(() => undefined, (e: Error) => e);
      expect(err?.message).toMatch(/within 1000 ms/);
      // Four attempts of one second each plus back-off, not the 50 s the drip would take.
      expect(Date.now() - started).toBeLessThan(15_000);
      await expect(fsp.stat(path.join(root, 'slow.out'))).rejects.toThrow();
    } finally {
      await daemon.stop();
      for (const t of timers) clearInterval(t);
      drip.closeAllConnections();
      await new Promise((r) => drip.close(r));
      await fsp.rm(root, { recursive: true, force: true });
    }
  });
});

describe('seed trigger deadline', () => {
  it('DfdaemonUpload.DownloadTask ends with DEADLINE_EXCEEDED after download.seedTriggerTimeout', async () => {
    const root = await tempDir('dfdaemon-trigger');
    await fsp.mkdir(path.join(root, 'origin'));
    await fsp.writeFile(path.join(root, 'origin', 'slow.bin'), randomBytes(4 * MiB));
    const slow = await startOrigin(path.join(root, 'origin'), { bytesPerSecond: 256 * 1024 });
    const daemon = await startDfdaemon(daemonConfig(path.join(root, 'd'), 'trigger', { download: { seedTriggerTimeout: '1s' } }), { logger: quiet() });
    const client = new (protos().dfdaemon.dfdaemon.v2.DfdaemonUpload)(`127.0.0.1:${daemon.grpcPort}`, grpc.credentials.createInsecure(), GRPC_OPTIONS);
    try {
      const started = Date.now();
      const r = await callDownload(client, { url: slow.url('slow.bin') });
      expect(r.error?.code).toBe(grpc.status.DEADLINE_EXCEEDED);
      expect(r.error?.details).toMatch(/seedTriggerTimeout/);
      expect(Date.now() - started).toBeLessThan(5000);
      expect(await healthCheck(`127.0.0.1:${daemon.grpcPort}`)).toBe('SERVING');
    } finally {
      client.close();
      await daemon.stop();
      await slow.close();
      await fsp.rm(root, { recursive: true, force: true });
    }
  });
});

/** A scheduler under the attacker's control, and a parent that serves other bytes with matching crc32s. */
describe('dfdaemon against a hostile scheduler and a lying parent', () => {
  let root: string;
  let origin: Origin;
  let scheduler: GrpcServerHandle;
  let fakeParentGrpc: GrpcServerHandle;
  let fakeParentHttp: http.Server;
  const received: AnnouncePeerRequest__Output[] = [];
  let answer: (req: AnnouncePeerRequest__Output) => AnnouncePeerResponse;
  const blob = randomBytes(10 * MiB + 3);
  const hex = sha256(blob);
  const liar = Buffer.from(blob);
  liar.fill(0x42, 5 * MiB, 5 * MiB + 1000);
  const PIECE = 4 * MiB;

  beforeAll(async () => {
    root = await tempDir('dfdaemon-hostile');
    await fsp.mkdir(path.join(root, 'origin'));
    await fsp.writeFile(path.join(root, 'origin', `sha256:${hex}`), blob);
    await fsp.writeFile(path.join(root, 'origin', 'plain.bin'), blob);
    origin = await startOrigin(path.join(root, 'origin'));
    scheduler = await startGrpcServer('127.0.0.1:0', [
      {
        name: 'scheduler.v2.Scheduler',
        definition: schedulerService(),
        handlers: {
          AnnounceHost: (_call: unknown, cb: (e: null, r: object) => void) => cb(null, {}),
          AnnouncePeer: (call: grpc.ServerDuplexStream<AnnouncePeerRequest__Output, AnnouncePeerResponse>) => {
            call.on('data', (req: AnnouncePeerRequest__Output) => {
              received.push(req);
              if (req.request === 'registerPeerRequest') call.write(answer(req));
            });
            call.on('end', () => call.end());
            call.on('error', () => undefined);
          },
        },
      },
    ]);
    // The lying parent: SyncPieces announces every piece with the crc32 of its (wrong) bytes.
    fakeParentHttp = http.createServer((req, res) => {
      const m = /bytes=(\d+)-(\d+)/.exec(req.headers.range ?? '');
      if (!m) return void res.writeHead(416).end();
      const start = Number(m[1]);
      const end = Number(m[2]);
      res.writeHead(206, { 'content-length': end - start + 1, 'content-range': `bytes ${start}-${end}/${liar.length}` });
      res.end(liar.subarray(start, end + 1));
    });
    await new Promise<void>((r) => fakeParentHttp.listen(0, '127.0.0.1', r));
    fakeParentGrpc = await startGrpcServer('127.0.0.1:0', [
      {
        name: 'dfdaemon.v2.DfdaemonUpload',
        definition: dfdaemonUploadService(),
        handlers: {
          SyncPieces: (call: grpc.ServerWritableStream<unknown, object>) => {
            for (let n = 0; n * PIECE < liar.length; n++) {
              const part = liar.subarray(n * PIECE, Math.min(liar.length, (n + 1) * PIECE));
              call.write({ number: n, offset: n * PIECE, length: part.length, digest: crc32Of(part), contentLength: liar.length, pieceLength: PIECE });
            }
            call.end();
          },
        },
      },
    ]);
  });
  afterAll(async () => {
    await scheduler?.shutdown(0);
    await fakeParentGrpc?.shutdown(0);
    fakeParentHttp?.closeAllConnections();
    await new Promise((r) => fakeParentHttp?.close(r));
    await origin?.close();
    await fsp.rm(root, { recursive: true, force: true });
  });

  async function daemonWithScheduler(name: string): Promise<DfdaemonHandle> {
    return startDfdaemon(daemonConfig(path.join(root, name), name, { scheduler: { netAddrs: [{ addr: `127.0.0.1:${scheduler.port}` }] } }), { logger: quiet() });
  }

  it('1-byte pieces of a 1 TiB task from the scheduler are refused without allocating; the download uses the origin', async () => {
    answer = () => ({ normalTaskResponse: { task: { id: 'x', contentLength: 2 ** 40, pieceLength: 1, responseHeader: {} }, candidateParents: [] } });
    const daemon = await daemonWithScheduler('tiny-pieces');
    try {
      const heapBefore = process.memoryUsage().heapUsed;
      const out = path.join(root, 'tiny.out');
      await daemon.tasks.downloadToFile({ url: origin.url('plain.bin'), requestHeaders: {}, outputPath: out });
      expect(sha256(await fsp.readFile(out))).toBe(hex);
      expect(process.memoryUsage().heapUsed - heapBefore).toBeLessThan(256 * MiB);
      const refused = received.find((r) => r.request === 'downloadPeerFailedRequest');
      expect(refused?.downloadPeerFailedRequest?.description).toMatch(/piece length 1 is outside/);
      expect(await healthCheck(`127.0.0.1:${daemon.grpcPort}`)).toBe('SERVING');
    } finally {
      await daemon.stop();
    }
  });

  it('content from a parent that does not match the blob digest: the parent is reported and the blob comes from the origin', async () => {
    received.length = 0;
    answer = (req) => ({
      normalTaskResponse: {
        task: { id: req.taskId, contentLength: blob.length, pieceLength: PIECE, responseHeader: {} },
        candidateParents: [{ id: '10.9.9.9-liar-peer', host: { id: 'liar', ip: '127.0.0.1', port: fakeParentGrpc.port, downloadPort: (fakeParentHttp.address() as AddressInfo).port } }],
      },
    });
    const daemon = await daemonWithScheduler('lied-to');
    try {
      const before = origin.bytesServed();
      const result = await daemon.tasks.read({ url: `${origin.url('')}v2/r/blobs/sha256:${hex}`, requestHeaders: {} });
      const chunks: Buffer[] = [];
      const outcome = await new Promise<'ok' | 'failed'>((resolve) => {
        result.body.on('data', (c: Buffer) => chunks.push(c));
        result.body.on('end', () => resolve('ok'));
        result.body.on('error', () => resolve('failed'));
      });
      // A reader of the poisoned attempt is failed, never handed a complete wrong body.
      if (outcome === 'ok') expect(sha256(Buffer.concat(chunks))).toBe(hex);
      await until(() => daemon.tasks.stat(hex)?.finished === true, 30_000);
      const again = await daemon.tasks.read({ url: `${origin.url('')}v2/r/blobs/sha256:${hex}`, requestHeaders: {} });
      const body: Buffer[] = [];
      for await (const c of again.body) body.push(c as Buffer);
      expect(sha256(Buffer.concat(body))).toBe(hex);
      expect(origin.bytesServed() - before).toBeGreaterThanOrEqual(blob.length);
      const blamed = received.filter((r) => r.request === 'downloadPieceFailedRequest').map((r) => r.downloadPieceFailedRequest!);
      expect(blamed).toContainEqual(expect.objectContaining({ parentId: '10.9.9.9-liar-peer', temporary: false }));
    } finally {
      await daemon.stop();
    }
  });
});
