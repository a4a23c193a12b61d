/**
 * Span names, attribute keys and the piece-batch span shared by the programs. Pieces are never
 * one span each: a transfer from one parent (or from the origin) is one span with counters and
 * the first pieces as events, so a 1 GiB task reads as a handful of spans.
 */
import { SpanStatusCode, context as apiContext, trace, type Attributes, type Context, type Span, type SpanOptions, type Tracer } from '@opentelemetry/api';

export const ATTR = {
  /** What the seeds search Jaeger by (the pre-1.21 semantic-conventions name). */
  HTTP_URL: 'http.url',
  URL_FULL: 'url.full',
  HTTP_METHOD: 'http.request.method',
  HTTP_STATUS: 'http.response.status_code',
  TASK_ID: 'dragonfly.task.id',
  PEER_ID: 'dragonfly.peer.id',
  HOST_ID: 'dragonfly.host.id',
  HOST_TYPE: 'dragonfly.host.type',
  IDC: 'dragonfly.host.idc',
  LOCATION: 'dragonfly.host.location',
  CLUSTER_ID: 'dragonfly.cluster.id',
  PARENT_ID: 'dragonfly.parent.peer.id',
  PARENT_IP: 'dragonfly.parent.host.ip',
  PIECES: 'dragonfly.pieces',
  BYTES: 'dragonfly.bytes',
  TRAFFIC: 'dragonfly.traffic.type',
  DECISION: 'dragonfly.schedule.decision',
} as const;

/** Piece events recorded per batch span; the rest only count. */
export const PIECE_EVENTS_PER_SPAN = 32;

/** Pieces moved under one span: piece count, bytes, time spent, failures, first pieces as events. */
export class PieceBatchSpan {
  private pieces = 0;
  private bytes = 0;
  private costNs = 0;
  private failures = 0;
  private ended = false;
  readonly span: Span;

  constructor(tracer: Tracer, name: string, parent: Context, attributes: Attributes) {
    this.span = tracer.startSpan(name, { attributes }, parent);
  }

  /** Context whose active span is this one (for headers/metadata of the piece requests). */
  get context(): Context {
    return trace.setSpan(apiContext.active(), this.span);
  }

  /** One piece moved; `at` says whether `position` is its number or (upload side) its byte offset. */
  piece(position: number, length: number, costNs: number, at: 'piece.number' | 'piece.offset' = 'piece.number'): void {
    if (this.ended) return;
    this.pieces++;
    this.bytes += length;
    this.costNs += costNs;
    if (this.pieces <= PIECE_EVENTS_PER_SPAN) this.span.addEvent('piece', { [at]: position, 'piece.length': length, 'piece.cost_ms': Math.round(costNs / 1e5) / 10 });
  }

  failure(number: number | undefined, reason: string): void {
    if (this.ended) return;
    this.failures++;
    if (this.failures <= PIECE_EVENTS_PER_SPAN) this.span.addEvent('piece failed', { ...(number !== undefined ? { 'piece.number': number } : {}), reason });
  }

  /** `endTime` (epoch ms): when the last piece moved, for spans closed later by an idle timer. */
  end(error?: Error, endTime?: number): void {
    if (this.ended) return;
    this.ended = true;
    this.span.setAttributes({ [ATTR.PIECES]: this.pieces, [ATTR.BYTES]: this.bytes, 'dragonfly.pieces.cost_ms': Math.round(this.costNs / 1e6), 'dragonfly.pieces.failed': this.failures });
    if (error) {
      this.span.recordException(error);
      this.span.setStatus({ code: SpanStatusCode.ERROR, message: error.message.slice(0, 512) });
    }
    this.span.end(endTime);
  }
}

/** Ends `span` with the error status (message trimmed) or OK. */
export function endSpan(span: Span, error?: unknown): void {
  if (error) {
    const e = error instanceof Error ? error : new Error(typeof error === 'string' ? error : 'non-Error value thrown');
    span.recordException(e);
    span.setStatus({ code: SpanStatusCode.ERROR, message: e.message.slice(0, 512) });
  }
  span.end();
}

/** Runs `work` in a child span of `parent` (default: the active context), ended with its outcome. */
export async function inSpan<T>(tracer: Tracer, name: string, options: SpanOptions, work: (span: Span) => Promise<T>, parent: Context = apiContext.active()): Promise<T> {
  const span = tracer.startSpan(name, options, parent);
  try {
    const v = await apiContext.with(trace.setSpan(parent, span), () => work(span));
    endSpan(span);
    return v;
  } catch (err) {
    endSpan(span, err);
    throw err;
  }
}
