import * as fsp from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { createHash, randomBytes } from 'node:crypto';
import { silentLogger } from '../../../services/common';
import { SmallContentCache } from '../../../services/dfdaemon/memory-cache';
import { crc32Of, MEMORY_CACHE_ENTRY_BYTES, TaskStore, type StorageOptions } from '../../../services/dfdaemon/storage';

const MiB = 1024 * 1024;

async function tmpDir(): Promise<string> {
  return fsp.mkdtemp(path.join(os.tmpdir(), 'dfdaemon-store-'));
}

function opts(dataDir: string, extra: Partial<StorageOptions> = {}): StorageOptions {
  return {
    dataDir,
    keepStorage: true,
    taskExpireMs: 3600_000,
    diskGCThreshold: 0,
    highPercent: 90,
    lowPercent: 70,
    logger: silentLogger(),
    metadataFlushMs: 10,
    ...extra,
  };
}

const taskId = (c: string) => c.repeat(64);

async function until(check: () => Promise<boolean>, ms = 5_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 5));
  }
}

/** A task's persisted metadata: its own file, else its last record in the finished-tasks journal. */
async function persistedMeta(dir: string, id: string): Promise<{ lastUsedAt: number; finished: boolean } | undefined> {
  const own = await fsp.readFile(path.join(dir, 'metadata', 'tasks', `${id}.json`), 'utf8').catch(() => undefined);
  if (own !== undefined) return JSON.parse(own) as { lastUsedAt: number; finished: boolean };
  const journal = await fsp.readFile(path.join(dir, 'metadata', 'finished-tasks.jsonl'), 'utf8').catch(() => '');
  let last: { lastUsedAt: number; finished: boolean } | undefined;
  for (const line of journal.split('\n').filter(Boolean)) {
    const rec = JSON.parse(line) as { m?: { taskId: string; lastUsedAt: number; finished: boolean }; d?: string };
    if (rec.m?.taskId === id) last = rec.m;
    if (rec.d === id) last = undefined;
  }
  return last;
}

async function writePiece(store: TaskStore, id: string, n: number, data: Buffer): Promise<void> {
  const e = store.get(id)!;
  const fh = await e.handle();
  await fh.write(data, 0, data.length, n * e.meta.pieceLength);
  store.markPiece(e, n, crc32Of(data));
}

describe('TaskStore', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await tmpDir();
  });
  afterEach(async () => {
    await fsp.rm(dir, { recursive: true, force: true });
  });

  it('preallocates the content file and writes pieces at their offsets', async () => {
    const store = await TaskStore.open(opts(dir));
    const id = taskId('a');
    const data = randomBytes(10 * MiB);
    const e = await store.create({ taskId: id, url: 'http://o/x', contentLength: data.length, pieceLength: 4 * MiB, responseHeaders: { 'content-type': 'x' } });
    expect(e.contentPath).toBe(path.join(dir, 'content', 'tasks', 'aaa', id));
    expect((await fsp.stat(e.contentPath)).size).toBe(data.length);
    // out of order
    await writePiece(store, id, 2, data.subarray(8 * MiB));
    await writePiece(store, id, 0, data.subarray(0, 4 * MiB));
    expect(e.holdsRange(0, 4 * MiB)).toBe(true);
    expect(e.holdsRange(0, 4 * MiB + 1)).toBe(false);
    await writePiece(store, id, 1, data.subarray(4 * MiB, 8 * MiB));
    await store.finish(e);
    expect(Buffer.compare(await fsp.readFile(e.contentPath), data)).toBe(0);
    expect(e.pieces().map((p) => p.digest)).toEqual([0, 1, 2].map((n) => crc32Of(data.subarray(n * 4 * MiB, (n + 1) * 4 * MiB))));
    await store.close();
  });

  it('prepare makes the content file ahead of create, which takes it; a file no entry took is removed, and a new one can follow', async () => {
    const store = await TaskStore.open(opts(dir));
    const id = taskId('b');
    const contentPath = path.join(dir, 'content', 'tasks', 'bbb', id);
    store.prepare(id);
    await until(async () => (await fsp.stat(contentPath).catch(() => undefined)) !== undefined);
    const made = await fsp.stat(contentPath);
    const data = randomBytes(64 * 1024);
    const e = await store.create({ taskId: id, url: 'http://o/b', contentLength: data.length, pieceLength: 4 * MiB, responseHeaders: {} });
    // The same file: create made none of its own.
    expect((await fsp.stat(e.contentPath)).ino).toBe(made.ino);
    await writePiece(store, id, 0, data);
    await store.finish(e);
    expect(Buffer.compare(await fsp.readFile(contentPath), data)).toBe(0);
    // Taken: discarding it now is a no-op that leaves the task's file alone.
    await store.discardPrepared(id);
    expect(Buffer.compare(await fsp.readFile(contentPath), data)).toBe(0);

    // A download that failed before its entry: the file goes; the next attempt prepares and creates again.
    const other = taskId('c');
    const otherPath = path.join(dir, 'content', 'tasks', 'ccc', other);
    store.prepare(other);
    const discarded = store.discardPrepared(other);
    store.prepare(other); // while the removal runs: not prepared again (it would be removed under it)
    await discarded;
    expect(await fsp.stat(otherPath).catch(() => undefined)).toBeUndefined();
    store.prepare(other);
    const again = await store.create({ taskId: other, url: 'http://o/c', contentLength: data.length, pieceLength: 4 * MiB, responseHeaders: {} });
    await writePiece(store, other, 0, data);
    await store.finish(again);
    expect(Buffer.compare(await fsp.readFile(otherPath), data)).toBe(0);
    await store.close();
  });

  it('persists metadata atomically and serves finished tasks after a restart', async () => {
    const id = taskId('b');
    const data = randomBytes(5 * MiB);
    let store = await TaskStore.open(opts(dir));
    const e = await store.create({ taskId: id, url: 'http://o/b', contentLength: data.length, pieceLength: 4 * MiB, responseHeaders: { etag: '"1"' } });
    await writePiece(store, id, 0, data.subarray(0, 4 * MiB));
    await writePiece(store, id, 1, data.subarray(4 * MiB));
    await store.finish(e);
    await store.close();
    const metaFiles = [...(await fsp.readdir(path.join(dir, 'metadata'))), ...(await fsp.readdir(path.join(dir, 'metadata', 'tasks')))];
    expect(metaFiles.filter((n) => n.endsWith('.tmp'))).toEqual([]); // no temp files left behind
    expect((await persistedMeta(dir, id))?.finished).toBe(true);

    store = await TaskStore.open(opts(dir));
    const again = store.get(id)!;
    expect(again.finished).toBe(true);
    expect(again.meta.url).toBe('http://o/b');
    expect(again.meta.responseHeaders).toEqual({ etag: '"1"' });
    expect(again.finishedPieceCount).toBe(2);
    await store.close();
  });

  it('never reloads a partial task as complete, and drops pieces whose bytes do not match', async () => {
    const id = taskId('c');
    const data = randomBytes(12 * MiB);
    let store = await TaskStore.open(opts(dir));
    const e = await store.create({ taskId: id, url: 'http://o/c', contentLength: data.length, pieceLength: 4 * MiB, responseHeaders: {} });
    await writePiece(store, id, 0, data.subarray(0, 4 * MiB));
    await writePiece(store, id, 1, data.subarray(4 * MiB, 8 * MiB));
    await store.close();
    // Tear piece 1 on disk (as a crash between write and sync could).
    const fh = await fsp.open(e.contentPath, 'r+');
    await fh.write(Buffer.alloc(100, 7), 0, 100, 4 * MiB + 10);
    await fh.close();

    store = await TaskStore.open(opts(dir));
    const again = store.get(id)!;
    expect(again.finished).toBe(false);
    expect(again.hasPiece(0)).toBe(true);
    expect(again.hasPiece(1)).toBe(false);
    expect(again.hasPiece(2)).toBe(false);
    expect(again.holdsRange(0, data.length)).toBe(false);
    await store.close();
  });

  it('drops tasks whose content file vanished, and wipes everything without keepStorage', async () => {
    const store = await TaskStore.open(opts(dir));
    const e = await store.create({ taskId: taskId('d'), url: 'http://o/d', contentLength: 10, pieceLength: 4 * MiB, responseHeaders: {} });
    await store.create({ taskId: taskId('e'), url: 'http://o/e', contentLength: 10, pieceLength: 4 * MiB, responseHeaders: {} });
    await store.close();
    await fsp.rm(e.contentPath);
    const reopened = await TaskStore.open(opts(dir));
    expect(reopened.get(taskId('d'))).toBeUndefined();
    expect(reopened.get(taskId('e'))).toBeDefined();
    await reopened.close();
    const wiped = await TaskStore.open(opts(dir, { keepStorage: false }));
    expect(wiped.all()).toHaveLength(0);
    await wiped.close();
  });

  it('a content file no metadata describes (a crash before the first flush) is removed on the next start', async () => {
    const store = await TaskStore.open(opts(dir));
    const kept = await store.create({ taskId: taskId('k'), url: 'http://o/k', contentLength: 10, pieceLength: 4 * MiB, responseHeaders: {} });
    await store.close();
    const orphan = path.join(path.dirname(kept.contentPath), 'k'.repeat(63) + 'f');
    await fsp.writeFile(orphan, 'partial bytes');
    const reopened = await TaskStore.open(opts(dir));
    expect(reopened.get(taskId('k'))).toBeDefined();
    expect(reopened.get('k'.repeat(63) + 'f')).toBeUndefined();
    await expect(fsp.stat(orphan)).rejects.toThrow(/ENOENT/);
    await expect(fsp.stat(kept.contentPath)).resolves.toBeDefined();
    await reopened.close();
  });

  it('cache hits do not write metadata each: the use time is written once per touchFlushMs, and at close', async () => {
    const store = await TaskStore.open(opts(dir, { metadataFlushMs: 5, touchFlushMs: 60_000 }));
    const e = await store.create({ taskId: taskId('t'), url: 'http://o/t', contentLength: 4, pieceLength: 4 * MiB, responseHeaders: {} });
    const fh = await e.handle();
    await fh.write(Buffer.from('abcd'), 0, 4, 0);
    store.markPiece(e, 0, crc32Of(Buffer.from('abcd')));
    await store.finish(e);
    const written = (await persistedMeta(dir, taskId('t')))!;
    await new Promise((r) => setTimeout(r, 5));
    for (let i = 0; i < 20; i++) store.touch(e);
    // Far more than metadataFlushMs: a piece flush would have happened, a hit's does not.
    await new Promise((r) => setTimeout(r, 100));
    expect((await persistedMeta(dir, taskId('t')))!.lastUsedAt).toBe(written.lastUsedAt);
    await store.close();
    expect((await persistedMeta(dir, taskId('t')))!.lastUsedAt).toBeGreaterThan(written.lastUsedAt);
  });

  it('a hit after the use-time write has run schedules the next one; removal cancels a pending one', async () => {
    const store = await TaskStore.open(opts(dir, { metadataFlushMs: 5, touchFlushMs: 30 }));
    const make = async (c: string) => {
      const e = await store.create({ taskId: taskId(c), url: `http://o/${c}`, contentLength: 4, pieceLength: 4 * MiB, responseHeaders: {} });
      const fh = await e.handle();
      await fh.write(Buffer.from('abcd'), 0, 4, 0);
      store.markPiece(e, 0, crc32Of(Buffer.from('abcd')));
      await store.finish(e);
      return e;
    };
    const e = await make('u');
    const written = (await persistedMeta(dir, taskId('u')))!;
    await new Promise((r) => setTimeout(r, 5));
    for (let i = 0; i < 5; i++) store.touch(e);
    await new Promise((r) => setTimeout(r, 120));
    const first = (await persistedMeta(dir, taskId('u')))!;
    expect(first.lastUsedAt).toBe(e.meta.lastUsedAt);
    expect(first.lastUsedAt).toBeGreaterThan(written.lastUsedAt);
    // The write above ran: the next hit must schedule another, not take the spent one for pending.
    await new Promise((r) => setTimeout(r, 5));
    store.touch(e);
    await new Promise((r) => setTimeout(r, 120));
    expect((await persistedMeta(dir, taskId('u')))!.lastUsedAt).toBeGreaterThan(first.lastUsedAt);
    // A task removed with a write pending: nothing of it is written after.
    const gone = await make('v');
    store.touch(gone);
    await store.remove(gone.taskId);
    await new Promise((r) => setTimeout(r, 120));
    expect(await persistedMeta(dir, taskId('v'))).toBeUndefined();
    await store.close();
  });

  it('GC removes tasks unused for taskExpireTime, but not ones in use', async () => {
    const store = await TaskStore.open(opts(dir, { taskExpireMs: 1000 }));
    const old = await store.create({ taskId: taskId('1'), url: 'http://o/1', contentLength: 1, pieceLength: 4 * MiB, responseHeaders: {} });
    const busy = await store.create({ taskId: taskId('2'), url: 'http://o/2', contentLength: 1, pieceLength: 4 * MiB, responseHeaders: {} });
    const fresh = await store.create({ taskId: taskId('3'), url: 'http://o/3', contentLength: 1, pieceLength: 4 * MiB, responseHeaders: {} });
    old.meta.lastUsedAt -= 5000;
    busy.meta.lastUsedAt -= 5000;
    busy.acquire();
    busy.meta.lastUsedAt -= 5000;
    const res = await store.gc();
    expect(res.expired).toEqual([old.taskId]);
    expect(store.get(old.taskId)).toBeUndefined();
    await expect(fsp.stat(old.contentPath)).rejects.toThrow();
    expect(store.get(busy.taskId)).toBeDefined();
    expect(store.get(fresh.taskId)).toBeDefined();
    await store.close();
  });

  it('GC evicts least-recently-used finished tasks from the high to the low watermark, counting only its own files', async () => {
    // 10 MiB budget: 90% high, 50% low. Someone else's 50 MiB file in the data dir does not count.
    await fsp.writeFile(path.join(dir, 'foreign.bin'), Buffer.alloc(50 * MiB));
    const store = await TaskStore.open(opts(dir, { diskGCThreshold: 10 * MiB, highPercent: 90, lowPercent: 50 }));
    const ids = ['4', '5', '6', '7'].map(taskId);
    const t0 = Date.now();
    for (const [i, id] of ids.entries()) {
      const e = await store.create({ taskId: id, url: `http://o/${i}`, contentLength: 2.5 * MiB, pieceLength: 4 * MiB, responseHeaders: {} });
      if (i < 3) {
        await writePiece(store, id, 0, Buffer.alloc(2.5 * MiB));
        await store.finish(e);
      }
      e.meta.lastUsedAt = t0 - (10 - i) * 1000; // ids[0] least recently used
    }
    // 10 MiB used = 100% ≥ 90%: must get to ≤ 5 MiB; ids[3] is partial (downloading) and stays.
    store.get(ids[1])!.acquire(); // being read: stays
    const res = await store.gc();
    expect(res.evicted).toEqual([ids[0], ids[2]]);
    expect(store.get(ids[1])).toBeDefined();
    expect(store.get(ids[3])).toBeDefined();
    expect(store.ownBytes()).toBe(5 * MiB);
    expect((await fsp.stat(path.join(dir, 'foreign.bin'))).size).toBe(50 * MiB);
    // Under the high mark now: nothing more goes.
    expect((await store.gc()).evicted).toEqual([]);
    await store.close();
    // fsyncs of a 50 MiB data dir: seconds on a loaded shared disk.
  }, 30_000);

  it('GC by file-system usage frees only what it needs', async () => {
    let used = 95;
    const store = await TaskStore.open(opts(dir, { fsUsage: async () => ({ total: 100 * MiB, used: used * MiB }) }));
    for (const [i, c] of ['8', '9'].entries()) {
      const e = await store.create({ taskId: taskId(c), url: `http://o/${c}`, contentLength: 20 * MiB, pieceLength: 4 * MiB, responseHeaders: {} });
      await store.finish(e);
      e.meta.lastUsedAt = Date.now() - (5 - i) * 1000;
    }
    const res = await store.gc(); // 95 → needs 25 MiB freed to reach 70: both 20 MiB tasks go
    expect(res.evicted).toEqual([taskId('8'), taskId('9')]);
    used = 50;
    expect((await store.gc()).evicted).toEqual([]);
    await store.close();
  });

  it('waitForPiece resolves when the piece lands and rejects when the task is removed', async () => {
    const store = await TaskStore.open(opts(dir));
    const id = taskId('f');
    const e = await store.create({ taskId: id, url: 'http://o/f', contentLength: 8 * MiB, pieceLength: 4 * MiB, responseHeaders: {} });
    e.startFilling(); // a download is running
    const waiting = e.waitForPiece(1);
    await writePiece(store, id, 1, Buffer.alloc(4 * MiB, 1));
    await expect(waiting).resolves.toBeUndefined();
    const never = expect(e.waitForPiece(0)).rejects.toThrow(/deleted/);
    await store.remove(id);
    await never;
    await store.close();
  });

  it('waitForPiece rejects when the download filling the task stops, and at once when none runs (a reader never hangs)', async () => {
    const store = await TaskStore.open(opts(dir));
    const id = taskId('s');
    const e = await store.create({ taskId: id, url: 'http://o/s', contentLength: 8 * MiB, pieceLength: 4 * MiB, responseHeaders: {} });
    await expect(e.waitForPiece(0)).rejects.toThrow(/will not come: no download of it is running/);
    e.startFilling();
    const stopped: Error[] = [];
    e.on('stopped', (err: Error) => stopped.push(err));
    const waiting = expect(e.waitForPiece(0)).rejects.toThrow(/will not come: its download stopped \(connect ECONNREFUSED\)/);
    e.stopFilling(new Error('connect ECONNREFUSED'));
    await waiting;
    expect(stopped).toHaveLength(1);
    // The entry stays for a later download; one that finishes it emits no 'stopped'.
    expect(store.get(id)).toBe(e);
    e.startFilling();
    await writePiece(store, id, 0, Buffer.alloc(4 * MiB, 1));
    await writePiece(store, id, 1, Buffer.alloc(4 * MiB, 2));
    await store.finish(e);
    e.stopFilling(new Error('download ended'));
    expect(stopped).toHaveLength(1);
    await expect(e.waitForPiece(1)).resolves.toBeUndefined();
    await store.close();
  });

  it('refuses task metadata outside the shared bounds (1-byte pieces, > 1 TiB) without allocating', async () => {
    const store = await TaskStore.open(opts(dir));
    await expect(store.create({ taskId: taskId('1'), url: 'http://o/1', contentLength: 2 ** 40, pieceLength: 1, responseHeaders: {} })).rejects.toThrow(/piece length 1/);
    await expect(store.create({ taskId: taskId('2'), url: 'http://o/2', contentLength: 2 ** 41, pieceLength: 4 * MiB, responseHeaders: {} })).rejects.toThrow(/exceeds/);
    expect(store.all()).toHaveLength(0);
    await store.close();
  });

  it('keeps at most maxTasks: evicts the least recently used finished task, refuses when all are busy', async () => {
    const store = await TaskStore.open(opts(dir, { maxTasks: 2 }));
    const a = await store.create({ taskId: taskId('a'), url: 'http://o/a', contentLength: 1, pieceLength: 4 * MiB, responseHeaders: {} });
    await writePiece(store, taskId('a'), 0, Buffer.from('a'));
    await store.finish(a);
    a.meta.lastUsedAt = 1;
    const b = await store.create({ taskId: taskId('b'), url: 'http://o/b', contentLength: 1, pieceLength: 4 * MiB, responseHeaders: {} });
    b.acquire();
    await store.create({ taskId: taskId('c'), url: 'http://o/c', contentLength: 1, pieceLength: 4 * MiB, responseHeaders: {} });
    expect(store.get(taskId('a'))).toBeUndefined();
    await expect(store.create({ taskId: taskId('d'), url: 'http://o/d', contentLength: 1, pieceLength: 4 * MiB, responseHeaders: {} })).rejects.toThrow(/all in use/);
    await store.close();
  });

  it('ensureIntact: one fstat while the file is the verified one; a changed file is re-verified and dropped when wrong', async () => {
    const store = await TaskStore.open(opts(dir));
    const id = taskId('9');
    const data = randomBytes(8 * MiB);
    const e = await store.create({ taskId: id, url: 'http://o/9', contentLength: data.length, pieceLength: 4 * MiB, responseHeaders: {} });
    await writePiece(store, id, 0, data.subarray(0, 4 * MiB));
    await writePiece(store, id, 1, data.subarray(4 * MiB));
    await store.finish(e);
    expect(await store.ensureIntact(e)).toBe(true);
    // Rewritten with the same bytes: re-verified, still good.
    await fsp.writeFile(e.contentPath, data);
    expect(await store.ensureIntact(e)).toBe(true);
    // One byte changed: dropped, files removed.
    const fh = await fsp.open(e.contentPath, 'r+');
    await fh.write(Buffer.from([data[5 * MiB] ^ 1]), 0, 1, 5 * MiB);
    await fh.close();
    expect(await store.ensureIntact(e)).toBe(false);
    expect(store.get(id)).toBeUndefined();
    await expect(fsp.stat(e.contentPath)).rejects.toThrow();
    await store.close();
  });

  it('a one-piece task (finished without an fsync) whose content a crash lost is re-verified after a restart and dropped, not served', async () => {
    // A delayed flush that fires before finish (a loaded machine, the suite's 10 ms) would write the
    // task while partial, into a file of its own: the journal case needs it finished first.
    let store = await TaskStore.open(opts(dir, { metadataFlushMs: 60_000 }));
    const id = taskId('a');
    const data = randomBytes(64 * 1024);
    const e = await store.create({ taskId: id, url: 'http://o/a', contentLength: data.length, pieceLength: 4 * MiB, responseHeaders: {} });
    expect(store.counts()).toEqual({ finished: 0, partial: 1 });
    await writePiece(store, id, 0, data);
    await store.finish(e);
    expect(store.counts()).toEqual({ finished: 1, partial: 0 });
    // Finished by its first metadata write: a record in the journal, no file of its own.
    expect(await fsp.readdir(path.join(dir, 'metadata', 'tasks'))).toEqual([]);
    expect((await persistedMeta(dir, id))?.finished).toBe(true);
    await store.close();
    // What a power loss can leave of unsynced content: the right size, other bytes.
    await fsp.writeFile(e.contentPath, Buffer.alloc(data.length));
    store = await TaskStore.open(opts(dir));
    const again = store.get(id)!;
    expect(again.finished).toBe(true);
    expect(store.counts()).toEqual({ finished: 1, partial: 0 });
    expect(await store.ensureIntact(again)).toBe(false);
    expect(store.get(id)).toBeUndefined();
    expect(store.counts()).toEqual({ finished: 0, partial: 0 });
    await store.close();
  });

  it('a partial task written before it finished keeps its own metadata file; journaled tasks survive restarts, removals and a torn last line', async () => {
    let store = await TaskStore.open(opts(dir, { metadataFlushMs: 60_000 }));
    const data = randomBytes(1000);
    const partialFirst = await store.create({ taskId: taskId('c'), url: 'http://o/c', contentLength: data.length, pieceLength: 4 * MiB, responseHeaders: {} });
    await store.flushAll(); // as the delayed flush would: written while partial
    expect(await fsp.readdir(path.join(dir, 'metadata', 'tasks'))).toEqual([`${taskId('c')}.json`]);
    await writePiece(store, taskId('c'), 0, data);
    await store.finish(partialFirst);
    for (const c of ['d', 'e', 'f']) {
      const e = await store.create({ taskId: taskId(c), url: `http://o/${c}`, contentLength: data.length, pieceLength: 4 * MiB, responseHeaders: {} });
      await writePiece(store, taskId(c), 0, data);
      await store.finish(e);
    }
    expect(await fsp.readdir(path.join(dir, 'metadata', 'tasks'))).toEqual([`${taskId('c')}.json`]);
    expect(await store.remove(taskId('e'))).toBe(true);
    await expect(fsp.stat(store.contentPathOf(taskId('e')))).rejects.toThrow();
    await store.close();
    // A crash tore a record being appended.
    await fsp.appendFile(path.join(dir, 'metadata', 'finished-tasks.jsonl'), '{"m":{"taskId":"');

    store = await TaskStore.open(opts(dir));
    expect(['c', 'd', 'e', 'f'].map((c) => store.get(taskId(c))?.finished ?? false)).toEqual([true, true, false, true]);
    expect(store.counts()).toEqual({ finished: 3, partial: 0 });
    // The torn line was dropped by a rewrite, so later appends are readable.
    const g = await store.create({ taskId: taskId('0'), url: 'http://o/0', contentLength: data.length, pieceLength: 4 * MiB, responseHeaders: {} });
    await writePiece(store, taskId('0'), 0, data);
    await store.finish(g);
    await store.close();
    store = await TaskStore.open(opts(dir));
    expect(['c', 'd', 'f', '0'].every((c) => store.get(taskId(c))?.finished)).toBe(true);
    expect(await store.ensureIntact(store.get(taskId('0'))!)).toBe(true);
    await store.close();
  });

  it('finish refuses a task whose content file is shorter than its length (a one-piece file is not preallocated)', async () => {
    const store = await TaskStore.open(opts(dir));
    const e = await store.create({ taskId: taskId('b'), url: 'http://o/b', contentLength: 100, pieceLength: 4 * MiB, responseHeaders: {} });
    const fh = await e.handle();
    await fh.write(Buffer.alloc(60), 0, 60, 0);
    store.markPiece(e, 0, crc32Of(Buffer.alloc(60)));
    await expect(store.finish(e)).rejects.toThrow(/holds 60 bytes, expected 100/);
    expect(e.finished).toBe(false);
    await store.close();
  });

  it('rangeVerified after a restart: a task without a digest serves each range once its pieces pass the in-order crc32 check, and nothing once one fails', async () => {
    const pieces = [randomBytes(4 * MiB), randomBytes(4 * MiB), randomBytes(4 * MiB)];
    let store = await TaskStore.open(opts(dir));
    for (const [c, digest] of [['6', undefined], ['7', undefined], ['8', `sha256:${createHash('sha256').update(Buffer.concat(pieces)).digest('hex')}`]] as const) {
      const e = await store.create({ taskId: taskId(c), url: `http://o/${c}`, contentLength: 12 * MiB, pieceLength: 4 * MiB, responseHeaders: {} });
      for (let n = 0; n < 3; n++) await writePiece(store, e.taskId, n, pieces[n]);
      await store.finish(e, digest);
    }
    await store.close();
    // Piece 2 of task 7 goes bad while the daemon is down.
    const fh = await fsp.open(store.contentPathOf(taskId('7')), 'r+');
    await fh.write(Buffer.from([pieces[2][9] ^ 1]), 0, 1, 8 * MiB + 9);
    await fh.close();
    store = await TaskStore.open(opts(dir));

    const good = store.get(taskId('6'))!;
    expect(await store.rangeVerified(good, 0, 4 * MiB)).toBe(true);
    // Served while the pass is still on the later pieces.
    expect(good.verifying).toBeDefined();
    expect(good.verifiedStamp).toBeUndefined();
    expect(await store.rangeVerified(good, 4 * MiB, 8 * MiB)).toBe(true);
    await good.verifying;
    expect(good.verifiedStamp).toBeDefined();

    const bad = store.get(taskId('7'))!;
    expect(await store.rangeVerified(bad, 100, 1000)).toBe(true);
    expect(await store.rangeVerified(bad, 8 * MiB, 1)).toBe(false);
    expect(store.get(taskId('7'))).toBeUndefined();
    expect(await store.rangeVerified(bad, 0, 1000)).toBe(false);

    // With a digest, only the whole sha256 vouches for a piece: the range waits for the full pass.
    const withDigest = store.get(taskId('8'))!;
    expect(await store.rangeVerified(withDigest, 0, 1)).toBe(true);
    expect(withDigest.verifiedStamp).toBeDefined();
    await store.close();
  });

  describe('small contents in memory', () => {
    const sha = (b: Buffer) => `sha256:${createHash('sha256').update(b).digest('hex')}`;
    async function finished(store: TaskStore, id: string, data: Buffer, digest?: string) {
      // Small contents are one piece.
      const e = await store.create({ taskId: id, url: `http://o/${id}`, contentLength: data.length, pieceLength: 4 * MiB, responseHeaders: {} });
      await writePiece(store, id, 0, data);
      await store.finish(e, digest);
      return e;
    }

    it('holds a finished small content after reading and checking it, until the task is removed', async () => {
      const store = await TaskStore.open(opts(dir));
      const data = randomBytes(64 * 1024);
      const e = await finished(store, taskId('1'), data, sha(data));
      expect(store.contentInMemory(e)).toBeUndefined();
      const loaded = await store.loadIntoMemory(e);
      expect(loaded && Buffer.compare(loaded, data)).toBe(0);
      expect(store.contentInMemory(e)).toBe(loaded);
      expect(store.memoryUsage()).toEqual({ entries: 1, bytes: data.length });
      await store.remove(e.taskId);
      expect(store.contentInMemory(e)).toBeUndefined();
      expect(store.memoryUsage()).toEqual({ entries: 0, bytes: 0 });
      await store.close();
    });

    it('drops the copy once the content file changed (checked every heldRecheckMs); the file path then re-verifies and drops the task', async () => {
      const store = await TaskStore.open(opts(dir, { heldRecheckMs: 200 }));
      const data = randomBytes(64 * 1024);
      const e = await finished(store, taskId('2'), data, sha(data));
      expect(await store.loadIntoMemory(e)).toBeDefined();
      // File times move with the kernel's tick: the write must come after the next one.
      await new Promise((r) => setTimeout(r, 20));
      const fh = await fsp.open(e.contentPath, 'r+');
      await fh.write(Buffer.from([data[100] ^ 1]), 0, 1, 100);
      await fh.close();
      // Within the interval the copy is still answered: the verified bytes, never the file's.
      const held = store.contentInMemory(e);
      expect(held && Buffer.compare(held, data)).toBe(0);
      await new Promise((r) => setTimeout(r, 200));
      expect(store.contentInMemory(e)).toBeUndefined();
      expect(store.memoryUsage().entries).toBe(0);
      expect(await store.ensureIntact(e)).toBe(false);
      expect(store.get(e.taskId)).toBeUndefined();
      await store.close();
    });

    it('with heldRecheckMs 0 sees a changed file at the next hit; removal and a new verification are seen at once whatever the interval', async () => {
      const every = await TaskStore.open(opts(dir, { heldRecheckMs: 0 }));
      const data = randomBytes(32 * 1024);
      const e = await finished(every, taskId('6'), data, sha(data));
      expect(await every.loadIntoMemory(e)).toBeDefined();
      expect(every.contentInMemory(e)).toBeDefined();
      await new Promise((r) => setTimeout(r, 20));
      const fh = await fsp.open(e.contentPath, 'r+');
      await fh.write(Buffer.from([data[7] ^ 1]), 0, 1, 7);
      await fh.close();
      expect(every.contentInMemory(e)).toBeUndefined();
      await every.close();

      const store = await TaskStore.open(opts(dir, { keepStorage: false, heldRecheckMs: 60_000 }));
      const f = await finished(store, taskId('7'), data, sha(data));
      expect(await store.loadIntoMemory(f)).toBeDefined();
      // Another verification of the file (its stamp moved): the copy made under the old one goes.
      f.verifiedStamp = 'other';
      expect(store.contentInMemory(f)).toBeUndefined();
      const g = await finished(store, taskId('8'), data, sha(data));
      expect(await store.loadIntoMemory(g)).toBeDefined();
      await store.remove(g.taskId);
      expect(store.contentInMemory(g)).toBeUndefined();
      await store.close();
    });

    it('never holds bytes that do not match the digest (sha256, else each piece crc32): the task is dropped instead', async () => {
      const corrupt: string[] = [];
      const store = await TaskStore.open(opts(dir, { onCorrupt: (id) => corrupt.push(id) }));
      for (const [c, withDigest] of [['3', true], ['4', false]] as const) {
        const data = randomBytes(40 * 1024);
        const e = await finished(store, taskId(c), data, withDigest ? sha(data) : undefined);
        // Bytes changed behind the stamp's back (the same identity, other bytes): only the check can tell.
        const fh = await e.handle();
        await fh.write(Buffer.from([data[20_000] ^ 1]), 0, 1, 20_000);
        e.verifiedStamp = e.stampNow();
        expect(await store.loadIntoMemory(e)).toBeUndefined();
        expect(store.get(e.taskId)).toBeUndefined();
        expect(store.memoryUsage().entries).toBe(0);
      }
      expect(corrupt).toEqual([taskId('3'), taskId('4')]);
      await store.close();
    });

    it('leaves large and unfinished contents on disk', async () => {
      const store = await TaskStore.open(opts(dir));
      const big = randomBytes(MEMORY_CACHE_ENTRY_BYTES + 1);
      const e = await store.create({ taskId: taskId('5'), url: 'http://o/5', contentLength: big.length, pieceLength: 4 * MiB, responseHeaders: {} });
      await writePiece(store, e.taskId, 0, big);
      expect(await store.loadIntoMemory(e)).toBeUndefined();
      await store.finish(e, sha(big));
      expect(await store.loadIntoMemory(e)).toBeUndefined();
      expect(store.memoryUsage().entries).toBe(0);
      await store.close();
    });
  });
});

describe('SmallContentCache', () => {
  it('is bounded by entry size and total bytes, least recently used out first', () => {
    const cache = new SmallContentCache(100, 40);
    expect(cache.set('big', Buffer.alloc(41), 's')).toBe(false);
    expect(cache.set('empty', Buffer.alloc(0), 's')).toBe(false);
    for (const id of ['a', 'b', 'c']) expect(cache.set(id, Buffer.alloc(30), 's')).toBe(true);
    expect(cache.bytes).toBe(90);
    cache.get('a');
    cache.set('d', Buffer.alloc(30), 's');
    expect(cache.get('b')).toBeUndefined();
    expect(cache.get('a')?.content.length).toBe(30);
    expect(cache.bytes).toBe(90);
    cache.set('a', Buffer.alloc(10), 't');
    expect(cache.bytes).toBe(70);
    cache.delete('c');
    cache.delete('c');
    expect(cache.size).toBe(2);
    expect(cache.bytes).toBe(40);
  });
});
