/** dfget against a real dfdaemon (startDfdaemon) over its download unix socket. */
import { createHash, randomBytes } from 'node:crypto';
import { promises as fs, mkdtempSync, rmSync } from 'node:fs';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { parseConfig } from '../../../services/common/config';
import { silentLogger } from '../../../services/common/logger';
import { startDfdaemon, type DfdaemonHandle } from '../../../services/dfdaemon/daemon';
import { main } from '../../../services/dfget/main';

jest.setTimeout(30_000);

describe('dfget through a real dfdaemon', () => {
  let dir: string;
  let origin: http.Server;
  let base: string;
  let daemon: DfdaemonHandle;
  let originGets = 0;
  const content = randomBytes(6 * 1024 * 1024 + 7);
  const digest = `sha256:${createHash('sha256').update(content).digest('hex')}`;

  beforeAll(async () => {
    dir = mkdtempSync(path.join(tmpdir(), 'dfget-daemon-'));
    origin = http.createServer((req, res) => {
      if (req.method === 'GET') originGets++;
      if (!req.url?.startsWith('/file.bin')) return void res.writeHead(404).end();
      const range = /^bytes=(\d+)-(\d+)$/.exec(req.headers.range ?? '');
      if (range) {
        const start = Number(range[1]);
        const end = Math.min(Number(range[2]), content.length - 1);
        res.writeHead(206, { 'content-range': `bytes ${start}-${end}/${content.length}`, 'content-length': end - start + 1 });
        return void res.end(req.method === 'HEAD' ? undefined : content.subarray(start, end + 1));
      }
      res.writeHead(200, { 'content-length': content.length });
      res.end(req.method === 'HEAD' ? undefined : content);
    });
    await new Promise<void>((r) => origin.listen(0, '127.0.0.1', r));
    base = `http://127.0.0.1:${(origin.address() as AddressInfo).port}`;
    const config = parseConfig('dfdaemon', { security: { insecure: true },
      dataDir: path.join(dir, 'data'),
      workHome: dir,
      metrics: '',
      host: { advertiseIP: '127.0.0.1', hostname: 'dfget-test' },
      scheduler: { manager: { enable: false } },
      download: { downloadGRPC: { unixListen: { socket: path.join(dir, 'dfdaemon.sock') } }, peerGRPC: { tcpListen: { listen: '127.0.0.1', port: 0 } } },
      upload: { tcpListen: { listen: '127.0.0.1', port: 0 } },
      proxy: { tcpListen: { listen: '127.0.0.1', port: 0 } },
    });
    daemon = await startDfdaemon(config, { logger: silentLogger() });
  });

  afterAll(async () => {
    await daemon?.stop();
    origin.closeAllConnections();
    await new Promise((r) => origin.close(r));
    rmSync(dir, { recursive: true, force: true });
  });

  function io() {
    const lines: string[] = [];
    return { io: { stderr: { write: (s: string) => lines.push(s), isTTY: false } }, text: () => lines.join('') };
  }

  it('downloads via the unix socket with the digest checked, then again from the cache', async () => {
    const out = path.join(dir, 'a.bin');
    const first = io();
    expect(await main(['node', 'dfget', `${base}/file.bin`, '-O', out, '-e', path.join(dir, 'dfdaemon.sock'), '--digest', digest], first.io)).toBe(0);
    expect(first.text()).toBe('');
    expect((await fs.readFile(out)).equals(content)).toBe(true);
    const gets = originGets;
    expect(gets).toBeGreaterThan(0);

    const out2 = path.join(dir, 'b.bin');
    const second = io();
    expect(await main(['node', 'dfget', `${base}/file.bin`, '-O', out2, '-e', `unix:${path.join(dir, 'dfdaemon.sock')}`, '--digest', digest], second.io)).toBe(0);
    expect(second.text()).toBe('');
    expect((await fs.readFile(out2)).equals(content)).toBe(true);
    expect(originGets).toBe(gets);
  });

  it('a wrong digest fails the download and leaves no output file', async () => {
    const out = path.join(dir, 'c.bin');
    const run = io();
    expect(await main(['node', 'dfget', `${base}/file.bin?v=2`, '-O', out, '-e', path.join(dir, 'dfdaemon.sock'), '--digest', `sha256:${'1'.repeat(64)}`], run.io)).toBe(1);
    expect(run.text()).toMatch(/^dfget: .*(digest|mismatch)/i);
    await expect(fs.stat(out)).rejects.toThrow();
  });

  it('reports an origin 404 as one line', async () => {
    const run = io();
    expect(await main(['node', 'dfget', `${base}/missing`, '-O', path.join(dir, 'd.bin'), '-e', path.join(dir, 'dfdaemon.sock')], run.io)).toBe(1);
    expect(run.text().trim().split('\n')).toHaveLength(1);
    expect(run.text()).toContain('404');
  });
});
