import { createHash, randomBytes } from 'node:crypto';
import * as fsp from 'node:fs/promises';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { ContentHasher, INLINE_HASH_MAX_BYTES, type PieceSource } from '../../../services/dfdaemon/content-hasher';

const sha = (b: Buffer) => `sha256:${createHash('sha256').update(b).digest('hex')}`;

/** A task of `length` bytes in pieces of `pieceLength`, all stored. */
function source(contentPath: string, length: number, pieceLength: number): PieceSource {
  const pieceCount = Math.max(1, Math.ceil(length / pieceLength));
  return {
    contentPath,
    pieceCount,
    hasPiece: (n) => n < pieceCount,
    piece: (n) => ({ offset: n * pieceLength, length: Math.min(pieceLength, length - n * pieceLength) }),
  };
}

describe('ContentHasher', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(path.join(tmpdir(), 'content-hasher-'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('hashes small content from the file as it is when asked, through the task handle', async () => {
    const data = randomBytes(64 * 1024);
    const file = path.join(dir, 'small');
    await fsp.writeFile(file, data);
    const fh = await fsp.open(file, 'r+');
    try {
      const hasher = new ContentHasher(source(file, data.length, 4 * 1024 * 1024), { length: data.length, handle: async () => fh });
      // The bytes on disk are what counts, not what a downloader meant to write.
      await fh.write(Buffer.from([data[10] ^ 0xff]), 0, 1, 10);
      const changed = Buffer.from(data);
      changed[10] ^= 0xff;
      expect(await hasher.digest()).toBe(sha(changed));
    } finally {
      await fh.close();
    }
  });

  it('fails a small content shorter on disk than its length instead of hashing what is there', async () => {
    const data = randomBytes(1000);
    const file = path.join(dir, 'short');
    await fsp.writeFile(file, data.subarray(0, 600));
    const fh = await fsp.open(file, 'r+');
    try {
      const hasher = new ContentHasher(source(file, data.length, 4 * 1024 * 1024), { length: data.length, handle: async () => fh });
      await expect(hasher.digest()).rejects.toThrow(/short read at 600 of 1000/);
    } finally {
      await fh.close();
    }
  });

  it('hashes empty content without reading, and larger content on the worker piece by piece', async () => {
    const empty = path.join(dir, 'empty');
    await fsp.writeFile(empty, Buffer.alloc(0));
    const none = new ContentHasher(source(empty, 0, 1024), { length: 0, handle: () => Promise.reject(new Error('not opened')) });
    expect(await none.digest()).toBe(sha(Buffer.alloc(0)));

    const large = randomBytes(INLINE_HASH_MAX_BYTES + 12345);
    const file = path.join(dir, 'large');
    await fsp.writeFile(file, large);
    const hasher = new ContentHasher(source(file, large.length, 256 * 1024), { length: large.length, handle: () => Promise.reject(new Error('the worker reads the file itself')) });
    hasher.advance();
    expect(await hasher.digest()).toBe(sha(large));
  });
});
