/**
 * The chaos suite's lab: the project's programs as separate processes on netns hosts (manager,
 * scheduler, a seed peer, four peers), a Range-capable origin, and the manager's own MariaDB and
 * Redis started for the run (their own data dirs and ports, inside the lab: never the machine's
 * shared instances). Every program can be killed with SIGKILL and started again with the same
 * config, and every pull, through dfget or through a proxy, is checked byte by byte against the
 * content it should be, into one ledger.
 */
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { NetnsLab, runProgram, startProgram, waitReady, run, waitFor, type ManagedProcess, type NetnsHost } from '../e2e/harness';

export const PORTS = { managerRest: 8080, managerGrpc: 65003, scheduler: 8002, peerGrpc: 65000, proxy: 65001, upload: 65002, origin: 8000, mysql: 13306, redis: 16379 } as const;
export const PEER_NAMES = ['peer-1', 'peer-2', 'peer-3', 'peer-4'] as const;
/** peer-4's data dir is a tmpfs of this size: the disk-full fault. */
export const SMALL_DISK_MIB = 48;

/** mulberry32: a small seeded generator, so a failing run can be replayed with CHAOS_SEED. */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** The origin: files by sha256 hex, as OCI blob URLs and plain file URLs, with single-range support. */
const ORIGIN_JS = `
const http = require('http'), fs = require('fs'), path = require('path');
const dir = process.argv[2], port = Number(process.argv[3]);
http.createServer((req, res) => {
  const m = /^\\/(?:v2\\/chaos\\/blobs\\/sha256:|files\\/)([a-f0-9]{64})$/.exec(req.url.split('?')[0]);
  const file = m && path.join(dir, m[1]);
  let st; try { st = file && fs.statSync(file); } catch { st = undefined; }
  if (!st) { res.writeHead(404, { 'content-type': 'text/plain' }); return res.end('not found'); }
  let start = 0, end = st.size - 1, status = 200;
  const r = /^bytes=(\\d*)-(\\d*)$/.exec(req.headers.range || '');
  if (r && st.size > 0) {
    if (r[1] === '') { start = Math.max(0, st.size - Number(r[2])); } else { start = Number(r[1]); if (r[2] !== '') end = Math.min(end, Number(r[2])); }
    if (start > end) { res.writeHead(416, { 'content-range': 'bytes */' + st.size }); return res.end(); }
    status = 206;
  }
  const headers = { 'content-type': 'application/octet-stream', 'accept-ranges': 'bytes', 'content-length': String(end - start + 1) };
  if (status === 206) headers['content-range'] = 'bytes ' + start + '-' + end + '/' + st.size;
  res.writeHead(status, headers);
  if (req.method === 'HEAD') return res.end();
  fs.createReadStream(file, { start, end }).pipe(res);
}).listen(port, '0.0.0.0', () => console.log('origin listening on ' + port));
`;

/**
 * A GET through the local proxy (run inside the peer's namespace, as containerd would): the body
 * goes to a file whatever happens, and one JSON line tells status, bytes and how it ended.
 */
const PROXY_CLIENT_JS = `
const http = require('http'), fs = require('fs');
const [urlPath, out, timeoutMs] = process.argv.slice(1);
const file = fs.createWriteStream(out);
let bytes = 0, done = false;
const finish = (o) => { if (done) return; done = true; file.end(() => process.stdout.write(JSON.stringify({ bytes, ...o }) + '\\n')); };
const req = http.get({ host: '127.0.0.1', port: ${PORTS.proxy}, path: urlPath, timeout: Number(timeoutMs) }, (res) => {
  const expected = Number(res.headers['content-length'] ?? -1);
  const chunks = [];
  res.on('data', (c) => { bytes += c.length; if (res.statusCode >= 300) chunks.push(c); else file.write(c); });
  res.on('end', () => finish({ status: res.statusCode, complete: expected < 0 || bytes === expected, body: Buffer.concat(chunks).toString('utf8').slice(0, 2000) }));
  res.on('aborted', () => finish({ status: res.statusCode, complete: false, error: 'response aborted' }));
  res.on('error', (e) => finish({ status: res.statusCode, complete: false, error: e.message }));
});
req.on('timeout', () => { req.destroy(new Error('timed out')); });
req.on('error', (e) => finish({ status: 0, complete: false, error: e.message }));
`;

export interface ChaosFile {
  readonly name: string;
  readonly hex: string;
  readonly digest: string;
  readonly content: Buffer;
  readonly blobPath: string;
  readonly fileUrl: string;
}

export type PullOutcome = 'completed' | 'failed-cleanly' | 'failed-unclearly';

export interface PullResult {
  readonly via: 'dfget' | 'proxy';
  readonly host: string;
  readonly file: string;
  readonly outcome: PullOutcome;
  readonly corruptBytes: number;
  readonly detail: string;
}

/** Everything the suite counted: printed as the closing table. */
export class Ledger {
  faults: string[] = [];
  pulls: PullResult[] = [];

  fault(what: string): void {
    this.faults.push(what);
  }

  get completed(): number {
    return this.pulls.filter((p) => p.outcome === 'completed').length;
  }
  get failedCleanly(): number {
    return this.pulls.filter((p) => p.outcome === 'failed-cleanly').length;
  }
  get failedUnclearly(): number {
    return this.pulls.filter((p) => p.outcome === 'failed-unclearly').length;
  }
  get corruptBytes(): number {
    return this.pulls.reduce((s, p) => s + p.corruptBytes, 0);
  }

  table(seed: number): string {
    const rows: Array<[string, string]> = [
      ['seed (CHAOS_SEED)', String(seed)],
      ['faults injected', String(this.faults.length)],
      ['pulls', String(this.pulls.length)],
      ['pulls completed (right digest)', String(this.completed)],
      ['pulls failed cleanly (clear error)', String(this.failedCleanly)],
      ['pulls failed without a clear error', String(this.failedUnclearly)],
      ['corrupt bytes served (must be 0)', String(this.corruptBytes)],
    ];
    const w = Math.max(...rows.map((r) => r[0].length));
    const line = `+-${'-'.repeat(w)}-+-${'-'.repeat(12)}-+`;
    return [line, ...rows.map(([k, v]) => `| ${k.padEnd(w)} | ${v.padStart(12)} |`), line].join('\n');
  }
}

/** Bytes of `got` that differ from `want` at the same offset, plus, for a pull reported as complete, any length difference. */
export function corruptBytesOf(got: Buffer, want: Buffer, reportedComplete: boolean): number {
  const n = Math.min(got.length, want.length);
  let bad = 0;
  const step = 1 << 20;
  for (let off = 0; off < n; off += step) {
    const end = Math.min(n, off + step);
    if (got.subarray(off, end).equals(want.subarray(off, end))) continue;
    for (let i = off; i < end; i++) if (got[i] !== want[i]) bad++;
  }
  if (got.length > want.length) bad += got.length - want.length;
  else if (reportedComplete && got.length < want.length) bad += want.length - got.length;
  return bad;
}

interface ProgramSlot {
  readonly host: NetnsHost;
  readonly name: string;
  readonly ports: number[];
  readonly start: () => ManagedProcess;
  proc: ManagedProcess;
}

export class ChaosLab {
  readonly slots = new Map<string, ProgramSlot>();
  readonly files = new Map<string, ChaosFile>();
  private outCounter = 0;

  private constructor(
    readonly lab: NetnsLab,
    readonly hosts: Record<string, NetnsHost>,
    readonly ledger: Ledger,
  ) {}

  get originHost(): NetnsHost {
    return this.hosts.origin;
  }

  static async start(ledger: Ledger): Promise<ChaosLab> {
    const lab = await NetnsLab.create();
    try {
      const names = ['origin', 'db', 'manager', 'scheduler', 'seed', ...PEER_NAMES];
      const hosts: Record<string, NetnsHost> = {};
      for (const n of names) hosts[n] = await lab.addHost(n);
      const cl = new ChaosLab(lab, hosts, ledger);
      await cl.startAll();
      return cl;
    } catch (e) {
      await lab.teardown().catch(() => undefined);
      throw e;
    }
  }

  private dfdaemonDir(host: NetnsHost): string {
    return path.join(host.dir, 'dfdaemon');
  }

  socketOf(hostName: string): string {
    return path.join(this.dfdaemonDir(this.hosts[hostName]), 'dfdaemon.sock');
  }

  dataDirOf(hostName: string): string {
    return path.join(this.dfdaemonDir(this.hosts[hostName]), 'data');
  }

  private dfdaemonConfig(host: NetnsHost, seed: boolean): Record<string, unknown> {
    const dir = this.dfdaemonDir(host);
    return {
      verbose: true,
      workHome: dir,
      dataDir: path.join(dir, 'data'),
      host: { hostname: host.name, advertiseIP: host.ip },
      metrics: ':8000',
      scheduler: {
        manager: {
          netAddrs: [{ type: 'tcp', addr: `${this.hosts.manager.ip}:${PORTS.managerGrpc}` }],
          refreshInterval: '5s',
          seedPeer: { enable: seed, clusterID: 1, keepAlive: { interval: '1s' } },
        },
        announceInterval: '15s',
        scheduleTimeout: '5s',
      },
      download: { downloadGRPC: { unixListen: { socket: path.join(dir, 'dfdaemon.sock') } }, pieceDownloadTimeout: '20s' },
      proxy: { registryMirror: { url: `http://${this.originHost.ip}:${PORTS.origin}` } },
    };
  }

  private register(host: NetnsHost, name: string, ports: number[], start: () => ManagedProcess): ProgramSlot {
    const slot: ProgramSlot = { host, name, ports, start, proc: start() };
    this.slots.set(name, slot);
    return slot;
  }

  private async ready(slot: ProgramSlot, timeoutMs = 60_000): Promise<void> {
    await waitReady({ host: slot.host, program: 'dfdaemon', configFile: '', process: slot.proc }, slot.ports, timeoutMs);
  }

  private async startAll(): Promise<void> {
    const { origin, db, manager, scheduler, seed } = this.hosts;
    // Origin
    fs.mkdirSync(path.join(origin.dir, 'files'), { recursive: true });
    fs.writeFileSync(path.join(origin.dir, 'origin.js'), ORIGIN_JS);
    const originSlot = this.register(origin, 'origin', [PORTS.origin], () =>
      origin.start('origin', process.execPath, [path.join(origin.dir, 'origin.js'), path.join(origin.dir, 'files'), String(PORTS.origin)]),
    );

    // The manager's own MariaDB (no grant tables: the lab network is private to this run) and Redis.
    const dbDir = path.join(db.dir, 'mariadb');
    await run('mariadb-install-db', ['--no-defaults', '--user=root', `--datadir=${dbDir}`, '--auth-root-authentication-method=normal', '--skip-test-db'], { timeoutMs: 120_000 });
    const mysqlSock = path.join(db.dir, 'mysqld.sock');
    const mariadb = this.register(db, 'mariadb', [PORTS.mysql], () =>
      db.start('mariadb', '/usr/sbin/mariadbd', [
        '--no-defaults',
        '--user=root',
        `--datadir=${dbDir}`,
        `--socket=${mysqlSock}`,
        `--port=${PORTS.mysql}`,
        '--bind-address=0.0.0.0',
        '--skip-grant-tables',
        `--pid-file=${path.join(db.dir, 'mysqld.pid')}`,
        '--innodb-buffer-pool-size=32M',
      ]),
    );
    const redisDir = path.join(db.dir, 'redis');
    fs.mkdirSync(redisDir, { recursive: true });
    const redis = this.register(db, 'redis', [PORTS.redis], () =>
      db.start('redis', 'redis-server', ['--port', String(PORTS.redis), '--bind', '0.0.0.0', '--protected-mode', 'no', '--save', '', '--appendonly', 'no', '--dir', redisDir]),
    );
    await Promise.all([this.ready(originSlot), this.ready(mariadb, 120_000), this.ready(redis)]);
    await run('mysql', ['-S', mysqlSock, '-e', 'CREATE DATABASE IF NOT EXISTS manager']);

    const managerConfig = {
      verbose: true,
      server: {
        workHome: path.join(manager.dir, 'manager'),
        rest: { addr: `:${PORTS.managerRest}` },
        grpc: { advertiseIP: manager.ip, port: { start: PORTS.managerGrpc, end: PORTS.managerGrpc } },
      },
      database: {
        type: 'mysql',
        mysql: { host: db.ip, port: PORTS.mysql, user: 'dragonfly', password: 'dragonfly', dbname: 'manager' },
        redis: { addrs: [`${db.ip}:${PORTS.redis}`], keyPrefix: 'chaos:' },
      },
      keepAlive: { timeout: '5s' },
    };
    const mgr = this.register(manager, 'manager', [PORTS.managerRest, PORTS.managerGrpc], () => startProgram(manager, 'manager', managerConfig).process);
    await this.ready(mgr);

    const schedulerConfig = {
      verbose: true,
      server: { advertiseIP: scheduler.ip, port: PORTS.scheduler, workHome: path.join(scheduler.dir, 'scheduler') },
      manager: { addr: `${manager.ip}:${PORTS.managerGrpc}`, schedulerClusterID: 1, keepAlive: { interval: '1s' } },
      dynConfig: { refreshInterval: '2s' },
    };
    const sched = this.register(scheduler, 'scheduler', [PORTS.scheduler], () => startProgram(scheduler, 'scheduler', schedulerConfig).process);
    await this.ready(sched);
    await this.waitActive('scheduler', scheduler.ip);

    const seedSlot = this.register(seed, 'seed', [PORTS.peerGrpc, PORTS.upload], () =>
      startProgram(seed, 'dfdaemon', this.dfdaemonConfig(seed, true), { name: 'seed-peer' }).process,
    );
    await this.ready(seedSlot);
    await this.waitActive('seed-peer', seed.ip);

    // peer-4 keeps its data on a small tmpfs: the disk-full fault.
    const smallDisk = this.dataDirOf('peer-4');
    fs.mkdirSync(smallDisk, { recursive: true });
    await run('mount', ['-t', 'tmpfs', '-o', `size=${SMALL_DISK_MIB}m`, 'chaos-small-disk', smallDisk]);
    this.lab.onTeardown(async () => {
      await run('umount', ['-l', smallDisk], { allowFailure: true });
    });
    const peers = PEER_NAMES.map((n) => {
      const host = this.hosts[n];
      return this.register(host, n, [PORTS.proxy, PORTS.peerGrpc, PORTS.upload], () => startProgram(host, 'dfdaemon', this.dfdaemonConfig(host, false)).process);
    });
    await Promise.all(peers.map((p) => this.ready(p)));
  }

  private async waitActive(kind: 'scheduler' | 'seed-peer', ip: string): Promise<void> {
    const base = `http://${this.hosts.manager.ip}:${PORTS.managerRest}`;
    await waitFor(
      `${kind} ${ip} active on the manager`,
      async () => {
        const signin = await fetch(`${base}/api/v1/users/signin`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ name: 'root', password: 'dragonfly' }) });
        if (!signin.ok) return undefined;
        const { token } = (await signin.json()) as { token: string };
        const r = await fetch(`${base}/api/v1/${kind === 'scheduler' ? 'schedulers' : 'seed-peers'}?per_page=100`, { headers: { authorization: `Bearer ${token}` } });
        const list = (await r.json()) as Array<{ ip: string; state: string }>;
        return list.some((x) => x.ip === ip && x.state === 'active') ? true : undefined;
      },
      60_000,
      500,
    );
  }

  /** A new file on the origin: random bytes, never pulled before (a fresh task everywhere). */
  addFile(name: string, size: number, random: () => number): ChaosFile {
    const content = Buffer.allocUnsafe(size);
    // Seeded content: a replayed run pulls the same bytes.
    let x = Math.floor(random() * 2 ** 32) >>> 0;
    for (let i = 0; i + 4 <= size; i += 4) {
      x ^= x << 13;
      x ^= x >>> 17;
      x ^= x << 5;
      content.writeUInt32LE(x >>> 0, i);
    }
    for (let i = size - (size % 4); i < size; i++) content[i] = i & 0xff;
    const hex = createHash('sha256').update(content).digest('hex');
    fs.writeFileSync(path.join(this.originHost.dir, 'files', hex), content);
    const f: ChaosFile = {
      name,
      hex,
      digest: `sha256:${hex}`,
      content,
      blobPath: `/v2/chaos/blobs/sha256:${hex}`,
      fileUrl: `http://${this.originHost.ip}:${PORTS.origin}/files/${hex}`,
    };
    this.files.set(name, f);
    return f;
  }

  /** dfget on `hostName` to a new output file; the output (if any) is compared with the content. */
  async dfget(hostName: string, file: ChaosFile, opts: { timeoutMs?: number; extraArgs?: string[]; keepOutput?: boolean } = {}): Promise<PullResult & { output: string; stderr: string; code: number }> {
    const host = this.hosts[hostName];
    const output = path.join(host.dir, `out-${++this.outCounter}-${file.name}`);
    const timeoutMs = opts.timeoutMs ?? 90_000;
    const r = await runProgram(host, 'dfget', [file.fileUrl, '-O', output, '-e', this.socketOf(hostName), '--no-progress', '--timeout', `${Math.round(timeoutMs / 1000)}s`, ...(opts.extraArgs ?? [])], {
      allowFailure: true,
      timeoutMs: timeoutMs + 15_000,
    });
    const got = fs.existsSync(output) ? fs.readFileSync(output) : undefined;
    const ok = r.code === 0;
    const corrupt = got ? corruptBytesOf(got, file.content, ok) : ok ? file.content.length : 0;
    const stderr = (r.stderr + r.stdout).trim();
    let outcome: PullOutcome;
    if (ok && got && corrupt === 0) outcome = 'completed';
    // Running into the client's own --timeout is a stall, not an answer from the system.
    else if (!ok && !got && stderr.length > 0 && !/timed out after/.test(stderr)) outcome = 'failed-cleanly';
    else outcome = 'failed-unclearly';
    const result = { via: 'dfget' as const, host: hostName, file: file.name, outcome, corruptBytes: corrupt, detail: ok ? `exit 0` : `exit ${r.code}: ${stderr.split('\n').slice(-2).join(' | ')}`, output, stderr, code: r.code ?? -1 };
    this.ledger.pulls.push(result);
    if (!opts.keepOutput) fs.rmSync(output, { force: true });
    return result;
  }

  /** A blob GET through `hostName`'s proxy (registry-mirror form, as containerd sends it). */
  async proxyGet(hostName: string, file: ChaosFile, timeoutMs = 90_000): Promise<PullResult & { status: number }> {
    const host = this.hosts[hostName];
    const out = path.join(host.dir, `proxy-${++this.outCounter}-${file.name}`);
    const r = await host.exec(process.execPath, ['-e', PROXY_CLIENT_JS, file.blobPath, out, String(timeoutMs)], { timeoutMs: timeoutMs + 15_000, allowFailure: true });
    type ClientReport = { status: number; bytes: number; complete: boolean; error?: string; body?: string };
    let info: ClientReport;
    try {
      info = JSON.parse(r.stdout.trim().split('\n').pop() ?? '') as ClientReport;
    } catch {
      info = { status: 0, bytes: 0, complete: false, error: `proxy client failed: ${r.stderr.slice(-500)}` };
    }
    const got = fs.existsSync(out) ? fs.readFileSync(out) : Buffer.alloc(0);
    fs.rmSync(out, { force: true });
    const success = info.status >= 200 && info.status < 300 && info.complete;
    // Only a 2xx body is content; an error body is JSON and is not counted.
    const corrupt = info.status >= 200 && info.status < 300 ? corruptBytesOf(got, file.content, success) : 0;
    let outcome: PullOutcome;
    if (success && corrupt === 0) outcome = 'completed';
    else if (info.status >= 400 && isJsonMessage(info.body)) outcome = 'failed-cleanly';
    // A body cut short of its Content-Length (the serving daemon died) is a transfer error the client sees.
    else if (info.status >= 200 && info.status < 300 && !info.complete) outcome = 'failed-cleanly';
    // The connection closed without an answer counts; our own timeout (a stall) does not.
    else if (info.status === 0 && info.error && info.error !== 'timed out') outcome = 'failed-cleanly';
    else outcome = 'failed-unclearly';
    const result = { via: 'proxy' as const, host: hostName, file: file.name, outcome, corruptBytes: corrupt, detail: `HTTP ${info.status} ${info.bytes} bytes${info.error ? ` (${info.error})` : ''}${info.body ? ` ${info.body.slice(0, 300)}` : ''}`, status: info.status };
    this.ledger.pulls.push(result);
    return result;
  }

  running(name: string): boolean {
    return this.slot(name).proc.running;
  }

  private slot(name: string): ProgramSlot {
    const s = this.slots.get(name);
    if (!s) throw new Error(`no program ${name}`);
    return s;
  }

  /** kill -9 of a program (its whole process group). */
  async kill9(name: string): Promise<void> {
    const s = this.slot(name);
    this.ledger.fault(`kill -9 ${name}`);
    if (!s.proc.running || s.proc.pid === undefined) return;
    try {
      process.kill(-s.proc.pid, 'SIGKILL');
    } catch {
      /* already gone */
    }
    await s.proc.exited;
  }

  /** Starts a killed program again with the same config and data, and waits for its ports. */
  async restart(name: string): Promise<void> {
    const s = this.slot(name);
    if (s.proc.running) return;
    s.proc = s.start();
    await this.ready(s, 120_000);
    if (name === 'scheduler') await this.waitActive('scheduler', s.host.ip);
    if (name === 'seed') await this.waitActive('seed-peer', s.host.ip);
  }

  async restartAll(): Promise<void> {
    for (const name of ['mariadb', 'redis', 'origin', 'manager', 'scheduler', 'seed', ...PEER_NAMES]) await this.restart(name);
  }

  /** The stored content file of a task on a host: the newest file of that size under its data dir. */
  storedContentPath(hostName: string, file: ChaosFile): string | undefined {
    const root = path.join(this.dataDirOf(hostName), 'content', 'tasks');
    let best: { p: string; mtime: number } | undefined;
    const walk = (d: string) => {
      for (const e of fs.existsSync(d) ? fs.readdirSync(d, { withFileTypes: true }) : []) {
        const p = path.join(d, e.name);
        if (e.isDirectory()) walk(p);
        else {
          const st = fs.statSync(p);
          if (st.size === file.content.length && (!best || st.mtimeMs > best.mtime)) best = { p, mtime: st.mtimeMs };
        }
      }
    };
    walk(root);
    return best?.p;
  }

  /** Flips one byte of a host's stored copy of `file` (bit rot, a bad disk). */
  flipStoredByte(hostName: string, file: ChaosFile, offset: number): string {
    const p = this.storedContentPath(hostName, file);
    if (!p) throw new Error(`${hostName} holds no stored copy of ${file.name}`);
    const fd = fs.openSync(p, 'r+');
    try {
      const b = Buffer.alloc(1);
      fs.readSync(fd, b, 0, 1, offset);
      b[0] ^= 0xff;
      fs.writeSync(fd, b, 0, 1, offset);
    } finally {
      fs.closeSync(fd);
    }
    this.ledger.fault(`flipped byte ${offset} of ${file.name} stored on ${hostName}`);
    return p;
  }

  async teardown(): Promise<void> {
    await this.lab.teardown();
  }
}

function isJsonMessage(body: string | undefined): boolean {
  if (!body) return false;
  try {
    const j = JSON.parse(body) as { message?: unknown };
    return typeof j.message === 'string' && j.message.length > 0;
  } catch {
    return false;
  }
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
