/**
 * The seed-000 setting on the netns lab: kind-like worker nodes labelled by cluster, each with
 * its own containerd; an HTTPS origin that answers as ghcr.io (lab CA, trusted through
 * NODE_EXTRA_CA_CERTS for the programs and SSL_CERT_FILE for ctr); the synthesized manifests
 * deployed onto the nodes; MariaDB and Redis of this machine standing in for the chart's MySQL
 * and Redis (a database, user and key prefix per run).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { ContainerdHost } from './containerd';
import { Deployment, deployModeFromEnv, type DeployMode, type ExternalService, type LabNode, type Pod } from './deploy';
import { ManagerRest, REPO_ROOT, programMain } from './dragonfly';
import { run, waitFor } from './exec';
import { issueCertificates } from './cert-manager';
import { ManifestSet, programOfCommand } from './manifests';
import { NetnsLab, type NetnsHost } from './netns-lab';
import { buildTestImage, pushTestImage, type TestImage } from './oci-image';
import { OriginRegistry, createTlsIdentity, type TlsIdentity } from './origin';

export const ORIGIN_NAME = 'ghcr.io';
/** The image seed 000 pulls; here it is a random test image pushed under that name. */
export const SEED_IMAGE_REPO = 'dragonflyoss/dragonfly2/scheduler';
export const SEED_IMAGE_TAG = 'v2.0.5';
export const PROXY_PORT = 65001;
export const UPLOAD_PORT = 65002;

export interface ClusterLabOptions {
  readonly manifestFiles: readonly string[];
  readonly nodes: ReadonlyArray<{ name: string; labels: Record<string, string> }>;
  readonly layerSizes: readonly number[];
  readonly gzip?: boolean;
  /** Shape the origin's link before anything is pulled (Mbit/s). */
  readonly originRateMbit?: number;
  /** Default: DF_E2E_MODE (process unless set to image). */
  readonly mode?: DeployMode;
  /**
   * More third-party workloads stood in for by a root-namespace port, by image prefix (e.g.
   * "jaegertracing/" → an in-test OTLP receiver); such images are then not skipped.
   */
  readonly externals?: Record<string, ExternalService>;
}

/** Where scripts/images/build.sh writes the archives (DF_E2E_IMAGES_DIR overrides). */
export function imagesDir(): string {
  return path.resolve(REPO_ROOT, process.env.DF_E2E_IMAGES_DIR ?? 'build/images');
}

/**
 * The image archives behind the manifests' images of this project (<repository>/<component>:<tag>
 * → <imagesDir>/<component>.tar), with the references they must provide.
 */
export function projectImageArchives(manifests: ManifestSet): Record<string, string> {
  const refs = new Set<string>();
  for (const w of manifests.workloads()) {
    for (const c of [...(w.pod.initContainers ?? []), ...w.pod.containers]) {
      if (programOfCommand(c.command)) refs.add(c.image);
    }
  }
  const archives: Record<string, string> = {};
  for (const ref of refs) {
    const component = /\/(manager|scheduler|dfdaemon):[^/]+$/.exec(ref)?.[1];
    if (!component) throw new Error(`image ${ref} is not one of manager, scheduler, dfdaemon: the lab has no archive for it`);
    const archive = path.join(imagesDir(), `${component}.tar`);
    if (!fs.existsSync(archive)) throw new Error(`${path.relative(REPO_ROOT, archive)} does not exist: run scripts/images/build.sh first (image mode runs ${ref} from it)`);
    archives[ref] = archive;
  }
  return archives;
}

export interface ClusterLab {
  readonly lab: NetnsLab;
  readonly origin: OriginRegistry;
  readonly tls: TlsIdentity;
  readonly nodes: LabNode[];
  readonly deployment: Deployment;
  readonly manifests: ManifestSet;
  readonly image: TestImage;
  readonly ref: string;
  readonly manager: ManagerRest;
  /** An empty hosts dir: `pull(ref, {hostsDir})` with it goes straight to the origin. */
  readonly directHostsDir: string;
  /** Shapes the origin's link to `mbit` (tbf), or lifts the limit when undefined. */
  setOriginRate(mbit: number | undefined): Promise<void>;
  node(name: string): LabNode;
  teardown(): Promise<void>;
}

async function mysqlExec(sql: string): Promise<void> {
  await run('mysql', ['-uroot', '-h', '127.0.0.1', '-e', sql]);
}

/** root's login as the user knows it: the password in the Secret the manager Deployment takes `auth.rootPassword` from. */
export function rootLogin(manifests: ManifestSet): { name: string; password: string } {
  const manager = manifests.workloads().find((w) => w.kind === 'Deployment' && w.pod.containers.some((c) => programOfCommand(c.command ?? []) === 'manager'));
  if (!manager) throw new Error('manifests have no manager Deployment');
  const ref = manager.pod.containers.flatMap((c) => c.env ?? []).find((e) => e.name === 'DFMANAGER__auth__rootPassword')?.valueFrom?.secretKeyRef;
  if (!ref) throw new Error(`Deployment ${manager.name} takes root's password from no Secret (env DFMANAGER__auth__rootPassword)`);
  return { name: 'root', password: manifests.secretValue(manager.namespace, ref.name, ref.key) };
}

/**
 * The user's step for a RemoteCluster (docs/security.md): as root, make a personal access token
 * of scope `cluster` on the manager the Job calls, and store it in the Secret the Job names
 * (`kubectl create secret generic <name> --from-literal=<key>=<token>`), before the Job starts.
 */
async function createManagerTokenSecret(pod: Pod, deployment: Deployment, manifests: ManifestSet): Promise<void> {
  const ns = pod.workload.namespace;
  for (const c of pod.workload.pod.containers) {
    const ref = (c.env ?? []).find((e) => e.name === 'DRAGONFLY_MANAGER_TOKEN')?.valueFrom?.secretKeyRef;
    if (!ref || manifests.has('Secret', ns, ref.name)) continue;
    const command = c.command ?? [];
    const url = new URL(command[command.indexOf('--manager-url') + 1] ?? '');
    const ip = deployment.resolve(url.hostname);
    if (!ip) throw new Error(`${pod.name}: the manager ${url.hostname} the Job calls resolves to no pod`);
    const rest = new ManagerRest(`http://${ip}:${url.port || 80}`, rootLogin(manifests));
    const pat = await rest.request<{ token: string }>('POST', '/api/v1/personal-access-tokens', { name: `${ns}-registration`, scopes: ['cluster'] });
    manifests.createSecret(ns, ref.name, { [ref.key]: pat.token });
  }
}

export async function startClusterLab(opts: ClusterLabOptions): Promise<ClusterLab> {
  const mode = opts.mode ?? deployModeFromEnv();
  const loaded = ManifestSet.load(opts.manifestFiles.map((f) => path.resolve(REPO_ROOT, f)));
  if (mode === 'process') for (const p of ['manager', 'scheduler', 'dfdaemon', 'dfinit'] as const) programMain(p);
  const images = mode === 'image' ? projectImageArchives(loaded) : undefined;
  const lab = await NetnsLab.create();
  // What cert-manager does in a cluster: the Secrets of the manifests' Certificates (mTLS).
  const manifests = issueCertificates(loaded, path.join(lab.workDir, 'cert-manager')).manifests;
  const dbName = `e2e_${lab.runId}_manager`;
  const dbUser = `e2e_${lab.runId}`;
  try {
    const tls = await createTlsIdentity(path.join(lab.workDir, 'tls'), [ORIGIN_NAME]);
    const originHost = await lab.addHost('origin');
    lab.addDnsName(ORIGIN_NAME, originHost.ip);
    const nodeHosts: NetnsHost[] = [];
    for (const n of opts.nodes) nodeHosts.push(await lab.addHost(n.name));
    const [origin, ...containerds] = await Promise.all([
      OriginRegistry.start(originHost, { port: 443, tls }),
      ...nodeHosts.map((h) => ContainerdHost.start(h, { caBundle: tls.bundleFile })),
    ]);
    if (!origin || !(origin instanceof OriginRegistry)) throw new Error('origin did not start');
    const nodes: LabNode[] = nodeHosts.map((host, i) => ({ host, labels: opts.nodes[i]?.labels ?? {}, containerd: containerds[i] }));

    const image = await buildTestImage({ dir: path.join(lab.workDir, 'image'), tag: SEED_IMAGE_TAG, layerSizes: opts.layerSizes, gzip: opts.gzip ?? true });
    await pushTestImage(image, { registry: `${originHost.ip}:443`, repository: SEED_IMAGE_REPO });
    const ref = `${ORIGIN_NAME}/${SEED_IMAGE_REPO}:${SEED_IMAGE_TAG}`;
    if (opts.originRateMbit) await originHost.shape({ rateMbit: opts.originRateMbit });

    // The chart's MySQL: this machine's MariaDB, one database and user per run, with the
    // password from the manifests' Secret.
    const mysqlPassword = manifests.secretValue('cluster-a', 'dragonfly-mysql', 'mysql-password');
    await mysqlExec(
      `CREATE DATABASE \`${dbName}\`; CREATE USER '${dbUser}'@'%' IDENTIFIED BY '${mysqlPassword.replace(/'/g, "''")}'; CREATE USER '${dbUser}'@'localhost' IDENTIFIED BY '${mysqlPassword.replace(/'/g, "''")}'; GRANT ALL ON \`${dbName}\`.* TO '${dbUser}'@'%'; GRANT ALL ON \`${dbName}\`.* TO '${dbUser}'@'localhost';`,
    );
    lab.onTeardown(async () => {
      await mysqlExec(`DROP DATABASE IF EXISTS \`${dbName}\`; DROP USER IF EXISTS '${dbUser}'@'%'; DROP USER IF EXISTS '${dbUser}'@'localhost';`);
      const keys = await run('redis-cli', ['--scan', '--pattern', `e2e-${lab.runId}:*`], { allowFailure: true });
      const list = keys.stdout.split('\n').filter(Boolean);
      if (list.length > 0) await run('redis-cli', ['del', ...list], { allowFailure: true });
    });

    const deployment = await Deployment.apply({
      lab,
      mode,
      imageArchives: images,
      manifests,
      nodes,
      externals: { 'mysql:': { localPort: 3306 }, 'redis:': { localPort: 6379 }, ...opts.externals },
      skipImages: ['jaegertracing/'].filter((prefix) => !opts.externals?.[prefix]),
      beforeContainers: (pod, d) => createManagerTokenSecret(pod, d, manifests),
      programEnv: {
        manager: {
          DFMANAGER__database__mysql__dbname: dbName,
          DFMANAGER__database__mysql__user: dbUser,
          // Env values are YAML scalars: quote the colons.
          DFMANAGER__database__redis__keyPrefix: `"e2e-${lab.runId}:manager:"`,
          // Image preheats read manifests from the origin.
          NODE_EXTRA_CA_CERTS: tls.caFile,
        },
        // Schedulers take jobs from the manager's queues, under the same prefix.
        scheduler: { DFSCHEDULER__database__redis__keyPrefix: `"e2e-${lab.runId}:manager:"` },
        // In a real cluster the origin's certificate chains to a public root.
        dfdaemon: { NODE_EXTRA_CA_CERTS: tls.caFile },
      },
    });

    const managerIp = deployment.resolve('dragonfly-manager.cluster-a.svc.cluster.local');
    if (!managerIp) throw new Error('manifests have no dragonfly-manager Service in cluster-a');
    const manager = new ManagerRest(`http://${managerIp}:8080`, rootLogin(manifests));
    for (const w of ['dragonfly-scheduler', 'dragonfly-seed-peer']) {
      for (const pod of deployment.pods.filter((p) => p.workload.name === w)) {
        await manager.waitActive(w === 'dragonfly-scheduler' ? 'scheduler' : 'seed-peer', pod.ip, 60_000);
      }
    }
    for (const pod of deployment.pods.filter((p) => p.workload.kind === 'DaemonSet')) {
      await pod.host.waitForPort(PROXY_PORT, 30_000);
    }
    const directHostsDir = path.join(lab.workDir, 'direct-hosts.d');
    fs.mkdirSync(directHostsDir, { recursive: true });
    return {
      lab,
      origin,
      tls,
      nodes,
      deployment,
      manifests,
      image,
      ref,
      manager,
      directHostsDir,
      setOriginRate: (mbit) => (mbit ? originHost.shape({ rateMbit: mbit }) : originHost.unshape()),
      node(name: string) {
        const n = nodes.find((x) => x.host.name === name);
        if (!n) throw new Error(`no node ${name}`);
        return n;
      },
      teardown: () => lab.teardown(),
    };
  } catch (e) {
    await lab.teardown().catch(() => undefined);
    throw e;
  }
}

/**
 * Seed 000's "delete the dfdaemon pod" step: stop the node's dfdaemon, wipe its storage (the
 * chart's emptyDir went with the pod), start it again with the same command and env, and wait
 * for its proxy.
 */
export async function clearDfdaemonCache(cl: ClusterLab, nodeName: string): Promise<void> {
  const pod = cl.deployment.podOn('dragonfly-dfdaemon', nodeName);
  const c = pod.container('dfdaemon');
  await c.process?.stop();
  for (const key of ['DFDAEMON__dataDir']) {
    const dir = c.hostPaths[key];
    if (dir) {
      fs.rmSync(dir, { recursive: true, force: true });
      fs.mkdirSync(dir, { recursive: true });
    }
  }
  pod.start(c);
  await waitFor(`${nodeName} dfdaemon proxy back`, async () => ((await canReach(pod.host, PROXY_PORT)) ? true : undefined), 30_000);
}

async function canReach(host: NetnsHost, port: number): Promise<boolean> {
  try {
    await host.waitForPort(port, 500);
    return true;
  } catch {
    return false;
  }
}
