/* eslint-disable @typescript-eslint/no-unsafe-member-access, @typescript-eslint/no-unsafe-call -- response bodies are arbitrary JSON checked field by field */
/**
 * The console's server side: static files with a same-origin CSP, the "not built" answer,
 * sign-out, changing one's own password; and the install snippet, run through the real
 * RemoteCluster construct.
 */
import * as cdk8s from 'cdk8s';
import express from 'express';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runInThisContext } from 'node:vm';
import request from 'supertest';
import ts from 'typescript';
import { parseAllDocuments } from 'yaml';
import { mountConsole } from '../../../services/manager/console';
import { constructSnippet, helmValuesSnippet, type SnippetCluster } from '../../../services/manager/console/install-snippet';
import type { ManagerHandle } from '../../../services/manager/server';
import { http, managerConfig, restUrl, signin, startTestManager } from './helpers';

describe('console static files', () => {
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'console-static-'));
    mkdirSync(join(dir, 'assets'));
    writeFileSync(join(dir, 'index.html'), '<!doctype html><title>console</title>');
    writeFileSync(join(dir, 'assets/console.js'), 'void 0;');
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  test('GET / and /assets/* are served with a same-origin CSP; unknown assets fall through', async () => {
    const app = express();
    mountConsole(app, dir);
    app.use((_req, res) => res.status(404).json({ message: 'no route' }));
    const index = await request(app).get('/');
    expect(index.status).toBe(200);
    expect(index.text).toContain('<title>console</title>');
    expect(index.headers['content-security-policy']).toMatch(/default-src 'self'.*frame-ancestors 'none'/);
    expect(index.headers['x-content-type-options']).toBe('nosniff');
    const js = await request(app).get('/assets/console.js');
    expect(js.status).toBe(200);
    expect(js.headers['content-type']).toMatch(/javascript/);
    expect((await request(app).get('/assets/missing.js')).status).toBe(404);
    expect((await request(app).get('/assets/../index.html')).status).not.toBe(500);
  });

  test('without a build, GET / is 503 and says how to build', async () => {
    const app = express();
    mountConsole(app, undefined);
    const r = await request(app).get('/');
    expect(r.status).toBe(503);
    expect(r.text).toMatch(/npm run build/);
  });
});

describe('sign-out and own password (REST, SQLite)', () => {
  let m: ManagerHandle;
  let cleanup: () => void;
  let root: string;
  beforeAll(async () => {
    const c = managerConfig();
    cleanup = c.cleanup;
    m = await startTestManager(c.config);
    root = await signin(m);
  });
  afterAll(async () => {
    await m?.stop();
    cleanup?.();
  });

  test('signout clears the session cookie', async () => {
    const r = await fetch(`${restUrl(m)}/api/v1/users/signout`, { method: 'POST' });
    expect(r.status).toBe(200);
    expect(r.headers.get('set-cookie')).toMatch(/^jwt=;.*Expires=Thu, 01 Jan 1970/);
  });

  test('a guest changes its own password: old one checked, new one validated, sessions by the new one only', async () => {
    expect((await http(m, 'POST', '/api/v1/users/signup', root, { name: 'guest7', password: 'first-pass-1' })).status).toBe(201);
    const guest = await signin(m, 'guest7', 'first-pass-1');
    const id = (await http(m, 'GET', '/api/v1/users', root)).body.find((u: { name: string }) => u.name === 'guest7').id as number;

    const wrongOld = await http(m, 'POST', `/api/v1/users/${id}/reset_password`, guest, { old_password: 'nope-nope', new_password: 'second-pass-2' });
    expect(wrongOld.status).toBe(422);
    expect(wrongOld.body.errors).toEqual([{ path: 'old_password', message: 'incorrect password' }]);
    const short = await http(m, 'POST', `/api/v1/users/${id}/reset_password`, guest, { old_password: 'first-pass-1', new_password: 'short' });
    expect(short.status).toBe(422);
    expect(short.body.errors.map((e: { path: string }) => e.path)).toEqual(['new_password']);
    const extra = await http(m, 'POST', `/api/v1/users/${id}/reset_password`, guest, { old_password: 'first-pass-1', new_password: 'second-pass-2', name: 'x' });
    expect(extra.status).toBe(422);

    expect((await http(m, 'POST', `/api/v1/users/${id}/reset_password`, undefined, { old_password: 'first-pass-1', new_password: 'second-pass-2' })).status).toBe(401);
    // A guest never changes someone else's password (root resets anyone's: test/integration/manager/auth.test.ts).
    expect((await http(m, 'POST', '/api/v1/users/1/reset_password', guest, { old_password: 'dragonfly', new_password: 'second-pass-2' })).status).toBe(403);

    expect((await http(m, 'POST', `/api/v1/users/${id}/reset_password`, guest, { old_password: 'first-pass-1', new_password: 'second-pass-2' })).status).toBe(200);
    await expect(signin(m, 'guest7', 'first-pass-1')).rejects.toThrow(/401/);
    const renewed = await signin(m, 'guest7', 'second-pass-2');
    // Sessions from before the change end with it.
    expect((await http(m, 'GET', '/api/v1/clusters', guest)).status).toBe(401);
    // The route is the only write a guest gets: everything else stays root-only.
    expect((await http(m, 'POST', '/api/v1/clusters', renewed, { name: 'guest-made' })).status).toBe(403);
  });
});

describe('install snippet', () => {
  const cluster2: SnippetCluster = {
    id: 2,
    name: 'cluster-2',
    bio: 'cluster B',
    scopes: { idc: 'cluster-2', location: 'asia|cn', cidrs: ['10.2.0.0/16'], hostnames: [] },
    scheduler_cluster_id: 2,
    seed_peer_cluster_id: 2,
    scheduler_cluster_config: { candidate_parent_limit: 5, filter_parent_limit: 40, job_rate_limit: 10 },
  };
  const manager = { host: 'dragonfly-manager.cluster-a.svc.cluster.local', grpcPort: 65003, restPort: 8080 };

  test('the RemoteCluster code compiles and synthesizes cluster 2 with its scopes and settings', () => {
    const code = constructSnippet(cluster2, manager);
    const js = ts.transpileModule(code, { compilerOptions: { module: ts.ModuleKind.CommonJS, target: ts.ScriptTarget.ES2022 }, reportDiagnostics: true });
    expect(js.diagnostics ?? []).toEqual([]);
    const outdir = mkdtempSync(join(tmpdir(), 'snippet-synth-'));
    try {
      class TestApp extends cdk8s.App {
        constructor() {
          super({ outdir });
        }
      }
      const modules: Record<string, unknown> = { cdk8s: { ...cdk8s, App: TestApp }, 'dragonfly-ts': jest.requireActual('../../../constructs') };
      const fakeRequire = (name: string) => {
        if (!(name in modules)) throw new Error(`snippet imports ${name}`);
        return modules[name];
      };
      // The snippet is what a user pastes into a cdk8s app: run it as a CommonJS module would run.
      const runSnippet = runInThisContext(`(function (require, exports) {\n${js.outputText}\n})`) as (req: typeof fakeRequire, exp: object) => void;
      runSnippet(fakeRequire, {});
      const docs = readdirSync(outdir).flatMap((f) => parseAllDocuments(readFileSync(join(outdir, f), 'utf8')).map((d) => d.toJS() as { kind: string; metadata: { name: string; namespace?: string }; data?: Record<string, string> }));
      const configMaps = docs.filter((d) => d.kind === 'ConfigMap');
      const all = configMaps.map((c) => Object.values(c.data ?? {}).join('\n')).join('\n');
      expect(all).toMatch(/schedulerClusterID: 2\b/);
      expect(all).toMatch(/idc: cluster-2\b/);
      const record = configMaps.find((c) => c.data?.['cluster.yaml']);
      expect(record?.data?.['cluster.yaml']).toMatch(/id: 2\n/);
      expect(record?.data?.['cluster.yaml']).toMatch(/candidate_parent_limit: 5/);
      expect(record?.data?.['cluster.yaml']).toMatch(/- 10\.2\.0\.0\/16/);
      expect(docs.every((d) => d.kind === 'Namespace' || d.metadata.namespace === undefined || d.metadata.namespace === 'cluster-2')).toBe(true);
    } finally {
      rmSync(outdir, { recursive: true, force: true });
    }
  });

  test('the Helm values carry the seed keys: cluster ids, manager address, host.idc', () => {
    const [doc] = parseAllDocuments(helmValuesSnippet(cluster2, manager));
    const v = doc.toJS() as Record<string, Record<string, unknown>>;
    expect(v).toMatchObject({
      scheduler: { config: { manager: { addr: 'dragonfly-manager.cluster-a.svc.cluster.local:65003', schedulerClusterID: 2 } } },
      seedPeer: { config: { scheduler: { manager: { netAddrs: [{ type: 'tcp', addr: 'dragonfly-manager.cluster-a.svc.cluster.local:65003' }], seedPeer: { enable: true, clusterID: 2 } } } } },
      dfdaemon: { config: { host: { idc: 'cluster-2', location: 'asia|cn' } } },
      manager: { enable: false },
      externalManager: { enable: true, host: 'dragonfly-manager.cluster-a.svc.cluster.local', restPort: 8080, grpcPort: 65003 },
    });
  });

  test('hostile record text stays a string literal in both snippets', () => {
    const hostile = { ...cluster2, bio: "'); process.exit(1); ('", scopes: { ...cluster2.scopes, idc: 'a: b\n#x', location: '' } };
    const code = constructSnippet(hostile, manager);
    expect(code).toContain(`bio: ${JSON.stringify(hostile.bio)},`);
    const [doc] = parseAllDocuments(helmValuesSnippet(hostile, manager));
    expect((doc.toJS() as { dfdaemon: { config: { host: { idc: string } } } }).dfdaemon.config.host.idc).toBe('a: b\n#x');
  });
});
