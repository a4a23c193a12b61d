/**
 * Issue 16: jobs on the seed 000 two-cluster topology (dist/ manifests on netns hosts).
 * The manager's job queues live in cluster A's Redis; cluster B's scheduler reaches it
 * through externalRedis. A preheat of the test image for both clusters makes each cluster's
 * first pull read no blob from the origin; get_task lists exactly the peers that hold a
 * layer; delete_task removes it from every peer, so the next pull goes back to the origin.
 */
import { NetnsLab, ORIGIN_NAME, SEED_IMAGE_REPO, SEED_IMAGE_TAG, startClusterLab, type ClusterLab } from './harness';

const PULL_TIMEOUT_MS = 90_000;
const JOB_TIMEOUT_MS = 90_000;
jest.setTimeout(4 * PULL_TIMEOUT_MS);

const MiB = 2 ** 20;

interface JobState {
  scheduler_cluster_id: number;
  state: string;
  error?: string;
  results: { peers?: Array<{ ip: string; hostname: string; host_type: string }>; tasks?: Array<{ task_id: string }> };
}
interface JobView {
  id: number;
  state: string;
  result: { job_states: JobState[] };
}

describe('jobs across two clusters (issue 16)', () => {
  let cl: ClusterLab;
  const layerGets = (since: number) => cl.origin.blobGets({ since }).filter((r) => cl.image.layers.some((l) => r.uri.includes(l.digest)));
  const ipsOf = (workload: string, ns: string) => cl.deployment.podsOf(workload, ns).map((p) => p.ip);

  async function runJob(body: unknown): Promise<JobView> {
    const created = await cl.manager.request<JobView>('POST', '/api/v1/jobs', body);
    const deadline = Date.now() + JOB_TIMEOUT_MS;
    let job = created;
    while (job.state === 'PENDING') {
      if (Date.now() > deadline) throw new Error(`job ${created.id} still PENDING: ${JSON.stringify(job)}`);
      await new Promise((r) => setTimeout(r, 500));
      job = await cl.manager.request<JobView>('GET', `/api/v1/jobs/${created.id}`);
    }
    return job;
  }
  const part = (job: JobView, cluster: number) => job.result.job_states.find((s) => s.scheduler_cluster_id === cluster)!;

  beforeAll(async () => {
    cl = await startClusterLab({
      manifestFiles: ['cluster-a.k8s.yaml', 'cluster-b.k8s.yaml'].map((f) => `${process.env.DF_E2E_MANIFEST_DIR ?? 'dist'}/${f}`),
      nodes: [
        { name: 'kind-worker', labels: { cluster: 'a' } },
        { name: 'kind-worker2', labels: { cluster: 'a' } },
        { name: 'kind-worker3', labels: { cluster: 'b' } },
        { name: 'kind-worker4', labels: { cluster: 'b' } },
      ],
      layerSizes: [8 * MiB, 4 * MiB, 2 * MiB, 1 * MiB],
    });
    // Cluster B registers through its apply-cluster Job and scheduler; wait for both schedulers.
    for (const ns of ['cluster-a', 'cluster-b']) for (const ip of ipsOf('dragonfly-scheduler', ns)) await cl.manager.waitActive('scheduler', ip, 60_000);
  }, 300_000);

  afterAll(async () => {
    await NetnsLab.teardownAll();
  });

  it('preheats the image for both clusters: each cluster\'s seed peer fetches every layer once', async () => {
    const mark = cl.origin.mark();
    const job = await runJob({
      type: 'preheat',
      args: { type: 'image', url: `https://${ORIGIN_NAME}/v2/${SEED_IMAGE_REPO}/manifests/${SEED_IMAGE_TAG}` },
      scheduler_cluster_ids: [1, 2],
    });
    expect(job.result.job_states.map((s) => [s.scheduler_cluster_id, s.error ?? s.state])).toEqual([
      [1, 'SUCCESS'],
      [2, 'SUCCESS'],
    ]);
    expect(part(job, 1).results.tasks!.map((t) => t.task_id).sort()).toEqual(cl.image.layers.map((l) => l.digest.replace('sha256:', '')).sort());
    // Each cluster's seed peer read every layer from the origin once; no other host read any.
    for (const ns of ['cluster-a', 'cluster-b']) {
      const seed = ipsOf('dragonfly-seed-peer', ns);
      for (const l of cl.image.layers) {
        const bytes = layerGets(mark)
          .filter((r) => seed.includes(r.client) && r.uri.includes(l.digest))
          .reduce((n, r) => n + r.bytes, 0);
        expect({ ns, layer: l.digest, once: bytes >= l.size && bytes < 2 * l.size }).toEqual({ ns, layer: l.digest, once: true });
      }
    }
    const seeds = [...ipsOf('dragonfly-seed-peer', 'cluster-a'), ...ipsOf('dragonfly-seed-peer', 'cluster-b')];
    expect(layerGets(mark).filter((r) => !seeds.includes(r.client))).toEqual([]);
  });

  it.each([
    ['cluster A', 'kind-worker'],
    ['cluster B', 'kind-worker3'],
  ])('%s: the first pull on %s reads no blob from the origin', async (_c, node) => {
    const n = cl.node(node);
    const mark = cl.origin.mark();
    await n.containerd.pull(cl.ref, { plainHttp: false, timeoutMs: PULL_TIMEOUT_MS });
    await n.containerd.verifyImage(cl.ref, cl.image);
    expect(layerGets(mark)).toEqual([]);
  });

  it('get_task lists exactly the peers that hold a layer: the seed peer (preheat) and the node that pulled, per cluster', async () => {
    const layer = cl.image.layers[0];
    const job = await runJob({ type: 'get_task', args: { task_id: layer.digest.replace('sha256:', '') } });
    for (const [ns, cluster, node] of [['cluster-a', 1, 'kind-worker'], ['cluster-b', 2, 'kind-worker3']] as const) {
      const p = part(job, cluster);
      expect(p.error ?? p.state).toBe('SUCCESS');
      const expected = [...ipsOf('dragonfly-seed-peer', ns), cl.node(node).host.ip].sort();
      expect({ cluster, holders: p.results.peers!.map((x) => x.ip).sort() }).toEqual({ cluster, holders: expected });
      // Every other host answered "not held" (none unreachable): the list is complete.
      expect((p.results as { unreachable_peers?: unknown[] }).unreachable_peers).toEqual([]);
    }
  });

  it('delete_task removes every layer from every peer; the next pull on kind-worker goes back to the origin', async () => {
    for (const l of cl.image.layers) {
      const job = await runJob({ type: 'delete_task', args: { task_id: l.digest.replace('sha256:', '') }, scheduler_cluster_ids: [1, 2] });
      expect(job.result.job_states.map((s) => s.error ?? s.state)).toEqual(['SUCCESS', 'SUCCESS']);
    }
    const after = await runJob({ type: 'get_task', args: { task_id: cl.image.layers[0].digest.replace('sha256:', '') } });
    expect(after.result.job_states.map((s) => s.results.peers)).toEqual([[], []]);

    const n = cl.node('kind-worker');
    await n.containerd.removeImage(cl.ref, cl.image);
    const mark = cl.origin.mark();
    await n.containerd.pull(cl.ref, { plainHttp: false, timeoutMs: PULL_TIMEOUT_MS });
    await n.containerd.verifyImage(cl.ref, cl.image);
    expect(cl.origin.notServedOnce(cl.image.layers, mark)).toEqual([]);
    expect(new Set(layerGets(mark).map((r) => r.client))).toEqual(new Set(ipsOf('dragonfly-seed-peer', 'cluster-a')));
  });
});
