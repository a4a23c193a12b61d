/**
 * A one-piece task's piece straight from a parent's upload server (issue 21): the parent waits
 * (bounded) for a piece it is still fetching instead of answering 416, and sends the piece's crc32
 * with it; the child checks the bytes against that digest, and refuses an answer without one
 * (an older parent) before writing anything.
 */
import { randomBytes } from 'node:crypto';
import * as fsp from 'node:fs/promises';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { silentLogger } from '../../../services/common';
import { closeIdlePieceConnections, fetchPieceRaw, PieceDigestError, PieceDigestUnknownError, PieceHttpError } from '../../../services/dfdaemon/piece-transfer';
import { crc32Of, TaskStore, type TaskEntry } from '../../../services/dfdaemon/storage';
import { PIECE_DIGEST_HEADER, PIECE_WAIT_HEADER, UploadServer } from '../../../services/dfdaemon/upload-server';

const SIZE = 64 * 1024;

function get(port: number, id: string, headers: http.OutgoingHttpHeaders): Promise<{ status: number; body: Buffer; headers: http.IncomingHttpHeaders }> {
  return new Promise((resolve, reject) => {
    http
      .get({ host: '127.0.0.1', port, path: `/download/${id.slice(0, 3)}/${id}?peerId=c`, headers: { range: `bytes=0-${SIZE - 1}`, ...headers }, agent: false }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks), headers: res.headers }));
      })
      .on('error', reject);
  });
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('one-piece task: the piece straight from the parent', () => {
  let dir: string;
  let store: TaskStore;
  let server: UploadServer;
  let port: number;
  const pending = new Map<string, Promise<TaskEntry | undefined>>();
  let seq = 0;
  const data = randomBytes(SIZE);
  const newId = () => (seq++).toString(16).padStart(4, '0').repeat(16);

  /** A task being filled here (as a download would), its piece not stored yet. */
  async function filling(id: string): Promise<TaskEntry> {
    const e = await store.create({ taskId: id, url: `http://o/${id}`, contentLength: SIZE, pieceLength: 4 * 1024 * 1024, responseHeaders: {} });
    e.startFilling();
    return e;
  }
  async function storePiece(e: TaskEntry): Promise<void> {
    await (await e.handle()).write(data, 0, SIZE, 0);
    store.markPiece(e, 0, crc32Of(data));
  }

  beforeAll(async () => {
    dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'dfdaemon-one-piece-'));
    store = await TaskStore.open({ dataDir: dir, keepStorage: true, taskExpireMs: 1e9, diskGCThreshold: 0, highPercent: 90, lowPercent: 70, logger: silentLogger() });
    server = new UploadServer({ store, concurrentLimit: 8, logger: silentLogger(), pendingEntry: (id) => pending.get(id) });
    await new Promise<void>((r) => server.server.listen(0, '127.0.0.1', r));
    port = (server.server.address() as AddressInfo).port;
  });
  afterAll(async () => {
    closeIdlePieceConnections();
    server.server.closeAllConnections();
    await new Promise((r) => server.server.close(r));
    await store.close();
    await fsp.rm(dir, { recursive: true, force: true });
  });

  it('without the wait header a piece not stored yet is a 416 at once; with it the parent answers once the piece lands, with its digest', async () => {
    const id = newId();
    const e = await filling(id);
    expect((await get(port, id, {})).status).toBe(416);
    const answer = get(port, id, { [PIECE_WAIT_HEADER]: '5000' });
    await sleep(100);
    await storePiece(e);
    const res = await answer;
    expect(res.status).toBe(206);
    expect(Buffer.compare(res.body, data)).toBe(0);
    expect(res.headers[PIECE_DIGEST_HEADER]).toBe(crc32Of(data));
    // The wait left no listener behind.
    expect(e.listenerCount('piece')).toBe(0);
  });

  it('the wait is bounded: by the time asked, and by the download here stopping', async () => {
    const id = newId();
    const e = await filling(id);
    const t0 = performance.now();
    expect((await get(port, id, { [PIECE_WAIT_HEADER]: '200' })).status).toBe(416);
    expect(performance.now() - t0).toBeGreaterThanOrEqual(150);
    expect(e.listenerCount('piece')).toBe(0);
    const answer = get(port, id, { [PIECE_WAIT_HEADER]: '30000' });
    await sleep(100);
    const t1 = performance.now();
    e.stopFilling(new Error('origin died'));
    expect((await answer).status).toBe(416);
    expect(performance.now() - t1).toBeLessThan(5000);
    // A task nobody fills: no wait at all.
    const t2 = performance.now();
    expect((await get(port, id, { [PIECE_WAIT_HEADER]: '30000' })).status).toBe(416);
    expect(performance.now() - t2).toBeLessThan(5000);
  });

  it('a download here that has no entry yet is waited for (404 without the header, or when it fails)', async () => {
    const id = newId();
    let resolve!: (e: TaskEntry | undefined) => void;
    pending.set(id, new Promise((r) => (resolve = r)));
    expect((await get(port, id, {})).status).toBe(404);
    const answer = get(port, id, { [PIECE_WAIT_HEADER]: '5000' });
    await sleep(100);
    const e = await filling(id);
    resolve(e);
    await sleep(50);
    await storePiece(e);
    const res = await answer;
    expect(res.status).toBe(206);
    expect(res.headers[PIECE_DIGEST_HEADER]).toBe(crc32Of(data));
    pending.delete(id);

    const failing = newId();
    pending.set(failing, Promise.resolve(undefined));
    expect((await get(port, failing, { [PIECE_WAIT_HEADER]: '5000' })).status).toBe(404);
    pending.delete(failing);
  });

  it('the child takes the digest from the answer and checks the bytes against it', async () => {
    const id = newId();
    const e = await filling(id);
    await storePiece(e);
    const out = await fsp.open(path.join(dir, 'out-ok'), 'w+');
    try {
      const digest = await fetchPieceRaw({ ip: '127.0.0.1', port, taskId: id, parentPeerId: 'p', offset: 0, length: SIZE, timeoutMs: 5000, waitMs: 1000 }, out);
      expect(digest).toBe(crc32Of(data));
      const back = Buffer.alloc(SIZE);
      await out.read(back, 0, SIZE, 0);
      expect(Buffer.compare(back, data)).toBe(0);
    } finally {
      await out.close();
    }
    // A piece still coming: the child's request waits for it.
    const later = newId();
    const l = await filling(later);
    const out2 = await fsp.open(path.join(dir, 'out-later'), 'w+');
    try {
      const fetched = fetchPieceRaw({ ip: '127.0.0.1', port, taskId: later, parentPeerId: 'p', offset: 0, length: SIZE, timeoutMs: 5000, waitMs: 2000 }, out2);
      await sleep(100);
      await storePiece(l);
      expect(await fetched).toBe(crc32Of(data));
    } finally {
      await out2.close();
    }
  });

  describe('a parent answering otherwise', () => {
    let fake: http.Server;
    let fakePort: number;
    let digestHeader: string | undefined;
    beforeAll(async () => {
      fake = http.createServer((req, res) => {
        const headers: http.OutgoingHttpHeaders = { 'content-length': SIZE, 'content-range': `bytes 0-${SIZE - 1}/${SIZE}` };
        if (digestHeader !== undefined) headers[PIECE_DIGEST_HEADER] = digestHeader;
        res.writeHead(req.headers[PIECE_WAIT_HEADER] === undefined ? 400 : 206, headers).end(data);
      });
      await new Promise<void>((r) => fake.listen(0, '127.0.0.1', r));
      fakePort = (fake.address() as AddressInfo).port;
    });
    afterAll(async () => {
      closeIdlePieceConnections();
      fake.closeAllConnections();
      await new Promise((r) => fake.close(r));
    });

    async function fetchInto(name: string): Promise<{ result: Promise<string>; file: () => Promise<Buffer>; close: () => Promise<void> }> {
      const out = await fsp.open(path.join(dir, name), 'w+');
      const result = fetchPieceRaw({ ip: '127.0.0.1', port: fakePort, taskId: newId(), parentPeerId: 'p', offset: 0, length: SIZE, timeoutMs: 5000, waitMs: 1000 }, out);
      return { result, file: () => fsp.readFile(path.join(dir, name)), close: () => out.close() };
    }

    it('a digest that does not match the bytes is a PieceDigestError', async () => {
      digestHeader = 'crc32:1';
      const f = await fetchInto('out-wrong');
      await expect(f.result).rejects.toBeInstanceOf(PieceDigestError);
      await f.close();
    });

    it('no digest (an older parent): PieceDigestUnknownError, nothing written', async () => {
      digestHeader = undefined;
      const f = await fetchInto('out-none');
      await expect(f.result).rejects.toBeInstanceOf(PieceDigestUnknownError);
      expect((await f.file()).length).toBe(0);
      await f.close();
    });

    it('a malformed digest counts as none', async () => {
      digestHeader = 'sha256:abc';
      const f = await fetchInto('out-bad');
      await expect(f.result).rejects.toBeInstanceOf(PieceDigestUnknownError);
      await f.close();
    });

    it('without waitMs nothing changes: no wait header is sent (this fake refuses such requests)', async () => {
      digestHeader = crc32Of(data);
      const out = await fsp.open(path.join(dir, 'out-plain'), 'w+');
      await expect(fetchPieceRaw({ ip: '127.0.0.1', port: fakePort, taskId: newId(), parentPeerId: 'p', offset: 0, length: SIZE, timeoutMs: 5000 }, out)).rejects.toBeInstanceOf(PieceHttpError);
      await out.close();
    });
  });
});
