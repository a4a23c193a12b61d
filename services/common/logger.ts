/** pino logger factory: JSON lines on stdout; `verbose` lowers the level to debug. */
import pino, { type Logger } from 'pino';

export type { Logger } from 'pino';

export interface LoggerOptions {
  readonly name: string;
  readonly verbose?: boolean;
  /** Overrides the level (tests use "silent"). Env LOG_LEVEL does the same. */
  readonly level?: pino.LevelWithSilent;
}

export function createLogger(options: LoggerOptions): Logger {
  const level = options.level ?? (process.env.LOG_LEVEL as pino.LevelWithSilent | undefined) ?? (options.verbose ? 'debug' : 'info');
  return pino({ name: options.name, level, base: { pid: process.pid, program: options.name } });
}

/** A logger that drops everything; for tests and library use. */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}
