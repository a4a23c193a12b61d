/**
 * The download engine: TaskManager implements TaskApi. One TaskDownload per task id runs
 * the AnnouncePeer conversation with a scheduler, fetches pieces from parents (SyncPieces +
 * HTTP range GETs, crc32-checked) or from the origin, and stores them; readers stream the
 * content in order as pieces land, and a finished task is read straight from its file.
 */
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as fsp from 'node:fs/promises';
import * as path from 'node:path';
import type * as tls from 'node:tls';
import { Readable } from 'node:stream';
import * as grpc from '@grpc/grpc-js';
import type { Logger } from 'pino';
import {
  blobDigestOf,
  ConflictError,
  DEFAULT_FILTERED_QUERY_PARAMS,
  GRPC_OPTIONS,
  InvalidArgumentError,
  ResourceExhaustedError,
  peerIdOf,
  taskIdOf,
  type DfdaemonConfig,
  type TransportSecurity,
} from '../common';
import { protos, type DfdaemonUploadClient } from '../proto';
import { warmContentHasher } from './content-hasher';
import type { HostIdentity, SchedulerPool } from './control-plane';
import { ensureSpace, freeBytesAt, rethrowLocalIo } from './local-io';
import { recordHeldBytes, type DfdaemonMetrics } from './metrics';
import { bucketFor, Limiters, type TokenBucket } from './rate-limiter';
import { SchedulerSession } from './scheduler-session';
import { ContentReadStream, type TaskEntry, type TaskStore } from './storage';
import type { DownloadOptions, DownloadProgress, TaskApi, TaskInfo, TaskReadResult } from './task-api';
import { TaskDownload, type TaskDownloadDeps } from './task-download';
import { DownloadTrace } from './tracing';

export interface TaskManagerOptions {
  readonly store: TaskStore;
  readonly config: DfdaemonConfig;
  readonly host: HostIdentity;
  /** Absent: no scheduler at all, every download goes to the origin. */
  readonly schedulers?: SchedulerPool;
  readonly metrics: DfdaemonMetrics;
  readonly logger: Logger;
  /** For tests: free bytes of the file system holding a directory (default: statfs). */
  readonly freeBytes?: (dir: string) => Promise<number>;
  /** mTLS to other peers' upload gRPC, and to their piece port when upload.tls.enable (common/tls.ts). */
  readonly security?: TransportSecurity;
}

/** Bounds of the engine's maps: concurrent downloads (then RESOURCE_EXHAUSTED) and cached parent clients. */
export const MAX_RUNNING_DOWNLOADS = 1024;
export const MAX_UPLOAD_CLIENTS = 256;
/** How long a free-space figure may stand in for statfs, and the room it must leave to do so. */
export const FREE_FIGURE_MS = 500;
export const FREE_FIGURE_MARGIN = 1024 * 1024 * 1024;

export class TaskManager implements TaskApi {
  readonly store: TaskStore;
  readonly config: DfdaemonConfig;
  readonly host: HostIdentity;
  readonly schedulers: SchedulerPool | undefined;
  readonly metrics: DfdaemonMetrics;
  readonly logger: Logger;
  private readonly downloads = new Map<string, TaskDownload>();
  private readonly uploadClients = new Map<string, DfdaemonUploadClient>();
  private readonly totalBucket: TokenBucket | undefined;
  private readonly originBucket: TokenBucket | undefined;
  private readonly perPeerBucket: TokenBucket | undefined;
  /** Bytes each running download may still write (free-space check before serving). */
  private readonly reservations = new Map<string, number>();
  private readonly freeBytes: (dir: string) => Promise<number>;
  /** The last free-space figure of the data directory and what was reserved since (see reserveSpace). */
  private freeFigure: { at: number; bytes: number; reservedSince: number } | undefined;
  /** What each TaskDownload may use of the engine: nothing else. */
  private readonly downloadDeps: TaskDownloadDeps;
  private readonly security: TransportSecurity | undefined;
  /** TLS options for piece downloads from parents (upload.tls.enable); undefined: plain TCP. */
  readonly pieceTls: (() => tls.ConnectionOptions) | undefined;

  constructor(options: TaskManagerOptions) {
    this.security = options.security;
    this.pieceTls = options.config.upload.tls.enable ? options.security?.tlsClientOptions(['peer', 'seed-peer']) : undefined;
    this.store = options.store;
    this.config = options.config;
    this.host = options.host;
    this.schedulers = options.schedulers;
    this.metrics = options.metrics;
    this.logger = options.logger;
    this.freeBytes = options.freeBytes ?? freeBytesAt;
    const piece = 64 * 1024 * 1024;
    this.totalBucket = bucketFor(options.config.download.totalRateLimit, piece);
    this.originBucket = bucketFor(options.config.download.backSourceRateLimit, piece);
    this.perPeerBucket = bucketFor(options.config.download.perPeerRateLimit, piece);
    this.updateGauge();
    warmContentHasher();
    this.downloadDeps = {
      store: this.store,
      config: this.config,
      host: this.host,
      schedulers: this.schedulers,
      metrics: this.metrics,
      logger: this.logger,
      reserveSpace: (taskId, bytes) => this.reserveSpace(taskId, bytes),
      limitersFor: (kind) => this.limitersFor(kind),
      uploadClient: (ip, port) => this.uploadClient(ip, port),
      updateGauge: () => this.updateGauge(),
      pieceTls: this.pieceTls,
      newTrace: (taskId, peerId, options) => DownloadTrace.for(this, taskId, peerId, options), // telemetry (issue 18)
    };
  }

  /**
   * Reserves the bytes a download still has to write; fails with LocalStorageError when the
   * data directory's free space, less what other downloads reserved, cannot hold them.
   */
  async reserveSpace(taskId: string, bytes: number): Promise<void> {
    let others = 0;
    for (const [id, reserved] of this.reservations) {
      if (id === taskId) continue;
      // What it still has to write: its pieces already on disk are in the free-space figure.
      const d = this.downloads.get(id);
      others += d?.entry ? Math.max(0, d.entry.meta.contentLength - d.completedLength) : reserved;
    }
    // A recent free-space figure, less everything reserved since it was taken, that leaves a wide
    // margin answers without another statfs (one per small task queued behind fsyncs otherwise).
    const cached = this.freeFigure;
    if (cached && Date.now() - cached.at < FREE_FIGURE_MS && cached.bytes - cached.reservedSince - others - bytes >= FREE_FIGURE_MARGIN) {
      cached.reservedSince += Math.max(0, bytes);
      this.reservations.set(taskId, bytes);
      return;
    }
    const measured = async (dir: string): Promise<number> => {
      const free = await this.freeBytes(dir);
      this.freeFigure = { at: Date.now(), bytes: free, reservedSince: 0 };
      return free;
    };
    try {
      await ensureSpace(this.config.dataDir, bytes, others, measured);
    } catch (err) {
      // Least-recently-used cached tasks may make room (storage GC), then ask once more.
      if (!(await this.store.gc()).evicted.length) throw err;
      await ensureSpace(this.config.dataDir, bytes, others, measured);
    }
    if (this.freeFigure) this.freeFigure.reservedSince += Math.max(0, bytes);
    this.reservations.set(taskId, bytes);
  }

  /** Buckets charged for bytes from peers or from the origin. */
  limitersFor(kind: 'peer' | 'origin'): Limiters {
    const b = [this.totalBucket, kind === 'origin' ? this.originBucket : this.perPeerBucket].filter((x): x is TokenBucket => x !== undefined);
    return new Limiters(b);
  }

  /** A cached client per parent address; the least recently used is closed beyond MAX_UPLOAD_CLIENTS. */
  uploadClient(ip: string, port: number): DfdaemonUploadClient {
    const addr = `${ip.includes(':') ? `[${ip}]` : ip}:${port}`;
    let c = this.uploadClients.get(addr);
    if (c) {
      // Map order is the LRU order.
      this.uploadClients.delete(addr);
    } else {
      c = new (protos().dfdaemon.dfdaemon.v2.DfdaemonUpload)(addr, this.security?.channelCredentials(['peer', 'seed-peer']) ?? grpc.credentials.createInsecure(), GRPC_OPTIONS);
      while (this.uploadClients.size >= MAX_UPLOAD_CLIENTS) {
        const [oldest, client] = this.uploadClients.entries().next().value as [string, DfdaemonUploadClient];
        this.uploadClients.delete(oldest);
        client.close();
      }
    }
    this.uploadClients.set(addr, c);
    return c;
  }

  updateGauge(): void {
    const { finished, partial } = this.store.counts();
    this.metrics.tasks.set({ state: 'finished' }, finished);
    this.metrics.tasks.set({ state: 'partial' }, partial);
  }

  taskIdFor(options: DownloadOptions): string {
    if (!options.url) throw new InvalidArgumentError('download url is required');
    let url: URL;
    try {
      url = new URL(options.url);
    } catch {
      throw new InvalidArgumentError(`download url ${options.url.slice(0, 256)} is not a valid URL`);
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new InvalidArgumentError(`download url scheme ${url.protocol} is not supported (http, https)`);
    if (options.digest !== undefined && !/^sha256:[a-f0-9]{64}$/.test(options.digest)) {
      throw new InvalidArgumentError(`digest ${options.digest.slice(0, 80)} is not "sha256:<64 hex>"`);
    }
    // An OCI blob's task id is its digest: any other digest would store other bytes under it.
    const urlDigest = blobDigestOf(options.url);
    if (urlDigest && options.digest !== undefined && options.digest !== urlDigest) {
      throw new InvalidArgumentError(`digest ${options.digest} differs from the digest of the blob URL (${urlDigest})`);
    }
    return taskIdOf({ url: options.url, tag: options.tag, application: options.application, filteredQueryParams: options.filteredQueryParams });
  }

  /** Downloads in progress and the free-space reservations they hold (tests: nothing left behind). */
  get running(): { downloads: number; reservations: number } {
    return { downloads: this.downloads.size, reservations: this.reservations.size };
  }

  /**
   * The entry of a download running here that has not created it yet (it told the scheduler it
   * started before its file exists, see TaskDownload.backToSource): settles with the entry, or
   * undefined when the download fails first. Undefined when no such download runs.
   */
  pendingEntry(taskId: string): Promise<TaskEntry | undefined> | undefined {
    const d = this.downloads.get(taskId);
    if (!d || d.entry) return undefined;
    return d.entryReady.promise.then(
      (e) => e,
      () => undefined,
    );
  }

  /** Starts the download of a task, or joins the one in progress. */
  ensureDownload(options: DownloadOptions): TaskDownload {
    const taskId = this.taskIdFor(options);
    let d = this.downloads.get(taskId);
    if (d) return d;
    if (this.downloads.size >= MAX_RUNNING_DOWNLOADS) {
      throw new ResourceExhaustedError(`${MAX_RUNNING_DOWNLOADS} downloads are already running on this host; try again later`);
    }
    d = new TaskDownload(this.downloadDeps, taskId, options);
    this.downloads.set(taskId, d);
    const download = d;
    void download.run().finally(() => {
      download.release();
      this.reservations.delete(taskId);
      if (this.downloads.get(taskId) === download) this.downloads.delete(taskId);
    });
    return d;
  }

  /**
   * Tells the scheduler that this host holds a finished task (a seed peer triggered for a task
   * it serves from its cache): register, report it finished with its metadata, and wait for
   * the scheduler to close the stream, so when the trigger ends the scheduler already counts
   * this host as a parent instead of calling the seed failed. Best effort: false when no
   * scheduler took it.
   */
  async announceCached(options: DownloadOptions, entry: TaskEntry): Promise<boolean> {
    const pool = this.schedulers;
    if (!pool || !entry.finished) return false;
    const taskId = entry.taskId;
    const peerId = peerIdOf(this.host.ip, this.host.hostname, this.host.seed);
    const timeoutMs = this.config.scheduler.scheduleTimeout;
    for (const addr of pool.forTask(taskId)) {
      const stream = pool.client(addr).AnnouncePeer({ deadline: Date.now() + timeoutMs });
      const reporter = new SchedulerSession(stream, { hostId: this.host.id, taskId, peerId });
      const closed = new Promise<Error | undefined>((resolve) => {
        stream.on('error', (err) => resolve(err));
        stream.on('end', () => resolve(undefined));
      });
      const { contentLength, pieceLength, responseHeaders } = entry.meta;
      const download = {
        url: options.url,
        digest: options.digest,
        tag: options.tag,
        application: options.application,
        filteredQueryParams: [...(options.filteredQueryParams ?? DEFAULT_FILTERED_QUERY_PARAMS)],
        requestHeader: { ...options.requestHeaders },
        needBackToSource: true,
      };
      reporter.send({ registerPeerRequest: { download } });
      reporter.send({ downloadPeerBackToSourceStartedRequest: { contentLength, pieceLength, responseHeader: responseHeaders } });
      reporter.send({ downloadPeerBackToSourceFinishedRequest: { contentLength, pieceCount: entry.pieceCount, pieceLength, responseHeader: responseHeaders } });
      reporter.close();
      const err = await closed;
      if (!err) {
        this.logger.info({ taskId, peerId, scheduler: addr }, 'registered a cached task with the scheduler');
        return true;
      }
      this.logger.warn({ taskId, scheduler: addr, err: err.message }, 'could not register a cached task with the scheduler');
      if ((err as grpc.ServiceError).code === grpc.status.NOT_FOUND) pool.reannounceSoon();
    }
    return false;
  }

  /** The finished local task, if any and its content is still the verified one (cache hit); a corrupted one is dropped. */
  async finishedEntry(taskId: string): Promise<TaskEntry | undefined> {
    const e = this.store.get(taskId);
    if (!e?.finished) return undefined;
    if (await this.store.ensureIntact(e)) return e;
    this.updateGauge();
    return undefined;
  }

  readHeld(options: DownloadOptions): TaskReadResult | undefined {
    try {
      const entry = this.store.get(this.taskIdFor(options));
      const content = entry && this.store.contentInMemory(entry);
      return entry && content ? this.readFromMemory(entry, content, options) : undefined;
    } catch {
      // An invalid request or range: read() answers it with its error.
      return undefined;
    }
  }

  readHeldBlob(digest: string): TaskReadResult | undefined {
    if (!SHA256_DIGEST.test(digest)) return undefined;
    // An OCI blob's task id is its digest's hex (taskIdOf), whatever the tag, application or query.
    const entry = this.store.get(digest.slice(SHA256_PREFIX.length));
    const content = entry && this.store.contentInMemory(entry);
    return entry && content ? this.readFromMemory(entry, content, WHOLE) : undefined;
  }

  /**
   * The finished local task, to be shared with peers (a seed trigger): as finishedEntry, except
   * that a task without a digest that needs its re-verification (first use after a restart) is
   * returned at once while its pieces are checked in order; the upload server hands out each
   * piece only once it is checked (TaskStore.rangeVerified), and drops the task if one fails.
   */
  async finishedEntryToShare(taskId: string): Promise<TaskEntry | undefined> {
    const e = this.store.get(taskId);
    if (e?.finished && e.verifiedStamp === undefined && !e.meta.digest && !e.deleted) {
      void this.store.ensureIntact(e).then(
        (ok) => ok || this.updateGauge(),
        () => undefined,
      );
      return e;
    }
    return this.finishedEntry(taskId);
  }

  async read(options: DownloadOptions): Promise<TaskReadResult> {
    const taskId = this.taskIdFor(options);
    // A small finished task held in memory: no file access at all (see TaskStore.contentInMemory).
    const held = this.store.get(taskId);
    const inMemory = held && this.store.contentInMemory(held);
    if (held && inMemory) return this.readFromMemory(held, inMemory, options);
    const cached = await this.finishedEntry(taskId);
    if (cached) {
      const loaded = await this.store.loadIntoMemory(cached);
      if (loaded) return this.readFromMemory(cached, loaded, options);
      if (!cached.deleted) {
        const range = this.clampRange(options, cached.meta.contentLength);
        return { taskId, contentLength: cached.meta.contentLength, responseHeaders: cached.meta.responseHeaders, fromCache: true, body: this.readFinished(cached, range.start, range.length) };
      }
      // Its bytes no longer matched: dropped, fetched again below.
      this.updateGauge();
    }
    const d = this.ensureDownload(options);
    const entry = await d.entryReady.promise;
    const range = this.clampRange(options, entry.meta.contentLength);
    let body: Readable;
    if (entry.finished) body = this.readFinished(entry, range.start, range.length);
    else {
      body = this.readDownloading(entry, range.start, range.length, d.verifiesDigest ? d.attemptVerified() : undefined);
      // A failed download must fail the body even if every piece it waits for is present.
      d.done.promise.catch((err: Error) => body.destroy(err));
    }
    return { taskId, contentLength: entry.meta.contentLength, responseHeaders: entry.meta.responseHeaders, fromCache: false, body };
  }

  private clampRange(options: Pick<DownloadOptions, 'range'>, size: number): { start: number; length: number } {
    if (!options.range) return { start: 0, length: size };
    const { start, length } = options.range;
    if (start < 0 || length < 0 || start + length > size) throw new InvalidArgumentError(`range ${start}+${length} is outside the content of ${size} bytes`);
    return { start, length };
  }

  /** The content of a task still downloading, in order, each chunk once its pieces are stored. */
  private readDownloading(entry: TaskEntry, start: number, length: number, beforeEnd: Promise<unknown> | undefined): Readable {
    if (length === 0) return Readable.from([]);
    entry.acquire();
    const stream = new ContentReadStream(entry, start, length, undefined, beforeEnd);
    stream.once('close', () => entry.release());
    return stream;
  }

  /** A cache hit from the verified copy in memory: `content` is the requested bytes, `body` made only if asked for. */
  private readFromMemory(entry: TaskEntry, whole: Buffer, options: Pick<DownloadOptions, 'range'>): TaskReadResult {
    const range = this.clampRange(options, whole.length);
    const content = range.start === 0 && range.length === whole.length ? whole : whole.subarray(range.start, range.start + range.length);
    this.store.touch(entry);
    recordHeldBytes(this.metrics, content.length);
    return new HeldRead(entry.taskId, whole.length, entry.meta.responseHeaders, content);
  }

  /** Cache-hit fast path: the file, streamed with large reads (or sent from pooled buffers, see ContentReadStream.sendTo). */
  private readFinished(entry: TaskEntry, start: number, length: number): Readable {
    this.store.touch(entry);
    if (length === 0) return Readable.from([]);
    entry.acquire();
    let counted = 0;
    const stream = new ContentReadStream(entry, start, length, (n) => {
      counted += n;
    });
    stream.once('close', () => {
      entry.release();
      this.metrics.downloadBytes.inc({ source: 'local_cache' }, counted);
    });
    return stream;
  }

  async downloadToFile(
    options: DownloadOptions & { readonly outputPath: string; readonly overwrite?: boolean; readonly hardLink?: boolean },
    onProgress?: (p: DownloadProgress) => void,
  ): Promise<{ taskId: string; contentLength: number; fromCache: boolean }> {
    const output = options.outputPath;
    if (!output || !path.isAbsolute(output)) throw new InvalidArgumentError(`output path must be absolute, got "${output}"`);
    const taskId = this.taskIdFor(options);
    await this.checkOutput(output, options.overwrite === true, taskId);
    let entry = await this.finishedEntry(taskId);
    const fromCache = entry !== undefined;
    if (entry) {
      entry.acquire();
      onProgress?.({ taskId, contentLength: entry.meta.contentLength, completedLength: entry.meta.contentLength, pieceLength: entry.meta.pieceLength, responseHeaders: entry.meta.responseHeaders });
    } else {
      const d = this.ensureDownload(options);
      const listener = (p: DownloadProgress) => onProgress?.(p);
      d.on('progress', listener);
      try {
        const early = await d.entryReady.promise.catch(() => undefined);
        if (early) listener({ taskId, contentLength: early.meta.contentLength, completedLength: d.completedLength, pieceLength: early.meta.pieceLength, responseHeaders: early.meta.responseHeaders });
        entry = await d.done.promise;
      } finally {
        d.off('progress', listener);
      }
      entry.acquire();
    }
    try {
      await this.place(entry, output, options.overwrite === true, options.hardLink === true);
      this.store.touch(entry);
      this.metrics.downloadBytes.inc({ source: 'local_cache' }, fromCache ? entry.meta.contentLength : 0);
      return { taskId, contentLength: entry.meta.contentLength, fromCache };
    } finally {
      entry.release();
    }
  }

  private async checkOutput(output: string, overwrite: boolean, taskId: string): Promise<void> {
    const st = await fsp.stat(output).catch(() => undefined);
    if (!st) {
      const dir = await fsp.stat(path.dirname(output)).catch(() => undefined);
      if (!dir?.isDirectory()) throw new InvalidArgumentError(`directory of output path ${output} does not exist`);
      return;
    }
    if (st.isDirectory()) throw new InvalidArgumentError(`output path ${output} is a directory`);
    if (overwrite) return;
    const entry = this.store.get(taskId);
    const own = entry ? await fsp.stat(entry.contentPath).catch(() => undefined) : undefined;
    if (own && own.ino === st.ino && own.dev === st.dev) return;
    throw new ConflictError(`output path ${output} already exists (use overwrite)`);
  }

  /**
   * Reflink (or copy) into a temp name beside the output, then rename: never a partial file at
   * `output`, and the output never shares storage with the cache, so editing either cannot
   * change the other. `hardLink` (opt-in) links instead where it can: no copy, but shared bytes.
   */
  private async place(entry: TaskEntry, output: string, overwrite: boolean, hardLink: boolean): Promise<void> {
    const tmp = path.join(path.dirname(output), `.${path.basename(output)}.dfdaemon-${randomBytes(6).toString('hex')}`);
    try {
      let linked = false;
      if (hardLink) {
        linked = await fsp.link(entry.contentPath, tmp).then(
          () => true,
          (err: NodeJS.ErrnoException) => {
            this.logger.warn({ output, err: err.message }, 'hard link not possible (other filesystem?): copying instead');
            return false;
          },
        );
      }
      // COPYFILE_FICLONE: a reflink (shared extents, copy-on-write) where the filesystem can, else a plain copy.
      if (!linked) await fsp.copyFile(entry.contentPath, tmp, fs.constants.COPYFILE_FICLONE).catch((err: unknown) => rethrowLocalIo(err, tmp));
      if (!overwrite) {
        const st = await fsp.stat(output).catch(() => undefined);
        const own = await fsp.stat(entry.contentPath);
        if (st && !(st.ino === own.ino && st.dev === own.dev)) throw new ConflictError(`output path ${output} already exists (use overwrite)`);
      }
      await fsp.rename(tmp, output);
    } finally {
      await fsp.rm(tmp, { force: true });
    }
  }

  stat(taskId: string): TaskInfo | undefined {
    const e = this.store.get(taskId);
    if (!e) return undefined;
    return {
      taskId,
      url: e.meta.url,
      contentLength: e.meta.contentLength,
      pieceLength: e.meta.pieceLength,
      finishedPieces: e.finishedPieceCount,
      pieceCount: e.pieceCount,
      finished: e.finished,
      responseHeaders: e.meta.responseHeaders,
    };
  }

  entry(taskId: string): TaskEntry | undefined {
    return this.store.get(taskId);
  }

  async delete(taskId: string): Promise<void> {
    const d = this.downloads.get(taskId);
    if (d) {
      d.stop();
      this.downloads.delete(taskId);
    }
    await this.store.remove(taskId);
    this.updateGauge();
  }

  /** Aborts running downloads (their partial tasks stay for resumption) and flushes metadata. */
  async stop(): Promise<void> {
    const running = [...this.downloads.values()];
    for (const d of running) d.stop();
    await Promise.allSettled(running.map((d) => d.done.promise));
    this.downloads.clear();
    for (const c of this.uploadClients.values()) c.close();
    this.uploadClients.clear();
  }
}

const WHOLE: Pick<DownloadOptions, 'range'> = {};
const SHA256_PREFIX = 'sha256:';
const SHA256_DIGEST = /^sha256:[a-f0-9]{64}$/;

/** A read answered from a content held in memory; its stream is made only if someone asks for it. */
class HeldRead implements TaskReadResult {
  readonly fromCache = true;
  private stream: Readable | undefined;

  constructor(
    readonly taskId: string,
    readonly contentLength: number,
    readonly responseHeaders: Readonly<Record<string, string>>,
    readonly content: Buffer,
  ) {}

  get body(): Readable {
    this.stream ??= Readable.from(this.content.length > 0 ? [this.content] : []);
    return this.stream;
  }
}
