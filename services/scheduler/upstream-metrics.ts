/**
 * The scheduler metrics of Dragonfly's published reference (names, types, label sets), so
 * existing dashboards and alerts work: `dragonfly_scheduler_register_peer_total{priority,
 * task_type,task_tag,task_app,host_type}` and its family, piece and traffic counters by
 * traffic type, `host_traffic` per host when `metrics.enableHost` is on, peer download
 * durations, concurrent decisions and the version. Fed by the service's hooks (see tracing.ts).
 */
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import { DeferredCounter } from './deferred-counter';
import type { Peer } from './resource/model';
import type { PeerEvent } from './resource/state';

const PEER_LABELS = ['priority', 'task_type', 'task_tag', 'task_app', 'host_type'] as const;
const PIECE_LABELS = ['traffic_type', 'task_type', 'task_tag', 'task_app', 'host_type'] as const;
const TRAFFIC_LABELS = ['type', 'task_type', 'task_tag', 'task_app', 'host_type'] as const;
const HOST_TRAFFIC_LABELS = [...TRAFFIC_LABELS, 'host_id', 'host_ip', 'host_name'] as const;
const ANNOUNCE_HOST_LABELS = ['os', 'platform', 'platform_family', 'platform_version', 'kernel_version', 'git_version', 'git_commit', 'go_version', 'build_platform'] as const;

export const PROJECT_VERSION = '0.1.0';

/** Upstream's host_type label values. */
function hostType(peer: Peer): string {
  return peer.isSeed ? 'super' : 'normal';
}

type PairCounter<L extends string> = { ok: Counter<L>; failed: Counter<L> };
type DeferredPair<L extends string> = { ok: DeferredCounter<L>; failed: DeferredCounter<L> };
type PeerLabels = Record<(typeof PEER_LABELS)[number], string>;

/**
 * A peer's label set, computed once (its host type again only if its host stops being a
 * seed), with the key its series go under in the deferred counters.
 */
export interface PeerSeries {
  readonly labels: PeerLabels;
  readonly key: string;
  /** The labels piece and traffic series share (all but priority) and their key. */
  readonly rest: { readonly task_type: string; readonly task_tag: string; readonly task_app: string; readonly host_type: string };
  readonly restKey: string;
}

/**
 * Label sets already built, by key: peers share them (a few per cluster: priority × tag ×
 * application × host type). Tags and applications come from peers, so the cache is bounded;
 * beyond it each peer gets its own set.
 */
const SERIES_CACHE_LIMIT = 1024;
const seriesCache = new Map<string, PeerSeries>();

function peerSeries(priority: string, tag: string, app: string, hostType: string): PeerSeries {
  const key = `${priority.length}:${priority}${tag.length}:${tag}${app.length}:${app}${hostType}`;
  const cached = seriesCache.get(key);
  if (cached) return cached;
  const s = buildSeries(priority, tag, app, hostType);
  if (seriesCache.size < SERIES_CACHE_LIMIT) seriesCache.set(key, s);
  return s;
}

function buildSeries(priority: string, tag: string, app: string, hostType: string): PeerSeries {
  const rest = { task_type: 'STANDARD', task_tag: tag, task_app: app, host_type: hostType };
  // Label values may hold any character: the lengths make the joined key unambiguous.
  const restKey = `${tag.length}:${tag}${app.length}:${app}${hostType}`;
  return { labels: { priority, ...rest }, key: `${priority}\0${restKey}`, rest, restKey };
}

export class SchedulerUpstreamMetrics {
  private readonly registerPeer: DeferredPair<(typeof PEER_LABELS)[number]>;
  private readonly downloadPeerStarted: DeferredPair<(typeof PEER_LABELS)[number]>;
  private readonly backToSourceStarted: DeferredPair<(typeof PEER_LABELS)[number]>;
  private readonly downloadPeerFinished: DeferredPair<(typeof PEER_LABELS)[number]>;
  private readonly backToSourceFinishedFailure: DeferredCounter<(typeof PEER_LABELS)[number]>;
  private readonly downloadPiece: DeferredPair<(typeof PIECE_LABELS)[number]>;
  private readonly traffic: DeferredCounter<(typeof TRAFFIC_LABELS)[number]>;
  private readonly hostTraffic: Counter<(typeof HOST_TRAFFIC_LABELS)[number]> | undefined;
  private readonly duration: Histogram<(typeof PEER_LABELS)[number]>;
  /** Decisions in progress (read into dragonfly_scheduler_concurrent_schedule_total when scraped). */
  private inFlight = 0;
  readonly announcePeer: PairCounter<never>;
  readonly statTask: PairCounter<never>;
  readonly leaveHost: PairCounter<never>;
  readonly announceHost: PairCounter<(typeof ANNOUNCE_HOST_LABELS)[number]>;

  constructor(registry: Registry, options: { enableHost: boolean; now?: () => number }) {
    const registers = [registry];
    const pair = <L extends string>(name: string, help: string, labelNames: readonly L[]): PairCounter<L> => ({
      ok: new Counter({ name: `dragonfly_scheduler_${name}_total`, help, labelNames, registers }),
      failed: new Counter({ name: `dragonfly_scheduler_${name}_failure_total`, help: `${help} (failed)`, labelNames, registers }),
    });
    const deferredPair = <L extends string>(name: string, help: string, labelNames: readonly L[]): DeferredPair<L> => ({
      ok: new DeferredCounter({ name: `dragonfly_scheduler_${name}_total`, help, labelNames, registers }),
      failed: new DeferredCounter({ name: `dragonfly_scheduler_${name}_failure_total`, help: `${help} (failed)`, labelNames, registers }),
    });
    this.now = options.now ?? Date.now;
    this.announcePeer = pair('announce_peer', 'AnnouncePeer streams opened', []);
    this.registerPeer = deferredPair('register_peer', 'Peers registered for a task', PEER_LABELS);
    this.downloadPeerStarted = deferredPair('download_peer_started', 'Peers that started downloading from parents', PEER_LABELS);
    this.backToSourceStarted = deferredPair('download_peer_back_to_source_started', 'Peers that started downloading from the origin', PEER_LABELS);
    this.downloadPeerFinished = deferredPair('download_peer_finished', 'Peers that finished a download', PEER_LABELS);
    this.backToSourceFinishedFailure = new DeferredCounter({ name: 'dragonfly_scheduler_download_peer_back_to_source_finished_failure_total', help: 'Peers whose back-to-source download failed', labelNames: PEER_LABELS, registers });
    this.downloadPiece = deferredPair('download_piece_finished', 'Pieces reported downloaded, by traffic type', PIECE_LABELS);
    new Counter({ name: 'dragonfly_scheduler_download_piece_back_to_source_finished_failure_total', help: 'Back-to-source pieces reported failed', labelNames: PIECE_LABELS, registers });
    this.statTask = pair('stat_task', 'StatTask calls', []);
    this.announceHost = pair('announce_host', 'AnnounceHost calls', ANNOUNCE_HOST_LABELS);
    this.leaveHost = pair('leave_host', 'DeleteHost calls (hosts leaving)', []);
    this.traffic = new DeferredCounter({ name: 'dragonfly_scheduler_traffic', help: 'Piece bytes reported by peers, by traffic type (REMOTE_PEER: P2P, BACK_TO_SOURCE: origin)', labelNames: TRAFFIC_LABELS, registers });
    // Per-host series grow with the number of hosts: only with metrics.enableHost, as upstream.
    this.hostTraffic = options.enableHost
      ? new Counter({ name: 'dragonfly_scheduler_host_traffic', help: 'Piece bytes per host: download (received) and upload (sent as parent)', labelNames: HOST_TRAFFIC_LABELS, registers })
      : undefined;
    this.duration = new Histogram({
      name: 'dragonfly_scheduler_download_peer_duration_milliseconds',
      help: 'Time from a peer registering to its download finishing',
      labelNames: PEER_LABELS,
      buckets: [100, 200, 500, 1000, 1500, 2000, 3000, 5000, 10_000, 20_000, 60_000, 120_000, 300_000],
      registers,
    });
    const inFlight = (): number => this.inFlight;
    new Gauge({
      name: 'dragonfly_scheduler_concurrent_schedule_total',
      help: 'Scheduling decisions in progress',
      registers,
      collect() {
        this.set(inFlight());
      },
    });
    new Gauge({ name: 'dragonfly_scheduler_version', help: 'Version of the scheduler', labelNames: ['major', 'minor', 'git_version', 'git_commit', 'platform', 'build_time', 'go_version', 'go_tags', 'go_gcflags'], registers }).set(
      { major: PROJECT_VERSION.split('.')[0], minor: PROJECT_VERSION.split('.')[1], git_version: `v${PROJECT_VERSION}`, git_commit: '', platform: `${process.platform}/${process.arch}`, build_time: '', go_version: `node ${process.version}`, go_tags: '', go_gcflags: '' },
      1,
    );
  }

  private readonly now: () => number;
  /** The peer's label set (from its register request; from the task and host when it has none). */
  private seriesOf(peer: Peer): PeerSeries {
    const s = peer.metricSeries;
    const type = hostType(peer);
    if (s && s.labels.host_type === type) return s;
    const fresh = peerSeries(s?.labels.priority ?? peer.priority, s?.labels.task_tag ?? peer.task.info.tag ?? '', s?.labels.task_app ?? peer.task.info.application ?? '', type);
    peer.metricSeries = fresh;
    return fresh;
  }

  registered(peer: Peer, download: { tag?: string; application?: string; priority?: string }): void {
    const s = peerSeries(download.priority ?? peer.priority, download.tag ?? '', download.application ?? '', hostType(peer));
    peer.metricSeries = s;
    this.registerPeer.ok.add(s.key, s.labels);
  }

  /** A peer state change (the service's applyPeerEvent). */
  peerEvent(peer: Peer, event: PeerEvent, previousState: string): void {
    if (event === 'Download') {
      if (previousState.startsWith('Received') || previousState === 'Pending') this.count(this.downloadPeerStarted.ok, peer);
    } else if (event === 'DownloadBackToSource') this.count(this.backToSourceStarted.ok, peer);
    else if (event === 'DownloadSucceeded') {
      const s = this.count(this.downloadPeerFinished.ok, peer);
      this.duration.observe(s.labels, Math.max(0, this.now() - peer.createdAt));
    } else if (event === 'DownloadFailed') {
      const s = this.count(this.downloadPeerFinished.failed, peer);
      if (previousState === 'BackToSource') this.backToSourceFinishedFailure.add(s.key, s.labels);
    }
  }

  private count(counter: DeferredCounter<(typeof PEER_LABELS)[number]>, peer: Peer): PeerSeries {
    const s = this.seriesOf(peer);
    counter.add(s.key, s.labels);
    return s;
  }

  /** A piece reported by `peer`, fetched from `parent` (undefined: the origin). */
  piece(peer: Peer, trafficType: string, bytes: number, parent: Peer | undefined): void {
    const s = this.seriesOf(peer);
    const key = `${trafficType}\0${s.restKey}`;
    (this.downloadPiece.ok.at(key) ?? this.downloadPiece.ok.open(key, { traffic_type: trafficType, ...s.rest })).value++;
    if (bytes <= 0) return;
    (this.traffic.at(key) ?? this.traffic.open(key, { type: trafficType, ...s.rest })).value += bytes;
    if (this.hostTraffic) {
      const rest = s.rest;
      const h = peer.host.info;
      this.hostTraffic.inc({ type: 'download', ...rest, host_id: h.id, host_ip: h.ip, host_name: h.hostname }, bytes);
      if (parent) {
        const p = parent.host.info;
        this.hostTraffic.inc({ type: 'upload', ...rest, host_type: hostType(parent), host_id: p.id, host_ip: p.ip, host_name: p.hostname }, bytes);
      }
    }
  }

  /** The outcome of a gRPC call the reference counts (AnnouncePeer stream, StatTask, AnnounceHost, DeleteHost). */
  call(method: string, ok: boolean): void {
    const pick = (p: PairCounter<string>) => (ok ? p.ok : p.failed);
    if (method === 'AnnouncePeer') pick(this.announcePeer).inc();
    else if (method === 'StatTask') pick(this.statTask).inc();
    else if (method === 'DeleteHost') pick(this.leaveHost).inc();
    // The announce carries no OS or build fields here: those labels stay empty.
    else if (method === 'AnnounceHost') pick(this.announceHost).inc({ os: '', platform: '', platform_family: '', platform_version: '', kernel_version: '', git_version: '', git_commit: '', go_version: '', build_platform: '' });
  }

  scheduling(delta: 1 | -1): void {
    this.inFlight += delta;
  }
}
