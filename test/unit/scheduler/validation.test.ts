import { parseConfig } from '../../../services/common/config';
import { DEFAULT_FILTERED_QUERY_PARAMS, taskIdOf } from '../../../services/common/ids';
import { silentLogger } from '../../../services/common/logger';
import { MAX_PIECE_COUNT } from '../../../services/common/pieces';
import type { AnnounceHostRequest__Output, Download__Output } from '../../../services/proto';
import { PieceBitset } from '../../../services/scheduler/resource/bitset';
import { ResourceStore } from '../../../services/scheduler/resource/store';
import type { SeedHost } from '../../../services/scheduler/seed-peers';
import { DEFAULT_LIMITS, SchedulerService } from '../../../services/scheduler/service';
import { callerIpOf, checkPiece, checkTaskId, pieceLengthFromCount } from '../../../services/scheduler/validation';

const MiB = 1024 * 1024;

function download(over: Partial<Download__Output>): Download__Output {
  return { url: '', type: 'STANDARD', priority: 'LEVEL0', filteredQueryParams: [], requestHeader: {}, disableBackToSource: false, needBackToSource: false, metadataOnly: false, overwrite: false, forceHardLink: false, ...over };
}

describe('caller address', () => {
  test.each([
    ['127.0.0.1:5123', '127.0.0.1'],
    ['::ffff:127.0.0.1:5123', '127.0.0.1'],
    ['::1:5123', '::1'],
    ['fd00::5:65000', 'fd00::5'],
    ['[fd00::5]:65000', 'fd00::5'],
    ['ipv4:10.0.0.5:1', '10.0.0.5'],
    ['ipv6:[::1]:1', '::1'],
    ['FD00::A:1', 'fd00::a'],
  ])('%s → %s', (peer, ip) => {
    expect(callerIpOf(peer)).toBe(ip);
  });
});

describe('task id recomputation', () => {
  const url = 'https://registry.test/file.tgz?X-Amz-Signature=abc&v=1';
  test('the id dfdaemon computes is accepted, with or without an explicit filter list', () => {
    const id = taskIdOf({ url, tag: 't', application: 'a' });
    expect(() => checkTaskId(id, download({ url, tag: 't', application: 'a' }))).not.toThrow();
    expect(() => checkTaskId(id, download({ url, tag: 't', application: 'a', filteredQueryParams: [...DEFAULT_FILTERED_QUERY_PARAMS] }))).not.toThrow();
    const unfiltered = taskIdOf({ url, filteredQueryParams: [] });
    expect(() => checkTaskId(unfiltered, download({ url }))).not.toThrow();
  });
  test('another id, tag, application or URL is refused; a bad URL too', () => {
    const id = taskIdOf({ url, tag: 't' });
    expect(() => checkTaskId(id, download({ url, tag: 'u' }))).toThrow(/does not match the download/);
    expect(() => checkTaskId(id, download({ url, tag: 't', application: 'x' }))).toThrow(/does not match/);
    expect(() => checkTaskId('f'.repeat(64), download({ url }))).toThrow(/does not match/);
    expect(() => checkTaskId('x', download({ url: 'not a url' }))).toThrow(/not a valid URL/);
  });
  test('an OCI blob URL: its digest is the id, and a different digest is refused', () => {
    const blob = `http://r.test/v2/app/blobs/sha256:${'a'.repeat(64)}`;
    expect(() => checkTaskId('a'.repeat(64), download({ url: blob, digest: `sha256:${'a'.repeat(64)}` }))).not.toThrow();
    expect(() => checkTaskId('a'.repeat(64), download({ url: blob, digest: `sha256:${'b'.repeat(64)}` }))).toThrow(/differs from the blob URL's digest/);
  });
});

describe('pieces and metadata', () => {
  test('piece numbers and lengths against the task', () => {
    const task = { contentLength: 10 * MiB, pieceCount: 3, pieceLength: 4 * MiB };
    expect(() => checkPiece(2, 2 * MiB, task)).not.toThrow();
    expect(() => checkPiece(3, 1, task)).toThrow(/outside the task's 3 pieces/);
    expect(() => checkPiece(0, 4 * MiB + 1, task)).toThrow(/piece length/);
    expect(() => checkPiece(0, 0, { contentLength: 0, pieceCount: 0, pieceLength: 4 * MiB })).toThrow(/outside/);
    expect(() => checkPiece(MAX_PIECE_COUNT - 1, 1, { contentLength: undefined, pieceCount: 0, pieceLength: 0 })).not.toThrow();
    expect(() => checkPiece(MAX_PIECE_COUNT, 1, { contentLength: undefined, pieceCount: 0, pieceLength: 0 })).toThrow(/outside/);
    expect(() => checkPiece(-1, 1, task)).toThrow(/outside/);
    expect(() => checkPiece(1.5, 1, task)).toThrow(/outside/);
  });
  test('piece length from a finished report with a piece count only', () => {
    expect(pieceLengthFromCount(10 * MiB, 3)).toBe(4 * MiB);
    expect(pieceLengthFromCount(10 * MiB, 7)).toBeUndefined();
    expect(pieceLengthFromCount(0, 0)).toBe(0);
    expect(() => pieceLengthFromCount(10 * MiB, 0)).toThrow(/cannot hold/);
    expect(() => pieceLengthFromCount(2 ** 41, 1)).toThrow(/content_length/);
  });
  test('the bitset never grows past MAX_PIECE_COUNT; fill sets whole words', () => {
    const b = new PieceBitset();
    expect(() => b.set(2 ** 32 - 1)).toThrow(RangeError);
    expect(() => b.set(MAX_PIECE_COUNT)).toThrow(RangeError);
    b.set(3);
    b.fill(70);
    expect(b.size).toBe(70);
    expect(b.toArray()).toEqual(Array.from({ length: 70 }, (_, i) => i));
    const full = new PieceBitset();
    full.fill(MAX_PIECE_COUNT);
    expect(full.size).toBe(MAX_PIECE_COUNT);
  });
});

describe('trusted seed peers', () => {
  const seeds: SeedHost[] = [{ key: '10.0.0.9:65000', ip: '10.0.0.9', port: 65000, hostname: 'seed' }];
  const service = new SchedulerService({
    store: new ResourceStore(),
    settings: () => ({ candidateParentLimit: 4, filterParentLimit: 40, defaultUploadLimit: 50, backToSourceCount: 3, retryLimit: 5, retryBackToSourceLimit: 4, retryIntervalMs: 500, seedPeerEnabled: true }),
    trigger: { trigger: () => undefined, close: () => undefined },
    managerSeeds: () => seeds,
    logger: silentLogger(),
  });
  const req = (id: string, ip: string, port: number): AnnounceHostRequest__Output => ({
    host: { id, type: 'SUPER_HOST', hostname: id, ip, port, downloadPort: 65002, network: null, schedulerClusterId: 1, disableShared: false, proxyPort: 0, concurrentUploadLimit: 0, concurrentUploadCount: 0, uploadCount: 0, uploadFailedCount: 0 },
    intervalMs: 30_000,
  });

  test('SUPER_HOST only for a listed ip:port calling from that ip; demoted when the list drops it', () => {
    expect(() => service.announceHost(req('other', '10.0.0.8', 65000), '10.0.0.8')).toThrow(/not a seed peer/);
    expect(() => service.announceHost(req('spoof', '10.0.0.9', 65000), '10.0.0.8')).toThrow(/came from 10\.0\.0\.8/);
    const seed = service.announceHost(req('seed', '10.0.0.9', 65000), '10.0.0.9');
    expect(seed.isSeed).toBe(true);
    seeds.length = 0;
    service.revalidateSeeds();
    expect(seed.isSeed).toBe(false);
  });

  test('defaults of scheduler.limits match the service defaults', () => {
    const l = parseConfig('scheduler', {}).scheduler.limits;
    expect({ hosts: l.hosts, tasks: l.tasks, peers: l.peers, peersPerTask: l.peersPerTask, streamsPerHost: l.streamsPerHost, maxAnnounceIntervalMs: l.maxAnnounceInterval }).toEqual(DEFAULT_LIMITS);
    expect(() => parseConfig('scheduler', { seedPeer: { addrs: ['seed.example:65000'] } })).toThrow(/ip:port/);
    expect(parseConfig('scheduler', { seedPeer: { addrs: ['[fd00::5]:65000', '10.0.0.5:65000'] } }).seedPeer.addrs).toHaveLength(2);
  });
});
