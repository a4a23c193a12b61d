/**
 * fetchFromOrigin against small real HTTP origins of each kind: Range honoured, Range ignored
 * (announced or not), a stream cut mid-way, a stalled stream. Counts the origin's GETs and
 * checks every stored piece's bytes and crc32.
 */
import { randomBytes } from 'node:crypto';
import * as fsp from 'node:fs/promises';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { silentLogger } from '../../../services/common';
import { fetchFromOrigin, type OriginTask } from '../../../services/dfdaemon/origin-fetch';
import { closeIdlePieceConnections, fetchOriginRangeRaw, OriginClient, UnusableAnswerError } from '../../../services/dfdaemon/piece-transfer';
import { crc32Of } from '../../../services/dfdaemon/storage';

const KiB = 1024;
const PIECE = 64 * KiB;

interface Behaviour {
  /** Answer a Range with 206 (else always 200 with everything). */
  ranges: boolean;
  /** Send `Accept-Ranges: bytes` on HEAD. */
  advertise: boolean;
  /** Cut the connection of the first GET after this many body bytes. */
  cutFirstAfter?: number;
  /** Stop sending (without closing) after this many bytes. */
  stallAfter?: number;
  /** From this GET on (1-based), ignore Range: 200 with everything. */
  ignoreRangeFrom?: number;
  /** Answer a GET without the HTTP client's keep-alive header (a raw GET) with a 401 challenge. */
  challengeRaw?: boolean;
}

async function origin(content: Buffer, b: Behaviour) {
  const gets: Array<string | undefined> = [];
  /** Per GET: its Connection header (the HTTP client's agent sends keep-alive, a raw GET none) and Authorization. */
  const getHeaders: Array<{ connection?: string; authorization?: string }> = [];
  let heads = 0;
  const server = http.createServer((req, res) => {
    if (req.method === 'HEAD') {
      heads++;
      res.writeHead(200, { 'content-length': content.length, ...(b.advertise ? { 'accept-ranges': 'bytes' } : {}) }).end();
      return;
    }
    gets.push(req.headers.range);
    getHeaders.push({ connection: req.headers.connection, authorization: req.headers.authorization });
    if (b.challengeRaw && req.headers.connection === undefined) {
      res.writeHead(401, { 'www-authenticate': 'Bearer realm="x"', 'content-length': 6 }).end('denied');
      return;
    }
    const m = /^bytes=(\d+)-(\d*)$/.exec(req.headers.range ?? '');
    let body = content;
    if (b.ranges && m && (b.ignoreRangeFrom === undefined || gets.length < b.ignoreRangeFrom)) {
      const start = Number(m[1]);
      const end = m[2] ? Math.min(Number(m[2]), content.length - 1) : content.length - 1;
      body = content.subarray(start, end + 1);
      res.writeHead(206, { 'content-length': body.length, 'content-range': `bytes ${start}-${end}/${content.length}` });
    } else res.writeHead(200, { 'content-length': content.length });
    if (b.cutFirstAfter !== undefined && gets.length === 1) {
      res.write(body.subarray(0, b.cutFirstAfter), () => res.destroy());
      return;
    }
    if (b.stallAfter !== undefined) {
      res.write(body.subarray(0, b.stallAfter));
      return;
    }
    res.end(body);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/c`,
    gets,
    getHeaders,
    heads: () => heads,
    close: async () => {
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
    },
  };
}

/** A task over a temp file; `stored` pieces are already present. */
async function task(content: Buffer, stored: number[] = []) {
  const dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'origin-fetch-'));
  const file = path.join(dir, 'content');
  const fh = await fsp.open(file, 'w+');
  for (const n of stored) await fh.write(content, n * PIECE, Math.min(PIECE, content.length - n * PIECE), n * PIECE);
  const have = new Map<number, string>(stored.map((n) => [n, 'preset']));
  const order: number[] = [];
  const t: OriginTask = {
    meta: { contentLength: content.length, pieceLength: PIECE },
    pieceCount: Math.ceil(content.length / PIECE),
    hasPiece: (n) => have.has(n),
    handle: async () => fh,
  };
  return {
    t,
    have,
    order,
    onPiece: (n: number, digest: string) => {
      expect(have.has(n)).toBe(false);
      have.set(n, digest);
      order.push(n);
    },
    async check() {
      const got = await fsp.readFile(file);
      expect(got.equals(content)).toBe(true);
      for (const [n, digest] of have) if (digest !== 'preset') expect(digest).toBe(crc32Of(content.subarray(n * PIECE, (n + 1) * PIECE)));
    },
    async close() {
      await fh.close();
      await fsp.rm(dir, { recursive: true, force: true });
    },
  };
}

async function run(content: Buffer, b: Behaviour, opts: { stored?: number[]; timeoutMs?: number; noProbe?: boolean; firstGet?: boolean; headers?: Record<string, string> } = {}) {
  const o = await origin(content, b);
  const k = await task(content, opts.stored);
  const client = new OriginClient(opts.headers ?? {});
  const failed: number[] = [];
  try {
    // noProbe: the metadata came from the scheduler, Range support is unknown.
    // firstGet: the length from a ranged GET of piece 0 (a seed peer), no HEAD.
    const probe = opts.noProbe
      ? { finalUrl: o.url, acceptsRanges: undefined, body: undefined, firstPiece: undefined }
      : opts.firstGet
        ? await client.openWithGet(o.url, PIECE, 5000)
        : await client.probe(o.url, 5000);
    if (opts.firstGet) expect(probe).toMatchObject({ contentLength: content.length });
    const result = await fetchFromOrigin({
      client,
      url: probe.finalUrl,
      task: k.t,
      acceptsRanges: probe.acceptsRanges,
      body: probe.body,
      firstPiece: probe.firstPiece,
      concurrency: 4,
      pieceTimeoutMs: opts.timeoutMs ?? 5000,
      signal: new AbortController().signal,
      log: silentLogger(),
      backoffMs: () => 10,
      onPiece: k.onPiece,
      onPieceFailed: (n) => failed.push(n),
    }).then(
      (ok) => ok,
      // Errors made by Node itself (a socket error, a premature close) come from another realm
      // than jest's test context, where `instanceof Error` is false: wrap them so a rejection
      // is never taken for a success (and the file then checked as if complete).
      (err: unknown) => (err instanceof Error ? err : new Error(`rejected with ${String((err as { message?: string })?.message ?? err)}`, { cause: err })),
    );
    if (!(result instanceof Error)) await k.check();
    return { result, gets: o.gets, getHeaders: o.getHeaders, heads: o.heads(), order: k.order, failed };
  } finally {
    closeIdlePieceConnections();
    await o.close();
    await k.close();
  }
}

describe('fetchFromOrigin', () => {
  const content = randomBytes(10 * PIECE + 123);

  it('an origin honouring Range: one GET per piece, concurrently', async () => {
    const r = await run(content, { ranges: true, advertise: true });
    expect(r.result).toEqual({ mode: 'ranged' });
    expect(r.gets).toHaveLength(11);
    expect(r.gets.every((g) => g?.startsWith('bytes='))).toBe(true);
  });

  it('once a 206 came through the HTTP client, the next ranged GETs go over raw kept-alive connections, with the same headers', async () => {
    const r = await run(content, { ranges: true, advertise: true }, { headers: { Authorization: 'Bearer t' } });
    expect(r.result).toEqual({ mode: 'ranged' });
    expect(r.gets).toHaveLength(11);
    // The first wave (concurrency 4) through the HTTP client's agent, the other 7 raw.
    expect(r.getHeaders.filter((h) => h.connection === 'keep-alive')).toHaveLength(4);
    expect(r.getHeaders.filter((h) => h.connection === undefined)).toHaveLength(7);
    expect(r.getHeaders.every((h) => h.authorization === 'Bearer t')).toBe(true);
  });

  it('an answer the raw reader does not take (a 200 after 206s) goes back to the HTTP client: that 200 becomes the stream', async () => {
    const r = await run(content, { ranges: true, advertise: true, ignoreRangeFrom: 6 });
    expect(r.result).toEqual({ mode: 'sequential' });
    expect(r.failed).toEqual([]);
    // After the 5 ranged answers, each of the 4 workers makes at most two GETs: its raw GET
    // answered 200, asked again through the HTTP client (the first such 200 is the stream).
    expect(r.gets.length).toBeLessThanOrEqual(5 + 2 * 4);
    expect(r.getHeaders.some((h) => h.connection === undefined)).toBe(true);
  });

  it('an origin that refuses raw GETs (a challenge, a redirect) is asked raw once per worker, then only through the HTTP client', async () => {
    const r = await run(content, { ranges: true, advertise: true, challengeRaw: true });
    expect(r.result).toEqual({ mode: 'ranged' });
    expect(r.failed).toEqual([]);
    // The first wave (4) through the HTTP client, then at most one refused raw GET per worker:
    // a refusal turns raw GETs off for the rest of the task instead of once per piece.
    const raw = r.getHeaders.filter((h) => h.connection === undefined).length;
    expect(raw).toBeGreaterThan(0);
    expect(raw).toBeLessThanOrEqual(4);
    expect(r.gets.length).toBe(11 + raw);
  });

  it('no Accept-Ranges: one plain GET, pieces cut in order', async () => {
    const r = await run(content, { ranges: false, advertise: false });
    expect(r.result).toEqual({ mode: 'sequential' });
    expect(r.gets).toEqual([undefined]);
    expect(r.order).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
  });

  it('not probed (metadata from the scheduler), origin ignores Range: the first GET alone finds out and becomes the stream (one GET)', async () => {
    const r = await run(content, { ranges: false, advertise: false }, { noProbe: true });
    expect(r.result).toEqual({ mode: 'sequential' });
    expect(r.gets).toHaveLength(1);
    expect(r.order).toHaveLength(11);
  });

  it('not probed, origin honours Range: ranged GETs after the first', async () => {
    const r = await run(content, { ranges: true, advertise: false }, { noProbe: true });
    expect(r.result).toEqual({ mode: 'ranged' });
    expect(r.gets).toHaveLength(11);
  });

  it('Accept-Ranges announced but 200s anyway: the first 200 becomes the stream, at most `concurrency` GETs', async () => {
    const r = await run(content, { ranges: false, advertise: true });
    expect(r.result).toEqual({ mode: 'sequential' });
    expect(r.gets.length).toBeLessThanOrEqual(4);
    expect([...r.order].sort((a, b) => a - b)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
  });

  it('pieces already stored are skipped, not rewritten or announced again', async () => {
    const r = await run(content, { ranges: false, advertise: false }, { stored: [0, 3, 10] });
    expect(r.gets).toHaveLength(1);
    expect(r.order).toEqual([1, 2, 4, 5, 6, 7, 8, 9]);
  });

  it('a stream cut mid-way resumes from the first missing piece, keeping what arrived', async () => {
    const r = await run(content, { ranges: true, advertise: false, cutFirstAfter: 3 * PIECE + 100 });
    expect(r.result).toEqual({ mode: 'sequential' });
    expect(r.gets).toEqual([undefined, `bytes=${3 * PIECE}-`]);
    expect(r.order).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
  });

  it('a cut stream from an origin without Range: the retry reads from the start, skipping the stored pieces', async () => {
    const r = await run(content, { ranges: false, advertise: false, cutFirstAfter: 2 * PIECE + 5 });
    expect(r.gets).toEqual([undefined, `bytes=${2 * PIECE}-`]);
    expect(r.order).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
  });

  it('length from the first GET (no HEAD), Range honoured: its body is piece 0, one GET per piece in all', async () => {
    const r = await run(content, { ranges: true, advertise: true }, { firstGet: true });
    expect(r.result).toEqual({ mode: 'ranged' });
    expect(r.heads).toBe(0);
    expect(r.gets[0]).toBe(`bytes=0-${PIECE - 1}`);
    expect(r.gets).toHaveLength(11);
    expect(r.order[0]).toBe(0);
  });

  it('length from the first GET, Range ignored: that 200 is the whole content, one GET in all', async () => {
    const r = await run(content, { ranges: false, advertise: false }, { firstGet: true });
    expect(r.result).toEqual({ mode: 'sequential' });
    expect(r.heads).toBe(0);
    expect(r.gets).toEqual([`bytes=0-${PIECE - 1}`]);
    expect(r.order).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
  });

  it('length from the first GET whose body breaks: piece 0 is fetched again, nothing else lost', async () => {
    const r = await run(content, { ranges: true, advertise: true, cutFirstAfter: 100 }, { firstGet: true });
    expect(r.result).toEqual({ mode: 'ranged' });
    expect(r.heads).toBe(0);
    expect(r.gets.filter((g) => g === `bytes=0-${PIECE - 1}`)).toHaveLength(2);
    expect(r.gets).toHaveLength(12);
    expect([...r.order].sort((a, b) => a - b)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
  });

  it('length from the first GET of a one-piece content: one GET, no HEAD', async () => {
    const small = randomBytes(100);
    const r = await run(small, { ranges: true, advertise: true }, { firstGet: true });
    expect(r.result).toEqual({ mode: 'ranged' });
    expect(r.heads).toBe(0);
    expect(r.gets).toEqual([`bytes=0-${PIECE - 1}`]);
    expect(r.order).toEqual([0]);
  });

  it('a stalled stream ends after pieceTimeout per attempt, naming the bytes it waited for', async () => {
    const r = await run(content, { ranges: false, advertise: false, stallAfter: PIECE + 10 }, { timeoutMs: 300 });
    expect(r.result).toBeInstanceOf(Error);
    expect((r.result as Error).message).toMatch(/did not deliver bytes \d+\+\d+ .* within 300 ms/);
    // ORIGIN_ATTEMPTS (4) failures in a row: the first stored piece 0 before it stalled (progress
    // restarts the count at one), the three resumptions from piece 1 got nowhere.
    expect(r.gets).toEqual([undefined, `bytes=${PIECE}-`, `bytes=${PIECE}-`, `bytes=${PIECE}-`]);
    expect(r.order).toEqual([0]);
    expect(r.failed).toEqual([1]);
  });
});

describe('fetchOriginRangeRaw', () => {
  const content = randomBytes(3 * PIECE);
  let dir: string;
  let fh: fsp.FileHandle;
  beforeEach(async () => {
    dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'origin-raw-'));
    fh = await fsp.open(path.join(dir, 'content'), 'w+');
  });
  afterEach(async () => {
    closeIdlePieceConnections();
    await fh.close();
    await fsp.rm(dir, { recursive: true, force: true });
  });

  /** Answers a Range with 206, or with 200 and everything when `whole`. */
  const handler = (whole: boolean) => (req: http.IncomingMessage, res: http.ServerResponse) => {
    const m = /^bytes=(\d+)-(\d+)$/.exec(req.headers.range ?? '');
    if (!m || whole) return void res.writeHead(200, { 'content-length': content.length }).end(content);
    const [a, b] = [Number(m[1]), Number(m[2])];
    res.writeHead(206, { 'content-length': b - a + 1, 'content-range': `bytes ${a}-${b}/${content.length}` }).end(content.subarray(a, b + 1));
  };

  it('https: the certificate is checked as by the HTTP client (an untrusted one is refused, nothing written)', async () => {
    const { createDevCa, issueDevCert } = await import('../../../services/common/dev-pki');
    const ca = createDevCa(dir);
    const cert = issueDevCert(ca, dir, { commonName: 'origin', ipAddresses: ['127.0.0.1'] });
    const https = await import('node:https');
    const server = https.createServer({ cert: await fsp.readFile(cert.certFile), key: await fsp.readFile(cert.keyFile) }, handler(false));
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    try {
      // The dev CA is in no trust store here.
      const url = `https://127.0.0.1:${(server.address() as AddressInfo).port}/c`;
      const viaClient = await new OriginClient({}).request('GET', url, { Range: `bytes=0-${PIECE - 1}` }, 5000).then(
        () => 'accepted',
        (err: Error) => err.message,
      );
      expect(viaClient).toMatch(/certificate/);
      await expect(fetchOriginRangeRaw(url, {}, fh, 0, PIECE, 5000)).rejects.toThrow(viaClient);
      expect((await fh.stat()).size).toBe(0);
    } finally {
      closeIdlePieceConnections();
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
    }
  });

  it('a 200 is not taken: UnusableAnswerError, nothing written', async () => {
    const server = http.createServer(handler(true));
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    try {
      const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/c`;
      await expect(fetchOriginRangeRaw(url, {}, fh, PIECE, PIECE, 5000)).rejects.toBeInstanceOf(UnusableAnswerError);
      expect((await fh.stat()).size).toBe(0);
      // A header value http.request would have to judge is left to it.
      await expect(fetchOriginRangeRaw(url, { 'x-a': 'b\r\nx: y' }, fh, 0, PIECE, 5000)).rejects.toBeInstanceOf(UnusableAnswerError);
    } finally {
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
    }
  });
});
