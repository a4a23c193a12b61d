/**
 * Issue 12, items 2–4 on a real dfdaemon (in process) against a local origin and fake schedulers:
 * - the output file never shares storage with the cache (hardlink only as an opt-in);
 * - local disk errors are their own class: not retried, not blamed on anyone, reported with
 *   the path and the free space, and checked before anything is served (proxy: 507);
 * - a failed download keeps its verified pieces, and a closed scheduler stream goes to the origin;
 * - a NOT_FOUND from a restarted scheduler makes the host announce itself at once;
 * - a seed peer triggered for a task it holds registers it with the scheduler.
 */
import { createHash, randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as fsp from 'node:fs/promises';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import * as path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { GRPC_OPTIONS, httpStatusOf, LocalStorageError, toGrpcError, errorBody } from '../../../services/common';
import { startDfdaemon, type DfdaemonHandle } from '../../../services/dfdaemon/daemon';
import { ensureSpace, isLocalIoError, localStorageError } from '../../../services/dfdaemon/local-io';
import { TaskEntry } from '../../../services/dfdaemon/storage';
import { protos, type AnnouncePeerRequest__Output } from '../../../services/proto';
import { daemonConfig, MiB, quiet, tempDir, until } from '../../integration/dfdaemon/helpers';

jest.setTimeout(60_000);

interface TestOrigin {
  readonly base: string;
  /** Range headers of content GETs, in order. */
  readonly gets: string[];
  /** Answer 500 to GETs of these byte offsets. */
  failOffsets: Set<number>;
  /** HEAD answers claim this length instead of the real one. */
  claimLength?: number;
  /** GETs of these byte offsets get no answer until `releaseHeld` (an origin gone silent). */
  holdOffsets: Set<number>;
  /** Answers every held GET (with 500 when its offset is in failOffsets by then). */
  releaseHeld(): void;
  close(): Promise<void>;
}

async function startTestOrigin(content: Buffer): Promise<TestOrigin> {
  const held: Array<() => void> = [];
  const o = {
    gets: [] as string[],
    failOffsets: new Set<number>(),
    holdOffsets: new Set<number>(),
    claimLength: undefined as number | undefined,
    releaseHeld: () => {
      for (const answer of held.splice(0)) answer();
    },
  };
  const answer = (req: http.IncomingMessage, res: http.ServerResponse): void => {
    const m = /^bytes=(\d+)-(\d*)$/.exec(req.headers.range ?? '');
    const total = req.method === 'HEAD' && o.claimLength !== undefined ? o.claimLength : content.length;
    const start = m ? Number(m[1]) : 0;
    const end = m && m[2] ? Math.min(Number(m[2]), total - 1) : total - 1;
    if (req.method === 'GET' && o.failOffsets.has(start)) return void res.writeHead(500).end('injected');
    const headers: http.OutgoingHttpHeaders = { 'content-length': end - start + 1, 'accept-ranges': 'bytes' };
    if (m) headers['content-range'] = `bytes ${start}-${end}/${total}`;
    res.writeHead(m ? 206 : 200, headers);
    res.end(req.method === 'HEAD' ? undefined : content.subarray(start, end + 1));
  };
  const server = http.createServer((req, res) => {
    if (req.method === 'GET') {
      o.gets.push(req.headers.range ?? '');
      const start = Number(/^bytes=(\d+)-/.exec(req.headers.range ?? '')?.[1] ?? 0);
      if (o.holdOffsets.has(start)) return void held.push(() => answer(req, res));
    }
    answer(req, res);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return Object.assign(o, {
    base: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    close: async () => {
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
    },
  });
}

/** A scheduler that only speaks what a test scripts for it. */
async function fakeScheduler(handlers: {
  announceHost?: () => grpc.ServiceError | null;
  announcePeer: (call: grpc.ServerDuplexStream<AnnouncePeerRequest__Output, object>, req: AnnouncePeerRequest__Output) => void;
}): Promise<{ addr: string; announceHosts: number[]; close: () => void }> {
  const announceHosts: number[] = [];
  const server = new grpc.Server(GRPC_OPTIONS);
  server.addService(protos().scheduler.scheduler.v2.Scheduler.service, {
    AnnounceHost: (_call: grpc.ServerUnaryCall<unknown, unknown>, cb: grpc.sendUnaryData<object>) => {
      announceHosts.push(Date.now());
      const err = handlers.announceHost?.() ?? null;
      if (err) cb(err);
      else cb(null, {});
    },
    AnnouncePeer: (call: grpc.ServerDuplexStream<AnnouncePeerRequest__Output, object>) => {
      call.on('data', (req: AnnouncePeerRequest__Output) => handlers.announcePeer(call, req));
      call.on('end', () => call.end());
      call.on('error', () => undefined);
    },
  });
  const port = await new Promise<number>((resolve, reject) => server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p))));
  return { addr: `127.0.0.1:${port}`, announceHosts, close: () => server.forceShutdown() };
}

/** Ends a server stream with a gRPC status, as a scheduler handler does. */
function fail(call: grpc.ServerDuplexStream<AnnouncePeerRequest__Output, object>, code: grpc.status, details: string): void {
  call.emit('error', { code, details, message: details, metadata: new grpc.Metadata() });
}

const sha256 = (b: Buffer) => `sha256:${createHash('sha256').update(b).digest('hex')}`;

describe('local I/O errors are their own class', () => {
  it('tells disk errors from network errors', () => {
    const errno = (code: string) => Object.assign(new Error(code), { code });
    for (const c of ['ENOSPC', 'EIO', 'EDQUOT', 'EROFS']) expect(isLocalIoError(errno(c))).toBe(true);
    for (const c of ['ECONNRESET', 'ECONNREFUSED', 'ETIMEDOUT', 'EPIPE']) expect(isLocalIoError(errno(c))).toBe(false);
    expect(isLocalIoError(new Error('crc mismatch'))).toBe(false);
  });

  it('reports the path and the free space; 507 over HTTP, RESOURCE_EXHAUSTED over gRPC', async () => {
    const dir = await tempDir('local-io');
    const file = path.join(dir, 'content', 'x');
    const err = await localStorageError(Object.assign(new Error('no space left on device'), { code: 'ENOSPC' }), file);
    expect(err).toBeInstanceOf(LocalStorageError);
    expect(err.message).toContain(file);
    expect(err.message).toMatch(/ENOSPC/);
    expect(err.message).toMatch(/\d+(\.\d)? [KMGT]?i?B free/);
    expect(err.details?.freeBytes).toBeGreaterThan(0);
    expect(httpStatusOf(err)).toBe(507);
    expect(toGrpcError(err).code).toBe(grpc.status.RESOURCE_EXHAUSTED);
    expect(errorBody(err)).toMatchObject({ kind: 'LocalStorage', path: file });
    await fsp.rm(dir, { recursive: true, force: true });
  });

  it('ensureSpace refuses what does not fit, counting what other downloads reserved', async () => {
    const free = async () => 100 * MiB;
    await expect(ensureSpace('/data', 60 * MiB, 0, free)).resolves.toBeUndefined();
    await expect(ensureSpace('/data', 60 * MiB, 50 * MiB, free)).rejects.toThrow(/not enough disk space at \/data: the content needs 60.0 MiB, 100.0 MiB free of which 50.0 MiB are reserved/);
    await expect(ensureSpace('/data', 0, 200 * MiB, free)).resolves.toBeUndefined();
  });
});

describe('dfdaemon under faults', () => {
  let root: string;
  const content = randomBytes(9 * MiB + 123); // 3 pieces of 4 MiB (pieceLengthFor)
  let origin: TestOrigin;
  const daemons: DfdaemonHandle[] = [];
  const closers: Array<() => void> = [];

  beforeAll(async () => {
    root = await tempDir('dfdaemon-faults');
    origin = await startTestOrigin(content);
  });

  afterEach(async () => {
    jest.restoreAllMocks();
    origin.failOffsets = new Set();
    origin.holdOffsets = new Set();
    origin.releaseHeld();
    origin.claimLength = undefined;
    for (const d of daemons.splice(0)) await d.stop();
    for (const c of closers.splice(0)) c();
  });

  afterAll(async () => {
    await origin.close();
    await fsp.rm(root, { recursive: true, force: true });
  });

  async function daemon(name: string, extra: Parameters<typeof daemonConfig>[2] = {}): Promise<DfdaemonHandle> {
    const d = await startDfdaemon(daemonConfig(path.join(root, name), name, extra), { logger: quiet() });
    daemons.push(d);
    return d;
  }

  it('item 2: the output is a copy (or reflink), never the cache file; editing it leaves the cache intact', async () => {
    const d = await daemon('copy');
    const url = `${origin.base}/copy.bin`;
    const out = path.join(root, 'copy-out.bin');
    const { taskId } = await d.tasks.downloadToFile({ url, requestHeaders: {}, outputPath: out });
    const cacheFile = d.engine.entry(taskId)!.contentPath;
    expect(fs.statSync(out).ino).not.toBe(fs.statSync(cacheFile).ino);
    expect(fs.statSync(cacheFile).nlink).toBe(1);
    // The user edits their file: the cache and the next reader keep the right bytes.
    fs.writeFileSync(out, 'edited');
    const again = path.join(root, 'copy-again.bin');
    const second = await d.tasks.downloadToFile({ url, requestHeaders: {}, outputPath: again });
    expect(second.fromCache).toBe(true);
    expect(sha256(fs.readFileSync(again))).toBe(sha256(content));
    expect(sha256(fs.readFileSync(cacheFile))).toBe(sha256(content));
  });

  it('item 2: hardLink is an explicit opt-in (same inode as the cache)', async () => {
    const d = await daemon('hardlink');
    const out = path.join(root, 'hardlink-out.bin');
    const { taskId } = await d.tasks.downloadToFile({ url: `${origin.base}/hl.bin`, requestHeaders: {}, outputPath: out, hardLink: true });
    expect(fs.statSync(out).ino).toBe(fs.statSync(d.engine.entry(taskId)!.contentPath).ino);
  });

  it('item 3: ENOSPC while storing a piece fails at once with the path and free space, without retrying the origin', async () => {
    const d = await daemon('enospc');
    const real = Object.getOwnPropertyDescriptor(TaskEntry.prototype, 'handle')!.value as (this: TaskEntry) => Promise<fsp.FileHandle>;
    jest.spyOn(TaskEntry.prototype, 'handle').mockImplementation(async function (this: TaskEntry) {
      const fh = await real.call(this);
      const enospc = () => Promise.reject(Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC' }));
      // The disk is full: every write of the content fails, reads still work.
      return new Proxy(fh, {
        get: (target, key) => {
          if (key === 'write' || key === 'writev') return enospc;
          const value: unknown = Reflect.get(target, key);
          return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(target) : value;
        },
      });
    });
    const before = origin.gets.length;
    const err = await d.tasks.downloadToFile({ url: `${origin.base}/enospc.bin`, requestHeaders: {}, outputPath: path.join(root, 'enospc-out.bin') }).catch((e: Error) => e);
    expect(err).toBeInstanceOf(LocalStorageError);
    expect((err as Error).message).toMatch(/ENOSPC at .*enospc.*free\)/);
    // One GET per piece at most: a network error would have been retried 4 times each.
    expect(origin.gets.length - before).toBeLessThanOrEqual(3);
    expect(fs.existsSync(path.join(root, 'enospc-out.bin'))).toBe(false);
  });

  it('item 3: content larger than the free space is refused before any byte (proxy: 507 with a JSON message)', async () => {
    const d = await daemon('nospace', { proxy: { registryMirror: { url: origin.base } } });
    origin.claimLength = 2 ** 39; // 512 GiB: more than this disk has free
    const before = origin.gets.length;
    const hex = createHash('sha256').update('x').digest('hex');
    const answer = await new Promise<{ status: number; body: string }>((resolve, reject) => {
      http
        .get({ host: '127.0.0.1', port: d.proxyPort, path: `/v2/r/blobs/sha256:${hex}` }, (res) => {
          let body = '';
          res.on('data', (c: Buffer) => (body += c.toString()));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
        })
        .on('error', reject);
    });
    expect(answer.status).toBe(507);
    const json = JSON.parse(answer.body) as { message: string; kind: string };
    expect(json.kind).toBe('LocalStorage');
    expect(json.message).toMatch(/not enough disk space at .*: the content needs 512\.0 GiB, .* free/);
    expect(origin.gets.length).toBe(before);
  });

  it('item 3: a failed download keeps its verified pieces; the retry fetches only the missing ones', async () => {
    const d = await daemon('resume');
    const url = `${origin.base}/resume.bin`;
    const pieceLength = 4 * MiB;
    origin.failOffsets = new Set([2 * pieceLength]);
    await expect(d.tasks.downloadToFile({ url, requestHeaders: {}, outputPath: path.join(root, 'resume-1.bin') })).rejects.toThrow();
    const taskId = d.engine.taskIdFor({ url, requestHeaders: {} });
    expect(d.engine.stat(taskId)?.finishedPieces).toBe(2);
    origin.failOffsets = new Set();
    const before = origin.gets.length;
    await d.tasks.downloadToFile({ url, requestHeaders: {}, outputPath: path.join(root, 'resume-2.bin') });
    expect(origin.gets.slice(before)).toEqual([`bytes=${2 * pieceLength}-${content.length - 1}`]);
    expect(sha256(fs.readFileSync(path.join(root, 'resume-2.bin')))).toBe(sha256(content));
  });

  it('item 3: the scheduler stream dies with no parent left: back to source, not a failed pull', async () => {
    const sched = await fakeScheduler({
      announcePeer: (call, req) => {
        if (!req.registerPeerRequest) return;
        // A parent that is gone, then the scheduler itself goes away.
        call.write({
          normalTaskResponse: {
            task: { id: req.taskId, contentLength: content.length, pieceLength: 4 * MiB, pieceCount: 3 },
            candidateParents: [{ id: 'gone-parent', host: { id: 'gone', ip: '127.0.0.1', port: 1, downloadPort: 1 } }],
          },
        });
        setTimeout(() => fail(call, grpc.status.UNAVAILABLE, 'scheduler killed'), 50);
      },
    });
    closers.push(sched.close);
    const d = await daemon('stream-closed', { scheduler: { netAddrs: [{ addr: sched.addr }], scheduleTimeout: '20s' } });
    const out = path.join(root, 'stream-closed.bin');
    const started = Date.now();
    await d.tasks.downloadToFile({ url: `${origin.base}/stream-closed.bin`, requestHeaders: {}, outputPath: out });
    expect(sha256(fs.readFileSync(out))).toBe(sha256(content));
    expect(Date.now() - started).toBeLessThan(10_000); // not after scheduleTimeout
  });

  describe('item 3: a parent that stops delivering does not stall its child (the origin killed under a seed)', () => {
    const PIECE = 4 * MiB;
    /** The parent's AnnouncePeer-free download of `url`, and a child told by a scripted scheduler to use it. */
    const parentAndChild = async (name: string, scheduleTimeout: string) => {
      const parent = await daemon(`${name}-parent`);
      const requests: Array<{ at: number; req: AnnouncePeerRequest__Output }> = [];
      const url = `${origin.base}/${name}.bin`;
      let answerReschedule: (call: grpc.ServerDuplexStream<AnnouncePeerRequest__Output, object>) => void = () => undefined;
      const sched = await fakeScheduler({
        announcePeer: (call, req) => {
          requests.push({ at: Date.now(), req });
          if (req.registerPeerRequest) {
            call.write({
              normalTaskResponse: {
                task: { id: req.taskId, contentLength: content.length, pieceLength: PIECE, pieceCount: 3 },
                candidateParents: [{ id: 'the-parent', host: { id: parent.hostId, ip: '127.0.0.1', port: parent.grpcPort, downloadPort: parent.uploadPort } }],
              },
            });
          }
          if (req.reschedulePeerRequest) answerReschedule(call);
        },
      });
      closers.push(sched.close);
      const child = await daemon(`${name}-child`, { scheduler: { netAddrs: [{ addr: sched.addr }], scheduleTimeout } });
      const setRescheduleAnswer = (f: typeof answerReschedule) => (answerReschedule = f);
      return { parent, child, url, requests, setRescheduleAnswer, taskId: parent.engine.taskIdFor({ url, requestHeaders: {} }) };
    };
    const reschedules = (requests: Array<{ at: number; req: AnnouncePeerRequest__Output }>) => requests.filter((r) => r.req.reschedulePeerRequest);

    it('a parent whose own download fails ends its piece stream: the child asks the scheduler again at once', async () => {
      const t = await parentAndChild('parent-fails', '20s');
      // The parent gets pieces 0 and 1; its origin then goes silent for piece 2.
      origin.holdOffsets = new Set([2 * PIECE]);
      const parentPull = t.parent.tasks.downloadToFile({ url: t.url, requestHeaders: {}, outputPath: path.join(root, 'parent-fails-p.bin') }).catch((e: Error) => e);
      await until(() => (t.parent.engine.stat(t.taskId)?.finishedPieces ?? 0) === 2);
      t.setRescheduleAnswer((call) => call.write({ needBackToSourceResponse: { description: 'parent failed' } }));
      const out = path.join(root, 'parent-fails-c.bin');
      const started = Date.now();
      const childPull = t.child.tasks.downloadToFile({ url: t.url, requestHeaders: {}, outputPath: out });
      // The child holds what the parent has; then the parent's origin dies (500s, retries spent).
      await until(() => (t.child.engine.stat(t.taskId)?.finishedPieces ?? 0) === 2);
      expect(reschedules(t.requests)).toHaveLength(0);
      origin.failOffsets = new Set([2 * PIECE]);
      origin.holdOffsets = new Set();
      origin.releaseHeld();
      expect(await parentPull).toBeInstanceOf(Error);
      const parentFailedAt = Date.now();
      origin.failOffsets = new Set();
      await childPull;
      expect(sha256(fs.readFileSync(out))).toBe(sha256(content));
      // Asked again right after the parent gave up, not after the 20 s scheduleTimeout.
      const [again] = reschedules(t.requests);
      expect(again).toBeDefined();
      expect(again.at - parentFailedAt).toBeLessThan(2_000);
      expect(Date.now() - started).toBeLessThan(15_000);
    });

    it('SyncPieces of a partial task no download is filling ends after the pieces it holds', async () => {
      const d = await daemon('partial-sync');
      const url = `${origin.base}/partial-sync.bin`;
      origin.failOffsets = new Set([2 * PIECE]);
      await expect(d.tasks.downloadToFile({ url, requestHeaders: {}, outputPath: path.join(root, 'partial-sync.bin') })).rejects.toThrow();
      const taskId = d.engine.taskIdFor({ url, requestHeaders: {} });
      const client = new (protos().dfdaemon.dfdaemon.v2.DfdaemonUpload)(`127.0.0.1:${d.grpcPort}`, grpc.credentials.createInsecure(), GRPC_OPTIONS);
      const numbers = await new Promise<number[]>((resolve, reject) => {
        const got: number[] = [];
        const call = client.SyncPieces({ hostId: 'h', taskId, interestedPieceNumbers: [] });
        const timer = setTimeout(() => reject(new Error('SyncPieces stayed open')), 5_000);
        call.on('data', (p: { number: number }) => got.push(p.number));
        call.on('end', () => (clearTimeout(timer), resolve(got)));
        call.on('error', (e) => (clearTimeout(timer), reject(e)));
      });
      client.close();
      expect(numbers.sort()).toEqual([0, 1]);
    });

    it('parents that keep their stream open but offer nothing: the child asks again after scheduleTimeout', async () => {
      const t = await parentAndChild('parent-silent', '1500ms');
      // The parent's origin answers HEAD, then nothing: the parent holds the task but no piece.
      origin.holdOffsets = new Set([0, PIECE, 2 * PIECE]);
      void t.parent.tasks.downloadToFile({ url: t.url, requestHeaders: {}, outputPath: path.join(root, 'parent-silent-p.bin') }).catch(() => undefined);
      await until(() => t.parent.engine.stat(t.taskId) !== undefined);
      t.setRescheduleAnswer((call) => {
        origin.holdOffsets = new Set();
        call.write({ needBackToSourceResponse: { description: 'parent silent' } });
      });
      const out = path.join(root, 'parent-silent-c.bin');
      const started = Date.now();
      await t.child.tasks.downloadToFile({ url: t.url, requestHeaders: {}, outputPath: out });
      expect(sha256(fs.readFileSync(out))).toBe(sha256(content));
      const [again] = reschedules(t.requests);
      expect(again).toBeDefined();
      expect(again.at - started).toBeGreaterThanOrEqual(1_400);
      expect(again.at - started).toBeLessThan(6_000);
    });

    it('the proxy never hangs on a download that failed: a body waiting for a missing piece is cut at once', async () => {
      const d = await daemon('proxy-stall', { proxy: { registryMirror: { url: origin.base } } });
      const blobPath = `/v2/r/blobs/${sha256(content)}`;
      // Pieces 1 and 2 land; piece 0 (the first the reader needs) hangs at the origin, then fails.
      origin.holdOffsets = new Set([0]);
      const answer = new Promise<{ status: number; bytes: number; ended: string; at: number }>((resolve) => {
        const req = http.get({ host: '127.0.0.1', port: d.proxyPort, path: blobPath }, (res) => {
          let bytes = 0;
          res.on('data', (c: Buffer) => (bytes += c.length));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, bytes, ended: 'end', at: Date.now() }));
          res.on('aborted', () => resolve({ status: res.statusCode ?? 0, bytes, ended: 'aborted', at: Date.now() }));
          res.on('error', () => resolve({ status: res.statusCode ?? 0, bytes, ended: 'error', at: Date.now() }));
        });
        req.on('error', (e) => resolve({ status: 0, bytes: 0, ended: e.message, at: Date.now() }));
      });
      const taskId = d.engine.taskIdFor({ url: `${origin.base}${blobPath}`, requestHeaders: {} });
      await until(() => (d.engine.stat(taskId)?.finishedPieces ?? 0) === 2);
      origin.failOffsets = new Set([0]);
      origin.holdOffsets = new Set();
      origin.releaseHeld();
      await until(() => d.engine.stat(taskId) !== undefined && !d.engine.stat(taskId)!.finished && origin.gets.filter((g) => g.startsWith('bytes=0-')).length >= 4, 15_000);
      const failedAt = Date.now();
      const r = await Promise.race([answer, new Promise<'hung'>((res) => setTimeout(() => res('hung'), 10_000).unref())]);
      expect(r).not.toBe('hung');
      if (r === 'hung') return;
      // An error status, the connection closed before a response, or the 200 body cut short:
      // never a complete body, and never silence.
      if (r.status === 200) expect(r.ended).not.toBe('end');
      else if (r.status === 0) expect(r.ended).toMatch(/socket hang up|ECONNRESET/);
      else expect(r.status).toBeGreaterThanOrEqual(500);
      expect(r.bytes).toBeLessThan(content.length);
      expect(r.at - failedAt).toBeLessThan(3_000);
    });

    it('a reschedule the scheduler never answers: the origin after scheduleTimeout, keeping the pieces', async () => {
      const t = await parentAndChild('no-answer', '1500ms');
      origin.failOffsets = new Set([2 * PIECE]);
      await expect(t.parent.tasks.downloadToFile({ url: t.url, requestHeaders: {}, outputPath: path.join(root, 'no-answer-p.bin') })).rejects.toThrow();
      origin.failOffsets = new Set();
      const before = origin.gets.length;
      const out = path.join(root, 'no-answer-c.bin');
      await t.child.tasks.downloadToFile({ url: t.url, requestHeaders: {}, outputPath: out });
      expect(sha256(fs.readFileSync(out))).toBe(sha256(content));
      expect(reschedules(t.requests)).toHaveLength(1);
      // Pieces 0 and 1 came from the parent: the origin served only the last one.
      expect(origin.gets.slice(before)).toEqual([`bytes=${2 * PIECE}-${content.length - 1}`]);
    });
  });

  it('item 4: a scheduler that answers NOT_FOUND (restarted) gets an AnnounceHost at once, then the download registers', async () => {
    let known = false;
    const registers: number[] = [];
    const sched = await fakeScheduler({
      announceHost: () => {
        known = true;
        return null;
      },
      announcePeer: (call, req) => {
        if (!req.registerPeerRequest) return;
        registers.push(Date.now());
        if (!known) return fail(call, grpc.status.NOT_FOUND, `host ${req.hostId} is not announced`);
        call.write({ needBackToSourceResponse: { description: 'go' } });
      },
    });
    closers.push(sched.close);
    const d = await daemon('reannounce', { scheduler: { netAddrs: [{ addr: sched.addr }], announceInterval: '1h' } });
    await new Promise((r) => setTimeout(r, 200));
    known = false; // the scheduler restarted and forgot this host
    const announcesBefore = sched.announceHosts.length;
    const out = path.join(root, 'reannounce.bin');
    await d.tasks.downloadToFile({ url: `${origin.base}/reannounce.bin`, requestHeaders: {}, outputPath: out });
    expect(registers).toHaveLength(2);
    expect(sched.announceHosts.length).toBeGreaterThan(announcesBefore);
    expect(registers[1] - registers[0]).toBeLessThan(2000);
    expect(sha256(fs.readFileSync(out))).toBe(sha256(content));
  });

  it('item 4: a broken AnnouncePeer stream re-announces the host at once, retrying until the scheduler answers', async () => {
    let failHosts = 0;
    const sched = await fakeScheduler({
      announceHost: () => (failHosts-- > 0 ? Object.assign(new Error('starting'), { code: grpc.status.UNAVAILABLE, details: 'starting', metadata: new grpc.Metadata() }) : null),
      announcePeer: (call, req) => {
        if (req.registerPeerRequest) fail(call, grpc.status.UNAVAILABLE, 'stream broke');
      },
    });
    closers.push(sched.close);
    const d = await daemon('broken-stream', { scheduler: { netAddrs: [{ addr: sched.addr }], announceInterval: '1h' } });
    await new Promise((r) => setTimeout(r, 200));
    const before = sched.announceHosts.length;
    failHosts = 2;
    await d.tasks.downloadToFile({ url: `${origin.base}/broken.bin`, requestHeaders: {}, outputPath: path.join(root, 'broken.bin') });
    // Two refused announces, then one that lands: within about a second, not announceInterval (1 h).
    const deadline = Date.now() + 5000;
    while (sched.announceHosts.length < before + 3 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    expect(sched.announceHosts.length).toBeGreaterThanOrEqual(before + 3);
    expect(sched.announceHosts[before + 2] - sched.announceHosts[before]).toBeLessThan(3000);
  });

  it('item 4: a seed peer triggered for a task it serves from cache registers it with the scheduler', async () => {
    const streams: AnnouncePeerRequest__Output[][] = [];
    const sched = await fakeScheduler({
      announcePeer: (call, req) => {
        if (req.registerPeerRequest) {
          streams.push([]);
          call.write({ needBackToSourceResponse: { description: 'seed' } });
        }
        streams[streams.length - 1].push(req);
      },
    });
    closers.push(sched.close);
    const seed = await daemon('seed', { scheduler: { netAddrs: [{ addr: sched.addr }], manager: { seedPeer: { enable: true } } } });
    const url = `${origin.base}/seed.bin`;
    await seed.tasks.downloadToFile({ url, requestHeaders: {}, outputPath: path.join(root, 'seed-out.bin') });
    expect(streams).toHaveLength(1);
    // The scheduler's trigger: DfdaemonUpload.DownloadTask without an output path.
    const client = new (protos().dfdaemon.dfdaemon.v2.DfdaemonUpload)(`127.0.0.1:${seed.grpcPort}`, grpc.credentials.createInsecure(), GRPC_OPTIONS);
    await new Promise<void>((resolve, reject) => {
      const call = client.DownloadTask({ download: { url, requestHeader: {}, type: 'STANDARD', priority: 'LEVEL0', needBackToSource: true } });
      call.on('data', () => undefined);
      call.on('end', resolve);
      call.on('error', reject);
    });
    client.close();
    expect(streams).toHaveLength(2);
    const kinds = streams[1].map((r) => r.request);
    expect(kinds).toEqual(['registerPeerRequest', 'downloadPeerBackToSourceStartedRequest', 'downloadPeerBackToSourceFinishedRequest']);
    expect(Number(streams[1][2].downloadPeerBackToSourceFinishedRequest?.contentLength)).toBe(content.length);
  });

  it('issue 21: back-to-source start is reported before the entry exists; a child syncing pieces meanwhile waits for it', async () => {
    let taskId = '';
    let entryAtStart: unknown = 'not reported';
    let synced: Promise<number[]> | undefined;
    const daemonRef: { d?: DfdaemonHandle } = {};
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const sched = await fakeScheduler({
      announcePeer: (call, req) => {
        if (req.registerPeerRequest) call.write({ needBackToSourceResponse: { description: 'go' } });
        const d = daemonRef.d;
        if (!req.downloadPeerBackToSourceStartedRequest || !d) return;
        // A child told about this parent at once: its SyncPieces arrives before the entry is made.
        entryAtStart = d.engine.entry(taskId);
        const client = new (protos().dfdaemon.dfdaemon.v2.DfdaemonUpload)(`127.0.0.1:${d.grpcPort}`, grpc.credentials.createInsecure(), GRPC_OPTIONS);
        synced = new Promise<number[]>((resolve, reject) => {
          const got: number[] = [];
          const sync = client.SyncPieces({ hostId: 'child', taskId, interestedPieceNumbers: [] });
          sync.on('data', (p: { number: number }) => got.push(p.number));
          sync.on('end', () => resolve(got));
          sync.on('error', reject);
        }).finally(() => client.close());
        setTimeout(release, 100);
      },
    });
    closers.push(sched.close);
    const d = await daemon('early-start', { scheduler: { netAddrs: [{ addr: sched.addr }] } });
    daemonRef.d = d;
    const url = `${origin.base}/early-start.bin`;
    taskId = d.engine.taskIdFor({ url, requestHeaders: {} });
    // The entry's creation waits until the child has asked (or 3 s, so a regression fails instead of hanging).
    const reserve = d.engine.reserveSpace.bind(d.engine);
    jest.spyOn(d.engine, 'reserveSpace').mockImplementation(async (id, bytes) => {
      await Promise.race([gate, new Promise((r) => setTimeout(r, 3_000))]);
      return reserve(id, bytes);
    });
    const out = path.join(root, 'early-start.bin');
    await d.tasks.downloadToFile({ url, requestHeaders: {}, outputPath: out });
    expect(sha256(fs.readFileSync(out))).toBe(sha256(content));
    expect(entryAtStart).toBeUndefined();
    expect(synced).toBeDefined();
    expect((await synced!).sort()).toEqual([0, 1, 2]);
  });
});
