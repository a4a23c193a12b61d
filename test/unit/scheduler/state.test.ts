import { FailedPreconditionError } from '../../../services/common/errors';
import { canPeerTransition, canTaskTransition, nextPeerState, nextTaskState } from '../../../services/scheduler/resource/state';
import { makeHost, makeTask } from './helpers';
import { Peer } from '../../../services/scheduler/resource/model';

describe('peer state machine', () => {
  test('legal paths: pending → received → running → succeeded, and back-to-source', () => {
    let s = nextPeerState('Pending', 'RegisterNormal');
    expect(s).toBe('ReceivedNormal');
    s = nextPeerState(s, 'Download');
    expect(s).toBe('Running');
    expect(nextPeerState(s, 'DownloadSucceeded')).toBe('Succeeded');
    expect(nextPeerState('Pending', 'DownloadBackToSource')).toBe('BackToSource');
    expect(nextPeerState('BackToSource', 'DownloadFailed')).toBe('Failed');
    for (const e of ['RegisterEmpty', 'RegisterTiny', 'RegisterSmall'] as const) expect(canPeerTransition('Pending', e)).toBe(true);
  });

  test('any state but Leave can leave', () => {
    for (const s of ['Pending', 'ReceivedNormal', 'Running', 'BackToSource', 'Succeeded', 'Failed'] as const) expect(nextPeerState(s, 'Leave')).toBe('Leave');
    expect(() => nextPeerState('Leave', 'Leave')).toThrow(FailedPreconditionError);
  });

  test('illegal transitions throw FailedPrecondition', () => {
    expect(() => nextPeerState('Pending', 'Download')).toThrow(FailedPreconditionError);
    expect(() => nextPeerState('Pending', 'DownloadSucceeded')).toThrow(/not allowed in state Pending/);
    expect(() => nextPeerState('Succeeded', 'Download')).toThrow(FailedPreconditionError);
    expect(() => nextPeerState('Running', 'RegisterNormal')).toThrow(FailedPreconditionError);
    expect(() => nextPeerState('Failed', 'DownloadSucceeded')).toThrow(FailedPreconditionError);
    expect(() => nextPeerState('Leave', 'Download')).toThrow(FailedPreconditionError);
  });

  test('Peer.transition applies the machine', () => {
    const task = makeTask();
    const peer = new Peer('p', task, makeHost(), 0);
    peer.transition('RegisterNormal');
    peer.transition('Download');
    expect(peer.state).toBe('Running');
    expect(() => peer.transition('RegisterNormal')).toThrow(FailedPreconditionError);
    expect(peer.state).toBe('Running');
  });
});

describe('task state machine', () => {
  test('legal transitions', () => {
    expect(nextTaskState('Pending', 'Download')).toBe('Running');
    expect(nextTaskState('Running', 'DownloadSucceeded')).toBe('Succeeded');
    expect(nextTaskState('Running', 'DownloadFailed')).toBe('Failed');
    expect(nextTaskState('Failed', 'Download')).toBe('Running');
    expect(nextTaskState('Succeeded', 'Download')).toBe('Running');
    expect(nextTaskState('Failed', 'DownloadSucceeded')).toBe('Succeeded');
    for (const s of ['Pending', 'Running', 'Succeeded', 'Failed'] as const) expect(nextTaskState(s, 'Leave')).toBe('Leave');
  });

  test('illegal transitions throw FailedPrecondition', () => {
    expect(canTaskTransition('Pending', 'DownloadSucceeded')).toBe(false);
    expect(() => nextTaskState('Pending', 'DownloadFailed')).toThrow(FailedPreconditionError);
    expect(() => nextTaskState('Running', 'Download')).toThrow(FailedPreconditionError);
    expect(() => nextTaskState('Succeeded', 'DownloadFailed')).toThrow(FailedPreconditionError);
  });

  test('size scope follows content length and piece count', () => {
    const task = makeTask(3);
    expect(task.sizeScope).toBe('NORMAL');
    expect(makeTask(1).sizeScope).toBe('SMALL');
    const t = makeTask(0);
    expect(t.sizeScope).toBe('EMPTY');
  });
});
