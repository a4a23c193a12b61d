/**
 * A parent whose stored bytes rotted serves wrong piece bytes: the child detects the crc32
 * mismatch, reports download_piece_failed and stops using that parent, and still ends with
 * a correct copy (other parents or the origin provide the rest).
 */
import * as fsp from 'node:fs/promises';
import * as path from 'node:path';
import { parseConfig } from '../../../services/common';
import { startDfdaemon, type DfdaemonHandle } from '../../../services/dfdaemon/daemon';
import type { DownloadProgress } from '../../../services/dfdaemon/task-api';
import { startScheduler, type SchedulerHandle } from '../../../services/scheduler/server';
import { daemonConfig, freePort, MiB, quiet, randomFile, sha256File, startOrigin, tempDir, type Origin } from './helpers';

jest.setTimeout(60_000);

describe('corrupt piece from a parent', () => {
  let root: string;
  let origin: Origin;
  let scheduler: SchedulerHandle;
  const daemons: DfdaemonHandle[] = [];
  let digest: string;
  const SIZE = 32 * MiB;
  const PIECE = 4 * MiB;

  beforeAll(async () => {
    root = await tempDir('dfdaemon-corrupt');
    await fsp.mkdir(path.join(root, 'origin'));
    digest = await randomFile(path.join(root, 'origin', 'f.bin'), SIZE);
    origin = await startOrigin(path.join(root, 'origin'));
    // No manager here: the scheduler trusts the seed by its address (seedPeer.addrs).
    const seedPort = await freePort();
    scheduler = await startScheduler(
      parseConfig('scheduler', { server: { port: 0, listenIP: '127.0.0.1', advertiseIP: '127.0.0.1' }, seedPeer: { addrs: [`127.0.0.1:${seedPort}`] }, metrics: { enable: false } }),
      { logger: quiet() },
    );
    const netAddrs = [{ addr: `127.0.0.1:${scheduler.port}` }];
    daemons.push(
      await startDfdaemon(
        daemonConfig(path.join(root, 'seed'), 'c-seed', { download: { peerGRPC: { tcpListen: { listen: '127.0.0.1', port: seedPort } } }, scheduler: { netAddrs, manager: { enable: false, seedPeer: { enable: true } } } }),
        { logger: quiet() },
      ),
    );
    daemons.push(await startDfdaemon(daemonConfig(path.join(root, 'child'), 'c-child', { scheduler: { netAddrs } }), { logger: quiet() }));
  });
  afterAll(async () => {
    for (const d of daemons) await d.stop();
    await scheduler?.stop();
    await origin?.close();
    await fsp.rm(root, { recursive: true, force: true });
  });

  it('detects, reports and avoids the bad parent, and completes correctly', async () => {
    const [seed, child] = daemons;
    const url = origin.url('f.bin');
    // The seed fetches the task (as the scheduler's trigger would).
    const seedCopy = await seed.tasks.downloadToFile({ url, requestHeaders: {}, outputPath: path.join(root, 'seed-out.bin') });
    const taskId = seedCopy.taskId;
    expect(seed.tasks.stat(taskId)?.finished).toBe(true);
    const originAfterSeed = origin.bytesServed();
    expect(originAfterSeed).toBe(SIZE);

    // Bit rot in the first half of the seed's stored pieces (its metadata still claims them good).
    const fh = await fsp.open(seed.engine.store.contentPathOf(taskId), 'r+');
    for (let n = 0; n < 4; n++) await fh.write(Buffer.from([0x5a, 0xa5, 0x5a]), 0, 3, n * PIECE + 12345);
    await fh.close();

    const progress: DownloadProgress[] = [];
    const out = path.join(root, 'child-out.bin');
    await child.tasks.downloadToFile({ url, requestHeaders: {}, outputPath: out }, (p) => progress.push(p));
    expect(await sha256File(out)).toBe(digest);

    // Detected: the crc mismatch was counted, and no corrupted piece was taken from the seed.
    const failures = (await child.metrics.pieceFailures.get()).values.find((v) => v.labels.reason === 'digest_mismatch')?.value ?? 0;
    expect(failures).toBeGreaterThanOrEqual(1);
    const fromSeed = progress.filter((p) => p.piece?.parentId?.endsWith('-seed')).map((p) => p.piece!.number);
    for (const n of fromSeed) expect(n).toBeGreaterThanOrEqual(4);
    // Avoided: after its failure the seed was no longer used; the missing pieces came from the origin.
    const corruptedPiecesElsewhere = progress.filter((p) => p.piece && p.piece.number < 4);
    expect(corruptedPiecesElsewhere.length).toBe(4);
    for (const p of corruptedPiecesElsewhere) expect(p.piece!.trafficType).toBe('BACK_TO_SOURCE');
    expect(origin.bytesServed()).toBeGreaterThan(originAfterSeed);
    expect(child.tasks.stat(taskId)?.finished).toBe(true);
  });
});
