/**
 * W3C trace context (`traceparent`, `tracestate`) over gRPC metadata and HTTP headers, without
 * the global propagator: each call says which context it carries.
 */
import { ROOT_CONTEXT, context as apiContext, trace, type Context, type TextMapGetter, type TextMapSetter } from '@opentelemetry/api';
import { W3CTraceContextPropagator } from '@opentelemetry/core';
import * as grpc from '@grpc/grpc-js';

const propagator = new W3CTraceContextPropagator();

const recordSetter: TextMapSetter<Record<string, string>> = {
  set: (carrier, key, value) => {
    carrier[key] = value;
  },
};

/** Header values as Node gives them; only the first value of a repeated header counts. */
const headerGetter: TextMapGetter<Record<string, string | string[] | undefined>> = {
  keys: (carrier) => Object.keys(carrier),
  get: (carrier, key) => {
    const v = carrier[key.toLowerCase()];
    return Array.isArray(v) ? v[0] : v;
  },
};

const metadataGetter: TextMapGetter<grpc.Metadata> = {
  keys: (md) => Object.keys(md.getMap()),
  get: (md, key) => {
    const v = md.get(key)[0];
    return typeof v === 'string' ? v : undefined;
  },
};

/** `traceparent` (and `tracestate`) of `ctx` (default: the active context); {} without a span. */
export function traceHeaders(ctx: Context = apiContext.active()): Record<string, string> {
  const out: Record<string, string> = {};
  if (trace.getSpanContext(ctx)) propagator.inject(ctx, out, recordSetter);
  return out;
}

/** gRPC metadata carrying `ctx`'s trace context (empty metadata without a span). */
export function traceMetadata(ctx: Context = apiContext.active()): grpc.Metadata {
  const md = new grpc.Metadata();
  for (const [k, v] of Object.entries(traceHeaders(ctx))) md.set(k, v);
  return md;
}

/** The remote parent carried by incoming HTTP headers (ROOT_CONTEXT when none or malformed). */
export function contextOfHeaders(headers: Record<string, string | string[] | undefined>): Context {
  return propagator.extract(ROOT_CONTEXT, headers, headerGetter);
}

/** The remote parent carried by incoming gRPC metadata. */
export function contextOfMetadata(md: grpc.Metadata): Context {
  return propagator.extract(ROOT_CONTEXT, md, metadataGetter);
}
