/** The proxy and dfget on the `npm start` cluster (manager, scheduler, seed peer, peer; free ports). */
import { createHash, randomBytes } from 'node:crypto';
import { promises as fs, mkdtempSync, rmSync } from 'node:fs';
import { execFile } from 'node:child_process';
import { tmpdir } from 'node:os';
import { promisify } from 'node:util';
import * as path from 'node:path';
import { silentLogger } from '../../../services/common/logger';
import { main as dfget } from '../../../services/dfget/main';
import { startLocalCluster, type LocalCluster } from '../../../services/local-cluster';
import { blobOf, request, startOrigin, type Origin } from '../../unit/proxy/helpers';

const exec = promisify(execFile);
const FREE = { managerRest: 0, managerGrpc: 0, managerMetrics: 0, scheduler: 0, schedulerMetrics: 0, peerGrpc: 0, peerProxy: 0, peerUpload: 0, peerMetrics: 0, seedMetrics: 0 };

describe('proxy on a local cluster', () => {
  let dir: string;
  let origin: Origin;
  let cluster: LocalCluster;

  beforeAll(async () => {
    dir = mkdtempSync(path.join(tmpdir(), 'proxy-cluster-'));
    origin = await startOrigin();
    cluster = await startLocalCluster({ workDir: dir, logger: silentLogger(), ports: FREE, redis: false, proxyWhiteList: [{ host: '127.0.0.1', ports: [String(origin.port)] }] });
  });
  afterAll(async () => {
    await cluster?.stop();
    await origin.close();
    rmSync(dir, { recursive: true, force: true });
  });

  async function bytesBySource(registry: LocalCluster['peer']['registry']): Promise<Record<string, number>> {
    const out: Record<string, number> = {};
    const text = await registry.metrics();
    for (const m of text.matchAll(/^dragonfly_dfdaemon_download_bytes_total\{source="([a-z_]+)"[^}]*\} (\d+)/gm)) out[m[1]] = Number(m[2]);
    return out;
  }

  it('a blob pulled through the peer proxy comes via the seed peer, then from the local cache', async () => {
    const content = randomBytes(5 * 1024 * 1024 + 17);
    const { digest, hex } = blobOf(content);
    origin.blobs.set(digest, content);
    const url = `/v2/library/app/blobs/${digest}?ns=registry.local`;
    const first = await request(cluster.peer.proxyPort, url, { headers: { 'X-Dragonfly-Registry': origin.base } });
    expect(first.status).toBe(200);
    expect(first.body.equals(content)).toBe(true);
    expect(first.headers['x-dragonfly-task-id']).toBe(hex);
    expect((await bytesBySource(cluster.seed.registry)).back_to_source).toBeGreaterThanOrEqual(content.length);
    expect((await bytesBySource(cluster.peer.registry)).remote_peer).toBeGreaterThanOrEqual(content.length);

    const second = await request(cluster.peer.proxyPort, url, { headers: { 'X-Dragonfly-Registry': origin.base } });
    expect(second.status).toBe(200);
    expect(second.headers['x-dragonfly-task-download-finished']).toBe('true');
    expect(second.body.equals(content)).toBe(true);
  });

  it('dfget downloads through the peer over its download socket', async () => {
    const content = randomBytes(3 * 1024 * 1024);
    const { digest } = blobOf(content);
    origin.blobs.set(digest, content);
    const out = path.join(dir, 'out.bin');
    const lines: string[] = [];
    const code = await dfget(
      ['node', 'dfget', `${origin.base}/v2/other/blobs/${digest}`, '-O', out, '-e', cluster.peer.config.download.downloadGRPC.unixListen.socket, '--digest', `sha256:${createHash('sha256').update(content).digest('hex')}`],
      { stderr: { write: (s: string) => lines.push(s), isTTY: false } },
    );
    expect(lines.join('')).toBe('');
    expect(code).toBe(0);
    expect((await fs.readFile(out)).equals(content)).toBe(true);
  });

  it('each daemon has its own download socket, mode 0600', async () => {
    const seedSocket = cluster.seed.config.download.downloadGRPC.unixListen.socket;
    const peerSocket = cluster.peer.config.download.downloadGRPC.unixListen.socket;
    expect(seedSocket).not.toBe(peerSocket);
    for (const s of [seedSocket, peerSocket]) {
      const st = await fs.stat(s);
      expect(st.isSocket()).toBe(true);
      expect(st.mode & 0o777).toBe(0o600);
    }
  });

  it("the printed 'try it' dfget line works when pasted into a shell as is", async () => {
    const i = cluster.lines.findIndex((l) => l.startsWith('try it'));
    const line = cluster.lines[i + 1].trim();
    expect(line).toMatch(/^node build\/services\/dfget\/main\.js /);
    expect(line).toContain(cluster.peer.config.download.downloadGRPC.unixListen.socket);
    const repoRoot = path.resolve(__dirname, '../../..');
    const { stdout, stderr } = await exec('sh', ['-c', line], { cwd: repoRoot, timeout: 60_000 });
    expect(stderr).toBe('');
    void stdout;
    const output = /-O (\S+)/.exec(line)![1];
    expect((await fs.readFile(output)).length).toBeGreaterThan(0);
  });

  it("the printed 'try it' curl line pulls the sample registry's blob through the peer's proxy, digest as printed", async () => {
    const i = cluster.lines.findIndex((l) => l.startsWith('try it'));
    const line = cluster.lines[i + 2].trim();
    expect(line).toMatch(/^curl -sSf -o \S+ -H 'X-Dragonfly-Registry: http:\/\/127\.0\.0\.1:\d+' http:\/\/127\.0\.0\.1:\d+\/v2\/\S+\/blobs\/sha256:[a-f0-9]{64} && sha256sum \S+$/);
    const digest = /blobs\/sha256:([a-f0-9]{64})/.exec(line)![1];
    const { stdout, stderr } = await exec('sh', ['-c', line], { cwd: path.resolve(__dirname, '../../..'), timeout: 60_000 });
    expect(stderr).toBe('');
    expect(stdout.split(/\s+/)[0]).toBe(digest);
    // Through P2P: the seed peer went to the sample registry, the peer got it from the seed peer.
    expect((await bytesBySource(cluster.peer.registry)).remote_peer).toBeGreaterThan(0);
  });
});
