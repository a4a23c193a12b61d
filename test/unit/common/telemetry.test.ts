/**
 * The telemetry module without a network: the `jaeger` key's validation and mapping, the
 * metrics.enableHost switch, the size levels, and the dropped-span counter's bookkeeping.
 */
import { Registry } from 'prom-client';
import { parseConfig } from '../../../services/common/config';
import { Tracing, otlpTargetOfJaegerKey } from '../../../services/common/telemetry';
import { SchedulerUpstreamMetrics } from '../../../services/scheduler/upstream-metrics';
import { taskSizeLevel } from '../../../services/dfdaemon/upstream-metrics';

describe('jaeger key', () => {
  it('accepts http(s) collector URLs and refuses anything else, naming the key', () => {
    expect(parseConfig('scheduler', { jaeger: 'http://jaeger.ns.svc:4318/v1/traces' }).jaeger).toBe('http://jaeger.ns.svc:4318/v1/traces');
    expect(() => parseConfig('scheduler', { jaeger: 'jaeger:4318' })).toThrow(/jaeger/);
    expect(() => parseConfig('dfdaemon', { jaeger: 'ftp://jaeger/traces' })).toThrow(/jaeger/);
    expect(() => parseConfig('manager', { jaeger: 42 })).toThrow(/jaeger/);
  });

  it('maps OTLP, bare and Go-era collector URLs', () => {
    expect(otlpTargetOfJaegerKey('https://otel.example/v1/traces').url).toBe('https://otel.example/v1/traces');
    expect(otlpTargetOfJaegerKey('http://jaeger:14268/api/traces').url).toBe('http://jaeger:4318/v1/traces');
    expect(otlpTargetOfJaegerKey('http://jaeger:4317')).toMatchObject({ url: 'http://jaeger:4317', protocol: 'grpc' });
  });

  it('tracing off: a no-op tracer, and the drop counter still exported at 0', async () => {
    const registry = new Registry();
    const t = Tracing.start({ serviceName: 'x', jaeger: '', registry, env: {} });
    expect(t.enabled).toBe(false);
    t.tracer.startSpan('nothing').end();
    expect(await registry.metrics()).toMatch(/dragonfly_tracing_dropped_spans_total\{reason="queue_full"\} 0/);
    await t.shutdown();
  });
});

describe('metrics.enableHost', () => {
  it('is a scheduler key: host_traffic only when on; the manager refuses it', async () => {
    const on = new Registry();
    new SchedulerUpstreamMetrics(on, { enableHost: true });
    const off = new Registry();
    new SchedulerUpstreamMetrics(off, { enableHost: false });
    expect((await on.getMetricsAsJSON()).map((m) => m.name)).toContain('dragonfly_scheduler_host_traffic');
    expect((await off.getMetricsAsJSON()).map((m) => m.name)).not.toContain('dragonfly_scheduler_host_traffic');
    expect(parseConfig('scheduler', { metrics: { enableHost: true } }).metrics.enableHost).toBe(true);
    expect(() => parseConfig('manager', { metrics: { enableHost: true } })).toThrow(/enableHost/);
  });
});

describe('task size level', () => {
  it('0 for empty, 1 up to 1 MiB, then one level per ×4, capped at 8', () => {
    expect([0, 1, 2 ** 20, 2 ** 20 + 1, 4 * 2 ** 20, 4 * 2 ** 20 + 1, 2 ** 40].map(taskSizeLevel)).toEqual(['0', '1', '1', '2', '2', '3', '8']);
  });
});
