/**
 * Where the dfdaemon data path spends CPU: CPU-seconds per GiB of each stage, from /proc
 * (utime + stime of the measuring process, all threads, sampled before and after each stage),
 * each stage run alone on 1 GiB:
 * - receive: loopback socket reads into a reused 1 MiB buffer (as fetchPieceRaw reads), bytes discarded;
 * - checksum: zlib.crc32 (the piece digest) and sha256 (the content digest), 1 MiB at a time;
 * - write: 1 MiB positional writes into a content file (page cache);
 * - serve: the dfdaemon upload server sending a finished 1 GiB task to a client in another process;
 * - the whole P2P piece pipeline (fetchPieceRaw: receive + crc32 + write, 4 MiB pieces, 4 at
 *   once, from a server in another process) and the whole back-to-source pipeline
 *   (receive + crc32 + write + the sha256 pass of the content), beside the sum of their stages.
 * The other end of each transfer is a child process, so its CPU is not counted here.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import * as fsp from 'node:fs/promises';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { crc32 } from 'node:zlib';
import { parseConfig, silentLogger } from '../../services/common';
import { startDfdaemon } from '../../services/dfdaemon/daemon';
import { fetchPieceRaw } from '../../services/dfdaemon/piece-transfer';
import { type BenchFigure, runStandalone } from './types';

const MiB = 1024 * 1024;
const GiB = 1024 * MiB;
const SIZE = Number(process.env.BENCH_DATA_PATH_MIB ?? 1024) * MiB;
const TICK = Number(spawnSync('getconf', ['CLK_TCK']).stdout?.toString().trim() || 100);

/** utime + stime of a process in seconds (all its threads). */
function cpuSeconds(pid: number | 'self' = 'self'): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / TICK;
}

async function measured(work: () => Promise<void> | void): Promise<{ cpuPerGiB: number; mibPerS: number }> {
  const c0 = cpuSeconds();
  const t0 = performance.now();
  await work();
  const wall = (performance.now() - t0) / 1000;
  return { cpuPerGiB: (cpuSeconds() - c0) / (SIZE / GiB), mibPerS: SIZE / MiB / wall };
}

/** A child Node process running `script` (CommonJS); resolves with its first stdout line (its port). */
function child(script: string, args: string[]): Promise<{ proc: ChildProcess; line: string }> {
  const proc = spawn(process.execPath, ['-e', script, ...args], { stdio: ['ignore', 'pipe', 'inherit'] });
  return new Promise((resolve, reject) => {
    let buf = '';
    proc.stdout.on('data', (c: Buffer) => {
      buf += c.toString();
      const i = buf.indexOf('\n');
      if (i >= 0) resolve({ proc, line: buf.slice(0, i) });
    });
    proc.on('exit', (code) => reject(new Error(`child exited ${code}`)));
  });
}

/** Sends `size` bytes to whoever connects, from one 4 MiB buffer. */
const SENDER = `
const net = require('node:net');
const size = Number(process.argv[1]);
const block = require('node:crypto').randomBytes(4 * 1024 * 1024);
const server = net.createServer((s) => {
  let sent = 0;
  const more = () => {
    while (sent < size) {
      const n = Math.min(block.length, size - sent);
      sent += n;
      if (!s.write(n === block.length ? block : block.subarray(0, n))) return void s.once('drain', more);
    }
    s.end();
  };
  more();
});
server.listen(0, '127.0.0.1', () => console.log(server.address().port));
`;

/** A plain HTTP server of one file with single Range support (the other end of a piece pipeline). */
const FILE_SERVER = `
const http = require('node:http');
const fs = require('node:fs');
const file = process.argv[1];
const size = fs.statSync(file).size;
const server = http.createServer({ keepAlive: true }, (req, res) => {
  const m = /^bytes=(\\d+)-(\\d*)$/.exec(req.headers.range || '');
  const a = m ? Number(m[1]) : 0;
  const b = m && m[2] ? Number(m[2]) : size - 1;
  res.writeHead(m ? 206 : 200, { 'content-length': b - a + 1, 'accept-ranges': 'bytes', ...(m ? { 'content-range': 'bytes ' + a + '-' + b + '/' + size } : {}) });
  if (req.method === 'HEAD') return void res.end();
  fs.createReadStream(file, { start: a, end: b, highWaterMark: 1024 * 1024 }).pipe(res);
});
server.listen(0, '127.0.0.1', () => console.log(server.address().port));
`;

/** GETs a URL and discards the body; prints its CPU seconds, then exits. */
const CLIENT = `
const http = require('node:http');
http.get(process.argv[1], { agent: false }, (res) => {
  let n = 0;
  res.on('data', (c) => (n += c.length));
  res.on('end', () => { console.log(n + ' ' + (process.cpuUsage().user + process.cpuUsage().system) / 1e6); process.exit(0); });
});
`;

async function receiveStage(port: number): Promise<void> {
  const buffer = Buffer.allocUnsafeSlow(MiB);
  await new Promise<void>((resolve, reject) => {
    let n = 0;
    const s = net.connect({ host: '127.0.0.1', port, onread: { buffer, callback: (k) => ((n += k), true) } });
    s.on('error', reject);
    s.on('close', () => (n === SIZE ? resolve() : reject(new Error(`received ${n}`))));
  });
}

export async function run(): Promise<BenchFigure[]> {
  const dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'bench-data-path-'));
  const procs: ChildProcess[] = [];
  const daemons: Array<{ stop(): Promise<void> }> = [];
  try {
    // Stages alone.
    const sender = await child(SENDER, [String(SIZE)]);
    procs.push(sender.proc);
    const receive = await measured(() => receiveStage(Number(sender.line)));

    const data = randomBytes(64 * MiB);
    const crc = await measured(() => {
      let c = 0;
      for (let pos = 0; pos < SIZE; pos += MiB) c = crc32(data.subarray(pos % data.length, (pos % data.length) + MiB), c);
    });
    const sha = await measured(() => {
      const h = createHash('sha256');
      for (let pos = 0; pos < SIZE; pos += MiB) h.update(data.subarray(pos % data.length, (pos % data.length) + MiB));
      h.digest();
    });
    const file = path.join(dir, 'content');
    const write = await measured(async () => {
      const fh = await fsp.open(file, 'w');
      for (let pos = 0; pos < SIZE; pos += MiB) await fh.write(data, pos % data.length, MiB, pos);
      await fh.close();
    });

    // The P2P piece pipeline as the engine runs it, from a server in another process.
    const server = await child(FILE_SERVER, [file]);
    procs.push(server.proc);
    const target = await fsp.open(path.join(dir, 'pieces'), 'w+');
    const PIECE = 4 * MiB;
    const pieces = await measured(async () => {
      let next = 0;
      const worker = async () => {
        for (let n = next++; n * PIECE < SIZE; n = next++) {
          await fetchPieceRaw({ ip: '127.0.0.1', port: Number(server.line), taskId: 'x'.repeat(64), parentPeerId: 'p', offset: n * PIECE, length: PIECE, timeoutMs: 60_000 }, target);
        }
      };
      await Promise.all([worker(), worker(), worker(), worker()]);
    });
    await target.close();

    // Back-to-source into a real (in-process) dfdaemon, then serve the task to another process.
    const daemon = await startDfdaemon(
      parseConfig('dfdaemon', {
        dataDir: path.join(dir, 'd'),
        security: { insecure: true },
        metrics: { enable: false, addr: ':0' },
        host: { hostname: 'bench', advertiseIP: '127.0.0.1', listenIP: '127.0.0.1' },
        download: { peerGRPC: { tcpListen: { listen: '127.0.0.1', port: 0 } }, downloadGRPC: { unixListen: { socket: path.join(dir, 'd.sock') } } },
        upload: { tcpListen: { listen: '127.0.0.1', port: 0 } },
        proxy: { tcpListen: { listen: '127.0.0.1', port: 0 } },
        scheduler: { manager: { enable: false } },
      }),
      { logger: silentLogger() },
    );
    daemons.push(daemon);
    const url = `http://127.0.0.1:${server.line}/content`;
    const digest = `sha256:${createHash('sha256')
      .update(await fsp.readFile(file))
      .digest('hex')}`;
    let taskId = '';
    const backToSource = await measured(async () => {
      const r = await daemon.tasks.downloadToFile({ url, digest, requestHeaders: {}, outputPath: path.join(dir, 'out'), hardLink: true });
      taskId = r.taskId;
    });
    let clientCpu = 0;
    const serve = await measured(async () => {
      const c = await child(CLIENT, [`http://127.0.0.1:${daemon.uploadPort}/download/${taskId.slice(0, 3)}/${taskId}?peerId=bench`]);
      const [n, cpu] = c.line.split(' ').map(Number);
      if (n !== SIZE) throw new Error(`served ${n} bytes`);
      clientCpu = cpu / (SIZE / GiB);
    });

    const stage = (name: string, m: { cpuPerGiB: number; mibPerS: number }, note: string, baseline?: { name: string; value: number }): BenchFigure => ({
      area: 'data-path',
      name,
      value: m.cpuPerGiB,
      unit: 'CPU-s/GiB',
      baselineName: baseline?.name,
      baselineValue: baseline?.value,
      note: `${note}; ${m.mibPerS.toFixed(0)} MiB/s wall`,
    });
    const sumPieces = receive.cpuPerGiB + crc.cpuPerGiB + write.cpuPerGiB;
    const sumOrigin = sumPieces + sha.cpuPerGiB;
    /** Which cost dominates a pipeline: its largest stage, or what it spends beyond its stages. */
    const holder = (total: number, stages: Array<[string, number]>) => {
      const [name, cpu] = [...stages, ['overhead beyond the stages (HTTP parsing, bookkeeping, read-back)', Math.max(0, total - stages.reduce((a, [, c]) => a + c, 0))] as [string, number]].sort((a, b) => b[1] - a[1])[0];
      return `largest cost: ${name} ${cpu.toFixed(2)} CPU-s/GiB`;
    };
    return [
      stage('stage receive (loopback socket → reused 1 MiB buffer)', receive, 'sender in a child process'),
      stage('stage checksum crc32 (piece digest)', crc, 'zlib.crc32, 1 MiB at a time'),
      stage('stage checksum sha256 (content digest)', sha, 'node:crypto, 1 MiB at a time'),
      stage('stage write (1 MiB positional writes, page cache)', write, 'FileHandle.write'),
      stage('stage serve (upload server → client process, whole task)', serve, `the client process spent ${clientCpu.toFixed(2)} CPU-s/GiB receiving`),
      stage('P2P piece pipeline (fetchPieceRaw: receive + crc32 + write)', pieces, `4 MiB pieces, 4 in flight over kept-alive connections, server in a child process; ${holder(pieces.cpuPerGiB, [['receive', receive.cpuPerGiB], ['crc32', crc.cpuPerGiB], ['write', write.cpuPerGiB]])}`, { name: 'sum of its stages', value: sumPieces }),
      stage('back-to-source pipeline (dfdaemon: receive + crc32 + write + sha256 pass)', backToSource, `in-process dfdaemon without scheduler, origin in a child process, content digest checked; ${holder(backToSource.cpuPerGiB, [['receive', receive.cpuPerGiB], ['crc32', crc.cpuPerGiB], ['write', write.cpuPerGiB], ['sha256', sha.cpuPerGiB]])}`, { name: 'sum of its stages', value: sumOrigin }),
    ];
  } finally {
    for (const d of daemons) await d.stop();
    for (const p of procs) p.kill();
    await fsp.rm(dir, { recursive: true, force: true });
  }
}

if (require.main === module) runStandalone(run);
