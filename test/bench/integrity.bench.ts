/**
 * What serving only verified content costs dfdaemon, on a 512 MiB finished task (page cache
 * warm), each beside the unverified read of the same bytes in the same run:
 * - a cache hit as served: ensureIntact (one fstat: the file is still the verified one) +
 *   TaskApi-style read of the whole task into a discarding sink;
 * - the full re-verification that runs once after a restart or when the file changed: sha256
 *   of the whole content on the hash worker (tasks with a digest) and per-piece crc32 (without).
 */
import { randomBytes } from 'node:crypto';
import * as fsp from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { crc32 } from 'node:zlib';
import { silentLogger } from '../../services/common';
import { sha256OfFile } from '../../services/dfdaemon/content-hasher';
import { ContentReadStream, crc32Digest, TaskStore, type TaskEntry } from '../../services/dfdaemon/storage';
import { type BenchFigure, runStandalone } from './types';

const MiB = 1024 * 1024;
const SIZE = 512 * MiB;
const PIECE = 4 * MiB;
const ROUNDS = 5;

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const rate = (ms: number) => SIZE / MiB / (ms / 1000);

function discard(): Writable {
  return new Writable({
    highWaterMark: 4 * MiB,
    write(_chunk, _enc, cb) {
      cb();
    },
  });
}

async function readAll(entry: TaskEntry): Promise<void> {
  await pipeline(new ContentReadStream(entry, 0, SIZE), discard());
}

async function timed(fn: () => Promise<unknown>): Promise<number> {
  const t0 = performance.now();
  await fn();
  return performance.now() - t0;
}

export async function run(): Promise<BenchFigure[]> {
  const root = await fsp.mkdtemp(path.join(os.tmpdir(), 'bench-integrity-'));
  const store = await TaskStore.open({ dataDir: root, keepStorage: true, taskExpireMs: 3600_000, diskGCThreshold: 0, highPercent: 99, lowPercent: 98, logger: silentLogger() });
  try {
    const taskId = 'b'.repeat(64);
    const entry = await store.create({ taskId, url: 'http://bench/x', contentLength: SIZE, pieceLength: PIECE, responseHeaders: {} });
    const fh = await entry.handle();
    const block = randomBytes(PIECE);
    for (let n = 0; n * PIECE < SIZE; n++) {
      block.writeUInt32LE(n, 0);
      await fh.write(block, 0, PIECE, n * PIECE);
      store.markPiece(entry, n, crc32Digest(crc32(block)));
    }
    const digest = await sha256OfFile(entry.contentPath);
    await store.finish(entry, digest);
    await readAll(entry); // warm the page cache

    const plainMs: number[] = [];
    const servedMs: number[] = [];
    const shaMs: number[] = [];
    const crcMs: number[] = [];
    for (let i = 0; i < ROUNDS; i++) {
      plainMs.push(await timed(() => readAll(entry)));
      servedMs.push(
        await timed(async () => {
          if (!(await store.ensureIntact(entry))) throw new Error('task failed verification');
          await readAll(entry);
        }),
      );
      // Forget the verification (as after a restart): the next ensureIntact re-checks everything.
      entry.verifiedStamp = undefined;
      shaMs.push(await timed(() => store.ensureIntact(entry)));
      entry.verifiedStamp = undefined;
      const savedDigest = entry.meta.digest;
      entry.meta.digest = undefined;
      crcMs.push(await timed(() => store.ensureIntact(entry)));
      entry.meta.digest = savedDigest;
    }
    if (!store.get(taskId)) throw new Error('the task was dropped: verification failed on good bytes');
    const unverified = rate(median(plainMs));
    const note = `${SIZE / MiB} MiB finished task, ${PIECE / MiB} MiB pieces, page cache warm, median of ${ROUNDS}`;
    return [
      {
        area: 'dfdaemon',
        name: 'cache hit as served (integrity check: fstat of the verified file) → discarding sink',
        value: rate(median(servedMs)),
        unit: 'MiB/s',
        baselineName: 'the same read without the check',
        baselineValue: unverified,
        note,
      },
      {
        area: 'dfdaemon',
        name: 'full re-verification after a restart / file change, sha256 (tasks with a digest)',
        value: rate(median(shaMs)),
        unit: 'MiB/s',
        baselineName: 'unverified read of the same task',
        baselineValue: unverified,
        note: `${note}; runs once per restart or file change, not per read`,
      },
      {
        area: 'dfdaemon',
        name: 'full re-verification after a restart / file change, per-piece crc32 (no digest)',
        value: rate(median(crcMs)),
        unit: 'MiB/s',
        baselineName: 'unverified read of the same task',
        baselineValue: unverified,
        note: `${note}; runs once per restart or file change, not per read`,
      },
    ];
  } finally {
    await store.close();
    await fsp.rm(root, { recursive: true, force: true });
  }
}

if (require.main === module) runStandalone(run);
