#!/usr/bin/env node
/** dfdaemon --config dfdaemon.yaml (a seed peer when scheduler.manager.seedPeer.enable is true). */
import '../common/threadpool'; // first: sizes the thread pool before any file call
import { Command } from 'commander';
import { loadConfig } from '../common/config';
import { closeServer } from '../common/http';
import { exitOnStartupError, onShutdown } from '../common/lifecycle';
import { createLogger } from '../common/logger';
import { startPprofServer } from '../common/pprof';
import { startDfdaemon } from './daemon';

async function main(argv: readonly string[]): Promise<void> {
  const program = new Command()
    .name('dfdaemon')
    .description('Dragonfly dfdaemon: piece store, P2P download and upload, registry mirror; a seed peer with seedPeer.enable')
    .option('-c, --config <file>', 'dfdaemon.yaml')
    .parse(argv);
  const opts = program.opts<{ config?: string }>();
  const config = loadConfig('dfdaemon', opts.config);
  const logger = createLogger({ name: config.scheduler.manager.seedPeer.enable ? 'seed-peer' : 'dfdaemon', verbose: config.verbose });
  const handle = await startDfdaemon(config, { logger });
  const pprof = await startPprofServer(config.pprofPort);
  onShutdown(logger, async () => {
    await handle.stop();
    if (pprof) await closeServer(pprof);
  });
}

main(process.argv).catch((err: unknown) => exitOnStartupError('dfdaemon', err));
