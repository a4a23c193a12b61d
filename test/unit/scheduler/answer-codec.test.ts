/** The scheduler's own AnnouncePeerResponse encoder decodes to exactly what proto-loader's encoder gives. */
import type * as grpc from '@grpc/grpc-js';
import fc from 'fast-check';
import { schedulerService, type AnnouncePeerResponse } from '../../../services/proto';
import { AnnouncePeerResponseCodec, withAnswerCodec } from '../../../services/scheduler/answer-codec';

const method = schedulerService().AnnouncePeer as grpc.MethodDefinition<unknown, AnnouncePeerResponse>;
const decode = (bytes: Buffer): unknown => method.responseDeserialize(bytes);
const codec = new AnnouncePeerResponseCodec();

const host = (n: number, type: 'NORMAL_HOST' | 'SUPER_HOST' = 'NORMAL_HOST') => ({
  id: `10.0.0.${n}-node${n}`,
  type,
  hostname: `node${n}`,
  ip: `10.0.0.${n}`,
  port: 65000 + n,
  downloadPort: 65002,
  network: { idc: n % 2 ? 'idc-a' : '', location: 'cn|sh|z1' },
});

const task = {
  id: 'a'.repeat(64),
  type: 'STANDARD' as const,
  url: 'http://origin/blob?x=1',
  digest: 'sha256:' + 'b'.repeat(64),
  contentLength: 5 * 2 ** 32 + 7,
  pieceCount: 100,
  pieceLength: 4 * 2 ** 20,
  sizeScope: 'NORMAL' as const,
  state: 'Running',
  peerCount: 12,
  hasAvailablePeer: true,
  responseHeader: { etag: '"x"', 'content-type': 'application/octet-stream' },
};

const cases: [string, AnnouncePeerResponse][] = [
  ['wait', { waitResponse: { description: 'a seed peer is fetching the task' } }],
  ['origin', { needBackToSourceResponse: { description: 'no seed peer reachable' } }],
  ['empty', { emptyTaskResponse: {} }],
  ['no parents, no task', { normalTaskResponse: { candidateParents: [] } }],
  ['a task with empty optionals, no header, unknown size', { normalTaskResponse: { candidateParents: [], task: { id: 't', type: 'STANDARD', url: 'http://o/x', digest: '', tag: '', contentLength: 0, sizeScope: 'UNKNOW', state: 'Pending', peerCount: 0, hasAvailablePeer: false, responseHeader: {} } } }],
  ['a task with a length given as a string (generic path)', { normalTaskResponse: { candidateParents: [], task: { id: 't', url: 'http://o/x', contentLength: '123456789012', pieceLength: '4194304', sizeScope: 'SMALL' } } }],
  [
    'parents of every kind',
    {
      normalTaskResponse: {
        candidateParents: [
          { id: 'seed-peer', priority: 'LEVEL0', state: 'BackToSource', host: host(1, 'SUPER_HOST'), needBackToSource: true, finishedPieceCount: 0 },
          { id: 'p2', priority: 'LEVEL3', state: 'Running', host: host(2), needBackToSource: false, finishedPieceCount: 2 ** 31 + 5 },
          { id: '', priority: 'LEVEL6', state: '', host: host(3), needBackToSource: false, finishedPieceCount: 1 },
          // Not the candidate form (pieces): the generic path.
          { id: 'full', priority: 'LEVEL1', state: 'Succeeded', host: host(4), pieces: [{ number: 3, length: 10 }], finishedPieceCount: 100 },
          // An unknown priority name: left to the generic encoder to judge.
          { id: 'odd', priority: 'LEVEL9' as never, state: 'Running', host: host(5) },
        ],
        task,
      },
    },
  ],
];

describe('AnnouncePeerResponseCodec', () => {
  test.each(cases.filter(([name]) => name !== 'parents of every kind'))('%s: same message as proto-loader', (_name, message) => {
    expect(decode(codec.encode(message))).toEqual(decode(method.responseSerialize(message)));
  });

  test('candidate parents: same message as proto-loader, hosts encoded once and reused', () => {
    const [, message] = cases[cases.length - 1];
    const valid = { normalTaskResponse: { ...message.normalTaskResponse, candidateParents: message.normalTaskResponse?.candidateParents?.slice(0, 4) } };
    const ours = decode(codec.encode(valid));
    expect(ours).toEqual(decode(method.responseSerialize(valid)));
    expect(ours).toMatchObject({ response: 'normalTaskResponse', normalTaskResponse: { task: { contentLength: task.contentLength, responseHeader: task.responseHeader } } });
    // The same host objects again (as the wire shapes cache them): identical bytes.
    expect(codec.encode(valid).equals(codec.encode(valid))).toBe(true);
  });

  test('candidates not in the candidate form (pieces, an unknown priority name) take the generic path, same result', () => {
    const [, message] = cases[cases.length - 1];
    expect(message.normalTaskResponse?.candidateParents).toHaveLength(5);
    expect(decode(codec.encode(message))).toEqual(decode(method.responseSerialize(message)));
  });

  test('withAnswerCodec swaps only the AnnouncePeer response encoder', () => {
    const base = schedulerService();
    const def = withAnswerCodec(base);
    expect(Object.keys(def).sort()).toEqual(Object.keys(base).sort());
    expect(def.StatTask).toBe(base.StatTask);
    expect(def.AnnouncePeer.requestDeserialize).toBe(base.AnnouncePeer.requestDeserialize);
    expect(def.AnnouncePeer.responseSerialize).not.toBe(base.AnnouncePeer.responseSerialize);
  });
});

describe('AnnouncePeerResponseCodec direct path (one buffer, sizes first)', () => {
  // Strings of every kind: ASCII, multi-byte, lone surrogates (protobufjs writes short strings
  // with its own UTF-8 writer), short and longer than its 40-character switch.
  const text = fc.oneof(fc.string({ unit: 'binary', maxLength: 60 }), fc.string({ unit: 'grapheme-ascii', maxLength: 60 }), fc.constantFrom('', 'a'.repeat(39), 'b'.repeat(40), 'é'.repeat(45)));
  const count = fc.oneof(fc.constant(undefined), fc.nat(), fc.constantFrom(0, 127, 128, 2 ** 31, 2 ** 32 - 1, 2 ** 32, -1, 1.5, Number.MAX_SAFE_INTEGER));
  const length = fc.oneof(fc.constant(undefined), fc.maxSafeNat(), fc.constantFrom(0, 2 ** 32, 5 * 2 ** 32 + 7, -3, 0.5, 2 ** 60));
  const hostArb = fc.record({ id: text, type: fc.constantFrom('NORMAL_HOST', 'SUPER_HOST'), hostname: text, ip: text, port: fc.integer({ min: 0, max: 65535 }), downloadPort: fc.integer({ min: 0, max: 65535 }), network: fc.record({ idc: text, location: text }) });
  const parentArb = fc.record(
    {
      id: text,
      priority: fc.constantFrom('LEVEL0', 'LEVEL1', 'LEVEL3', 'LEVEL6', 'LEVEL9'),
      state: text,
      host: hostArb,
      needBackToSource: fc.boolean(),
      finishedPieceCount: count,
    },
    { requiredKeys: ['host'] },
  );
  const taskArb = fc.record(
    {
      id: text,
      type: fc.constant('STANDARD'),
      url: text,
      digest: fc.option(text, { nil: undefined }),
      tag: fc.option(text, { nil: undefined }),
      application: fc.option(text, { nil: undefined }),
      contentLength: length,
      pieceCount: count,
      pieceLength: length,
      sizeScope: fc.constantFrom('NORMAL', 'SMALL', 'TINY', 'EMPTY', 'UNKNOW'),
      state: text,
      peerCount: count,
      hasAvailablePeer: fc.boolean(),
      responseHeader: fc.dictionary(text, text, { maxKeys: 4 }),
    },
    { requiredKeys: [] },
  );
  const answerArb = fc.record({ candidateParents: fc.array(parentArb, { maxLength: 6 }), task: fc.option(taskArb, { nil: undefined }) }, { requiredKeys: ['candidateParents'] });

  test('the same bytes as the Writer path, and the same message as proto-loader, for any answer with parents', () => {
    fc.assert(
      fc.property(answerArb, (normal) => {
        const message = { normalTaskResponse: normal } as AnnouncePeerResponse;
        let expected: Buffer;
        try {
          expected = codec.withWriter(message.normalTaskResponse!);
        } catch {
          // What the Writer path refuses, encode refuses too (the direct path never takes it).
          expect(() => codec.encode(message)).toThrow();
          return;
        }
        const ours = codec.encode(message);
        expect(ours.equals(expected)).toBe(true);
        // Beside proto-loader, for what the direct path takes (the Writer path's own
        // differences on out-of-range numbers predate it and are not the scheduler's values).
        if (!(codec as unknown as { direct(n: unknown): Buffer | undefined }).direct(normal)) return;
        let reference: Buffer | undefined;
        try {
          reference = method.responseSerialize(message);
        } catch {
          return;
        }
        expect(decode(ours)).toEqual(decode(reference));
      }),
      { numRuns: 2000 },
    );
  });

  test('an answer of the scheduler\'s shape (candidates, task, header) takes the direct path', () => {
    const [, message] = cases[cases.length - 1];
    // The first three candidates are in the candidate form.
    const normal = { ...message.normalTaskResponse, candidateParents: message.normalTaskResponse?.candidateParents?.slice(0, 3) };
    const direct = (codec as unknown as { direct(n: unknown): Buffer | undefined }).direct(normal);
    expect(direct).toBeInstanceOf(Buffer);
    expect(direct!.equals(codec.withWriter(normal))).toBe(true);
  });
});
