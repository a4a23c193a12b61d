/**
 * The scheduler's spans: `scheduler.announce_peer` for a peer's time on this scheduler (child
 * of the dfdaemon's download, from the AnnouncePeer metadata), `scheduler.register_peer` when
 * it registers, and one `scheduler.schedule` per decision with what was decided. A seed
 * trigger sent during a decision carries that decision's context, so the seed peer's
 * back-to-source lands in the same trace.
 */
import { SpanKind, context as apiContext, trace, type Context, type Span } from '@opentelemetry/api';
import { ATTR, Tracing, endSpan } from '../common/telemetry';
import type { Peer } from './resource/model';
import type { PeerEvent } from './resource/state';
import type { SchedulerUpstreamMetrics } from './upstream-metrics';

const TERMINAL: ReadonlySet<PeerEvent> = new Set<PeerEvent>(['DownloadSucceeded', 'DownloadFailed', 'Leave']);

export class SchedulerTrace {
  private readonly peers = new WeakMap<Peer, { span: Span; ctx: Context }>();
  /** The decision being made (schedule() runs synchronously; nested decisions stack). */
  private readonly deciding: Span[] = [];

  constructor(
    readonly tracing: Tracing,
    private readonly clusterId: number,
    /** Dragonfly's published scheduler metrics, fed by the same hooks. */
    private readonly metrics?: SchedulerUpstreamMetrics,
  ) {}

  /** Whether spans are recorded (decided() does nothing otherwise: callers skip building its details). */
  get enabled(): boolean {
    return this.tracing.enabled;
  }

  static disabled(): SchedulerTrace {
    return new SchedulerTrace(Tracing.disabled(), 0);
  }

  /** A piece `peer` reported (from `parent`, or the origin when undefined). */
  piece(peer: Peer, trafficType: string, bytes: number, parent: Peer | undefined): void {
    this.metrics?.piece(peer, trafficType, bytes, parent);
  }

  /** A peer registered on a stream whose metadata carried `parent`. */
  registered(peer: Peer, parent: Context | undefined, download: { url: string; tag?: string; application?: string; priority?: string }): void {
    this.metrics?.registered(peer, download);
    if (!this.tracing.enabled) return;
    const from = parent ?? apiContext.active();
    const attributes = {
      [ATTR.PEER_ID]: peer.id,
      [ATTR.TASK_ID]: peer.task.id,
      [ATTR.HOST_ID]: peer.host.id,
      [ATTR.HTTP_URL]: download.url,
      [ATTR.CLUSTER_ID]: this.clusterId,
      [ATTR.IDC]: peer.host.info.idc,
      [ATTR.HOST_TYPE]: peer.isSeed ? 'super' : 'normal',
      'host.name': peer.host.info.hostname,
      'dragonfly.peer.priority': download.priority ?? 'LEVEL0',
    };
    const span = this.tracing.tracer.startSpan('scheduler.announce_peer', { kind: SpanKind.SERVER, attributes }, from);
    const ctx = trace.setSpan(from, span);
    this.peers.get(peer)?.span.end();
    this.peers.set(peer, { span, ctx });
    this.tracing.tracer.startSpan('scheduler.register_peer', { attributes }, ctx).end();
  }

  /** Runs one decision for `peer` in a `scheduler.schedule` span. */
  schedule<T>(peer: Peer, decide: () => T): T {
    this.metrics?.scheduling(1);
    try {
      return this.traceDecision(peer, decide);
    } finally {
      this.metrics?.scheduling(-1);
    }
  }

  private traceDecision<T>(peer: Peer, decide: () => T): T {
    const p = this.tracing.enabled ? this.peers.get(peer) : undefined;
    if (!p) return decide();
    const span = this.tracing.tracer.startSpan('scheduler.schedule', { attributes: { [ATTR.PEER_ID]: peer.id, 'dragonfly.peer.retry_count': peer.retryCount } }, p.ctx);
    this.deciding.push(span);
    try {
      const v = apiContext.with(trace.setSpan(p.ctx, span), decide);
      endSpan(span);
      return v;
    } catch (err) {
      endSpan(span, err);
      throw err;
    } finally {
      this.deciding.pop();
    }
  }

  /** The answer of the current decision. */
  decided(peer: Peer, kind: string, details: { parents?: readonly string[]; description?: string }): void {
    const span = this.deciding[this.deciding.length - 1];
    const attrs = {
      [ATTR.DECISION]: kind,
      ...(details.parents ? { 'dragonfly.schedule.parents': details.parents.join(','), 'dragonfly.schedule.parent_count': details.parents.length } : {}),
      ...(details.description ? { 'dragonfly.schedule.description': details.description.slice(0, 256) } : {}),
    };
    if (span) span.setAttributes(attrs);
    else this.peers.get(peer)?.span.addEvent('answer', attrs);
  }

  /** A state change; a finished, failed or departed peer's span ends. */
  peerEvent(peer: Peer, event: PeerEvent, previousState: string): void {
    this.metrics?.peerEvent(peer, event, previousState);
    const p = this.peers.get(peer);
    if (!p) return;
    p.span.addEvent(event);
    if (!TERMINAL.has(event)) return;
    p.span.setAttribute('dragonfly.peer.state', peer.state);
    endSpan(p.span, event === 'DownloadFailed' ? new Error(`peer ${peer.id} failed`) : undefined);
    this.peers.delete(peer);
  }
}
