/**
 * Running the project's own programs (compiled to build/services/<program>/main.js) on lab
 * hosts: a config object is written as YAML under the host's dir and the program is started with
 * `--config`, plus `<PREFIX>__a__b=value` environment overrides where a manifest would inject
 * them (downward-API IPs). Readiness is checked on the ports the programs listen on.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { stringify as toYaml } from 'yaml';
import { waitFor, type ManagedProcess, type RunResult } from './exec';
import type { NetnsHost } from './netns-lab';

export type Program = 'manager' | 'scheduler' | 'dfdaemon' | 'dfinit' | 'dfget';

export const REPO_ROOT = path.resolve(__dirname, '../../..');

/** Path of a compiled program; throws a clear error if the build is missing. */
export function programMain(program: Program): string {
  const main = path.join(REPO_ROOT, 'build', 'services', program, 'main.js');
  if (!fs.existsSync(main)) {
    throw new Error(`${path.relative(REPO_ROOT, main)} does not exist: run \`npm run build\` first (is services/${program}/main.ts written yet?)`);
  }
  return main;
}

export interface ProgramRun {
  readonly host: NetnsHost;
  readonly program: Program;
  readonly configFile: string;
  readonly process: ManagedProcess;
}

export interface StartProgramOptions {
  /** Process/log name on the host (default: program). */
  readonly name?: string;
  /** Extra environment (e.g. DFDAEMON__host__advertiseIP). */
  readonly env?: Record<string, string>;
  /** Extra arguments after --config. */
  readonly args?: readonly string[];
}

/** Writes `config` as <host.dir>/<name>.yaml and starts the program with it. */
export function startProgram(host: NetnsHost, program: Program, config: unknown, opts: StartProgramOptions = {}): ProgramRun {
  const name = opts.name ?? program;
  const configFile = path.join(host.dir, `${name}.yaml`);
  fs.writeFileSync(configFile, typeof config === 'string' ? config : toYaml(config));
  const proc = host.start(name, process.execPath, [programMain(program), '--config', configFile, ...(opts.args ?? [])], {
    env: { ...process.env, ...opts.env },
    cwd: host.dir,
  });
  return { host, program, configFile, process: proc };
}

/** Runs a one-shot program (dfinit, dfget) to completion inside the host. */
export async function runProgram(host: NetnsHost, program: Program, args: readonly string[], opts: { env?: Record<string, string>; timeoutMs?: number; allowFailure?: boolean } = {}): Promise<RunResult> {
  const env = { ...process.env, ...opts.env };
  return host.exec(process.execPath, [programMain(program), ...args], { env, timeoutMs: opts.timeoutMs ?? 60_000, allowFailure: opts.allowFailure });
}

/** Waits for TCP ports on the host, failing early with the log if the program exits. */
export async function waitReady(runInfo: ProgramRun, ports: readonly number[], timeoutMs = 30_000): Promise<void> {
  await Promise.race([
    Promise.all(ports.map((p) => runInfo.host.waitForPort(p, timeoutMs))),
    runInfo.process.exited.then((e) => {
      throw new Error(`${runInfo.process.name} exited (${JSON.stringify(e)}) before listening on ${ports.join(',')}:\n${runInfo.process.log().slice(-3000)}`);
    }),
  ]);
}

/** Minimal manager REST client (sign in as root, list registrations). */
export class ManagerRest {
  private token: string | undefined;

  constructor(
    readonly baseUrl: string,
    private readonly user = { name: 'root', password: 'dragonfly' },
  ) {}

  async request<T>(method: string, urlPath: string, body?: unknown): Promise<T> {
    if (!this.token) {
      const r = await fetch(`${this.baseUrl}/api/v1/users/signin`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(this.user),
      });
      if (!r.ok) throw new Error(`manager signin: HTTP ${r.status} ${await r.text()}`);
      this.token = ((await r.json()) as { token: string }).token;
    }
    const r = await fetch(`${this.baseUrl}${urlPath}`, {
      method,
      headers: { authorization: `Bearer ${this.token}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await r.text();
    if (!r.ok) throw new Error(`manager ${method} ${urlPath}: HTTP ${r.status} ${text}`);
    return (text ? JSON.parse(text) : undefined) as T;
  }

  schedulers(): Promise<Array<{ ip: string; state: string; scheduler_cluster_id?: number }>> {
    return this.request('GET', '/api/v1/schedulers?per_page=100');
  }

  seedPeers(): Promise<Array<{ ip: string; state: string; seed_peer_cluster_id?: number }>> {
    return this.request('GET', '/api/v1/seed-peers?per_page=100');
  }

  /** Waits until a scheduler / seed peer with this IP is registered and active. */
  async waitActive(kind: 'scheduler' | 'seed-peer', ip: string, timeoutMs = 30_000): Promise<void> {
    await waitFor(
      `${kind} ${ip} active on the manager`,
      async () => {
        const list = kind === 'scheduler' ? await this.schedulers() : await this.seedPeers();
        return list.some((x) => x.ip === ip && x.state === 'active') ? true : undefined;
      },
      timeoutMs,
      500,
    );
  }
}
