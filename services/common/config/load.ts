/**
 * Loads a program's YAML config, applies environment overrides and validates it against
 * the program's schema. Every problem is reported with its key path, the bad value and
 * what is allowed; nothing half-valid is returned.
 *
 * Environment overrides: `<PREFIX>__<key>__<key>=<yaml scalar>`, e.g.
 * `DFDAEMON__host__advertiseIP=10.0.0.7` or `DFSCHEDULER__manager__schedulerClusterID=2`.
 * Kubernetes manifests use them to inject the pod IP through the downward API.
 */
import { readFileSync } from 'node:fs';
import { parse as parseYaml } from 'yaml';
import type { z } from 'zod';
import { dfdaemonConfigSchema } from './dfdaemon';
import { dfinitConfigSchema } from './dfinit';
import { managerConfigSchema } from './manager';
import { schedulerConfigSchema } from './scheduler';

export const configSchemas = {
  manager: managerConfigSchema,
  scheduler: schedulerConfigSchema,
  dfdaemon: dfdaemonConfigSchema,
  dfinit: dfinitConfigSchema,
} as const;

export type ProgramName = keyof typeof configSchemas;
export type ConfigOf<P extends ProgramName> = z.output<(typeof configSchemas)[P]>;
export type ConfigInputOf<P extends ProgramName> = z.input<(typeof configSchemas)[P]>;

export const ENV_PREFIX: Record<ProgramName, string> = {
  manager: 'DFMANAGER',
  scheduler: 'DFSCHEDULER',
  dfdaemon: 'DFDAEMON',
  dfinit: 'DFINIT',
};

export interface ConfigProblem {
  /** Dotted key path, e.g. "scheduler.manager.netAddrs.0.addr". */
  readonly path: string;
  readonly value: unknown;
  readonly message: string;
}

export class ConfigError extends Error {
  constructor(
    readonly source: string,
    readonly problems: readonly ConfigProblem[],
  ) {
    super(`invalid config ${source}:\n${problems.map((p) => `  ${p.path || '(root)'}: ${describe(p.value)} — ${p.message}`).join('\n')}`);
    this.name = 'ConfigError';
  }
}

function describe(value: unknown): string {
  if (value === undefined) return 'missing';
  const text = JSON.stringify(value);
  return text.length > 80 ? `${text.slice(0, 77)}...` : text;
}

function valueAt(root: unknown, path: readonly PropertyKey[]): unknown {
  let cur: unknown = root;
  for (const key of path) {
    if (cur === null || typeof cur !== 'object') return undefined;
    cur = (cur as Record<PropertyKey, unknown>)[key];
  }
  return cur;
}

function setAt(root: Record<string, unknown>, path: readonly string[], value: unknown): void {
  let cur = root;
  for (const key of path.slice(0, -1)) {
    const next = cur[key];
    if (next === null || typeof next !== 'object' || Array.isArray(next)) cur[key] = {};
    cur = cur[key] as Record<string, unknown>;
  }
  cur[path[path.length - 1]] = value;
}

interface EnvOverride {
  readonly path: readonly string[];
  readonly text: string;
}

function envOverrides(program: ProgramName, env: NodeJS.ProcessEnv): EnvOverride[] {
  const prefix = `${ENV_PREFIX[program]}__`;
  return Object.entries(env).flatMap(([name, text]) => {
    if (!name.startsWith(prefix) || text === undefined) return [];
    const path = name.slice(prefix.length).split('__').filter(Boolean);
    return path.length ? [{ path, text }] : [];
  });
}

/**
 * Applies `<PREFIX>__a__b=value` variables onto a raw (unvalidated) config object. Values
 * are read as YAML scalars ("true", "8002"), except keys ending in "password" and the paths in `asText`.
 */
export function applyEnvOverrides(
  program: ProgramName,
  raw: Record<string, unknown>,
  env: NodeJS.ProcessEnv,
  asText: ReadonlySet<string> = new Set(),
): Record<string, unknown> {
  const out = structuredClone(raw);
  for (const { path, text } of envOverrides(program, env)) {
    let value: unknown = text;
    // Passwords (usually from Secrets) are text as given: as YAML, "pass #2" would lose "#2" and "'x'" its quotes.
    if (!asText.has(path.join('.')) && !/password$/i.test(path[path.length - 1] ?? '')) {
      try {
        value = parseYaml(text) ?? '';
      } catch {
        value = text;
      }
    }
    setAt(out, path, value);
  }
  return out;
}

/** Validates an already-parsed config object. */
export function parseConfig<P extends ProgramName>(program: P, raw: unknown, source = `${program}.yaml`): ConfigOf<P> {
  const schema = configSchemas[program];
  const result = schema.safeParse(raw ?? {});
  if (result.success) return result.data as ConfigOf<P>;
  const problems: ConfigProblem[] = [];
  for (const issue of result.error.issues) {
    if (issue.code === 'unrecognized_keys') {
      for (const key of issue.keys) {
        const path = [...issue.path, key];
        problems.push({ path: path.join('.'), value: valueAt(raw, path), message: 'unknown key (check the spelling; keys are case-sensitive)' });
      }
      continue;
    }
    const value = valueAt(raw, issue.path);
    let message = issue.message;
    if (issue.code === 'invalid_type' && value === undefined) message = `required (${issue.message})`;
    if (issue.code === 'invalid_value' && 'values' in issue) message = `expected one of ${issue.values.map((v) => JSON.stringify(v)).join(', ')}`;
    problems.push({ path: issue.path.join('.'), value, message });
  }
  throw new ConfigError(source, problems);
}

/** Parses YAML text, applies env overrides, validates. */
export function parseConfigText<P extends ProgramName>(program: P, text: string, options: { source?: string; env?: NodeJS.ProcessEnv } = {}): ConfigOf<P> {
  const source = options.source ?? `${program}.yaml`;
  let raw: unknown;
  try {
    raw = parseYaml(text) ?? {};
  } catch (err) {
    throw new ConfigError(source, [{ path: '', value: undefined, message: `not valid YAML: ${(err as Error).message.split('\n')[0]}` }]);
  }
  if (typeof raw !== 'object' || Array.isArray(raw) || raw === null) {
    throw new ConfigError(source, [{ path: '', value: raw, message: 'expected a YAML mapping of keys' }]);
  }
  const env = options.env ?? {};
  try {
    return parseConfig(program, applyEnvOverrides(program, raw as Record<string, unknown>, env), source);
  } catch (err) {
    // A secret such as "12345678" or "yes" read as YAML becomes a number or a boolean; where
    // the schema wants text at an overridden key, take the variable's text verbatim.
    if (!(err instanceof ConfigError)) throw err;
    const overridden = new Set(envOverrides(program, env).map((o) => o.path.join('.')));
    const asText = new Set(err.problems.filter((p) => overridden.has(p.path) && typeof p.value !== 'string').map((p) => p.path));
    if (asText.size === 0) throw err;
    return parseConfig(program, applyEnvOverrides(program, raw as Record<string, unknown>, env, asText), source);
  }
}

/** Reads the file (if given) and returns the validated config; throws ConfigError. */
export function loadConfig<P extends ProgramName>(program: P, file: string | undefined, env: NodeJS.ProcessEnv = process.env): ConfigOf<P> {
  let text = '';
  if (file) {
    try {
      text = readFileSync(file, 'utf8');
    } catch (err) {
      throw new ConfigError(file, [{ path: '', value: file, message: `cannot read config file: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}` }]);
    }
  }
  return parseConfigText(program, text, { source: file ?? `${program} defaults`, env });
}
