/**
 * Issue 14: the images as the manifests run them. Cluster A's synthesized manifests are deployed
 * in image mode onto one netns node (its containerd runs every container from
 * build/images/<component>.tar, with the manifests' command, env and ConfigMap/Secret/hostPath
 * mounts; dfinit as the dfdaemon pod's init container). Each long-running container must answer
 * its manifest's probes (gRPC health on the readiness port, HTTP /healthy on the liveness port),
 * run as the image's user, stop cleanly on SIGTERM, and come back healthy; the restart's time
 * from process start to healthy and the image sizes are recorded as figures.
 *
 * Needs the images: `scripts/images/build.sh` (CI's .ci/run builds them first).
 */
import * as fs from 'node:fs';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { protoPath as healthProtoPath } from 'grpc-health-check';
import { NetnsLab, imagesDir, run, startClusterLab, waitFor, type ClusterLab, type Pod, type RunningContainer } from './harness';
import { recordE2eFigures } from './walkthrough-figures';

jest.setTimeout(120_000);

/** kubelet's default terminationGracePeriodSeconds is 30 s; a clean stop here takes well under that. */
const STOP_GRACE_MS = 15_000;

interface Probes {
  readonly grpcPort: number;
  readonly httpPort: number;
  readonly httpPath: string;
  readonly credentials: grpc.ChannelCredentials;
}

type HealthClient = grpc.Client & {
  Check(req: { service: string }, md: grpc.Metadata, opts: grpc.CallOptions, cb: (e: grpc.ServiceError | null, r?: { status: string }) => void): grpc.ClientUnaryCall;
};
const healthPkg = grpc.loadPackageDefinition(protoLoader.loadSync(healthProtoPath, { enums: String })) as unknown as { grpc: { health: { v1: { Health: new (addr: string, creds: grpc.ChannelCredentials) => HealthClient } } } };

/** grpc.health.v1 Check("") status, or the error's message. */
async function grpcHealth(ip: string, port: number, credentials: grpc.ChannelCredentials): Promise<string> {
  const client = new healthPkg.grpc.health.v1.Health(`${ip}:${port}`, credentials);
  try {
    return await new Promise<string>((resolve) => {
      client.Check({ service: '' }, new grpc.Metadata(), { deadline: Date.now() + 2000 }, (e, r) => resolve(e ? `error: ${e.message}` : (r?.status ?? 'no status')));
    });
  } finally {
    client.close();
  }
}

async function httpStatus(url: string): Promise<number> {
  try {
    return (await fetch(url, { signal: AbortSignal.timeout(2000) })).status;
  } catch {
    return 0;
  }
}

/** The uid the container's node process runs as (the pod host's netns holds only that pod's processes, plus ctr). */
async function uidOfNode(pod: Pod): Promise<number[]> {
  const pids = (await run('ip', ['netns', 'pids', pod.host.ns])).stdout.split('\n').filter(Boolean);
  const uids: number[] = [];
  for (const pid of pids) {
    try {
      if (fs.readFileSync(`/proc/${pid}/comm`, 'utf8').trim() !== 'node') continue;
      const m = /^Uid:\s+(\d+)/m.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
      if (m) uids.push(Number(m[1]));
    } catch {
      /* exited meanwhile */
    }
  }
  return uids;
}

/**
 * How the pod's node processes run (issue 19): whether their root filesystem is mounted
 * read-only and their effective capabilities, as the kernel reports them.
 */
async function confinementOfNode(pod: Pod): Promise<Array<{ readOnlyRoot: boolean; capEff: string }>> {
  const pids = (await run('ip', ['netns', 'pids', pod.host.ns])).stdout.split('\n').filter(Boolean);
  const out: Array<{ readOnlyRoot: boolean; capEff: string }> = [];
  for (const pid of pids) {
    try {
      if (fs.readFileSync(`/proc/${pid}/comm`, 'utf8').trim() !== 'node') continue;
      // mountinfo: "id parent major:minor root mountpoint options ..."; the last "/" entry is the one in effect.
      const root = fs.readFileSync(`/proc/${pid}/mountinfo`, 'utf8').split('\n').map((l) => l.split(' ')).filter((f) => f[4] === '/').pop();
      const cap = /^CapEff:\s+([0-9a-f]+)/m.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
      if (root && cap) out.push({ readOnlyRoot: root[5].split(',').includes('ro'), capEff: cap[1] });
    } catch {
      /* exited meanwhile */
    }
  }
  return out;
}

describe('images run as the manifests run them (issue 14)', () => {
  let cl: ClusterLab;
  const figures: Array<{ name: string; value: number; unit: string; note: string; baselineName?: string; baselineValue?: number }> = [];
  /** Same-run floor per image: `ctr run` of `node -e 0` (container setup + Node start, no program). */
  const floorMs = new Map<string, number>();

  /** The long-running containers to check: workload, container, expected uid. */
  const cases: ReadonlyArray<readonly [string, string, number]> = [
    ['dragonfly-manager', 'manager', 10001],
    ['dragonfly-scheduler', 'scheduler', 10001],
    // The seed peer's manifest asks for uid 10001 (runAsUser, fsGroup on its claim); ctr 1.6 has no
    // --user, so the lab runs the dfdaemon image's own USER (root). Kubernetes applies runAsUser.
    ['dragonfly-seed-peer', 'seed-peer', 0],
    ['dragonfly-dfdaemon', 'dfdaemon', 0],
  ];

  const podOf = (workload: string): Pod => {
    const p = cl.deployment.podsOf(workload, 'cluster-a')[0] ?? cl.deployment.podsOf(workload)[0];
    if (!p) throw new Error(`no pod of ${workload}`);
    return p;
  };

  /**
   * The manifest's HTTP probes of a container, and its gRPC port with the credentials of the
   * certificate Secret it mounts (mTLS: the kubelet probes readiness over HTTP, this test also
   * asks the gRPC health service as a peer would).
   */
  const probesOf = (pod: Pod, container: string): Probes => {
    const obj = cl.manifests.find(pod.workload.kind, pod.workload.namespace, pod.workload.name);
    const spec = (obj.spec?.template as { spec: { containers: Array<Record<string, unknown>>; volumes?: Array<{ name: string; secret?: { secretName: string } }> } }).spec;
    const c = spec.containers.find((x) => x.name === container) as
      | { ports?: Array<{ name: string; containerPort: number }>; readinessProbe?: { httpGet?: { port: number } }; livenessProbe?: { httpGet?: { port: number; path: string } } }
      | undefined;
    const grpcPort = c?.ports?.find((p) => p.name === 'grpc')?.containerPort;
    const http = c?.livenessProbe?.httpGet;
    if (!grpcPort || !http || !c?.readinessProbe?.httpGet) throw new Error(`${pod.workload.name}/${container}: the manifest has no grpc port, HTTP readiness and HTTP liveness probe`);
    const secretName = spec.volumes?.find((v) => v.name === 'tls')?.secret?.secretName;
    if (!secretName) throw new Error(`${pod.workload.name}: the manifest mounts no tls Secret`);
    const file = (k: string) => Buffer.from(cl.manifests.secretValue(pod.workload.namespace, secretName, k));
    const credentials = grpc.credentials.createSsl(file('ca.crt'), file('tls.key'), file('tls.crt'), { checkServerIdentity: () => undefined });
    return { grpcPort, httpPort: http.port, httpPath: http.path, credentials };
  };

  const healthy = async (pod: Pod, c: RunningContainer, probes: Probes, timeoutMs: number): Promise<void> => {
    await waitFor(
      `${pod.name}/${c.name} healthy`,
      async () => {
        cl.deployment.throwIfAnyExited();
        const [grpcStatus, http] = await Promise.all([grpcHealth(pod.ip, probes.grpcPort, probes.credentials), httpStatus(`http://${pod.ip}:${probes.httpPort}${probes.httpPath}`)]);
        return grpcStatus === 'SERVING' && http === 200 ? true : undefined;
      },
      timeoutMs,
      50,
    );
  };

  beforeAll(async () => {
    cl = await startClusterLab({
      mode: 'image',
      manifestFiles: [`${process.env.DF_E2E_MANIFEST_DIR ?? 'dist'}/cluster-a.k8s.yaml`],
      nodes: [{ name: 'img-node', labels: { cluster: 'a' } }],
      layerSizes: [1024 * 1024],
    });
  }, 300_000);

  afterAll(async () => {
    if (figures.length > 0) {
      recordE2eFigures(figures.map((f) => ({ area: 'e2e', ...f })), 'image: ');
      console.log(['images:', ...figures.map((f) => `  ${f.name.padEnd(58)} ${String(f.value).padStart(8)} ${f.unit}`)].join('\n'));
    }
    await NetnsLab.teardownAll();
  });

  it('the dfdaemon pod ran dfinit from the dfdaemon image before dfdaemon, and the image holds dfget', async () => {
    const pod = podOf('dragonfly-dfdaemon');
    expect(pod.containers.map((c) => c.name)).toEqual(['dfinit', 'dfdaemon']);
    expect(pod.container('dfinit').result?.code).toBe(0);
    expect(pod.container('dfinit').image).toBe(pod.container('dfdaemon').image);
    // dfinit wrote the node containerd's mirror config through the hostPath mount.
    expect(fs.readdirSync(pod.node!.containerd.hostsDir).length).toBeGreaterThan(0);
    const dfget = await pod.runToCompletion({ ...pod.container('dfdaemon'), name: 'dfget', args: ['dfget', '--help'] }, 30_000);
    expect({ code: dfget.code, usage: /dfget/i.test(dfget.stdout + dfget.stderr) }).toEqual({ code: 0, usage: true });
  });

  it.each(cases)('%s/%s answers its manifest probes, from its image, as uid %i', async (workload, container, uid) => {
    const pod = podOf(workload);
    const c = pod.container(container);
    expect(c.image).toMatch(/^ghcr\.io\/dragonfly-ts\/(manager|scheduler|dfdaemon):/);
    await healthy(pod, c, probesOf(pod, container), 30_000);
    // DaemonSet pods share the node's netns with other containers; all of them run as root.
    expect([...new Set(await uidOfNode(pod))]).toEqual([uid]);
    // The manifests' securityContext: read-only root filesystem, every capability dropped.
    const confinement = await confinementOfNode(pod);
    expect(confinement.length).toBeGreaterThan(0);
    for (const c of confinement) expect(c).toEqual({ readOnlyRoot: true, capEff: '0000000000000000' });
  });

  it.each(cases)('%s/%s stops cleanly on SIGTERM and comes back healthy (cold start timed)', async (workload, container) => {
    const pod = podOf(workload);
    const c = pod.container(container);
    const proc = c.process;
    if (!proc) throw new Error(`${pod.name}/${container} was not started`);
    const stopStarted = performance.now();
    await proc.stop(STOP_GRACE_MS);
    const stopMs = Math.round(performance.now() - stopStarted);
    // `ctr run` exits with the container's status: 0 only if the program shut down by itself.
    expect({ exit: await proc.exited, withinGrace: stopMs < STOP_GRACE_MS }).toEqual({ exit: { code: 0, signal: null }, withinGrace: true });

    const image = c.image ?? '';
    if (!floorMs.has(image)) {
      const t0 = performance.now();
      const r = await pod.runToCompletion({ ...c, name: `${c.name}-floor`, args: ['node', '-e', '0'] }, 30_000);
      expect(r.code).toBe(0);
      floorMs.set(image, Math.round(performance.now() - t0));
    }

    const started = performance.now();
    pod.start(c);
    await healthy(pod, c, probesOf(pod, container), 60_000);
    const coldMs = Math.round(performance.now() - started);
    figures.push({
      name: `image: ${container} cold start (process start to healthy)`,
      value: coldMs,
      unit: 'ms',
      note: `${image}, ctr run on a netns host until gRPC health SERVING + HTTP /healthy 200`,
      baselineName: 'ctr run node -e 0, same image',
      baselineValue: floorMs.get(image),
    });
    figures.push({ name: `image: ${container} stop on SIGTERM`, value: stopMs, unit: 'ms', note: `${image}, exit 0` });
  });

  it('records the image sizes', async () => {
    const n = cl.nodes[0];
    for (const component of ['manager', 'scheduler', 'dfdaemon']) {
      const archive = `${imagesDir()}/${component}.tar`;
      const archiveBytes = fs.statSync(archive).size;
      expect(archiveBytes).toBeGreaterThan(10 * 2 ** 20);
      figures.push({ name: `image: ${component} archive size (uncompressed layers)`, value: Math.round(archiveBytes / 1e5) / 10, unit: 'MB', note: `build/images/${component}.tar (docker-archive)` });
    }
    // containerd's own accounting of what a node stores for them.
    const ls = await n.containerd.ctr(['images', 'ls']);
    expect(ls.stdout).toMatch(/ghcr\.io\/dragonfly-ts\/dfdaemon:/);
  });
});
