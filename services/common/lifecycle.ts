/** Process lifecycle: run shutdown hooks once on SIGTERM/SIGINT, exit non-zero on start-up errors. */
import type { Logger } from 'pino';
import { ConfigError } from './config/load';

export function onShutdown(logger: Logger, stop: () => Promise<void>, graceMs = 10_000): void {
  let stopping = false;
  const handler = (signal: NodeJS.Signals) => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal }, 'shutting down');
    const force = setTimeout(() => {
      logger.error('shutdown took too long; exiting');
      process.exit(1);
    }, graceMs);
    force.unref();
    stop()
      .then(() => {
        logger.info('stopped');
        process.exit(0);
      })
      .catch((err: unknown) => {
        logger.error({ err }, 'error during shutdown');
        process.exit(1);
      });
  };
  process.on('SIGTERM', handler);
  process.on('SIGINT', handler);
}

/** For a program's main(): prints config errors plainly (they name the key) and exits 1. */
export function exitOnStartupError(program: string, err: unknown): never {
  if (err instanceof ConfigError) {
    process.stderr.write(`${program}: ${err.message}\n`);
  } else {
    process.stderr.write(`${program}: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  }
  process.exit(1);
}
