/**
 * The scheduler's domain service: what happens on each AnnouncePeer message, host announce
 * and stat/delete call. It validates each message against what the scheduler knows, applies
 * it to the resource model (resource/) and leaves the decisions to scheduling/: the decider
 * (parents, wait, back to source, seed trigger) and the peer scheduler that answers on the
 * peer's session and re-examines waiting peers. No gRPC here: answers go out through a
 * `PeerSession`, errors are typed (services/common/errors) and mapped once by the transport
 * (grpc-handlers.ts).
 */
import type { Logger } from '../common/logger';
import type { Context } from '@opentelemetry/api';
import { SchedulerTrace } from './tracing';
import { FailedPreconditionError, InvalidArgumentError, NotFoundError, PermissionDeniedError, ResourceExhaustedError } from '../common/errors';
import type { AnnounceHostRequest__Output, AnnouncePeerRequest__Output, Host as HostProto, Peer as PeerProto, Task as TaskProto } from '../proto';
import { Peer, removeEdge, removeInEdges, type Host, type HostInfo, type PeerSession, type Task } from './resource/model';
import { canPeerTransition, canTaskTransition, isReceived, type PeerEvent } from './resource/state';
import type { GcPass, GcPolicy, GcResult, ResourceStore } from './resource/store';
import { Decider } from './scheduling/decider';
import { PeerScheduler } from './scheduling/peer-scheduler';
import { SeedTriggering } from './scheduling/seeds';
import { DEFAULT_LIMITS, NO_EVENTS, type SchedulerEvents, type SchedulerLimits, type SchedulingSettings } from './scheduling/settings';
import type { SeedHost, SeedTrigger } from './seed-peers';
import { MIN_ANNOUNCE_INTERVAL_MS, checkDownload, checkHeaders, checkHost, checkId, checkPiece, checkTaskId, checkTaskMetadata, normalizeIp, pieceLengthFromCount } from './validation';
import { WireShapes } from './wire-shapes';

export { DEFAULT_LIMITS, NO_EVENTS, type SchedulerEvents, type SchedulerLimits, type SchedulingSettings } from './scheduling/settings';
export { SEED_FAILURE_BACKOFF_MS, SEED_RETRY_MIN_MS, seedRetryDelayMs } from './scheduling/seeds';

/** One AnnouncePeer stream: the caller's IP, the session to answer on and the peer once registered. */
export interface PeerStream {
  readonly caller: string;
  readonly session: PeerSession;
  peer?: Peer;
  /** The caller's trace context from the stream's metadata (issue 18). */
  readonly traceContext?: Context;
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
  /** Spans of registrations and decisions (issue 18). */
  readonly trace?: SchedulerTrace;
  readonly logger: Logger;
  readonly now?: () => number;
}

export class SchedulerService {
  readonly store: ResourceStore;
  private readonly managerSeeds: () => readonly SeedHost[];
  private readonly events: SchedulerEvents;
  private readonly trace: SchedulerTrace;
  private readonly logger: Logger;
  private readonly now: () => number;
  readonly limits: SchedulerLimits;
  /** Open AnnouncePeer streams per caller IP (entries go at zero, so bounded by open streams). */
  private readonly streamsByCaller = new Map<string, number>();
  private readonly wire = new WireShapes();
  private readonly seeds: SeedTriggering;
  private readonly scheduler: PeerScheduler;

  constructor(options: SchedulerServiceOptions) {
    this.store = options.store;
    this.managerSeeds = options.managerSeeds ?? (() => []);
    this.events = options.events ?? NO_EVENTS;
    this.trace = options.trace ?? SchedulerTrace.disabled();
    this.logger = options.logger;
    this.now = options.now ?? Date.now;
    this.limits = options.limits ?? DEFAULT_LIMITS;
    const taskHeld = (task: Task): boolean => this.store.tasks.has(task.id);
    this.seeds = new SeedTriggering({
      trigger: options.trigger,
      hosts: () => this.store.hosts.values(),
      trustedSeeds: this.managerSeeds,
      onSettled: (task) => this.scheduler.wakeWaiting(task),
      logger: this.logger,
      now: this.now,
    });
    const decider = new Decider({ seeds: this.seeds, requestOf: (peer) => peer.request });
    this.scheduler = new PeerScheduler({ decider, settings: options.settings, wire: this.wire, taskHeld, events: this.events, logger: this.logger, trace: this.trace });
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
    for (const p of host.peers) this.scheduler.closeSession(p);
    this.scheduler.rescue(this.store.removeHost(host));
    for (const t of tasks) this.scheduler.wakeWaiting(t);
  }

  /** Seed hosts: trusted SUPER hosts that announced themselves plus the trusted list. */
  seedHosts(): SeedHost[] {
    return this.seeds.seedHosts();
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
      this.scheduler.closeSession(previous);
      this.scheduler.rescue(this.store.removePeer(previous));
    }
    // A dfdaemon serves a task it holds from its own store, so a host asking for it again under
    // a new peer id no longer holds what its earlier, disconnected peers had (cache wiped,
    // restarted): forget them instead of offering them as parents or waiting on them. Peers of
    // the host still on a live stream are left alone.
    // The host's peers of this task, found from whichever of the two indexes is smaller (a
    // dfdaemon holding many tasks, or a task on many hosts); both keep registration order.
    const stalePeers: Peer[] = [];
    if (host.peers.size <= task.peers.size) {
      for (const p of host.peers) if (p.task === task) stalePeers.push(p);
    } else {
      for (const p of task.peers.values()) if (p.host === host) stalePeers.push(p);
    }
    for (const stale of stalePeers) {
      if (stale.id === req.peerId || stale.session) continue;
      this.logger.info({ task: task.id, peer: stale.id, host: host.id }, 'host registered the task again: dropping its earlier peer');
      this.scheduler.closeSession(stale);
      this.scheduler.rescue(this.store.removePeer(stale));
    }
    const peer = new Peer(req.peerId, task, host, now, {
      priority: download.priority,
      needBackToSource: download.needBackToSource || host.isSeed,
    });
    peer.session = stream.session;
    peer.request = download;
    this.store.addPeer(peer);
    stream.peer = peer;
    this.events.registerPeer();
    this.trace.registered(peer, stream.traceContext, download); // telemetry
    if (canTaskTransition(task.state, 'Download') && (task.state !== 'Succeeded' || !task.hasAvailablePeer(host))) task.transition('Download');
    this.scheduler.schedule(peer);
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
    this.scheduler.becameParent(peer);
  }

  private reschedule(peer: Peer, failedParents: readonly string[]): void {
    // Only peers of the task can be blocked, so the set stays within limits.peersPerTask.
    for (const id of failedParents) if (peer.task.peers.has(id)) peer.block(id);
    peer.retryCount++;
    this.scheduler.forgetAnswer(peer);
    this.scheduler.schedule(peer);
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
    if (peer.isSeed) this.seeds.succeeded(task);
    peer.markAllPieces();
    peer.sentToOrigin = false;
    task.originPeers.delete(peer);
    task.waiting.delete(peer);
    task.underServed.delete(peer);
    const hadParents = peer.parents.size > 0;
    removeInEdges(peer);
    if (canTaskTransition(task.state, 'DownloadSucceeded')) task.transition('DownloadSucceeded');
    this.scheduler.becameParent(peer, hadParents);
  }

  private peerFailed(peer: Peer, description: string): void {
    const task = peer.task;
    if (peer.state === 'Failed') return;
    this.applyPeerEvent(peer, 'DownloadFailed');
    this.logger.debug({ peer: peer.id, task: task.id, description }, 'peer failed');
    if (peer.isSeed && (peer.sentToOrigin || task.originPeers.has(peer))) this.seeds.failed(task);
    this.scheduler.detach(peer);
    const active = [...task.peers.values()].some((p) => p.state === 'Running' || p.state === 'BackToSource' || p.state === 'Succeeded');
    if (!active && canTaskTransition(task.state, 'DownloadFailed')) task.transition('DownloadFailed');
    this.scheduler.wakeWaiting(task);
  }

  private leave(peer: Peer): void {
    const task = peer.task;
    if (peer.isSeed && task.originPeers.has(peer)) this.seeds.failed(task);
    this.applyPeerEvent(peer, 'Leave');
    this.scheduler.detach(peer);
    this.scheduler.wakeWaiting(task);
  }

  private pieceFinished(peer: Peer, number: number, parentId: string, length: number, costNs: number, traffic: string): void {
    if (peer.state === 'ReceivedNormal' || peer.state === 'ReceivedSmall' || peer.state === 'ReceivedTiny') this.applyPeerEvent(peer, 'Download');
    const fresh = peer.markPiece(number);
    if (length > 0) this.events.traffic(traffic, length);
    this.trace.piece(peer, traffic, length, parentId ? this.store.peers.get(parentId) : undefined); // telemetry: upstream metrics
    if (parentId) {
      const parent = this.store.peers.get(parentId);
      if (parent) parent.recordPieceCost(costNs);
    }
    if (fresh && peer.finishedPieceCount() === 1 && peer.state === 'Running') this.scheduler.becameParent(peer);
  }

  private pieceFailed(peer: Peer, parentId: string): void {
    if (!parentId || !peer.task.peers.has(parentId)) return;
    peer.block(parentId);
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
    const previousState = peer.state; // telemetry
    peer.transition(event);
    // A finished peer is only a parent from now on: its register request (headers, options)
    // and its blocklist are no longer read, and finished peers stay in the store until peerTTL.
    if (peer.state === 'Succeeded') peer.dropDownloadState();
    this.trace.peerEvent(peer, event, previousState); // telemetry
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
      pieces: peer.pieceNumbers().map((number) => ({ number })),
    };
  }

  deletePeer(peerId: string, caller: string): void {
    const peer = this.store.peers.get(peerId);
    if (!peer) throw new NotFoundError(`peer ${peerId} not found`);
    if (peer.host.owner !== caller) throw new PermissionDeniedError(`peer ${peerId} is on host ${peer.host.id} announced from ${peer.host.owner}; ${caller} may not delete it`);
    this.scheduler.closeSession(peer);
    if (canPeerTransition(peer.state, 'Leave')) peer.transition('Leave');
    this.scheduler.detach(peer);
    this.store.removePeer(peer);
    this.scheduler.wakeWaiting(peer.task);
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
      this.scheduler.closeSession(peer);
      if (canPeerTransition(peer.state, 'Leave')) peer.transition('Leave');
      this.scheduler.detach(peer);
      this.store.removePeer(peer);
    }
    if (!hostId) {
      this.store.tasks.delete(task.id);
      this.scheduler.forgetTask(task);
    } else this.scheduler.wakeWaiting(task);
  }

  /** One whole GC pass at once. */
  gc(policy: GcPolicy): GcResult {
    return this.afterGc(this.store.gc(this.now(), policy), true);
  }

  /**
   * One slice of a GC pass (at most `budget` entries visited): what it collected has its streams
   * closed, orphans rescheduled and waiting peers of touched tasks woken, as after a whole pass.
   */
  gcStep(pass: GcPass, budget: number): GcResult {
    return this.afterGc(pass.step(this.now(), budget), pass.done);
  }

  private afterGc(result: GcResult, passDone: boolean): GcResult {
    if (passDone) this.scheduler.sweepTimers();
    const touched = new Set<Task>();
    for (const peer of result.removedPeers) {
      this.scheduler.closeSession(peer);
      if (this.store.tasks.has(peer.task.id)) touched.add(peer.task);
    }
    this.scheduler.rescue(result.orphans);
    for (const task of touched) this.scheduler.wakeWaiting(task);
    if (result.hosts.length + result.peers.length + result.tasks.length > 0) this.logger.info({ hosts: result.hosts.length, peers: result.peers.length, tasks: result.tasks.length }, 'garbage collected');
    return result;
  }

  close(): void {
    this.scheduler.close();
  }

  // ---------------------------------------------------------------- wire shapes

  hostProto(host: Host): HostProto {
    return this.wire.host(host);
  }

  peerProto(peer: Peer, full = true): PeerProto {
    return this.wire.peer(peer, full);
  }

  taskProto(task: Task, forHost?: Host): TaskProto {
    return this.wire.task(task, forHost);
  }
}
