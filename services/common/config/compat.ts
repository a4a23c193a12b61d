/**
 * Keys accepted only so that existing Go-era config files keep loading. They change nothing,
 * so each one set in a config logs a warning at start saying so and what to use instead.
 */
import type { ConfigOf, ProgramName } from './load';

interface CompatibilityKey {
  readonly path: readonly string[];
  readonly note: string;
}

const COMPATIBILITY_KEYS: Record<ProgramName, readonly CompatibilityKey[]> = {
  manager: [
    { path: ['server', 'name'], note: 'the manager has no name of its own; remove the key' },
    { path: ['server', 'grpc', 'advertiseIP'], note: 'the manager announces no address (schedulers and peers dial the one they are configured with); remove the key' },
    { path: ['auth', 'jwt', 'realm'], note: 'sessions are bearer JWTs and announce no realm; remove the key' },
    { path: ['auth', 'jwt', 'maxRefresh'], note: 'sessions are not refreshed: they last auth.jwt.timeout, then the user logs in again; set auth.jwt.timeout instead' },
    { path: ['database', 'redis', 'brokerDB'], note: 'job queues live in database.redis.db under database.redis.keyPrefix; set those instead' },
    { path: ['database', 'redis', 'backendDB'], note: 'job results live in database.redis.db under database.redis.keyPrefix; set those instead' },
  ],
  scheduler: [
    { path: ['server', 'workHome'], note: 'the scheduler keeps no files; remove the key' },
    { path: ['scheduler', 'algorithm'], note: '"default" is the only scheduling algorithm; remove the key' },
  ],
  dfdaemon: [{ path: ['workHome'], note: 'everything the daemon keeps (pieces, metadata) is under dataDir; set dataDir instead' }],
  dfinit: [],
};

/** A key kept for compatibility that is set in this config, and what to do about it. */
export interface CompatibilityWarning {
  /** Dotted key path, e.g. "scheduler.algorithm". */
  readonly key: string;
  readonly message: string;
}

/** The compatibility-only keys set in a parsed config (these keys have no default, so set means given). */
export function compatibilityWarnings<P extends ProgramName>(program: P, config: ConfigOf<P>): CompatibilityWarning[] {
  const out: CompatibilityWarning[] = [];
  for (const { path, note } of COMPATIBILITY_KEYS[program]) {
    let cur: unknown = config;
    for (const key of path) cur = cur !== null && typeof cur === 'object' ? (cur as Record<string, unknown>)[key] : undefined;
    if (cur !== undefined) out.push({ key: path.join('.'), message: `config key ${path.join('.')} is accepted for compatibility only and has no effect: ${note}` });
  }
  return out;
}
