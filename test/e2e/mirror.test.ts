/**
 * Issue 6 end to end: containerd on netns worker hosts pulls through the dfdaemon registry-mirror
 * proxy, configured by dfinit, with a manager (sqlite), a scheduler and a seed peer on their own
 * hosts and the real registry as origin. Every claim is checked on the origin's request log:
 * back-to-source happens once (by the seed peer), a re-pull after removal is a local cache hit, a
 * second worker is served by peers, a stopped dfdaemon falls back to the origin, and the private
 * registry's credentials pass through the proxy.
 */
import { localPki } from '../../services/local-cluster';
import * as fs from 'node:fs';
import * as path from 'node:path';
import {
  ContainerdHost,
  ManagerRest,
  NetnsLab,
  OriginRegistry,
  buildTestImage,
  programMain,
  pushTestImage,
  runProgram,
  startProgram,
  waitReady,
  type NetnsHost,
  type ProgramRun,
  type TestImage,
} from './harness';

/** 33 MiB on a LAN takes seconds; a pull stuck this long is a failure, not slowness. */
const PULL_TIMEOUT_MS = 90_000;
jest.setTimeout(2 * PULL_TIMEOUT_MS + 30_000);

const REGISTRY = 'registry.e2e.internal';
const MANAGER_DNS = 'dragonfly-manager.e2e.internal';
const CREDS = { username: 'e2e', password: 'e2e-secret' };
const PORTS = { managerRest: 8080, managerGrpc: 65003, scheduler: 8002, peerGrpc: 65000, proxy: 65001, upload: 65002 } as const;

interface Worker {
  readonly host: NetnsHost;
  readonly containerd: ContainerdHost;
  dfdaemon: ProgramRun;
}

/** mTLS between the programs: a lab CA made with openssl in beforeAll. */
let security: ReturnType<typeof localPki>['security'];

function dfdaemonConfig(host: NetnsHost, seed: boolean): Record<string, unknown> {
  const dir = path.join(host.dir, seed ? 'seed-peer' : 'dfdaemon');
  return {
    verbose: true,
    security: security(`${host.name}-${seed ? 'seed-peer' : 'dfdaemon'}`, { role: seed ? 'seed-peer' : 'peer', clusterId: 1 }),
    workHome: dir,
    dataDir: path.join(dir, 'data'),
    host: { hostname: host.name, advertiseIP: host.ip },
    metrics: ':8000',
    scheduler: {
      manager: {
        netAddrs: [{ type: 'tcp', addr: `${MANAGER_DNS}:${PORTS.managerGrpc}` }],
        refreshInterval: '10s',
        seedPeer: { enable: seed, clusterID: 1, keepAlive: { interval: '1s' } },
      },
      announceInterval: '5s',
    },
    download: { downloadGRPC: { unixListen: { socket: path.join(dir, 'dfdaemon.sock') } } },
    // The proxy denies by default: both registries dfinit points containerd at are listed, as the constructs do.
    proxy: { whiteList: [{ host: REGISTRY, ports: ['5000', '5001'] }] },
  };
}

describe('containerd pulls through the Dragonfly registry mirror (issue 6)', () => {
  let lab: NetnsLab;
  let origin: OriginRegistry;
  let privateOrigin: OriginRegistry;
  let seedHost: NetnsHost;
  let workers: Worker[];
  let image: TestImage;
  let privateImage: TestImage;
  let ref: string;
  let privateRef: string;
  const layerDigests = () => image.layers.map((l) => l.digest);

  beforeAll(async () => {
    for (const p of ['manager', 'scheduler', 'dfdaemon', 'dfinit'] as const) programMain(p);
    lab = await NetnsLab.create();
    security = localPki(path.join(lab.workDir, 'pki-root')).security;
    const originHost = await lab.addHost('origin');
    const managerHost = await lab.addHost('manager');
    const schedulerHost = await lab.addHost('scheduler');
    seedHost = await lab.addHost('seed-peer');
    const workerHosts = [await lab.addHost('worker-1'), await lab.addHost('worker-2')];
    lab.addDnsName(REGISTRY, originHost.ip);
    lab.addDnsName(MANAGER_DNS, managerHost.ip);

    const started = await Promise.all([
      OriginRegistry.start(originHost, { port: 5000 }),
      OriginRegistry.start(originHost, { port: 5001, credentials: CREDS }),
      ...workerHosts.map((h) => ContainerdHost.start(h)),
    ]);
    origin = started[0];
    privateOrigin = started[1];
    const containerds = started.slice(2) as ContainerdHost[];

    image = await buildTestImage({ dir: path.join(lab.workDir, 'img'), layerSizes: [24 << 20, 8 << 20, 1 << 20], gzip: true });
    privateImage = await buildTestImage({ dir: path.join(lab.workDir, 'img-private'), layerSizes: [4 << 20] });
    await pushTestImage(image, { registry: origin.address, repository: 'e2e/mirror' });
    await pushTestImage(privateImage, { registry: privateOrigin.address, repository: 'e2e/private', credentials: CREDS });
    ref = `${REGISTRY}:5000/e2e/mirror:${image.tag}`;
    privateRef = `${REGISTRY}:5001/e2e/private:${privateImage.tag}`;

    const manager = startProgram(managerHost, 'manager', {
      verbose: true,
      server: {
        workHome: path.join(managerHost.dir, 'manager'),
        rest: { addr: `:${PORTS.managerRest}` },
        grpc: { advertiseIP: managerHost.ip, port: { start: PORTS.managerGrpc, end: PORTS.managerGrpc } },
      },
      database: { type: 'sqlite', sqlite: { file: path.join(managerHost.dir, 'manager.db') } },
      auth: { demoCredentials: true },
      keepAlive: { timeout: '5s' },
      security: security('manager', { role: 'manager' }),
    });
    await waitReady(manager, [PORTS.managerRest, PORTS.managerGrpc]);
    const rest = new ManagerRest(`http://${managerHost.ip}:${PORTS.managerRest}`);

    const scheduler = startProgram(schedulerHost, 'scheduler', {
      verbose: true,
      server: { advertiseIP: schedulerHost.ip, port: PORTS.scheduler, workHome: path.join(schedulerHost.dir, 'scheduler') },
      manager: { addr: `${MANAGER_DNS}:${PORTS.managerGrpc}`, schedulerClusterID: 1, keepAlive: { interval: '1s' } },
      dynConfig: { refreshInterval: '2s' },
      security: security('scheduler', { role: 'scheduler', clusterId: 1 }),
    });
    await waitReady(scheduler, [PORTS.scheduler]);
    await rest.waitActive('scheduler', schedulerHost.ip);

    const seed = startProgram(seedHost, 'dfdaemon', dfdaemonConfig(seedHost, true), { name: 'seed-peer' });
    await waitReady(seed, [PORTS.peerGrpc, PORTS.upload]);
    await rest.waitActive('seed-peer', seedHost.ip);

    workers = [];
    for (const [i, host] of workerHosts.entries()) {
      const containerd = containerds[i];
      const dfdaemon = startProgram(host, 'dfdaemon', dfdaemonConfig(host, false));
      await waitReady(dfdaemon, [PORTS.proxy, PORTS.peerGrpc, PORTS.upload]);
      // dfinit writes hosts.toml into containerd's registry config_path (read from config.toml).
      const dfinitConfig = path.join(host.dir, 'dfinit.yaml');
      fs.writeFileSync(
        dfinitConfig,
        JSON.stringify({
          proxy: { addr: `http://127.0.0.1:${PORTS.proxy}` },
          containerRuntime: {
            containerd: {
              configPath: containerd.configFile,
              registries: [5000, 5001].map((port) => ({ hostNamespace: `${REGISTRY}:${port}`, serverAddr: `http://${REGISTRY}:${port}`, capabilities: ['pull', 'resolve'] })),
            },
          },
        }),
      );
      const init = await runProgram(host, 'dfinit', ['--config', dfinitConfig], { allowFailure: true });
      if (init.code !== 0) throw new Error(`dfinit failed on ${host.name} (exit ${init.code}):\n${init.stderr}${init.stdout}`);
      for (const port of [5000, 5001]) {
        const hostsToml = path.join(containerd.hostsDir, `${REGISTRY}:${port}`, 'hosts.toml');
        if (!fs.existsSync(hostsToml)) throw new Error(`dfinit did not write ${hostsToml}`);
      }
      workers.push({ host, containerd, dfdaemon });
    }
    // Give the peers' first ListSchedulers/AnnounceHost a moment to land.
    await new Promise((r) => setTimeout(r, 1000));
  });

  afterAll(async () => {
    await NetnsLab.teardownAll();
  });

  const worker = (i: number): Worker => {
    const w = workers[i];
    if (!w) throw new Error(`worker ${i} was not set up`);
    return w;
  };

  it('dfinit points containerd at the local proxy with the origin as server', () => {
    const toml = fs.readFileSync(path.join(worker(0).containerd.hostsDir, `${REGISTRY}:5000`, 'hosts.toml'), 'utf8');
    expect(toml).toContain(`server = "http://${REGISTRY}:5000"`);
    expect(toml).toContain(`[host."http://127.0.0.1:${PORTS.proxy}"]`);
  });

  it('first pull goes back to source once, through the seed peer, and the layers match', async () => {
    const mark = origin.mark();
    const pull = await worker(0).containerd.pull(ref, { timeoutMs: PULL_TIMEOUT_MS });
    await worker(0).containerd.verifyImage(ref, image);
    // Each layer left the origin once (the seed peer may use several range requests).
    expect(origin.notServedOnce(image.layers, mark)).toEqual([]);
    const layerClients = new Set(origin.blobGets({ since: mark }).filter((r) => layerDigests().some((d) => r.uri.includes(d))).map((r) => r.client));
    expect(layerClients).toEqual(new Set([seedHost.ip]));
    console.log(`mirror: back-to-source pull ${(image.layerBytes / 2 ** 20).toFixed(1)} MiB on worker-1: ${pull.ms} ms`);
  });

  it('after image rm + content removal the re-pull is a local cache hit (no origin blob GET)', async () => {
    await worker(0).containerd.removeImage(ref, image);
    const mark = origin.mark();
    const pull = await worker(0).containerd.pull(ref, { timeoutMs: PULL_TIMEOUT_MS });
    await worker(0).containerd.verifyImage(ref, image);
    expect(origin.blobGets({ since: mark }).filter((r) => layerDigests().some((d) => r.uri.includes(d)))).toEqual([]);
    console.log(`mirror: local-cache-hit pull on worker-1: ${pull.ms} ms`);
  });

  it('a second worker is served by peers (no origin blob GET)', async () => {
    const mark = origin.mark();
    const pull = await worker(1).containerd.pull(ref, { timeoutMs: PULL_TIMEOUT_MS });
    await worker(1).containerd.verifyImage(ref, image);
    expect(origin.blobGets({ since: mark }).filter((r) => layerDigests().some((d) => r.uri.includes(d)))).toEqual([]);
    console.log(`mirror: remote-peer-hit pull on worker-2: ${pull.ms} ms`);
  });

  it('with the worker dfdaemon stopped the pull falls back to the origin server in hosts.toml', async () => {
    const w = worker(1);
    await w.dfdaemon.process.stop();
    await w.containerd.removeImage(ref, image);
    const mark = origin.mark();
    const pull = await w.containerd.pull(ref, { timeoutMs: PULL_TIMEOUT_MS });
    await w.containerd.verifyImage(ref, image);
    const gets = origin.blobGets({ since: mark }).filter((r) => layerDigests().some((d) => r.uri.includes(d)));
    expect(new Set(gets.map((r) => r.client))).toEqual(new Set([w.host.ip]));
    expect(gets).toHaveLength(image.layers.length);
    console.log(`mirror: fallback pull with dfdaemon stopped on worker-2: ${pull.ms} ms`);
  });

  it('the private registry pulls with credentials through the proxy and fails cleanly without', async () => {
    const w = worker(0);
    const denied = await w.containerd.pull(privateRef, { allowFailure: true, timeoutMs: 60_000 });
    expect(denied.ok).toBe(false);
    expect(denied.output.stderr).toMatch(/401|unauthorized/i);
    expect(await w.containerd.images()).not.toContain(privateRef);

    const mark = privateOrigin.mark();
    await w.containerd.pull(privateRef, { user: `${CREDS.username}:${CREDS.password}`, timeoutMs: PULL_TIMEOUT_MS });
    await w.containerd.verifyImage(privateRef, privateImage);
    const layer = privateImage.layers[0];
    if (!layer) throw new Error('private image has no layer');
    expect(privateOrigin.notServedOnce([layer], mark)).toEqual([]);
    // Fetched by the seed peer with the client's credentials, not by the worker itself.
    expect(new Set(privateOrigin.blobGets({ since: mark, digest: layer.digest }).map((r) => r.client))).toEqual(new Set([seedHost.ip]));
  });

  it('the default-deny proxy refused nothing containerd sent, and refuses a neighbour relaying through it', async () => {
    const w = worker(0);
    const refusals = fs
      .readFileSync(w.dfdaemon.process.logFile, 'utf8')
      .split('\n')
      .filter((line) => line.includes('proxy: refused request'));
    expect(refusals).toEqual([]);

    // From another host on the node network: an absolute-URI POST to the manager, and a registry header naming it.
    const proxyUrl = `http://${w.host.ip}:${PORTS.proxy}`;
    const relay = await seedHost.exec('curl', ['-s', '-w', '\n%{http_code}', '-x', proxyUrl, '-X', 'POST', '-d', '{}', `http://${MANAGER_DNS}:${PORTS.managerRest}/api/v1/users/signup`]);
    expect(relay.stdout.trim().split('\n').pop()).toBe('403');
    expect(relay.stdout).toContain('not in proxy.whiteList');
    const byHeader = await seedHost.exec('curl', ['-s', '-w', '\n%{http_code}', '-H', `X-Dragonfly-Registry: http://${MANAGER_DNS}:${PORTS.managerRest}`, `${proxyUrl}/v2/`]);
    expect(byHeader.stdout.trim().split('\n').pop()).toBe('403');
    const lines = fs
      .readFileSync(w.dfdaemon.process.logFile, 'utf8')
      .split('\n')
      .filter((line) => line.includes('proxy: refused request'));
    expect(lines).toHaveLength(2);
    for (const line of lines) expect(line).toContain(`"client":"${seedHost.ip}:`);
  });
});
