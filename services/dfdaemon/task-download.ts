/**
 * One download of one task, shared by every caller asking for it meanwhile: the orchestrator.
 * It resumes what is stored, holds the AnnouncePeer conversation (SchedulerSession), fetches
 * pieces from parents (PieceCollector + P2PFetch) or from the origin (fetchFromOrigin), and
 * finishes with the digest check. Everything it needs from the rest of the daemon comes in
 * through TaskDownloadDeps.
 */
import { EventEmitter } from 'node:events';
import type * as http from 'node:http';
import type * as tls from 'node:tls';
import * as grpc from '@grpc/grpc-js';
import type { Logger } from 'pino';
import {
  blobDigestOf,
  DEFAULT_FILTERED_QUERY_PARAMS,
  InternalError,
  InvalidArgumentError,
  peerIdOf,
  MIN_PIECE_LENGTH,
  pieceCountOf,
  pieceLengthFor,
  pieceRange,
  taskMetadataProblem,
  UnavailableError,
  type DfdaemonConfig,
} from '../common';
import type { AnnouncePeerResponse__Output, DfdaemonUploadClient } from '../proto';
import { ContentHasher } from './content-hasher';
import type { HostIdentity, SchedulerPool } from './control-plane';
import { ContentDigestMismatchError, DownloadAbortedError, NoParentsError, SchedulerAnswerError, SchedulerLostError, SchedulerTimeoutError } from './download-errors';
import { isLocalIoError, localStorageError } from './local-io';
import type { DfdaemonMetrics } from './metrics';
import { fetchFromOrigin } from './origin-fetch';
import { P2PFetch, pickParent } from './p2p-fetch';
import { PieceCollector, type Parent } from './piece-collector';
import { fetchPieceRaw, OriginClient, PieceDigestError, PieceHttpError, type OriginProbe } from './piece-transfer';
import type { Limiters } from './rate-limiter';
import { SchedulerSession } from './scheduler-session';
import type { TaskEntry, TaskStore } from './storage';
import type { DownloadOptions, DownloadProgress, PieceProgress } from './task-api';
import type { DownloadTrace } from './tracing';

/** Upstream's maxScheduleCount. */
const MAX_RESCHEDULES = 5;
const RESCHEDULE_RETRY_MS = 1000;

/** What a download uses of the daemon; TaskManager provides it. */
export interface TaskDownloadDeps {
  readonly store: TaskStore;
  readonly config: DfdaemonConfig;
  readonly host: HostIdentity;
  /** Absent: no scheduler at all, every download goes to the origin. */
  readonly schedulers?: SchedulerPool;
  readonly metrics: DfdaemonMetrics;
  readonly logger: Logger;
  /** Fails with LocalStorageError when the data directory cannot hold `bytes` more. */
  reserveSpace(taskId: string, bytes: number): Promise<void>;
  limitersFor(kind: 'peer' | 'origin'): Limiters;
  /** The gRPC client of a parent (SyncPieces). */
  uploadClient(ip: string, port: number): DfdaemonUploadClient;
  /** The stored-task gauges changed. */
  updateGauge(): void;
  /** TLS options for piece downloads from parents (upload.tls.enable); absent: plain TCP. */
  readonly pieceTls?: () => tls.ConnectionOptions;
  /** Spans of one download (issue 18; see tracing.ts). */
  newTrace(taskId: string, peerId: string, options: DownloadOptions): DownloadTrace;
}

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

export class TaskDownload extends EventEmitter {
  readonly peerId: string;
  readonly entryReady = deferred<TaskEntry>();
  readonly done = deferred<TaskEntry>();
  entry: TaskEntry | undefined;
  completedLength = 0;
  private session = SchedulerSession.detached();
  private readonly collector: PieceCollector;
  private p2p: P2PFetch | undefined;
  private hasher: ContentHasher | undefined;
  private readonly expectedSha256: string | undefined;
  private rescheduleRequested = false;
  private rescheduleCount = 0;
  private backToSourceOrdered = false;
  private readonly abort = new AbortController();
  private readonly log: Logger;
  /** Which parent supplied each piece: blamed when the whole content does not match its digest. */
  private readonly pieceParents = new Map<number, string>();
  private retriedFromOrigin = false;
  /**
   * A peer the scheduler always sends to the origin (a seed peer, or need_back_to_source)
   * starts its length probe while it registers: the answer is known before it arrives.
   */
  private earlyProbe: Promise<OriginProbe> | undefined;
  /** The piece count of the scheduler's task metadata, known before the entry exists (see conversation). */
  private announcedPieceCount: number | undefined;
  /** Why the download failed (told to children syncing pieces from this host). */
  private stopReason: Error | undefined;
  /**
   * Settles when the content of the current attempt was verified (or failed): readers of a
   * download in progress hold back their last bytes until then, so a mismatch fails them
   * instead of completing a response with wrong bytes. Replaced when the download restarts.
   */
  private attempt = deferred<void>();
  /** Spans of this download (issue 18; see tracing.ts). */
  readonly trace: DownloadTrace;

  constructor(
    private readonly deps: TaskDownloadDeps,
    readonly taskId: string,
    readonly options: DownloadOptions,
  ) {
    super();
    this.setMaxListeners(0);
    this.peerId = peerIdOf(deps.host.ip, deps.host.hostname, deps.host.seed);
    this.expectedSha256 = options.digest ?? blobDigestOf(options.url);
    if (this.expectedSha256 && !/^sha256:[a-f0-9]{64}$/.test(this.expectedSha256)) {
      throw new InvalidArgumentError(`digest ${this.expectedSha256} is not "sha256:<64 hex>"`);
    }
    this.log = deps.logger.child({ taskId, peerId: this.peerId });
    this.trace = deps.newTrace(taskId, this.peerId, options); // telemetry
    this.collector = new PieceCollector({
      selfPeerId: this.peerId,
      pieceCount: () => this.entry?.pieceCount ?? this.announcedPieceCount,
      openSync: (parent) => this.deps.uploadClient(parent.ip, parent.grpcPort).SyncPieces({ hostId: this.deps.host.id, taskId: this.taskId, interestedPieceNumbers: [] }),
      onBlocked: (parent, pieceNumber, report) => {
        if (report) this.session.send({ downloadPieceFailedRequest: { pieceNumber, parentId: parent.peerId, temporary: true } });
      },
      onChange: () => this.p2p?.wake(),
      log: this.log,
    });
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
    return this.deps.config;
  }

  stop(): void {
    this.abort.abort();
    this.session.cancel();
    this.collector.cancelAll();
    this.p2p?.wake();
  }

  async run(): Promise<void> {
    try {
      let existing = this.deps.store.get(this.taskId);
      if (existing && !(await this.deps.store.ensureIntact(existing))) existing = undefined;
      if (existing) {
        await this.useEntry(existing);
        if (!existing.finished) await this.deps.reserveSpace(this.taskId, existing.meta.contentLength - this.completedLength);
      }
      // Content directory and file made while the scheduler and the origin are asked (TaskStore.prepare).
      if (!existing) this.deps.store.prepare(this.taskId);
      const pool = this.deps.schedulers;
      let scheduled = false;
      if (pool && this.entry?.finished !== true) {
        await pool.resolveIfEmpty();
        if (pool.addresses().length > 0) scheduled = await this.viaScheduler(pool);
      }
      if (!scheduled && this.entry?.finished !== true) {
        await this.originInsteadOfScheduler(`no scheduler reachable for task ${this.taskId}`, 'no scheduler reachable: downloading from the origin directly');
      }
      if (!this.entry) throw new InternalError('download ended without content');
      this.trace.end({ contentLength: this.entry.meta.contentLength }); // telemetry
      this.done.resolve(this.entry);
    } catch (err) {
      await this.fail(err as Error);
    }
  }

  /**
   * The scheduler cannot help (none reachable, or it went silent): the origin, unless back-to-source
   * is disabled for this download or by scheduler.disableAutoBackSource.
   */
  private async originInsteadOfScheduler(reason: string, logMessage: string, Lost: new (m: string) => Error = UnavailableError): Promise<void> {
    if (this.options.disableBackToSource || this.cfg.scheduler.disableAutoBackSource) {
      throw new Lost(`${reason} and back-to-source is disabled`);
    }
    this.log.warn(logMessage);
    await this.backToSource();
  }

  private async fail(err: Error): Promise<void> {
    this.trace.end({ error: err }); // telemetry
    this.hasher?.close();
    if (this.abort.signal.aborted) {
      // Shutting down: keep the partial task for resumption after restart.
      const e = new DownloadAbortedError('dfdaemon is shutting down');
      this.attempt.reject(e);
      this.entryReady.reject(e);
      this.done.reject(e);
      return;
    }
    if (isLocalIoError(err)) err = await localStorageError(err, this.entry?.contentPath ?? this.cfg.dataDir);
    this.stopReason = err;
    this.log.warn({ err: err.message }, 'download failed');
    this.attempt.reject(err);
    this.entryReady.reject(err);
    this.done.reject(err);
    // Verified pieces stay (a retry resumes instead of fetching everything again; GC expires
    // them if nobody asks); only content that failed its digest is dropped.
    if (this.entry && !this.entry.finished && err instanceof ContentDigestMismatchError) await this.deps.store.remove(this.taskId, err);
  }

  private async useEntry(entry: TaskEntry): Promise<void> {
    this.entry = entry;
    entry.acquire();
    entry.startFilling();
    this.completedLength = entry.pieces().reduce((s, p) => s + p.length, 0);
    if (this.expectedSha256) {
      this.hasher = new ContentHasher(entry, { length: entry.meta.contentLength, handle: () => entry.handle() });
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
    await this.deps.reserveSpace(this.taskId, contentLength);
    const entry = await this.deps.store.create({ taskId: this.taskId, url: this.options.url, contentLength, pieceLength, responseHeaders });
    this.deps.updateGauge();
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

  /** Registers with the task's schedulers in turn; false when none answered (the caller falls back). */
  private async viaScheduler(pool: SchedulerPool): Promise<boolean> {
    const needBackToSource = this.deps.host.seed || this.options.needBackToSource === true;
    if (needBackToSource && !this.entry && !this.options.disableBackToSource) this.startEarlyProbe();
    const addrs = pool.forTask(this.taskId);
    let reannounced = false;
    for (let i = 0; i < addrs.length; i++) {
      const addr = addrs[i];
      if (this.abort.signal.aborted) throw new DownloadAbortedError('aborted');
      const session = new SchedulerSession(
        pool.client(addr).AnnouncePeer(this.trace.metadata()), // telemetry: trace context to the scheduler
        { hostId: this.deps.host.id, taskId: this.taskId, peerId: this.peerId },
        // A restarted scheduler knows no hosts: announce this one at once, not at the next interval.
        {
          onStreamError: (err) => {
            if (err.code !== grpc.status.CANCELLED) pool.reannounceSoon();
          },
        },
      );
      this.session = session;
      session.send({ registerPeerRequest: { download: this.downloadMessage(needBackToSource) } });
      let first: AnnouncePeerResponse__Output | undefined;
      try {
        first = await session.next(this.cfg.scheduler.scheduleTimeout);
      } catch (err) {
        this.log.warn({ scheduler: addr, err: (err as Error).message }, 'scheduler did not answer');
        session.cancel();
        continue;
      }
      if (!first) {
        const ended = session.ended;
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
        await this.conversation(first);
      } catch (err) {
        if (!(err instanceof SchedulerAnswerError) || this.entry) throw err;
        this.log.warn({ scheduler: addr, err: err.message }, "refused the scheduler's answer");
        await this.originInsteadOfScheduler(err.message, 'scheduler sent unusable task metadata: downloading from the origin directly');
      } finally {
        session.close();
      }
      return true;
    }
    this.session = SchedulerSession.detached();
    return false;
  }

  /**
   * Answers the scheduler until the task is done. Answers keep coming while pieces download
   * (new parents, reschedules, back-to-source orders): each is handled as it arrives.
   */
  private async conversation(first: AnnouncePeerResponse__Output): Promise<void> {
    const session = this.session;
    let response: AnnouncePeerResponse__Output | undefined = first;
    let p2p: Promise<'done' | 'reschedule'> | undefined;
    let started = false;
    let direct = false;
    for (;;) {
      if (response) {
        switch (response.response) {
          case 'emptyTaskResponse': {
            const entry = await this.createEntry(0, pieceLengthFor(0), {});
            await this.complete(entry, false);
            return;
          }
          case 'needBackToSourceResponse':
            this.backToSourceOrdered = true;
            this.p2p?.wake();
            if (p2p) await p2p.catch(() => undefined);
            await this.backToSource();
            return;
          case 'normalTaskResponse': {
            const ntr = response.normalTaskResponse!;
            const task = ntr.task;
            if (!this.entry) {
              if (!task) throw new SchedulerAnswerError('scheduler sent normal_task_response without task metadata');
              const contentLength = Number(task.contentLength);
              const pieceLength = Number(task.pieceLength) || pieceLengthFor(contentLength);
              const problem = taskMetadataProblem(contentLength, pieceLength);
              if (problem) {
                const refusal = new SchedulerAnswerError(`scheduler sent unusable task metadata: ${problem}`);
                session.send({ downloadPeerFailedRequest: { description: refusal.message } });
                throw refusal;
              }
              // The parents' piece streams open while the entry is created (space check, file,
              // metadata): their first answers overlap that work instead of following it.
              this.announcedPieceCount = pieceCountOf(contentLength, pieceLength);
              // A one-piece task asks a parent for the piece itself first (no SyncPieces stream).
              direct = this.announcedPieceCount === 1;
              this.collector.add(ntr.candidateParents, !direct);
              await this.createEntry(contentLength, pieceLength, { ...task.responseHeader });
            }
            if (!started) {
              session.send({ downloadPeerStartedRequest: {} });
              started = true;
            }
            this.rescheduleRequested = false;
            if (direct) {
              direct = false;
              if (await this.onePieceDirect(this.entry!)) {
                await this.complete(this.entry!, false);
                return;
              }
              this.collector.syncDeferred();
            }
            this.collector.add(ntr.candidateParents);
            p2p ??= this.startP2P();
            break;
          }
          default:
            // waitResponse, and answers this version does not know: keep listening.
            break;
        }
      }
      response = session.take();
      if (response) continue;
      if (p2p) {
        let outcome: 'done' | 'reschedule' | 'answer' | 'ended' | 'timeout' | 'woken';
        if (session.ended !== undefined) outcome = await p2p; // no more answers: only the pieces matter
        else {
          const wait = session.waitForAnswer(2 ** 31 - 1);
          outcome = await Promise.race([p2p, wait.result]);
          wait.interrupt();
        }
        if (outcome === 'done') {
          await this.complete(this.entry!, false);
          return;
        }
        if (outcome === 'reschedule') {
          p2p = undefined;
          this.p2p = undefined;
          if (this.rescheduleCount > MAX_RESCHEDULES && !this.options.disableBackToSource) {
            this.log.warn({ reschedules: this.rescheduleCount }, 'too many reschedules: going back to source');
            await this.backToSource();
            return;
          }
          // Wait for the answer to our reschedule request, as long as for a first answer.
          const answered = await session.waitForAnswer(this.cfg.scheduler.scheduleTimeout).result;
          if (answered === 'timeout') {
            await this.originInsteadOfScheduler(
              `scheduler did not answer a reschedule within scheduleTimeout (${this.cfg.scheduler.scheduleTimeout} ms)`,
              'scheduler did not answer a reschedule within scheduleTimeout: going back to source, keeping the finished pieces',
              SchedulerTimeoutError,
            );
            return;
          }
          if (answered !== 'answer') return this.originAfterStreamClosed(session.ended);
        }
        // 'answer' / 'ended': the loop takes the answer, or finds the stream over below.
        continue;
      }
      // No P2P running: waiting for parents (after "wait", or after a reschedule request).
      // After a reschedule the scheduler may answer "wait" while the only holders are the
      // parents we blocked: ask again now and then (each ask counts toward its
      // retryBackToSourceLimit, and toward ours). Without a reschedule pending, a scheduler
      // that keeps us waiting longer than scheduleTimeout has lost track of us: go to the
      // origin (upstream's behaviour).
      const retryMs = this.rescheduleRequested ? RESCHEDULE_RETRY_MS : this.cfg.scheduler.scheduleTimeout;
      const got = await session.waitForAnswer(retryMs).result;
      if (got === 'answer') continue;
      if (got === 'ended') return this.originAfterStreamClosed(session.ended);
      if (!this.rescheduleRequested) {
        await this.originInsteadOfScheduler(
          `scheduler gave no parent within scheduleTimeout (${retryMs} ms)`,
          'scheduler gave no parent within scheduleTimeout: going back to source',
          SchedulerTimeoutError,
        );
        return;
      }
      if (this.rescheduleCount >= MAX_RESCHEDULES && !this.options.disableBackToSource) {
        this.log.warn({ reschedules: this.rescheduleCount }, 'no parent after repeated reschedules: going back to source');
        await this.backToSource();
        return;
      }
      this.rescheduleCount++;
      session.send({ reschedulePeerRequest: { candidateParentIds: this.collector.failedIds(), description: 'still no usable parent' } });
    }
  }

  /**
   * The scheduler stream died (scheduler restarted or killed) and no parent is left: the origin,
   * keeping every piece already stored, like the scheduleTimeout path. The host re-announces at
   * once so the next download finds the restarted scheduler.
   */
  private async originAfterStreamClosed(ended: Error | null | undefined): Promise<void> {
    this.deps.schedulers?.reannounceSoon();
    const why = ended?.message ?? 'ended';
    const missing = this.entry ? this.entry.pieceCount - this.entry.finishedPieceCount : 'all';
    await this.originInsteadOfScheduler(
      `scheduler stream closed (${why}) while ${missing} pieces are missing`,
      'scheduler stream closed and no parent left: going back to source, keeping the finished pieces',
      SchedulerLostError,
    );
  }

  private startP2P(): Promise<'done' | 'reschedule'> {
    const entry = this.entry!;
    this.p2p = new P2PFetch({
      task: entry,
      collector: this.collector,
      concurrency: this.cfg.download.concurrentPieceCount,
      idleMs: this.cfg.scheduler.scheduleTimeout,
      signal: this.abort.signal,
      fetchPiece: (n, parent) => this.fetchFromParent(entry, n, parent),
      onPiece: (n, digest, costNs, parent) => this.storeParentPiece(entry, n, digest, costNs, parent),
      onPieceError: async (n, parent, err) => {
        // Our own disk failed: not the parent's fault, and another parent would fail the same way.
        if (isLocalIoError(err)) throw await localStorageError(err, entry.contentPath);
        this.parentPieceFailed(n, parent, err);
      },
      parentBusy: (err) => err instanceof PieceHttpError && err.status === 429,
      stopRequested: () => this.backToSourceOrdered,
      onIdle: (parents, missing, ms) => this.log.warn({ parents, missing, ms }, 'parents offered no piece within scheduleTimeout'),
      onNoParents: (missing) => {
        if (this.rescheduleRequested) return;
        this.rescheduleRequested = true;
        this.rescheduleCount++;
        const failedParents = this.collector.failedIds();
        this.log.info({ failedParents, missing: missing.length }, 'no usable parent: asking the scheduler to reschedule');
        this.session.send({ reschedulePeerRequest: { candidateParentIds: failedParents, description: 'no usable parent left' } });
      },
    });
    return this.p2p.run().catch((err: Error) => {
      throw this.abort.signal.aborted ? new DownloadAbortedError('aborted') : err;
    });
  }

  /**
   * A one-piece task (the scheduler's metadata says so): piece 0 straight from a parent's upload
   * server, which waits for it (bounded) and sends its crc32 along; the bytes are checked against
   * that digest as against one from SyncPieces (the same parent would have announced it), and the
   * content against its sha256 when finished. True when the piece is stored. A wrong piece
   * blocks the parent (reported, as from P2PFetch); anything else unexpected (an older parent
   * without the digest header, a 416 after the wait, a refusal, a network error) leaves the
   * normal path (SyncPieces, P2PFetch) to try again.
   */
  private async onePieceDirect(entry: TaskEntry): Promise<boolean> {
    const usable = this.collector.usable();
    if (usable.length === 0 || entry.pieceCount !== 1 || entry.hasPiece(0)) return false;
    const parent = pickParent(usable, Math.random);
    const timeoutMs = this.cfg.download.pieceDownloadTimeout;
    parent.inflight++;
    const started = process.hrtime.bigint();
    try {
      // The parent answers (416) before our own timeout would fire.
      const digest = await this.fetchFromParent(entry, 0, parent, Math.min(this.cfg.scheduler.scheduleTimeout, Math.floor(timeoutMs / 2)));
      this.storeParentPiece(entry, 0, digest, Number(process.hrtime.bigint() - started), parent);
      return true;
    } catch (err) {
      if (this.abort.signal.aborted) throw new DownloadAbortedError('aborted');
      if (isLocalIoError(err)) throw await localStorageError(err, entry.contentPath);
      if (err instanceof PieceDigestError) {
        this.parentPieceFailed(0, parent, err);
        this.collector.block(parent, 0, true);
      } else {
        this.log.debug({ parent: parent.peerId, err: (err as Error).message }, 'one-piece task: direct fetch did not work, syncing pieces instead');
      }
      return false;
    } finally {
      parent.inflight--;
    }
  }

  /** Piece `n` from `parent` is stored and checked: recorded and traced (P2PFetch and onePieceDirect). */
  private storeParentPiece(entry: TaskEntry, n: number, digest: string, costNs: number, parent: Parent): void {
    this.storePiece(n, digest, 'REMOTE_PEER', costNs, parent.peerId);
    this.trace.pieceFromParent(parent.peerId, parent.ip, n, pieceRange(n, entry.meta.contentLength, entry.meta.pieceLength).length, costNs); // telemetry
  }

  /** Piece `n` from `parent` failed (its fault, not our disk's): counted, traced and logged; the caller blocks the parent. */
  private parentPieceFailed(n: number, parent: Parent, err: unknown): void {
    const reason = err instanceof PieceDigestError ? 'digest_mismatch' : err instanceof PieceHttpError ? 'http' : 'network';
    this.deps.metrics.pieceFailures.inc({ reason });
    this.trace.parentFailed(parent.peerId, parent.ip, n, reason); // telemetry
    this.log.warn({ piece: n, parent: parent.peerId, reason, err: (err as Error).message }, 'piece from parent failed; blocking that parent');
  }

  private async fetchFromParent(entry: TaskEntry, n: number, parent: Parent, waitMs?: number): Promise<string> {
    const offset = n * entry.meta.pieceLength;
    const length = Math.min(entry.meta.pieceLength, entry.meta.contentLength - offset);
    return fetchPieceRaw(
      {
        ip: parent.ip,
        port: parent.downloadPort,
        taskId: this.taskId,
        parentPeerId: parent.peerId,
        offset,
        length,
        expectedDigest: parent.digests.get(n),
        timeoutMs: this.cfg.download.pieceDownloadTimeout,
        limiters: this.deps.limitersFor('peer'),
        signal: this.abort.signal,
        tls: this.deps.pieceTls?.(),
        headers: this.trace.pieceHeaders(parent.peerId, parent.ip), // telemetry
        waitMs,
      },
      await entry.handle(),
    );
  }

  private storePiece(n: number, digest: string, trafficType: PieceProgress['trafficType'], costNs: number, parentId?: string): void {
    const entry = this.entry!;
    if (entry.hasPiece(n)) return;
    const record = this.deps.store.markPiece(entry, n, digest);
    if (parentId !== undefined) this.pieceParents.set(n, parentId);
    this.completedLength += record.length;
    const source = trafficType === 'REMOTE_PEER' ? 'remote_peer' : 'back_to_source';
    this.deps.metrics.downloadBytes.inc({ source }, record.length);
    this.deps.metrics.pieceDownloadSeconds.observe({ source }, costNs / 1e9);
    this.hasher?.advance();
    const piece = { number: n, parentId, offset: record.offset, length: record.length, digest, trafficType, costNs, createdAtMs: Date.now() };
    if (trafficType === 'REMOTE_PEER') this.session.send({ downloadPieceFinishedRequest: { piece } });
    else this.session.send({ downloadPieceBackToSourceFinishedRequest: { piece } });
    this.emitProgress({ number: n, offset: record.offset, length: record.length, digest, trafficType, parentId, costNs });
  }

  private async backToSource(): Promise<void> {
    if (this.options.disableBackToSource) throw new NoParentsError(`back-to-source is disabled for task ${this.taskId} and no peer could provide it`);
    const client = new OriginClient(this.options.requestHeaders, this.options.url);
    const timeout = this.cfg.download.pieceDownloadTimeout;
    let url = this.options.url;
    // Without a probe (the scheduler gave the metadata) Range support is learnt from the first piece's answer.
    let acceptsRanges: boolean | undefined;
    let body: http.IncomingMessage | undefined;
    let firstPiece: OriginProbe['firstPiece'];
    let startReported = false;
    this.trace.backToSourceStarted(url); // telemetry
    try {
      if (!this.entry) {
        const early = this.earlyProbe;
        this.earlyProbe = undefined;
        const probe = await (early ?? this.trace.originRequest('HEAD', url, () => client.probe(url, timeout, this.abort.signal))); // telemetry: span around the call
        url = probe.finalUrl;
        acceptsRanges = probe.acceptsRanges;
        body = probe.body;
        firstPiece = probe.firstPiece;
        const pieceLength = pieceLengthFor(probe.contentLength);
        // Reported before the entry exists: the scheduler's answer to waiting children (and their
        // entry creation) then overlaps ours instead of following it; a child syncing pieces from
        // here meanwhile waits for the entry (TaskManager.pendingEntry).
        if (!taskMetadataProblem(probe.contentLength, pieceLength)) {
          this.session.send({ downloadPeerBackToSourceStartedRequest: { contentLength: probe.contentLength, pieceLength, responseHeader: probe.responseHeaders } });
          startReported = true;
        }
        try {
          await this.createEntry(probe.contentLength, pieceLength, probe.responseHeaders);
        } catch (err) {
          body?.destroy();
          firstPiece?.res.destroy();
          throw err;
        }
      }
      const entry = this.entry!;
      if (!startReported) {
        this.session.send({
          downloadPeerBackToSourceStartedRequest: {
            contentLength: entry.meta.contentLength,
            pieceLength: entry.meta.pieceLength,
            responseHeader: entry.meta.responseHeaders,
          },
        });
      }
      try {
        const { mode } = await fetchFromOrigin({
          client,
          url,
          task: entry,
          acceptsRanges,
          body,
          firstPiece,
          concurrency: this.cfg.download.concurrentPieceCount,
          pieceTimeoutMs: timeout,
          limiters: this.deps.limitersFor('origin'),
          signal: this.abort.signal,
          log: this.log,
          onPiece: (n, digest, costNs) => {
            this.storePiece(n, digest, 'BACK_TO_SOURCE', costNs);
            this.trace.pieceFromOrigin(url, n, pieceRange(n, entry.meta.contentLength, entry.meta.pieceLength).length, costNs); // telemetry
          },
          onPieceFailed: (pieceNumber, err) => {
            this.trace.originFailed(url, pieceNumber, err); // telemetry
            this.session.send({ downloadPieceBackToSourceFailedRequest: { pieceNumber } });
          },
        });
        this.log.debug({ mode }, 'content fetched from the origin');
      } catch (err) {
        if (isLocalIoError(err)) throw await localStorageError(err, entry.contentPath);
        throw err;
      }
      await this.complete(entry, true);
    } catch (err) {
      this.session.send({ downloadPeerBackToSourceFailedRequest: { description: (err as Error).message } });
      throw err;
    }
  }

  /**
   * Verifies the content digest (when known), fsyncs, marks finished and tells the scheduler.
   * Readers get their last bytes after the fsync (a caller that read the whole body finds the
   * task finished); 'download finished' logs both steps' times (the fsync takes up to seconds on
   * a busy disk: 2–10 s on the seed peer of the 8-node fan-out, 3 ms–1 s on its nodes).
   */
  private async complete(entry: TaskEntry, backToSource: boolean): Promise<void> {
    if (entry.finishedPieceCount !== entry.pieceCount) throw new InternalError(`task ${this.taskId} incomplete: ${entry.finishedPieceCount}/${entry.pieceCount} pieces`);
    const started = performance.now();
    if (this.hasher && this.expectedSha256) {
      const actual = await this.hasher.digest();
      if (actual !== this.expectedSha256) {
        const err = new ContentDigestMismatchError(`content digest mismatch for task ${this.taskId}: expected ${this.expectedSha256}, got ${actual}`);
        const suppliers = [...new Set(this.pieceParents.values())];
        this.deps.metrics.pieceFailures.inc({ reason: 'content_digest_mismatch' });
        // The origin is the last word: content only it sent that does not match is a failure, not a retry.
        if (suppliers.length === 0 || this.retriedFromOrigin || this.options.disableBackToSource) throw err;
        this.log.warn({ parents: suppliers, err: err.message }, 'content from parents does not match its digest: reporting them and retrying once from the origin');
        for (const parentId of suppliers) this.session.send({ downloadPieceFailedRequest: { parentId, temporary: false } });
        await this.restartFromOrigin(entry, err);
        return;
      }
    }
    const verified = performance.now();
    await this.deps.store.finish(entry, this.expectedSha256);
    const stored = performance.now();
    this.attempt.resolve();
    this.deps.updateGauge();
    const { contentLength } = entry.meta;
    if (backToSource) {
      this.session.send({
        downloadPeerBackToSourceFinishedRequest: { contentLength, pieceCount: entry.pieceCount, pieceLength: entry.meta.pieceLength, responseHeader: entry.meta.responseHeaders },
      });
    } else {
      this.session.send({ downloadPeerFinishedRequest: { contentLength, pieceCount: entry.pieceCount } });
    }
    this.session.close();
    this.log.info({ contentLength, pieces: entry.pieceCount, backToSource, verifyMs: Math.round(verified - started), syncMs: Math.round(stored - verified) }, 'download finished');
  }

  /** Throws away every stored piece (readers of this attempt fail) and fetches the task again from the origin. */
  private async restartFromOrigin(entry: TaskEntry, cause: Error): Promise<void> {
    this.retriedFromOrigin = true;
    this.attempt.reject(cause);
    this.attempt = deferred<void>();
    this.collector.blockAll();
    this.hasher?.close();
    this.deps.store.resetPieces(entry);
    this.pieceParents.clear();
    this.completedLength = 0;
    this.hasher = new ContentHasher(entry, { length: entry.meta.contentLength, handle: () => entry.handle() });
    await this.backToSource();
  }

  /** See `earlyProbe`: the HEAD (or its fallback) runs while the scheduler is asked. */
  private startEarlyProbe(): void {
    const client = new OriginClient(this.options.requestHeaders, this.options.url);
    const url = this.options.url;
    const timeout = this.cfg.download.pieceDownloadTimeout;
    // One GET whose answer gives the length and carries piece 0 (no HEAD): the free space is
    // checked against that length before a byte of the body is read (backToSource).
    this.earlyProbe = this.trace.originRequest('GET', url, () => client.openWithGet(url, MIN_PIECE_LENGTH, timeout, this.abort.signal)); // telemetry: span around the call
    this.earlyProbe.catch(() => undefined);
  }

  /** An early probe nobody used (the task came from parents, or the download failed): its unread body goes. */
  private dropEarlyProbe(): void {
    const probe = this.earlyProbe;
    this.earlyProbe = undefined;
    probe?.then(
      (p) => {
        p.body?.destroy();
        p.firstPiece?.res.destroy();
      },
      () => undefined,
    );
  }

  release(): void {
    this.dropEarlyProbe();
    // A file made ahead for an entry that never came (the download failed first).
    if (!this.entry) void this.deps.store.discardPrepared(this.taskId);
    // Children syncing pieces from this host learn that no more are coming (SyncPieces ends).
    this.entry?.stopFilling(this.stopReason ?? new Error('download ended'));
    this.entry?.release();
    this.collector.cancelAll();
  }
}

