/**
 * A containerd per lab host: own config, root/state dirs under the host's work dir, own gRPC
 * socket, in the host's network namespace. The CRI plugin is disabled (nothing here runs pods),
 * but its `registry.config_path` is kept in config.toml because that is what dfinit reads and
 * edits; `ctr --hosts-dir <that dir>` then honours the hosts.toml files dfinit writes.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { run, type RunResult } from './exec';
import type { ManagedProcess } from './exec';
import type { NetnsHost } from './netns-lab';
import type { TestImage } from './oci-image';

export const K8S_NAMESPACE = 'k8s.io';

export interface PullOptions {
  /** user:password for the registry. */
  readonly user?: string;
  /** Fail the pull after this long (default 5 min). */
  readonly timeoutMs?: number;
  /** Resolve with the failure instead of throwing. */
  readonly allowFailure?: boolean;
  /** Pass --plain-http (default true; false for an HTTPS origin). */
  readonly plainHttp?: boolean;
  /** Use this hosts dir instead of config_path (e.g. an empty one for a direct pull). */
  readonly hostsDir?: string;
}

export interface PullResult {
  readonly ok: boolean;
  /** Wall time of `ctr image pull` (fetch + unpack). */
  readonly ms: number;
  readonly output: RunResult;
}

export class ContainerdHost {
  private constructor(
    readonly host: NetnsHost,
    readonly dir: string,
    readonly socket: string,
    readonly configFile: string,
    /** registry.config_path: where hosts.toml files live (certs.d). */
    readonly hostsDir: string,
    readonly snapshotter: string,
    readonly process: ManagedProcess,
    /** CA bundle ctr trusts for HTTPS registries (Go reads SSL_CERT_FILE). */
    readonly caBundle: string | undefined,
  ) {}

  static async start(host: NetnsHost, opts: { snapshotter?: string; caBundle?: string } = {}): Promise<ContainerdHost> {
    for (const bin of ['/usr/bin/containerd', '/usr/bin/ctr']) {
      if (!fs.existsSync(bin)) throw new Error(`${bin} is not installed (run scripts/e2e/install-deps.sh)`);
    }
    const dir = path.join(host.dir, 'containerd');
    const hostsDir = path.join(dir, 'certs.d');
    fs.mkdirSync(hostsDir, { recursive: true });
    const socket = path.join(dir, 'containerd.sock');
    if (socket.length > 100) throw new Error(`containerd socket path too long for a unix socket: ${socket}`);
    const snapshotter = opts.snapshotter ?? ((await overlaySupported(dir)) ? 'overlayfs' : 'native');
    const configFile = path.join(dir, 'config.toml');
    const q = (s: string) => JSON.stringify(s);
    fs.writeFileSync(
      configFile,
      [
        'version = 2',
        `root = ${q(path.join(dir, 'root'))}`,
        `state = ${q(path.join(dir, 'state'))}`,
        'disabled_plugins = ["io.containerd.grpc.v1.cri", "io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.aufs", "io.containerd.internal.v1.tracing", "io.containerd.tracing.processor.v1.otlp"]',
        '',
        '[grpc]',
        `  address = ${q(socket)}`,
        '[ttrpc]',
        `  address = ${q(`${socket}.ttrpc`)}`,
        '[debug]',
        '  address = ""',
        '  level = "info"',
        '[metrics]',
        '  address = ""',
        '',
        '[plugins]',
        '  [plugins."io.containerd.internal.v1.opt"]',
        `    path = ${q(path.join(dir, 'opt'))}`,
        '  [plugins."io.containerd.grpc.v1.cri".containerd]',
        `    snapshotter = ${q(snapshotter)}`,
        '  [plugins."io.containerd.grpc.v1.cri".registry]',
        `    config_path = ${q(hostsDir)}`,
        '',
      ].join('\n'),
    );
    // `ip netns exec` mounts a fresh /sys, which hides the cgroup hierarchies runc needs to run
    // containers (image mode): mount the same hierarchies again in containerd's mount namespace.
    // Process-mode runs only pull, so a failure there is a warning, not fatal.
    const proc = host.start('containerd', 'sh', [
      '-c',
      `{ ${cgroupMountScript()} ; } || echo "warning: no cgroup hierarchy for runc: containers cannot run here" >&2; exec "$@"`,
      'containerd',
      '/usr/bin/containerd',
      '--config',
      configFile,
    ]);
    const c = new ContainerdHost(host, dir, socket, configFile, hostsDir, snapshotter, proc, opts.caBundle);
    await proc.waitForLog(/containerd successfully booted/, 20_000);
    await c.ctr(['version']);
    return c;
  }

  /** Runs `ctr --address <sock> -n k8s.io ...` inside the host's namespace. */
  ctr(args: readonly string[], opts: { timeoutMs?: number; allowFailure?: boolean } = {}): Promise<RunResult> {
    return this.host.exec('/usr/bin/ctr', ['--address', this.socket, '--namespace', K8S_NAMESPACE, ...args], { ...opts, env: this.ctrEnv() });
  }

  private ctrEnv(): NodeJS.ProcessEnv {
    return this.caBundle ? { ...process.env, SSL_CERT_FILE: this.caBundle } : process.env;
  }

  /**
   * `ctr image pull --plain-http --hosts-dir <certs.d> <ref>`, timed. ctr's --debug log (kept in
   * logs/ctr-pull.log) has whole-second timestamps only, so per-layer times come from the
   * serving side (origin request log) instead.
   */
  async pull(ref: string, opts: PullOptions = {}): Promise<PullResult> {
    const args = ['--debug', 'image', 'pull', '--hosts-dir', opts.hostsDir ?? this.hostsDir, '--snapshotter', this.snapshotter];
    if (opts.plainHttp ?? true) args.push('--plain-http');
    if (opts.user) args.push('--user', opts.user);
    args.push(ref);
    const started = performance.now();
    const output = await this.host.exec('/usr/bin/ctr', ['--address', this.socket, '--namespace', K8S_NAMESPACE, ...args], {
      timeoutMs: opts.timeoutMs ?? 300_000,
      allowFailure: true,
      env: this.ctrEnv(),
    });
    const ms = Math.round(performance.now() - started);
    const ok = output.code === 0;
    fs.appendFileSync(path.join(this.host.dir, 'logs', 'ctr-pull.log'), `# ${new Date().toISOString()} pull ${ref} -> exit ${output.code} in ${ms} ms\n${output.stderr}\n`);
    if (!ok && !opts.allowFailure) throw new Error(`${this.host.name}: pull ${ref} failed in ${ms} ms:\n${output.stderr.slice(-4000)}`);
    return { ok, ms, output };
  }

  /**
   * `ctr images import` of image archives (docker-archive or OCI), unpacked for this snapshotter;
   * throws unless every expected reference is then present.
   */
  async importImages(archives: readonly string[], expectRefs: readonly string[], timeoutMs = 300_000): Promise<void> {
    for (const archive of archives) {
      await this.ctr(['images', 'import', '--snapshotter', this.snapshotter, archive], { timeoutMs });
    }
    const have = await this.images();
    const missing = expectRefs.filter((r) => !have.includes(r));
    if (missing.length > 0) throw new Error(`${this.host.name}: after importing ${archives.join(', ')}, no ${missing.join(', ')} (have: ${have.join(', ') || 'none'}); rebuild with scripts/images/build.sh`);
  }

  /** Digests of every blob in this containerd's content store. */
  async contentDigests(): Promise<Set<string>> {
    const r = await this.ctr(['content', 'ls', '--quiet']);
    return new Set(r.stdout.split('\n').map((l) => l.trim()).filter((l) => l.startsWith('sha256:')));
  }

  /** Image references known to this containerd. */
  async images(): Promise<string[]> {
    const r = await this.ctr(['images', 'ls', '--quiet']);
    return r.stdout.split('\n').map((l) => l.trim()).filter(Boolean);
  }

  /**
   * Removes the image and every blob of it (manifest, config, layers) so the next pull really
   * fetches again: `images rm --sync` lets the GC collect unreferenced content and snapshots,
   * then any blob still present is deleted explicitly. Throws if a blob survives.
   */
  async removeImage(ref: string, image: TestImage): Promise<void> {
    await this.ctr(['images', 'rm', '--sync', ref], { allowFailure: true });
    const blobs = [image.manifest.digest, image.config.digest, ...image.layers.map((l) => l.digest)];
    const left = [...(await this.contentDigests())].filter((d) => blobs.includes(d));
    if (left.length > 0) await this.ctr(['content', 'rm', ...left], { allowFailure: true });
    const still = [...(await this.contentDigests())].filter((d) => blobs.includes(d));
    if (still.length > 0) throw new Error(`${this.host.name}: blobs survived removal: ${still.join(', ')}`);
    if ((await this.images()).includes(ref)) throw new Error(`${this.host.name}: image ${ref} survived removal`);
  }

  /** Throws unless the image is present and every pushed blob is in the store with its size. */
  async verifyImage(ref: string, image: TestImage): Promise<void> {
    if (!(await this.images()).includes(ref)) throw new Error(`${this.host.name}: image ${ref} not present after pull`);
    const r = await this.ctr(['content', 'ls']);
    const sizes = new Map<string, string>();
    for (const line of r.stdout.split('\n').slice(1)) {
      const [digest, size] = line.trim().split(/\s+/);
      if (digest && size) sizes.set(digest, size);
    }
    for (const blob of [image.manifest, image.config, ...image.layers]) {
      if (!sizes.has(blob.digest)) throw new Error(`${this.host.name}: blob ${blob.digest} missing after pulling ${ref}`);
    }
    // Content is verified against its digest by containerd as it is written; `images check`
    // also confirms the image is complete (all blobs available).
    const check = await this.ctr(['images', 'check']);
    const row = check.stdout.split('\n').find((l) => l.startsWith(`${ref} `));
    if (!row || !/complete \(\d+\/\d+\)/.test(row)) throw new Error(`${this.host.name}: image ${ref} incomplete: ${row ?? 'not listed'}`);
  }

  async stop(): Promise<void> {
    await this.process.stop();
  }
}

/**
 * Shell commands that mount this machine's cgroup hierarchies (v1, hybrid or v2, as
 * /proc/self/mountinfo lists them under /sys/fs/cgroup) again: a v1 hierarchy mounted with the
 * same controllers is the same hierarchy, so runc's cgroups are the machine's.
 */
export function cgroupMountScript(mountinfo = fs.readFileSync('/proc/self/mountinfo', 'utf8')): string {
  const cmds: string[] = [];
  for (const line of mountinfo.split('\n')) {
    const [left, right] = line.split(' - ');
    if (!left || !right) continue;
    const mountPoint = left.split(' ')[4];
    const [fstype, , superOpts = ''] = right.split(' ');
    if (!mountPoint || (mountPoint !== '/sys/fs/cgroup' && !mountPoint.startsWith('/sys/fs/cgroup/'))) continue;
    if (!/^[A-Za-z0-9_/.,=-]+$/.test(mountPoint + superOpts)) continue;
    const opts = superOpts.split(',').filter((o) => o !== 'rw' && o !== 'ro').join(',');
    if (fstype === 'tmpfs') cmds.push(`mount -t tmpfs -o mode=755 tmpfs ${mountPoint}`);
    else if (fstype === 'cgroup2') cmds.push(`mkdir -p ${mountPoint} && mount -t cgroup2 cgroup2 ${mountPoint}`);
    else if (fstype === 'cgroup') cmds.push(`mkdir -p ${mountPoint} && mount -t cgroup -o ${opts.includes('name=') && !opts.split(',').some((o) => !o.startsWith('name=') && o !== 'none') ? `none,${opts}` : opts} cgroup ${mountPoint}`);
  }
  return cmds.length > 0 ? cmds.join(' && ') : 'false';
}

/** Tries an overlay mount under dir (containerd's overlayfs snapshotter needs it). */
async function overlaySupported(dir: string): Promise<boolean> {
  const base = path.join(dir, '.overlay-probe');
  const [lower, upper, work, merged] = ['lower', 'upper', 'work', 'merged'].map((d) => path.join(base, d));
  for (const d of [lower, upper, work, merged]) fs.mkdirSync(d, { recursive: true });
  const r = await run('mount', ['-t', 'overlay', 'overlay', '-o', `lowerdir=${lower},upperdir=${upper},workdir=${work}`, merged], {
    allowFailure: true,
  });
  if (r.code === 0) await run('umount', [merged], { allowFailure: true });
  fs.rmSync(base, { recursive: true, force: true });
  return r.code === 0;
}
