/**
 * Back-to-source: the missing pieces of a task from its origin, written straight into the
 * task's content file, each handed to `onPiece` (store + announce) as soon as it is written.
 *
 * Two ways, chosen per origin:
 * - ranged: one GET per piece, `concurrency` at a time. When nothing told us whether the origin
 *   serves ranges (no probe: the scheduler gave the metadata), the first piece goes alone so an
 *   origin that answers a ranged GET with 200 is caught on its first response, which then
 *   becomes the sequential stream below: still one GET. An origin that announced
 *   `Accept-Ranges: bytes` is trusted; if it answers 200 anyway, the first such answer becomes
 *   the stream and the other GETs in flight end (at most `concurrency` GETs).
 * - sequential: an origin without Range support (no `Accept-Ranges: bytes`, or a 200 to a
 *   ranged GET) is read as ONE stream, cut into pieces as the bytes arrive; each piece is
 *   announced at once so children fetch it from this peer while the stream still runs.
 *
 * A failed request is retried (ORIGIN_ATTEMPTS in a row without progress); a sequential retry
 * asks for the rest with `Range: bytes=<first missing>-` and accepts a 200 from the start.
 */
import type * as http from 'node:http';
import type { FileHandle } from 'node:fs/promises';
import { crc32 } from 'node:zlib';
import type { Logger } from 'pino';
import { UnavailableError } from '../common';
import { isLocalIoError } from './local-io';
import { OriginClient, receiveInto, UnusableAnswerError } from './piece-transfer';
import type { Limiters } from './rate-limiter';
import { crc32Digest } from './storage';
import { OriginResponseError } from './task-api';

export const ORIGIN_ATTEMPTS = 4;
const WRITE_BATCH = 1024 * 1024;
const MAX_PENDING_WRITES = 4;

/** What the origin fetch needs to know of the task (a TaskEntry provides it). */
export interface OriginTask {
  readonly meta: { readonly contentLength: number; readonly pieceLength: number };
  readonly pieceCount: number;
  hasPiece(n: number): boolean;
  handle(): Promise<FileHandle>;
}

export interface OriginFetchOptions {
  readonly client: OriginClient;
  /** The URL after redirects. */
  readonly url: string;
  readonly task: OriginTask;
  /** From the probe: false reads the content as one stream; undefined: not probed, learnt from the first GET. */
  readonly acceptsRanges: boolean | undefined;
  /** The probe's unread 200 body (the whole content), used as the stream instead of a new GET. */
  readonly body?: http.IncomingMessage;
  /** The unread 206 answer holding the first `length` bytes (see OriginClient.openWithGet): piece 0 when the lengths match. */
  readonly firstPiece?: { readonly res: http.IncomingMessage; readonly length: number };
  readonly concurrency: number;
  /** Each piece (or, streaming, each next piece) must arrive within this. */
  readonly pieceTimeoutMs: number;
  readonly limiters?: Limiters;
  readonly signal: AbortSignal;
  readonly log: Logger;
  /** Milliseconds before retry `attempt` (default 200·2^attempt). */
  readonly backoffMs?: (attempt: number) => number;
  /** Piece `n` is written at its offset with crc32 `digest`: store it and announce it. */
  onPiece(n: number, digest: string, costNs: number): void;
  /** The origin gave up on piece `n` (before the error is thrown). */
  onPieceFailed(n: number, err: Error): void;
}

export interface OriginFetchResult {
  readonly mode: 'ranged' | 'sequential';
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A refusal (4xx except 429) is final; anything else may pass on retry. */
function retryable(err: unknown): boolean {
  return !(err instanceof OriginResponseError && err.status < 500 && err.status !== 429);
}

/** A per-step deadline whose timer is cleared when the step is done (a handed-on response must outlive it). */
class Deadline {
  private readonly controller = new AbortController();
  private timer: NodeJS.Timeout | undefined;
  readonly signal: AbortSignal;
  constructor(outer: AbortSignal) {
    this.signal = AbortSignal.any([outer, this.controller.signal]);
  }
  arm(ms: number, message: () => string): void {
    this.clear();
    this.timer = setTimeout(() => this.controller.abort(new Error(message())), ms);
  }
  clear(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
  }
  /** The deadline's own error when it fired (rather than the bare AbortError of the request). */
  reason(): Error | undefined {
    return this.controller.signal.aborted ? (this.controller.signal.reason as Error) : undefined;
  }
}

export async function fetchFromOrigin(o: OriginFetchOptions): Promise<OriginFetchResult> {
  const { task } = o;
  const missing: number[] = [];
  for (let n = 0; n < task.pieceCount; n++) if (!task.hasPiece(n)) missing.push(n);
  const first = o.firstPiece;
  const firstUsable = first !== undefined && !o.body && missing[0] === 0 && first.length === pieceSpan(task, 0).length;
  if (first && !firstUsable) first.res.destroy();
  if (missing.length === 0) {
    o.body?.destroy();
    return { mode: o.acceptsRanges === false ? 'sequential' : 'ranged' };
  }
  if (o.body || o.acceptsRanges === false) {
    await fetchSequential(o, o.body);
    return { mode: 'sequential' };
  }
  // Piece 0 already on its way (the answer that gave the length): read it; if it breaks, it is
  // fetched again like any other piece.
  // The answer that gave the length was a 206 through the HTTP client: the origin serves ranges.
  const raw: RawRanges = { on: false, refused: false };
  if (firstUsable && (await firstPieceFrom(o, first.res, first.length))) {
    missing.shift();
    rawRangesOk(raw);
  }
  /** The first 200 to a ranged GET: Range is ignored, and that response is the stream. */
  let whole: http.IncomingMessage | undefined;
  const claim = (res: http.IncomingMessage | undefined) => {
    if (!res) return;
    if (whole) res.destroy();
    else whole = res;
  };
  if (o.acceptsRanges === undefined) claim(await rangedPieceWithRetry(o, missing.shift()!, raw));
  let failure: Error | undefined;
  const worker = async () => {
    for (let n = whole ? undefined : missing.shift(); n !== undefined && !failure; n = whole ? undefined : missing.shift()) {
      claim(await rangedPieceWithRetry(o, n, raw));
    }
  };
  const workers = Array.from({ length: Math.min(o.concurrency, Math.max(1, missing.length)) }, () =>
    worker().catch((err: Error) => {
      failure ??= err;
    }),
  );
  await Promise.all(workers);
  if (failure) {
    whole?.destroy();
    throw failure;
  }
  if (whole) {
    o.log.info('origin ignored Range: reading the content as one stream');
    await fetchSequential(o, whole);
    return { mode: 'sequential' };
  }
  return { mode: 'ranged' };
}

function pieceSpan(task: OriginTask, n: number): { offset: number; length: number } {
  const offset = n * task.meta.pieceLength;
  return { offset, length: Math.min(task.meta.pieceLength, task.meta.contentLength - offset) };
}

/** Piece 0 from the unread 206 body `res`; false (body dropped) when it broke for a reason a new GET may not meet. */
async function firstPieceFrom(o: OriginFetchOptions, res: http.IncomingMessage, length: number): Promise<boolean> {
  const started = process.hrtime.bigint();
  const deadline = new Deadline(o.signal);
  deadline.arm(o.pieceTimeoutMs, () => `origin did not deliver bytes 0+${length} of ${o.url} within ${o.pieceTimeoutMs} ms`);
  const onAbort = () => res.destroy(deadline.reason() ?? new UnavailableError('aborted'));
  deadline.signal.addEventListener('abort', onAbort, { once: true });
  try {
    const digest = await receiveInto(res, await o.task.handle(), 0, length, { limiters: o.limiters });
    deadline.clear();
    o.onPiece(0, digest, Number(process.hrtime.bigint() - started));
    return true;
  } catch (caught) {
    res.destroy();
    if (o.signal.aborted || isLocalIoError(caught)) throw caught;
    o.log.warn({ err: (deadline.reason() ?? (caught as Error)).message }, 'first piece from the origin broke; fetching it again');
    return false;
  } finally {
    deadline.clear();
    deadline.signal.removeEventListener('abort', onAbort);
  }
}

/**
 * Whether ranged GETs go over raw connections (OriginClient.fetchRangeRaw): only once the origin
 * answered one through the HTTP client with a 206, so the first answers (a 200 that becomes the
 * stream, a redirect, a refusal) are read as before and cost no extra GET; off for the rest of
 * the task after an answer the raw reader does not take (`refused`), so an origin that redirects
 * or challenges every GET costs one extra request per task, not one per piece.
 */
interface RawRanges {
  on: boolean;
  refused: boolean;
}

function rawRangesOk(raw: RawRanges): void {
  if (!raw.refused) raw.on = true;
}

/** One piece by a ranged GET, retried; a 200 answer is returned unread (the origin ignores Range: the caller streams it). */
async function rangedPieceWithRetry(o: OriginFetchOptions, n: number, raw: RawRanges): Promise<http.IncomingMessage | undefined> {
  const { offset, length } = pieceSpan(o.task, n);
  const started = process.hrtime.bigint();
  for (let attempt = 1; ; attempt++) {
    if (o.signal.aborted) throw new UnavailableError('aborted');
    const deadline = new Deadline(o.signal);
    deadline.arm(o.pieceTimeoutMs, () => `origin did not deliver bytes ${offset}+${length} of ${o.url} within ${o.pieceTimeoutMs} ms`);
    try {
      if (raw.on) {
        const fh = await o.task.handle();
        const digest = await o.client.fetchRangeRaw(o.url, fh, offset, length, o.pieceTimeoutMs, o.limiters, deadline.signal).catch((err: unknown) => {
          if (!(err instanceof UnusableAnswerError)) throw err;
          raw.on = false;
          raw.refused = true;
          o.log.debug({ piece: n, err: err.message }, 'origin answer not taken raw; asking through the HTTP client');
          return undefined;
        });
        if (digest !== undefined) {
          deadline.clear();
          o.onPiece(n, digest, Number(process.hrtime.bigint() - started));
          return undefined;
        }
      }
      const { res } = await o.client.request('GET', o.url, { Range: `bytes=${offset}-${offset + length - 1}` }, o.pieceTimeoutMs, deadline.signal);
      const status = res.statusCode ?? 0;
      let digest: string;
      if (status === 206) {
        digest = await receiveInto(res, await o.task.handle(), offset, length, { limiters: o.limiters });
        rawRangesOk(raw);
      } else if (status === 200) {
        deadline.clear();
        return res;
      } else throw await OriginClient.refusal(res, o.url);
      deadline.clear();
      o.onPiece(n, digest, Number(process.hrtime.bigint() - started));
      return undefined;
    } catch (caught) {
      deadline.clear();
      const err = deadline.reason() && !o.signal.aborted ? new Error(deadline.reason()!.message, { cause: caught }) : (caught as Error);
      if (!retryable(err) || attempt >= ORIGIN_ATTEMPTS || o.signal.aborted || isLocalIoError(err)) {
        o.onPieceFailed(n, err);
        throw err;
      }
      o.log.warn({ piece: n, attempt, err: err.message }, 'origin piece failed; retrying');
      await sleep(o.backoffMs?.(attempt) ?? 200 * 2 ** attempt);
    }
  }
}

/** The content as one stream from the first missing piece on; a broken stream is resumed (a new GET) while it makes progress. */
/** How much longer than the piece deadline a streaming GET's socket may stay silent. */
const STREAM_SOCKET_GRACE_MS = 1000;

async function fetchSequential(o: OriginFetchOptions, initial: http.IncomingMessage | undefined): Promise<void> {
  let failures = 0;
  for (;;) {
    if (o.signal.aborted) {
      initial?.destroy();
      throw new UnavailableError('aborted');
    }
    let firstMissing = 0;
    while (firstMissing < o.task.pieceCount && o.task.hasPiece(firstMissing)) firstMissing++;
    if (firstMissing === o.task.pieceCount) {
      initial?.destroy();
      return;
    }
    const before = countStored(o.task);
    const deadline = new Deadline(o.signal);
    try {
      let res: http.IncomingMessage;
      let bodyStart = 0;
      if (initial) {
        res = initial;
        initial = undefined;
      } else {
        const from = firstMissing * o.task.meta.pieceLength;
        deadline.arm(o.pieceTimeoutMs, () => `origin did not answer for ${o.url} within ${o.pieceTimeoutMs} ms`);
        // The deadline bounds every piece; the socket's idle timeout is only a backstop, set later so
        // it cannot win the race against the deadline and fail the attempt with a bare "aborted".
        ({ res } = await o.client.request('GET', o.url, from > 0 ? { Range: `bytes=${from}-` } : {}, o.pieceTimeoutMs + STREAM_SOCKET_GRACE_MS, deadline.signal));
        const status = res.statusCode ?? 0;
        if (status === 206) {
          bodyStart = Number(/^bytes (\d+)-/.exec(String(res.headers['content-range'] ?? ''))?.[1] ?? NaN);
          if (bodyStart !== from) {
            res.destroy();
            throw new Error(`origin answered bytes=${from}- with Content-Range ${String(res.headers['content-range']).slice(0, 80)}`);
          }
        } else if (status !== 200) throw await OriginClient.refusal(res, o.url);
      }
      const declared = res.headers['content-length'];
      if ((res.statusCode ?? 0) === 200 && declared !== undefined && Number(declared) !== o.task.meta.contentLength) {
        res.destroy();
        throw new Error(`origin now sends ${String(declared).slice(0, 20)} bytes for content of ${o.task.meta.contentLength}: it changed during the download`);
      }
      await receivePieces(res, bodyStart, o, deadline);
      deadline.clear();
      return;
    } catch (caught) {
      deadline.clear();
      const err = deadline.reason() && !o.signal.aborted ? new Error(deadline.reason()!.message, { cause: caught }) : (caught as Error);
      // Pieces stored by this attempt count as progress: the retry budget is for attempts in a row that got nowhere.
      failures = countStored(o.task) > before ? 1 : failures + 1;
      if (!retryable(err) || failures >= ORIGIN_ATTEMPTS || o.signal.aborted || isLocalIoError(err)) {
        let n = 0;
        while (n < o.task.pieceCount && o.task.hasPiece(n)) n++;
        o.onPieceFailed(n, err);
        throw err;
      }
      o.log.warn({ attempt: failures, err: err.message }, 'origin stream failed; resuming');
      await sleep(o.backoffMs?.(failures) ?? 200 * 2 ** failures);
    }
  }
}

function countStored(task: OriginTask): number {
  let c = 0;
  for (let n = 0; n < task.pieceCount; n++) if (task.hasPiece(n)) c++;
  return c;
}

/**
 * Reads `res` (whose first byte is content byte `bodyStart`, a piece boundary) to its end,
 * cutting it into pieces: each missing piece is crc32-summed as its bytes arrive, written in
 * ~1 MiB positional writev batches (subarrays of the received chunks, no copy) and handed to
 * `onPiece` in order once its bytes are on disk. Stored pieces are skipped. Every piece must
 * arrive within pieceTimeoutMs of the previous one.
 */
async function receivePieces(res: http.IncomingMessage, bodyStart: number, o: OriginFetchOptions, deadline: Deadline): Promise<void> {
  const { task } = o;
  const { contentLength, pieceLength } = task.meta;
  const fh = await task.handle();
  let pos = bodyStart;
  let n = Math.floor(pos / pieceLength);
  let pieceEnd = Math.min((n + 1) * pieceLength, contentLength);
  let wanted = !task.hasPiece(n);
  let crc = 0;
  let batch: Buffer[] = [];
  let batchBytes = 0;
  let batchPos = pos;
  let pieceWrites: Promise<unknown>[] = [];
  let pieceStarted = process.hrtime.bigint();
  const inflight: Promise<unknown>[] = [];
  /** Pieces are announced in order, each once its writes are done. */
  let announced: Promise<void> = Promise.resolve();
  let writeError: Error | undefined;
  const writeFailure = () => writeError;
  const armPiece = () => {
    const start = n * pieceLength;
    deadline.arm(o.pieceTimeoutMs, () => `origin did not deliver bytes ${start}+${pieceEnd - start} of ${o.url} within ${o.pieceTimeoutMs} ms`);
  };
  const flush = () => {
    if (batchBytes === 0) return;
    const w = fh.writev(batch, batchPos).then(
      () => undefined,
      (err: Error) => {
        writeError ??= err;
        res.destroy(err);
      },
    );
    batchPos += batchBytes;
    batch = [];
    batchBytes = 0;
    pieceWrites.push(w);
    inflight.push(w);
  };
  armPiece();
  const onAbort = () => res.destroy(deadline.reason() ?? new UnavailableError('aborted'));
  deadline.signal.addEventListener('abort', onAbort, { once: true });
  try {
    for await (const received of res as AsyncIterable<Buffer>) {
      let chunk = received;
      while (chunk.length > 0) {
        if (pos >= contentLength) throw new Error(`origin sent more than the ${contentLength} bytes of the content`);
        const take = Math.min(chunk.length, pieceEnd - pos);
        const part = take === chunk.length ? chunk : chunk.subarray(0, take);
        chunk = take === chunk.length ? Buffer.alloc(0) : chunk.subarray(take);
        if (wanted) {
          crc = crc32(part, crc);
          batch.push(part);
          batchBytes += take;
        }
        pos += take;
        if (o.limiters && !o.limiters.empty) {
          const wait = o.limiters.consume(take);
          if (wait > 0) await sleep(wait);
        }
        if (batchBytes >= WRITE_BATCH) flush();
        if (pos === pieceEnd) {
          if (wanted) {
            flush();
            const number = n;
            const digest = crc32Digest(crc);
            const writes = pieceWrites;
            const costNs = Number(process.hrtime.bigint() - pieceStarted);
            announced = announced.then(async () => {
              await Promise.all(writes);
              if (!writeError && !o.signal.aborted) o.onPiece(number, digest, costNs);
            });
          }
          n++;
          crc = 0;
          pieceWrites = [];
          batchPos = pos;
          pieceStarted = process.hrtime.bigint();
          pieceEnd = Math.min((n + 1) * pieceLength, contentLength);
          wanted = n < task.pieceCount && !task.hasPiece(n);
          if (pos < contentLength) armPiece();
        }
        while (inflight.length >= MAX_PENDING_WRITES) await inflight.shift();
      }
      if (writeError) throw writeError;
    }
    if (writeError) throw writeError;
    if (pos !== contentLength) throw new Error(`origin stream ended after ${pos} of ${contentLength} bytes`);
  } catch (err) {
    throw writeError ?? deadline.reason() ?? err;
  } finally {
    deadline.signal.removeEventListener('abort', onAbort);
    await Promise.allSettled(inflight);
    await announced;
  }
  // A write that failed after the last byte arrived (its piece was not announced).
  const lateWriteError = writeFailure();
  if (lateWriteError) throw lateWriteError;
}
