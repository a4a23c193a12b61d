/**
 * dfdaemon's spans. A download is one `dfdaemon.download_task` span (child of the proxy or
 * dfget request, or of the scheduler's seed trigger), with one `dfdaemon.download_from_parent`
 * batch span per parent, `dfdaemon.back_to_source` (with `origin.request` spans for the
 * length probe) when pieces come from the origin; its context travels to the scheduler on the
 * AnnouncePeer metadata and to parents in the piece requests' `traceparent`. A parent's
 * answers to one child are one `dfdaemon.upload_pieces` batch span.
 */
import { INVALID_SPAN_CONTEXT, SpanKind, context as apiContext, trace, type Context, type Span } from '@opentelemetry/api';
import type * as grpc from '@grpc/grpc-js';
import { ATTR, PieceBatchSpan, Tracing, contextOfHeaders, inSpan, contextOfMetadata, endSpan, traceHeaders, traceMetadata } from '../common/telemetry';
import type { HostIdentity } from './control-plane';
import type { DownloadOptions } from './task-api';
import type { ClientUpstreamMetrics } from './upstream-metrics';

const tracings = new WeakMap<object, Tracing>();
const clientMetrics = new WeakMap<object, ClientUpstreamMetrics>();

/** Ties a program's tracing (and upstream client metrics) to its engine (TaskManager), so the engine's classes find them. */
export function attachTracing(engine: object, tracing: Tracing, metrics?: ClientUpstreamMetrics): void {
  tracings.set(engine, tracing);
  if (metrics) clientMetrics.set(engine, metrics);
}

export function tracingOf(engine: object): Tracing {
  return tracings.get(engine) ?? DISABLED;
}
const DISABLED = Tracing.disabled();

/** Resource attributes of a dfdaemon host. */
export function hostAttributes(host: HostIdentity, clusterId: number | undefined): Record<string, string | number> {
  return {
    'host.name': host.hostname,
    'host.ip': host.ip,
    [ATTR.HOST_ID]: host.id,
    [ATTR.HOST_TYPE]: host.seed ? 'super' : 'normal',
    [ATTR.IDC]: host.idc,
    [ATTR.LOCATION]: host.location,
    ...(clusterId ? { [ATTR.CLUSTER_ID]: clusterId } : {}),
  };
}

/** The spans of one TaskDownload. */
export class DownloadTrace {
  private readonly span: Span;
  private readonly ctx: Context;
  private readonly parents = new Map<string, PieceBatchSpan>();
  private origin: PieceBatchSpan | undefined;
  private ended = false;
  private readonly recordEnd: ((result: { error?: Error; contentLength?: number }) => void) | undefined;

  constructor(
    private readonly tracing: Tracing,
    taskId: string,
    peerId: string,
    options: DownloadOptions,
    parent: Context = apiContext.active(),
    metrics?: ClientUpstreamMetrics,
  ) {
    this.recordEnd = metrics?.downloadStarted(options);
    this.span = tracing.tracer.startSpan(
      'dfdaemon.download_task',
      {
        kind: SpanKind.INTERNAL,
        attributes: {
          [ATTR.HTTP_URL]: options.url,
          [ATTR.URL_FULL]: options.url,
          [ATTR.TASK_ID]: taskId,
          [ATTR.PEER_ID]: peerId,
          ...(options.tag ? { 'dragonfly.task.tag': options.tag } : {}),
          ...(options.application ? { 'dragonfly.task.application': options.application } : {}),
        },
      },
      parent,
    );
    this.ctx = trace.setSpan(parent, this.span);
  }

  static for(engine: object, taskId: string, peerId: string, options: DownloadOptions): DownloadTrace {
    return new DownloadTrace(tracingOf(engine), taskId, peerId, options, apiContext.active(), clientMetrics.get(engine));
  }

  /** Metadata for the AnnouncePeer stream: the scheduler's spans become children of this download. */
  metadata(): grpc.Metadata {
    return traceMetadata(this.ctx);
  }

  event(name: string, attributes: Record<string, string | number | boolean> = {}): void {
    if (!this.ended) this.span.addEvent(name, attributes);
  }

  private parentSpan(parentId: string, ip: string): PieceBatchSpan {
    let s = this.parents.get(parentId);
    if (!s) {
      s = new PieceBatchSpan(this.tracing.tracer, 'dfdaemon.download_from_parent', this.ctx, { [ATTR.PARENT_ID]: parentId, [ATTR.PARENT_IP]: ip, [ATTR.TRAFFIC]: 'REMOTE_PEER' });
      this.parents.set(parentId, s);
    }
    return s;
  }

  /** `traceparent` for a piece request to this parent (computed once per parent). */
  pieceHeaders(parentId: string, ip: string): Record<string, string> {
    if (this.ended) return {};
    let h = this.headers.get(parentId);
    if (!h) {
      h = traceHeaders(this.parentSpan(parentId, ip).context);
      this.headers.set(parentId, h);
    }
    return h;
  }
  private readonly headers = new Map<string, Record<string, string>>();

  pieceFromParent(parentId: string, ip: string, number: number, length: number, costNs: number): void {
    if (!this.ended) this.parentSpan(parentId, ip).piece(number, length, costNs);
  }

  parentFailed(parentId: string, ip: string, number: number | undefined, reason: string): void {
    if (this.ended) return;
    const s = this.parentSpan(parentId, ip);
    s.failure(number, reason);
    s.end(new Error(`parent blocked: ${reason}`));
  }

  /** The back-to-source span (created on first use). */
  private originSpan(url: string): PieceBatchSpan {
    this.origin ??= new PieceBatchSpan(this.tracing.tracer, 'dfdaemon.back_to_source', this.ctx, { [ATTR.HTTP_URL]: url, [ATTR.URL_FULL]: url, [ATTR.TRAFFIC]: 'BACK_TO_SOURCE' });
    return this.origin;
  }

  backToSourceStarted(url: string): void {
    if (!this.ended) this.originSpan(url);
  }

  /** One origin request (length probe) as a client span under back-to-source. */
  async originRequest<T>(method: string, url: string, work: () => Promise<T>): Promise<T> {
    if (this.ended) return work();
    const parent = this.originSpan(url).context;
    const span = this.tracing.tracer.startSpan('origin.request', { kind: SpanKind.CLIENT, attributes: { [ATTR.HTTP_URL]: url, [ATTR.URL_FULL]: url, [ATTR.HTTP_METHOD]: method } }, parent);
    try {
      const v = await work();
      endSpan(span);
      return v;
    } catch (err) {
      endSpan(span, err);
      throw err;
    }
  }

  pieceFromOrigin(url: string, number: number, length: number, costNs: number): void {
    if (!this.ended) this.originSpan(url).piece(number, length, costNs);
  }

  originFailed(url: string, number: number | undefined, err: Error): void {
    if (!this.ended) this.originSpan(url).failure(number, err.message.slice(0, 200));
  }

  /** Ends every span of the download; later calls do nothing. */
  end(result: { error?: Error; contentLength?: number; backToSource?: boolean }): void {
    if (this.ended) return;
    this.recordEnd?.(result);
    for (const s of this.parents.values()) s.end();
    this.origin?.end(result.error && this.origin ? result.error : undefined);
    if (result.contentLength !== undefined) this.span.setAttribute('dragonfly.task.content_length', result.contentLength);
    this.ended = true;
    endSpan(this.span, result.error);
  }
}

/** Idle time after which a parent's batch of answers to one child span ends. */
const UPLOAD_BATCH_IDLE_MS = 2000;
/** Upload batch spans open at once; beyond it the oldest ends early. */
const MAX_UPLOAD_BATCHES = 256;

/**
 * The upload side of piece transfers: requests carrying the same `traceparent` (one child's
 * transfer from this parent) are one `dfdaemon.upload_pieces` span, ended when idle.
 */
export class UploadTrace {
  private readonly batches = new Map<string, { span: PieceBatchSpan; timer: NodeJS.Timeout; lastAt: number }>();

  constructor(private tracing: Tracing = DISABLED) {}

  /** The program's tracing, once the host identity (its resource) is known. */
  use(tracing: Tracing): void {
    this.tracing = tracing;
  }

  served(headers: Record<string, string | string[] | undefined>, taskId: string, bytes: number, pieceOffset: number): void {
    if (!this.tracing.enabled) return;
    const parentHeader = headers.traceparent;
    const key = typeof parentHeader === 'string' ? parentHeader.slice(0, 64) : undefined;
    if (!key) return;
    let b = this.batches.get(key);
    if (b) {
      clearTimeout(b.timer);
      this.batches.delete(key);
    } else {
      if (this.batches.size >= MAX_UPLOAD_BATCHES) {
        const [oldest, first] = this.batches.entries().next().value as [string, { span: PieceBatchSpan; timer: NodeJS.Timeout; lastAt: number }];
        clearTimeout(first.timer);
        first.span.end(undefined, first.lastAt);
        this.batches.delete(oldest);
      }
      const span = new PieceBatchSpan(this.tracing.tracer, 'dfdaemon.upload_pieces', contextOfHeaders(headers), { [ATTR.TASK_ID]: taskId, [ATTR.TRAFFIC]: 'REMOTE_PEER' });
      span.span.setAttribute('dragonfly.upload', true);
      b = { span, timer: setTimeout(() => undefined, 0), lastAt: Date.now() };
    }
    b.span.piece(pieceOffset, bytes, 0, 'piece.offset');
    b.lastAt = Date.now();
    const batch = b;
    batch.timer = setTimeout(() => {
      batch.span.end(undefined, batch.lastAt);
      if (this.batches.get(key) === batch) this.batches.delete(key);
    }, UPLOAD_BATCH_IDLE_MS);
    batch.timer.unref();
    this.batches.set(key, batch);
  }

  close(): void {
    for (const b of this.batches.values()) {
      clearTimeout(b.timer);
      b.span.end(undefined, b.lastAt);
    }
    this.batches.clear();
  }
}

/**
 * Runs one incoming request (proxy GET, DownloadTask call) in a server span carrying
 * `http.url`; the download it starts is its child. `parent`: the caller's trace context.
 */
export async function inRequestSpan<T>(
  engine: object,
  name: string,
  attributes: { url: string; method?: string },
  parent: Context,
  work: (span: Span) => Promise<T>,
): Promise<T> {
  const tracing = tracingOf(engine);
  if (!tracing.enabled) return work(trace.wrapSpanContext(INVALID_SPAN_CONTEXT));
  const spanAttributes = { [ATTR.HTTP_URL]: attributes.url, [ATTR.URL_FULL]: attributes.url, ...(attributes.method ? { [ATTR.HTTP_METHOD]: attributes.method } : {}) };
  return inSpan(tracing.tracer, name, { kind: SpanKind.SERVER, attributes: spanAttributes }, work, parent);
}

/** The trace context of an incoming gRPC call. */
export function contextOfCall(metadata: grpc.Metadata): Context {
  return contextOfMetadata(metadata);
}
