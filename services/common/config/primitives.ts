/**
 * Value types shared by every program's config schema. Durations and sizes are written the
 * Go-era Dragonfly way ("5s", "1m30s", "720h"; "1024Mi", "50GB") and parsed to
 * milliseconds / bytes, so programs never parse strings themselves.
 */
import { isIP } from 'node:net';
import { z } from 'zod';

const DURATION_UNITS_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/** Parses "1h30m", "500ms", "2s" (or a bare number of milliseconds) to milliseconds. */
export function parseDuration(value: string | number): number {
  if (typeof value === 'number') return value;
  const text = value.trim();
  if (/^\d+(\.\d+)?$/.test(text)) return Number(text);
  const re = /(\d+(?:\.\d+)?)(ms|s|m|h|d)/g;
  let total = 0;
  let consumed = 0;
  for (let m = re.exec(text); m; m = re.exec(text)) {
    if (m.index !== consumed) return NaN;
    total += Number(m[1]) * DURATION_UNITS_MS[m[2]];
    consumed = m.index + m[0].length;
  }
  return consumed === text.length && consumed > 0 ? total : NaN;
}

const SIZE_UNITS: Record<string, number> = {
  '': 1, b: 1,
  k: 1e3, kb: 1e3, m: 1e6, mb: 1e6, g: 1e9, gb: 1e9, t: 1e12, tb: 1e12,
  ki: 1024, kib: 1024, mi: 1024 ** 2, mib: 1024 ** 2, gi: 1024 ** 3, gib: 1024 ** 3, ti: 1024 ** 4, tib: 1024 ** 4,
};

/** Parses "1024Mi", "50GB", "4mib", "512k" (or a bare number of bytes) to bytes. */
export function parseSize(value: string | number): number {
  if (typeof value === 'number') return value;
  const m = /^\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*$/.exec(value);
  if (!m) return NaN;
  const unit = SIZE_UNITS[m[2].toLowerCase()];
  return unit === undefined ? NaN : Math.round(Number(m[1]) * unit);
}

/** A duration such as "5s"; output is milliseconds. */
export const duration = z
  .union([z.string(), z.number().nonnegative()])
  .transform((v, ctx) => {
    const ms = parseDuration(v);
    if (Number.isNaN(ms)) {
      ctx.addIssue({ code: 'custom', message: 'expected a duration such as "500ms", "5s", "1m30s" or "720h"' });
      return z.NEVER;
    }
    return ms;
  });

/** A size such as "1024Mi" or "50GB"; output is bytes. */
export const size = z
  .union([z.string(), z.number().nonnegative()])
  .transform((v, ctx) => {
    const bytes = parseSize(v);
    if (Number.isNaN(bytes)) {
      ctx.addIssue({ code: 'custom', message: 'expected a size such as "512Ki", "1024Mi", "4MiB" or "50GB"' });
      return z.NEVER;
    }
    return bytes;
  });

/** A TCP port; 0 means "pick a free one". */
export const port = z.number().int('expected an integer port').min(0, 'expected a port in 0..65535').max(65535, 'expected a port in 0..65535');

/** An IPv4 or IPv6 address (empty string: detect automatically). */
export const ipAddress = z.string().refine((v) => v === '' || isIP(v) !== 0, 'expected an IPv4 or IPv6 address');

/** "host:port" with a non-empty host and a valid port; an optional scheme is allowed. */
export const hostPort = z.string().refine((v) => {
  const m = /^(?:[a-z]+:\/\/)?(\[[0-9a-fA-F:]+\]|[^\s:/]+):(\d{1,5})$/.exec(v);
  return !!m && Number(m[2]) <= 65535;
}, 'expected "host:port", e.g. "dragonfly-manager.cluster-a.svc.cluster.local:65003"');

/** A listen address such as ":8000" or "0.0.0.0:8000". */
export const listenAddr = z.string().refine((v) => {
  const m = /^(\[[0-9a-fA-F:]+\]|[^\s:/]*):(\d{1,5})$/.exec(v);
  return !!m && Number(m[2]) <= 65535;
}, 'expected a listen address such as ":8000" or "0.0.0.0:8000"');

/** A JavaScript-compatible regular expression. */
export const regex = z.string().refine((v) => {
  try {
    new RegExp(v);
    return true;
  } catch {
    return false;
  }
}, 'expected a valid regular expression');

/** Splits a listen address into host (default 0.0.0.0) and port. */
export function splitListenAddr(addr: string): { host: string; port: number } {
  const i = addr.lastIndexOf(':');
  const host = addr.slice(0, i).replace(/^\[|\]$/g, '');
  return { host: host === '' ? '0.0.0.0' : host, port: Number(addr.slice(i + 1)) };
}

/** Keys every program shares: log verbosity, pprof, tracing. */
export const commonKeys = {
  /** Debug-level logs. */
  verbose: z.boolean().default(false),
  /** Log to the console: always on (JSON lines on stdout, collected by the container runtime). */
  console: z
    .boolean()
    .default(true)
    .refine((v) => v, 'logs always go to stdout as JSON lines (the container runtime collects them); remove console: false, and use verbose: false for fewer lines'),
  /** CPU-profile endpoint port (/debug/pprof/profile); -1 disables it, 0 picks a free port. */
  pprofPort: z.number().int().min(-1, 'expected -1 (off) or a port in 0..65535').max(65535, 'expected -1 (off) or a port in 0..65535').default(-1),
  /**
   * Where traces go: an OTLP/HTTP URL (http://jaeger:4318/v1/traces), a Jaeger host
   * (http://jaeger:4318), the Go-era collector URL (http://jaeger:14268/api/traces, mapped to
   * the same Jaeger's OTLP receiver) or OTLP/gRPC on :4317; empty: tracing off unless the
   * OTEL_EXPORTER_OTLP_* variables say otherwise (see services/common/telemetry).
   */
  jaeger: z
    .string()
    .refine((v) => {
      if (v === '') return true;
      try {
        const u = new URL(v);
        return (u.protocol === 'http:' || u.protocol === 'https:') && u.hostname !== '';
      } catch {
        return false;
      }
    }, 'expected an http(s) URL of a Jaeger/OTLP collector, e.g. "http://jaeger:4318/v1/traces", or "" for none')
    .default(''),
};

/**
 * A Go-era log directory: only empty is accepted, because the programs write no log files.
 */
export const logDir = z
  .string()
  .default('')
  .refine((v) => v === '', 'log files are not written: logs go to stdout (collect them with the container runtime, e.g. kubectl logs or journald); remove logDir');

/** The manager's `metrics: {enable, addr}`. */
export const managerMetricsBlock = z
  .strictObject({
    enable: z.boolean().default(true),
    addr: listenAddr.default(':8000'),
  })
  .prefault({});

/**
 * The scheduler's `metrics: {enable, addr, enableHost}`; enableHost adds the per-host
 * `dragonfly_scheduler_host_traffic` series (one set per host: off by default, as upstream).
 */
export const metricsBlock = z
  .strictObject({
    enable: z.boolean().default(true),
    addr: listenAddr.default(':8000'),
    enableHost: z.boolean().default(false),
  })
  .prefault({});
