import * as grpc from '@grpc/grpc-js';
import { createHash, randomBytes } from 'node:crypto';
import { promises as fs, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { startGrpcServer, type GrpcServerHandle } from '../../../services/common/grpc';
import { dfdaemonDownloadService } from '../../../services/proto';
import type { DownloadTaskRequest__Output } from '../../../services/proto/gen/dfdaemon/v2/DownloadTaskRequest';
import type { DownloadTaskResponse } from '../../../services/proto/gen/dfdaemon/v2/DownloadTaskResponse';
import { main, runDfget } from '../../../services/dfget/main';
import { DEFAULT_SOCKET, UsageError, endpointTarget, parseArgs } from '../../../services/dfget/options';

const content = randomBytes(300_000);
const digest = `sha256:${createHash('sha256').update(content).digest('hex')}`;

let dir: string;
let origin: http.Server;
let base: string;
let seen: http.IncomingHttpHeaders[];

beforeAll(async () => {
  origin = http.createServer((req, res) => {
    seen.push(req.headers);
    if (req.url === '/redirect') return void res.writeHead(302, { location: '/file' }).end();
    if (req.url === '/file') return void res.writeHead(200, { 'content-length': content.length }).end(content);
    if (req.url === '/short') {
      res.writeHead(200, { 'content-length': content.length * 2 });
      res.write(content);
      setTimeout(() => res.destroy(), 10);
      return;
    }
    res.writeHead(404).end('nope');
  });
  await new Promise<void>((r) => origin.listen(0, '127.0.0.1', r));
  base = `http://127.0.0.1:${(origin.address() as AddressInfo).port}`;
});
afterAll(async () => {
  origin.closeAllConnections();
  await new Promise((r) => origin.close(r));
});
beforeEach(() => {
  dir = mkdtempSync(path.join(tmpdir(), 'dfget-'));
  seen = [];
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

const argv = (...args: string[]) => ['node', 'dfget', ...args];
const noDaemon = () => `unix:${path.join(dir, 'no-daemon.sock')}`;

function captureIo() {
  const lines: string[] = [];
  return { io: { stderr: { write: (s: string) => lines.push(s), isTTY: false }, connectTimeoutMs: 300 }, text: () => lines.join('') };
}

describe('dfget arguments', () => {
  it('parses every flag', () => {
    const o = parseArgs(
      argv('https://example.com/a.tar?x=1', '-O', 'out.tar', '-e', '/run/df.sock', '--digest', `SHA256:${'A'.repeat(64)}`, '-H', 'Authorization: Bearer t', '--header', 'X-A: b: c',
        '--tag', 't', '--application', 'app', '--filtered-query-param', 'x', '--filtered-query-param', 'y,z', '--disable-back-to-source', '--overwrite', '--hard-link', '--timeout', '90s', '--no-progress', '--verbose'),
      '/srv/downloads',
    );
    expect(o).toEqual({
      url: 'https://example.com/a.tar?x=1',
      output: '/srv/downloads/out.tar',
      endpoint: 'unix:/run/df.sock',
      digest: `sha256:${'a'.repeat(64)}`,
      headers: { Authorization: 'Bearer t', 'X-A': 'b: c' },
      tag: 't',
      application: 'app',
      filteredQueryParams: ['x', 'y', 'z'],
      disableBackToSource: true,
      overwrite: true,
      hardLink: true,
      timeoutMs: 90_000,
      progress: false,
      verbose: true,
    });
  });

  it('defaults to the unix socket, 2h timeout and a progress bar', () => {
    const o = parseArgs(argv('http://h/x', '-O', '/tmp/x'));
    expect(o.endpoint).toBe(`unix:${DEFAULT_SOCKET}`);
    expect(o.timeoutMs).toBe(2 * 3600_000);
    expect(o.progress).toBe(true);
    expect(o.overwrite).toBe(false);
    expect(o.hardLink).toBe(false);
  });

  it('accepts unix socket paths only: the download API is not served over TCP', () => {
    expect(endpointTarget('/run/df.sock')).toBe('unix:/run/df.sock');
    expect(endpointTarget('unix:///run/df.sock')).toBe('unix:/run/df.sock');
    expect(endpointTarget('unix:/run/df.sock')).toBe('unix:/run/df.sock');
    expect(() => endpointTarget('http://127.0.0.1:65000')).toThrow(/unix socket/);
    expect(() => endpointTarget('127.0.0.1:65000')).toThrow(UsageError);
    expect(() => endpointTarget('[::1]:65000')).toThrow(UsageError);
  });

  it('rejects bad values with a one-line message', () => {
    expect(() => parseArgs(argv('ftp://h/x', '-O', 'x'))).toThrow('unsupported URL scheme');
    expect(() => parseArgs(argv('http://h/x', '-O', 'x', '--digest', 'md5:abc'))).toThrow('--digest');
    expect(() => parseArgs(argv('http://h/x', '-O', 'x', '--timeout', 'soon'))).toThrow('--timeout');
    const err: string[] = [];
    expect(() => parseArgs(argv('http://h/x'), '/', (s) => err.push(s))).toThrow();
    expect(err.join('')).toContain("required option '-O, --output <file>' not specified");
  });

  it('main exits non-zero without a stack trace on usage errors', async () => {
    const { io, text } = captureIo();
    expect(await main(argv('not a url', '-O', 'x'), io)).toBe(2);
    expect(text()).toBe('dfget: invalid URL "not a url"\n');
    const bad = captureIo();
    expect(await main(argv('http://h/x', '-O', 'x', '-H', 'novalue'), bad.io)).toBe(1);
    expect(bad.text()).toContain('expected "Name: value"');
    expect(bad.text()).not.toContain('    at ');
  });
});

describe('dfget without a daemon', () => {
  it('falls back to a direct download (following redirects) and says so', async () => {
    const out = path.join(dir, 'file.bin');
    const { io, text } = captureIo();
    expect(await main(argv(`${base}/redirect`, '-O', out, '-e', noDaemon(), '-H', 'Authorization: Bearer x', '--digest', digest), io)).toBe(0);
    expect((await fs.readFile(out)).equals(content)).toBe(true);
    expect(text()).toContain('downloading directly from the origin');
    expect(seen[0].authorization).toBe('Bearer x');
    expect(readdirSync(dir)).toEqual(['file.bin']);
  });

  it('digest mismatch: exit 1, no file left', async () => {
    const out = path.join(dir, 'file.bin');
    const { io, text } = captureIo();
    expect(await main(argv(`${base}/file`, '-O', out, '-e', noDaemon(), '--digest', `sha256:${'0'.repeat(64)}`), io)).toBe(1);
    expect(text()).toContain('digest mismatch');
    expect(readdirSync(dir)).toEqual([]);
  });

  it('reports origin errors and short bodies, leaving nothing behind', async () => {
    const { io, text } = captureIo();
    expect(await main(argv(`${base}/missing`, '-O', path.join(dir, 'x'), '-e', noDaemon()), io)).toBe(1);
    expect(text()).toContain('origin answered 404');
    const short = captureIo();
    expect(await main(argv(`${base}/short`, '-O', path.join(dir, 'x'), '-e', noDaemon()), short.io)).toBe(1);
    expect(readdirSync(dir)).toEqual([]);
  });

  it('refuses to overwrite without --overwrite, and refuses a direct download with --disable-back-to-source', async () => {
    const out = path.join(dir, 'file.bin');
    await fs.writeFile(out, 'old');
    const { io, text } = captureIo();
    expect(await main(argv(`${base}/file`, '-O', out, '-e', noDaemon()), io)).toBe(1);
    expect(text()).toContain('already exists (use --overwrite)');
    expect(await main(argv(`${base}/file`, '-O', out, '-e', noDaemon(), '--overwrite'), captureIo().io)).toBe(0);
    expect((await fs.readFile(out)).equals(content)).toBe(true);
    const nb = captureIo();
    expect(await main(argv(`${base}/file`, '-O', path.join(dir, 'y'), '-e', noDaemon(), '--disable-back-to-source'), nb.io)).toBe(1);
    expect(nb.text()).toContain('--disable-back-to-source');
  });
});

describe('dfget through a DfdaemonDownload service', () => {
  let server: GrpcServerHandle;
  let requests: DownloadTaskRequest__Output[];
  let writeContent: Buffer;
  let failWith: { code: grpc.status; details: string } | undefined;

  beforeEach(async () => {
    requests = [];
    writeContent = content;
    failWith = undefined;
    const socket = path.join(dir, 'dfdaemon.sock');
    server = await startGrpcServer(`unix:${socket}`, [
      {
        name: 'dfdaemon.v2.DfdaemonDownload',
        definition: dfdaemonDownloadService(),
        handlers: {
          DownloadTask: (call: grpc.ServerWritableStream<DownloadTaskRequest__Output, DownloadTaskResponse>) => {
            requests.push(call.request);
            if (failWith) return void call.emit('error', { ...failWith, metadata: new grpc.Metadata() });
            const d = call.request.download!;
            const base = { hostId: 'h', taskId: 'task-1', peerId: 'p' };
            call.write({ ...base, downloadTaskStartedResponse: { contentLength: writeContent.length, pieceLength: 100_000, pieces: [], isFinished: false } });
            for (let n = 0; n * 100_000 < writeContent.length; n++) {
              call.write({ ...base, downloadPieceFinishedResponse: { piece: { number: n, offset: n * 100_000, length: Math.min(100_000, writeContent.length - n * 100_000), digest: 'crc32:0' } } });
            }
            void fs.writeFile(d.outputPath!, writeContent).then(() => call.end());
          },
          StatTask: (_c: unknown, cb: grpc.sendUnaryData<unknown>) => cb({ code: grpc.status.UNIMPLEMENTED }),
          DeleteTask: (_c: unknown, cb: grpc.sendUnaryData<unknown>) => cb({ code: grpc.status.UNIMPLEMENTED }),
        },
      },
    ]);
  });
  afterEach(async () => {
    await server.shutdown(100);
  });

  it('sends the download request with every option and lets the daemon write the file', async () => {
    const out = path.join(dir, 'out.bin');
    const { io, text } = captureIo();
    const code = await main(
      argv('http://origin.example/f?sig=1', '-O', out, '-e', path.join(dir, 'dfdaemon.sock'), '--digest', digest, '-H', 'Authorization: Bearer z', '--tag', 't', '--application', 'a', '--filtered-query-param', 'sig', '--timeout', '1m'),
      io,
    );
    expect(text()).toBe('');
    expect(code).toBe(0);
    expect((await fs.readFile(out)).equals(content)).toBe(true);
    expect(requests[0].download).toMatchObject({
      url: 'http://origin.example/f?sig=1',
      digest,
      tag: 't',
      application: 'a',
      filteredQueryParams: ['sig'],
      requestHeader: { Authorization: 'Bearer z' },
      outputPath: out,
      timeoutMs: 60_000,
      disableBackToSource: false,
      overwrite: false,
    });
  });

  it('removes the file and exits 1 when the daemon wrote content that fails the digest', async () => {
    writeContent = Buffer.from('something else');
    const out = path.join(dir, 'out.bin');
    const { io, text } = captureIo();
    expect(await main(argv('http://origin.example/f', '-O', out, '-e', path.join(dir, 'dfdaemon.sock'), '--digest', digest), io)).toBe(1);
    expect(text()).toMatch(/^dfget: digest mismatch: expected sha256:[a-f0-9]{64}, got sha256:[a-f0-9]{64}; removed /);
    await expect(fs.stat(out)).rejects.toThrow();
  });

  it('maps a daemon error to one line, without falling back to the origin', async () => {
    failWith = { code: grpc.status.NOT_FOUND, details: 'no peer holds the task and back-to-source is disabled' };
    const { io, text } = captureIo();
    expect(await main(argv(`${base}/file`, '-O', path.join(dir, 'o'), '-e', path.join(dir, 'dfdaemon.sock'), '--disable-back-to-source'), io)).toBe(1);
    expect(text()).toBe('dfget: dfdaemon: no peer holds the task and back-to-source is disabled\n');
    expect(seen).toHaveLength(0);
  });

  it('reports progress from piece messages', async () => {
    const progress: number[] = [];
    const out = path.join(dir, 'p.bin');
    const { io } = captureIo();
    const { downloadViaDaemon } = await import('../../../services/dfget/download');
    const options = parseArgs(argv('http://origin.example/f', '-O', out, '-e', path.join(dir, 'dfdaemon.sock')));
    const outcome = await downloadViaDaemon(options, (p) => progress.push(p.done));
    expect(outcome).toEqual({ via: 'dfdaemon', taskId: 'task-1', contentLength: content.length });
    expect(progress[progress.length - 1]).toBe(content.length);
    expect(progress.length).toBeGreaterThan(2);
    await expect(runDfget({ ...options, output: path.join(dir, 'q.bin') }, io)).resolves.toMatchObject({ via: 'dfdaemon' });
  });
});
