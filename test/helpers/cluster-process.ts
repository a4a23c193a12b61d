/**
 * `npm start`'s cluster (manager, scheduler, seed peer, peer in one process) from the compiled
 * build/, in a child process with free ports: the OpenTelemetry exporters load Node's http
 * module with a dynamic import, which jest's module sandbox refuses, so exporting tests run the
 * programs as real Node processes. Needs `npm run build`.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';

const REPO = path.resolve(__dirname, '../..');

export interface ClusterPorts {
  readonly peerProxy: number;
  readonly peerMetrics: number;
  readonly seedMetrics: number;
  readonly schedulerMetrics: number;
  readonly managerMetrics: number;
}

const SCRIPT = `
const { startLocalCluster } = require(process.env.LC_BUILD + '/services/local-cluster.js');
const { silentLogger } = require(process.env.LC_BUILD + '/services/common/logger.js');
const ports = { managerRest: 0, managerGrpc: 0, managerMetrics: 0, scheduler: 0, schedulerMetrics: 0, peerGrpc: 0, peerProxy: 0, peerUpload: 0, peerMetrics: 0, seedMetrics: 0 };
startLocalCluster({ workDir: process.env.LC_DIR, logger: silentLogger(), ports, redis: false, proxyWhiteList: JSON.parse(process.env.LC_WHITELIST) }).then((c) => {
  process.stdout.write(JSON.stringify({ peerProxy: c.peer.proxyPort, peerMetrics: c.peer.metricsPort, seedMetrics: c.seed.metricsPort, schedulerMetrics: c.scheduler.metricsPort, managerMetrics: c.manager.metricsPort }) + '\\n');
  process.on('SIGTERM', () => c.stop().then(() => process.exit(0), () => process.exit(1)));
}, (err) => { console.error(err); process.exit(1); });
`;

export class ClusterProcess {
  private constructor(
    private readonly child: ChildProcess,
    readonly ports: ClusterPorts,
    private readonly stderr: () => string,
  ) {}

  static async start(workDir: string, opts: { env?: Record<string, string>; proxyWhiteList?: unknown[] } = {}): Promise<ClusterProcess> {
    const build = path.join(REPO, 'build');
    if (!fs.existsSync(path.join(build, 'services/local-cluster.js'))) throw new Error('build/services/local-cluster.js is missing: run `npm run build` first');
    const child = spawn(process.execPath, ['-e', SCRIPT], {
      env: { ...process.env, ...opts.env, LC_BUILD: build, LC_DIR: workDir, LC_WHITELIST: JSON.stringify(opts.proxyWhiteList ?? []) },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let err = '';
    child.stderr?.on('data', (c: Buffer) => {
      if (err.length < 64 * 1024) err += c.toString();
    });
    const ports = await new Promise<ClusterPorts>((resolve, reject) => {
      let out = '';
      const timer = setTimeout(() => reject(new Error(`local cluster did not start within 60 s: ${err.slice(-2000)}`)), 60_000);
      child.stdout?.on('data', (c: Buffer) => {
        out += c.toString();
        const line = out.split('\n')[0];
        if (out.includes('\n')) {
          clearTimeout(timer);
          try {
            resolve(JSON.parse(line) as ClusterPorts);
          } catch {
            reject(new Error(`unexpected output from the local cluster: ${line.slice(0, 500)}`));
          }
        }
      });
      child.once('exit', (code) => {
        clearTimeout(timer);
        reject(new Error(`local cluster exited with ${code}: ${err.slice(-2000)}`));
      });
    });
    return new ClusterProcess(child, ports, () => err);
  }

  /** /metrics text of one program. */
  async metrics(program: 'peer' | 'seed' | 'scheduler' | 'manager'): Promise<string> {
    const port = { peer: this.ports.peerMetrics, seed: this.ports.seedMetrics, scheduler: this.ports.schedulerMetrics, manager: this.ports.managerMetrics }[program];
    const res = await fetch(`http://127.0.0.1:${port}/metrics`);
    return res.text();
  }

  log(): string {
    return this.stderr();
  }

  async stop(): Promise<void> {
    if (this.child.exitCode !== null) return;
    const exited = new Promise<void>((resolve) => this.child.once('exit', () => resolve()));
    this.child.kill('SIGTERM');
    const timer = setTimeout(() => this.child.kill('SIGKILL'), 15_000);
    await exited;
    clearTimeout(timer);
  }
}
