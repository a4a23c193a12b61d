/**
 * The lab itself: hosts reach each other by service DNS name, processes run inside their
 * namespace with logs on disk, tbf shaping limits a link, and teardown leaves nothing behind.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { run } from './harness/exec';
import { NetnsLab } from './harness/netns-lab';

jest.setTimeout(60_000);

describe('netns lab', () => {
  let lab: NetnsLab;

  beforeAll(async () => {
    lab = await NetnsLab.create();
  });

  afterAll(async () => {
    await NetnsLab.teardownAll();
  });

  it('gives hosts addresses, loopback and per-namespace DNS names', async () => {
    const a = await lab.addHost('alpha');
    const b = await lab.addHost('beta');
    lab.addDnsName('dragonfly-manager.cluster-a.svc.cluster.local', b.ip);

    const lo = await a.exec('ip', ['-o', 'addr', 'show', 'dev', 'lo']);
    expect(lo.stdout).toContain('127.0.0.1');
    const resolved = await a.exec('getent', ['hosts', 'dragonfly-manager.cluster-a.svc.cluster.local']);
    expect(resolved.stdout.split(/\s+/)[0]).toBe(b.ip);
    // The root namespace does not see the lab's names.
    const outside = await run('getent', ['hosts', 'dragonfly-manager.cluster-a.svc.cluster.local'], { allowFailure: true });
    expect(outside.code).not.toBe(0);

    // A server in beta, reached from alpha by name; its output lands in beta's log dir.
    const server = b.start('http', process.execPath, [
      '-e',
      `require('http').createServer((q,s)=>s.end('hello from '+require('os').hostname()+' '+q.url)).listen(8080,'0.0.0.0',()=>console.log('listening'))`,
    ]);
    await server.waitForLog(/listening/, 5000);
    const got = await a.exec('node', ['-e', `fetch('http://dragonfly-manager.cluster-a.svc.cluster.local:8080/x').then(r=>r.text()).then(t=>process.stdout.write(t))`]);
    expect(got.stdout).toBe('hello from beta /x');
    expect(fs.existsSync(path.join(b.dir, 'logs', 'http.log'))).toBe(true);
  });

  it('shapes a link with tbf (rate only; netem delay is not available here)', async () => {
    const src = await lab.addHost('shaped');
    const dst = lab.host('alpha');
    const bytes = 4 * 1024 * 1024;
    const sink = dst.start('sink', process.execPath, [
      '-e',
      `require('net').createServer(s=>{let n=0;s.on('data',d=>{n+=d.length});s.on('end',()=>s.end(String(n)))}).listen(9000,'0.0.0.0',()=>console.log('listening'))`,
    ]);
    await sink.waitForLog(/listening/, 5000);
    const send = `const s=require('net').connect(9000,'${dst.ip}',()=>{const t=Date.now();s.end(Buffer.alloc(${bytes}));s.on('data',()=>{process.stdout.write(String(Date.now()-t))})})`;
    const fast = Number((await src.exec('node', ['-e', send])).stdout);
    await src.shape({ rateMbit: 40 });
    const slow = Number((await src.exec('node', ['-e', send])).stdout);
    await src.unshape();
    // 4 MiB at 40 Mbit/s takes ≥ 0.8 s; unshaped veth is far faster.
    expect(slow).toBeGreaterThan(700);
    expect(slow).toBeGreaterThan(fast * 3);
  });

  it('teardown removes namespaces, links, /etc/netns dirs and stops processes', async () => {
    const other = await NetnsLab.create();
    const h = await other.addHost('gone');
    const proc = h.start('sleeper', 'sleep', ['300']);
    await other.teardown({ keepWorkDir: false });
    expect(proc.running).toBe(false);
    const nsList = await run('ip', ['netns', 'list']);
    expect(nsList.stdout).not.toContain(h.ns);
    const links = await run('ip', ['-o', 'link', 'show']);
    expect(links.stdout).not.toContain(other.bridge);
    expect(fs.existsSync(`/etc/netns/${h.ns}`)).toBe(false);
    expect(fs.existsSync(other.workDir)).toBe(false);
  });
});
