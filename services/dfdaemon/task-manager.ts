/**
 * The download engine: TaskManager implements TaskApi. One TaskDownload per task id runs
 * the AnnouncePeer conversation with a scheduler, fetches pieces from parents (SyncPieces +
 * HTTP range GETs, crc32-checked) or from the origin, and stores them; readers stream the
 * content in order as pieces land, and a finished task is read straight from its file.
 */
import { randomBytes } from 'node:crypto';
import { EventEmitter } from 'node:events';
import * as fs from 'node:fs';
import * as fsp from 'node:fs/promises';
import type * as http from 'node:http';
import * as net from 'node:net';
import * as path from 'node:path';
import { Readable } from 'node:stream';
import * as grpc from '@grpc/grpc-js';
import type { Logger } from 'pino';
import {
  blobDigestOf,
  ConflictError,
  DEFAULT_FILTERED_QUERY_PARAMS,
  FailedPreconditionError,
  GRPC_OPTIONS,
  InvalidArgumentError,
  ResourceExhaustedError,
  peerIdOf,
  pieceLengthFor,
  taskIdOf,
  taskMetadataProblem,
  UnavailableError,
  type DfdaemonConfig,
} from '../common';
import { protos, type AnnouncePeerRequest, type AnnouncePeerResponse__Output, type DfdaemonUploadClient, type Peer__Output } from '../proto';
import type { SyncPiecesResponse__Output } from '../proto/gen/dfdaemon/v2/SyncPiecesResponse';
import { ContentHasher, warmContentHasher } from './content-hasher';
import { ensureSpace, freeBytesAt, isLocalIoError, localStorageError, rethrowLocalIo } from './local-io';
import type { HostIdentity, SchedulerPool } from './control-plane';
import type { DfdaemonMetrics } from './metrics';
import { fetchFromOrigin } from './origin-fetch';
import { fetchPieceRaw, OriginClient, PieceDigestError, PieceHttpError } from './piece-transfer';
import { bucketFor, Limiters, type TokenBucket } from './rate-limiter';
import { ContentReadStream, type TaskEntry, type TaskStore } from './storage';
import {
  type DownloadOptions,
  type DownloadProgress,
  type PieceProgress,
  type TaskApi,
  type TaskInfo,
  type TaskReadResult,
} from './task-api';

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
}

/** Bounds of the engine's maps: concurrent downloads (then RESOURCE_EXHAUSTED) and cached parent clients. */
export const MAX_RUNNING_DOWNLOADS = 1024;
export const MAX_UPLOAD_CLIENTS = 256;
/** Upstream's maxScheduleCount. */
const MAX_RESCHEDULES = 5;
const RESCHEDULE_RETRY_MS = 1000;

type Deferred<T> = { promise: Promise<T>; resolve: (v: T) => void; reject: (e: Error) => void };
function deferred<T>(): Deferred<T> {
  let resolve!: (v: T) => void;
  let reject!: (e: Error) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  promise.catch(() => undefined);
  return { promise, resolve, reject };
}

const validPort = (p: number) => Number.isInteger(p) && p > 0 && p < 65536;

/** The assembled content does not match its sha256: its bytes cannot be trusted, so the partial task is dropped. */
class ContentDigestMismatchError extends FailedPreconditionError {}

interface ParentState {
  readonly peerId: string;
  readonly hostId: string;
  readonly ip: string;
  readonly grpcPort: number;
  readonly downloadPort: number;
  readonly digests: Map<number, string>;
  inflight: number;
  blocked: boolean;
  syncEnded: boolean;
  call?: grpc.ClientReadableStream<SyncPiecesResponse__Output>;
}

/** The scheduler's answer cannot describe a task (hostile or broken scheduler): refused, the origin is used instead. */
class SchedulerAnswerError extends UnavailableError {}

/** Most parents one download talks to at once (upstream's candidateParentLimit tops out at 20). */
const MAX_PARENTS = 32;
const PIECE_DIGEST = /^crc32:\d{1,10}$/;

/** The AnnouncePeer stream of one download (or nothing, when going to the origin without a scheduler). */
class PeerReporter {
  constructor(
    private readonly stream: grpc.ClientDuplexStream<AnnouncePeerRequest, AnnouncePeerResponse__Output> | undefined,
    private readonly ids: { hostId: string; taskId: string; peerId: string },
  ) {}
  get connected(): boolean {
    return this.stream !== undefined;
  }
  send(req: Omit<AnnouncePeerRequest, 'hostId' | 'taskId' | 'peerId'>): void {
    if (!this.stream || this.stream.writableEnded || this.stream.destroyed) return;
    this.stream.write({ ...this.ids, ...req });
  }
  close(): void {
    if (this.stream && !this.stream.writableEnded) this.stream.end();
  }
  cancel(): void {
    this.stream?.cancel();
  }
}

/** One download of one task, shared by every caller asking for it meanwhile. */
class TaskDownload extends EventEmitter {
  readonly peerId: string;
  readonly entryReady = deferred<TaskEntry>();
  readonly done = deferred<TaskEntry>();
  entry: TaskEntry | undefined;
  private reporter = new PeerReporter(undefined, { hostId: '', taskId: '', peerId: '' });
  private readonly parents = new Map<string, ParentState>();
  private readonly failedParents = new Set<string>();
  private readonly inflight = new Set<number>();
  private hasher: ContentHasher | undefined;
  private readonly expectedSha256: string | undefined;
  private p2pWake: (() => void) | undefined;
  private rescheduleRequested = false;
  private rescheduleCount = 0;
  private backToSourceOrdered = false;
  private readonly abort = new AbortController();
  private readonly log: Logger;
  completedLength = 0;
  /** Which parent supplied each piece: blamed when the whole content does not match its digest. */
  private readonly pieceParents = new Map<number, string>();
  private retriedFromOrigin = false;
  /**
   * Settles when the content of the current attempt was verified (or failed): readers of a
   * download in progress hold back their last bytes until then, so a mismatch fails them
   * instead of completing a response with wrong bytes. Replaced when the download restarts.
   */
  private attempt = deferred<void>();

  constructor(
    private readonly mgr: TaskManager,
    readonly taskId: string,
    readonly options: DownloadOptions,
    private readonly seed: boolean,
  ) {
    super();
    this.setMaxListeners(0);
    this.peerId = peerIdOf(mgr.host.ip, mgr.host.hostname, seed);
    this.expectedSha256 = options.digest ?? blobDigestOf(options.url);
    if (this.expectedSha256 && !/^sha256:[a-f0-9]{64}$/.test(this.expectedSha256)) {
      throw new InvalidArgumentError(`digest ${this.expectedSha256} is not "sha256:<64 hex>"`);
    }
    this.log = mgr.logger.child({ taskId, peerId: this.peerId });
  }

  /** True when the content is checked against a sha256 before the task is finished. */
  get verifiesDigest(): boolean {
    return this.expectedSha256 !== undefined;
  }

  /** See `attempt`. */
  attemptVerified(): Promise<void> {
    return this.attempt.promise;
  }

  private get cfg(): DfdaemonConfig {
    return this.mgr.config;
  }

  stop(): void {
    this.abort.abort();
    this.reporter.cancel();
    for (const p of this.parents.values()) p.call?.cancel();
    this.p2pWake?.();
  }

  async run(): Promise<void> {
    try {
      let existing = this.mgr.store.get(this.taskId);
      if (existing && !(await this.mgr.store.ensureIntact(existing))) existing = undefined;
      if (existing) {
        await this.useEntry(existing);
        if (!existing.finished) await this.mgr.reserveSpace(this.taskId, existing.meta.contentLength - this.completedLength);
      }
      const pool = this.mgr.schedulers;
      let scheduled = false;
      if (pool && this.entry?.finished !== true) {
        await pool.resolveIfEmpty();
        if (pool.addresses().length > 0) scheduled = await this.viaScheduler(pool);
      }
      if (!scheduled && this.entry?.finished !== true) {
        await this.originInsteadOfScheduler(`no scheduler reachable for task ${this.taskId}`, 'no scheduler reachable: downloading from the origin directly');
      }
      if (!this.entry) throw new Error('download ended without content');
      this.done.resolve(this.entry);
    } catch (err) {
      await this.fail(err as Error);
    }
  }

  /**
   * The scheduler cannot help (none reachable, or it went silent): the origin, unless back-to-source
   * is disabled for this download or by scheduler.disableAutoBackSource.
   */
  private async originInsteadOfScheduler(reason: string, logMessage: string): Promise<void> {
    if (this.options.disableBackToSource || this.cfg.scheduler.disableAutoBackSource) {
      throw new UnavailableError(`${reason} and back-to-source is disabled`);
    }
    this.log.warn(logMessage);
    await this.backToSource();
  }

  private async fail(err: Error): Promise<void> {
    this.hasher?.close();
    if (this.abort.signal.aborted) {
      // Shutting down: keep the partial task for resumption after restart.
      const e = new UnavailableError('dfdaemon is shutting down');
      this.attempt.reject(e);
      this.entryReady.reject(e);
      this.done.reject(e);
      return;
    }
    if (isLocalIoError(err)) err = await localStorageError(err, this.entry?.contentPath ?? this.cfg.dataDir);
    this.log.warn({ err: err.message }, 'download failed');
    this.attempt.reject(err);
    this.entryReady.reject(err);
    this.done.reject(err);
    // Verified pieces stay (a retry resumes instead of fetching everything again; GC expires
    // them if nobody asks); only content that failed its digest is dropped.
    if (this.entry && !this.entry.finished && err instanceof ContentDigestMismatchError) await this.mgr.store.remove(this.taskId, err);
  }

  private async useEntry(entry: TaskEntry): Promise<void> {
    this.entry = entry;
    entry.acquire();
    this.completedLength = entry.pieces().reduce((s, p) => s + p.length, 0);
    if (this.expectedSha256) {
      this.hasher = new ContentHasher(entry);
      this.hasher.advance();
    }
    this.entryReady.resolve(entry);
    this.emitProgress();
  }

  private emitProgress(piece?: PieceProgress): void {
    if (!this.entry) return;
    const p: DownloadProgress = {
      taskId: this.taskId,
      contentLength: this.entry.meta.contentLength,
      completedLength: this.completedLength,
      pieceLength: this.entry.meta.pieceLength,
      responseHeaders: this.entry.meta.responseHeaders,
      piece,
    };
    this.emit('progress', p);
  }

  private async createEntry(contentLength: number, pieceLength: number, responseHeaders: Record<string, string>): Promise<TaskEntry> {
    if (this.entry) return this.entry;
    await this.mgr.reserveSpace(this.taskId, contentLength);
    const entry = await this.mgr.store.create({ taskId: this.taskId, url: this.options.url, contentLength, pieceLength, responseHeaders });
    this.mgr.updateGauge();
    await this.useEntry(entry);
    return entry;
  }

  private downloadMessage(needBackToSource: boolean) {
    const o = this.options;
    return {
      url: o.url,
      digest: o.digest,
      tag: o.tag,
      application: o.application,
      priority: (o.priority ?? 0) as 0,
      filteredQueryParams: [...(o.filteredQueryParams ?? DEFAULT_FILTERED_QUERY_PARAMS)],
      requestHeader: { ...o.requestHeaders },
      disableBackToSource: o.disableBackToSource ?? false,
      needBackToSource,
    };
  }

  /** Runs the AnnouncePeer conversation; false when no scheduler answered (caller falls back). */
  private async viaScheduler(pool: SchedulerPool): Promise<boolean> {
    const needBackToSource = this.seed || this.options.needBackToSource === true;
    const addrs = pool.forTask(this.taskId);
    let reannounced = false;
    for (let i = 0; i < addrs.length; i++) {
      const addr = addrs[i];
      if (this.abort.signal.aborted) throw new UnavailableError('aborted');
      const stream = pool.client(addr).AnnouncePeer();
      const queue: AnnouncePeerResponse__Output[] = [];
      let ended: Error | null | undefined; // undefined: open; null: ended cleanly
      let wake: (() => void) | undefined;
      stream.on('data', (r: AnnouncePeerResponse__Output) => {
        queue.push(r);
        wake?.();
      });
      stream.on('error', (err) => {
        ended = err;
        // A restarted scheduler knows no hosts: announce this one at once, not at the next interval.
        if ((err as grpc.ServiceError).code !== grpc.status.CANCELLED) pool.reannounceSoon();
        wake?.();
      });
      stream.on('end', () => {
        ended ??= null;
        wake?.();
      });
      this.reporter = new PeerReporter(stream, { hostId: this.mgr.host.id, taskId: this.taskId, peerId: this.peerId });
      this.reporter.send({ registerPeerRequest: { download: this.downloadMessage(needBackToSource) } });
      const next = async (timeoutMs: number): Promise<AnnouncePeerResponse__Output | undefined> => {
        const deadline = Date.now() + timeoutMs;
        while (queue.length === 0 && ended === undefined) {
          const left = deadline - Date.now();
          if (left <= 0) throw new Error(`scheduler gave no answer within ${timeoutMs} ms`);
          await new Promise<void>((r) => {
            wake = r;
            setTimeout(r, left).unref();
          });
          wake = undefined;
        }
        return queue.shift();
      };
      let first: AnnouncePeerResponse__Output | undefined;
      try {
        first = await next(this.cfg.scheduler.scheduleTimeout);
      } catch (err) {
        this.log.warn({ scheduler: addr, err: (err as Error).message }, 'scheduler did not answer');
        stream.cancel();
        continue;
      }
      if (!first) {
        this.log.warn({ scheduler: addr, err: ended?.message }, 'AnnouncePeer stream closed before an answer');
        if ((ended as grpc.ServiceError | null | undefined)?.code === grpc.status.NOT_FOUND && !reannounced) {
          // The scheduler does not know this host (it restarted): announce, then register again.
          reannounced = true;
          await pool.reannounce(addr);
          i--;
        }
        continue;
      }
      this.log.debug({ scheduler: addr }, 'registered with scheduler');
      try {
        await this.conversation(first, next, () => ended);
      } catch (err) {
        if (!(err instanceof SchedulerAnswerError) || this.entry) throw err;
        this.log.warn({ scheduler: addr, err: err.message }, 'refused the scheduler\'s answer');
        await this.originInsteadOfScheduler(err.message, 'scheduler sent unusable task metadata: downloading from the origin directly');
      }
      return true;
    }
    this.reporter = new PeerReporter(undefined, { hostId: '', taskId: '', peerId: '' });
    return false;
  }

  private async conversation(
    first: AnnouncePeerResponse__Output,
    next: (timeoutMs: number) => Promise<AnnouncePeerResponse__Output | undefined>,
    streamEnded: () => Error | null | undefined,
  ): Promise<void> {
    let response: AnnouncePeerResponse__Output | undefined = first;
    let p2p: Promise<'done' | 'reschedule'> | undefined;
    let started = false;
    // Answers keep coming while pieces download (reschedules, back-to-source orders).
    const answers: AnnouncePeerResponse__Output[] = [];
    let answerWake: (() => void) | undefined;
    let pumpAnswers = true;
    const answerPump = (async () => {
      while (pumpAnswers) {
        let r: AnnouncePeerResponse__Output | undefined;
        try {
          r = await next(24 * 3600 * 1000);
        } catch {
          r = undefined;
        }
        if (!r) break;
        answers.push(r);
        answerWake?.();
        this.p2pWake?.();
      }
      answerWake?.();
    })();
    try {
      for (;;) {
        if (response) {
          switch (response.response) {
            case 'waitResponse':
              break;
            case 'emptyTaskResponse': {
              const entry = await this.createEntry(0, pieceLengthFor(0), {});
              await this.complete(entry, false);
              return;
            }
            case 'needBackToSourceResponse':
              this.backToSourceOrdered = true;
              this.p2pWake?.();
              if (p2p) await p2p.catch(() => undefined);
              await this.backToSource();
              return;
            case 'normalTaskResponse': {
              const ntr = response.normalTaskResponse!;
              const task = ntr.task;
              if (!this.entry) {
                if (!task) throw new Error('normal_task_response without task metadata');
                const contentLength = Number(task.contentLength);
                const pieceLength = Number(task.pieceLength) || pieceLengthFor(contentLength);
                const problem = taskMetadataProblem(contentLength, pieceLength);
                if (problem) {
                  const refusal = new SchedulerAnswerError(`scheduler sent unusable task metadata: ${problem}`);
                  this.reporter.send({ downloadPeerFailedRequest: { description: refusal.message } });
                  throw refusal;
                }
                await this.createEntry(contentLength, pieceLength, { ...task.responseHeader });
              }
              if (!started) {
                this.reporter.send({ downloadPeerStartedRequest: {} });
                started = true;
              }
              this.rescheduleRequested = false;
              this.addParents(ntr.candidateParents);
              p2p ??= this.runP2P();
              break;
            }
            default:
              break;
          }
        }
        response = answers.shift();
        if (response) continue;
        if (p2p) {
          const outcome = await Promise.race([
            p2p,
            new Promise<'answer'>((r) => {
              answerWake = () => r('answer');
            }),
          ]);
          answerWake = undefined;
          if (outcome === 'done') {
            await this.complete(this.entry!, false);
            return;
          }
          if (outcome === 'reschedule') {
            p2p = undefined;
            if (this.rescheduleCount > MAX_RESCHEDULES && !this.options.disableBackToSource) {
              this.log.warn({ reschedules: this.rescheduleCount }, 'too many reschedules: going back to source');
              await this.backToSource();
              return;
            }
            if (streamEnded() !== undefined && answers.length === 0) return this.originAfterStreamClosed(streamEnded());
            // wait for the answer to our reschedule request
            await new Promise<void>((r) => {
              answerWake = r;
              if (answers.length > 0 || streamEnded() !== undefined) r();
            });
            answerWake = undefined;
            if (answers.length === 0) return this.originAfterStreamClosed(streamEnded());
          }
        } else {
          if (answers.length === 0 && streamEnded() !== undefined) return this.originAfterStreamClosed(streamEnded());
          // After a reschedule the scheduler may answer "wait" while the only holders are the
          // parents we blocked: ask again now and then (each ask counts toward its
          // retryBackToSourceLimit, and toward ours).
          // Without a reschedule pending, a scheduler that keeps us waiting longer than
          // scheduleTimeout has lost track of us: go to the origin (upstream's behaviour).
          const retryMs = this.rescheduleRequested ? RESCHEDULE_RETRY_MS : this.cfg.scheduler.scheduleTimeout;
          let timer: NodeJS.Timeout | undefined;
          const answered = await new Promise<boolean>((r) => {
            answerWake = () => r(true);
            if (answers.length > 0 || streamEnded() !== undefined) r(true);
            timer = setTimeout(() => r(false), retryMs);
          });
          clearTimeout(timer);
          answerWake = undefined;
          if (!answered && answers.length === 0) {
            if (!this.rescheduleRequested) {
              await this.originInsteadOfScheduler(
                `scheduler gave no parent within scheduleTimeout (${retryMs} ms)`,
                'scheduler gave no parent within scheduleTimeout: going back to source',
              );
              return;
            }
            if (this.rescheduleCount >= MAX_RESCHEDULES && !this.options.disableBackToSource) {
              this.log.warn({ reschedules: this.rescheduleCount }, 'no parent after repeated reschedules: going back to source');
              await this.backToSource();
              return;
            }
            this.rescheduleCount++;
            this.reporter.send({ reschedulePeerRequest: { candidateParentIds: [...this.failedParents], description: 'still no usable parent' } });
          }
        }
      }
    } finally {
      pumpAnswers = false;
      this.reporter.close();
      void answerPump;
    }
  }

  /**
   * The scheduler stream died (scheduler restarted or killed) and no parent is left: the origin,
   * keeping every piece already stored, like the scheduleTimeout path. The host re-announces at
   * once so the next download finds the restarted scheduler.
   */
  private async originAfterStreamClosed(ended: Error | null | undefined): Promise<void> {
    this.mgr.schedulers?.reannounceSoon();
    const why = ended?.message ?? 'ended';
    await this.originInsteadOfScheduler(
      `scheduler stream closed (${why}) while ${this.entry ? this.missingPieces().length : 'all'} pieces are missing`,
      'scheduler stream closed and no parent left: going back to source, keeping the finished pieces',
    );
  }

  private addParents(candidates: readonly Peer__Output[]): void {
    for (const c of candidates) {
      if (!c.host || this.parents.has(c.id) || this.failedParents.has(c.id) || c.id === this.peerId) continue;
      if (this.parents.size >= MAX_PARENTS) break;
      if (!c.id || c.id.length > 512 || !net.isIP(c.host.ip) || !validPort(c.host.port) || !validPort(c.host.downloadPort)) {
        this.log.warn({ parent: c.id.slice(0, 128), ip: c.host.ip.slice(0, 64), port: c.host.port, downloadPort: c.host.downloadPort }, 'ignoring a candidate parent with an unusable address');
        continue;
      }
      const parent: ParentState = {
        peerId: c.id,
        hostId: c.host.id,
        ip: c.host.ip,
        grpcPort: c.host.port,
        downloadPort: c.host.downloadPort,
        digests: new Map(),
        inflight: 0,
        blocked: false,
        syncEnded: false,
      };
      this.parents.set(c.id, parent);
      this.syncPieces(parent);
    }
    this.p2pWake?.();
  }

  private syncPieces(parent: ParentState): void {
    const client = this.mgr.uploadClient(parent.ip, parent.grpcPort);
    const call = client.SyncPieces({ hostId: this.mgr.host.id, taskId: this.taskId, interestedPieceNumbers: [] });
    parent.call = call;
    call.on('data', (p: SyncPiecesResponse__Output) => {
      const entry = this.entry;
      // Only pieces of this task as we know it: a number past the end or a foreign digest is not a piece.
      if (!entry || p.number >= entry.pieceCount || !PIECE_DIGEST.test(p.digest)) {
        this.log.warn({ parent: parent.peerId, piece: p.number }, 'parent announced a piece this task does not have: blocking it');
        this.blockParent(parent, undefined, true);
        this.p2pWake?.();
        return;
      }
      parent.digests.set(p.number, p.digest);
      this.p2pWake?.();
    });
    const ended = (err?: Error) => {
      parent.syncEnded = true;
      if (err && !parent.blocked && (err as grpc.ServiceError).code !== grpc.status.CANCELLED) {
        this.log.debug({ parent: parent.peerId, err: err.message }, 'SyncPieces ended with error');
        if (parent.digests.size === 0) this.blockParent(parent, undefined, false);
      }
      this.p2pWake?.();
    };
    call.on('error', (err) => ended(err));
    call.on('end', () => ended());
  }

  private blockParent(parent: ParentState, pieceNumber: number | undefined, report: boolean): void {
    if (parent.blocked) return;
    parent.blocked = true;
    this.failedParents.add(parent.peerId);
    parent.call?.cancel();
    if (report) this.reporter.send({ downloadPieceFailedRequest: { pieceNumber, parentId: parent.peerId, temporary: true } });
  }

  private missingPieces(): number[] {
    const e = this.entry!;
    const out: number[] = [];
    for (let n = 0; n < e.pieceCount; n++) if (!e.hasPiece(n) && !this.inflight.has(n)) out.push(n);
    return out;
  }

  /** Fetches every missing piece from parents; resolves 'done' when complete, 'reschedule' when no parent can help. */
  private runP2P(): Promise<'done' | 'reschedule'> {
    const entry = this.entry!;
    const concurrency = this.cfg.download.concurrentPieceCount;
    return new Promise((resolve, reject) => {
      let settled = false;
      const finish = (v: 'done' | 'reschedule' | Error) => {
        if (settled) return;
        settled = true;
        this.p2pWake = undefined;
        if (v instanceof Error) reject(v);
        else resolve(v);
      };
      const pump = () => {
        if (settled) return;
        if (this.abort.signal.aborted) return finish(new UnavailableError('aborted'));
        if (entry.finishedPieceCount === entry.pieceCount && this.inflight.size === 0) return finish('done');
        if (this.backToSourceOrdered) {
          if (this.inflight.size === 0) finish('reschedule');
          return;
        }
        const usable = [...this.parents.values()].filter((p) => !p.blocked);
        const missing = this.missingPieces();
        // Lowest pieces first (readers stream in order), randomized within a window so
        // children of the same parent spread out and can serve each other.
        const windowSize = concurrency * 4;
        while (this.inflight.size < concurrency && missing.length > 0) {
          const candidates: Array<{ n: number; parents: ParentState[] }> = [];
          for (const n of missing) {
            const holders = usable.filter((p) => p.digests.has(n) && p.inflight < concurrency);
            if (holders.length > 0) candidates.push({ n, parents: holders });
            if (candidates.length >= windowSize) break;
          }
          if (candidates.length === 0) break;
          const pick = candidates[Math.floor(Math.random() * candidates.length)];
          missing.splice(missing.indexOf(pick.n), 1);
          const minLoad = Math.min(...pick.parents.map((p) => p.inflight));
          const least = pick.parents.filter((p) => p.inflight === minLoad);
          this.fetchFromParent(pick.n, least[Math.floor(Math.random() * least.length)]).then(pump, (err: Error) => finish(err));
        }
        if (this.inflight.size > 0) return;
        // Nothing in flight: is any parent still able to provide a missing piece?
        const stillMissing = this.missingPieces();
        if (stillMissing.length === 0) return finish('done');
        const hopeful = usable.some((p) => !p.syncEnded || stillMissing.some((n) => p.digests.has(n)));
        if (!hopeful && !this.rescheduleRequested) {
          this.rescheduleRequested = true;
          this.rescheduleCount++;
          this.log.info({ failedParents: [...this.failedParents], missing: stillMissing.length }, 'no usable parent: asking the scheduler to reschedule');
          this.reporter.send({ reschedulePeerRequest: { candidateParentIds: [...this.failedParents], description: 'no usable parent left' } });
          finish('reschedule');
        }
      };
      this.p2pWake = pump;
      pump();
    });
  }

  private async fetchFromParent(n: number, parent: ParentState): Promise<void> {
    const entry = this.entry!;
    const piece = { number: n, offset: n * entry.meta.pieceLength, length: Math.min(entry.meta.pieceLength, entry.meta.contentLength - n * entry.meta.pieceLength) };
    this.inflight.add(n);
    parent.inflight++;
    const started = process.hrtime.bigint();
    try {
      const fh = await entry.handle();
      const digest = await fetchPieceRaw(
        {
          ip: parent.ip,
          port: parent.downloadPort,
          taskId: this.taskId,
          parentPeerId: parent.peerId,
          offset: piece.offset,
          length: piece.length,
          expectedDigest: parent.digests.get(n),
          timeoutMs: this.cfg.download.pieceDownloadTimeout,
          limiters: this.mgr.limitersFor('peer'),
          signal: this.abort.signal,
        },
        fh,
      );
      const costNs = Number(process.hrtime.bigint() - started);
      this.storePiece(n, digest, 'REMOTE_PEER', costNs, parent.peerId);
    } catch (err) {
      if (this.abort.signal.aborted) throw err;
      // Our own disk failed: not the parent's fault, and another parent would fail the same way.
      if (isLocalIoError(err)) throw await localStorageError(err, entry.contentPath);
      const reason = err instanceof PieceDigestError ? 'digest_mismatch' : err instanceof PieceHttpError ? 'http' : 'network';
      this.mgr.metrics.pieceFailures.inc({ reason });
      this.log.warn({ piece: n, parent: parent.peerId, reason, err: (err as Error).message }, 'piece from parent failed; blocking that parent');
      this.blockParent(parent, n, true);
    } finally {
      this.inflight.delete(n);
      parent.inflight--;
    }
  }

  private storePiece(n: number, digest: string, trafficType: PieceProgress['trafficType'], costNs: number, parentId?: string): void {
    const entry = this.entry!;
    if (entry.hasPiece(n)) return;
    const record = this.mgr.store.markPiece(entry, n, digest);
    if (parentId !== undefined) this.pieceParents.set(n, parentId);
    this.completedLength += record.length;
    const source = trafficType === 'REMOTE_PEER' ? 'remote_peer' : 'back_to_source';
    this.mgr.metrics.downloadBytes.inc({ source }, record.length);
    this.mgr.metrics.pieceDownloadSeconds.observe({ source }, costNs / 1e9);
    this.hasher?.advance();
    const piece = { number: n, parentId, offset: record.offset, length: record.length, digest, trafficType, costNs, createdAtMs: Date.now() };
    if (trafficType === 'REMOTE_PEER') this.reporter.send({ downloadPieceFinishedRequest: { piece } });
    else this.reporter.send({ downloadPieceBackToSourceFinishedRequest: { piece } });
    this.emitProgress({ number: n, offset: record.offset, length: record.length, digest, trafficType, parentId, costNs });
  }

  private async backToSource(): Promise<void> {
    if (this.options.disableBackToSource) throw new FailedPreconditionError(`back-to-source is disabled for task ${this.taskId} and no peer could provide it`);
    const client = new OriginClient(this.options.requestHeaders);
    const timeout = this.cfg.download.pieceDownloadTimeout;
    let url = this.options.url;
    // Without a probe (the scheduler gave the metadata) Range support is learnt from the first piece's answer.
    let acceptsRanges = true;
    let body: http.IncomingMessage | undefined;
    try {
      if (!this.entry) {
        const probe = await client.probe(url, timeout, this.abort.signal);
        url = probe.finalUrl;
        acceptsRanges = probe.acceptsRanges;
        body = probe.body;
        try {
          await this.createEntry(probe.contentLength, pieceLengthFor(probe.contentLength), probe.responseHeaders);
        } catch (err) {
          body?.destroy();
          throw err;
        }
      }
      const entry = this.entry!;
      this.reporter.send({
        downloadPeerBackToSourceStartedRequest: {
          contentLength: entry.meta.contentLength,
          pieceLength: entry.meta.pieceLength,
          responseHeader: entry.meta.responseHeaders,
        },
      });
      const pieceFailed = (pieceNumber: number) => this.reporter.send({ downloadPieceBackToSourceFailedRequest: { pieceNumber } });
      try {
        const { mode } = await fetchFromOrigin({
          client,
          url,
          task: entry,
          acceptsRanges,
          body,
          concurrency: this.cfg.download.concurrentPieceCount,
          pieceTimeoutMs: timeout,
          limiters: this.mgr.limitersFor('origin'),
          signal: this.abort.signal,
          log: this.log,
          onPiece: (n, digest, costNs) => this.storePiece(n, digest, 'BACK_TO_SOURCE', costNs),
          onPieceFailed: pieceFailed,
        });
        this.log.debug({ mode }, 'content fetched from the origin');
      } catch (err) {
        if (isLocalIoError(err)) throw await localStorageError(err, entry.contentPath);
        throw err;
      }
      await this.complete(entry, true);
    } catch (err) {
      this.reporter.send({ downloadPeerBackToSourceFailedRequest: { description: (err as Error).message } });
      throw err;
    }
  }

  /** Verifies the content digest (when known), fsyncs, marks finished and tells the scheduler. */
  private async complete(entry: TaskEntry, backToSource: boolean): Promise<void> {
    if (entry.finishedPieceCount !== entry.pieceCount) throw new Error(`task ${this.taskId} incomplete: ${entry.finishedPieceCount}/${entry.pieceCount} pieces`);
    if (this.hasher && this.expectedSha256) {
      const actual = await this.hasher.digest();
      if (actual !== this.expectedSha256) {
        const err = new ContentDigestMismatchError(`content digest mismatch for task ${this.taskId}: expected ${this.expectedSha256}, got ${actual}`);
        const suppliers = [...new Set(this.pieceParents.values())];
        this.mgr.metrics.pieceFailures.inc({ reason: 'content_digest_mismatch' });
        // The origin is the last word: content only it sent that does not match is a failure, not a retry.
        if (suppliers.length === 0 || this.retriedFromOrigin || this.options.disableBackToSource) throw err;
        this.log.warn({ parents: suppliers, err: err.message }, 'content from parents does not match its digest: reporting them and retrying once from the origin');
        for (const parentId of suppliers) this.reporter.send({ downloadPieceFailedRequest: { parentId, temporary: false } });
        await this.restartFromOrigin(entry, err);
        return;
      }
    }
    await this.mgr.store.finish(entry, this.expectedSha256);
    this.attempt.resolve();
    this.mgr.updateGauge();
    const { contentLength } = entry.meta;
    if (backToSource) {
      this.reporter.send({
        downloadPeerBackToSourceFinishedRequest: { contentLength, pieceCount: entry.pieceCount, pieceLength: entry.meta.pieceLength, responseHeader: entry.meta.responseHeaders },
      });
    } else {
      this.reporter.send({ downloadPeerFinishedRequest: { contentLength, pieceCount: entry.pieceCount } });
    }
    this.reporter.close();
    this.log.info({ contentLength, pieces: entry.pieceCount, backToSource }, 'download finished');
  }

  /** Throws away every stored piece (readers of this attempt fail) and fetches the task again from the origin. */
  private async restartFromOrigin(entry: TaskEntry, cause: Error): Promise<void> {
    this.retriedFromOrigin = true;
    this.attempt.reject(cause);
    this.attempt = deferred<void>();
    for (const p of this.parents.values()) this.blockParent(p, undefined, false);
    this.hasher?.close();
    this.mgr.store.resetPieces(entry);
    this.pieceParents.clear();
    this.completedLength = 0;
    this.hasher = new ContentHasher(entry);
    await this.backToSource();
  }

  release(): void {
    this.entry?.release();
    for (const p of this.parents.values()) p.call?.cancel();
  }
}

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

  constructor(options: TaskManagerOptions) {
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
    try {
      await ensureSpace(this.config.dataDir, bytes, others, this.freeBytes);
    } catch (err) {
      // Least-recently-used cached tasks may make room (storage GC), then ask once more.
      if (!(await this.store.gc()).evicted.length) throw err;
      await ensureSpace(this.config.dataDir, bytes, others, this.freeBytes);
    }
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
      c = new (protos().dfdaemon.dfdaemon.v2.DfdaemonUpload)(addr, grpc.credentials.createInsecure(), GRPC_OPTIONS);
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
    let finished = 0;
    let partial = 0;
    for (const e of this.store.all()) {
      if (e.finished) finished++;
      else partial++;
    }
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

  /** Starts the download of a task, or joins the one in progress. */
  ensureDownload(options: DownloadOptions): TaskDownload {
    const taskId = this.taskIdFor(options);
    let d = this.downloads.get(taskId);
    if (d) return d;
    if (this.downloads.size >= MAX_RUNNING_DOWNLOADS) {
      throw new ResourceExhaustedError(`${MAX_RUNNING_DOWNLOADS} downloads are already running on this host; try again later`);
    }
    d = new TaskDownload(this, taskId, options, this.host.seed);
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
      const reporter = new PeerReporter(stream, { hostId: this.host.id, taskId, peerId });
      const closed = new Promise<Error | undefined>((resolve) => {
        stream.on('data', () => undefined);
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

  async read(options: DownloadOptions): Promise<TaskReadResult> {
    const taskId = this.taskIdFor(options);
    const cached = await this.finishedEntry(taskId);
    if (cached) {
      const range = this.clampRange(options, cached.meta.contentLength);
      return { taskId, contentLength: cached.meta.contentLength, responseHeaders: cached.meta.responseHeaders, fromCache: true, body: this.readFinished(cached, range.start, range.length) };
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

  private clampRange(options: DownloadOptions, size: number): { start: number; length: number } {
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

export type { TaskDownload };
