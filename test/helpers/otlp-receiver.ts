/**
 * An OTLP/HTTP traces receiver for tests: decodes `POST /v1/traces` in protobuf (the
 * exporters' default) or JSON into flat spans, so a test can check a real trace end to end.
 * Only the fields the tests read are declared; unknown fields are skipped by the decoder.
 */
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import * as protobuf from 'protobufjs';

const OTLP_TRACE_PROTO = `
syntax = "proto3";
package otlp;
message AnyValue { oneof value { string string_value = 1; bool bool_value = 2; int64 int_value = 3; double double_value = 4; ArrayValue array_value = 5; bytes bytes_value = 7; } }
message ArrayValue { repeated AnyValue values = 1; }
message KeyValue { string key = 1; AnyValue value = 2; }
message Resource { repeated KeyValue attributes = 1; }
message Event { fixed64 time_unix_nano = 1; string name = 2; repeated KeyValue attributes = 3; }
message Status { string message = 2; int32 code = 3; }
message Span {
  bytes trace_id = 1; bytes span_id = 2; string trace_state = 3; bytes parent_span_id = 4; string name = 5; int32 kind = 6;
  fixed64 start_time_unix_nano = 7; fixed64 end_time_unix_nano = 8; repeated KeyValue attributes = 9; repeated Event events = 11; Status status = 15;
}
message InstrumentationScope { string name = 1; string version = 2; }
message ScopeSpans { InstrumentationScope scope = 1; repeated Span spans = 2; }
message ResourceSpans { Resource resource = 1; repeated ScopeSpans scope_spans = 2; }
message ExportTraceServiceRequest { repeated ResourceSpans resource_spans = 1; }
`;
const root = protobuf.parse(OTLP_TRACE_PROTO, { keepCase: false }).root;
const ExportRequest = root.lookupType('otlp.ExportTraceServiceRequest');

export type AttrValue = string | number | boolean | AttrValue[];

export interface ReceivedSpan {
  readonly traceId: string;
  readonly spanId: string;
  /** '' for a root span. */
  readonly parentSpanId: string;
  readonly name: string;
  readonly kind: number;
  readonly startNs: bigint;
  readonly endNs: bigint;
  readonly attributes: Record<string, AttrValue>;
  readonly resource: Record<string, AttrValue>;
  readonly events: ReadonlyArray<{ name: string; timeNs: bigint; attributes: Record<string, AttrValue> }>;
  readonly status: { code: number; message: string };
  /** resource service.name */
  readonly service: string;
}

type Json = Record<string, unknown>;

/** A scalar field as text ('' for anything else). */
function str(v: unknown): string {
  return typeof v === 'string' || typeof v === 'number' || typeof v === 'bigint' || typeof v === 'boolean' ? String(v) : '';
}

function anyValue(v: Json | undefined): AttrValue {
  if (!v) return '';
  if (v.stringValue !== undefined) return str(v.stringValue);
  if (v.boolValue !== undefined) return Boolean(v.boolValue);
  if (v.intValue !== undefined) return Number(v.intValue);
  if (v.doubleValue !== undefined) return Number(v.doubleValue);
  if (v.arrayValue !== undefined) return (((v.arrayValue as Json).values as Json[] | undefined) ?? []).map(anyValue);
  return '';
}

function attrs(list: unknown): Record<string, AttrValue> {
  const out: Record<string, AttrValue> = {};
  for (const kv of (list as Json[] | undefined) ?? []) out[String(kv.key)] = anyValue(kv.value as Json | undefined);
  return out;
}

/** Ids arrive as base64 (protobuf → toObject) or hex (OTLP/JSON); both become lowercase hex. */
function hexId(v: unknown, json: boolean): string {
  if (v === undefined || v === null || v === '') return '';
  if (json) return str(v).toLowerCase();
  return Buffer.from(str(v), 'base64').toString('hex');
}

function flatten(request: Json, json: boolean): ReceivedSpan[] {
  const out: ReceivedSpan[] = [];
  for (const rs of (request.resourceSpans as Json[] | undefined) ?? []) {
    const resource = attrs((rs.resource as Json | undefined)?.attributes);
    for (const ss of (rs.scopeSpans as Json[] | undefined) ?? []) {
      for (const s of (ss.spans as Json[] | undefined) ?? []) {
        const status = (s.status as Json | undefined) ?? {};
        out.push({
          traceId: hexId(s.traceId, json),
          spanId: hexId(s.spanId, json),
          parentSpanId: hexId(s.parentSpanId, json),
          name: str(s.name),
          kind: Number(s.kind ?? 0),
          startNs: BigInt(str(s.startTimeUnixNano) || '0'),
          endNs: BigInt(str(s.endTimeUnixNano) || '0'),
          attributes: attrs(s.attributes),
          resource,
          events: ((s.events as Json[] | undefined) ?? []).map((e) => ({ name: str(e.name), timeNs: BigInt(str(e.timeUnixNano) || '0'), attributes: attrs(e.attributes) })),
          status: { code: Number(status.code ?? 0), message: str(status.message) },
          service: String(resource['service.name'] ?? ''),
        });
      }
    }
  }
  return out;
}

/** Decodes one export request body. */
export function decodeTraceExport(body: Buffer, contentType: string): ReceivedSpan[] {
  if (contentType.includes('json')) return flatten(JSON.parse(body.toString('utf8')) as Json, true);
  const msg = ExportRequest.decode(body);
  return flatten(ExportRequest.toObject(msg, { longs: String, bytes: String, defaults: false }), false);
}

const MAX_BODY = 16 * 1024 * 1024;

export class OtlpReceiver {
  readonly spans: ReceivedSpan[] = [];
  requests = 0;
  private server: http.Server;
  /** Answers with this status instead of 200 (a refusing collector). */
  failWith: number | undefined;
  /** Holds each answer this long (a slow collector). */
  delayMs = 0;
  private readonly pending = new Set<NodeJS.Timeout>();

  private constructor() {
    this.server = http.createServer((req, res) => {
      const chunks: Buffer[] = [];
      let size = 0;
      req.on('data', (c: Buffer) => {
        size += c.length;
        if (size <= MAX_BODY) chunks.push(c);
      });
      req.on('end', () => {
        const timer = setTimeout(() => {
          this.pending.delete(timer);
          this.requests++;
          if (req.method !== 'POST' || (req.url ?? '').split('?')[0] !== '/v1/traces') {
            res.writeHead(404).end();
            return;
          }
          if (this.failWith) {
            res.writeHead(this.failWith).end();
            return;
          }
          try {
            this.spans.push(...decodeTraceExport(Buffer.concat(chunks), String(req.headers['content-type'] ?? '')));
            res.writeHead(200, { 'content-type': String(req.headers['content-type'] ?? 'application/x-protobuf') }).end();
          } catch (err) {
            res.writeHead(400, { 'content-type': 'text/plain' }).end((err as Error).message);
          }
        }, this.delayMs);
        this.pending.add(timer);
      });
    });
  }

  static async start(host = '127.0.0.1', port = 0): Promise<OtlpReceiver> {
    const r = new OtlpReceiver();
    await new Promise<void>((resolve, reject) => {
      r.server.once('error', reject);
      r.server.listen(port, host, () => resolve());
    });
    return r;
  }

  get port(): number {
    return (this.server.address() as AddressInfo).port;
  }

  url(host = '127.0.0.1'): string {
    return `http://${host}:${this.port}/v1/traces`;
  }

  /** Spans of the trace holding a span that matches `pred`. */
  traceOf(pred: (s: ReceivedSpan) => boolean): ReceivedSpan[] {
    const hit = this.spans.find(pred);
    return hit ? this.spans.filter((s) => s.traceId === hit.traceId) : [];
  }

  async close(): Promise<void> {
    for (const t of this.pending) clearTimeout(t);
    this.pending.clear();
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}

/** Spans whose parent id names no span of the same trace (should be only the root). */
export function orphans(trace: readonly ReceivedSpan[]): ReceivedSpan[] {
  const ids = new Set(trace.map((s) => s.spanId));
  return trace.filter((s) => s.parentSpanId !== '' && !ids.has(s.parentSpanId));
}
