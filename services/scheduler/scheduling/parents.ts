/**
 * Parent choice for one child peer: filter a bounded sample of the task's parent pool, score
 * what is left, keep the best `candidateParentLimit`.
 *
 * Filter (a candidate is dropped when any holds):
 *   same peer or same host as the child; state not Running / BackToSource / Succeeded;
 *   holds no piece the child lacks (a back-to-source peer counts as holding everything it
 *   will fetch; a running peer is compared bitset against bitset, so in-flight parents
 *   qualify as soon as they hold one piece the child lacks); blocked for this child; host
 *   disable_shared; no free upload slot; slow by its piece costs (kept as a last resort
 *   when nothing else is left); the edge would close a cycle.
 *
 * Score, each term in [0, 1]:
 *   score = 0.40 · load + 0.20 · pieces + 0.20 · hostType + 0.12 · idc + 0.08 · location
 *   load     = free upload slots / upload limit of the parent's host
 *   pieces   = parent's finished pieces / task piece count (1 once it succeeded)
 *   hostType = 1 for a seed peer while it is fetching (BackToSource / Running), 0.5 for a
 *              normal peer, 0 for a seed that is done (spare the seed once peers hold data)
 *   idc      = 1 when both hosts name the same non-empty IDC
 *   location = shared leading "|"-separated location elements / 5 (capped at 1)
 *
 * Cost: O(filterParentLimit + origin peers) per decision, independent of the task's peer count.
 */
import { canAddEdge, type Peer } from '../resource/model';

export interface ParentChoiceOptions {
  readonly candidateParentLimit: number;
  readonly filterParentLimit: number;
  /** Upload limit for hosts that announced none. */
  readonly defaultUploadLimit: number;
  readonly random?: () => number;
}

export const SCORE_WEIGHTS = { load: 0.4, pieces: 0.2, hostType: 0.2, idc: 0.12, location: 0.08 } as const;

const MAX_LOCATION_ELEMENTS = 5;

export function idcAffinity(a: string, b: string): number {
  return a !== '' && a === b ? 1 : 0;
}

export function locationAffinity(a: string, b: string): number {
  if (a === '' || b === '') return 0;
  if (a === b) return 1;
  return locationPartsAffinity(a.split('|'), b.split('|'));
}

function locationPartsAffinity(x: readonly string[], y: readonly string[]): number {
  if (x.length === 0 || y.length === 0) return 0;
  let same = 0;
  while (same < x.length && same < y.length && same < MAX_LOCATION_ELEMENTS && x[same] === y[same]) same++;
  if (same === x.length && same === y.length) return 1;
  return same / MAX_LOCATION_ELEMENTS;
}

function hostTypeScore(parent: Peer): number {
  if (!parent.isSeed) return 0.5;
  return parent.state === 'BackToSource' || parent.state === 'Running' ? 1 : 0;
}

/** Whether the parent holds (or, going to the origin, will hold) a piece the child lacks. */
export function holdsPiecesChildLacks(parent: Peer, child: Peer): boolean {
  const total = parent.task.pieceCount;
  if (parent.state === 'Succeeded' || parent.state === 'BackToSource') return total === 0 || child.finishedPieceCount() < total;
  return parent.holdsPieceNotIn(child);
}

export function isEligibleParent(parent: Peer, child: Peer, defaultUploadLimit: number, allowSlow = false): boolean {
  if (parent === child || parent.host === child.host) return false;
  if (parent.state !== 'Running' && parent.state !== 'BackToSource' && parent.state !== 'Succeeded') return false;
  if (child.isBlocked(parent.id)) return false;
  if (parent.host.info.disableShared) return false;
  if (parent.host.freeUploadSlots(defaultUploadLimit) <= 0) return false;
  if (!holdsPiecesChildLacks(parent, child)) return false;
  if (!allowSlow && parent.isSlowParent()) return false;
  return canAddEdge(parent, child);
}

/**
 * Whether `parent` could serve `child` once it has a free upload slot: what is left of
 * `isEligibleParent` after dropping the checks that change on their own (load, slowness,
 * the DAG). A child waits only for such a holder; a peer holding nothing the child lacks
 * (the child itself, or a peer stuck with the same pieces after its own source died) is no
 * reason to wait.
 */
export function mayServeLater(parent: Peer, child: Peer): boolean {
  if (parent === child || parent.host === child.host) return false;
  if (parent.state !== 'Running' && parent.state !== 'BackToSource' && parent.state !== 'Succeeded') return false;
  if (child.isBlocked(parent.id) || parent.host.info.disableShared) return false;
  return holdsPiecesChildLacks(parent, child);
}

export function scoreParent(parent: Peer, child: Peer, defaultUploadLimit: number): number {
  return scoreAgainst(parent, child.host.info.idc, child.host.locationParts(), defaultUploadLimit);
}

/** scoreParent with the child's IDC and location parts looked up once per decision, not per candidate. */
function scoreAgainst(parent: Peer, childIdc: string, childLocation: readonly string[], defaultUploadLimit: number): number {
  const host = parent.host;
  const limit = host.uploadLimit(defaultUploadLimit);
  const load = limit > 0 ? host.freeUploadSlots(defaultUploadLimit) / limit : 0;
  const total = parent.task.pieceCount;
  const pieces = parent.state === 'Succeeded' ? 1 : total > 0 ? Math.min(1, parent.finishedPieceCount() / total) : 0;
  return (
    SCORE_WEIGHTS.load * load +
    SCORE_WEIGHTS.pieces * pieces +
    SCORE_WEIGHTS.hostType * hostTypeScore(parent) +
    SCORE_WEIGHTS.idc * idcAffinity(host.info.idc, childIdc) +
    SCORE_WEIGHTS.location * locationPartsAffinity(host.locationParts(), childLocation)
  );
}

/**
 * The best parents for `child`, best first, at most `candidateParentLimit`. Candidates are a
 * random sample of at most `filterParentLimit` pool members plus every peer currently going
 * to the origin (few per task, and the ones that hold data first). Peers in `exclude`
 * (already parents of the child, say) are skipped.
 */
export function chooseParents(child: Peer, options: ParentChoiceOptions, exclude?: ReadonlySet<Peer>): Peer[] {
  const sample = child.task.samplePool(Math.max(1, options.filterParentLimit), options.random);
  const chosen = bestParents(child, sample, options, false, exclude);
  // Slowness is judged on a parent's last piece cost, which stays put once it stops serving:
  // a slow parent beats none (the child would otherwise wait on a task that is already done).
  return chosen.length > 0 ? chosen : bestParents(child, sample, options, true, exclude);
}

function bestParents(child: Peer, sample: readonly Peer[], options: ParentChoiceOptions, allowSlow: boolean, exclude?: ReadonlySet<Peer>): Peer[] {
  const task = child.task;
  const limit = Math.max(1, options.candidateParentLimit);
  const best: Peer[] = [];
  const scores: number[] = [];
  const c: ChildView = { peer: child, idc: child.host.info.idc, location: child.host.locationParts() };
  // Origin peers first (few per task); the sample holds distinct pool members, so a sampled
  // peer is a repeat only when it is also an origin peer. No per-call set or closure: this
  // runs on every decision.
  for (const p of task.originPeers) considerParent(p, c, options.defaultUploadLimit, allowSlow, exclude, limit, best, scores);
  for (const p of sample) {
    if (task.originPeers.has(p)) continue;
    considerParent(p, c, options.defaultUploadLimit, allowSlow, exclude, limit, best, scores);
  }
  return best;
}

/** The child as scoring reads it, its host's fields looked up once per decision. */
interface ChildView {
  readonly peer: Peer;
  readonly idc: string;
  readonly location: readonly string[];
}

/**
 * Inserts `p` into `best` (kept sorted by score, at most `limit`) when eligible and good enough.
 * The score comes first: once `best` is full, most of a sample cannot beat its last entry, and
 * the eligibility checks (blocklist, bitsets, piece costs, the DAG) cost more than the score.
 * Ineligible candidates never enter `best`, so checking them second chooses the same parents.
 */
function considerParent(p: Peer, child: ChildView, defaultUploadLimit: number, allowSlow: boolean, exclude: ReadonlySet<Peer> | undefined, limit: number, best: Peer[], scores: number[]): void {
  if (exclude?.has(p)) return;
  const s = scoreAgainst(p, child.idc, child.location, defaultUploadLimit);
  if (best.length === limit && s <= scores[limit - 1]) return;
  if (!isEligibleParent(p, child.peer, defaultUploadLimit, allowSlow)) return;
  let i = best.length < limit ? best.length : limit - 1;
  while (i > 0 && scores[i - 1] < s) {
    if (i < limit) {
      best[i] = best[i - 1];
      scores[i] = scores[i - 1];
    }
    i--;
  }
  best[i] = p;
  scores[i] = s;
}
