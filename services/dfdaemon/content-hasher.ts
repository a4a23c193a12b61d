/**
 * sha256 of a task's content. Content up to INLINE_HASH_MAX_BYTES (most blobs of an image: configs,
 * thin layers) is read back through the task's open handle and hashed on the calling thread when
 * it is complete: a worker job would cost more (its own open and close of the file, three
 * messages between threads) than hashing those bytes. That read is synchronous: the bytes were
 * just written, so it copies them from the page cache, in less time than hashing them (which
 * runs on this thread anyway) and than a thread-pool round trip costs the event loop.
 * Larger content is hashed on a worker thread: the download's main thread only says which byte
 * ranges are stored (in order), the worker reads them from the content file into one reused
 * buffer and hashes them. sha256 costs about a core-second per GiB here, so
 * off the main thread it overlaps the receive instead of competing with it.
 */
import { createHash } from 'node:crypto';
import { readSync } from 'node:fs';
import * as fsp from 'node:fs/promises';
import { Worker } from 'node:worker_threads';

/** Plain JS (eval'd) so it runs the same from the TypeScript sources (tests) and the build. */
const WORKER_SOURCE = `
const { parentPort } = require('node:worker_threads');
const fs = require('node:fs');
const { createHash } = require('node:crypto');
const CHUNK = 4 * 1024 * 1024;
let buffer;
const jobs = new Map();
parentPort.on('message', (m) => {
  if (m.op === 'open') {
    try {
      jobs.set(m.id, { fd: fs.openSync(m.path, 'r'), hash: createHash('sha256'), error: undefined });
    } catch (err) {
      jobs.set(m.id, { fd: -1, hash: undefined, error: String(err && err.message) });
    }
    return;
  }
  const job = jobs.get(m.id);
  if (!job) return;
  if (m.op === 'update') {
    if (job.error) return;
    try {
      buffer ??= Buffer.allocUnsafeSlow(CHUNK);
      for (let pos = m.offset, end = m.offset + m.length; pos < end; ) {
        const n = Math.min(CHUNK, end - pos);
        const got = fs.readSync(job.fd, buffer, 0, n, pos);
        if (got !== n) throw new Error('short read at ' + pos);
        job.hash.update(buffer.subarray(0, n));
        pos += n;
      }
    } catch (err) {
      job.error = String(err && err.message);
    }
    return;
  }
  if (m.op === 'digest' || m.op === 'drop') {
    jobs.delete(m.id);
    if (job.fd >= 0) fs.closeSync(job.fd);
    if (m.op === 'digest') {
      parentPort.postMessage(job.error ? { id: m.id, error: job.error } : { id: m.id, digest: 'sha256:' + job.hash.digest('hex') });
    }
  }
});
`;

type Reply = { id: number; digest?: string; error?: string };

/** One worker shared by every hash in the process, started on first use, not keeping the process alive. */
class HashWorker {
  private worker: Worker | undefined;
  private nextId = 1;
  private readonly waiting = new Map<number, { resolve: (d: string) => void; reject: (e: Error) => void }>();

  /** Starts the worker ahead of the first download, so the first digest does not wait for it. */
  warm(): void {
    this.get();
  }

  private get(): Worker {
    if (this.worker) return this.worker;
    const w = new Worker(WORKER_SOURCE, { eval: true });
    w.on('message', (r: Reply) => {
      const p = this.waiting.get(r.id);
      if (!p) return;
      this.waiting.delete(r.id);
      if (this.waiting.size === 0) w.unref();
      if (r.error !== undefined) p.reject(new Error(`content hash failed: ${r.error}`));
      else p.resolve(r.digest!);
    });
    const broken = (err: Error) => {
      if (this.worker === w) this.worker = undefined;
      for (const p of this.waiting.values()) p.reject(err);
      this.waiting.clear();
    };
    w.on('error', broken);
    w.on('exit', (code) => broken(new Error(`content hash worker exited with ${code}`)));
    // After the listeners (adding one re-refs): only a pending digest keeps the process alive.
    w.unref();
    this.worker = w;
    return w;
  }

  open(contentPath: string): { id: number; worker: Worker } {
    const id = this.nextId++;
    const worker = this.get();
    worker.postMessage({ op: 'open', id, path: contentPath });
    return { id, worker };
  }

  digest(id: number, worker: Worker): Promise<string> {
    if (worker !== this.worker) return Promise.reject(new Error('content hash worker is gone'));
    return new Promise((resolve, reject) => {
      this.waiting.set(id, { resolve, reject });
      worker.ref();
      worker.postMessage({ op: 'digest', id });
    });
  }

  drop(id: number, worker: Worker): void {
    if (worker === this.worker) worker.postMessage({ op: 'drop', id });
  }
}

const shared = new HashWorker();

export function warmContentHasher(): void {
  shared.warm();
}

export interface PieceSource {
  readonly contentPath: string;
  readonly pieceCount: number;
  hasPiece(n: number): boolean;
  piece(n: number): { readonly offset: number; readonly length: number } | undefined;
}

/** Content up to this size is hashed on the calling thread in one read (about 1 ms of CPU per MiB). */
export const INLINE_HASH_MAX_BYTES = 1024 * 1024;

/** The whole content through the task's open handle, for the inline hash. */
export interface WholeContent {
  readonly length: number;
  handle(): Promise<fsp.FileHandle>;
}

/**
 * sha256 over the content in piece order: large content is fed to the worker as pieces complete
 * contiguously (no second pass); small content (`whole`, at most INLINE_HASH_MAX_BYTES) is read
 * and hashed once, when digest() is asked.
 */
export class ContentHasher {
  private readonly job: { id: number; worker: Worker } | undefined;
  private readonly whole: WholeContent | undefined;
  private next = 0;
  private closed = false;

  constructor(
    private readonly source: PieceSource,
    whole?: WholeContent,
  ) {
    if (whole && whole.length <= INLINE_HASH_MAX_BYTES) this.whole = whole;
    else this.job = shared.open(source.contentPath);
  }

  /** Call after each stored piece: hands every newly contiguous piece to the worker. */
  advance(): void {
    if (this.closed || !this.job) return;
    while (this.next < this.source.pieceCount && this.source.hasPiece(this.next)) {
      const p = this.source.piece(this.next)!;
      this.job.worker.postMessage({ op: 'update', id: this.job.id, offset: p.offset, length: p.length });
      this.next++;
    }
  }

  async digest(): Promise<string> {
    if (!this.job) return this.inlineDigest();
    this.advance();
    if (this.next !== this.source.pieceCount) throw new Error('content hash incomplete');
    this.closed = true;
    return shared.digest(this.job.id, this.job.worker);
  }

  private async inlineDigest(): Promise<string> {
    const whole = this.whole!;
    for (let n = 0; n < this.source.pieceCount; n++) if (!this.source.hasPiece(n)) throw new Error('content hash incomplete');
    this.closed = true;
    const hash = createHash('sha256');
    if (whole.length > 0) {
      const buf = Buffer.allocUnsafe(whole.length);
      const { fd } = await whole.handle();
      for (let pos = 0; pos < buf.length; ) {
        const bytesRead = readSync(fd, buf, pos, buf.length - pos, pos);
        if (bytesRead === 0) throw new Error(`content hash failed: short read at ${pos} of ${buf.length}`);
        pos += bytesRead;
      }
      hash.update(buf);
    }
    return `sha256:${hash.digest('hex')}`;
  }

  /** Abandons the hash (download failed or stopped). */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    if (this.job) shared.drop(this.job.id, this.job.worker);
  }
}

/** sha256 of a whole file ("sha256:<hex>"), read and hashed on the hash worker. */
export function sha256OfFile(contentPath: string): Promise<string> {
  return fsp.stat(contentPath).then((st) => {
    const job = shared.open(contentPath);
    if (st.size > 0) job.worker.postMessage({ op: 'update', id: job.id, offset: 0, length: st.size });
    return shared.digest(job.id, job.worker);
  });
}
