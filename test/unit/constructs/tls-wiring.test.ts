/**
 * The committed manifests (dist/) wire mTLS end to end: every program's `security` files lie in
 * a Secret volume that a cert-manager Certificate of the same namespace writes, with the file
 * names cert-manager uses, and that Certificate names the identity the manager checks (role and
 * cluster id of the config). Every Certificate is mounted by some program; every Issuer signs
 * with the topology's one CA.
 */
import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import { parseAllDocuments, parse as parseYaml } from 'yaml';
import { parseIdentityUri, type ComponentIdentity } from '../../../services/common/identity';

interface Obj {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string };
  spec?: Record<string, unknown>;
  data?: Record<string, string>;
}
interface Ctr {
  name: string;
  command?: string[];
  volumeMounts?: Array<{ name: string; mountPath: string }>;
}
interface Pod {
  containers: Ctr[];
  volumes?: Array<{ name: string; configMap?: { name: string }; secret?: { secretName: string } }>;
}

const DIST = path.join(__dirname, '..', '..', '..', 'dist');
const objects: Obj[] = ['cluster-a.k8s.yaml', 'cluster-b.k8s.yaml'].flatMap((f) =>
  parseAllDocuments(readFileSync(path.join(DIST, f), 'utf8'))
    .map((d) => d.toJS() as Obj | null)
    .filter((o): o is Obj => o !== null),
);
const ns = (o: Obj) => o.metadata.namespace ?? 'default';
const of = (kind: string, namespace: string) => objects.filter((o) => o.kind === kind && ns(o) === namespace);
/** Files cert-manager writes into a Certificate's Secret. */
const CERT_MANAGER_FILES = ['ca.crt', 'tls.crt', 'tls.key'];

interface Mounted {
  workload: string;
  namespace: string;
  program: string;
  config: Record<string, unknown>;
  secretOf: (file: string) => { secretName: string; file: string } | undefined;
}

/** Each container running one of our programs, its config, and which Secret file a path lands in. */
function programs(): Mounted[] {
  const out: Mounted[] = [];
  for (const w of objects.filter((o) => ['Deployment', 'StatefulSet', 'DaemonSet'].includes(o.kind))) {
    const pod = (w.spec!.template as { spec: Pod }).spec;
    for (const c of pod.containers) {
      const program = { dfmanager: 'manager', dfscheduler: 'scheduler', dfdaemon: 'dfdaemon' }[c.command?.[0] ?? ''];
      if (!program) continue;
      const configPath = c.command![c.command!.indexOf('--config') + 1];
      const mountOf = (p: string) => [...(c.volumeMounts ?? [])].sort((a, b) => b.mountPath.length - a.mountPath.length).find((m) => p.startsWith(`${m.mountPath}/`));
      const cfgMount = mountOf(configPath)!;
      const cm = pod.volumes!.find((v) => v.name === cfgMount.name)!.configMap!.name;
      const data = of('ConfigMap', ns(w)).find((o) => o.metadata.name === cm)!.data!;
      const config = parseYaml(data[path.relative(cfgMount.mountPath, configPath)]) as Record<string, unknown>;
      out.push({
        workload: `${ns(w)}/${w.metadata.name}`,
        namespace: ns(w),
        program,
        config,
        secretOf: (file) => {
          const m = mountOf(file);
          const secret = m && pod.volumes!.find((v) => v.name === m.name)?.secret;
          return secret ? { secretName: secret.secretName, file: path.relative(m.mountPath, file) } : undefined;
        },
      });
    }
  }
  return out;
}

function expectedIdentity(m: Mounted): ComponentIdentity {
  const c = m.config as {
    manager?: { schedulerClusterID?: number };
    scheduler?: { manager?: { seedPeer?: { enable?: boolean; clusterID?: number } } };
  };
  if (m.program === 'manager') return { role: 'manager' };
  if (m.program === 'scheduler') return { role: 'scheduler', clusterId: c.manager?.schedulerClusterID ?? 1 };
  const seed = c.scheduler?.manager?.seedPeer;
  if (seed?.enable) return { role: 'seed-peer', clusterId: seed.clusterID ?? 1 };
  return { role: 'peer', clusterId: Number(m.namespace === 'cluster-b' ? 2 : 1) };
}

describe('dist/: cert-manager certificates are mounted where the configs point', () => {
  const mounted = programs();

  it('finds every program of both clusters', () => {
    expect(mounted.map((m) => m.workload).sort()).toEqual(
      ['cluster-a/dragonfly-dfdaemon', 'cluster-a/dragonfly-manager', 'cluster-a/dragonfly-scheduler', 'cluster-a/dragonfly-seed-peer', 'cluster-b/dragonfly-dfdaemon', 'cluster-b/dragonfly-scheduler', 'cluster-b/dragonfly-seed-peer'].sort(),
    );
  });

  it.each(programs().map((m) => [m.workload, m] as const))('%s: security files are a Certificate\'s Secret with its identity', (_name, m) => {
    const security = m.config.security as { insecure?: boolean; caCert: string; cert: string; key: string };
    expect(security.insecure).toBeUndefined();
    const files = [security.caCert, security.cert, security.key].map((f) => m.secretOf(f));
    for (const f of files) expect(f).toBeDefined();
    // One Secret holds the three files, under the names cert-manager writes.
    expect(new Set(files.map((f) => f!.secretName)).size).toBe(1);
    expect(files.map((f) => f!.file)).toEqual(CERT_MANAGER_FILES);
    const cert = of('Certificate', m.namespace).find((c) => c.spec!.secretName === files[0]!.secretName);
    expect(cert).toBeDefined();
    const uris = (cert!.spec!.uris as string[] | undefined) ?? [];
    expect(uris.map(parseIdentityUri)).toEqual([expectedIdentity(m)]);
    // Signed by the namespace's CA Issuer.
    const issuer = of('Issuer', m.namespace).find((i) => i.metadata.name === (cert!.spec!.issuerRef as { name: string }).name);
    expect((issuer?.spec?.ca as { secretName?: string } | undefined)?.secretName).toBe('dragonfly-ca');
  });

  it('every component Certificate is mounted by a program; the CA is made once, in the manager\'s namespace', () => {
    const used = new Set(mounted.map((m) => `${m.namespace}/${m.secretOf((m.config.security as { cert: string }).cert)!.secretName}`));
    const certs = objects.filter((o) => o.kind === 'Certificate');
    const leaf = certs.filter((c) => !c.spec!.isCA);
    for (const c of leaf) expect(used).toContain(`${ns(c)}/${c.spec!.secretName as string}`);
    const roots = certs.filter((c) => c.spec!.isCA);
    expect(roots.map((c) => `${ns(c)}/${c.spec!.secretName as string}`)).toEqual(['cluster-a/dragonfly-ca']);
    // Cluster B signs with a copy of that Secret (docs/security.md): same name, no root of its own.
    expect(of('Issuer', 'cluster-b').map((i) => (i.spec!.ca as { secretName: string }).secretName)).toEqual(['dragonfly-ca']);
  });

  it('piece HTTP stays plain in the seed topology (upload.tls.enable is a switch, off by default)', () => {
    for (const m of mounted.filter((x) => x.program === 'dfdaemon')) expect((m.config.upload as { tls?: unknown } | undefined)?.tls).toBeUndefined();
  });
});
