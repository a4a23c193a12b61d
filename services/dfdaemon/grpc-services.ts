/**
 * gRPC transport for dfdaemon: DfdaemonUpload (peers and the scheduler: SyncPieces,
 * seed DownloadTask triggers, StatTask, DeleteTask) and DfdaemonDownload (dfget: download
 * to an output path with per-piece progress). Handlers are thin; the work is in TaskManager.
 */
import type * as grpc from '@grpc/grpc-js';
import {
  DeadlineExceededError,
  DragonflyError,
  InvalidArgumentError,
  NotFoundError,
  toGrpcError,
  type ErrorKind,
} from '../common';
import type { DfdaemonDownloadHandlers, DfdaemonUploadHandlers, Download__Output, Piece } from '../proto';
import type { DownloadTaskResponse } from '../proto/gen/dfdaemon/v2/DownloadTaskResponse';
import type { Task } from '../proto/gen/common/v2/Task';
import type { SyncPiecesRequest__Output } from '../proto/gen/dfdaemon/v2/SyncPiecesRequest';
import type { SyncPiecesResponse } from '../proto/gen/dfdaemon/v2/SyncPiecesResponse';
import type { PieceRecord, TaskEntry } from './storage';
import { downloadError } from './download-errors';
import type { DownloadOptions, DownloadProgress } from './task-api';
import type { TaskManager } from './task-manager';
import { contextOfCall, inRequestSpan } from './tracing';

const HEADER_NAME = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
const HEADER_VALUE = /^[\t\x20-\x7e\x80-\xff]*$/;
const MAX_REQUEST_HEADERS = 64;
const MAX_HEADER_BYTES = 64 * 1024;

/** request_header is replayed to the origin: only well-formed HTTP header fields, within bounds. */
function requestHeadersOf(headers: Record<string, string> | undefined): Record<string, string> {
  const entries = Object.entries(headers ?? {});
  if (entries.length > MAX_REQUEST_HEADERS) throw new InvalidArgumentError(`download.request_header has ${entries.length} entries; at most ${MAX_REQUEST_HEADERS}`);
  let bytes = 0;
  for (const [name, value] of entries) {
    if (!HEADER_NAME.test(name)) throw new InvalidArgumentError(`download.request_header: ${JSON.stringify(name.slice(0, 64))} is not a valid HTTP header name`);
    if (!HEADER_VALUE.test(value)) throw new InvalidArgumentError(`download.request_header: the value of ${name} has characters not allowed in an HTTP header`);
    bytes += name.length + value.length;
  }
  if (bytes > MAX_HEADER_BYTES) throw new InvalidArgumentError(`download.request_header is ${bytes} bytes; at most ${MAX_HEADER_BYTES}`);
  return headers ?? {};
}

export function downloadOptionsOf(d: Download__Output | null | undefined): DownloadOptions {
  if (!d || !d.url) throw new InvalidArgumentError('download.url is required');
  return {
    url: d.url,
    requestHeaders: requestHeadersOf(d.requestHeader),
    tag: d.tag || undefined,
    application: d.application || undefined,
    filteredQueryParams: d.filteredQueryParams.length > 0 ? d.filteredQueryParams : undefined,
    digest: d.digest || undefined,
    range: d.range ? { start: Number(d.range.start), length: Number(d.range.length) } : undefined,
    disableBackToSource: d.disableBackToSource,
    needBackToSource: d.needBackToSource,
  };
}

function pieceMessage(p: PieceRecord, trafficType: 'BACK_TO_SOURCE' | 'REMOTE_PEER' | 'LOCAL_PEER' = 'LOCAL_PEER'): Piece {
  return { number: p.number, offset: p.offset, length: p.length, digest: p.digest, trafficType };
}

function taskMessage(mgr: TaskManager, taskId: string): Task {
  const e = mgr.entry(taskId);
  if (!e) throw new NotFoundError(`task ${taskId} not found`);
  return {
    id: taskId,
    url: e.meta.url,
    contentLength: e.meta.contentLength,
    pieceCount: e.pieceCount,
    pieceLength: e.meta.pieceLength,
    state: e.finished ? 'Succeeded' : 'Running',
    responseHeader: e.meta.responseHeaders,
    sizeScope: e.meta.contentLength === 0 ? 'EMPTY' : e.pieceCount === 1 ? 'SMALL' : 'NORMAL',
    hasAvailablePeer: true,
    pieces: e.pieces().map((p) => pieceMessage(p)),
  };
}

type Emit = (r: DownloadTaskResponse) => void;

/** Streams started/piece responses for a download (to a file or, for seed triggers, into storage only). */
async function runDownload(mgr: TaskManager, options: DownloadOptions, outputPath: string | undefined, overwrite: boolean, emit: Emit, hardLink = false): Promise<void> {
  const taskId = mgr.taskIdFor(options);
  let started = false;
  let peerId = '';
  const base = () => ({ hostId: mgr.host.id, taskId, peerId });
  const onProgress = (p: DownloadProgress) => {
    if (!started) {
      started = true;
      const entry = mgr.entry(taskId);
      emit({
        ...base(),
        downloadTaskStartedResponse: {
          contentLength: p.contentLength,
          pieceLength: p.pieceLength ?? entry?.meta.pieceLength ?? 0,
          responseHeader: { ...(p.responseHeaders ?? entry?.meta.responseHeaders ?? {}) },
          isFinished: entry?.finished ?? false,
          pieces: entry?.pieces().map((x) => pieceMessage(x)) ?? [],
        },
      });
    }
    if (p.piece) {
      emit({
        ...base(),
        downloadPieceFinishedResponse: {
          piece: { number: p.piece.number, parentId: p.piece.parentId, offset: p.piece.offset, length: p.piece.length, digest: p.piece.digest, trafficType: p.piece.trafficType, costNs: p.piece.costNs },
        },
      });
    }
  };
  if (outputPath !== undefined) {
    await mgr.downloadToFile({ ...options, outputPath, overwrite, hardLink }, onProgress);
    return;
  }
  // Seed trigger (or a download without output): fill the local store only.
  const finished = await mgr.finishedEntryToShare(taskId);
  if (finished) {
    onProgress({ taskId, contentLength: finished.meta.contentLength, completedLength: finished.meta.contentLength });
    // A seed triggered for a task it already holds: the scheduler must learn it has it.
    if (mgr.host.seed) await mgr.announceCached(options, finished);
    return;
  }
  const d = mgr.ensureDownload(options);
  peerId = d.peerId;
  d.on('progress', onProgress);
  try {
    const early = await d.entryReady.promise.catch(() => undefined);
    if (early) onProgress({ taskId, contentLength: early.meta.contentLength, completedLength: d.completedLength, pieceLength: early.meta.pieceLength, responseHeaders: early.meta.responseHeaders });
    await d.done.promise;
  } finally {
    d.off('progress', onProgress);
  }
}

/** Logs a refused call once, with the caller's address (the reply carries code and message). */
export function logRefusal(mgr: TaskManager, call: { getPeer(): string }, method: string, err: unknown): void {
  const kind: ErrorKind | undefined = err instanceof DragonflyError ? err.kind : undefined;
  const message = err instanceof Error ? err.message : String(err);
  if (kind === undefined) mgr.logger.warn({ caller: callerOf(call), method, err: message }, `${method} failed`);
  else mgr.logger.warn({ caller: callerOf(call), method, code: kind, err: message }, `${method} refused`);
}

function callerOf(call: { getPeer(): string }): string {
  try {
    return call.getPeer();
  } catch {
    return 'unknown';
  }
}

type DownloadCall = grpc.ServerWritableStream<{ download: Download__Output | null }, DownloadTaskResponse>;

/**
 * `service`: on the download socket (local callers) output_path is required; on TCP (peers and
 * the scheduler's seed trigger) it is refused, the download only fills the local store, and the
 * call ends after download.seedTriggerTimeout.
 */
function downloadTaskHandler(mgr: TaskManager, service: 'download' | 'upload') {
  const method = service === 'download' ? 'DfdaemonDownload.DownloadTask' : 'DfdaemonUpload.DownloadTask';
  return (call: DownloadCall) => {
    let timer: NodeJS.Timeout | undefined;
    // telemetry (issue 18): the call's span, child of the caller's (scheduler trigger, dfget)
    void inRequestSpan(mgr, `dfdaemon.${method}`, { url: call.request.download?.url ?? '' }, contextOfCall(call.metadata), async () => {
      const d = call.request.download;
      const options = downloadOptionsOf(d);
      const output = d?.outputPath || undefined;
      if (service === 'download' && !output) throw new InvalidArgumentError('download.output_path is required');
      if (service === 'upload' && output !== undefined) {
        throw new InvalidArgumentError('download.output_path is not accepted on the peer port: use the download API on the local unix socket');
      }
      const work = runDownload(
        mgr,
        options,
        output,
        d?.overwrite ?? false,
        (r) => {
          if (!call.cancelled) call.write(r);
        },
        d?.forceHardLink ?? false,
      );
      if (service === 'download') return work;
      const limitMs = mgr.config.download.seedTriggerTimeout;
      const deadline = new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new DeadlineExceededError(`download did not finish within download.seedTriggerTimeout (${limitMs} ms)`)), limitMs);
      });
      return Promise.race([work, deadline]);
    })
      .finally(() => clearTimeout(timer))
      .then(
        () => call.end(),
        (err: unknown) => {
          logRefusal(mgr, call, method, err);
          call.emit('error', toGrpcError(downloadError(err)));
        },
      );
  };
}

function statHandler(mgr: TaskManager, method: string): grpc.handleUnaryCall<{ taskId: string }, Task> {
  return (call, cb) => {
    try {
      cb(null, taskMessage(mgr, call.request.taskId));
    } catch (err) {
      logRefusal(mgr, call, method, err);
      cb(toGrpcError(err));
    }
  };
}

function deleteHandler(mgr: TaskManager, method: string): grpc.handleUnaryCall<{ taskId: string }, object> {
  return (call, cb) => {
    const id = call.request.taskId;
    if (!mgr.entry(id)) {
      const err = new NotFoundError(`task ${id} not found`);
      logRefusal(mgr, call, method, err);
      return cb(toGrpcError(err));
    }
    mgr.delete(id).then(
      () => cb(null, {}),
      (err: unknown) => {
        logRefusal(mgr, call, method, err);
        cb(toGrpcError(err));
      },
    );
  };
}

/** Streams the pieces `entry` holds, then each one as it lands, until the task is complete or its download stops. */
function syncPieces(mgr: TaskManager, call: grpc.ServerWritableStream<SyncPiecesRequest__Output, SyncPiecesResponse>, entry: TaskEntry): void {
  const { taskId, interestedPieceNumbers } = call.request;
  const interested = interestedPieceNumbers.length > 0 ? new Set(interestedPieceNumbers) : undefined;
  const total = interested ? interested.size : entry.pieceCount;
  const sent = new Set<number>();
  const send = (p: PieceRecord) => {
    if (sent.has(p.number) || (interested && !interested.has(p.number))) return;
    sent.add(p.number);
    call.write({ number: p.number, offset: p.offset, length: p.length, digest: p.digest, contentLength: entry.meta.contentLength, pieceLength: entry.meta.pieceLength });
    if (sent.size >= total) finish();
  };
  const onFailed = (err: Error) => {
    cleanup();
    call.emit('error', toGrpcError(new NotFoundError(`task ${taskId} is gone: ${err.message}`)));
  };
  const onFinished = () => {
    for (const p of entry.pieces()) send(p);
    finish();
  };
  // The download here failed (its origin died, say): the pieces sent are all there will be,
  // so the stream ends and the child looks elsewhere instead of waiting on it.
  const onStopped = (err: Error) => {
    mgr.logger.debug({ taskId, err: err.message }, 'SyncPieces: the download of this task stopped; ending the stream');
    finish();
  };
  const cleanup = () => {
    entry.off('piece', send);
    entry.off('failed', onFailed);
    entry.off('finished', onFinished);
    entry.off('stopped', onStopped);
  };
  let done = false;
  const finish = () => {
    if (done) return;
    done = true;
    cleanup();
    call.end();
  };
  entry.on('piece', send);
  entry.on('failed', onFailed);
  entry.on('finished', onFinished);
  entry.on('stopped', onStopped);
  call.on('cancelled', cleanup);
  for (const p of entry.pieces()) send(p);
  // A partial task nobody is downloading here: what it holds now is all it will offer.
  if (entry.finished || total === 0 || !entry.filling) finish();
}

export function uploadHandlers(mgr: TaskManager): DfdaemonUploadHandlers {
  return {
    SyncPieces: (call) => {
      const { taskId } = call.request;
      const refuse = () => {
        const err = new NotFoundError(`task ${taskId} not found`);
        logRefusal(mgr, call, 'DfdaemonUpload.SyncPieces', err);
        call.emit('error', toGrpcError(err));
      };
      const entry = mgr.entry(taskId);
      if (entry) return syncPieces(mgr, call, entry);
      // A download here that reported its start before creating its entry: the child waits for it.
      const pending = mgr.pendingEntry(taskId);
      if (!pending) return refuse();
      void pending.then((e) => {
        if (call.cancelled) return;
        if (e) syncPieces(mgr, call, e);
        else refuse();
      });
    },
    DownloadTask: downloadTaskHandler(mgr, 'upload'),
    StatTask: statHandler(mgr, 'DfdaemonUpload.StatTask'),
    DeleteTask: deleteHandler(mgr, 'DfdaemonUpload.DeleteTask'),
  };
}

export function downloadHandlers(mgr: TaskManager): DfdaemonDownloadHandlers {
  return {
    DownloadTask: downloadTaskHandler(mgr, 'download'),
    StatTask: statHandler(mgr, 'DfdaemonDownload.StatTask'),
    DeleteTask: deleteHandler(mgr, 'DfdaemonDownload.DeleteTask'),
  };
}
