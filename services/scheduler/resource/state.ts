/**
 * Peer and task state machines (the upstream scheduler's FSMs). Illegal transitions throw a
 * FailedPreconditionError naming the event and both states, so a confused client gets
 * FAILED_PRECONDITION instead of silently corrupting the DAG.
 */
import { FailedPreconditionError } from '../../common/errors';

export type PeerState =
  | 'Pending'
  | 'ReceivedEmpty'
  | 'ReceivedTiny'
  | 'ReceivedSmall'
  | 'ReceivedNormal'
  | 'Running'
  | 'BackToSource'
  | 'Succeeded'
  | 'Failed'
  | 'Leave';

export type PeerEvent =
  | 'RegisterEmpty'
  | 'RegisterTiny'
  | 'RegisterSmall'
  | 'RegisterNormal'
  | 'Download'
  | 'DownloadBackToSource'
  | 'DownloadSucceeded'
  | 'DownloadFailed'
  | 'Leave';

const RECEIVED: readonly PeerState[] = ['ReceivedEmpty', 'ReceivedTiny', 'ReceivedSmall', 'ReceivedNormal'];
const ALL_PEER_STATES: readonly PeerState[] = ['Pending', ...RECEIVED, 'Running', 'BackToSource', 'Succeeded', 'Failed', 'Leave'];

const PEER_TRANSITIONS: Record<PeerEvent, { from: readonly PeerState[]; to: PeerState }> = {
  RegisterEmpty: { from: ['Pending'], to: 'ReceivedEmpty' },
  RegisterTiny: { from: ['Pending'], to: 'ReceivedTiny' },
  RegisterSmall: { from: ['Pending'], to: 'ReceivedSmall' },
  RegisterNormal: { from: ['Pending'], to: 'ReceivedNormal' },
  Download: { from: RECEIVED, to: 'Running' },
  DownloadBackToSource: { from: ['Pending', ...RECEIVED, 'Running'], to: 'BackToSource' },
  DownloadSucceeded: { from: [...RECEIVED, 'Running', 'BackToSource'], to: 'Succeeded' },
  DownloadFailed: { from: ['Pending', ...RECEIVED, 'Running', 'BackToSource'], to: 'Failed' },
  Leave: { from: ALL_PEER_STATES.filter((s) => s !== 'Leave'), to: 'Leave' },
};

export function isReceived(state: PeerState): boolean {
  return RECEIVED.includes(state);
}

export function canPeerTransition(from: PeerState, event: PeerEvent): boolean {
  return PEER_TRANSITIONS[event].from.includes(from);
}

/** The state after `event`, or a FailedPreconditionError. */
export function nextPeerState(from: PeerState, event: PeerEvent): PeerState {
  const t = PEER_TRANSITIONS[event];
  if (!t.from.includes(from)) throw new FailedPreconditionError(`peer event ${event} is not allowed in state ${from}`);
  return t.to;
}

export type TaskState = 'Pending' | 'Running' | 'Succeeded' | 'Failed' | 'Leave';
export type TaskEvent = 'Download' | 'DownloadSucceeded' | 'DownloadFailed' | 'Leave';

const TASK_TRANSITIONS: Record<TaskEvent, { from: readonly TaskState[]; to: TaskState }> = {
  Download: { from: ['Pending', 'Succeeded', 'Failed', 'Leave'], to: 'Running' },
  DownloadSucceeded: { from: ['Running', 'Failed', 'Leave'], to: 'Succeeded' },
  DownloadFailed: { from: ['Running'], to: 'Failed' },
  Leave: { from: ['Pending', 'Running', 'Succeeded', 'Failed'], to: 'Leave' },
};

export function canTaskTransition(from: TaskState, event: TaskEvent): boolean {
  return TASK_TRANSITIONS[event].from.includes(from);
}

export function nextTaskState(from: TaskState, event: TaskEvent): TaskState {
  const t = TASK_TRANSITIONS[event];
  if (!t.from.includes(from)) throw new FailedPreconditionError(`task event ${event} is not allowed in state ${from}`);
  return t.to;
}
