/**
 * A lab of "hosts" on one machine: each host is a Linux network namespace with a veth pair to a
 * bridge in the root namespace, on a private /24 picked per run. Names carry a run id so stale
 * or parallel runs never collide; `scripts/e2e/cleanup.sh` removes whatever a crashed run left
 * (everything starts with LAB_PREFIX).
 *
 * Name resolution: `ip netns exec` bind-mounts /etc/netns/<ns>/* over /etc, so each host gets
 * its own hosts file mapping service DNS names (e.g. dragonfly-manager.cluster-a.svc.cluster.local)
 * to the lab host that runs the service.
 */
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import { ManagedProcess, run, type RunOptions, type RunResult } from './exec';

export const LAB_PREFIX = 'dfe2e';
/** Interface names are limited to 15 characters; this short prefix marks ours. */
const IF_PREFIX = 'dfe';
const SUBNET_BASE = '10.231';

export interface LabOptions {
  /** Parent of the run's work dir (default: <repo>/.e2e-work, or $DF_E2E_WORKDIR). */
  readonly workRoot?: string;
}

export interface ShapeOptions {
  /** Egress rate of the host's link, e.g. 200 for 200 Mbit/s. */
  readonly rateMbit: number;
  /** Token bucket size in bytes (default: rate / 100, at least 64 KiB). */
  readonly burstBytes?: number;
}

export class NetnsHost {
  readonly processes: ManagedProcess[] = [];

  constructor(
    readonly lab: NetnsLab,
    /** Short name inside the lab, e.g. "origin", "worker-a1". */
    readonly name: string,
    /** Network namespace name (globally unique). */
    readonly ns: string,
    readonly ip: string,
    /** Root-namespace side of the veth pair. */
    readonly vethOutside: string,
    /** This host's scratch dir under the run's work dir. */
    readonly dir: string,
  ) {}

  /** Runs a command inside this host's namespace. */
  exec(cmd: string, args: readonly string[], opts?: RunOptions): Promise<RunResult> {
    return run('ip', ['netns', 'exec', this.ns, cmd, ...args], opts);
  }

  /**
   * Starts a long-running process in this namespace, logging to <dir>/logs/<name>.log. It also
   * gets its own UTS namespace with the lab host's name as hostname, the way a pod with
   * hostNetwork sees its node's name (services derive host ids from the hostname).
   */
  start(name: string, cmd: string, args: readonly string[], opts: { env?: NodeJS.ProcessEnv; cwd?: string } = {}): ManagedProcess {
    const wrapped = ['netns', 'exec', this.ns, 'unshare', '--uts', '--', 'sh', '-c', 'hostname "$0" && exec "$@"', this.name, cmd, ...args];
    const proc = ManagedProcess.start(`${this.name}/${name}`, 'ip', wrapped, {
      env: opts.env,
      cwd: opts.cwd,
      logFile: path.join(this.dir, 'logs', `${name}.log`),
    });
    this.processes.push(proc);
    return proc;
  }

  /** Waits until something in this namespace accepts TCP connections on ip:port. */
  async waitForPort(port: number, timeoutMs = 20_000, ip = this.ip): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      // The root namespace reaches every host through the bridge, so a plain connect works.
      if (await canConnect(ip, port)) return;
      if (Date.now() > deadline) throw new Error(`${this.name}: nothing listening on ${ip}:${port} after ${timeoutMs} ms`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  /**
   * Limits this host's egress with a token bucket (tbf). The kernel here has tbf and htb but
   * not netem, so only rate can be shaped: added delay is not available.
   */
  async shape(opts: ShapeOptions): Promise<void> {
    const bytesPerSec = (opts.rateMbit * 1_000_000) / 8;
    const burst = opts.burstBytes ?? Math.max(64 * 1024, Math.round(bytesPerSec / 100));
    await this.exec('tc', ['qdisc', 'replace', 'dev', 'eth0', 'root', 'tbf', 'rate', `${opts.rateMbit}mbit`, 'burst', String(burst), 'latency', '50ms']);
  }

  async unshape(): Promise<void> {
    await this.exec('tc', ['qdisc', 'del', 'dev', 'eth0', 'root'], { allowFailure: true });
  }

  /** Bytes this host has sent on its link (interface tx counter inside the namespace). */
  async txBytes(): Promise<number> {
    const r = await this.exec('cat', ['/sys/class/net/eth0/statistics/tx_bytes']);
    return Number(r.stdout.trim());
  }

  async stopProcesses(): Promise<void> {
    await Promise.all(this.processes.map((p) => p.stop()));
  }
}

export class NetnsLab {
  /** Labs of this process not yet torn down (for afterAll when setup itself failed). */
  private static readonly active = new Set<NetnsLab>();
  readonly hosts = new Map<string, NetnsHost>();
  private readonly dnsNames = new Map<string, string>();
  private torndown = false;
  private readonly cleanups: Array<() => Promise<void>> = [];

  private constructor(
    readonly runId: string,
    readonly workDir: string,
    readonly bridge: string,
    /** e.g. "10.231.57" */
    readonly subnetPrefix: string,
  ) {}

  /** The bridge's address: the root namespace as seen from every host. */
  get gatewayIp(): string {
    return `${this.subnetPrefix}.1`;
  }

  get cidr(): string {
    return `${this.subnetPrefix}.0/24`;
  }

  static async create(opts: LabOptions = {}): Promise<NetnsLab> {
    await assertPrerequisites();
    const runId = crypto.randomBytes(3).toString('hex');
    const workRoot = opts.workRoot ?? process.env.DF_E2E_WORKDIR ?? path.resolve(__dirname, '../../../.e2e-work');
    const workDir = path.join(workRoot, runId);
    fs.mkdirSync(workDir, { recursive: true });
    const subnetPrefix = await pickFreeSubnet();
    const bridge = `${IF_PREFIX}${runId}br`;
    const lab = new NetnsLab(runId, workDir, bridge, subnetPrefix);
    NetnsLab.active.add(lab);
    try {
      await run('ip', ['link', 'add', bridge, 'type', 'bridge']);
      await run('ip', ['addr', 'add', `${lab.gatewayIp}/24`, 'dev', bridge]);
      await run('ip', ['link', 'set', bridge, 'up']);
      // Hosts with Docker set FORWARD's policy to DROP; with br_netfilter that would also drop
      // traffic between the lab's hosts on the bridge.
      if ((await run('sh', ['-c', 'command -v iptables'], { allowFailure: true })).code === 0) {
        const rule = ['FORWARD', '-i', bridge, '-o', bridge, '-j', 'ACCEPT'];
        await run('iptables', ['-I', ...rule]);
        lab.onTeardown(async () => {
          await run('iptables', ['-D', ...rule], { allowFailure: true });
        });
      }
    } catch (e) {
      await lab.teardown();
      throw e;
    }
    return lab;
  }

  /** Adds a host (namespace + veth + address + loopback + hosts file). */
  async addHost(name: string): Promise<NetnsHost> {
    if (this.hosts.has(name)) throw new Error(`host ${name} already exists in lab ${this.runId}`);
    if (!/^[a-z0-9-]{1,24}$/.test(name)) throw new Error(`host name ${JSON.stringify(name)}: use [a-z0-9-], at most 24 chars`);
    const index = this.hosts.size + 10;
    if (index > 250) throw new Error('lab is full (240 hosts)');
    const ns = `${LAB_PREFIX}-${this.runId}-${name}`;
    const vethOutside = `${IF_PREFIX}${this.runId}${index.toString(16)}`;
    const vethInside = `${vethOutside}i`;
    const ip = `${this.subnetPrefix}.${index}`;
    const dir = path.join(this.workDir, name);
    fs.mkdirSync(path.join(dir, 'logs'), { recursive: true });
    const host = new NetnsHost(this, name, ns, ip, vethOutside, dir);
    this.hosts.set(name, host);
    await run('ip', ['netns', 'add', ns]);
    fs.mkdirSync(`/etc/netns/${ns}`, { recursive: true });
    this.writeHostsFile(host);
    // A resolver that fails fast: the lab has no DNS server, only hosts files.
    fs.writeFileSync(`/etc/netns/${ns}/resolv.conf`, 'nameserver 127.0.0.1\noptions timeout:1 attempts:1\n');
    await run('ip', ['link', 'add', vethOutside, 'type', 'veth', 'peer', 'name', vethInside]);
    await run('ip', ['link', 'set', vethOutside, 'master', this.bridge]);
    await run('ip', ['link', 'set', vethOutside, 'up']);
    await run('ip', ['link', 'set', vethInside, 'netns', ns]);
    await host.exec('ip', ['link', 'set', vethInside, 'name', 'eth0']);
    await host.exec('ip', ['addr', 'add', `${ip}/24`, 'dev', 'eth0']);
    await host.exec('ip', ['link', 'set', 'eth0', 'up']);
    await host.exec('ip', ['link', 'set', 'lo', 'up']);
    await host.exec('ip', ['route', 'add', 'default', 'via', this.gatewayIp]);
    return host;
  }

  host(name: string): NetnsHost {
    const h = this.hosts.get(name);
    if (!h) throw new Error(`no host ${name} in lab ${this.runId}`);
    return h;
  }

  /** Maps a DNS name to an IP in every host's hosts file (present and future hosts). */
  addDnsName(name: string, ip: string): void {
    this.dnsNames.set(name, ip);
    for (const h of this.hosts.values()) this.writeHostsFile(h);
  }

  /** Registers extra teardown work (run before namespaces are deleted, in reverse order). */
  onTeardown(fn: () => Promise<void>): void {
    this.cleanups.push(fn);
  }

  /**
   * Makes a root-namespace TCP service that listens on loopback only (MariaDB, Redis) reachable
   * from the hosts at gatewayIp:port. Returns the port on the gateway.
   */
  async forwardFromGateway(targetPort: number, targetHost = '127.0.0.1', listenPort = 0): Promise<number> {
    const sockets = new Set<net.Socket>();
    const server = net.createServer((client) => {
      const upstream = net.connect(targetPort, targetHost);
      for (const s of [client, upstream]) {
        sockets.add(s);
        s.once('close', () => sockets.delete(s));
      }
      client.pipe(upstream).pipe(client);
      const close = () => {
        client.destroy();
        upstream.destroy();
      };
      client.on('error', close);
      upstream.on('error', close);
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(listenPort, this.gatewayIp, () => resolve());
    });
    this.onTeardown(
      () =>
        new Promise<void>((resolve) => {
          // close() waits for open connections; end them so teardown cannot hang on a client.
          server.close(() => resolve());
          for (const s of sockets) s.destroy();
        }),
    );
    const addr = server.address();
    if (addr === null || typeof addr === 'string') throw new Error('forwarder has no TCP address');
    return addr.port;
  }

  /**
   * Counts bytes crossing the bridge from any of `from` to any of `to` with TCP source port
   * `sourcePort` (e.g. the piece-upload port), with iptables counters in a chain of this run
   * (bridged traffic goes through FORWARD because br_netfilter is on).
   */
  async countTraffic(label: string, from: readonly string[], to: readonly string[], sourcePort: number): Promise<() => Promise<number>> {
    const chain = `${IF_PREFIX}${this.runId}-${label}`.slice(0, 28);
    const sysctl = await run('sysctl', ['-n', 'net.bridge.bridge-nf-call-iptables'], { allowFailure: true });
    if (sysctl.stdout.trim() !== '1') throw new Error('traffic counting needs br_netfilter with net.bridge.bridge-nf-call-iptables=1');
    await run('iptables', ['-N', chain]);
    this.onTeardown(async () => {
      await run('iptables', ['-D', 'FORWARD', '-j', chain], { allowFailure: true });
      await run('iptables', ['-F', chain], { allowFailure: true });
      await run('iptables', ['-X', chain], { allowFailure: true });
    });
    for (const src of from) for (const dst of to) await run('iptables', ['-A', chain, '-s', src, '-d', dst, '-p', 'tcp', '--sport', String(sourcePort)]);
    await run('iptables', ['-I', 'FORWARD', '1', '-j', chain]);
    return async () => {
      const out = (await run('iptables', ['-L', chain, '-v', '-x', '-n'])).stdout;
      let bytes = 0;
      for (const line of out.split('\n').slice(2)) {
        const cols = line.trim().split(/\s+/);
        if (cols.length > 2) bytes += Number(cols[1]);
      }
      return bytes;
    };
  }

  /** Kills every process, deletes namespaces, veths, the bridge and /etc/netns dirs. Idempotent. */
  async teardown(opts: { keepWorkDir?: boolean } = {}): Promise<void> {
    if (this.torndown) return;
    this.torndown = true;
    NetnsLab.active.delete(this);
    const errors: string[] = [];
    // Processes first: a running manager would hold locks on the database a cleanup drops.
    await Promise.all([...this.hosts.values()].map((h) => h.stopProcesses().catch((e: unknown) => errors.push(String(e)))));
    for (const fn of this.cleanups.reverse()) {
      // Bounded: a stuck cleanup must not keep namespaces and processes alive.
      let timer: NodeJS.Timeout | undefined;
      const timeout = new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error('cleanup step timed out after 30 s')), 30_000);
      });
      await Promise.race([fn(), timeout]).catch((e: unknown) => errors.push(String(e)));
      clearTimeout(timer);
    }
    for (const h of this.hosts.values()) {
      // Anything still inside the namespace (children that escaped their group) dies with it.
      const pids = await run('ip', ['netns', 'pids', h.ns], { allowFailure: true });
      for (const pid of pids.stdout.split(/\s+/).filter(Boolean)) {
        try {
          process.kill(Number(pid), 'SIGKILL');
        } catch {
          /* gone */
        }
      }
      await run('ip', ['netns', 'del', h.ns], { allowFailure: true });
      await run('ip', ['link', 'del', h.vethOutside], { allowFailure: true });
      fs.rmSync(`/etc/netns/${h.ns}`, { recursive: true, force: true });
    }
    await run('ip', ['link', 'del', this.bridge], { allowFailure: true });
    if (!(opts.keepWorkDir ?? process.env.DF_E2E_KEEP === '1')) {
      // containerd may leave overlay mounts under its root; unmount before deleting.
      await unmountBelow(this.workDir);
      fs.rmSync(this.workDir, { recursive: true, force: true });
    }
    if (errors.length > 0) throw new Error(`lab ${this.runId} teardown: ${errors.join('; ')}`);
  }

  /** Tears down every lab this process created and has not torn down yet. */
  static async teardownAll(): Promise<void> {
    const errors: string[] = [];
    for (const lab of [...NetnsLab.active]) await lab.teardown().catch((e: unknown) => errors.push(String(e)));
    if (errors.length > 0) throw new Error(errors.join('\n'));
  }

  private writeHostsFile(host: NetnsHost): void {
    const lines = ['127.0.0.1 localhost', `${host.ip} ${host.name}`];
    for (const h of this.hosts.values()) if (h !== host) lines.push(`${h.ip} ${h.name}`);
    for (const [name, ip] of this.dnsNames) lines.push(`${ip} ${name}`);
    // Rewrite in place (same inode): processes already started in the namespace see the bind
    // mount of this very file, so a rename would leave them with the old content.
    fs.writeFileSync(`/etc/netns/${host.ns}/hosts`, `${lines.join('\n')}\n`);
  }
}

async function assertPrerequisites(): Promise<void> {
  if (process.getuid?.() !== 0) throw new Error('e2e lab needs root (network namespaces, veth, bridge, tc)');
  for (const tool of ['ip', 'tc']) {
    const r = await run('sh', ['-c', `command -v ${tool}`], { allowFailure: true });
    if (r.code !== 0) throw new Error(`e2e lab needs \`${tool}\` (apt-get install iproute2; see scripts/e2e/install-deps.sh)`);
  }
}

async function pickFreeSubnet(): Promise<string> {
  const routes = (await run('ip', ['-4', 'route', 'show'])).stdout;
  const used = new Set<number>();
  for (const m of routes.matchAll(/10\.231\.(\d+)\.0\/24/g)) used.add(Number(m[1]));
  const start = crypto.randomInt(1, 255);
  for (let i = 0; i < 254; i++) {
    const third = ((start + i - 1) % 254) + 1;
    if (!used.has(third)) return `${SUBNET_BASE}.${third}`;
  }
  throw new Error('no free 10.231.x.0/24 subnet: run scripts/e2e/cleanup.sh');
}

async function canConnect(ip: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect({ host: ip, port, timeout: 1000 });
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
    s.once('timeout', () => {
      s.destroy();
      resolve(false);
    });
  });
}

export async function unmountBelow(dir: string): Promise<void> {
  const mounts = fs.readFileSync('/proc/self/mounts', 'utf8').split('\n');
  const targets = mounts
    .map((l) => l.split(' ')[1])
    .filter((t): t is string => t !== undefined && (t === dir || t.startsWith(`${dir}/`)))
    .sort((a, b) => b.length - a.length);
  for (const t of targets) await run('umount', ['-l', t], { allowFailure: true });
}
