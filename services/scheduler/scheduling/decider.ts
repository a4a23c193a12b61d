/**
 * The decision for one peer that needs an answer (registered, rescheduled, or waiting and
 * something changed), in order:
 *  1. a seed peer (need_back_to_source, or a SUPER host) → origin;
 *  2. reschedules ≥ retryLimit → fail (FAILED_PRECONDITION);
 *  3. task known empty → empty;
 *  4. reschedules ≥ retryBackToSourceLimit and a back-to-source slot is free → origin;
 *  5. parents available (see parents.ts) → parents;
 *  6. no parent now: if data is on its way (seed triggered, a peer sent to the origin, or a
 *     holder of pieces the peer lacks is only busy) → wait; else trigger a seed peer
 *     (seeds.ts) → wait; else, no seed reachable, a back-to-source slot (backToSourceCount,
 *     normal peers only) → origin; else, back-to-source disabled and nobody fetching → fail;
 *     else wait.
 * The decider commits what it chose to the resource model (parent edges, under-served index,
 * seed trigger); turning the decision into a message is the caller's job.
 */
import { FailedPreconditionError, type DragonflyError } from '../../common/errors';
import type { Download } from '../../proto';
import { addEdge, removeInEdges, type Peer } from '../resource/model';
import { chooseParents, mayServeLater } from './parents';
import type { SeedTriggering } from './seeds';
import type { SchedulingSettings } from './settings';

export type Decision =
  | { readonly kind: 'parents'; readonly parents: readonly Peer[] }
  | { readonly kind: 'origin'; readonly reason: string }
  | { readonly kind: 'wait'; readonly reason: string }
  | { readonly kind: 'empty' }
  | { readonly kind: 'fail'; readonly error: DragonflyError };

/**
 * True when data for this peer is on its way (so waiting beats another origin fetch): a seed
 * trigger or an origin fetch is running, or a holder that could serve the peer is only busy.
 * Holders that have nothing the peer lacks do not count: after the origin died under the seed,
 * the peer itself (in the pool with its first pieces) and peers stuck with the same pieces
 * kept everyone waiting for data that no one was fetching. Bounded: a sample of the pool, as
 * in chooseParents.
 */
export function dataOnItsWay(peer: Peer, s: SchedulingSettings): boolean {
  const task = peer.task;
  if (task.seedTriggerPending || task.originPeers.size > 0) return true;
  return task.samplePool(Math.max(1, s.filterParentLimit)).some((holder) => mayServeLater(holder, peer));
}

/** Whether the peer may be sent to the origin: it allows it and a back-to-source slot is free. */
export function mayGoToOrigin(peer: Peer, request: Download | undefined, s: SchedulingSettings): boolean {
  if (request?.disableBackToSource) return false;
  return peer.task.normalOriginPeerCount() < s.backToSourceCount;
}

export interface DeciderOptions {
  readonly seeds: SeedTriggering;
  /** The register request of a peer (its back-to-source switch and its headers for a seed trigger). */
  readonly requestOf: (peer: Peer) => Download | undefined;
}

export class Decider {
  constructor(private readonly o: DeciderOptions) {}

  decide(peer: Peer, s: SchedulingSettings): Decision {
    const task = peer.task;
    removeInEdges(peer);
    task.waiting.delete(peer);
    task.underServed.delete(peer);
    if (peer.needBackToSource) return { kind: 'origin', reason: 'seed peer: fetch from the origin' };
    if (peer.retryCount >= s.retryLimit) {
      return { kind: 'fail', error: new FailedPreconditionError(`peer ${peer.id}: no parent after ${peer.retryCount} reschedules (retryLimit ${s.retryLimit})`) };
    }
    if (task.sizeScope === 'EMPTY') return { kind: 'empty' };
    const request = this.o.requestOf(peer);
    if (peer.retryCount >= s.retryBackToSourceLimit && mayGoToOrigin(peer, request, s)) {
      return { kind: 'origin', reason: `rescheduled ${peer.retryCount} times (retryBackToSourceLimit ${s.retryBackToSourceLimit})` };
    }
    if (task.contentLength !== undefined && task.poolSize + task.originPeers.size > 0) {
      const parents = chooseParents(peer, s);
      if (parents.length > 0) {
        for (const p of parents) addEdge(p, peer);
        if (parents.length < s.candidateParentLimit) task.underServed.add(peer);
        return { kind: 'parents', parents };
      }
    }
    // Nobody can serve this peer now.
    if (dataOnItsWay(peer, s)) return { kind: 'wait', reason: 'waiting for a parent that holds data' };
    if (this.o.seeds.trigger(task, request, s)) return { kind: 'wait', reason: 'a seed peer is fetching the task' };
    if (mayGoToOrigin(peer, request, s)) return { kind: 'origin', reason: 'no seed peer reachable' };
    if (request?.disableBackToSource && task.originPeers.size === 0) {
      return { kind: 'fail', error: new FailedPreconditionError(`task ${task.id}: no seed peer reachable and back-to-source is disabled`) };
    }
    return { kind: 'wait', reason: `back-to-source limit reached (backToSourceCount ${s.backToSourceCount})` };
  }
}
