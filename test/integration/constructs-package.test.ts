/**
 * The cdk8s user's path (issue 20), for real: pack @dragonfly-ts/constructs, install the tarball
 * into a fresh folder next to cdk8s, constructs, cdk8s-plus-28, cdk8s-cli and the TypeScript
 * toolchain of cdk8s's own typescript-app template (its tsconfig.json too: strict, no
 * skipLibCheck), run `npx cdk8s synth` on the app constructs/README.md shows, and check what comes
 * out against the Kubernetes schema and for its multi-cluster wiring.
 *
 * Needs the npm registry (npm's cache makes repeated runs quick); nothing else leaves the machine.
 */
import { execFile } from 'node:child_process';
import { copyFileSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { parseAllDocuments } from 'yaml';
import { parseConfigText } from '../../services/common/config';
import { configMapData, findObject, podTemplate, schemaError, type KubeObject } from '../unit/constructs/helpers';

const REPO = join(__dirname, '..', '..');
const TARBALL = join(REPO, 'build', 'packages', 'constructs.tgz');
const MANAGER_FROM_OTHER_CLUSTERS = 'dragonfly-manager.example.com';
const REMOTES = [
  { chart: 'remote-eu', clusterId: 2, idc: 'eu' },
  { chart: 'remote-us', clusterId: 3, idc: 'us' },
] as const;

const execFileAsync = promisify(execFile);

/** Runs a command to completion (bounded by `timeoutMs`); the error carries its output. */
async function run(command: string, args: string[], cwd: string, timeoutMs: number, env: NodeJS.ProcessEnv): Promise<string> {
  try {
    const { stdout } = await execFileAsync(command, args, { cwd, env, timeout: timeoutMs, killSignal: 'SIGKILL', maxBuffer: 64 * 1024 * 1024 });
    return stdout;
  } catch (err) {
    const e = err as Error & { stdout?: string; stderr?: string };
    throw new Error(`${command} ${args.join(' ')} failed: ${e.message}\n${e.stdout ?? ''}\n${e.stderr ?? ''}`, { cause: err });
  }
}

/** This process's environment without what `npm test` sets for the repository's own package. */
function userEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [key, value] of Object.entries(process.env)) {
    if (/^npm_(package|lifecycle)_|^npm_config_(local_prefix|prefix|workspaces?|include_workspace_root)$|^INIT_CWD$|^CDK8S_/.test(key)) continue;
    env[key] = value;
  }
  // cdk8s-cli would otherwise ask registry.npmjs.org over plain HTTP for a newer version.
  env.CDK8S_CHECK_UPGRADE = 'false';
  return env;
}

/** The app in constructs/README.md (the ```ts block after `<!-- user-app -->`). */
function readmeApp(): string {
  const readme = readFileSync(join(REPO, 'constructs', 'README.md'), 'utf8');
  const match = /<!-- user-app -->\s*```ts\n([\s\S]*?)```/.exec(readme);
  if (!match) throw new Error('constructs/README.md has no ```ts block after <!-- user-app -->');
  return match[1];
}

function* filesUnder(dir: string): Generator<string> {
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) yield* filesUnder(path);
    else if (entry.isFile()) yield path;
  }
}

const normalize = (text: string): string => text.replace(/\s+/g, ' ');

let appDir: string;
let charts: Record<string, KubeObject[]>;

beforeAll(async () => {
  const env = userEnv();
  await run(process.execPath, [join(REPO, 'scripts', 'pack-constructs.mjs')], REPO, 180_000, env);

  appDir = mkdtempSync(join(tmpdir(), 'dragonfly-constructs-app-'));
  writeFileSync(join(appDir, 'package.json'), `${JSON.stringify({ name: 'my-dragonfly', version: '1.0.0', private: true }, null, 2)}\n`);
  // typescript@5.9 and ts-node as cdk8s's typescript-app template pins them (ts-node needs the
  // TypeScript 5 API; TypeScript 7's package has only the native compiler).
  await run(
    'npm',
    ['install', TARBALL, 'cdk8s', 'constructs', 'cdk8s-plus-28', 'cdk8s-cli', 'typescript@5.9', 'ts-node', '--prefer-offline', '--no-audit', '--no-fund'],
    appDir,
    360_000,
    env,
  );
  copyFileSync(join(appDir, 'node_modules', 'cdk8s-cli', 'templates', 'typescript-app', 'tsconfig.json'), join(appDir, 'tsconfig.json'));
  writeFileSync(join(appDir, 'cdk8s.yaml'), 'language: typescript\napp: npx ts-node main.ts\noutput: dist\n');
  writeFileSync(join(appDir, 'main.ts'), readmeApp());
  await run('npx', ['cdk8s', 'synth', '--check-upgrade=false'], appDir, 180_000, env);

  charts = {};
  for (const file of readdirSync(join(appDir, 'dist'))) {
    const docs = parseAllDocuments(readFileSync(join(appDir, 'dist', file), 'utf8'));
    for (const doc of docs) if (doc.errors.length > 0) throw new Error(`${file}: ${doc.errors[0].message}`);
    charts[file.replace(/\.k8s\.yaml$/, '')] = docs.map((d) => d.toJS() as KubeObject);
  }
}, 15 * 60_000);

afterAll(() => {
  if (appDir) rmSync(appDir, { recursive: true, force: true });
});

describe('@dragonfly-ts/constructs in a user\'s cdk8s app', () => {
  test('the package brings only what the constructs need: no service dependencies, no native code', () => {
    const installed = JSON.parse(readFileSync(join(appDir, 'node_modules', '@dragonfly-ts', 'constructs', 'package.json'), 'utf8')) as {
      dependencies?: Record<string, string>;
      peerDependencies?: Record<string, string>;
    };
    expect(Object.keys(installed.dependencies ?? {}).sort()).toEqual(['@types/node', 'yaml', 'zod']);
    expect(Object.keys(installed.peerDependencies ?? {}).sort()).toEqual(['cdk8s', 'cdk8s-plus-28', 'constructs']);
    const modules = readdirSync(join(appDir, 'node_modules'));
    for (const serviceDependency of ['better-sqlite3', 'mysql2', 'ioredis', 'express', 'pino', 'bcryptjs', 'jsonwebtoken', '@grpc']) {
      expect(modules).not.toContain(serviceDependency);
    }
    const nativeAddons = [...filesUnder(join(appDir, 'node_modules'))].filter((f) => f.endsWith('.node'));
    expect(nativeAddons).toEqual([]);
  });

  test('types ship with the doc comments of every exported declaration and property', () => {
    const lib = join(appDir, 'node_modules', '@dragonfly-ts', 'constructs', 'lib', 'constructs');
    const modules = readdirSync(join(REPO, 'constructs')).filter((f) => f.endsWith('.ts') && f !== 'index.ts');
    expect(modules.length).toBeGreaterThan(5);
    let checked = 0;
    for (const module of modules) {
      const source = readFileSync(join(REPO, 'constructs', module), 'utf8');
      const declarations = normalize(readFileSync(join(lib, module.replace(/\.ts$/, '.d.ts')), 'utf8'));
      for (const [doc] of source.matchAll(/\/\*\*(?:(?!\*\/)[\s\S])*\*\/(?=\s*(export |readonly ))/g)) {
        expect({ module, doc: normalize(doc), shipped: declarations.includes(normalize(doc)) }).toEqual({ module, doc: normalize(doc), shipped: true });
        checked += 1;
      }
    }
    expect(checked).toBeGreaterThan(50);
  });

  test('the package\'s dragonfly-ts bin turns Helm values into manifests (npx dragonfly-ts synth)', async () => {
    copyFileSync(join(REPO, 'test', 'unit', 'constructs', 'fixtures', 'charts-config.yaml'), join(appDir, 'single.yaml'));
    await run('npx', ['--no-install', 'dragonfly-ts', 'synth', '--values', 'single.yaml', '--output', 'from-values'], appDir, 120_000, userEnv());
    const objects = parseAllDocuments(readFileSync(join(appDir, 'from-values', 'single.k8s.yaml'), 'utf8')).map((d) => d.toJS() as KubeObject);
    expect(objects.some((o) => o.kind === 'DaemonSet' && o.metadata.name === 'dragonfly-dfdaemon')).toBe(true);
    expect(objects.map(schemaError).filter(Boolean)).toEqual([]);
  }, 150_000);

  test('cdk8s synth writes one manifest per cluster, every object valid against the Kubernetes API schema', () => {
    expect(Object.keys(charts).sort()).toEqual(['central', 'remote-eu', 'remote-us']);
    for (const [chart, objects] of Object.entries(charts)) {
      expect(objects.length).toBeGreaterThan(10);
      expect({ chart, errors: objects.map(schemaError).filter(Boolean) }).toEqual({ chart, errors: [] });
      const ids = objects.map((o) => `${o.kind}/${o.metadata.namespace ?? ''}/${o.metadata.name}`);
      expect({ chart, duplicates: ids.filter((id, i) => ids.indexOf(id) !== i) }).toEqual({ chart, duplicates: [] });
    }
    for (const workload of ['Deployment', 'StatefulSet', 'DaemonSet']) {
      expect(charts.central.some((o) => o.kind === workload)).toBe(true);
    }
    // The package's default image tag is the repository's version (the images the Dockerfile builds).
    const { version } = JSON.parse(readFileSync(join(REPO, 'package.json'), 'utf8')) as { version: string };
    const images = Object.values(charts)
      .flat()
      .filter((o) => ['Deployment', 'StatefulSet', 'DaemonSet', 'Job'].includes(o.kind))
      .flatMap((o) => [...podTemplate(o).spec.containers, ...(podTemplate(o).spec.initContainers ?? [])].map((c) => c.image))
      .filter((image) => image.startsWith('ghcr.io/dragonfly-ts/'));
    expect(new Set(images)).toEqual(new Set(['manager', 'scheduler', 'dfdaemon'].map((c) => `ghcr.io/dragonfly-ts/${c}:${version}`)));
  });

  test('the central cluster: manager Service on 65003/8080, its own scheduler as the default cluster 1', () => {
    const central = charts.central;
    const service = findObject(central, 'Service', 'dragonfly-manager') as KubeObject & { spec: { ports: { port: number }[] } };
    expect(service.metadata.namespace).toBe('dragonfly');
    expect(service.spec.ports.map((p) => p.port).sort((x, y) => x - y)).toEqual([8080, 65003]);
    const scheduler = parseConfigText('scheduler', configMapData(findObject(central, 'ConfigMap', 'dragonfly-scheduler'))['scheduler.yaml']);
    expect(scheduler.manager.addr).toBe('dragonfly-manager.dragonfly.svc.cluster.local:65003');
    expect(scheduler.manager.schedulerClusterID).toBe(1);
    expect(central.some((o) => o.kind === 'Job')).toBe(false);
    // root's password comes from the Secret the user creates; no password is in the manifests.
    const managerEnv = podTemplate(findObject(central, 'Deployment', 'dragonfly-manager')).spec.containers[0].env ?? [];
    expect(managerEnv.find((e) => e.name === 'DFMANAGER__auth__rootPassword')?.valueFrom?.secretKeyRef).toEqual({ name: 'dragonfly-root-password', key: 'password' });
    expect(central.filter((o) => o.kind === 'Secret').map((o) => o.metadata.name)).not.toContain('dragonfly-root-password');
  });

  test.each(REMOTES)('$chart: manager address, cluster id $clusterId and scope idc=$idc reach the record, the scheduler, the seed peer and the peers', ({ chart, clusterId, idc }) => {
    const objects = charts[chart];
    const managerAddr = `${MANAGER_FROM_OTHER_CLUSTERS}:65003`;
    // No manager of its own: the remote cluster is wired to the central one.
    expect(objects.filter((o) => o.metadata.name === 'dragonfly-manager' && o.kind !== 'Secret')).toEqual([]);

    const record = parseAllDocuments(configMapData(findObject(objects, 'ConfigMap', `dragonfly-cluster-${clusterId}`))['cluster.yaml'])[0].toJS() as {
      id: number;
      scopes: { idc: string };
      is_default: boolean;
    };
    expect({ id: record.id, idc: record.scopes.idc, isDefault: record.is_default }).toEqual({ id: clusterId, idc, isDefault: false });

    const job = objects.find((o) => o.kind === 'Job');
    if (!job) throw new Error(`${chart} has no apply-cluster Job`);
    const command = podTemplate(job).spec.containers[0].command ?? [];
    expect(command.slice(0, 2)).toEqual(['dfmanager', 'apply-cluster']);
    expect(command[command.indexOf('--manager-url') + 1]).toBe(`http://${MANAGER_FROM_OTHER_CLUSTERS}:8080`);
    // It logs in with a personal access token from the Secret the user creates, not with root's password.
    expect(podTemplate(job).spec.containers[0].env).toEqual([{ name: 'DRAGONFLY_MANAGER_TOKEN', valueFrom: { secretKeyRef: { name: 'dragonfly-manager-token', key: 'token' } } }]);

    const scheduler = parseConfigText('scheduler', configMapData(findObject(objects, 'ConfigMap', 'dragonfly-scheduler'))['scheduler.yaml']);
    expect(scheduler.manager.addr).toBe(managerAddr);
    expect(scheduler.manager.schedulerClusterID).toBe(clusterId);

    const seedPeer = parseConfigText('dfdaemon', configMapData(findObject(objects, 'ConfigMap', 'dragonfly-seed-peer'))['dfdaemon.yaml']);
    expect(seedPeer.scheduler.manager.netAddrs).toEqual([{ type: 'tcp', addr: managerAddr }]);
    expect(seedPeer.scheduler.manager.seedPeer).toEqual(expect.objectContaining({ enable: true, clusterID: clusterId }));

    const peer = parseConfigText('dfdaemon', configMapData(findObject(objects, 'ConfigMap', 'dragonfly-dfdaemon'))['dfdaemon.yaml']);
    expect(peer.scheduler.manager.netAddrs).toEqual([{ type: 'tcp', addr: managerAddr }]);
    expect(peer.host.idc).toBe(idc);
  });
});
