/** The scheduler's AnnouncePeerRequest decoder gives exactly what proto-loader's gives, or hands the message to it. */
import type * as grpc from '@grpc/grpc-js';
import fc from 'fast-check';
import { schedulerService, type AnnouncePeerRequest } from '../../../services/proto';
import { decodeAnnouncePeerRequest, withRequestCodec } from '../../../services/scheduler/request-codec';

const method = schedulerService().AnnouncePeer as grpc.MethodDefinition<AnnouncePeerRequest, unknown>;
const generic = (bytes: Buffer): unknown => method.requestDeserialize(bytes);
const encode = (req: AnnouncePeerRequest): Buffer => method.requestSerialize(req);

/** Same value and the same key order at every level (what JSON.stringify shows). */
function expectSame(ours: unknown, theirs: unknown): void {
  expect(ours).toStrictEqual(theirs);
  expect(JSON.stringify(ours)).toBe(JSON.stringify(theirs));
}

const text = fc.oneof(fc.string({ maxLength: 20 }), fc.string({ unit: 'binary', maxLength: 50 }), fc.constantFrom('', '__proto__', 'constructor'));
const u32 = fc.oneof(fc.nat(), fc.constantFrom(0, 127, 128, 2 ** 28, 2 ** 31, 2 ** 32 - 1));
const u64 = fc.oneof(fc.maxSafeNat(), fc.constantFrom(0, 2 ** 32, 2 ** 53 - 1, 2 ** 60), fc.bigInt({ min: 0n, max: 2n ** 64n - 1n }).map(String));
const i64 = fc.oneof(fc.integer(), fc.constantFrom(-1, -(2 ** 40), 2 ** 52), fc.bigInt({ min: -(2n ** 63n), max: 2n ** 63n - 1n }).map(String));
const opt = <T>(a: fc.Arbitrary<T>): fc.Arbitrary<T | undefined> => fc.option(a, { nil: undefined });

const download = fc.record(
  {
    url: text,
    digest: text,
    range: fc.record({ start: u64, length: u64 }),
    type: fc.constant('STANDARD'),
    tag: text,
    application: text,
    priority: fc.constantFrom('LEVEL0', 'LEVEL1', 'LEVEL4', 'LEVEL6'),
    filteredQueryParams: fc.array(text, { maxLength: 3 }),
    requestHeader: fc.dictionary(text, text, { maxKeys: 3 }),
    pieceLength: u64,
    outputPath: text,
    timeoutMs: u64,
    disableBackToSource: fc.boolean(),
    needBackToSource: fc.boolean(),
    metadataOnly: fc.boolean(),
    remoteIp: text,
    overwrite: fc.boolean(),
    forceHardLink: fc.boolean(),
  },
  { requiredKeys: [] },
);
const piece = fc.record(
  { number: u32, parentId: text, offset: u64, length: u64, digest: text, trafficType: fc.constantFrom('BACK_TO_SOURCE', 'REMOTE_PEER', 'LOCAL_PEER'), costNs: u64, createdAtMs: i64 },
  { requiredKeys: [] },
);
const body = fc.oneof(
  fc.record({ registerPeerRequest: fc.record({ download: opt(download) }, { requiredKeys: [] }) }),
  fc.record({ downloadPeerStartedRequest: fc.constant({}) }),
  fc.record({ reschedulePeerRequest: fc.record({ candidateParentIds: fc.array(text, { maxLength: 4 }), description: text }, { requiredKeys: [] }) }),
  fc.record({ downloadPeerFinishedRequest: fc.record({ contentLength: u64, pieceCount: u32 }, { requiredKeys: [] }) }),
  fc.record({ downloadPieceFinishedRequest: fc.record({ piece: opt(piece) }, { requiredKeys: [] }) }),
  fc.record({ downloadPieceBackToSourceFinishedRequest: fc.record({ piece: opt(piece) }, { requiredKeys: [] }) }),
  // Members the fast path leaves to proto-loader.
  fc.record({ downloadPeerFailedRequest: fc.record({ description: text }, { requiredKeys: [] }) }),
  fc.record({ downloadPieceFailedRequest: fc.record({ pieceNumber: u32, parentId: text, temporary: fc.boolean() }, { requiredKeys: [] }) }),
  fc.constant({}),
);
const request = fc.tuple(fc.record({ hostId: text, taskId: text, peerId: text }, { requiredKeys: [] }), body).map(([ids, b]) => ({ ...ids, ...b }));

describe('decodeAnnouncePeerRequest', () => {
  test('any request proto-loader encodes: the same object as proto-loader decodes, or left to it', () => {
    let fast = 0;
    fc.assert(
      fc.property(request, (req) => {
        const bytes = encode(req);
        const ours = decodeAnnouncePeerRequest(bytes);
        if (ours === undefined) return;
        fast++;
        expectSame(ours, generic(bytes));
      }),
      { numRuns: 3000 },
    );
    // Most of them took the fast path (the others: range, failed/piece-failed members).
    expect(fast).toBeGreaterThan(1500);
  });

  test('damaged bytes: never a result where proto-loader fails, never a different one where it succeeds', () => {
    const damaged = fc.tuple(request, fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 4 }), fc.nat()).map(([req, edits, cut]) => {
      const bytes = Buffer.from(encode(req));
      for (const [at, value] of edits) if (bytes.length > 0) bytes[at % bytes.length] = value;
      return cut % 4 === 0 ? bytes.subarray(0, cut % (bytes.length + 1)) : bytes;
    });
    let fast = 0;
    fc.assert(
      fc.property(fc.oneof(damaged, fc.uint8Array({ maxLength: 64 }).map((a) => Buffer.from(a))), (bytes) => {
        let theirs: unknown;
        let failed = false;
        try {
          theirs = generic(bytes);
        } catch {
          failed = true;
        }
        const ours = decodeAnnouncePeerRequest(bytes);
        if (ours === undefined) return;
        fast++;
        expect(failed).toBe(false);
        expectSame(ours, theirs);
      }),
      { numRuns: 5000 },
    );
    // Damage inside strings and numbers leaves many messages well-formed: the fast path read them.
    expect(fast).toBeGreaterThan(250);
  });

  test('the messages of a download take the fast path', () => {
    const base = { hostId: '10.0.0.1-node', taskId: 'a'.repeat(64), peerId: 'peer-1' };
    const messages: AnnouncePeerRequest[] = [
      { ...base, registerPeerRequest: { download: { url: 'http://origin/blob', digest: 'sha256:' + 'b'.repeat(64), priority: 'LEVEL3', requestHeader: { authorization: 'Bearer x' }, filteredQueryParams: ['X-Sig'], pieceLength: 4 << 20, needBackToSource: true } } },
      { ...base, downloadPeerStartedRequest: {} },
      { ...base, downloadPieceFinishedRequest: { piece: { number: 7, parentId: 'peer-0', offset: 7 * (4 << 20), length: 4 << 20, digest: 'crc32:123', trafficType: 'REMOTE_PEER', costNs: 1_000_000, createdAtMs: Date.now() } } },
      { ...base, downloadPieceBackToSourceFinishedRequest: { piece: { number: 0, length: 4 << 20, trafficType: 'BACK_TO_SOURCE' } } },
      { ...base, reschedulePeerRequest: { candidateParentIds: ['peer-0'], description: 'slow' } },
      { ...base, downloadPeerFinishedRequest: { contentLength: 5 * 2 ** 32, pieceCount: 1280 } },
    ];
    for (const m of messages) {
      const bytes = encode(m);
      const ours = decodeAnnouncePeerRequest(bytes);
      expect(ours).toBeDefined();
      expectSame(ours, generic(bytes));
    }
  });

  test('what it leaves to proto-loader: other members, a range, a field twice, an unknown field, a map key __proto__', () => {
    const twice = Buffer.concat([encode({ hostId: 'a' }), encode({ hostId: 'b' })]);
    const unknown = Buffer.concat([encode({ hostId: 'a' }), Buffer.from([0x98, 0x06, 0x01])]); // field 99, varint
    const proto = encode({ registerPeerRequest: { download: { url: 'u', requestHeader: JSON.parse('{"__proto__":"x"}') as Record<string, string> } } });
    for (const bytes of [encode({ downloadPeerFailedRequest: { description: 'x' } }), encode({ registerPeerRequest: { download: { url: 'u', range: { start: 1, length: 2 } } } }), twice, unknown, proto]) {
      expect(decodeAnnouncePeerRequest(bytes)).toBeUndefined();
    }
    expect(proto.includes('__proto__')).toBe(true);
    // Through the definition: the generic decoder's answer for those.
    const def = withRequestCodec(schedulerService());
    const deserialize = (def.AnnouncePeer as grpc.MethodDefinition<unknown, unknown>).requestDeserialize;
    expectSame(deserialize(twice), generic(twice));
    expect(def.StatTask).toBe(schedulerService().StatTask);
    expect(def.AnnouncePeer.responseSerialize).toBe(schedulerService().AnnouncePeer.responseSerialize);
  });
});
