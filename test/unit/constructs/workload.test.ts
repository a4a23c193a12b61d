/**
 * The shared workload builder through each component: "defaults" (what a user gets without
 * setting anything) and "overrides" (each placement/protection prop lands in the manifest),
 * plus the extension points other code hooks into. Every synthesized object is checked
 * against the Kubernetes schema.
 */
import type { Chart } from 'cdk8s';
import { CentralManager, DragonflyCluster } from '../../../constructs';
import { findObject, newChart, podTemplate, schemaError, synth, type KubeObject } from './helpers';

const MANAGER = { host: 'dragonfly-manager.dragonfly.svc.cluster.local' };

interface PodSpecFull {
  tolerations?: unknown[];
  affinity?: unknown;
  topologySpreadConstraints?: { labelSelector?: unknown }[];
  priorityClassName?: string;
  securityContext?: Record<string, unknown>;
  volumes?: { name: string }[];
  containers: {
    name: string;
    args?: string[];
    env?: { name: string }[];
    resources?: { requests?: Record<string, string>; limits?: Record<string, string> };
    securityContext?: Record<string, unknown>;
    readinessProbe?: Record<string, unknown>;
    livenessProbe?: Record<string, unknown>;
    volumeMounts?: { name: string; mountPath: string }[];
  }[];
}

function pod(objects: readonly KubeObject[], kind: string, name: string): { spec: PodSpecFull; metadata: { labels: Record<string, string>; annotations?: Record<string, string> } } {
  const obj = findObject(objects, kind, name);
  const t = (obj.spec as { template: { metadata: { labels: Record<string, string>; annotations?: Record<string, string> }; spec: PodSpecFull } }).template;
  return { spec: t.spec, metadata: t.metadata };
}

function valid(objects: readonly KubeObject[]): void {
  for (const o of objects) expect(schemaError(o)).toBeUndefined();
}

function cluster(props: Partial<ConstructorParameters<typeof DragonflyCluster>[2]> = {}): { chart: Chart; cluster: DragonflyCluster } {
  const { chart } = newChart('c', 'dragonfly');
  return { chart, cluster: new DragonflyCluster(chart, 'cluster', { manager: MANAGER, ...props }) };
}

const COMPONENTS = [
  { kind: 'StatefulSet', name: 'dragonfly-scheduler', prop: 'scheduler', uid: 10001 },
  { kind: 'StatefulSet', name: 'dragonfly-seed-peer', prop: 'seedPeer', uid: 10001 },
  { kind: 'DaemonSet', name: 'dragonfly-dfdaemon', prop: 'dfdaemon', uid: 0 },
] as const;

describe('DragonflyCluster workloads: defaults', () => {
  const objects = synth(cluster().chart);

  test('schema-valid', () => valid(objects));

  test.each(COMPONENTS)('$name runs with a read-only root filesystem, no privilege escalation, no capabilities, uid $uid', ({ kind, name, uid }) => {
    const sc = pod(objects, kind, name).spec.containers[0].securityContext;
    expect(sc).toMatchObject({ readOnlyRootFilesystem: true, allowPrivilegeEscalation: false, capabilities: { drop: ['ALL'] }, runAsUser: uid });
    if (uid !== 0) expect(sc).toMatchObject({ runAsNonRoot: true, runAsGroup: 10001 });
  });

  test('the dfdaemon DaemonSet tolerates every taint and is system-node-critical', () => {
    const p = pod(objects, 'DaemonSet', 'dragonfly-dfdaemon').spec;
    expect(p.tolerations).toEqual([{ operator: 'Exists' }]);
    expect(p.priorityClassName).toBe('system-node-critical');
  });

  test('scheduler and seed peer have no tolerations, affinity, spread or priority class', () => {
    for (const name of ['dragonfly-scheduler', 'dragonfly-seed-peer']) {
      const p = pod(objects, 'StatefulSet', name).spec;
      expect(p.tolerations).toBeUndefined();
      expect(p.affinity).toBeUndefined();
      expect(p.topologySpreadConstraints).toBeUndefined();
      expect(p.priorityClassName).toBeUndefined();
    }
  });

  test('the scheduler has a PodDisruptionBudget of maxUnavailable 1 selecting its pods; the seed peer and DaemonSet have none', () => {
    const pdbs = objects.filter((o) => o.kind === 'PodDisruptionBudget');
    expect(pdbs.map((p) => p.metadata.name)).toEqual(['dragonfly-scheduler']);
    const spec = pdbs[0].spec as { maxUnavailable: number; selector: { matchLabels: Record<string, string> } };
    expect(spec.maxUnavailable).toBe(1);
    expect(spec.selector.matchLabels).toEqual(pod(objects, 'StatefulSet', 'dragonfly-scheduler').metadata.labels);
  });

  test('chart resources and probe timings', () => {
    const c = pod(objects, 'DaemonSet', 'dragonfly-dfdaemon').spec.containers[0];
    expect(c.resources).toEqual({ requests: { cpu: '0', memory: '0' }, limits: { cpu: '4', memory: '8Gi' } });
    // mTLS is on by default: the kubelet's gRPC probe has no certificate, so readiness is /healthy too.
    expect(c.readinessProbe).toMatchObject({ httpGet: { path: '/healthy', port: 8000 }, initialDelaySeconds: 10, periodSeconds: 10, timeoutSeconds: 3, failureThreshold: 2 });
    expect(c.livenessProbe).toMatchObject({ httpGet: { path: '/healthy', port: 8000 }, initialDelaySeconds: 15 });
  });

  test('the seed peer writes only to its claim (group-writable via fsGroup) and an emptyDir for its socket', () => {
    const p = pod(objects, 'StatefulSet', 'dragonfly-seed-peer').spec;
    expect(p.securityContext).toEqual({ fsGroup: 10001 });
    expect(p.containers[0].volumeMounts?.map((m) => m.mountPath).sort()).toEqual(['/etc/dragonfly', '/etc/dragonfly-tls', '/var/lib/dragonfly', '/var/run/dragonfly']);
  });

  test('no empty args, annotations or lists are written', () => {
    const p = pod(objects, 'StatefulSet', 'dragonfly-scheduler');
    expect(p.spec.containers[0].args).toBeUndefined();
    expect(p.metadata.annotations).toBeUndefined();
  });
});

describe('DragonflyCluster workloads: overrides', () => {
  const toleration = { key: 'dedicated', operator: 'Equal', value: 'dragonfly', effect: 'NoSchedule' };
  const affinity = { nodeAffinity: { requiredDuringSchedulingIgnoredDuringExecution: { nodeSelectorTerms: [{ matchExpressions: [{ key: 'pool', operator: 'In', values: ['p2p'] }] }] } } };
  const spread = [{ maxSkew: 1, topologyKey: 'topology.kubernetes.io/zone', whenUnsatisfiable: 'ScheduleAnyway' }];
  const overrides = {
    tolerations: [toleration],
    affinity,
    topologySpreadConstraints: spread,
    priorityClassName: 'dragonfly-high',
    resources: { cpuRequest: '250m', memoryRequest: '512Mi', cpuLimit: '2', memoryLimit: '4Gi' },
    probes: { readiness: { initialDelaySeconds: 1, periodSeconds: 5 }, liveness: false as const },
    securityContext: { readOnlyRootFilesystem: false },
    podLabels: { team: 'infra' },
    podAnnotations: { 'example.com/owner': 'infra' },
  };
  const objects = synth(cluster({ scheduler: { ...overrides, disruptionBudget: { minAvailable: '50%' } }, seedPeer: overrides, dfdaemon: overrides }).chart);

  test('schema-valid', () => valid(objects));

  test.each(COMPONENTS)('$name takes every placement and protection prop', ({ kind, name, uid }) => {
    const p = pod(objects, kind, name);
    expect(p.spec.tolerations).toEqual([toleration]);
    expect(p.spec.affinity).toEqual(affinity);
    expect(p.spec.topologySpreadConstraints).toEqual([{ ...spread[0], labelSelector: { matchLabels: findObject(objects, kind, name).metadata.labels } }]);
    expect(p.spec.priorityClassName).toBe('dragonfly-high');
    const c = p.spec.containers[0];
    expect(c.resources).toEqual({ requests: { cpu: '250m', memory: '512Mi' }, limits: { cpu: '2', memory: '4Gi' } });
    expect(c.readinessProbe).toMatchObject({ initialDelaySeconds: 1, periodSeconds: 5, timeoutSeconds: 3 });
    expect(c.livenessProbe).toBeUndefined();
    // Merged over the default: only the key set changes.
    expect(c.securityContext).toMatchObject({ readOnlyRootFilesystem: false, runAsUser: uid, allowPrivilegeEscalation: false });
    expect(p.metadata.labels).toMatchObject({ team: 'infra', app: 'dragonfly' });
    expect(p.metadata.annotations).toEqual({ 'example.com/owner': 'infra' });
    // The selector stays the component labels.
    expect((findObject(objects, kind, name).spec as { selector: { matchLabels: Record<string, string> } }).selector.matchLabels.team).toBeUndefined();
  });

  test('disruptionBudget minAvailable replaces the default; false removes it', () => {
    expect(findObject(objects, 'PodDisruptionBudget', 'dragonfly-scheduler').spec).toMatchObject({ minAvailable: '50%' });
    expect((findObject(objects, 'PodDisruptionBudget', 'dragonfly-scheduler').spec as Record<string, unknown>).maxUnavailable).toBeUndefined();
    const none = synth(cluster({ scheduler: { disruptionBudget: false } }).chart);
    expect(none.filter((o) => o.kind === 'PodDisruptionBudget')).toEqual([]);
  });

  test('dfdaemon tolerations and priority class replace the node-agent defaults', () => {
    const none = synth(cluster({ dfdaemon: { tolerations: [], priorityClassName: 'low' } }).chart);
    const p = pod(none, 'DaemonSet', 'dragonfly-dfdaemon').spec;
    expect(p.tolerations).toBeUndefined();
    expect(p.priorityClassName).toBe('low');
  });
});

describe('CentralManager workload', () => {
  test('defaults: non-root, read-only root filesystem, PDB maxUnavailable 1', () => {
    const { chart } = newChart('m', 'dragonfly');
    new CentralManager(chart, 'manager', { demoCredentials: true });
    const objects = synth(chart);
    valid(objects);
    expect(pod(objects, 'Deployment', 'dragonfly-manager').spec.containers[0].securityContext).toMatchObject({ runAsNonRoot: true, runAsUser: 10001, readOnlyRootFilesystem: true });
    expect(findObject(objects, 'PodDisruptionBudget', 'dragonfly-manager').spec).toMatchObject({ maxUnavailable: 1 });
  });

  test('the in-cluster MySQL and Redis take tolerations, affinity and a priority class', () => {
    const { chart } = newChart('m', 'dragonfly');
    const placement = { tolerations: [{ key: 'db', operator: 'Exists', effect: 'NoSchedule' }], priorityClassName: 'db-critical', affinity: { nodeAffinity: { requiredDuringSchedulingIgnoredDuringExecution: { nodeSelectorTerms: [{ matchExpressions: [{ key: 'disk', operator: 'In', values: ['ssd'] }] }] } } } };
    new CentralManager(chart, 'manager', { demoCredentials: true, mysql: placement, redis: placement });
    const objects = synth(chart);
    valid(objects);
    for (const name of ['dragonfly-mysql', 'dragonfly-redis-master']) {
      const p = pod(objects, 'StatefulSet', name).spec;
      expect(p.tolerations).toEqual(placement.tolerations);
      expect(p.priorityClassName).toBe('db-critical');
      expect(p.affinity).toEqual(placement.affinity);
    }
  });

  test('overrides: tolerations, priority class, PDB', () => {
    const { chart } = newChart('m', 'dragonfly');
    new CentralManager(chart, 'manager', { demoCredentials: true, tolerations: [{ operator: 'Exists', effect: 'NoSchedule' }], priorityClassName: 'critical', disruptionBudget: { maxUnavailable: 0 }, replicas: 2 });
    const objects = synth(chart);
    valid(objects);
    const p = pod(objects, 'Deployment', 'dragonfly-manager').spec;
    expect(p.tolerations).toEqual([{ operator: 'Exists', effect: 'NoSchedule' }]);
    expect(p.priorityClassName).toBe('critical');
    expect(findObject(objects, 'PodDisruptionBudget', 'dragonfly-manager').spec).toMatchObject({ maxUnavailable: 0 });
  });
});

describe('validation names the prop and how to fix it', () => {
  test.each([
    [{ scheduler: { disruptionBudget: { minAvailable: 1, maxUnavailable: 1 } } }, /scheduler\.disruptionBudget needs exactly one/],
    [{ scheduler: { disruptionBudget: { maxUnavailable: 'half' } } }, /pod count .* or a percentage/],
    [{ scheduler: { resources: { cpuLimit: 'lots' } } }, /scheduler\.resources\.cpuLimit "lots" is not a Kubernetes quantity/],
    [{ seedPeer: { priorityClassName: 'Not_Valid' } }, /seedPeer\.priorityClassName "Not_Valid"/],
    [{ dfdaemon: { tolerations: [{ operator: 'Equal', value: 'x' }] } }, /dfdaemon\.tolerations\[0\] has no key/],
    [{ dfdaemon: { probes: { liveness: { periodSeconds: 0 } } } }, /dfdaemon\.probes\.liveness\.periodSeconds must be a whole number/],
    [{ scheduler: { podLabels: { component: 'other' } } }, /scheduler\.podLabels sets "component"/],
  ])('%j', (props, message) => {
    expect(() => cluster(props as Partial<ConstructorParameters<typeof DragonflyCluster>[2]>)).toThrow(message);
  });
});

describe('extension points (workload.add*)', () => {
  test('a hook adds a volume, mount, env, args, port, pod metadata and init container after construction', () => {
    const { chart, cluster: c } = cluster();
    const w = c.scheduler.workload;
    w.addVolume({ name: 'extra-certs', secret: { secretName: 'scheduler-extra-certs' } }, { mountPath: '/etc/dragonfly/extra-certs', readOnly: true });
    w.addEnv({ name: 'EXTRA', value: '1' });
    w.addArgs('--flag');
    w.addContainerPort({ name: 'extra', port: 9999 });
    w.addPodAnnotations({ 'prometheus.io/scrape': 'true' });
    w.addPodLabels({ monitored: 'yes' });
    w.addInitContainer({ name: 'hello', image: 'busybox:1.36', command: ['true'] });
    const objects = synth(chart);
    valid(objects);
    const p = pod(objects, 'StatefulSet', 'dragonfly-scheduler');
    const main = p.spec.containers[0];
    expect(p.spec.volumes?.map((v) => v.name)).toContain('extra-certs');
    expect(main.volumeMounts).toContainEqual({ name: 'extra-certs', mountPath: '/etc/dragonfly/extra-certs', readOnly: true });
    expect(main.env?.map((e) => e.name)).toContain('EXTRA');
    expect(main.args).toEqual(['--flag']);
    expect(p.metadata.annotations).toEqual({ 'prometheus.io/scrape': 'true' });
    expect(p.metadata.labels.monitored).toBe('yes');
    expect(podTemplate(findObject(objects, 'StatefulSet', 'dragonfly-scheduler')).spec.initContainers?.map((i) => i.name)).toEqual(['wait-for-manager', 'hello']);
  });

  test('on the hostNetwork DaemonSet an added port is also a hostPort', () => {
    const { chart, cluster: c } = cluster();
    c.dfdaemon.workload.addContainerPort({ name: 'extra', port: 9999 });
    const main = podTemplate(findObject(synth(chart), 'DaemonSet', 'dragonfly-dfdaemon')).spec.containers[0];
    expect(main.ports).toContainEqual(expect.objectContaining({ name: 'extra', containerPort: 9999, hostPort: 9999 }));
  });

  test('a clash is an error, never a silent override', () => {
    const { cluster: c } = cluster();
    expect(() => c.seedPeer.workload.addEnv({ name: 'DFDAEMON__host__advertiseIP', value: 'x' })).toThrow(/already set/);
    expect(() => c.seedPeer.workload.addVolume({ name: 'config', emptyDir: {} })).toThrow(/already defined/);
    expect(() => c.seedPeer.workload.addVolumeMount({ name: 'config', mountPath: '/etc/dragonfly' })).toThrow(/already mounted/);
    expect(() => c.seedPeer.workload.addContainerPort({ name: 'dup', port: 65000 })).toThrow(/clashes/);
  });
});
