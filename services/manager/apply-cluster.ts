/**
 * `dfmanager apply-cluster`: makes the manager's cluster record match a cluster spec file.
 * Creates it (with the explicit id when given) or PATCHes it; idempotent. Connection errors
 * and 5xx answers are retried with backoff until the deadline (the manager may start after
 * the Job); 4xx answers fail at once with the manager's message.
 */
import { readFileSync } from 'node:fs';
import { isDeepStrictEqual } from 'node:util';
import { parse as parseYaml } from 'yaml';
import { parseDuration } from '../common/config/primitives';
import { clusterSpecSchema, type ClusterSpec } from '../common/config/cluster-spec';
import { problemsOf } from './validation';
import type { ClusterView } from './clusters';
import { specOfView } from './clusters';

export interface ApplyClusterOptions {
  managerUrl: string;
  username?: string;
  password?: string;
  /** A personal access token (scope `cluster`); uses /oapi/v1 instead of signing in. */
  token?: string;
  /** Total time to keep retrying unreachable/5xx answers; default 10 minutes. */
  timeoutMs?: number;
  /** Called before each retry (for logs). */
  onRetry?: (reason: string, delayMs: number) => void;
}

export interface ApplyClusterResult {
  scheduler_cluster_id: number;
  seed_peer_cluster_id: number;
  action: 'created' | 'updated' | 'unchanged';
}

export class ApplyClusterError extends Error {
  constructor(
    message: string,
    readonly status?: number,
  ) {
    super(message);
    this.name = 'ApplyClusterError';
  }
}

class RetryableError extends Error {}

/** Validates a parsed YAML/JSON document as a cluster spec; throws ApplyClusterError naming the fields. */
export function parseClusterSpec(doc: unknown, source = 'cluster spec'): ClusterSpec {
  const r = clusterSpecSchema.safeParse(doc ?? {});
  if (r.success) return r.data;
  throw new ApplyClusterError(`invalid ${source}: ${problemsOf(r.error).map((p) => `${p.path}: ${p.message}`).join('; ')}`);
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

export async function applyCluster(specInput: unknown, options: ApplyClusterOptions): Promise<ApplyClusterResult> {
  const spec = parseClusterSpec(specInput);
  const base = options.managerUrl.replace(/\/+$/, '');
  const deadline = Date.now() + (options.timeoutMs ?? 600_000);
  if (!options.token && !(options.username && options.password)) {
    throw new ApplyClusterError('no credentials: set DRAGONFLY_MANAGER_USERNAME and DRAGONFLY_MANAGER_PASSWORD, or DRAGONFLY_MANAGER_TOKEN');
  }

  async function call<T>(method: string, path: string, body?: unknown, bearer?: string): Promise<T> {
    let res: Response;
    try {
      res = await fetch(`${base}${path}`, {
        method,
        headers: { 'content-type': 'application/json', ...(bearer ? { authorization: `Bearer ${bearer}` } : {}) },
        body: body === undefined ? undefined : JSON.stringify(body),
        signal: AbortSignal.timeout(Math.max(1000, Math.min(30_000, deadline - Date.now()))),
      });
    } catch (err) {
      const cause = (err as { cause?: { code?: string } }).cause?.code ?? (err as Error).message;
      throw new RetryableError(`cannot reach the manager at ${base}: ${cause}`);
    }
    const text = await res.text();
    let parsed: unknown;
    try {
      parsed = text ? JSON.parse(text) : undefined;
    } catch {
      // not JSON: the raw text is the message
    }
    if (res.status >= 500) throw new RetryableError(`${method} ${path}: HTTP ${res.status}`);
    if (res.status >= 400) {
      const message = (parsed as { message?: string } | undefined)?.message ?? text;
      throw new ApplyClusterError(`${method} ${path}: HTTP ${res.status}: ${message}`, res.status);
    }
    return parsed as T;
  }

  async function attempt(): Promise<ApplyClusterResult> {
    let prefix = '/oapi/v1';
    let bearer = options.token;
    if (!bearer) {
      const session = await call<{ token: string }>('POST', '/api/v1/users/signin', { name: options.username, password: options.password });
      bearer = session.token;
      prefix = '/api/v1';
    }
    const found = await call<ClusterView[]>('GET', `${prefix}/clusters?name=${encodeURIComponent(spec.name)}&per_page=100`, undefined, bearer);
    const existing = found.find((c) => c.name === spec.name);
    const result = (c: ClusterView, action: ApplyClusterResult['action']): ApplyClusterResult => ({ scheduler_cluster_id: c.scheduler_cluster_id, seed_peer_cluster_id: c.seed_peer_cluster_id, action });
    if (!existing) {
      try {
        return result(await call<ClusterView>('POST', `${prefix}/clusters`, spec, bearer), 'created');
      } catch (err) {
        // Another Job created it between our GET and POST: go round again and compare.
        if (err instanceof ApplyClusterError && err.status === 409) throw new RetryableError(err.message);
        throw err;
      }
    }
    if (spec.id !== undefined && spec.id !== existing.id) {
      throw new ApplyClusterError(`cluster ${spec.name} exists with id ${existing.id}, but the file says id ${spec.id}; ids cannot change (delete the cluster or fix the file)`);
    }
    const wanted: Partial<ClusterSpec> = { ...spec };
    delete wanted.id;
    if (isDeepStrictEqual(normalize(specOfView(existing)), normalize(wanted))) return result(existing, 'unchanged');
    return result(await call<ClusterView>('PATCH', `${prefix}/clusters/${existing.id}`, wanted, bearer), 'updated');
  }

  let delay = 500;
  for (;;) {
    try {
      return await attempt();
    } catch (err) {
      if (!(err instanceof RetryableError)) throw err;
      const wait = Math.min(delay, deadline - Date.now());
      if (wait <= 0) throw new ApplyClusterError(`gave up: ${err.message}`);
      options.onRetry?.(err.message, wait);
      await sleep(wait);
      delay = Math.min(delay * 2, 10_000);
    }
  }
}

/** Sorted keys, so stored JSON compares equal to the file regardless of key order. */
function normalize(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(normalize);
  if (v && typeof v === 'object') return Object.fromEntries(Object.keys(v).sort().map((k) => [k, normalize((v as Record<string, unknown>)[k])]));
  return v;
}

export interface CommandIo {
  env: NodeJS.ProcessEnv;
  stdout: (text: string) => void;
  stderr: (text: string) => void;
}

/**
 * The `dfmanager apply-cluster` command: reads the file, applies it with credentials from
 * DRAGONFLY_MANAGER_USERNAME/PASSWORD or DRAGONFLY_MANAGER_TOKEN, prints the JSON result.
 * Returns the exit code (0 ok, 1 with a message on stderr).
 */
export async function applyClusterCommand(opts: { managerUrl: string; file: string; timeout: string }, io: CommandIo): Promise<number> {
  try {
    const timeoutMs = parseDuration(opts.timeout);
    if (Number.isNaN(timeoutMs)) throw new ApplyClusterError(`--timeout: expected a duration such as "10m", got ${JSON.stringify(opts.timeout)}`);
    let doc: unknown;
    try {
      doc = parseYaml(readFileSync(opts.file, 'utf8'));
    } catch (err) {
      throw new ApplyClusterError(`cannot read ${opts.file}: ${(err as Error).message.split('\n')[0]}`);
    }
    const result = await applyCluster(parseClusterSpec(doc, opts.file), {
      managerUrl: opts.managerUrl,
      username: io.env.DRAGONFLY_MANAGER_USERNAME,
      password: io.env.DRAGONFLY_MANAGER_PASSWORD,
      token: io.env.DRAGONFLY_MANAGER_TOKEN || undefined,
      timeoutMs,
      onRetry: (reason, delay) => io.stderr(`dfmanager apply-cluster: ${reason}; retrying in ${delay} ms\n`),
    });
    io.stdout(`${JSON.stringify(result)}\n`);
    return 0;
  } catch (err) {
    io.stderr(`dfmanager apply-cluster: ${err instanceof Error ? err.message : String(err)}\n`);
    return 1;
  }
}
