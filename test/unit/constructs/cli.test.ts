/**
 * `dragonfly-ts synth` and `dragonfly-ts import` on the seeds' values files (000: two clusters,
 * 002: one cluster) and on a values file in the current chart's format: the manifests are valid
 * Kubernetes and equal to the topology built by hand with the constructs; the generated code
 * type-checks and builds the same manifests; a key with no equivalent fails with its path.
 */
import { execFileSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Testing, type App } from 'cdk8s';
import * as ts from 'typescript';
import { parseAllDocuments } from 'yaml';
import * as constructs from '../../../constructs';
import { CentralManager, DragonflyCluster, jaegerCollectorUrl } from '../../../constructs';
import { main } from '../../../constructs/cli';
import { buildSeedTopology } from '../../../main';
import { newChart, schemaError, synth, type KubeObject } from './helpers';

const FIXTURES = join(__dirname, 'fixtures');
const REPO = join(__dirname, '..', '..', '..');
let dir: string;

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'dragonfly-ts-cli-'));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

/** Copies a fixture into the temp dir under the name the chart and output file take. */
function values(fixture: string, as: string): string {
  const file = join(dir, as);
  copyFileSync(join(FIXTURES, fixture), file);
  return file;
}

function run(...argv: string[]): { code: number; out: string; err: string } {
  let out = '';
  let err = '';
  const code = main(argv, { out: (s) => (out += s), err: (s) => (err += s) });
  return { code, out, err };
}

function manifests(file: string): KubeObject[] {
  return parseAllDocuments(readFileSync(file, 'utf8')).map((d) => d.toJS() as KubeObject).filter(Boolean);
}

function byKey(objects: readonly KubeObject[]): Map<string, KubeObject> {
  return new Map(objects.map((o) => [`${o.kind}/${o.metadata.name}`, o]));
}

function expectSameObjects(actual: readonly KubeObject[], expected: readonly KubeObject[]): void {
  const a = byKey(actual);
  const e = byKey(expected);
  expect([...a.keys()].sort()).toEqual([...e.keys()].sort());
  for (const [key, obj] of e) expect(a.get(key)).toEqual(obj);
}

function expectValid(objects: readonly KubeObject[]): void {
  expect(objects.length).toBeGreaterThan(10);
  for (const o of objects) expect(schemaError(o)).toBeUndefined();
}

describe('dragonfly-ts synth', () => {
  test('seed 000: cluster-a and cluster-b values give the seed topology of main.ts (one file per values file)', () => {
    const a = values('charts-config-cluster-a.yaml', 'cluster-a.yaml');
    const b = values('charts-config-cluster-b.yaml', 'cluster-b.yaml');
    const out = join(dir, 'out');
    const r = run('synth', '--values', a, '--values', b, '--namespace', 'cluster-a', '--namespace', 'cluster-b', '--output', out);
    expect(r.err).not.toMatch(/dragonfly-ts:/);
    expect(r.code).toBe(0);
    expect(readdirSync(out).sort()).toEqual(['cluster-a.k8s.yaml', 'cluster-b.k8s.yaml']);
    // Mapped with a caveat: said on stderr, by key.
    expect(r.err).toMatch(/cluster-b\.yaml: key "externalRedis\.password": plain-text passwords are not put in manifests/);

    const { clusterA, clusterB } = buildSeedTopology(Testing.app());
    // main.ts adds what the seed creates outside the chart: the namespaces, the console NodePort
    // (manager-rest-svc.yaml), the Secret with the central Redis password, and the
    // NetworkPolicies (the chart has none; they need the cluster's address ranges).
    const outside = new Set(['Namespace/cluster-a', 'Namespace/cluster-b', 'Service/manager-rest', 'Secret/dragonfly-external-redis']);
    const fromChart = (o: KubeObject) => o.kind !== 'NetworkPolicy' && !outside.has(`${o.kind}/${o.metadata.name}`);
    for (const [file, chart] of [['cluster-a.k8s.yaml', clusterA], ['cluster-b.k8s.yaml', clusterB]] as const) {
      const got = manifests(join(out, file));
      expectValid(got);
      expectSameObjects(got, synth(chart).filter(fromChart));
    }
  });

  test('seed 002: the single-cluster values give CentralManager + DragonflyCluster in dragonfly-system', () => {
    const file = values('charts-config.yaml', 'charts-config.yaml');
    const r = run('synth', '--values', file, '--output', join(dir, 'out'));
    expect(r.code).toBe(0);
    const got = manifests(join(dir, 'out', 'charts-config.k8s.yaml'));
    expectValid(got);

    const hand = newChart('charts-config', 'dragonfly-system');
    const debug = { verbose: true, pprofPort: 18066 };
    const manager = new CentralManager(hand.chart, 'manager', { demoCredentials: true, replicas: 1, config: debug, jaegerUrl: jaegerCollectorUrl('dragonfly-system') });
    new DragonflyCluster(hand.chart, 'dragonfly', {
      manager: manager.endpoint,
      jobRedis: manager.jobRedis,
      registries: ['https://ghcr.io'],
      jaeger: true,
      scheduler: { replicas: 1, config: debug },
      seedPeer: { replicas: 1, config: debug },
      dfdaemon: { config: debug },
    });
    expectSameObjects(got, synth(hand.chart));
  });

  test('current chart format: client, seedClient, image objects, placement, dfinit registries, external datastores', () => {
    const file = values('chart-values-current.yaml', 'prod.yaml');
    const r = run('synth', '--values', file, '--namespace', 'dragonfly-system', '--output', join(dir, 'out'));
    expect(r.err).not.toMatch(/dragonfly-ts:/);
    expect(r.code).toBe(0);
    const got = manifests(join(dir, 'out', 'prod.k8s.yaml'));
    expectValid(got);

    const hand = newChart('prod', 'dragonfly-system');
    const manager = new CentralManager(hand.chart, 'manager', {
      demoCredentials: true,
      replicas: 2,
      resources: { cpuRequest: '0', memoryRequest: '0', cpuLimit: '4', memoryLimit: '8Gi' },
      nodeSelector: { pool: 'system' },
      tolerations: [{ key: 'dedicated', operator: 'Equal', value: 'system', effect: 'NoSchedule' }],
      config: { verbose: true },
      externalMysql: { host: 'mysql.db.svc.cluster.local', port: 3306, username: 'dragonfly', database: 'manager', passwordSecret: { name: 'dragonfly-external-mysql', key: 'password' } },
      externalRedis: { addrs: ['redis.db.svc.cluster.local:6379'], passwordSecret: { name: 'dragonfly-external-redis', key: 'password' }, db: 0 },
    });
    new DragonflyCluster(hand.chart, 'dragonfly', {
      manager: manager.endpoint,
      jobRedis: manager.jobRedis,
      hostScope: { idc: 'dc-1', location: 'asia|cn' },
      registries: ['https://docker.io', 'https://ghcr.io'],
      scheduler: {
        replicas: 3,
        nodeSelector: { pool: 'system' },
        affinity: {
          podAntiAffinity: {
            preferredDuringSchedulingIgnoredDuringExecution: [
              { weight: 100, podAffinityTerm: { topologyKey: 'kubernetes.io/hostname', labelSelector: { matchLabels: { component: 'scheduler' } } } },
            ],
          },
        },
      },
      seedPeer: { replicas: 3, storageSize: '50Gi' },
      dfdaemon: {
        priorityClassName: 'system-node-critical',
        resources: { cpuRequest: '100m', memoryRequest: '256Mi', cpuLimit: '2', memoryLimit: '4Gi' },
        podLabels: { tier: 'node' },
        config: { verbose: true },
      },
    });
    expectSameObjects(got, synth(hand.chart));
    // The upstream images are reported and replaced, not silently swapped.
    expect(r.err).toMatch(/key "client\.image\.repository": upstream image dragonflyoss\/client/);
  });

  test('a key with no equivalent fails the run with its path, and nothing is written', () => {
    const file = join(dir, 'bad.yaml');
    writeFileSync(file, 'client:\n  config:\n    host:\n      idc: x\n    proxy:\n      registryMirror:\n        addr: https://index.docker.io\nscheduler:\n  service:\n    type: LoadBalancer\n');
    const good = values('charts-config.yaml', 'good.yaml');
    const r = run('synth', '--values', good, '--values', file, '--output', join(dir, 'out'));
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/bad\.yaml: helm values keys with no equivalent/);
    expect(r.err).toMatch(/^ {2}client\.config\.proxy\.registryMirror\.addr$/m);
    expect(r.err).toMatch(/^ {2}scheduler\.service\.type$/m);
    // The good file before it is not written either.
    expect(existsSync(join(dir, 'out'))).toBe(false);
  });

  test.each([
    ['client:\n  config:\n    log:\n      level: warn\n', /client\.config\.log\.level" is "warn"/],
    ['client:\n  hostNetwork: false\n', /client\.hostNetwork" is false/],
    ['seedClient:\n  config:\n    seedPeer:\n      clusterID: 2\nscheduler:\n  config:\n    manager:\n      schedulerClusterID: 3\n', /disagree on the cluster id/],
    ['client:\n  dfinit:\n    enable: true\n    config:\n      containerRuntime:\n        containerd:\n          registries:\n            - hostNamespace: quay.io\n              serverAddr: https://ghcr.io\n', /registries\.0\.hostNamespace" is "quay\.io"/],
    ['client: {}\ndfdaemon: {}\n', /both "client" \(current chart\) and "dfdaemon"/],
    ['scheduler:\n  config:\n    hots: 1\n', /hots/],
  ])('bad values are refused naming the key: %j', (text, message) => {
    const file = join(dir, 'x.yaml');
    writeFileSync(file, text);
    const r = run('synth', '--values', file, '--output', join(dir, 'out'));
    expect(r.code).toBe(1);
    expect(r.err).toMatch(message);
  });

  test('usage mistakes exit 2 with the usage text', () => {
    expect(run('synth').code).toBe(2);
    expect(run('render', '--values', 'x.yaml').err).toMatch(/unknown command "render"/);
    const file = values('charts-config.yaml', 'a.yaml');
    expect(run('synth', '--values', file, '--values', file).err).toMatch(/two values files are named a/);
    expect(run('synth', '--values', file, '--bogus').code).toBe(2);
    expect(run('synth', '--values', join(dir, 'missing.yaml')).err).toMatch(/cannot read values file/);
  });
});

describe('dragonfly-ts import', () => {
  /** Runs generated code as CommonJS with the repository's constructs standing in for the package. */
  function evaluate(code: string): { build: (app: App) => void } {
    const js = ts.transpileModule(code, { compilerOptions: { module: ts.ModuleKind.CommonJS, target: ts.ScriptTarget.ES2022 } }).outputText;
    const mod = { exports: {} as Record<string, unknown> };
    const fakeRequire = (name: string): unknown => {
      if (name === '@dragonfly-ts/constructs') return constructs;
      if (name === 'cdk8s') return jest.requireActual('cdk8s');
      throw new Error(`generated code requires ${name}`);
    };
    // Function (not node:vm) so the code's objects live in this realm: cdk8s tells plain objects by their constructor.
    // eslint-disable-next-line @typescript-eslint/no-implied-eval -- the code under test is the generated program
    const run = new Function('require', 'module', 'exports', js) as (r: typeof fakeRequire, m: typeof mod, e: Record<string, unknown>) => void;
    run(fakeRequire, mod, mod.exports);
    return mod.exports as { build: (app: App) => void };
  }

  test('seed 000 and the current chart format: the code builds the manifests synth writes, and type-checks', () => {
    const a = values('charts-config-cluster-a.yaml', 'cluster-a.yaml');
    const b = values('charts-config-cluster-b.yaml', 'cluster-b.yaml');
    const c = values('chart-values-current.yaml', 'prod.yaml');
    const namespaces = ['--namespace', 'cluster-a', '--namespace', 'cluster-b', '--namespace', 'prod'];
    const imported = run('import', '--values', a, '--values', b, '--values', c, ...namespaces, '--output', join(dir, 'topology.ts'));
    expect(imported.err).not.toMatch(/dragonfly-ts:/);
    expect(imported.code).toBe(0);
    const code = readFileSync(join(dir, 'topology.ts'), 'utf8');
    expect(code).toMatch(/new CentralManager\(chart, 'manager'/);
    expect(code).toMatch(/new RemoteCluster\(chart, 'dragonfly'/);
    expect(code).toMatch(/manager: manager\.endpoint,\n {4}jobRedis: manager\.jobRedis,/);

    const synthed = run('synth', '--values', a, '--values', b, '--values', c, ...namespaces, '--output', join(dir, 'out'));
    expect(synthed.code).toBe(0);
    const app = Testing.app();
    evaluate(code).build(app);
    const charts = app.charts;
    expect(charts.map((ch) => ch.node.id)).toEqual(['cluster-a', 'cluster-b', 'prod']);
    for (const chart of charts) expectSameObjects(synth(chart), manifests(join(dir, 'out', `${chart.node.id}.k8s.yaml`)));

    // Type-check the generated file against the constructs' declarations, as a user's project would.
    const file = join(dir, 'topology.ts');
    const program = ts.createProgram([file], {
      strict: true,
      noEmit: true,
      esModuleInterop: true,
      resolveJsonModule: true,
      skipLibCheck: true,
      module: ts.ModuleKind.CommonJS,
      target: ts.ScriptTarget.ES2022,
      moduleResolution: ts.ModuleResolutionKind.Node10,
      baseUrl: REPO,
      paths: { '@dragonfly-ts/constructs': ['constructs/index.ts'], '*': ['node_modules/*', 'node_modules/@types/*'] },
      typeRoots: [join(REPO, 'node_modules', '@types')],
      types: ['node'],
    });
    const source = program.getSourceFile(file);
    expect(source).toBeDefined();
    // The import resolved to the constructs' sources (not to an untyped any), so the check has teeth.
    const checker = program.getTypeChecker();
    const importDecl = source!.statements.filter(ts.isImportDeclaration).find((d) => (d.moduleSpecifier as ts.StringLiteral).text === '@dragonfly-ts/constructs');
    const symbol = checker.getSymbolAtLocation(importDecl!.moduleSpecifier);
    expect(symbol?.valueDeclaration?.getSourceFile().fileName).toBe(join(REPO, 'constructs', 'index.ts'));
    const diagnostics = ts.getPreEmitDiagnostics(program).filter((d) => d.file?.fileName === file);
    expect(diagnostics.map((d) => ts.flattenDiagnosticMessageText(d.messageText, '\n'))).toEqual([]);
  });

  test('without --output the code goes to stdout; a bad key fails the same way as synth', () => {
    const file = values('charts-config.yaml', 'one.yaml');
    const r = run('import', '--values', file, '--module', '@example/dragonfly');
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/from '@example\/dragonfly';/);
    const bad = join(dir, 'bad.yaml');
    writeFileSync(bad, 'ingress:\n  enable: true\n');
    const f = run('import', '--values', bad);
    expect(f.code).toBe(1);
    expect(f.err).toMatch(/^ {2}ingress\.enable$/m);
    expect(f.out).toBe('');
  });
});

describe('the dragonfly-ts bin of the repository (what `npx dragonfly-ts` runs)', () => {
  test('package.json names it, and `npx dragonfly-ts` runs the sources with no build step', () => {
    const pkg = JSON.parse(readFileSync(join(REPO, 'package.json'), 'utf8')) as { bin: Record<string, string> };
    expect(pkg.bin['dragonfly-ts']).toBe('bin/dragonfly-ts.js');
    const file = values('charts-config.yaml', 'single.yaml');
    const out = join(dir, 'out');
    // npx resolves a bin of the project it runs in (the root package.json), with no install.
    const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !/^npm_|^INIT_CWD$/.test(k)));
    execFileSync('npx', ['--no-install', 'dragonfly-ts', 'synth', '--values', file, '--output', out], { cwd: REPO, env, stdio: 'pipe', timeout: 60_000 });
    expectValid(manifests(join(out, 'single.k8s.yaml')));
  });
});
