/**
 * What TLS costs on the piece data plane (`upload.tls.enable`): a 512 MiB finished task pulled
 * piece by piece (4 MiB, 4 at a time, over kept-alive connections as the daemon does) from a real
 * UploadServer with fetchPieceRaw into a file, over HTTPS with client certificates, beside the
 * same transfer over plain HTTP in the same run. Certificates are made with openssl.
 */
import { randomBytes } from 'node:crypto';
import * as fsp from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { crc32 } from 'node:zlib';
import { listen, closeServer, silentLogger, TransportSecurity, identityUri } from '../../services/common';
import { createDevCa, issueDevCert } from '../../services/common/dev-pki';
import { closeIdlePieceConnections, fetchPieceRaw } from '../../services/dfdaemon/piece-transfer';
import { crc32Digest, TaskStore } from '../../services/dfdaemon/storage';
import { UploadServer } from '../../services/dfdaemon/upload-server';
import { type BenchFigure, runStandalone } from './types';

const MiB = 1024 * 1024;
const SIZE = 512 * MiB;
const PIECE = 4 * MiB;
const CONCURRENCY = 4;
const ROUNDS = 3;

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

export async function run(): Promise<BenchFigure[]> {
  const root = await fsp.mkdtemp(path.join(os.tmpdir(), 'bench-piece-tls-'));
  const cleanups: Array<() => Promise<void> | void> = [closeIdlePieceConnections];
  try {
    const store = await TaskStore.open({ dataDir: path.join(root, 'store'), keepStorage: true, taskExpireMs: 3600_000, diskGCThreshold: 0, highPercent: 99, lowPercent: 98, logger: silentLogger() });
    cleanups.push(() => store.close());
    const taskId = 'c'.repeat(64);
    const entry = await store.create({ taskId, url: 'http://bench/x', contentLength: SIZE, pieceLength: PIECE, responseHeaders: {} });
    const fh = await entry.handle();
    const digests: string[] = [];
    const block = randomBytes(PIECE);
    for (let n = 0; n * PIECE < SIZE; n++) {
      block.writeUInt32LE(n, 0);
      await fh.write(block, 0, PIECE, n * PIECE);
      digests[n] = crc32Digest(crc32(block));
      store.markPiece(entry, n, digests[n]);
    }
    await store.finish(entry, undefined);

    const pki = path.join(root, 'pki');
    const ca = createDevCa(path.join(pki, 'ca'));
    const securityOf = (name: string) => {
      const c = issueDevCert(ca, path.join(pki, name), { commonName: name, uris: [identityUri({ role: 'peer', clusterId: 1 })], ipAddresses: ['127.0.0.1'] });
      return TransportSecurity.fromConfig({ insecure: false, caCert: ca.certFile, cert: c.certFile, key: c.keyFile, reloadInterval: 3600_000 }, undefined, 'bench');
    };
    const serverSecurity = securityOf('server');
    const clientSecurity = securityOf('client');
    cleanups.push(() => serverSecurity.close(), () => clientSecurity.close());
    const tlsOptions = clientSecurity.tlsClientOptions(['peer']);

    const servers = {
      plain: new UploadServer({ store, concurrentLimit: 100, logger: silentLogger() }),
      tls: new UploadServer({ store, concurrentLimit: 100, logger: silentLogger(), security: serverSecurity }),
    };
    const ports = { plain: await listen(servers.plain.server, { host: '127.0.0.1', port: 0 }), tls: await listen(servers.tls.server, { host: '127.0.0.1', port: 0 }) };
    cleanups.push(() => closeServer(servers.plain.server), () => closeServer(servers.tls.server));

    const out = await fsp.open(path.join(root, 'out.bin'), 'w');
    cleanups.push(() => out.close());
    const pull = async (kind: 'plain' | 'tls'): Promise<number> => {
      const pieces = SIZE / PIECE;
      let next = 0;
      const t0 = performance.now();
      await Promise.all(
        Array.from({ length: CONCURRENCY }, async () => {
          for (let n = next++; n < pieces; n = next++) {
            await fetchPieceRaw(
              { ip: '127.0.0.1', port: ports[kind], taskId, parentPeerId: 'bench', offset: n * PIECE, length: PIECE, expectedDigest: digests[n], timeoutMs: 30_000, tls: kind === 'tls' ? tlsOptions() : undefined },
              out,
            );
          }
        }),
      );
      return SIZE / MiB / ((performance.now() - t0) / 1000);
    };
    await pull('plain'); // warm the page cache and both code paths
    await pull('tls');
    const plain: number[] = [];
    const tls: number[] = [];
    for (let i = 0; i < ROUNDS; i++) {
      plain.push(await pull('plain'));
      tls.push(await pull('tls'));
    }
    const tlsRate = median(tls);
    const plainRate = median(plain);
    return [
      {
        area: 'dfdaemon',
        name: 'piece transfer with upload.tls.enable (HTTPS, client certificates, TLS session resumption)',
        value: tlsRate,
        unit: 'MiB/s',
        baselineName: 'the same pieces over plain HTTP (the default)',
        baselineValue: plainRate,
        note: `${SIZE / MiB} MiB in ${PIECE / MiB} MiB pieces, ${CONCURRENCY} at a time, kept-alive connections (new ones resume the TLS session), crc32 checked, written to a file, loopback, EC P-256, median of ${ROUNDS}; TLS at ${((tlsRate / plainRate) * 100).toFixed(0)}% of plain`,
      },
    ];
  } finally {
    for (const c of cleanups.reverse()) await c();
    await fsp.rm(root, { recursive: true, force: true });
  }
}

if (require.main === module) runStandalone(run);
