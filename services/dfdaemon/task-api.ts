/**
 * The in-process contract between dfdaemon's download engine (TaskManager) and its front
 * ends: the registry-mirror proxy, the DfdaemonDownload gRPC service that dfget talks to,
 * and the scheduler-triggered seed download. The proxy calls it directly (no gRPC hop), so
 * a cache hit is a file read.
 */
import type { Readable } from 'node:stream';

export interface ByteRange {
  readonly start: number;
  readonly length: number;
}

export interface DownloadOptions {
  readonly url: string;
  /** Headers sent to the origin on back-to-source (Authorization included). */
  readonly requestHeaders: Readonly<Record<string, string>>;
  readonly tag?: string;
  readonly application?: string;
  /** Query params left out of the task id; default: DEFAULT_FILTERED_QUERY_PARAMS. */
  readonly filteredQueryParams?: readonly string[];
  /** "sha256:<hex>": the whole content is checked against it before the task is finished. */
  readonly digest?: string;
  /** Only these bytes are returned; the whole task is still fetched and stored. */
  readonly range?: ByteRange;
  readonly disableBackToSource?: boolean;
  /** Seed-peer triggers: go to the origin without asking the scheduler for parents. */
  readonly needBackToSource?: boolean;
  readonly priority?: number;
  readonly signal?: AbortSignal;
}

export interface TaskReadResult {
  readonly taskId: string;
  readonly contentLength: number;
  /** Origin response headers recorded when the task started (Content-Type, Docker-Content-Digest...). */
  readonly responseHeaders: Readonly<Record<string, string>>;
  /** True when the task was already complete on this host before the call (local cache hit). */
  readonly fromCache: boolean;
  /** The content (or `range` of it), in order, streamed as pieces land. Errors if the download fails. */
  readonly body: Readable;
  /**
   * The same bytes as `body`, already in memory (a small cache hit, checked against its digest):
   * a caller that uses them does not read `body`, which is then never made.
   */
  readonly content?: Buffer;
}

/** One stored piece, as reported to progress listeners (dfget's per-piece responses). */
export interface PieceProgress {
  readonly number: number;
  readonly offset: number;
  readonly length: number;
  /** "crc32:<decimal>" */
  readonly digest: string;
  readonly trafficType: 'BACK_TO_SOURCE' | 'REMOTE_PEER' | 'LOCAL_PEER';
  readonly parentId?: string;
  readonly costNs: number;
}

export interface DownloadProgress {
  readonly taskId: string;
  readonly contentLength: number;
  readonly completedLength: number;
  /** Additive: the piece that just landed (absent on the first, "started" report). */
  readonly piece?: PieceProgress;
  /** Additive: piece length of the task, once known. */
  readonly pieceLength?: number;
  /** Additive: the origin response headers recorded for the task. */
  readonly responseHeaders?: Readonly<Record<string, string>>;
}

export interface TaskInfo {
  readonly taskId: string;
  readonly url: string;
  readonly contentLength: number;
  readonly pieceLength: number;
  readonly finishedPieces: number;
  readonly pieceCount: number;
  readonly finished: boolean;
  readonly responseHeaders: Readonly<Record<string, string>>;
}

/** The origin refused (4xx/5xx): carried back unchanged so the proxy can replay it (401 + WWW-Authenticate). */
export class OriginResponseError extends Error {
  constructor(
    readonly status: number,
    readonly headers: Readonly<Record<string, string>>,
    readonly body: Buffer,
    readonly url: string,
  ) {
    super(`origin answered ${status} for ${url}`);
    this.name = 'OriginResponseError';
  }
}

export interface TaskApi {
  /** Streams the content: from the local file when finished, otherwise while downloading it (P2P or origin). */
  read(options: DownloadOptions): Promise<TaskReadResult>;
  /**
   * Downloads the whole content to `outputPath` (a reflink where the filesystem supports it, else a copy;
   * a hardlink to the cache only with `hardLink`); never leaves a partial file there.
   */
  downloadToFile(
    options: DownloadOptions & { readonly outputPath: string; readonly overwrite?: boolean; readonly hardLink?: boolean },
    onProgress?: (p: DownloadProgress) => void,
  ): Promise<{ taskId: string; contentLength: number; fromCache: boolean }>;
  /**
   * A cache hit answered at once, without touching the file or waiting: the content (or `range`)
   * of a small finished task held in memory, checked against its digest. Undefined: not held
   * (or the request is not valid); read() then gives the answer, or the error.
   */
  readHeld?(options: DownloadOptions): TaskReadResult | undefined;
  /**
   * readHeld of a whole OCI blob (a URL that blobDigestOf gives `digest` for: its task is the
   * digest, whatever the tag, application or filtered query). Undefined: not held, or not a
   * sha256 digest.
   */
  readHeldBlob?(digest: string): TaskReadResult | undefined;
  stat(taskId: string): TaskInfo | undefined;
  delete(taskId: string): Promise<void>;
}
