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
 *   with `<PREFIX>__key=value` env overrides;
 * - third-party workloads are not run: MySQL and Redis are the machine's MariaDB and Redis,
 *   reached through a forwarder on the bridge address; other images (jaeger) are skipped.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { parse as parseYaml } from 'yaml';
import { AbortWait, waitFor, type ManagedProcess, type RunResult } from './exec';
import type { ContainerdHost } from './containerd';
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

export interface DeployOptions {
  readonly lab: NetnsLab;
  readonly manifests: ManifestSet;
  readonly nodes: readonly LabNode[];
  /** Third-party workloads by image name prefix (e.g. "mysql", "redis") → a root-ns service. */
  readonly externals: Record<string, ExternalService>;
  /** Image prefixes not run at all (e.g. "jaegertracing/"). */
  readonly skipImages: readonly string[];
  /** Extra env per program (per-run DB names, CA bundles); applied after the manifest's env. */
  readonly programEnv?: Partial<Record<Program, Record<string, string>>>;
}

/** Config keys holding absolute paths, with the schema defaults, per program. */
const PATH_KEYS: Record<Program, Array<{ key: string[]; default?: string }>> = {
  dfdaemon: [
    { key: ['dataDir'], default: '/var/lib/dragonfly' },
    { key: ['workHome'], default: '/var/lib/dragonfly' },
    { key: ['logDir'] },
    { key: ['download', 'downloadGRPC', 'unixListen', 'socket'], default: '/var/run/dragonfly/dfdaemon.sock' },
  ],
  manager: [{ key: ['server', 'workHome'], default: '/var/lib/dragonfly/manager' }, { key: ['server', 'logDir'] }, { key: ['database', 'sqlite', 'file'] }],
  scheduler: [{ key: ['server', 'workHome'], default: '/var/lib/dragonfly/scheduler' }, { key: ['server', 'logDir'] }],
  dfinit: [{ key: ['containerRuntime', 'containerd', 'configPath'], default: '/etc/containerd/config.toml' }],
  dfget: [],
};

const ENV_PREFIX: Record<Program, string> = { manager: 'DFMANAGER', scheduler: 'DFSCHEDULER', dfdaemon: 'DFDAEMON', dfinit: 'DFINIT', dfget: 'DFGET' };

export interface RunningContainer {
  readonly name: string;
  readonly program: Program;
  readonly args: readonly string[];
  readonly env: Record<string, string>;
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
  ) {}

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
    c.process = this.host.start(`${this.name}.${c.name}`, process.execPath, [programMain(c.program), ...c.args], {
      env: { ...process.env, ...c.env },
      cwd: this.dir,
    });
    return c.process;
  }

  async stop(): Promise<void> {
    await Promise.all(this.containers.map(async (c) => { await c.process?.stop(); }));
  }
}

export class Deployment {
  readonly pods: Pod[] = [];
  private readonly dnsTargets = new Map<string, string>();

  private constructor(readonly opts: DeployOptions) {}

  /** Creates pods, DNS names and forwarders, then starts every pod (init containers first). */
  static async apply(opts: DeployOptions): Promise<Deployment> {
    const d = new Deployment(opts);
    await d.placePods();
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
        for (const node of matching) this.pods.push(new Pod(w, `${w.name}-${node.host.name}`, node.host, node, path.join(node.host.dir, 'pods', w.name)));
        continue;
      }
      const short = w.namespace.replace(/^cluster-/, '');
      for (let i = 0; i < w.replicas; i++) {
        const podName = w.kind === 'StatefulSet' ? `${w.name}-${i}` : `${w.name}-${i}`;
        const hostName = `${short}-${w.name.replace(/^dragonfly-/, '')}-${i}`.slice(0, 24).replace(/-+$/, '');
        const host = await lab.addHost(hostName);
        // Scheduled onto a matching node in turn; hostPath volumes (if any) live on that node.
        const node = matching[i % matching.length];
        this.pods.push(new Pod(w, podName, host, node, host.dir));
      }
    }
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

  private materializeVolumes(pod: Pod, c: Container): Array<{ mountPath: string; dir: string }> {
    const { manifests } = this.opts;
    const ns = pod.workload.namespace;
    const mounts: Array<{ mountPath: string; dir: string }> = [];
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
      mounts.push({ mountPath: vm.mountPath, dir });
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
    const args = [...(c.command ?? []).slice(1), ...(c.args ?? [])].map((a) => (a.startsWith('/') ? pod.mapPath(a, mounts) : a));
    const env = { ...this.resolveEnv(pod, c), ...this.opts.programEnv?.[program] };
    const configIdx = args.findIndex((a) => a === '--config' || a === '-c');
    const configFile = configIdx >= 0 ? args[configIdx + 1] : undefined;
    if (configFile) {
      const raw = (parseYaml(fs.readFileSync(configFile, 'utf8')) as Record<string, unknown> | null) ?? {};
      for (const { key, default: dflt } of PATH_KEYS[program]) {
        const envName = `${ENV_PREFIX[program]}__${key.join('__')}`;
        let value: unknown = raw;
        for (const k of key) value = value !== null && typeof value === 'object' ? (value as Record<string, unknown>)[k] : undefined;
        const current = env[envName] ?? (typeof value === 'string' && value !== '' ? value : dflt);
        if (current) {
          const mapped = pod.mapPath(current, mounts);
          fs.mkdirSync(key[key.length - 1] === 'socket' || key[key.length - 1] === 'configPath' || key[key.length - 1] === 'file' ? path.dirname(mapped) : mapped, { recursive: true });
          env[envName] = mapped;
        }
      }
    }
    return { name: c.name, program, args, env };
  }

  private async runPod(pod: Pod): Promise<void> {
    fs.mkdirSync(pod.dir, { recursive: true });
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
      const r = await pod.host.exec(process.execPath, [programMain(rc.program), ...rc.args], { env: { ...process.env, ...rc.env }, timeoutMs: 60_000, allowFailure: true });
      rc.result = r;
      fs.writeFileSync(path.join(pod.host.dir, 'logs', `${pod.name}.${init.name}.log`), r.stdout + r.stderr);
      if (r.code !== 0) throw new Error(`pod ${pod.name}: init container ${init.name} (${rc.program}) exited ${r.code}:\n${(r.stderr + r.stdout).slice(-3000)}`);
    }
    for (const c of pod.workload.pod.containers) {
      const rc = this.prepare(pod, c);
      pod.containers.push(rc);
      if (pod.workload.kind === 'Job') {
        const r = await pod.host.exec(process.execPath, [programMain(rc.program), ...rc.args], { env: { ...process.env, ...rc.env }, timeoutMs: 120_000, allowFailure: true });
        rc.result = r;
        fs.writeFileSync(path.join(pod.host.dir, 'logs', `${pod.name}.${c.name}.log`), r.stdout + r.stderr);
        if (r.code !== 0) throw new Error(`Job ${pod.workload.name}: container ${c.name} exited ${r.code}:\n${(r.stderr + r.stdout).slice(-3000)}`);
      } else {
        pod.start(rc);
      }
    }
  }
}
