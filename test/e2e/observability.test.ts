/**
 * Issue 18 on the seed-000 two-cluster lab (dist/ manifests, netns hosts, containerd): the
 * manifests' Jaeger collectors stand in for an in-test OTLP receiver, so every program exports
 * through its `jaeger` key exactly as deployed. One pull is one trace with spans from the peer,
 * the scheduler and the seed peer, `http.url` set and parent links intact; a Prometheus of our
 * own scrapes every host and answers PromQL for P2P vs back-to-source bytes per cluster that
 * match what the origin served and the nodes pulled.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { OtlpReceiver, orphans, type ReceivedSpan } from '../helpers/otlp-receiver';
import { NetnsLab, startClusterLab, type ClusterLab } from './harness';
import { TestPrometheus } from './harness/prometheus';

const PULL_TIMEOUT_MS = 90_000;
jest.setTimeout(4 * PULL_TIMEOUT_MS);
const MiB = 2 ** 20;
const METRICS_PORT = 8000;

async function until<T>(what: string, check: () => Promise<T | undefined> | T | undefined, timeoutMs = 30_000): Promise<T> {
  let last: unknown;
  for (const end = Date.now() + timeoutMs; Date.now() < end; ) {
    try {
      const v = await check();
      if (v !== undefined) return v;
    } catch (err) {
      last = err;
    }
    await new Promise((r) => setTimeout(r, 500));
  }
  throw new Error(`timed out waiting for ${what}${last ? `: ${(last as Error).message}` : ''}`);
}

describe('observability on the seed-000 lab (issue 18)', () => {
  let cl: ClusterLab;
  let receiver: OtlpReceiver;
  let prom: TestPrometheus;
  const clusterOf = (ns: string) => (ns === 'cluster-b' ? 'b' : 'a');
  const seedIp = (ns: string) => cl.deployment.podsOf('dragonfly-seed-peer', ns)[0].ip;

  beforeAll(async () => {
    receiver = await OtlpReceiver.start('127.0.0.1');
    cl = await startClusterLab({
      manifestFiles: ['cluster-a.k8s.yaml', 'cluster-b.k8s.yaml'].map((f) => `${process.env.DF_E2E_MANIFEST_DIR ?? 'dist'}/${f}`),
      nodes: [
        { name: 'kind-worker', labels: { cluster: 'a' } },
        { name: 'kind-worker2', labels: { cluster: 'a' } },
        { name: 'kind-worker3', labels: { cluster: 'b' } },
      ],
      layerSizes: [12 * MiB, 3 * MiB],
      // Both clusters' Jaeger collector Services lead to the receiver.
      externals: { 'jaegertracing/': { localPort: receiver.port } },
    });
    // Every program's metrics endpoint, labelled with its cluster and component.
    const targets = new Map<string, { address: string; labels: Record<string, string> }>();
    for (const pod of cl.deployment.pods) {
      const component = pod.workload.name.replace(/^dragonfly-/, '');
      if (!['manager', 'scheduler', 'seed-peer', 'dfdaemon'].includes(component)) continue;
      const address = `${pod.ip}:${METRICS_PORT}`;
      const cluster = pod.workload.namespace === 'cluster-b' || pod.node?.labels.cluster === 'b' ? 'b' : clusterOf(pod.workload.namespace);
      targets.set(address, { address, labels: { cluster, component, pod: pod.name } });
    }
    prom = await TestPrometheus.start(path.join(cl.lab.workDir, 'prometheus'), [...targets.values()]);
    await until('every target up', async () => ((await prom.upTargets()) === targets.size ? true : undefined), 60_000);
  }, 300_000);

  afterAll(async () => {
    await prom?.stop();
    await NetnsLab.teardownAll();
    await receiver?.close();
  });

  /** Blobs go through P2P (layers and the config); manifests pass through to the origin. */
  const blobBytes = () => cl.image.layerBytes + cl.image.config.size;

  it('one pull on kind-worker is one trace: peer, scheduler and seed peer spans, http.url set, parent links intact', async () => {
    const n = cl.node('kind-worker');
    await n.containerd.pull(cl.ref, { plainHttp: false, timeoutMs: PULL_TIMEOUT_MS });
    await n.containerd.verifyImage(cl.ref, cl.image);
    const biggest = [...cl.image.layers].sort((x, y) => y.size - x.size)[0];
    const isPull = (s: ReceivedSpan) => s.name === 'dfdaemon.proxy' && String(s.attributes['http.url']).includes(biggest.digest);
    const trace = await until('the pull’s whole trace', () => {
      const t = receiver.traceOf(isPull);
      const services = new Set(t.map((s) => s.service));
      const ok =
        ['dragonfly-dfdaemon', 'dragonfly-scheduler', 'dragonfly-seed-peer'].every((svc) => services.has(svc)) &&
        t.some((s) => s.name === 'dfdaemon.back_to_source' && s.service === 'dragonfly-seed-peer' && s.attributes['dragonfly.bytes'] === biggest.size) &&
        t.some((s) => s.name === 'dfdaemon.upload_pieces') &&
        orphans(t).length === 0;
      return ok ? t : undefined;
    });
    const roots = trace.filter((s) => s.parentSpanId === '');
    expect(roots.map((s) => s.name)).toEqual(['dfdaemon.proxy']);
    expect(String(roots[0].attributes['http.url'])).toMatch(new RegExp(`^https://ghcr\\.io/v2/.*/blobs/${biggest.digest}`));
    expect(roots[0].resource['host.name']).toBe('kind-worker');
    const scheduler = trace.find((s) => s.name === 'scheduler.register_peer' && s.attributes['dragonfly.host.type'] === 'normal');
    expect(scheduler?.attributes['dragonfly.cluster.id']).toBe(1);
    const seedBts = trace.find((s) => s.service === 'dragonfly-seed-peer' && s.name === 'dfdaemon.back_to_source')!;
    expect(seedBts.resource['host.ip']).toBe(seedIp('cluster-a'));
    // Every span ends after it starts and no child starts before its parent (same clock here).
    const byId = new Map(trace.map((s) => [s.spanId, s]));
    for (const s of trace) {
      expect(s.endNs >= s.startNs).toBe(true);
      const parent = byId.get(s.parentSpanId);
      if (parent) expect(s.startNs + 5_000_000n >= parent.startNs).toBe(true);
    }
    if (process.env.DF_TRACE_OUT) fs.writeFileSync(process.env.DF_TRACE_OUT, JSON.stringify(trace, (_k, v: unknown) => (typeof v === 'bigint' ? v.toString() : v), 2));
  });

  it('Prometheus answers P2P vs back-to-source bytes per cluster, matching what the origin served and the nodes pulled', async () => {
    // Two more pulls: kind-worker2 in A (P2P inside A), kind-worker3 in B (B's own seed goes to the origin).
    for (const node of ['kind-worker2', 'kind-worker3']) {
      const n = cl.node(node);
      await n.containerd.pull(cl.ref, { plainHttp: false, timeoutMs: PULL_TIMEOUT_MS });
      await n.containerd.verifyImage(cl.ref, cl.image);
    }
    const originBytes = (ns: string) => cl.origin.blobGets().filter((r) => r.client === seedIp(ns)).reduce((n, r) => n + r.bytes, 0);
    // The origin served each cluster's seed every blob once (plus at most a length probe's byte per blob).
    for (const ns of ['cluster-a', 'cluster-b']) {
      expect(originBytes(ns)).toBeGreaterThanOrEqual(blobBytes());
      expect(originBytes(ns)).toBeLessThanOrEqual(blobBytes() + cl.image.layers.length + 1);
    }
    const expected = {
      a: { BACK_TO_SOURCE: blobBytes(), REMOTE_PEER: 2 * blobBytes() },
      b: { BACK_TO_SOURCE: blobBytes(), REMOTE_PEER: blobBytes() },
    };
    const query = 'sum by (cluster, type) (dragonfly_client_download_traffic{type=~"REMOTE_PEER|BACK_TO_SOURCE"})';
    const got = await until('the scraped traffic to match', async () => {
      const rows = await prom.query(query);
      const out: Record<string, Record<string, number>> = { a: {}, b: {} };
      for (const r of rows) out[r.labels.cluster][r.labels.type] = r.value;
      return JSON.stringify(out) === JSON.stringify(expected) ? out : undefined;
    }, 30_000).catch(async (err: Error) => {
      throw new Error(`${err.message}; Prometheus says ${JSON.stringify(await prom.query(query))}, expected ${JSON.stringify(expected)}`);
    });
    expect(got).toEqual(expected);
    // The P2P share per cluster, as the dashboard computes it.
    const ratio = await prom.query('sum by (cluster) (dragonfly_client_download_traffic{type="REMOTE_PEER"}) / sum by (cluster) (dragonfly_client_download_traffic{type=~"REMOTE_PEER|BACK_TO_SOURCE"})');
    expect(Object.fromEntries(ratio.map((r) => [r.labels.cluster, Number(r.value.toFixed(3))]))).toEqual({ a: Number((2 / 3).toFixed(3)), b: 0.5 });
    // The schedulers' view (pieces the peers reported) says the same per cluster.
    // (Piece reports reach the scheduler on the peers' streams: allow a few scrapes.)
    const schedExpected = { 'a/BACK_TO_SOURCE': blobBytes(), 'a/REMOTE_PEER': 2 * blobBytes(), 'b/BACK_TO_SOURCE': blobBytes(), 'b/REMOTE_PEER': blobBytes() };
    const schedQuery = 'sum by (cluster, type) (dragonfly_scheduler_traffic)';
    const schedOf = async () => Object.fromEntries((await prom.query(schedQuery)).map((r) => [`${r.labels.cluster}/${r.labels.type}`, r.value]));
    await until('the schedulers’ traffic to match', async () => {
      const got = await schedOf();
      return Object.entries(schedExpected).every(([k, v]) => got[k] === v) ? true : undefined;
    }).catch(async (err: Error) => {
      throw new Error(`${err.message}; Prometheus says ${JSON.stringify(await schedOf())}, expected ${JSON.stringify(schedExpected)}`);
    });
    // Upstream's register counter, with its labels, counted every registration.
    const registered = await prom.query('sum by (cluster, host_type) (dragonfly_scheduler_register_peer_total)');
    expect(registered.length).toBeGreaterThan(0);
    expect(registered.every((r) => r.value > 0 && ['normal', 'super'].includes(r.labels.host_type))).toBe(true);
  });
});
