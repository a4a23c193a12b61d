/**
 * A parent whose stored bytes were changed after the task finished: before serving, it sees
 * the content file changed, re-verifies it and drops the task; the child still ends with a
 * correct copy (from the origin, directly or through the seed fetching it anew), and never
 * takes a piece from the rotten copy.
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

  it('the parent drops its rotten copy instead of serving it; the child completes correctly', async () => {
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

    const rottenPeers = new Set([...scheduler.service.store.tasks.get(taskId)!.peers.values()].filter((p) => p.host.isSeed).map((p) => p.id));
    expect(rottenPeers.size).toBe(1);
    const progress: DownloadProgress[] = [];
    const out = path.join(root, 'child-out.bin');
    await child.tasks.downloadToFile({ url, requestHeaders: {}, outputPath: out }, (p) => progress.push(p));
    expect(await sha256File(out)).toBe(digest);

    // The seed noticed that its file changed, re-verified it and dropped the task instead of
    // serving it: the child never stored a piece from the peer that held the rotten copy.
    expect(progress.filter((p) => p.piece)).not.toHaveLength(0);
    expect(progress.filter((p) => p.piece?.parentId !== undefined && rottenPeers.has(p.piece.parentId))).toHaveLength(0);
    expect(child.tasks.stat(taskId)?.finished).toBe(true);
    // The bytes came from the origin again: fetched by the child itself, or by the seed peer
    // (triggered anew, since the child has no other holder to wait for) and passed on.
    expect(origin.bytesServed()).toBeGreaterThan(originAfterSeed);
    if (seed.tasks.stat(taskId)?.finished) expect(await sha256File(seed.engine.store.contentPathOf(taskId))).toBe(digest);
  });
});
