/** The scheduler's own AnnouncePeerResponse encoder decodes to exactly what proto-loader's encoder gives. */
import type * as grpc from '@grpc/grpc-js';
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
