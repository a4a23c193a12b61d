/**
 * "kubectl apply" onto the netns lab: every workload of the manifests that runs one of this
 * project's programs becomes processes on lab hosts, with the manifest's own ConfigMap files,
 * commands and env. What the lab maps (and nothing else):
 * - pods: a lab host per pod (its own IP = status.podIP); DaemonSet pods (hostNetwork) run on
 *   the node hosts whose labels match the nodeSelector (status.hostIP = node IP);
 * - Service DNS names → the IP of the pod behind them, in every host's hosts file;
 * - volumes → directories under the pod's dir (hostPath → under the node's dir, and
 *   /etc/containerd → the node's containerd config dir); absolute paths in args and the programs'
 *   path keys (dataDir, workHome, socket, containerd configPath) are rewritten through the mounts
 *   with `<PREFIX>__key=value` env overrides (process mode);
 * - image mode (DF_E2E_MODE=image, what CI runs): each container runs from its image on the pod's
 *   node containerd (`ctr run`), as kubelet would: in the pod host's network namespace and a UTS
 *   namespace named after it, the manifest's command, args and env, its volumes bind-mounted at
 *   their mountPaths (readOnly honoured), the pod host's hosts/resolv.conf, a read-only root filesystem
 *   and dropped capabilities as securityContext asks (ctr has no --user: the image's USER runs); no path rewriting;
 * - third-party workloads are not run: MySQL and Redis are the machine's MariaDB and Redis,
 *   reached through a forwarder on the bridge address; other images (jaeger) are skipped.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { parse as parseYaml } from 'yaml';
import { AbortWait, run, waitFor, type ManagedProcess, type RunResult } from './exec';
import { K8S_NAMESPACE, type ContainerdHost } from './containerd';
import { programMain, type Program } from './dragonfly';
import { programOfCommand, waitTargetsOf, type Container, type ManifestSet, type Workload } from './manifests';
import type { NetnsHost, NetnsLab } from './netns-lab';

export interface LabNode {
  readonly host: NetnsHost;
  readonly labels: Record<string, string>;
  readonly containerd: ContainerdHost;
}

export interface ExternalService {
  /** Port on 127.0.0.1 of the root namespace that stands in for the workload's service. */
  readonly localPort: number;
}

/** The cgroup (under every controller) holding one lab run's containers. */
export function labCgroup(runId: string): string {
  return `dragonfly-e2e-${runId}`;
}

/**
 * How the lab runs the project's containers: `process` starts the compiled programs of this
 * checkout as host processes (fast, for development); `image` runs them from the built images
 * (scripts/images/build.sh) on the nodes' containerd.
 */
export type DeployMode = 'process' | 'image';

/** DF_E2E_MODE (default `process`); anything else is an error, not a silent fallback. */
export function deployModeFromEnv(env: NodeJS.ProcessEnv = process.env): DeployMode {
  const v = env.DF_E2E_MODE ?? 'process';
  if (v !== 'process' && v !== 'image') throw new Error(`DF_E2E_MODE must be "process" or "image", not ${JSON.stringify(v)}`);
  return v;
}

export interface DeployOptions {
  readonly lab: NetnsLab;
  /** Default: deployModeFromEnv(). */
  readonly mode?: DeployMode;
  /** Image mode: the archive holding each image reference, imported into the nodes that run it. */
  readonly imageArchives?: Record<string, string>;
  readonly manifests: ManifestSet;
  readonly nodes: readonly LabNode[];
  /** Third-party workloads by image name prefix (e.g. "mysql", "redis") → a root-ns service. */
  readonly externals: Record<string, ExternalService>;
  /** Image prefixes not run at all (e.g. "jaegertracing/"). */
  readonly skipImages: readonly string[];
  /**
   * What the user does between applying and a pod's start (after its init containers): e.g. create
   * a Secret the manifests reference but leave to the user.
   */
  readonly beforeContainers?: (pod: Pod, deployment: Deployment) => Promise<void>;
  /** Extra env per program (per-run DB names, CA bundles); applied after the manifest's env. */
  readonly programEnv?: Partial<Record<Program, Record<string, string>>>;
}

/** Config keys holding absolute paths, with the schema defaults, per program. */
/** The `security` files (cert-manager Secrets mounted into the pod). */
const SECURITY_FILES = [{ key: ['security', 'caCert'] }, { key: ['security', 'cert'] }, { key: ['security', 'key'] }];

const PATH_KEYS: Record<Program, Array<{ key: string[]; default?: string }>> = {
  dfdaemon: [
    ...SECURITY_FILES,
    { key: ['dataDir'], default: '/var/lib/dragonfly' },
    { key: ['download', 'downloadGRPC', 'unixListen', 'socket'], default: '/var/run/dragonfly/dfdaemon.sock' },
  ],
  manager: [
    { key: ['server', 'workHome'], default: '/var/lib/dragonfly/manager' },
    { key: ['database', 'sqlite', 'file'] },
    ...SECURITY_FILES,
    { key: ['server', 'rest', 'tls', 'cert'] },
    { key: ['server', 'rest', 'tls', 'key'] },
  ],
  // The scheduler keeps no files of its own (server.workHome is a compatibility key; logDir only empty).
  scheduler: [...SECURITY_FILES],
  dfinit: [{ key: ['containerRuntime', 'containerd', 'configPath'], default: '/etc/containerd/config.toml' }],
  dfget: [],
};

const ENV_PREFIX: Record<Program, string> = { manager: 'DFMANAGER', scheduler: 'DFSCHEDULER', dfdaemon: 'DFDAEMON', dfinit: 'DFINIT', dfget: 'DFGET' };

/** The capabilities containerd gives a container by default (what `drop: [ALL]` takes away). */
const DEFAULT_CAPABILITIES = [
  'CAP_CHOWN', 'CAP_DAC_OVERRIDE', 'CAP_FSETID', 'CAP_FOWNER', 'CAP_MKNOD', 'CAP_NET_RAW', 'CAP_SETGID', 'CAP_SETUID',
  'CAP_SETFCAP', 'CAP_SETPCAP', 'CAP_NET_BIND_SERVICE', 'CAP_SYS_CHROOT', 'CAP_KILL', 'CAP_AUDIT_WRITE',
];

export interface RunningContainer {
  readonly name: string;
  readonly program: Program;
  /** Process mode: arguments after the program's main.js. Image mode: the whole command + args. */
  readonly args: readonly string[];
  readonly env: Record<string, string>;
  /** Image mode: the image and the bind mounts (host dir → container path). */
  readonly image?: string;
  readonly binds: ReadonlyArray<{ src: string; dst: string; readOnly: boolean }>;
  /** Image mode: `--read-only` and capability drops, from the container's securityContext. */
  readonly security?: { readonly readOnlyRootFilesystem: boolean; readonly dropAllCapabilities: boolean };
  /** Where the program's path keys (dataDir, workHome, ...) live on this machine, by override name. */
  readonly hostPaths: Record<string, string>;
  process?: ManagedProcess;
  /** Set for Job containers, which run to completion. */
  result?: RunResult;
}

export class Pod {
  readonly containers: RunningContainer[] = [];
  readonly mounts: Array<{ mountPath: string; dir: string }> = [];

  constructor(
    readonly workload: Workload,
    readonly name: string,
    /** The host the pod's processes run on (its own, or the node for hostNetwork). */
    readonly host: NetnsHost,
    readonly node: LabNode | undefined,
    readonly dir: string,
    readonly mode: DeployMode = 'process',
  ) {}

  private runs = 0;

  get ip(): string {
    return this.host.ip;
  }

  /** Maps an absolute path in the pod to the lab directory behind it. */
  mapPath(p: string, mounts: ReadonlyArray<{ mountPath: string; dir: string }> = this.mounts): string {
    const m = [...mounts].sort((a, b) => b.mountPath.length - a.mountPath.length).find((x) => p === x.mountPath || p.startsWith(`${x.mountPath}/`));
    if (m) return path.join(m.dir, path.relative(m.mountPath, p));
    return path.join(this.dir, 'rootfs', p);
  }

  container(name: string): RunningContainer {
    const c = this.containers.find((x) => x.name === name);
    if (!c) throw new Error(`pod ${this.name} has no container ${name}`);
    return c;
  }

  /** Starts (or restarts) a long-running container with its recorded command and env. */
  start(c: RunningContainer): ManagedProcess {
    if (this.mode === 'image') {
      // SIGTERM to `ctr run` is forwarded to the container's PID 1, as kubelet's stop would send it.
      c.process = this.host.start(`${this.name}.${c.name}`, '/usr/bin/ctr', this.ctrRunArgs(c));
      return c.process;
    }
    c.process = this.host.start(`${this.name}.${c.name}`, process.execPath, [programMain(c.program), ...c.args], {
      env: { ...process.env, ...c.env },
      cwd: this.dir,
    });
    return c.process;
  }

  /** Runs a container to completion (init containers, Jobs). */
  async runToCompletion(c: RunningContainer, timeoutMs: number): Promise<RunResult> {
    if (this.mode === 'image') return this.host.exec('/usr/bin/ctr', this.ctrRunArgs(c), { timeoutMs, allowFailure: true });
    return this.host.exec(process.execPath, [programMain(c.program), ...c.args], { env: { ...process.env, ...c.env }, timeoutMs, allowFailure: true });
  }

  /**
   * The pod sandbox (what kubelet's pause container is): a process on the pod's host in its own
   * UTS namespace with hostname = the lab host's name, as in process mode; containers join its
   * UTS namespace and the host's network namespace.
   */
  async ensureSandbox(): Promise<void> {
    if (this.mode !== 'image' || this.sandbox?.running) return;
    const pause = this.host.start(`${this.name}.pause`, 'sleep', ['infinity']);
    this.sandbox = pause;
    // `ip netns exec`, unshare and sh exec in turn: the spawned pid becomes `sleep` once set up.
    await waitFor(`${this.name} sandbox`, async () => {
      if (!pause.running) throw new AbortWait(new Error(`${this.name}: the pod sandbox exited:\n${pause.log()}`));
      try {
        return fs.readFileSync(`/proc/${pause.pid}/comm`, 'utf8').trim() === 'sleep' ? true : undefined;
      } catch {
        return undefined;
      }
    }, 10_000, 20);
  }

  private sandbox: ManagedProcess | undefined;

  private ctrRunArgs(c: RunningContainer): string[] {
    const containerd = this.node?.containerd;
    if (!containerd) throw new Error(`pod ${this.name}: image mode needs the pod on a node with containerd`);
    if (!c.image) throw new Error(`pod ${this.name}: container ${c.name} has no image`);
    const sandbox = this.sandbox;
    if (!sandbox?.running) throw new Error(`pod ${this.name}: no pod sandbox (ensureSandbox first)`);
    // runc keeps a container's state and cgroup by ID: both under this lab run's own names, so
    // a killed run's leftovers never collide with the next run and teardown finds them.
    const id = `${this.name}.${c.name}.${++this.runs}`.replace(/[^A-Za-z0-9_.-]/g, '-');
    const binds = [
      ...c.binds,
      // `ip netns exec` gives host processes these two files; kubelet writes a pod's own.
      { src: `/etc/netns/${this.host.ns}/hosts`, dst: '/etc/hosts', readOnly: true },
      { src: `/etc/netns/${this.host.ns}/resolv.conf`, dst: '/etc/resolv.conf', readOnly: true },
    ];
    return [
      '--address', containerd.socket, '--namespace', K8S_NAMESPACE,
      'run', '--rm', '--snapshotter', containerd.snapshotter,
      '--runc-root', path.join(containerd.dir, 'runc'),
      '--cgroup', `/${labCgroup(this.host.lab.runId)}/${id}`,
      '--with-ns', `network:/run/netns/${this.host.ns}`,
      '--with-ns', `uts:/proc/${sandbox.pid}/ns/uts`,
      ...binds.flatMap((b) => ['--mount', `type=bind,src=${b.src},dst=${b.dst},options=rbind:${b.readOnly ? 'ro' : 'rw'}`]),
      // As kubelet would: the image's root filesystem read-only, and no capabilities (ctr 1.6
      // has no --user; the image's own USER applies, which is what runAsUser names for all but the seed peer).
      ...(c.security?.readOnlyRootFilesystem ? ['--read-only'] : []),
      ...(c.security?.dropAllCapabilities ? DEFAULT_CAPABILITIES.flatMap((cap) => ['--cap-drop', cap]) : []),
      ...Object.entries(c.env).flatMap(([k, v]) => ['--env', `${k}=${v}`]),
      c.image, id, ...c.args,
    ];
  }

  async stop(): Promise<void> {
    await Promise.all(this.containers.map(async (c) => { await c.process?.stop(); }));
  }
}

export class Deployment {
  readonly pods: Pod[] = [];
  private readonly dnsTargets = new Map<string, string>();

  readonly mode: DeployMode;

  private constructor(readonly opts: DeployOptions) {
    this.mode = opts.mode ?? deployModeFromEnv();
  }

  /** Creates pods, DNS names and forwarders, then starts every pod (init containers first). */
  static async apply(opts: DeployOptions): Promise<Deployment> {
    const d = new Deployment(opts);
    await d.placePods();
    await d.importImages();
    await d.routeServices();
    await Promise.all(d.pods.map((p) => d.runPod(p)));
    return d;
  }

  podsOf(workloadName: string, namespace?: string): Pod[] {
    return this.pods.filter((p) => p.workload.name === workloadName && (namespace === undefined || p.workload.namespace === namespace));
  }

  /** The pod of a workload on a node (DaemonSets). */
  podOn(workloadName: string, nodeName: string): Pod {
    const p = this.pods.find((x) => x.workload.name === workloadName && x.node?.host.name === nodeName);
    if (!p) throw new Error(`no pod of ${workloadName} on ${nodeName}`);
    return p;
  }

  /** IP a Service DNS name resolves to in the lab. */
  resolve(dns: string): string | undefined {
    return this.dnsTargets.get(dns);
  }

  /** Throws with the log of the first long-running container that has exited. */
  throwIfAnyExited(): void {
    for (const pod of this.pods) {
      for (const c of pod.containers) {
        if (c.process && !c.process.running) throw new AbortWait(new Error(`${c.process.name} exited:\n${c.process.log().slice(-3000)}`));
      }
    }
  }

  private isSkipped(w: Workload): boolean {
    return w.pod.containers.every((c) => this.opts.skipImages.some((s) => c.image.startsWith(s)));
  }

  private externalOf(w: Workload): ExternalService | undefined {
    for (const c of w.pod.containers) {
      for (const [prefix, ext] of Object.entries(this.opts.externals)) if (c.image.startsWith(prefix)) return ext;
    }
    return undefined;
  }

  private async placePods(): Promise<void> {
    const { lab, manifests, nodes } = this.opts;
    for (const w of manifests.workloads()) {
      if (this.isSkipped(w) || this.externalOf(w)) continue;
      for (const c of w.pod.containers) {
        if (!programOfCommand(c.command)) throw new Error(`${w.kind} ${w.namespace}/${w.name}: container ${c.name} (${c.image}) runs ${JSON.stringify(c.command)}, which the lab cannot map to a program`);
      }
      const matching = nodes.filter((n) => Object.entries(w.pod.nodeSelector ?? {}).every(([k, v]) => n.labels[k] === v));
      if (matching.length === 0) throw new Error(`${w.kind} ${w.namespace}/${w.name}: no lab node matches nodeSelector ${JSON.stringify(w.pod.nodeSelector)}`);
      if (w.kind === 'DaemonSet') {
        if (!w.pod.hostNetwork) throw new Error(`DaemonSet ${w.name} without hostNetwork is not supported by the lab`);
        for (const node of matching) this.pods.push(new Pod(w, `${w.name}-${node.host.name}`, node.host, node, path.join(node.host.dir, 'pods', w.name), this.mode));
        continue;
      }
      const short = w.namespace.replace(/^cluster-/, '');
      for (let i = 0; i < w.replicas; i++) {
        const podName = w.kind === 'StatefulSet' ? `${w.name}-${i}` : `${w.name}-${i}`;
        const hostName = `${short}-${w.name.replace(/^dragonfly-/, '')}-${i}`.slice(0, 24).replace(/-+$/, '');
        const host = await lab.addHost(hostName);
        // Scheduled onto a matching node in turn; hostPath volumes (if any) live on that node.
        const node = matching[i % matching.length];
        this.pods.push(new Pod(w, podName, host, node, host.dir, this.mode));
      }
    }
  }

  /** Image mode: each node's containerd gets the images of the pods placed on it, as kubelet would pull them. */
  private async importImages(): Promise<void> {
    if (this.mode !== 'image') return;
    // Registered before any container starts; runs after the lab has killed its processes.
    const cgroup = labCgroup(this.opts.lab.runId);
    this.opts.lab.onTeardown(async () => {
      // A container whose `ctr run` was killed outlives it: its cgroup still lists it.
      await run('sh', ['-c', `find /sys/fs/cgroup -path "*/${cgroup}/*" -name cgroup.procs -exec cat {} + | sort -u | xargs -r kill -9; sleep 0.5; find /sys/fs/cgroup -depth -type d -path "*/${cgroup}*" -exec rmdir {} +`], { allowFailure: true });
    });
    const byNode = new Map<LabNode, Set<string>>();
    for (const pod of this.pods) {
      if (!pod.node) throw new Error(`pod ${pod.name}: image mode needs the pod on a node`);
      const refs = byNode.get(pod.node) ?? new Set<string>();
      for (const c of [...(pod.workload.pod.initContainers ?? []), ...pod.workload.pod.containers]) if (programOfCommand(c.command)) refs.add(c.image);
      byNode.set(pod.node, refs);
    }
    await Promise.all(
      [...byNode].map(async ([node, refs]) => {
        const archives = [...refs].map((ref) => {
          const archive = this.opts.imageArchives?.[ref];
          if (!archive) throw new Error(`image mode: no archive for ${ref} (build it with scripts/images/build.sh)`);
          return archive;
        });
        await node.containerd.importImages([...new Set(archives)], [...refs]);
      }),
    );
  }

  private async routeServices(): Promise<void> {
    const { lab, manifests } = this.opts;
    const forwarded = new Map<string, number>();
    for (const route of manifests.services()) {
      const backends = manifests.backends(route);
      const w = backends[0];
      if (!w) continue;
      const ext = this.externalOf(w);
      if (ext) {
        const svc = manifests.find('Service', route.namespace, route.name);
        const ports = ((svc.spec?.ports as Array<{ port: number }> | undefined) ?? []).map((p) => p.port);
        for (const port of ports) {
          const key = `${port}->${ext.localPort}`;
          if (!forwarded.has(key)) forwarded.set(key, await lab.forwardFromGateway(ext.localPort, '127.0.0.1', port));
        }
        this.dnsTargets.set(route.dns, lab.gatewayIp);
        lab.addDnsName(route.dns, lab.gatewayIp);
        continue;
      }
      const pod = this.pods.find((p) => p.workload.name === w.name && p.workload.namespace === w.namespace);
      if (!pod) continue; // skipped images (jaeger): the name stays unresolvable
      this.dnsTargets.set(route.dns, pod.ip);
      lab.addDnsName(route.dns, pod.ip);
    }
  }

  private materializeVolumes(pod: Pod, c: Container): Array<{ mountPath: string; dir: string; readOnly: boolean }> {
    const { manifests } = this.opts;
    const ns = pod.workload.namespace;
    const mounts: Array<{ mountPath: string; dir: string; readOnly: boolean }> = [];
    for (const vm of c.volumeMounts ?? []) {
      const vol = pod.workload.pod.volumes?.find((v) => v.name === vm.name);
      let dir: string;
      if (vol?.configMap || vol?.secret) {
        dir = path.join(pod.dir, 'volumes', vm.name);
        fs.mkdirSync(dir, { recursive: true });
        if (vol.configMap) {
          for (const [file, text] of Object.entries(manifests.configMap(ns, vol.configMap.name))) fs.writeFileSync(path.join(dir, file), text);
        } else if (vol.secret) {
          const s = manifests.find('Secret', ns, vol.secret.secretName);
          for (const key of Object.keys({ ...s.data, ...s.stringData })) fs.writeFileSync(path.join(dir, key), manifests.secretValue(ns, vol.secret.secretName, key));
        }
      } else if (vol?.hostPath) {
        const node = pod.node;
        if (vol.hostPath.path === '/etc/containerd' && node) dir = node.containerd.dir;
        else dir = path.join(node ? node.host.dir : pod.dir, 'rootfs', vol.hostPath.path);
      } else if (vol?.emptyDir || pod.workload.claimNames.includes(vm.name)) {
        dir = path.join(pod.dir, 'volumes', vm.name);
      } else {
        throw new Error(`pod ${pod.name}: volume ${vm.name} is not defined`);
      }
      fs.mkdirSync(dir, { recursive: true });
      mounts.push({ mountPath: vm.mountPath, dir, readOnly: vm.readOnly === true });
    }
    return mounts;
  }

  private resolveEnv(pod: Pod, c: Container): Record<string, string> {
    const { manifests } = this.opts;
    const ns = pod.workload.namespace;
    const env: Record<string, string> = {};
    for (const e of c.env ?? []) {
      if (e.value !== undefined) env[e.name] = e.value;
      else if (e.valueFrom?.secretKeyRef) env[e.name] = manifests.secretValue(ns, e.valueFrom.secretKeyRef.name, e.valueFrom.secretKeyRef.key);
      else if (e.valueFrom?.configMapKeyRef) env[e.name] = manifests.configMap(ns, e.valueFrom.configMapKeyRef.name)[e.valueFrom.configMapKeyRef.key] ?? '';
      else if (e.valueFrom?.fieldRef) {
        const field = e.valueFrom.fieldRef.fieldPath;
        const values: Record<string, string> = {
          'status.podIP': pod.ip,
          'status.hostIP': pod.node?.host.ip ?? pod.ip,
          'spec.nodeName': pod.node?.host.name ?? pod.host.name,
          'metadata.name': pod.name,
          'metadata.namespace': ns,
        };
        const v = values[field];
        if (v === undefined) throw new Error(`pod ${pod.name}: fieldRef ${field} is not mapped by the lab`);
        env[e.name] = v;
      }
    }
    return env;
  }

  /** The container as the lab runs it: program, args with paths mapped, env with path overrides. */
  private prepare(pod: Pod, c: Container): RunningContainer {
    const program = programOfCommand(c.command);
    if (!program) throw new Error(`pod ${pod.name}: container ${c.name} is not one of this project's programs`);
    const mounts = this.materializeVolumes(pod, c);
    pod.mounts.push(...mounts);
    const extraEnv = this.opts.programEnv?.[program] ?? {};
    const hostPaths: Record<string, string> = {};
    if (this.mode === 'image') {
      // Paths stay as the manifest wrote them; the harness's own extra files (CA bundles) are
      // mounted at the same path.
      const extraFiles = Object.values(extraEnv).filter((v) => v.startsWith('/') && fs.existsSync(v));
      const binds = [...mounts.map((m) => ({ src: m.dir, dst: m.mountPath, readOnly: m.readOnly })), ...extraFiles.map((f) => ({ src: f, dst: f, readOnly: true }))];
      // The node's /etc/containerd is the lab containerd's dir, whose config.toml names its
      // registry config_path by this machine's path: dfinit must find that dir where it says.
      const containerdDir = mounts.find((m) => m.dir === pod.node?.containerd.dir);
      if (containerdDir) binds.push({ src: containerdDir.dir, dst: containerdDir.dir, readOnly: containerdDir.readOnly });
      const env = { ...this.resolveEnv(pod, c), ...extraEnv };
      const configFile = this.configFileOf([...(c.command ?? []), ...(c.args ?? [])], (p) => pod.mapPath(p, mounts));
      if (configFile) this.forEachPathKey(program, configFile, env, (envName, value) => (hostPaths[envName] = pod.mapPath(value, mounts)));
      const sc = c.securityContext;
      const security = {
        readOnlyRootFilesystem: sc?.readOnlyRootFilesystem === true,
        dropAllCapabilities: sc?.privileged !== true && (sc?.capabilities?.drop ?? []).includes('ALL'),
      };
      return { name: c.name, program, image: c.image, args: [...(c.command ?? []), ...(c.args ?? [])], env, binds, hostPaths, security };
    }
    const args = [...(c.command ?? []).slice(1), ...(c.args ?? [])].map((a) => (a.startsWith('/') ? pod.mapPath(a, mounts) : a));
    const env = { ...this.resolveEnv(pod, c), ...extraEnv };
    const configFile = this.configFileOf(args, (p) => p);
    if (configFile) {
      this.forEachPathKey(program, configFile, env, (envName, current, isFile) => {
        const mapped = pod.mapPath(current, mounts);
        fs.mkdirSync(isFile ? path.dirname(mapped) : mapped, { recursive: true });
        env[envName] = mapped;
        hostPaths[envName] = mapped;
      });
    }
    return { name: c.name, program, args, env, binds: [], hostPaths };
  }

  /** The file after --config/-c, mapped to this machine. */
  private configFileOf(args: readonly string[], toHost: (p: string) => string): string | undefined {
    const i = args.findIndex((a) => a === '--config' || a === '-c');
    const f = i >= 0 ? args[i + 1] : undefined;
    return f === undefined ? undefined : toHost(f);
  }

  /** Calls back with each path key's effective value (env override, config file, schema default). */
  private forEachPathKey(program: Program, configFile: string, env: Record<string, string>, each: (envName: string, value: string, isFile: boolean) => void): void {
    const raw = (parseYaml(fs.readFileSync(configFile, 'utf8')) as Record<string, unknown> | null) ?? {};
    for (const { key, default: dflt } of PATH_KEYS[program]) {
      const envName = `${ENV_PREFIX[program]}__${key.join('__')}`;
      let value: unknown = raw;
      for (const k of key) value = value !== null && typeof value === 'object' ? (value as Record<string, unknown>)[k] : undefined;
      const current = env[envName] ?? (typeof value === 'string' && value !== '' ? value : dflt);
      const last = key[key.length - 1];
      if (current) each(envName, current, ['socket', 'configPath', 'file', 'caCert', 'cert', 'key'].includes(last));
    }
  }

  private async runPod(pod: Pod): Promise<void> {
    fs.mkdirSync(pod.dir, { recursive: true });
    await pod.ensureSandbox();
    for (const init of pod.workload.pod.initContainers ?? []) {
      const targets = waitTargetsOf(init);
      if (targets.length > 0) {
        // busybox "until nslookup X && nc -vz X PORT": wait for the same thing from the pod's host.
        for (const t of targets) {
          await waitFor(
            `${pod.name} init ${init.name}: ${t.host}:${t.port}`,
            async () => {
              this.throwIfAnyExited();
              const ip = this.dnsTargets.get(t.host);
              if (!ip) return undefined;
              const r = await pod.host.exec('bash', ['-c', `exec 3<>/dev/tcp/${ip}/${t.port}`], { allowFailure: true, timeoutMs: 3000 });
              return r.code === 0 ? true : undefined;
            },
            120_000,
            500,
          );
        }
        continue;
      }
      const rc = this.prepare(pod, init);
      pod.containers.push(rc);
      const r = await pod.runToCompletion(rc, 60_000);
      rc.result = r;
      fs.writeFileSync(path.join(pod.host.dir, 'logs', `${pod.name}.${init.name}.log`), r.stdout + r.stderr);
      if (r.code !== 0) throw new Error(`pod ${pod.name}: init container ${init.name} (${rc.program}) exited ${r.code}:\n${(r.stderr + r.stdout).slice(-3000)}`);
    }
    await this.opts.beforeContainers?.(pod, this);
    for (const c of pod.workload.pod.containers) {
      const rc = this.prepare(pod, c);
      pod.containers.push(rc);
      if (pod.workload.kind === 'Job') {
        const r = await pod.runToCompletion(rc, 120_000);
        rc.result = r;
        fs.writeFileSync(path.join(pod.host.dir, 'logs', `${pod.name}.${c.name}.log`), r.stdout + r.stderr);
        if (r.code !== 0) throw new Error(`Job ${pod.workload.name}: container ${c.name} exited ${r.code}:\n${(r.stderr + r.stdout).slice(-3000)}`);
      } else {
        pod.start(rc);
      }
    }
  }
}
