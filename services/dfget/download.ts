/**
 * dfget's two ways to get a file: through the local dfdaemon (DfdaemonDownload.DownloadTask,
 * the daemon writes the output file), or — when no daemon answers — straight from the
 * origin into a temp file renamed into place. Both end with the digest check.
 */
import * as grpc from '@grpc/grpc-js';
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream, createWriteStream, promises as fs } from 'node:fs';
import * as path from 'node:path';
import { Readable, Transform, type TransformCallback } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { ReadableStream as WebReadableStream } from 'node:stream/web';
import { GRPC_OPTIONS } from '../common/grpc';
import { protos, type DfdaemonDownloadClient } from '../proto';
import type { DownloadTaskResponse__Output } from '../proto/gen/dfdaemon/v2/DownloadTaskResponse';
import type { DfgetOptions } from './options';

/** An expected failure: printed as one line, exit 1. */
export class DfgetError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'DfgetError';
  }
}

/** No dfdaemon listens at the endpoint (as opposed to a daemon that answered with an error). */
export class DaemonUnreachableError extends DfgetError {}

export interface Progress {
  readonly total: number;
  readonly done: number;
}

export interface DownloadOutcome {
  readonly via: 'dfdaemon' | 'direct';
  readonly taskId?: string;
  readonly contentLength: number;
}

function newClient(endpoint: string): DfdaemonDownloadClient {
  const Ctor = protos().dfdaemon.dfdaemon.v2.DfdaemonDownload;
  return new Ctor(endpoint, grpc.credentials.createInsecure(), GRPC_OPTIONS);
}

function waitReady(client: grpc.Client, ms: number): Promise<void> {
  return new Promise((resolve, reject) => client.waitForReady(Date.now() + ms, (err) => (err ? reject(err) : resolve())));
}

/** Downloads through the daemon; throws DaemonUnreachableError when nothing answers at the endpoint. */
export async function downloadViaDaemon(options: DfgetOptions, onProgress: (p: Progress) => void, connectTimeoutMs = 2000): Promise<DownloadOutcome> {
  const client = newClient(options.endpoint);
  try {
    try {
      await waitReady(client, Math.min(connectTimeoutMs, options.timeoutMs));
    } catch (err) {
      throw new DaemonUnreachableError(`no dfdaemon at ${options.endpoint} (${(err as Error).message})`);
    }
    return await new Promise<DownloadOutcome>((resolve, reject) => {
      const call = client.downloadTask(
        {
          download: {
            url: options.url,
            // The daemon verifies sha256 itself; other algorithms are checked here on the output.
            digest: options.digest?.startsWith('sha256:') ? options.digest : undefined,
            type: 'STANDARD',
            tag: options.tag,
            application: options.application,
            priority: 'LEVEL6',
            filteredQueryParams: [...options.filteredQueryParams],
            requestHeader: { ...options.headers },
            outputPath: options.output,
            timeoutMs: options.timeoutMs,
            disableBackToSource: options.disableBackToSource,
            overwrite: options.overwrite,
            forceHardLink: options.hardLink,
          },
        },
        { deadline: Date.now() + options.timeoutMs },
      );
      let taskId: string | undefined;
      let total = 0;
      let done = 0;
      call.on('data', (msg: DownloadTaskResponse__Output) => {
        taskId ||= msg.taskId;
        const started = msg.downloadTaskStartedResponse;
        if (started) {
          total = Number(started.contentLength);
          done = started.pieces.reduce((sum, p) => sum + Number(p.length), 0);
          if (started.isFinished) done = total;
          onProgress({ total, done });
        }
        const piece = msg.downloadPieceFinishedResponse?.piece;
        if (piece) {
          done = Math.min(total || Infinity, done + Number(piece.length));
          onProgress({ total, done });
        }
      });
      call.on('error', (err: grpc.ServiceError) => {
        const what = err.code === grpc.status.DEADLINE_EXCEEDED ? `timed out after ${options.timeoutMs} ms` : err.details || err.message;
        reject(new DfgetError(`dfdaemon: ${what}`));
      });
      call.on('end', () => resolve({ via: 'dfdaemon', taskId, contentLength: total }));
    });
  } finally {
    client.close();
  }
}

/** Counts bytes and hashes them on the way through. */
class Meter extends Transform {
  readonly hash;
  bytes = 0;
  constructor(
    algorithm: string | undefined,
    private readonly onBytes: (n: number) => void,
  ) {
    super();
    this.hash = algorithm ? createHash(algorithm) : undefined;
  }
  override _transform(chunk: Buffer, _enc: BufferEncoding, done: TransformCallback): void {
    this.bytes += chunk.length;
    this.hash?.update(chunk);
    this.onBytes(this.bytes);
    done(null, chunk);
  }
}

/** GET with redirects followed; writes `<dir>/.<name>.dfget-<rand>.tmp`, checks the digest, renames into place. */
export async function downloadDirect(options: DfgetOptions, onProgress: (p: Progress) => void): Promise<DownloadOutcome> {
  const signal = AbortSignal.timeout(options.timeoutMs);
  let res: Response;
  try {
    res = await fetch(options.url, { headers: options.headers, redirect: 'follow', signal });
  } catch (err) {
    const e = err as Error & { cause?: Error };
    throw new DfgetError(e.name === 'TimeoutError' ? `timed out after ${options.timeoutMs} ms` : `cannot fetch ${options.url}: ${e.cause?.message ?? e.message}`);
  }
  if (res.status !== 200 || !res.body) {
    await res.body?.cancel();
    throw new DfgetError(`origin answered ${res.status} ${res.statusText} for ${options.url}`);
  }
  const total = Number(res.headers.get('content-length') ?? 0);
  const dir = path.dirname(options.output);
  const tmp = path.join(dir, `.${path.basename(options.output)}.dfget-${randomBytes(4).toString('hex')}.tmp`);
  const meter = new Meter(options.digest?.split(':')[0], (done) => onProgress({ total, done }));
  try {
    await pipeline(Readable.fromWeb(res.body as WebReadableStream<Uint8Array>), meter, createWriteStream(tmp, { flags: 'wx' }));
    if (total > 0 && meter.bytes !== total) throw new DfgetError(`short download: got ${meter.bytes} of ${total} bytes`);
    if (options.digest && meter.hash) {
      const actual = `${options.digest.split(':')[0]}:${meter.hash.digest('hex')}`;
      if (actual !== options.digest) throw new DfgetError(`digest mismatch: expected ${options.digest}, got ${actual}`);
    }
    if (!options.overwrite && (await exists(options.output))) throw new DfgetError(`${options.output} already exists (use --overwrite)`);
    await fs.rename(tmp, options.output);
  } catch (err) {
    await fs.rm(tmp, { force: true });
    if (err instanceof DfgetError) throw err;
    const e = err as Error & { cause?: Error };
    throw new DfgetError(e.name === 'TimeoutError' || signal.aborted ? `timed out after ${options.timeoutMs} ms` : `download failed: ${e.message}`);
  }
  return { via: 'direct', contentLength: meter.bytes };
}

export async function fileDigest(file: string, algorithm: string): Promise<string> {
  const hash = createHash(algorithm);
  await pipeline(createReadStream(file, { highWaterMark: 4 << 20 }), hash);
  return `${algorithm}:${hash.digest('hex')}`;
}

/** Checks the output file against `sha256:<hex>` / `sha512:<hex>`; removes it on mismatch. */
export async function verifyOutput(file: string, digest: string): Promise<void> {
  const actual = await fileDigest(file, digest.split(':')[0]);
  if (actual !== digest) {
    await fs.rm(file, { force: true });
    throw new DfgetError(`digest mismatch: expected ${digest}, got ${actual}; removed ${file}`);
  }
}

export async function exists(file: string): Promise<boolean> {
  try {
    await fs.lstat(file);
    return true;
  } catch {
    return false;
  }
}
