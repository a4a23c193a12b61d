/**
 * Piece store: one content file per task (preallocated when it has more than one piece) under
 * `<dataDir>/content/tasks/<id[0:3]>/<id>`. Metadata: a task whose metadata is first written
 * while it is partial (a large download) has its own JSON file under
 * `<dataDir>/metadata/tasks/<id>.json`, replaced atomically (temp + rename) after that; a task
 * finished before its first write (every small task) is a record in the append-only journal
 * `<dataDir>/metadata/finished-tasks.jsonl` (meta-journal.ts), which saves a file creation per task.
 *
 * Crash safety: a piece is recorded in the metadata only after its bytes were written
 * (pwrite completed), and a task of more than one piece is marked finished only after its
 * content file was fsync'd. On restart a partial task's recorded pieces are re-verified against
 * their crc32 before they are used again, and a finished task's whole content on its first use
 * (below), so nothing torn is served. A one-piece task (at most 4 MiB: most objects of an image)
 * is not fsync'd: the fsync only spares a re-download after a power loss, which for one piece
 * costs less than an fsync per task, and content lost that way fails that re-verification.
 *
 * Integrity of finished tasks (ensureIntact): a finished task's content was checked against
 * its sha256 (when it has one) and per-piece crc32 when it was stored; the file's identity
 * (inode, size, mtime, ctime) is remembered then. Before content is served, one fstat
 * compares it: unchanged, the bytes are the verified ones; changed (anything wrote to the
 * file, e.g. through a dfget output hardlinked to it) or unknown (first use after a
 * restart), the whole content is verified again — sha256 when the task has a digest, else
 * every piece's crc32 — and a task that fails is dropped, never served. A small content held in
 * memory (contentInMemory) is served from its verified copy, so its file's fstat runs at most
 * once per heldRecheckMs.
 */
import { EventEmitter } from 'node:events';
import * as fs from 'node:fs';
import * as fsp from 'node:fs/promises';
import * as path from 'node:path';
import { Readable, type Writable } from 'node:stream';
import { finished } from 'node:stream/promises';
import { createHash } from 'node:crypto';
import { crc32 } from 'node:zlib';
import type { Logger } from 'pino';
import { InternalError, InvalidArgumentError, pieceCountOf, ResourceExhaustedError, pieceRange, taskMetadataProblem, UnavailableError } from '../common';
import { sha256OfFile } from './content-hasher';
import { MetaJournal } from './meta-journal';
import { SmallContentCache } from './memory-cache';

export interface PieceRecord {
  readonly number: number;
  readonly offset: number;
  readonly length: number;
  /** "crc32:<decimal>" */
  readonly digest: string;
}

export interface TaskMetadata {
  readonly taskId: string;
  readonly url: string;
  readonly contentLength: number;
  readonly pieceLength: number;
  readonly responseHeaders: Record<string, string>;
  /** piece number → digest */
  pieces: Record<string, string>;
  /** "sha256:<hex>" the whole content matched when it was finished (absent: no digest was known). */
  digest?: string;
  finished: boolean;
  readonly createdAt: number;
  updatedAt: number;
  /** Last download or read: the LRU / TTL clock. */
  lastUsedAt: number;
  finishedAt?: number;
}

const BACKGROUND_SYNC_BYTES = 64 * 1024 * 1024;
/** Default bound of stored tasks (entries in memory, files on disk). */
export const MAX_TASKS = 100_000;
/** Content files made ahead of their entry at once (see TaskStore.prepare): the downloads a host may run. */
export const MAX_PREPARED = 1024;
/** Largest finished content held in memory for cache hits (configs, manifests' blobs, thin layers). */
export const MEMORY_CACHE_ENTRY_BYTES = 1024 * 1024;
/** Bound of all contents held in memory for cache hits. */
export const MEMORY_CACHE_BYTES = 64 * 1024 * 1024;
/**
 * How long a held content's file identity check stands (see contentInMemory): within it a hit
 * of the same task skips the fstat.
 */
export const HELD_RECHECK_MS = 1000;

/** Inode, size, mtime and ctime: any write to the file changes at least the ctime. */
function stampOf(st: fs.Stats): string {
  return `${st.dev}:${st.ino}:${st.size}:${st.mtimeMs}:${st.ctimeMs}`;
}

export function crc32Digest(value: number): string {
  return `crc32:${value >>> 0}`;
}

export function crc32Of(data: Uint8Array): string {
  return crc32Digest(crc32(data));
}

/**
 * A stored task. Emits 'piece' (PieceRecord) as pieces land, 'finished' once complete and
 * 'failed' (Error) when the download is abandoned (the entry is then removed), and 'stopped'
 * (Error) when the last download filling it ended without finishing it (the entry stays, its
 * verified pieces kept for a later download): no more pieces are coming until one starts.
 */
export class TaskEntry extends EventEmitter {
  /** Readers and downloads in progress: GC leaves the task alone while > 0. */
  private refs = 0;
  /** Downloads filling this entry now. */
  private fillers = 0;
  private fdPromise: Promise<fsp.FileHandle> | undefined;
  /** The handle of fdPromise once it is open (for stampNow). */
  private openHandle: fsp.FileHandle | undefined;
  deleted = false;
  failure: Error | undefined;
  /** Identity of the content file when its bytes were last verified; undefined: not verified in this process. */
  verifiedStamp: string | undefined;
  /** The whole-content verification in progress (one at a time). */
  verifying: Promise<boolean> | undefined;
  /**
   * Where this task's metadata is persisted: nowhere yet, its own file (a task written while
   * partial, replaced atomically after the first write) or the finished-tasks journal.
   */
  metaIn: 'none' | 'file' | 'journal' = 'none';
  /**
   * While a per-piece re-verification (a task without a digest) runs: how many leading pieces it
   * has checked against their crc32, and the file's identity when it began (see rangeVerified).
   */
  checkedPieces = 0;
  passStamp: string | undefined;
  private unsyncedBytes = 0;
  private syncing: Promise<void> | undefined;

  constructor(
    readonly meta: TaskMetadata,
    readonly contentPath: string,
    /** The content file, already open read-write (a new task); otherwise opened on first use. */
    handle?: fsp.FileHandle,
  ) {
    super();
    this.setMaxListeners(0);
    if (handle) {
      this.fdPromise = Promise.resolve(handle);
      this.openHandle = handle;
    }
  }

  get taskId(): string {
    return this.meta.taskId;
  }
  get pieceCount(): number {
    return pieceCountOf(this.meta.contentLength, this.meta.pieceLength);
  }
  get finishedPieceCount(): number {
    return Object.keys(this.meta.pieces).length;
  }
  get finished(): boolean {
    return this.meta.finished;
  }
  hasPiece(n: number): boolean {
    return this.meta.pieces[n] !== undefined;
  }
  piece(n: number): PieceRecord | undefined {
    const digest = this.meta.pieces[n];
    if (digest === undefined) return undefined;
    return { number: n, ...pieceRange(n, this.meta.contentLength, this.meta.pieceLength), digest };
  }
  pieces(): PieceRecord[] {
    return Object.keys(this.meta.pieces)
      .map(Number)
      .sort((a, b) => a - b)
      .map((n) => this.piece(n) as PieceRecord);
  }
  /** True when every piece overlapping [start, start+length) is stored. */
  holdsRange(start: number, length: number): boolean {
    if (this.meta.finished) return true;
    if (length <= 0) return true;
    const first = Math.floor(start / this.meta.pieceLength);
    const last = Math.floor((start + length - 1) / this.meta.pieceLength);
    for (let n = first; n <= last; n++) if (!this.hasPiece(n)) return false;
    return true;
  }
  acquire(): void {
    this.refs++;
    this.touch();
  }
  release(): void {
    this.refs = Math.max(0, this.refs - 1);
  }
  get inUse(): boolean {
    return this.refs > 0;
  }
  /** True while a download of this host is adding pieces to the entry. */
  get filling(): boolean {
    return this.fillers > 0;
  }
  startFilling(): void {
    this.fillers++;
  }
  /** A download of this entry ended; see the 'stopped' event. */
  stopFilling(reason: Error): void {
    this.fillers = Math.max(0, this.fillers - 1);
    if (this.fillers === 0 && !this.meta.finished && !this.deleted) this.emit('stopped', reason);
  }
  touch(now = Date.now()): void {
    this.meta.lastUsedAt = now;
  }
  /** A shared read/write handle, opened lazily. */
  handle(): Promise<fsp.FileHandle> {
    if (this.fdPromise) return this.fdPromise;
    const p = fsp.open(this.contentPath, 'r+').then((fh) => {
      if (this.fdPromise === p) this.openHandle = fh;
      return fh;
    });
    this.fdPromise = p;
    return p;
  }
  /**
   * The content file's identity now, from a synchronous fstat of the open handle (the inode
   * is in memory: no disk access, no thread-pool round trip); undefined when the handle is not open.
   */
  stampNow(): string | undefined {
    const fh = this.openHandle;
    if (!fh || fh.fd < 0) return undefined;
    try {
      return stampOf(fs.fstatSync(fh.fd));
    } catch {
      return undefined;
    }
  }
  /**
   * Counts stored bytes and, every BACKGROUND_SYNC_BYTES, starts a datasync in the thread pool
   * (one at a time, not awaited): disk write-back overlaps the download, so the fsync that
   * finishes the task only has the tail left to flush.
   */
  noteWritten(bytes: number): void {
    this.unsyncedBytes += bytes;
    if (this.unsyncedBytes < BACKGROUND_SYNC_BYTES || this.syncing || this.deleted) return;
    this.unsyncedBytes = 0;
    this.syncing = this.handle()
      .then((fh) => fh.datasync())
      .catch(() => undefined)
      .finally(() => {
        this.syncing = undefined;
      });
  }
  /** The background datasync in progress, if any. */
  syncSettled(): Promise<void> {
    return this.syncing ?? Promise.resolve();
  }
  async closeHandle(): Promise<void> {
    await this.syncSettled();
    const p = this.fdPromise;
    this.fdPromise = undefined;
    this.openHandle = undefined;
    if (p) await (await p).close().catch(() => undefined);
  }
  /**
   * Resolves once piece `n` is stored; rejects if the task fails or is deleted, or when no
   * download is filling it (the piece would never come: a reader must fail, not hang).
   */
  waitForPiece(n: number, signal?: AbortSignal): Promise<void> {
    if (this.hasPiece(n) || this.meta.finished) return Promise.resolve();
    if (signal?.aborted) return Promise.reject(new Error('aborted'));
    if (this.failure) return Promise.reject(this.failure);
    const notComing = (why: string) => new UnavailableError(`piece ${n} of task ${this.taskId} is not stored and will not come: ${why}`);
    if (!this.filling) return Promise.reject(notComing('no download of it is running'));
    return new Promise((resolve, reject) => {
      const onPiece = (p: PieceRecord) => {
        if (p.number === n) done(undefined);
      };
      const onFinished = () => done(undefined);
      const onFailed = (err: Error) => done(err);
      const onStopped = (err: Error) => done(notComing(`its download stopped (${err.message})`));
      // A caller that stops waiting (a timeout) takes its listeners away.
      const onAbort = () => done(new Error('aborted'));
      const done = (err: Error | undefined) => {
        signal?.removeEventListener('abort', onAbort);
        this.off('piece', onPiece);
        this.off('finished', onFinished);
        this.off('failed', onFailed);
        this.off('stopped', onStopped);
        if (err) reject(err);
        else resolve();
      };
      this.on('piece', onPiece);
      this.on('finished', onFinished);
      this.on('failed', onFailed);
      this.on('stopped', onStopped);
      signal?.addEventListener('abort', onAbort);
    });
  }
}

export interface NewTask {
  readonly taskId: string;
  readonly url: string;
  readonly contentLength: number;
  readonly pieceLength: number;
  readonly responseHeaders: Record<string, string>;
}

export interface DiskUsage {
  readonly total: number;
  readonly used: number;
}

export interface StorageOptions {
  readonly dataDir: string;
  readonly keepStorage: boolean;
  readonly taskExpireMs: number;
  /** 0: the file system's size and usage count; otherwise this many bytes, of which only ours are used. */
  readonly diskGCThreshold: number;
  readonly highPercent: number;
  readonly lowPercent: number;
  readonly logger: Logger;
  /** How often metadata of a downloading task is written (piece records batch up in between). */
  readonly metadataFlushMs?: number;
  /** How long the use time of a cache hit may wait to be written (default TOUCH_FLUSH_MS). */
  readonly touchFlushMs?: number;
  /** Most tasks kept at once (default MAX_TASKS). */
  readonly maxTasks?: number;
  /** Called when a stored task failed re-verification (metrics). */
  readonly onCorrupt?: (taskId: string) => void;
  /** For tests: file-system usage instead of statfs. */
  readonly fsUsage?: () => Promise<DiskUsage>;
  /** How long a held content's file identity check stands (default HELD_RECHECK_MS; 0: every hit). */
  readonly heldRecheckMs?: number;
}

export interface GcResult {
  readonly expired: string[];
  readonly evicted: string[];
}

/** A cache hit's use time is persisted within this (GC after a restart is all that reads it). */
export const TOUCH_FLUSH_MS = 30_000;

export class TaskStore {
  private readonly entries = new Map<string, TaskEntry>();
  /** How many of `entries` are finished (kept with the map: set, delete, finish). */
  private finishedEntries = 0;
  private readonly flushTimers = new Map<string, { timer: NodeJS.Timeout; dueAt: number }>();
  private readonly flushing = new Map<string, Promise<void>>();
  /** Content directories known to exist (one per 3-hex-digit prefix of a task id: at most 4,096). */
  private readonly contentDirs = new Set<string>();
  /** Content files opened ahead of their entry, by task id (see prepare). */
  private readonly prepared = new Map<string, Promise<fsp.FileHandle | undefined>>();
  /** Prepared files being removed, by task id: a new file for the task waits until the removal is done. */
  private readonly discarding = new Map<string, Promise<void>>();
  private readonly contentRoot: string;
  private readonly metaRoot: string;
  /** Metadata of tasks whose first write finished them (see meta-journal.ts). */
  private readonly journal: MetaJournal;
  /** Entries whose metadata is in the journal. */
  private journalLive = 0;
  private compacting = false;
  /** Small finished contents, each checked against its digest when it was read (see contentInMemory). */
  private readonly memory: SmallContentCache;
  private readonly heldRecheckMs: number;

  private constructor(private readonly options: StorageOptions) {
    this.contentRoot = path.join(options.dataDir, 'content', 'tasks');
    this.metaRoot = path.join(options.dataDir, 'metadata', 'tasks');
    this.journal = new MetaJournal(path.join(options.dataDir, 'metadata', 'finished-tasks.jsonl'));
    this.memory = new SmallContentCache(MEMORY_CACHE_BYTES, MEMORY_CACHE_ENTRY_BYTES);
    this.heldRecheckMs = options.heldRecheckMs ?? HELD_RECHECK_MS;
  }

  /** Opens the store; with keepStorage, reloads finished tasks and re-verifies partial ones. */
  static async open(options: StorageOptions): Promise<TaskStore> {
    const store = new TaskStore(options);
    if (!options.keepStorage) {
      await fsp.rm(store.contentRoot, { recursive: true, force: true });
      await fsp.rm(store.metaRoot, { recursive: true, force: true });
      await fsp.rm(store.journal.file, { force: true });
    }
    await fsp.mkdir(store.contentRoot, { recursive: true });
    await fsp.mkdir(store.metaRoot, { recursive: true });
    await store.reload();
    return store;
  }

  contentPathOf(taskId: string): string {
    return path.join(this.contentRoot, taskId.slice(0, 3), taskId);
  }
  private metaPathOf(taskId: string): string {
    return path.join(this.metaRoot, `${taskId}.json`);
  }

  get(taskId: string): TaskEntry | undefined {
    return this.entries.get(taskId);
  }
  all(): TaskEntry[] {
    return [...this.entries.values()];
  }
  /** Stored tasks by state, without walking them (the metrics gauge reads it at every task's start and end). */
  counts(): { finished: number; partial: number } {
    return { finished: this.finishedEntries, partial: this.entries.size - this.finishedEntries };
  }

  private async reload(): Promise<void> {
    const log = this.options.logger;
    const names = (await fsp.readdir(this.metaRoot)).filter((n) => n.endsWith('.json'));
    for (const name of names) {
      const taskId = name.slice(0, -'.json'.length);
      let meta: TaskMetadata;
      try {
        meta = JSON.parse(await fsp.readFile(path.join(this.metaRoot, name), 'utf8')) as TaskMetadata;
      } catch (err) {
        log.warn({ taskId, err }, 'dropping task with unreadable metadata');
        await this.removeFiles(taskId);
        continue;
      }
      const problem = taskMetadataProblem(meta.contentLength, meta.pieceLength);
      if (problem || typeof meta.pieces !== 'object' || meta.pieces === null) {
        log.warn({ taskId, problem }, 'dropping task with invalid metadata');
        await this.removeFiles(taskId);
        continue;
      }
      const contentPath = this.contentPathOf(taskId);
      const st = await fsp.stat(contentPath).catch(() => undefined);
      // A partial one-piece task's file was not preallocated (create): shorter until its piece lands.
      const sizeOk = st !== undefined && (st.size === meta.contentLength || (!meta.finished && pieceCountOf(meta.contentLength, meta.pieceLength) <= 1 && st.size < meta.contentLength));
      if (!sizeOk || meta.taskId !== taskId) {
        log.warn({ taskId }, 'dropping task whose content file is missing or has the wrong size');
        await this.removeFiles(taskId);
        continue;
      }
      if (!meta.finished) {
        // Recorded pieces of a partial task are trusted only after re-checking their bytes.
        const verified = await this.verifyPieces(contentPath, meta);
        const dropped = Object.keys(meta.pieces).length - Object.keys(verified).length;
        meta.pieces = verified;
        if (dropped > 0) log.warn({ taskId, dropped }, 'partial task: pieces failed re-verification and will be fetched again');
        await this.writeMeta(meta);
      }
      const entry = new TaskEntry(meta, contentPath);
      entry.metaIn = 'file';
      this.entries.set(taskId, entry);
      if (meta.finished) this.finishedEntries++;
      log.info({ taskId, finished: meta.finished, pieces: Object.keys(meta.pieces).length }, 'reloaded task from storage');
    }
    await this.reloadJournal();
    await this.sweepOrphans();
  }

  /** Finished tasks from the journal (a task that also has its own metadata file keeps that one). */
  private async reloadJournal(): Promise<void> {
    const log = this.options.logger;
    const { metas, bad } = await this.journal.load();
    let dropped = 0;
    for (const [taskId, meta] of metas) {
      if (this.entries.has(taskId)) {
        dropped++;
        continue;
      }
      const problem = taskMetadataProblem(meta.contentLength, meta.pieceLength);
      const contentPath = this.contentPathOf(taskId);
      const st = problem || meta.finished !== true || typeof meta.pieces !== 'object' || meta.pieces === null ? undefined : await fsp.stat(contentPath).catch(() => undefined);
      if (!st || st.size !== meta.contentLength) {
        log.warn({ taskId, problem }, 'dropping journaled task with invalid metadata or a missing or wrong-sized content file');
        await fsp.rm(contentPath, { force: true });
        dropped++;
        continue;
      }
      const entry = new TaskEntry(meta, contentPath);
      entry.metaIn = 'journal';
      this.entries.set(taskId, entry);
      this.finishedEntries++;
      this.journalLive++;
    }
    if (metas.size > 0) log.info({ tasks: this.journalLive, dropped, bad }, 'reloaded finished tasks from the metadata journal');
    if (bad > 0 || dropped > 0 || this.journal.wantsCompaction(this.journalLive)) await this.journal.compact(this.journaledMetas());
  }

  private journaledMetas(): TaskMetadata[] {
    const out: TaskMetadata[] = [];
    for (const e of this.entries.values()) if (e.metaIn === 'journal') out.push(e.meta);
    return out;
  }

  /** Rewrites the journal once dead records outnumber the live ones (one rewrite at a time). */
  private compactJournalIfDue(): void {
    if (this.compacting || !this.journal.wantsCompaction(this.journalLive)) return;
    this.compacting = true;
    this.journal
      .compact(this.journaledMetas())
      .catch((err: unknown) => this.options.logger.warn({ err }, 'metadata journal rewrite failed'))
      .finally(() => {
        this.compacting = false;
      });
  }

  /** Removes content files no metadata describes (a task created, then the process stopped before its first flush). */
  private async sweepOrphans(): Promise<void> {
    let removed = 0;
    for (const shard of await fsp.readdir(this.contentRoot).catch(() => [] as string[])) {
      const dir = path.join(this.contentRoot, shard);
      const names = await fsp.readdir(dir).catch(() => [] as string[]);
      for (const name of names) {
        if (this.entries.has(name)) continue;
        await fsp.rm(path.join(dir, name), { force: true, recursive: true });
        removed++;
      }
      if (names.length > 0 && names.every((n) => !this.entries.has(n))) await fsp.rmdir(dir).catch(() => undefined);
    }
    if (removed > 0) this.options.logger.warn({ removed }, 'removed content files without metadata (left by an interrupted start of a download)');
  }

  private async verifyPieces(contentPath: string, meta: TaskMetadata, onGood?: (n: number) => void): Promise<Record<string, string>> {
    const out: Record<string, string> = {};
    const fh = await fsp.open(contentPath, 'r');
    const buf = Buffer.allocUnsafe(Math.min(4 * 1024 * 1024, Math.max(1, meta.pieceLength)));
    try {
      for (const [key, digest] of Object.entries(meta.pieces)) {
        const { offset, length } = pieceRange(Number(key), meta.contentLength, meta.pieceLength);
        let crc = 0;
        let ok = true;
        for (let pos = offset, end = offset + length; pos < end && ok; ) {
          const n = Math.min(buf.length, end - pos);
          const { bytesRead } = await fh.read(buf, 0, n, pos);
          if (bytesRead !== n) ok = false;
          else crc = crc32(buf.subarray(0, n), crc);
          pos += n;
        }
        if (ok && crc32Digest(crc) === digest) {
          out[key] = digest;
          onGood?.(Number(key));
        }
      }
    } finally {
      await fh.close();
    }
    return out;
  }

  /** Creates (or returns the existing) entry with a preallocated content file. */
  async create(task: NewTask): Promise<TaskEntry> {
    const existing = this.entries.get(task.taskId);
    if (existing) return existing;
    const problem = taskMetadataProblem(task.contentLength, task.pieceLength);
    if (problem) throw new InvalidArgumentError(`task ${task.taskId}: ${problem}`);
    await this.makeRoomForTask();
    const contentPath = this.contentPathOf(task.taskId);
    const early = this.prepared.get(task.taskId);
    this.prepared.delete(task.taskId);
    await this.discarding.get(task.taskId);
    // Opened read-write once: the handle becomes the entry's (no close and reopen per task).
    const fh = (early && (await early)) ?? (await this.openContent(contentPath));
    // Preallocated when pieces may land out of order; the one piece of a small task is written
    // from offset 0 and gives the file its size (finish checks it), one file operation less.
    if (pieceCountOf(task.contentLength, task.pieceLength) > 1) {
      try {
        await fh.truncate(task.contentLength);
      } catch (err) {
        await fh.close();
        throw err;
      }
    }
    const now = Date.now();
    const meta: TaskMetadata = { ...task, pieces: {}, finished: false, createdAt: now, updatedAt: now, lastUsedAt: now };
    const again = this.entries.get(task.taskId);
    if (again) {
      await fh.close();
      return again;
    }
    const entry = new TaskEntry(meta, contentPath, fh);
    this.entries.set(task.taskId, entry);
    // The metadata is written by the delayed flush (or at close), or when the task finishes
    // first, which for a small task is then the one metadata write it needs. A content file
    // left without metadata by a crash is removed on the next start (sweepOrphans).
    this.scheduleFlush(entry);
    return entry;
  }

  /** Creates (truncates) a content file for reading and writing, making its directory if need be. */
  private async openContent(contentPath: string): Promise<fsp.FileHandle> {
    const dir = path.dirname(contentPath);
    const ensureDir = async () => {
      await fsp.mkdir(dir, { recursive: true });
      if (this.contentDirs.size < 4096) this.contentDirs.add(dir);
    };
    if (!this.contentDirs.has(dir)) await ensureDir();
    return fsp.open(contentPath, 'w+').catch(async (err: NodeJS.ErrnoException) => {
      if (err.code !== 'ENOENT') throw err;
      // The directory went away under us (data directory wiped): make it again.
      await ensureDir();
      return fsp.open(contentPath, 'w+');
    });
  }

  /**
   * Makes the content directory and file of a task about to be downloaded while its download
   * still waits for the scheduler or the origin, so that create() finds them ready instead of
   * making them on the path of the first byte (about 0.5 ms idle, several ms on a busy disk, for
   * every small task). A file no entry takes is removed by discardPrepared (or, after a crash, by
   * the orphan sweep at start). At most `MAX_PREPARED` at once; a failure here is left to create().
   */
  prepare(taskId: string): void {
    if (this.entries.has(taskId) || this.prepared.has(taskId) || this.discarding.has(taskId) || this.prepared.size >= MAX_PREPARED) return;
    this.prepared.set(
      taskId,
      this.openContent(this.contentPathOf(taskId)).catch(() => undefined),
    );
  }

  /** Closes and removes the file prepare() made for a task if no entry took it. */
  async discardPrepared(taskId: string): Promise<void> {
    const early = this.prepared.get(taskId);
    if (!early) return this.discarding.get(taskId);
    this.prepared.delete(taskId);
    const done = (async () => {
      const fh = await early;
      if (!fh) return;
      await fh.close().catch(() => undefined);
      if (!this.entries.has(taskId)) await fsp.rm(this.contentPathOf(taskId), { force: true }).catch(() => undefined);
    })().finally(() => this.discarding.delete(taskId));
    this.discarding.set(taskId, done);
    return done;
  }

  /**
   * Keeps the number of tasks under maxTasks (tiny tasks would otherwise grow the map and the
   * metadata directory without limit): evicts the least recently used finished task not in
   * use, or refuses with RESOURCE_EXHAUSTED when every task is busy.
   */
  private async makeRoomForTask(): Promise<void> {
    const max = this.options.maxTasks ?? MAX_TASKS;
    while (this.entries.size >= max) {
      let victim: TaskEntry | undefined;
      for (const e of this.entries.values()) if (e.finished && !e.inUse && (!victim || e.meta.lastUsedAt < victim.meta.lastUsedAt)) victim = e;
      if (!victim) throw new ResourceExhaustedError(`this host already stores ${this.entries.size} tasks, all in use; try again later`);
      await this.remove(victim.taskId, new Error(`task ${victim.taskId} evicted: more than ${max} tasks`));
    }
  }

  /** Records a piece whose bytes are already written at its offset; children can fetch it from now on. */
  markPiece(entry: TaskEntry, n: number, digest: string): PieceRecord {
    entry.meta.pieces[n] = digest;
    entry.meta.updatedAt = Date.now();
    const record = entry.piece(n) as PieceRecord;
    entry.noteWritten(record.length);
    this.scheduleFlush(entry);
    entry.emit('piece', record);
    return record;
  }

  /** Forgets every stored piece of an unfinished task (its content is fetched again). */
  resetPieces(entry: TaskEntry): void {
    entry.meta.pieces = {};
    entry.meta.updatedAt = Date.now();
    this.scheduleFlush(entry);
  }

  /**
   * fsyncs the content (more than one piece), then records the task as finished. `digest`: the sha256 the content
   * was just checked against; the file as it is now counts as verified.
   */
  async finish(entry: TaskEntry, digest?: string): Promise<void> {
    const fh = await entry.handle();
    await entry.syncSettled();
    // One piece: see the header (re-verified after a restart; not worth an fsync per task).
    if (entry.pieceCount > 1) await fh.sync();
    // fstat of an open local file reads the inode in memory, never the disk: synchronous, as a
    // thread-pool round trip costs the event loop more than the call (as in stampNow).
    const st = fs.fstatSync(fh.fd);
    if (st.size !== entry.meta.contentLength) throw new InternalError(`task ${entry.taskId}: content file holds ${st.size} bytes, expected ${entry.meta.contentLength}`);
    entry.verifiedStamp = stampOf(st);
    if (digest) entry.meta.digest = digest;
    if (!entry.meta.finished && this.entries.get(entry.taskId) === entry) this.finishedEntries++;
    entry.meta.finished = true;
    entry.meta.finishedAt = Date.now();
    entry.meta.updatedAt = entry.meta.finishedAt;
    this.cancelFlush(entry.taskId);
    await this.flushing.get(entry.taskId);
    await this.writeMetaOf(entry);
    entry.emit('finished');
  }

  /**
   * True when a finished task's content file holds the bytes that were verified (see the
   * header); a task whose bytes no longer match is removed and false returned. Partial tasks
   * answer true: their pieces were checked as they were stored and readers wait for them.
   */
  async ensureIntact(entry: TaskEntry): Promise<boolean> {
    if (!entry.finished || entry.deleted) return !entry.deleted;
    if (entry.verifiedStamp !== undefined) {
      await entry.handle().catch(() => undefined);
      if (entry.stampNow() === entry.verifiedStamp) return true;
    }
    entry.verifying ??= this.reverify(entry).finally(() => {
      entry.verifying = undefined;
    });
    return entry.verifying;
  }

  /**
   * True once the bytes [start, start+length) of a task may be handed to a peer: as ensureIntact,
   * except that while a task without a digest is re-verified piece by piece (first use after a
   * restart), a range is ready as soon as every piece overlapping it has been checked against its
   * crc32 by that pass and the file is still the one the pass began on: a restarted seed serves
   * its first pieces at once instead of after the whole file. False when the task failed the
   * pass and was dropped (nothing more of it is served).
   */
  async rangeVerified(entry: TaskEntry, start: number, length: number): Promise<boolean> {
    if (!entry.finished || entry.verifiedStamp !== undefined || entry.meta.digest) return this.ensureIntact(entry);
    const last = length > 0 ? Math.floor((start + length - 1) / entry.meta.pieceLength) : 0;
    const whole = this.ensureIntact(entry);
    for (;;) {
      if (entry.deleted) return false;
      const pass = entry.verifying;
      if (entry.verifiedStamp !== undefined || !pass) return whole;
      if (entry.checkedPieces > last && entry.passStamp !== undefined && entry.stampNow() === entry.passStamp) return true;
      await new Promise<void>((resolve) => {
        const done = () => {
          entry.off('checked', done);
          resolve();
        };
        entry.on('checked', done);
        pass.then(done, done);
      });
    }
  }

  /**
   * The whole content of a finished task from memory, when it is held there and the content
   * file is still the verified one: the same identity check as ensureIntact, by a synchronous
   * fstat of the open handle. A file that changed loses its copy; the caller then takes the
   * file path (ensureIntact re-verifies it, and drops the task if it no longer matches).
   *
   * The fstat runs at most once per heldRecheckMs per task (a syscall and a Stats object were
   * the largest cost of a small hit). That cannot let a wrong byte out: what is answered is
   * this Buffer, checked against the digest when it was read, never the file; the check only
   * notices a changed file so that the task is re-verified (and dropped if it no longer
   * matches) instead of living on beside a bad file. Removal, a new entry and a re-verification
   * (entry.deleted, verifiedStamp) are still seen on every hit.
   */
  contentInMemory(entry: TaskEntry): Buffer | undefined {
    const held = this.memory.get(entry.taskId);
    if (held === undefined) return undefined;
    if (entry.finished && !entry.deleted && held.stamp === entry.verifiedStamp) {
      const now = performance.now();
      if (now - held.checkedAt < this.heldRecheckMs) return held.content;
      if (entry.stampNow() === held.stamp) {
        held.checkedAt = now;
        return held.content;
      }
    }
    this.memory.delete(entry.taskId);
    return undefined;
  }

  /**
   * Reads a small finished task's content (ensureIntact just answered true) and keeps it in
   * memory for the next hits. The bytes read are checked against the task's sha256 (without
   * one, every piece's crc32) before anyone gets them: a copy in memory never holds a byte
   * that was not verified. Undefined: too large for memory, or the file changed while it was
   * read (the caller serves the file as before); bytes that do not match drop the task.
   */
  async loadIntoMemory(entry: TaskEntry): Promise<Buffer | undefined> {
    const length = entry.meta.contentLength;
    const stamp = entry.verifiedStamp;
    if (!this.memory.fits(length) || !entry.finished || entry.deleted || stamp === undefined) return undefined;
    const fh = await entry.handle();
    const content = Buffer.allocUnsafeSlow(length);
    const { bytesRead } = await fh.read(content, 0, length, 0);
    if (entry.deleted || entry.stampNow() !== stamp || entry.verifiedStamp !== stamp) return undefined;
    const problem = bytesRead !== length ? `short read: ${bytesRead} of ${length} bytes` : contentProblem(entry.meta, content);
    if (problem !== undefined) {
      this.options.logger.warn({ taskId: entry.taskId, problem }, 'stored task failed verification: dropped, it will be fetched again');
      this.options.onCorrupt?.(entry.taskId);
      await this.remove(entry.taskId, new Error(`task ${entry.taskId} failed verification: ${problem}`));
      return undefined;
    }
    this.memory.set(entry.taskId, content, stamp);
    return content;
  }

  /** Contents held in memory: count and bytes. */
  memoryUsage(): { entries: number; bytes: number } {
    return { entries: this.memory.size, bytes: this.memory.bytes };
  }

  private async reverify(entry: TaskEntry): Promise<boolean> {
    const log = this.options.logger;
    let problem: string | undefined;
    let stamp: string | undefined;
    try {
      const fh = await entry.handle();
      const before = stampOf(await fh.stat());
      if (entry.meta.digest) {
        const actual = await sha256OfFile(entry.contentPath);
        if (actual !== entry.meta.digest) problem = `content sha256 is ${actual}, expected ${entry.meta.digest}`;
      } else {
        // Pieces are checked in order; the leading ones that match may be served before the pass ends (rangeVerified).
        entry.passStamp = before;
        entry.checkedPieces = 0;
        const good = await this.verifyPieces(entry.contentPath, entry.meta, (n) => {
          if (n !== entry.checkedPieces) return;
          entry.checkedPieces = n + 1;
          entry.emit('checked');
        });
        const bad = Object.keys(entry.meta.pieces).filter((k) => good[k] === undefined);
        if (bad.length > 0 || entry.finishedPieceCount !== entry.pieceCount) problem = `pieces ${bad.slice(0, 10).join(', ')} no longer match their crc32`;
      }
      const after = stampOf(await fh.stat());
      // Written to while we read it: not a verification of what is there now.
      if (!problem && after !== before) problem = 'content file changed while it was being verified';
      stamp = after;
    } catch (err) {
      problem = `content unreadable: ${(err as Error).message}`;
    } finally {
      entry.passStamp = undefined;
      entry.checkedPieces = 0;
    }
    if (problem === undefined) {
      entry.verifiedStamp = stamp;
      return true;
    }
    log.warn({ taskId: entry.taskId, problem }, 'stored task failed verification: dropped, it will be fetched again');
    this.options.onCorrupt?.(entry.taskId);
    await this.remove(entry.taskId, new Error(`task ${entry.taskId} failed verification: ${problem}`));
    return false;
  }

  /** Persists the use time (cache hits keep a task alive for GC). */
  touch(entry: TaskEntry): void {
    const now = Date.now();
    entry.touch(now);
    // Only GC after a restart reads the persisted use time: one metadata write per task per
    // touchFlushMs, not one per cache hit.
    this.scheduleFlush(entry, this.options.touchFlushMs ?? TOUCH_FLUSH_MS, now);
  }

  /** Writes the entry's metadata within `delayMs` (an earlier pending write stands). */
  private scheduleFlush(entry: TaskEntry, delayMs = this.options.metadataFlushMs ?? 200, now = Date.now()): void {
    const dueAt = now + delayMs;
    const pending = this.flushTimers.get(entry.taskId);
    if (pending && pending.dueAt <= dueAt) return;
    if (pending) clearTimeout(pending.timer);
    const timer = setTimeout(() => {
      this.flushTimers.delete(entry.taskId);
      if (entry.deleted) return;
      this.queueMetaWrite(entry);
    }, delayMs);
    timer.unref();
    this.flushTimers.set(entry.taskId, { timer, dueAt });
  }

  /** Writes the entry's metadata after any write of it still in flight (never two at once, never out of order). */
  private queueMetaWrite(entry: TaskEntry): void {
    const before = this.flushing.get(entry.taskId) ?? Promise.resolve();
    const p: Promise<void> = before
      .then(() => (entry.deleted ? undefined : this.writeMetaOf(entry)))
      .catch((err: unknown) => this.options.logger.warn({ err, taskId: entry.taskId }, 'metadata flush failed'))
      .finally(() => {
        if (this.flushing.get(entry.taskId) === p) this.flushing.delete(entry.taskId);
      });
    this.flushing.set(entry.taskId, p);
  }

  private cancelFlush(taskId: string): void {
    const t = this.flushTimers.get(taskId);
    if (t) clearTimeout(t.timer);
    this.flushTimers.delete(taskId);
  }

  /** Writes pending metadata now (shutdown). */
  async flushAll(): Promise<void> {
    for (const taskId of [...this.flushTimers.keys()]) {
      this.cancelFlush(taskId);
      const e = this.entries.get(taskId);
      if (e && !e.deleted) await this.writeMetaOf(e);
    }
    await Promise.all(this.flushing.values());
  }

  /**
   * The entry's metadata. A task whose first write is the one that finishes it (every small
   * task) goes to the journal, as do its later writes (use time). Otherwise the task has its own
   * file: the first write goes straight to it, without a temporary file and a rename (there is no
   * earlier version to keep, and one torn by a crash does not parse, so the next start drops the
   * task and its content); later writes replace the file atomically.
   */
  private async writeMetaOf(entry: TaskEntry): Promise<void> {
    if (entry.deleted) return;
    if (entry.metaIn === 'journal' || (entry.metaIn === 'none' && entry.meta.finished)) {
      if (entry.metaIn === 'none') {
        entry.metaIn = 'journal';
        this.journalLive++;
      }
      await this.journal.put(entry.meta);
      this.compactJournalIfDue();
      return;
    }
    if (entry.metaIn === 'file') return this.writeMeta(entry.meta);
    entry.metaIn = 'file';
    await fsp.writeFile(this.metaPathOf(entry.taskId), JSON.stringify(entry.meta));
  }

  private async writeMeta(meta: TaskMetadata): Promise<void> {
    const target = this.metaPathOf(meta.taskId);
    const tmp = `${target}.${process.pid}.${Math.random().toString(36).slice(2)}.tmp`;
    await fsp.writeFile(tmp, JSON.stringify(meta));
    await fsp.rename(tmp, target);
  }

  /** Removes a task (its waiters get `reason`). */
  async remove(taskId: string, reason = new Error(`task ${taskId} was deleted`)): Promise<boolean> {
    const entry = this.entries.get(taskId);
    this.memory.delete(taskId);
    await this.discardPrepared(taskId);
    if (entry) {
      entry.deleted = true;
      entry.failure ??= reason;
      this.entries.delete(taskId);
      if (entry.finished) this.finishedEntries--;
      this.cancelFlush(taskId);
      await this.flushing.get(taskId);
      entry.emit('failed', reason);
      await entry.closeHandle();
    }
    if (entry?.metaIn === 'journal') {
      this.journalLive--;
      // Not written (disk error): the next start finds no content file for the record and drops it.
      await this.journal.del(taskId).catch((err: unknown) => this.options.logger.warn({ err, taskId }, 'metadata journal: removal not recorded'));
      this.compactJournalIfDue();
      await fsp.rm(this.contentPathOf(taskId), { force: true });
    } else {
      await this.removeFiles(taskId);
    }
    return entry !== undefined;
  }

  private async removeFiles(taskId: string): Promise<void> {
    await fsp.rm(this.metaPathOf(taskId), { force: true });
    await fsp.rm(this.contentPathOf(taskId), { force: true });
  }

  /** Bytes of our own content files. */
  ownBytes(): number {
    let total = 0;
    for (const e of this.entries.values()) total += e.meta.contentLength;
    return total;
  }

  private async usage(): Promise<DiskUsage> {
    if (this.options.diskGCThreshold > 0) return { total: this.options.diskGCThreshold, used: this.ownBytes() };
    if (this.options.fsUsage) return this.options.fsUsage();
    const st = await fsp.statfs(this.options.dataDir);
    const total = st.blocks * st.bsize;
    return { total, used: total - st.bfree * st.bsize };
  }

  /**
   * Evicts tasks unused for taskExpireTime, then, when usage reaches the high watermark,
   * least-recently-used finished tasks until usage is under the low watermark. Tasks being
   * downloaded or read are never touched.
   */
  async gc(now = Date.now()): Promise<GcResult> {
    const expired: string[] = [];
    const evicted: string[] = [];
    for (const e of [...this.entries.values()]) {
      if (e.inUse) continue;
      if (now - e.meta.lastUsedAt >= this.options.taskExpireMs) {
        await this.remove(e.taskId, new Error(`task ${e.taskId} expired`));
        expired.push(e.taskId);
      }
    }
    const { total, used } = await this.usage();
    if (total > 0 && (used / total) * 100 >= this.options.highPercent) {
      let toFree = used - (total * this.options.lowPercent) / 100;
      const candidates = [...this.entries.values()].filter((e) => e.finished && !e.inUse).sort((a, b) => a.meta.lastUsedAt - b.meta.lastUsedAt);
      for (const e of candidates) {
        if (toFree <= 0) break;
        toFree -= e.meta.contentLength;
        await this.remove(e.taskId, new Error(`task ${e.taskId} evicted by disk GC`));
        evicted.push(e.taskId);
      }
    }
    if (expired.length || evicted.length) this.options.logger.info({ expired: expired.length, evicted: evicted.length, used, total }, 'storage GC');
    return { expired, evicted };
  }

  async close(): Promise<void> {
    this.memory.clear();
    await this.flushAll();
    await this.journal.close();
    for (const e of this.entries.values()) await e.closeHandle();
  }
}

/** Why `content` is not the whole content `meta` describes (its sha256, else each piece's crc32), or undefined when it is. */
function contentProblem(meta: TaskMetadata, content: Buffer): string | undefined {
  if (meta.digest) {
    const actual = `sha256:${createHash('sha256').update(content).digest('hex')}`;
    return actual === meta.digest ? undefined : `content sha256 is ${actual}, expected ${meta.digest}`;
  }
  const count = pieceCountOf(meta.contentLength, meta.pieceLength);
  for (let n = 0; n < count; n++) {
    const { offset, length } = pieceRange(n, meta.contentLength, meta.pieceLength);
    const expected = meta.pieces[n];
    if (expected === undefined) return `piece ${n} is not recorded`;
    if (crc32Of(content.subarray(offset, offset + length)) !== expected) return `piece ${n} no longer matches its crc32`;
  }
  return undefined;
}

/** fs.createReadStream-backed stream of [start, start+length) of a content file. */
export function createContentReadStream(contentPath: string, start: number, length: number): fs.ReadStream {
  return fs.createReadStream(contentPath, { start, end: start + length - 1, highWaterMark: 1024 * 1024 });
}

const SEND_CHUNK = 1024 * 1024;
const sendPool: Buffer[] = [];
const takeSendBuffer = () => sendPool.pop() ?? Buffer.allocUnsafeSlow(SEND_CHUNK);
const giveSendBuffer = (b: Buffer) => {
  if (sendPool.length < 16) sendPool.push(b);
};

/**
 * [start, start+length) of a stored task's content file, read through the task's shared handle.
 * As a Readable it reads 1 MiB chunks into fresh buffers (any consumer may keep them);
 * `sendTo` instead writes the bytes to one destination from pooled buffers, each reused once
 * the destination has taken it, with the next read overlapping the previous write: the cache-hit
 * fast path, which allocates (and garbage-collects) nothing per chunk.
 */
export class ContentReadStream extends Readable {
  private pos: number;
  private readonly end: number;
  private taken = false;

  /**
   * `beforeEnd`: for a task still downloading with a digest to verify, the last chunk is held
   * back until it settles, so a reader never sees a clean end of content that then fails.
   */
  constructor(
    private readonly entry: TaskEntry,
    start: number,
    length: number,
    private readonly onBytes: (n: number) => void = () => undefined,
    private readonly beforeEnd?: Promise<unknown>,
  ) {
    super({ highWaterMark: 2 * SEND_CHUNK });
    this.pos = start;
    this.end = start + length;
  }

  override _read(): void {
    this.taken = true;
    if (this.pos >= this.end) {
      this.push(null);
      return;
    }
    const n = Math.min(SEND_CHUNK, this.end - this.pos);
    const buf = Buffer.allocUnsafeSlow(n);
    const at = this.pos;
    this.pos += n;
    this.stored(at, n)
      .then(() => this.entry.handle())
      .then((fh) => fh.read(buf, 0, n, at))
      .then(async ({ bytesRead }) => {
        if (bytesRead !== n) throw new Error(`short read of task ${this.entry.taskId} at ${at}`);
        if (this.pos >= this.end && this.beforeEnd) await this.beforeEnd;
        this.onBytes(n);
        this.push(buf);
        if (this.pos >= this.end) this.push(null);
      })
      .catch((err: Error) => this.destroy(err));
  }

  /** Resolves once every piece overlapping [at, at+n) is stored (at once for a finished task). */
  private async stored(at: number, n: number): Promise<void> {
    if (this.entry.finished) return;
    const pieceLength = this.entry.meta.pieceLength;
    for (let p = Math.floor(at / pieceLength), last = Math.floor((at + n - 1) / pieceLength); p <= last; p++) await this.entry.waitForPiece(p);
  }

  /**
   * Resolves when the first bytes can be sent (their pieces stored and, if they are also the
   * last bytes, the content digest settled); rejects when the download fails before that, so
   * the caller can still answer with an error status instead of cutting a started response.
   */
  async firstBytesReady(): Promise<void> {
    if (this.pos >= this.end) return;
    const n = Math.min(SEND_CHUNK, this.end - this.pos);
    await this.stored(this.pos, n);
    if (this.pos + n >= this.end && this.beforeEnd) await this.beforeEnd;
  }

  /** True while nothing was read as a Readable: `sendTo` may still take over. */
  get canSend(): boolean {
    return !this.taken && !this.destroyed;
  }

  /** Writes the remaining bytes to `out` and ends it; the stream is then closed. */
  async sendTo(out: Writable): Promise<void> {
    if (!this.canSend) throw new Error('content stream already being read');
    this.taken = true;
    // Failures reach the caller as the rejection: nobody else listens to this stream now.
    this.on('error', () => undefined);
    let closed = false;
    let wake: (() => void) | undefined;
    const onClose = () => {
      closed = true;
      wake?.();
    };
    out.on('close', onClose);
    let inFlight = 0;
    try {
      const fh = await this.entry.handle();
      while (this.pos < this.end) {
        while (!closed && (inFlight >= 2 || out.writableNeedDrain)) {
          await new Promise<void>((r) => {
            const done = () => {
              out.off('drain', done);
              wake = undefined;
              r();
            };
            wake = done;
            out.once('drain', done);
          });
        }
        if (closed) throw new Error('destination closed');
        const n = Math.min(SEND_CHUNK, this.end - this.pos);
        await this.stored(this.pos, n);
        if (this.destroyed) throw this.errored ?? new Error('content stream destroyed');
        const buf = takeSendBuffer();
        const { bytesRead } = await fh.read(buf, 0, n, this.pos);
        if (bytesRead !== n) {
          giveSendBuffer(buf);
          throw new Error(`short read of task ${this.entry.taskId} at ${this.pos}`);
        }
        if (this.pos + n >= this.end && this.beforeEnd) await this.beforeEnd.catch((err: Error) => {
          giveSendBuffer(buf);
          throw err;
        });
        if (closed) {
          giveSendBuffer(buf);
          throw new Error('destination closed');
        }
        this.pos += n;
        inFlight++;
        out.write(buf.subarray(0, n), (err) => {
          inFlight--;
          // Only a fully written buffer is safe to reuse.
          if (!err) giveSendBuffer(buf);
          wake?.();
        });
        this.onBytes(n);
      }
      out.end();
      // finished() also settles when the client goes away before the last bytes are flushed.
      await finished(out);
      this.destroy();
    } catch (err) {
      this.destroy();
      throw err;
    } finally {
      out.off('close', onClose);
    }
  }
}
