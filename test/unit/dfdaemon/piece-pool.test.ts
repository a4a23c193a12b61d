/**
 * The kept-alive piece connections of fetchPieceRaw against a fake parent (a raw TCP server
 * whose answers each test shapes): the idle bound per parent, a connection the parent closed
 * replaced, a connection that saw an error or a wrong answer discarded, and no byte of one
 * response read as part of the next.
 */
import * as fsp from 'node:fs/promises';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { closeIdlePieceConnections, fetchPieceRaw, IDLE_PER_PARENT, idlePieceConnectionCount, PieceDigestError } from '../../../services/dfdaemon/piece-transfer';
import { crc32Of } from '../../../services/dfdaemon/storage';

const KiB = 1024;
const PIECE = 64 * KiB;
const PIECES = 32;
const content = Buffer.alloc(PIECE * PIECES);
for (let i = 0; i < content.length; i++) content[i] = (i * 7 + (i >> 9)) & 0xff;
const pieceOf = (n: number) => content.subarray(n * PIECE, (n + 1) * PIECE);

interface Answer {
  /** Bytes sent after the answer, in the same write. */
  trailing?: Buffer;
  /** Bytes sent on the connection later, once it is idle. */
  later?: Buffer;
  /** Only this many body bytes, then silence. */
  cutAt?: number;
  /** A wrong body (same length). */
  corrupt?: boolean;
  /** Answer for another range than asked. */
  otherRange?: boolean;
  /** Hold the answer back this long. */
  delayMs?: number;
}

/** A parent's upload server, reduced to what fetchPieceRaw speaks: GET + Range → 206. */
class FakeParent {
  readonly server: net.Server;
  connections = 0;
  closedByClient = 0;
  /** How the next answers look, in order (then plain answers). */
  script: Answer[] = [];
  readonly sockets = new Set<net.Socket>();

  constructor() {
    this.server = net.createServer((socket) => {
      this.connections++;
      this.sockets.add(socket);
      socket.on('close', () => {
        this.sockets.delete(socket);
        this.closedByClient++;
      });
      socket.on('error', () => undefined);
      let buffered = '';
      socket.on('data', (chunk) => {
        buffered += chunk.toString('latin1');
        let end: number;
        while ((end = buffered.indexOf('\r\n\r\n')) >= 0) {
          const head = buffered.slice(0, end);
          buffered = buffered.slice(end + 4);
          this.answer(socket, head);
        }
      });
    });
  }

  private answer(socket: net.Socket, head: string): void {
    const m = /\r\nRange: bytes=(\d+)-(\d+)/i.exec(head);
    const start = Number(m![1]);
    const end = Number(m![2]);
    const a = this.script.shift() ?? {};
    let body = Buffer.from(content.subarray(start, end + 1));
    if (a.corrupt) body[0] ^= 0xff;
    const range = a.otherRange ? `${start + PIECE}-${end + PIECE}` : `${start}-${end}`;
    const header = Buffer.from(`HTTP/1.1 206 Partial Content\r\nContent-Length: ${body.length}\r\nContent-Range: bytes ${range}/${content.length}\r\n\r\n`, 'latin1');
    if (a.cutAt !== undefined) body = body.subarray(0, a.cutAt);
    const send = () => {
      if (socket.destroyed) return;
      socket.write(Buffer.concat([header, body, a.trailing ?? Buffer.alloc(0)]));
      if (a.later) setTimeout(() => socket.destroyed || socket.write(a.later!), 30);
    };
    if (a.delayMs) setTimeout(send, a.delayMs);
    else send();
  }

  get port(): number {
    return (this.server.address() as net.AddressInfo).port;
  }
}

describe('kept-alive piece connections (fake parent)', () => {
  let dir: string;
  let parent: FakeParent;
  let target: fsp.FileHandle;

  beforeAll(async () => {
    dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'piece-pool-'));
    target = await fsp.open(path.join(dir, 'content'), 'w+');
    await target.truncate(content.length);
  });
  beforeEach(async () => {
    closeIdlePieceConnections();
    parent = new FakeParent();
    await new Promise<void>((r) => parent.server.listen(0, '127.0.0.1', r));
  });
  afterEach(async () => {
    closeIdlePieceConnections();
    for (const s of parent.sockets) s.destroy();
    await new Promise((r) => parent.server.close(r));
  });
  afterAll(async () => {
    await target.close();
    await fsp.rm(dir, { recursive: true, force: true });
  });

  const req = (n: number, timeoutMs = 5000) => ({ ip: '127.0.0.1', port: parent.port, taskId: 'a'.repeat(64), parentPeerId: 'parent', offset: n * PIECE, length: PIECE, timeoutMs, expectedDigest: crc32Of(pieceOf(n)) });
  const stored = async (n: number) => {
    const buf = Buffer.alloc(PIECE);
    await target.read(buf, 0, PIECE, n * PIECE);
    return buf;
  };
  /** Waits (bounded) until `cond` holds: closes travel through both event loops' sockets. */
  const until = async (cond: () => boolean, ms = 5000) => {
    for (const end = Date.now() + ms; !cond() && Date.now() < end; ) await new Promise((r) => setTimeout(r, 10));
  };

  it('pieces one after another share one connection', async () => {
    for (let n = 0; n < 6; n++) await expect(fetchPieceRaw(req(n), target)).resolves.toBe(crc32Of(pieceOf(n)));
    expect(parent.connections).toBe(1);
    expect(idlePieceConnectionCount('127.0.0.1', parent.port)).toBe(1);
    for (let n = 0; n < 6; n++) expect((await stored(n)).equals(pieceOf(n))).toBe(true);
  });

  it(`keeps at most ${IDLE_PER_PARENT} idle connections per parent; the rest are closed`, async () => {
    const n = IDLE_PER_PARENT + 6;
    // All in flight at once (each answer held back a little): one connection each.
    parent.script = Array.from({ length: n }, () => ({ delayMs: 20 }));
    await Promise.all(Array.from({ length: n }, (_, i) => fetchPieceRaw(req(i), target)));
    expect(parent.connections).toBe(n);
    expect(idlePieceConnectionCount('127.0.0.1', parent.port)).toBe(IDLE_PER_PARENT);
    await until(() => parent.sockets.size === IDLE_PER_PARENT);
    expect(parent.sockets.size).toBe(IDLE_PER_PARENT);
    // The next pieces reuse the idle ones: no new connection.
    await Promise.all(Array.from({ length: 4 }, (_, i) => fetchPieceRaw(req(i), target)));
    expect(parent.connections).toBe(n);
  });

  it('an idle connection the parent closed is replaced by a new one (the piece does not fail)', async () => {
    await fetchPieceRaw(req(0), target);
    for (const s of parent.sockets) s.destroy();
    await until(() => idlePieceConnectionCount('127.0.0.1', parent.port) === 0);
    expect(idlePieceConnectionCount('127.0.0.1', parent.port)).toBe(0);
    await expect(fetchPieceRaw(req(1), target)).resolves.toBe(crc32Of(pieceOf(1)));
    expect(parent.connections).toBe(2);
  });

  it('a reused connection the parent closes before answering is replaced once', async () => {
    await fetchPieceRaw(req(0), target);
    // The parent closes the connection as the next request arrives (a keep-alive timeout race).
    const [socket] = parent.sockets;
    socket.removeAllListeners('data');
    socket.once('data', () => socket.destroy());
    await expect(fetchPieceRaw(req(2), target)).resolves.toBe(crc32Of(pieceOf(2)));
    expect(parent.connections).toBe(2);
    expect((await stored(2)).equals(pieceOf(2))).toBe(true);
  });

  it.each<[string, Answer, RegExp | typeof PieceDigestError]>([
    ['a timeout in the middle of the body', { cutAt: PIECE / 2 }, /timed out/],
    ['a wrong body (digest mismatch)', { corrupt: true }, PieceDigestError],
    ['an answer for another range', { otherRange: true }, /instead of bytes/],
  ])('after %s the connection is discarded, and the next piece is right', async (_name, answer, error) => {
    await fetchPieceRaw(req(0), target);
    parent.script = [answer];
    await expect(fetchPieceRaw(req(3, 300), target)).rejects.toThrow(error);
    await until(() => parent.sockets.size === 0);
    expect(parent.sockets.size).toBe(0);
    expect(idlePieceConnectionCount('127.0.0.1', parent.port)).toBe(0);
    await expect(fetchPieceRaw(req(4), target)).resolves.toBe(crc32Of(pieceOf(4)));
    expect(parent.connections).toBe(2);
    expect((await stored(4)).equals(pieceOf(4))).toBe(true);
  });

  it('bytes past an answer (same packet) are not read as the next answer: that connection is closed', async () => {
    // The trailing bytes are a whole, well-formed answer for the next piece with the wrong bytes.
    const forged = Buffer.concat([Buffer.from(`HTTP/1.1 206 Partial Content\r\nContent-Length: ${PIECE}\r\nContent-Range: bytes ${5 * PIECE}-${6 * PIECE - 1}/${content.length}\r\n\r\n`, 'latin1'), Buffer.alloc(PIECE, 0xee)]);
    parent.script = [{ trailing: forged }];
    await expect(fetchPieceRaw(req(0), target)).resolves.toBe(crc32Of(pieceOf(0)));
    // Not kept (closed when the extra bytes are seen, in the answer's last read or once idle).
    await until(() => parent.sockets.size === 0);
    expect(idlePieceConnectionCount('127.0.0.1', parent.port)).toBe(0);
    expect(parent.sockets.size).toBe(0);
    await expect(fetchPieceRaw(req(5), target)).resolves.toBe(crc32Of(pieceOf(5)));
    expect(parent.connections).toBe(2);
    expect((await stored(5)).equals(pieceOf(5))).toBe(true);
  });

  it('bytes arriving on an idle connection close it: the next piece goes over a new one', async () => {
    parent.script = [{ later: Buffer.from('HTTP/1.1 206 Partial Content\r\n', 'latin1') }];
    await fetchPieceRaw(req(0), target);
    expect(idlePieceConnectionCount('127.0.0.1', parent.port)).toBe(1);
    await until(() => idlePieceConnectionCount('127.0.0.1', parent.port) === 0);
    expect(idlePieceConnectionCount('127.0.0.1', parent.port)).toBe(0);
    await expect(fetchPieceRaw(req(6), target)).resolves.toBe(crc32Of(pieceOf(6)));
    expect(parent.connections).toBe(2);
    expect((await stored(6)).equals(pieceOf(6))).toBe(true);
  });

  it('a connection is not shared across parents (one pool per address)', async () => {
    const other = new FakeParent();
    await new Promise<void>((r) => other.server.listen(0, '127.0.0.1', r));
    try {
      await fetchPieceRaw(req(0), target);
      await fetchPieceRaw({ ...req(1), port: other.port }, target);
      await fetchPieceRaw(req(2), target);
      expect(parent.connections).toBe(1);
      expect(other.connections).toBe(1);
      expect(idlePieceConnectionCount('127.0.0.1', parent.port)).toBe(1);
      expect(idlePieceConnectionCount('127.0.0.1', other.port)).toBe(1);
    } finally {
      closeIdlePieceConnections();
      await new Promise((r) => other.server.close(r));
    }
  });
});
