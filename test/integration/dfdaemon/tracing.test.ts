/**
 * One pull through `npm start`'s cluster (manager, scheduler, seed peer, peer in one process)
 * is one trace in an in-test OTLP receiver: the peer's proxy request and download, the
 * scheduler's registration and decisions, the seed peer's back-to-source, each under its own
 * service.name, with http.url set and every parent link resolving inside the trace. A
 * collector that refuses or hangs changes nothing for the download; the drops are counted.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { exportTargetOf, otlpTargetOfJaegerKey } from '../../../services/common/telemetry';
import { ClusterProcess } from '../../helpers/cluster-process';
import { OtlpReceiver, orphans, type ReceivedSpan } from '../../helpers/otlp-receiver';
import { blobOf, request, startOrigin, type Origin } from '../../unit/proxy/helpers';

jest.setTimeout(90_000);

async function until<T>(what: string, check: () => T | undefined, timeoutMs = 20_000): Promise<T> {
  for (const end = Date.now() + timeoutMs; Date.now() < end; ) {
    const v = check();
    if (v !== undefined) return v;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`timed out waiting for ${what}`);
}

describe('tracing on a local cluster', () => {
  let dir: string;
  let origin: Origin;
  let cluster: ClusterProcess;
  let receiver: OtlpReceiver;

  beforeAll(async () => {
    receiver = await OtlpReceiver.start();
    dir = mkdtempSync(path.join(tmpdir(), 'tracing-cluster-'));
    origin = await startOrigin();
    cluster = await ClusterProcess.start(dir, {
      env: { OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: receiver.url(), OTEL_BSP_SCHEDULE_DELAY: '100', OTEL_EXPORTER_OTLP_TRACES_TIMEOUT: '1000' },
      proxyWhiteList: [{ host: '127.0.0.1', ports: [String(origin.port)] }],
    });
  });
  afterAll(async () => {
    await cluster?.stop();
    await origin?.close();
    await receiver?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('one proxy pull is one trace across peer, scheduler and seed peer, with http.url and intact parent links', async () => {
    const content = randomBytes(9 * 1024 * 1024 + 5);
    const { digest } = blobOf(content);
    origin.blobs.set(digest, content);
    const url = `/v2/library/traced/blobs/${digest}?ns=registry.local`;
    const res = await request(cluster.ports.peerProxy, url, { headers: { 'X-Dragonfly-Registry': origin.base } });
    expect(res.status).toBe(200);
    expect(res.body.equals(content)).toBe(true);

    const isProxy = (s: ReceivedSpan) => s.name === 'dfdaemon.proxy' && String(s.attributes['http.url']).includes(digest);
    const spans = await until('the whole trace', () => {
      const t = receiver.traceOf(isProxy);
      const names = new Set(t.map((s) => `${s.service}/${s.name}`));
      const want = ['dragonfly-dfdaemon/dfdaemon.proxy', 'dragonfly-dfdaemon/dfdaemon.download_task', 'dragonfly-dfdaemon/dfdaemon.download_from_parent', 'dragonfly-scheduler/scheduler.register_peer',
        'dragonfly-scheduler/scheduler.schedule', 'dragonfly-seed-peer/dfdaemon.DfdaemonUpload.DownloadTask', 'dragonfly-seed-peer/dfdaemon.back_to_source', 'dragonfly-seed-peer/origin.request', 'dragonfly-seed-peer/dfdaemon.upload_pieces'];
      return want.every((w) => names.has(w)) && orphans(t).length === 0 && t.filter((s) => s.parentSpanId === '').length === 1 ? t : undefined;
    });
    if (process.env.DF_TRACE_OUT) writeFileSync(process.env.DF_TRACE_OUT, JSON.stringify(spans, (_k, v: unknown) => (typeof v === 'bigint' ? v.toString() : v), 2));
    const root = spans.find((s) => s.parentSpanId === '')!;
    expect(root.name).toBe('dfdaemon.proxy');
    expect(String(root.attributes['http.url'])).toContain(`/blobs/${digest}`);
    const byId = new Map(spans.map((s) => [s.spanId, s]));
    const parentOf = (s: ReceivedSpan) => byId.get(s.parentSpanId);
    const seedBts = spans.find((s) => s.service === 'dragonfly-seed-peer' && s.name === 'dfdaemon.back_to_source')!;
    expect(String(seedBts.attributes['http.url'])).toContain(digest);
    expect(seedBts.attributes['dragonfly.bytes']).toBe(content.length);
    // seed back-to-source ← seed download ← seed DownloadTask call ← scheduler decision ← scheduler peer ← peer download
    const chain: string[] = [];
    for (let s: ReceivedSpan | undefined = seedBts; s; s = parentOf(s)) chain.push(`${s.service}/${s.name}`);
    expect(chain).toEqual([
      'dragonfly-seed-peer/dfdaemon.back_to_source',
      'dragonfly-seed-peer/dfdaemon.download_task',
      'dragonfly-seed-peer/dfdaemon.DfdaemonUpload.DownloadTask',
      'dragonfly-scheduler/scheduler.schedule',
      'dragonfly-scheduler/scheduler.announce_peer',
      'dragonfly-dfdaemon/dfdaemon.download_task',
      'dragonfly-dfdaemon/dfdaemon.proxy',
    ]);
    // The peer's transfer from the seed: one batch span, bytes of the whole blob, pieces as (bounded) events.
    const fromParent = spans.filter((s) => s.service === 'dragonfly-dfdaemon' && s.name === 'dfdaemon.download_from_parent');
    expect(fromParent.reduce((n, s) => n + Number(s.attributes['dragonfly.bytes']), 0)).toBe(content.length);
    expect(fromParent.every((s) => s.events.length <= 32 && s.events.length > 0)).toBe(true);
    // The seed's upload batch is the child of the peer's transfer span (traceparent in the piece requests).
    const upload = spans.find((s) => s.name === 'dfdaemon.upload_pieces')!;
    expect(parentOf(upload)?.name).toBe('dfdaemon.download_from_parent');
    // Host, IDC and cluster id: the scheduler's spans carry the cluster, the programs their host.
    const decision = spans.find((s) => s.name === 'scheduler.schedule' && s.attributes['dragonfly.schedule.decision'] === 'normal');
    expect(decision).toBeDefined();
    expect(spans.find((s) => s.name === 'scheduler.register_peer')?.attributes['dragonfly.cluster.id']).toBe(1);
    expect(seedBts.resource['host.name']).toBe('seed-peer');
    expect(seedBts.resource['dragonfly.cluster.id']).toBe(1);
    // Far fewer spans than pieces would give.
    expect(spans.length).toBeLessThan(40);
  });

  it('a collector that refuses or hangs neither fails nor slows a download; the drops are counted', async () => {
    receiver.failWith = 503;
    const content = randomBytes(4 * 1024 * 1024);
    const { digest } = blobOf(content);
    origin.blobs.set(digest, content);
    const res = await request(cluster.ports.peerProxy, `/v2/library/refused/blobs/${digest}?ns=registry.local`, { headers: { 'X-Dragonfly-Registry': origin.base } });
    expect(res.status).toBe(200);
    expect(res.body.equals(content)).toBe(true);
    const dropped = async () => Number(/dragonfly_tracing_dropped_spans_total\{reason="export_failed"[^}]*\} (\d+)/.exec(await cluster.metrics('peer'))?.[1] ?? 0);
    for (const end = Date.now() + 20_000; (await dropped()) === 0 && Date.now() < end; ) await new Promise((r) => setTimeout(r, 200));
    expect(await dropped()).toBeGreaterThan(0);

    // A collector that never answers in time: the pull still completes promptly.
    receiver.failWith = undefined;
    receiver.delayMs = 30_000;
    const slow = randomBytes(4 * 1024 * 1024);
    const b = blobOf(slow);
    origin.blobs.set(b.digest, slow);
    const started = Date.now();
    const res2 = await request(cluster.ports.peerProxy, `/v2/library/slow/blobs/${b.digest}?ns=registry.local`, { headers: { 'X-Dragonfly-Registry': origin.base } });
    expect(res2.status).toBe(200);
    expect(res2.body.equals(slow)).toBe(true);
    expect(Date.now() - started).toBeLessThan(10_000);
    receiver.delayMs = 0;
  });
});

describe('export target', () => {
  it('maps the Go-era jaeger key to OTLP and prefers the OTEL_* variables', () => {
    expect(otlpTargetOfJaegerKey('http://jaeger:14268/api/traces')).toEqual({ url: 'http://jaeger:4318/v1/traces', protocol: 'http/protobuf', from: 'jaeger' });
    expect(otlpTargetOfJaegerKey('http://jaeger.ns.svc:4318')).toEqual({ url: 'http://jaeger.ns.svc:4318/v1/traces', protocol: 'http/protobuf', from: 'jaeger' });
    expect(otlpTargetOfJaegerKey('http://jaeger:4317').protocol).toBe('grpc');
    expect(exportTargetOf('', {})).toBeUndefined();
    expect(exportTargetOf('http://j:4318/v1/traces', { OTEL_SDK_DISABLED: 'true' })).toBeUndefined();
    expect(exportTargetOf('http://j:4318/v1/traces', { OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c:4318', OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json' })).toEqual({ protocol: 'http/json', from: 'env' });
    expect(() => exportTargetOf('', { OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c:4318', OTEL_EXPORTER_OTLP_PROTOCOL: 'carrier-pigeon' })).toThrow(/OTEL_EXPORTER_OTLP_PROTOCOL/);
  });
});
