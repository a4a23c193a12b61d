/**
 * The front-end contract without a scheduler (every download goes to the origin): the
 * DfdaemonDownload gRPC service dfget uses (unix socket), TaskApi.read joining one download,
 * origin refusals carried back, and whole-content sha256 checks for blobs.
 */
import { createHash, randomBytes } from 'node:crypto';
import * as fsp from 'node:fs/promises';
import * as path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { GRPC_OPTIONS } from '../../../services/common';
import { startDfdaemon, type DfdaemonHandle } from '../../../services/dfdaemon/daemon';
import { OriginResponseError } from '../../../services/dfdaemon/task-api';
import { protos } from '../../../services/proto';
import type { DownloadTaskResponse__Output } from '../../../services/proto/gen/dfdaemon/v2/DownloadTaskResponse';
import { daemonConfig, MiB, quiet, randomFile, sha256File, startOrigin, tempDir, type Origin } from './helpers';

jest.setTimeout(60_000);

describe('dfdaemon download API (origin only)', () => {
  let root: string;
  let origin: Origin;
  let daemon: DfdaemonHandle;
  let digest: string;
  const SIZE = 20 * MiB + 123;

  beforeAll(async () => {
    root = await tempDir('dfdaemon-api');
    await fsp.mkdir(path.join(root, 'origin'));
    digest = await randomFile(path.join(root, 'origin', 'f.bin'), SIZE);
    origin = await startOrigin(path.join(root, 'origin'));
    daemon = await startDfdaemon(daemonConfig(path.join(root, 'd'), 'api-peer'), { logger: quiet() });
  });
  afterAll(async () => {
    await daemon?.stop();
    await origin?.close();
    await fsp.rm(root, { recursive: true, force: true });
  });

  function dfget(download: Record<string, unknown>): Promise<DownloadTaskResponse__Output[]> {
    const client = new (protos().dfdaemon.dfdaemon.v2.DfdaemonDownload)(`unix:${path.join(root, 'd', 'dfdaemon.sock')}`, grpc.credentials.createInsecure(), GRPC_OPTIONS);
    return new Promise((resolve, reject) => {
      const got: DownloadTaskResponse__Output[] = [];
      const call = client.DownloadTask({ download });
      call.on('data', (r: DownloadTaskResponse__Output) => got.push(r));
      call.on('end', () => {
        client.close();
        resolve(got);
      });
      call.on('error', (err) => {
        client.close();
        reject(err);
      });
    });
  }

  it('dfget over the unix socket: started + per-piece progress, output written, no overwrite without asking', async () => {
    const out = path.join(root, 'dfget.bin');
    const responses = await dfget({ url: origin.url('f.bin'), outputPath: out });
    expect(responses[0].response).toBe('downloadTaskStartedResponse');
    expect(Number(responses[0].downloadTaskStartedResponse!.contentLength)).toBe(SIZE);
    const pieces = responses.filter((r) => r.response === 'downloadPieceFinishedResponse');
    expect(pieces).toHaveLength(6);
    for (const p of pieces) expect(p.downloadPieceFinishedResponse!.piece!.digest).toMatch(/^crc32:\d+$/);
    expect(await sha256File(out)).toBe(digest);

    await fsp.writeFile(path.join(root, 'other.bin'), 'keep me');
    const refused = await dfget({ url: origin.url('f.bin'), outputPath: path.join(root, 'other.bin') }).catch((e: grpc.ServiceError) => e);
    expect((refused as grpc.ServiceError).code).toBe(grpc.status.ALREADY_EXISTS);
    expect(await fsp.readFile(path.join(root, 'other.bin'), 'utf8')).toBe('keep me');
    await dfget({ url: origin.url('f.bin'), outputPath: path.join(root, 'other.bin'), overwrite: true });
    expect(await sha256File(path.join(root, 'other.bin'))).toBe(digest);

    const missingOutput = await dfget({ url: origin.url('f.bin') }).catch((e: grpc.ServiceError) => e);
    expect((missingOutput as grpc.ServiceError).code).toBe(grpc.status.INVALID_ARGUMENT);
    const badOrigin = await dfget({ url: origin.url('missing.bin'), outputPath: path.join(root, 'missing.bin') }).catch((e: grpc.ServiceError) => e);
    expect((badOrigin as grpc.ServiceError).code).toBe(grpc.status.NOT_FOUND);
    await expect(fsp.stat(path.join(root, 'missing.bin'))).rejects.toThrow();
  });

  it('concurrent readers share one download and stream it in order', async () => {
    const url = `${origin.url('f.bin')}?copy=2`;
    const before = origin.bytesServed();
    const readers = await Promise.all([1, 2, 3].map(() => daemon.tasks.read({ url, requestHeaders: {} })));
    expect(new Set(readers.map((r) => r.taskId)).size).toBe(1);
    const hashes = await Promise.all(
      readers.map(async (r) => {
        const h = createHash('sha256');
        for await (const c of r.body) h.update(c as Buffer);
        return h.digest('hex');
      }),
    );
    expect(hashes).toEqual([digest, digest, digest]);
    expect(origin.bytesServed() - before).toBe(SIZE);
  });

  it('origin refusals come back as OriginResponseError with status, headers and body', async () => {
    const authOrigin = await startOrigin(path.join(root, 'origin'), { requireAuth: 'Bearer good' });
    try {
      const err = await daemon.tasks.read({ url: authOrigin.url('f.bin'), requestHeaders: {} }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(OriginResponseError);
      expect((err as OriginResponseError).status).toBe(401);
      expect((err as OriginResponseError).headers['www-authenticate']).toBe('Bearer realm="test"');
      expect((err as OriginResponseError).body.toString()).toContain('UNAUTHORIZED');
      // With the right header the same URL works (Authorization is forwarded on every piece GET).
      const ok = await daemon.tasks.read({ url: authOrigin.url('f.bin'), requestHeaders: { Authorization: 'Bearer good' } });
      const h = createHash('sha256');
      for await (const c of ok.body) h.update(c as Buffer);
      expect(h.digest('hex')).toBe(digest);
    } finally {
      await authOrigin.close();
    }
  });

  it('an OCI blob is checked against its digest before it is finished', async () => {
    const blob = randomBytes(9 * MiB);
    const hex = createHash('sha256').update(blob).digest('hex');
    await fsp.writeFile(path.join(root, 'origin', `sha256:${hex}`), blob);
    const good = await daemon.tasks.read({ url: `${origin.url('v2/lib/blobs/')}sha256:${hex}`, requestHeaders: {} });
    expect(good.taskId).toBe(hex);
    const chunks: Buffer[] = [];
    for await (const c of good.body) chunks.push(c as Buffer);
    expect(Buffer.concat(chunks).equals(blob)).toBe(true);
    await new Promise((r) => setTimeout(r, 50));
    expect(daemon.tasks.stat(hex)?.finished).toBe(true);

    // The origin serves different bytes under a digest: the task fails and is not kept.
    const liarHex = 'e'.repeat(64);
    await fsp.writeFile(path.join(root, 'origin', `sha256:${liarHex}`), blob);
    const liar = await daemon.tasks.read({ url: `${origin.url('v2/lib/blobs/')}sha256:${liarHex}`, requestHeaders: {} });
    await expect(
      (async () => {
        for await (const c of liar.body) void c;
      })(),
    ).rejects.toThrow(/digest mismatch/);
    expect(daemon.tasks.stat(liarHex)).toBeUndefined();
  });
});
