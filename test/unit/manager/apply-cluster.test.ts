/* eslint-disable @typescript-eslint/no-unsafe-member-access -- response bodies are arbitrary JSON checked field by field */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { ApplyClusterError, applyCluster, applyClusterCommand } from '../../../services/manager/apply-cluster';
import type { ManagerHandle } from '../../../services/manager/server';
import { http, managerConfig, restUrl, signin, startTestManager } from './helpers';

describe('applyCluster against a manager on SQLite', () => {
  let m: ManagerHandle;
  let cleanup: () => void;
  const creds = () => ({ managerUrl: restUrl(m), username: 'root', password: 'dragonfly', timeoutMs: 5000 });

  beforeAll(async () => {
    const c = managerConfig();
    cleanup = c.cleanup;
    m = await startTestManager(c.config);
  });
  afterAll(async () => {
    await m?.stop();
    cleanup?.();
  });

  test('creates with the explicit id, then is unchanged, then updates to match the file', async () => {
    const spec = { id: 2, name: 'cluster-b', scopes: { idc: 'cluster-2' }, seed_peer_cluster_config: { load_limit: 100 } };
    expect(await applyCluster(spec, creds())).toEqual({ scheduler_cluster_id: 2, seed_peer_cluster_id: 2, action: 'created' });
    expect(await applyCluster(spec, creds())).toEqual({ scheduler_cluster_id: 2, seed_peer_cluster_id: 2, action: 'unchanged' });
    const changed = { ...spec, scopes: { idc: 'cluster-2', cidrs: ['10.2.0.0/16'] } };
    expect(await applyCluster(changed, creds())).toEqual({ scheduler_cluster_id: 2, seed_peer_cluster_id: 2, action: 'updated' });
    expect(await applyCluster(changed, creds())).toMatchObject({ action: 'unchanged' });
    const root = await signin(m);
    const got = await http(m, 'GET', '/api/v1/clusters/2', root);
    expect(got.body.scopes).toEqual({ idc: 'cluster-2', location: '', cidrs: ['10.2.0.0/16'], hostnames: [] });
    expect(got.body.seed_peer_cluster_config).toEqual({ load_limit: 100 });
    // Fields the file leaves out go back to their defaults (the file is the whole truth).
    expect(await applyCluster({ id: 2, name: 'cluster-b' }, creds())).toMatchObject({ action: 'updated' });
    expect((await http(m, 'GET', '/api/v1/clusters/2', root)).body.scopes.idc).toBe('');
  });

  test('works with a personal access token through /oapi/v1', async () => {
    const root = await signin(m);
    const pat = (await http(m, 'POST', '/api/v1/personal-access-tokens', root, { name: 'apply', scopes: ['cluster'] })).body.token as string;
    expect(await applyCluster({ name: 'cluster-c' }, { managerUrl: restUrl(m), token: pat })).toMatchObject({ action: 'created' });
    expect(await applyCluster({ name: 'cluster-c' }, { managerUrl: restUrl(m), token: pat })).toMatchObject({ action: 'unchanged' });
  });

  test('4xx answers fail at once with the manager message; invalid specs name the field', async () => {
    await expect(applyCluster({ name: 'cluster-b' }, { ...creds(), password: 'wrong-pass' })).rejects.toThrow(/HTTP 401: incorrect name or password/);
    await expect(applyCluster({ id: 9, name: 'cluster-b' }, creds())).rejects.toThrow(/exists with id 2/);
    await expect(applyCluster({ name: 'Bad Name', scopes: { cidrs: ['nope'] } }, creds())).rejects.toThrow(/name: .*scopes\.cidrs\.0/);
    await expect(applyCluster({ name: 'cluster-z' }, { managerUrl: restUrl(m) })).rejects.toBeInstanceOf(ApplyClusterError);
  });

  test('retries while the manager is unreachable, then gives up after the timeout', async () => {
    const port = await new Promise<number>((resolve) => {
      const s = createServer().listen(0, '127.0.0.1', () => {
        const p = (s.address() as { port: number }).port;
        s.close(() => resolve(p));
      });
    });
    const retries: string[] = [];
    const started = Date.now();
    await expect(applyCluster({ name: 'cluster-d' }, { managerUrl: `http://127.0.0.1:${port}`, username: 'root', password: 'dragonfly', timeoutMs: 1500, onRetry: (r) => retries.push(r) })).rejects.toThrow(/gave up: cannot reach the manager/);
    expect(retries.length).toBeGreaterThanOrEqual(1);
    expect(Date.now() - started).toBeLessThan(5000);

    // The manager comes up after the Job started: the apply waits for it and succeeds.
    const late = managerConfig({ server: { rest: { addr: `127.0.0.1:${port}` } } });
    const pending = applyCluster({ name: 'cluster-late' }, { managerUrl: `http://127.0.0.1:${port}`, username: 'root', password: 'dragonfly', timeoutMs: 20_000 });
    await new Promise((r) => setTimeout(r, 700));
    const lateManager = await startTestManager(late.config);
    try {
      expect(await pending).toMatchObject({ action: 'created' });
    } finally {
      await lateManager.stop();
      late.cleanup();
    }
  }, 30_000);

  test('the apply-cluster command reads YAML, prints the JSON result and exits 0', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'apply-cli-'));
    try {
      const file = path.join(dir, 'cluster.yaml');
      writeFileSync(file, 'name: cluster-e\nscopes:\n  idc: idc-e\n');
      const run = async () => {
        let stdout = '';
        let stderr = '';
        const env = { DRAGONFLY_MANAGER_USERNAME: 'root', DRAGONFLY_MANAGER_PASSWORD: 'dragonfly' };
        const code = await applyClusterCommand({ managerUrl: restUrl(m), file, timeout: '5s' }, { env, stdout: (t) => (stdout += t), stderr: (t) => (stderr += t) });
        return { code, stdout, stderr };
      };
      const first = await run();
      expect(first.stderr).toBe('');
      expect(first.code).toBe(0);
      expect(JSON.parse(first.stdout)).toMatchObject({ action: 'created' });
      expect(JSON.parse((await run()).stdout)).toMatchObject({ action: 'unchanged' });
      writeFileSync(file, 'name: cluster-e\nscopes:\n  cidrs: [nope]\n');
      const bad = await run();
      expect(bad.code).toBe(1);
      expect(bad.stderr).toMatch(/cluster\.yaml: scopes\.cidrs\.0/);
      const missing = await applyClusterCommand({ managerUrl: restUrl(m), file: path.join(dir, 'nope.yaml'), timeout: '5s' }, { env: {}, stdout: () => undefined, stderr: () => undefined });
      expect(missing).toBe(1);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 60_000);
});
