/**
 * Metadata of finished tasks kept first in one append-only file of JSON lines (storage.ts uses
 * it for a task whose first metadata write is the one that finishes it: every small task).
 * A per-task file costs a file creation (open, write, close) per task, about 0.7 ms of system time
 * on a VM disk, more than everything else a 64 KiB task does with files; an append to this
 * journal costs one write, shared by the records of every task that finished meanwhile.
 *
 * Records: `{"m": <TaskMetadata>}` (the task as it is now) or `{"d": "<task id>"}` (removed); the
 * last record of a task wins. A line torn by a crash does not parse and is skipped; the loader
 * then rewrites the journal (temporary file + rename) with the live records only, as it does
 * at runtime once dead records outnumber live ones (so the file stays within about twice the
 * live records plus COMPACT_SLACK).
 */
import * as fsp from 'node:fs/promises';
import * as path from 'node:path';
import type { TaskMetadata } from './storage';

/** Dead records tolerated beyond the live ones before a rewrite. */
const COMPACT_SLACK = 1024;
const TASK_ID = /^[a-f0-9]{64}$/;

export interface JournalContents {
  /** Last record of each task that is not removed, by task id. */
  readonly metas: Map<string, TaskMetadata>;
  /** Lines that did not parse as a record (torn by a crash, or foreign). */
  readonly bad: number;
}

export class MetaJournal {
  private fh: fsp.FileHandle | undefined;
  private pending: string[] = [];
  private batch: { promise: Promise<void>; resolve: () => void; reject: (e: Error) => void } | undefined;
  private chain: Promise<void> = Promise.resolve();
  /** Records in the file (live and dead). */
  private records = 0;

  constructor(readonly file: string) {}

  /** Reads every record; a missing file is an empty journal. */
  async load(): Promise<JournalContents> {
    const metas = new Map<string, TaskMetadata>();
    let bad = 0;
    let text: string;
    try {
      text = await fsp.readFile(this.file, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { metas, bad };
      throw err;
    }
    let records = 0;
    // A last line without its newline was cut by a crash (it may still parse): the next append
    // would run into it, so it counts as bad and the loader rewrites the file.
    if (text.length > 0 && !text.endsWith('\n')) bad++;
    for (const line of text.split('\n')) {
      if (line === '') continue;
      records++;
      let rec: { m?: TaskMetadata; d?: unknown };
      try {
        rec = JSON.parse(line) as { m?: TaskMetadata; d?: unknown };
      } catch {
        bad++;
        continue;
      }
      if (typeof rec?.d === 'string' && TASK_ID.test(rec.d)) metas.delete(rec.d);
      else if (typeof rec?.m === 'object' && rec.m !== null && typeof rec.m.taskId === 'string' && TASK_ID.test(rec.m.taskId)) metas.set(rec.m.taskId, rec.m);
      else bad++;
    }
    this.records = records;
    return { metas, bad };
  }

  /** True when the file holds more dead records than the live `live` justify. */
  wantsCompaction(live: number): boolean {
    return this.records > 2 * live + COMPACT_SLACK;
  }

  /** Appends the task's metadata as it is now; resolves once written. */
  put(meta: TaskMetadata): Promise<void> {
    return this.append(JSON.stringify({ m: meta }));
  }

  /** Appends the task's removal; resolves once written. */
  del(taskId: string): Promise<void> {
    return this.append(JSON.stringify({ d: taskId }));
  }

  /** Rewrites the journal with these records only (after every append queued before). */
  compact(live: readonly TaskMetadata[]): Promise<void> {
    const run = this.chain.then(async () => {
      const tmp = `${this.file}.${process.pid}.tmp`;
      await fsp.writeFile(tmp, live.map((m) => `${JSON.stringify({ m })}\n`).join(''));
      await this.fh?.close();
      this.fh = undefined;
      await fsp.rename(tmp, this.file);
      this.records = live.length;
    });
    this.chain = run.catch(() => undefined);
    return run;
  }

  /** Writes what is queued and closes the file (a later append opens it again). */
  async close(): Promise<void> {
    await this.chain;
    await this.fh?.close();
    this.fh = undefined;
  }

  private append(line: string): Promise<void> {
    this.pending.push(line);
    if (this.batch) return this.batch.promise;
    let resolve!: () => void;
    let reject!: (e: Error) => void;
    const promise = new Promise<void>((res, rej) => {
      resolve = res;
      reject = rej;
    });
    const batch = { promise, resolve, reject };
    this.batch = batch;
    // Runs after the write in flight: lines appended meanwhile join this batch (one write for all).
    this.chain = this.chain.then(async () => {
      const lines = this.pending;
      this.pending = [];
      if (this.batch === batch) this.batch = undefined;
      try {
        if (!this.fh) {
          await fsp.mkdir(path.dirname(this.file), { recursive: true });
          this.fh = await fsp.open(this.file, 'a');
        }
        await this.fh.appendFile(`${lines.join('\n')}\n`);
        this.records += lines.length;
        batch.resolve();
      } catch (err) {
        batch.reject(err as Error);
      }
    });
    return promise;
  }
}
