#!/usr/bin/env node
/** dfscheduler --config scheduler.yaml */
import { Command } from 'commander';
import { loadConfig } from '../common/config';
import { exitOnStartupError, onShutdown } from '../common/lifecycle';
import { createLogger } from '../common/logger';
import { startPprofServer } from '../common/pprof';
import { closeServer } from '../common/http';
import { startScheduler } from './server';

async function main(argv: readonly string[]): Promise<void> {
  const program = new Command()
    .name('dfscheduler')
    .description('Dragonfly scheduler: chooses parent peers for every download of its cluster')
    .option('-c, --config <file>', 'scheduler.yaml')
    .parse(argv);
  const opts = program.opts<{ config?: string }>();
  const config = loadConfig('scheduler', opts.config);
  const logger = createLogger({ name: 'scheduler', verbose: config.verbose });
  const handle = await startScheduler(config, { logger });
  const pprof = await startPprofServer(config.pprofPort);
  onShutdown(logger, async () => {
    await handle.stop();
    if (pprof) await closeServer(pprof);
  });
}

main(process.argv).catch((err: unknown) => exitOnStartupError('dfscheduler', err));
