/** Runs a dfinit plan: prints it (dry run) or applies it, then restarts containerd when asked to. */
import { spawnSync } from 'node:child_process';
import type { DfinitConfig } from '../common/config/dfinit';
import { DfinitError, planInstall, planUninstall, type Plan } from './containerd';
import { applyChanges, renderDiff } from './files';

export interface RunOptions {
  readonly dryRun?: boolean;
  readonly uninstall?: boolean;
  /** Where the report goes, one line (or diff block) per call. */
  readonly print: (text: string) => void;
  /** Runs the restart command; default: spawnSync with inherited stdio. */
  readonly runCommand?: (argv: readonly string[]) => { status: number | null; error?: Error };
}

export interface RunResult {
  readonly plan: Plan;
  readonly applied: boolean;
  readonly restarted: boolean;
}

function defaultRunCommand(argv: readonly string[]): { status: number | null; error?: Error } {
  const res = spawnSync(argv[0], argv.slice(1), { stdio: 'inherit' });
  return { status: res.status, error: res.error };
}

export async function runDfinit(config: DfinitConfig, options: RunOptions): Promise<RunResult> {
  const plan = options.uninstall ? await planUninstall(config) : await planInstall(config);
  const { print } = options;
  for (const note of plan.notes) print(note);
  if (plan.changes.length === 0) {
    print(options.uninstall ? 'nothing to remove' : 'containerd is already configured: no changes');
    return { plan, applied: false, restarted: false };
  }
  if (options.dryRun) {
    print('dry run: these changes would be made (nothing was written)');
    for (const change of plan.changes) print(`# ${change.reason}\n${renderDiff(change)}`);
    if (plan.restartNeeded) print(`containerd would need a restart: ${config.containerRuntime.containerd.restartCommand.join(' ')}`);
    return { plan, applied: false, restarted: false };
  }
  await applyChanges(plan.changes, plan.pruneDirs);
  for (const change of plan.changes) print(`${change.after === null ? 'removed' : 'wrote'} ${change.path}: ${change.reason}`);
  if (!plan.restartNeeded) return { plan, applied: true, restarted: false };

  const command = config.containerRuntime.containerd.restartCommand;
  if (!config.containerRuntime.containerd.restart) {
    print(`containerd must be restarted to read the config.toml change: ${command.join(' ')} (or set containerRuntime.containerd.restart: true)`);
    return { plan, applied: true, restarted: false };
  }
  if (command.length === 0) throw new DfinitError('containerRuntime.containerd.restartCommand is empty');
  const res = (options.runCommand ?? defaultRunCommand)(command);
  if (res.error || res.status !== 0) {
    throw new DfinitError(`restarting containerd failed (${res.error?.message ?? `exit ${String(res.status)}`}): ${command.join(' ')}`);
  }
  print('restarted containerd');
  return { plan, applied: true, restarted: true };
}
