import { randomBytes } from 'node:crypto';
import * as fsp from 'node:fs/promises';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { silentLogger } from '../../../services/common';
import { closeIdlePieceConnections, fetchPieceFromPeer, fetchPieceRaw, OriginClient, PieceDigestError, PieceHttpError } from '../../../services/dfdaemon/piece-transfer';
import { Limiters, TokenBucket } from '../../../services/dfdaemon/rate-limiter';
import { crc32Of, TaskStore } from '../../../services/dfdaemon/storage';
import { OriginResponseError } from '../../../services/dfdaemon/task-api';
import { parseSingleRange, UploadServer } from '../../../services/dfdaemon/upload-server';

const MiB = 1024 * 1024;
const ID = 'ab'.repeat(32);

function get(port: number, urlPath: string, headers: http.OutgoingHttpHeaders = {}): Promise<{ status: number; body: Buffer; headers: http.IncomingHttpHeaders }> {
  return new Promise((resolve, reject) => {
    http
      .get({ host: '127.0.0.1', port, path: urlPath, headers, agent: false }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks), headers: res.headers }));
      })
      .on('error', reject);
  });
}

describe('upload server and piece transfer', () => {
  let dir: string;
  let store: TaskStore;
  let server: UploadServer;
  let port: number;
  const data = randomBytes(10 * MiB);

  beforeAll(async () => {
    dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'dfdaemon-upload-'));
    store = await TaskStore.open({ dataDir: dir, keepStorage: true, taskExpireMs: 1e9, diskGCThreshold: 0, highPercent: 90, lowPercent: 70, logger: silentLogger() });
    const e = await store.create({ taskId: ID, url: 'http://o/x', contentLength: data.length, pieceLength: 4 * MiB, responseHeaders: {} });
    const fh = await e.handle();
    // pieces 0 and 2 stored; piece 1 not yet
    await fh.write(data, 0, 4 * MiB, 0);
    store.markPiece(e, 0, crc32Of(data.subarray(0, 4 * MiB)));
    await fh.write(data, 8 * MiB, 2 * MiB, 8 * MiB);
    store.markPiece(e, 2, crc32Of(data.subarray(8 * MiB)));
    server = new UploadServer({ store, concurrentLimit: 2, logger: silentLogger() });
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

  it('parses single ranges', () => {
    expect(parseSingleRange('bytes=0-9', 100)).toEqual({ start: 0, length: 10 });
    expect(parseSingleRange('bytes=90-', 100)).toEqual({ start: 90, length: 10 });
    expect(parseSingleRange('bytes=-5', 100)).toEqual({ start: 95, length: 5 });
    expect(parseSingleRange('bytes=100-200', 100)).toBeUndefined();
    expect(parseSingleRange('bytes=0-1,5-6', 100)).toBeUndefined();
  });

  it('206 with the exact bytes for a stored piece', async () => {
    const res = await get(port, `/download/${ID.slice(0, 3)}/${ID}?peerId=p1`, { range: `bytes=${8 * MiB}-${10 * MiB - 1}` });
    expect(res.status).toBe(206);
    expect(res.headers['content-range']).toBe(`bytes ${8 * MiB}-${10 * MiB - 1}/${10 * MiB}`);
    expect(Buffer.compare(res.body, data.subarray(8 * MiB))).toBe(0);
  });

  it('416 for a piece not held yet, 404 for an unknown task or prefix mismatch', async () => {
    expect((await get(port, `/download/${ID.slice(0, 3)}/${ID}?peerId=p1`, { range: `bytes=${4 * MiB}-${5 * MiB}` })).status).toBe(416);
    expect((await get(port, `/download/${ID.slice(0, 3)}/${ID}`, { range: `bytes=${3 * MiB}-${5 * MiB}` })).status).toBe(416);
    const unknown = await get(port, `/download/fff/${'f'.repeat(64)}`, { range: 'bytes=0-1' });
    expect(unknown.status).toBe(404);
    expect((JSON.parse(unknown.body.toString()) as { message: string }).message).toMatch(/not found/);
    expect((await get(port, `/download/xyz/${ID}`, { range: 'bytes=0-1' })).status).toBe(404);
  });

  it('429 over the concurrent upload limit', async () => {
    // A throttled server (1 MiB/s) so two 4 MiB answers stay in flight whatever the socket
    // buffers hold; concurrentLimit 2: the third request is refused.
    const slow = new UploadServer({ store, concurrentLimit: 2, rateLimit: new TokenBucket(MiB, 64 * 1024), logger: silentLogger() });
    await new Promise<void>((r) => slow.server.listen(0, '127.0.0.1', r));
    const slowPort = (slow.server.address() as AddressInfo).port;
    const holders: http.ClientRequest[] = [];
    try {
      const opened = await Promise.all(
        [0, 1].map(
          () =>
            new Promise<http.IncomingMessage>((resolve) => {
              const r = http.get({ host: '127.0.0.1', port: slowPort, path: `/download/${ID.slice(0, 3)}/${ID}`, headers: { range: `bytes=0-${4 * MiB - 1}` }, agent: false }, resolve);
              holders.push(r);
            }),
        ),
      );
      expect(slow.stats().active).toBe(2);
      const refused = await get(slowPort, `/download/${ID.slice(0, 3)}/${ID}`, { range: 'bytes=0-1' });
      expect(refused.status).toBe(429);
      expect((JSON.parse(refused.body.toString()) as { message: string }).message).toMatch(/concurrent|limit/i);
      for (const res of opened) res.destroy();
      for (const r of holders) r.destroy();
      await new Promise((r) => setTimeout(r, 100));
      expect(slow.stats().active).toBe(0);
    } finally {
      slow.server.closeAllConnections();
      await new Promise((r) => slow.server.close(r));
    }
  });

  it.each([
    ['http client', fetchPieceFromPeer],
    ['raw socket', fetchPieceRaw],
  ])('a piece is verified against its digest (%s): good bytes pass, corrupt bytes are rejected', async (_name, fetchPiece) => {
    const target = await fsp.open(path.join(dir, `target-${_name}`), 'w+');
    await target.truncate(10 * MiB);
    const req = { ip: '127.0.0.1', port, taskId: ID, parentPeerId: 'p', offset: 0, length: 4 * MiB, timeoutMs: 5000 };
    const good = await fetchPiece({ ...req, expectedDigest: crc32Of(data.subarray(0, 4 * MiB)) }, target);
    expect(good).toBe(crc32Of(data.subarray(0, 4 * MiB)));
    const written = Buffer.alloc(4 * MiB);
    await target.read(written, 0, 4 * MiB, 0);
    expect(Buffer.compare(written, data.subarray(0, 4 * MiB))).toBe(0);

    // Corrupt the parent's stored bytes (bit rot): the child detects it.
    const parentFile = await fsp.open(store.get(ID)!.contentPath, 'r+');
    await parentFile.write(Buffer.from([data[100] ^ 0xff]), 0, 1, 100);
    await parentFile.close();
    await expect(fetchPiece({ ...req, expectedDigest: crc32Of(data.subarray(0, 4 * MiB)) }, target)).rejects.toBeInstanceOf(PieceDigestError);
    await expect(fetchPiece({ ...req, offset: 4 * MiB }, target)).rejects.toBeInstanceOf(PieceHttpError);
    const restore = await fsp.open(store.get(ID)!.contentPath, 'r+');
    await restore.write(data, 100, 1, 100);
    await restore.close();
    await target.close();
  });

  it('the raw piece fetch keeps one connection per parent alive and replaces one the parent closed', async () => {
    closeIdlePieceConnections();
    let connections = 0;
    const count = () => connections++;
    server.server.on('connection', count);
    const target = await fsp.open(path.join(dir, 'target-keepalive'), 'w+');
    try {
      await target.truncate(10 * MiB);
      const req = { ip: '127.0.0.1', port, taskId: ID, parentPeerId: 'p', offset: 0, length: 4 * MiB, timeoutMs: 5000, expectedDigest: crc32Of(data.subarray(0, 4 * MiB)) };
      for (let i = 0; i < 4; i++) await fetchPieceRaw(i % 2 ? { ...req, offset: 8 * MiB, length: 2 * MiB, expectedDigest: crc32Of(data.subarray(8 * MiB)) } : req, target);
      expect(connections).toBe(1);

      // The parent drops its idle connections (restart, keep-alive timeout): the next piece
      // goes over a new connection instead of failing.
      server.server.closeIdleConnections();
      await new Promise((r) => setTimeout(r, 50));
      await expect(fetchPieceRaw(req, target)).resolves.toBe(req.expectedDigest);
      expect(connections).toBe(2);

      // A failed piece (404: piece 1 is not stored) does not leave its connection in the pool.
      await expect(fetchPieceRaw({ ...req, offset: 4 * MiB }, target)).rejects.toBeInstanceOf(PieceHttpError);
      await fetchPieceRaw(req, target);
      await fetchPieceRaw(req, target);
      expect(connections).toBe(3);
      const written = Buffer.alloc(4 * MiB);
      await target.read(written, 0, 4 * MiB, 0);
      expect(Buffer.compare(written, data.subarray(0, 4 * MiB))).toBe(0);
    } finally {
      server.server.off('connection', count);
      await target.close();
      closeIdlePieceConnections();
    }
  });

  it('the raw piece fetch honours a download rate limit', async () => {
    const target = await fsp.open(path.join(dir, 'target-throttled'), 'w+');
    await target.truncate(10 * MiB);
    const limiters = new Limiters([new TokenBucket(20 * MiB, MiB)]);
    const t0 = Date.now();
    await fetchPieceRaw({ ip: '127.0.0.1', port, taskId: ID, parentPeerId: 'p', offset: 8 * MiB, length: 2 * MiB, timeoutMs: 5000, limiters }, target);
    // 2 MiB at 20 MiB/s with a 1 MiB burst: at least ~50 ms.
    expect(Date.now() - t0).toBeGreaterThanOrEqual(40);
    await target.close();
  });

  it('origin client: HEAD for the length, ranged GETs, origin ignoring Range, refusals carried back', async () => {
    const content = randomBytes(3 * MiB + 17);
    let heads = 0;
    const origin = http.createServer((req, res) => {
      if (req.headers.authorization !== 'Bearer t') {
        res.writeHead(401, { 'www-authenticate': 'Bearer realm="x"' }).end('denied');
        return;
      }
      if (req.url === '/norange') {
        res.writeHead(200, { 'content-length': content.length }).end(content);
        return;
      }
      if (req.method === 'HEAD') {
        heads++;
        res.writeHead(200, { 'content-length': content.length, 'content-type': 'application/x-test' }).end();
        return;
      }
      const m = /bytes=(\d+)-(\d+)/.exec(req.headers.range ?? '');
      const [a, b] = m ? [Number(m[1]), Number(m[2])] : [0, content.length - 1];
      res.writeHead(206, { 'content-range': `bytes ${a}-${b}/${content.length}`, 'content-length': b - a + 1 }).end(content.subarray(a, b + 1));
    });
    await new Promise<void>((r) => origin.listen(0, '127.0.0.1', r));
    const base = `http://127.0.0.1:${(origin.address() as AddressInfo).port}`;
    const target = await fsp.open(path.join(dir, 'origin-target'), 'w+');
    try {
      const client = new OriginClient({ Authorization: 'Bearer t' });
      const probe = await client.probe(`${base}/blob`, 5000);
      expect(probe.contentLength).toBe(content.length);
      expect(probe.responseHeaders['content-type']).toBe('application/x-test');
      expect(heads).toBe(1);
      const d1 = await client.fetchPiece(`${base}/blob`, target, MiB, 2 * MiB + 17, 5000);
      expect(d1).toBe(crc32Of(content.subarray(MiB)));
      const d2 = await client.fetchPiece(`${base}/norange`, target, 2 * MiB, MiB, 5000);
      expect(d2).toBe(crc32Of(content.subarray(2 * MiB, 3 * MiB)));

      const refused = await new OriginClient({}).probe(`${base}/blob`, 5000).catch((e: unknown) => e);
      expect(refused).toBeInstanceOf(OriginResponseError);
      expect((refused as OriginResponseError).status).toBe(401);
      expect((refused as OriginResponseError).headers['www-authenticate']).toBe('Bearer realm="x"');
      expect((refused as OriginResponseError).body.toString()).toBe('denied');
    } finally {
      await target.close();
      origin.closeAllConnections();
      await new Promise((r) => origin.close(r));
    }
  });

  it('credentials go to the task URL\'s host only: not to the storage a redirect led to, even when a piece GET starts there', async () => {
    const content = randomBytes(2 * MiB);
    const seen: Array<{ server: string; authorization?: string }> = [];
    const storage = http.createServer((req, res) => {
      seen.push({ server: 'storage', authorization: req.headers.authorization });
      const m = /bytes=(\d+)-(\d+)/.exec(req.headers.range ?? '');
      const [a, b] = m ? [Number(m[1]), Number(m[2])] : [0, content.length - 1];
      res.writeHead(m ? 206 : 200, { 'content-range': `bytes ${a}-${b}/${content.length}`, 'content-length': b - a + 1 }).end(content.subarray(a, b + 1));
    });
    await new Promise<void>((r) => storage.listen(0, '127.0.0.1', r));
    const storageBase = `http://127.0.0.1:${(storage.address() as AddressInfo).port}`;
    const registry = http.createServer((req, res) => {
      seen.push({ server: 'registry', authorization: req.headers.authorization });
      res.writeHead(307, { location: `${storageBase}/signed?sig=1` }).end();
    });
    await new Promise<void>((r) => registry.listen(0, '127.0.0.1', r));
    const taskUrl = `http://127.0.0.1:${(registry.address() as AddressInfo).port}/v2/r/blobs/x`;
    const target = await fsp.open(path.join(dir, 'redirect-target'), 'w+');
    try {
      const client = new OriginClient({ Authorization: 'Bearer t' }, taskUrl);
      const probe = await client.probe(taskUrl, 5000);
      expect(probe.finalUrl).toBe(`${storageBase}/signed?sig=1`);
      // Piece GETs start from the URL the redirect led to (as the task download does).
      const d = await client.fetchPiece(probe.finalUrl, target, 0, MiB, 5000);
      expect(d).toBe(crc32Of(content.subarray(0, MiB)));
      expect(seen.filter((s) => s.server === 'registry').every((s) => s.authorization === 'Bearer t')).toBe(true);
      expect(seen.filter((s) => s.server === 'storage').length).toBeGreaterThanOrEqual(2);
      expect(seen.filter((s) => s.server === 'storage').map((s) => s.authorization)).toEqual(seen.filter((s) => s.server === 'storage').map(() => undefined));
    } finally {
      await target.close();
      for (const s of [storage, registry]) {
        s.closeAllConnections();
        await new Promise((r) => s.close(r));
      }
    }
  });
});

describe('TokenBucket', () => {
  it('lets a burst through, then paces to the rate', () => {
    let now = 0;
    const b = new TokenBucket(1000, 4000, () => now);
    expect(b.consume(4000)).toBe(0); // burst
    expect(b.consume(1000)).toBeCloseTo(1000); // 1000 bytes of debt at 1000 B/s = 1 s
    now += 1000;
    expect(b.consume(0)).toBe(0);
    now += 10_000; // refill caps at the burst
    expect(b.consume(4000)).toBe(0);
    expect(b.consume(1)).toBeGreaterThan(0);
  });

  it('take() really waits', async () => {
    const b = new TokenBucket(10_000, 1000);
    await b.take(1000);
    const t0 = Date.now();
    await b.take(1000); // 1000 bytes at 10 kB/s ≈ 100 ms
    expect(Date.now() - t0).toBeGreaterThanOrEqual(80);
  });
});
