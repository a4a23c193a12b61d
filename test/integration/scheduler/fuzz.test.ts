/**
 * Property-based fuzzing (fast-check) of the scheduler's AnnouncePeer stream and AnnounceHost
 * over real gRPC: thousands of random and hostile messages — out-of-range numbers, huge and
 * garbage strings, foreign host and peer ids, valid registrations followed by nonsense, raw
 * bytes that are not protobuf at all — from two caller addresses. Throughout, a probe keeps
 * asking the gRPC health check; at the end the scheduler still schedules an honest peer, its
 * tables are within their caps, and the process RSS stayed under the asserted bound.
 */
import * as grpc from '@grpc/grpc-js';
import fc from 'fast-check';
import { taskIdOf } from '../../../services/common/ids';
import type { AnnouncePeerRequest } from '../../../services/proto';
import type { AnnounceHostRequest } from '../../../services/proto/gen/scheduler/v2/AnnounceHostRequest';
import { ATTACKER_IP, HONEST_IP, MiB, PeerStream, announce, healthStatus, honestPeerIsScheduled, hostOf, startTarget, type Target } from './hostile';

jest.setTimeout(240_000);

/**
 * RSS, and the bytes held in ArrayBuffers, may grow by at most this much over the whole run.
 * (One bitset sized by piece number 2^32-1 is 512 MiB of ArrayBuffer, most of it never
 * touched, so RSS alone would not see it.)
 */
const RSS_GROWTH_LIMIT = 256 * MiB;
/** A health probe slower than this means something stalled the event loop. */
const PROBE_LATENCY_LIMIT_MS = 1500;
const URLS = Array.from({ length: 6 }, (_, i) => `http://origin.test/fuzz-${i}.bin`);
const HOSTS = { honest: `${HONEST_IP}-fuzz-honest`, attacker: `${ATTACKER_IP}-fuzz-attacker`, victim: `${HONEST_IP}-fuzz-victim` };
const PEER_IDS = Array.from({ length: 8 }, (_, i) => `fuzz-peer-${i}`);

const hostileNumber = fc.oneof(
  fc.constantFrom(0, 1, -1, 2 ** 31 - 1, 2 ** 32 - 1, 2 ** 40, 2 ** 53 - 1, 4 * MiB, 64 * MiB, 64 * MiB + 1, 4 * MiB - 1),
  fc.integer(),
  fc.nat({ max: 2 ** 32 - 1 }),
  fc.maxSafeNat(),
);
/** uint32 fields: protobuf would wrap anything else before the scheduler sees it. */
const hostileU32 = fc.oneof(fc.constantFrom(0, 1, 2, 3, 2 ** 16, 262_143, 262_144, 2 ** 31, 2 ** 32 - 1), fc.nat({ max: 2 ** 32 - 1 }));
const hostileText = fc.oneof(
  fc.string({ maxLength: 40 }),
  fc.string({ unit: 'binary', maxLength: 24 }),
  fc.constantFrom('', '../../../etc/passwd', 'http://', 'http://[::1', '\u0000', 'a'.repeat(600), 'x'.repeat(20_000), HOSTS.victim, HOSTS.honest, ...PEER_IDS),
);
const headers = fc.dictionary(fc.string({ minLength: 1, maxLength: 20 }), fc.oneof(fc.string({ maxLength: 40 }), fc.constant('v'.repeat(70_000))), { maxKeys: 4 });
const url = fc.oneof(fc.constantFrom(...URLS), fc.webUrl(), hostileText, fc.constant(`http://registry.test/v2/a/blobs/sha256:${'c'.repeat(64)}`));
const download = fc.record(
  {
    url,
    digest: fc.oneof(hostileText, fc.constant(`sha256:${'d'.repeat(64)}`)),
    tag: hostileText,
    application: hostileText,
    filteredQueryParams: fc.array(hostileText, { maxLength: 4 }),
    requestHeader: headers,
    pieceLength: hostileNumber,
    needBackToSource: fc.boolean(),
    disableBackToSource: fc.boolean(),
  },
  { requiredKeys: ['url'] },
);
const piece = fc.record({
  number: hostileU32,
  parentId: hostileText,
  offset: hostileNumber,
  length: hostileNumber,
  digest: hostileText,
  trafficType: fc.constantFrom('REMOTE_PEER', 'LOCAL_PEER', 'BACK_TO_SOURCE'),
  costNs: hostileNumber,
});
const body: fc.Arbitrary<Partial<AnnouncePeerRequest>> = fc.oneof(
  download.map((d) => ({ registerPeerRequest: { download: d } })),
  fc.constant({ downloadPeerStartedRequest: {} }),
  fc.record({ contentLength: hostileNumber, pieceLength: hostileNumber, responseHeader: headers }).map((r) => ({ downloadPeerBackToSourceStartedRequest: r })),
  fc.record({ candidateParentIds: fc.array(hostileText, { maxLength: 50 }), description: hostileText }).map((r) => ({ reschedulePeerRequest: r })),
  fc.record({ contentLength: hostileNumber, pieceCount: hostileU32 }).map((r) => ({ downloadPeerFinishedRequest: r })),
  fc.record({ contentLength: hostileNumber, pieceCount: hostileU32, pieceLength: hostileNumber, responseHeader: headers }).map((r) => ({ downloadPeerBackToSourceFinishedRequest: r })),
  hostileText.map((description) => ({ downloadPeerFailedRequest: { description } })),
  hostileText.map((description) => ({ downloadPeerBackToSourceFailedRequest: { description } })),
  piece.map((p) => ({ downloadPieceFinishedRequest: { piece: p } })),
  piece.map((p) => ({ downloadPieceBackToSourceFinishedRequest: { piece: p } })),
  fc.record({ pieceNumber: hostileU32, parentId: hostileText, temporary: fc.boolean() }).map((r) => ({ downloadPieceFailedRequest: r })),
  hostileU32.map((pieceNumber) => ({ downloadPieceBackToSourceFailedRequest: { pieceNumber } })),
  fc.constant({}),
);
const envelope = fc.record({
  hostId: fc.oneof(fc.constantFrom(HOSTS.attacker, HOSTS.honest, HOSTS.victim), hostileText),
  taskId: fc.oneof(fc.constantFrom(...URLS.map((u) => taskIdOf({ url: u }))), hostileText),
  peerId: fc.oneof(fc.constantFrom(...PEER_IDS), hostileText),
});
const message = fc.tuple(envelope, body).map(([e, b]): AnnouncePeerRequest => ({ ...e, ...b }));

/** One stream: from which address, optionally a valid registration first (to reach deeper states), then the messages. */
const conversation = fc.record({
  from: fc.constantFrom<'honest' | 'attacker'>('honest', 'attacker'),
  registerFirst: fc.option(fc.tuple(fc.nat({ max: URLS.length - 1 }), fc.constantFrom(...PEER_IDS), fc.boolean()), { nil: undefined }),
  messages: fc.array(message, { minLength: 1, maxLength: 12 }),
  hangUp: fc.constantFrom('end', 'cancel', 'leave-open'),
});

const hostileHost: fc.Arbitrary<AnnounceHostRequest> = fc.record({
  host: fc.record({
    id: fc.oneof(fc.constantFrom(HOSTS.attacker, HOSTS.honest, HOSTS.victim), hostileText),
    type: fc.constantFrom('NORMAL_HOST', 'SUPER_HOST'),
    hostname: hostileText,
    ip: fc.oneof(fc.constantFrom(HONEST_IP, ATTACKER_IP, '10.0.0.1', '::ffff:127.0.0.1'), fc.ipV4(), fc.ipV6(), hostileText),
    port: fc.oneof(fc.integer({ min: -1, max: 70_000 }), fc.constant(0)),
    downloadPort: fc.integer({ min: -1, max: 70_000 }),
    network: fc.record({ idc: hostileText, location: hostileText, maxTxBandwidth: hostileNumber, txBandwidth: hostileNumber }),
    concurrentUploadLimit: hostileU32,
    concurrentUploadCount: hostileU32,
    uploadCount: hostileNumber,
    uploadFailedCount: hostileNumber,
  }),
  intervalMs: hostileNumber,
});

describe('scheduler fuzzed over gRPC', () => {
  let target: Target;
  let rawClient: grpc.Client;
  let probe: NodeJS.Timeout | undefined;
  let probes = 0;
  const probeFailures: string[] = [];
  let rssBaseline = 0;
  let rssPeak = 0;
  let buffersBaseline = 0;
  let buffersPeak = 0;
  let slowestProbeMs = 0;
  let messagesSent = 0;
  const openStreams: PeerStream[] = [];

  const sampleRss = (): void => {
    const m = process.memoryUsage();
    rssPeak = Math.max(rssPeak, m.rss);
    buffersPeak = Math.max(buffersPeak, m.arrayBuffers);
  };

  beforeAll(async () => {
    target = await startTarget({ scheduler: { retryInterval: '50ms' } });
    for (const [from, id] of [
      ['honest', HOSTS.honest],
      ['attacker', HOSTS.attacker],
      ['honest', HOSTS.victim],
    ] as const) {
      const { err } = await announce(target[from], hostOf(id, from === 'honest' ? HONEST_IP : ATTACKER_IP), 600_000);
      expect(err).toBeUndefined();
    }
    rawClient = new grpc.Client(`[${ATTACKER_IP}]:${target.scheduler.port}`, grpc.credentials.createInsecure());
    global.gc?.();
    rssBaseline = process.memoryUsage().rss;
    rssPeak = rssBaseline;
    buffersBaseline = process.memoryUsage().arrayBuffers;
    buffersPeak = buffersBaseline;
    const tick = (): void => {
      probe = setTimeout(() => {
        sampleRss();
        const sent = performance.now();
        healthStatus(target.scheduler.port)
          .then((s) => {
            probes++;
            slowestProbeMs = Math.max(slowestProbeMs, performance.now() - sent);
            if (s !== 'SERVING') probeFailures.push(s);
          })
          .catch((err: Error) => probeFailures.push(err.message))
          .finally(() => {
            if (probe) tick();
          });
      }, 100);
    };
    tick();
  });

  afterAll(async () => {
    const p = probe;
    probe = undefined;
    clearTimeout(p);
    for (const s of openStreams) s.close();
    rawClient?.close();
    await target?.close();
  });

  test('AnnouncePeer: thousands of random and hostile messages', async () => {
    await fc.assert(
      fc.asyncProperty(conversation, async (c) => {
        const s = new PeerStream(target[c.from]);
        const hostId = c.from === 'honest' ? HOSTS.honest : HOSTS.attacker;
        let registered: string | undefined;
        if (c.registerFirst) {
          const [u, peerId, seed] = c.registerFirst;
          registered = peerId;
          s.write({ hostId, taskId: taskIdOf({ url: URLS[u] }), peerId, registerPeerRequest: { download: { url: URLS[u], needBackToSource: seed } } });
          messagesSent++;
        }
        for (const m of c.messages) {
          // After a registration, messages naming a pool peer id speak for the registered peer,
          // so hostile numbers reach the piece and metadata handlers, not only the id check.
          s.write(registered && PEER_IDS.includes(m.peerId ?? '') ? { ...m, peerId: registered } : m);
          messagesSent++;
        }
        if (c.hangUp === 'end') s.close();
        else if (c.hangUp === 'cancel') s.stream.cancel();
        else openStreams.push(s);
        // Every refusal is a status the client can act on, never a crash or UNKNOWN.
        await s.until(() => s.error !== undefined || s.answers.length > 0 || s.ended, 2000).catch(() => undefined);
        if (s.error && s.error.code !== grpc.status.CANCELLED) {
          expect([
            grpc.status.INVALID_ARGUMENT,
            grpc.status.NOT_FOUND,
            grpc.status.PERMISSION_DENIED,
            grpc.status.FAILED_PRECONDITION,
            grpc.status.RESOURCE_EXHAUSTED,
          ]).toContain(s.error.code);
        }
        if (openStreams.length > 50) openStreams.splice(0, 25).forEach((o) => o.close());
        sampleRss();
      }),
      { numRuns: 600, seed: Number(process.env.FUZZ_SEED ?? Date.now() % 2 ** 31) },
    );
    expect(messagesSent).toBeGreaterThan(2000);
  });

  test('AnnouncePeer: raw bytes that are not (valid) protobuf', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(fc.uint8Array({ maxLength: 512 }), { minLength: 1, maxLength: 6 }), async (frames) => {
        const call = rawClient.makeBidiStreamRequest(
          '/scheduler.v2.Scheduler/AnnouncePeer',
          (b: Uint8Array) => Buffer.from(b),
          (b: Buffer) => b,
        );
        const done = new Promise<void>((resolve) => {
          call.on('error', () => resolve());
          call.on('end', () => resolve());
          call.on('data', () => undefined);
          setTimeout(resolve, 1000).unref();
        });
        for (const f of frames) call.write(f);
        call.end();
        messagesSent += frames.length;
        await done;
      }),
      { numRuns: 300 },
    );
  });

  test('AnnounceHost: random and hostile hosts from both addresses', async () => {
    await fc.assert(
      fc.asyncProperty(hostileHost, fc.constantFrom<'honest' | 'attacker'>('honest', 'attacker'), async (req, from) => {
        const client = target[from];
        // The honest address announces its own host with its own address: a host whose owner
        // itself declared another address may rightly be taken back from that address, which
        // is the squatter rule, not a takeover.
        if (from === 'honest' && req.host?.id === HOSTS.honest) req = { ...req, host: { ...req.host, ip: HONEST_IP } };
        const err = await new Promise<grpc.ServiceError | null>((resolve) => client.AnnounceHost(req, { deadline: Date.now() + 5000 }, (e) => resolve(e)));
        messagesSent++;
        if (err) expect([grpc.status.INVALID_ARGUMENT, grpc.status.PERMISSION_DENIED, grpc.status.RESOURCE_EXHAUSTED, grpc.status.INTERNAL]).toContain(err.code);
        // INTERNAL only for a request the client library itself could not encode.
        if (err?.code === grpc.status.INTERNAL) expect(err.details).toMatch(/serializ|encode|invalid|out of range/i);
        sampleRss();
      }),
      { numRuns: 1500 },
    );
  });

  test('afterwards: health answered throughout, honest peers scheduled, tables bounded, RSS under the bound', async () => {
    expect(probeFailures).toEqual([]);
    expect(probes).toBeGreaterThan(10);
    expect(slowestProbeMs).toBeLessThan(PROBE_LATENCY_LIMIT_MS);
    expect(await healthStatus(target.scheduler.port)).toBe('SERVING');
    // The honest hosts were never taken over by the fuzzer's announces from ::1.
    expect(target.scheduler.service.store.hosts.get(HOSTS.honest)?.owner).toBe(HONEST_IP);
    expect(await honestPeerIsScheduled(target, HOSTS.honest)).toMatch(/Response$/);
    expect(await honestPeerIsScheduled(target)).toMatch(/Response$/);
    const { store, limits } = target.scheduler.service;
    expect(store.hosts.size).toBeLessThanOrEqual(limits.hosts);
    expect(store.tasks.size).toBeLessThanOrEqual(limits.tasks);
    for (const task of store.tasks.values()) {
      expect(task.pieceCount).toBeLessThanOrEqual(262_144);
      expect(task.peers.size).toBeLessThanOrEqual(limits.peersPerTask);
    }
    for (const peer of store.peers.values()) expect(peer.blockedCount).toBeLessThanOrEqual(limits.peersPerTask);
    sampleRss();
    const mib = (n: number): number => Math.round(n / MiB);
    console.log(
      `fuzz: ${messagesSent} messages, ${probes} health probes (slowest ${Math.round(slowestProbeMs)} ms), RSS ${mib(rssBaseline)} → peak ${mib(rssPeak)} MiB, ` +
        `ArrayBuffers ${mib(buffersBaseline)} → peak ${mib(buffersPeak)} MiB (bound +${mib(RSS_GROWTH_LIMIT)} MiB)`,
    );
    expect(rssPeak - rssBaseline).toBeLessThan(RSS_GROWTH_LIMIT);
    expect(buffersPeak - buffersBaseline).toBeLessThan(RSS_GROWTH_LIMIT);
  });
});
