#!/usr/bin/env node
/** dfmanager: `dfmanager --config manager.yaml` runs the manager; `dfmanager apply-cluster` declares a cluster. */
import { Command } from 'commander';
import { loadConfig } from '../common/config/load';
import { closeServer } from '../common/http';
import { exitOnStartupError, onShutdown } from '../common/lifecycle';
import { createLogger } from '../common/logger';
import { startPprofServer } from '../common/pprof';
import { applyClusterCommand } from './apply-cluster';
import { startManager } from './server';

async function runManager(configFile: string | undefined): Promise<void> {
  const config = loadConfig('manager', configFile);
  const logger = createLogger({ name: 'manager', verbose: config.verbose });
  const manager = await startManager(config, { logger });
  const pprof = await startPprofServer(config.pprofPort);
  onShutdown(logger, async () => {
    await manager.stop();
    if (pprof) await closeServer(pprof);
  });
}

const program = new Command('dfmanager')
  .description('Dragonfly manager: cluster records, users, scheduler and seed-peer registration')
  .option('-c, --config <file>', 'manager.yaml')
  .action(async (opts: { config?: string }) => {
    await runManager(opts.config).catch((err: unknown) => exitOnStartupError('dfmanager', err));
  });

program
  .command('apply-cluster')
  .description('create or update a cluster on the manager from a YAML/JSON cluster spec (idempotent)')
  .requiredOption('--manager-url <url>', 'manager REST address, e.g. http://dragonfly-manager:8080')
  .requiredOption('-f, --file <file>', 'cluster spec (YAML or JSON)')
  .option('--timeout <duration>', 'keep retrying an unreachable manager for this long', '10m')
  .action(async (opts: { managerUrl: string; file: string; timeout: string }) => {
    const code = await applyClusterCommand(opts, { env: process.env, stdout: (t) => process.stdout.write(t), stderr: (t) => process.stderr.write(t) });
    process.exit(code);
  });

program.parseAsync(process.argv).catch((err: unknown) => exitOnStartupError('dfmanager', err));
