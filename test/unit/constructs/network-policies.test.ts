/**
 * Issue 15 item 5, over the committed dist/: the NetworkPolicies admit every connection seed
 * 000's walkthrough makes and no other.
 *
 * Allowed: every (source, destination pod, port) is evaluated the way Kubernetes evaluates ingress
 * policies (a pod selected by a policy of type Ingress takes only what some rule admits; peers by
 * pod/namespace labels or by ipBlock). Sources are each pod workload of dist/, the dfdaemons (they
 * use hostNetwork, so they call from their node's address), the user outside the cluster, and two
 * strangers (a pod in another namespace, an unlabelled pod next to the manager).
 *
 * Needed: the connections the programs make in the walkthrough, read from dist/ itself (config
 * addresses, the Job's --manager-url, init containers' waits, resolved through the Services) plus
 * the ones the protocols make with addresses learnt at run time (listed below with the reason).
 *
 * A policy can tell hostNetwork callers apart only by address; seed 000's two clusters are node
 * groups of one kind cluster sharing one node range, so the dfdaemons of A and B are one source
 * ("node") here, as they are to the policies.
 */
import { readFileSync } from 'node:fs';
import { BlockList } from 'node:net';
import { join } from 'node:path';
import { parseAllDocuments } from 'yaml';
import { parseConfigText } from '../../../services/common/config';
import { CentralManager, type ManagerNetworkPolicyOptions } from '../../../constructs';
import { configMapData, newChart, podTemplate, synth, WORKLOAD_KINDS, type KubeObject } from './helpers';

const objects: KubeObject[] = ['cluster-a.k8s.yaml', 'cluster-b.k8s.yaml'].flatMap((f) =>
  parseAllDocuments(readFileSync(join(__dirname, '..', '..', '..', 'dist', f), 'utf8'))
    .map((d) => d.toJS() as KubeObject | null)
    .filter((o): o is KubeObject => o !== null),
);

/** Addresses standing for each kind of caller in seed 000's kind cluster (pods 10.244.0.0/16, nodes 172.18.0.0/16). */
const POD_IP = '10.244.1.23';
const NODE_IP = '172.18.0.3';
const OUTSIDE_IP = '203.0.113.7';

interface Source {
  readonly id: string;
  readonly ip: string;
  /** Pod sources: namespace and labels (policies select them by these). */
  readonly pod?: { readonly namespace: string; readonly labels: Record<string, string> };
}

interface Destination {
  readonly id: string;
  readonly namespace: string;
  readonly labels: Record<string, string>;
  readonly ports: number[];
}

const workloads = objects.filter((o) => WORKLOAD_KINDS.includes(o.kind));
const wid = (o: KubeObject) => `${o.metadata.namespace}/${o.metadata.name}`;
const isHostNetwork = (o: KubeObject) => podTemplate(o).spec.hostNetwork === true;

const sources: Source[] = [
  ...workloads.filter((w) => !isHostNetwork(w)).map((w) => ({ id: wid(w), ip: POD_IP, pod: { namespace: w.metadata.namespace!, labels: podTemplate(w).labels } })),
  { id: 'node', ip: NODE_IP },
  { id: 'outside', ip: OUTSIDE_IP },
  { id: 'stranger/other-namespace', ip: POD_IP, pod: { namespace: 'default', labels: { app: 'dragonfly', component: 'scheduler' } } },
  { id: 'stranger/next-to-manager', ip: POD_IP, pod: { namespace: 'cluster-a', labels: { app: 'curl' } } },
];
/** Which source a workload's calls come from. */
const sourceOf = (w: KubeObject): string => (isHostNetwork(w) ? 'node' : wid(w));

const destinations: Destination[] = workloads
  .filter((w) => !isHostNetwork(w))
  .map((w) => ({
    id: wid(w),
    namespace: w.metadata.namespace!,
    labels: podTemplate(w).labels,
    ports: [...new Set(podTemplate(w).spec.containers.flatMap((c) => (c.ports ?? []).map((p) => p.containerPort)))],
  }));

// ---- Kubernetes ingress semantics --------------------------------------------------------
interface Peer {
  podSelector?: { matchLabels?: Record<string, string> };
  namespaceSelector?: { matchLabels?: Record<string, string> };
  ipBlock?: { cidr: string; except?: string[] };
}
interface PolicySpec {
  podSelector: { matchLabels?: Record<string, string> };
  policyTypes?: string[];
  ingress?: Array<{ from?: Peer[]; ports?: Array<{ port: number; protocol?: string }> }>;
}
const policies = objects.filter((o) => o.kind === 'NetworkPolicy').map((o) => ({ namespace: o.metadata.namespace!, spec: o.spec as PolicySpec }));

const matches = (selector: { matchLabels?: Record<string, string> } | undefined, labels: Record<string, string>) =>
  Object.entries(selector?.matchLabels ?? {}).every(([k, v]) => labels[k] === v);

function inCidr(ip: string, cidr: string): boolean {
  const [net, bits] = cidr.split('/');
  const list = new BlockList();
  list.addSubnet(net, Number(bits), net.includes(':') ? 'ipv6' : 'ipv4');
  return list.check(ip, ip.includes(':') ? 'ipv6' : 'ipv4');
}

function peerAdmits(peer: Peer, policyNamespace: string, source: Source): boolean {
  if (peer.ipBlock) return inCidr(source.ip, peer.ipBlock.cidr) && !(peer.ipBlock.except ?? []).some((e) => inCidr(source.ip, e));
  if (!source.pod) return false;
  const namespaceOk = peer.namespaceSelector ? matches(peer.namespaceSelector, { 'kubernetes.io/metadata.name': source.pod.namespace }) : source.pod.namespace === policyNamespace;
  return namespaceOk && matches(peer.podSelector, source.pod.labels);
}

function admitted(source: Source, dest: Destination, port: number): boolean {
  const selecting = policies.filter((p) => p.namespace === dest.namespace && (p.spec.policyTypes ?? ['Ingress']).includes('Ingress') && matches(p.spec.podSelector, dest.labels));
  if (selecting.length === 0) return true; // not isolated
  return selecting.some((p) =>
    (p.spec.ingress ?? []).some(
      (rule) => (!rule.ports || rule.ports.some((rp) => rp.port === port && (rp.protocol ?? 'TCP') === 'TCP')) && (!rule.from || rule.from.some((peer) => peerAdmits(peer, p.namespace, source))),
    ),
  );
}

const allowed = new Set<string>();
for (const s of sources) for (const d of destinations) for (const port of d.ports) if (admitted(s, d, port)) allowed.add(`${s.id} -> ${d.id}:${port}`);

// ---- What the walkthrough connects to -------------------------------------------------------
/** A Service DNS name (or short name) + port → the workload behind it and its container port. */
function resolve(host: string, port: number, fromNamespace: string): { id: string; port: number } {
  const [name, namespace = fromNamespace] = host.split('.');
  const svc = objects.find((o) => o.kind === 'Service' && o.metadata.name === name && o.metadata.namespace === namespace);
  if (!svc) throw new Error(`no Service for ${host}`);
  const spec = svc.spec as { selector: Record<string, string>; ports: Array<{ port: number; targetPort?: number }> };
  const sp = spec.ports.find((p) => p.port === port);
  if (!sp) throw new Error(`Service ${namespace}/${name} has no port ${port}`);
  const backends = workloads.filter((w) => w.metadata.namespace === namespace && matches({ matchLabels: spec.selector }, podTemplate(w).labels));
  if (backends.length !== 1) throw new Error(`Service ${namespace}/${name} selects ${backends.length} workloads`);
  return { id: wid(backends[0]), port: sp.targetPort ?? sp.port };
}

const needed = new Map<string, string>();
function need(source: string, host: string, port: number, fromNamespace: string, why: string): void {
  const target = resolve(host, port, fromNamespace);
  needed.set(`${source} -> ${target.id}:${target.port}`, why);
}
const hostPort = (addr: string): [string, number] => {
  const i = addr.lastIndexOf(':');
  return [addr.slice(0, i), Number(addr.slice(i + 1))];
};

for (const w of workloads) {
  const ns = w.metadata.namespace!;
  const from = sourceOf(w);
  const { spec } = podTemplate(w);
  for (const v of spec.volumes ?? []) {
    if (!v.configMap) continue;
    const cm = objects.find((o) => o.kind === 'ConfigMap' && o.metadata.name === v.configMap!.name && o.metadata.namespace === ns);
    for (const [file, text] of Object.entries(configMapData(cm!))) {
      if (file === 'manager.yaml') {
        const c = parseConfigText('manager', text);
        need(from, c.database.mysql.host, c.database.mysql.port, ns, 'manager → MySQL');
        for (const a of c.database.redis.addrs) need(from, ...hostPort(a), ns, 'manager → Redis');
        if (c.jaeger) need(from, new URL(c.jaeger).hostname, Number(new URL(c.jaeger).port), ns, 'traces');
      } else if (file === 'scheduler.yaml') {
        const c = parseConfigText('scheduler', text);
        need(from, ...hostPort(c.manager.addr), ns, 'scheduler → manager gRPC');
        for (const a of c.database.redis.addrs) need(from, ...hostPort(a), ns, 'scheduler → Redis (job queues)');
        if (c.jaeger) need(from, new URL(c.jaeger).hostname, Number(new URL(c.jaeger).port), ns, 'traces');
      } else if (file === 'dfdaemon.yaml') {
        const c = parseConfigText('dfdaemon', text, { env: { DFDAEMON__host__advertiseIP: '10.244.1.7' } });
        for (const a of c.scheduler.manager.netAddrs) need(from, ...hostPort(a.addr), ns, 'dfdaemon → manager gRPC');
        if (c.jaeger) need(from, new URL(c.jaeger).hostname, Number(new URL(c.jaeger).port), ns, 'traces');
      }
    }
  }
  for (const c of [...spec.containers, ...(spec.initContainers ?? [])]) {
    const cmd = c.command ?? [];
    const url = cmd.includes('--manager-url') ? new URL(cmd[cmd.indexOf('--manager-url') + 1]) : undefined;
    if (url) need(from, url.hostname, Number(url.port), ns, 'apply-cluster Job → manager REST');
    const wait = /nc -vz -w \d+ (\S+) (\d+)/.exec(cmd.join(' '));
    if (wait) need(from, wait[1], Number(wait[2]), ns, `init container ${c.name} waits for it`);
  }
}
// Connections to addresses learnt at run time, per cluster (A and B alike).
for (const ns of ['cluster-a', 'cluster-b']) {
  const scheduler = `dragonfly-scheduler.${ns}`;
  const seed = `dragonfly-seed-peer.${ns}`;
  need('node', scheduler, 8002, ns, 'a peer asks the scheduler the manager listed for its cluster for parents');
  need(`${ns}/dragonfly-seed-peer`, scheduler, 8002, ns, 'the seed peer announces itself to its scheduler');
  need(`${ns}/dragonfly-scheduler`, seed, 65000, ns, 'the scheduler triggers the seed peer to go back to source');
  need('node', seed, 65002, ns, 'a peer fetches pieces from the seed peer');
  need('node', seed, 65000, ns, 'a peer syncs piece availability with its parent (DfdaemonUpload)');
}
need('outside', 'dragonfly-manager.cluster-a', 8080, 'cluster-a', 'the user: console and REST API through the NodePort');
need('node', 'dragonfly-manager.cluster-a', 8080, 'cluster-a', 'the user through the NodePort, SNATed to a node address (externalTrafficPolicy: Cluster)');

describe('NetworkPolicies in dist/ (issue 15 item 5)', () => {
  test('every pod that listens is selected by an ingress policy (the dfdaemons use hostNetwork: a policy cannot apply)', () => {
    const unprotected = destinations.filter((d) => d.ports.length > 0 && !policies.some((p) => p.namespace === d.namespace && matches(p.spec.podSelector, d.labels)));
    expect(unprotected.map((d) => d.id)).toEqual([]);
    expect(workloads.filter(isHostNetwork).map(wid).sort()).toEqual(['cluster-a/dragonfly-dfdaemon', 'cluster-b/dragonfly-dfdaemon']);
  });

  test('the walkthrough\'s connections are derived from dist/ (sanity: the list covers each component)', () => {
    const list = [...needed.keys()];
    for (const expected of [
      'cluster-a/dragonfly-manager -> cluster-a/dragonfly-mysql:3306',
      'cluster-a/dragonfly-manager -> cluster-a/dragonfly-redis-master:6379',
      'cluster-b/dragonfly-scheduler -> cluster-a/dragonfly-redis-master:6379',
      'cluster-b/dragonfly-scheduler -> cluster-a/dragonfly-manager:65003',
      'node -> cluster-a/dragonfly-manager:65003',
    ]) {
      expect(list).toContain(expected);
    }
    expect(list.some((c) => /^cluster-b\/dragonfly-apply-cluster-2-[0-9a-f]+ -> cluster-a\/dragonfly-manager:8080$/.test(c))).toBe(true);
  });

  test('every connection the walkthrough needs is admitted', () => {
    const refused = [...needed].filter(([c]) => !allowed.has(c)).map(([c, why]) => `${c} (${why})`);
    expect(refused).toEqual([]);
  });

  test('no other connection is admitted: not metrics, pprof or the seed peer\'s proxy, not another cluster\'s pods, not strangers', () => {
    const extra = [...allowed].filter((c) => !needed.has(c)).sort();
    expect(extra).toEqual([]);
    // The list above is not empty by accident: these exist as destinations and stay closed.
    expect(destinations.find((d) => d.id === 'cluster-a/dragonfly-manager')?.ports).toEqual(expect.arrayContaining([8000, 18066]));
    expect(destinations.find((d) => d.id === 'cluster-a/dragonfly-seed-peer')?.ports).toContain(65001);
    expect([...allowed].filter((c) => c.startsWith('stranger/'))).toEqual([]);
  });

  test('the evaluator refuses what it should: a policy that admits everything would fail the comparison', () => {
    const wide = { namespace: 'cluster-a', spec: { podSelector: { matchLabels: { component: 'mysql' } }, policyTypes: ['Ingress'], ingress: [{}] } as PolicySpec };
    policies.push(wide);
    try {
      const mysql = destinations.find((d) => d.id === 'cluster-a/dragonfly-mysql')!;
      expect(admitted(sources.find((s) => s.id === 'stranger/next-to-manager')!, mysql, 3306)).toBe(true);
    } finally {
      policies.pop();
    }
    const mysql = destinations.find((d) => d.id === 'cluster-a/dragonfly-mysql')!;
    expect(admitted(sources.find((s) => s.id === 'stranger/next-to-manager')!, mysql, 3306)).toBe(false);
  });
});

describe('networkPolicy props', () => {
  const build = (networkPolicy: ManagerNetworkPolicyOptions) => () => {
    const { chart } = newChart('a', 'a');
    new CentralManager(chart, 'manager', { rootPasswordSecret: { name: 'root-pw', key: 'password' }, networkPolicy });
    return synth(chart).filter((o) => o.kind === 'NetworkPolicy');
  };

  test('a cluster in another Kubernetes cluster is admitted by the addresses its traffic arrives from: REST, gRPC and Redis, not MySQL', () => {
    const made = build({ podCidrs: ['10.244.0.0/16'], nodeCidrs: ['172.18.0.0/16'], remoteClusters: { cidrs: ['198.51.100.0/24'] }, restClientCidrs: ['192.0.2.0/24'] })();
    const rulesOf = (name: string) => JSON.stringify((made.find((o) => o.metadata.name === name)!.spec as PolicySpec).ingress);
    expect(rulesOf('dragonfly-manager')).toContain('"cidr":"198.51.100.0/24"');
    expect(rulesOf('dragonfly-manager')).toContain('{"ipBlock":{"cidr":"192.0.2.0/24","except":["10.244.0.0/16"]}}');
    expect(rulesOf('dragonfly-redis')).toContain('"cidr":"198.51.100.0/24"');
    expect(rulesOf('dragonfly-mysql')).not.toContain('198.51.100.0/24');
  });

  test('address ranges are checked, naming the prop', () => {
    expect(build({ podCidrs: ['10.244.0.0/16'], nodeCidrs: [] })).toThrow(/networkPolicy\.nodeCidrs is empty/);
    expect(build({ podCidrs: ['10.244.0.0/33'], nodeCidrs: ['172.18.0.0/16'] })).toThrow(/networkPolicy\.podCidrs entry "10\.244\.0\.0\/33" is not a CIDR/);
    expect(build({ podCidrs: ['10.244.0.0/16'], nodeCidrs: ['172.18.0.0/16'], remoteClusters: { cidrs: ['cluster-b'] } })).toThrow(/remoteClusters\.cidrs entry "cluster-b"/);
  });
});
