/** The console's only backend: the manager's REST API under /api/v1, with the session's JWT. */

export interface FieldProblem {
  path: string;
  message: string;
}

export class ApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly problems: FieldProblem[] = [],
  ) {
    super(message);
  }
}

const TOKEN_KEY = 'dragonfly.console.token';

export interface Session {
  token: string;
  userId: number;
}

export function loadSession(): Session | undefined {
  const token = sessionStorage.getItem(TOKEN_KEY);
  if (!token) return undefined;
  const userId = userIdOf(token);
  return userId === undefined ? undefined : { token, userId };
}

export function saveSession(token: string): Session {
  const userId = userIdOf(token);
  if (userId === undefined) throw new Error('the manager answered sign-in with a token that names no user');
  sessionStorage.setItem(TOKEN_KEY, token);
  return { token, userId };
}

export function clearSession(): void {
  sessionStorage.removeItem(TOKEN_KEY);
}

/** The user id claim of the manager's JWT (the signature is the manager's business, not ours). */
function userIdOf(token: string): number | undefined {
  try {
    const payload = token.split('.')[1] ?? '';
    const json = JSON.parse(atob(payload.replace(/-/g, '+').replace(/_/g, '/'))) as { id?: unknown };
    return typeof json.id === 'number' ? json.id : undefined;
  } catch {
    return undefined;
  }
}

/** Called when the manager says the session is no longer valid (401). */
let onUnauthenticated: () => void = () => undefined;
export function setUnauthenticatedHandler(fn: () => void): void {
  onUnauthenticated = fn;
}

export interface ApiAnswer<T> {
  body: T;
  total: number | undefined;
}

export async function request<T>(method: string, path: string, body?: unknown): Promise<ApiAnswer<T>> {
  const headers: Record<string, string> = { accept: 'application/json' };
  const token = sessionStorage.getItem(TOKEN_KEY);
  if (token) headers.authorization = `Bearer ${token}`;
  if (body !== undefined) headers['content-type'] = 'application/json';
  let res: Response;
  try {
    res = await fetch(`/api/v1${path}`, { method, headers, body: body === undefined ? undefined : JSON.stringify(body), credentials: 'same-origin' });
  } catch (err) {
    throw new ApiError(0, `cannot reach the manager: ${(err as Error).message}`);
  }
  const text = await res.text();
  let parsed: unknown;
  try {
    parsed = text === '' ? undefined : JSON.parse(text);
  } catch {
    // Not JSON (a proxy's error page): the status line says what happened.
  }
  if (!res.ok) {
    const errBody = (parsed ?? {}) as { message?: unknown; errors?: unknown };
    const message = typeof errBody.message === 'string' ? errBody.message : `${res.status} ${res.statusText}`;
    const problems = Array.isArray(errBody.errors) ? (errBody.errors as FieldProblem[]).filter((p) => typeof p?.path === 'string' && typeof p?.message === 'string') : [];
    if (res.status === 401 && !path.startsWith('/users/signin') && !path.endsWith('/reset_password')) onUnauthenticated();
    throw new ApiError(res.status, message, problems);
  }
  const totalHeader = res.headers.get('x-total-count');
  return { body: parsed as T, total: totalHeader === null ? undefined : Number(totalHeader) };
}

export const api = {
  get: async <T>(path: string) => (await request<T>('GET', path)).body,
  post: async <T>(path: string, body: unknown) => (await request<T>('POST', path, body)).body,
  patch: async <T>(path: string, body: unknown) => (await request<T>('PATCH', path, body)).body,
  put: async <T>(path: string, body?: unknown) => (await request<T>('PUT', path, body ?? {})).body,
  del: async <T>(path: string) => (await request<T>('DELETE', path)).body,
};

// ---- shapes of the manager's answers ------------------------------------------------

export interface User {
  id: number;
  name: string;
  email: string;
  state: string;
  created_at: string;
}

export interface ClusterScopes {
  idc: string;
  location: string;
  cidrs: string[];
  hostnames: string[];
}

export interface Cluster {
  id: number;
  name: string;
  bio: string;
  scopes: ClusterScopes;
  is_default: boolean;
  scheduler_cluster_id: number;
  seed_peer_cluster_id: number;
  scheduler_cluster_config: { candidate_parent_limit?: number; filter_parent_limit?: number; job_rate_limit?: number };
  seed_peer_cluster_config: { load_limit?: number };
  peer_cluster_config: { load_limit?: number };
  created_at: string;
  updated_at: string;
}

export interface Scheduler {
  id: number;
  host_name: string;
  ip: string;
  port: number;
  idc: string;
  location: string;
  state: string;
  features: string[];
  last_keep_alive_at: string | null;
}

export interface SeedPeer {
  id: number;
  host_name: string;
  type: string;
  ip: string;
  port: number;
  download_port: number;
  idc: string;
  location: string;
  state: string;
  last_keep_alive_at: string | null;
}

export interface PersonalAccessToken {
  id: number;
  name: string;
  bio: string;
  scopes: string[];
  state: string;
  expired_at: string;
  user_id: number;
  created_at: string;
  token?: string;
}

export interface Job {
  id: number;
  type: string;
  state?: string;
  status?: string;
  args?: Record<string, unknown>;
  result?: unknown;
  scheduler_cluster_ids?: number[];
  scheduler_clusters?: Array<{ id: number; name?: string }>;
  created_at?: string;
  updated_at?: string;
}
