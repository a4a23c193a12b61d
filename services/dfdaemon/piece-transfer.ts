/**
 * Moving piece bytes: from a parent's upload server or from the origin, straight into the
 * task's content file. Bytes are checksummed as they arrive (zlib.crc32 is incremental)
 * and written in ~1 MiB positional writev batches while the next bytes are received, so
 * receive, verify and write overlap and no piece is ever concatenated in memory.
 */
import * as http from 'node:http';
import * as https from 'node:https';
import * as net from 'node:net';
import * as tls from 'node:tls';
import type { FileHandle } from 'node:fs/promises';
import { crc32 } from 'node:zlib';
import { OriginResponseError } from './task-api';
import type { Limiters } from './rate-limiter';
import { crc32Digest } from './storage';

const WRITE_BATCH = 1024 * 1024;
const MAX_PENDING_WRITES = 4;

const batchPool: Buffer[] = [];
const takeBatch = () => batchPool.pop() ?? Buffer.allocUnsafeSlow(WRITE_BATCH);
const giveBatch = (b: Buffer) => {
  if (batchPool.length < 64) batchPool.push(b);
};

export const httpAgent = new http.Agent({ keepAlive: true, maxSockets: 256 });
export const httpsAgent = new https.Agent({ keepAlive: true, maxSockets: 256 });

export class PieceDigestError extends Error {
  constructor(
    readonly expected: string,
    readonly actual: string,
  ) {
    super(`piece digest mismatch: expected ${expected}, got ${actual}`);
    this.name = 'PieceDigestError';
  }
}

export class PieceHttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
    this.name = 'PieceHttpError';
  }
}

/**
 * Reads `length` bytes of `res` (after skipping `skip` bytes), writing them at `offset`
 * of `fh`; resolves with their crc32 digest once every byte is written.
 */
export function receiveInto(
  res: http.IncomingMessage,
  fh: FileHandle,
  offset: number,
  length: number,
  options: { skip?: number; limiters?: Limiters; onBytes?: (n: number) => void } = {},
): Promise<string> {
  return new Promise((resolve, reject) => {
    let crc = 0;
    let received = 0;
    let toSkip = options.skip ?? 0;
    // Chunks are copied into a pooled 1 MiB batch at once instead of being kept until their
    // write: the HTTP client's 64 KiB chunks then die young (the copy costs less than the
    // garbage collector promoting them), and each write is one buffer.
    let batch: Buffer | undefined;
    let batchBytes = 0;
    let writePos = offset;
    let pending = 0;
    let ended = false;
    let failed = false;
    let paused = false;
    let throttled = false;
    let excess = (options.skip ?? 0) > 0;

    const fail = (err: Error) => {
      if (failed) return;
      failed = true;
      res.destroy();
      reject(err);
    };
    const maybeResume = () => {
      if (paused && !throttled && pending < MAX_PENDING_WRITES) {
        paused = false;
        res.resume();
      }
    };
    const maybeDone = () => {
      if (failed || !ended || pending > 0 || batchBytes > 0) return;
      if (received !== length) return fail(new Error(`short piece: got ${received} of ${length} bytes`));
      resolve(crc32Digest(crc));
    };
    const flush = () => {
      if (batchBytes === 0 || !batch) return;
      const buf = batch;
      const len = batchBytes;
      const pos = writePos;
      writePos += len;
      batch = undefined;
      batchBytes = 0;
      pending++;
      fh.write(buf, 0, len, pos).then(
        () => {
          pending--;
          giveBatch(buf);
          maybeResume();
          maybeDone();
        },
        (err: Error) => fail(err),
      );
    };
    const append = (chunk: Buffer) => {
      for (let at = 0; at < chunk.length; ) {
        batch ??= takeBatch();
        const n = chunk.copy(batch, batchBytes, at);
        batchBytes += n;
        at += n;
        if (batchBytes === WRITE_BATCH) flush();
      }
    };

    res.on('data', (chunk: Buffer) => {
      if (failed) return;
      if (toSkip > 0) {
        if (chunk.length <= toSkip) {
          toSkip -= chunk.length;
          return;
        }
        chunk = chunk.subarray(toSkip);
        toSkip = 0;
      }
      if (received + chunk.length > length) {
        chunk = chunk.subarray(0, length - received);
        excess = true; // origin ignored Range: stop after our bytes
      }
      received += chunk.length;
      crc = crc32(chunk, crc);
      options.onBytes?.(chunk.length);
      append(chunk);
      if (received === length) flush();
      if (pending >= MAX_PENDING_WRITES && !paused) {
        paused = true;
        res.pause();
      }
      if (options.limiters && !options.limiters.empty) {
        const wait = options.limiters.consume(chunk.length);
        if (wait > 0 && !throttled) {
          throttled = true;
          if (!paused) {
            paused = true;
            res.pause();
          }
          setTimeout(() => {
            throttled = false;
            maybeResume();
          }, wait);
        }
      }
      if (received === length) {
        ended = true;
        if (excess) {
          // Bytes past our range (origin ignoring Range) are not wanted.
          res.removeAllListeners('data');
          res.on('error', () => undefined);
          res.destroy();
        }
        maybeDone();
      }
    });
    res.on('end', () => {
      if (failed) return;
      ended = true;
      flush();
      maybeDone();
    });
    res.on('error', (err) => {
      if (!ended) fail(err);
    });
    res.on('close', () => {
      if (!ended && !failed) fail(new Error('connection closed mid-piece'));
    });
  });
}

export interface PeerPieceRequest {
  readonly ip: string;
  readonly port: number;
  readonly taskId: string;
  readonly parentPeerId: string;
  readonly offset: number;
  readonly length: number;
  readonly expectedDigest?: string;
  readonly timeoutMs: number;
  readonly limiters?: Limiters;
  readonly signal?: AbortSignal;
  /** Set when the cluster's piece plane runs TLS (upload.tls.enable): connect with these options. */
  readonly tls?: tls.ConnectionOptions;
  /** Extra request headers (the trace context's `traceparent`); names and values must be header-safe. */
  readonly headers?: Readonly<Record<string, string>>;
  /**
   * Without `expectedDigest`: the piece is checked against the digest the parent sends in
   * X-Dragonfly-Piece-Digest (its SyncPieces would have sent the same), and the parent may wait up
   * to this many ms for the piece to be stored (X-Dragonfly-Piece-Wait) instead of answering 416.
   * A 206 without that digest fails with PieceDigestUnknownError before any byte is written.
   */
  readonly waitMs?: number;
}

/** A parent answered a piece without the digest header (an older version): nothing was written. */
export class PieceDigestUnknownError extends Error {
  constructor() {
    super('parent sent no piece digest');
    this.name = 'PieceDigestUnknownError';
  }
}

/** The response header a parent's piece digest comes in (upload-server.ts PIECE_DIGEST_HEADER). */
const PIECE_DIGEST_IN_HEAD = /\r\nx-dragonfly-piece-digest:[ \t]*(crc32:\d{1,10})[ \t]*(?=\r\n|$)/i;

/**
 * TLS sessions per parent, so a new piece connection resumes instead of doing a full
 * handshake. Bounded: the oldest parent is dropped first.
 */
const TLS_SESSIONS_MAX = 1024;
const tlsSessions = new Map<string, Buffer>();

function connectPieceSocket(req: PeerPieceRequest, onread: net.OnReadOpts): net.Socket {
  if (!req.tls) return net.connect({ host: req.ip, port: req.port, onread });
  return connectTls(`${req.ip}|${req.port}`, { ...req.tls, host: req.ip, port: req.port }, onread);
}

/** A TLS connection resuming the session last seen for `key` (see tlsSessions). */
function connectTls(key: string, options: tls.ConnectionOptions, onread: net.OnReadOpts): tls.TLSSocket {
  // Node's tls.connect takes `onread` (reads land in our batches, as with net), its types do not.
  const socket = tls.connect({ ...options, onread, session: tlsSessions.get(key) } as tls.ConnectionOptions);
  socket.on('session', (session: Buffer) => {
    tlsSessions.delete(key);
    if (tlsSessions.size >= TLS_SESSIONS_MAX) tlsSessions.delete(tlsSessions.keys().next().value as string);
    tlsSessions.set(key, session);
  });
  return socket;
}

/** What a piece request does with the bytes of the connection it holds. */
interface PieceReader {
  /** Where the next read lands. */
  nextBuffer(): Buffer;
  /** `n` bytes landed in the last buffer given; false pauses the socket. */
  onData(n: number): boolean;
  /** The connection failed or closed while this reader held it. */
  onGone(err: Error): void;
}

/** Idle connections kept per parent, and parents kept: enough for download.concurrentPieceCount. */
export const IDLE_PER_PARENT = 16;
const IDLE_PARENTS_MAX = 256;
/** Idle connections are closed well before the upload server's keep-alive timeout (65 s). */
const IDLE_CLOSE_MS = 30_000;
/** Reads of an idle connection land here: any byte there is a protocol violation and closes it. */
const IDLE_BUFFER = Buffer.allocUnsafeSlow(64);

/**
 * One kept-alive HTTP/1.1 connection to a parent's upload server. Its reads go straight into
 * the buffers of whichever piece request holds it, so a connection serves piece after piece
 * without a new TCP (or TLS) handshake and without copies.
 */
class PieceConnection {
  reader: PieceReader | undefined;
  idleTimer: NodeJS.Timeout | undefined;
  readonly socket: net.Socket;

  constructor(
    readonly key: string,
    connect: (onread: net.OnReadOpts) => net.Socket,
    reader: PieceReader,
  ) {
    // Set before connecting: the socket asks for its first read buffer right away.
    this.reader = reader;
    /** The buffer the read in progress lands in (the generator is asked after each read). */
    let given: Buffer = IDLE_BUFFER;
    this.socket = connect({
      buffer: () => (given = this.reader?.nextBuffer() ?? IDLE_BUFFER),
      callback: (n) => {
        if (!this.reader) {
          this.socket.destroy(); // bytes nobody asked for
          return false;
        }
        // The first read after an idle spell landed in the idle buffer: a few header bytes, moved.
        if (given === IDLE_BUFFER) IDLE_BUFFER.copy(this.reader.nextBuffer(), 0, 0, n);
        return this.reader.onData(n);
      },
    });
    this.socket.setNoDelay(true);
    this.socket.on('error', (err) => this.gone(err));
    this.socket.on('close', () => this.gone(new Error('connection closed')));
  }

  private gone(err: Error): void {
    unpool(this);
    const reader = this.reader;
    this.reader = undefined;
    reader?.onGone(err);
  }
}

const idleConnections = new Map<string, PieceConnection[]>();

function unpool(conn: PieceConnection): void {
  clearTimeout(conn.idleTimer);
  const list = idleConnections.get(conn.key);
  const i = list ? list.indexOf(conn) : -1;
  if (i < 0) return;
  list!.splice(i, 1);
  if (list!.length === 0) idleConnections.delete(conn.key);
}

/** A finished request's connection goes back to its parent's pool (or is closed when the pool is full). */
function release(conn: PieceConnection): void {
  conn.reader = undefined;
  if (conn.socket.destroyed) return;
  let list = idleConnections.get(conn.key);
  if (!list) {
    if (idleConnections.size >= IDLE_PARENTS_MAX) {
      const [oldestKey, oldest] = idleConnections.entries().next().value as [string, PieceConnection[]];
      idleConnections.delete(oldestKey);
      for (const c of oldest) c.socket.destroy();
    }
    list = [];
    idleConnections.set(conn.key, list);
  }
  if (list.length >= IDLE_PER_PARENT) return void conn.socket.destroy();
  // Reading on while idle notices a close (or stray bytes) at once; an idle connection
  // does not keep the process alive.
  conn.socket.resume();
  conn.socket.unref();
  conn.idleTimer = setTimeout(() => conn.socket.destroy(), IDLE_CLOSE_MS);
  conn.idleTimer.unref();
  list.push(conn);
}

function poolKey(req: PeerPieceRequest): string {
  return `${req.tls ? 'https' : 'http'}|${req.ip}|${req.port}`;
}

/** An idle connection of pool `key`, most recently used first; undefined when none. */
function takeIdle(key: string): PieceConnection | undefined {
  const list = idleConnections.get(key);
  const conn = list?.pop();
  if (!conn) return undefined;
  if (list!.length === 0) idleConnections.delete(key);
  clearTimeout(conn.idleTimer);
  conn.socket.ref();
  return conn;
}

/** Idle piece connections kept for the parent at ip:port (tests, metrics). */
export function idlePieceConnectionCount(ip: string, port: number, tls = false): number {
  return idleConnections.get(`${tls ? 'https' : 'http'}|${ip}|${port}`)?.length ?? 0;
}

/** Closes every idle piece connection (tests, shutdown). */
export function closeIdlePieceConnections(): void {
  for (const list of idleConnections.values()) for (const c of list) c.socket.destroy();
  idleConnections.clear();
}

/** GETs a piece from a parent's upload server into the content file; checks its digest. */
export function fetchPieceFromPeer(req: PeerPieceRequest, fh: FileHandle): Promise<string> {
  return new Promise((resolve, reject) => {
    const host = req.ip.includes(':') ? `[${req.ip}]` : req.ip;
    const path = `/download/${req.taskId.slice(0, 3)}/${req.taskId}?peerId=${encodeURIComponent(req.parentPeerId)}`;
    const r = http.get(
      `http://${host}:${req.port}${path}`,
      { agent: httpAgent, headers: { ...req.headers, range: `bytes=${req.offset}-${req.offset + req.length - 1}` }, signal: req.signal },
      (res) => {
        if (res.statusCode !== 206) {
          res.resume();
          reject(new PieceHttpError(res.statusCode ?? 0, `parent answered ${res.statusCode} for piece at ${req.offset}`));
          return;
        }
        receiveInto(res, fh, req.offset, req.length, { limiters: req.limiters }).then((digest) => {
          if (req.expectedDigest && req.expectedDigest !== digest) reject(new PieceDigestError(req.expectedDigest, digest));
          else resolve(digest);
        }, reject);
      },
    );
    r.setTimeout(req.timeoutMs, () => r.destroy(new Error(`piece request timed out after ${req.timeoutMs} ms`)));
    r.on('error', reject);
  });
}

/** Headers never replayed from or forwarded to the origin. */
const HOP_HEADERS = new Set([
  'connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'upgrade', 'te', 'trailer',
  'content-length', 'content-range', 'host', 'range', 'date',
]);

export function recordableHeaders(headers: http.IncomingHttpHeaders): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(headers)) {
    if (v === undefined || HOP_HEADERS.has(k)) continue;
    out[k] = Array.isArray(v) ? v.join(', ') : v;
  }
  return out;
}

export interface OriginProbe {
  readonly contentLength: number;
  readonly responseHeaders: Record<string, string>;
  /** The URL after redirects: piece GETs go there directly. */
  readonly finalUrl: string;
  /**
   * False when the origin cannot serve byte ranges (no `Accept-Ranges: bytes` on HEAD, or a
   * 200 to a ranged GET): the content is then read as one sequential stream.
   */
  readonly acceptsRanges: boolean;
  /**
   * The whole content, when the probe's ranged GET was answered with a 200: the one origin
   * GET of a non-Range origin, handed on unread so the content is not requested again.
   */
  readonly body?: http.IncomingMessage;
  /**
   * The first bytes of the content, unread: the 206 answer to the ranged GET that stood in for
   * the HEAD (openWithGet). Piece 0 when `length` is its length; otherwise dropped.
   */
  readonly firstPiece?: { readonly res: http.IncomingMessage; readonly length: number };
}

const MAX_REDIRECTS = 10;
const ERROR_BODY_LIMIT = 64 * 1024;

/**
 * Talks to the origin: redirects followed, Authorization sent only to the host it was given for.
 * That host is the task URL's (`credentialsFor`), not the host a request starts from: piece GETs
 * start from the URL a redirect led to (a CDN or a signed storage URL), which must not receive the
 * registry's credentials (a signed URL with an Authorization header is refused, and leaks them).
 */
export class OriginClient {
  private readonly credentialsHost: string | undefined;

  constructor(
    private readonly headers: Readonly<Record<string, string>>,
    credentialsFor?: string,
  ) {
    this.credentialsHost = credentialsFor === undefined ? undefined : URL.canParse(credentialsFor) ? new URL(credentialsFor).host : '';
  }

  private outgoingHeaders(url: URL, originalHost: string, extra: Record<string, string>): Record<string, string> {
    const out: Record<string, string> = {};
    const credentialsHost = this.credentialsHost ?? originalHost;
    for (const [k, v] of Object.entries(this.headers)) {
      const key = k.toLowerCase();
      if (HOP_HEADERS.has(key)) continue;
      if (key === 'authorization' && url.host !== credentialsHost) continue;
      out[k] = v;
    }
    return { ...out, ...extra };
  }

  /**
   * Bytes [offset, offset+length) of `url` (no redirects followed: the URL after them) into the
   * content file over a raw kept-alive connection; see fetchOriginRangeRaw (UnusableAnswerError).
   */
  fetchRangeRaw(url: string, fh: FileHandle, offset: number, length: number, timeoutMs: number, limiters?: Limiters, signal?: AbortSignal): Promise<string> {
    const target = new URL(url);
    return fetchOriginRangeRaw(url, this.outgoingHeaders(target, target.host, {}), fh, offset, length, timeoutMs, limiters, signal);
  }

  /** One request with redirects followed; resolves with the final response (body unread). */
  request(
    method: 'GET' | 'HEAD',
    rawUrl: string,
    extra: Record<string, string>,
    timeoutMs: number,
    signal?: AbortSignal,
  ): Promise<{ res: http.IncomingMessage; url: string }> {
    const originalHost = new URL(rawUrl).host;
    const go = (current: string, hops: number): Promise<{ res: http.IncomingMessage; url: string }> =>
      new Promise((resolve, reject) => {
        const url = new URL(current);
        const mod = url.protocol === 'https:' ? https : http;
        const agent = url.protocol === 'https:' ? httpsAgent : httpAgent;
        const r = mod.request(url, { method, agent, headers: this.outgoingHeaders(url, originalHost, extra), signal }, (res) => {
          const status = res.statusCode ?? 0;
          if ([301, 302, 303, 307, 308].includes(status) && res.headers.location) {
            res.resume();
            if (hops >= MAX_REDIRECTS) return reject(new Error(`too many redirects from ${rawUrl}`));
            go(new URL(res.headers.location, url).toString(), hops + 1).then(resolve, reject);
            return;
          }
          resolve({ res, url: current });
        });
        r.setTimeout(timeoutMs, () => r.destroy(new Error(`origin request timed out after ${timeoutMs} ms`)));
        r.on('error', reject);
        r.end();
      });
    return go(rawUrl, 0);
  }

  /** Throws OriginResponseError (status, headers, body) for a refused response. */
  static async refusal(res: http.IncomingMessage, url: string): Promise<OriginResponseError> {
    const chunks: Buffer[] = [];
    let size = 0;
    try {
      for await (const chunk of res as AsyncIterable<Buffer>) {
        if (size < ERROR_BODY_LIMIT) chunks.push(chunk);
        size += chunk.length;
      }
    } catch {
      // the error itself is what matters
    }
    return new OriginResponseError(res.statusCode ?? 502, recordableHeaders(res.headers), Buffer.concat(chunks).subarray(0, ERROR_BODY_LIMIT), url);
  }

  /** Content length and headers: HEAD, or a one-byte ranged GET when HEAD is refused or says nothing; all within `timeoutMs`. */
  probe(url: string, timeoutMs: number, signal?: AbortSignal): Promise<OriginProbe> {
    return withDeadline(timeoutMs, signal, `origin did not answer the length probe for ${url} within ${timeoutMs} ms`, (s) => this.probeWithin(url, timeoutMs, s));
  }

  private async probeWithin(url: string, timeoutMs: number, signal: AbortSignal): Promise<OriginProbe> {
    try {
      const { res, url: finalUrl } = await this.request('HEAD', url, {}, timeoutMs, signal);
      res.resume();
      const len = Number(res.headers['content-length']);
      if ((res.statusCode ?? 0) >= 200 && res.statusCode! < 300 && res.headers['content-length'] !== undefined && Number.isFinite(len)) {
        return { contentLength: len, responseHeaders: recordableHeaders(res.headers), finalUrl, acceptsRanges: acceptsByteRanges(res.headers) };
      }
    } catch (err) {
      if (signal?.aborted) throw err;
      // Fall through to GET: some origins (signed URLs) only answer GET.
    }
    const { res, url: finalUrl } = await this.request('GET', url, { Range: 'bytes=0-0' }, timeoutMs, signal);
    const status = res.statusCode ?? 0;
    if (status === 206) {
      res.resume();
      const total = /\/(\d+)\s*$/.exec(String(res.headers['content-range'] ?? ''));
      if (!total) throw new Error(`origin sent 206 without a total length in Content-Range for ${url}`);
      return { contentLength: Number(total[1]), responseHeaders: recordableHeaders(res.headers), finalUrl, acceptsRanges: true };
    }
    return OriginClient.notPartial(res, url, finalUrl);
  }

  /**
   * A ranged GET answered other than 206: 416 is empty content; a 2xx means the origin ignores
   * Range and its unread body is the whole content; anything else is a refusal.
   */
  private static async notPartial(res: http.IncomingMessage, url: string, finalUrl: string): Promise<OriginProbe> {
    const status = res.statusCode ?? 0;
    if (status === 416) {
      res.resume();
      return { contentLength: 0, responseHeaders: recordableHeaders(res.headers), finalUrl, acceptsRanges: true };
    }
    if (status >= 200 && status < 300) {
      const len = Number(res.headers['content-length']);
      if (res.headers['content-length'] === undefined || !Number.isFinite(len)) {
        res.destroy();
        throw new Error(`origin did not report a content length for ${url}`);
      }
      return { contentLength: len, responseHeaders: recordableHeaders(res.headers), finalUrl, acceptsRanges: false, body: res };
    }
    throw await OriginClient.refusal(res, url);
  }

  /**
   * The length from the first GET instead of a HEAD: `Range: bytes=0-<firstLength - 1>`. A 206
   * gives the length in its Content-Range and its body, unread, is the first bytes (piece 0 of
   * content up to 2 GB); a 200 (Range ignored) is the whole content, unread; a 416 is empty
   * content. One origin request where HEAD + GET made two. Nothing is written here: the
   * caller checks the free space against the length before it reads a byte of the body.
   */
  openWithGet(url: string, firstLength: number, timeoutMs: number, signal?: AbortSignal): Promise<OriginProbe> {
    return withDeadline(timeoutMs, signal, `origin did not answer the first GET for ${url} within ${timeoutMs} ms`, async (s) => {
      const { res, url: finalUrl } = await this.request('GET', url, { Range: `bytes=0-${Math.max(1, firstLength) - 1}` }, timeoutMs, s);
      const status = res.statusCode ?? 0;
      if (status === 206) {
        const m = /^bytes (\d+)-(\d+)\/(\d+)\s*$/.exec(String(res.headers['content-range'] ?? ''));
        if (!m) {
          res.destroy();
          throw new Error(`origin sent 206 without a usable Content-Range for ${url}`);
        }
        const [start, end, total] = [Number(m[1]), Number(m[2]), Number(m[3])];
        const headers = recordableHeaders(res.headers);
        if (start !== 0 || end >= total) {
          res.destroy();
          return { contentLength: total, responseHeaders: headers, finalUrl, acceptsRanges: true };
        }
        return { contentLength: total, responseHeaders: headers, finalUrl, acceptsRanges: true, firstPiece: { res, length: end + 1 } };
      }
      return OriginClient.notPartial(res, url, finalUrl);
    });
  }

  /**
   * GETs bytes [offset, offset+length) into the content file; returns the crc32 digest.
   * `timeoutMs` bounds the whole piece, not only silences: an origin dripping bytes ends too.
   */
  fetchPiece(url: string, fh: FileHandle, offset: number, length: number, timeoutMs: number, limiters?: Limiters, signal?: AbortSignal): Promise<string> {
    return withDeadline(timeoutMs, signal, `origin did not deliver bytes ${offset}+${length} of ${url} within ${timeoutMs} ms`, (s) =>
      this.fetchPieceWithin(url, fh, offset, length, timeoutMs, limiters, s),
    );
  }

  private async fetchPieceWithin(url: string, fh: FileHandle, offset: number, length: number, timeoutMs: number, limiters: Limiters | undefined, signal: AbortSignal): Promise<string> {
    const { res } = await this.request('GET', url, { Range: `bytes=${offset}-${offset + length - 1}` }, timeoutMs, signal);
    const status = res.statusCode ?? 0;
    if (status === 206) return receiveInto(res, fh, offset, length, { limiters });
    // An origin that ignores Range sends everything: skip to our bytes.
    if (status === 200) return receiveInto(res, fh, offset, length, { limiters, skip: offset });
    throw await OriginClient.refusal(res, url);
  }
}

/**
 * Runs `work` with a signal that aborts after `timeoutMs` (or with `signal`); a timeout is
 * reported as `message` rather than as a bare AbortError.
 */
async function withDeadline<T>(timeoutMs: number, signal: AbortSignal | undefined, message: string, work: (signal: AbortSignal) => Promise<T>): Promise<T> {
  // A timer cleared on completion (not AbortSignal.timeout): a response handed on by `work`
  // (the probe's body of a non-Range origin) must not be aborted once the deadline passes.
  const deadline = new AbortController();
  const timer = setTimeout(() => deadline.abort(new Error(message)), timeoutMs);
  const combined = signal ? AbortSignal.any([signal, deadline.signal]) : deadline.signal;
  try {
    return await work(combined);
  } catch (err) {
    if (deadline.signal.aborted && !signal?.aborted) throw new Error(message, { cause: err });
    throw err;
  } finally {
    clearTimeout(timer);
  }
}

/** `Accept-Ranges: bytes` (RFC 9110 §14.3); absent or `none` means the origin may ignore Range. */
export function acceptsByteRanges(headers: http.IncomingHttpHeaders): boolean {
  const v = headers['accept-ranges'];
  return typeof v === 'string' && v.split(',').some((t) => t.trim().toLowerCase() === 'bytes');
}

const HEADER_END = Buffer.from('\r\n\r\n');
const MAX_HEADER = 16 * 1024;
const LIMITED_READ = 64 * 1024;

/** A ranged GET over a pooled raw connection (see rawRangeGet): the byte range and limits as for a parent's piece. */
interface RawRangeSpec extends Pick<PeerPieceRequest, 'offset' | 'length' | 'timeoutMs' | 'limiters' | 'signal'> {
  /** Set by `refuse` when the digest comes with the answer (PeerPieceRequest.waitMs). */
  expectedDigest?: string;
  /** Which idle connections may carry it (one pool per peer or origin, per scheme). */
  readonly poolKey: string;
  connect(onread: net.OnReadOpts): net.Socket;
  /** The request head, blank line included. */
  readonly request: string;
  /** Why a response head is not the answer to read (undefined: it is), as the caller's error. */
  refuse(status: number, head: string): Error | undefined;
  /** A response head larger than MAX_HEADER. */
  tooLarge(): Error;
}

/**
 * Why the head of a 206 is not exactly bytes [offset, offset+length) with a Content-Length
 * (a stray answer on a reused connection would put other bytes here); undefined when it is.
 */
function rangeAnswerProblem(head: string, offset: number, length: number): string | undefined {
  const len = Number(/\r\ncontent-length:\s*(\d+)/i.exec(head)?.[1] ?? NaN);
  if (len !== length) return `sent ${len} bytes for a ${length}-byte piece`;
  const range = /\r\ncontent-range:\s*bytes (\d+)-(\d+)\//i.exec(head);
  if (!range || Number(range[1]) !== offset || Number(range[2]) !== offset + length - 1) {
    return `answered for ${range ? `bytes ${range[1]}-${range[2]}` : 'no range'} instead of bytes ${offset}-${offset + length - 1}`;
  }
  return undefined;
}

/**
 * The same request as fetchPieceFromPeer over a kept-alive raw socket (TCP or TLS) whose reads
 * land directly in pooled 1 MiB write batches (`onread` with a buffer generator): no per-chunk
 * allocation, no copy and no HTTP client machinery. Bytes are checksummed where they land and a
 * full batch is written while the socket keeps reading into the next one. The connection goes
 * back to the parent's pool as soon as the body is read; a reused connection the parent closed
 * before answering is replaced by a new one once. Only for our own upload servers (HTTP/1.1,
 * 206 + Content-Length).
 */
export function fetchPieceRaw(req: PeerPieceRequest, fh: FileHandle): Promise<string> {
  const host = req.ip.includes(':') ? `[${req.ip}]` : req.ip;
  const path = `/download/${req.taskId.slice(0, 3)}/${req.taskId}?peerId=${encodeURIComponent(req.parentPeerId)}`;
  const extra = Object.entries(req.headers ?? {})
    .filter(([k, v]) => /^[a-z0-9-]+$/i.test(k) && /^[\x20-\x7e]*$/.test(v))
    .map(([k, v]) => `${k}: ${v}\r\n`)
    .join('');
  const learn = req.expectedDigest === undefined && req.waitMs !== undefined;
  const wait = learn ? `x-dragonfly-piece-wait: ${Math.max(0, Math.floor(req.waitMs ?? 0))}\r\n` : '';
  const spec: RawRangeSpec = {
    poolKey: poolKey(req),
    connect: (onread) => connectPieceSocket(req, onread),
    request: `GET ${path} HTTP/1.1\r\nHost: ${host}:${req.port}\r\nRange: bytes=${req.offset}-${req.offset + req.length - 1}\r\n${wait}${extra}\r\n`,
    offset: req.offset,
    length: req.length,
    expectedDigest: req.expectedDigest,
    timeoutMs: req.timeoutMs,
    limiters: req.limiters,
    signal: req.signal,
    refuse: (status, head) => {
      if (status !== 206) return new PieceHttpError(status, `parent answered ${status} for piece at ${req.offset}`);
      const problem = rangeAnswerProblem(head, req.offset, req.length);
      if (problem !== undefined) return new Error(`parent ${problem}`);
      if (!learn) return undefined;
      const digest = PIECE_DIGEST_IN_HEAD.exec(head)?.[1];
      if (digest === undefined) return new PieceDigestUnknownError();
      spec.expectedDigest = digest; // checked as a digest from SyncPieces is, before the piece counts
      return undefined;
    },
    tooLarge: () => new Error('response header too large'),
  };
  return rawRangeGet(spec, fh);
}

/**
 * An origin's answer the raw reader does not take: anything but a plain 206 of exactly the asked
 * bytes (a 200, a redirect, a refusal, chunked coding, a huge head). Nothing was written; the
 * caller asks again through the HTTP client, which handles every kind of answer.
 */
export class UnusableAnswerError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
    this.name = 'UnusableAnswerError';
  }
}

/** Header values the raw request carries as they are (http.request validates the same way). */
const SAFE_HEADER_NAME = /^[!#$%&'*+.^_`|~0-9a-z-]+$/i;
const SAFE_HEADER_VALUE = /^[\t\x20-\x7e]*$/;

/**
 * Bytes [offset, offset+length) of an origin URL (http or https) into the content file over a
 * kept-alive raw connection, as fetchPieceRaw does for parents: the Node HTTP client copies every
 * 64 KiB of a body into a new buffer, which cost about three times the receive itself. Resolves
 * with the crc32; rejects with UnusableAnswerError (before writing anything) when the answer is
 * not a plain 206 of those bytes, or at once when the request cannot be sent raw (a header value
 * http.request would have to judge).
 */
export function fetchOriginRangeRaw(
  rawUrl: string,
  headers: Readonly<Record<string, string>>,
  fh: FileHandle,
  offset: number,
  length: number,
  timeoutMs: number,
  limiters?: Limiters,
  signal?: AbortSignal,
): Promise<string> {
  const url = new URL(rawUrl);
  const secure = url.protocol === 'https:';
  if ((!secure && url.protocol !== 'http:') || url.username || url.password) {
    return Promise.reject(new UnusableAnswerError(0, `${url.protocol} with credentials in the URL is left to the HTTP client`));
  }
  const lines: string[] = [];
  for (const [k, v] of Object.entries(headers)) {
    if (!SAFE_HEADER_NAME.test(k) || !SAFE_HEADER_VALUE.test(v)) return Promise.reject(new UnusableAnswerError(0, `header ${k.slice(0, 64)} is left to the HTTP client`));
    lines.push(`${k}: ${v}\r\n`);
  }
  // URL keeps IPv6 literals bracketed; connect wants them bare.
  const hostname = url.hostname.startsWith('[') ? url.hostname.slice(1, -1) : url.hostname;
  const port = Number(url.port || (secure ? 443 : 80));
  const key = `origin|${url.protocol}|${hostname}|${port}`;
  const unusable = (status: number, why: string) => new UnusableAnswerError(status, `origin answered bytes ${offset}-${offset + length - 1} of ${rawUrl} ${why}`);
  return rawRangeGet(
    {
      poolKey: key,
      connect: (onread) =>
        secure
          ? connectTls(key, { host: hostname, port, servername: net.isIP(hostname) ? undefined : hostname }, onread)
          : net.connect({ host: hostname, port, onread }),
      request: `GET ${url.pathname}${url.search} HTTP/1.1\r\nHost: ${url.host}\r\nRange: bytes=${offset}-${offset + length - 1}\r\n${lines.join('')}\r\n`,
      offset,
      length,
      timeoutMs,
      limiters,
      signal,
      refuse: (status, head) => {
        if (status !== 206) return unusable(status, `with ${status}`);
        if (/\r\ntransfer-encoding:/i.test(head)) return unusable(status, 'with a transfer coding');
        const problem = rangeAnswerProblem(head, offset, length);
        return problem === undefined ? undefined : unusable(status, `but ${problem}`);
      },
      tooLarge: () => unusable(0, `with a head over ${MAX_HEADER} bytes`),
    },
    fh,
  );
}

/** See fetchPieceRaw. */
function rawRangeGet(req: RawRangeSpec, fh: FileHandle): Promise<string> {
  return new Promise((resolve, reject) => {
    const limited = req.limiters !== undefined && !req.limiters.empty;
    let conn: PieceConnection;
    let reusedConn = false;
    let inHeader = true;
    let crc = 0;
    let received = 0;
    let batch = takeBatch();
    /** Bytes in `batch`: header bytes while inHeader, then body bytes not yet written. */
    let batchLen = 0;
    let writePos = req.offset;
    let pending = 0;
    let settled = false;
    let bodyDone = false;
    let paused = false;
    let throttled = false;
    const maybeResume = () => {
      if (paused && !throttled && !settled && !bodyDone && pending < MAX_PENDING_WRITES) {
        paused = false;
        conn.socket.resume();
      }
    };
    const finish = (err?: Error) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      req.signal?.removeEventListener('abort', onAbort);
      if (conn.reader === reader) {
        // Still reading: the response is unfinished, the connection unusable.
        conn.reader = undefined;
        conn.socket.destroy();
      }
      // No socket reads into the current batch any more: it can be reused.
      giveBatch(batch);
      if (err) return reject(err);
      const digest = crc32Digest(crc);
      if (req.expectedDigest && req.expectedDigest !== digest) reject(new PieceDigestError(req.expectedDigest, digest));
      else resolve(digest);
    };
    const maybeDone = () => {
      if (bodyDone && !throttled && pending === 0 && batchLen === 0) finish();
    };
    const flush = () => {
      if (batchLen === 0) return;
      const buf = batch;
      const len = batchLen;
      const pos = writePos;
      writePos += len;
      batch = takeBatch();
      batchLen = 0;
      pending++;
      fh.write(buf, 0, len, pos).then(
        () => {
          pending--;
          giveBatch(buf);
          maybeResume();
          maybeDone();
        },
        (err: Error) => finish(err),
      );
    };
    let keepAlive = true;
    /** `n` body bytes have landed at batch[batchLen..]. */
    const body = (n: number): boolean => {
      if (received + n > req.length) {
        n = req.length - received;
        keepAlive = false; // bytes past the response: the connection is out of step
      }
      received += n;
      crc = crc32(batch.subarray(batchLen, batchLen + n), crc);
      batchLen += n;
      const wait = limited ? req.limiters.consume(n) : 0;
      if (wait > 0) {
        throttled = true;
        setTimeout(() => {
          throttled = false;
          maybeResume();
          maybeDone();
        }, wait);
      }
      if (received === req.length) {
        bodyDone = true;
        // The response is read: the connection serves the next piece while this one is written
        // (not after a wrong piece: that parent is about to be blocked).
        if (keepAlive && (!req.expectedDigest || crc32Digest(crc) === req.expectedDigest)) release(conn);
        else {
          conn.reader = undefined;
          conn.socket.destroy();
        }
        flush();
        maybeDone();
        return keepAlive;
      }
      if (batchLen === WRITE_BATCH) flush();
      if (pending >= MAX_PENDING_WRITES || throttled) {
        paused = true;
        return false;
      }
      return true;
    };
    const header = (nread: number): boolean => {
      const searchFrom = Math.max(0, batchLen - 3);
      batchLen += nread;
      const end = batch.subarray(0, batchLen).indexOf(HEADER_END, searchFrom);
      if (end < 0) {
        if (batchLen > MAX_HEADER) finish(req.tooLarge());
        return !settled;
      }
      const head = batch.toString('latin1', 0, end);
      inHeader = false;
      const status = Number(/^HTTP\/1\.[01] (\d{3})/.exec(head)?.[1] ?? 0);
      const refused = req.refuse(status, head);
      if (refused) {
        finish(refused);
        return false;
      }
      if (/^HTTP\/1\.0 /.test(head) || /\r\nconnection:[^\r]*close/i.test(head)) keepAlive = false;
      const bodyStart = end + HEADER_END.length;
      const bodyBytes = batchLen - bodyStart;
      batch.copyWithin(0, bodyStart, batchLen);
      batchLen = 0;
      return bodyBytes > 0 ? body(bodyBytes) : true;
    };
    const reader: PieceReader = {
      // Each read lands right after the bytes already in the current batch; rate-limited
      // transfers read in small steps so the bucket paces them evenly.
      nextBuffer: () => batch.subarray(batchLen, limited ? batchLen + LIMITED_READ : WRITE_BATCH),
      onData: (n) => {
        if (settled || bodyDone) return false;
        return inHeader ? header(n) : body(n);
      },
      onGone: (err) => {
        if (bodyDone || settled) return;
        // A reused connection the parent closed before any byte of its answer: once more on a new one.
        if (reusedConn && inHeader && batchLen === 0) return send(false);
        finish(err.message === 'connection closed' ? new Error(`connection closed after ${received} of ${req.length} piece bytes`) : err);
      },
    };
    const send = (reuse: boolean) => {
      const idle = reuse ? takeIdle(req.poolKey) : undefined;
      reusedConn = idle !== undefined;
      conn = idle ?? new PieceConnection(req.poolKey, (onread) => req.connect(onread), reader);
      conn.reader = reader;
      conn.socket.resume();
      conn.socket.write(req.request);
    };
    const timer = setTimeout(() => finish(new Error(`piece request timed out after ${req.timeoutMs} ms`)), req.timeoutMs);
    const onAbort = () => finish(new Error('aborted'));
    req.signal?.addEventListener('abort', onAbort);
    send(true);
  });
}
