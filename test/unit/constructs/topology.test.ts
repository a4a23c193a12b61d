/**
 * The seed's two-cluster topology (main.ts): every object is valid Kubernetes, and the
 * objects are wired to each other — Services select pods that exist on ports they listen on,
 * referenced ConfigMaps/Secrets exist, configs pass the programs' own schemas, cluster B
 * reaches cluster A's manager, and the declared cluster record matches the configs.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Testing } from 'cdk8s';
import { parse } from 'yaml';
import { parseConfigText, clusterSpecSchema } from '../../../services/common/config';
import { buildSeedTopology } from '../../../main';
import { configMapData, findObject, podTemplate, schemaError, synth, WORKLOAD_KINDS, type KubeObject } from './helpers';

const app = Testing.app();
const { clusterA, clusterB } = buildSeedTopology(app);
const charts = { 'cluster-a': synth(clusterA), 'cluster-b': synth(clusterB) };
const all = [...charts['cluster-a'], ...charts['cluster-b']];

/** Downward-API values a kubelet would inject, so env overrides are exercised too. */
const DOWNWARD_ENV = { DFDAEMON__host__advertiseIP: '10.244.1.7', DFSCHEDULER__server__advertiseIP: '10.244.1.8' };

function selects(selector: Record<string, string>, labels: Record<string, string>): boolean {
  return Object.entries(selector).every(([k, v]) => labels[k] === v);
}

function workloads(objects: readonly KubeObject[]): KubeObject[] {
  return objects.filter((o) => WORKLOAD_KINDS.includes(o.kind));
}

const USER_TOKEN_SECRET = 'dragonfly-manager-token';

describe('Kubernetes API schema', () => {
  test.each(all.map((o) => [`${o.metadata.namespace ?? ''}/${o.kind}/${o.metadata.name}`, o] as const))('%s is valid', (_name, obj) => {
    expect(schemaError(obj)).toBeUndefined();
  });

  test('the validator rejects a broken object (it is not a no-op)', () => {
    const svc = structuredClone(findObject(charts['cluster-a'], 'Service', 'dragonfly-manager'));
    (svc.spec as { ports: { port?: number }[] }).ports[0].port = undefined;
    delete (svc.spec as { ports: { port?: number }[] }).ports[0].port;
    expect(schemaError(svc)).toMatch(/port/);
    const dep = structuredClone(findObject(charts['cluster-a'], 'Deployment', 'dragonfly-manager'));
    (dep.spec as { replicas: unknown }).replicas = 'one';
    expect(schemaError(dep)).toMatch(/replicas/);
  });

  test('every object carries the namespace of its chart (except the Namespace itself)', () => {
    for (const [ns, objects] of Object.entries(charts)) {
      for (const o of objects) {
        if (o.kind === 'Namespace') expect(o.metadata).toEqual({ name: ns });
        else expect(o.metadata.namespace).toBe(ns);
      }
    }
  });
});

describe.each(Object.entries(charts))('wiring inside %s', (_ns, objects) => {
  test('each Service selects pods that exist and targets ports their containers listen on', () => {
    const services = objects.filter((o) => o.kind === 'Service');
    expect(services.length).toBeGreaterThan(5);
    for (const svc of services) {
      const spec = svc.spec as { selector: Record<string, string>; ports: { port: number; targetPort: number }[] };
      const pods = workloads(objects).filter((w) => selects(spec.selector, podTemplate(w).labels));
      if (pods.length === 0) throw new Error(`Service ${svc.metadata.name} selects no pods`);
      for (const pod of pods) {
        const listening = podTemplate(pod).spec.containers.flatMap((c) => (c.ports ?? []).map((p) => p.containerPort));
        for (const port of spec.ports) {
          if (!listening.includes(port.targetPort)) {
            throw new Error(`Service ${svc.metadata.name} targets port ${port.targetPort}, but ${pod.metadata.name} listens on ${listening.join(', ')}`);
          }
        }
      }
    }
  });

  test('every ConfigMap and Secret a pod references exists in the same chart (but the token Secret the user creates)', () => {
    const names = (kind: string) => new Set(objects.filter((o) => o.kind === kind).map((o) => o.metadata.name));
    const configMaps = names('ConfigMap');
    // Made by the user from a token root creates (main.ts, docs/security.md): never in the manifests.
    expect(names('Secret').has(USER_TOKEN_SECRET)).toBe(false);
    // cert-manager writes the Secret of each Certificate.
    const secrets = new Set([
      ...names('Secret'),
      ...(_ns === 'cluster-b' ? [USER_TOKEN_SECRET] : []),
      ...objects.filter((o) => o.kind === 'Certificate').map((o) => (o.spec as { secretName: string }).secretName),
    ]);
    const serviceAccounts = names('ServiceAccount');
    for (const w of workloads(objects)) {
      const { spec } = podTemplate(w);
      const claimTemplates = ((w.spec as { volumeClaimTemplates?: { metadata: { name: string } }[] }).volumeClaimTemplates ?? []).map((c) => c.metadata.name);
      const volumeNames = [...(spec.volumes ?? []).map((v) => v.name), ...claimTemplates];
      for (const v of spec.volumes ?? []) {
        if (v.configMap) expect(configMaps).toContain(v.configMap.name);
        if (v.secret) expect(secrets).toContain(v.secret.secretName);
      }
      for (const c of [...spec.containers, ...(spec.initContainers ?? [])]) {
        for (const e of c.env ?? []) if (e.valueFrom?.secretKeyRef) expect(secrets).toContain(e.valueFrom.secretKeyRef.name);
        for (const m of c.volumeMounts ?? []) expect(volumeNames).toContain(m.name);
      }
      if (spec.serviceAccountName) expect(serviceAccounts).toContain(spec.serviceAccountName);
    }
  });

  test('the config in each ConfigMap passes the program\'s own schema (with the env overrides the pods set)', () => {
    const programs = { 'scheduler.yaml': 'scheduler', 'dfdaemon.yaml': 'dfdaemon', 'dfinit.yaml': 'dfinit', 'manager.yaml': 'manager' } as const;
    let checked = 0;
    for (const cm of objects.filter((o) => o.kind === 'ConfigMap')) {
      for (const [file, text] of Object.entries(configMapData(cm))) {
        if (file === 'cluster.yaml') {
          expect(clusterSpecSchema.safeParse(parse(text)).success).toBe(true);
        } else {
          const program = programs[file as keyof typeof programs];
          expect(program).toBeDefined();
          expect(() => parseConfigText(program, text, { env: DOWNWARD_ENV })).not.toThrow();
        }
        checked++;
      }
    }
    expect(checked).toBeGreaterThanOrEqual(4);
  });

  test('containers run the bin commands with their config file mounted from the ConfigMap', () => {
    for (const w of workloads(objects).filter((x) => x.metadata.labels?.component && !['mysql', 'redis', 'jaeger'].includes(x.metadata.labels.component))) {
      const { spec } = podTemplate(w);
      const main = spec.containers[0];
      expect(['dfmanager', 'dfscheduler', 'dfdaemon']).toContain(main.command?.[0]);
      const file = main.command?.[main.command.length - 1] ?? '';
      expect(file.startsWith('/etc/dragonfly/')).toBe(true);
      const mount = main.volumeMounts?.find((m) => m.mountPath === '/etc/dragonfly');
      const volume = spec.volumes?.find((v) => v.name === mount?.name);
      const cm = findObject(objects, 'ConfigMap', volume?.configMap?.name ?? '?');
      expect(Object.keys(configMapData(cm))).toContain(file.replace('/etc/dragonfly/', ''));
    }
  });
});

describe('cross-cluster wiring', () => {
  const a = charts['cluster-a'];
  const b = charts['cluster-b'];

  test("cluster B's manager address resolves to cluster A's manager Service (name, namespace, port)", () => {
    const schedulerYaml = parseConfigText('scheduler', configMapData(findObject(b, 'ConfigMap', 'dragonfly-scheduler'))['scheduler.yaml']);
    const [host, port] = schedulerYaml.manager.addr.split(':');
    const [svcName, ns, svcLabel, ...rest] = host.split('.');
    expect([svcLabel, ...rest].join('.')).toBe('svc.cluster.local');
    expect(ns).toBe('cluster-a');
    const svc = findObject(a, 'Service', svcName);
    expect(svc.metadata.namespace).toBe('cluster-a');
    const ports = (svc.spec as { ports: { name: string; port: number }[] }).ports;
    expect(ports.find((p) => p.port === Number(port))?.name).toBe('grpc');
    for (const name of ['dragonfly-seed-peer', 'dragonfly-dfdaemon']) {
      const cfg = parseConfigText('dfdaemon', configMapData(findObject(b, 'ConfigMap', name))['dfdaemon.yaml']);
      expect(cfg.scheduler.manager.netAddrs).toEqual([{ type: 'tcp', addr: schedulerYaml.manager.addr }]);
    }
    // The apply-cluster Job uses the same manager, on its REST port.
    const job = b.find((o) => o.kind === 'Job');
    const cmd = podTemplate(job as KubeObject).spec.containers[0].command ?? [];
    const url = new URL(cmd[cmd.indexOf('--manager-url') + 1]);
    expect(url.hostname).toBe(host);
    expect(ports.find((p) => p.port === Number(url.port))?.name).toBe('http-rest');
  });

  test('scopes reach the registration Job\'s cluster.yaml and its id matches the scheduler and seed-peer configs', () => {
    const job = b.find((o) => o.kind === 'Job') as KubeObject;
    const { spec } = podTemplate(job);
    const container = spec.containers[0];
    expect(container.command?.slice(0, 2)).toEqual(['dfmanager', 'apply-cluster']);
    const file = container.command?.[container.command.indexOf('--file') + 1] ?? '';
    const volumeName = container.volumeMounts?.find((m) => file.startsWith(m.mountPath))?.name;
    const cmName = spec.volumes?.find((v) => v.name === volumeName)?.configMap?.name ?? '?';
    const clusterYaml = clusterSpecSchema.parse(parse(configMapData(findObject(b, 'ConfigMap', cmName))[file.split('/').pop() ?? '']));
    expect(clusterYaml.scopes.idc).toBe('cluster-2');
    expect(clusterYaml.name).toBe('cluster-2');
    const scheduler = parseConfigText('scheduler', configMapData(findObject(b, 'ConfigMap', 'dragonfly-scheduler'))['scheduler.yaml']);
    const seed = parseConfigText('dfdaemon', configMapData(findObject(b, 'ConfigMap', 'dragonfly-seed-peer'))['dfdaemon.yaml']);
    const peer = parseConfigText('dfdaemon', configMapData(findObject(b, 'ConfigMap', 'dragonfly-dfdaemon'))['dfdaemon.yaml']);
    expect(clusterYaml.id).toBe(2);
    expect(scheduler.manager.schedulerClusterID).toBe(clusterYaml.id);
    expect(seed.scheduler.manager.seedPeer).toEqual(expect.objectContaining({ enable: true, clusterID: clusterYaml.id }));
    // The peers report the IDC the record scopes, so the manager's searcher picks cluster 2.
    expect(peer.host.idc).toBe(clusterYaml.scopes.idc);
    // It logs in with a personal access token from the Secret the user made in cluster B; no password crosses clusters.
    expect(container.env).toEqual([{ name: 'DRAGONFLY_MANAGER_TOKEN', valueFrom: { secretKeyRef: { name: USER_TOKEN_SECRET, key: 'token' } } }]);
    expect(JSON.stringify(b)).not.toContain('DRAGONFLY_MANAGER_PASSWORD');
  });

  test('cluster A runs the default cluster 1 and has no registration Job', () => {
    expect(a.some((o) => o.kind === 'Job')).toBe(false);
    const scheduler = parseConfigText('scheduler', configMapData(findObject(a, 'ConfigMap', 'dragonfly-scheduler'))['scheduler.yaml']);
    expect(scheduler.manager.schedulerClusterID).toBe(1);
    expect(scheduler.verbose).toBe(true);
    expect(scheduler.pprofPort).toBe(18066);
    expect(scheduler.jaeger).toBe('http://dragonfly-jaeger-collector.cluster-a.svc.cluster.local:4318/v1/traces');
    findObject(a, 'Service', 'dragonfly-jaeger-collector');
  });

  test('cluster A keeps the names the seed uses: manager, mysql, redis-master, console NodePort 30950', () => {
    const a2 = charts['cluster-a'];
    findObject(a2, 'Service', 'dragonfly-mysql');
    findObject(a2, 'Service', 'dragonfly-redis-master');
    const consoleSvc = findObject(a2, 'Service', 'manager-rest');
    const seedSvc = parse(readFileSync(join(__dirname, 'fixtures', 'manager-rest-svc.yaml'), 'utf8')) as { spec: unknown };
    expect(consoleSvc.spec).toEqual(expect.objectContaining({ type: 'NodePort', selector: (seedSvc.spec as { selector: unknown }).selector }));
    expect((consoleSvc.spec as { ports: { nodePort: number; port: number }[] }).ports[0]).toEqual(expect.objectContaining({ nodePort: 30950, port: 8080 }));
    const manager = parseConfigText('manager', configMapData(findObject(a2, 'ConfigMap', 'dragonfly-manager'))['manager.yaml']);
    expect(manager.database.type).toBe('mysql');
    expect(manager.database.mysql.host).toBe('dragonfly-mysql.cluster-a.svc.cluster.local');
    expect(manager.database.redis.addrs).toEqual(['dragonfly-redis-master.cluster-a.svc.cluster.local:6379']);
  });

  test('node selection matches the kind cluster: cluster A pods on cluster=a nodes, B on cluster=b, console port mapped', () => {
    const kind = parse(readFileSync(join(__dirname, '..', '..', '..', 'kind-config.yaml'), 'utf8')) as {
      nodes: { role: string; labels?: Record<string, string>; extraPortMappings?: { containerPort: number }[] }[];
    };
    for (const [ns, label] of [['cluster-a', 'a'], ['cluster-b', 'b']] as const) {
      for (const w of workloads(charts[ns])) {
        const sel = podTemplate(w).spec.nodeSelector;
        expect({ workload: w.metadata.name, sel }).toEqual({ workload: w.metadata.name, sel: { cluster: label } });
      }
      expect(kind.nodes.filter((n) => n.labels?.cluster === label).length).toBeGreaterThanOrEqual(2);
    }
    const mapped = kind.nodes.flatMap((n) => (n.labels?.cluster === 'a' ? (n.extraPortMappings ?? []).map((m) => m.containerPort) : []));
    expect(mapped).toContain(30950);
  });

  test('dfdaemon runs on the host network with the proxy on each node and dfinit on containerd\'s dir', () => {
    for (const objects of [a, b]) {
      const ds = findObject(objects, 'DaemonSet', 'dragonfly-dfdaemon');
      const { spec } = podTemplate(ds);
      expect(spec.hostNetwork).toBe(true);
      expect(spec.dnsPolicy).toBe('ClusterFirstWithHostNet');
      const main = spec.containers[0];
      expect(main.ports?.find((p) => p.name === 'proxy')).toEqual(expect.objectContaining({ containerPort: 65001, hostPort: 65001 }));
      expect(main.env).toContainEqual({ name: 'DFDAEMON__host__advertiseIP', valueFrom: { fieldRef: { fieldPath: 'status.hostIP' } } });
      // mTLS: the kubelet's gRPC probe cannot present a certificate, so readiness is /healthy.
      expect(main.readinessProbe?.httpGet).toEqual(expect.objectContaining({ path: '/healthy', port: 8000 }));
      expect(main.livenessProbe?.httpGet).toEqual(expect.objectContaining({ path: '/healthy', port: 8000 }));
      const dfinit = spec.initContainers?.find((c) => c.name === 'dfinit');
      expect(dfinit?.command).toEqual(['dfinit', '--config', '/etc/dragonfly/dfinit.yaml']);
      const hostPaths = Object.fromEntries((spec.volumes ?? []).filter((v) => v.hostPath).map((v) => [v.name, v.hostPath?.path]));
      expect(dfinit?.volumeMounts?.map((m) => hostPaths[m.name]).filter(Boolean)).toEqual(['/etc/containerd']);
      expect(main.volumeMounts?.map((m) => hostPaths[m.name])).toContain('/var/lib/dragonfly');
      expect(spec.initContainers?.[0].command?.join(' ')).toContain('dragonfly-scheduler.');
      const dfinitCfg = parseConfigText('dfinit', configMapData(findObject(objects, 'ConfigMap', 'dragonfly-dfdaemon'))['dfinit.yaml']);
      expect(dfinitCfg.proxy.addr).toBe('http://127.0.0.1:65001');
      expect(dfinitCfg.containerRuntime.containerd.registries.map((r) => [r.hostNamespace, r.serverAddr])).toEqual([['ghcr.io', 'https://ghcr.io']]);
      // The default-deny proxy admits exactly the registries dfinit points containerd at (Docker Hub via registryMirror.url).
      const daemonCfg = parseConfigText('dfdaemon', configMapData(findObject(objects, 'ConfigMap', 'dragonfly-dfdaemon'))['dfdaemon.yaml']);
      expect(daemonCfg.proxy.whiteList).toEqual([{ host: 'ghcr.io', regx: '', ports: ['443'] }]);
    }
  });

  test('the seed peer has a volumeClaimTemplate and advertises its pod IP', () => {
    const sts = findObject(b, 'StatefulSet', 'dragonfly-seed-peer');
    const claims = (sts.spec as { volumeClaimTemplates: { metadata: { name: string } }[] }).volumeClaimTemplates;
    expect(claims.map((c) => c.metadata.name)).toEqual(['storage']);
    const main = podTemplate(sts).spec.containers[0];
    expect(main.volumeMounts?.find((m) => m.name === 'storage')?.mountPath).toBe('/var/lib/dragonfly');
    expect(main.env).toContainEqual({ name: 'DFDAEMON__host__advertiseIP', valueFrom: { fieldRef: { fieldPath: 'status.podIP' } } });
  });
});

describe('jobs: both clusters\' schedulers take jobs from cluster A\'s Redis', () => {
  test.each([
    ['cluster-a', 'dragonfly-redis', 'redis-password'],
    ['cluster-b', 'dragonfly-external-redis', 'password'],
  ] as const)('%s scheduler: database.redis is the manager\'s Redis, password from Secret %s', (chart, secretName, secretKey) => {
    const objects = charts[chart];
    const config = parseConfigText('scheduler', configMapData(findObject(objects, 'ConfigMap', 'dragonfly-scheduler'))['scheduler.yaml'], { env: {} });
    const managerRedis = parseConfigText('manager', configMapData(findObject(charts['cluster-a'], 'ConfigMap', 'dragonfly-manager'))['manager.yaml'], { env: {} }).database.redis;
    expect(config.database.redis.addrs).toEqual(managerRedis.addrs);
    expect(config.database.redis.keyPrefix).toBe(managerRedis.keyPrefix);
    expect(config.job.enable).toBe(true);
    const env = podTemplate(findObject(objects, 'StatefulSet', 'dragonfly-scheduler')).spec.containers[0].env ?? [];
    expect(env).toContainEqual({ name: 'DFSCHEDULER__database__redis__password', valueFrom: { secretKeyRef: { name: secretName, key: secretKey } } });
    // The Secret exists in the scheduler's namespace (the seed's externalRedis.password in cluster B).
    const secret = findObject(objects, 'Secret', secretName) as KubeObject & { stringData?: Record<string, string>; data?: Record<string, string> };
    expect(secret.stringData?.[secretKey] ?? secret.data?.[secretKey]).toBeTruthy();
  });
});
