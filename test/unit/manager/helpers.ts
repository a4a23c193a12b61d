/** Test helpers: a manager on free ports, a gRPC client, and REST sign-in. */
import * as grpc from '@grpc/grpc-js';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { parseConfig } from '../../../services/common/config/load';
import type { ManagerConfig, ManagerConfigInput } from '../../../services/common/config/manager';
import { GRPC_OPTIONS } from '../../../services/common/grpc';
import { silentLogger, type Logger } from '../../../services/common/logger';
import { protos, type ManagerClient } from '../../../services/proto';
import { startManager, type ManagerHandle } from '../../../services/manager/server';

export function managerConfig(overrides: ManagerConfigInput = {}): { config: ManagerConfig; cleanup: () => void } {
  const dir = mkdtempSync(path.join(tmpdir(), 'manager-test-'));
  const base: ManagerConfigInput = {
    server: { workHome: dir, rest: { addr: '127.0.0.1:0' }, grpc: { listenIP: '127.0.0.1', port: { start: 0, end: 0 } } },
    metrics: { addr: '127.0.0.1:0' },
    database: { type: 'sqlite' },
    // root/dragonfly, as every test signs in; tests of auth.rootPassword override it.
    auth: { demoCredentials: true },
    // Plaintext unless a test passes security files (test/integration/tls covers mTLS).
    security: { insecure: true },
  };
  const merged = deepMerge(base, overrides);
  return { config: parseConfig('manager', merged), cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

function deepMerge(a: Record<string, unknown>, b: Record<string, unknown>): Record<string, unknown> {
  const out = { ...a };
  for (const [k, v] of Object.entries(b)) {
    const cur = out[k];
    out[k] = v && typeof v === 'object' && !Array.isArray(v) && cur && typeof cur === 'object' && !Array.isArray(cur) ? deepMerge(cur as Record<string, unknown>, v as Record<string, unknown>) : v;
  }
  return out;
}

export async function startTestManager(config: ManagerConfig, options: { disableCache?: boolean; logger?: Logger } = {}): Promise<ManagerHandle> {
  return startManager(config, { logger: silentLogger(), ...options });
}

export function managerClient(port: number): ManagerClient {
  return new (protos().manager.manager.v2.Manager)(`127.0.0.1:${port}`, grpc.credentials.createInsecure(), GRPC_OPTIONS);
}

export const restUrl = (m: ManagerHandle) => `http://127.0.0.1:${m.restPort}`;

export async function signin(m: ManagerHandle, name = 'root', password = 'dragonfly'): Promise<string> {
  const res = await fetch(`${restUrl(m)}/api/v1/users/signin`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ name, password }) });
  if (res.status !== 200) throw new Error(`signin ${name}: ${res.status} ${await res.text()}`);
  return ((await res.json()) as { token: string }).token;
}

// Response bodies are arbitrary JSON that each test inspects field by field.
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type JsonBody = any;

export async function http(m: ManagerHandle, method: string, url: string, token?: string, body?: unknown): Promise<{ status: number; body: JsonBody; headers: Headers }> {
  const res = await fetch(`${restUrl(m)}${url}`, {
    method,
    headers: { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) },
    body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
  });
  const text = await res.text();
  const parsed: unknown = text ? JSON.parse(text) : undefined;
  return { status: res.status, body: parsed, headers: res.headers };
}

/** Promise wrapper for a unary ManagerClient call. */
export function call<Req, Res>(client: ManagerClient, method: keyof ManagerClient, req: Req): Promise<Res> {
  return new Promise((resolve, reject) => {
    // eslint-disable-next-line @typescript-eslint/unbound-method -- called with client as this below
    const fn = client[method] as unknown as (r: Req, cb: (err: grpc.ServiceError | null, res?: Res) => void) => void;
    fn.call(client, req, (err, res) => (err ? reject(err) : resolve(res as Res)));
  });
}

/** Opens a KeepAlive stream and sends one message; resolves after the manager applied it. */
export async function openKeepAlive(client: ManagerClient, msg: { sourceType: 'SCHEDULER_SOURCE' | 'SEED_PEER_SOURCE'; hostname: string; ip: string; clusterId: number }, isApplied: () => Promise<boolean>): Promise<grpc.ClientWritableStream<unknown>> {
  const stream = client.KeepAlive(() => undefined) as unknown as grpc.ClientWritableStream<unknown>;
  stream.write(msg);
  await waitFor(isApplied);
  return stream;
}

export async function waitFor(check: () => Promise<boolean> | boolean, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 20));
  }
}
