/**
 * The scheduler's domain service: what happens on each AnnouncePeer message, host announce
 * and stat/delete call. No gRPC here: answers go out through a `PeerSession`, errors are
 * typed (services/common/errors) and mapped once by the transport.
 *
 * Decision per peer (see `schedule`), in order:
 *  1. a seed peer (need_back_to_source, or a SUPER host) → need_back_to_source;
 *  2. reschedules ≥ retryLimit → FAILED_PRECONDITION;
 *  3. task known empty → empty_task_response;
 *  4. reschedules ≥ retryBackToSourceLimit and a back-to-source slot is free → need_back_to_source;
 *  5. parents available (see scheduling/parents.ts) → normal_task_response;
 *  6. no parent now: if data is on its way (seed triggered, a peer sent to the origin, or a
 *     holder of pieces the peer lacks is only busy) → wait_response; else trigger a
 *     seed peer (consistent hash) → wait_response; else, no seed reachable, a back-to-source
 *     slot (backToSourceCount, normal peers only) → need_back_to_source; else wait_response.
 * Waiting peers are re-examined when something changes (a parent appears, slots free up, the
 * origin fetch fails) and every retryInterval.
 */
import type { Logger } from '../common/logger';
import { DragonflyError, FailedPreconditionError, InternalError, InvalidArgumentError, NotFoundError, PermissionDeniedError, ResourceExhaustedError } from '../common/errors';
import type {
  AnnounceHostRequest__Output,
  AnnouncePeerRequest__Output,
  AnnouncePeerResponse,
  Download,
  Host as HostProto,
  Peer as PeerProto,
  Task as TaskProto,
} from '../proto';
import { Peer, addEdge, removeEdge, removeInEdges, type Host, type HostInfo, type PeerSession, type Task } from './resource/model';
import { canPeerTransition, canTaskTransition, isReceived, type PeerEvent } from './resource/state';
import type { GcPolicy, ResourceStore } from './resource/store';
import { chooseParents, isEligibleParent, mayServeLater } from './scheduling/parents';
import { ConsistentHashRing, type SeedHost, type SeedTrigger } from './seed-peers';
import { MIN_ANNOUNCE_INTERVAL_MS, checkDownload, checkHeaders, checkHost, checkId, checkPiece, checkTaskId, checkTaskMetadata, normalizeIp, pieceLengthFromCount } from './validation';

/** Hard caps on what peers can make the scheduler hold (scheduler.limits in scheduler.yaml). */
export interface SchedulerLimits {
  readonly hosts: number;
  readonly tasks: number;
  readonly peers: number;
  readonly peersPerTask: number;
  /** Open AnnouncePeer streams per caller address. */
  readonly streamsPerHost: number;
  /** Announce intervals above this are clamped to it. */
  readonly maxAnnounceIntervalMs: number;
}

export const DEFAULT_LIMITS: SchedulerLimits = {
  hosts: 20_000,
  tasks: 100_000,
  peers: 500_000,
  peersPerTask: 20_000,
  streamsPerHost: 1_000,
  maxAnnounceIntervalMs: 10 * 60_000,
};

/** Values that may change at run time (the manager's cluster config overrides the static ones). */
export interface SchedulingSettings {
  candidateParentLimit: number;
  filterParentLimit: number;
  /** Upload slots of a host that announced no concurrent_upload_limit (manager client_config load_limit). */
  defaultUploadLimit: number;
  backToSourceCount: number;
  retryLimit: number;
  retryBackToSourceLimit: number;
  retryIntervalMs: number;
  seedPeerEnabled: boolean;
}

export interface SchedulerEvents {
  registerPeer(): void;
  scheduleDuration(ms: number): void;
  backToSource(): void;
  traffic(type: string, bytes: number): void;
  announceHost(): void;
}

export const NO_EVENTS: SchedulerEvents = {
  registerPeer: () => undefined,
  scheduleDuration: () => undefined,
  backToSource: () => undefined,
  traffic: () => undefined,
  announceHost: () => undefined,
};

/**
 * After a seed failed a task it is tried again after SEED_RETRY_MIN_MS, doubling with each
 * failure in a row up to SEED_FAILURE_BACKOFF_MS (upstream bans for the full 30 min at once,
 * which turned one scheduler restart into 30 minutes of origin traffic).
 */
export const SEED_RETRY_MIN_MS = 2_000;
export const SEED_FAILURE_BACKOFF_MS = 30 * 60_000;

/** How long seeds are skipped for a task after `failures` failures in a row. */
export function seedRetryDelayMs(failures: number): number {
  return failures <= 0 ? 0 : Math.min(SEED_FAILURE_BACKOFF_MS, SEED_RETRY_MIN_MS * 2 ** Math.min(failures - 1, 20));
}
/** Children offered a newly available parent per event (keeps the hot path bounded). */
const TOP_UP_BATCH = 16;

/** One AnnouncePeer stream: the caller's IP, the session to answer on and the peer once registered. */
export interface PeerStream {
  readonly caller: string;
  readonly session: PeerSession;
  peer?: Peer;
}

export interface SchedulerServiceOptions {
  readonly store: ResourceStore;
  readonly settings: () => SchedulingSettings;
  readonly trigger: SeedTrigger;
  /**
   * The trusted seed peers: the manager's active seed peers of this cluster plus
   * seedPeer.addrs. Only these may announce SUPER_HOST and receive seed triggers.
   */
  readonly managerSeeds?: () => readonly SeedHost[];
  readonly limits?: SchedulerLimits;
  readonly events?: SchedulerEvents;
  readonly logger: Logger;
  readonly now?: () => number;
}

type Kind = 'normal' | 'wait' | 'origin' | 'empty';

export class SchedulerService {
  readonly store: ResourceStore;
  private readonly settings: () => SchedulingSettings;
  private readonly trigger: SeedTrigger;
  private readonly managerSeeds: () => readonly SeedHost[];
  private readonly events: SchedulerEvents;
  private readonly logger: Logger;
  private readonly now: () => number;
  readonly limits: SchedulerLimits;
  /** Open AnnouncePeer streams per caller IP (entries go at zero, so bounded by open streams). */
  private readonly streamsByCaller = new Map<string, number>();
  private readonly ring = new ConsistentHashRing<SeedHost>();
  /** Last answer kind per peer, so a still-waiting peer is not sent wait_response again. */
  private readonly lastAnswer = new WeakMap<Peer, Kind>();
  private readonly waitTimers = new Map<Task, NodeJS.Timeout>();
  private readonly hostProtos = new WeakMap<Host, { info: HostInfo; proto: HostProto }>();
  private readonly candidateHosts = new WeakMap<Host, { info: HostInfo; proto: HostProto }>();
  /** The register request of each peer (origin trigger and back-to-source options). */
  private readonly downloadRequests = new WeakMap<Peer, Download>();

  constructor(options: SchedulerServiceOptions) {
    this.store = options.store;
    this.settings = options.settings;
    this.trigger = options.trigger;
    this.managerSeeds = options.managerSeeds ?? (() => []);
    this.events = options.events ?? NO_EVENTS;
    this.logger = options.logger;
    this.now = options.now ?? Date.now;
    this.limits = options.limits ?? DEFAULT_LIMITS;
  }

  // ---------------------------------------------------------------- hosts

  /**
   * A host announce from `caller` (the connection's IP). The host id is bound to the address
   * that first announced it: another address may not change it (unless that first address
   * was not the host's own IP and the new caller is: a squatter loses to the real host).
   * SUPER_HOST is granted only to a trusted seed peer calling from its own IP.
   */
  announceHost(req: AnnounceHostRequest__Output, caller: string): Host {
    const h = req.host;
    if (!h) throw new InvalidArgumentError('announce_host: host is required');
    checkHost(h);
    const ip = normalizeIp(h.ip);
    let existing = this.store.hosts.get(h.id);
    if (existing && existing.owner !== caller) {
      const squatted = existing.owner !== normalizeIp(existing.info.ip);
      if (!squatted || caller !== ip) {
        throw new PermissionDeniedError(`host ${h.id} was announced from ${existing.owner}; ${caller} may not announce it`);
      }
      this.logger.warn({ host: h.id, squatter: existing.owner, caller }, 'host id taken back from an address that was not its own');
      this.deleteHost(existing.id, existing.owner);
      existing = undefined;
    }
    if (!existing && this.store.hosts.size >= this.limits.hosts) {
      throw new ResourceExhaustedError(`the scheduler holds ${this.store.hosts.size} hosts (scheduler.limits.hosts); host ${h.id} refused`);
    }
    if (h.type === 'SUPER_HOST' && !this.isTrustedSeed(ip, h.port, caller)) {
      throw new PermissionDeniedError(
        `host ${h.id} announces SUPER_HOST but ${h.ip}:${h.port} is not a seed peer of this scheduler's cluster (the manager's seed peers, seedPeer.addrs)` +
          (caller === ip ? '' : `, or the call came from ${caller} instead of ${h.ip}`),
      );
    }
    const info: HostInfo = {
      id: h.id,
      type: h.type === 'SUPER_HOST' ? 'SUPER_HOST' : 'NORMAL_HOST',
      hostname: h.hostname,
      ip: h.ip,
      port: h.port,
      downloadPort: h.downloadPort,
      idc: h.network?.idc ?? '',
      location: h.network?.location ?? '',
      disableShared: h.disableShared,
      concurrentUploadLimit: h.concurrentUploadLimit,
      concurrentUploadCount: h.concurrentUploadCount,
      uploadCount: h.uploadCount,
      uploadFailedCount: h.uploadFailedCount,
      maxTxBandwidth: h.network?.maxTxBandwidth ?? 0,
      txBandwidth: h.network?.txBandwidth ?? 0,
      schedulerClusterId: h.schedulerClusterId,
    };
    const host = this.store.upsertHost(info, this.announceInterval(req.intervalMs), this.now(), caller);
    this.events.announceHost();
    return host;
  }

  /** The client's interval clamped to [1 s, limits.maxAnnounceInterval]; 0 (none) stays 0 (hostTTL applies). */
  private announceInterval(requested: number): number {
    if (!Number.isFinite(requested) || requested <= 0) return 0;
    return Math.min(this.limits.maxAnnounceIntervalMs, Math.max(MIN_ANNOUNCE_INTERVAL_MS, requested));
  }

  /** Whether ip:port is a trusted seed peer and the call comes from that ip. */
  isTrustedSeed(ip: string, port: number, caller: string): boolean {
    if (normalizeIp(ip) !== caller) return false;
    return this.managerSeeds().some((s) => s.port === port && normalizeIp(s.ip) === caller);
  }

  /** After the trusted seed list changed: hosts no longer in it stop being seeds. */
  revalidateSeeds(): void {
    for (const host of this.store.hosts.values()) {
      if (host.isSeed && !this.isTrustedSeed(host.info.ip, host.info.port, host.owner)) {
        this.logger.warn({ host: host.id, ip: host.info.ip, port: host.info.port }, 'host is no longer a trusted seed peer: treated as a normal host');
        host.info = { ...host.info, type: 'NORMAL_HOST' };
      }
    }
  }

  /** Admits a new AnnouncePeer stream from `caller` (limits.streamsPerHost). */
  openStream(caller: string): void {
    const open = this.streamsByCaller.get(caller) ?? 0;
    if (open >= this.limits.streamsPerHost) {
      throw new ResourceExhaustedError(`${caller} has ${open} AnnouncePeer streams open (scheduler.limits.streamsPerHost)`);
    }
    this.streamsByCaller.set(caller, open + 1);
  }

  releaseStream(caller: string): void {
    const open = (this.streamsByCaller.get(caller) ?? 1) - 1;
    if (open <= 0) this.streamsByCaller.delete(caller);
    else this.streamsByCaller.set(caller, open);
  }

  openStreams(caller: string): number {
    return this.streamsByCaller.get(caller) ?? 0;
  }

  listHosts(): HostProto[] {
    return [...this.store.hosts.values()].map((h) => this.hostProto(h));
  }

  deleteHost(hostId: string, caller: string): void {
    const host = this.store.hosts.get(hostId);
    if (!host) throw new NotFoundError(`host ${hostId} not found`);
    if (host.owner !== caller) throw new PermissionDeniedError(`host ${hostId} was announced from ${host.owner}; ${caller} may not delete it`);
    const tasks = new Set([...host.peers].map((p) => p.task));
    for (const p of host.peers) this.closeSession(p);
    this.rescue(this.store.removeHost(host));
    for (const t of tasks) this.wakeWaiting(t);
  }

  /** Seed hosts: trusted SUPER hosts that announced themselves plus the trusted list. */
  seedHosts(): SeedHost[] {
    const byKey = new Map<string, SeedHost>();
    for (const h of this.store.hosts.values()) {
      if (h.isSeed) byKey.set(`${h.info.ip}:${h.info.port}`, { key: `${h.info.ip}:${h.info.port}`, ip: h.info.ip, port: h.info.port, hostname: h.info.hostname });
    }
    for (const s of this.managerSeeds()) if (!byKey.has(s.key)) byKey.set(s.key, s);
    return [...byKey.values()];
  }

  // ---------------------------------------------------------------- AnnouncePeer

  /** Handles one message of an AnnouncePeer stream. Throws typed errors; the stream then ends with that status. */
  handle(stream: PeerStream, req: AnnouncePeerRequest__Output): void {
    if (req.request === 'registerPeerRequest') {
      this.register(stream, req);
      return;
    }
    const peer = stream.peer;
    if (!peer) throw new FailedPreconditionError(`${req.request ?? 'empty request'} before register_peer_request`);
    if (req.peerId && req.peerId !== peer.id) throw new InvalidArgumentError(`peer_id ${req.peerId} does not match the registered peer ${peer.id}`);
    peer.updatedAt = this.now();
    switch (req.request) {
      case 'downloadPeerStartedRequest':
        return this.peerStarted(peer);
      case 'downloadPeerBackToSourceStartedRequest': {
        const r = req.downloadPeerBackToSourceStartedRequest;
        checkHeaders('response_header', r?.responseHeader ?? {});
        return this.backToSourceStarted(peer, r?.contentLength ?? 0, r?.pieceLength ?? 0, r?.responseHeader ?? {});
      }
      case 'reschedulePeerRequest':
        return this.reschedule(peer, req.reschedulePeerRequest?.candidateParentIds ?? []);
      case 'downloadPeerFinishedRequest': {
        const r = req.downloadPeerFinishedRequest;
        return this.peerSucceeded(peer, r?.contentLength ?? 0, r?.pieceCount ?? 0, 0, undefined);
      }
      case 'downloadPeerBackToSourceFinishedRequest': {
        const r = req.downloadPeerBackToSourceFinishedRequest;
        checkHeaders('response_header', r?.responseHeader ?? {});
        return this.peerSucceeded(peer, r?.contentLength ?? 0, r?.pieceCount ?? 0, r?.pieceLength ?? 0, r?.responseHeader);
      }
      case 'downloadPeerFailedRequest':
        return this.peerFailed(peer, req.downloadPeerFailedRequest?.description ?? '');
      case 'downloadPeerBackToSourceFailedRequest':
        return this.peerFailed(peer, req.downloadPeerBackToSourceFailedRequest?.description ?? '');
      case 'downloadPieceFinishedRequest':
      case 'downloadPieceBackToSourceFinishedRequest': {
        const piece = req.downloadPieceFinishedRequest?.piece ?? req.downloadPieceBackToSourceFinishedRequest?.piece;
        if (!piece) throw new InvalidArgumentError(`${req.request}: piece is required`);
        const traffic = req.request === 'downloadPieceBackToSourceFinishedRequest' ? 'BACK_TO_SOURCE' : piece.trafficType;
        checkPiece(piece.number, piece.length, peer.task);
        return this.pieceFinished(peer, piece.number, piece.parentId ?? '', piece.length, piece.costNs, traffic);
      }
      case 'downloadPieceFailedRequest': {
        const r = req.downloadPieceFailedRequest;
        return this.pieceFailed(peer, r?.parentId ?? '');
      }
      case 'downloadPieceBackToSourceFailedRequest':
        this.logger.debug({ peer: peer.id, piece: req.downloadPieceBackToSourceFailedRequest?.pieceNumber }, 'back-to-source piece failed');
        return;
      default:
        throw new InvalidArgumentError('AnnouncePeerRequest carries no request');
    }
  }

  /** The stream ended (half-close, cancel or error): a peer that neither finished nor failed left. */
  streamClosed(stream: PeerStream): void {
    const peer = stream.peer;
    if (!peer) return;
    if (peer.session === stream.session) peer.session = undefined;
    if (peer.state === 'Succeeded' || peer.state === 'Failed' || peer.state === 'Leave') return;
    if (this.store.peers.get(peer.id) !== peer) return;
    this.leave(peer);
  }

  private register(stream: PeerStream, req: AnnouncePeerRequest__Output): void {
    if (stream.peer) throw new FailedPreconditionError(`peer ${stream.peer.id} is already registered on this stream`);
    const download = req.registerPeerRequest?.download;
    checkId('register_peer_request: host_id', req.hostId);
    checkId('register_peer_request: task_id', req.taskId);
    checkId('register_peer_request: peer_id', req.peerId);
    if (!download?.url) throw new InvalidArgumentError('register_peer_request: download.url is required');
    checkDownload(download);
    const host = this.store.hosts.get(req.hostId);
    if (!host) throw new NotFoundError(`host ${req.hostId} is not announced; call AnnounceHost first`);
    if (host.owner !== stream.caller) throw new PermissionDeniedError(`host ${req.hostId} was announced from ${host.owner}; a stream from ${stream.caller} may not register its peers`);
    checkTaskId(req.taskId, download);
    const previous = this.store.peers.get(req.peerId);
    if (previous && previous.host !== host) throw new PermissionDeniedError(`peer ${req.peerId} belongs to host ${previous.host.id}, not ${host.id}`);
    const known = this.store.tasks.get(req.taskId);
    if (!known && this.store.tasks.size >= this.limits.tasks) {
      throw new ResourceExhaustedError(`the scheduler holds ${this.store.tasks.size} tasks (scheduler.limits.tasks); task ${req.taskId} refused`);
    }
    if (!previous) {
      if (this.store.peers.size >= this.limits.peers) throw new ResourceExhaustedError(`the scheduler holds ${this.store.peers.size} peers (scheduler.limits.peers); peer ${req.peerId} refused`);
      if (known && known.peers.size >= this.limits.peersPerTask) {
        throw new ResourceExhaustedError(`task ${req.taskId} has ${known.peers.size} peers (scheduler.limits.peersPerTask); peer ${req.peerId} refused`);
      }
    }
    const now = this.now();
    const task = this.store.getOrCreateTask(
      {
        id: req.taskId,
        url: download.url,
        digest: download.digest,
        tag: download.tag,
        application: download.application,
        filteredQueryParams: download.filteredQueryParams,
        requestHeader: download.requestHeader,
      },
      now,
    );
    if (previous) {
      // The same peer re-registering (e.g. after a broken stream): start it afresh.
      this.closeSession(previous);
      this.rescue(this.store.removePeer(previous));
    }
    // A dfdaemon serves a task it holds from its own store, so a host asking for it again under
    // a new peer id no longer holds what its earlier, disconnected peers had (cache wiped,
    // restarted): forget them instead of offering them as parents or waiting on them. Peers of
    // the host still on a live stream are left alone.
    for (const stale of [...host.peers]) {
      if (stale.task !== task || stale.id === req.peerId || stale.session) continue;
      this.logger.info({ task: task.id, peer: stale.id, host: host.id }, 'host registered the task again: dropping its earlier peer');
      this.closeSession(stale);
      this.rescue(this.store.removePeer(stale));
    }
    const peer = new Peer(req.peerId, task, host, now, {
      priority: download.priority,
      needBackToSource: download.needBackToSource || host.isSeed,
    });
    peer.session = stream.session;
    this.downloadRequests.set(peer, download);
    this.store.addPeer(peer);
    stream.peer = peer;
    this.events.registerPeer();
    if (canTaskTransition(task.state, 'Download') && (task.state !== 'Succeeded' || !task.hasAvailablePeer(host))) task.transition('Download');
    this.schedule(peer);
  }

  private peerStarted(peer: Peer): void {
    if (peer.state === 'Running') return;
    this.applyPeerEvent(peer, 'Download');
    if (canTaskTransition(peer.task.state, 'Download') && peer.task.state !== 'Running' && peer.task.state !== 'Succeeded') peer.task.transition('Download');
  }

  private backToSourceStarted(peer: Peer, contentLength: number, pieceLength: number, header: Record<string, string>): void {
    const task = peer.task;
    if (pieceLength > 0 || contentLength > 0) checkTaskMetadata('download_peer_back_to_source_started_request', contentLength, pieceLength);
    if (peer.state !== 'BackToSource') this.applyPeerEvent(peer, 'DownloadBackToSource');
    if (pieceLength > 0) task.setMetadata(contentLength, pieceLength, header);
    task.originPeers.add(peer);
    task.waiting.delete(peer);
    if (task.state !== 'Running' && canTaskTransition(task.state, 'Download')) task.transition('Download');
    this.becameParent(peer);
  }

  private reschedule(peer: Peer, failedParents: readonly string[]): void {
    // Only peers of the task can be blocked, so the set stays within limits.peersPerTask.
    for (const id of failedParents) if (peer.task.peers.has(id)) peer.blockedParents.add(id);
    peer.retryCount++;
    this.lastAnswer.delete(peer);
    this.schedule(peer);
  }

  private peerSucceeded(peer: Peer, contentLength: number, pieceCount: number, pieceLength: number, header: Record<string, string> | undefined): void {
    const task = peer.task;
    if (peer.state === 'Succeeded') return;
    const field = header ? 'download_peer_back_to_source_finished_request' : 'download_peer_finished_request';
    if (pieceLength > 0) checkTaskMetadata(field, contentLength, pieceLength);
    const derived = pieceLengthFromCount(contentLength, pieceCount);
    if (task.contentLength === undefined || task.pieceLength === 0) {
      const length = pieceLength > 0 ? pieceLength : derived;
      if (length !== undefined && (length > 0 || contentLength === 0)) task.setMetadata(contentLength, length, header);
    } else if (header) {
      task.setMetadata(contentLength, pieceLength, header);
    }
    this.applyPeerEvent(peer, 'DownloadSucceeded');
    if (peer.isSeed) task.seedFailures = 0;
    peer.finished.fill(task.pieceCount);
    peer.sentToOrigin = false;
    task.originPeers.delete(peer);
    task.waiting.delete(peer);
    task.underServed.delete(peer);
    const hadParents = peer.parents.size > 0;
    removeInEdges(peer);
    if (canTaskTransition(task.state, 'DownloadSucceeded')) task.transition('DownloadSucceeded');
    this.becameParent(peer, hadParents);
  }

  private peerFailed(peer: Peer, description: string): void {
    const task = peer.task;
    if (peer.state === 'Failed') return;
    this.applyPeerEvent(peer, 'DownloadFailed');
    this.logger.debug({ peer: peer.id, task: task.id, description }, 'peer failed');
    if (peer.isSeed && (peer.sentToOrigin || task.originPeers.has(peer))) this.seedFailed(task);
    this.detach(peer);
    const active = [...task.peers.values()].some((p) => p.state === 'Running' || p.state === 'BackToSource' || p.state === 'Succeeded');
    if (!active && canTaskTransition(task.state, 'DownloadFailed')) task.transition('DownloadFailed');
    this.wakeWaiting(task);
  }

  private leave(peer: Peer): void {
    const task = peer.task;
    if (peer.isSeed && task.originPeers.has(peer)) this.seedFailed(task);
    this.applyPeerEvent(peer, 'Leave');
    this.detach(peer);
    this.wakeWaiting(task);
  }

  /** Takes a peer that stopped downloading out of every scheduling index; rescues its children. */
  private detach(peer: Peer): void {
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

  private pieceFinished(peer: Peer, number: number, parentId: string, length: number, costNs: number, traffic: string): void {
    if (peer.state === 'ReceivedNormal' || peer.state === 'ReceivedSmall' || peer.state === 'ReceivedTiny') this.applyPeerEvent(peer, 'Download');
    const fresh = peer.finished.set(number);
    if (length > 0) this.events.traffic(traffic, length);
    if (parentId) {
      const parent = this.store.peers.get(parentId);
      if (parent) parent.recordPieceCost(costNs);
    }
    if (fresh && peer.finished.size === 1 && peer.state === 'Running') this.becameParent(peer);
  }

  private pieceFailed(peer: Peer, parentId: string): void {
    if (!parentId || !peer.task.peers.has(parentId)) return;
    peer.blockedParents.add(parentId);
    const parent = this.store.peers.get(parentId);
    if (parent) {
      parent.host.uploadFailures++;
      removeEdge(parent, peer);
    }
    if (peer.state === 'Running' || isReceived(peer.state)) peer.task.underServed.add(peer);
  }

  private applyPeerEvent(peer: Peer, event: PeerEvent): void {
    if (!canPeerTransition(peer.state, event)) {
      throw new FailedPreconditionError(`peer ${peer.id}: ${event} is not allowed in state ${peer.state}`);
    }
    peer.transition(event);
  }

  // ---------------------------------------------------------------- scheduling

  /** Decides and sends the next answer for `peer` (see the file comment). */
  schedule(peer: Peer): void {
    const started = performance.now();
    try {
      this.decide(peer);
    } finally {
      this.events.scheduleDuration(performance.now() - started);
    }
  }

  /**
   * Schedules a peer other than the one whose message is being handled (or from a timer): its
   * errors end its own stream, never the caller's, and never escape into the event loop.
   */
  private scheduleOther(peer: Peer): void {
    try {
      this.schedule(peer);
    } catch (err) {
      this.logger.warn({ peer: peer.id, err: (err as Error).message }, 'scheduling failed');
      this.failPeer(peer, err instanceof DragonflyError ? err : new InternalError(String(err)));
    }
  }

  private decide(peer: Peer): void {
    const task = peer.task;
    const s = this.settings();
    removeInEdges(peer);
    task.waiting.delete(peer);
    task.underServed.delete(peer);
    if (peer.needBackToSource) return this.sendToOrigin(peer, 'seed peer: fetch from the origin');
    if (peer.retryCount >= s.retryLimit) {
      this.failPeer(peer, new FailedPreconditionError(`peer ${peer.id}: no parent after ${peer.retryCount} reschedules (retryLimit ${s.retryLimit})`));
      return;
    }
    if (task.sizeScope === 'EMPTY') {
      if (peer.state === 'Pending') peer.transition('RegisterEmpty');
      return this.send(peer, 'empty', { emptyTaskResponse: {} });
    }
    if (peer.retryCount >= s.retryBackToSourceLimit && this.mayGoToOrigin(peer, s)) {
      return this.sendToOrigin(peer, `rescheduled ${peer.retryCount} times (retryBackToSourceLimit ${s.retryBackToSourceLimit})`);
    }
    if (task.contentLength !== undefined && task.poolSize + task.originPeers.size > 0) {
      const parents = chooseParents(peer, s);
      if (parents.length > 0) {
        for (const p of parents) addEdge(p, peer);
        if (parents.length < s.candidateParentLimit) task.underServed.add(peer);
        return this.sendParents(peer);
      }
    }
    // Nobody can serve this peer now.
    if (this.dataOnItsWay(peer, s)) return this.wait(peer, 'waiting for a parent that holds data');
    if (this.triggerSeed(task, peer, s)) return this.wait(peer, 'a seed peer is fetching the task');
    if (this.mayGoToOrigin(peer, s)) return this.sendToOrigin(peer, 'no seed peer reachable');
    if (this.downloadRequests.get(peer)?.disableBackToSource && task.originPeers.size === 0) {
      this.failPeer(peer, new FailedPreconditionError(`task ${task.id}: no seed peer reachable and back-to-source is disabled`));
      return;
    }
    return this.wait(peer, `back-to-source limit reached (backToSourceCount ${s.backToSourceCount})`);
  }

  private mayGoToOrigin(peer: Peer, s: SchedulingSettings): boolean {
    if (this.downloadRequests.get(peer)?.disableBackToSource) return false;
    return peer.task.normalOriginPeerCount() < s.backToSourceCount;
  }

  /**
   * True when data for this peer is on its way (so waiting beats another origin fetch): a seed
   * trigger or an origin fetch is running, or a holder that could serve the peer is only busy.
   * Holders that have nothing the peer lacks do not count: after the origin died under the seed,
   * the peer itself (in the pool with its first pieces) and peers stuck with the same pieces
   * kept everyone waiting for data that no one was fetching. Bounded: a sample of the pool, as
   * in chooseParents.
   */
  private dataOnItsWay(peer: Peer, s: SchedulingSettings): boolean {
    const task = peer.task;
    if (task.seedTriggerPending || task.originPeers.size > 0) return true;
    return task.samplePool(Math.max(1, s.filterParentLimit)).some((holder) => mayServeLater(holder, peer));
  }

  private seedUsable(task: Task, s: SchedulingSettings): boolean {
    return s.seedPeerEnabled && (task.seedFailedAt === undefined || this.now() - task.seedFailedAt > seedRetryDelayMs(task.seedFailures));
  }

  private seedFailed(task: Task): void {
    task.seedFailedAt = this.now();
    task.seedFailures++;
  }

  /** Asks a seed peer to fetch the task; false when none is usable. */
  private triggerSeed(task: Task, peer: Peer, s: SchedulingSettings): boolean {
    if (!this.seedUsable(task, s)) return false;
    this.ring.update(this.seedHosts());
    const seed = this.ring.pick(task.id);
    if (!seed) return false;
    const d = this.downloadRequests.get(peer);
    const download: Download = {
      url: task.info.url,
      digest: task.info.digest,
      tag: task.info.tag,
      application: task.info.application,
      filteredQueryParams: [...task.info.filteredQueryParams],
      // The scheduled peer's own headers (e.g. its registry credentials), not another peer's.
      requestHeader: { ...(d?.requestHeader ?? task.info.requestHeader) },
      priority: d?.priority,
      pieceLength: d?.pieceLength,
      type: 'STANDARD',
    };
    task.seedTriggerPending = true;
    task.seedTriggeredAt = this.now();
    this.logger.info({ task: task.id, seed: seed.key }, 'triggering seed peer');
    this.trigger.trigger(seed, download, (err) => {
      task.seedTriggerPending = false;
      // A trigger that ended without any peer having data counts as a failure too.
      if (err || (task.poolSize === 0 && task.originPeers.size === 0 && task.sizeScope !== 'EMPTY')) {
        this.seedFailed(task);
        this.logger.warn({ task: task.id, seed: seed.key, err: err?.message }, 'seed peer could not fetch the task');
      }
      this.wakeWaiting(task);
    });
    return true;
  }

  private sendToOrigin(peer: Peer, description: string): void {
    peer.sentToOrigin = true;
    peer.task.originPeers.add(peer);
    this.events.backToSource();
    this.send(peer, 'origin', { needBackToSourceResponse: { description } });
  }

  private wait(peer: Peer, description: string): void {
    peer.task.waiting.add(peer);
    this.armWaitTimer(peer.task);
    if (this.lastAnswer.get(peer) === 'wait') return;
    this.send(peer, 'wait', { waitResponse: { description } });
  }

  private sendParents(peer: Peer): void {
    const task = peer.task;
    if (peer.state === 'Pending') {
      const scope = task.sizeScope;
      peer.transition(scope === 'TINY' ? 'RegisterTiny' : scope === 'SMALL' ? 'RegisterSmall' : 'RegisterNormal');
    }
    const candidateParents = [...peer.parents].map((p) => this.peerProto(p, false));
    this.send(peer, 'normal', { normalTaskResponse: { candidateParents, task: this.taskProto(task, peer.host) } });
  }

  private send(peer: Peer, kind: Kind, response: AnnouncePeerResponse): void {
    this.lastAnswer.set(peer, kind);
    peer.session?.send(response);
  }

  private failPeer(peer: Peer, err: DragonflyError): void {
    if (canPeerTransition(peer.state, 'DownloadFailed')) peer.transition('DownloadFailed');
    this.detach(peer);
    const session = peer.session;
    peer.session = undefined;
    session?.fail(err);
  }

  private closeSession(peer: Peer): void {
    const session = peer.session;
    peer.session = undefined;
    session?.fail(new FailedPreconditionError(`peer ${peer.id} was removed from the scheduler`));
  }

  /**
   * A peer started holding data (origin fetch started, first piece, or done): wake waiting
   * peers and offer it to under-served children as an extra parent.
   */
  private becameParent(peer: Peer, slotsFreed = false): void {
    const task = peer.task;
    const added = task.addToPool(peer);
    if (added || slotsFreed || peer.state === 'Succeeded') this.wakeWaiting(task);
    if (task.underServed.size === 0) return;
    const s = this.settings();
    const batch: Peer[] = [];
    for (const child of task.underServed) {
      if (batch.length >= TOP_UP_BATCH) break;
      batch.push(child);
    }
    for (const child of batch) {
      // Rotate so the next event starts with other children.
      task.underServed.delete(child);
      if (child.parents.size >= s.candidateParentLimit || !(child.state === 'Running' || isReceived(child.state))) continue;
      if (isEligibleParent(peer, child, s.defaultUploadLimit) && addEdge(peer, child)) {
        try {
          this.sendParents(child);
        } catch (err) {
          this.failPeer(child, err instanceof DragonflyError ? err : new InternalError(String(err)));
        }
      }
      if (child.parents.size < s.candidateParentLimit) task.underServed.add(child);
    }
  }

  /** Re-examines every waiting peer of the task. */
  private wakeWaiting(task: Task): void {
    if (task.waiting.size === 0) return;
    for (const peer of [...task.waiting]) {
      if (!task.waiting.has(peer) || !peer.session) continue;
      this.scheduleOther(peer);
    }
  }

  private armWaitTimer(task: Task): void {
    if (this.waitTimers.has(task)) return;
    const interval = Math.max(10, this.settings().retryIntervalMs);
    const timer = setTimeout(() => {
      this.waitTimers.delete(task);
      if (!this.store.tasks.has(task.id)) return;
      this.wakeWaiting(task);
    }, interval * (0.75 + Math.random() * 0.5));
    timer.unref();
    this.waitTimers.set(task, timer);
  }

  /** Children that lost a parent: a new answer when none is left, else a top-up later. */
  private rescue(children: readonly Peer[]): void {
    for (const child of children) {
      if (!(child.state === 'Running' || isReceived(child.state)) || !child.session) continue;
      if (child.parents.size === 0) this.scheduleOther(child);
      else child.task.underServed.add(child);
    }
  }

  // ---------------------------------------------------------------- stat / delete / gc

  statTask(taskId: string): TaskProto {
    const task = this.store.tasks.get(taskId);
    if (!task) throw new NotFoundError(`task ${taskId} not found`);
    return this.taskProto(task);
  }

  statPeer(peerId: string): PeerProto {
    const peer = this.store.peers.get(peerId);
    if (!peer) throw new NotFoundError(`peer ${peerId} not found`);
    return {
      ...this.peerProto(peer),
      task: this.taskProto(peer.task),
      pieces: peer.finished.toArray().map((number) => ({ number })),
    };
  }

  deletePeer(peerId: string, caller: string): void {
    const peer = this.store.peers.get(peerId);
    if (!peer) throw new NotFoundError(`peer ${peerId} not found`);
    if (peer.host.owner !== caller) throw new PermissionDeniedError(`peer ${peerId} is on host ${peer.host.id} announced from ${peer.host.owner}; ${caller} may not delete it`);
    this.closeSession(peer);
    if (canPeerTransition(peer.state, 'Leave')) peer.transition('Leave');
    this.detach(peer);
    this.store.removePeer(peer);
    this.wakeWaiting(peer.task);
  }

  /**
   * With a host id: that host dropped its copy (its peers of the task go); only the host's
   * own address may say so. Without: the whole task goes, which only the addresses of trusted
   * seed peers may ask.
   */
  deleteTask(taskId: string, hostId: string, caller: string): void {
    const task = this.store.tasks.get(taskId);
    if (!task) throw new NotFoundError(`task ${taskId} not found`);
    if (hostId) {
      const host = this.store.hosts.get(hostId);
      if (host && host.owner !== caller) throw new PermissionDeniedError(`host ${hostId} was announced from ${host.owner}; ${caller} may not delete its tasks`);
    } else if (!this.managerSeeds().some((s) => normalizeIp(s.ip) === caller)) {
      throw new PermissionDeniedError(`deleting task ${taskId} for every host is refused to ${caller}: give host_id (a host deletes only its own copy)`);
    }
    this.removeTask(task, hostId);
  }

  /**
   * A delete_task job (the manager's, taken from this cluster's queue, so already authorized):
   * the task goes for every host.
   */
  deleteTaskForJob(taskId: string): void {
    const task = this.store.tasks.get(taskId);
    if (!task) throw new NotFoundError(`task ${taskId} not found`);
    this.removeTask(task, '');
  }

  private removeTask(task: Task, hostId: string): void {
    const victims = [...task.peers.values()].filter((p) => !hostId || p.host.id === hostId);
    if (hostId && victims.length === 0) throw new NotFoundError(`task ${task.id} has no peer on host ${hostId}`);
    for (const peer of victims) {
      this.closeSession(peer);
      if (canPeerTransition(peer.state, 'Leave')) peer.transition('Leave');
      this.detach(peer);
      this.store.removePeer(peer);
    }
    if (!hostId) {
      this.store.tasks.delete(task.id);
      const timer = this.waitTimers.get(task);
      if (timer) clearTimeout(timer);
      this.waitTimers.delete(task);
    } else this.wakeWaiting(task);
  }

  gc(policy: GcPolicy): ReturnType<ResourceStore['gc']> {
    const result = this.store.gc(this.now(), policy);
    for (const task of [...this.waitTimers.keys()]) {
      if (!this.store.tasks.has(task.id)) {
        clearTimeout(this.waitTimers.get(task));
        this.waitTimers.delete(task);
      }
    }
    const touched = new Set<Task>();
    for (const peer of result.removedPeers) {
      this.closeSession(peer);
      if (this.store.tasks.has(peer.task.id)) touched.add(peer.task);
    }
    this.rescue(result.orphans);
    for (const task of touched) this.wakeWaiting(task);
    if (result.hosts.length + result.peers.length + result.tasks.length > 0) this.logger.info({ hosts: result.hosts.length, peers: result.peers.length, tasks: result.tasks.length }, 'garbage collected');
    return result;
  }

  close(): void {
    for (const t of this.waitTimers.values()) clearTimeout(t);
    this.waitTimers.clear();
  }

  // ---------------------------------------------------------------- wire shapes

  hostProto(host: Host): HostProto {
    const cached = this.hostProtos.get(host);
    if (cached && cached.info === host.info) return cached.proto;
    const i = host.info;
    const proto: HostProto = {
      id: i.id,
      type: i.type,
      hostname: i.hostname,
      ip: i.ip,
      port: i.port,
      downloadPort: i.downloadPort,
      network: { idc: i.idc, location: i.location, maxTxBandwidth: i.maxTxBandwidth, txBandwidth: i.txBandwidth },
      schedulerClusterId: i.schedulerClusterId,
      disableShared: i.disableShared,
      concurrentUploadLimit: i.concurrentUploadLimit,
      concurrentUploadCount: i.concurrentUploadCount,
      uploadCount: i.uploadCount,
      uploadFailedCount: i.uploadFailedCount,
    };
    this.hostProtos.set(host, { info: i, proto });
    return proto;
  }

  /** What a child needs of a parent's host: where to sync pieces and fetch bytes, and its kind. */
  private candidateHostProto(host: Host): HostProto {
    const cached = this.candidateHosts.get(host);
    if (cached && cached.info === host.info) return cached.proto;
    const i = host.info;
    const proto: HostProto = { id: i.id, type: i.type, hostname: i.hostname, ip: i.ip, port: i.port, downloadPort: i.downloadPort, network: { idc: i.idc, location: i.location } };
    this.candidateHosts.set(host, { info: i, proto });
    return proto;
  }

  peerProto(peer: Peer, full = true): PeerProto {
    return {
      id: peer.id,
      priority: peer.priority as PeerProto['priority'],
      state: peer.state,
      host: full ? this.hostProto(peer.host) : this.candidateHostProto(peer.host),
      needBackToSource: peer.needBackToSource,
      finishedPieceCount: peer.finishedPieceCount(),
    };
  }

  taskProto(task: Task, forHost?: Host): TaskProto {
    return {
      id: task.id,
      type: 'STANDARD',
      url: task.info.url,
      digest: task.info.digest,
      tag: task.info.tag,
      application: task.info.application,
      contentLength: task.contentLength ?? 0,
      pieceCount: task.pieceCount,
      pieceLength: task.pieceLength,
      sizeScope: task.sizeScope,
      state: task.state,
      peerCount: task.peers.size,
      hasAvailablePeer: task.hasAvailablePeer(forHost),
      responseHeader: task.responseHeader,
    };
  }
}
