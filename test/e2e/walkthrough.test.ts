/**
 * Issue 8: seed 000's multi-cluster walkthrough on netns hosts, driven by the synthesized
 * manifests (dist/cluster-a.k8s.yaml, dist/cluster-b.k8s.yaml): four kind-like workers (two
 * labelled cluster=a, two cluster=b), containerd on each, the programs started from the
 * manifests' ConfigMaps, commands and env. Steps as in the seed: pull on kind-worker (cluster A
 * back to source through A's seed peer), clear that worker's dfdaemon cache and image, pull again
 * (remote-peer hit); the same on kind-worker3 in cluster B. Checks on the origin's request log and
 * on bridge traffic counters: each blob leaves the origin once per cluster, fetched by that
 * cluster's seed peer, and no piece bytes flow from cluster-A hosts to cluster-B hosts.
 */
import * as grpc from '@grpc/grpc-js';
import { NetnsLab, clearDfdaemonCache, startClusterLab, UPLOAD_PORT, type ClusterLab, type PullResult } from './harness';
import { recordE2eFigures } from './walkthrough-figures';

/** 41 MiB on a LAN takes seconds; a pull stuck this long is a failure, not slowness. */
const PULL_TIMEOUT_MS = 90_000;
jest.setTimeout(2 * PULL_TIMEOUT_MS + 30_000);

const MiB = 2 ** 20;

describe('seed 000 multi-cluster walkthrough (issue 8)', () => {
  let cl: ClusterLab;
  let aToBPieceBytes: () => Promise<number>;
  const rows: Array<{ step: string; node: string; pull: PullResult; originLayerMs: string }> = [];
  const layerGets = (since: number) => cl.origin.blobGets({ since }).filter((r) => cl.image.layers.some((l) => r.uri.includes(l.digest)));
  const seedIp = (ns: string) => {
    const pod = cl.deployment.podsOf('dragonfly-seed-peer', ns)[0];
    if (!pod) throw new Error(`no seed peer in ${ns}`);
    return pod.ip;
  };

  beforeAll(async () => {
    cl = await startClusterLab({
      // DF_E2E_MANIFEST_DIR: run against another synth output (default: the committed dist/).
      manifestFiles: ['cluster-a.k8s.yaml', 'cluster-b.k8s.yaml'].map((f) => `${process.env.DF_E2E_MANIFEST_DIR ?? 'dist'}/${f}`),
      nodes: [
        { name: 'kind-worker', labels: { cluster: 'a' } },
        { name: 'kind-worker2', labels: { cluster: 'a' } },
        { name: 'kind-worker3', labels: { cluster: 'b' } },
        { name: 'kind-worker4', labels: { cluster: 'b' } },
      ],
      layerSizes: [24 * MiB, 12 * MiB, 4 * MiB, 1 * MiB],
    });
    const inA = cl.deployment.pods.filter((p) => p.workload.namespace === 'cluster-a' || p.node?.labels.cluster === 'a').map((p) => p.ip);
    const inB = cl.deployment.pods.filter((p) => p.workload.namespace === 'cluster-b').map((p) => p.ip);
    aToBPieceBytes = await cl.lab.countTraffic('atob', [...new Set(inA)], [...new Set(inB)], UPLOAD_PORT);
  }, 240_000);

  /** Pull times as figures beside the same run's direct pull (written even if a check failed). */
  const recordFigures = () => {
    const byStep = new Map(rows.map((r) => [r.step, r.pull.ms]));
    const direct = byStep.get('direct registry pull');
    const size = `${(cl.image.layerBytes / MiB).toFixed(0)} MiB, ${cl.image.layers.length} layers, netns hosts, ctr pull incl. unpack`;
    recordE2eFigures(
      [
        ['A: back-to-source (seed peer A)', 'walkthrough: cluster-A first pull (back-to-source via seed peer)'],
        ['A: remote-peer hit', 'walkthrough: cluster-A pull after cache clear (remote-peer hit)'],
        ['B: back-to-source (seed peer B)', 'walkthrough: cluster-B first pull (back-to-source via own seed peer)'],
        ['B: remote-peer hit', 'walkthrough: cluster-B pull after cache clear (remote-peer hit)'],
      ].flatMap(([step, name]) => {
        const v = byStep.get(step);
        return v === undefined ? [] : [{ area: 'e2e', name: name, value: v, unit: 'ms', baselineName: 'direct registry pull', baselineValue: direct, baselineUnit: 'ms', note: size }];
      }),
      'walkthrough: ',
    );
  };

  afterAll(async () => {
    if (rows.length > 0) {
      recordFigures();
      console.log(
        [`walkthrough (${(cl.image.layerBytes / MiB).toFixed(1)} MiB in ${cl.image.layers.length} layers):`, ...rows.map((r) => `  ${r.step.padEnd(44)} ${r.node.padEnd(13)} ${String(r.pull.ms).padStart(6)} ms  origin per layer: ${r.originLayerMs}`)].join('\n'),
      );
    }
    await NetnsLab.teardownAll();
  });

  /** Recorded right after each pull, before its checks, so a failing step still shows its time. */
  const record = (step: string, node: string, pull: PullResult, since: number) => {
    const perLayer = cl.image.layers.map((l) => {
      const got = cl.origin.blobGets({ since, digest: l.digest })[0];
      return got ? `${(l.size / MiB).toFixed(0)}MiB ${got.durationMs.toFixed(0)}ms` : `${(l.size / MiB).toFixed(0)}MiB -`;
    });
    rows.push({ step, node, pull, originLayerMs: perLayer.join(', ') });
  };

  it('baseline: a direct pull from the origin (no Dragonfly) on kind-worker2', async () => {
    const n = cl.node('kind-worker2');
    const mark = cl.origin.mark();
    const pull = await n.containerd.pull(cl.ref, { hostsDir: cl.directHostsDir, plainHttp: false, timeoutMs: PULL_TIMEOUT_MS });
    record('direct registry pull', 'kind-worker2', pull, mark);
    await n.containerd.verifyImage(cl.ref, cl.image);
    expect(layerGets(mark).map((r) => r.client)).toEqual(cl.image.layers.map(() => n.host.ip));
    await n.containerd.removeImage(cl.ref, cl.image);
  });

  it('cluster A: first pull on kind-worker goes back to source once, via A’s seed peer', async () => {
    const n = cl.node('kind-worker');
    const mark = cl.origin.mark();
    const pull = await n.containerd.pull(cl.ref, { plainHttp: false, timeoutMs: PULL_TIMEOUT_MS });
    record('A: back-to-source (seed peer A)', 'kind-worker', pull, mark);
    await n.containerd.verifyImage(cl.ref, cl.image);
    expect(cl.origin.notServedOnce(cl.image.layers, mark)).toEqual([]);
    expect(new Set(layerGets(mark).map((r) => r.client))).toEqual(new Set([seedIp('cluster-a')]));
  });

  it('cluster A: after clearing kind-worker’s dfdaemon cache and image, the pull hits a remote peer', async () => {
    const n = cl.node('kind-worker');
    await clearDfdaemonCache(cl, 'kind-worker');
    await n.containerd.removeImage(cl.ref, cl.image);
    const mark = cl.origin.mark();
    const pull = await n.containerd.pull(cl.ref, { plainHttp: false, timeoutMs: PULL_TIMEOUT_MS });
    record('A: remote-peer hit', 'kind-worker', pull, mark);
    await n.containerd.verifyImage(cl.ref, cl.image);
    expect(layerGets(mark)).toEqual([]);
  });

  it('cluster B: first pull on kind-worker3 goes back to source via B’s own seed peer', async () => {
    const n = cl.node('kind-worker3');
    const mark = cl.origin.mark();
    const pull = await n.containerd.pull(cl.ref, { plainHttp: false, timeoutMs: PULL_TIMEOUT_MS });
    record('B: back-to-source (seed peer B)', 'kind-worker3', pull, mark);
    await n.containerd.verifyImage(cl.ref, cl.image);
    expect(cl.origin.notServedOnce(cl.image.layers, mark)).toEqual([]);
    expect(new Set(layerGets(mark).map((r) => r.client))).toEqual(new Set([seedIp('cluster-b')]));
  });

  it('cluster B: after clearing kind-worker3’s cache and image, the pull hits a remote peer in B', async () => {
    const n = cl.node('kind-worker3');
    await clearDfdaemonCache(cl, 'kind-worker3');
    await n.containerd.removeImage(cl.ref, cl.image);
    const mark = cl.origin.mark();
    const pull = await n.containerd.pull(cl.ref, { plainHttp: false, timeoutMs: PULL_TIMEOUT_MS });
    record('B: remote-peer hit', 'kind-worker3', pull, mark);
    await n.containerd.verifyImage(cl.ref, cl.image);
    expect(layerGets(mark)).toEqual([]);
  });

  it('no piece bytes went from cluster-A hosts to cluster-B hosts; the origin served each blob once per cluster', async () => {
    expect(await aToBPieceBytes()).toBe(0);
    for (const ns of ['cluster-a', 'cluster-b']) {
      const bySeed = cl.origin.blobGets().filter((r) => r.client === seedIp(ns));
      for (const l of cl.image.layers) {
        const bytes = bySeed.filter((r) => r.uri.includes(l.digest)).reduce((n, r) => n + r.bytes, 0);
        expect({ cluster: ns, layer: l.digest, once: bytes >= l.size && bytes < 2 * l.size }).toEqual({ cluster: ns, layer: l.digest, once: true });
      }
    }
  });

  it('every gRPC server of both clusters runs mTLS on the certificates the lab issued for the manifests\' Certificates', async () => {
    const servers = [
      { workload: 'dragonfly-manager', ns: 'cluster-a', port: 65003 },
      ...['cluster-a', 'cluster-b'].flatMap((ns) => [
        { workload: 'dragonfly-scheduler', ns, port: 8002 },
        { workload: 'dragonfly-seed-peer', ns, port: 65000 },
        { workload: 'dragonfly-dfdaemon', ns, port: 65000 },
      ]),
    ];
    const answers: string[] = [];
    for (const s of servers) {
      const pods = cl.deployment.podsOf(s.workload, s.ns);
      expect(pods.length).toBeGreaterThan(0);
      // A client holding this namespace's peer certificate (the cert-manager Secret the lab wrote)...
      const secret = (key: string) => Buffer.from(cl.manifests.secretValue(s.ns, 'dragonfly-dfdaemon-tls', key));
      const withCert = grpc.credentials.createSsl(secret('ca.crt'), secret('tls.key'), secret('tls.crt'), { checkServerIdentity: () => undefined });
      // ...is served; one without a certificate is refused at the handshake.
      const without = grpc.credentials.createSsl(secret('ca.crt'), null, null, { checkServerIdentity: () => undefined });
      for (const pod of pods) {
        answers.push(`${s.ns}/${pod.name}: ${await healthOf(pod.ip, s.port, withCert)} / ${(await healthOf(pod.ip, s.port, without)).split(':')[0]}`);
      }
    }
    expect(answers).toEqual(answers.map((a) => `${a.split(':')[0]}: SERVING / UNAVAILABLE`));
  });
});

/** grpc.health.v1 Check("") on ip:port: "SERVING" or "<code>: <details>". */
function healthOf(ip: string, port: number, creds: grpc.ChannelCredentials): Promise<string> {
  const Health = grpc.makeGenericClientConstructor({}, 'Health');
  const client = new Health(`${ip}:${port}`, creds);
  return new Promise((resolve) => {
    client.makeUnaryRequest('/grpc.health.v1.Health/Check', (b: Buffer) => b, (b: Buffer) => b, Buffer.alloc(0), { deadline: Date.now() + 5000 }, (err, res?: Buffer) => {
      client.close();
      if (err) resolve(`${grpc.status[err.code]}: ${err.details}`);
      else resolve(res?.equals(Buffer.from([8, 1])) ? 'SERVING' : `unexpected ${res?.toString('hex')}`);
    });
  });
}
