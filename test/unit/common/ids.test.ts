import { blobDigestOf, filterUrl, hostIdOf, isSeedId, parseFilter, peerIdOf, pieceIdOf, taskIdOf } from '../../../services/common/ids';
import { MAX_PIECE_LENGTH, MIN_PIECE_LENGTH, pieceCountOf, pieceLengthFor, pieceRange, piecesInRange } from '../../../services/common/pieces';

const DIGEST = 'sha256:82cbeb56bf8065dfb9ff5a0c6ea212ab3a32f413a137675df59d496e68eaf399';

describe('task id', () => {
  it('upstream vector: url + tag + application', () => {
    expect(taskIdOf({ url: 'https://example.com', tag: 'foo', application: 'bar' })).toBe('06408fbf247ddaca478f8cb9565fe5591c28efd0994b8fea80a6a87d3203c5ca');
  });

  it('upstream vector: every query param filtered → query removed', () => {
    expect(taskIdOf({ url: 'https://example.com?foo=foo&bar=bar', filteredQueryParams: ['foo', 'bar'] })).toBe('457b4328cde278e422c9e243f7bfd1e97f511fec43a80f535cf6b0ef6b086776');
  });

  it('an OCI blob URL is its digest, whichever registry or ns it came through', () => {
    const viaMirror = taskIdOf({ url: `https://ghcr.io/v2/dragonflyoss/dragonfly2/scheduler/blobs/${DIGEST}?ns=ghcr.io` });
    const direct = taskIdOf({ url: `http://10.0.0.9:5000/v2/other/repo/blobs/${DIGEST}` });
    expect(viaMirror).toBe(DIGEST.slice(7));
    expect(direct).toBe(viaMirror);
    expect(blobDigestOf('https://ghcr.io/v2/x/manifests/latest')).toBeUndefined();
  });

  it('blobDigestOf answers as the blob-URL pattern does, for URLs ending with a digest or not (differential)', () => {
    // The pattern blobDigestOf stands for; its fast path for URLs ending with the digest must agree with it.
    const spec = (url: string) => /^(.*):\/\/(.*)\/v2\/(.*)\/blobs\/(sha256:[a-f0-9]{64})(?:[?#].*)?$/.exec(url)?.[4];
    const other = DIGEST.replace('82cb', 'ffff');
    const parts = ['://', 'http', '/v2/', '/v2', 'v2/', '/', ':', 'x', '/blobs/', 'blobs/', `/blobs/${DIGEST}`, DIGEST, `/blobs/${other}`, '?', '#', 'ns=a', '\n', '\r', '\u2028', DIGEST.toUpperCase(), DIGEST.slice(0, 70)];
    let seed = 7;
    const next = (n: number) => {
      seed = (seed * 48271) % 2147483647;
      return seed % n;
    };
    const urls = [
      `https://ghcr.io/v2/a/b/blobs/${DIGEST}`,
      `://v2//blobs/${DIGEST}`,
      `http://h/v2/blobs/${DIGEST}`,
      `http://h/v2/x/blobs/${other}/blobs/${DIGEST}`,
      `http://h/v2/x/blobs/${DIGEST}?q#f/blobs/${other}`,
      `http://h/v2/x/blobs/${DIGEST}\n`,
      `http://h\n/v2/x/blobs/${DIGEST}`,
      `http://h/v2/x/blobs/${DIGEST.toUpperCase()}`,
    ];
    for (let i = 0; i < 20_000; i++) {
      let url = next(4) > 0 ? 'http://h' : '';
      for (let j = next(4); j > 0; j--) url += parts[next(parts.length)];
      if (next(4) > 0) url += '/v2/';
      for (let j = next(4); j > 0; j--) url += parts[next(parts.length)];
      // Most generated URLs end with a digest: the fast path's shape.
      if (next(3) > 0) url += `/blobs/${[DIGEST, other, `${DIGEST.slice(0, -1)}g`, `${DIGEST.slice(0, -1)}/`][next(4)]}`;
      urls.push(url);
    }
    let matched = 0;
    for (const url of urls) {
      // A new URL each time: the one-URL memo of blobDigestOf does not answer.
      const want = spec(url);
      if (want !== undefined) matched++;
      expect([url, blobDigestOf(url)]).toEqual([url, want]);
    }
    // Both answers occur often enough to mean something.
    expect(matched).toBeGreaterThan(1000);
    expect(urls.length - matched).toBeGreaterThan(1000);
  });

  it('the ns param is filtered by default; other params count', () => {
    const a = taskIdOf({ url: 'https://example.com/file.tar?ns=docker.io' });
    const b = taskIdOf({ url: 'https://example.com/file.tar' });
    const c = taskIdOf({ url: 'https://example.com/file.tar?version=2' });
    expect(a).toBe(b);
    expect(c).not.toBe(b);
  });

  it('tag and application change the id', () => {
    // Fields are concatenated without separators, as upstream does (the vectors above
    // depend on it), so only distinct values are guaranteed distinct ids.
    const url = 'https://example.com/file.tar';
    const ids = new Set([taskIdOf({ url }), taskIdOf({ url, tag: 'a' }), taskIdOf({ url, application: 'b' }), taskIdOf({ url, tag: 'c', application: 'd' })]);
    expect(ids.size).toBe(4);
  });

  it('Go-era filter strings split on &', () => {
    expect(parseFilter('Expires&Signature&ns')).toEqual(['Expires', 'Signature', 'ns']);
    expect(filterUrl('https://s3.example.com/b/o?Expires=1&Signature=x&part=2', parseFilter('Expires&Signature'))).toBe('https://s3.example.com/b/o?part=2');
  });
});

describe('host, peer and piece ids', () => {
  it('host id is ip-hostname, seed peers end in -seed', () => {
    expect(hostIdOf('10.0.0.1', 'kind-worker')).toBe('10.0.0.1-kind-worker');
    expect(hostIdOf('10.0.0.1', 'kind-worker', true)).toBe('10.0.0.1-kind-worker-seed');
    expect(isSeedId(hostIdOf('10.0.0.1', 'w', true))).toBe(true);
  });

  it('peer ids are unique per call', () => {
    const a = peerIdOf('10.0.0.1', 'w');
    expect(a).toMatch(/^10\.0\.0\.1-w-[0-9a-f-]{36}$/);
    expect(peerIdOf('10.0.0.1', 'w')).not.toBe(a);
    expect(peerIdOf('10.0.0.1', 'w', true)).toMatch(/-seed$/);
    expect(pieceIdOf('abc', 7)).toBe('abc-7');
  });
});

describe('piece length', () => {
  it.each([
    [0, MIN_PIECE_LENGTH], [1, MIN_PIECE_LENGTH], [200 * 2 ** 20, MIN_PIECE_LENGTH], [2 ** 30, MIN_PIECE_LENGTH],
    [3e9, 8 * 2 ** 20], [10e9, 32 * 2 ** 20], [1e12, MAX_PIECE_LENGTH],
  ])('content %d → piece %d', (len, piece) => expect(pieceLengthFor(len)).toBe(piece));

  it('grows monotonically within [4 MiB, 64 MiB]', () => {
    let prev = 0;
    for (let len = 1; len < 2e12; len *= 3) {
      const p = pieceLengthFor(len);
      expect(p).toBeGreaterThanOrEqual(prev);
      expect(p).toBeGreaterThanOrEqual(MIN_PIECE_LENGTH);
      expect(p).toBeLessThanOrEqual(MAX_PIECE_LENGTH);
      prev = p;
    }
  });

  it('pieces cover the content exactly; the last holds the remainder', () => {
    const len = 10 * 2 ** 20 + 5;
    const pl = MIN_PIECE_LENGTH;
    expect(pieceCountOf(len, pl)).toBe(3);
    expect(pieceRange(2, len, pl)).toEqual({ offset: 8 * 2 ** 20, length: 2 * 2 ** 20 + 5 });
    expect(() => pieceRange(3, len, pl)).toThrow(RangeError);
    expect(pieceCountOf(0, pl)).toBe(0);
    expect(piecesInRange(pl - 1, 2, pl)).toEqual([0, 1]);
    expect(piecesInRange(0, 0, pl)).toEqual([]);
  });
});
