/** The proxy in a real dfdaemon (startDfdaemon: TaskManager, piece store), back-to-source from a local origin. */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { parseConfig } from '../../../services/common/config';
import { silentLogger } from '../../../services/common/logger';
import { startDfdaemon, type DfdaemonHandle } from '../../../services/dfdaemon/daemon';
import { blobOf, request, startOrigin, type Origin } from './helpers';

jest.setTimeout(30_000);

describe('proxy inside a real dfdaemon', () => {
  let dir: string;
  let origin: Origin;
  let daemon: DfdaemonHandle;
  const content = randomBytes(9 * 1024 * 1024 + 123);
  const { digest, hex } = blobOf(content);

  beforeAll(async () => {
    dir = mkdtempSync(path.join(tmpdir(), 'proxy-daemon-'));
    origin = await startOrigin();
    origin.blobs.set(digest, content);
    const config = parseConfig('dfdaemon', { security: { insecure: true },
      dataDir: path.join(dir, 'data'),
      workHome: dir,
      metrics: '',
      host: { advertiseIP: '127.0.0.1', hostname: 'proxy-test' },
      scheduler: { manager: { enable: false } },
      download: { downloadGRPC: { unixListen: { socket: path.join(dir, 'dfdaemon.sock') } }, peerGRPC: { tcpListen: { listen: '127.0.0.1', port: 0 } } },
      upload: { tcpListen: { listen: '127.0.0.1', port: 0 } },
      proxy: { tcpListen: { listen: '127.0.0.1', port: 0 }, registryMirror: { url: origin.base } },
    });
    daemon = await startDfdaemon(config, { logger: silentLogger() });
  });

  afterAll(async () => {
    await daemon?.stop();
    await origin.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('exposes proxyPort and serves a blob cold, then as a local cache hit, with origin headers', async () => {
    expect(daemon.proxyPort).toBeGreaterThan(0);
    const cold = await request(daemon.proxyPort, `/v2/library/app/blobs/${digest}?ns=docker.io`, { headers: { 'X-Dragonfly-Registry': origin.base } });
    expect(cold.status).toBe(200);
    expect(cold.body.equals(content)).toBe(true);
    expect(cold.headers['content-length']).toBe(String(content.length));
    expect(cold.headers['docker-content-digest']).toBe(digest);
    expect(cold.headers['x-dragonfly-task-id']).toBe(hex);
    expect(cold.headers['x-dragonfly-task-download-finished']).toBeUndefined();
    const originGets = origin.seen.filter((s) => s.method === 'GET').length;

    const hit = await request(daemon.proxyPort, `/v2/library/app/blobs/${digest}`, { headers: { 'X-Dragonfly-Registry': origin.base } });
    expect(hit.status).toBe(200);
    expect(hit.body.equals(content)).toBe(true);
    expect(hit.headers['x-dragonfly-task-download-finished']).toBe('true');
    expect(hit.headers['content-type']).toBe('application/octet-stream');
    // The cache hit touched neither the origin nor anything else upstream.
    expect(origin.seen.filter((s) => s.method === 'GET').length).toBe(originGets);

    const ranged = await request(daemon.proxyPort, `/v2/library/app/blobs/${digest}`, { headers: { Range: 'bytes=5000000-5000099' } });
    expect(ranged.status).toBe(206);
    expect(ranged.headers['content-range']).toBe(`bytes 5000000-5000099/${content.length}`);
    expect(ranged.body.equals(content.subarray(5_000_000, 5_000_100))).toBe(true);
  });

  it('replays the origin 401 for a blob it may not read, and passes manifests through', async () => {
    const other = randomBytes(1000);
    const b = blobOf(other);
    origin.blobs.set(b.digest, other);
    const denied = await request(daemon.proxyPort, `/v2/private/app/blobs/${b.digest}`, { headers: { Authorization: 'Bearer nope' } });
    expect(denied.status).toBe(401);
    expect(denied.headers['www-authenticate']).toContain('Bearer realm=');

    const manifest = await request(daemon.proxyPort, '/v2/library/app/manifests/latest', { headers: { Authorization: 'Bearer good' } });
    expect(manifest.status).toBe(200);
    expect(origin.seen[origin.seen.length - 1].headers.authorization).toBe('Bearer good');
  });

  it('an over-long range on a cold task is cut from the body', async () => {
    const small = randomBytes(5000);
    const b = blobOf(small);
    origin.blobs.set(b.digest, small);
    const res = await request(daemon.proxyPort, `/v2/library/app/blobs/${b.digest}`, { headers: { Range: 'bytes=4000-9999' } });
    expect(res.status).toBe(206);
    expect(res.headers['content-range']).toBe('bytes 4000-4999/5000');
    expect(res.body.equals(small.subarray(4000))).toBe(true);
  });

  it('a blob whose origin serves other bytes under its digest gets a 502 with a JSON reason, not a 200 cut short', async () => {
    const real = randomBytes(70_000);
    const b = blobOf(real);
    // The origin answers the digest's URL with other content of the same length.
    origin.blobs.set(b.digest, randomBytes(real.length));
    for (const attempt of [1, 2]) {
      const res = await request(daemon.proxyPort, `/v2/library/app/blobs/${b.digest}`, { headers: { 'X-Dragonfly-Registry': origin.base } });
      expect([attempt, res.status]).toEqual([attempt, 502]);
      expect(res.headers['content-type']).toBe('application/json');
      expect(res.headers['x-dragonfly-error-type']).toBe('dfdaemon');
      expect((JSON.parse(res.body.toString()) as { message: string }).message).toMatch(/digest/i);
    }
    // The proxy keeps serving good blobs.
    const ok = await request(daemon.proxyPort, `/v2/library/app/blobs/${digest}`, { headers: { 'X-Dragonfly-Registry': origin.base } });
    expect(ok.status).toBe(200);
    expect(ok.body.equals(content)).toBe(true);
  });
});
