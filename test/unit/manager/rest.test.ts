/* eslint-disable @typescript-eslint/no-unsafe-member-access, @typescript-eslint/no-unsafe-call, @typescript-eslint/no-unsafe-assignment, @typescript-eslint/no-unsafe-argument -- response bodies are arbitrary JSON checked field by field */
import * as grpc from '@grpc/grpc-js';
import jwt from 'jsonwebtoken';
import type { ManagerHandle } from '../../../services/manager/server';
import type { ManagerClient } from '../../../services/proto';
import { call, http, managerClient, managerConfig, restUrl, signin, startTestManager, waitFor } from './helpers';

describe('manager REST on SQLite', () => {
  let m: ManagerHandle;
  let cleanup: () => void;
  let root: string;
  let client: ManagerClient;

  beforeAll(async () => {
    const c = managerConfig();
    cleanup = c.cleanup;
    m = await startTestManager(c.config);
    root = await signin(m);
    client = managerClient(m.grpcPort);
  });
  afterAll(async () => {
    client?.close();
    await m?.stop();
    cleanup?.();
  });

  test('healthy is open; everything else needs a token', async () => {
    expect((await fetch(`${restUrl(m)}/healthy`)).status).toBe(200);
    const r = await http(m, 'GET', '/api/v1/clusters');
    expect(r.status).toBe(401);
    expect(r.body.message).toMatch(/missing token/);
  });

  test('sign-in: wrong password 401, bad body 422 with field paths', async () => {
    expect((await http(m, 'POST', '/api/v1/users/signin', undefined, { name: 'root', password: 'wrong-pass' })).status).toBe(401);
    const r = await http(m, 'POST', '/api/v1/users/signin', undefined, { name: 'r', password: 1 });
    expect(r.status).toBe(422);
    expect(r.body.errors.map((e: { path: string }) => e.path).sort()).toEqual(['name', 'password']);
  });

  test('bad, foreign-key and expired tokens are 401; the cookie works, ?token= does not', async () => {
    expect((await http(m, 'GET', '/api/v1/clusters', 'garbage')).status).toBe(401);
    expect((await http(m, 'GET', '/api/v1/clusters', jwt.sign({ id: 1 }, 'some-other-key'))).status).toBe(401);
    const key = await m.store.getOrSetSetting('jwt_key', 'unused');
    const expired = jwt.sign({ id: 1, exp: Math.floor(Date.now() / 1000) - 10 }, key);
    const r = await http(m, 'GET', '/api/v1/clusters', expired);
    expect(r.status).toBe(401);
    expect(r.body.message).toBe('token expired');
    expect((await fetch(`${restUrl(m)}/api/v1/clusters`, { headers: { cookie: `jwt=${root}` } })).status).toBe(200);
    expect((await fetch(`${restUrl(m)}/api/v1/clusters?token=${root}`)).status).toBe(401);
  });

  test('cluster validation errors are 422 naming the field paths; malformed JSON is 400', async () => {
    const r = await http(m, 'POST', '/api/v1/clusters', root, { name: 'Bad_Name', scopes: { cidrs: ['10.0.0.0/99'], hostnames: ['(['] }, scheduler_cluster_config: { candidate_parent_limit: 99 }, extra: 1 });
    expect(r.status).toBe(422);
    const paths = r.body.errors.map((e: { path: string }) => e.path);
    expect(paths).toEqual(expect.arrayContaining(['name', 'scopes.cidrs.0', 'scopes.hostnames.0', 'scheduler_cluster_config.candidate_parent_limit', 'extra']));
    expect(r.body.message).toMatch(/scopes\.cidrs\.0/);
    const bad = await http(m, 'POST', '/api/v1/clusters', root, '{"name":');
    expect(bad.status).toBe(400);
    expect(bad.body.message).toMatch(/not valid JSON/);
  });

  test('cluster CRUD: create with explicit id, duplicate 409, patch merges, 404 after delete', async () => {
    const created = await http(m, 'POST', '/api/v1/clusters', root, { id: 5, name: 'cluster-b', scopes: { idc: 'cluster-2' } });
    expect(created.status).toBe(201);
    expect(created.body).toMatchObject({ id: 5, scheduler_cluster_id: 5, seed_peer_cluster_id: 5, scopes: { idc: 'cluster-2', cidrs: [] }, peer_cluster_config: { load_limit: 200 } });
    expect((await http(m, 'POST', '/api/v1/clusters', root, { name: 'cluster-b' })).status).toBe(409);
    const patched = await http(m, 'PATCH', '/api/v1/clusters/5', root, { scopes: { location: 'asia|cn' } });
    expect(patched.status).toBe(200);
    expect(patched.body.scopes).toEqual({ idc: 'cluster-2', location: 'asia|cn', cidrs: [], hostnames: [] });
    expect((await http(m, 'PATCH', '/api/v1/clusters/5', root, { id: 6 })).status).toBe(400);
    expect((await http(m, 'PATCH', '/api/v1/clusters/5', root, { scopes: { cidrs: ['x'] } })).status).toBe(422);
    const byName = await http(m, 'GET', '/api/v1/clusters?name=cluster-b', root);
    expect(byName.body.map((c: { id: number }) => c.id)).toEqual([5]);
    expect((await http(m, 'GET', '/api/v1/clusters/abc', root)).status).toBe(400);
    expect((await http(m, 'DELETE', '/api/v1/clusters/5', root)).status).toBe(200);
    expect((await http(m, 'GET', '/api/v1/clusters/5', root)).status).toBe(404);
    expect((await http(m, 'GET', '/api/v1/seed-peer-clusters/5', root)).status).toBe(404);
  });

  test('lists paginate with a Link header', async () => {
    for (const name of ['p-1', 'p-2', 'p-3']) expect((await http(m, 'POST', '/api/v1/clusters', root, { name })).status).toBe(201);
    const r = await http(m, 'GET', '/api/v1/clusters?page=2&per_page=2', root);
    expect(r.status).toBe(200);
    expect(r.body).toHaveLength(2);
    expect(r.headers.get('x-total-count')).toBe('4');
    const link = r.headers.get('link')!;
    expect(link).toContain('page=1&per_page=2>; rel="first"');
    expect(link).toContain('page=1&per_page=2>; rel="prev"');
    expect(link).toContain('page=2&per_page=2>; rel="last"');
    expect(link).not.toContain('rel="next"');
    expect((await http(m, 'GET', '/api/v1/clusters?per_page=0', root)).status).toBe(422);
  });

  test('guest (sign-up) can read but not write; root can grant roles', async () => {
    const up = await http(m, 'POST', '/api/v1/users/signup', root, { name: 'guest1', password: 'password1', email: 'g@example.com' });
    expect(up.status).toBe(201);
    const guest = await signin(m, 'guest1', 'password1');
    expect((await http(m, 'GET', '/api/v1/clusters', guest)).status).toBe(200);
    const denied = await http(m, 'POST', '/api/v1/clusters', guest, { name: 'cluster-g' });
    expect(denied.status).toBe(403);
    expect(denied.body.message).toMatch(/root/);
    expect((await http(m, 'GET', `/api/v1/users/${up.body.id}/roles`, guest)).body).toEqual(['guest']);
    expect((await http(m, 'PUT', `/api/v1/users/${up.body.id}/roles/root`, guest)).status).toBe(403);
    expect((await http(m, 'PUT', `/api/v1/users/${up.body.id}/roles/root`, root)).status).toBe(200);
    expect((await http(m, 'GET', `/api/v1/users/${up.body.id}/roles/root`, root)).status).toBe(200);
    expect((await http(m, 'POST', '/api/v1/clusters', guest, { name: 'cluster-g' })).status).toBe(201);
    expect((await http(m, 'DELETE', `/api/v1/users/${up.body.id}/roles/root`, root)).status).toBe(200);
    expect((await http(m, 'GET', `/api/v1/users/${up.body.id}/roles/root`, root)).status).toBe(404);
    expect((await http(m, 'PUT', `/api/v1/users/${up.body.id}/roles/wizard`, root)).status).toBe(404);
    expect((await http(m, 'GET', '/api/v1/roles', guest)).body).toEqual(['root', 'guest']);
    expect((await http(m, 'POST', '/api/v1/users/signup', root, { name: 'guest1', password: 'password1' })).status).toBe(409);
  });

  test('personal access tokens on /oapi/v1/clusters', async () => {
    const created = await http(m, 'POST', '/api/v1/personal-access-tokens', root, { name: 'ci', scopes: ['cluster'] });
    expect(created.status).toBe(201);
    const pat = created.body.token as string;
    expect(pat.length).toBeGreaterThan(20);
    const listed = await http(m, 'GET', '/api/v1/personal-access-tokens', root);
    expect(listed.body[0].token).toBeUndefined(); // shown once
    expect((await http(m, 'GET', '/oapi/v1/clusters', pat)).status).toBe(200);
    expect((await http(m, 'POST', '/oapi/v1/clusters', pat, { name: 'via-pat' })).status).toBe(201);
    expect((await http(m, 'GET', '/oapi/v1/clusters', root)).status).toBe(401); // a JWT is not a PAT
    expect((await http(m, 'GET', '/oapi/v1/clusters')).status).toBe(401);
    const jobOnly = (await http(m, 'POST', '/api/v1/personal-access-tokens', root, { name: 'jobs', scopes: ['job'] })).body.token as string;
    expect((await http(m, 'GET', '/oapi/v1/clusters', jobOnly)).status).toBe(403);
    const both = (await http(m, 'POST', '/api/v1/personal-access-tokens', root, { name: 'all', scopes: ['job', 'cluster'] })).body.token as string;
    expect((await http(m, 'GET', '/oapi/v1/clusters', both)).status).toBe(200);
    expect((await http(m, 'POST', '/api/v1/personal-access-tokens', root, { name: 'none' })).status).toBe(422); // no scope, no use
    expect((await http(m, 'PATCH', `/api/v1/personal-access-tokens/${created.body.id}`, root, { state: 'inactive' })).status).toBe(200);
    expect((await http(m, 'GET', '/oapi/v1/clusters', pat)).status).toBe(403);
    const expired = await http(m, 'POST', '/api/v1/personal-access-tokens', root, { name: 'old', scopes: ['cluster'], expired_at: '2020-01-01T00:00:00Z' });
    expect((await http(m, 'GET', '/oapi/v1/clusters', expired.body.token)).status).toBe(403);
    expect((await http(m, 'POST', '/api/v1/personal-access-tokens', root, { name: 'x', scopes: ['everything'] })).status).toBe(422);
  });

  test('gRPC: UpdateScheduler on a missing cluster is NOT_FOUND; GetScheduler carries config and active seed peers', async () => {
    await expect(call(client, 'UpdateScheduler', { hostname: 's', ip: '127.0.0.1', port: 8002, schedulerClusterId: 999 })).rejects.toMatchObject({ code: grpc.status.NOT_FOUND });
    await expect(call(client, 'UpdateSeedPeer', { hostname: 'seed', ip: '127.0.0.1', port: 65000, downloadPort: 65002, seedPeerClusterId: 999 })).rejects.toMatchObject({ code: grpc.status.NOT_FOUND });
    await expect(call(client, 'UpdateScheduler', { hostname: '', ip: '127.0.0.1', schedulerClusterId: 1 })).rejects.toMatchObject({ code: grpc.status.INVALID_ARGUMENT });
    const s = await call<object, { features: string[]; state: string }>(client, 'UpdateScheduler', { hostname: 's1', ip: '127.0.0.1', port: 8002, schedulerClusterId: 1 });
    expect(s.features).toEqual(['schedule', 'preheat']);
    expect(s.state).toBe('inactive');
    await call(client, 'UpdateSeedPeer', { hostname: 'seed1', ip: '127.0.0.2', type: 'super', port: 65000, downloadPort: 65002, seedPeerClusterId: 1 });
    const before = await call<object, { seedPeers: unknown[] }>(client, 'GetScheduler', { hostname: 's1', ip: '127.0.0.1', schedulerClusterId: 1 });
    expect(before.seedPeers).toHaveLength(0); // not active yet
    await m.registry.keepAlive('SEED_PEER_SOURCE', 'seed1', '127.0.0.2', 1, 'active');
    const got = await call<object, { schedulerCluster: { config: Buffer; clientConfig: Buffer; scopes: Buffer }; seedPeers: Array<{ ip: string; port: number; downloadPort: number }> }>(client, 'GetScheduler', { hostname: 's1', ip: '127.0.0.1', schedulerClusterId: 1 });
    expect(JSON.parse(got.schedulerCluster.config.toString())).toMatchObject({ candidate_parent_limit: 4, filter_parent_limit: 40 });
    expect(JSON.parse(got.schedulerCluster.clientConfig.toString())).toEqual({ load_limit: 200 });
    expect(got.seedPeers).toEqual([expect.objectContaining({ ip: '127.0.0.2', port: 65000, downloadPort: 65002 })]);
    const listed = await call<object, { seedPeers: unknown[] }>(client, 'ListSeedPeers', { schedulerClusterId: 1 });
    expect(listed.seedPeers).toHaveLength(1);
    await call(client, 'DeleteSeedPeer', { hostname: 'seed1', ip: '127.0.0.2', seedPeerClusterId: 1 });
    await expect(call(client, 'GetSeedPeer', { hostname: 'seed1', ip: '127.0.0.2', seedPeerClusterId: 1 })).rejects.toMatchObject({ code: grpc.status.NOT_FOUND });
  });

  test('gRPC KeepAlive: unknown sender is NOT_FOUND, PEER_SOURCE is INVALID_ARGUMENT, stream end marks inactive', async () => {
    const keepAlive = (msg: object) =>
      new Promise<grpc.ServiceError | null>((resolve) => {
        const stream = client.KeepAlive((err) => resolve(err));
        stream.write(msg);
      });
    expect(await keepAlive({ sourceType: 'SCHEDULER_SOURCE', hostname: 'ghost', ip: '127.0.0.9', clusterId: 1 })).toMatchObject({ code: grpc.status.NOT_FOUND });
    expect(await keepAlive({ sourceType: 'PEER_SOURCE', hostname: 's1', ip: '127.0.0.1', clusterId: 1 })).toMatchObject({ code: grpc.status.INVALID_ARGUMENT });
    const stream = client.KeepAlive(() => undefined);
    stream.write({ sourceType: 'SCHEDULER_SOURCE', hostname: 's1', ip: '127.0.0.1', clusterId: 1 });
    const state = async () => (await m.store.findScheduler({ hostname: 's1', ip: '127.0.0.1', schedulerClusterId: 1 }))?.state;
    await waitFor(async () => (await state()) === 'active');
    const listed = await call<object, { schedulers: Array<{ hostname: string }> }>(client, 'ListSchedulers', { sourceType: 'PEER_SOURCE', hostname: 'peer', ip: '10.0.0.1' });
    expect(listed.schedulers.map((s) => s.hostname)).toEqual(['s1']);
    stream.end();
    await waitFor(async () => (await state()) === 'inactive');
    expect((await call<object, { schedulers: unknown[] }>(client, 'ListSchedulers', { sourceType: 'PEER_SOURCE', hostname: 'peer', ip: '10.0.0.1' })).schedulers).toEqual([]);
  });

  test('scheduler clusters, seed-peer clusters, schedulers and seed peers over REST', async () => {
    const spc = await http(m, 'POST', '/api/v1/seed-peer-clusters', root, { name: 'seeds-x', config: { load_limit: 300 } });
    expect(spc.status).toBe(201);
    const sc = await http(m, 'POST', '/api/v1/scheduler-clusters', root, { name: 'sched-x', scopes: { hostnames: ['^x-'] }, seed_peer_cluster_id: spc.body.id });
    expect(sc.status).toBe(201);
    expect(sc.body).toMatchObject({ name: 'sched-x', config: { candidate_parent_limit: 4 }, client_config: { load_limit: 200 }, scopes: { hostnames: ['^x-'] } });
    expect((await http(m, 'POST', '/api/v1/scheduler-clusters', root, { name: 'sched-y', seed_peer_cluster_id: 4242 })).status).toBe(404);
    expect((await http(m, 'POST', '/api/v1/scheduler-clusters', root, { name: 'sched-y', config: { filter_parent_limit: 1 } })).body.errors[0].path).toBe('config.filter_parent_limit');
    const patched = await http(m, 'PATCH', `/api/v1/scheduler-clusters/${sc.body.id}`, root, { config: { candidate_parent_limit: 6 } });
    expect(patched.body.config).toMatchObject({ candidate_parent_limit: 6, filter_parent_limit: 40 });
    expect((await http(m, 'PATCH', `/api/v1/seed-peer-clusters/${spc.body.id}`, root, { bio: 'seeds' })).body).toMatchObject({ bio: 'seeds', config: { load_limit: 300 } });
    expect((await http(m, 'GET', '/api/v1/scheduler-clusters?name=sched-x', root)).body).toHaveLength(1);
    // A scheduler registers into it over gRPC; REST lists and deletes it.
    await call(client, 'UpdateScheduler', { hostname: 'x-sched', ip: '127.0.0.5', port: 8002, schedulerClusterId: sc.body.id });
    await call(client, 'UpdateSeedPeer', { hostname: 'x-seed', ip: '127.0.0.6', port: 65000, downloadPort: 65002, seedPeerClusterId: spc.body.id });
    const schedulers = await http(m, 'GET', `/api/v1/schedulers?scheduler_cluster_id=${sc.body.id}`, root);
    expect(schedulers.body.map((x: { host_name: string }) => x.host_name)).toEqual(['x-sched']);
    const seeds = await http(m, 'GET', `/api/v1/seed-peers?seed_peer_cluster_id=${spc.body.id}`, root);
    expect(seeds.body.map((x: { host_name: string; state: string }) => [x.host_name, x.state])).toEqual([['x-seed', 'inactive']]);
    expect((await http(m, 'DELETE', `/api/v1/scheduler-clusters/${sc.body.id}`, root)).status).toBe(409); // still has a scheduler
    expect((await http(m, 'DELETE', `/api/v1/schedulers/${schedulers.body[0].id}`, root)).status).toBe(200);
    expect((await http(m, 'GET', `/api/v1/schedulers/${schedulers.body[0].id}`, root)).status).toBe(404);
    expect((await http(m, 'DELETE', `/api/v1/seed-peers/${seeds.body[0].id}`, root)).status).toBe(200);
    expect((await http(m, 'DELETE', `/api/v1/scheduler-clusters/${sc.body.id}`, root)).status).toBe(200);
    expect((await http(m, 'DELETE', `/api/v1/seed-peer-clusters/${spc.body.id}`, root)).status).toBe(200);
    expect((await http(m, 'GET', `/api/v1/seed-peer-clusters/${spc.body.id}`, root)).status).toBe(404);
  });

  test('the console (built by npm run build) is served at /, its bundle talks to the REST API', async () => {
    const res = await fetch(`${restUrl(m)}/`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/html/);
    expect(await res.text()).toContain('assets/console.js');
    const bundle = await fetch(`${restUrl(m)}/assets/console.js`);
    expect(bundle.status).toBe(200);
    expect(await bundle.text()).toContain('/users/signin');
  });

  test('metrics endpoint exposes the manager metrics', async () => {
    await call(client, 'ListSchedulers', { sourceType: 'PEER_SOURCE', hostname: 'h', ip: '10.0.0.1' });
    const text = await (await fetch(`http://127.0.0.1:${m.metricsPort}/metrics`)).text();
    expect(text).toMatch(/dragonfly_manager_search_scheduler_cluster_total\{[^}]*\} [1-9]/);
    expect(text).toContain('dragonfly_manager_search_scheduler_cluster_failure_total');
    expect(text).toContain('dragonfly_manager_active_schedulers');
    expect(text).toMatch(/dragonfly_manager_http_requests_total\{[^}]*route="\/api\/v1\/clusters"/);
  });
});
