/**
 * dfget's output placement (issue 12, item 2): a cache hit written to the output path as a
 * reflink-or-copy (the default: the output never shares storage with the cache) beside the
 * hardlink it replaced (opt-in `--hard-link`) and a plain `fs.copyFile` of the same file (what
 * any copy costs on this disk). On a file system with reflinks (btrfs, xfs) the default is about
 * as fast as the link; elsewhere it is a copy.
 *
 * Size: BENCH_OUTPUT_MIB (default 512).
 */
import { randomBytes } from 'node:crypto';
import { createReadStream, promises as fs } from 'node:fs';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { parseConfig } from '../../services/common/config';
import { silentLogger } from '../../services/common/logger';
import { startDfdaemon } from '../../services/dfdaemon/daemon';
import { runStandalone, type BenchFigure } from './types';

const MIB = 1024 * 1024;

export async function run(): Promise<BenchFigure[]> {
  const mib = Number(process.env.BENCH_OUTPUT_MIB ?? 512);
  const dir = await fs.mkdtemp(path.join(tmpdir(), 'bench-output-'));
  const source = path.join(dir, 'origin.bin');
  const fh = await fs.open(source, 'w');
  for (let i = 0; i < mib; i++) await fh.write(randomBytes(MIB));
  await fh.close();
  const size = mib * MIB;
  const origin = http.createServer((req, res) => {
    const m = /^bytes=(\d+)-(\d+)$/.exec(req.headers.range ?? '');
    const start = m ? Number(m[1]) : 0;
    const end = m ? Math.min(Number(m[2]), size - 1) : size - 1;
    res.writeHead(m ? 206 : 200, { 'content-length': end - start + 1, ...(m ? { 'content-range': `bytes ${start}-${end}/${size}` } : {}) });
    if (req.method === 'HEAD') return void res.end();
    createReadStream(source, { start, end }).pipe(res);
  });
  await new Promise<void>((r) => origin.listen(0, '127.0.0.1', r));
  const url = `http://127.0.0.1:${(origin.address() as AddressInfo).port}/file.bin`;
  const daemon = await startDfdaemon(
    parseConfig('dfdaemon', { security: { insecure: true },
      dataDir: path.join(dir, 'data'),
      workHome: dir,
      metrics: '',
      host: { advertiseIP: '127.0.0.1', hostname: 'bench-output' },
      scheduler: { manager: { enable: false } },
      download: { downloadGRPC: { unixListen: { socket: path.join(dir, 'dfdaemon.sock') } }, peerGRPC: { tcpListen: { listen: '127.0.0.1', port: 0 } } },
      upload: { tcpListen: { listen: '127.0.0.1', port: 0 } },
      proxy: { tcpListen: { listen: '127.0.0.1', port: 0 } },
    }),
    { logger: silentLogger() },
  );
  try {
    await daemon.tasks.downloadToFile({ url, requestHeaders: {}, outputPath: path.join(dir, 'warm.bin') });
    const time = async (place: (out: string) => Promise<unknown>): Promise<number> => {
      let best = Infinity;
      for (let i = 0; i < 3; i++) {
        const out = path.join(dir, `out-${i}.bin`);
        const t0 = process.hrtime.bigint();
        await place(out);
        best = Math.min(best, Number(process.hrtime.bigint() - t0) / 1e6);
        await fs.rm(out, { force: true });
      }
      return best;
    };
    const copyMs = await time((out) => daemon.tasks.downloadToFile({ url, requestHeaders: {}, outputPath: out }));
    const linkMs = await time((out) => daemon.tasks.downloadToFile({ url, requestHeaders: {}, outputPath: out, hardLink: true }));
    const plainMs = await time((out) => fs.copyFile(source, out));
    const note = `${mib} MiB cache hit, best of 3; the file system here ${copyMs < plainMs / 4 ? 'reflinks' : 'copies'}; --hard-link (opt-in) took ${linkMs.toFixed(1)} ms`;
    return [
      {
        area: 'dfdaemon',
        name: 'dfget output from the cache, reflink-or-copy (default, never shares storage)',
        value: Math.round(copyMs),
        unit: 'ms',
        baselineName: 'fs.copyFile of the same file',
        baselineValue: Math.round(plainMs),
        note,
      },
    ];
  } finally {
    await daemon.stop();
    origin.closeAllConnections();
    await new Promise((r) => origin.close(r));
    await fs.rm(dir, { recursive: true, force: true });
  }
}

if (require.main === module) runStandalone(run);
