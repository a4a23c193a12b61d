/**
 * OpenTelemetry tracing for one program: its own tracer provider (never the global one, so
 * `npm start` runs four programs in one process under four `service.name`s), OTLP export, and
 * a bounded queue whose drops are counted. Export runs off the download path: a collector that
 * is down or slow costs dropped spans, never a slower or failed download.
 *
 * Where spans go, first match wins:
 * - `OTEL_SDK_DISABLED=true`: nowhere;
 * - `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` / `OTEL_EXPORTER_OTLP_ENDPOINT`: there, with
 *   `OTEL_EXPORTER_OTLP_(TRACES_)PROTOCOL` (`http/protobuf` default, `http/json`, `grpc`) and the
 *   exporter's other standard variables (headers, timeout, ...);
 * - the config's Go-era `jaeger` key: OTLP to that Jaeger (see otlpUrlOfJaegerKey);
 * - else tracing is off (a no-op tracer; instrumented code runs unchanged).
 */
import { ProxyTracerProvider, context, type Attributes, type Tracer } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { ExportResultCode, type ExportResult } from '@opentelemetry/core';
import { OTLPTraceExporter as OtlpGrpcExporter } from '@opentelemetry/exporter-trace-otlp-grpc';
import { OTLPTraceExporter as OtlpJsonExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { OTLPTraceExporter as OtlpProtoExporter } from '@opentelemetry/exporter-trace-otlp-proto';
import { defaultResource, detectResources, envDetector, resourceFromAttributes } from '@opentelemetry/resources';
import { BatchSpanProcessor, type ReadableSpan, type SpanExporter, type SpanProcessor } from '@opentelemetry/sdk-trace-base';
import { NodeTracerProvider } from '@opentelemetry/sdk-trace-node';
import { ATTR_SERVICE_NAME, ATTR_SERVICE_VERSION } from '@opentelemetry/semantic-conventions';
import { Counter, type Registry } from 'prom-client';

/** Spans kept waiting for export; beyond it new spans are dropped (and counted). */
export const DEFAULT_MAX_QUEUE_SIZE = 2048;
/** One export request may take this long before it is abandoned (its spans count as dropped). */
export const DEFAULT_EXPORT_TIMEOUT_MS = 5000;

export type OtlpProtocol = 'http/protobuf' | 'http/json' | 'grpc';

export interface TracingOptions {
  /** `service.name` (OTEL_SERVICE_NAME overrides it when a program runs alone in its process). */
  readonly serviceName: string;
  /** The config's `jaeger` key ('' = not set). */
  readonly jaeger: string;
  /** Resource attributes: host, IDC, cluster id. */
  readonly attributes?: Attributes;
  /** Where `dragonfly_tracing_dropped_spans_total` is registered. */
  readonly registry?: Registry;
  readonly env?: NodeJS.ProcessEnv;
  /** Default DEFAULT_MAX_QUEUE_SIZE (or OTEL_BSP_MAX_QUEUE_SIZE). */
  readonly maxQueueSize?: number;
  /** Default 500 ms (or OTEL_BSP_SCHEDULE_DELAY). */
  readonly scheduledDelayMs?: number;
  /** Default DEFAULT_EXPORT_TIMEOUT_MS. */
  readonly exportTimeoutMs?: number;
}

export interface ExportTarget {
  /** undefined: the exporter reads the OTEL_EXPORTER_OTLP_* variables itself. */
  readonly url?: string;
  readonly protocol: OtlpProtocol;
  readonly from: 'env' | 'jaeger';
}

/**
 * The OTLP traces URL for a `jaeger` value. OTLP URLs pass through; a bare `http://jaeger:4318`
 * gets `/v1/traces`; the Go-era collector endpoint (`http://jaeger:14268/api/traces`, Thrift)
 * becomes the same Jaeger's OTLP/HTTP receiver (`:4318/v1/traces`, Jaeger >= 1.35 with
 * COLLECTOR_OTLP_ENABLED); port 4317 means OTLP/gRPC.
 */
export function otlpTargetOfJaegerKey(value: string): ExportTarget {
  const url = new URL(value);
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new Error(`jaeger: ${value} is not an http(s) URL`);
  if (url.port === '4317') return { url: `${url.protocol}//${url.host}`, protocol: 'grpc', from: 'jaeger' };
  if (url.pathname === '/api/traces' || url.port === '14268') {
    url.port = '4318';
    url.pathname = '/v1/traces';
  } else if (url.pathname === '' || url.pathname === '/') {
    url.pathname = '/v1/traces';
  }
  return { url: url.toString(), protocol: 'http/protobuf', from: 'jaeger' };
}

function protocolOf(env: NodeJS.ProcessEnv): OtlpProtocol {
  const p = (env.OTEL_EXPORTER_OTLP_TRACES_PROTOCOL ?? env.OTEL_EXPORTER_OTLP_PROTOCOL ?? 'http/protobuf').trim();
  if (p === 'http/protobuf' || p === 'http/json' || p === 'grpc') return p;
  throw new Error(`OTEL_EXPORTER_OTLP_PROTOCOL=${p} is not one of http/protobuf, http/json, grpc`);
}

/** Where this program's spans go, or undefined when tracing is off. */
export function exportTargetOf(jaeger: string, env: NodeJS.ProcessEnv = process.env): ExportTarget | undefined {
  if ((env.OTEL_SDK_DISABLED ?? '').trim().toLowerCase() === 'true') return undefined;
  if (env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT || env.OTEL_EXPORTER_OTLP_ENDPOINT) return { protocol: protocolOf(env), from: 'env' };
  if (jaeger) return otlpTargetOfJaegerKey(jaeger);
  return undefined;
}

function exporterFor(target: ExportTarget, timeoutMillis: number): SpanExporter {
  const config = { ...(target.url ? { url: target.url } : {}), timeoutMillis };
  if (target.protocol === 'grpc') return new OtlpGrpcExporter(config);
  if (target.protocol === 'http/json') return new OtlpJsonExporter(config);
  return new OtlpProtoExporter(config);
}

function envNumber(env: NodeJS.ProcessEnv, name: string): number | undefined {
  const v = env[name];
  if (v === undefined || v.trim() === '') return undefined;
  const n = Number(v);
  return Number.isFinite(n) && n > 0 ? n : undefined;
}

/**
 * Counts what BatchSpanProcessor silently drops: spans arriving while its queue is full, and
 * spans whose export failed or timed out. It mirrors the processor's queue length: +1 per
 * sampled span queued, -n when a batch is handed to the exporter.
 */
class DropCounter {
  queued = 0;
  constructor(
    private readonly maxQueueSize: number,
    private readonly dropped: Counter<'reason'> | undefined,
  ) {}

  processor(inner: SpanProcessor): SpanProcessor {
    return {
      onStart: (span, ctx) => inner.onStart(span, ctx),
      onEnd: (span: ReadableSpan) => {
        // Unsampled spans never enter the queue.
        if ((span.spanContext().traceFlags & 1) !== 0) {
          if (this.queued >= this.maxQueueSize) this.dropped?.inc({ reason: 'queue_full' });
          else this.queued++;
        }
        inner.onEnd(span);
      },
      forceFlush: () => inner.forceFlush(),
      shutdown: () => inner.shutdown(),
    };
  }

  exporter(inner: SpanExporter): SpanExporter {
    return {
      export: (spans, done) => {
        this.queued = Math.max(0, this.queued - spans.length);
        inner.export(spans, (result: ExportResult) => {
          if (result.code !== ExportResultCode.SUCCESS) this.dropped?.inc({ reason: 'export_failed' }, spans.length);
          done(result);
        });
      },
      shutdown: () => inner.shutdown(),
      forceFlush: () => inner.forceFlush?.() ?? Promise.resolve(),
    };
  }
}

let contextManagerInstalled = false;
/** Async context (AsyncLocalStorage) for the process, once: shared by every provider, harmless when tracing is off. */
function installContextManager(): void {
  if (contextManagerInstalled) return;
  contextManagerInstalled = true;
  const manager = new AsyncLocalStorageContextManager().enable();
  if (!context.setGlobalContextManager(manager)) manager.disable();
}

const droppedCounters = new WeakMap<Registry, Counter<'reason'>>();
function droppedCounter(registry: Registry | undefined): Counter<'reason'> | undefined {
  if (!registry) return undefined;
  let c = droppedCounters.get(registry);
  if (!c) {
    c = new Counter({
      name: 'dragonfly_tracing_dropped_spans_total',
      help: 'Spans not exported: queue_full (collector slower than the program) or export_failed (collector down or refusing)',
      labelNames: ['reason'],
      registers: [registry],
    });
    c.inc({ reason: 'queue_full' }, 0);
    c.inc({ reason: 'export_failed' }, 0);
    droppedCounters.set(registry, c);
  }
  return c;
}

const PACKAGE_VERSION = '0.1.0';

/** One program's tracer; `enabled` false means a no-op tracer. */
export class Tracing {
  private constructor(
    readonly tracer: Tracer,
    readonly serviceName: string,
    readonly target: ExportTarget | undefined,
    private readonly provider: NodeTracerProvider | undefined,
  ) {}

  get enabled(): boolean {
    return this.provider !== undefined;
  }

  /** Tracing as the config and environment say. Throws (naming the key or variable) on a bad value. */
  static start(options: TracingOptions): Tracing {
    const env = options.env ?? process.env;
    const target = exportTargetOf(options.jaeger, env);
    installContextManager();
    // The counter exists either way, so dashboards see 0 rather than nothing.
    const dropped = droppedCounter(options.registry);
    if (!target) return Tracing.disabled(options.serviceName);
    const maxQueueSize = options.maxQueueSize ?? envNumber(env, 'OTEL_BSP_MAX_QUEUE_SIZE') ?? DEFAULT_MAX_QUEUE_SIZE;
    const exportTimeoutMs = options.exportTimeoutMs ?? envNumber(env, 'OTEL_EXPORTER_OTLP_TRACES_TIMEOUT') ?? DEFAULT_EXPORT_TIMEOUT_MS;
    const counter = new DropCounter(maxQueueSize, dropped);
    const batch = new BatchSpanProcessor(counter.exporter(exporterFor(target, exportTimeoutMs)), {
      maxQueueSize,
      maxExportBatchSize: Math.min(512, maxQueueSize),
      scheduledDelayMillis: options.scheduledDelayMs ?? envNumber(env, 'OTEL_BSP_SCHEDULE_DELAY') ?? 500,
      exportTimeoutMillis: exportTimeoutMs + 1000,
    });
    const envResource = detectResources({ detectors: [envDetector] });
    const resource = defaultResource()
      .merge(resourceFromAttributes({ [ATTR_SERVICE_NAME]: options.serviceName, [ATTR_SERVICE_VERSION]: PACKAGE_VERSION, ...options.attributes }))
      .merge(envResource);
    const provider = new NodeTracerProvider({ resource, spanProcessors: [counter.processor(batch)] });
    const name = String(resource.attributes[ATTR_SERVICE_NAME] ?? options.serviceName);
    return new Tracing(provider.getTracer('dragonfly', PACKAGE_VERSION), name, target, provider);
  }

  static disabled(serviceName = 'dragonfly'): Tracing {
    return new Tracing(new ProxyTracerProvider().getTracer('dragonfly'), serviceName, undefined, undefined);
  }

  /** Exports what is queued (bounded by the export timeout). */
  async flush(): Promise<void> {
    await this.provider?.forceFlush();
  }

  /** Flushes and stops; never throws (a dead collector must not fail a shutdown). */
  async shutdown(): Promise<void> {
    await this.provider?.shutdown().catch(() => undefined);
  }
}
