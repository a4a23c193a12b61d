/**
 * One seed peer (its upload limited, as a seed serving a whole cluster is) and three peers
 * behind a real scheduler, a 256 MiB file from a counting origin: every peer gets a
 * sha256-correct copy, the origin serves the bytes once, and normal peers serve pieces to
 * each other.
 */
import * as fsp from 'node:fs/promises';
import * as path from 'node:path';
import { parseConfig } from '../../../services/common';
import { startDfdaemon, type DfdaemonHandle } from '../../../services/dfdaemon/daemon';
import type { DownloadProgress } from '../../../services/dfdaemon/task-api';
import { startScheduler, type SchedulerHandle } from '../../../services/scheduler/server';
import { daemonConfig, freePort, MiB, quiet, randomFile, sha256File, startOrigin, tempDir, type Origin } from './helpers';

jest.setTimeout(120_000);

describe('P2P through a real scheduler', () => {
  let root: string;
  let origin: Origin;
  let scheduler: SchedulerHandle;
  const daemons: DfdaemonHandle[] = [];
  let digest: string;
  const SIZE = 256 * MiB;

  beforeAll(async () => {
    root = await tempDir('dfdaemon-p2p');
    await fsp.mkdir(path.join(root, 'origin'));
    digest = await randomFile(path.join(root, 'origin', 'big.bin'), SIZE);
    origin = await startOrigin(path.join(root, 'origin'));
    // No manager here: the scheduler trusts the seed by its address (seedPeer.addrs).
    const seedPort = await freePort();
    scheduler = await startScheduler(
      parseConfig('scheduler', { security: { insecure: true }, server: { port: 0, listenIP: '127.0.0.1', advertiseIP: '127.0.0.1' }, seedPeer: { addrs: [`127.0.0.1:${seedPort}`] }, metrics: { enable: false } }),
      { logger: quiet() },
    );
    const schedulerAddr = { scheduler: { netAddrs: [{ addr: `127.0.0.1:${scheduler.port}` }] } };
    daemons.push(
      await startDfdaemon(
        daemonConfig(path.join(root, 'seed'), 'seed-1', {
          download: { peerGRPC: { tcpListen: { listen: '127.0.0.1', port: seedPort } } },
          // The seed's upload is the bottleneck, as on a real cluster (one seed, many nodes): on
          // bare loopback an unthrottled seed outruns every child, and taking every piece from it
          // would be right. Peers must then take pieces from each other.
          upload: { rateLimit: '128MiB' },
          scheduler: { ...schedulerAddr.scheduler, manager: { enable: false, seedPeer: { enable: true } } },
        }),
        { logger: quiet() },
      ),
    );
    for (const n of [1, 2, 3]) daemons.push(await startDfdaemon(daemonConfig(path.join(root, `peer${n}`), `peer-${n}`, schedulerAddr), { logger: quiet() }));
  });

  afterAll(async () => {
    for (const d of daemons) await d.stop();
    await scheduler?.stop();
    await origin?.close();
    await fsp.rm(root, { recursive: true, force: true });
  });

  it('three peers download at once: correct, origin hit once, peers share with each other', async () => {
    const [seed, ...peers] = daemons;
    expect(seed.hostId).toMatch(/-seed$/);
    const url = origin.url('big.bin');
    const pieces: DownloadProgress[][] = peers.map(() => []);
    const outputs = peers.map((_, i) => path.join(root, `out-${i}.bin`));
    const results = await Promise.all(
      peers.map((p, i) => p.tasks.downloadToFile({ url, requestHeaders: {}, outputPath: outputs[i] }, (pr) => pieces[i].push(pr))),
    );
    for (const r of results) expect(r.contentLength).toBe(SIZE);
    for (const out of outputs) expect(await sha256File(out)).toBe(digest);
    // The origin served the content exactly once (the seed's back-to-source), plus nothing else.
    expect(origin.bytesServed()).toBe(SIZE);
    expect(seed.tasks.stat(results[0].taskId)?.finished).toBe(true);

    const fromPeers = pieces.flat().filter((p) => p.piece);
    for (const p of fromPeers) expect(p.piece!.trafficType).toBe('REMOTE_PEER');
    const betweenNormalPeers = fromPeers.filter((p) => p.piece!.parentId && !p.piece!.parentId.endsWith('-seed'));
    console.log(`pieces from peers: ${fromPeers.length}, between normal peers: ${betweenNormalPeers.length}`);
    expect(betweenNormalPeers.length).toBeGreaterThan(0);
    // Metrics tell the same story.
    const remoteBytes = await Promise.all(peers.map(async (p) => (await p.metrics.downloadBytes.get()).values.find((v) => v.labels.source === 'remote_peer')?.value ?? 0));
    expect(remoteBytes).toEqual([SIZE, SIZE, SIZE]);
    const seedOrigin = (await seed.metrics.downloadBytes.get()).values.find((v) => v.labels.source === 'back_to_source')?.value;
    expect(seedOrigin).toBe(SIZE);
  });

  it('a second read on a peer is a local cache hit', async () => {
    const res = await daemons[1].tasks.read({ url: origin.url('big.bin'), requestHeaders: {} });
    expect(res.fromCache).toBe(true);
    let n = 0;
    for await (const c of res.body) n += (c as Buffer).length;
    expect(n).toBe(SIZE);
  });
});
