/**
 * Piece upload server: `GET /download/<id[0:3]>/<id>?peerId=` with one `Range` → 206
 * streamed from the task's content file. 416 when a piece in the range is not stored yet,
 * 404 for an unknown task, 429 over `upload.concurrentLimit`.
 *
 * A child that knows a task has one piece skips SyncPieces (issue 21): it asks for that piece
 * with `X-Dragonfly-Piece-Wait: <ms>`, and the range's pieces are waited for (bounded, while a
 * download here fills the task) instead of a 416. A range that is exactly one piece carries its
 * crc32 in `X-Dragonfly-Piece-Digest`, which the child checks the bytes against.
 */
import * as http from 'node:http';
import * as https from 'node:https';
import type { TransportSecurity } from '../common/tls';
import type { Logger } from 'pino';
import type { DfdaemonMetrics } from './metrics';
import { Limiters, type TokenBucket } from './rate-limiter';
import type { TaskEntry, TaskStore } from './storage';
import type { UploadTrace } from './tracing';

export interface UploadServerOptions {
  readonly store: TaskStore;
  readonly concurrentLimit: number;
  /** upload.rateLimit bucket; undefined = unlimited. */
  readonly rateLimit?: TokenBucket;
  readonly metrics?: DfdaemonMetrics;
  readonly logger: Logger;
  /** upload.tls.enable: HTTPS requiring a client certificate of the topology's CA; absent: plain HTTP. */
  readonly security?: TransportSecurity;
  /** Batch spans of the pieces served (issue 18). */
  readonly trace?: UploadTrace;
  /** A download here that has no entry yet: resolves with it (undefined if it fails first); undefined when none runs. */
  pendingEntry?(taskId: string): Promise<TaskEntry | undefined> | undefined;
}

/** Request header: how long (ms) the parent may wait for the range's pieces instead of answering 416. */
export const PIECE_WAIT_HEADER = 'x-dragonfly-piece-wait';
/** Response header: the crc32 digest of the piece served, when the range is exactly one piece. */
export const PIECE_DIGEST_HEADER = 'x-dragonfly-piece-digest';
/** Longest wait a child may ask for. */
export const MAX_PIECE_WAIT_MS = 60_000;
/** Requests waiting for pieces at once; past this a request is answered at once, as without the header. */
export const MAX_PIECE_WAITERS = 1024;

/** The wait a request asks for, in ms (0: none, or not a plain integer). */
function pieceWaitOf(header: string | string[] | undefined): number {
  if (typeof header !== 'string' || !/^\d{1,6}$/.test(header)) return 0;
  return Math.min(Number(header), MAX_PIECE_WAIT_MS);
}

export interface UploadStats {
  readonly active: number;
  readonly total: number;
  readonly failed: number;
}

/** Parses one "bytes=a-b" / "bytes=a-" / "bytes=-n" range against `size`; undefined when unsatisfiable or multiple. */
export function parseSingleRange(header: string, size: number): { start: number; length: number } | undefined {
  const m = /^bytes=(\d*)-(\d*)$/.exec(header.trim());
  if (!m || (m[1] === '' && m[2] === '')) return undefined;
  let start: number;
  let end: number;
  if (m[1] === '') {
    const suffix = Number(m[2]);
    if (suffix === 0) return undefined;
    start = Math.max(0, size - suffix);
    end = size - 1;
  } else {
    start = Number(m[1]);
    end = m[2] === '' ? size - 1 : Math.min(Number(m[2]), size - 1);
  }
  if (start > end || start >= size) return undefined;
  return { start, length: end - start + 1 };
}

/**
 * Read (and socket write) size: 2 MiB halves the event-loop turns and the user CPU per GiB of
 * 1 MiB reads (the kernel's copy into the socket is the same); with two buffers per request
 * (one being written, the next being read) a request holds 4 MiB, one more than three 1 MiB
 * buffers did.
 */
const SEND_BUFFER = 2 * 1024 * 1024;
/** Buffers kept for reuse across requests: serving allocates (and garbage-collects) nothing per chunk. */
const bufferPool: Buffer[] = [];
/** 16 MiB kept at most, as with 16 buffers of 1 MiB before. */
const MAX_POOLED = 8;
const takeBuffer = () => bufferPool.pop() ?? Buffer.allocUnsafeSlow(SEND_BUFFER);
const giveBuffer = (b: Buffer) => {
  if (bufferPool.length < MAX_POOLED) bufferPool.push(b);
};

/**
 * Streams [start, start+length) of the task file into `res` with 2 MiB positional reads
 * into pooled buffers: the next read runs while the previous buffer is being written, and a
 * buffer goes back to the pool once the socket has taken its bytes.
 */
async function sendRange(entry: TaskEntry, res: http.ServerResponse, start: number, length: number, limiters: Limiters, onBytes: (n: number) => void): Promise<void> {
  const fh = await entry.handle();
  let closed = false;
  let wake: (() => void) | undefined;
  const onClose = () => {
    closed = true;
    wake?.();
  };
  res.on('close', onClose);
  let inFlight = 0;
  try {
    for (let pos = start, end = start + length; pos < end; ) {
      if (closed) throw new Error('client went away');
      const n = Math.min(SEND_BUFFER, end - pos);
      const buf = takeBuffer();
      const { bytesRead } = await fh.read(buf, 0, n, pos);
      if (bytesRead !== n) {
        giveBuffer(buf);
        throw new Error(`short read at ${pos}`);
      }
      pos += n;
      if (!limiters.empty) {
        const wait = limiters.consume(n);
        // Paced, but a child that hangs up frees its upload slot at once, not after the pause.
        if (wait > 0 && !closed) {
          await new Promise<void>((r) => {
            const timer = setTimeout(() => done(), wait);
            const done = () => {
              clearTimeout(timer);
              wake = undefined;
              r();
            };
            wake = done;
          });
        }
      }
      // One buffer in the socket at a time: this one waits until the previous one is taken.
      while (!closed && (inFlight > 0 || res.writableNeedDrain)) {
        await new Promise<void>((r) => {
          const done = () => {
            res.off('drain', done);
            wake = undefined;
            r();
          };
          wake = done;
          res.once('drain', done);
        });
      }
      if (closed) {
        giveBuffer(buf);
        throw new Error('client went away');
      }
      inFlight++;
      res.write(buf.subarray(0, n), (err) => {
        inFlight--;
        // Only a fully written buffer is safe to reuse.
        if (!err) giveBuffer(buf);
        wake?.();
      });
      onBytes(n);
    }
    await new Promise<void>((resolve, reject) => {
      res.end(() => resolve());
      res.once('error', reject);
    });
  } finally {
    res.off('close', onClose);
  }
}

export class UploadServer {
  readonly server: http.Server;
  private active = 0;
  private total = 0;
  private failed = 0;
  /** Requests waiting for a task's entry or pieces (bounded by MAX_PIECE_WAITERS). */
  private waiting = 0;
  private readonly limiters: Limiters;

  constructor(private readonly options: UploadServerOptions) {
    this.limiters = new Limiters(options.rateLimit ? [options.rateLimit] : []);
    const handler = (req: http.IncomingMessage, res: http.ServerResponse) => this.handle(req, res);
    const tlsOptions = options.security?.httpsServerOptions();
    if (tlsOptions) {
      const server = https.createServer(tlsOptions, handler);
      const stopFollowing = options.security!.followRenewals(server);
      server.on('close', stopFollowing);
      this.server = server;
    } else {
      this.server = http.createServer(handler);
    }
    this.server.keepAliveTimeout = 65_000;
  }

  stats(): UploadStats {
    return { active: this.active, total: this.total, failed: this.failed };
  }

  /** A refusal: JSON reason to the caller, one log line with its address (debug for the protocol's normal "not stored yet"). */
  private reply(req: http.IncomingMessage, res: http.ServerResponse, code: number, message: string, headers: http.OutgoingHttpHeaders = {}, routine = false): void {
    this.options.metrics?.uploadRequests.inc({ code: String(code) });
    if (code >= 400) this.failed++;
    const line = { caller: `${req.socket.remoteAddress ?? '?'}:${req.socket.remotePort ?? '?'}`, method: req.method, path: (req.url ?? '').slice(0, 256), code, reason: message };
    if (routine) this.options.logger.debug(line, 'piece upload refused');
    else this.options.logger.warn(line, 'piece upload refused');
    res.writeHead(code, { 'content-type': 'application/json', ...headers }).end(JSON.stringify({ message }));
  }

  /** `p`'s value, or undefined once `ms` passed or the child hung up (counted among the waiters). */
  private async waitFor<T>(res: http.ServerResponse, ms: number, p: Promise<T | undefined> | undefined): Promise<T | undefined> {
    if (!p || ms <= 0) return undefined;
    this.waiting++;
    let timer: NodeJS.Timeout | undefined;
    let onClose: (() => void) | undefined;
    try {
      return await Promise.race([
        p.catch(() => undefined),
        new Promise<undefined>((resolve) => {
          timer = setTimeout(() => resolve(undefined), ms);
          onClose = () => resolve(undefined);
          res.once('close', onClose);
        }),
      ]);
    } finally {
      this.waiting--;
      clearTimeout(timer);
      if (onClose) res.off('close', onClose);
    }
  }

  /**
   * Waits until the pieces of [start, start+length) are stored, the download filling the task
   * here stops or fails, the deadline passes or the child hangs up; the caller then answers as
   * it would have at once (206, or 416 when the pieces did not come).
   */
  private async waitForRange(entry: TaskEntry, start: number, length: number, res: http.ServerResponse, deadline: number): Promise<void> {
    const pieceLength = entry.meta.pieceLength;
    if (pieceLength <= 0 || length <= 0) return;
    // waitFor ends the wait when the child hangs up; the abort then drops the entry's listeners.
    const abort = new AbortController();
    try {
      for (let n = Math.floor(start / pieceLength); n <= Math.floor((start + length - 1) / pieceLength); n++) {
        const ms = deadline - performance.now();
        if (ms <= 0 || !entry.filling) return;
        const stored = await this.waitFor(res, ms, entry.waitForPiece(n, abort.signal).then(() => true));
        if (!stored) return;
      }
    } finally {
      abort.abort(); // drops the entry listeners of a wait that timed out or was left
    }
  }

  private handle(req: http.IncomingMessage, res: http.ServerResponse): void {
    this.route(req, res).catch((err: unknown) => {
      this.options.logger.warn({ err: (err as Error).message }, 'piece upload failed');
      if (!res.headersSent) this.reply(req, res, 500, 'internal error');
      else res.destroy();
    });
  }

  private async route(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    let url: URL;
    try {
      url = new URL(req.url ?? '/', 'http://localhost');
    } catch {
      return this.reply(req, res, 400, 'malformed request target');
    }
    if (url.pathname === '/healthy') {
      res.writeHead(200, { 'content-type': 'text/plain' }).end('OK');
      return;
    }
    const m = /^\/download\/([^/]{1,3})\/([^/]+)$/.exec(url.pathname);
    if (!m) return this.reply(req, res, 404, `no route ${url.pathname}`);
    if (req.method !== 'GET' && req.method !== 'HEAD') return this.reply(req, res, 405, 'method not allowed', { allow: 'GET, HEAD' });
    const taskId = m[2];
    const waitMs = this.waiting < MAX_PIECE_WAITERS ? pieceWaitOf(req.headers[PIECE_WAIT_HEADER]) : 0;
    const deadline = performance.now() + waitMs;
    let entry = this.options.store.get(taskId);
    if (!entry && waitMs > 0 && m[1] === taskId.slice(0, 3)) {
      entry = await this.waitFor(res, waitMs, this.options.pendingEntry?.(taskId));
      if (res.destroyed) return; // the child hung up while waiting
    }
    if (!entry || m[1] !== taskId.slice(0, 3)) return this.reply(req, res, 404, `task ${taskId.slice(0, 128)} not found`);
    const size = entry.meta.contentLength;
    const rangeHeader = req.headers.range;
    let range = { start: 0, length: size };
    if (rangeHeader) {
      const parsed = parseSingleRange(rangeHeader, size);
      if (!parsed) return this.reply(req, res, 416, `range ${rangeHeader} not satisfiable`, { 'content-range': `bytes */${size}` });
      range = parsed;
    }
    if (waitMs > 0 && !entry.holdsRange(range.start, range.length)) await this.waitForRange(entry, range.start, range.length, res, deadline);
    if (res.destroyed) return;
    // Only verified content leaves this host: a finished task whose file changed is re-checked (and
    // dropped if bad); during a per-piece re-check the range waits only for its own pieces.
    if (!(await this.options.store.rangeVerified(entry, range.start, range.length))) {
      return this.reply(req, res, 404, `task ${taskId} failed verification and was dropped`);
    }
    if (!entry.holdsRange(range.start, range.length)) {
      return this.reply(req, res, 416, `pieces for bytes ${range.start}+${range.length} are not stored yet`, { 'content-range': `bytes */${size}` }, true);
    }
    if (this.active >= this.options.concurrentLimit) return this.reply(req, res, 429, `upload limit of ${this.options.concurrentLimit} concurrent requests reached`);

    const headers: http.OutgoingHttpHeaders = { 'content-type': 'application/octet-stream', 'content-length': range.length, 'accept-ranges': 'bytes' };
    const code = rangeHeader ? 206 : 200;
    if (rangeHeader) headers['content-range'] = `bytes ${range.start}-${range.start + range.length - 1}/${size}`;
    const piece = entry.meta.pieceLength > 0 ? entry.piece(Math.floor(range.start / entry.meta.pieceLength)) : undefined;
    if (rangeHeader && piece && piece.offset === range.start && piece.length === range.length) headers[PIECE_DIGEST_HEADER] = piece.digest;
    this.options.metrics?.uploadRequests.inc({ code: String(code) });
    res.writeHead(code, headers);
    if (req.method === 'HEAD' || range.length === 0) {
      res.end();
      return;
    }
    this.active++;
    this.total++;
    entry.acquire();
    let sent = 0;
    sendRange(entry, res, range.start, range.length, this.limiters, (n) => {
      sent += n;
    })
      .catch((err: unknown) => {
        this.failed++;
        this.options.logger.debug({ err, taskId }, 'piece upload aborted');
        res.destroy();
      })
      .finally(() => {
        this.active--;
        entry.release();
        this.options.metrics?.uploadBytes.inc(sent);
        this.options.trace?.served(req.headers, taskId, sent, range.start); // telemetry
      });
  }
}
