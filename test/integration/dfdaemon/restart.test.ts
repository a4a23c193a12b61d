/**
 * Restart safety: a peer stopped mid-download keeps its partial task, which is never served
 * as complete (a torn piece is re-verified away) and is resumed after the restart; a finished
 * task survives a restart and is served from the cache.
 */
import * as fsp from 'node:fs/promises';
import * as path from 'node:path';
import { startDfdaemon, type DfdaemonHandle } from '../../../services/dfdaemon/daemon';
import { daemonConfig, MiB, quiet, randomFile, sha256File, startOrigin, tempDir, type Origin } from './helpers';

jest.setTimeout(60_000);

describe('dfdaemon restart', () => {
  let root: string;
  let slowOrigin: Origin;
  let digest: string;
  const SIZE = 64 * MiB;
  let daemon: DfdaemonHandle | undefined;

  beforeAll(async () => {
    root = await tempDir('dfdaemon-restart');
    await fsp.mkdir(path.join(root, 'origin'));
    digest = await randomFile(path.join(root, 'origin', 'file.bin'), SIZE);
    slowOrigin = await startOrigin(path.join(root, 'origin'), { bytesPerSecond: 16 * MiB });
  });
  afterAll(async () => {
    await daemon?.stop();
    await slowOrigin?.close();
    await fsp.rm(root, { recursive: true, force: true });
  });

  // No scheduler configured: the peer goes to the origin itself; a slow origin lets us stop it midway.
  const config = () => daemonConfig(path.join(root, 'peer'), 'restart-peer', { download: { concurrentPieceCount: 2 } });

  it('a partial task is never served as complete and is resumed after a restart', async () => {
    daemon = await startDfdaemon(config(), { logger: quiet() });
    const url = slowOrigin.url('file.bin');
    const out = path.join(root, 'out.bin');
    let taskId = '';
    const reachedHalf = new Promise<void>((resolve) => {
      void daemon!.tasks
        .downloadToFile({ url, requestHeaders: {}, outputPath: out }, (p) => {
          taskId = p.taskId;
          if (p.completedLength >= SIZE / 3) resolve();
        })
        .catch(() => undefined); // stopped midway on purpose
    });
    await reachedHalf;
    await daemon.stop();
    daemon = undefined;
    await expect(fsp.stat(out)).rejects.toThrow(); // no partial output file

    // Tear one recorded piece on disk, as a crash could.
    const meta = JSON.parse(await fsp.readFile(path.join(root, 'peer', 'metadata', 'tasks', `${taskId}.json`), 'utf8')) as { pieces: Record<string, string>; finished: boolean };
    expect(meta.finished).toBe(false);
    const recorded = Object.keys(meta.pieces).map(Number);
    expect(recorded.length).toBeGreaterThan(1);
    const torn = recorded[0];
    const content = await fsp.open(path.join(root, 'peer', 'content', 'tasks', taskId.slice(0, 3), taskId), 'r+');
    await content.write(Buffer.alloc(64, 0xee), 0, 64, torn * 4 * MiB + 1000);
    await content.close();

    const servedBefore = slowOrigin.bytesServed();
    daemon = await startDfdaemon(config(), { logger: quiet() });
    const info = daemon.tasks.stat(taskId)!;
    expect(info.finished).toBe(false);
    expect(info.finishedPieces).toBe(recorded.length - 1); // the torn piece was dropped
    // The upload server does not offer the torn piece or the missing ones.
    const res = await fetch(`http://127.0.0.1:${daemon.uploadPort}/download/${taskId.slice(0, 3)}/${taskId}?peerId=x`, { headers: { range: `bytes=${torn * 4 * MiB}-${torn * 4 * MiB + 10}` } });
    expect(res.status).toBe(416);

    const result = await daemon.tasks.downloadToFile({ url, requestHeaders: {}, outputPath: out });
    expect(result.fromCache).toBe(false);
    expect(await sha256File(out)).toBe(digest);
    // Resumed: only the missing pieces came from the origin again.
    const refetched = slowOrigin.bytesServed() - servedBefore;
    expect(refetched).toBe(SIZE - (recorded.length - 1) * 4 * MiB);
  });

  it('a finished task survives a restart and is served from the cache', async () => {
    const url = slowOrigin.url('file.bin');
    await daemon!.stop();
    daemon = await startDfdaemon(config(), { logger: quiet() });
    const served = slowOrigin.bytesServed();
    const res = await daemon.tasks.read({ url, requestHeaders: {} });
    expect(res.fromCache).toBe(true);
    expect(res.contentLength).toBe(SIZE);
    const out = path.join(root, 'again.bin');
    await fsp.writeFile(out, res.body);
    expect(await sha256File(out)).toBe(digest);
    expect(slowOrigin.bytesServed()).toBe(served);
    // Ranges come from the file too.
    const part = await daemon.tasks.read({ url, requestHeaders: {}, range: { start: 5 * MiB + 3, length: 100 } });
    const chunks: Buffer[] = [];
    for await (const c of part.body) chunks.push(c as Buffer);
    const whole = await fsp.readFile(path.join(root, 'origin', 'file.bin'));
    expect(Buffer.concat(chunks).equals(whole.subarray(5 * MiB + 3, 5 * MiB + 103))).toBe(true);
  });
});
