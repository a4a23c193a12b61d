/**
 * Issue 8 fan-out: N worker hosts of cluster A (from dist/cluster-a.k8s.yaml) pull the same
 * large image cold at the same moment, the origin's link shaped with tbf. Measured: one direct
 * pull alone (the baseline), all N pulling directly, all N pulling through Dragonfly; total
 * times and the origin's bytes. Also the machine's floor: all N pulling directly with the link
 * not limited. Every node's containerd does that work (content write, digest, unpack) through
 * Dragonfly too, so no distribution finishes faster than it. Correctness is asserted (every
 * pull complete, the origin sends the image about once through Dragonfly); the speed goal (P2P ≤
 * 1.5× one direct pull) is reported as a figure, like a benchmark, because it depends on the
 * machine.
 *
 * Knobs: DF_E2E_FANOUT_MIB (image size, default 512), DF_E2E_FANOUT_NODES (default 8),
 * DF_E2E_ORIGIN_MBIT (origin link, default 200), DF_E2E_FANOUT_SKIP_DIRECT=1 (skip the all-direct
 * steps, the floor included, while investigating; their figures are then not recorded). tc here
 * has tbf but no netem: rate only, no delay.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import type { BenchFigure } from '../bench/types';
import { NetnsLab, startClusterLab, type ClusterLab, type LabNode, type PullResult } from './harness';
import { recordE2eFigures } from './walkthrough-figures';

const MiB = 2 ** 20;
const imageMiB = Number(process.env.DF_E2E_FANOUT_MIB ?? 512);
const nodeCount = Number(process.env.DF_E2E_FANOUT_NODES ?? 8);
const originMbit = Number(process.env.DF_E2E_ORIGIN_MBIT ?? 200);
const skipDirect = process.env.DF_E2E_FANOUT_SKIP_DIRECT === '1';
const layerCount = 4;
/** Time one image takes over the shaped link. */
const onePullSec = (imageMiB * MiB * 8) / (originMbit * 1e6);
const pullTimeoutMs = Math.round((3 * nodeCount * onePullSec + 120) * 1000);

/** What one step's pulls took in all, and the origin's bytes since `mark`. */
interface PullTotals {
  readonly ms: number;
  readonly originBytes: number;
  readonly mark: number;
}

/**
 * What else uses the cores before a pull: the load average and the busiest processes over a
 * 2 s sample (/proc), so a slow run on a busy machine says so (a fan-out figure moves with it).
 */
async function busyProcesses(): Promise<string> {
  const cpuTicks = (): Map<string, { name: string; ticks: number }> => {
    const out = new Map<string, { name: string; ticks: number }>();
    for (const pid of fs.readdirSync('/proc')) {
      if (!/^\d+$/.test(pid)) continue;
      try {
        const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
        const close = stat.lastIndexOf(')');
        const fields = stat.slice(close + 2).split(' ');
        out.set(pid, { name: stat.slice(stat.indexOf('(') + 1, close), ticks: Number(fields[11]) + Number(fields[12]) });
      } catch {
        // the process ended meanwhile
      }
    }
    return out;
  };
  const before = cpuTicks();
  await new Promise((r) => setTimeout(r, 2000));
  const busy = [...cpuTicks()]
    .map(([pid, p]) => ({ pid, name: p.name, share: (p.ticks - (before.get(pid)?.ticks ?? p.ticks)) / 100 / 2 }))
    .filter((p) => p.share >= 0.05)
    .sort((a, b) => b.share - a.share)
    .slice(0, 6);
  const load = os.loadavg().map((l) => l.toFixed(1)).join(' ');
  return `load average ${load}; busiest processes (cores): ${busy.map((p) => `${p.name}[${p.pid}] ${p.share.toFixed(2)}`).join(', ') || 'none above 0.05'}`;
}

jest.setTimeout(pullTimeoutMs + 60_000);

describe(`fan-out: ${nodeCount} nodes pull a ${imageMiB} MiB image cold at once (origin ${originMbit} Mbit/s)`, () => {
  let cl: ClusterLab;
  let single: PullResult;
  let direct: PullTotals;
  let p2p: PullTotals;
  let floor: PullTotals;
  let p2pBusy = '';

  beforeAll(async () => {
    if (!(imageMiB >= 4 && nodeCount >= 2 && originMbit > 0)) throw new Error('DF_E2E_FANOUT_MIB ≥ 4, DF_E2E_FANOUT_NODES ≥ 2, DF_E2E_ORIGIN_MBIT > 0 expected');
    cl = await startClusterLab({
      manifestFiles: [`${process.env.DF_E2E_MANIFEST_DIR ?? 'dist'}/cluster-a.k8s.yaml`],
      nodes: Array.from({ length: nodeCount }, (_, i) => ({ name: `node-${i + 1}`, labels: { cluster: 'a' } })),
      // Uncompressed random layers: no gzip CPU on either side, bytes on the wire = image size.
      layerSizes: Array.from({ length: layerCount }, () => Math.floor((imageMiB * MiB) / layerCount)),
      gzip: false,
      originRateMbit: originMbit,
    });
  }, 300_000);

  afterAll(async () => {
    await NetnsLab.teardownAll();
  });

  const pullAll = async (nodes: readonly LabNode[], direct: boolean): Promise<PullTotals> => {
    const busy = await busyProcesses();
    if (!direct) p2pBusy = busy;
    console.log(`before the ${direct ? 'direct' : 'p2p'} x${nodes.length} pull: ${busy}`);
    const mark = cl.origin.mark();
    const started = performance.now();
    const results = await Promise.all(
      nodes.map((n) => n.containerd.pull(cl.ref, { plainHttp: false, timeoutMs: pullTimeoutMs, ...(direct ? { hostsDir: cl.directHostsDir } : {}) })),
    );
    const ms = Math.round(performance.now() - started);
    for (const n of nodes) await n.containerd.verifyImage(cl.ref, cl.image);
    console.log(`${direct ? 'direct' : 'p2p'} x${nodes.length}: total ${ms} ms; per node ${results.map((r) => r.ms).join(', ')} ms`);
    return { ms, originBytes: cl.origin.blobBytes(mark), mark };
  };

  it('baseline: one node pulls directly from the shaped origin', async () => {
    const n = cl.nodes[0];
    const mark = cl.origin.mark();
    single = await n.containerd.pull(cl.ref, { plainHttp: false, hostsDir: cl.directHostsDir, timeoutMs: pullTimeoutMs });
    await n.containerd.verifyImage(cl.ref, cl.image);
    expect(cl.origin.blobBytes(mark)).toBeGreaterThanOrEqual(cl.image.layerBytes);
    await n.containerd.removeImage(cl.ref, cl.image);
    console.log(`direct x1: ${single.ms} ms (link time alone ≈ ${(onePullSec * 1000).toFixed(0)} ms)`);
  });

  (skipDirect ? it.skip : it)(`all ${nodeCount} nodes pull directly at once`, async () => {
    direct = await pullAll(cl.nodes, true);
    expect(direct.originBytes).toBeGreaterThanOrEqual(nodeCount * cl.image.layerBytes);
    for (const n of cl.nodes) await n.containerd.removeImage(cl.ref, cl.image);
  });

  // The floor (see the header): where it is above 1.5× one direct pull, so is every P2P pull.
  (skipDirect ? it.skip : it)(`floor: all ${nodeCount} nodes pull directly at once with the origin's link not limited`, async () => {
    await cl.setOriginRate(undefined);
    try {
      floor = await pullAll(cl.nodes, true);
    } finally {
      await cl.setOriginRate(originMbit);
    }
    for (const n of cl.nodes) await n.containerd.removeImage(cl.ref, cl.image);
  });

  it(`all ${nodeCount} nodes pull through Dragonfly at once; the origin sends the image about once`, async () => {
    p2p = await pullAll(cl.nodes, false);
    expect(cl.origin.notServedOnce(cl.image.layers, p2p.mark)).toEqual([]);
  });

  it('records the figures', () => {
    if (skipDirect) {
      expect(single && p2p).toBeTruthy();
      console.log(`fan-out (all-direct step skipped, nothing recorded): p2p ${(p2p.ms / 1000).toFixed(2)} s, one direct pull ${(single.ms / 1000).toFixed(2)} s (${(p2p.ms / single.ms).toFixed(2)}×), origin egress ${(p2p.originBytes / MiB).toFixed(1)} MiB`);
      return;
    }
    expect(single && direct && floor && p2p).toBeTruthy();
    const note = `${nodeCount} netns nodes, ${imageMiB} MiB in ${layerCount} random layers, origin tbf ${originMbit} Mbit/s, ctr pull incl. unpack, 2-core machine`;
    const figures: BenchFigure[] = [
      {
        area: 'e2e',
        name: `fan-out ${nodeCount} nodes cold pull through Dragonfly (all done)`,
        value: p2p.ms / 1000,
        unit: 's',
        baselineName: 'one direct pull',
        baselineValue: single.ms / 1000,
        baselineUnit: 's',
        goal: '≤ 1.5× one direct pull',
        met: p2p.ms <= 1.5 * single.ms,
        note: `${note}; the floor below (the same ${nodeCount} direct pulls with the link not limited) took ${(floor.ms / 1000).toFixed(1)} s, ${(floor.ms / single.ms).toFixed(2)}× one direct pull; through Dragonfly ${(p2p.ms / floor.ms).toFixed(2)}× that floor; before the pull: ${p2pBusy}`,
      },
      { area: 'e2e', name: `fan-out ${nodeCount} nodes cold pull all direct (all done)`, value: direct.ms / 1000, unit: 's', baselineName: 'one direct pull', baselineValue: single.ms / 1000, baselineUnit: 's', note },
      {
        area: 'e2e',
        name: `fan-out floor: ${nodeCount} nodes cold pull all direct, origin link not limited (all done)`,
        value: floor.ms / 1000,
        unit: 's',
        baselineName: 'one direct pull',
        baselineValue: single.ms / 1000,
        baselineUnit: 's',
        note: `${note.replace(/origin tbf \d+ Mbit\/s/, 'origin link not shaped')}; the nodes' own containerd work (content write, digest, unpack) on this machine's cores, no distribution in it: a lower bound for the pull through Dragonfly`,
      },
      {
        area: 'e2e',
        name: `fan-out ${nodeCount} nodes origin egress through Dragonfly`,
        value: p2p.originBytes / MiB,
        unit: 'MiB',
        baselineName: `all direct (${nodeCount} pulls)`,
        baselineValue: direct.originBytes / MiB,
        baselineUnit: 'MiB',
        goal: '≈ 1× image size',
        met: p2p.originBytes <= 1.1 * cl.image.layerBytes,
        note,
      },
    ];
    recordE2eFigures(figures, 'fan-out ');
    console.log(figures.map((f) => `${f.name}: ${f.value.toFixed(2)} ${f.unit} (baseline ${f.baselineName} ${f.baselineValue?.toFixed(2)} ${f.baselineUnit})${f.goal ? ` goal ${f.goal}: ${f.met ? 'met' : 'NOT met'}` : ''}`).join('\n'));
  });
});
