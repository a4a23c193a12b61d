/**
 * Turns decisions into answers on peers' sessions and keeps them current: a peer is decided
 * when it registers or reschedules, waiting peers are decided again when something changes
 * (a parent appears, slots free up, the origin fetch settles) and every retryInterval, and
 * under-served children are offered a new parent as soon as one holds data.
 *
 * Such a top-up is pushed once per turn of the event loop (setImmediate), with the child's
 * parents as they are then: parents added by several events of the same turn go out in one
 * answer, and a child answered anyway in that turn (it rescheduled, say) gets no push, since
 * every normal_task_response carries all of the child's current parents.
 */
import { DragonflyError, FailedPreconditionError, InternalError } from '../../common/errors';
import type { Logger } from '../../common/logger';
import type { AnnouncePeerResponse, Peer as PeerProto } from '../../proto';
import { addEdge, removeEdge, removeInEdges, type AnswerKind, type Peer, type Task } from '../resource/model';
import { canPeerTransition, isReceived } from '../resource/state';
import type { SchedulerTrace } from '../tracing';
import type { WireShapes } from '../wire-shapes';
import type { Decider, Decision } from './decider';
import { isEligibleParent } from './parents';
import type { SchedulerEvents, SchedulingSettings } from './settings';
import { WaitTimers } from './wait-timers';

/** Children offered a newly available parent per event (keeps the hot path bounded). */
export const TOP_UP_BATCH = 16;


export interface PeerSchedulerOptions {
  readonly decider: Decider;
  readonly settings: () => SchedulingSettings;
  readonly wire: WireShapes;
  /** Whether the task is still held (a timer of a removed task does nothing). */
  readonly taskHeld: (task: Task) => boolean;
  readonly events: SchedulerEvents;
  readonly logger: Logger;
  readonly timers?: WaitTimers;
  /** Spans around decisions and their answers (issue 18). */
  readonly trace?: SchedulerTrace;
}

export class PeerScheduler {
  private readonly timers: WaitTimers;
  /** Children given an extra parent this turn, not answered since (bounded by the peers held). */
  private readonly pushes = new Set<Peer>();
  private flush: NodeJS.Immediate | undefined;

  constructor(private readonly o: PeerSchedulerOptions) {
    this.timers = o.timers ?? new WaitTimers();
  }

  /** Decides and sends the next answer for `peer`; a decision that fails the peer throws to the caller. */
  schedule(peer: Peer): void {
    const started = performance.now();
    try {
      const decideAndApply = (): void => this.apply(peer, this.o.decider.decide(peer, this.o.settings()));
      if (this.o.trace) this.o.trace.schedule(peer, decideAndApply); // telemetry: span around the decision
      else decideAndApply();
    } finally {
      this.o.events.scheduleDuration(performance.now() - started);
    }
  }

  /**
   * Schedules a peer other than the one whose message is being handled (or from a timer): its
   * errors end its own stream, never the caller's, and never escape into the event loop.
   */
  scheduleOther(peer: Peer): void {
    try {
      this.schedule(peer);
    } catch (err) {
      this.o.logger.warn({ peer: peer.id, err: (err as Error).message }, 'scheduling failed');
      this.failPeer(peer, err instanceof DragonflyError ? err : new InternalError(String(err)));
    }
  }

  private apply(peer: Peer, decision: Decision): void {
    switch (decision.kind) {
      case 'origin':
        peer.sentToOrigin = true;
        peer.task.originPeers.add(peer);
        this.o.events.backToSource();
        return this.send(peer, 'origin', { needBackToSourceResponse: { description: decision.reason } });
      case 'fail':
        return this.failPeer(peer, decision.error);
      case 'empty':
        if (peer.state === 'Pending') peer.transition('RegisterEmpty');
        return this.send(peer, 'empty', { emptyTaskResponse: {} });
      case 'parents':
        return this.sendParents(peer);
      case 'wait': {
        const task = peer.task;
        task.waiting.add(peer);
        this.timers.arm(task, this.o.settings().retryIntervalMs, (t) => {
          if (this.o.taskHeld(t)) this.wakeWaiting(t);
        });
        if (peer.lastAnswer === 'wait') return;
        return this.send(peer, 'wait', { waitResponse: { description: decision.reason } });
      }
    }
  }

  private sendParents(peer: Peer): void {
    const task = peer.task;
    if (peer.state === 'Pending') {
      const scope = task.sizeScope;
      peer.transition(scope === 'TINY' ? 'RegisterTiny' : scope === 'SMALL' ? 'RegisterSmall' : 'RegisterNormal');
    }
    const candidateParents: PeerProto[] = [];
    for (const p of peer.parents) candidateParents.push(this.o.wire.peer(p, false));
    this.send(peer, 'normal', { normalTaskResponse: { candidateParents, task: this.o.wire.task(task, peer.host) } });
  }

  private send(peer: Peer, kind: AnswerKind, response: AnnouncePeerResponse): void {
    peer.lastAnswer = kind;
    // This answer supersedes a top-up pushed later in the turn.
    if (this.pushes.size > 0) this.pushes.delete(peer);
    // telemetry; the details only when spans are recorded (an array and a join per answer otherwise)
    if (this.o.trace?.enabled) this.o.trace.decided(peer, kind, { parents: response.normalTaskResponse?.candidateParents?.map((p) => p.id ?? ''), description: response.needBackToSourceResponse?.description ?? response.waitResponse?.description });
    peer.session?.send(response);
  }

  /** The peer asked for new parents: whatever it was told last no longer stands. */
  forgetAnswer(peer: Peer): void {
    peer.lastAnswer = undefined;
  }

  /** Ends the peer's stream with `err` after taking it out of scheduling. */
  failPeer(peer: Peer, err: DragonflyError): void {
    if (canPeerTransition(peer.state, 'DownloadFailed')) peer.transition('DownloadFailed');
    this.detach(peer);
    const session = peer.session;
    peer.session = undefined;
    session?.fail(err);
  }

  /** Ends the stream of a peer the scheduler dropped. */
  closeSession(peer: Peer): void {
    const session = peer.session;
    peer.session = undefined;
    session?.fail(new FailedPreconditionError(`peer ${peer.id} was removed from the scheduler`));
  }

  /** Takes a peer that stopped downloading out of every scheduling index; rescues its children. */
  detach(peer: Peer): void {
    const task = peer.task;
    peer.sentToOrigin = false;
    task.removeFromPool(peer);
    task.originPeers.delete(peer);
    task.waiting.delete(peer);
    task.underServed.delete(peer);
    removeInEdges(peer);
    const orphans = [...peer.children];
    for (const c of orphans) removeEdge(peer, c);
    this.rescue(orphans);
  }

  /**
   * A peer started holding data (origin fetch started, first piece, or done): wake waiting
   * peers and offer it to under-served children as an extra parent.
   */
  becameParent(peer: Peer, slotsFreed = false): void {
    const task = peer.task;
    const added = task.addToPool(peer);
    if (added || slotsFreed || peer.state === 'Succeeded') this.wakeWaiting(task);
    if (task.underServed.size === 0) return;
    const s = this.o.settings();
    const batch: Peer[] = [];
    for (const child of task.underServed) {
      if (batch.length >= TOP_UP_BATCH) break;
      batch.push(child);
    }
    for (const child of batch) {
      // Rotate so the next event starts with other children.
      task.underServed.delete(child);
      if (child.parents.size >= s.candidateParentLimit || !(child.state === 'Running' || isReceived(child.state))) continue;
      if (isEligibleParent(peer, child, s.defaultUploadLimit) && addEdge(peer, child)) this.queuePush(child);
      if (child.parents.size < s.candidateParentLimit) task.underServed.add(child);
    }
  }

  /** Pushes the child's parents at the end of this turn of the event loop (see the top). */
  private queuePush(child: Peer): void {
    this.pushes.add(child);
    this.flush ??= setImmediate(() => this.flushPushes());
  }

  /** Sends the queued top-ups: each child its parents as they are now, if it still downloads. */
  flushPushes(): void {
    if (this.flush) clearImmediate(this.flush);
    this.flush = undefined;
    const children = [...this.pushes];
    this.pushes.clear();
    for (const child of children) {
      if (!child.session || child.parents.size === 0 || !(child.state === 'Running' || isReceived(child.state))) continue;
      try {
        this.sendParents(child);
      } catch (err) {
        this.failPeer(child, err instanceof DragonflyError ? err : new InternalError(String(err)));
      }
    }
  }

  /** Re-examines every waiting peer of the task. */
  wakeWaiting(task: Task): void {
    if (task.waiting.size === 0) return;
    for (const peer of [...task.waiting]) {
      if (!task.waiting.has(peer) || !peer.session) continue;
      this.scheduleOther(peer);
    }
  }

  /** Children that lost a parent: a new answer when none is left, else a top-up later. */
  rescue(children: readonly Peer[]): void {
    for (const child of children) {
      if (!(child.state === 'Running' || isReceived(child.state)) || !child.session) continue;
      if (child.parents.size === 0) this.scheduleOther(child);
      else child.task.underServed.add(child);
    }
  }

  /** The task is gone: its wait timer goes too. */
  forgetTask(task: Task): void {
    this.timers.cancel(task);
  }

  /** After garbage collection: timers of tasks no longer held go. */
  sweepTimers(): void {
    this.timers.retain((task) => this.o.taskHeld(task));
  }

  close(): void {
    this.timers.close();
    if (this.flush) clearImmediate(this.flush);
    this.flush = undefined;
    this.pushes.clear();
  }
}
