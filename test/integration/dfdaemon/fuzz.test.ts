/**
 * Property-based fuzzing (fast-check) of dfdaemon's network surfaces, as a hostile caller
 * would use them: the download API on the unix socket, DfdaemonUpload on TCP gRPC and the
 * piece HTTP server. Thousands of random and hostile messages — well-typed ones with hostile
 * values, raw random protobuf payloads, raw bytes on the sockets — and after each batch the
 * health checks answer, no call got an unmapped error, nothing was written outside the
 * allowed directory and the process RSS stays under the asserted bound.
 */
import * as fsp from 'node:fs/promises';
import * as http from 'node:http';
import * as net from 'node:net';
import * as path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import fc from 'fast-check';
import { GRPC_OPTIONS } from '../../../services/common';
import { startDfdaemon, type DfdaemonHandle } from '../../../services/dfdaemon/daemon';
import { protos, type Download } from '../../../services/proto';
import { daemonConfig, MiB, quiet, randomFile, startOrigin, tempDir, type Origin } from './helpers';

jest.setTimeout(600_000);

/** Codes a refusal may carry: each names what is wrong. UNKNOWN/INTERNAL would be an unmapped failure. */
const CLEAR_CODES = new Set([
  grpc.status.OK,
  grpc.status.INVALID_ARGUMENT,
  grpc.status.NOT_FOUND,
  grpc.status.ALREADY_EXISTS,
  grpc.status.FAILED_PRECONDITION,
  grpc.status.UNAVAILABLE,
  grpc.status.PERMISSION_DENIED,
  grpc.status.UNAUTHENTICATED,
  grpc.status.RESOURCE_EXHAUSTED,
  grpc.status.DEADLINE_EXCEEDED,
  grpc.status.UNIMPLEMENTED,
  grpc.status.CANCELLED,
]);
/** RSS may grow at most this much over its level after start-up (jest may have loaded other suites into this worker before). */
const RSS_GROWTH_BOUND = 256 * MiB;
const CALL_DEADLINE_MS = 10_000;

type AnyClient = grpc.Client & Record<string, (...args: unknown[]) => unknown>;

/** A client that sends raw bytes as the request of every method it is given. */
function rawClient(target: string, service: string, methods: Record<string, boolean>): AnyClient {
  const def: Record<string, grpc.MethodDefinition<Buffer, Buffer>> = {};
  for (const [name, responseStream] of Object.entries(methods)) {
    def[name] = {
      path: `/${service}/${name}`,
      requestStream: false,
      responseStream,
      requestSerialize: (b: Buffer) => b,
      requestDeserialize: (b: Buffer) => b,
      responseSerialize: (b: Buffer) => b,
      responseDeserialize: (b: Buffer) => b,
    };
  }
  const Ctor = grpc.makeGenericClientConstructor(def, service);
  return new Ctor(target, grpc.credentials.createInsecure(), GRPC_OPTIONS) as unknown as AnyClient;
}

/** Runs one call to completion; resolves with its status code. */
function run(client: AnyClient, method: string, request: unknown, stream: boolean): Promise<{ code: number; details: string }> {
  return new Promise((resolve) => {
    const deadline = Date.now() + CALL_DEADLINE_MS;
    if (stream) {
      const call = client[method](request, { deadline }) as grpc.ClientReadableStream<unknown>;
      call.on('data', () => undefined);
      call.on('status', (s: grpc.StatusObject) => resolve({ code: s.code, details: s.details }));
      call.on('error', () => undefined);
    } else {
      client[method](request, { deadline }, (err: grpc.ServiceError | null) => resolve({ code: err ? err.code : grpc.status.OK, details: err?.details ?? '' }));
    }
  });
}

function healthy(target: string): Promise<boolean> {
  const client = rawClient(target, 'grpc.health.v1.Health', { Check: false });
  return new Promise((resolve) => {
    client.Check(Buffer.alloc(0), { deadline: Date.now() + 5000 }, (err: grpc.ServiceError | null, res?: Buffer) => {
      client.close();
      resolve(!err && res !== undefined && res[0] === 0x08 && res[1] === 0x01);
    });
  });
}

function httpHealthy(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    http
      .get({ host: '127.0.0.1', port, path: '/healthy', agent: false, timeout: 5000 }, (res) => {
        res.resume();
        resolve(res.statusCode === 200);
      })
      .on('error', () => resolve(false));
  });
}

/** Raw bytes to a socket; waits for the peer to answer or close (or 2 s). */
function rawBytes(connect: net.NetConnectOpts, bytes: Uint8Array): Promise<void> {
  return new Promise((resolve) => {
    const s = net.connect(connect);
    const done = () => {
      clearTimeout(timer);
      s.destroy();
      resolve();
    };
    const timer = setTimeout(done, 2000);
    s.on('connect', () => s.end(Buffer.from(bytes)));
    s.on('data', () => undefined);
    s.on('close', done);
    s.on('error', done);
  });
}

describe('dfdaemon fuzz (fast-check)', () => {
  let root: string;
  let allowed: string;
  let origin: Origin;
  let daemon: DfdaemonHandle;
  let socket: string;
  let download: AnyClient;
  let upload: AnyClient;
  let rawDownload: AnyClient;
  let rawUpload: AnyClient;
  const codes = new Map<number, number>();
  const unclear: string[] = [];
  let peakRss = 0;
  /** Health probes run every 250 ms while the fuzzing goes on, not only between batches. */
  let probes = 0;
  const probeFailures: string[] = [];
  let prober: NodeJS.Timeout | undefined;
  let testStart = 0;
  let probesAtStart = 0;
  let baselineRss = 0;

  beforeAll(async () => {
    root = await tempDir('dfdaemon-fuzz');
    allowed = path.join(root, 'out');
    await fsp.mkdir(allowed);
    await fsp.mkdir(path.join(root, 'origin'));
    await randomFile(path.join(root, 'origin', 'small.bin'), 100_000);
    await fsp.writeFile(path.join(root, 'origin', 'empty.bin'), '');
    origin = await startOrigin(path.join(root, 'origin'));
    daemon = await startDfdaemon(daemonConfig(path.join(root, 'd'), 'fuzz-peer', { download: { pieceDownloadTimeout: '5s' } }), { logger: quiet() });
    socket = daemon.config.download.downloadGRPC.unixListen.socket;
    download = new (protos().dfdaemon.dfdaemon.v2.DfdaemonDownload)(`unix:${socket}`, grpc.credentials.createInsecure(), GRPC_OPTIONS) as unknown as AnyClient;
    upload = new (protos().dfdaemon.dfdaemon.v2.DfdaemonUpload)(`127.0.0.1:${daemon.grpcPort}`, grpc.credentials.createInsecure(), GRPC_OPTIONS) as unknown as AnyClient;
    rawDownload = rawClient(`unix:${socket}`, 'dfdaemon.v2.DfdaemonDownload', { DownloadTask: true, StatTask: false, DeleteTask: false });
    baselineRss = process.memoryUsage().rss;
    rawUpload = rawClient(`127.0.0.1:${daemon.grpcPort}`, 'dfdaemon.v2.DfdaemonUpload', { DownloadTask: true, SyncPieces: true, StatTask: false, DeleteTask: false });
  });
  beforeEach(() => {
    testStart = performance.now();
    probesAtStart = probes;
    let busy = false;
    prober = setInterval(() => {
      if (busy) return;
      busy = true;
      void Promise.all([healthy(`unix:${socket}`), healthy(`127.0.0.1:${daemon.grpcPort}`), httpHealthy(daemon.uploadPort)]).then((ok) => {
        probes++;
        if (ok.includes(false) && probeFailures.length < 10) probeFailures.push(`probe ${probes}: ${JSON.stringify(ok)}`);
        busy = false;
      });
    }, 250);
  });
  afterEach(() => {
    clearInterval(prober);
    expect(probeFailures).toEqual([]);
    // The probes kept completing while the fuzzing ran: at least a third of the 250 ms ticks (a
    // probe in flight skips a tick), and never fewer than 2. A fixed count failed once the fuzzing
    // itself got faster.
    const ticks = Math.floor((performance.now() - testStart) / 250);
    expect(probes - probesAtStart).toBeGreaterThanOrEqual(Math.max(2, Math.floor(ticks / 3)));
  });
  afterAll(async () => {
    for (const c of [download, upload, rawDownload, rawUpload]) c?.close();
    await daemon?.stop();
    await origin?.close();
    await fsp.rm(root, { recursive: true, force: true });
  });

  const note = (method: string, r: { code: number; details: string }) => {
    codes.set(r.code, (codes.get(r.code) ?? 0) + 1);
    // grpc-js itself answers an undecodable request with INTERNAL "Error deserializing request"
    // before any handler runs (tonic, upstream's server, does the same): a library refusal.
    const undecodable = r.code === (grpc.status.INTERNAL as number) && r.details === 'Error deserializing request';
    if (!CLEAR_CODES.has(r.code) && !undecodable && unclear.length < 20) unclear.push(`${method}: ${r.code} ${r.details}`);
  };

  async function checkHealth(): Promise<void> {
    expect(await healthy(`unix:${socket}`)).toBe(true);
    expect(await healthy(`127.0.0.1:${daemon.grpcPort}`)).toBe(true);
    expect(await httpHealthy(daemon.uploadPort)).toBe(true);
    const rss = process.memoryUsage().rss;
    peakRss = Math.max(peakRss, rss);
    expect(rss - baselineRss).toBeLessThan(RSS_GROWTH_BOUND);
  }

  // Hostile values of the right types.
  const hex64 = fc.string({ unit: fc.constantFrom(...'0123456789abcdef'), minLength: 64, maxLength: 64 });
  const hostileString = fc.oneof(
    fc.string({ maxLength: 64 }),
    fc.string({ unit: 'binary', maxLength: 64 }),
    fc.constantFrom('', '\u0000', '../../../../etc/passwd', '%00', 'a'.repeat(10_000), '\r\nX-Injected: 1', 'sha256:', `sha256:${'g'.repeat(64)}`),
  );
  const url = () =>
    fc.oneof(
      hostileString,
      fc.constantFrom('file:///etc/passwd', 'ftp://127.0.0.1/x', 'gopher://x', 'http://', 'http://[::1', 'javascript:alert(1)', 'data:,x', 'http://169.254.169.254/latest/meta-data/'),
      fc.constantFrom('small.bin', 'empty.bin', 'missing.bin', 'v2/r/blobs/sha256:' + 'a'.repeat(64), 'small.bin?Expires=1&x=%ff').map((n) => origin.url(n)),
      fc.tuple(fc.constantFrom('small.bin', 'missing.bin'), fc.string({ maxLength: 16 })).map(([n, q]) => `${origin.url(n)}?q=${encodeURIComponent(q)}`),
    );
  const uint64 = fc.oneof(fc.nat(), fc.constantFrom('0', '18446744073709551615', '9007199254740993', '-1'), fc.bigInt({ min: 0n, max: 2n ** 64n - 1n }).map(String));
  const downloadMessage = (withOutput: boolean) =>
    fc.record(
      {
        url: url(),
        digest: fc.oneof(hostileString, hex64.map((h) => `sha256:${h}`)),
        tag: hostileString,
        application: hostileString,
        priority: fc.nat({ max: 6 }),
        filteredQueryParams: fc.array(hostileString, { maxLength: 8 }),
        requestHeader: fc.dictionary(fc.string({ minLength: 1, maxLength: 20 }), hostileString, { maxKeys: 6 }),
        range: fc.record({ start: uint64, length: uint64 }),
        disableBackToSource: fc.boolean(),
        needBackToSource: fc.boolean(),
        overwrite: fc.boolean(),
        outputPath: withOutput
          ? fc.oneof(
              hostileString,
              fc.string({ minLength: 1, maxLength: 12 }).map((n) => path.join(allowed, n.replace(/\//g, '_'))),
              fc.constantFrom('/', allowed, path.join(root, 'nope', 'deeper', 'x'), 'relative/x', path.join(allowed, '..', 'escaped')),
            )
          : fc.constant(undefined),
      },
      { requiredKeys: ['url'] },
    );

  it('the download API on the unix socket: thousands of hostile DownloadTask/StatTask/DeleteTask calls', async () => {
    const property = fc.asyncProperty(
      fc.oneof(
        { weight: 6, arbitrary: downloadMessage(true).map((d) => ({ kind: 'download' as const, d })) },
        { weight: 2, arbitrary: hostileString.map((id) => ({ kind: 'stat' as const, id })) },
        { weight: 1, arbitrary: hostileString.map((id) => ({ kind: 'delete' as const, id })) },
        { weight: 2, arbitrary: fc.tuple(fc.constantFrom('DownloadTask', 'StatTask', 'DeleteTask'), fc.uint8Array({ maxLength: 512 })).map(([m, b]) => ({ kind: 'raw' as const, m, b })) },
        { weight: 1, arbitrary: fc.uint8Array({ minLength: 1, maxLength: 2048 }).map((b) => ({ kind: 'bytes' as const, b })) },
      ),
      async (op) => {
        if (op.kind === 'download') note('DownloadTask', await run(download, 'DownloadTask', { download: op.d as Download }, true));
        else if (op.kind === 'stat') note('StatTask', await run(download, 'StatTask', { taskId: op.id }, false));
        else if (op.kind === 'delete') note('DeleteTask', await run(download, 'DeleteTask', { taskId: op.id }, false));
        else if (op.kind === 'raw') note(`raw ${op.m}`, await run(rawDownload, op.m, Buffer.from(op.b), op.m === 'DownloadTask'));
        else await rawBytes({ path: socket }, op.b);
      },
    );
    for (let batch = 0; batch < 6; batch++) {
      await fc.assert(property, { numRuns: 400, seed: 1000 + batch });
      await checkHealth();
    }
    expect(unclear).toEqual([]);
    // Nothing escaped the allowed directory.
    await expect(fsp.stat(path.join(root, 'escaped'))).rejects.toThrow();
    for (const name of await fsp.readdir(root)) expect(['out', 'origin', 'd']).toContain(name);
    expect(codes.get(grpc.status.OK) ?? 0).toBeGreaterThan(0);
    expect(codes.get(grpc.status.INVALID_ARGUMENT) ?? 0).toBeGreaterThan(0);
  });

  it('DfdaemonUpload on TCP and the piece HTTP server: thousands of hostile calls and requests', async () => {
    const method = fc.constantFrom('GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'OPTIONS', 'CONNECT', 'TRACE', 'PATCH', 'G\u0000T');
    const property = fc.asyncProperty(
      fc.oneof(
        { weight: 3, arbitrary: downloadMessage(false).map((d) => ({ kind: 'seed' as const, d })) },
        { weight: 1, arbitrary: downloadMessage(true).map((d) => ({ kind: 'seedWithOutput' as const, d })) },
        {
          weight: 3,
          arbitrary: fc
            .record({ taskId: fc.oneof(hostileString, hex64), hostId: hostileString, interestedPieceNumbers: fc.array(fc.nat({ max: 2 ** 32 - 1 }), { maxLength: 2000 }) })
            .map((r) => ({ kind: 'sync' as const, r })),
        },
        { weight: 1, arbitrary: hostileString.map((id) => ({ kind: 'stat' as const, id })) },
        { weight: 1, arbitrary: fc.tuple(fc.constantFrom('DownloadTask', 'SyncPieces', 'StatTask', 'DeleteTask'), fc.uint8Array({ maxLength: 512 })).map(([m, b]) => ({ kind: 'raw' as const, m, b })) },
        {
          weight: 3,
          arbitrary: fc
            .record({ method, p: fc.oneof(hostileString, hex64.map((h) => `/download/${h.slice(0, 3)}/${h}`)), range: fc.oneof(hostileString, fc.tuple(fc.nat(), fc.nat()).map(([a, b]) => `bytes=${a}-${b}`)) })
            .map((r) => ({ kind: 'http' as const, r })),
        },
        { weight: 1, arbitrary: fc.uint8Array({ minLength: 1, maxLength: 2048 }).map((b) => ({ kind: 'bytesGrpc' as const, b })) },
        { weight: 1, arbitrary: fc.uint8Array({ minLength: 1, maxLength: 2048 }).map((b) => ({ kind: 'bytesHttp' as const, b })) },
      ),
      async (op) => {
        switch (op.kind) {
          case 'seed':
            return note('seed DownloadTask', await run(upload, 'DownloadTask', { download: op.d as Download }, true));
          case 'seedWithOutput': {
            const r = await run(upload, 'DownloadTask', { download: op.d as Download }, true);
            note('seed DownloadTask+output', r);
            if (op.d.outputPath) expect(r.code).toBe(grpc.status.INVALID_ARGUMENT);
            return;
          }
          case 'sync': {
            // A SyncPieces for a task that is still downloading stays open: a short deadline ends it.
            const r = await run(upload, 'SyncPieces', op.r, true);
            return note('SyncPieces', r);
          }
          case 'stat':
            return note('StatTask', await run(upload, 'StatTask', { taskId: op.id }, false));
          case 'raw':
            return note(`raw ${op.m}`, await run(rawUpload, op.m, Buffer.from(op.b), op.m === 'DownloadTask' || op.m === 'SyncPieces'));
          case 'http': {
            const line = `${op.r.method} ${op.r.p.replace(/[\s]/g, '%20') || '/'} HTTP/1.1\r\nHost: x\r\nRange: ${op.r.range.replace(/[\r\n]/g, '')}\r\nConnection: close\r\n\r\n`;
            return rawBytes({ host: '127.0.0.1', port: daemon.uploadPort }, Buffer.from(line, 'latin1'));
          }
          case 'bytesGrpc':
            return rawBytes({ host: '127.0.0.1', port: daemon.grpcPort }, op.b);
          case 'bytesHttp':
            return rawBytes({ host: '127.0.0.1', port: daemon.uploadPort }, op.b);
        }
      },
    );
    for (let batch = 0; batch < 6; batch++) {
      await fc.assert(property, { numRuns: 400, seed: 2000 + batch });
      await checkHealth();
    }
    expect(unclear).toEqual([]);
    for (const name of await fsp.readdir(root)) expect(['out', 'origin', 'd']).toContain(name);
    console.log(`fuzz: RSS ${Math.round(baselineRss / MiB)} MiB after start-up, peak ${Math.round(peakRss / MiB)} MiB (growth bound ${RSS_GROWTH_BOUND / MiB} MiB); codes ${JSON.stringify(Object.fromEntries(codes))}`);
  });
});
